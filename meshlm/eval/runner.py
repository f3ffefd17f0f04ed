"""Evaluation runs: a model against prompts (generation) or against captioned meshes
(understanding), writing ``metrics.json``, one JSON line per sample and a render grid.

Family judgement for generation follows the bundled model's acceptance test: a generated mesh is
of the family of its nearest reference shape in Chamfer distance (squared, 2048 points, unit-cube
normalization; :func:`meshlm.eval.metrics.chamfer_distance`). References come from a folder laid
out like ``meshlm shapes`` output (``<uid>.obj`` + ``captions.csv`` with a ``family`` column).

:func:`heldout_set` makes prompts and meshes that the bundled model never saw: phrasings that are
not among the training templates, and shapes drawn with a seed the training data did not use.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from meshlm import meshtext
from meshlm.codec import Mesh, canonicalize
from meshlm.errors import MeshFormatError, MeshlmError, MissingDependencyError
from meshlm.eval.metrics import as_points, chamfer_distance, topology_stats
from meshlm.eval.text_metrics import bleu1, family_confusion, rouge_l
from meshlm.eval.validity import report_counts, strict_parse_rate
from meshlm.files import load_mesh, save_mesh
from meshlm.plan import count_parts, parse_plan, part_boxes
from meshlm.prompts import find_family, mesh_question, mesh_start
from meshlm.render import render_grid
from meshlm.shapes import check_families, generate, list_families, write_corpus

#: Request phrasings kept out of training (meshlm/data/templates.py has none of these).
HELDOUT_REQUESTS = (
    "Please make a 3D model of {obj}.",
    "I want a mesh of {obj}.",
    "Could you create {obj} as a 3D model?",
    "Generate {obj} in OBJ format, please.",
    "Make a low-poly mesh of {obj}.",
    "3D please: {obj}.",
    "Build me {obj} as a mesh.",
    "Create an OBJ of {obj}.",
)
HELDOUT_QUESTIONS = (
    "Which object does this mesh show?",
    "Name the object in this OBJ.",
    "What kind of thing is this model?",
    "Identify this 3D shape.",
)
HELDOUT_SEED = 424242  # procedural shapes for evaluation; training data uses other seeds


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each non-blank line of a JSON-lines file; a missing file or a
    line that is not a JSON object raises MeshlmError naming the file (and line)."""
    p = Path(path)
    if not p.is_file():
        raise MeshlmError(f"{path}: no such file")
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MeshlmError(f"{path}:{i}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise MeshlmError(f"{path}:{i}: each line must be a JSON object")
        yield i, row


def load_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSON-lines file; a bad line raises MeshlmError naming the file and line."""
    return [row for _, row in iter_jsonl(path)]


def load_references(folder: str | Path, n_points: int = 2048) -> list[tuple[str, np.ndarray]]:
    """(family, point set) for every reference mesh of a ``meshlm shapes``-style folder."""
    folder = Path(folder)
    table = folder / "captions.csv"
    if not table.is_file():
        raise MeshlmError(f"{folder}: no captions.csv with a family column")
    refs = []
    with table.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row.get("family"):
                raise MeshlmError(f"{table}: rows need a family")
            tm = load_mesh(folder / f"{row['uid']}.obj")
            refs.append((row["family"], as_points((tm.vertices, tm.faces), n_points, seed=0)))
    if not refs:
        raise MeshlmError(f"{table}: no references")
    return refs


def nearest_family(mesh: Mesh, refs: list[tuple[str, np.ndarray]], n_points: int = 2048):
    """(family of the nearest reference, its Chamfer distance)."""
    pts = as_points(mesh, n_points, seed=0)
    best = min(((chamfer_distance(pts, p, normalize=False), fam) for fam, p in refs))
    return best[1], float(best[0])


def _progress(items, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit="sample")
    except ImportError:  # pragma: no cover
        return items


def eval_generate(
    engine,
    prompts: list[dict],
    out_dir: str | Path,
    sampling=None,
    references: list[tuple[str, np.ndarray]] | None = None,
    grid: bool = True,
) -> dict:
    """Generate a mesh per prompt row (``prompt``, optional ``family``, optional ``reference``
    mesh path) and score it. Writes ``samples.jsonl``, ``metrics.json``, ``grid.png``. Replies
    are checked and decoded at the engine's mesh format (``engine.bins``: the model's). Geometry,
    topology and repair counts are all of the one mesh the engine returns (``result.mesh``: the
    mesh of the reply that counts, :func:`meshlm.lenient.reply_mesh`)."""
    out = Path(out_dir)
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    rows, texts, meshes, captions = [], [], [], []
    fmt = engine.mesh_format.name
    for i, item in enumerate(_progress(prompts, "generate")):
        if "prompt" not in item:
            raise MeshlmError(f"prompt row {i + 1} has no 'prompt'")
        res = engine.generate(item["prompt"], sampling)
        row = {"i": i, "prompt": item["prompt"], **res.stats.to_dict(), "error": res.error}
        texts.append(res.text)
        start = mesh_start(res.text)
        row["lead_in"] = res.text[:start]  # the words before the mesh (a plan, when stated)
        row.update(_plan_fields(res.text, start, fmt))
        try:
            meshtext.decode_strict(res.text[start:], fmt, engine.bins)
            row["strict"] = True
        except MeshFormatError as exc:
            row["strict"] = False
            row["strict_error"] = str(exc)
            row["strict_error_kind"] = strict_error_kind(exc)
        if res.mesh is not None:
            path = out / "meshes" / f"{i:04d}.obj"
            save_mesh(res.mesh, path)
            row["mesh"] = str(path.relative_to(out))
            try:  # a flat or collinear mesh has no surface to sample: judged as no family
                if references:
                    fam, cd = nearest_family(res.mesh, references)
                    row.update(judged_family=fam, judged_chamfer=cd)
                if item.get("reference"):
                    ref = load_mesh(item["reference"])
                    row["chamfer"] = chamfer_distance(res.mesh, (ref.vertices, ref.faces))
            except MeshlmError as exc:
                row["judge_error"] = str(exc)
        if "family" in item:
            row["family"] = item["family"]
            row["family_ok"] = row.get("judged_family") == item["family"]
        rows.append(row)
        meshes.append(res.mesh)
        captions.append(item["prompt"][:60])
    metrics = _generation_metrics(rows, texts, meshes, engine.bins, fmt)
    metrics["mesh_format"] = {"name": fmt, "bins": engine.bins}
    if references:
        metrics["family_references"] = len(references)
    used = sampling or engine.default_sampling()
    metrics["sampling"] = {
        k: getattr(used, k) for k in ("temperature", "top_p", "top_k", "seed", "constrain")
    }
    # the part templates held the constrained replies (a parts model with part_templates.json)
    metrics["sampling"]["templates"] = bool(
        used.constrain and used.templates and getattr(engine, "templates", None) is not None
    )
    # each request was preceded by an exemplar of its planned family (meshlm.exemplars)
    metrics["sampling"]["exemplar"] = bool(
        used.exemplar and getattr(engine, "exemplars", None) is not None
    )
    # the plan took the shown mesh's part count; with templates, its parts' templates too
    shown = metrics["sampling"]["exemplar"]
    metrics["sampling"]["exemplar_parts"] = shown and (used.exemplar_parts or used.exemplar_layout)
    # the reply went on from the first stage's own plan line
    metrics["sampling"]["exemplar_lead"] = (
        shown and used.exemplar_lead and not (used.exemplar_parts or used.exemplar_layout)
    )
    metrics["sampling"]["exemplar_layout"] = (
        shown and used.exemplar_layout and metrics["sampling"]["templates"]
    )
    _write(out, rows, metrics)
    if grid and rows:
        render_grid(meshes, captions, out / "grid.png", cols=6, size=192)
    return metrics


def _plan_fields(text: str, start: int, fmt: str) -> dict:
    """A reply's plan line (meshlm.plan), when its lead-in states one: the family and part
    count it announced, and (parts format) the parts its mesh text has; with part lines
    (``--plan-boxes``), how many it gave and how many parts of the mesh have their box."""
    plan = parse_plan(text)  # read up to the mesh; a reply cut off before one: all of it
    if plan is None:
        return {}
    fields: dict = {"plan_family": plan.family, "plan_parts": plan.parts}
    if fmt == "parts":
        fields["parts"] = count_parts(text[start:])
        if plan.boxes:
            fields["plan_boxes"] = len(plan.boxes)
            got = _boxes_of(text[start:])
            fields["boxes_kept"] = (
                0 if got is None else sum(a == b for a, b in zip(got, plan.boxes, strict=False))
            )
    return fields


def _boxes_of(parts_text: str):
    """:func:`meshlm.plan.part_boxes`, or None for a text with a part of no readable vertex."""
    try:
        return part_boxes(parts_text)
    except ValueError:
        return None


def _plan_metrics(rows: list[dict]) -> dict:
    """How often replies state a plan, name the asked-for family in it, and keep its count;
    the family rate of the mesh among replies whose plan named the right family."""
    planned = [r for r in rows if "plan_family" in r]
    out: dict = {"rate": len(planned) / len(rows) if rows else 0.0}
    asked = [r for r in planned if "family" in r]
    if asked:
        right = [r for r in asked if r["plan_family"] == r["family"]]
        out["family_named_rate"] = len(right) / len(asked)
        if right:
            out["family_ok_when_named"] = sum(r["family_ok"] for r in right) / len(right)
    counted = [r for r in planned if "parts" in r]
    if counted:
        out["parts_kept_rate"] = sum(r["parts"] == r["plan_parts"] for r in counted) / len(counted)
    boxed = [r for r in planned if r.get("plan_boxes")]
    if boxed:  # replies with part lines; of their part lines, those the mesh's parts kept
        out["boxes_rate"] = len(boxed) / len(rows)
        out["boxes_kept_rate"] = sum(r["boxes_kept"] for r in boxed) / sum(
            r["plan_boxes"] for r in boxed
        )
    return out


def strict_error_kind(exc: MeshFormatError) -> str:
    """The kind of a strict-decoding failure, without its numbers and quoted text:
    ``'face index N out of range'``, ``'duplicate vertex'``, ``'vertices out of order'``, ..."""
    head = re.split(r":|\s[\"'(]", exc.problem, maxsplit=1)[0]
    return re.sub(r"\d+", "N", head).strip()


def _generation_metrics(rows, texts, meshes, bins: int, fmt: str = meshtext.DEFAULT) -> dict:
    """``meshes``: the mesh scored for each row (None where the reply held none)."""
    n = len(rows)
    found = [m for m in meshes if m is not None]
    m = {
        "samples": n,
        "mesh_rate": sum(r.get("mesh") is not None for r in rows) / n if n else 0.0,
        "strict_rate_of_mesh_part": sum(r["strict"] for r in rows) / n if n else 0.0,
        "strict_parse_rate_whole_reply": strict_parse_rate(texts, bins, fmt) if texts else 0.0,
        "cut_off_rate": sum(r["cut_off"] for r in rows) / n if n else 0.0,
        "tokens_per_s": float(np.mean([r["tokens_per_s"] for r in rows])) if n else 0.0,
        "new_tokens_mean": float(np.mean([r["new_tokens"] for r in rows])) if n else 0.0,
        "repairs": report_counts([m.report if m is not None else None for m in meshes])
        if meshes
        else {},
        "strict_errors": dict(
            Counter(r["strict_error_kind"] for r in rows if "strict_error_kind" in r).most_common()
        ),
    }
    if found:
        m["topology"] = topology_stats(found)
    fam = [r for r in rows if "family" in r]
    if fam:
        m["family_accuracy"] = sum(r["family_ok"] for r in fam) / len(fam)
    ch = [r["chamfer"] for r in rows if "chamfer" in r]
    if ch:
        m["chamfer_mean"] = float(np.mean(ch))
    if any("plan_family" in r for r in rows):
        m["plan"] = _plan_metrics(rows)
    return m


def eval_understand(
    engine,
    items: list[dict],
    out_dir: str | Path,
    sampling=None,
    families: list[str] | None = None,
    training: tuple[set[str], str] | None = None,
) -> dict:
    """Describe each mesh (rows with ``mesh`` text or ``path``, ``caption``, optional ``family``,
    optional ``question``, optional ``question_after``: the question follows the mesh) and score
    against the caption: BLEU-1, ROUGE-L, family match and its confusion matrix (``confusion``,
    :func:`~meshlm.eval.text_metrics.family_confusion`). ``training`` (the mesh texts of a
    training set and their format name; ``meshlm.data.widen.dataset_meshes``) marks each row
    ``seen_in_training`` and splits the family accuracy into meshes trained on and the rest:
    a model that read only meshes it memorized scores high on the first and low on the
    second."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, item in enumerate(_progress(items, "describe")):
        mesh_text = _item_mesh(item, i, engine.bins, engine.mesh_format.name)
        row = {"i": i, "caption": item.get("caption", "")}
        try:  # e.g. a mesh too long for the model's context: scored as a wrong answer
            answer = engine.chat(
                [
                    {
                        "role": "user",
                        "content": mesh_question(
                            mesh_text, item.get("question"), bool(item.get("question_after"))
                        ),
                    }
                ],
                sampling,
            ).text.strip()
        except MeshlmError as exc:
            answer, row["error"] = "", str(exc)
        row["answer"] = answer
        if training is not None:
            key = meshtext.as_format(mesh_text, training[1], engine.bins)
            row["seen_in_training"] = key in training[0]
        if row["caption"]:
            row["bleu1"] = bleu1(answer, row["caption"])
            row["rouge_l"] = rouge_l(answer, row["caption"])
        if "family" in item and families:
            row["family"] = item["family"]
            row["predicted_family"] = find_family(answer, families)
            row["family_ok"] = row["predicted_family"] == item["family"]
        rows.append(row)
    n = len(rows)
    metrics = {"samples": n}
    for key in ("bleu1", "rouge_l"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            metrics[key] = float(np.mean(vals))
    fam = [r for r in rows if "family_ok" in r]
    if fam:
        metrics["family_accuracy"] = sum(r["family_ok"] for r in fam) / len(fam)
        # which families are read as which: where a reading fails is a data question
        metrics["confusion"] = family_confusion(
            [r["predicted_family"] for r in fam], [r["family"] for r in fam]
        )
    for name, flag in (("seen", True), ("unseen", False)) if training is not None else ():
        sub = [r for r in fam if r["seen_in_training"] is flag]
        metrics[f"{name}_meshes"] = len(sub)
        if sub:
            metrics[f"family_accuracy_{name}"] = sum(r["family_ok"] for r in sub) / len(sub)
    _write(out, rows, metrics)
    return metrics


def _item_mesh(item: dict, i: int, bins: int, fmt: str = meshtext.DEFAULT) -> str:
    """The mesh of an understanding row as the model reads it: in its format ``fmt`` (canonical
    text of the other format is rewritten; held-out sets store LLaMA-Mesh text)."""
    if item.get("mesh"):
        return meshtext.as_format(item["mesh"], fmt, bins)
    if item.get("path"):
        tm = load_mesh(item["path"])
        return meshtext.write(canonicalize(tm.vertices, tm.faces, bins=bins), fmt)
    raise MeshlmError(f"row {i + 1}: needs 'mesh' (text) or 'path'")


def _write(out: Path, rows: list[dict], metrics: dict) -> None:
    with (out / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    metrics["written"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def heldout_set(
    out_dir: str | Path,
    per_family: int = 3,
    seed: int = HELDOUT_SEED,
    families: Iterable[str] | None = None,
    log: Callable[[str], None] | None = None,
    refs_per_family: int = 10,
    max_segments: int | None = None,
) -> dict[str, Path]:
    """Write a held-out evaluation set: ``prompts.jsonl`` (held-out phrasings of held-out shape
    captions, with their family), ``understand.jsonl`` (held-out meshes with caption and family,
    asked with held-out questions) and ``references/`` (held-out shapes of each family, for
    family judging: ``max(per_family, refs_per_family)`` per family, the prompts' own shapes
    among them).

    Why ten references a family: a family varies a lot (a stool has 3 or 4 legs, round or square
    seat), and with one nearest neighbour among only 3 shapes a family, *real* held-out shapes were
    judged as their own family only 76 % of the time (38 x 3 shapes, measured 2026-11-25); the
    pool size sets the ceiling of the family metric, so it is reported in ``metrics.json``.

    ``max_segments`` draws every shape (prompts', meshes', references') with at most that many
    sides on revolved parts, as a corpus built with ``--max-segments`` (the bundled model's).
    ``families`` limits prompts, meshes *and* references to those families (a model that knows
    only them is judged among them); default: all.
    """
    if per_family < 1 or refs_per_family < 1:
        raise MeshlmError(
            f"per_family and refs_per_family must be >= 1, got {per_family} and {refs_per_family}"
        )
    fams = list(families or list_families())
    check_families(fams)
    out = Path(out_dir)
    refs = out / "references"
    # sample i depends only on (seed, i): the prompts' shapes are the first ones of the pool
    write_corpus(
        refs,
        n=max(per_family, refs_per_family) * len(list_families()),
        seed=seed,
        max_segments=max_segments,
    )
    if len(set(fams)) < len(list_families()):  # judge among the chosen families only
        _keep_families(refs, set(fams))
    rng = np.random.default_rng(seed)
    prompts, understand = [], []
    shapes = generate(per_family * len(list_families()), seed=seed, max_segments=max_segments)
    for k, s in enumerate(shapes):
        if s.family not in fams:
            continue
        req = HELDOUT_REQUESTS[int(rng.integers(len(HELDOUT_REQUESTS)))]
        obj = s.caption.rstrip(".")
        if len(obj) > 1 and not obj[1].isupper():  # "A chair" -> "a chair"; keep "3D ..."
            obj = obj[0].lower() + obj[1:]
        prompts.append({"prompt": req.format(obj=obj), "family": s.family, "uid": s.uid})
        text = canonicalize(s.mesh.vertices, s.mesh.faces).to_text()
        understand.append(
            {
                "mesh": text,
                "caption": s.caption,
                "family": s.family,
                "question": HELDOUT_QUESTIONS[k % len(HELDOUT_QUESTIONS)],
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "prompts": out / "prompts.jsonl",
        "understand": out / "understand.jsonl",
        "references": refs,
    }
    for key, rows in (("prompts", prompts), ("understand", understand)):
        with paths[key].open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    if log:
        log(f"{len(prompts)} prompts, {len(understand)} meshes, references in {refs}")
    return paths


def _keep_families(folder: Path, keep: set[str]) -> None:
    """Drop the shapes of other families from a ``write_corpus`` folder (files and table)."""
    table = folder / "captions.csv"
    with table.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    kept = [rows[0]]
    for row in rows[1:]:
        if row[2] in keep:
            kept.append(row)
        else:
            (folder / f"{row[0]}.obj").unlink()
    with table.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(kept)


def eval_language(
    model: str,
    tasks: str = "mmlu,piqa,hellaswag,gsm8k",
    out_dir: str | Path = "out/eval-language",
    limit: int | None = None,
) -> dict:
    """Run lm-eval-harness on a Hugging Face model (a GPU job) for comparison with LLaMA-Mesh's
    Table 3 (MMLU 5-shot, PIQA, HellaSwag 0-shot, GSM8K 8-shot)."""
    try:
        import lm_eval
    except ImportError:
        raise MissingDependencyError("lm-eval", "eval-language", "meshlm eval language") from None
    shots = {"mmlu": 5, "gsm8k": 8}
    results = {}
    for task in [t.strip() for t in tasks.split(",") if t.strip()]:
        res = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={model}",
            tasks=[task],
            num_fewshot=shots.get(task, 0),
            limit=limit,
        )
        results[task] = res["results"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results
