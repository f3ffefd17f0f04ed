"""Which parts of a mesh text has a model learnt? Teacher-forced next-token accuracy by
kind of token.

    python -m meshlm.eval.teacher_forced MODEL DATASET_SPLIT.jsonl [N]

``MODEL``: a transformers model folder, a LoRA adapter folder meshlm trained (its merged copy is
built once in the cache) or a model name (``bundled``, ``smol``).

The model reads each of the first ``N`` (default 40) generation rows of a ``meshlm build-data``
split whole (the parts text, or LLaMA-Mesh text, which counts as one part), and at every
position its most likely next token is compared with the data's (argmax, no sampling). Tokens
are grouped by what they start in the reply's mesh text
(:func:`meshlm.eval.mesh_kinds.mesh_token_kinds`):

* ``coord copy``: a coordinate whose value already occurred on the same axis earlier in the same
  part (a box's second ring of vertices repeats the first ring's values: only two values per
  axis), i.e. a value the model can copy from the context;
* ``coord new``: any other coordinate;
* ``face line``: the first token of a face line;
* ``face index``: the first token of each index of a face line (the templates of the parts
  text, ``-3 -2 -1``; in LLaMA-Mesh text, absolute indices into the coordinate-sorted
  vertices, which change from shape to shape);
* ``part start``: the first token of a vertex line that follows a face line (a new part).
* ``face end: more``: the token right after any other face line, the newline before the part's
  next face line: where the part goes on (a model that stops here writes a part short of faces);
* ``part end: more`` / ``part end: stop``: the token right after a part's last face line -- the
  newline before the next part, or the end of turn that ends the mesh: where the reply goes on
  or stops (``part start``, the ``v`` after that newline, is a foregone conclusion).
* ``coord as shown`` / ``coord moved``: in a row whose request is preceded by an exemplar
  (:mod:`meshlm.exemplars`) with the reply's face lines, each coordinate again, by whether it
  is the exemplar's value at the same place (:func:`meshlm.eval.mesh_kinds.shown_kinds`): does
  the model keep what it was shown where the reply keeps it, and move it where the reply does?
* ``coord: line repeat``: a vertex line's last coordinate whose line starts like an earlier
  line of its part (:func:`meshlm.eval.mesh_kinds.repeat_completions`), with ``repeats``: how
  often the likeliest value is the one that writes that line twice (the commonest strict
  failure of greedy replies; the ``mesh_repeat_weight`` loss term aims at it). These
  coordinates are counted under ``coord copy``/``coord new`` too.

Why: a model can learn the face templates and the parts structure yet fail to copy a part's
coordinates, and then writes wedges instead of boxes (docs/parts-model.md, "16 families");
these figures tell the two apart in seconds, where a held-out generation run takes minutes.

And does the reply follow the request? The first vertex of a reply is where it commits to a
shape (the parts order puts the part with the fewest vertices first, then by position; a cone's
reply starts at x 31, a car's at x 0), so ``first x``/``first y``/``first z`` report, for the
reply's first three coordinates, the accuracy of the likeliest value, that of always writing
the rows' most common value there (``majority``), and how much the model's distribution over
values moves from request to request (``dependence``: the mean total-variation distance between
a row's next-token distribution, renormalized over the tokens that spell a whole number, and
the rows' mean distribution; 0 = the same whatever is asked) beside the same figure for the
data (``data dependence``: each row's value against the rows' value frequencies). A model that
ignores the request scores ``majority`` at best and ``dependence`` near 0 (docs/parts-model.md:
the SmolLM2 parts model after the new-value weight).

A coordinate's first token is scored (a whole number is one token with the number tokens).
Needs the ``train`` extra (torch, transformers).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from meshlm import modelfolder
from meshlm._quiet import debug_enabled, hf_progress_off, install
from meshlm.errors import MeshlmError, require
from meshlm.eval.mesh_kinds import (
    KINDS,
    SHOWN_KINDS,
    mesh_token_kinds,
    repeat_completions,
    shown_kinds,
)
from meshlm.eval.runner import iter_jsonl
from meshlm.exemplars import shown_mesh
from meshlm.infer.named import transformers_folder


def score(
    kinds: dict[int, str],
    earlier: dict[int, frozenset[str]],
    offsets: list[int],
    ids: list[int],
    pred: list[int],
    decode: Callable[[list[int]], str],
    hit: Counter,
    total: Counter,
    repeats: Counter | None = None,
) -> None:
    """Add one text's teacher-forced hits to the counters ``hit``, ``total`` and ``repeats``
    (``collections.Counter`` by kind).

    ``kinds``/``earlier``: from :func:`mesh_token_kinds`; ``offsets``: each token's start
    offset in the text; ``ids``: the text's token ids; ``pred``: the argmax id after each
    position (``pred[i - 1]`` predicts ``ids[i]``); ``decode``: ids -> text. A token counts
    under the kind of the mesh-text item it starts; a wrong ``coord new`` whose decoded
    prediction (stripped) is in ``earlier`` counts as a repeat (when ``repeats`` is given).
    """
    for i, a in enumerate(offsets):
        kind = kinds.get(a)
        if i and kind:
            total[kind] += 1
            hit[kind] += pred[i - 1] == ids[i]
            if repeats is not None and kind == "coord new" and pred[i - 1] != ids[i]:
                repeats[kind] += decode([pred[i - 1]]).strip() in earlier[a]


#: The report's key for the last coordinates that one value would make a repeated vertex line
#: (:func:`meshlm.eval.mesh_kinds.repeat_completions`; ``repeats``: predicted that value).
REPEAT = "coord: line repeat"
#: The report's keys for a reply's first three coordinates.
FIRST = ("first x", "first y", "first z")
_WHOLE_NUMBER = re.compile(r"-?\d+")


def first_value_report(dists: list[dict[str, float]], truths: list[str]) -> dict[str, float]:
    """The figures of one of :data:`FIRST` over rows (module docstring).

    ``dists``: per row, value -> the model's probability (summing to 1 over the values the
    tokenizer can spell in one token); ``truths``: per row, the data's value. Returns
    ``{"correct", "total", "accuracy", "majority", "dependence", "data dependence"}``.
    Raises ValueError for no rows or lists of different lengths."""
    if not truths or len(dists) != len(truths):
        raise ValueError("first_value_report: needs one distribution a row, at least one row")
    n = len(truths)
    correct = sum(max(d, key=d.get) == t for d, t in zip(dists, truths, strict=True))
    freq = Counter(truths)
    values = set().union(*dists)
    mean = {v: sum(d.get(v, 0.0) for d in dists) / n for v in values}
    dependence = sum(0.5 * sum(abs(d.get(v, 0.0) - mean[v]) for v in values) for d in dists) / n
    return {
        "correct": correct,
        "total": n,
        "accuracy": correct / n,
        "majority": freq.most_common(1)[0][1] / n,
        "dependence": dependence,
        "data dependence": sum(1 - freq[t] / n for t in truths) / n,
    }


def _value_tokens(tok) -> tuple[list[int], list[str]]:
    """The ids of the tokens that spell a whole number (stripped) and those numbers."""
    ids, values = [], []
    for i in range(len(tok)):
        text = tok.decode([i]).strip()
        if _WHOLE_NUMBER.fullmatch(text):
            ids.append(i)
            values.append(str(int(text)))
    return ids, values


def accuracy(folder: str | Path, rows: list[dict], threads: int = 2) -> dict[str, dict]:
    """Teacher-forced argmax accuracy by kind over ``rows`` (chat rows whose last message is the
    assistant's parts-format reply). Returns ``{kind: {"correct", "total", "accuracy"}}``;
    ``coord new`` also has ``"repeats"``: how often the predicted token is a value already
    written on that axis in the part (the error that can make a greedy reply write a vertex
    twice, which strict decoding refuses). Only a value's first token is compared: exact with
    meshlm's number tokens (one token a value), a lower bound otherwise. The keys of
    :data:`FIRST` hold :func:`first_value_report` for the reply's first three coordinates.
    Raises :class:`MeshlmError` if no row is given or no token of a kind lines up."""
    torch = require("torch", "train", "teacher-forced accuracy")
    transformers = require("transformers", "train", "teacher-forced accuracy")
    if not rows:
        raise MeshlmError("teacher-forced accuracy: no generation rows")
    torch.set_num_threads(threads)
    with hf_progress_off():
        tok = transformers.AutoTokenizer.from_pretrained(str(folder))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    value_ids, values = _value_tokens(tok)
    hit, total, repeats = Counter(), Counter(), Counter()
    dists: list[list[dict[str, float]]] = [[], [], []]
    truths: list[list[str]] = [[], [], []]
    for row in rows:
        text = tok.apply_chat_template(row["messages"], tokenize=False)
        reply = row["messages"][-1]["content"].strip()
        earlier: dict[int, frozenset[str]] = {}
        start = text.rindex(reply[:50])
        kinds = mesh_token_kinds(text, start, earlier)
        lines = repeat_completions(text, start)
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = enc["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        pred = logits.argmax(-1).tolist()
        offsets = [a for a, _ in enc["offset_mapping"]]
        score(kinds, earlier, offsets, ids, pred, tok.decode, hit, total, repeats)
        for i, a in enumerate(offsets):  # where one value would write a vertex line twice
            if i and (bad := lines.get(a)) is not None:
                total[REPEAT] += 1
                hit[REPEAT] += pred[i - 1] == ids[i]
                repeats[REPEAT] += tok.decode([pred[i - 1]]).strip() in bad
        shown = shown_mesh(row["messages"][-2]["content"]) if len(row["messages"]) > 1 else None
        if shown:
            score(shown_kinds(text, start, shown), {}, offsets, ids, pred, tok.decode, hit, total)
        coords = sorted(a for a, k in kinds.items() if k.startswith("coord"))[:3]
        at = {a: i for i, a in enumerate(offsets) if i}
        for axis, a in enumerate(coords):
            if a in at:  # the value's first token, predicted from the position before it
                p = logits[at[a] - 1, value_ids].softmax(-1).tolist()
                dist: dict[str, float] = {}
                for v, q in zip(values, p, strict=True):  # " 3" and "3" are one value
                    dist[v] = dist.get(v, 0.0) + q
                dists[axis].append(dist)
                truths[axis].append(tok.decode([ids[at[a]]]).strip())
    if not total:
        raise MeshlmError(f"{folder}: no mesh token lined up with its tokenizer's offsets")
    report = {
        k: {"correct": hit[k], "total": total[k], "accuracy": hit[k] / total[k]}
        for k in KINDS + SHOWN_KINDS + (REPEAT,)
        if total[k]
    }
    for k in ("coord new", REPEAT):
        if k in report:
            report[k]["repeats"] = repeats[k]
    for key, d, t in zip(FIRST, dists, truths, strict=True):
        if t:
            report[key] = first_value_report(d, t)
    return report


def generation_rows(split: Path, n: int) -> list[dict]:
    """The first ``n`` generation rows of a ``meshlm build-data`` split (JSONL). Raises
    :class:`MeshlmError` naming ``split:line`` for a line that is not a JSON object or a
    generation row without a ``messages`` list ending in a reply (lines read by
    :func:`meshlm.eval.runner.iter_jsonl`); ``OSError`` if the file cannot be read."""
    rows: list[dict] = []
    for number, row in iter_jsonl(split):
        if len(rows) == n:
            break
        if row.get("task") != "generation":
            continue
        messages = row.get("messages")
        if not (isinstance(messages, list) and messages and isinstance(messages[-1], dict)):
            raise MeshlmError(f"{split}:{number}: a generation row without messages")
        if not isinstance(messages[-1].get("content"), str):
            raise MeshlmError(f"{split}:{number}: the last message has no text content")
        rows.append(row)
    return rows


def _main(argv: list[str]) -> int:
    """Run on ``MODEL SPLIT [N]``; bad input is one line on stderr and exit status 2."""
    try:
        if not 2 <= len(argv) <= 3:
            raise MeshlmError("usage: python -m meshlm.eval.teacher_forced MODEL SPLIT.jsonl [N]")
        folder, split = argv[0], Path(argv[1])
        n = int(argv[2]) if len(argv) > 2 else 40
        rows = generation_rows(split, n)
        folder = transformers_folder(folder, modelfolder.BUNDLED_MODEL.parent)
        report = accuracy(folder, rows)
    except (MeshlmError, OSError, ValueError) as e:
        if debug_enabled():
            raise
        print(f"teacher_forced: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    install()  # libraries' warnings off, as for the meshlm command (peft warns on adapters)
    sys.exit(_main(sys.argv[1:]))
