"""``meshlm shapes``: write a captioned corpus of procedural low-poly objects."""

from __future__ import annotations

from pathlib import Path

import typer

from meshlm import modelfolder
from meshlm.cli import app
from meshlm.errors import MeshlmError
from meshlm.shapes import list_families, write_corpus


def known_families() -> list[str]:
    """The shape families the bundled model was trained on (``shape_families`` in its
    meshlm.json; every family for a model card that predates the field)."""

    info = modelfolder.read(modelfolder.BUNDLED_MODEL)
    if info is None:
        raise MeshlmError(
            f"{modelfolder.BUNDLED_MODEL / modelfolder.FILE}: no bundled model "
            "metadata (is the bundled model installed?)"
        )
    return info.shape_families or list_families()


@app.command("shapes")
def shapes(
    n: int = typer.Option(100, "--n", help="Number of shapes to write."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives byte-identical files."),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder for <uid>.obj files and captions.csv."
    ),
    family: list[str] | None = typer.Option(
        None, "--family", help="Only these families (repeatable); default: all, balanced."
    ),
    max_segments: int | None = typer.Option(
        None,
        "--max-segments",
        help="At most this many sides on revolved parts (>= 6): "
        "a lower-poly corpus of the same families.",
    ),
    list_: bool = typer.Option(False, "--list", help="Print the family names, one per line."),
    known: bool = typer.Option(
        False, "--known", help="With --list: only the families the bundled model was trained on."
    ),
) -> None:
    """Generate procedural captioned shapes (tables, chairs, mugs, houses, ...) as OBJ files.

    Writes OUT/<uid>.obj (Y up, at most 500 faces) and OUT/captions.csv with header
    uid,caption,family.
    """

    if list_:
        names = known_families() if known else list_families()
        for name in names:
            typer.echo(name)
        return
    if out is None:
        raise MeshlmError("--out is required (or use --list)")
    if n < 0:
        raise MeshlmError(f"--n must be >= 0, got {n}")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=n < 200 or not console.is_terminal,
    ) as bar:
        task = bar.add_task("shapes", total=n)
        path = write_corpus(
            out,
            n,
            seed,
            families=family or None,
            progress=lambda _s: bar.advance(task),
            max_segments=max_segments,
        )
    typer.echo(f"wrote {n} shapes and {path.name} to {out}")
