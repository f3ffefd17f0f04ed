"""Data verbs: ``build-data`` (mesh collections + captions -> mixed chat SFT dataset).

A thin adapter over :mod:`meshlm.data`; the checks and errors live there.
"""

from __future__ import annotations

import time

import typer

from meshlm.cli import app
from meshlm.data.build import BuildConfig, BuildError

H = BuildConfig.help


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise BuildError(f"--{name} wants comma-separated integers, got {text!r}") from None


def _floats(text: str, name: str, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise BuildError(f"--{name} wants {n} comma-separated numbers, got {text!r}")
    return vals


@app.command("build-data")
def build_data_cmd(
    out: str = typer.Option(..., "--out", "-o", help=H("out")),
    meshes: list[str] = typer.Option([], "--meshes", help=H("meshes")),
    captions: list[str] = typer.Option([], "--captions", help=H("captions")),
    name_captions: bool = typer.Option(False, "--name-captions", help=H("name_captions")),
    procedural: int = typer.Option(0, "--procedural", help=H("procedural")),
    max_segments: int = typer.Option(None, "--max-segments", help=H("max_segments")),
    family: list[str] = typer.Option([], "--family", help=H("families") + " Repeatable."),
    objaverse: str = typer.Option(None, "--objaverse", help=H("objaverse")),
    objaverse_cache: str = typer.Option(None, "--objaverse-cache", help=H("objaverse_cache")),
    objaverse_download: bool = typer.Option(
        False, "--objaverse-download", help=H("objaverse_download")
    ),
    general_chat: str = typer.Option(None, "--general-chat", help=H("general_chat")),
    general_split: str = typer.Option(None, "--general-split", help=H("general_split")),
    max_faces: int = typer.Option(500, "--max-faces", help=H("max_faces")),
    min_faces: int = typer.Option(1, "--min-faces", help=H("min_faces")),
    decimate: bool = typer.Option(False, "--decimate", help=H("decimate")),
    rotations: str = typer.Option("0,90,180,270", "--rotations", help=H("rotations")),
    bins: int = typer.Option(64, "--bins", help=H("bins")),
    mesh_format: str = typer.Option("llama-mesh", "--format", help=H("format")),
    seed: int = typer.Option(0, "--seed", help=H("seed")),
    workers: int = typer.Option(2, "--workers", "-j", help=H("workers")),
    shard: int = typer.Option(0, "--shard", help=H("shard")),
    num_shards: int = typer.Option(1, "--num-shards", help=H("num_shards")),
    tokenizer: str = typer.Option(None, "--tokenizer", help=H("tokenizer")),
    max_length: int = typer.Option(8192, "--max-length", help=H("max_length")),
    system_prompt: str = typer.Option(None, "--system-prompt", help=H("system_prompt")),
    mix: str = typer.Option("0.4,0.2,0.4", "--mix", help=H("mix")),
    multi_turn: float = typer.Option(0.25, "--multi-turn", help=H("multi_turn")),
    gen_per_family: int = typer.Option(0, "--gen-per-family", help=H("gen_per_family")),
    gen_repeats: int = typer.Option(1, "--gen-repeats", help=H("gen_repeats")),
    gen_targets: str = typer.Option("own", "--gen-targets", help=H("gen_targets")),
    phrasings: str = typer.Option("base", "--phrasings", help=H("phrasings")),
    splits: str = typer.Option("0.9,0.05,0.05", "--splits", help=H("splits")),
    overwrite: bool = typer.Option(False, "--overwrite", help=H("overwrite")),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=H("progress")),
) -> None:
    """Build a chat SFT dataset from meshes and captions (LLaMA-Mesh style).

    Writes OUT/train.jsonl, validation.jsonl, test.jsonl, OUT/hf/ (datasets) and
    OUT/manifest.json. Killed builds resume when rerun with the same arguments.
    """
    from meshlm.data.pipeline import build_dataset

    cfg = BuildConfig(
        out=out,
        meshes=list(meshes),
        captions=list(captions),
        name_captions=name_captions,
        procedural=procedural,
        max_segments=max_segments,
        families=list(family),
        objaverse=objaverse,
        objaverse_cache=objaverse_cache,
        objaverse_download=objaverse_download,
        general_chat=general_chat,
        general_split=general_split,
        max_faces=max_faces,
        min_faces=min_faces,
        decimate=decimate,
        rotations=_ints(rotations, "rotations"),
        bins=bins,
        format=mesh_format,
        seed=seed,
        workers=workers,
        shard=shard,
        num_shards=num_shards,
        tokenizer=tokenizer,
        max_length=max_length,
        system_prompt=system_prompt,
        mix=_floats(mix, "mix", 3),
        multi_turn=multi_turn,
        gen_per_family=gen_per_family,
        gen_repeats=gen_repeats,
        gen_targets=gen_targets,
        phrasings=phrasings,
        splits=_floats(splits, "splits", 3),
        overwrite=overwrite,
        progress=progress,
    )
    start = time.perf_counter()
    manifest = build_dataset(cfg, log=lambda m: typer.echo(m, err=True))
    c = manifest["counts"]
    rows = ", ".join(f"{s} {sum(v.values())}" for s, v in c["rows"].items())
    achieved = ", ".join(f"{k} {v:.0%}" for k, v in manifest["mix"]["achieved"].items())
    typer.echo(
        f"{c['objects_kept']} objects kept of {c['objects_in_shard']} "
        f"({sum(manifest['rejects'].values())} left out), "
        f"{c['encodings_kept']} meshes; rows: {rows}; mix: {achieved}; "
        f"{time.perf_counter() - start:.1f}s -> {out}"
    )
