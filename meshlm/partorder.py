"""The canonical order of the ``parts`` text format: its parts, and the order of their vertices
and faces (:func:`split_parts`).

Input: a mesh on the grid as :func:`meshlm.codec.canonicalize` returns it -- (n, 3) int
coordinates, distinct rows, and (m, 3) int 0-based faces, none degenerate and no two on one
vertex set. Output: the :class:`Part` s in writing order, each its global vertex ids in writing
order and its faces as part-local labels. :mod:`meshlm.parts` writes them as text
(:func:`meshlm.parts.encode_parts`) and checks strict text against them. Step 1 of the format
(quantize and merge, as the LLaMA-Mesh encoding does) is done before; the rest, numbered as in
:mod:`meshlm.parts`' docstring:

2. Split into *parts*: pieces of faces joined through edges that exactly two faces share. Parts
   that touch at a corner, or are welded along an edge (an edge of four faces, e.g. a chair's
   seat and back sharing two corners), stay separate parts; a vertex they share is written in
   each of them (the decoder merges vertex lines with equal coordinates).
3. Within a part, order the vertices by a walk over its connectivity from a canonical start
   (:func:`_label`): breadth first; the unvisited neighbours of each vertex are taken in the
   order the faces' winding goes around it (a rotation system), starting from its
   earliest-labelled neighbour. Given the first two vertices the whole order depends on the
   connectivity alone.
4. The start (first vertex and first neighbour) is chosen by connectivity too: colour refinement
   (vertex degree, then the multiset of the neighbours' colours, 1-WL) picks the rarest vertex
   class (e.g. the pole of a surface of revolution); every start edge out of that class is tried
   with, as first neighbour, one of each colour (the one with the smallest coordinates), and the
   start whose face lines (step 5) are smallest wins; of starts with equal face lines (e.g. the
   sides of a vase are all alike), the one with the smallest coordinates (first vertex, then
   first neighbour). Parts with many candidates try only the first
   ``max(8, START_BUDGET // faces)`` of them in coordinate order, so encoding stays fast.
5. Faces of a part: labels rotated so the earliest vertex comes first (winding kept), sorted
   by their sorted labels (the LLaMA-Mesh rules, applied within the part), written after all the
   part's vertices as ``-(n - label)`` for a part of ``n`` vertices.
6. Parts ordered by their vertex count, then their face lines (so parts of one shape, e.g. the
   legs of a table, come together and a mesh's face lines depend only on which parts it has),
   then their bounding box's minimum corner ``(x, y, z)``, then maximum corner, then their
   vertex coordinates.

Needs numpy alone. Design and measurements: issue 19, ``docs/format.md`` ("The parts format").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Face-label work allowed per part when trying start edges (candidates x faces, see step 4).
START_BUDGET = 4_000


class Part(NamedTuple):
    """One part (faces joined through edges of exactly two faces) in canonical order.

    ``vertices`` : global vertex ids, in the order they are written (a vertex where parts meet
    is in each of them);
    ``faces`` : triangles as part-local labels (0 = first written vertex), rotated and sorted
    as written.
    """

    vertices: list[int]
    faces: list[tuple[int, int, int]]


def _pieces(faces: np.ndarray) -> list[np.ndarray]:
    """Split faces into pieces: faces joined through edges that exactly two faces share.

    faces : (m, 3) int64 -> list of face-row index arrays, each sorted, in order of first row.
    An edge of three or more faces (two closed parts welded along an edge) and a vertex alone
    (parts touching at a corner) join nothing, so each such part stays a piece of its own.
    """
    m = len(faces)
    parent = list(range(m))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges: dict[tuple[int, int], list[int]] = {}
    for r, (a, b, c) in enumerate(faces.tolist()):
        for x, y in ((a, b), (b, c), (c, a)):
            edges.setdefault((x, y) if x < y else (y, x), []).append(r)
    for rows in edges.values():
        if len(rows) == 2:
            ra, rb = find(rows[0]), find(rows[1])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(r) for r in range(m)], dtype=np.int64)
    order = np.argsort(roots, kind="stable")
    splits = np.flatnonzero(np.diff(roots[order])) + 1
    return np.split(order, splits)


class _Fans:
    """Adjacency of one part: neighbours, and around each vertex u the faces' winding as maps
    ``succ[u][a] = [b, ...]`` and ``pred[u][b] = [a, ...]`` for every face (u, a, b)."""

    def __init__(self, faces: list[tuple[int, int, int]]):
        self.nbrs: dict[int, set[int]] = {}
        self.succ: dict[int, dict[int, list[int]]] = {}
        self.pred: dict[int, dict[int, list[int]]] = {}
        for a, b, c in faces:
            for u, x, y in ((a, b, c), (b, c, a), (c, a, b)):
                self.nbrs.setdefault(u, set()).update((x, y))
                self.succ.setdefault(u, {}).setdefault(x, []).append(y)
                self.pred.setdefault(u, {}).setdefault(y, []).append(x)


def _label(s: int, t: int, fans: _Fans, rank: np.ndarray, bound: list | None = None):
    """The part's vertices in walk order from the start edge (s, t) (step 3 of the docstring),
    and its face lines: ``(order, faces)``, or None as soon as the face lines come out larger
    than ``bound`` (the best start's so far).

    Vertices are processed in label order. Around vertex u, a walk starts at its
    earliest-labelled neighbour and follows the faces' winding (u, cur, next) forward, then
    backward from the start; neighbours the walks do not reach (non-manifold fans) start new
    walks. Where several faces continue a walk (non-manifold edges), the earliest-labelled
    neighbour wins, else the one with the smallest coordinates (``rank``). Unlabelled neighbours
    get the next labels in the order the walks meet them. Once u's neighbours have labels, the
    faces whose smallest label is u's are known: they are the next face lines (step 5), so a
    start that loses is dropped early.
    """
    label = {s: 0, t: 1}
    order = [s, t]
    faces: list[tuple[int, int, int]] = []
    i = 0
    while i < len(order):
        u = order[i]
        nb = fans.nbrs[u]
        if not all(x in label for x in nb):
            seen: set[int] = set()
            fresh: list[int] = []
            while True:
                rest = [x for x in nb if x not in seen]
                if all(x in label for x in rest):
                    break
                known = [x for x in rest if x in label]
                start = (
                    min(known, key=label.__getitem__) if known else min(rest, key=rank.__getitem__)
                )
                seen.add(start)
                if start not in label:
                    fresh.append(start)
                for step in (fans.succ[u], fans.pred[u]):
                    cur = start
                    while True:
                        cands = [y for y in step.get(cur, ()) if y not in seen]
                        if not cands:
                            break
                        cur = min(
                            cands, key=lambda y: (0, label[y]) if y in label else (1, rank[y])
                        )
                        seen.add(cur)
                        if cur not in label:
                            fresh.append(cur)
            for x in fresh:
                label[x] = len(order)
                order.append(x)
        seg = sorted(
            (
                (i, label[x], label[y])
                for x, ys in fans.succ[u].items()
                for y in ys
                if label[x] > i and label[y] > i
            ),
            key=lambda f: (min(f[1], f[2]), max(f[1], f[2])),
        )
        if bound is not None:
            n = len(faces)
            theirs = bound[n : n + len(seg)]
            if seg != theirs:  # the same part: both codes have its number of faces
                if seg > theirs:
                    return None
                bound = None  # smaller: no more comparisons needed
        faces += seg
        i += 1
    return order, faces


def _local_faces(order: list[int], faces: list[tuple[int, int, int]]) -> list[tuple[int, ...]]:
    """Faces in part labels, rotated to start at their smallest label, sorted by sorted labels."""
    lab = {v: i for i, v in enumerate(order)}
    out = []
    for a, b, c in faces:
        x, y, z = lab[a], lab[b], lab[c]
        if y < x and y < z:
            x, y, z = y, z, x
        elif z < x and z < y:
            x, y, z = z, x, y
        out.append((x, y, z))
    out.sort(key=lambda f: (f[0], min(f[1], f[2]), max(f[1], f[2])))
    return out


def _refine(fans: _Fans, verts: list[int]) -> dict[int, int]:
    """Colour refinement (1-WL): canonical integer colours from degrees and neighbour colours."""
    color = {v: len(fans.nbrs[v]) for v in verts}
    classes = len(set(color.values()))
    for _ in range(len(verts)):
        sig = {v: (color[v], tuple(sorted(color[x] for x in fans.nbrs[v]))) for v in verts}
        ranks = {s: r for r, s in enumerate(sorted(set(sig.values())))}
        color = {v: ranks[sig[v]] for v in verts}
        if len(ranks) == classes:
            break
        classes = len(ranks)
    return color


def _order_part(
    faces: list[tuple[int, int, int]], rank: np.ndarray, start: str, start_rank: np.ndarray
) -> Part:
    fans = _Fans(faces)
    verts = list(fans.nbrs)
    if start in ("coord", "ycoord"):  # ablations: smallest vertex, its smallest neighbour
        s = min(verts, key=start_rank.__getitem__)
        t = min(fans.nbrs[s], key=start_rank.__getitem__)
        cands = [(s, t)]
    else:
        color = _refine(fans, verts)
        size: dict[int, int] = {}
        for c in color.values():
            size[c] = size.get(c, 0) + 1
        best_class = min(size, key=lambda c: (size[c], c))
        starts = sorted((v for v in verts if color[v] == best_class), key=rank.__getitem__)
        cands = []
        for s in starts:  # one first neighbour per colour: the one with the smallest coordinates
            firsts: dict[int, int] = {}
            for t in sorted(fans.nbrs[s], key=rank.__getitem__):
                firsts.setdefault(color[t], t)
            cands += [(s, firsts[c]) for c in sorted(firsts)]
        cands = cands[: max(8, START_BUDGET // len(faces))]
    best = None
    for s, t in cands:
        got = _label(s, t, fans, rank, None if best is None else best[1])
        if got is not None and (best is None or got[1] < best[1]):
            best = got
    assert best is not None
    return Part(*best)


def _coord_rank(q: np.ndarray) -> np.ndarray:
    """Rank of each vertex by (x, y, z): its position in LLaMA-Mesh order (rows are distinct)."""
    order = np.lexsort((q[:, 2], q[:, 1], q[:, 0]))
    rank = np.empty(len(q), dtype=np.int64)
    rank[order] = np.arange(len(q))
    return rank


def split_parts(
    quantized: np.ndarray,
    faces: np.ndarray,
    *,
    start: str = "topo",
    within: str = "walk",
    part_key: str = "topo",
) -> list[Part]:
    """The canonical parts of a mesh on the grid, in writing order (steps 2-6 of the docstring).

    quantized : (n, 3) int, distinct rows; faces : (m, 3) int, 0-based, no degenerate faces and no
    two faces on the same vertex set (what :func:`meshlm.codec.canonicalize` returns).
    Works on the coordinates as given (no re-normalization). Vertices no face uses are left out.

    ``start``, ``within`` and ``part_key`` select the rules of the shipped format
    (``"topo"``, ``"walk"``, ``"topo"``); the other values exist for the ablations of
    ``benchmarks/formats.py``: ``start`` ``"coord"`` (smallest vertex by (x, y, z) and its
    smallest neighbour) or ``"ycoord"`` (by (y, x, z)); ``within`` ``"sort"`` (vertices sorted
    by (x, y, z) within the part, no walk); ``part_key`` ``"xyz"`` / ``"yxz"`` (parts by their
    bounding box's minimum corner first, not by their face lines).
    """
    q = np.asarray(quantized, dtype=np.int64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    rank = _coord_rank(q)
    start_rank = _coord_rank(q[:, [1, 0, 2]]) if start == "ycoord" else rank
    parts = []
    for rows in _pieces(f):
        tris = [tuple(t) for t in f[rows].tolist()]
        if within == "sort":
            order = sorted({v for t in tris for v in t}, key=rank.__getitem__)
            part = Part(order, _local_faces(order, tris))
        else:
            part = _order_part(tris, rank, start, start_rank)
        parts.append(part)
    axes = [1, 0, 2] if part_key == "yxz" else [0, 1, 2]

    def key(p: Part):
        pq = q[p.vertices][:, axes]
        where = (tuple(pq.min(axis=0).tolist()), tuple(pq.max(axis=0).tolist()))
        shape = (len(p.vertices), p.faces)
        rest = [int(rank[v]) for v in p.vertices]
        return (shape, where, rest) if part_key == "topo" else (where, shape, rest)

    parts.sort(key=key)
    return parts
