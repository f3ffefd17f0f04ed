"""Assembly: per-object records -> conversations -> splits, token budget, mix -> files on disk.

Output of a build in ``OUT``:

* ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` -- one row per line,
  ``{"messages": [{"role", "content"}, ...], "task": "generation"|"understanding"|"general",
  "source": <object id or general:<index>>}``, the conversational format TRL's SFTTrainer reads;
* ``hf/`` -- the same rows as a ``datasets.DatasetDict`` (``load_from_disk``);
* ``rejects.jsonl`` -- every object left out, with reason and detail;
* ``manifest.json`` -- sources, counts per stage, rejects by reason, the mix, seed, format.

Rows show meshes in the build's mesh text format (``--format``): the per-object records hold
canonical LLaMA-Mesh text, which is rewritten here (:func:`meshlm.meshtext.convert`, exact) after
duplicates are dropped, so the token budget counts the text the rows hold.

Every file is written to a temporary name and renamed, the manifest last, so a reader never
sees a half-written build. Everything here is a pure function of the records and the arguments:
the same inputs give byte-identical files.

One idea: per-object records to the dataset files on disk; kept in one module because the
split, token budget and mix are steps of the one pure function :func:`assemble`, and the
manifest records them all.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

import meshlm
from meshlm import meshtext
from meshlm.data.build import BuildConfig, BuildError, Collected, shard_of
from meshlm.data.conversations import object_rows, plan_writer, stable_int
from meshlm.data.sources import load_general_chats
from meshlm.errors import require
from meshlm.eval.metrics import chamfer_distance
from meshlm.modelfolder import format_block
from meshlm.shapes import family_of_uid
from meshlm.tokens import add_number_tokens

SPLITS = ("train", "validation", "test")
TASKS = ("generation", "understanding", "general")
#: Reasons that are filters, not problems with the input; all others are listed in the manifest.
FILTER_REASONS = frozenset(
    {
        "too_many_faces",
        "too_few_faces",
        "no_caption",
        "not_in_cache",
        "unknown_uid",
        "duplicate_of_other_object",
    }
)


def split_of(source_id: str, fractions: tuple[float, float, float]) -> str:
    """Split of an object: a stable hash of its id placed on the cumulative fractions.

    Depends on the id only (not the seed), so every row made from one object -- every rotation,
    every dialogue -- lands in the same split, in every build.
    """
    u = stable_int("split", source_id) / 2.0**64
    total, acc = float(sum(fractions)), 0.0
    for name, frac in zip(SPLITS, fractions, strict=True):
        acc += frac / total
        if u < acc and frac > 0:
            return name
    return next(n for n, f in reversed(list(zip(SPLITS, fractions, strict=True))) if f > 0)


class TokenCounter:
    """Token lengths of conversations with a local tokenizer folder (``AutoTokenizer``).

    With a chat template the rendered template is counted (what SFT trains on); otherwise the
    message contents joined by newlines.
    """

    def __init__(self, path: str, number_tokens: int = 0, relative: bool = False):
        transformers = require("transformers", "train", "the token budget")
        try:
            self.tok = transformers.AutoTokenizer.from_pretrained(path)
        except Exception as exc:  # OSError, ValueError, ... from transformers
            raise BuildError(
                f"{path}: cannot load tokenizer: {' '.join(str(exc).split())[:200]}"
            ) from None
        if number_tokens:  # as the recipe's number_tokens will extend it for training
            add_number_tokens(self.tok, number_tokens, relative)
        self.mode = "chat_template" if getattr(self.tok, "chat_template", None) else "text"

    def render(self, messages: list[dict]) -> str:
        if self.mode == "chat_template":
            return self.tok.apply_chat_template(messages, tokenize=False)
        return "\n".join(m["content"] for m in messages)

    def count(self, chats: list[list[dict]], batch: int = 256) -> list[int]:
        out: list[int] = []
        for i in range(0, len(chats), batch):
            texts = [self.render(m) for m in chats[i : i + batch]]
            enc = self.tok(texts, add_special_tokens=False)["input_ids"]
            out += [len(e) for e in enc]
        return out


def _with_system(messages: list[dict], system: str | None) -> list[dict]:
    if system and (not messages or messages[0]["role"] != "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages


def _pick_general(
    pool: list[int],
    chats: list[list[dict]],
    target: int,
    rng,
    counter: TokenCounter | None,
    cfg: BuildConfig,
    tally: Counter,
) -> list[dict]:
    """``target`` general rows drawn from ``pool`` (shuffled, cycled if short; rows over the
    token budget are skipped and counted once)."""
    rows: list[dict] = []
    if target <= 0 or not pool:
        return rows
    order = [pool[int(i)] for i in rng.permutation(len(pool))]
    fits: dict[int, bool] = {}
    while len(rows) < target:
        before = len(rows)
        for start in range(0, len(order), 256):
            part = order[start : start + 256]
            msgs = {i: _with_system(chats[i], cfg.system_prompt) for i in part}
            unknown = [i for i in part if i not in fits]
            if counter is not None and unknown:
                for i, n in zip(unknown, counter.count([msgs[i] for i in unknown]), strict=True):
                    fits[i] = n <= cfg.max_length
                    tally["general_over_token_budget"] += not fits[i]
            for i in part:
                if fits.get(i, True):
                    rows.append({"messages": msgs[i], "task": "general", "source": f"general:{i}"})
                    if len(rows) == target:
                        return rows
        if len(rows) == before:  # nothing in the pool fits
            break
    return rows


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _save_hf(out: Path, by_split: dict[str, list[dict]]) -> None:
    datasets = require("datasets", "data", "writing the dataset")
    features = datasets.Features(
        {
            "messages": datasets.List(
                {"role": datasets.Value("string"), "content": datasets.Value("string")}
            ),
            "task": datasets.Value("string"),
            "source": datasets.Value("string"),
        }
    )
    dd = datasets.DatasetDict(
        {
            s: datasets.Dataset.from_dict(
                {k: [r[k] for r in rows] for k in ("messages", "task", "source")}, features=features
            )
            for s, rows in by_split.items()
        }
    )
    tmp, old, final = out / ".hf.tmp", out / ".hf.old", out / "hf"
    for p in (tmp, old):
        shutil.rmtree(p, ignore_errors=True)
    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per split is noise; the build has its own
    try:
        # an empty split must still get one (empty) shard, or load_from_disk fails on it
        dd.save_to_disk(str(tmp), num_shards={s: 1 for s, rows in by_split.items() if not rows})
    finally:
        if was_on:
            datasets.enable_progress_bars()
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def family_of(obj) -> str:
    """The family an object counts in for ``--gen-per-family``: a procedural shape's family
    (its uid is ``<family>_<seed>_<index>``), otherwise the name of its source."""
    if obj.kind == "procedural":
        return family_of_uid(obj.id.removeprefix("procedural:"))
    return obj.kind


def generation_pool(objects: list, per_family: int) -> set[str]:
    """Ids of the objects that get generation rows: the first ``per_family`` of each family in
    build order (every object when ``per_family`` is 0)."""
    if per_family <= 0:
        return {obj.id for obj in objects}
    taken: Counter = Counter()
    pool: set[str] = set()
    for obj in objects:
        fam = family_of(obj)
        if taken[fam] < per_family:
            taken[fam] += 1
            pool.add(obj.id)
    return pool


def _vertices(mesh_text: str) -> np.ndarray:
    rows = [line.split()[1:4] for line in mesh_text.splitlines() if line.startswith("v ")]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def nearest_pool_targets(kept: list, pool: set[str]) -> dict[str, list]:
    """For every kept object outside ``pool``: the encodings of the pool object of its family
    whose first encoding's vertices are nearest (symmetric Chamfer on grid coordinates; ties go
    to the earlier pool object). Objects of a family without a pool object get none."""
    by_family: dict[str, list[tuple[np.ndarray, list]]] = {}
    for obj, encs, _ in kept:
        if obj.id in pool:
            by_family.setdefault(family_of(obj), []).append((_vertices(encs[0][1]), encs))
    targets: dict[str, list] = {}
    for obj, encs, _ in kept:
        cands = by_family.get(family_of(obj))
        if obj.id in pool or not cands:
            continue
        verts = _vertices(encs[0][1])
        # meshlm's one Chamfer distance, on the grid points as they are (no sampling, no rescale)
        targets[obj.id] = min(
            cands, key=lambda c: chamfer_distance(verts, c[0], normalize=False, squared=True)
        )[1]
    return targets


def in_format(fmt: str, bins: int) -> Callable[[list | None], list | None]:
    """A function that rewrites ``[(rotation, LLaMA-Mesh text), ...]`` in mesh format ``fmt``
    (each text converted once; None stays None)."""
    done: dict[str, str] = {}

    def convert(encs):
        if encs is None or fmt == meshtext.DEFAULT:
            return encs
        for _, t in encs:
            if t not in done:
                done[t] = meshtext.convert(t, fmt, bins)
        return [(r, done[t]) for r, t in encs]

    return convert


def assemble(
    cfg: BuildConfig, col: Collected, records: dict[str, dict], say: Callable[[str], None]
) -> dict:
    """Build, split, budget, mix and write the rows; return the manifest (see module doc)."""
    out = Path(cfg.out)
    tally: Counter = Counter()
    warnings: list[str] = []
    rejects = [r.to_dict() for r in col.rejects]
    w_gen, w_und, w_general = (float(x) for x in cfg.mix)

    # 1. objects in build order -> rows (cross-object duplicate encodings dropped)
    seen: set[str] = set()
    kept: list[tuple[object, list, str]] = []
    split_objects: Counter = Counter()
    for obj in col.objects:
        rec = records[obj.id]
        if rec["status"] != "ok":
            rejects.append({"source": obj.id, "reason": rec["reason"], "detail": rec["detail"]})
            continue
        tally["objects_loaded"] += 1
        tally["decimated"] += bool(rec.get("decimated"))
        tally["rotation_duplicates"] += rec["rotation_duplicates"]
        encs = [(r, t) for r, t in rec["encodings"] if t not in seen]
        tally["cross_object_duplicates"] += len(rec["encodings"]) - len(encs)
        if not encs:
            rejects.append(
                {
                    "source": obj.id,
                    "reason": "duplicate_of_other_object",
                    "detail": "every rotation equals an earlier object's encoding",
                }
            )
            continue
        seen.update(t for _, t in encs)
        tally["objects_kept"] += 1
        tally["encodings_kept"] += len(encs)
        split = split_of(obj.id, cfg.splits)
        split_objects[split] += 1
        kept.append((obj, encs, split))
    pool = generation_pool([obj for obj, _, _ in kept], cfg.gen_per_family)
    targets = nearest_pool_targets(kept, pool) if cfg.gen_targets == "nearest" else {}
    n_gen = cfg.gen_repeats * sum(len(encs) for obj, encs, _ in kept if obj.id in pool)
    n_gen += sum(len(t) for t in targets.values())
    n_enc = max(1, tally["encodings_kept"])
    und_ratio = w_und / w_gen * (n_gen / n_enc)  # understanding rows per encoding: keeps the mix
    tally["generation_pool"] = len(pool)
    mesh_rows: list[tuple[str, dict]] = []
    fmt = in_format(cfg.format, cfg.bins)
    for obj, encs, split in kept:
        for row in object_rows(
            obj.id,
            obj.caption,
            fmt(encs),
            seed=cfg.seed,
            understanding_ratio=und_ratio,
            multi_turn=cfg.multi_turn,
            system_prompt=cfg.system_prompt,
            max_tokens=cfg.max_length,
            generation_repeats=(cfg.gen_repeats if obj.id in pool else int(obj.id in targets)),
            generation_encodings=fmt(targets.get(obj.id)),
            wide_phrasings=cfg.phrasings == "wide",
            plan=plan_writer(family_of(obj), cfg.plan_boxes) if cfg.plan else None,
        ):
            tally[f"built_{row['task']}"] += 1
            mesh_rows.append((split, row))

    # 2. token budget
    counter = (
        TokenCounter(cfg.tokenizer, cfg.number_tokens, cfg.format == "parts")
        if cfg.tokenizer
        else None
    )
    if counter is not None:
        lengths = counter.count([r["messages"] for _, r in mesh_rows])
        kept = []
        for (split, row), n in zip(mesh_rows, lengths, strict=True):
            if n > cfg.max_length:
                tally[f"{row['task']}_over_token_budget"] += 1
            else:
                kept.append((split, row))
        mesh_rows = kept
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for split, row in mesh_rows:
        by_split[split].append(row)

    # 3. general chats, per split, to hit the mix
    chats: list[list[dict]] = []
    if cfg.general_chat:
        chats, bad = load_general_chats(cfg.general_chat, split=cfg.general_split)
        tally["general_available"] = len(chats)
        for k, v in bad.items():
            tally[f"general_invalid_{k}"] += v
    if not chats or w_general == 0:
        if w_general > 0:
            warnings.append(
                "no general chat data: the mix is generation and understanding only "
                f"({w_gen:g}:{w_und:g}, renormalized); pass --general-chat"
            )
        w_general = 0.0
    else:
        pools: dict[str, list[int]] = {s: [] for s in SPLITS}
        for i in range(len(chats)):
            gid = f"general:{i}"
            if cfg.num_shards == 1 or shard_of(gid, cfg.num_shards) == cfg.shard:
                pools[split_of(gid, cfg.splits)].append(i)
        for split in SPLITS:
            target = round(len(by_split[split]) * w_general / (w_gen + w_und))
            rng = np.random.default_rng([cfg.seed & 0xFFFFFFFF, stable_int("general", split)])
            picked = _pick_general(pools[split], chats, target, rng, counter, cfg, tally)
            tally["general_used"] += len(picked)
            tally["general_repeats"] += len(picked) - len({r["source"] for r in picked})
            if len(picked) < target:
                warnings.append(f"{split}: only {len(picked)} of {target} general chats fit")
            by_split[split] += picked

    # 4. order and write
    for split in SPLITS:
        rng = np.random.default_rng([cfg.seed & 0xFFFFFFFF, stable_int("order", split)])
        rows = by_split[split]
        by_split[split] = [rows[int(i)] for i in rng.permutation(len(rows))]
    for w in warnings:
        say(f"warning: {w}")
    manifest = _manifest(
        cfg, col, by_split, rejects, tally, warnings, split_objects, w_general, counter
    )
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        _write_atomic(
            out / f"{split}.jsonl",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in by_split[split]),
        )
    _write_atomic(
        out / "rejects.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)
    )
    _save_hf(out, by_split)
    _write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _manifest(
    cfg, col, by_split, rejects, tally, warnings, split_objects, w_general, counter
) -> dict:
    rows = {s: {t: sum(r["task"] == t for r in by_split[s]) for t in TASKS} for s in SPLITS}
    totals = {t: sum(rows[s][t] for s in SPLITS) for t in TASKS}
    n = sum(totals.values())
    w = dict(zip(TASKS, (cfg.mix[0], cfg.mix[1], w_general), strict=True))
    target = {t: round(w[t] / sum(w.values()), 4) for t in TASKS}
    reasons = Counter(r["reason"] for r in rejects)
    args = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "overwrite")}
    return {
        "meshlm_version": meshlm.__version__,
        # the same block a model folder's meshlm.json has (training copies it there)
        "format": format_block(cfg.bins, cfg.format),
        "seed": cfg.seed,
        "arguments": args,
        "sources": {
            "meshes": list(cfg.meshes),
            "captions": list(cfg.captions),
            "objaverse": cfg.objaverse,
            "objaverse_cache": cfg.objaverse_cache,
            "procedural": cfg.procedural,
            "general_chat": cfg.general_chat,
        },
        "shard": {"index": cfg.shard, "count": cfg.num_shards},
        "counts": {
            "objects_found": dict(col.found),
            "objects_in_shard": len(col.objects) + len(col.rejects),
            "objects_rejected_before_loading": len(col.rejects),
            "objects_processed": len(col.objects),
            "objects_loaded": tally["objects_loaded"],
            "objects_kept": tally["objects_kept"],
            "objects_decimated": tally["decimated"],
            "rotations": list(cfg.rotations),
            "rotation_duplicates_dropped": tally["rotation_duplicates"],
            "cross_object_duplicates_dropped": tally["cross_object_duplicates"],
            "encodings_kept": tally["encodings_kept"],
            "generation_pool_objects": tally["generation_pool"],
            "rows_built": {t: tally[f"built_{t}"] for t in TASKS[:2]},
            "rows_over_token_budget": {t: tally[f"{t}_over_token_budget"] for t in TASKS},
            "general_available": tally["general_available"],
            "general_invalid": {
                k.removeprefix("general_invalid_"): v
                for k, v in sorted(tally.items())
                if k.startswith("general_invalid_")
            },
            "general_used": tally["general_used"],
            "general_repeats": tally["general_repeats"],
            "rows": rows,
            "rows_total": n,
        },
        "rejects": dict(sorted(reasons.items())),
        "broken_files": [r for r in rejects if r["reason"] not in FILTER_REASONS],
        "mix": {
            "target": target,
            "general_data": w_general > 0,
            "achieved": {t: round(totals[t] / n, 4) if n else 0.0 for t in TASKS},
            "counts": totals,
        },
        "splits": {
            "fractions": dict(zip(SPLITS, cfg.splits, strict=True)),
            "by": "hash of the source object id",
            "objects": {s: split_objects[s] for s in SPLITS},
        },
        "token_budget": None
        if counter is None
        else {
            "tokenizer": cfg.tokenizer,
            "number_tokens": cfg.number_tokens,
            "max_length": cfg.max_length,
            "counted": counter.mode,
        },
        "warnings": warnings,
        "files": {
            "splits": [f"{s}.jsonl" for s in SPLITS],
            "hf": "hf",
            "rejects": "rejects.jsonl",
            "checkpoint": ".work/objects.jsonl",
        },
    }
