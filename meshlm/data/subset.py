"""A built dataset's rows of one task, as a dataset of its own (``python -m meshlm.data.subset
SRC DST --task understanding``).

Writes ``DST/train.jsonl``, ``validation.jsonl``, ``test.jsonl`` with the rows of ``SRC`` whose
``task`` is the one asked for, in their order, and ``DST/manifest.json``: ``SRC``'s manifest with
``subset`` (the source folder, the task, the rows kept per split) added, so the folder says what
it is. Used by probes that train one skill alone (docs/parts-model.md, "Reading, probed").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meshlm.errors import MeshlmError

SPLITS = ("train", "validation", "test")


def subset(src: str | Path, dst: str | Path, task: str) -> dict[str, int]:
    """Write the subset (module docstring); returns rows kept per split. Raises MeshlmError
    when ``src`` has no manifest, a row is not JSON (naming file and line) or no row is kept."""
    src, dst = Path(src), Path(dst)
    if not (src / "manifest.json").is_file():
        raise MeshlmError(f"{src}: no manifest.json (not a dataset built by meshlm build-data)")
    kept: dict[str, list[str]] = {}
    for split in SPLITS:
        path = src / f"{split}.jsonl"
        rows = []
        for n, line in enumerate(path.read_text().splitlines() if path.is_file() else [], 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MeshlmError(f"{path}:{n}: not a JSON row ({exc.msg})") from None
            if row.get("task") == task:
                rows.append(line)
        kept[split] = rows
    counts = {k: len(v) for k, v in kept.items()}
    if not counts["train"]:
        raise MeshlmError(f"{src}: no training row of task {task!r}")
    dst.mkdir(parents=True, exist_ok=True)
    for split, rows in kept.items():
        (dst / f"{split}.jsonl").write_text("".join(r + "\n" for r in rows))
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["subset"] = {"source": str(src), "task": task, "rows": counts}
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.data.subset", description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--task", required=True, help="generation or understanding")
    args = ap.parse_args(argv)
    try:
        counts = subset(args.src, args.dst, args.task)
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
