"""``meshlm serve``: the web demo (a thin layer over :mod:`meshlm.web`)."""

from __future__ import annotations

import typer

from meshlm.cli.app import app, fail
from meshlm.cli.infer_cmds import ModelBinsOpt, ModelOpt, warn_notes
from meshlm.infer import load
from meshlm.web import serve


@app.command("serve")
def serve_cmd(
    model: str | None = ModelOpt,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the demo to the network."
    ),
    port: int = typer.Option(7860, "--port", "-p", help="Port to listen on."),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads for the model (default: one per core)."
    ),
    bins: int | None = ModelBinsOpt,
) -> None:
    """Serve the web demo: a chat that writes meshes (live 3D viewer) and reads uploaded ones."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise fail("the web demo needs gradio: pip install 'meshlm[web]'") from None
    if not 0 < port < 65536:
        raise fail(f"--port must be 1..65535, got {port}", code=2)

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"meshlm: warning: serving on {host}: anyone who can reach it can use the model",
            err=True,
        )
    typer.echo(f"meshlm: loading {model or 'the bundled model'} ...", err=True)
    engine = warn_notes(load(model, threads=threads, bins=bins))
    serve(model, host, port, engine=engine, threads=threads)
