"""Mesh metrics: topology, and geometry against a reference.

Pure functions: no files, no global state, no printing. Every random choice is drawn from
``numpy.random.default_rng(seed)``, so equal inputs and seeds give equal numbers.

Conventions shared by the geometry functions (see ``docs/metrics.md`` for the citations):

* **Normalization** (``normalize=True``, the default): each shape separately, as the codec does --
  the axis-aligned bounding box is centred at the origin and scaled uniformly so that its longest
  side is 1 (:func:`normalize_points`). Distances and thresholds are therefore fractions of the
  longest side. A mesh is normalized by the bounding box of the vertices its faces use, a point set
  by its own bounding box. ``normalize=False`` compares coordinates as given.
* **Sampling**: :func:`sample_surface`, area-weighted uniform points on the triangles, ``n_points``
  of them (2048 by default), with ``seed``. Both shapes are sampled with the same seed, so a
  mesh compared with the very same arrays gives exactly 0 / 1 (sampling noise cancels); the same
  surface triangulated differently gives a small sampling error instead.
* **Inputs**: a "shape" is a mesh -- a :class:`meshlm.codec.Mesh`, a ``trimesh.Trimesh`` or a
  ``(vertices, faces)`` tuple -- or a point set, a ``numpy.ndarray`` of shape ``(n, 3)``. Point sets
  are used as they are (no resampling).

Validity of model text is in :mod:`meshlm.eval.validity`, set-level metrics (MMD, COV, 1-NNA,
JSD) in :mod:`meshlm.eval.sets`, text metrics in :mod:`meshlm.eval.text_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from meshlm.codec import Mesh
from meshlm.codec import normalize as _codec_normalize
from meshlm.errors import MeshError
from meshlm.files import mesh_arrays

DEFAULT_POINTS = 2048
DEFAULT_THRESHOLD = 0.01


# --------------------------------------------------------------------------------------------
# Topology (index connectivity as given: vertices are not merged here; codec meshes already are)
# --------------------------------------------------------------------------------------------


def _faces(mesh_or_faces: Any) -> np.ndarray:
    if isinstance(mesh_or_faces, np.ndarray):
        faces = mesh_or_faces.astype(np.int64, copy=False)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must have shape (m, 3), got {faces.shape}")
        return faces
    return mesh_arrays(mesh_or_faces)[1]


def _edge_keys(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges (a->b, b->c, c->a) of every face as int64 keys: (directed, undirected)."""
    a = faces.reshape(-1)
    b = np.roll(faces, -1, axis=1).reshape(-1)
    n = int(faces.max()) + 1 if faces.size else 1
    directed = a * n + b
    undirected = np.minimum(a, b) * n + np.maximum(a, b)
    return directed, undirected


def edge_face_counts(mesh_or_faces: Any) -> np.ndarray:
    """How many faces use each distinct undirected edge.

    mesh_or_faces : a mesh, or faces ``(m, 3) int`` -> ``(e,) int64``, one count per edge, in
    edge-key order. Empty for a mesh without faces.
    """
    faces = _faces(mesh_or_faces)
    if not len(faces):
        return np.zeros(0, dtype=np.int64)
    _, undirected = _edge_keys(faces)
    return np.unique(undirected, return_counts=True)[1]


def is_edge_manifold(mesh_or_faces: Any) -> bool:
    """True when every undirected edge belongs to at most 2 faces (no 'fins' of 3+ faces)."""
    counts = edge_face_counts(mesh_or_faces)
    return bool(np.all(counts <= 2))


def is_watertight(mesh_or_faces: Any) -> bool:
    """True when every undirected edge belongs to exactly 2 faces (closed, no boundary).

    Orientation is not checked here (trimesh's ``is_watertight`` has the same meaning); see
    :func:`is_consistently_oriented`. A mesh without faces is not watertight.
    """
    counts = edge_face_counts(mesh_or_faces)
    return bool(len(counts)) and bool(np.all(counts == 2))


def is_consistently_oriented(mesh_or_faces: Any) -> bool:
    """True when no directed edge occurs twice: any two faces sharing an edge traverse it in
    opposite directions, so neighbouring windings agree (trimesh's ``is_winding_consistent`` on
    edge-manifold meshes). Combined with :func:`is_watertight`: a closed, orientable surface.
    """
    faces = _faces(mesh_or_faces)
    if not len(faces):
        return False
    directed, _ = _edge_keys(faces)
    return len(np.unique(directed)) == len(directed)


def face_areas(mesh: Any) -> np.ndarray:
    """Area of each face: ``(m,) float64``, in the mesh's own units.

    For a :class:`meshlm.codec.Mesh` the area is computed on the integer bins (exact, so a
    zero-area face is exactly 0.0) and scaled by ``1 / (bins - 1)**2`` to dequantized units.
    """
    if isinstance(mesh, Mesh):
        v = mesh.quantized.astype(np.int64)
        tri = v[mesh.faces]
        cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # exact in int64
        return 0.5 * np.sqrt((cross.astype(np.float64) ** 2).sum(axis=1)) / (mesh.bins - 1) ** 2
    v, f = mesh_arrays(mesh)
    tri = v[f]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def degenerate_faces(mesh: Any, rtol: float = 1e-12) -> np.ndarray:
    """Boolean mask ``(m,)`` of zero-area faces (repeated or collinear vertices).

    Codec meshes: exactly zero area on the integer grid. Float meshes: area at most
    ``rtol * L**2`` where ``L`` is the longest side of the bounding box.
    """
    areas = face_areas(mesh)
    if isinstance(mesh, Mesh):
        return areas == 0.0
    v, f = mesh_arrays(mesh)
    if not len(f):
        return np.zeros(0, dtype=bool)
    used = v[np.unique(f)]
    scale = float((used.max(axis=0) - used.min(axis=0)).max())
    return areas <= rtol * scale * scale


def _summary(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def topology_stats(meshes: Iterable[Any]) -> dict[str, Any]:
    """Topology of a collection of meshes.

    Returns a dict: ``n`` meshes; ``watertight_rate`` (every edge in exactly 2 faces),
    ``manifold_rate`` (edge-manifold: every edge in at most 2 faces), ``oriented_rate``
    (consistently oriented), ``closed_oriented_rate`` (watertight and consistently oriented) --
    fractions of meshes; ``degenerate_face_rate``: zero-area faces over all faces of all meshes
    (pooled); ``meshes_with_degenerate_rate``: fraction of meshes with at least one;
    ``vertices`` / ``faces``: ``{mean, median, min, max}`` of the per-mesh counts (vertices as
    stored, faces as stored). Raises ``ValueError`` for an empty collection.
    """
    meshes = list(meshes)
    if not meshes:
        raise ValueError("no meshes to score")
    watertight = manifold = oriented = closed = with_degenerate = 0
    degenerate = total_faces = 0
    nv, nf = [], []
    for mesh in meshes:
        v, f = mesh_arrays(mesh)
        nv.append(len(v))
        nf.append(len(f))
        w, o = is_watertight(f), is_consistently_oriented(f)
        watertight += w
        oriented += o
        closed += w and o
        manifold += is_edge_manifold(f)
        d = int(degenerate_faces(mesh).sum())
        degenerate += d
        with_degenerate += d > 0
        total_faces += len(f)
    n = len(meshes)
    return {
        "n": n,
        "watertight_rate": watertight / n,
        "manifold_rate": manifold / n,
        "oriented_rate": oriented / n,
        "closed_oriented_rate": closed / n,
        "degenerate_face_rate": degenerate / total_faces if total_faces else 0.0,
        "meshes_with_degenerate_rate": with_degenerate / n,
        "vertices": _summary(nv),
        "faces": _summary(nf),
    }


# --------------------------------------------------------------------------------------------
# Sampling and normalization
# --------------------------------------------------------------------------------------------


def normalize_points(points: np.ndarray) -> np.ndarray:
    """Centre the bounding box of ``points`` at the origin and scale its longest side to 1.

    points : (n, 3) float -> (n, 3) float64 inside [-0.5, 0.5]^3, spanning it on the longest
    axis (the codec's unit cube). Raises :class:`~meshlm.errors.MeshError` when all points coincide.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not len(p):
        raise MeshError("no points to normalize")
    return _codec_normalize(p)


def sample_surface(
    mesh: Any,
    n: int = DEFAULT_POINTS,
    seed: int = 0,
    normalize: bool = True,
    return_normals: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``n`` points drawn uniformly on the surface of ``mesh`` (area-weighted).

    A face is picked with probability proportional to its area (zero-area faces never), then a
    uniform point in it (barycentric coordinates folded back into the triangle). With
    ``normalize=True`` the vertices are first normalized (:func:`normalize_points` on the vertices
    the faces use). Deterministic: the same mesh arrays and ``seed`` give the same points.

    Returns points ``(n, 3) float64``; with ``return_normals`` also the unit normals ``(n, 3)`` of
    the faces the points lie on (right-hand rule on the face winding). Raises
    :class:`~meshlm.errors.MeshError` for a mesh with no faces or zero total area.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    v, f = mesh_arrays(mesh)
    if not len(f):
        raise MeshError("mesh has no faces to sample")
    if normalize:
        used = np.unique(f)
        v = v.copy()
        v[used] = normalize_points(v[used])
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    cdf = np.cumsum(double_area)
    total = float(cdf[-1])
    if not np.isfinite(total) or total <= 0.0:
        raise MeshError("mesh has zero surface area")
    rng = np.random.default_rng(seed)
    # side="right": a zero-area face has the same cdf value as the face before it, so is skipped
    idx = np.minimum(np.searchsorted(cdf, rng.random(n) * total, side="right"), len(f) - 1)
    u, w = rng.random((2, n))
    fold = u + w > 1.0
    u[fold], w[fold] = 1.0 - u[fold], 1.0 - w[fold]
    t = tri[idx]
    points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + w[:, None] * (t[:, 2] - t[:, 0])
    if not return_normals:
        return points
    return points, cross[idx] / double_area[idx, None]


def as_points(
    shape: Any, n: int = DEFAULT_POINTS, seed: int = 0, normalize: bool = True
) -> np.ndarray:
    """A shape as a point set ``(k, 3) float64``: an ``(k, 3)`` array is taken as it is
    (normalized if asked), anything else is a mesh and is sampled with :func:`sample_surface`."""
    if isinstance(shape, np.ndarray):
        p = np.asarray(shape, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3 or not len(p):
            raise ValueError(f"a point set must have shape (k, 3) with k >= 1, got {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("point set has non-finite coordinates")
        return normalize_points(p) if normalize else p
    return sample_surface(shape, n, seed, normalize=normalize)


# --------------------------------------------------------------------------------------------
# Geometry against a reference
# --------------------------------------------------------------------------------------------


def _nn(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each point of ``a`` to its nearest in ``b``, and that index."""
    from scipy.spatial import cKDTree

    return cKDTree(b).query(a, k=1)


def chamfer_distance(
    a: Any,
    b: Any,
    n_points: int = DEFAULT_POINTS,
    seed: int = 0,
    normalize: bool = True,
    squared: bool = True,
) -> float:
    """Chamfer distance between two shapes (meshes or point sets, see the module docstring).

    ``squared=True`` (default, the PointFlow convention)::

        CD(A, B) = mean_{a in A} min_{b in B} |a - b|^2  +  mean_{b in B} min_{a in A} |a - b|^2

    ``squared=False`` (the "L1" Chamfer): the same with plain Euclidean distances ``|a - b|``.
    Both directions are **summed** (not averaged); the value is symmetric in ``a``, ``b`` and 0
    for equal point sets. Meshes are sampled with ``n_points`` points and ``seed``; with
    ``normalize`` each shape is first put into the unit cube (longest side 1).
    """
    pa = as_points(a, n_points, seed, normalize)
    pb = as_points(b, n_points, seed, normalize)
    dab, dba = _nn(pa, pb)[0], _nn(pb, pa)[0]
    if squared:
        dab, dba = dab * dab, dba * dba
    return float(dab.mean() + dba.mean())


class FScore(NamedTuple):
    """F-score at a distance threshold: ``precision``, ``recall`` and ``f`` (all in [0, 1])."""

    precision: float
    recall: float
    f: float


def f_score(
    pred: Any,
    ref: Any,
    threshold: float = DEFAULT_THRESHOLD,
    n_points: int = DEFAULT_POINTS,
    seed: int = 0,
    normalize: bool = True,
) -> FScore:
    """F-score of ``pred`` against ``ref`` at distance ``threshold`` (Tatarchenko et al. 2019).

    precision = fraction of ``pred`` points within ``threshold`` (Euclidean, ``<=``) of the
    nearest ``ref`` point; recall = fraction of ``ref`` points within ``threshold`` of ``pred``;
    ``f = 2 P R / (P + R)`` (0 when both are 0). After normalization the threshold is a fraction
    of the longest side (0.01 = 1 %). Not symmetric: swapping the shapes swaps P and R (F stays).
    Note the default 2048 samples lie about 0.05 apart on a unit cube, so at 1 % F measures
    point-level agreement; raise ``n_points`` or ``threshold`` for a looser surface match.
    """
    pa = as_points(pred, n_points, seed, normalize)
    pb = as_points(ref, n_points, seed, normalize)
    precision = float((_nn(pa, pb)[0] <= threshold).mean())
    recall = float((_nn(pb, pa)[0] <= threshold).mean())
    denom = precision + recall
    return FScore(precision, recall, 2 * precision * recall / denom if denom > 0 else 0.0)


def normal_consistency(
    mesh_a: Any,
    mesh_b: Any,
    n_points: int = DEFAULT_POINTS,
    seed: int = 0,
    normalize: bool = True,
) -> float:
    """Normal consistency (Mescheder et al. 2019, Occupancy Networks).

    Sample ``n_points`` points with their face normals on each mesh; for each point of A take
    the nearest point of B and ``|cos|`` between their normals (absolute value: winding is
    ignored), and vice versa; the result is the mean of the two directional means, in [0, 1],
    symmetric, 1 for identical meshes. Meshes only (point sets carry no normals).
    """
    pa, na = sample_surface(mesh_a, n_points, seed, normalize, return_normals=True)
    pb, nb = sample_surface(mesh_b, n_points, seed, normalize, return_normals=True)
    ia, ib = _nn(pa, pb)[1], _nn(pb, pa)[1]
    cos_ab = np.abs((na * nb[ia]).sum(axis=1))
    cos_ba = np.abs((nb * na[ib]).sum(axis=1))
    return float(0.5 * (cos_ab.mean() + cos_ba.mean()))


def geometry_metrics(
    pred: Any,
    ref: Any,
    n_points: int = DEFAULT_POINTS,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    normalize: bool = True,
) -> dict[str, float]:
    """All reference metrics of one predicted mesh at once, sampling each mesh only once.

    Returns ``{"chamfer": squared CD, "chamfer_l1": non-squared CD, "precision", "recall",
    "f_score", "normal_consistency"}`` with the conventions of :func:`chamfer_distance`,
    :func:`f_score` and :func:`normal_consistency` (same ``n_points``, ``seed``, ``normalize``).
    """
    pa, na = sample_surface(pred, n_points, seed, normalize, return_normals=True)
    pb, nb = sample_surface(ref, n_points, seed, normalize, return_normals=True)
    dab, ia = _nn(pa, pb)
    dba, ib = _nn(pb, pa)
    precision = float((dab <= threshold).mean())
    recall = float((dba <= threshold).mean())
    denom = precision + recall
    nc = 0.5 * (np.abs((na * nb[ia]).sum(1)).mean() + np.abs((nb * na[ib]).sum(1)).mean())
    return {
        "chamfer": float((dab**2).mean() + (dba**2).mean()),
        "chamfer_l1": float(dab.mean() + dba.mean()),
        "precision": precision,
        "recall": recall,
        "f_score": 2 * precision * recall / denom if denom > 0 else 0.0,
        "normal_consistency": float(nc),
    }
