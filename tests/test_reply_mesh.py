"""One rule for which mesh of a reply counts (meshlm.lenient.reply_mesh: the most faces, the
earliest on a tie), and every stage follows it: decode(strict=False), the engine's result,
chat and stream, the evaluation's geometry and repair counts, the web demo.

The engine runs for real over meshlm's OpenAI-compatible backend against a local HTTP server
that streams a fixed reply (the same harness as tests/test_openai_vllm.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from meshlm import decode, decode_all, reply_mesh
from meshlm.eval.runner import eval_generate
from meshlm.eval.validity import repair_counts
from meshlm.infer import Sampling, load
from meshlm.infer.types import Partial
from meshlm.lenient import main_mesh
from meshlm.meshtext import read_reply

# prose, a one-face example, a closed tetrahedron written with a quad-free but 0-based slip
# (so it carries a repair), and a restart cut short: the tetrahedron is neither first nor last
SMALL = "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3"
TETRA = "v 0 0 0\nv 9 0 0\nv 0 9 0\nv 0 0 9\nf 0 2 1\nf 0 1 3\nf 0 3 2\nf 1 2 3"
RESTART = "v 5 5 5\nv 6 5 5\nv 5 6 5\nf 1 2 3"
REPLY = (
    f"A triangle looks like this:\n{SMALL}\nNow the object:\n{TETRA}\n"
    f"Let me start again:\n{RESTART}\n"
)
TETRA_Q = np.array([[0, 0, 0], [0, 0, 9], [0, 9, 0], [9, 0, 0]])


def _is_tetra(mesh) -> bool:
    return (
        mesh is not None
        and len(mesh.faces) == 4
        and np.array_equal(np.unique(mesh.quantized, axis=0), TETRA_Q)
    )


def test_the_rule_is_the_most_faces_not_the_first_or_last():
    meshes = decode_all(REPLY)
    assert [len(m.faces) for m in meshes] == [1, 4, 1]
    m = reply_mesh(REPLY)
    assert _is_tetra(m)
    assert m.report.repairs == {"0-based face indices read as 0-based": 1}
    assert _is_tetra(decode(REPLY, strict=False))
    assert _is_tetra(read_reply(REPLY))


def test_a_tie_goes_to_the_earliest():
    text = f"{SMALL}\nand\n{RESTART}"
    a, b = decode_all(text)
    assert main_mesh([a, b]) is a
    assert np.array_equal(reply_mesh(text).quantized, a.quantized)


def test_a_streamed_partial_shows_the_same_mesh():
    assert _is_tetra(Partial(text=REPLY, tokens=1, seconds=0.1, done=True).mesh())
    # mid-stream, before the tetrahedron is complete, the largest so far is shown
    cut = REPLY[: REPLY.index("f 0 3 2")]
    assert len(Partial(text=cut, tokens=1, seconds=0.1).mesh().faces) == 2


def test_validity_counts_the_mesh_that_counts():
    r = repair_counts([REPLY])
    assert r["parse_rate"] == 1.0
    assert r["repairs"] == {"0-based face indices read as 0-based": 1}


def _serve(reply: str):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_error(404)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for line in reply.splitlines(keepends=True):
                chunk = {"choices": [{"delta": {"content": line}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {
                "choices": [{"delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 40},
            }
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", server


@pytest.fixture(scope="module")
def engine():
    base, server = _serve(REPLY)
    yield load("any-model", base_url=base)
    server.shutdown()


FREE = Sampling(constrain=False, max_new_tokens=200)


def test_engine_generate_chat_and_stream_return_that_mesh(engine):
    r = engine.generate("a tetrahedron", FREE)
    assert r.text == REPLY and _is_tetra(r.mesh)
    assert (r.stats.vertices, r.stats.faces) == (4, 4)
    assert _is_tetra(engine.chat([{"role": "user", "content": "hi"}], FREE).mesh)
    last = list(engine.stream("a tetrahedron", FREE))[-1]
    assert last.done and _is_tetra(last.mesh(engine.bins))


def test_eval_generate_scores_geometry_and_repairs_on_that_mesh(engine, tmp_path):
    metrics = eval_generate(engine, [{"prompt": "a tetrahedron"}], tmp_path, FREE, grid=False)
    row = json.loads((tmp_path / "samples.jsonl").read_text().splitlines()[0])
    assert (row["vertices"], row["faces"]) == (4, 4)
    saved = (tmp_path / row["mesh"]).read_text()
    assert sum(ln.startswith("f ") for ln in saved.splitlines()) == 4
    assert metrics["repairs"]["repairs"] == {"0-based face indices read as 0-based": 1}
    assert metrics["repairs"]["parse_rate"] == 1.0


def test_the_web_demo_shows_that_mesh(engine, tmp_path):
    from meshlm.web import Demo, Settings

    demo = Demo(engine=engine, workdir=tmp_path)
    # a mesh request, and a question whose free-text reply carries meshes
    for prompt in ("a tetrahedron", "What does a tetrahedron look like?"):
        updates = list(demo.turn(prompt, [], [], Settings(constrain=False, max_new_tokens=200)))
        final = updates[-1]
        assert final.done and final.warning is None
        assert final.report.startswith("**4 vertices, 4 faces**"), final.report
        obj = next(f for f in final.files if f.endswith(".obj"))
        faces = [ln for ln in open(obj).read().splitlines() if ln.startswith("f ")]
        assert len(faces) == 4


def test_parts_text_follows_the_same_rule():
    from meshlm.parts import format_parts

    small, tetra = decode_all(REPLY)[:2]
    text = f"An example:\n{format_parts(small)}\nThe object:\n{format_parts(tetra)}\n"
    m = read_reply(text, "parts")
    assert len(m.faces) == 4 and np.array_equal(np.unique(m.quantized, axis=0), TETRA_Q)
    # parts written one after another (only whitespace between) are one mesh, joined
    joined = read_reply(f"{format_parts(small)}\n\n{format_parts(tetra)}\n", "parts")
    assert len(joined.faces) == 5
