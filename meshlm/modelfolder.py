"""A model folder's self-description, ``meshlm.json``: schema, read, write, validate, upgrade.

A model folder is what ``meshlm train`` and ``meshlm merge`` write and what
:func:`meshlm.infer.load` reads (a ``.gguf`` file's folder counts as its model folder)::

    MODEL_DIR/
      config.json, model.safetensors, tokenizer*.json, chat_template.jinja   (transformers)
      generation_config.json     the decoding the model's author recommends (optional)
      meshlm.json                this module: mesh format and bins, shape families, base model,
                                 recipe, dataset manifest hash, metrics, versions
      model-*.gguf               optional llama.cpp copy (``meshlm export-gguf``)

This module owns ``meshlm.json``; every reader goes through :func:`read` (the engine, merge, the
shapes CLI, evaluation, the web demo through the engine). A folder without the file (a hub id, a
model trained elsewhere) has no :class:`ModelInfo`: readers then assume the LLaMA-Mesh format at
64 bins, the released model's (arXiv 2411.09595).

**The mesh format block** (``"format"``) is the same in a model folder and in a dataset folder's
``manifest.json`` (:func:`format_block` writes both, :meth:`MeshFormat.from_dict` reads both):
``name`` (:data:`FORMATS`: ``"llama-mesh"``, the LLaMA-Mesh OBJ subset, the default; or
``"parts"``, :mod:`meshlm.parts`; docs/format.md), ``bins`` (quantization levels per axis, 2..1024),
``up_axis`` and a human-readable ``description``. Training takes the model's format from the
dataset's block and nowhere else.

**Schema versions** (``schema_version``): 1 = folders written before the field existed (meshlm
0.1.0 until 2026-11-30: format name ``"llama-mesh-obj"``, top-level ``meshlm_version``); 2 =
this module. :func:`upgrade` turns any earlier version into the current one in memory (the file
is left as it is); a folder from a newer meshlm is refused with the version it needs.

Only the standard library is used (no numpy, no torch): reading a folder's description is cheap.

One idea: ``meshlm.json`` and the format block, from schema to upgrade; kept in one module
because it is the file's one owner (every reader goes through :func:`read`), so the schema, its
validation and its upgrades change together.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from meshlm.errors import MeshlmError

FILE = "meshlm.json"
SCHEMA_VERSION = 2
DEFAULT_FORMAT = "llama-mesh"
DEFAULT_BINS = 64  # equal to meshlm.codec.DEFAULT_BINS (tested); not imported to stay numpy-free
BUNDLED_NAME = "meshlm-bundled"
# The bundled model ships inside the package (package data: meshlm/models/meshlm-bundled), so an
# installed meshlm finds it; MESHLM_MODEL points every default-model command at another folder.
BUNDLED_MODEL = Path(
    os.environ.get("MESHLM_MODEL") or Path(__file__).resolve().parent / "models" / BUNDLED_NAME
)

# mesh formats this meshlm can decode and constrain, with the description written into the block
FORMATS: dict[str, str] = {
    "llama-mesh": "v X Y Z lines (integers 0..bins-1, sorted by x, y, z), then f A B C lines "
    "(1-based triangles, canonical order); docs/format.md",
    "parts": "connected parts one after another, each its v X Y Z lines (integers 0..bins-1, in "
    "connectivity order) then its f -A -B -C lines (relative indices into the part); "
    "docs/format.md",
}
_OLD_FORMAT_NAMES = {"llama-mesh-obj": "llama-mesh"}  # schema 1 (and dataset manifests of then)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
KINDS = ("model", "adapter")


class ModelFolderError(MeshlmError, ValueError):
    """``meshlm.json`` (or a dataset manifest's format block) cannot be read or has a bad field.

    Attributes: ``path`` (the file), ``field`` (dotted, e.g. ``"format.bins"``; None when the
    whole file is unreadable) and ``problem``.
    """

    def __init__(self, path: str | Path, problem: str, field: str | None = None):
        self.path, self.field, self.problem = str(path), field, problem
        where = f"{path}: field '{field}'" if field else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class MeshFormat:
    """How meshes are written as text: the format's ``name`` and its ``bins`` per axis."""

    name: str = DEFAULT_FORMAT
    bins: int = DEFAULT_BINS

    def to_dict(self) -> dict[str, Any]:
        """The format block (same keys in ``meshlm.json`` and a dataset's ``manifest.json``)."""
        return {
            "name": self.name,
            "bins": self.bins,
            "up_axis": "y",
            "description": FORMATS.get(self.name, ""),
        }

    @classmethod
    def from_dict(cls, block: Any, path: str | Path = FILE, prefix: str = "format") -> MeshFormat:
        """Read a format block (missing keys take the defaults; an old name is renamed).

        Raises :class:`ModelFolderError` naming ``path`` and the field for a bad name or bins.
        """
        if block is None:
            return cls()
        if not isinstance(block, dict):
            raise ModelFolderError(path, f"must be an object, got {_show(block)}", prefix)
        name = block.get("name", DEFAULT_FORMAT)
        name = _OLD_FORMAT_NAMES.get(name, name) if isinstance(name, str) else name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ModelFolderError(
                path,
                f"must be a format name like {DEFAULT_FORMAT!r}, got {_show(name)}",
                f"{prefix}.name",
            )
        bins = block.get("bins", DEFAULT_BINS)
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 1024:
            raise ModelFolderError(
                path, f"must be an integer 2..1024, got {_show(bins)}", f"{prefix}.bins"
            )
        return cls(name, bins)


def format_block(bins: int = DEFAULT_BINS, name: str = DEFAULT_FORMAT) -> dict[str, Any]:
    """The ``format`` block a dataset manifest or a model folder writes."""
    return MeshFormat(name, bins).to_dict()


@dataclass
class DatasetRef:
    """The dataset a model was trained on: its folder, the SHA-256 of its ``manifest.json`` (hex,
    None when it had none) and its rows per split."""

    dir: str | None = None
    manifest_sha256: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class ModelInfo:
    """The content of ``meshlm.json`` (schema :data:`SCHEMA_VERSION`).

    ``shape_families``: the procedural families the model was trained on; ``[]`` for data with
    none (or unknown). ``recipe``: the resolved training config. ``metrics``: final training and
    validation numbers. ``versions``: package versions at training time (meshlm, python, torch,
    transformers, ...). ``extra``: every other key, kept as written (architecture, parameters,
    global_step, created, merged_from, ...).
    """

    format: MeshFormat = field(default_factory=MeshFormat)
    kind: str = "model"
    base_model: str | None = None
    method: str | None = None
    shape_families: list[str] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetRef = field(default_factory=DatasetRef)
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # -- dict <-> object --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``meshlm.json`` (known fields first, then ``extra``)."""
        d = {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "format": self.format.to_dict(),
            "base_model": self.base_model,
            "method": self.method,
            "shape_families": list(self.shape_families),
            "recipe": self.recipe,
            "dataset": {
                "dir": self.dataset.dir,
                "manifest_sha256": self.dataset.manifest_sha256,
                "counts": dict(self.dataset.counts),
            },
            "metrics": self.metrics,
            "versions": self.versions,
        }
        return {**d, **{k: v for k, v in self.extra.items() if k not in d}}

    @classmethod
    def from_dict(cls, data: Any, path: str | Path = FILE) -> ModelInfo:
        """Validate (after :func:`upgrade`) and build. Raises :class:`ModelFolderError` naming
        ``path`` and the first bad field."""
        data = upgrade(data, path)
        if data["kind"] not in KINDS:
            raise ModelFolderError(
                path, f"must be one of {', '.join(KINDS)}, got {_show(data['kind'])}", "kind"
            )
        for key in ("base_model", "method"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ModelFolderError(path, f"must be a string, got {_show(data[key])}", key)
        fams = data.get("shape_families") or []
        if not isinstance(fams, list) or not all(isinstance(f, str) for f in fams):
            raise ModelFolderError(
                path, f"must be a list of names, got {_show(fams)}", "shape_families"
            )
        for key in ("recipe", "metrics", "versions"):
            if not isinstance(data.get(key) or {}, dict):
                raise ModelFolderError(path, f"must be an object, got {_show(data[key])}", key)
        for k, v in (data.get("metrics") or {}).items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ModelFolderError(path, f"must be a number, got {_show(v)}", f"metrics.{k}")
        for k, v in (data.get("versions") or {}).items():
            if not isinstance(v, str):
                raise ModelFolderError(
                    path, f"must be a version string, got {_show(v)}", f"versions.{k}"
                )
        known = {
            "schema_version",
            "kind",
            "format",
            "base_model",
            "method",
            "shape_families",
            "recipe",
            "dataset",
            "metrics",
            "versions",
        }
        return cls(
            format=MeshFormat.from_dict(data.get("format"), path),
            kind=data["kind"],
            base_model=data.get("base_model"),
            method=data.get("method"),
            shape_families=list(fams),
            recipe=dict(data.get("recipe") or {}),
            dataset=_dataset(data.get("dataset"), path),
            metrics=dict(data.get("metrics") or {}),
            versions=dict(data.get("versions") or {}),
            extra={k: v for k, v in data.items() if k not in known},
        )


def upgrade(data: Any, path: str | Path = FILE) -> dict[str, Any]:
    """A copy of a ``meshlm.json`` object in the current schema.

    Schema 1 (no ``schema_version``): the format name ``llama-mesh-obj`` becomes ``llama-mesh``
    and the top-level ``meshlm_version`` moves into ``versions``. Raises
    :class:`ModelFolderError` for a non-object, a bad version, or a newer schema than this
    meshlm reads.
    """
    if not isinstance(data, dict):
        raise ModelFolderError(path, f"must hold a JSON object, got {_show(data)}")
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFolderError(
            path, f"must be a positive integer, got {_show(version)}", "schema_version"
        )
    if version > SCHEMA_VERSION:
        raise ModelFolderError(
            path,
            f"{version} was written by a newer meshlm; this one reads "
            f"up to {SCHEMA_VERSION} (upgrade meshlm)",
            "schema_version",
        )
    out = dict(data)
    if version == 1:
        fmt = (
            dict(out.get("format") or {})
            if isinstance(out.get("format"), dict)
            else out.get("format")
        )
        if isinstance(fmt, dict):
            fmt["name"] = _OLD_FORMAT_NAMES.get(fmt.get("name"), fmt.get("name", DEFAULT_FORMAT))
            for key in ("coordinates", "faces", "order"):  # v1's prose, now one description
                fmt.pop(key, None)
            out["format"] = fmt
        versions = (
            dict(out.get("versions") or {})
            if isinstance(out.get("versions"), dict)
            else out.get("versions")
        )
        old = out.pop("meshlm_version", None)
        if isinstance(versions, dict) and isinstance(old, str):
            versions.setdefault("meshlm", old)
        out["versions"] = versions if versions is not None else {}
    out.setdefault("kind", "model")
    out["schema_version"] = SCHEMA_VERSION
    return out


# -- files ------------------------------------------------------------------------------------


def folder_of(model: str | Path) -> Path:
    """The model folder of ``model``: the folder itself, or the folder a ``.gguf`` file is in."""
    p = Path(model)
    return p.parent if p.suffix == ".gguf" else p


def read(model: str | Path) -> ModelInfo | None:
    """The :class:`ModelInfo` of a model folder (or of the folder a ``.gguf`` sits in), or None
    when it has no ``meshlm.json`` (a hub id, a model trained elsewhere).

    Raises :class:`ModelFolderError` when the file exists but is not valid JSON or a field is
    wrong (the message names the file and the field)."""
    path = folder_of(model) / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:  # a directory of that name, no permission, ...
        if not path.exists():
            return None
        raise ModelFolderError(path, f"cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFolderError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return ModelInfo.from_dict(data, path)


def write(folder: str | Path, info: ModelInfo) -> Path:
    """Write ``folder/meshlm.json`` atomically (temp file, then rename); returns its path."""
    path = Path(folder) / FILE
    write_json(path, info.to_dict())
    return path


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(model: str | Path, name: str) -> dict | None:
    """The JSON object in file ``name`` of a model folder (or beside a ``.gguf``), or None (a hub
    id, no such file, not a JSON object). For optional files such as
    ``generation_config.json``; ``meshlm.json`` is read with :func:`read`."""
    try:
        data = json.loads((folder_of(model) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dataset_format(data_dir: str | Path) -> MeshFormat:
    """The mesh format of a dataset folder: its ``manifest.json``'s ``format`` block (LLaMA-Mesh
    at 64 bins when it has no manifest or no block). Raises :class:`ModelFolderError` for an
    unreadable manifest or a bad block."""
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        return MeshFormat()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFolderError(path, f"cannot read it as JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelFolderError(path, f"must hold a JSON object, got {_show(manifest)}")
    return MeshFormat.from_dict(manifest.get("format"), path)


def dataset_ref(data_dir: str | Path) -> tuple[DatasetRef, dict | None]:
    """(:class:`DatasetRef` of a dataset folder, its parsed manifest or None)."""
    data_dir = Path(data_dir)
    manifest_path = data_dir / "manifest.json"
    ref, manifest = DatasetRef(dir=str(data_dir.resolve())), None
    if manifest_path.is_file():
        raw = manifest_path.read_bytes()
        ref.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        try:
            manifest = json.loads(raw)
        except json.JSONDecodeError:
            manifest = None
    for split in ("train", "validation", "test"):
        path = data_dir / f"{split}.jsonl"
        if path.is_file():
            with path.open("rb") as fh:
                ref.counts[split] = sum(1 for line in fh if line.strip())
    return ref, manifest if isinstance(manifest, dict) else None


# GGUF metadata keys ``meshlm export-gguf`` writes (the GGUF key-value section, ggml's
# docs/gguf.md): the mesh format of the weights, so a .gguf file describes itself
GGUF_FORMAT_NAME = "meshlm.format.name"
GGUF_FORMAT_BINS = "meshlm.format.bins"
_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}  # GGUF value type -> struct format
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_format(path: str | Path) -> MeshFormat | None:
    """The mesh format a ``.gguf`` file carries in its metadata (``meshlm.format.name`` and
    ``meshlm.format.bins``, written by ``meshlm export-gguf``), or None when it has none (an
    older export, a GGUF from elsewhere). Reads the header only, stopping once both keys are
    seen. Raises :class:`ModelFolderError` for a file that is not GGUF or a bad value."""
    import struct

    found: dict[str, Any] = {}
    with open(path, "rb") as fh:

        def take(fmt: str):
            size = struct.calcsize(fmt)
            data = fh.read(size)
            if len(data) != size:
                raise ModelFolderError(path, "not a GGUF file (truncated header)")
            return struct.unpack(fmt, data)[0]

        def string() -> str:
            return fh.read(take("<Q")).decode("utf-8", errors="replace")

        def value(kind: int):
            if kind == _GGUF_STRING:
                return string()
            if kind == _GGUF_ARRAY:
                item, count = take("<I"), take("<Q")
                if item in _GGUF_SCALARS:  # skipped in one seek: nothing meshlm reads
                    fh.seek(count * struct.calcsize(_GGUF_SCALARS[item]), 1)
                else:
                    for _ in range(count):
                        value(item)
                return None
            if kind not in _GGUF_SCALARS:
                raise ModelFolderError(path, f"not a GGUF file (value type {kind})")
            return take(_GGUF_SCALARS[kind])

        if fh.read(4) != b"GGUF":
            raise ModelFolderError(path, "not a GGUF file (no GGUF magic)")
        take("<I")  # version
        take("<Q")  # tensor count
        for _ in range(take("<Q")):
            key = string()
            val = value(take("<I"))
            if key in (GGUF_FORMAT_NAME, GGUF_FORMAT_BINS):
                found[key] = val
                if len(found) == 2:
                    break
    if not found:
        return None
    block = {
        "name": found.get(GGUF_FORMAT_NAME, DEFAULT_FORMAT),
        "bins": found.get(GGUF_FORMAT_BINS, DEFAULT_BINS),
    }
    return MeshFormat.from_dict(block, path, prefix="meshlm.format")


def with_bins(fmt: MeshFormat, bins: int | None) -> MeshFormat:
    """``fmt`` with ``bins`` replaced when given."""
    return fmt if bins is None else replace(fmt, bins=bins)


def _dataset(block: Any, path: str | Path) -> DatasetRef:
    if block is None:
        return DatasetRef()
    if not isinstance(block, dict):
        raise ModelFolderError(path, f"must be an object, got {_show(block)}", "dataset")
    sha = block.get("manifest_sha256")
    if sha is not None and (not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ModelFolderError(
            path, f"must be 64 hex digits or null, got {_show(sha)}", "dataset.manifest_sha256"
        )
    counts = block.get("counts") or {}
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()
    ):
        raise ModelFolderError(
            path, f"must map splits to row counts, got {_show(counts)}", "dataset.counts"
        )
    d = block.get("dir")
    return DatasetRef(dir=None if d is None else str(d), manifest_sha256=sha, counts=dict(counts))


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
