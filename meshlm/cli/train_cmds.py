"""Training verbs: ``train`` (SFT / LoRA / QLoRA from a YAML recipe) and ``merge`` (LoRA -> model).

Thin adapters over :mod:`meshlm.train`; all checks and errors live there.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from meshlm.cli import app
from meshlm.cli.options import ANY_SEPARATOR, config_options
from meshlm.train.config import TrainConfig
from meshlm.train.merge import merge_adapter
from meshlm.train.sft import train


@app.command("train", context_settings=ANY_SEPARATOR)
@config_options(TrainConfig, spelling="key", negatives=True)
def train_cmd(
    options: dict,
    config: Path = typer.Option(
        None, "--config", "-c", help="YAML recipe, e.g. recipes/bundled.yaml."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the resolved configuration (batch arithmetic, model size) and exit: "
        "loads no weights, touches no network, needs no torch or transformers.",
    ),
    help_config: bool = typer.Option(
        False, "--help-config", help="List every config key with its help text and exit."
    ),
) -> None:
    """Fine-tune a causal LM on a meshlm dataset with TRL (full, LoRA or QLoRA).

    Every config key is also an option (its default here is the field's; a recipe's value
    wins over the default, an option given here wins over the recipe): --learning_rate 3e-4
    --max_steps 100 --packing --no-resume. Runs unchanged under torchrun / accelerate launch.
    """
    if help_config:
        defaults = TrainConfig()
        for name, text in TrainConfig.field_help().items():
            typer.echo(f"--{name}  (default {getattr(defaults, name)!r})\n    {text}")
        return
    cfg = TrainConfig.load(config, options)
    if dry_run:
        typer.echo(json.dumps(cfg.resolve(), indent=2, default=str))
        return

    result = train(cfg)
    metrics = {
        k: round(v, 4)
        for k, v in result.metrics.items()
        if k in ("train_loss", "eval_loss", "train_runtime", "train_tokens_per_second")
    }
    typer.echo(
        json.dumps(
            {
                "output_dir": str(result.output_dir),
                "global_step": result.global_step,
                "resumed_from": result.resumed_from,
                **metrics,
            }
        )
    )


@app.command("merge")
def merge_cmd(
    adapter_dir: Path = typer.Argument(
        ..., help="Folder of a LoRA adapter written by meshlm train."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged standalone model."),
) -> None:
    """Merge a LoRA adapter into its base model and save a standalone model folder."""

    typer.echo(str(merge_adapter(adapter_dir, out)))
