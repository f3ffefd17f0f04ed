"""Polygons to triangles, keeping each polygon's winding (:func:`triangulate`).

Faces arrive as triangles, quads and n-gons ((m, k) int arrays or ragged index lists, 0-based).
A convex polygon becomes the fan around its first vertex -- what meshlm always did, so the
canonical text of a mesh of triangles and convex polygons never changed -- and a concave one is
ear-clipped on its best-fit plane (Eberly, "Triangulation by Ear Clipping", Geometric Tools
2002), so the triangles cover exactly the polygon. Returns (sum of k - 2, 3) int64.

Used by the codec's encoder and, as ``meshlm.codec.triangulate`` (re-exported there), by the
OBJ/OFF/PLY readers and :mod:`meshlm.files`. Needs numpy and :mod:`meshlm.errors` alone.
"""

from __future__ import annotations

import numpy as np

from meshlm.errors import MeshError


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
