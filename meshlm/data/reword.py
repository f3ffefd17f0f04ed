"""A parts dataset with requests reworded in everyday words, without an exemplar
(``python -m meshlm.data.reword SRC DST [--share 0.4] [--seed 0] [--vocabulary FILE]``).

Why: the procedural captions name each family with a handful of nouns ("cylinder",
"cylindrical column", "hexagonal prism"), so a model trained on them plans the wrong family for a
request that says "a drum" or "a park bench" (docs/parts-model.md). And an exemplar-conditioned
model (:mod:`meshlm.exemplars`) writes its plan line on the *bare* request -- the exemplar is
chosen by that plan -- while every exemplified training row shows the family's name in the
exemplar's header first, so those rows no longer teach the plan.

This step copies each single-request generation row of ``SRC``'s training split with a plan line,
with probability ``share``, into a new training row: the request as it was before the exemplar
(:func:`meshlm.exemplars.without_exemplar`), the phrase that names the family (its own words or a
synonym, :func:`meshlm.prompts.family_span`) replaced by a term of that family's vocabulary
(:data:`VOCABULARY`: synonyms, everyday objects, and -- a third of the time -- an adjective
before it), the lead-in reworded the same way, the plan line and the mesh unchanged. The copy
comes right after its row. Validation and test rows are left as they are (held-out figures stay
comparable); the folder's other files (the exemplar bank, ``exemplars.json``, which training
puts in the model folder) are copied. ``DST/manifest.json`` is ``SRC``'s with ``reword`` added:
the source, the vocabulary file and its sha256, the share, the seed, the rows added per family.

The vocabulary (``meshlm/assets/vocabulary.json``) was written from general knowledge by a helper
that saw neither the training templates nor the evaluation's held-out prompts (2026-12-04);
entries that name another of meshlm's families (:func:`meshlm.prompts.find_family`) were
dropped (tests/test_reword.py checks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
from pathlib import Path

from meshlm import exemplars
from meshlm.data.subset import SPLITS, read_rows
from meshlm.errors import MeshlmError
from meshlm.plan import parse_plan
from meshlm.prompts import family_span

VOCABULARY = Path(__file__).resolve().parents[1] / "assets" / "vocabulary.json"
_KEYS = ("synonyms", "objects", "adjectives")
_OWN = {"manifest.json", *(f"{s}.jsonl" for s in SPLITS)}  # written here; other files copied


def load_vocabulary(path: str | Path = VOCABULARY) -> dict[str, dict[str, list[str]]]:
    """``{family: {"synonyms": [...], "objects": [...], "adjectives": [...]}}`` from ``path``.
    Raises MeshlmError naming the file for JSON that is not such a mapping (each list of
    non-empty lowercase strings, ``synonyms`` or ``objects`` non-empty)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MeshlmError(f"{path}: cannot read the vocabulary ({exc})") from None
    if not isinstance(data, dict):
        raise MeshlmError(f"{path}: a vocabulary is a JSON object of families")
    for family, entry in data.items():
        if not isinstance(entry, dict):
            raise MeshlmError(f"{path}: {family}: expected an object with {', '.join(_KEYS)}")
        for key in _KEYS:
            words = entry.get(key, [])
            if not isinstance(words, list) or not all(
                isinstance(w, str) and w and w == w.lower() for w in words
            ):
                raise MeshlmError(f"{path}: {family}.{key}: expected a list of lowercase words")
        if not entry.get("synonyms") and not entry.get("objects"):
            raise MeshlmError(f"{path}: {family}: no synonyms or objects")
    return data


_COUNT = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve) $", re.I
)


def reword(text: str, family: str, term: str) -> str | None:
    """``text`` with the first phrase naming ``family`` replaced by ``term`` (a preceding "a"
    or "an" agreeing with it), or None when ``text`` names no such phrase or the phrase is
    counted ("four steps": an attribute, not the object's name)."""
    span = family_span(text, family)
    if span is None:
        return None
    a, b = span
    head = text[:a]
    if _COUNT.search(head):
        return None
    article = re.search(r"\b([Aa]n?) $", head)
    if article:
        word = "an" if term[0] in "aeiou" else "a"
        if article.group(1)[0] == "A":
            word = word.capitalize()
        head = head[: article.start(1)] + word + " "
    return head + term + text[b:]


def _term(rng: random.Random, entry: dict[str, list[str]]) -> str:
    term = rng.choice(entry.get("synonyms", []) + entry.get("objects", []))
    if entry.get("adjectives") and rng.random() < 1 / 3:
        term = f"{rng.choice(entry['adjectives'])} {term}"
    return term


def reword_dataset(
    src: str | Path,
    dst: str | Path,
    share: float = 0.4,
    seed: int = 0,
    vocabulary: str | Path = VOCABULARY,
) -> dict[str, int]:
    """Write the reworded dataset (module docstring); returns rows added per family.

    Raises MeshlmError when ``src`` has no manifest, a row is not JSON (file and line), the
    share is outside 0..1, the vocabulary is malformed or lacks a family a plan names, or no
    row could be reworded."""
    src, dst = Path(src), Path(dst)
    if not 0.0 <= share <= 1.0:
        raise MeshlmError(f"--share {share}: a share is between 0 and 1")
    if not (src / "manifest.json").is_file():
        raise MeshlmError(f"{src}: no manifest.json (not a dataset built by meshlm build-data)")
    words = load_vocabulary(vocabulary)
    rng = random.Random(seed)
    added: dict[str, int] = {}
    out: dict[str, list[dict]] = {}
    for split in SPLITS:
        rows = []
        for _, row in read_rows(src / f"{split}.jsonl"):
            rows.append(row)
            if split != "train" or row.get("task") != "generation":
                continue
            if not exemplars.single_request(row):
                continue
            plan = parse_plan(row["messages"][-1]["content"])
            if plan is None or rng.random() >= share:
                continue
            if plan.family not in words:
                raise MeshlmError(f"{vocabulary}: no words for the family {plan.family!r}")
            term = _term(rng, words[plan.family])
            request = exemplars.without_exemplar(row["messages"][-2]["content"])
            asked = reword(request, plan.family, term)
            if asked is None:
                continue
            reply = row["messages"][-1]["content"]
            cut = reply.find("Plan:")
            lead, rest = (reply[:cut], reply[cut:]) if cut >= 0 else ("", reply)
            lead = reword(lead, plan.family, term) or lead
            messages = [dict(m) for m in row["messages"]]
            messages[-2]["content"] = asked
            messages[-1]["content"] = lead + rest
            copy = {k: v for k, v in row.items() if k not in ("messages", "exemplar")}
            rows.append({**copy, "messages": messages, "reworded": term})
            added[plan.family] = added.get(plan.family, 0) + 1
        out[split] = rows
    if not added:
        raise MeshlmError(f"{src}: no training request named its family in words to replace")
    dst.mkdir(parents=True, exist_ok=True)
    for split, rows in out.items():
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for other in src.iterdir():  # the exemplar bank the rows show, which training ships
        if other.is_file() and other.name not in _OWN:
            shutil.copy2(other, dst / other.name)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["reword"] = {
        "source": str(src),
        "vocabulary": str(vocabulary),
        "vocabulary_sha256": hashlib.sha256(Path(vocabulary).read_bytes()).hexdigest(),
        "share": share,
        "seed": seed,
        "added": dict(sorted(added.items())),
        "rows": {s: len(r) for s, r in out.items()},
    }
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return added


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m meshlm.data.reword", description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--share", type=float, default=0.4, help="training rows copied reworded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocabulary", default=str(VOCABULARY), help="family -> words (JSON)")
    args = ap.parse_args(argv)
    try:
        added = reword_dataset(args.src, args.dst, args.share, args.seed, args.vocabulary)
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dst}: {sum(added.values())} training rows added reworded ({added})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
