"""The held-out set of the smol/bundled comparison, from inputs nobody trained on.

    python -m meshlm.eval.smol_heldout eval/smol-heldout [INPUTS]

Writes into that folder (beside what ``meshlm eval heldout`` wrote there: ``references/`` and
``understand.jsonl`` of held-out shapes): ``prompts_fresh.jsonl``, the mesh requests of
``eval-heldout-smol/mesh_requests.jsonl`` (written by a helper who never saw the training
templates) in round-robin order over the families, and ``understand_fresh.jsonl``, the
held-out meshes asked with that helper's questions (``describe_questions.jsonl``, the question
before or after the mesh as written). ``INPUTS`` (default ``eval-heldout-smol``) is another
folder of the same two files, e.g. ``eval-heldout-parts`` (all 38 families).

Only the families of the folder's references are kept (``meshlm eval heldout --family``: a model
that knows 16 families is asked for those 16). Where ``INPUTS`` holds ``attributes.jsonl`` (the
attribute prompts of ``meshlm eval attributes``), its rows of those families are written to
``attributes_fresh.jsonl``. Where it holds ``read_questions.json`` (questions a second helper
wrote for a pasted mesh, 2026-12-04), every reference mesh is asked with one of them in turn:
``understand_references.jsonl`` (``path``, ``caption``, ``family``, ``question``,
``question_after``; 10 meshes a family instead of 3, for reading measured on more meshes).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

INPUTS = Path(__file__).resolve().parents[2] / "eval-heldout-smol"


def write_fresh(folder: str | Path, inputs: str | Path = INPUTS) -> list[Path]:
    """Write the files; returns their paths (``prompts_fresh.jsonl``, ``understand_fresh.jsonl``
    and, where ``inputs`` has attribute prompts, ``attributes_fresh.jsonl``). Raises
    OSError/ValueError on missing or bad input files."""
    folder, inputs = Path(folder), Path(inputs)

    def rows(p: Path) -> list[dict]:
        return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]

    with (folder / "references" / "captions.csv").open(newline="", encoding="utf-8") as fh:
        references = list(csv.DictReader(fh))
    known = {r["family"] for r in references}
    prompts = folder / "prompts_fresh.jsonl"
    by_family: dict[str, list[dict]] = {}
    for r in rows(inputs / "mesh_requests.jsonl"):
        if r["family"] in known:
            by_family.setdefault(r["family"], []).append(r)
    # round robin over the families: the first N rows (eval generate --limit N) stay balanced
    ordered = [
        fam[i]
        for i in range(max(map(len, by_family.values())))
        for fam in by_family.values()
        if i < len(fam)
    ]
    with prompts.open("w", encoding="utf-8") as f:
        for r in ordered:
            f.write(json.dumps({"prompt": r["prompt"], "family": r["family"]}) + "\n")
    questions = rows(inputs / "describe_questions.jsonl")
    understand = folder / "understand_fresh.jsonl"
    with understand.open("w", encoding="utf-8") as f:
        for i, u in enumerate(rows(folder / "understand.jsonl")):
            q = questions[i % len(questions)]
            f.write(
                json.dumps(
                    {**u, "question": q["question"], "question_after": q["position"] == "after"}
                )
                + "\n"
            )
    written = [prompts, understand]
    if (inputs / "attributes.jsonl").is_file():
        written.append(folder / "attributes_fresh.jsonl")
        kept = [r for r in rows(inputs / "attributes.jsonl") if r["family"] in known]
        written[-1].write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    if (inputs / "read_questions.json").is_file():
        asks = json.loads((inputs / "read_questions.json").read_text(encoding="utf-8"))
        asks = asks["questions"]
        written.append(folder / "understand_references.jsonl")
        with written[-1].open("w", encoding="utf-8") as f:
            for i, r in enumerate(references):
                q = asks[i % len(asks)]
                path = folder / "references" / f"{r['uid']}.obj"
                row = {"path": str(path), "caption": r["caption"], "family": r["family"]}
                f.write(json.dumps({**row, "question": q["text"], "question_after": q["after"]}))
                f.write("\n")
    return written


if __name__ == "__main__":
    for p in write_fresh(*sys.argv[1:3]):
        print(p)
