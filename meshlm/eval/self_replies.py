"""Rejection-sampling fine-tuning data: a model's own constrained replies to training requests,
kept where they are judged right (``python -m meshlm.eval.self_replies MODEL SRC DST
[--requests 256] [--mix 400] [--seed 0] [--threads 2] [--kept-per-family K]``).

Why: the commonest strict failure of the parts model's greedy replies is a vertex line written
again within its part, and teacher-forced the model almost never predicts that repeat
(smol-parts16a: 2 of 960 chances; docs/parts-model.md). The repeat comes from the contexts the
model makes itself -- exposure bias -- which teacher forcing on the data never shows it. Here the
model writes replies to training requests under the decoding constraint (valid by construction:
where it would repeat a line, the constraint leaves only other values), and the replies that are
judged right become training rows, so that training sees the model's own contexts with the
repeat corrected. Keeping only judged-right samples of a model's own outputs is rejection-
sampling fine-tuning (Yuan et al. 2023, "Scaling Relationship on Learning Mathematical Reasoning
with Large Language Models", arXiv 2308.01825; the same idea as STaR, Zelikman et al. 2022).

Each request is a training row of ``SRC`` that is one request and its reply with a plan line
(:func:`meshlm.exemplars.single_request`), drawn evenly over the plans' families (``seed``); its
user turn is kept as it is, exemplar included (the bank's choice for the row, never the row's own
mesh), so the model writes the reply's second stage as :class:`meshlm.infer.Engine` runs it.
Greedy, constrained, at most 1,536 new tokens. A reply is kept when it was not cut off, its mesh
reads strictly, its plan line names the row's family, and the nearest of ``per_family`` training
meshes of every family by Chamfer distance (:func:`meshlm.eval.runner.nearest_family`, the
judge of ``meshlm eval generate``, here with training meshes as references) is of that family.
On the training rows' own meshes (160 drawn as here, data/smol-parts16w) that judge names the
right family 158 times with 32 references a family, 133-147 with 8 (tables taken for stools and
shelves, pyramids for cones): hence 32, the default.

``DST`` is ``SRC`` with its training split replaced by the kept replies plus ``mix`` minus that
many rows drawn from ``SRC``'s training split (so a short run still sees the source data, the
understanding rows among them), shuffled; validation and test unchanged; other files (the
exemplar bank) copied. Every attempt goes to ``DST/replies.jsonl`` as it is judged (a rerun
skips the requests already there, by training row); ``DST/manifest.json`` is ``SRC``'s with
``self_replies`` added (model, counts, judge, seed)."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from meshlm import exemplars, meshtext
from meshlm.codec import Mesh
from meshlm.data.subset import SPLITS, read_rows
from meshlm.errors import MeshlmError
from meshlm.eval.metrics import as_points
from meshlm.eval.runner import nearest_family
from meshlm.infer import load
from meshlm.plan import parse_plan
from meshlm.prompts import mesh_start

_OWN = {"manifest.json", "replies.jsonl", *(f"{s}.jsonl" for s in SPLITS)}
MAX_NEW_TOKENS = 1536


def _rows_by_family(rows: list[dict], seed: int) -> dict[str, list[int]]:
    """Indices of the single-request generation rows with a plan line, by the plan's family,
    each family's shuffled (``seed``)."""
    by_family: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.get("task") != "generation" or not exemplars.single_request(row):
            continue
        plan = parse_plan(row["messages"][-1]["content"])
        if plan is not None:
            by_family.setdefault(plan.family, []).append(i)
    rng = random.Random(seed)
    for ids in by_family.values():
        rng.shuffle(ids)
    return by_family


def draw_requests(rows: list[dict], n: int, seed: int) -> list[tuple[int, dict, str]]:
    """``(index, row, family)`` of ``n`` single-request generation rows with a plan line, as even
    over the plans' families as their numbers allow (``seed``), in row order."""
    return sorted(draw_until_kept(rows, n, seed, None, {}), key=lambda t: t[0])


def draw_until_kept(
    rows: list[dict], n: int, seed: int, kept_per_family: int | None, kept: dict[str, int]
) -> Iterator[tuple[int, dict, str]]:
    """``(index, row, family)`` of at most ``n`` rows, round by round over the sorted families
    (each family's rows shuffled, ``seed``), leaving out a family once ``kept[family]`` (which
    the caller updates as replies are judged) reaches ``kept_per_family`` (None: never): the
    families a model answers badly get more requests, until their rows or ``n`` run out."""
    by_family = _rows_by_family(rows, seed)

    def wanted(f: str) -> bool:
        return kept_per_family is None or kept.get(f, 0) < kept_per_family

    given, k = 0, 0
    while given < n:
        live = [f for f in sorted(by_family) if k < len(by_family[f]) and wanted(f)]
        if not live:
            return
        for f in live:
            if given == n or not wanted(f):  # kept may have grown within the round
                continue
            yield by_family[f][k], rows[by_family[f][k]], f
            given += 1
        k += 1


def training_references(rows: list[dict], per_family: int, seed: int, bins: int):
    """``(family, points)`` of ``per_family`` training meshes of each family (``seed``): the
    judge's references. Rows as :func:`draw_requests` takes them."""
    by_family: dict[str, list[str]] = {}
    for row in rows:
        if row.get("task") != "generation" or not exemplars.single_request(row):
            continue
        reply = row["messages"][-1]["content"]
        plan = parse_plan(reply)
        if plan is not None:
            by_family.setdefault(plan.family, []).append(reply[mesh_start(reply) :])
    rng = random.Random(seed)
    refs = []
    for family in sorted(by_family):
        texts = sorted(set(by_family[family]))
        rng.shuffle(texts)
        for text in texts[:per_family]:
            mesh = meshtext.decode_strict(text, "parts", bins)
            refs.append((family, as_points(mesh, 2048, seed=0)))
    return refs


def judge(engine, row: dict, family: str, refs) -> dict:
    """Write a reply to ``row``'s user turn (greedy, constrained) and judge it (module
    docstring). Returns the record written to ``replies.jsonl``: ``kept`` and why not."""
    turn = {"role": "user", "content": row["messages"][-2]["content"]}
    sampling = engine.default_sampling(
        temperature=0.0, max_new_tokens=MAX_NEW_TOKENS, constrain=True, exemplar=False
    )
    res = engine.generate([turn], sampling)
    text = res.text
    plan = parse_plan(text[: mesh_start(text)])
    rec = {
        "source": row.get("source"),
        "family": family,
        "reply": text,
        "new_tokens": res.stats.new_tokens,
        "cut_off": res.stats.cut_off,
        "plan_family": plan.family if plan else None,
    }
    why = None
    if res.stats.cut_off:
        why = "cut off"
    elif plan is None or plan.family != family:
        why = "plan names another family"
    else:
        try:
            mesh: Mesh = meshtext.decode_strict(text[mesh_start(text) :], "parts", engine.bins)
            judged, cd = nearest_family(mesh, refs)
            rec.update(judged_family=judged, judged_chamfer=cd)
            if judged != family:
                why = "nearest training mesh is of another family"
        except MeshlmError as exc:
            why = f"mesh: {exc}"
    rec["kept"] = why is None
    if why:
        rec["why_not"] = why
    return rec


def build(
    model: str,
    src: str | Path,
    dst: str | Path,
    requests: int = 256,
    mix: int = 400,
    seed: int = 0,
    per_family: int = 32,
    threads: int | None = None,
    kept_per_family: int | None = None,
) -> dict:
    """Write ``DST`` (module docstring); returns the manifest's ``self_replies`` record. With
    ``kept_per_family``, requests are drawn by :func:`draw_until_kept` (``requests`` at most)
    instead of :func:`draw_requests`.
    Raises MeshlmError for a source without a manifest, a row that is not JSON, a model that
    does not write the parts format, or no reply kept."""
    src, dst = Path(src), Path(dst)
    if not (src / "manifest.json").is_file():
        raise MeshlmError(f"{src}: no manifest.json (not a dataset built by meshlm build-data)")
    train = [row for _, row in read_rows(src / "train.jsonl")]
    engine = load(model, threads=threads)
    if engine.mesh_format.name != "parts":
        raise MeshlmError(f"{model}: writes {engine.mesh_format.name!r}, not the parts format")
    refs = training_references(train, per_family, seed, engine.bins)
    dst.mkdir(parents=True, exist_ok=True)
    log = dst / "replies.jsonl"
    done = {}
    if log.is_file():
        done = {r["row"]: r for _, r in read_rows(log)}
    kept_so_far: dict[str, int] = {}
    if kept_per_family is None:
        todo: Iterable = draw_requests(train, requests, seed)
    else:
        todo = draw_until_kept(train, requests, seed, kept_per_family, kept_so_far)
    try:
        from tqdm import tqdm

        todo_iter = tqdm(todo, desc="self replies", unit="request", total=requests)
    except ImportError:  # pragma: no cover
        todo_iter = todo
    records = []
    with log.open("a", encoding="utf-8") as fh:
        for i, row, family in todo_iter:
            rec = done.get(i)
            if rec is None:
                rec = {"row": i, **judge(engine, row, family, refs)}
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
            rec["turn"] = row["messages"][-2]["content"]
            rec["exemplar"] = row.get("exemplar")
            records.append(rec)
            kept_so_far[family] = kept_so_far.get(family, 0) + rec["kept"]
    kept = [r for r in records if r["kept"]]
    if not kept:
        raise MeshlmError(f"{model}: none of {len(records)} replies was judged right")
    rng = random.Random(seed)
    drawn = rng.sample(train, max(0, min(len(train), mix - len(kept))))
    # the manifest's per-split counts stay the source's; ``self_replies.rows`` has this one's
    rows = [
        {
            "messages": [
                {"role": "user", "content": r["turn"]},
                {"role": "assistant", "content": r["reply"]},
            ],
            "task": "generation",
            "source": r["source"],
            "exemplar": r["exemplar"],
            "self_reply": model,
        }
        for r in kept
    ] + drawn
    rng.shuffle(rows)
    (dst / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for split in SPLITS:  # those the source has (a held-out split may have been left out)
        if split != "train" and (src / f"{split}.jsonl").is_file():
            shutil.copy2(src / f"{split}.jsonl", dst / f"{split}.jsonl")
    for other in src.iterdir():  # the exemplar bank the rows show, which training ships
        if other.is_file() and other.name not in _OWN:
            shutil.copy2(other, dst / other.name)
    why: dict[str, int] = {}
    for r in records:
        if not r["kept"]:
            key = r["why_not"].split(":")[0]
            why[key] = why.get(key, 0) + 1
    per_family_kept: dict[str, int] = {}
    for r in kept:
        per_family_kept[r["family"]] = per_family_kept.get(r["family"], 0) + 1
    record = {
        "source": str(src),
        "model": str(model),
        "requests": len(records),
        "kept": len(kept),
        "kept_per_family": dict(sorted(per_family_kept.items())),
        "not_kept": dict(sorted(why.items())),
        "source_rows_drawn": len(drawn),
        "rows": {"train": len(kept) + len(drawn)},
        "kept_per_family_wanted": kept_per_family,
        "judge": {"references_per_family": per_family, "from": "training split"},
        "sampling": {"temperature": 0.0, "constrain": True, "max_new_tokens": MAX_NEW_TOKENS},
        "seed": seed,
    }
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["self_replies"] = record
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.eval.self_replies", description=__doc__)
    ap.add_argument("model")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--requests", type=int, default=256, help="training requests answered")
    ap.add_argument("--mix", type=int, default=400, help="training rows in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-family", type=int, default=32, help="judge's references a family")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--kept-per-family",
        type=int,
        default=None,
        help="draw a family's requests until this many are kept (--requests at most in all)",
    )
    args = ap.parse_args(argv)
    try:
        rec = build(
            args.model,
            args.src,
            args.dst,
            args.requests,
            args.mix,
            args.seed,
            args.per_family,
            args.threads,
            args.kept_per_family,
        )
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: kept {rec['kept']} of {rec['requests']} replies ({rec['not_kept']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
