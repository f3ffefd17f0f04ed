"""``meshlm eval generate | understand | language | heldout | ... | compare``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from meshlm import modelfolder
from meshlm.cli.app import app
from meshlm.cli.infer_cmds import (
    MAX_NEW_HELP,
    ExemplarLayoutOpt,
    ExemplarLeadOpt,
    ExemplarPartsOpt,
    GuidanceOpt,
    ModelBinsOpt,
    ModelOpt,
    NoExemplarOpt,
    ThreadsOpt,
    warn_notes,
)
from meshlm.data.conversations import mesh_text
from meshlm.data.widen import dataset_meshes
from meshlm.errors import MeshlmError
from meshlm.eval.attributes_eval import DEFAULT_PROMPTS, eval_attributes
from meshlm.eval.language_kept import grade_facts, open_replies, reply_pairs, reply_perplexity
from meshlm.eval.novelty import load_generations, novelty, recorded_dataset, training_set
from meshlm.eval.paired import compare, pair_rows
from meshlm.eval.runner import (
    eval_generate,
    eval_language,
    eval_understand,
    heldout_set,
    iter_jsonl,
    load_jsonl,
    load_references,
)
from meshlm.infer import Sampling, load
from meshlm.infer.named import transformers_folder
from meshlm.shapes import family_of_uid, list_families

eval_app = typer.Typer(
    help="Measure a model: mesh generation, mesh understanding, language.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")


def _summary(title: str, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, float):
            table.add_row(k, f"{v:.4f}")
        elif isinstance(v, int | str):
            table.add_row(k, str(v))
        elif isinstance(v, dict) and k == "topology":
            for kk in ("watertight_rate", "manifold_rate", "degenerate_face_rate"):
                if kk in v:
                    table.add_row(f"topology.{kk}", f"{v[kk]:.4f}")
        elif isinstance(v, dict) and k == "confusion":  # the three commonest misreadings
            wrong = [(n, y, p) for y, row in v.items() for p, n in row.items() if p != y]
            top = sorted(wrong, key=lambda t: (-t[0], t[1], t[2]))[:3]
            table.add_row("misread most", ", ".join(f"{y} as {p} {n}x" for n, y, p in top) or "-")
    Console().print(table)


@eval_app.command("generate")
def eval_generate_cmd(
    prompts: Path = typer.Option(
        ..., "--prompts", help="JSONL: prompt, optional family/reference."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    model: str | None = ModelOpt,
    backend: str = typer.Option("auto", "--backend", "-b"),
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    references: Path | None = typer.Option(
        None, "--references", help="meshlm-shapes folder to judge families by."
    ),
    no_constrain: bool = typer.Option(False, "--no-constrain"),
    no_templates: bool = typer.Option(
        False,
        "--no-templates",
        help="Constrained parts model: any valid part, not only its part templates.",
    ),
    temperature: float | None = typer.Option(
        None,
        "--temperature",
        "-t",
        help="0 = greedy. Default: the model's generation_config.json, else 0.7.",
    ),
    max_new_tokens: int = typer.Option(8192, "--max-new-tokens", help=MAX_NEW_HELP),
    seed: int = typer.Option(0, "--seed"),
    guidance: float | None = GuidanceOpt,
    no_exemplar: bool = NoExemplarOpt,
    exemplar_lead: bool | None = ExemplarLeadOpt,
    exemplar_parts: bool = ExemplarPartsOpt,
    exemplar_layout: bool = ExemplarLayoutOpt,
    limit: int | None = typer.Option(None, "--limit", help="Only the first N prompts."),
) -> None:
    """Generate a mesh for every prompt; write metrics.json, samples.jsonl and grid.png."""

    rows = load_jsonl(prompts)[:limit]
    refs = load_references(references) if references else None
    engine = warn_notes(load(model, backend, threads=threads, bins=bins))
    s = engine.default_sampling(
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        constrain=not no_constrain,
        templates=not no_templates,
        guidance=guidance,
        exemplar=not no_exemplar,
        exemplar_lead=exemplar_lead,
        exemplar_parts=exemplar_parts or None,
        exemplar_layout=exemplar_layout or None,
    )
    metrics = eval_generate(engine, rows, out, s, refs)
    _summary(f"eval generate ({len(rows)} prompts) -> {out}", metrics)


@eval_app.command("understand")
def eval_understand_cmd(
    data: Path = typer.Option(
        ...,
        "--data",
        help="JSONL (mesh|path, caption, family) or a built dataset folder (its test split).",
    ),
    out: Path = typer.Option(..., "--out", "-o"),
    model: str | None = ModelOpt,
    backend: str = typer.Option("auto", "--backend", "-b"),
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    limit: int | None = typer.Option(None, "--limit"),
    train: Path | None = typer.Option(
        None,
        "--train",
        help="A built dataset: also the family accuracy on meshes its training rows hold "
        "(seen) and on the rest (unseen).",
    ),
) -> None:
    """Describe held-out meshes and score the descriptions against their captions."""

    rows = _understand_rows(data)[:limit]
    if not rows:
        raise MeshlmError(f"{data}: no understanding samples")
    engine = warn_notes(load(model, backend, threads=threads, bins=bins))
    s = Sampling(temperature=0.0, max_new_tokens=max_new_tokens, constrain=False)
    seen = None
    if train is not None:
        if not (train / "train.jsonl").is_file():
            raise MeshlmError(f"--train {train}: no train.jsonl (a dataset built by build-data)")
        seen = (dataset_meshes(train, ("train",)), modelfolder.dataset_format(train).name)
    metrics = eval_understand(engine, rows, out, s, families=list_families(), training=seen)
    _summary(f"eval understand ({len(rows)} meshes) -> {out}", metrics)


def _understand_rows(data: Path) -> list[dict]:

    if data.is_file():
        return load_jsonl(data)
    test = data / "test.jsonl"
    if not test.is_file():
        raise MeshlmError(f"{data}: neither a JSONL file nor a dataset folder with test.jsonl")

    rows = []
    for r in load_jsonl(test):
        if r.get("task") != "understanding" or len(r.get("messages", [])) < 2:
            continue
        user, answer = r["messages"][-2]["content"], r["messages"][-1]["content"]
        mesh = mesh_text(user)
        if mesh is None:
            continue
        row = {"mesh": mesh, "caption": answer}
        src = str(r.get("source", ""))
        if src.startswith("procedural:"):
            row["family"] = family_of_uid(src.split(":", 1)[1])
        rows.append(row)
    return rows


@eval_app.command("language")
def eval_language_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Hugging Face model folder or hub id."),
    tasks: str = typer.Option("mmlu,piqa,hellaswag,gsm8k", "--tasks"),
    out: Path = typer.Option(Path("out/eval-language"), "--out", "-o"),
    limit: int | None = typer.Option(None, "--limit", help="Examples per task (smoke runs)."),
) -> None:
    """MMLU, PIQA, HellaSwag, GSM8K through lm-eval-harness (a GPU job; needs `lm-eval`)."""

    results = eval_language(model, tasks, out, limit)
    typer.echo(json.dumps(results, indent=2, default=str))


@eval_app.command("heldout")
def eval_heldout_cmd(
    out: Path = typer.Option(..., "--out", "-o"),
    per_family: int = typer.Option(3, "--per-family", help="Prompts and meshes per family."),
    refs_per_family: int = typer.Option(
        10, "--refs-per-family", help="Reference shapes per family for family judging."
    ),
    max_segments: int = typer.Option(
        None,
        "--max-segments",
        help="Draw every shape with at most this many sides on revolved "
        "parts (as the training corpus; the bundled model: 6).",
    ),
    family: list[str] = typer.Option(
        [], "--family", help="Only these families, references included (repeatable); default: all."
    ),
) -> None:
    """Write a held-out evaluation set (prompts, meshes, references) for the bundled model."""

    heldout_set(
        out,
        per_family=per_family,
        refs_per_family=refs_per_family,
        max_segments=max_segments,
        families=list(family) or None,
        log=typer.echo,
    )


@eval_app.command("language-kept")
def eval_language_kept_cmd(
    facts: Path = typer.Option(..., "--facts", help="JSONL: question, answers (list)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    model: str | None = ModelOpt,
    backend: str = typer.Option("auto", "--backend", "-b"),
    threads: int | None = ThreadsOpt,
    open_prompts: Path | None = typer.Option(
        None, "--open", help="JSONL with 'prompt': replies written verbatim to open.jsonl."
    ),
    chats: Path | None = typer.Option(
        None,
        "--chats",
        help="JSONL whose replies are scored by perplexity: chats (messages: user, assistant), "
        "e.g. the base's own replies (meshlm distill-chats), or prompt/reply rows, e.g. the "
        "open.jsonl of the base's language-kept run.",
    ),
    hf_model: Path | None = typer.Option(
        None,
        "--hf-model",
        help="transformers folder for the perplexity (a GGUF has no log-probs here); default: "
        "the one behind --model (an adapter's merged copy, smol-base's folder).",
    ),
) -> None:
    """Is the language kept? Facts graded by contains-match, open replies, reply perplexity
    (meshlm/eval/language_kept.py); writes metrics.json, facts.jsonl, open.jsonl."""

    if chats and hf_model is None and model is None:  # refused before anything is loaded
        raise MeshlmError("--chats needs --model or --hf-model (a transformers folder)")
    written_here = open_prompts is not None and chats == out / "open.jsonl"
    if chats and not written_here and not chats.is_file():
        raise MeshlmError(f"{chats}: no such file")
    # the perplexity's folder is found (an adapter merged) before any answer is written
    folder = (
        (hf_model or transformers_folder(model, modelfolder.BUNDLED_MODEL.parent))
        if chats
        else None
    )
    engine = warn_notes(load(model, backend, threads=threads))
    out.mkdir(parents=True, exist_ok=True)
    graded = grade_facts(engine, load_jsonl(facts))
    metrics: dict = {"facts_accuracy": graded["accuracy"], "facts": graded["n"]}
    _write_jsonl(out / "facts.jsonl", graded["rows"])
    if open_prompts:
        prompts = [r["prompt"] for r in load_jsonl(open_prompts)]
        replies = open_replies(engine, prompts)
        _write_jsonl(
            out / "open.jsonl",
            [{"prompt": p, "reply": r} for p, r in zip(prompts, replies, strict=True)],
        )
    if chats:  # read now: it may be the open.jsonl this run has just written (the base's own)
        pairs = reply_pairs(chats)
        metrics["reply_perplexity"] = reply_perplexity(folder, pairs, threads=threads)
        metrics["reply_perplexity_chats"] = len(pairs)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _summary(f"eval language-kept -> {out}", metrics)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


@eval_app.command("attributes")
def eval_attributes_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    prompts: Path | None = typer.Option(
        None,
        "--prompts",
        help="JSONL: prompt, family, attributes. Default: eval-heldout-smol/attributes.jsonl.",
    ),
    model: str | None = ModelOpt,
    backend: str = typer.Option("auto", "--backend", "-b"),
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    constrain: bool = typer.Option(False, "--constrain", help="Constrain decoding (default off)."),
    max_new_tokens: int = typer.Option(8192, "--max-new-tokens", help=MAX_NEW_HELP),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N prompts."),
    grid: bool = typer.Option(True, "--grid/--no-grid", help="Render attributes.png."),
    guidance: float | None = GuidanceOpt,
    no_exemplar: bool = NoExemplarOpt,
    exemplar_lead: bool | None = ExemplarLeadOpt,
    exemplar_parts: bool = ExemplarPartsOpt,
    exemplar_layout: bool = ExemplarLayoutOpt,
) -> None:
    """Do generated meshes follow the prompt's counts (legs, steps, shelves, ...) and proportions
    (tall, low, wide, long, narrow)? Greedy; judged on the meshes (meshlm/eval/attributes.py)."""

    rows = load_jsonl(prompts or DEFAULT_PROMPTS)[:limit]
    if not rows:
        raise MeshlmError(f"{prompts or DEFAULT_PROMPTS}: no prompts")
    engine = warn_notes(load(model, backend, threads=threads, bins=bins))
    s = engine.default_sampling(
        temperature=0.0,
        max_new_tokens=max_new_tokens,
        constrain=constrain,
        guidance=guidance,
        exemplar=not no_exemplar,
        exemplar_lead=exemplar_lead,
        exemplar_parts=exemplar_parts or None,
        exemplar_layout=exemplar_layout or None,
    )
    report = eval_attributes(engine, rows, out, s, grid=grid)
    _attribute_table(f"eval attributes ({len(rows)} prompts) -> {out}", report)


def _attribute_table(title: str, report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("measure", "group", "judged", "correct", "accuracy"):
        table.add_column(col, justify="left" if col in ("measure", "group") else "right")

    def add(measure: str, group: str, r: dict) -> None:
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.3f}"
        table.add_row(measure, group, str(r.get("judged", r.get("pairs"))), str(r["correct"]), acc)

    c, p = report["counts"], report["proportions"]
    add("counts", "all", c)
    for key in ("by_attribute", "by_family_attribute"):
        for group, r in c[key].items():
            add("counts", group, r)
    add("proportions", "all", p)
    for group, r in {**p["by_word"], **p["by_family"]}.items():
        add("proportions", group, r)
    add("proportions", "pairwise", p["pairwise"])
    Console().print(table)


@eval_app.command("novelty")
def eval_novelty_cmd(
    generations: Path = typer.Option(
        ...,
        "--generations",
        "-g",
        help="samples.jsonl of eval generate, or attributes.jsonl of eval attributes.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    train: Path | None = typer.Option(
        None, "--train", help="build-data dataset folder (or its train.jsonl)."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Without --train: the dataset this model folder records."
    ),
    points: int = typer.Option(2048, "--points", help="Surface points per mesh."),
) -> None:
    """Chamfer distance of each generated mesh to its nearest training mesh, in quantization
    steps, and how many distinct meshes the model wrote per family (meshlm/eval/novelty.py)."""

    data = train or recorded_dataset(model)
    ts = training_set(data)
    meshes, rows = load_generations(generations, ts.bins)
    scored, report = novelty(meshes, [r.get("family") for r in rows], ts, n_points=points)
    report["train"]["dataset"] = str(data)
    report["generations"] = str(generations)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(
        out / "novelty.jsonl",
        [
            {
                "prompt": r.get("prompt"),
                "mesh": r.get("mesh") and str(generations.parent / r["mesh"]),
            }
            | s
            for r, s in zip(rows, scored, strict=True)
        ],
    )
    (out / "novelty.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    flat = {k: v for k, v in report.items() if isinstance(v, int | float | str)}
    flat.update({f"steps.{k}": v for k, v in report["steps"].items()})
    _summary(f"eval novelty ({len(rows)} generations) -> {out}", flat)


@eval_app.command("compare")
def eval_compare_cmd(
    a: Path = typer.Argument(
        ...,
        help="Run A: samples.jsonl (eval generate/understand) or "
        "attributes.jsonl (eval attributes).",
    ),
    b: Path = typer.Argument(..., help="Run B on the same inputs."),
    measure: list[str] | None = typer.Option(
        None,
        "--measure",
        help="A judgement to compare (strict, family_ok, counts, ...); repeatable. "
        "Default: every one that varies.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the table as JSON."),
) -> None:
    """Two runs on the same inputs, input by input: yes counts, the inputs only one run got
    right, and the exact McNemar p-value (meshlm/eval/paired.py)."""
    from rich.console import Console
    from rich.table import Table

    pairs = pair_rows(list(iter_jsonl(a)), list(iter_jsonl(b)), str(a), str(b))
    rows = compare(pairs, measure or None)
    table = Table(title=f"{len(pairs)} inputs: A = {a}, B = {b}")
    for col in ("measure", "A", "B", "only A", "only B", "p (exact McNemar)"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in rows:
        extra = f" ({r['unpaired']} unpaired)" if r["unpaired"] else ""
        table.add_row(
            r["measure"] + extra,
            f"{r['a']}/{r['n']}",
            f"{r['b']}/{r['n']}",
            str(r["only_a"]),
            str(r["only_b"]),
            f"{r['p']:.3g}",
        )
    Console().print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"a": str(a), "b": str(b), "inputs": len(pairs), "measures": rows}
        out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
