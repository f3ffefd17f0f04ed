"""The LLaMA-Mesh text codec: triangle meshes <-> plain OBJ text with integer coordinates.

Needs numpy alone; when the optional compiled kernel ``meshlm._ccodec`` was built at install
time (a C compiler was present), encoding and strict decoding run through it -- it does the same
steps, and tests hold the two paths to identical output. ``MESHLM_PURE_NUMPY=1`` switches it
off. The canonical format (``../shared/docs/llama-mesh-facts.md``, confirmed on a real
output of the released model) is::

    v X Y Z      (X, Y, Z integers in 0..bins-1; all vertex lines first)
    f A B C      (1-based vertex indices of a triangle)

produced by :func:`encode` as follows:

1. centre the axis-aligned bounding box of the vertices used by faces at the origin and
   scale uniformly so that its longest side is 1;
2. quantize ``q = floor((c + 0.5) * (bins - 1))`` (a value within ``QUANT_EPS`` bins below
   an integer counts as that integer, so float32 storage in GLB/PLY/STL cannot move a bin;
   63 stays 63);
3. merge vertices that fall in the same cell, drop faces that become degenerate and duplicate
   faces (the same vertex set and winding), drop vertices no face uses -- and, if dropping faces
   shrank the bounding box, redo 1-3 on what is left, so that encoding is idempotent on its own
   output. A vertex set present with both windings (double-sided geometry, as glTF exporters
   write it) keeps one face, wound to agree with its neighbours and, for a piece that is all
   double-sided, to face outward (:func:`_orient_pieces`);
4. sort vertices ascending by (x, y, z) and renumber;
5. rotate each face cyclically so its smallest index comes first (winding kept);
6. sort faces ascending by the tuple of their sorted indices.

:func:`decode` reads canonical text back: it accepts only the canonical grammar and order and
raises :class:`~meshlm.errors.MeshFormatError` naming the line. Language-model replies are read
by :mod:`meshlm.lenient`, one layer up (``meshlm.decode(reply, strict=False)``): this module
imports nothing of meshlm but :mod:`meshlm.errors` and its own kernel (tests/test_layering.py).
Dequantization maps bin ``q`` to ``q / (bins - 1) - 0.5``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from meshlm.errors import MeshError, MeshFormatError

DEFAULT_BINS = 64
MIN_BINS, MAX_BINS = 2, 1024
#: Float slack, in bins, when flooring: coordinates this close below a bin boundary count as on it.
QUANT_EPS = 1e-4  # also in _ccodec.c

try:  # the optional compiled fast path (see the module docstring)
    from meshlm import _ccodec
except ImportError:  # pragma: no cover - depends on the install
    _ccodec = None
if os.environ.get("MESHLM_PURE_NUMPY") == "1":
    _ccodec = None
#: The kernel revision this module's numpy path matches (``REVISION`` in _ccodec.c); a build
#: left from an older source is not used, as its output could differ.
KERNEL_REVISION = 2
if _ccodec is not None and getattr(_ccodec, "REVISION", 1) != KERNEL_REVISION:
    _ccodec = None  # pragma: no cover - a stale build: reinstall (pip install -e .)


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass
class RepairReport:
    """What the lenient decoder changed or dropped to get a valid mesh.

    ``repairs`` and ``drops`` count events by reason (e.g. ``"quad triangulated"``,
    ``"face with out-of-range index"``); ``notes`` keeps the first few line-level details;
    ``truncated`` is True when the text ended inside a line (an unfinished reply);
    ``span`` is the (start, end) character range of the mesh in the source text.
    """

    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    span: tuple[int, int] = (0, 0)

    MAX_NOTES = 20

    def repair(self, reason: str, line: int | None = None, n: int = 1) -> None:
        self.repairs[reason] += n
        self._note(reason, line)

    def drop(self, reason: str, line: int | None = None, n: int = 1) -> None:
        self.drops[reason] += n
        self._note(f"dropped: {reason}", line)

    def _note(self, text: str, line: int | None) -> None:
        if len(self.notes) < self.MAX_NOTES:
            self.notes.append(f"line {line}: {text}" if line else text)

    @property
    def clean(self) -> bool:
        """True when nothing was repaired or dropped."""
        return not self.repairs and not self.drops and not self.truncated

    def summary(self) -> str:
        """One human line, e.g. ``'2 repairs (quad triangulated: 2); 1 drop (...)'``."""
        if self.clean:
            return "no repairs"
        parts = []
        for name, counter in (("repair", self.repairs), ("drop", self.drops)):
            total = sum(counter.values())
            if total:
                items = ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))
                parts.append(f"{total} {name}{'s' if total != 1 else ''} ({items})")
        if self.truncated:
            parts.append("text was cut off")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "repairs": dict(self.repairs),
            "drops": dict(self.drops),
            "truncated": self.truncated,
            "notes": list(self.notes),
        }


@dataclass
class Mesh:
    """A decoded mesh on the integer grid.

    Attributes
    ----------
    quantized : (n, 3) int64
        Vertex bins, each in ``0..bins-1``; columns are x, y (up), z.
    faces : (m, 3) int64
        Triangles as 0-based vertex indices.
    bins : int
        Grid resolution per axis.
    report : RepairReport
        Empty for strictly decoded or encoded meshes.
    """

    quantized: np.ndarray
    faces: np.ndarray
    bins: int = DEFAULT_BINS
    report: RepairReport = field(default_factory=RepairReport)

    @property
    def vertices(self) -> np.ndarray:
        """(n, 3) float64 vertex positions in the unit cube at the origin."""
        return dequantize(self.quantized, self.bins)

    def to_text(self) -> str:
        """This mesh as text, vertices and faces in their current order (no re-normalization)."""
        return format_text(self.quantized, self.faces)

    def encode(self) -> str:
        """The canonical encoding of this mesh (re-normalized, same bins)."""
        return encode(self.vertices, self.faces, bins=self.bins)

    def __repr__(self) -> str:
        return f"Mesh(vertices={len(self.quantized)}, faces={len(self.faces)}, bins={self.bins})"


# --------------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------------


def check_bins(bins: int) -> int:
    if not isinstance(bins, int | np.integer) or not MIN_BINS <= int(bins) <= MAX_BINS:
        raise MeshError(f"bins must be an integer in {MIN_BINS}..{MAX_BINS}, got {bins!r}")
    return int(bins)


def normalize(vertices: np.ndarray) -> np.ndarray:
    """Centre the bounding box at the origin and scale its longest side to 1.

    vertices : (n, 3) float -> (n, 3) float64 in [-0.5, 0.5] on the longest axis.
    Raises MeshError if all points coincide.
    """
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 0.0:
        raise MeshError("mesh has zero size (all vertices coincide)")
    return (v - (lo + hi) / 2.0) / extent


def quantize(vertices: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Normalize (see :func:`normalize`) and floor to integer bins.

    vertices : (n, 3) float -> (n, 3) int64 in ``0..bins-1``.
    """
    bins = check_bins(bins)
    return _quantize(np.asarray(vertices, dtype=np.float64), bins)


def _quantize(v: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = v.min(axis=0), v.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        overflow = not (np.isfinite(hi - lo).all() and np.isfinite(lo + hi).all())
    if overflow and np.isfinite(v).all():
        # coordinates near the float64 limit: their span overflows. Scaling by a power of two is
        # exact, so the bins are those of the same mesh at a smaller scale.
        v = v * 0.25
        lo, hi = lo * 0.25, hi * 0.25
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 0.0:
        raise MeshError("mesh has zero size (all vertices coincide)")
    top = bins - 1
    if not np.isfinite(top / extent) and np.isfinite(v * 2.0**600).all():
        # a subnormal extent (1e-313): its scale overflows. Scaling by a power of two is exact
        v, lo, hi, extent = v * 2.0**600, lo * 2.0**600, hi * 2.0**600, extent * 2.0**600
    if not np.isfinite(top / extent):
        raise MeshError("mesh has zero size (all vertices coincide)")
    x = (v - (lo + hi) * 0.5) * (top / extent)
    x += 0.5 * top + QUANT_EPS
    # x lies in [QUANT_EPS - tiny, top + QUANT_EPS + tiny]: flooring lands in 0..top, no clip needed
    return np.floor(x, out=x).astype(np.int64)


def dequantize(quantized: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Map bins to coordinates: ``q / (bins - 1) - 0.5``. (n, 3) int -> (n, 3) float64."""
    bins = check_bins(bins)
    return np.asarray(quantized, dtype=np.float64) / (bins - 1) - 0.5


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def triangulate(faces, vertices=None) -> np.ndarray:
    """Turn a face list into (m, 3) int64 triangles, keeping each polygon's winding.

    Parameters
    ----------
    faces : (m, k) int array (k >= 3) or a ragged sequence of index sequences
        0-based vertex indices of triangles, quads and n-gons.
    vertices : (n, 3) float, optional
        Positions. With them, a polygon that is not convex is triangulated by ear clipping so that
        the triangles cover exactly the polygon (a U-shaped 8-gon keeps its notch open).

    A triangle is kept as is. A convex polygon ``(a, b, c, d, ...)`` -- and every polygon when
    ``vertices`` is not given -- becomes the fan ``(a, b, c), (a, c, d), ...`` around its first
    vertex: exact for convex polygons, and what meshlm always did, so the canonical text of every
    mesh of triangles and convex polygons is unchanged. A polygon is convex when, on its best-fit
    plane (Newell's normal), it turns the same way at every corner and once around. The others
    are ear-clipped on that plane (:func:`_ear_clip`; Eberly, "Triangulation by Ear Clipping",
    Geometric Tools 2002); a polygon with ``k`` corners always gives ``k - 2`` triangles. Polygons
    with an index outside ``vertices`` are fanned (the caller reports the index).

    Returns (sum of k - 2, 3) int64, the triangles of each polygon in polygon order.
    Raises MeshError for a face with fewer than 3 indices.
    """
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        if faces.shape[1] < 3:
            raise MeshError(f"faces need at least 3 indices each, got shape {faces.shape}")
        groups = {faces.shape[1]: (np.arange(len(faces)), faces.astype(np.int64, copy=False))}
        sizes = np.full(len(faces), faces.shape[1], dtype=np.int64)
    else:
        polys = [[int(i) for i in poly] for poly in faces]
        for poly in polys:
            if len(poly) < 3:
                raise MeshError(f"a face needs at least 3 indices, got {poly}")
        sizes = np.array([len(p) for p in polys], dtype=np.int64)
        groups = {}
        for k in np.unique(sizes).tolist():
            rows = np.flatnonzero(sizes == k)
            groups[k] = (rows, np.array([polys[i] for i in rows], dtype=np.int64).reshape(-1, k))
    if len(groups) == 1 and 3 in groups:
        return groups[3][1]
    v = None if vertices is None else np.asarray(vertices, dtype=np.float64)
    start = np.concatenate(([0], np.cumsum(sizes - 2)))
    out = np.empty((int(start[-1]), 3), dtype=np.int64)
    for k, (rows, arr) in groups.items():
        tris = np.stack([arr[:, [0, i, i + 1]] for i in range(1, k - 1)], axis=1)
        if k > 3 and v is not None and v.ndim == 2 and v.shape[1:] == (3,) and len(arr):
            for j in np.flatnonzero(~_convex(arr, v)).tolist():
                tris[j] = _ear_clip(arr[j], v)
        out[start[rows][:, None] + np.arange(k - 2)] = tris
    return out


def _convex(polys: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(m, k) polygons -> (m,) bool: convex (or degenerate, or indexing outside ``v``), where
    the fan is exact or as good as any triangulation."""
    ok = (polys >= 0).all(axis=1) & (polys < len(v)).all(axis=1)
    result = np.ones(len(polys), dtype=bool)
    if not ok.any():
        return result
    p = v[polys[ok]]  # (m, k, 3)
    nxt = np.roll(p, -1, axis=1)
    normal = np.cross(p, nxt).sum(axis=1)  # Newell: twice the vector area
    size = np.linalg.norm(normal, axis=1)
    edges = nxt - p
    turn = np.cross(np.roll(edges, 1, axis=1), edges)  # at each corner
    sin = np.einsum("mkj,mj->mk", turn, normal)
    cos = np.einsum("mkj,mkj->mk", np.roll(edges, 1, axis=1), edges) * size[:, None]
    angle = np.arctan2(sin, cos)  # signed exterior angle at each corner
    lengths = np.linalg.norm(edges, axis=2)
    scale = np.roll(lengths, 1, axis=1) * lengths * size[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        bent = sin < -1e-9 * scale  # a corner that turns the other way
    once = np.abs(angle.sum(axis=1) - 2 * np.pi) < 1e-6  # not a star (turns twice around)
    flat = size <= 1e-12 * np.maximum(lengths.max(axis=1), 1e-300) ** 2
    result[ok] = flat | (~bent.any(axis=1) & once)
    return result


def _ear_clip(poly: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ear-clip one simple polygon ``poly`` (k,) on its best-fit plane -> (k - 2, 3) triangles
    with the polygon's winding. An ear is a convex corner whose triangle holds no other corner of
    what is left (corners at the same position as the ear's own do not count). Corners are tried
    in order from the last ear, so the result depends on the polygon alone. If no ear is left (a
    self-intersecting polygon), the sharpest convex corner -- or the first corner -- is cut."""
    p = v[poly]
    normal = np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0)
    n = normal / np.linalg.norm(normal)
    axis = np.eye(3)[int(np.argmin(np.abs(n)))]
    u = np.cross(n, axis)
    u /= np.linalg.norm(u)
    w = np.cross(n, u)  # (u, w, n) right-handed: the polygon runs counter-clockwise in (u, w)
    xy = np.stack((p @ u, p @ w), axis=1)
    eps = 1e-12 * float(np.ptp(xy, axis=0).max()) ** 2
    left = list(range(len(poly)))
    tris: list[tuple[int, int, int]] = []
    i = 0
    while len(left) > 3:
        m = len(left)
        best, best_cross = None, 0.0
        for step in range(m):
            j = (i + step) % m
            a, b, c = left[j - 1], left[j], left[(j + 1) % m]
            cross = _cross2(xy[a], xy[b], xy[c])
            if cross <= eps:
                continue  # reflex or flat corner
            if best is None or cross > best_cross:
                best, best_cross = j, cross
            if not _holds_a_corner(xy, left, a, b, c, eps):
                break
        else:
            j = best if best is not None else 0
        a, b, c = left[j - 1], left[j], left[(j + 1) % m]
        tris.append((a, b, c))
        del left[j]
        i = j % len(left)
    tris.append(tuple(left))
    return poly[np.asarray(tris, dtype=np.int64)]


def _cross2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))


def _holds_a_corner(xy: np.ndarray, left: list[int], a: int, b: int, c: int, eps: float) -> bool:
    """True when a remaining corner other than a, b, c lies in or on the triangle (a, b, c)."""
    others = [k for k in left if k not in (a, b, c)]
    pts = xy[others]
    corners = xy[[a, b, c]]
    same = (np.abs(pts[:, None, :] - corners[None]).max(axis=2) == 0).any(axis=1)
    pts = pts[~same]
    if not len(pts):
        return False
    d = []
    for s, t in ((a, b), (b, c), (c, a)):
        e = xy[t] - xy[s]
        d.append(e[0] * (pts[:, 1] - xy[s][1]) - e[1] * (pts[:, 0] - xy[s][0]))
    inside = (d[0] >= -eps) & (d[1] >= -eps) & (d[2] >= -eps)
    return bool(inside.any())


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


def _pack(t: np.ndarray, n: int) -> np.ndarray:
    """(m, 3) ints in 0..n-1 -> (m,) int64 keys ordered like the rows (lexicographically)."""
    return (t[:, 0] * n + t[:, 1]) * n + t[:, 2]


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


def canonicalize(vertices, faces, bins: int = DEFAULT_BINS) -> Mesh:
    """Quantize and order a mesh canonically (steps 1-6 of the module docstring).

    vertices : (n, 3) float; faces : (m, 3) int (or (m, k) / ragged polygons, triangulated by
    :func:`triangulate` with the vertices: fan if convex, ear clipping if not).
    Returns a :class:`Mesh` whose ``to_text()`` is the canonical text. Invariant to vertex order,
    face order, translation and uniform (positive) scale of the input.
    Raises MeshError for bad arrays, zero size, or a mesh that collapses to nothing at ``bins``.
    """
    bins = check_bins(bins)
    fast = _kernel_call("canonical", vertices, faces, bins)
    if fast is not None:
        q, f = (np.frombuffer(b, dtype=np.int64).reshape(-1, 3) for b in fast)
        return Mesh(quantized=q, faces=f, bins=bins)
    return _canonicalize_numpy(vertices, faces, bins)


def _kernel_call(name: str, vertices, faces, bins: int):
    """The compiled kernel's answer for plain (n, 3) / (m, 3) arrays, or None (no kernel, other
    input types, or an error: the numpy path then raises it with its message)."""
    if _ccodec is None or not isinstance(vertices, np.ndarray) or not isinstance(faces, np.ndarray):
        return None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        return None
    if vertices.dtype.kind not in "fiu" or faces.dtype.kind not in "iu":
        return None
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    out = getattr(_ccodec, name)(v, f, len(v), len(f), bins)
    return None if isinstance(out, int) else out


def _canonicalize_numpy(vertices, faces, bins: int) -> Mesh:
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
    return Mesh(quantized=q[first], faces=faces, bins=bins)


def format_text(quantized: np.ndarray, faces: np.ndarray) -> str:
    """Write ``v``/``f`` lines, ``\\n``-separated, no trailing newline; faces become 1-based."""
    q = np.asarray(quantized, dtype=np.int64)
    f = np.asarray(faces, dtype=np.int64)
    template = "v %d %d %d\n" * len(q) + "f %d %d %d\n" * len(f)
    values = np.concatenate((q.reshape(-1), f.reshape(-1) + 1)).tolist()
    return (template % tuple(values))[:-1]


def encode(vertices, faces, bins: int = DEFAULT_BINS) -> str:
    """Encode a triangle mesh as canonical LLaMA-Mesh text.

    Parameters
    ----------
    vertices : (n, 3) float
        Positions, Y up. Any translation and uniform scale (normalized away).
    faces : (m, 3) int, (m, k) int or a ragged list of polygons
        0-based vertex indices. Quads and n-gons are triangulated by :func:`triangulate`: convex
        ones as the fan around their first vertex, concave ones by ear clipping.
    bins : int
        Levels per axis, 2..1024 (LLaMA-Mesh: 64).

    Returns the text: ``v`` lines then ``f`` lines, single spaces, ``\\n``-separated, no trailing
    newline. Raises :class:`~meshlm.errors.MeshError` when the mesh cannot be encoded.
    """
    bins = check_bins(bins)
    fast = _kernel_call("encode", vertices, faces, bins)
    if fast is not None:
        return fast[0]
    # the kernel could not (other input types) or would not (bad input): numpy does it or says why
    return _canonicalize_numpy(vertices, faces, bins).to_text()


# --------------------------------------------------------------------------------------------
# Strict decoding
# --------------------------------------------------------------------------------------------

_STRICT_RE = re.compile(r"(?:v [0-9]+ [0-9]+ [0-9]+\n)+(?:f [0-9]+ [0-9]+ [0-9]+\n)+")
_VLINE = re.compile(r"v (0|[1-9]\d*) (0|[1-9]\d*) (0|[1-9]\d*)", re.ASCII)
_FLINE = re.compile(r"f ([1-9]\d*) ([1-9]\d*) ([1-9]\d*)", re.ASCII)
_LEADING_ZERO = re.compile(r" 0[0-9]")  # every number follows a space in a line that matched


def decode(
    text: str, strict: bool = True, bins: int = DEFAULT_BINS, source: str | None = None
) -> Mesh:
    """Decode canonical mesh text (strictly).

    ``text`` must be canonical-format text (optionally with surrounding
    whitespace): at least 3 vertex lines ``v X Y Z`` with integers in ``0..bins-1`` (no leading
    zeros), strictly increasing in (x, y, z) order, then at least one face line ``f A B C`` with
    1-based indices that exist, are distinct and start with the smallest, faces strictly
    increasing by their sorted index tuple. Unused vertices are allowed. Anything else raises
    :class:`~meshlm.errors.MeshFormatError` with the 1-based line number and the problem.

    ``strict`` must be True (kept for the signature ``meshlm.decode`` shares): model replies are
    read by :func:`meshlm.lenient.decode` / ``meshlm.decode(reply, strict=False)``, which this
    bottom layer does not import; ``strict=False`` here raises ``ValueError`` saying so.
    """
    if not strict:
        raise ValueError(
            "meshlm.codec.decode reads canonical text only; read a model reply with "
            "meshlm.decode(text, strict=False) (meshlm.lenient.reply_mesh)"
        )
    bins = check_bins(bins)
    if not isinstance(text, str):
        raise MeshFormatError(f"expected text, got {type(text).__name__}", source=source)
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())].count("\n")  # line offset of the first line
    if not body:
        raise MeshFormatError("empty text: no mesh", line=1 + lead, source=source)
    body += "\n"
    if _ccodec is not None:
        fast = _ccodec.decode(body, bins)
        if fast is not None:
            q, f = (np.frombuffer(b, dtype=np.int64).reshape(-1, 3) for b in fast)
            return Mesh(quantized=q, faces=f, bins=bins)
    if _STRICT_RE.fullmatch(body) and not _LEADING_ZERO.search(body):
        nums = np.fromstring(body.translate(_TO_SPACES), dtype=np.int64, sep=" ")
        nv = body.count("v")
        q = nums[: 3 * nv].reshape(-1, 3)
        f = nums[3 * nv :].reshape(-1, 3) - 1
        if _valid_arrays(q, f, bins):
            return Mesh(quantized=q, faces=f, bins=bins)
    _strict_line_by_line(body, bins, lead, source)  # raises with the line of the first problem
    raise MeshFormatError("not canonical mesh text", source=source)  # pragma: no cover


_TO_SPACES = str.maketrans("vf\n", "   ")


def _valid_arrays(q: np.ndarray, f: np.ndarray, bins: int) -> bool:
    """Vectorized check of the canonical constraints (the regex already checked the syntax)."""
    n = len(q)
    if n < 3 or q.max() >= bins:
        return False
    kv = _pack(q, bins)
    if (kv[1:] <= kv[:-1]).any():  # vertices strictly increasing in (x, y, z)
        return False
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    if a.min() < 0 or f.max() >= n or ((a >= b) | (a >= c) | (b == c)).any():
        return False
    lo = np.minimum(b, c)
    hi = b + c - lo
    if n < 1_600_000:  # sorted tuple (a, lo, hi) packs into one int64
        ks = (a * n + lo) * n + hi
        return not (ks[1:] <= ks[:-1]).any()  # faces strictly increasing by sorted tuple
    order = np.lexsort((hi, lo, a))
    s = np.stack((a, lo, hi), axis=1)
    dup = (s[1:] == s[:-1]).all(axis=1).any() if len(s) > 1 else False
    return bool(np.array_equal(order, np.arange(len(s))) and not dup)


def _strict_line_by_line(body: str, bins: int, lead: int, source: str | None) -> None:
    """Walk the text line by line and raise MeshFormatError at the first violation."""

    def err(msg: str, i: int) -> MeshFormatError:
        return MeshFormatError(msg, line=i + 1 + lead, source=source)

    verts: list[tuple[int, int, int]] = []
    prev_face: tuple[int, int, int] | None = None
    in_faces = False
    lines = body.split("\n")[:-1]
    for i, line in enumerate(lines):
        if line.startswith("v"):
            if in_faces:
                raise err("vertex line after face lines (all 'v' lines must come first)", i)
            m = _VLINE.fullmatch(line)
            if not m:
                raise err(
                    f"malformed vertex line {line[:60]!r} (expected 'v X Y Z' with integers)", i
                )
            xyz = tuple(int(g) for g in m.groups())
            if max(xyz) >= bins:
                raise err(f"coordinate {max(xyz)} out of range 0..{bins - 1}", i)
            if verts and xyz <= verts[-1]:
                what = "duplicate vertex" if xyz == verts[-1] else "vertices out of order"
                raise err(f"{what}: {xyz} after {verts[-1]} (vertices must strictly increase)", i)
            verts.append(xyz)
        elif line.startswith("f"):
            if not in_faces and len(verts) < 3:
                raise err(f"faces start after only {len(verts)} vertices (need at least 3)", i)
            in_faces = True
            m = _FLINE.fullmatch(line)
            if not m:
                raise err(f"malformed face line {line[:60]!r} (expected 'f A B C', 1-based)", i)
            a, b, c = (int(g) for g in m.groups())
            if max(a, b, c) > len(verts):
                raise err(f"face index {max(a, b, c)} out of range (only {len(verts)} vertices)", i)
            if len({a, b, c}) < 3:
                raise err(f"face repeats a vertex: {a} {b} {c}", i)
            if a != min(a, b, c):
                raise err(f"face does not start with its smallest index: {a} {b} {c}", i)
            key = tuple(sorted((a, b, c)))
            if prev_face is not None and key <= prev_face:
                what = "duplicate face" if key == prev_face else "faces out of order"
                raise err(
                    f"{what}: {a} {b} {c} (faces must strictly increase by sorted indices)", i
                )
            prev_face = key
        elif not line:
            raise err("empty line inside the mesh", i)
        else:
            raise err(f"not a vertex or face line: {line[:60]!r}", i)
    if not in_faces:
        raise err("no face lines", len(lines) - 1 if lines else 0)
