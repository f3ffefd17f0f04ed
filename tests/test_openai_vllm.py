"""The OpenAI-compatible backend speaks each server's own constraint field: llama.cpp-style servers
get a GBNF ``grammar``; vLLM (found by its ``GET /version``) gets the syntax as a regex in
``structured_outputs`` (>= 0.11) or ``guided_regex`` (older) and ``vllm_xargs`` for meshlm's
vLLM logits processor. vLLM does not run on this machine, so a stand-in HTTP server on
127.0.0.1 answers as vLLM's OpenAI server does (its /version route and streamed chat
completions) and records every request; the llama.cpp path runs against llama-cpp-python's real
server in tests/test_backends.py."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshlm import decode
from meshlm.infer.openai_http import OpenAIBackend, mesh_gbnf, mesh_regex
from meshlm.infer.types import Sampling

REPLY = "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3"


def serve(version: str | None, refuse: set[str] = frozenset()):
    """A server on 127.0.0.1 answering /version with ``version`` (404 when None) and chat
    completions with REPLY streamed line by line; 400 when a body holds a field in ``refuse``.
    Returns (base_url, list of request bodies, server)."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/version" and version is not None:
                data = json.dumps({"version": version}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_error(404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            if refuse & set(body):
                self.send_error(400, "unknown field")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [ln + "\n" for ln in REPLY.split("\n")]
            pieces[-1] = pieces[-1].rstrip("\n")
            for p in pieces:
                chunk = {"choices": [{"delta": {"content": p}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {
                "choices": [{"delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 32},
            }
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", bodies, server


@pytest.fixture
def vllm_new():
    base, bodies, server = serve("0.11.2")
    yield base, bodies
    server.shutdown()


def test_vllm_gets_structured_outputs_and_the_processor_settings(vllm_new):
    from meshlm.infer import load

    base, bodies = vllm_new
    engine = load("llama-mesh", base_url=base)
    r = engine.generate("a chair", Sampling(max_new_tokens=100, min_faces=1, max_preamble=5))
    assert engine.backend.server_kind == "vllm" and engine.backend.vllm_version == (0, 11)
    body = bodies[-1]
    assert body["structured_outputs"] == {"regex": mesh_regex(64)}
    assert body["vllm_xargs"] == {
        "meshlm_constrain": 1,
        "meshlm_bins": 64,
        "meshlm_max_preamble": 5,
        "meshlm_min_faces": 1,
    }
    assert "grammar" not in body and "guided_regex" not in body
    assert r.text == REPLY and len(r.mesh.faces) == 1 and engine.backend.last["grammar"]
    # a chat turn: no syntax, and meshlm's processor (if the server runs it) is told to stay out
    engine.chat([{"role": "user", "content": "hello"}], max_new_tokens=5)
    assert bodies[-1]["vllm_xargs"] == {"meshlm_constrain": 0}
    assert "structured_outputs" not in bodies[-1]


def test_older_vllm_gets_guided_regex_and_a_refusing_server_is_asked_again():
    base, bodies, server = serve("0.9.1", refuse={"guided_regex"})
    try:
        backend = OpenAIBackend(base, "m")
        text = "".join(
            backend.stream_reply(
                [{"role": "user", "content": "a box"}],
                Sampling(max_new_tokens=50),
                make_constraint=object,
            )
        )
        assert text == REPLY
        assert bodies[0]["guided_regex"] == mesh_regex(64) and "vllm_xargs" in bodies[0]
        assert "guided_regex" not in bodies[1] and "vllm_xargs" not in bodies[1]
        assert backend.grammar_supported is False and not backend.last["grammar"]
    finally:
        server.shutdown()


def test_a_server_without_vllm_version_gets_gbnf():
    base, bodies, server = serve(None)
    try:
        backend = OpenAIBackend(base, "m", bins=8)
        list(
            backend.stream_reply(
                [{"role": "user", "content": "a box"}], Sampling(), make_constraint=object
            )
        )
        assert backend.server_kind == "grammar"
        assert bodies[0]["grammar"] == mesh_gbnf(8)
        assert "structured_outputs" not in bodies[0] and "vllm_xargs" not in bodies[0]
    finally:
        server.shutdown()


def test_mesh_regex_accepts_the_syntax_the_constraint_writes():
    rx = re.compile(mesh_regex(64))
    assert rx.fullmatch(REPLY) and rx.fullmatch(REPLY + "\n")
    assert rx.fullmatch(decode(REPLY).to_text())
    for bad in [
        "v 0 0 64\nv 0 0 1\nv 0 1 0\nf 1 2 3",
        "v 0 0 0\nv 0 0 1\nf 1 2 3",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 0 2 3",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\n\n",
        "v 00 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3",
    ]:
        assert not rx.fullmatch(bad), bad
    assert re.compile(mesh_regex(8)).fullmatch("v 7 7 5\nv 7 7 6\nv 7 7 7\nf 1 2 3")


def test_a_parts_model_gets_the_parts_grammar_regex_and_processor_format():
    from meshlm.infer.engine import Engine
    from meshlm.infer.grammar_parts import parts_gbnf, parts_regex
    from meshlm.modelfolder import MeshFormat

    for version, field in ((None, "grammar"), ("0.11.2", "structured_outputs")):
        base, bodies, server = serve(version)
        try:
            backend = OpenAIBackend(base, "m")
            engine = Engine(backend, mesh_format=MeshFormat("parts", 8))
            assert (backend.fmt, backend.bins) == ("parts", 8)  # the engine tells the backend
            engine.generate("a box", Sampling(max_new_tokens=50))
            body = bodies[-1]
            if field == "grammar":
                assert body["grammar"] == parts_gbnf(8) and "vllm_xargs" not in body
            else:
                assert body["structured_outputs"] == {"regex": parts_regex(8)}
                assert body["vllm_xargs"]["meshlm_format"] == "parts"
                assert body["vllm_xargs"]["meshlm_bins"] == 8
        finally:
            server.shutdown()
