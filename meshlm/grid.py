"""The integer grid of the LLaMA-Mesh text: bins, normalization, quantization.

A coordinate axis is cut into ``bins`` levels (2..1024; LLaMA-Mesh uses 64). :func:`normalize`
centres a mesh's bounding box at the origin and scales its longest side to 1; :func:`quantize`
then floors ``q = floor((c + 0.5) * (bins - 1))`` to (n, 3) int64 bins in ``0..bins-1``, and
:func:`dequantize` maps bin ``q`` back to ``q / (bins - 1) - 0.5`` (float64). These are steps 1-2
of the canonical encoding (``meshlm.codec``'s docstring; ``../shared/docs/llama-mesh-facts.md``).
The compiled kernel (``_ccodec.c``) repeats the same arithmetic, ``QUANT_EPS`` included.

Needs numpy and :mod:`meshlm.errors` alone. The public names are re-exported by
:mod:`meshlm.codec`, where callers import them from; ``_pack`` (grid rows to sortable int64
keys) serves the canonical order and the strict decoder.
"""

from __future__ import annotations

import numpy as np

from meshlm.errors import MeshError

DEFAULT_BINS = 64
MIN_BINS, MAX_BINS = 2, 1024
#: Float slack, in bins, when flooring: coordinates this close below a bin boundary count as on it.
QUANT_EPS = 1e-4  # also in _ccodec.c


def check_bins(bins: int) -> int:
    if not isinstance(bins, int | np.integer) or not MIN_BINS <= int(bins) <= MAX_BINS:
        raise MeshError(f"bins must be an integer in {MIN_BINS}..{MAX_BINS}, got {bins!r}")
    return int(bins)


def normalize(vertices: np.ndarray) -> np.ndarray:
    """Centre the bounding box at the origin and scale its longest side to 1.

    vertices : (n, 3) float -> (n, 3) float64 in [-0.5, 0.5] on the longest axis.
    Raises MeshError if all points coincide.
    """
    v, lo, hi, extent = _box(np.asarray(vertices, dtype=np.float64))
    return (v - (lo + hi) * 0.5) / extent


def quantize(vertices: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Normalize (see :func:`normalize`) and floor to integer bins.

    vertices : (n, 3) float -> (n, 3) int64 in ``0..bins-1``.
    """
    bins = check_bins(bins)
    return _quantize(np.asarray(vertices, dtype=np.float64), bins)


def _box(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(v, lo, hi, extent)``: the bounding box of ``v`` (n, 3) float64, with ``v`` scaled by
    a power of two (exact: the normalized mesh is the same) where its span overflows or its
    extent is subnormal, so that ``(lo + hi) / 2`` and ``1 / extent`` are finite and exact
    enough. Raises MeshError if all points coincide."""
    lo, hi = v.min(axis=0), v.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        overflow = not (np.isfinite(hi - lo).all() and np.isfinite(lo + hi).all())
    if overflow and np.isfinite(v).all():
        # coordinates near the float64 limit: their span overflows
        v = v * 0.25
        lo, hi = lo * 0.25, hi * 0.25
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 0.0:
        raise MeshError("mesh has zero size (all vertices coincide)")
    if extent < 2.0**-500 and np.isfinite(v * 2.0**600).all():
        # a subnormal or tiny extent (5e-324): its inverse overflows and the centre of its box
        # rounds to one of its ends
        v, lo, hi, extent = v * 2.0**600, lo * 2.0**600, hi * 2.0**600, extent * 2.0**600
    if not np.isfinite(1.0 / extent):
        raise MeshError("mesh has zero size (all vertices coincide)")
    return v, lo, hi, extent


def _quantize(v: np.ndarray, bins: int) -> np.ndarray:
    v, lo, hi, extent = _box(v)
    top = bins - 1
    x = (v - (lo + hi) * 0.5) * (top / extent)
    x += 0.5 * top + QUANT_EPS
    # x lies in [QUANT_EPS - tiny, top + QUANT_EPS + tiny]: flooring lands in 0..top, no clip needed
    return np.floor(x, out=x).astype(np.int64)


def dequantize(quantized: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Map bins to coordinates: ``q / (bins - 1) - 0.5``. (n, 3) int -> (n, 3) float64."""
    bins = check_bins(bins)
    return np.asarray(quantized, dtype=np.float64) / (bins - 1) - 0.5


def _pack(t: np.ndarray, n: int) -> np.ndarray:
    """(m, 3) ints in 0..n-1 -> (m,) int64 keys ordered like the rows (lexicographically)."""
    return (t[:, 0] * n + t[:, 1]) * n + t[:, 2]
