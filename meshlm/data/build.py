"""The dataset builder: sources -> per-object records (checkpointed) -> mixed chat SFT data.

Stages (``meshlm build-data`` runs them all, through
:func:`meshlm.data.pipeline.build_dataset`)::

    collect    list the objects of every source, captioned; shard by a hash of the object id
    process    load, decimate, filter, rotate about Y, encode, drop repeated rotations
               (parallel workers; one JSON line per object appended to OUT/.work/objects.jsonl
               and flushed at once, so a killed build resumes where it stopped)
    assemble   drop encodings another object already produced, build conversations, split by
               object, enforce the token budget, mix in general chats, write OUT atomically
               (see :mod:`meshlm.data.assemble`)

The checkpoint is tied to the arguments that shape the per-object records (the fingerprint in
OUT/.work/state.json); a rerun with other such arguments is refused unless ``overwrite``.
Arguments that only affect assembly (mix, splits, tokenizer, system prompt, general chats, the
mesh text format: records hold LLaMA-Mesh text, rewritten at assembly) may change between runs:
the records are reused and only assembly is redone.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from meshlm import meshtext
from meshlm.config import setting as _f
from meshlm.data import sources as S
from meshlm.data.conversations import stable_int
from meshlm.data.process import ProcessParams, init_worker, process_in_worker, process_object
from meshlm.errors import MeshlmError
from meshlm.shapes import check_families

WORK_DIR = ".work"
CHECKPOINT = "objects.jsonl"


class BuildError(MeshlmError):
    """The build cannot proceed (bad configuration, or OUT holds a build with other arguments)."""


@dataclass
class BuildConfig:
    """Everything ``build_dataset`` needs. The fields are the single source of ``meshlm
    build-data``'s options (name, type, default, help: :mod:`meshlm.cli.options`)."""

    out: str = _f(help="Output folder (jsonl splits, hf/ dataset, manifest.json).", short="-o")
    meshes: list[str] = _f(
        [], "Folders of mesh files (recursive; obj glb gltf ply stl off). Repeatable."
    )
    captions: list[str] = _f(
        [],
        "Captions tables: Cap3D CSV (uid,caption), CSV with a header, "
        "or JSON; keyed by uid, file stem or relative path. Repeatable.",
    )
    name_captions: bool = _f(False, "Caption uncaptioned files from their file name.")
    procedural: int = _f(0, "Number of procedural captioned shapes to add.")
    max_segments: int | None = _f(
        None,
        "Procedural shapes: at most this many sides on revolved parts (>= 6; default: as drawn).",
    )
    families: list[str] = _f(
        [],
        "Procedural shapes: only these families (default: all). Repeatable.",
        flag="--family",
    )
    objaverse: str | None = _f(
        None,
        "Objaverse uids: comma-separated, a file with one per "
        "line, or 'all' (every captioned object in the cache).",
    )
    objaverse_cache: str | None = _f(None, "Objaverse cache folder (default ~/.objaverse).")
    objaverse_download: bool = _f(False, "Let the objaverse package download missing objects.")
    general_chat: str | None = _f(
        None,
        "General chats: JSONL with 'messages', a saved "
        "dataset folder, or a Hugging Face dataset name.",
    )
    general_split: str | None = _f(None, "Split of the general-chat dataset (train_sft/train).")
    max_faces: int = _f(500, "Largest face count kept (the paper uses 500).")
    min_faces: int = _f(1, "Smallest face count kept (after quantization).")
    decimate: bool = _f(False, "Decimate larger meshes to --max-faces instead of skipping them.")
    rotations: tuple[int, ...] = _f((0, 90, 180, 270), "Rotations about the up (Y) axis, degrees.")
    bins: int = _f(64, "Quantization bins per axis (LLaMA-Mesh uses 64).")
    format: str = _f(
        "llama-mesh",
        "Mesh text format of every row: 'llama-mesh' (LLaMA-Mesh's, the default) or 'parts' "
        "(part by part, relative indices; docs/format.md). Recorded in manifest.json; training "
        "copies it into the model's meshlm.json.",
    )
    seed: int = _f(0, "Seed of every random choice (procedural shapes, wording, mix, order).")
    workers: int = _f(2, "Worker processes for loading and encoding (1 = in-process).", short="-j")
    shard: int = _f(0, "Index of this shard, 0..num_shards-1.")
    num_shards: int = _f(1, "Number of shards the objects are split into (by id hash).")
    tokenizer: str | None = _f(None, "Tokenizer folder for the token budget (AutoTokenizer).")
    max_length: int = _f(8192, "Token budget per sample; longer samples are dropped.")
    number_tokens: int = _f(
        0,
        "Count the budget as a recipe with the same number_tokens trains: the space-led "
        "numbers 0..N-1 (and -1..-N for the parts format) added to --tokenizer first.",
    )
    system_prompt: str | None = _f(None, "System message opening every sample.")
    mix: tuple[float, float, float] = _f(
        (0.4, 0.2, 0.4), "Target shares of generation, understanding and general rows."
    )
    multi_turn: float = _f(0.25, "Share of mesh samples that are multi-turn dialogues.")
    gen_per_family: int = _f(
        0,
        "Generation rows come from only the first N kept objects of each "
        "family (procedural shapes by family; every other source counts "
        "as one family); the rest are read, not written. 0 = every "
        "object.",
    )
    gen_repeats: int = _f(
        1,
        "Generation rows per mesh of the generation pool, each worded "
        "anew (with --gen-per-family the understanding rows are scaled "
        "to keep --mix).",
    )
    gen_targets: str = _f(
        "own",
        "With --gen-per-family: 'own' (only the pool is written) or "
        "'nearest' (every object's caption is also answered with the "
        "pool shape of its family nearest to it, by vertex Chamfer "
        "distance).",
    )
    phrasings: str = _f(
        "base",
        "Wording of generation requests: 'base' (the 35 request "
        "templates) or 'wide' (a second set of 24, and small talk that "
        "may open or close a request).",
    )
    plan: bool = _f(
        False,
        "End the lead-in of every mesh answer with a plan line naming the shape family and "
        "its number of parts ('Plan: shelf, 6 parts.'; meshlm/plan.py). Procedural shapes in "
        "the parts format only.",
    )
    plan_boxes: bool = _f(
        False,
        "With --plan: after the plan line, one line per part with its bounding box in bins "
        "('Part 1: 4 0 4 to 8 30 8.'; meshlm/plan.py), the layout said before it is drawn.",
    )
    splits: tuple[float, float, float] = _f(
        (0.9, 0.05, 0.05), "Train/validation/test fractions (by source object)."
    )
    max_file_bytes: int = _f(64 * 1024 * 1024, "Skip mesh files larger than this.")
    overwrite: bool = _f(False, "Discard a checkpoint made with other arguments.")
    progress: bool = _f(True, "Show a progress bar (rate and ETA) on stderr.")

    def validate(self) -> None:
        """Raise BuildError for inconsistent values."""
        if not 0 <= self.number_tokens <= 1024 or (self.number_tokens and not self.tokenizer):
            raise BuildError("--number-tokens needs --tokenizer and a value in 0..1024")
        if self.num_shards < 1 or not 0 <= self.shard < self.num_shards:
            raise BuildError(f"--shard must be in 0..{self.num_shards - 1}, got {self.shard}")
        if self.max_faces < 1 or self.min_faces < 0 or self.min_faces > self.max_faces:
            raise BuildError("need 0 <= --min-faces <= --max-faces and --max-faces >= 1")
        if not self.rotations:
            raise BuildError("--rotations needs at least one angle")
        if len(self.mix) != 3 or min(self.mix) < 0 or self.mix[0] <= 0:
            raise BuildError("--mix needs three non-negative shares with generation > 0")
        if len(self.splits) != 3 or min(self.splits) < 0 or sum(self.splits) <= 0:
            raise BuildError("--splits needs three non-negative fractions")
        if self.max_length < 1 or self.workers < 1 or not 0 <= self.multi_turn <= 1:
            raise BuildError("--max-length and --workers must be >= 1, --multi-turn in 0..1")
        if self.gen_per_family < 0 or self.gen_repeats < 1:
            raise BuildError("--gen-per-family must be >= 0 and --gen-repeats >= 1")
        if self.format not in meshtext.NAMES:
            raise BuildError(
                f"--format must be one of {', '.join(meshtext.NAMES)}, got {self.format!r}"
            )
        if self.phrasings not in ("base", "wide"):
            raise BuildError(f"--phrasings must be 'base' or 'wide', got {self.phrasings!r}")
        if self.plan and (self.format != "parts" or self.meshes or self.objaverse):
            raise BuildError("--plan needs --format parts and procedural shapes only")
        if self.plan_boxes and not self.plan:
            raise BuildError("--plan-boxes needs --plan")
        if self.gen_targets not in ("own", "nearest"):
            raise BuildError(f"--gen-targets must be 'own' or 'nearest', got {self.gen_targets!r}")
        if self.gen_targets == "nearest" and self.gen_per_family < 1:
            raise BuildError("--gen-targets nearest needs --gen-per-family >= 1")
        if self.max_segments is not None and self.max_segments < 6:
            raise BuildError(f"--max-segments must be >= 6, got {self.max_segments}")
        if self.families:
            check_families(self.families, BuildError)
        if not (self.meshes or self.procedural or self.objaverse):
            raise BuildError("no mesh source: give --meshes, --procedural or --objaverse")

    def process_params(self) -> ProcessParams:
        return ProcessParams(
            self.max_faces,
            self.min_faces,
            self.decimate,
            tuple(int(r) for r in self.rotations),
            self.bins,
            self.max_file_bytes,
        )

    def fingerprint(self) -> dict:
        """The arguments the checkpointed records depend on (JSON-normalized: lists, not tuples)."""
        return json.loads(
            json.dumps(
                {
                    "meshes": [str(Path(m).resolve()) for m in self.meshes],
                    "procedural": self.procedural,
                    "seed": self.seed if self.procedural else None,
                    "max_segments": self.max_segments if self.procedural else None,
                    **(
                        {"families": list(self.families)}
                        if self.procedural and self.families
                        else {}
                    ),
                    "objaverse": self.objaverse,
                    "objaverse_cache": self.objaverse_cache,
                    "shard": self.shard,
                    "num_shards": self.num_shards,
                    **asdict(self.process_params()),
                }
            )
        )


@dataclass
class Collected:
    """Objects of this shard in build order, and objects rejected before loading."""

    objects: list[S.SourceObject]
    rejects: list[S.Reject]
    found: dict[str, int]


def shard_of(source_id: str, num_shards: int) -> int:
    """Shard of an object: a stable hash of its id modulo ``num_shards``."""
    return stable_int("shard", source_id) % num_shards


def collect(cfg: BuildConfig) -> Collected:
    """List every source's objects (meshes folders, Objaverse, procedural: in that order) and
    keep this shard's. Raises DataSourceError for unreadable sources, BuildError on id clashes."""
    table: dict[str, str] = {}
    for c in cfg.captions:
        table.update(S.load_captions(c))
    objects: list[S.SourceObject] = []
    rejects: list[S.Reject] = []
    found: dict[str, int] = {}
    for root in cfg.meshes:
        objs, rej = S.folder_objects(root, table, name_captions=cfg.name_captions)
        objects += objs
        rejects += rej
        found["meshes"] = found.get("meshes", 0) + len(objs) + len(rej)
    if cfg.objaverse:
        objs, rej = S.objaverse_objects(
            S.read_uid_list(cfg.objaverse),
            table,
            cfg.objaverse_cache,
            download=cfg.objaverse_download,
        )
        objects += objs
        rejects += rej
        found["objaverse"] = len(objs) + len(rej)
    if cfg.procedural:
        objs = list(
            S.procedural_objects(cfg.procedural, cfg.seed, cfg.max_segments, cfg.families or None)
        )
        objects += objs
        found["procedural"] = len(objs)
    ids = [o.id for o in objects]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise BuildError(
            f"two inputs have the same id {dup!r} (same relative path in two --meshes folders?)"
        )
    keep = (
        (lambda i: shard_of(i, cfg.num_shards) == cfg.shard)
        if cfg.num_shards > 1
        else (lambda i: True)
    )
    return Collected([o for o in objects if keep(o.id)], [r for r in rejects if keep(r.id)], found)


# ------------------------------------------------------------------------------- checkpoint


def prepare_work(cfg: BuildConfig) -> Path:
    """The build's work folder (``OUT/.work``), its checkpoint kept when ``cfg`` was made with the
    same record-shaping arguments, wiped under ``overwrite``; raises BuildError otherwise."""
    out = Path(cfg.out)
    work = out / WORK_DIR
    state = work / "state.json"
    want = cfg.fingerprint()
    if state.is_file():
        have = json.loads(state.read_text(encoding="utf-8")).get("fingerprint")
        if have != want:
            if not cfg.overwrite:
                diff = sorted(
                    k for k in set(want) | set(have or {}) if (have or {}).get(k) != want.get(k)
                )
                raise BuildError(
                    f"{out} holds a build made with other arguments "
                    f"({', '.join(diff)}); use another --out or --overwrite"
                )
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not state.is_file():
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": want}, indent=1), encoding="utf-8")
        os.replace(tmp, state)
    return work


def read_checkpoint(path: Path) -> dict[str, dict]:
    """Records by id. A torn last line (the build was killed mid-write) is cut off the file."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as fh:
            fh.truncate(end)
    records: dict[str, dict] = {}
    for line in data[:end].splitlines():
        if line.strip():
            rec = json.loads(line)
            records[rec["id"]] = rec
    return records


def process_all(
    objects: list[S.SourceObject],
    params: ProcessParams,
    checkpoint: Path,
    workers: int,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
) -> dict[str, dict]:
    """Process the objects not yet in ``checkpoint``, appending one flushed line per object.

    Returns all records of the checkpoint (old and new) by id. Records are written in
    completion order; the caller orders them by the object list.
    """
    records = read_checkpoint(checkpoint)
    todo = [o for o in objects if o.id not in records]
    if not todo:
        return records
    from tqdm import tqdm

    pool = _pool(workers, params) if workers > 1 else None  # before tqdm starts a thread
    bar = tqdm(
        total=len(todo),
        unit="obj",
        disable=not progress,
        dynamic_ncols=True,
        desc="meshes",
        smoothing=0.1,
    )
    try:
        with checkpoint.open("a", encoding="utf-8") as fh:
            if pool is None:
                results = (process_object(obj, params) for obj in todo)
            else:
                chunk = max(1, min(16, len(todo) // (workers * 8)))
                results = pool.imap_unordered(process_in_worker, todo, chunksize=chunk)
            for rec in results:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                fh.flush()  # a SIGKILL after this line loses nothing
                records[rec["id"]] = rec
                bar.update(1)
                if on_record is not None:
                    on_record(rec)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    bar.close()
    return records


def _pool(workers: int, params: ProcessParams):
    """A worker pool. ``fork`` (instant) when this process has no other thread; otherwise
    ``forkserver`` (about 1.5 s to start), since forking a threaded process can deadlock."""
    import multiprocessing as mp
    import threading

    if "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        ctx = mp.get_context("fork")
    else:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["meshlm.data.process", "meshlm.files", "trimesh"])
    return ctx.Pool(workers, init_worker, (params,))
