"""The parts format through every stage but the decoding constraint: the model folder's and the
dataset manifest's format block, ``build-data --format parts`` (every row kind, the token
budget), ``encode``/``decode``/``stats --format``, and the readers of a parts model's replies
(the engine, ``describe``/``chat``'s mesh text, evaluation, the web demo)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from meshlm import meshtext, modelfolder
from meshlm.cli import main
from meshlm.codec import decode, encode
from meshlm.data.conversations import mesh_text
from meshlm.errors import MeshFormatError, MeshlmError
from meshlm.modelfolder import MeshFormat, format_block
from meshlm.parts import FORMATS, decode_parts, encode_parts, format_parts

BUNDLED = modelfolder.BUNDLED_MODEL
SPLITS = ("train", "validation", "test")


def _triangles(mesh) -> set[tuple]:
    """The wound triangles of a mesh by coordinates, each rotated to start at its smallest
    vertex: equal for two texts of one mesh whatever their vertex order."""
    out = set()
    for f in mesh.faces.tolist():
        pts = [tuple(mesh.quantized[i].tolist()) for i in f]
        k = pts.index(min(pts))
        out.add(tuple(pts[k:] + pts[:k]))
    return out


def _same_mesh(a, b) -> bool:
    va = {tuple(v) for v in a.quantized.tolist()}
    vb = {tuple(v) for v in b.quantized.tolist()}
    return va == vb and len(a.faces) == len(b.faces) and _triangles(a) == _triangles(b)


def _cube():
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 2)], dtype=float)
    f = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1]]
    f += [[2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return v, np.array(f)


def _two_boxes():
    """Two separate boxes (a parts text of two parts)."""
    v, f = _cube()
    return np.vstack([v, v + [3.0, 0, 0]]), np.vstack([f, f + 8])


# -- the format block ------------------------------------------------------------------------


def test_model_folder_formats_are_the_formats_meshlm_encodes():
    assert list(modelfolder.FORMATS) == list(FORMATS) == list(meshtext.NAMES)
    assert list(meshtext.NAMES) == ["llama-mesh", "parts"]
    block = format_block(64, "parts")
    assert block == {
        "name": "parts",
        "bins": 64,
        "up_axis": "y",
        "description": modelfolder.FORMATS["parts"],
    }
    assert "relative" in block["description"] and "docs/format.md" in block["description"]
    assert MeshFormat.from_dict(block) == MeshFormat("parts", 64)


def test_a_parts_model_folder_is_read_back_as_parts(tmp_path):
    info = modelfolder.ModelInfo(format=MeshFormat("parts", 128))
    modelfolder.write(tmp_path, info)
    assert json.loads((tmp_path / "meshlm.json").read_text())["format"] == format_block(
        128, "parts"
    )
    assert modelfolder.read(tmp_path).format == MeshFormat("parts", 128)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": format_block(64, "parts")}))
    assert modelfolder.dataset_format(tmp_path) == MeshFormat("parts", 64)


# -- meshtext: one place per format ------------------------------------------------------------


def test_meshtext_writes_reads_and_converts_per_format():
    v, f = _two_boxes()
    llama, parts = encode(v, f), encode_parts(v, f)
    mesh = decode(llama)
    assert meshtext.write(mesh, "parts") == parts
    assert meshtext.write(mesh, "llama-mesh") == llama
    assert meshtext.convert(llama, "parts") == parts
    assert meshtext.convert(llama, "llama-mesh") is llama
    assert meshtext.as_format(llama, "parts") == parts
    assert meshtext.as_format(parts, "llama-mesh") == llama
    assert meshtext.as_format(parts, "parts") is parts
    assert meshtext.as_format("not a mesh", "parts") == "not a mesh"
    assert _same_mesh(meshtext.decode_strict(parts, "parts"), mesh)
    with pytest.raises(MeshFormatError):
        meshtext.decode_strict(llama, "parts")
    with pytest.raises(MeshFormatError):
        meshtext.decode_strict(parts, "llama-mesh")
    # a reply: the parts are joined into one mesh (LLaMA-Mesh's lenient reader sees two meshes)
    reply = f"Sure, two boxes:\n\n{parts}\n\nAnything else?"
    got = meshtext.read_reply(reply, "parts")
    assert _same_mesh(got, mesh) and got.report.clean
    assert len(meshtext.read_reply(reply, "llama-mesh").faces) == 12
    # cut off at the token limit: the unfinished last face line is dropped
    cut = parts[: parts.rindex("\n") + 4]  # "f -" of the last face
    got = meshtext.read_reply(cut, "parts", cut_off=True)
    assert len(got.faces) == 23 and got.report.truncated
    with pytest.raises(MeshlmError, match="unknown mesh text format 'obj'"):
        meshtext.check("obj")


# -- build-data --format parts ---------------------------------------------------------------


def _rows(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for s in SPLITS
        for line in (out / f"{s}.jsonl").read_text().splitlines()
        if line.strip()
    ]


def _build(out: Path, fmt: str | None, *extra: str) -> int:
    args = ["build-data", "--procedural", "12", "--family", "table", "--family", "vase"]
    args += ["--family", "chair", "--max-segments", "6", "--rotations", "0,90"]
    args += ["--mix", "0.5,0.5,0", "--multi-turn", "0.5", "-j", "1", "--no-progress"]
    args += ["--out", str(out), *extra]
    return main(args + (["--format", fmt] if fmt else []))


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    pytest.importorskip("trimesh")
    pytest.importorskip("datasets")
    root = tmp_path_factory.mktemp("parts-data")
    assert _build(root / "llama", None) == 0
    assert _build(root / "parts", "parts") == 0
    return root / "llama", root / "parts"


def _split_meshes(content: str) -> tuple[str, list[str]]:
    """(the message with each mesh replaced by <MESH>, the meshes)."""
    meshes = []
    while (m := mesh_text(content)) is not None:
        meshes.append(m)
        content = content.replace(m, "<MESH>", 1)
    return content, meshes


def test_build_data_parts_writes_every_mesh_as_canonical_parts_text(builds):
    llama_dir, parts_dir = builds
    m = json.loads((parts_dir / "manifest.json").read_text())
    assert m["format"] == format_block(64, "parts") and m["arguments"]["format"] == "parts"
    assert json.loads((llama_dir / "manifest.json").read_text())["format"] == format_block(64)
    a, b = _rows(llama_dir), _rows(parts_dir)
    assert len(a) == len(b) > 0
    seen = {"generation": 0, "understanding": 0, "assistant": 0, "user": 0, "dialogue": 0}
    for ra, rb in zip(a, b, strict=True):
        # the same rows, word for word (counts in follow-up answers too); only the meshes differ
        assert (ra["task"], ra["source"]) == (rb["task"], rb["source"])
        assert len(ra["messages"]) == len(rb["messages"])
        seen[rb["task"]] += 1
        seen["dialogue"] += len(rb["messages"]) > 2
        for ma, mb in zip(ra["messages"], rb["messages"], strict=True):
            ta, la = _split_meshes(ma["content"])
            tb, lb = _split_meshes(mb["content"])
            assert (ma["role"], ta) == (mb["role"], tb) and len(la) == len(lb)
            for llama, parts in zip(la, lb, strict=True):
                seen[mb["role"]] += 1
                mesh = decode_parts(parts)  # strict
                assert format_parts(mesh) == parts  # re-encodes byte for byte
                assert encode_parts(mesh.vertices, mesh.faces) == parts
                assert _same_mesh(mesh, decode(llama))
    assert all(seen.values()), seen  # answers, questions and dialogues all carried parts text


def test_build_data_token_budget_counts_the_parts_text(builds, tmp_path):
    pytest.importorskip("transformers")
    from meshlm.data.assemble import TokenCounter

    counter = TokenCounter(str(BUNDLED))  # the bundled tokenizer: a parts line costs more
    n_llama = counter.count([r["messages"] for r in _rows(builds[0])])
    n_parts = counter.count([r["messages"] for r in _rows(builds[1])])
    assert all(p > q for p, q in zip(n_parts, n_llama, strict=True))
    budget = str(int(np.median(n_parts)))
    dropped = {}
    for fmt, work in ((None, builds[0]), ("parts", builds[1])):
        # the same build twice (its records reused): without and with the exact token count
        free, capped = tmp_path / f"{fmt}-free", tmp_path / f"{fmt}-capped"
        for out, extra in ((free, []), (capped, ["--tokenizer", str(BUNDLED)])):
            shutil.copytree(work / ".work", out / ".work")
            assert _build(out, fmt, "--max-length", budget, *extra) == 0
        rows = _rows(free)
        n = counter.count([r["messages"] for r in rows])
        fits = sorted(json.dumps(r) for r, k in zip(rows, n, strict=True) if k <= int(budget))
        assert sorted(json.dumps(r) for r in _rows(capped)) == fits  # exactly the rows that fit
        m = json.loads((capped / "manifest.json").read_text())
        dropped[fmt] = sum(m["counts"]["rows_over_token_budget"].values())
        assert dropped[fmt] == len(rows) - len(fits)
    assert dropped[None] < dropped["parts"]


def test_build_data_refuses_an_unknown_format(tmp_path, capsys):
    assert _build(tmp_path / "x", "obj") == 1
    err = capsys.readouterr().err
    assert err.strip() == "meshlm: error: --format must be one of llama-mesh, parts, got 'obj'"


# -- encode / decode / stats --format ----------------------------------------------------------


def test_encode_and_decode_cli_round_trip_parts_text(tmp_path, capsys):
    trimesh = pytest.importorskip("trimesh")
    v, f = _two_boxes()
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "boxes.obj")
    text = tmp_path / "boxes.txt"
    assert main(["encode", str(tmp_path / "boxes.obj"), "--format", "parts", "-o", str(text)]) == 0
    assert text.read_text() == encode_parts(v, f) + "\n"
    assert main(["encode", str(tmp_path / "boxes.obj")]) == 0  # the default is unchanged
    assert capsys.readouterr().out == encode(v, f) + "\n"
    out = tmp_path / "back.obj"
    args = ["decode", str(text), "-o", str(out), "--format", "parts"]
    assert main([*args, "--strict", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row == {
        "file": str(out),
        "format": "parts",
        "bins": 64,
        "strict": True,
        "vertices": 16,
        "faces": 24,
        "report": {"repairs": {}, "drops": {}, "truncated": False, "notes": []},
    }
    back = trimesh.load(out, process=False)
    assert encode_parts(back.vertices, back.faces) == encode_parts(v, f)
    # lenient: a reply around the text, one quad; the parts are one mesh, the repair reported
    reply = tmp_path / "reply.txt"
    body = encode_parts(v, f).split("\n")
    body[body.index("f -8 -7 -6")] = "f -8 -7 -6 -5"  # two faces of the first part ...
    body.remove("f -8 -6 -5")  # ... written as one quad
    reply.write_text("Here you go:\n```\n" + "\n".join(body) + "\n```\n")
    assert main(["decode", str(reply), "-o", str(out), "--format", "parts", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["format"], row["strict"], row["vertices"], row["faces"]) == ("parts", False, 16, 24)
    assert sum(row["report"]["repairs"].values()) == 1
    # strict refuses LLaMA-Mesh text as parts, naming the line
    (tmp_path / "llama.txt").write_text(encode(v, f) + "\n")
    args = ["decode", str(tmp_path / "llama.txt"), "-o", str(out), "--format", "parts"]
    assert main([*args, "--strict"]) == 1
    assert capsys.readouterr().err == (
        f"meshlm: error: {tmp_path / 'llama.txt'}:17: malformed face line 'f 1 2 4' "
        "(expected 'f -A -B -C', relative indices)\n"
    )


def test_stats_json_records_the_format_and_counts_its_text(tmp_path, capsys):
    trimesh = pytest.importorskip("trimesh")
    v, f = _two_boxes()
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "boxes.obj")
    for fmt, text in (("parts", encode_parts(v, f)), ("llama-mesh", encode(v, f))):
        assert main(["stats", str(tmp_path / "boxes.obj"), "--format", fmt, "--json"]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row == {
            "file": str(tmp_path / "boxes.obj"),
            "format": fmt,
            "vertices": 16,
            "faces": 24,
            "characters": len(text),
        }


# -- inference reads a parts model's replies as parts ------------------------------------------


@pytest.fixture(scope="module")
def parts_model(tmp_path_factory):
    """The bundled model's weights in a folder whose meshlm.json says parts."""
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("parts-model")
    for p in BUNDLED.iterdir():
        if p.is_file() and p.suffix != ".gguf" and p.name != "meshlm.json":
            (out / p.name).symlink_to(p)
    info = modelfolder.read(BUNDLED)
    modelfolder.write(out, modelfolder.ModelInfo(format=MeshFormat("parts", info.format.bins)))
    return out


@pytest.fixture(scope="module")
def parts_engine(parts_model):
    from meshlm.infer import load

    return load(parts_model, "transformers", threads=1)


def test_the_engine_reads_replies_and_shows_meshes_in_the_models_format(parts_engine):
    from meshlm.infer import mesh_question

    engine = parts_engine
    assert engine.mesh_format == MeshFormat("parts", 64) and engine.notes == []
    v, f = _two_boxes()
    parts = encode_parts(v, f)
    reply = f"Here is the mesh:\n{parts}\n"
    mesh = engine.read_reply(reply)
    assert _same_mesh(mesh, decode(encode(v, f))) and mesh.report.clean
    # a constrained reply: valid parts text, but the constraint cannot enforce the canonical
    # order (here: the two parts swapped, the faces of the first reversed), so it is read as a
    # reply, with nothing to repair
    lines = parts.split("\n")
    first, second = lines[:20], lines[20:]
    swapped = "\n".join(second + first[:8] + first[8:][::-1])
    with pytest.raises(MeshFormatError, match="canonical order"):
        decode_parts(swapped)
    got, error = engine._decode_reply(f"Here is the mesh:\n{swapped}", True, False)
    assert error is None and _same_mesh(got, mesh) and got.report.clean
    # describe / chat /load show a mesh in the model's format
    assert engine.mesh_text(mesh) == parts
    assert mesh_question(mesh, fmt="parts") == f"What is this 3D object?\n{parts}"


def test_a_parts_reply_streamed_so_far_is_its_parts_joined(parts_engine):
    from meshlm.infer.types import Partial

    v, f = _two_boxes()
    parts = encode_parts(v, f)
    part = Partial(text=f"Sure!\n{parts}", tokens=1, seconds=1.0)
    assert len(part.mesh(64, "parts").faces) == 23  # the last line may be unfinished
    # read as LLaMA-Mesh each part is a mesh, and the one with the most faces counts (the first
    # box, 12; the second is still being written)
    assert len(part.mesh(64, "llama-mesh").faces) == 12
    done = Partial(text=f"Sure!\n{parts}\n", tokens=1, seconds=1.0, done=True)
    assert len(done.mesh(64, "parts").faces) == 24


def test_chat_load_shows_the_mesh_in_the_models_format(parts_model, tmp_path, capsys, monkeypatch):
    import io

    trimesh = pytest.importorskip("trimesh")
    v, f = _two_boxes()
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "boxes.obj")
    (tmp_path / "boxes.txt").write_text(encode_parts(v, f) + "\n")  # parts text reads as parts
    lines = f"/load {tmp_path / 'boxes.obj'}\n/load {tmp_path / 'boxes.txt'}\n/quit\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat", "--model", str(parts_model), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("(16 vertices, 24 faces, 64 bins)") == 2 and "error" not in err


def test_evaluation_checks_replies_strictly_in_the_models_format():
    from meshlm.eval.validity import repair_counts, strict_parse_rate

    v, f = _two_boxes()
    parts, llama = encode_parts(v, f), encode(v, f)
    texts = [parts, llama, f"Sure:\n{parts}"]
    assert strict_parse_rate(texts, fmt="parts") == 1 / 3
    assert strict_parse_rate(texts) == 1 / 3
    rep = repair_counts(texts, fmt="parts")
    assert (rep["parse_rate"], rep["clean_rate"], rep["texts_with_drops"]) == (1.0, 1.0, 0)
    quad = parts.replace("f -8 -7 -6\n", "f -8 -7 -6 -5\n", 1).replace("f -8 -6 -5\n", "", 1)
    rep = repair_counts([quad, parts], fmt="parts")
    assert (rep["texts_with_repairs"], sum(rep["repairs"].values()), rep["clean_rate"]) == (
        1,
        1,
        0.5,
    )


def test_eval_understand_shows_held_out_meshes_in_the_models_format(parts_engine, tmp_path):
    from meshlm.eval.runner import _item_mesh

    v, f = _two_boxes()
    parts, llama = encode_parts(v, f), encode(v, f)
    assert _item_mesh({"mesh": llama}, 0, 64, "parts") == parts  # held-out sets store LLaMA-Mesh
    assert _item_mesh({"mesh": parts}, 0, 64, "llama-mesh") == llama
    assert _item_mesh({"mesh": llama}, 0, 64) == llama
    pytest.importorskip("trimesh").Trimesh(v, f, process=False).export(tmp_path / "b.obj")
    assert _item_mesh({"path": str(tmp_path / "b.obj")}, 0, 64, "parts") == parts


def test_eval_understand_splits_reading_into_meshes_trained_on_and_the_rest(
    parts_model, tmp_path, capsys
):
    v, f = _two_boxes()
    cube_v, cube_f = _cube()
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"format": format_block(64, "parts")}))
    row = {
        "messages": [
            {"role": "user", "content": f"What is it?\n{encode_parts(v, f)}"},
            {"role": "assistant", "content": "Two boxes."},
        ],
        "task": "understanding",
    }
    (data / "train.jsonl").write_text(json.dumps(row) + "\n")
    held = tmp_path / "held.jsonl"  # as held-out sets store them: LLaMA-Mesh text
    held.write_text("".join(json.dumps({"mesh": encode(a, b), "caption": "a box", "family": "box"})
                            + "\n" for a, b in ((v, f), (cube_v, cube_f))))  # fmt: skip
    out = tmp_path / "und"
    args = [
        "eval",
        "understand",
        "--model",
        str(parts_model),
        "--backend",
        "transformers",
        "--data",
        str(held),
        "--out",
        str(out),
        "--max-new-tokens",
        "4",
        "--threads",
        "1",
    ]
    assert main([*args, "--train", str(data)]) == 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["seen_in_training"] for r in rows] == [True, False]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["seen_meshes"], metrics["unseen_meshes"]) == (1, 1)
    assert metrics["family_accuracy_seen"] == float(rows[0]["family_ok"])
    assert metrics["family_accuracy_unseen"] == float(rows[1]["family_ok"])
    # the confusion matrix holds every row once, the right readings on its diagonal
    assert metrics["confusion"] == {
        "box": dict(Counter(r["predicted_family"] or "none" for r in rows).most_common())
    }
    wrong = [r["predicted_family"] or "none" for r in rows if not r["family_ok"]]
    shown = capsys.readouterr().out  # the summary names the commonest misreading, or "-"
    assert "misread most" in shown and (f"box as {wrong[0]}" if wrong else "-") in shown
    assert main([*args, "--train", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--train {tmp_path}: no train.jsonl" in err[0]


def test_web_demo_shows_an_upload_in_the_models_format(parts_engine, tmp_path):
    pytest.importorskip("gradio")
    trimesh = pytest.importorskip("trimesh")
    from meshlm.web import Demo, Settings

    v, f = _two_boxes()
    trimesh.Trimesh(v, f, process=False).export(tmp_path / "boxes.obj")
    demo = Demo(engine=parts_engine, workdir=tmp_path / "work")
    try:
        s = Settings(temperature=0.0, max_new_tokens=4, seed=0)
        last = list(
            demo.turn({"text": "What is it?", "files": [str(tmp_path / "boxes.obj")]}, [], [], s)
        )[-1]
    finally:
        demo.close()
    assert last.warning is None
    assert last.history[0]["content"] == f"What is it?\n{encode_parts(v, f)}"
    assert re.search(r"^f -", last.history[0]["content"], re.M)
