"""The typer application every command module registers on, and the one-line failure helper.

Output contract of ``--json``: a verb run with ``--json`` prints JSON values only on stdout
(paths as strings, numbers as numbers), one object per line. When it fails, stdout gets the
error object ``{"error": "<the message>"}`` (a verb may add its own fields, e.g. ``file``) and
stderr gets the usual one line ``meshlm: error: <the message>``; the exit code is 1 (2 for bad
usage). A verb turns this on with :func:`json_output` before doing any work.
"""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    name="meshlm",
    help="Language models that speak 3D meshes: codec, data, training, inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_json = {"on": False}  # whether the running verb was given --json (reset by cli.main)


def json_output(on: bool) -> None:
    """Say whether the running verb prints JSON (its ``--json`` flag); errors follow suit."""
    _json["on"] = bool(on)


def json_mode() -> bool:
    """True while the running verb was given ``--json``."""
    return _json["on"]


def report_error(message: str, fields: dict | None = None, prefix: str = "error") -> None:
    """Tell the user about a failure: ``meshlm: <prefix>: message`` on stderr and, under
    ``--json``, the error object (``fields`` plus ``"error": message``) on stdout."""
    if _json["on"]:
        typer.echo(json.dumps({**(fields or {}), "error": message}))
    typer.echo(f"meshlm: {prefix}: {message}", err=True)


def fail(message: str, code: int = 1, fields: dict | None = None) -> typer.Exit:
    """Report ``message`` (see :func:`report_error`) and return the Exit to raise."""
    report_error(message, fields)
    return typer.Exit(code)
