"""Where objects, captions and general chats come from.

* :func:`folder_objects` -- every mesh file under a folder (recursive, any extension that
  :mod:`meshlm.files` reads), captioned from a captions table.
* :func:`objaverse_objects` -- Objaverse 1.0 objects through the ``objaverse`` package, read from
  its local cache (``<cache>/hf-objaverse-v1/object-paths.json.gz`` and
  ``<cache>/hf-objaverse-v1/glbs/<group>/<uid>.glb``); nothing is downloaded unless asked.
* :func:`procedural_objects` -- the captioned shapes of :mod:`meshlm.shapes`.
* :func:`load_captions` -- Cap3D-style CSV (``uid,caption``, no header), a CSV with a header
  (a key column such as ``uid``/``stem``/``file`` and a ``caption`` column) or JSON
  (``{key: caption}`` or a list of ``{"uid": ..., "caption": ...}``).
* :func:`load_general_chats` -- UltraChat-style ``messages`` from a JSONL file, a dataset saved
  with ``datasets``' ``save_to_disk``, or anything ``datasets.load_dataset`` opens.

Sources return :class:`SourceObject` records (cheap; nothing is loaded yet) and
:class:`Reject` records for objects that cannot be used before loading (no caption, not cached).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshlm.errors import MeshlmError, require
from meshlm.files import READ_EXTENSIONS
from meshlm.shapes import generate

KEY_COLUMNS = ("uid", "id", "object_id", "objaverse_id", "stem", "name", "file", "filename", "path")
CAPTION_COLUMNS = ("caption", "text", "description", "prompt")
ROLES = frozenset({"system", "user", "assistant"})


class DataSourceError(MeshlmError):
    """A source cannot be read at all (missing folder, unreadable captions, bad uid list...)."""


@dataclass(eq=False)
class SourceObject:
    """One input object, before loading.

    ``id`` is unique in a build and prefixed by its source: ``mesh:<relative path>``,
    ``objaverse:<uid>``, ``procedural:<uid>``. ``path`` is set for files; ``vertices``
    ``(n, 3) float64`` and ``faces`` ``(m, 3) int64`` for procedural shapes.
    """

    id: str
    kind: str
    caption: str
    path: str | None = None
    vertices: np.ndarray | None = field(default=None, repr=False)
    faces: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Reject:
    """An object left out, with a short machine-readable ``reason`` and a one-line ``detail``."""

    id: str
    reason: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"source": self.id, "reason": self.reason, "detail": self.detail}


# ------------------------------------------------------------------------------------ captions


def load_captions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a captions table into ``{key: caption}`` (see the module docstring for formats).

    Raises DataSourceError if the file is missing or has no usable key/caption columns.
    """
    p = Path(path)
    if not p.is_file():
        raise DataSourceError(f"{p}: captions file not found")
    try:
        if p.suffix.lower() == ".json":
            return _captions_json(p)
        return _captions_csv(p)
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise DataSourceError(f"{p}: cannot read captions: {exc}") from None


def _captions_csv(p: Path) -> dict[str, str]:
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return {}
    head = [c.strip().lower() for c in rows[0]]
    key_col = next((head.index(k) for k in KEY_COLUMNS if k in head), None)
    cap_col = next((head.index(c) for c in CAPTION_COLUMNS if c in head), None)
    if key_col is not None and cap_col is not None:
        body = rows[1:]
    elif len(rows[0]) >= 2:  # Cap3D: no header, uid then caption
        key_col, cap_col, body = 0, 1, rows
    else:
        raise DataSourceError(f"{p}: need a key column and a caption column")
    return {
        r[key_col].strip(): r[cap_col].strip()
        for r in body
        if len(r) > max(key_col, cap_col) and r[key_col].strip() and r[cap_col].strip()
    }


def _captions_json(p: Path) -> dict[str, str]:
    data = json.loads(p.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    items = data.items() if isinstance(data, dict) else None
    if items is not None:
        for k, v in items:
            cap = (
                v
                if isinstance(v, str)
                else (v or {}).get("caption")
                if isinstance(v, dict)
                else None
            )
            if isinstance(cap, str) and cap.strip():
                out[str(k)] = cap.strip()
        return out
    if not isinstance(data, list):
        raise DataSourceError(f"{p}: expected an object or a list of records")
    for rec in data:
        if not isinstance(rec, dict):
            continue
        key = next((rec[k] for k in KEY_COLUMNS if k in rec), None)
        cap = next((rec[c] for c in CAPTION_COLUMNS if c in rec), None)
        if key is not None and isinstance(cap, str) and cap.strip():
            out[str(key)] = cap.strip()
    return out


def caption_from_name(stem: str) -> str:
    """``"red_office-chair"`` -> ``"a red office chair"`` (used only when asked)."""
    words = " ".join(stem.replace("_", " ").replace("-", " ").split())
    return f"a {words}" if words else ""


# ------------------------------------------------------------------------------------- objects


def folder_objects(
    root: str | os.PathLike[str], captions: dict[str, str], *, name_captions: bool = False
) -> tuple[list[SourceObject], list[Reject]]:
    """Mesh files under ``root`` (recursive, sorted), captioned from ``captions``.

    A file's caption is looked up by its relative path, relative path without extension, stem,
    then file name; ``root/captions.csv`` or ``root/captions.json`` (the layout
    ``meshlm shapes`` writes) is read too, with ``captions`` taking precedence. Files without a
    caption are rejected (``no_caption``) unless ``name_captions`` derives one from the stem.
    Hidden files and folders are skipped.
    """

    base = Path(root)
    if not base.is_dir():
        raise DataSourceError(f"{base}: meshes folder not found")
    table: dict[str, str] = {}
    for side in ("captions.csv", "captions.json"):
        if (base / side).is_file():
            table.update(load_captions(base / side))
    table.update(captions)
    objects, rejects = [], []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith(".") or p.suffix.lower().lstrip(".") not in READ_EXTENSIONS:
                continue
            rel = p.relative_to(base).as_posix()
            sid = f"mesh:{rel}"
            keys = (rel, rel.rsplit(".", 1)[0], p.stem, p.name)
            cap = next((table[k] for k in keys if k in table), None)
            if cap is None and name_captions:
                cap = caption_from_name(p.stem)
            if not cap:
                rejects.append(Reject(sid, "no_caption", f"no caption for {rel}"))
                continue
            objects.append(SourceObject(sid, "file", cap, path=str(p)))
    return objects, rejects


@contextlib.contextmanager
def _objaverse_at(cache_dir: Path) -> Iterator[object]:
    """The ``objaverse`` module with its cache paths pointed at ``cache_dir`` (then restored)."""
    objaverse = require("objaverse", "data", "the Objaverse source")
    saved = objaverse.BASE_PATH, objaverse._VERSIONED_PATH
    objaverse.BASE_PATH = str(cache_dir)
    objaverse._VERSIONED_PATH = os.path.join(str(cache_dir), "hf-objaverse-v1")
    try:
        yield objaverse
    finally:
        objaverse.BASE_PATH, objaverse._VERSIONED_PATH = saved


def read_uid_list(spec: str) -> list[str] | None:
    """``"all"`` -> None (every cached object); a file -> one uid per line; else comma-separated."""
    if spec.strip().lower() == "all":
        return None
    p = Path(spec)
    if p.is_file():
        lines = p.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    return [u.strip() for u in spec.split(",") if u.strip()]


def objaverse_objects(
    uids: list[str] | None,
    captions: dict[str, str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> tuple[list[SourceObject], list[Reject]]:
    """Objaverse objects by uid (``None`` = every uid whose GLB is in the cache).

    Uses ``objaverse.load_uids`` and ``objaverse.load_objects`` with the package's cache
    pointed at ``cache_dir`` (default: the package's own, ``~/.objaverse``). Without
    ``download`` only cached objects are asked for, so nothing touches the network; the rest are
    rejected as ``not_in_cache``; uids the index does not know as ``unknown_uid``; objects
    without a caption as ``no_caption``. Objects are returned in uid order.

    Raises DataSourceError if the cache has no ``hf-objaverse-v1/object-paths.json.gz``.
    """
    objaverse = require("objaverse", "data", "the Objaverse source")
    base = Path(cache_dir) if cache_dir else Path(objaverse.BASE_PATH)
    versioned = base / "hf-objaverse-v1"
    if not (versioned / "object-paths.json.gz").is_file() and not download:
        raise DataSourceError(
            f"{versioned}: no object-paths.json.gz (not an objaverse cache; "
            "the objaverse package downloads it on first use)"
        )
    rejects: list[Reject] = []
    with _objaverse_at(base) as ov:
        known = ov._load_object_paths()
        wanted = sorted(known) if uids is None else [u.removesuffix(".glb") for u in uids]
        ask: list[str] = []
        for uid in dict.fromkeys(wanted):
            if uid not in known:
                rejects.append(Reject(f"objaverse:{uid}", "unknown_uid", "not in object-paths"))
            elif not captions.get(uid):
                if uids is not None:  # "all": only captioned objects are candidates
                    rejects.append(Reject(f"objaverse:{uid}", "no_caption", uid))
            elif download or (versioned / known[uid]).is_file():
                ask.append(uid)
            elif uids is not None:
                rejects.append(Reject(f"objaverse:{uid}", "not_in_cache", str(known[uid])))
        paths = ov.load_objects(ask, download_processes=1) if ask else {}
    objects = [
        SourceObject(f"objaverse:{u}", "objaverse", captions[u], path=paths[u])
        for u in sorted(paths)
    ]
    return objects, rejects


def procedural_objects(
    n: int, seed: int, max_segments: int | None = None, families: list[str] | None = None
) -> Iterator[SourceObject]:
    """``n`` captioned shapes from :func:`meshlm.shapes.generate` (deterministic in ``seed``;
    ``max_segments`` caps the sides of revolved parts; ``families`` limits the families)."""

    for s in generate(n, seed, families=families, max_segments=max_segments):
        yield SourceObject(
            f"procedural:{s.uid}",
            "procedural",
            s.caption,
            vertices=np.asarray(s.vertices, np.float64),
            faces=np.asarray(s.faces, np.int64),
        )


# ------------------------------------------------------------------------------- general chats


def load_general_chats(
    spec: str, *, split: str | None = None, limit: int | None = None
) -> tuple[list[list[dict]], Counter]:
    """Chats with a ``messages`` list (UltraChat-style) and counts of rows left out, by reason.

    ``spec`` is a ``.jsonl``/``.json`` file (one ``{"messages": [...]}`` per line), a folder
    written by ``Dataset.save_to_disk``/``DatasetDict.save_to_disk``, or a name/folder for
    ``datasets.load_dataset`` (``split`` defaults to ``train_sft`` if present, else ``train``).
    A chat is kept if every message has a role in system/user/assistant and string content,
    and it has at least one user and one assistant message; the ``content`` of each is kept
    verbatim.
    """
    p = Path(spec)
    if p.is_file():
        records: Iterable[dict] = _read_jsonl(p)
    else:
        datasets = require("datasets", "data", "general chat data")
        if p.is_dir() and any(
            (p / f).is_file() for f in ("dataset_dict.json", "dataset_info.json", "state.json")
        ):
            ds = datasets.load_from_disk(str(p))
        else:
            try:
                ds = datasets.load_dataset(spec)
            except Exception as exc:  # datasets raises many types for a bad name/folder
                raise DataSourceError(f"{spec}: cannot load general chats: {exc}") from None
        if isinstance(ds, datasets.DatasetDict):
            names = list(ds)
            pick = split or next((s for s in ("train_sft", "train") if s in names), names[0])
            if pick not in names:
                raise DataSourceError(f"{spec}: no split {pick!r} (has {', '.join(names)})")
            ds = ds[pick]
        if "messages" not in ds.column_names:
            raise DataSourceError(f"{spec}: no 'messages' column (has {ds.column_names})")
        records = ds.select_columns(["messages"])
    chats, bad = [], Counter()
    for rec in records:
        if limit is not None and len(chats) >= limit:
            break
        msgs = rec.get("messages") if isinstance(rec, dict) else None
        if not isinstance(msgs, list) or not msgs:
            bad["no_messages"] += 1
            continue
        clean = [
            {"role": m.get("role"), "content": m.get("content")}
            for m in msgs
            if isinstance(m, dict)
        ]
        if len(clean) != len(msgs) or any(
            m["role"] not in ROLES or not isinstance(m["content"], str) for m in clean
        ):
            bad["bad_message"] += 1
            continue
        roles = {m["role"] for m in clean}
        if not {"user", "assistant"} <= roles:
            bad["no_exchange"] += 1
            continue
        chats.append(clean)
    return chats, bad


def _read_jsonl(p: Path) -> Iterator[dict]:
    with p.open(encoding="utf-8") as fh:
        text = fh.read()
    if p.suffix.lower() == ".json" and text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataSourceError(f"{p}:{n}: not JSON: {exc.msg}") from None
