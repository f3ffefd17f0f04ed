"""The typer application every command module registers on, and the one-line failure helper."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="meshlm",
    help="Language models that speak 3D meshes: codec, data, training, inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"meshlm: error: {message}", err=True)
    return typer.Exit(code)
