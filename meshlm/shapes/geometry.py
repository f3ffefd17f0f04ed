"""Small closed parts as plain numpy arrays, built Y-up, and the helpers that place them.

A *part* is a pair ``(vertices, faces)``: ``vertices`` is ``(n, 3) float64``, ``faces`` is
``(m, 3) int64`` with 0-based indices. Every builder here returns a **closed, outward-wound**
part (each edge shared by exactly two faces, positive volume), so a concatenation of parts is
watertight in trimesh's sense even when the parts overlap. Building arrays directly (instead of
one ``trimesh.Trimesh`` per part) keeps a whole shape at about a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from meshlm.errors import MeshlmError

Part = tuple[np.ndarray, np.ndarray]

#: Largest number of sides a revolved part may have (None = as the family drew it); see
#: :func:`segment_cap`.
_SEGMENT_CAP: ContextVar[int | None] = ContextVar("meshlm_segment_cap", default=None)


def check_max_segments(max_segments: int | None) -> None:
    """Raise MeshlmError unless ``max_segments`` is None or at least 6 (see :func:`segment_cap`)."""
    if max_segments is not None and max_segments < 6:
        raise MeshlmError(f"max_segments must be >= 6, got {max_segments}")


@contextmanager
def segment_cap(max_segments: int | None) -> Iterator[None]:
    """Within the block, every revolved part (lathe, cylinder, cone, sphere, and the segment
    counts families draw) has at most ``max_segments`` sides: a lower-poly corpus with the same
    families and captions. ``None`` leaves shapes as drawn. At least 6, so that what captions
    call square or hexagonal keeps its 4 or 6 sides."""
    check_max_segments(max_segments)
    token = _SEGMENT_CAP.set(max_segments)
    try:
        yield
    finally:
        _SEGMENT_CAP.reset(token)


def capped(segments: int) -> int:
    """``segments`` limited by the active :func:`segment_cap` (unchanged outside one)."""
    cap = _SEGMENT_CAP.get()
    return segments if cap is None else min(segments, cap)


_BOX_FACES = np.array(
    [
        [0, 1, 2],
        [0, 2, 3],  # bottom (-y)
        [4, 6, 5],
        [4, 7, 6],  # top (+y)
        [0, 5, 1],
        [0, 4, 5],  # -z
        [1, 6, 2],
        [1, 5, 6],  # +x
        [2, 7, 3],
        [2, 6, 7],  # +z
        [3, 4, 0],
        [3, 7, 4],  # -x
    ],
    dtype=np.int64,
)


def box(size: Sequence[float], center: Sequence[float] = (0.0, 0.0, 0.0)) -> Part:
    """Axis-aligned box of ``size`` (sx, sy, sz) centred at ``center``: 8 vertices, 12 faces."""
    sx, sy, sz = (float(s) / 2 for s in size)
    v = np.array(
        [
            [-sx, -sy, -sz],
            [sx, -sy, -sz],
            [sx, -sy, sz],
            [-sx, -sy, sz],
            [-sx, sy, -sz],
            [sx, sy, -sz],
            [sx, sy, sz],
            [-sx, sy, sz],
        ]
    )
    return v + np.asarray(center, dtype=float), _BOX_FACES.copy()


def box_on(size: Sequence[float], x: float = 0.0, y0: float = 0.0, z: float = 0.0) -> Part:
    """Box of ``size`` whose bottom face lies at height ``y0``, centred on (x, z)."""
    return box(size, (x, y0 + size[1] / 2, z))


def _orient(part: Part) -> Part:
    """Flip the winding of a closed part whose signed volume is negative."""
    v, f = part
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0:
        f = f[:, ::-1].copy()
    return v, f


def lathe(
    profile: Sequence[tuple[float, float]],
    segments: int,
    phase: float = 0.0,
    loop: bool = False,
) -> Part:
    """Revolve a (radius, height) polyline about the Y axis into a closed solid.

    ``profile`` runs from the bottom pole to the top pole: its first and last points must have
    radius 0 (they become single pole vertices); the others must have radius > 0. With
    ``loop=True`` the profile is a closed loop of points all off the axis (a torus-like ring).
    ``segments`` (>= 3) is the number of sides; ``phase`` rotates them (radians), e.g. pi/4 with
    4 segments gives a square section aligned with the axes. Hollow vessels are one profile that
    goes up the outside and back down the inside, so they stay a single watertight solid.
    """
    prof = np.asarray(profile, dtype=float)
    segments = capped(segments)
    ang = phase + np.arange(segments) * (2 * np.pi / segments)
    cos, sin = np.cos(ang), np.sin(ang)
    ring_pts = prof if loop else prof[1:-1]
    k = len(ring_pts)
    # ring vertices: index = 1 + i * segments + j  (i: profile point, j: angle)
    rv = np.empty((k, segments, 3))
    rv[:, :, 0] = ring_pts[:, :1] * cos
    rv[:, :, 1] = ring_pts[:, 1:2]
    rv[:, :, 2] = ring_pts[:, :1] * sin
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = []
    rows = k if loop else k - 1
    for i in range(rows):
        a = i * segments
        b = ((i + 1) % k) * segments
        faces.append(np.stack([a + j, b + j, b + jn], 1))
        faces.append(np.stack([a + j, b + jn, a + jn], 1))
    if loop:
        v = rv.reshape(-1, 3)
    else:
        bottom = np.array([[0.0, prof[0, 1], 0.0]])
        top = np.array([[0.0, prof[-1, 1], 0.0]])
        v = np.vstack([bottom, rv.reshape(-1, 3), top])
        faces = [f + 1 for f in faces]
        last = 1 + (k - 1) * segments
        faces.append(np.stack([np.zeros(segments, np.int64), 1 + j, 1 + jn], 1))
        faces.append(np.stack([np.full(segments, len(v) - 1), last + jn, last + j], 1))
    return _orient((v, np.vstack(faces).astype(np.int64)))


def cylinder(
    radius: float,
    height: float,
    segments: int,
    y0: float = 0.0,
    x: float = 0.0,
    z: float = 0.0,
    phase: float = 0.0,
) -> Part:
    """Upright cylinder (a prism when ``segments`` is small) standing on height ``y0``."""
    v, f = lathe([(0, 0), (radius, 0), (radius, height), (0, height)], segments, phase)
    return v + [x, y0, z], f


def frustum(
    r0: float,
    r1: float,
    height: float,
    segments: int,
    y0: float = 0.0,
    x: float = 0.0,
    z: float = 0.0,
    phase: float = 0.0,
) -> Part:
    """Upright truncated cone from radius ``r0`` at the bottom to ``r1`` (may be 0) on top."""
    prof = [(0, 0), (r0, 0), (r1, height), (0, height)]
    if r1 <= 0:
        prof = [(0, 0), (r0, 0), (0, height)]
    v, f = lathe(prof, segments, phase)
    return v + [x, y0, z], f


def sphere(
    radius: float,
    segments: int,
    rings: int,
    center: Sequence[float] = (0, 0, 0),
    squash: float = 1.0,
) -> Part:
    """UV sphere with ``segments`` sides and ``rings`` bands; ``squash`` scales its height."""
    t = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    prof = np.stack([radius * np.cos(t), radius * squash * np.sin(t)], 1)
    prof[0, 0] = prof[-1, 0] = 0.0
    v, f = lathe(prof, segments)
    return v + np.asarray(center, dtype=float), f


def tube(path: Sequence[Sequence[float]], radius: float, sides: int = 4) -> Part:
    """Closed tube of polygonal cross-section swept along a 3D polyline (capped at both ends).

    Used for handles and bent rods. Cross-sections are placed perpendicular to the averaged
    direction at each joint, which is good enough for gentle bends of low-poly parts.
    """
    p = np.asarray(path, dtype=float)
    n = len(p)
    d = np.diff(p, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    tang = np.vstack([d[:1], d[:-1] + d[1:], d[-1:]])
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tang[0] @ [0, 0, 1]) < 0.9 else np.array([1.0, 0, 0])
    ang = np.arange(sides) * 2 * np.pi / sides + np.pi / sides
    rings = []
    for t in tang:
        u = np.cross(t, ref)
        u /= np.linalg.norm(u)
        w = np.cross(t, u)
        rings.append(radius * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * w))
    v = (np.asarray(rings) + p[:, None, :]).reshape(-1, 3)
    j = np.arange(sides)
    jn = (j + 1) % sides
    faces = []
    for i in range(n - 1):
        a, b = i * sides, (i + 1) * sides
        faces += [np.stack([a + j, a + jn, b + jn], 1), np.stack([a + j, b + jn, b + j], 1)]
    cap0 = np.stack([np.zeros(sides - 2, np.int64), j[2:], j[1:-1]], 1)
    last = (n - 1) * sides
    cap1 = np.stack([np.full(sides - 2, last), last + j[1:-1], last + j[2:]], 1)
    return _orient((v, np.vstack(faces + [cap0, cap1]).astype(np.int64)))


def triangulate(poly: np.ndarray) -> np.ndarray:
    """Ear-clipping triangulation of a simple counter-clockwise polygon.

    ``poly`` is ``(n, 2)``; returns ``(n - 2, 3) int64`` indices, each triangle counter-clockwise.
    """
    idx = list(range(len(poly)))
    tris = []

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    guard = 0
    while len(idx) > 3 and guard < 10_000:
        guard += 1
        m = len(idx)
        for k in range(m):
            i0, i1, i2 = idx[k - 1], idx[k], idx[(k + 1) % m]
            a, b, c = poly[i0], poly[i1], poly[i2]
            if cross(a, b, c) <= 1e-12:
                continue  # reflex or flat corner: not an ear
            inside = False
            for o in idx:
                if o in (i0, i1, i2):
                    continue
                p = poly[o]
                if cross(a, b, p) >= 0 and cross(b, c, p) >= 0 and cross(c, a, p) >= 0:
                    inside = True
                    break
            if not inside:
                tris.append((i0, i1, i2))
                idx.pop(k)
                break
        else:  # numerically stuck: fall back to a fan of what is left
            break
    for k in range(1, len(idx) - 1):
        tris.append((idx[0], idx[k], idx[k + 1]))
    return np.asarray(tris, dtype=np.int64)


def extrude(poly: Sequence[Sequence[float]], depth: float, z: float = 0.0) -> Part:
    """Prism from a simple 2D polygon in the XY plane, extruded along Z and centred on ``z``.

    Orientation of ``poly`` does not matter. The side walls are quads split in two; the caps are
    ear-clipped, so a staircase, an arch or a house outline each become one watertight solid.
    """
    p = np.asarray(poly, dtype=float)
    area = 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
    if area < 0:
        p = p[::-1]
    n = len(p)
    cap = triangulate(p)
    front = np.column_stack([p, np.full(n, z + depth / 2)])
    back = np.column_stack([p, np.full(n, z - depth / 2)])
    v = np.vstack([front, back])
    j = np.arange(n)
    jn = (j + 1) % n
    faces = [cap, cap[:, ::-1] + n, np.stack([j, j + n, jn + n], 1), np.stack([j, jn + n, jn], 1)]
    return _orient((v, np.vstack(faces).astype(np.int64)))


def rotate(part: Part, axis: str, angle: float, about: Sequence[float] = (0, 0, 0)) -> Part:
    """Rotate a part by ``angle`` radians about world ``axis`` ('x', 'y', 'z') through ``about``."""
    v, f = part
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    o = np.asarray(about, dtype=float)
    w = v - o
    out = w.copy()
    out[:, i] = c * w[:, i] - s * w[:, j]
    out[:, j] = s * w[:, i] + c * w[:, j]
    return out + o, f


def move(part: Part, offset: Sequence[float]) -> Part:
    """Translate a part by ``offset``."""
    return part[0] + np.asarray(offset, dtype=float), part[1]


def scale(part: Part, factors: Sequence[float]) -> Part:
    """Scale a part about the origin by per-axis ``factors`` (all positive, so winding holds)."""
    return part[0] * np.asarray(factors, dtype=float), part[1]


def combine(parts: Sequence[Part]) -> Part:
    """Concatenate parts into one vertex/face array pair (no merging, no boolean)."""
    vs, fs, off = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return np.vstack(vs), np.vstack(fs)


def ground(part: Part) -> Part:
    """Centre the part on X and Z and lift it so its lowest point is at y = 0."""
    v, f = part
    lo, hi = v.min(0), v.max(0)
    return v - [(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2], f
