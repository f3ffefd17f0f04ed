"""Is a generated mesh new? Its Chamfer distance to the nearest training mesh, in grid steps.

**Distance.** For a generated mesh ``G`` and a training mesh ``T``: both are normalized by the
codec's normalization (:func:`meshlm.codec.normalize` via
:func:`meshlm.eval.metrics.as_points`: the bounding box of the vertices the faces use is centred
at the origin and scaled so that its longest side is 1), ``n_points`` points are sampled on each
surface with seed 0 (:func:`meshlm.eval.metrics.sample_surface`) and the distance is the mean
nearest-neighbour distance, averaged over the two directions::

    d(G, T) = ( mean_{g} min_{t} |g - t|  +  mean_{t} min_{g} |t - g| ) / 2

(:func:`meshlm.eval.metrics.chamfer_distance` with ``squared=False``, which sums the two
directions, halved), divided by the **quantization step** ``1 / (bins - 1)``: the codec maps bin
``q`` to ``q / (bins - 1) - 0.5``, so neighbouring bins are ``1 / (bins - 1)`` apart in that unit
cube (1/63 at 64 bins). A mesh whose every vertex moved by at most one bin is at most about one
step away; sampling with the same seed on both meshes keeps the noise of such near copies small
(measured 0.0-0.6 steps for one part moved by one bin, 2048 points), while two independent
samplings of one mesh are about 1 step apart (``sampling_noise_steps`` in the report: the median
over the generated meshes of ``d`` between their seed-0 and seed-1 samplings).

**Exact copies.** A generated mesh whose canonical LLaMA-Mesh text (re-encoded at the training
set's bins, so the text format it was written in does not matter) equals a training mesh's is an
exact copy: distance 0, no sampling.

**Search.** Every distinct training mesh is a candidate; a shortlist of the ``shortlist`` nearest
by the same distance on ``coarse_points`` points is re-measured at ``n_points``, and the
smallest of those is reported. The shortlist saves time; the distance reported is never below
the true nearest's and exceeds it only when the 256-point ranking leaves the nearest out of the
best ``shortlist`` (not measured; ``shortlist=len(train)`` searches them all).

**Training set.** The assistant meshes of a dataset's ``train.jsonl`` (``meshlm build-data``
output), read with the dataset's own text format and bins (its ``manifest.json``;
:func:`meshlm.meshtext.decode_strict`), duplicates merged.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from meshlm import modelfolder
from meshlm.codec import Mesh, canonicalize, encode
from meshlm.data.conversations import mesh_text
from meshlm.errors import MeshError, MeshFormatError, MeshlmError
from meshlm.eval.metrics import as_points, chamfer_distance
from meshlm.eval.runner import load_jsonl
from meshlm.files import load_mesh
from meshlm.infer.named import named_models
from meshlm.meshtext import check, decode_strict
from meshlm.modelfolder import dataset_format
from meshlm.shapes import family_of_uid


class TrainingSet(NamedTuple):
    """Distinct training meshes: ``meshes`` (canonical at ``bins``), ``keys`` (their canonical
    LLaMA-Mesh text), ``families`` (``None`` where the row's source names none), ``copies``
    (rows that held each mesh), ``bins``, ``rows`` (assistant meshes read) and ``skipped``
    (assistant meshes that failed the dataset format's strict decoder)."""

    meshes: list[Mesh]
    keys: list[str]
    families: list[str | None]
    copies: list[int]
    bins: int
    rows: int
    skipped: int


def mesh_key(mesh: Mesh, bins: int) -> str:
    """The canonical LLaMA-Mesh text of ``mesh`` at ``bins``: equal for equal meshes on the grid,
    whatever text format, vertex or face order they came in."""
    return encode(mesh.vertices, mesh.faces, bins=bins)


def training_set(
    dataset: Mesh | list[Mesh] | str | Path, bins: int | None = None, families=None
) -> TrainingSet:
    """Read a training set: a dataset folder (its ``train.jsonl``), a ``train.jsonl`` file, or
    meshes in memory (``families`` optional, one per mesh). Raises MeshlmError for a missing file
    or a line that is not JSON, naming the file and line."""

    if isinstance(dataset, list):
        fams = list(families) if families is not None else [None] * len(dataset)
        return _dedupe(list(zip(dataset, fams, strict=True)), bins or dataset[0].bins, 0)
    path = Path(dataset)
    folder, file = (path, path / "train.jsonl") if path.is_dir() else (path.parent, path)
    if not file.is_file():
        raise MeshlmError(f"{file}: no such file (a build-data dataset's train.jsonl)")
    fmt = dataset_format(folder)

    check(fmt.name)  # an unknown format: one line, before any row is read
    found, skipped = [], 0
    for row in load_jsonl(file):
        src = str(row.get("source", ""))
        fam = family_of_uid(src.split(":", 1)[1]) if src.startswith("procedural:") else None
        for msg in row.get("messages", []):
            text = (
                mesh_text(str(msg.get("content", ""))) if msg.get("role") == "assistant" else None
            )
            if text is None:
                continue
            try:
                found.append((decode_strict(text, fmt.name, fmt.bins), fam))
            except MeshFormatError:
                skipped += 1
    if not found:
        raise MeshlmError(f"{file}: no assistant meshes")
    return _dedupe(found, bins or fmt.bins, skipped)


def _dedupe(found: list[tuple[Mesh, str | None]], bins: int, skipped: int) -> TrainingSet:
    index: dict[str, int] = {}
    meshes, keys, fams, copies = [], [], [], []
    for mesh, fam in found:
        key = mesh_key(mesh, bins)
        if key in index:
            copies[index[key]] += 1
            continue
        index[key] = len(keys)
        meshes.append(canonicalize(mesh.vertices, mesh.faces, bins=bins))
        keys.append(key)
        fams.append(fam)
        copies.append(1)
    return TrainingSet(meshes, keys, fams, copies, bins, len(found), skipped)


def distance_steps(a, b, bins: int, n_points: int = 2048) -> float:
    """``d(a, b)`` of the module docstring in quantization steps; ``a``, ``b``: meshes, or point
    sets already normalized and sampled (``(k, 3)`` arrays, used as they are)."""
    pa = a if isinstance(a, np.ndarray) else as_points(a, n_points, seed=0)
    pb = b if isinstance(b, np.ndarray) else as_points(b, n_points, seed=0)
    return chamfer_distance(pa, pb, normalize=False, squared=False) / 2 * (bins - 1)


class Nearest(NamedTuple):
    """The nearest training mesh of one generated mesh: its ``index`` in the
    :class:`TrainingSet`, the distance in ``steps`` and ``exact`` (a copy)."""

    index: int
    steps: float
    exact: bool


class NoveltyIndex:
    """A :class:`TrainingSet` ready for nearest-mesh queries (point sets sampled once)."""

    def __init__(
        self, train: TrainingSet, n_points: int = 2048, coarse_points: int = 256, shortlist: int = 8
    ):
        self.train, self.n_points, self.shortlist = train, n_points, shortlist
        self.by_key = {k: i for i, k in enumerate(train.keys)}
        self.coarse_points = coarse_points
        self._coarse = [as_points(m, coarse_points, seed=0) for m in train.meshes]
        self._fine: dict[int, np.ndarray] = {}

    def nearest(self, mesh: Mesh) -> Nearest:
        """The nearest training mesh of ``mesh`` (any bins: re-canonicalized at the set's).
        Raises MeshError for a mesh with no area to sample."""
        bins = self.train.bins
        key = mesh_key(mesh, bins)
        if key in self.by_key:
            return Nearest(self.by_key[key], 0.0, True)
        coarse = as_points(mesh, self.coarse_points, seed=0)
        d = np.array([distance_steps(coarse, c, bins) for c in self._coarse])
        fine = as_points(mesh, self.n_points, seed=0)
        best = Nearest(-1, float("inf"), False)
        for i in np.argsort(d, kind="stable")[: self.shortlist].tolist():
            if i not in self._fine:
                self._fine[i] = as_points(self.train.meshes[i], self.n_points, seed=0)
            steps = distance_steps(fine, self._fine[i], bins)
            if steps < best.steps:
                best = Nearest(i, steps, False)
        return best


def novelty(
    meshes: list[Mesh | None], families: list[str | None], train: TrainingSet, **index_args
) -> tuple[list[dict], dict]:
    """Score generated meshes (``None``: no mesh) against ``train``. Returns one dict per mesh
    (``steps``, ``exact``, ``nearest`` index, ``nearest_family``; ``error`` where a mesh could
    not be measured) and the report of :func:`summarize`."""
    index = NoveltyIndex(train, **index_args)
    rows, noise = [], []
    for i, (mesh, fam) in enumerate(zip(meshes, families, strict=True)):
        row: dict = {"i": i, "family": fam}
        if mesh is None:
            row["error"] = "no mesh"
        else:
            try:
                near = index.nearest(mesh)
                row.update(
                    steps=near.steps,
                    exact=near.exact,
                    nearest=near.index,
                    nearest_family=train.families[near.index],
                    key=mesh_key(mesh, train.bins),
                )
                pts = [as_points(mesh, index.n_points, seed=s) for s in (0, 1)]
                noise.append(distance_steps(pts[0], pts[1], train.bins))
            except MeshError as exc:
                row["error"] = str(exc)
        rows.append(row)
    report = summarize(rows, train)
    report["sampling_noise_steps"] = float(np.median(noise)) if noise else None
    report["points"] = {"fine": index.n_points, "coarse": index.coarse_points}
    report["shortlist"] = index.shortlist
    for r in rows:
        r.pop("key", None)
    return rows, report


def summarize(rows: list[dict], train: TrainingSet) -> dict:
    """The distribution of ``steps`` over measured meshes (min, quartiles, max, mean), the share
    of exact copies and of meshes within 1 step, and per family (the prompt's) the prompts, the
    meshes and how many distinct meshes (canonical text) the model wrote."""
    steps = np.array([r["steps"] for r in rows if "steps" in r], dtype=np.float64)
    n = len(steps)
    dist = {}
    if n:
        q = np.quantile(steps, [0.0, 0.25, 0.5, 0.75, 1.0])
        dist = dict(zip(("min", "q1", "median", "q3", "max"), map(float, q), strict=True))
        dist["mean"] = float(steps.mean())
    per_family: dict[str, dict] = defaultdict(lambda: {"prompts": 0, "meshes": 0, "keys": set()})
    for r in rows:
        fam = per_family[r.get("family") or "?"]
        fam["prompts"] += 1
        if "key" in r:
            fam["meshes"] += 1
            fam["keys"].add(r["key"])
    keys = Counter(r["key"] for r in rows if "key" in r)
    return {
        "samples": len(rows),
        "measured": n,
        "unmeasured": len(rows) - n,
        "distinct_meshes": len(keys),
        "steps": dist,
        "exact_copy_share": float(sum(r.get("exact", False) for r in rows) / n) if n else None,
        "within_1_step_share": float((steps <= 1.0).sum() / n) if n else None,
        "by_family": {
            fam: {"prompts": v["prompts"], "meshes": v["meshes"], "distinct": len(v["keys"])}
            for fam, v in sorted(per_family.items())
        },
        "train": {
            "distinct_meshes": len(train.keys),
            "assistant_meshes": train.rows,
            "skipped": train.skipped,
            "bins": train.bins,
        },
        "step": f"1/(bins-1) = 1/{train.bins - 1} of the longest side",
    }


def load_generations(path: str | Path, bins: int) -> tuple[list[Mesh | None], list[dict]]:
    """The meshes of a generations JSONL (``samples.jsonl`` of ``meshlm eval generate``, or
    ``attributes.jsonl`` of ``meshlm eval attributes``: rows with ``mesh``, an OBJ path relative
    to the file's folder, absent when the reply had no mesh), canonicalized at ``bins``; and the
    rows. Raises MeshlmError naming the file and line for a bad line or a missing mesh file."""

    path = Path(path)
    rows = load_jsonl(path)
    meshes: list[Mesh | None] = []
    for lineno, row in enumerate(rows, start=1):
        if not row.get("mesh"):
            meshes.append(None)
            continue
        file = path.parent / str(row["mesh"])
        if not file.is_file():
            raise MeshlmError(f"{path}:{lineno}: mesh file {file} is missing")
        tm = load_mesh(file)
        try:
            meshes.append(canonicalize(tm.vertices, tm.faces, bins=bins))
        except MeshError:  # collapses on the grid: nothing to compare
            meshes.append(None)
    return meshes, rows


def recorded_dataset(model: str | Path | None) -> Path:
    """The training dataset a model folder records (its meshlm.json's ``dataset.dir``), for a
    folder, a ``.gguf`` beside one, or the names ``bundled`` / ``smol``. Raises MeshlmError when
    there is none or it is not on this machine (then pass the dataset yourself)."""

    if model in (None, "bundled"):
        folder = modelfolder.BUNDLED_MODEL
    else:
        folder = named_models(modelfolder.BUNDLED_MODEL.parent).get(str(model), Path(model))
    info = modelfolder.read(folder)
    where = info.dataset.dir if info else None
    if not where:
        raise MeshlmError(f"{folder}: records no training dataset; pass --train DATASET")
    if not (Path(where) / "train.jsonl").is_file():
        raise MeshlmError(
            f"{folder}: its training dataset {where} is not here (no train.jsonl); "
            "pass --train DATASET"
        )
    return Path(where)
