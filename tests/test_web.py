"""The web demo's handlers, driven in-process with a tiny random-weight model (no browser).

``make_tiny_model`` is shared with the browser test (``test_web_e2e.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
trimesh = pytest.importorskip("trimesh")

from meshlm import web  # noqa: E402
from meshlm.web import KEEP, Demo, Settings  # noqa: E402


def make_tiny_model(out: Path | None = None):
    """A 2-layer random-weight Llama with the meshlm tokenizer: (model, tokenizer); saved to
    ``out`` (a model folder ``meshlm.infer.load`` reads) when given."""
    from meshlm.train.tokenizer import train_tokenizer

    tok = train_tokenizer(
        ["Create a 3D model of a chair.", "A table with four legs."] * 20, vocab_size=1100
    )
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    if out is not None:
        model.save_pretrained(out)
        tok.save_pretrained(out)
    return model, tok


@pytest.fixture(scope="module")
def engine():
    from meshlm.infer import Engine
    from meshlm.infer.hf import HFBackend

    model, tok = make_tiny_model()
    return Engine(HFBackend(model, tok, "cpu"))


@pytest.fixture
def demo(engine, tmp_path):
    d = Demo(engine=engine, workdir=tmp_path / "work")
    yield d
    d.close()


def box_file(path: Path, **kw) -> Path:
    from meshlm.files import save_mesh

    m = kw.pop("mesh", None) or trimesh.creation.box(extents=(1.0, 0.5, 0.3))
    save_mesh(m, path)
    return path


FAST = Settings(temperature=1.0, max_new_tokens=300, constrain=True, seed=1)


# --- pure helpers ----------------------------------------------------------------------------


def test_wants_mesh_tells_requests_from_questions():
    for p in ["a chair", "Create a 3D model of a mug.", "make a lamp", "round table"]:
        assert web.wants_mesh(p), p
    for p in ["What is a mesh?", "hello", "is it a chair", "a chair?", "  ", ""]:
        assert not web.wants_mesh(p), p


def test_display_reply_fences_mesh_lines_only():
    text = "Here it is:\nv 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\nEnjoy."
    out = web.display_reply(text)
    assert out == "Here it is:\n\n```\nv 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\n```\nEnjoy."
    assert web.display_reply("just words") == "just words"


def test_trim_history_keeps_newest_turns_within_budget():
    h = [
        {"role": r, "content": c * 10}
        for r, c in [
            ("user", "a"),
            ("assistant", "b"),
            ("user", "c"),
            ("assistant", "d"),
            ("user", "e"),
        ]
    ]
    assert web.trim_history(h, budget=1000) == h
    kept = web.trim_history(h, budget=25)  # room for two turns: starts with a user turn
    assert [m["content"][0] for m in kept] == ["e"]
    kept = web.trim_history(h, budget=35)
    assert [m["content"][0] for m in kept] == ["c", "d", "e"]
    assert web.trim_history(h[-1:], budget=1) == h[-1:]  # the last turn always stays


# --- a turn that writes a mesh ---------------------------------------------------------------


def test_prompt_streams_text_updates_viewer_then_offers_downloads(demo, monkeypatch):
    # a random-weight model ends its meshes after a face or two: show every new face at once,
    # and take a seed whose mesh has more than one face, so a live update comes before the end
    monkeypatch.setattr(web, "VIEWER_EVERY_FACES", 1)
    monkeypatch.setattr(web, "VIEWER_EVERY_SECONDS", 0.0)
    ups = list(demo.turn("a chair", [], [], dataclasses.replace(FAST, seed=5)))
    assert ups[-1].done and all(not u.done for u in ups[:-1])
    assert ups[0].files is None and ups[0].report == ""  # the previous downloads are cleared
    assert ups[0].chat[-2] == {"role": "user", "content": "a chair"}
    # the chat grows while streaming
    texts = [u.chat[-1]["content"] for u in ups[1:-1]]
    assert len(texts) >= 2 and len(texts[-1]) > len(texts[0])
    # the viewer got GLBs of the faces so far, before the end
    partial = [u.viewer for u in ups[:-1] if u.viewer is not KEEP]
    assert partial, "no live viewer update"
    last = ups[-1]
    obj, glb = last.files
    assert obj.endswith(".obj") and glb.endswith(".glb") and last.viewer == glb
    scene = trimesh.load(glb, force="scene")
    geom = next(iter(scene.geometry.values()))
    assert len(geom.faces) >= 1
    colors = geom.visual.vertex_colors[:, :3].astype(int)
    assert len(np.unique(colors, axis=0)) > 1 or len(geom.faces) == 1  # height gradient
    mesh = trimesh.load(obj, force="mesh")
    assert len(mesh.faces) == len(geom.faces)
    assert f"{len(mesh.faces)} faces" in last.report and "tok/s" in last.report
    # superseded partial previews are deleted; the final files stay
    assert not any(Path(p).exists() for p in partial) and Path(glb).exists()
    # the model's history holds the request as the training data asks it, and the raw reply
    assert [m["role"] for m in last.history] == ["user", "assistant"]
    assert last.history[0]["content"] == "Create a 3D model of a chair."
    assert "\nf " in last.history[1]["content"] and last.warning is None


def test_cut_off_reply_keeps_complete_faces_and_says_so(demo):
    s = Settings(temperature=1.0, max_new_tokens=64, constrain=True, seed=3)
    last = list(demo.turn("a table", [], [], s))[-1]
    assert "Cut off" in last.report
    assert last.history[-1]["content"]


def test_question_gets_free_text_and_history_carries_over(demo):
    first = list(demo.turn("a cone", [], [], FAST))[-1]
    s = Settings(temperature=1.0, max_new_tokens=30, constrain=True, seed=0)
    ups = list(demo.turn({"text": "What is it?", "files": []}, first.chat, first.history, s))
    last = ups[-1]
    assert len(last.chat) == 4 and len(last.history) == 4
    assert last.history[2] == {"role": "user", "content": "What is it?"}  # not rewritten
    assert last.files is None or all(Path(p).exists() for p in last.files)


# --- a turn about an uploaded mesh -----------------------------------------------------------


def test_uploaded_mesh_goes_into_the_conversation_and_the_viewer(demo, tmp_path):
    path = box_file(tmp_path / "crate.glb")
    s = Settings(temperature=0.0, max_new_tokens=40, seed=0)
    ups = list(demo.turn({"text": "What is this?", "files": [str(path)]}, [], [], s))
    first, last = ups[0], ups[-1]
    assert first.chat[-2]["content"].startswith("Attached crate.glb (8 vertices, 12 faces)")
    assert first.viewer.endswith(".glb") and Path(first.viewer).exists()
    asked = last.history[0]["content"]
    assert asked.startswith("What is this?\nv ") and asked.count("\nf ") == 12
    assert last.done and last.warning is None and last.history[1]["role"] == "assistant"
    # without a question the default one is asked
    last = list(demo.turn({"text": "", "files": [str(path)]}, [], [], s))[-1]
    assert last.history[0]["content"].startswith("What is this 3D object?\nv ")


@pytest.mark.parametrize("fmt", ["obj", "ply", "stl", "off"])
def test_every_readable_format_uploads(demo, tmp_path, fmt):
    path = box_file(tmp_path / f"box.{fmt}")
    mesh, summary = demo.load_upload(path)
    assert len(mesh.faces) == 12 and summary == f"box.{fmt} (8 vertices, 12 faces)"


# --- limits: the user is told why, the demo keeps serving ------------------------------------


def _refused(demo, message, settings=None):
    ups = list(demo.turn(message, [], [], settings or FAST))
    assert len(ups) == 1 and ups[0].done and ups[0].history == []
    assert ups[0].chat[-1]["content"] == f"⚠️ {ups[0].warning}"
    return ups[0].warning


def test_limits_refuse_with_a_reason_before_loading_the_model(tmp_path):
    d = Demo(model=str(tmp_path / "no-such-model"), workdir=tmp_path / "w")
    assert "limit is 2000" in _refused(d, "x" * (web.MAX_PROMPT_CHARS + 1))
    shown = next(iter(d.turn("y" * 5000, [], [], FAST))).chat[0]["content"]
    assert shown.endswith("… (5000 characters)") and len(shown) < 400
    assert "type a prompt" in _refused(d, {"text": " ", "files": []})
    big = box_file(tmp_path / "ball.obj", mesh=trimesh.creation.icosphere(subdivisions=3))
    msg = _refused(d, {"text": "what?", "files": [str(big)]})
    assert "1,280 faces" in msg and "1,000" in msg and "simplify" in msg
    bad = tmp_path / "bad.stl"
    bad.write_bytes(b"solid x\nfacet normal 0 0 0\n")
    assert "bad.stl" in _refused(d, {"text": "what?", "files": [str(bad)]})
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    assert "unknown mesh format" in _refused(d, {"text": "", "files": [str(txt)]})
    assert "max new tokens" in _refused(d, "a chair", Settings(max_new_tokens=10**6))
    assert d.engine is None  # nothing above needed the model


def test_upload_size_limit(demo, tmp_path, monkeypatch):
    path = box_file(tmp_path / "box.obj")
    monkeypatch.setattr(web, "MAX_UPLOAD_BYTES", 100)
    assert "upload limit" in _refused(demo, {"text": "", "files": [str(path)]})


def test_generation_time_limit_stops_and_keeps_serving(demo, monkeypatch):
    monkeypatch.setattr(web, "MAX_GENERATION_SECONDS", 0.0)
    last = list(demo.turn("a lamp", [], [], FAST))[-1]
    assert last.done and "generation time limit" in last.warning
    assert "⚠️ stopped after 0 s" in last.chat[-1]["content"] and "Time limit" in last.report
    monkeypatch.setattr(web, "MAX_GENERATION_SECONDS", 600.0)
    again = list(demo.turn("a lamp", [], [], FAST))[-1]
    assert again.warning is None and again.done


def test_missing_model_is_reported_in_the_chat(tmp_path):
    d = Demo(model=str(tmp_path / "no-such-model"), workdir=tmp_path / "w")
    last = list(d.turn("a chair", [], [], FAST))[-1]
    assert last.done and "model is not available" in last.warning
    assert d.engine is None


# --- the app and the command -----------------------------------------------------------------


def test_app_builds_with_the_queue_limits(demo):
    app = demo.build()
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"chat", "prompt", "viewer", "downloads", "report"} <= ids
    fns = [f for f in app.fns.values() if f.concurrency_id == "generate"]
    assert len(fns) == 1 and fns[0].concurrency_limit == web.MAX_CONCURRENT
    assert app._queue.max_size == web.MAX_QUEUE


def test_serve_command_fails_in_one_line_for_a_missing_model(tmp_path, capsys):
    from meshlm.cli import main

    assert main(["serve", "--model", str(tmp_path / "nope"), "--port", "7999"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("meshlm: error: ")
    assert "nope" in err[-1] and "no such model folder" in err[-1]
    assert main(["serve", "--port", "70000"]) == 2


def test_temperature_slider_starts_at_the_models_recommended_decoding(tmp_path):
    from meshlm.infer import Engine, Sampling
    from meshlm.infer.hf import HFBackend

    model, tok = make_tiny_model()
    for defaults, want in (({}, Sampling().temperature), ({"temperature": 0.0}, 0.0)):
        d = Demo(
            engine=Engine(HFBackend(model, tok, "cpu"), sampling_defaults=defaults),
            workdir=tmp_path / str(want),
        )
        sliders = [
            b
            for b in d.build().blocks.values()
            if getattr(b, "label", None) == "Temperature (0 = greedy)"
        ]
        assert [s.value for s in sliders] == [want]
        d.close()
    # a turn without a temperature decodes as the model recommends; a set one wins
    assert Settings().sampling({"temperature": 0.0, "top_k": 7}).temperature == 0.0
    assert Settings().sampling({"temperature": 0.0, "top_k": 7}).top_k == 7
    assert Settings(temperature=0.9).sampling({"temperature": 0.0}).temperature == 0.9
    assert Settings().sampling().temperature == Sampling().temperature
