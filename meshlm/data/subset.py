"""A built dataset's rows of one task, or its tasks reweighed, as a dataset of its own
(``python -m meshlm.data.subset SRC DST --task understanding``, ``... --repeat understanding=2``).

Writes ``DST/train.jsonl``, ``validation.jsonl``, ``test.jsonl`` with the rows of ``SRC`` whose
``task`` is the one asked for (every row without ``--task``), in their order; with ``--repeat
TASK=N`` each *training* row of that task is written N times (validation and test rows once, so
held-out figures stay comparable; the trainer shuffles); the source's other files (its
exemplar bank) are copied. ``DST/manifest.json`` is ``SRC``'s
manifest with ``subset`` (the source folder, the task, the repeats, the rows written per split
and per task: the source's ``counts`` and ``mix`` describe the source) added, so the folder
says what it is. Used by probes that train one skill alone or weigh it up
(docs/parts-model.md, "Reading, probed").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from meshlm.errors import MeshlmError

SPLITS = ("train", "validation", "test")


def read_rows(path: Path) -> list[tuple[str, dict]]:
    """The lines of a dataset split file with their parsed rows (none when the file is absent).
    Raises MeshlmError naming the file and line of a row that is not JSON."""
    out = []
    for n, line in enumerate(path.read_text().splitlines() if path.is_file() else [], 1):
        try:
            out.append((line, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise MeshlmError(f"{path}:{n}: not a JSON row ({exc.msg})") from None
    return out


def copy_side_files(src: Path, dst: Path) -> list[str]:
    """Copy ``src``'s files other than its splits and manifest (e.g. ``exemplars.json``, the
    bank its rows show, which training copies into the model folder) into ``dst``, so a dataset
    derived from another keeps what its rows refer to; returns the names copied."""
    own = {f"{s}.jsonl" for s in SPLITS} | {"manifest.json"}
    names = []
    for other in sorted(src.iterdir()):
        if other.is_file() and other.name not in own:
            shutil.copy2(other, dst / other.name)
            names.append(other.name)
    return names


def subset(
    src: str | Path, dst: str | Path, task: str | None, repeat: dict[str, int] | None = None
) -> dict[str, int]:
    """Write the subset (module docstring); returns rows written per split. ``task`` None keeps
    every task; ``repeat`` maps a task to how many times its training rows are written (>= 1).
    Raises MeshlmError when ``src`` has no manifest, a row is not JSON (naming file and line),
    a repeat is below 1 or names a task without training rows, or no training row is kept."""
    src, dst = Path(src), Path(dst)
    repeat = dict(repeat or {})
    for name, n in repeat.items():
        if n < 1:
            raise MeshlmError(f"--repeat {name}={n}: a task's rows are written at least once")
    if not (src / "manifest.json").is_file():
        raise MeshlmError(f"{src}: no manifest.json (not a dataset built by meshlm build-data)")
    kept: dict[str, list[str]] = {}
    by_task: dict[str, dict[str, int]] = {}  # what the folder holds (the source's counts differ)
    for split in SPLITS:
        rows = []
        for line, row in read_rows(src / f"{split}.jsonl"):
            if task is None or row.get("task") == task:
                n_copies = repeat.get(row.get("task"), 1) if split == "train" else 1
                rows.extend([line] * n_copies)
                tally = by_task.setdefault(split, {})
                tally[row.get("task")] = tally.get(row.get("task"), 0) + n_copies
        kept[split] = rows
    counts = {k: len(v) for k, v in kept.items()}
    trained = by_task.get("train", {})
    for name in repeat:
        if name not in trained:  # a misspelt task would otherwise weigh nothing, silently
            raise MeshlmError(
                f"--repeat {name}={repeat[name]}: {src} has no training row of task {name!r} "
                f"(its tasks: {', '.join(sorted(map(str, trained))) or 'none'})"
            )
    if not counts["train"]:
        raise MeshlmError(f"{src}: no training row" + (f" of task {task!r}" if task else ""))
    dst.mkdir(parents=True, exist_ok=True)
    for split, rows in kept.items():
        (dst / f"{split}.jsonl").write_text("".join(r + "\n" for r in rows))
    copy_side_files(src, dst)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["subset"] = {"source": str(src), "task": task, "rows": counts, "by_task": by_task}
    if repeat:
        manifest["subset"]["repeat"] = repeat
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.data.subset", description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--task", help="keep only this task's rows (generation, understanding)")
    ap.add_argument(
        "--repeat", action="append", default=[], metavar="TASK=N",
        help="write this task's training rows N times (repeatable)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    try:
        repeat = {}
        for item in args.repeat:
            name, _, n = item.partition("=")
            if not name or not n.isdigit():
                raise MeshlmError(f"--repeat {item}: expected TASK=N, N a whole number")
            repeat[name] = int(n)
        counts = subset(args.src, args.dst, args.task, repeat)
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
