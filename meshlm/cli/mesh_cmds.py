"""Codec verbs: ``encode``, ``decode``, ``stats``, ``render``, ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from meshlm import meshtext
from meshlm.cli.app import app, fail, json_output
from meshlm.codec import DEFAULT_BINS, Mesh, canonicalize, decode
from meshlm.errors import MeshlmError
from meshlm.files import load_mesh, save_mesh
from meshlm.lenient import decode_lenient
from meshlm.render import render_png
from meshlm.tokens import load_tokenizer, token_stats

TEXT_SUFFIXES = {".txt", ".text", ".md", ".log", ".mesh"}
MAX_TEXT_BYTES = 64 * 2**20

BinsOpt = typer.Option(DEFAULT_BINS, "--bins", help="Quantization levels per axis (2..1024).")
FormatOpt = typer.Option(
    meshtext.DEFAULT,
    "--format",
    help=f"Mesh text format: {' or '.join(meshtext.NAMES)} (docs/format.md).",
)


def read_text(path: str) -> tuple[str, str]:
    """Read mesh text from a file or '-' (stdin). Returns (text, display name)."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_TEXT_BYTES + 1)
        name = "<stdin>"
    else:
        p = Path(path)
        if not p.is_file():
            raise MeshlmError(f"{path}: no such file")
        if p.stat().st_size > MAX_TEXT_BYTES:
            raise MeshlmError(f"{path}: text file larger than {MAX_TEXT_BYTES // 2**20} MiB")
        data = p.read_bytes()
        name = path
    if len(data) > MAX_TEXT_BYTES:
        raise MeshlmError(f"{name}: text larger than {MAX_TEXT_BYTES // 2**20} MiB")
    return data.decode("utf-8", errors="replace"), name


def is_text_input(path: str) -> bool:
    return path == "-" or Path(path).suffix.lower() in TEXT_SUFFIXES


def load_any(path: str, bins: int, strict: bool = False, fmt: str = meshtext.DEFAULT) -> Mesh:
    """A mesh from a mesh file (via trimesh) or from mesh text (decoded as format ``fmt``,
    strictly or as a reply), quantized at ``bins``."""
    if is_text_input(path):
        text, name = read_text(path)
        if strict:
            return meshtext.decode_strict(text, fmt, bins, source=name)
        return meshtext.read_reply(text, fmt, bins, source=name)

    tm = load_mesh(path)
    try:
        return canonicalize(tm.vertices, tm.faces, bins=bins)
    except MeshlmError as exc:
        raise MeshlmError(f"{path}: {exc}") from None


def _write_text(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(out)


@app.command("encode")
def encode_cmd(
    meshfile: str = typer.Argument(..., help="Mesh file (OBJ, GLB, GLTF, PLY, STL, OFF)."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Write the text here (default: stdout)."
    ),
    bins: int = BinsOpt,
    fmt: str = FormatOpt,
) -> None:
    """Print or write the canonical mesh text of a mesh file (LLaMA-Mesh, or --format parts)."""
    meshtext.check(fmt)
    mesh = load_any(meshfile, bins)
    _write_text(mesh.to_text() if fmt == meshtext.DEFAULT else meshtext.write(mesh, fmt), out)


@app.command("decode")
def decode_cmd(
    textfile: str = typer.Argument(..., help="Mesh text or a model reply; '-' reads stdin."),
    out: Path = typer.Option(..., "-o", "--out", help="Output mesh: .obj, .glb, .ply or .stl."),
    strict: bool = typer.Option(
        False, "--strict", help="Accept only canonical text; fail on any flaw."
    ),
    bins: int = BinsOpt,
    fmt: str = FormatOpt,
    json_out: bool = typer.Option(
        False, "--json", help="One JSON object per mesh written (file, format, counts, report)."
    ),
) -> None:
    """Turn mesh text (or a chat reply holding meshes) into a mesh file; print the repair report.

    --format parts reads parts text (strictly, or a reply's parts joined into one mesh). Several
    LLaMA-Mesh meshes in one reply are written to OUT, OUT-2, OUT-3, ...
    """

    json_output(json_out)
    meshtext.check(fmt)
    text, name = read_text(textfile)
    if strict:
        meshes = [meshtext.decode_strict(text, fmt, bins, source=name)]
    elif fmt == meshtext.DEFAULT:
        meshes = decode_lenient(text, bins=bins, source=name)
    else:
        meshes = [meshtext.read_reply(text, fmt, bins, source=name)]
    for i, mesh in enumerate(meshes, start=1):
        target = out if i == 1 else out.with_name(f"{out.stem}-{i}{out.suffix}")
        save_mesh(mesh, target)
        if json_out:
            row = {"file": str(target), "format": fmt, "bins": bins, "strict": strict}
            row.update(vertices=len(mesh.quantized), faces=len(mesh.faces))
            typer.echo(json.dumps({**row, "report": mesh.report.to_dict()}))
            continue
        typer.echo(
            f"{target}: {len(mesh.quantized)} vertices, {len(mesh.faces)} faces; "
            f"{mesh.report.summary()}"
        )


@app.command("stats")
def stats_cmd(
    files: list[str] = typer.Argument(..., help="Mesh files or mesh text files."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer folder or hub id."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per file per line."),
    bins: int = BinsOpt,
    fmt: str = FormatOpt,
) -> None:
    """Vertices, faces, characters (and tokens, tokens per face) of each file's encoding
    (in --format; a text file is read in that format too).

    With --json: one object per file per line; a file that fails gives {"file", "error"} there
    and its one-line message on stderr (exit 1 once all files are done).
    """

    json_output(json_out)
    meshtext.check(fmt)
    tok = load_tokenizer(tokenizer) if tokenizer else None
    rows, failed = [], 0
    for f in files:
        row: dict = {"file": f}
        try:
            mesh = load_any(f, bins, fmt=fmt)
            text = mesh.to_text() if fmt == meshtext.DEFAULT else meshtext.write(mesh, fmt)
            row.update(format=fmt, vertices=len(mesh.quantized), faces=len(mesh.faces))
            row["characters"] = len(text)
            if tok is not None:
                st = token_stats(text, tok)
                row.update(tokens=st.tokens, tokens_per_face=round(st.tokens_per_face, 3))
        except MeshlmError as exc:
            failed += 1
            row["error"] = str(exc)
        rows.append(row)
        if json_out:
            typer.echo(json.dumps(row))
            if "error" in row:
                typer.echo(f"meshlm: error: {row['error']}", err=True)
    if not json_out:
        _print_table(rows, with_tokens=tok is not None)
    if failed:
        raise typer.Exit(1)


def _print_table(rows: list[dict], with_tokens: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("file", "vertices", "faces", "characters")
    if with_tokens:
        table.add_column("tokens")
        table.add_column("tokens/face")
    for r in rows:
        if "error" in r:
            typer.echo(f"meshlm: error: {r['error']}", err=True)
            continue
        cells = [r["file"], str(r["vertices"]), str(r["faces"]), str(r["characters"])]
        if with_tokens:
            cells += [str(r["tokens"]), f"{r['tokens_per_face']:.2f}"]
        table.add_row(*cells)
    if table.row_count:
        Console().print(table)


@app.command("render")
def render_cmd(
    meshfile: str = typer.Argument(..., help="Mesh file or mesh text file."),
    out: Path = typer.Option(..., "-o", "--out", help="Output PNG."),
    size: int = typer.Option(512, "--size", help="Image width and height in pixels."),
    bins: int = BinsOpt,
) -> None:
    """Render a PNG preview with the fixed three-quarter camera."""

    if out.suffix.lower() != ".png":
        raise fail(f"{out}: output must be a .png file", code=2)
    mesh = load_any(meshfile, bins) if is_text_input(meshfile) else None
    if mesh is None:
        mesh = load_mesh(meshfile)
    render_png(mesh, out, size=size)
    typer.echo(str(out))


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("out/demo"), "-o", "--out", help="Output folder."),
    meshfile: str | None = typer.Option(
        None, "--mesh", help="Mesh file (default: bundled example)."
    ),
) -> None:
    """Round-trip a mesh through LLaMA-Mesh text; write the text, OBJ, GLB and a PNG preview."""

    src = meshfile or str(Path(__file__).resolve().parent.parent / "assets" / "example.obj")
    mesh = load_any(src, DEFAULT_BINS)
    text = mesh.to_text()
    back = decode(text)  # strict: the text is canonical
    out.mkdir(parents=True, exist_ok=True)
    (out / "mesh.txt").write_text(text + "\n", encoding="utf-8")
    for ext in ("obj", "glb"):
        save_mesh(back, out / f"mesh.{ext}")
    render_png(back, out / "mesh.png")
    typer.echo(
        f"{src}: {len(back.quantized)} vertices, {len(back.faces)} faces, {len(text)} characters"
    )
    for name in ("mesh.txt", "mesh.obj", "mesh.glb", "mesh.png"):
        typer.echo(f"wrote {out / name}")
