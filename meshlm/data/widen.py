"""More distinct meshes for one task: a built dataset's rows plus, for each mesh of a second
build that the first has not got, one training row of that task
(``python -m meshlm.data.widen BASE EXTRA DST --task understanding --exclude out/heldout``).

Why: a task trained on few meshes seen many times is learnt as a lookup (parts-model.md,
"More meshes to read": the shipped model names 10 of 11 held-out meshes it was trained on and
22 of 37 it was not). Repeating rows (:mod:`meshlm.data.subset` ``--repeat``) does not widen
that; rows of new meshes do.

Writes ``DST/{train,validation,test}.jsonl``: BASE's rows unchanged (validation and test rows
only from BASE, so held-out figures stay comparable), then the added training rows. A row's
meshes are the texts of its messages' ``v``/``f`` lines, so the comparison is exact in the
format both builds share (refused when their formats or bins differ). A mesh is skipped when
BASE has it in any message of any split (shown or written), when it is excluded, or when an
earlier row of EXTRA added it: one row per mesh, drawn with ``--seed`` among EXTRA's rows of
that mesh (a build writes one mesh in many question and answer phrasings). ``--exclude`` takes
held-out inputs so they never enter training: JSONL files whose rows have a ``mesh`` field
(either format's text; e.g. ``understand_fresh.jsonl``) and mesh files or folders of them
(``.obj`` ...; e.g. a held-out set's ``references/``), encoded in the dataset's format.
With ``--balance``, each shape family's training rows of the task (a row's family is its
``source``'s procedural uid, ``procedural:cone_5_000854``) are then topped up to the largest
family's count with more of EXTRA's rows of that family -- other question and answer
phrasings of its meshes, BASE's training meshes among them (a reweighing), excluded meshes
and BASE's validation and test meshes never -- drawn with ``--seed``, no line twice: a
family with few distinct meshes (cones, cylinders: the generator makes ~60-90 at
``--max-segments 6``, boxes ~550) would otherwise be rare among the rows, and the rows' most
common family of a vertex and face count learnt as the answer for it (parts-model.md, "More
meshes to read, continued"). BASE's other files (``exemplars.json``, the bank its rows show,
which training puts in the model folder) are copied. ``DST/manifest.json`` is BASE's manifest
with ``widen`` (both sources, EXTRA's build seed, the task, the excluded inputs, how many
meshes were added and why others were skipped, the rows added per family to balance them, the
rows per split) added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from meshlm import meshtext
from meshlm.data.subset import SPLITS, copy_side_files, read_rows
from meshlm.errors import MeshlmError
from meshlm.files import READ_EXTENSIONS, load_mesh
from meshlm.modelfolder import dataset_format
from meshlm.parts import get_format
from meshlm.shapes import family_of_uid


def row_meshes(row: dict) -> list[str]:
    """The meshes of a chat row: each message's ``v``/``f`` lines, for every message with any
    (a generation row with an exemplar shown has two: the exemplar's and the reply's)."""
    out = []
    for message in row.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            lines = [x for x in content.splitlines() if x.startswith(("v ", "f "))]
            out += ["\n".join(lines)] if lines else []
    return out


def excluded_meshes(paths: list[str | Path], fmt: str, bins: int) -> set[str]:
    """The canonical ``fmt`` text of every mesh in ``paths`` (module docstring). Raises
    MeshlmError naming a path that does not exist, or a file and line that cannot be read."""
    out: set[str] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise MeshlmError(f"--exclude {path}: no such file or folder")
        if path.suffix == ".jsonl":
            for n, (_, row) in enumerate(read_rows(path), 1):
                if not isinstance(row.get("mesh"), str):
                    raise MeshlmError(f"{path}:{n}: no 'mesh' text to exclude")
                out.add(meshtext.as_format(row["mesh"], fmt, bins=bins))
            continue
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if file.is_file() and file.suffix.lstrip(".").lower() in READ_EXTENSIONS:
                mesh = load_mesh(file)
                out.add(get_format(fmt).encode(mesh.vertices, mesh.faces, bins=bins))
    return out


def dataset_meshes(folder: str | Path, splits: tuple[str, ...] = SPLITS) -> set[str]:
    """Every mesh text in any message of a built dataset's ``splits`` (:func:`row_meshes`), in
    the format the dataset records. Raises MeshlmError naming the file and line of a bad row."""
    rows = (row for s in splits for _, row in read_rows(Path(folder) / f"{s}.jsonl"))
    return {m for row in rows for m in row_meshes(row)}


def row_family(row: dict) -> str | None:
    """The shape family of a procedural row (its ``source``, ``procedural:<uid>``), else None."""
    source = row.get("source")
    if not isinstance(source, str) or not source.startswith("procedural:"):
        return None
    return family_of_uid(source.split(":", 1)[1])


def _balance(rows: list[tuple[str, dict]], pool: list[tuple[str, dict]], held, rng) -> dict:
    """More of ``pool``'s rows for each family with fewer of ``rows`` than the largest (module
    docstring): the lines to add, by family, each a distinct line not in ``rows`` (a build may
    write the same line twice). ``held``: mesh texts never to add."""
    count: dict[str, int] = {}
    for _, row in rows:
        fam = row_family(row)
        if fam is not None:
            count[fam] = count.get(fam, 0) + 1
    used = {line for line, _ in rows}
    spare: dict[str, dict[str, None]] = {fam: {} for fam in count}  # ordered sets, pool order
    for line, row in pool:
        fam = row_family(row)
        if fam in spare and line not in used and not any(m in held for m in row_meshes(row)):
            spare[fam][line] = None
    target, out = max(count.values(), default=0), {}
    for fam in sorted(count):
        lines = list(spare[fam])
        want = min(target - count[fam], len(lines))
        if want > 0:
            out[fam] = [lines[i] for i in sorted(rng.choice(len(lines), want, replace=False))]
    return out


def _manifest(folder: Path) -> dict:
    if not (folder / "manifest.json").is_file():
        raise MeshlmError(f"{folder}: no manifest.json (not a dataset built by meshlm build-data)")
    return json.loads((folder / "manifest.json").read_text())


def widen(
    base: str | Path,
    extra: str | Path,
    dst: str | Path,
    task: str,
    exclude: list[str | Path] | None = None,
    seed: int = 0,
    balance: bool = False,
) -> dict[str, int]:
    """Write the widened dataset (module docstring); returns the meshes added and skipped
    (and with ``balance`` the rows added to balance the families, ``balanced``).
    Raises MeshlmError when a folder is not a built dataset, the two formats differ, a row is
    not JSON (naming file and line), an exclusion cannot be read, or no mesh is added."""
    base, extra, dst = Path(base), Path(extra), Path(dst)
    manifest, extra_manifest = _manifest(base), _manifest(extra)
    mine, theirs = dataset_format(base), dataset_format(extra)
    if mine != theirs:
        raise MeshlmError(
            f"{extra}: format {theirs.name} at {theirs.bins} bins, "
            f"{base} has {mine.name} at {mine.bins} bins"
        )
    have = dataset_meshes(base)
    held = excluded_meshes(list(exclude or []), mine.name, mine.bins)
    by_mesh: dict[str, list[str]] = {}
    pool = [
        (line, row) for line, row in read_rows(extra / "train.jsonl") if row.get("task") == task
    ]
    for line, row in pool:
        by_mesh.setdefault("\n\n".join(row_meshes(row)), []).append(line)
    rng = np.random.default_rng(seed)
    added, tally = [], {"in_base": 0, "excluded": 0, "no_mesh": 0}
    for mesh, lines in by_mesh.items():  # EXTRA's order: a build's rows are reproducible
        parts = mesh.split("\n\n") if mesh else []
        why = "no_mesh" if not parts else "in_base" if any(m in have for m in parts) else None
        why = why or ("excluded" if any(m in held for m in parts) else None)
        if why:
            tally[why] += 1
            continue
        added.append(lines[int(rng.integers(len(lines)))])
    if not added:
        raise MeshlmError(f"{extra}: no training row of task {task!r} with a mesh {base} lacks")
    new, balanced = len(added), {}
    if balance:
        mine_rows = [(x, r) for x, r in read_rows(base / "train.jsonl") if r.get("task") == task]
        parsed = dict(pool)  # EXTRA's rows, already read
        mine_rows += [(x, parsed[x]) for x in added]
        # BASE's validation and test meshes stay out of training, as the added meshes do
        kept_out = held | dataset_meshes(base, ("validation", "test"))
        balanced = _balance(mine_rows, pool, kept_out, rng)
        added += [line for fam in sorted(balanced) for line in balanced[fam]]
    dst.mkdir(parents=True, exist_ok=True)
    rows = {}
    for split in SPLITS:
        lines = [line for line, _ in read_rows(base / f"{split}.jsonl")]
        lines += added if split == "train" else []
        (dst / f"{split}.jsonl").write_text("".join(x + "\n" for x in lines))
        rows[split] = len(lines)
    copy_side_files(base, dst)  # e.g. the exemplar bank BASE's rows show, which training ships
    manifest["widen"] = {
        "base": str(base),
        "extra": str(extra),
        "extra_seed": extra_manifest.get("seed"),
        "task": task,
        "seed": seed,
        "exclude": [str(p) for p in exclude or []],
        "excluded_meshes": len(held),
        "added": new,
        "skipped": tally,
        "balance": balance,
        "balanced": {fam: len(lines) for fam, lines in balanced.items()},
        "rows": rows,
    }
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    more = {"balanced": len(added) - new} if balance else {}
    return {"added": new, **tally, **more}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.data.widen", description=__doc__)
    ap.add_argument("base")
    ap.add_argument("extra")
    ap.add_argument("dst")
    ap.add_argument("--task", required=True, help="the task whose rows are added")
    ap.add_argument(
        "--exclude", action="append", default=[], metavar="PATH",
        help="held-out meshes never to add: JSONL with 'mesh', mesh files or folders",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="which row of a mesh's rows is added")
    ap.add_argument(
        "--balance", action="store_true",
        help="top each family's rows of the task up to the largest family's count",
    )  # fmt: skip
    args = ap.parse_args(argv)
    try:
        counts = widen(
            args.base, args.extra, args.dst, args.task, args.exclude, args.seed, args.balance
        )
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
