"""``meshlm eval attributes``: generate a mesh for each prompt and judge its attributes.

Prompt rows (JSONL): ``prompt``, ``family`` and ``attributes``, a dict of counts
(``{"legs": 3}``; keys as in :data:`meshlm.eval.attributes.COUNT_JUDGES`, aliases allowed) and/or
``"proportion"``: a word of :data:`meshlm.eval.attributes.PROPORTIONS` (or a list of them). The
default set is ``eval-heldout-smol/attributes.jsonl`` (60 prompts written by someone who never
saw the training templates).

Generation is :func:`meshlm.eval.runner.eval_generate` (the engine reads each reply in the
model's own text format; ``samples.jsonl``, ``metrics.json`` and ``meshes/*.obj`` are its files);
each mesh is then read back from its OBJ file, canonicalized at the model's bins, and judged by
:mod:`meshlm.eval.attributes`. A prompt without a mesh counts as wrong for every attribute it
asks; an attribute without a judge for its family is reported as unjudged (not counted).

Writes ``attributes.json`` (the report of :func:`summarize`), ``attributes.jsonl`` (one row per
prompt: the generation row, the attributes asked, each verdict) and ``attributes.png`` (a grid of
renders captioned with the verdicts).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from meshlm.codec import Mesh, canonicalize
from meshlm.errors import MeshError, MeshlmError
from meshlm.eval import attributes as att
from meshlm.eval.runner import eval_generate
from meshlm.files import load_mesh
from meshlm.render import render_grid

DEFAULT_PROMPTS = Path(__file__).resolve().parents[2] / "eval-heldout-smol" / "attributes.jsonl"


def judge_row(item: dict, mesh: Mesh | None) -> tuple[list[dict], list[dict]]:
    """Verdicts for one prompt row: (counts, proportions). A count verdict: ``attribute``,
    ``expected``, ``judged`` (None: no mesh or no judge), ``ok`` (None: unjudged); a proportion
    verdict: ``word``, ``ratio``, ``value``, ``median``, ``ok``. Raises MeshlmError for a row
    whose attributes are not a dict or a count that is not an integer."""
    fam, attrs = item.get("family"), item.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise MeshlmError(f"prompt {item.get('prompt')!r}: 'attributes' must be an object")
    counts, props = [], []
    for key, value in attrs.items():
        if key == "proportion":
            for word in [value] if isinstance(value, str) else list(value):
                props.append(_proportion(mesh, fam, str(word)))
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise MeshlmError(f"prompt {item.get('prompt')!r}: count {key!r} must be an integer")
        attr = att.ALIASES.get(key, key)
        judge = att.count_judge(fam, attr) if fam else None
        v = {"attribute": attr, "expected": value, "judged": None, "ok": None}
        if judge is None:
            v["note"] = f"no judge of {attr} for {fam}"
        elif mesh is None:
            v["ok"], v["note"] = False, "no mesh"
        else:
            v["judged"] = judge(mesh)
            v["ok"] = v["judged"] == value
        counts.append(v)
    return counts, props


def _proportion(mesh: Mesh | None, fam: str | None, word: str) -> dict:
    v = {"word": word, "ok": None}
    try:
        rule = att.proportion_rule(fam or "", word)
    except KeyError:
        return {**v, "note": f"unknown proportion word {word!r}"}
    if fam is None:
        return {**v, "note": "no family to compare with"}
    if mesh is None:
        return {**v, "ratio": rule[0], "ok": False, "note": "no mesh"}
    return {"word": word, **att.judge_proportion(mesh, fam, word)}


def _rate(items: list[dict]) -> dict:
    judged = [x for x in items if x["ok"] is not None]
    correct = sum(bool(x["ok"]) for x in judged)
    return {
        "judged": len(judged),
        "correct": correct,
        "accuracy": correct / len(judged) if judged else None,
        "unjudged": len(items) - len(judged),
    }


def summarize(rows: list[dict]) -> dict:
    """The report over judged rows (each with ``family``, ``counts``, ``proportions`` and,
    for the pairwise judge, ``ratios``): count accuracy overall, per attribute, per family and
    per family/attribute; proportion accuracy overall, per word and per family; the pairwise
    judge (:func:`meshlm.eval.attributes.pairwise`)."""
    counts = [dict(v, family=r.get("family")) for r in rows for v in r["counts"]]
    props = [dict(v, family=r.get("family")) for r in rows for v in r["proportions"]]

    def by(items: list[dict], key) -> dict:
        groups = defaultdict(list)
        for x in items:
            groups[key(x)].append(x)
        return {k: _rate(v) for k, v in sorted(groups.items())}

    pair_items = [
        {"i": r["i"], "family": r.get("family"), "word": p["word"], "ratios": r.get("ratios")}
        for r in rows
        for p in r["proportions"]
        if p["ok"] is not None
    ]
    pairs = att.pairwise(pair_items)
    return {
        "prompts": len(rows),
        "mesh_rate": sum(r.get("mesh") is not None for r in rows) / len(rows) if rows else 0.0,
        "counts": {
            **_rate(counts),
            "by_attribute": by(counts, lambda x: x["attribute"]),
            "by_family": by(counts, lambda x: str(x["family"])),
            "by_family_attribute": by(counts, lambda x: f"{x['family']}/{x['attribute']}"),
        },
        "proportions": {
            **_rate(props),
            "by_word": by(props, lambda x: x["word"]),
            "by_family": by(props, lambda x: str(x["family"])),
            "pairwise": {k: pairs[k] for k in ("pairs", "correct", "accuracy")},
        },
        "reference_shapes": {"seed": att.REFERENCE_SEED, "per_family": att.REFERENCE_SHAPES},
    }


def eval_attributes(
    engine, prompts: list[dict], out_dir: str | Path, sampling=None, grid: bool = True
) -> dict:
    """Generate, judge and write (module docstring); returns the report."""

    for k, item in enumerate(prompts, start=1):
        if not isinstance(item.get("prompt"), str) or not isinstance(item.get("family"), str):
            raise MeshlmError(f"prompt row {k} needs 'prompt' and 'family' (text)")
    out = Path(out_dir)
    # the family is ours to judge by: eval_generate would score it without references as wrong
    gen = eval_generate(
        engine, [{"prompt": p["prompt"]} for p in prompts], out, sampling, None, grid=False
    )
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text("utf-8").splitlines()]
    rows, meshes = [], []
    for item, sample in zip(prompts, samples, strict=True):
        mesh = None
        if sample.get("mesh"):
            tm = load_mesh(out / sample["mesh"])
            try:
                mesh = canonicalize(tm.vertices, tm.faces, bins=engine.bins)
            except MeshError:
                mesh = None
        counts, props = judge_row(item, mesh)
        row = {**sample, "family": item["family"], "attributes": item.get("attributes") or {}}
        row.update(counts=counts, proportions=props)
        row["ratios"] = att.extent_ratios(mesh) if mesh is not None else None
        rows.append(row)
        meshes.append(mesh)
    report = summarize(rows)
    report["generation"] = {
        k: gen[k]
        for k in ("mesh_rate", "strict_rate_of_mesh_part", "cut_off_rate", "new_tokens_mean")
        if k in gen
    }
    report["sampling"] = gen.get("sampling")
    report["mesh_format"] = gen.get("mesh_format")
    report["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
    with (out / "attributes.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    (out / "attributes.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if grid and rows:
        render_grid(meshes, [_caption(r) for r in rows], out / "attributes.png", cols=6, size=192)
    return report


def _caption(row: dict) -> str:
    marks = {True: "ok", False: "WRONG", None: "n/a"}
    parts = [
        f"{v['attribute']} {v['expected']}->{v['judged']} {marks[v['ok']]}" for v in row["counts"]
    ]
    parts += [f"{v['word']} {marks[v['ok']]}" for v in row["proportions"]]
    return f"{'; '.join(parts)} | {row['prompt']}"  # the verdicts first: captions are cut
