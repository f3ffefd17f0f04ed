"""Inference verbs: ``generate``, ``describe``, ``chat`` (thin layers over :mod:`meshlm.infer`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from meshlm.cli.app import app, fail, json_output
from meshlm.cli.mesh_cmds import load_any
from meshlm.errors import MeshlmError
from meshlm.files import save_mesh
from meshlm.infer import load
from meshlm.infer.gguf_export import export_gguf
from meshlm.prompts import mesh_question
from meshlm.render import render_png

ModelOpt = typer.Option(
    None,
    "--model",
    "-m",
    help="Model folder, LoRA adapter folder from meshlm train, hub id, .gguf, or a name: "
    "bundled (default), parts (make parts-model), smol (SmolLM2-135M + LoRA), smol-parts "
    "(SmolLM2-135M + LoRA, the parts text), smol-base.",
)
BackendOpt = typer.Option("auto", "--backend", "-b", help="auto, transformers, llamacpp or openai.")
BaseUrlOpt = typer.Option(
    None, "--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
)
ThreadsOpt = typer.Option(
    None,
    "--threads",
    help="CPU threads (default: one per core; on a busy machine fewer can be "
    "much faster with llama.cpp).",
)
ModelBinsOpt = typer.Option(
    None,
    "--bins",
    help="Quantization levels per axis of the model's meshes. Default: the "
    "model's (its meshlm.json), else 64; a different value is used with a warning.",
)
GuidanceOpt = typer.Option(
    None,
    "--guidance",
    help="Classifier-free guidance over the request: 1 = off, 2 = follow it more (two passes "
    "a token; llama.cpp and transformers). Default: the model's, else 1.",
)
NoExemplarOpt = typer.Option(
    False,
    "--no-exemplar",
    help="Parts model with exemplars: answer from the request alone, without first showing it "
    "a training mesh of the family its plan names.",
)
ExemplarLeadOpt = typer.Option(
    None,
    "--exemplar-lead/--no-exemplar-lead",
    help="Parts model with exemplars: the reply goes on from the first stage's own lead-in "
    "and plan line, committed to a mesh before it sees the one shown (the default; off: it "
    "starts afresh after the shown mesh).",
    show_default=False,
)
ExemplarPartsOpt = typer.Option(
    False,
    "--exemplar-parts",
    help="Parts model with exemplars: the reply's plan line takes the part count of the "
    "training mesh shown (retrieved by the request's words) instead of the model's own.",
)
ExemplarLayoutOpt = typer.Option(
    False,
    "--exemplar-layout",
    help="Parts model with exemplars, constrained: --exemplar-parts, and each part held to the "
    "template (topology) of the shown mesh's part in the same place; the numbers stay the model's.",
)
MESH_SUFFIXES = {".obj", ".glb", ".ply", ".stl", ".off"}


MAX_NEW_HELP = (
    "Reply length limit. 8192 fits a 500-face mesh of the released LLaMA-Mesh (~6,000 tokens,"
    " docs/format.md); local backends never ask for more than the context holds."
)


def _engine(model, backend, base_url, threads=None, bins=None):
    """Load the model, with a status line on a terminal: a first use of ``smol`` or of an
    adapter folder builds the merged copy (~1 min, once)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        return warn_notes(load(model, backend, base_url=base_url, threads=threads, bins=bins))
    with console.status("loading the model (a first use of an adapter merges it once, ~1 min)"):
        engine = load(model, backend, base_url=base_url, threads=threads, bins=bins)
    return warn_notes(engine)


def warn_notes(engine):
    """Print the engine's notes (e.g. a --bins that differs from the model's) as warnings."""
    for note in engine.notes:
        typer.echo(f"meshlm: warning: {note}", err=True)
    return engine


def _stream_with_progress(parts, quiet: bool):
    """Consume a stream, showing one live line (tokens/s, vertices, faces) on stderr."""
    from rich.console import Console

    console = Console(stderr=True)
    last = None
    if quiet or not console.is_terminal:
        from collections import deque

        return deque(parts, maxlen=1)[0].result
    with console.status("generating...") as status:
        for last in parts:
            status.update(
                f"{last.tokens} tokens, {last.tokens_per_s:.0f} tok/s, "
                f"{last.vertices} vertices, {last.faces} faces"
            )
    return last.result


@app.command("generate")
def generate_cmd(
    prompt: str = typer.Argument(..., help="What to make, e.g. 'a round table with three legs'."),
    out: list[Path] = typer.Option(
        ..., "-o", "--out", help="Output mesh: .obj, .glb, .ply or .stl (repeatable)."
    ),
    model: str | None = ModelOpt,
    backend: str = BackendOpt,
    base_url: str | None = BaseUrlOpt,
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same mesh)."),
    temperature: float | None = typer.Option(None, "--temperature", "-t", help="0 = greedy."),
    top_p: float | None = typer.Option(None, "--top-p"),
    top_k: int | None = typer.Option(None, "--top-k"),
    max_new_tokens: int = typer.Option(8192, "--max-new-tokens", help=MAX_NEW_HELP),
    no_constrain: bool = typer.Option(
        False, "--no-constrain", help="Let the model write anything."
    ),
    min_faces: int = typer.Option(
        0, "--min-faces", help="Constrained: at least this many faces (guaranteed)."
    ),
    no_templates: bool = typer.Option(
        False,
        "--no-templates",
        help="Constrained parts model: any valid part, not only its part templates.",
    ),
    guidance: float | None = GuidanceOpt,
    no_exemplar: bool = NoExemplarOpt,
    exemplar_lead: bool | None = ExemplarLeadOpt,
    exemplar_parts: bool = ExemplarPartsOpt,
    exemplar_layout: bool = ExemplarLayoutOpt,
    png: Path | None = typer.Option(None, "--png", help="Also render a PNG preview."),
    save_reply: Path | None = typer.Option(None, "--save-reply", help="Write the raw reply text."),
    json_out: bool = typer.Option(False, "--json", help="Print the stats as one JSON object."),
) -> None:
    """Generate a mesh from a text prompt and write it (OBJ, GLB, PLY or STL).

    With --json: one object of stats, repairs, "out" (the path as a string; a list of strings
    when -o is given several times) and "png"; on failure the same object with "error" set.
    """
    json_output(json_out)
    for o in out:
        if o.suffix.lower() not in MESH_SUFFIXES:
            raise fail(f"{o}: output must be .obj, .glb, .ply, .stl or .off", code=2)
    engine = _engine(model, backend, base_url, threads, bins)
    sampling = engine.default_sampling(
        seed=seed,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_new_tokens=max_new_tokens,
        constrain=not no_constrain,
        min_faces=min_faces,
        guidance=guidance,
        templates=not no_templates,
        exemplar=not no_exemplar,
        exemplar_lead=exemplar_lead,
        exemplar_parts=exemplar_parts or None,
        exemplar_layout=exemplar_layout or None,
    )
    unknown = engine.unknown_family(prompt)
    if unknown:
        typer.echo(
            f"meshlm: warning: the model was trained on {len(engine.shape_families)} "
            f"shape families and '{unknown}' is not one of them (meshlm shapes --list "
            "--known); expect another shape",
            err=True,
        )
    result = _stream_with_progress(engine.stream(prompt, sampling), quiet=json_out)
    if save_reply:
        save_reply.parent.mkdir(parents=True, exist_ok=True)
        save_reply.write_text(result.text, encoding="utf-8")
    if result.mesh is None:
        raise fail(
            f"the reply holds no mesh: {result.error}",
            fields={**result.to_dict(), "out": None, "png": None},
        )

    for o in out:
        save_mesh(result.mesh, o)
    if png:
        render_png(result.mesh, png)
    if json_out:
        paths = [str(o) for o in out]
        typer.echo(
            json.dumps(
                {
                    **result.to_dict(),
                    "out": paths[0] if len(paths) == 1 else paths,
                    "png": str(png) if png else None,
                }
            )
        )
        return
    s = result.stats
    note = " (cut off at the token limit: complete faces kept)" if s.cut_off else ""
    where = ", ".join(map(str, out))
    typer.echo(
        f"{where}: {s.vertices} vertices, {s.faces} faces; {s.new_tokens} tokens in "
        f"{s.seconds:.1f} s ({s.tokens_per_s:.0f} tok/s){note}"
    )
    if not result.mesh.report.clean:
        typer.echo(f"repairs: {result.mesh.report.summary()}")


@app.command("describe")
def describe_cmd(
    meshfile: str = typer.Argument(..., help="Mesh file or mesh text file."),
    model: str | None = ModelOpt,
    backend: str = BackendOpt,
    base_url: str | None = BaseUrlOpt,
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    question: str | None = typer.Option(None, "--question", "-q", help="Ask something else."),
    seed: int = typer.Option(0, "--seed"),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Ask the model what a mesh is.

    With --json: one object (file, description and the generation stats); on failure
    {"error": ...}.
    """

    json_output(json_out)
    engine = _engine(model, backend, base_url, threads, bins)
    # shown to the model at its own bins, in its format (a text file is read in that format)
    mesh = load_any(meshfile, engine.bins, fmt=engine.mesh_format.name)
    sampling = engine.default_sampling(
        seed=seed, temperature=temperature, max_new_tokens=max_new_tokens, constrain=False
    )
    content = _question(mesh, question, engine.mesh_format.name)  # in the model's format
    result = engine.chat([{"role": "user", "content": content}], sampling)
    if json_out:
        typer.echo(
            json.dumps(
                {"file": meshfile, "description": result.text.strip(), **result.stats.to_dict()}
            )
        )
    else:
        typer.echo(result.text.strip())


def _question(mesh, question, fmt):

    return mesh_question(mesh, question, fmt=fmt)


@app.command("chat")
def chat_cmd(
    model: str | None = ModelOpt,
    backend: str = BackendOpt,
    base_url: str | None = BaseUrlOpt,
    threads: int | None = ThreadsOpt,
    bins: int | None = ModelBinsOpt,
    out_dir: Path = typer.Option(Path("out/chat"), "--out-dir", help="Where reply meshes go."),
    seed: int = typer.Option(0, "--seed"),
    temperature: float | None = typer.Option(None, "--temperature", "-t"),
    max_new_tokens: int = typer.Option(8192, "--max-new-tokens", help=MAX_NEW_HELP),
) -> None:
    """Chat in the terminal. A reply's mesh is saved (path printed); '/load FILE' puts a mesh into
    the conversation; '/quit' (or Ctrl-D) ends."""

    engine = _engine(model, backend, base_url, threads, bins)
    sampling = engine.default_sampling(
        seed=seed, temperature=temperature, max_new_tokens=max_new_tokens, constrain=False
    )
    messages: list[dict] = []
    pending_mesh: str | None = None
    n = 0
    typer.echo("meshlm chat: /load FILE to show a mesh, /quit to leave", err=True)
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("", err=True)
            return
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return
        if line.startswith("/load"):
            path = line[5:].strip()
            try:
                loaded = load_any(path, engine.bins, fmt=engine.mesh_format.name)
                pending_mesh = engine.mesh_text(loaded)  # at the model's bins, in its format
                typer.echo(
                    f"loaded {path} ({len(loaded.quantized)} vertices, "
                    f"{len(loaded.faces)} faces, {engine.bins} bins): it goes with your "
                    "next message",
                    err=True,
                )
            except MeshlmError as exc:
                typer.echo(f"meshlm: error: {exc}", err=True)
            continue
        content = f"{line}\n{pending_mesh}" if pending_mesh else line
        pending_mesh = None
        messages.append({"role": "user", "content": content})
        result = engine.chat(messages, sampling)
        messages.append({"role": "assistant", "content": result.text})
        typer.echo(f"model> {result.text.strip()}")
        if result.mesh is not None:
            n += 1
            path = out_dir / f"reply-{n}.obj"
            save_mesh(result.mesh, path)
            typer.echo(
                f"[mesh saved: {path} ({result.stats.vertices} vertices, "
                f"{result.stats.faces} faces)]",
                err=True,
            )
        sys.stdout.flush()


@app.command("export-gguf")
def export_gguf_cmd(
    model_dir: Path = typer.Argument(..., help="A meshlm-trained (Llama) model folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .gguf file."),
    dtype: str = typer.Option("f32", "--dtype", help="f32 or f16 (norm weights stay f32)."),
) -> None:
    """Convert a model folder to GGUF for llama.cpp (tokenizer and chat template included)."""

    if out.suffix != ".gguf":
        raise fail(f"{out}: output must end in .gguf", code=2)
    path = export_gguf(model_dir, out, dtype=dtype)
    typer.echo(f"{path}: {path.stat().st_size / 2**20:.1f} MiB ({dtype})")
