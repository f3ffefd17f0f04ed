"""A ``parts`` dataset with an exemplar before every request
(``python -m meshlm.data.exemplify SRC DST --per-family 8``; ``--per-family 0 --any-length``:
every training mesh a candidate; ``--nearest-share 0.5``: half the training rows shown the
candidate nearest their own reply).

Draws an :class:`~meshlm.exemplars.ExemplarBank` from ``SRC``'s training replies and writes
``DST/{train,validation,test}.jsonl`` with every row of ``SRC`` in order; each generation row
that is one request and its reply (not a follow-up turn) has its request preceded by the
bank's exemplar of its plan's family that shares the most words with it
(:meth:`ExemplarBank.choose`; a training row never gets its own mesh), the reply unchanged,
and the row gains ``exemplar`` (the exemplar's source). Rows then over ``--max-length`` tokens
(the chat rendered with ``SRC``'s recorded tokenizer and number tokens, as training counts) are
left out and counted. ``DST/exemplars.json`` is the bank (training copies it into the model
folder, so inference shows the same meshes); ``DST/manifest.json`` is ``SRC``'s with
``exemplars`` added (source, bank hash, rows written and left out per split).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from meshlm import exemplars, modelfolder
from meshlm.data.assemble import TokenCounter
from meshlm.data.subset import SPLITS, read_rows
from meshlm.errors import MeshlmError
from meshlm.plan import parse_plan


def _counter(manifest: dict):
    """The token counter of the recorded build (None when the manifest names no tokenizer)."""
    args = manifest.get("arguments", {})
    if not args.get("tokenizer"):
        return None
    return TokenCounter(args["tokenizer"], int(args.get("number_tokens") or 0), relative=True)


def exemplify(
    src: str | Path,
    dst: str | Path,
    per_family: int = 8,
    seed: int = 0,
    max_length: int = 3072,
    shortest_half: bool = True,
    nearest_share: float = 0.0,
) -> dict:
    """Write the dataset (module docstring); returns ``{"rows": {split: n}, "dropped": {split:
    n}, "bank": n}``. Raises MeshlmError when ``src`` is not a ``parts`` dataset, a row is not
    JSON (naming file and line), no generation row has a plan line to draw from, or
    ``nearest_share`` is outside 0..1. ``nearest_share``: the share of *training* rows (drawn
    with ``seed``) shown :meth:`ExemplarBank.nearest` -- the bank's mesh with the reply's face
    lines and the most of its coordinates -- instead of :meth:`ExemplarBank.choose`'s; the
    validation and test rows always get ``choose``'s, as inference does."""
    if not 0.0 <= nearest_share <= 1.0:
        raise MeshlmError(f"nearest_share must be in 0..1, got {nearest_share}")
    src, dst = Path(src), Path(dst)
    if not (src / "manifest.json").is_file():
        raise MeshlmError(f"{src}: no manifest.json (not a dataset built by meshlm build-data)")
    fmt = modelfolder.dataset_format(src)
    if fmt.name != "parts":
        raise MeshlmError(f"{src}: its mesh format is {fmt.name!r}; exemplars need 'parts' text")
    manifest = json.loads((src / "manifest.json").read_text())
    rows = {s: [row for _, row in read_rows(src / f"{s}.jsonl")] for s in SPLITS}
    bank = exemplars.ExemplarBank.from_rows(
        rows["train"],
        per_family,
        fmt.bins,
        seed,
        source={"dataset": str(src), "split": "train"},
        shortest_half=shortest_half,
    )
    if not len(bank):
        raise MeshlmError(f"{src}: no generation row with a plan line (build-data --plan)")
    counter = _counter(manifest)
    rng = random.Random(seed)
    nearest_rows = 0
    written: dict[str, int] = {}
    dropped: dict[str, int] = {}
    dst.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        out = []
        for row in items:
            plan = parse_plan(row["messages"][-1]["content"])
            if row.get("task") == "generation" and plan and exemplars.single_request(row):
                own = exemplars.mesh_text(row["messages"][-1]["content"])
                ex = None
                if split == "train" and nearest_share and rng.random() < nearest_share:
                    ex = bank.nearest(plan.family, own, own)
                    nearest_rows += ex is not None
                if ex is None:
                    ex = bank.choose(plan.family, row["messages"][-2]["content"], own)
                if ex is not None:
                    turn = row["messages"][-2]
                    turn["content"] = exemplars.with_exemplar(turn["content"], ex)
                    row["exemplar"] = ex.source
            out.append(row)
        if counter is not None:
            sizes = counter.count([r["messages"] for r in out])
            keep = [r for r, n in zip(out, sizes, strict=True) if n <= max_length]
            dropped[split], out = len(out) - len(keep), keep
        written[split] = len(out)
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    bank.save(dst)
    manifest["exemplars"] = {
        "source": str(src),
        "per_family": per_family,
        "seed": seed,
        "shortest_half": shortest_half,
        "nearest_share": nearest_share,
        "nearest_rows": nearest_rows,
        "bank_sha256": bank.sha256(),
        "bank_size": len(bank),
        "max_length": max_length if counter is not None else None,
        "rows": written,
        "dropped_over_max_length": dropped,
    }
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"rows": written, "dropped": dropped, "bank": len(bank)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.data.exemplify", description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument(
        "--per-family", type=int, default=8, help="exemplars a family (default 8; 0: every mesh)"
    )
    ap.add_argument(
        "--any-length",
        action="store_true",
        help="draw from every mesh, not only those no longer than the family's median",
    )
    ap.add_argument(
        "--nearest-share",
        type=float,
        default=0.0,
        help="share of training rows shown the bank's mesh nearest their reply (same face "
        "lines, most coordinates equal) instead of the one whose request shares most words",
    )
    ap.add_argument("--seed", type=int, default=0, help="which meshes the bank draws")
    ap.add_argument(
        "--max-length", type=int, default=3072, help="leave out rows over this many tokens"
    )
    args = ap.parse_args(argv)
    try:
        res = exemplify(
            args.src,
            args.dst,
            args.per_family,
            args.seed,
            args.max_length,
            shortest_half=not args.any_length,
            nearest_share=args.nearest_share,
        )
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {res['bank']} exemplars; rows {res['rows']}; over max: {res['dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
