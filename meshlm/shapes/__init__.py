"""Procedural, captioned low-poly objects: a synthetic corpus for mesh language models.

Each *family* (table, chair, mug, house, ...) draws its parameters from a seeded
``numpy.random.Generator``, builds the object from closed primitive parts (Y up, standing on
y = 0, at most 500 faces) and describes it in words taken from those same parameters, so a
three-legged round table is captioned as one.

Public API
----------
``FAMILIES``        dict name -> :class:`Family`
``list_families()`` family names, in a fixed order
``make_shape(family, rng_or_seed)`` -> :class:`ShapeSample`
``generate(n, seed)``               deterministic, family-balanced iterator of samples
``write_corpus(out_dir, n, seed)``  ``<uid>.obj`` files plus ``captions.csv`` (uid,caption,family)

Needs the ``mesh`` extra (trimesh); no booleans are used, so manifold3d is not required here.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from meshlm.errors import MeshError, MeshlmError, require
from meshlm.files import obj_text
from meshlm.shapes import furniture, household, items, outdoor, primitives
from meshlm.shapes.core import Family, ShapeSample
from meshlm.shapes.geometry import check_max_segments, ground, segment_cap

MAX_FACES = 500

FAMILIES: dict[str, Family] = {
    f.name: f
    for module in (primitives, furniture, household, outdoor, items)
    for f in module.FAMILIES
}

__all__ = [
    "FAMILIES",
    "Family",
    "ShapeSample",
    "generate",
    "list_families",
    "make_shape",
    "write_corpus",
    "MAX_FACES",
]


def list_families() -> list[str]:
    """Names of all families, in registration order (primitives first)."""
    return list(FAMILIES)


def check_families(names, error: type[MeshlmError] = MeshlmError) -> None:
    """Raise ``error`` naming every unknown family in ``names`` (one line)."""
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise error(f"unknown shape family: {', '.join(unknown)} (see meshlm shapes --list)")


def family_of_uid(uid: str) -> str:
    """The family in a sample uid made by :func:`generate` (``<family>_<seed>_<index>``)."""
    return uid.rsplit("_", 2)[0]


def _rng(rng_or_seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def make_shape(
    family: str,
    rng_or_seed: int | np.random.Generator | None = None,
    uid: str | None = None,
    max_segments: int | None = None,
) -> ShapeSample:
    """Build one sample of ``family``.

    ``rng_or_seed`` is a ``numpy.random.Generator`` (consumed) or an integer seed; the same seed
    gives the same sample. ``max_segments`` caps the sides of revolved parts (a lower-poly
    sample drawn from the same parameters; see :func:`~meshlm.shapes.geometry.segment_cap`).
    Without ``uid`` the uid is ``<family>_<seed>`` for an integer seed,
    else ``<family>_<10 hex digits of a hash of the geometry>``.

    Raises :class:`MeshlmError` for an unknown family and :class:`MeshError` if a build breaks
    its contract (more than 500 faces or empty), which would be a bug in the family.
    """
    try:
        fam = FAMILIES[family]
    except KeyError:
        raise MeshlmError(
            f"unknown shape family {family!r}; known: {', '.join(FAMILIES)}"
        ) from None
    trimesh = require("trimesh", "mesh", "shape generation")
    rng = _rng(rng_or_seed)
    with segment_cap(max_segments):
        part, params = fam.build(rng)
    v, f = ground(part)
    if not 0 < len(f) <= MAX_FACES:
        raise MeshError(f"{family}: built {len(f)} faces (must be 1..{MAX_FACES})")
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False)
    caption = fam.describe(params, rng)
    if uid is None:
        if isinstance(rng_or_seed, int | np.integer):
            uid = f"{family}_{int(rng_or_seed)}"
        else:
            digest = hashlib.sha1(v.tobytes() + f.tobytes()).hexdigest()[:10]
            uid = f"{family}_{digest}"
    return ShapeSample(mesh=mesh, caption=caption, family=family, params=params, uid=uid)


def generate(
    n: int | None, seed: int = 0, families: list[str] | None = None, max_segments: int | None = None
) -> Iterator[ShapeSample]:
    """Yield ``n`` samples (forever if ``n`` is None), cycling through the families.

    Every block of ``len(families)`` consecutive samples holds each family exactly once, in an
    order shuffled per block. Sample ``i`` depends only on ``(seed, i)``, so a shorter run is a
    prefix of a longer one. uids are ``<family>_<seed>_<i:06d>``. ``max_segments``: as in
    :func:`make_shape`.
    """
    names = list(families) if families else list_families()
    check_families(names)
    if n is not None and n < 0:
        raise MeshlmError(f"n must be >= 0, got {n}")
    i = 0
    while n is None or i < n:
        block, pos = divmod(i, len(names))
        order = np.random.default_rng([seed, block, 1]).permutation(len(names))
        name = names[int(order[pos])]
        yield make_shape(
            name,
            np.random.default_rng([seed, i]),
            uid=f"{name}_{seed}_{i:06d}",
            max_segments=max_segments,
        )
        i += 1


def write_corpus(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    families: list[str] | None = None,
    progress: Callable[[ShapeSample], None] | None = None,
    max_segments: int | None = None,
) -> Path:
    """Write ``n`` samples of :func:`generate` to ``out_dir`` and return the captions path.

    Layout: ``out_dir/<uid>.obj`` (plain OBJ, ``v x y z`` floats at full precision then
    ``f a b c`` 1-based, Y up) and ``out_dir/captions.csv`` with header ``uid,caption,family``
    (Cap3D's layout plus the family). The same ``seed`` and ``n`` give byte-identical files.
    ``progress`` is called after each sample is written; ``max_segments`` as in :func:`generate`.
    """
    check_max_segments(max_segments)  # before any folder is made
    if families:
        check_families(families)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in generate(n, seed, families, max_segments):
        text = obj_text(sample.vertices, sample.faces)
        (out / f"{sample.uid}.obj").write_text(text, encoding="utf-8", newline="\n")
        rows.append((sample.uid, sample.caption, sample.family))
        if progress is not None:
            progress(sample)
    path = out / "captions.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["uid", "caption", "family"])
        writer.writerows(rows)
    return path
