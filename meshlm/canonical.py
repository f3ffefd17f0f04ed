"""The canonical order of the LLaMA-Mesh encoding, in numpy (:func:`canonical_arrays`).

Steps 1-6 of ``meshlm.codec``'s docstring: quantize (:mod:`meshlm.grid`), merge vertices that
share a cell, drop degenerate and duplicate faces and unused vertices (normalizing again when the
bounding box shrank, so encoding is idempotent), sort vertices by (x, y, z), rotate each face
min-first and sort faces by their sorted indices. A vertex set present with both windings
(double-sided geometry, as glTF exporters write it) keeps one face, wound to agree with its
neighbours and, for a piece that is all double-sided, to face outward (:func:`_orient_pieces`).

Inputs: vertices (n, 3) float, faces (m, 3) / (m, k) int or ragged polygons (0-based).
Output: (k, 3) int64 grid coordinates and (f, 3) int64 faces into them.
:func:`meshlm.codec.canonicalize` wraps them in a :class:`~meshlm.codec.Mesh`, or asks the
compiled kernel (``_ccodec.c``), which does the same steps and must give the same output byte for
byte (tests/test_codec.py compares them). Needs numpy, :mod:`meshlm.errors`, :mod:`meshlm.grid`
and :mod:`meshlm.polygons` alone.
"""

from __future__ import annotations

import numpy as np

from meshlm.errors import MeshError
from meshlm.grid import _pack, _quantize
from meshlm.polygons import triangulate


def _check_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    try:
        v = np.asarray(vertices, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MeshError(f"vertices are not numeric: {exc}") from None
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"vertices must have shape (n, 3), got {v.shape}")
    if not np.isfinite(v).all():
        raise MeshError("vertices contain NaN or infinite coordinates")
    f = triangulate(faces, v)
    if len(f) == 0:
        raise MeshError("mesh has no faces")
    if f.min() < 0 or f.max() >= len(v):
        raise MeshError(f"face index out of range (have {len(v)} vertices, max index {f.max()})")
    return v, f


def _unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique keys, the index of each unique key's first occurrence, and the inverse."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    new = np.empty(len(ks), dtype=bool)
    new[:1] = True
    np.not_equal(ks[1:], ks[:-1], out=new[1:])
    inverse = np.empty(len(ks), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ks[new], order[new], inverse


def _canonical_faces(f: np.ndarray, n: int, q: np.ndarray | None = None) -> np.ndarray:
    """Rotate faces min-first, sort by sorted-index tuple, drop duplicates. ``f`` : (m, 3) int64
    cell indices without degenerate faces; ``q`` : (n, 3) int64 cell coordinates.

    Of two faces on the same vertex set with the same winding one is kept. A vertex set present
    with both windings (double-sided geometry) gets its orientation from :func:`_orient_pieces`;
    without ``q`` the lexicographically smallest winding is kept."""
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    b_first = (b < a) & (b < c)
    c_first = (c < a) & (c < b)
    r0 = np.where(b_first, b, np.where(c_first, c, a))
    r1 = np.where(b_first, c, np.where(c_first, a, b))
    r2 = np.where(b_first, a, np.where(c_first, b, c))
    lo = np.minimum(r1, r2)
    if n < 1_600_000:  # (sorted tuple, winding) packs into one int64 key
        k_sorted = (r0 * n + lo) * n + (r1 + r2 - lo)
        order = np.argsort(k_sorted * 2 + (r1 != lo), kind="stable")
        ks = k_sorted[order]
        same = ks[1:] == ks[:-1]
    else:
        hi = r1 + r2 - lo
        order = np.lexsort((r1, hi, lo, r0))
        s = np.stack((r0, lo, hi), axis=1)[order]
        same = np.all(s[1:] == s[:-1], axis=1)
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ~same
    idx = order[keep]
    out = np.stack((r0[idx], r1[idx], r2[idx]), axis=1)
    flipped = (r1 != lo)[order]
    both = same & (flipped[1:] != flipped[:-1])  # a set seen with both windings
    if q is None or not both.any():
        return out
    group = np.cumsum(keep) - 1
    two_sided = np.zeros(len(out), dtype=bool)
    two_sided[group[1:][both]] = True
    return _orient_pieces(out, two_sided, q)


def _orient_pieces(faces: np.ndarray, two_sided: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Choose the winding of double-sided faces (vertex sets present with both windings).

    ``faces`` : (m, 3) int64 canonical faces (min-first, sorted, one per vertex set);
    ``two_sided`` : (m,) bool; ``q`` : (n, 3) int64 coordinates. Returns ``faces`` with some
    double-sided faces turned over (``(a, b, c)`` -> ``(a, c, b)``, so the order is unchanged).

    Faces are linked when they share an edge. A double-sided face takes the winding that agrees
    with a neighbour whose winding is known (two faces agree when they run their shared edge in
    opposite directions), breadth first from the one-sided faces in canonical order. A piece of
    double-sided faces that touches no one-sided face is made consistent from its first face and
    then turned so that it faces outward: its signed volume about its centroid positive (for a
    closed piece that is its volume), else, for a flat piece, its area vector's largest component
    positive. Depends on the set of faces alone, not on their input order.
    """
    m = len(faces)
    edges: dict[tuple[int, int], list[int]] = {}
    rows = faces.tolist()
    for i, (a, b, c) in enumerate(rows):
        for s, t in ((a, b), (b, c), (c, a)):
            edges.setdefault((s, t) if s < t else (t, s), []).append(i)
    sign = np.zeros(m, dtype=np.int8)  # 0 = not decided, +1 keep, -1 turn over
    sign[~two_sided] = 1

    def neighbours(i: int):
        """(j, +1 if face j must keep its stored winding relative to face i, else -1)."""
        a, b, c = rows[i]
        for s, t in ((a, b), (b, c), (c, a)):
            key = (s, t) if s < t else (t, s)
            d_i = 1 if s < t else -1
            for j in edges[key]:
                if j != i:
                    x, y, z = rows[j]
                    d_j = 1 if (x, y) == key or (y, z) == key or (z, x) == key else -1
                    yield j, -d_i * d_j

    def spread(queue: list[int], members: list[int] | None) -> None:
        head = 0
        while head < len(queue):
            i = queue[head]
            head += 1
            for j, rel in neighbours(i):
                if sign[j] == 0:
                    sign[j] = sign[i] * rel
                    queue.append(j)
                    if members is not None:
                        members.append(j)

    spread(np.flatnonzero(~two_sided).tolist(), None)
    for seed in np.flatnonzero(sign == 0).tolist():
        if sign[seed] != 0:
            continue
        sign[seed] = 1
        piece = [seed]
        spread([seed], piece)
        sign[piece] *= _outward(faces[piece], sign[piece], q)
    out = faces.copy()
    turn = sign < 0
    out[turn, 1], out[turn, 2] = faces[turn, 2], faces[turn, 1]
    return out


def _outward(faces: np.ndarray, sign: np.ndarray, q: np.ndarray) -> int:
    """+1 if the piece ``faces`` wound as ``sign`` says faces outward, else -1 (see
    :func:`_orient_pieces`)."""
    f = faces.copy()
    f[sign < 0, 1], f[sign < 0, 2] = faces[sign < 0, 2], faces[sign < 0, 1]
    p = q[f].astype(np.float64)
    used = np.unique(f)
    centre = q[used].astype(np.float64).mean(axis=0)
    a, b, c = p[:, 0] - centre, p[:, 1] - centre, p[:, 2] - centre
    volume = float(np.einsum("ij,ij->", a, np.cross(b, c)))
    area = np.cross(b - a, c - a).sum(axis=0)
    scale = float(np.ptp(q[used], axis=0).max()) or 1.0
    if abs(volume) > 1e-9 * scale**3:
        return 1 if volume > 0 else -1
    k = int(np.argmax(np.abs(area)))
    return -1 if area[k] < 0 else 1


def canonical_arrays(vertices, faces, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-6 of ``meshlm.codec``'s docstring in numpy: vertices (n, 3) float and faces
    (polygons as :func:`~meshlm.polygons.triangulate` takes them) -> the canonical grid
    coordinates (k, 3) int64 and faces (m, 3) int64, 0-based. ``bins`` is already checked.
    Raises MeshError for bad arrays, zero size, or a mesh that collapses to nothing."""
    v, f = _check_arrays(vertices, faces)
    while True:
        used = np.zeros(len(v), dtype=bool)
        used[f.reshape(-1)] = True
        n_used = int(used.sum())
        q = _quantize(v[used] if n_used < len(v) else v, bins)
        cells, first, inverse = _unique(_pack(q, bins))  # lexicographic (x, y, z)
        if n_used < len(v):
            remap = np.zeros(len(v), dtype=np.int64)
            remap[used] = inverse
            inverse = remap
        cf = inverse[f]
        ok = (cf[:, 0] != cf[:, 1]) & (cf[:, 1] != cf[:, 2]) & (cf[:, 0] != cf[:, 2])
        if ok.all():
            break
        if not ok.any():
            raise MeshError(f"mesh collapses to nothing at {bins} bins (every face degenerate)")
        f, cf = f[ok], cf[ok]
        still = np.zeros(len(v), dtype=bool)
        still[f.reshape(-1)] = True
        if int(still.sum()) == n_used:
            break
        # some vertex lost all its faces: the bounding box may shrink, normalize again
    faces = _canonical_faces(cf, len(cells), q[first])
    return q[first], faces
