"""The ``meshlm`` command line: a thin layer over the library.

Each group of verbs lives in its own module under ``meshlm/cli/`` and registers its commands on
:data:`app` when imported. :func:`main` turns library errors into one line on stderr and an exit
code (0 ok, 1 bad input, 2 bad usage, 130 interrupted); no traceback reaches the user unless
``MESHLM_DEBUG=1`` is set. Under a verb's ``--json`` the error is also printed on stdout as a
JSON object ``{"error": ...}`` (the contract: :mod:`meshlm.cli.app`).
"""

from __future__ import annotations

import json
import os
import sys

import typer

from meshlm._quiet import install

# Command modules register themselves on `app`; import order is the order in --help.
from meshlm.cli import mesh_cmds  # noqa: E402,F401
from meshlm.cli.app import (  # noqa: E402,F401  (re-exported for command modules)
    app,
    fail,
    json_output,
    report_error,
)
from meshlm.errors import MeshlmError

for _optional in (
    "shapes_cmds",
    "data_cmds",
    "train_cmds",
    "base_cmds",
    "infer_cmds",
    "eval_cmds",
    "web_cmds",
):
    try:
        __import__(f"meshlm.cli.{_optional}")
    except ModuleNotFoundError as _exc:  # module not written yet
        if _exc.name != f"meshlm.cli.{_optional}":
            raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshlm`` console script. Returns the process exit code."""

    # typer >= 0.2x vendors click as typer._click (its own exception classes); older typer and
    # plain click raise click's. Catch both.
    usage_errors: tuple[type[BaseException], ...] = ()
    aborts: tuple[type[BaseException], ...] = ()
    for mod in ("typer._click.exceptions", "click.exceptions"):
        try:
            m = __import__(mod, fromlist=["ClickException"])
        except ImportError:  # pragma: no cover
            continue
        usage_errors += (m.ClickException,)
        if hasattr(m, "Abort"):
            aborts += (m.Abort,)
    aborts += (getattr(typer, "Abort", KeyboardInterrupt),)

    json_output(False)  # a verb with --json turns it on
    try:
        rv = app(args=argv, standalone_mode=False)
        return int(rv) if isinstance(rv, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except aborts:
        typer.echo("meshlm: interrupted", err=True)
        return 130
    except usage_errors as exc:  # usage errors: bad option, missing argument
        if "--json" in (sys.argv[1:] if argv is None else argv):  # the verb never ran: look
            typer.echo(json.dumps({"error": exc.format_message()}))
        exc.show()
        return 2
    except KeyboardInterrupt:
        typer.echo("meshlm: interrupted", err=True)
        return 130
    except MeshlmError as exc:
        if os.environ.get("MESHLM_DEBUG"):
            raise
        report_error(str(exc))
        return 1
    except (OSError, MemoryError, RecursionError, ValueError) as exc:
        if os.environ.get("MESHLM_DEBUG"):
            raise
        report_error(f"{type(exc).__name__}: {exc}")
        return 1
    except Exception as exc:  # last resort: never a traceback on the user's terminal
        if os.environ.get("MESHLM_DEBUG"):
            raise
        report_error(
            f"{type(exc).__name__}: {exc} (set MESHLM_DEBUG=1 for details)",
            prefix="internal error",
        )
        return 1


def run() -> None:  # console_scripts target

    install()  # other libraries' log records and warnings go to the debug log (meshlm/_quiet.py)
    sys.exit(main())
