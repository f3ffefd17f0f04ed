"""The codec verbs of the CLI: round trips through files, stats, render, demo, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from meshlm import decode, encode
from meshlm.cli import main

trimesh = pytest.importorskip("trimesh")
FIXTURES = Path(__file__).parent / "fixtures"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def torus_text():
    m = trimesh.creation.torus(1.0, 0.35, 12, 6)
    return encode(m.vertices, m.faces)


@pytest.mark.parametrize("ext", ["obj", "glb", "ply", "stl"])
def test_decode_then_encode_gives_the_text_back_byte_for_byte(tmp_path, capsys, torus_text, ext):
    src = tmp_path / "mesh.txt"
    src.write_text(torus_text + "\n")
    code, out, err = run(capsys, "decode", src, "-o", tmp_path / f"m.{ext}", "--strict")
    assert code == 0, err
    assert "no repairs" in out
    code, _, err = run(capsys, "encode", tmp_path / f"m.{ext}", "-o", tmp_path / "back.txt")
    assert code == 0, err
    assert (tmp_path / "back.txt").read_bytes() == src.read_bytes()


def test_encode_prints_to_stdout_and_respects_bins(tmp_path, capsys):
    p = tmp_path / "box.obj"
    trimesh.creation.box().export(p)
    code, out, _ = run(capsys, "encode", p, "--bins", "8")
    assert code == 0
    assert out.splitlines()[7] == "v 7 7 7" and decode(out, bins=8).bins == 8


def test_decode_lenient_reply_writes_every_mesh_and_reports_repairs(tmp_path, capsys, torus_text):
    quad = "v 0 0 0\nv 9 0 0\nv 9 9 0\nv 0 9 0\nf 1 2 3 4\n"
    reply = f"Here:\n```\n{torus_text}\nf 1 2 2\n```\nand a quad:\n{quad}"
    (tmp_path / "reply.txt").write_text(reply)
    code, out, err = run(capsys, "decode", tmp_path / "reply.txt", "-o", tmp_path / "m.obj")
    assert code == 0, err
    assert (tmp_path / "m.obj").exists() and (tmp_path / "m-2.obj").exists()
    assert "face repeats a vertex: 1" in out and "quad triangulated: 1" in out


def test_decode_reads_stdin(tmp_path, torus_text):
    proc = subprocess.run(
        [sys.executable, "-m", "meshlm", "decode", "-", "-o", str(tmp_path / "s.glb")],
        input=torus_text,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s.glb").stat().st_size > 0


def test_stats_json_lines_with_errors_and_tokenizer(tmp_path, capsys, torus_text):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    (tmp_path / "t.txt").write_text(torus_text)
    trimesh.creation.box().export(tmp_path / "b.ply")
    # a tiny word-level tokenizer: one token per number, 'v', 'f', space and newline (the layout
    # of Llama-3's: 8 tokens per line with its newline)
    words = ["[UNK]", "v", "f", "\n", " "] + [str(i) for i in range(300)]
    vocab = {w: i for i, w in enumerate(words)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(
        tokenizers.Regex(r"\d+|[a-z]+|\n| "), behavior="isolated"
    )
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(tmp_path / "tok")
    code, out, err = run(
        capsys,
        "stats",
        tmp_path / "t.txt",
        tmp_path / "b.ply",
        tmp_path / "missing.obj",
        "--json",
        "--tokenizer",
        tmp_path / "tok",
    )
    assert code == 1  # one file failed
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [
        str(tmp_path / n) for n in ("t.txt", "b.ply", "missing.obj")
    ]
    t = rows[0]
    m = decode(torus_text)
    assert (t["vertices"], t["faces"], t["characters"]) == (
        len(m.quantized),
        len(m.faces),
        len(torus_text),
    )
    lines = len(m.quantized) + len(m.faces)
    assert t["tokens"] == 8 * lines - 1  # 7 per line, newlines between lines
    assert t["tokens_per_face"] == round(t["tokens"] / t["faces"], 3)
    assert rows[1]["faces"] == 12 and "error" in rows[2] and "missing.obj" in rows[2]["error"]


def test_render_and_demo(tmp_path, capsys, torus_text):
    (tmp_path / "t.txt").write_text(torus_text)
    code, out, err = run(
        capsys, "render", tmp_path / "t.txt", "-o", tmp_path / "t.png", "--size", "128"
    )
    assert code == 0, err
    from PIL import Image

    im = np.asarray(Image.open(tmp_path / "t.png"))
    assert im.shape[:2] == (128, 128) and im.std() > 5
    code, out, err = run(capsys, "demo", "-o", tmp_path / "demo")
    assert code == 0, err
    for name in ("mesh.txt", "mesh.obj", "mesh.glb", "mesh.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    text = (tmp_path / "demo" / "mesh.txt").read_text()
    assert decode(text).to_text() == text.strip()


BAD_INPUTS = [
    ("empty.txt", b""),
    ("garbage.txt", bytes(range(256)) * 4),
    ("prose.txt", b"no mesh here, just words\n"),
    ("nan.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
    ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
    ("bad.glb", b"glTF\x02\x00\x00\x00garbage"),
    ("weird.xyz", b"1 2 3"),
    ("collapse.obj", b"v 0 0 0\nv 1 0 0\nv 1e-9 1e-9 0\nf 1 2 3\n"),
]


@pytest.mark.parametrize("name, data", BAD_INPUTS)
@pytest.mark.parametrize("verb", ["encode", "stats", "render", "decode"])
def test_bad_input_gives_one_line_and_exit_1(tmp_path, capsys, name, data, verb):
    p = tmp_path / name
    p.write_bytes(data)
    args = {
        "encode": [p],
        "stats": [p],
        "render": [p, "-o", tmp_path / "o.png"],
        "decode": [p, "-o", tmp_path / "o.obj"],
    }[verb]
    code, out, err = run(capsys, verb, *args)
    if (verb == "decode" and name in ("nan.obj", "points.obj", "collapse.obj")) or (
        verb == "render" and name == "collapse.obj"
    ):
        # decode reads any file as text and may find a usable mesh in it; render draws the float
        # mesh, which is fine (it only collapses once quantized). Either way: no traceback.
        assert code in (0, 1) and "Traceback" not in err
        return
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meshlm: error: "), err
    assert "Traceback" not in err
    assert str(p) in lines[0] or "<" in lines[0]


@pytest.mark.parametrize(
    "args",
    [[], ["encode"], ["decode", "x.txt"], ["nonsense"], ["encode", "x.obj", "--bins", "many"]],
)
def test_bad_usage_exits_2(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2 or (args == [] and code in (0, 2))
    assert "Traceback" not in err


def test_console_script_never_prints_a_traceback(tmp_path):
    p = tmp_path / "x.stl"
    p.write_bytes(b"solid x\nfacet normal 0 0 0\nouter loop\nvertex 1 2\n")
    exe = Path(sys.executable).parent / "meshlm"
    proc = subprocess.run(
        [str(exe), "encode", str(p)],
        capture_output=True,
        text=True,
        env={**os.environ, "MESHLM_DEBUG": ""},
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
