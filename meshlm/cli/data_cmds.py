"""Data verbs: ``build-data`` (mesh collections + captions -> mixed chat SFT dataset).

A thin adapter over :mod:`meshlm.data`; the checks and errors live there, and the options are
derived from :class:`~meshlm.data.build.BuildConfig`'s fields (:mod:`meshlm.cli.options`).
"""

from __future__ import annotations

import time

import typer

from meshlm.cli import app
from meshlm.cli.options import config_options
from meshlm.data.build import BuildConfig
from meshlm.data.pipeline import build_dataset


@app.command("build-data")
@config_options(BuildConfig)
def build_data_cmd(options: dict) -> None:
    """Build a chat SFT dataset from meshes and captions (LLaMA-Mesh style).

    Writes OUT/train.jsonl, validation.jsonl, test.jsonl, OUT/hf/ (datasets) and
    OUT/manifest.json. Killed builds resume when rerun with the same arguments.
    """
    cfg = BuildConfig(**options)
    start = time.perf_counter()
    manifest = build_dataset(cfg, log=lambda m: typer.echo(m, err=True))
    c = manifest["counts"]
    rows = ", ".join(f"{s} {sum(v.values())}" for s, v in c["rows"].items())
    achieved = ", ".join(f"{k} {v:.0%}" for k, v in manifest["mix"]["achieved"].items())
    typer.echo(
        f"{c['objects_kept']} objects kept of {c['objects_in_shard']} "
        f"({sum(manifest['rejects'].values())} left out), "
        f"{c['encodings_kept']} meshes; rows: {rows}; mix: {achieved}; "
        f"{time.perf_counter() - start:.1f}s -> {cfg.out}"
    )
