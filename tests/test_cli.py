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


# --- the --json output contract (real console script, stdout parsed as JSON) --------------------


def meshlm_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "meshlm"
    env = {**os.environ, "MESHLM_DEBUG": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


def json_line(stdout: str):
    """The one JSON object stdout must hold (one line), parsed."""
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    return json.loads(lines[0])


def test_generate_json_gives_paths_as_json_strings(tmp_path):
    """One -o: "out" is the path string; several: a list of path strings; png a string."""
    from meshlm.files import load_mesh

    gen = ["a box", "--threads", "1", "--max-new-tokens", "400", "--json"]
    one = meshlm_cli("generate", *gen, "-o", tmp_path / "a.obj")
    assert one.returncode == 0 and one.stderr == ""
    row = json_line(one.stdout)
    assert row["out"] == str(tmp_path / "a.obj") and row["png"] is None and row["error"] is None
    assert row["faces"] == len(load_mesh(tmp_path / "a.obj").faces) > 0
    assert row["repairs"] == {"repairs": {}, "drops": {}, "truncated": False, "notes": []}
    outs = ["-o", tmp_path / "b.obj", "-o", tmp_path / "b.glb", "--png", tmp_path / "b.png"]
    several = meshlm_cli("generate", *gen, *outs)
    assert several.returncode == 0 and several.stderr == ""
    row = json_line(several.stdout)
    assert row["out"] == [str(tmp_path / "b.obj"), str(tmp_path / "b.glb")]
    assert row["png"] == str(tmp_path / "b.png")
    assert all((tmp_path / n).stat().st_size > 0 for n in ("b.obj", "b.glb", "b.png"))
    assert "Path(" not in one.stdout + several.stdout


def test_generate_json_failure_is_one_object_with_the_error(tmp_path):
    # three tokens cannot hold a mesh (a mesh line alone is five)
    flags = "--threads 1 --no-constrain --max-new-tokens 3 --json".split()
    p = meshlm_cli("generate", "a box", "-o", tmp_path / "a.obj", *flags)
    assert p.returncode == 1
    row = json_line(p.stdout)
    assert row["error"] == "the reply holds no mesh: <text>: no mesh found"
    assert (row["out"], row["png"], row["repairs"], row["new_tokens"]) == (None, None, None, 3)
    assert p.stderr == "meshlm: error: the reply holds no mesh: <text>: no mesh found\n"
    assert not (tmp_path / "a.obj").exists()


def test_describe_json(tmp_path):
    trimesh.creation.box().export(tmp_path / "box.ply")
    p = meshlm_cli(
        "describe", tmp_path / "box.ply", "--threads", "1", "--max-new-tokens", "8", "--json"
    )
    assert p.returncode == 0 and p.stderr == ""
    row = json_line(p.stdout)
    assert row["file"] == str(tmp_path / "box.ply") and row["backend"] == "llama.cpp"
    assert isinstance(row["description"], str) and 0 < row["new_tokens"] <= 8


@pytest.mark.parametrize("verb", ["generate", "describe", "stats"])
def test_json_bad_input_gives_the_error_object_and_the_one_line(tmp_path, verb):
    prose = tmp_path / "prose.txt"
    prose.write_text("no mesh here\n")
    args, message = {
        "generate": (
            ["a box", "-o", tmp_path / "a.obj", "--model", tmp_path / "nope"],
            f"{tmp_path / 'nope'}: no such model folder",
        ),
        "describe": ([prose, "--threads", "1"], f"{prose}: no mesh found"),
        "stats": ([prose], f"{prose}: no mesh found"),
    }[verb]
    p = meshlm_cli(verb, *args, "--json")
    assert p.returncode == 1
    row = json_line(p.stdout)
    want = {"file": str(prose), "error": message} if verb == "stats" else {"error": message}
    assert row == want
    assert p.stderr == f"meshlm: error: {message}\n"


def test_json_stats_keeps_going_and_reports_each_failure(tmp_path):
    box = trimesh.creation.box()
    box.export(tmp_path / "box.stl")
    missing = tmp_path / "missing.obj"
    p = meshlm_cli("stats", tmp_path / "box.stl", missing, tmp_path / "box.stl", "--json")
    assert p.returncode == 1
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    chars = len(encode(box.vertices, box.faces))
    good = {"file": str(tmp_path / "box.stl"), "format": "llama-mesh", "vertices": 8}
    good.update(faces=12, characters=chars)
    assert rows[0] == rows[2] == good
    assert rows[1] == {"file": str(missing), "error": f"{missing}: no such file"}
    assert p.stderr == f"meshlm: error: {missing}: no such file\n"


def test_json_bad_usage_exits_2_with_an_error_object(tmp_path):
    p = meshlm_cli("generate", "a box", "-o", tmp_path / "a.txt", "--json")
    assert p.returncode == 2
    message = f"{tmp_path / 'a.txt'}: output must be .obj, .glb, .ply, .stl or .off"
    assert json_line(p.stdout) == {"error": message}
    assert p.stderr == f"meshlm: error: {message}\n"
    p = meshlm_cli("stats", "x.obj", "--bins", "many", "--json")  # the verb never ran
    assert p.returncode == 2
    assert json_line(p.stdout)["error"].startswith("Invalid value for '--bins'")
    assert "Traceback" not in p.stderr
