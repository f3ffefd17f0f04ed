"""Metrics between a set of generated shapes and a set of reference shapes (PointFlow).

Following Yang et al. 2019 (PointFlow), with ``D`` the squared Chamfer distance of
:func:`meshlm.eval.metrics.chamfer_distance`, ``S_g`` the generated and ``S_r`` the reference set:

* ``MMD(S_g, S_r) = mean_{Y in S_r} min_{X in S_g} D(X, Y)`` -- fidelity; lower is better.
* ``COV(S_g, S_r) = |{argmin_{Y in S_r} D(X, Y) : X in S_g}| / |S_r|`` -- diversity, in [0, 1].
* ``1-NNA``: accuracy of a leave-one-out 1-nearest-neighbour classifier telling ``S_g`` from
  ``S_r`` in ``S_g + S_r``; 0.5 is ideal (indistinguishable), 1.0 means fully separable.
* ``JSD``: Jensen-Shannon divergence between the occupancy distributions of the two sets on a
  28^3 grid over the unit cube (Achlioptas et al. 2018, as used by PointFlow).

MMD, COV and 1-NNA with one set against itself are degenerate (MMD 0, COV 1, 1-NNA 0 because
each shape's twin is its nearest neighbour); compare two independent samples instead.

Point sets are ``(n, 3)`` float arrays (sizes may differ between sets), normally sampled by
:func:`sample_sets` into the codec's unit cube ``[-0.5, 0.5]^3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from meshlm.eval.metrics import DEFAULT_POINTS, sample_surface

DEFAULT_RESOLUTION = 28

PointSets = Sequence[np.ndarray] | np.ndarray


def sample_sets(
    meshes: Iterable[Any], n: int = DEFAULT_POINTS, seed: int = 0, normalize: bool = True
) -> list[np.ndarray]:
    """Sample every mesh with :func:`~meshlm.eval.metrics.sample_surface` (same ``n``, ``seed``,
    ``normalize`` for all) -> list of ``(n, 3) float64`` point sets."""
    return [sample_surface(m, n, seed, normalize=normalize) for m in meshes]


def _sets(sets: PointSets, name: str) -> list[np.ndarray]:
    out = [np.asarray(s, dtype=np.float64) for s in sets]
    if not out:
        raise ValueError(f"{name}: empty set of point sets")
    for i, s in enumerate(out):
        if s.ndim != 2 or s.shape[1] != 3 or not len(s):
            raise ValueError(f"{name}[{i}]: a point set must have shape (k, 3), got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name}[{i}]: non-finite coordinates")
    return out


def _directed_means(
    trees: list, queries: list[np.ndarray], squared: bool, workers: int
) -> np.ndarray:
    """``out[i, j]`` = mean over points q of ``queries[j]`` of the distance to ``trees[i]``."""
    stacked = np.concatenate(queries)
    starts = np.cumsum([0] + [len(q) for q in queries[:-1]])
    sizes = np.array([len(q) for q in queries], dtype=np.float64)
    out = np.empty((len(trees), len(queries)))
    for i, tree in enumerate(trees):  # one query of all points per tree: few Python round trips
        d = tree.query(stacked, k=1, workers=workers)[0]
        if squared:
            d = d * d
        out[i] = np.add.reduceat(d, starts) / sizes
    return out


def pairwise_chamfer(
    gen: PointSets, ref: PointSets, squared: bool = True, workers: int = -1
) -> np.ndarray:
    """Chamfer distance between every generated and every reference point set.

    Returns ``D`` of shape ``(len(gen), len(ref))`` float64 with ``D[i, j]`` equal to
    ``chamfer_distance(gen[i], ref[j], normalize=False, squared=squared)``: the mean squared
    (or plain, ``squared=False``) nearest-neighbour distance both ways, summed. One
    ``scipy.spatial.cKDTree`` per set; ``workers`` is passed to ``cKDTree.query`` (-1: all
    cores). No normalization here: pass sets already in a common frame.
    """
    from scipy.spatial import cKDTree

    g, r = _sets(gen, "gen"), _sets(ref, "ref")
    g_trees = [cKDTree(s) for s in g]
    r_trees = [cKDTree(s) for s in r]
    ref_to_gen = _directed_means(g_trees, r, squared, workers)  # [i, j]: ref j -> gen i
    gen_to_ref = _directed_means(r_trees, g, squared, workers)  # [j, i]: gen i -> ref j
    return ref_to_gen + gen_to_ref.T


def _matrix(gen: PointSets | None, ref: PointSets | None, distances: np.ndarray | None):
    if distances is not None:
        d = np.asarray(distances, dtype=np.float64)
        if d.ndim != 2 or 0 in d.shape:
            raise ValueError(f"distances must be a non-empty (gen, ref) matrix, got {d.shape}")
        return d
    if gen is None or ref is None:
        raise ValueError("give gen and ref point sets, or distances")
    return pairwise_chamfer(gen, ref)


def mmd(
    gen: PointSets | None = None,
    ref: PointSets | None = None,
    distances: np.ndarray | None = None,
) -> float:
    """Minimum matching distance: for each reference shape, the Chamfer distance to its closest
    generated shape, averaged over the references. Lower is better; not symmetric.

    ``distances`` (optional): a precomputed ``(len(gen), len(ref))`` matrix from
    :func:`pairwise_chamfer`, used instead of ``gen``/``ref``.
    """
    d = _matrix(gen, ref, distances)
    return float(d.min(axis=0).mean())


def coverage(
    gen: PointSets | None = None,
    ref: PointSets | None = None,
    distances: np.ndarray | None = None,
) -> float:
    """Coverage: the fraction of reference shapes that are the nearest reference (by Chamfer) of
    at least one generated shape. In [0, 1], higher is better; not symmetric. Ties go to the
    lowest reference index. ``distances`` as in :func:`mmd`.
    """
    d = _matrix(gen, ref, distances)
    return len(np.unique(d.argmin(axis=1))) / d.shape[1]


def _loo_correct(same: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per row: expected correctness of a 1-NN vote when ``same`` (own class, self excluded
    as +inf) and ``other`` hold the distances; ties split by a uniformly random pick."""
    best = np.minimum(same.min(axis=1), other.min(axis=1))
    n_same = (same == best[:, None]).sum(axis=1)
    n_other = (other == best[:, None]).sum(axis=1)
    return n_same / (n_same + n_other)


def one_nna(
    gen: PointSets | None = None,
    ref: PointSets | None = None,
    d_gg: np.ndarray | None = None,
    d_gr: np.ndarray | None = None,
    d_rr: np.ndarray | None = None,
) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy (PointFlow's 1-NNA) on Chamfer distance.

    Each shape of ``gen + ref`` is classified by its nearest other shape; the result is the
    fraction classified correctly over all ``len(gen) + len(ref)`` shapes. 0.5 is ideal; 1.0 means
    every shape's nearest neighbour is from its own set (disjoint distributions); values below
    0.5 mean the sets are closer to each other than to themselves (e.g. copies: ``gen == ref``
    gives 0). When the nearest distance is shared by several shapes, the shape scores the
    fraction of them in its own set (a random tie-break's expectation). Symmetric in the two sets.
    Distance matrices ``d_gg``, ``d_gr``, ``d_rr`` may be given instead of the point sets.
    """
    if d_gg is None or d_gr is None or d_rr is None:
        if gen is None or ref is None:
            raise ValueError("give gen and ref point sets, or all three distance matrices")
        g, r = _sets(gen, "gen"), _sets(ref, "ref")
        d_gg, d_gr, d_rr = pairwise_chamfer(g, g), pairwise_chamfer(g, r), pairwise_chamfer(r, r)
    d_gg, d_gr, d_rr = (np.array(m, dtype=np.float64) for m in (d_gg, d_gr, d_rr))
    np.fill_diagonal(d_gg, np.inf)  # leave one out
    np.fill_diagonal(d_rr, np.inf)
    correct_g = _loo_correct(d_gg, d_gr)
    correct_r = _loo_correct(d_rr, d_gr.T)
    return float((correct_g.sum() + correct_r.sum()) / (len(correct_g) + len(correct_r)))


def occupancy_distribution(sets: PointSets, resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """Occupancy distribution of a set of point sets on a ``resolution``^3 grid.

    The grid tiles the codec's unit cube ``[-0.5, 0.5]^3`` (cell index ``floor((x + 0.5) * res)``;
    points outside are clipped to the border cells). Each point set adds 1 to every cell it
    occupies (occupancy, not point counts, so dense clouds do not weigh more); the counts are
    divided by their sum. Returns ``(resolution**3,) float64`` summing to 1.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be at least 1, got {resolution}")
    counts = np.zeros(resolution**3, dtype=np.float64)
    for s in _sets(sets, "sets"):
        cells = np.clip(np.floor((s + 0.5) * resolution).astype(np.int64), 0, resolution - 1)
        flat = (cells[:, 0] * resolution + cells[:, 1]) * resolution + cells[:, 2]
        counts[np.unique(flat)] += 1.0
    return counts / counts.sum()


def jensen_shannon(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon divergence ``KL(P||M)/2 + KL(Q||M)/2`` with ``M = (P + Q)/2``.

    ``p``, ``q``: non-negative arrays of one shape, each normalized to sum 1 here. Logarithm in
    ``base`` (2: the result is in [0, 1]; ``math.e``: in [0, ln 2]). Symmetric.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise ValueError("p and q must be non-negative arrays of one shape with positive sums")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return max(0.0, float(0.5 * (kl(p) + kl(q)) / np.log(base)))


def jsd_occupancy(
    gen: PointSets, ref: PointSets, resolution: int = DEFAULT_RESOLUTION, base: float = 2.0
) -> float:
    """JSD between the occupancy distributions (:func:`occupancy_distribution`) of the two sets.

    Base-2 logarithm by default: 0 for equal distributions, 1 for disjoint ones (``base=math.e``
    gives nats: at most ln 2). Symmetric. Expects points in ``[-0.5, 0.5]^3`` (normalized).
    """
    return jensen_shannon(
        occupancy_distribution(gen, resolution), occupancy_distribution(ref, resolution), base
    )


def set_metrics(
    gen: PointSets, ref: PointSets, resolution: int = DEFAULT_RESOLUTION
) -> dict[str, float]:
    """MMD, COV, 1-NNA (squared Chamfer) and JSD of a generated against a reference set at once,
    computing each distance matrix once: ``{"mmd", "cov", "one_nna", "jsd"}``."""
    g, r = _sets(gen, "gen"), _sets(ref, "ref")
    d_gr = pairwise_chamfer(g, r)
    return {
        "mmd": mmd(distances=d_gr),
        "cov": coverage(distances=d_gr),
        "one_nna": one_nna(d_gg=pairwise_chamfer(g, g), d_gr=d_gr, d_rr=pairwise_chamfer(r, r)),
        "jsd": jsd_occupancy(g, r, resolution),
    }
