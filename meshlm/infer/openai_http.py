"""The OpenAI-compatible HTTP backend: vLLM, the llama.cpp server, llama-cpp-python's server,
Ollama -- anything that serves ``POST {base_url}/chat/completions`` with server-sent events.

A server cannot run meshlm's token constraint, so with ``constrain`` on the request carries a
GBNF grammar of the mesh *syntax* (``grammar``, read by llama.cpp-based servers) -- vertex lines
with coordinates in range, then face lines. Servers that refuse the field are asked again without
it. Order and index rules are beyond a context-free grammar, so replies from this backend are
read with the lenient decoder, whose report lists every repair. Standard library only.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from meshlm.errors import MeshlmError
from meshlm.infer.types import Sampling


def number_rule(lo: int, hi: int) -> str:
    """A GBNF alternation of the decimal integers lo..hi (at most a few thousand)."""
    return " | ".join(f'"{n}"' for n in range(lo, hi + 1))


def mesh_gbnf(bins: int = 64, max_index_digits: int = 4) -> str:
    """GBNF for canonical-format syntax: >= 3 vertex lines (coordinates 0..bins-1), then >= 1
    face line (1-based indices), newline-separated."""
    idx = '[1-9] ' + " ".join(["[0-9]?"] * (max_index_digits - 1))
    return "\n".join([
        "root ::= vline vline vline vline* fline (\"\\n\" fline)*",
        'vline ::= "v " c " " c " " c "\\n"',
        'fline ::= "f " i " " i " " i',
        f"c ::= {number_rule(0, bins - 1)}",
        f"i ::= {idx}",
    ])


class OpenAIBackend:
    """Chat completions over HTTP (streamed)."""

    name = "openai"
    exact_constraint = False  # the grammar fixes the syntax only; replies are read leniently

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 600.0, bins: int = 64):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.bins = bins
        self.last: dict = {}
        self.grammar_supported: bool | None = None

    def _post(self, body: dict):
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})},
        )
        return urllib.request.urlopen(req, timeout=self.timeout)

    def stream_reply(self, messages: list[dict], sampling: Sampling, make_constraint=None,
                     prefix: str = "") -> Iterator[str]:
        msgs = list(messages)
        if prefix:  # continue a cut-off reply: the partial reply as the last assistant turn
            msgs.append({"role": "assistant", "content": prefix})
        body = {
            "model": self.model,
            "messages": msgs,
            "stream": True,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_new_tokens,
            "seed": sampling.seed,
        }
        if sampling.top_k:
            body["top_k"] = sampling.top_k
        use_grammar = make_constraint is not None and self.grammar_supported is not False
        if use_grammar:
            body["grammar"] = mesh_gbnf(self.bins)
        try:
            resp = self._post(body)
            if use_grammar:
                self.grammar_supported = True
        except urllib.error.HTTPError as exc:
            if use_grammar and exc.code in (400, 422):
                self.grammar_supported = False
                body.pop("grammar")
                resp = self._open_or_fail(body)
            else:
                raise MeshlmError(f"{self.base_url}: HTTP {exc.code}: {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MeshlmError(f"{self.base_url}: cannot reach the server: {reason}") from None
        n, finish, usage = 0, None, {}
        with resp:
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    continue
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices", [])[:1]:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    finish = choice.get("finish_reason") or finish
                    if piece:
                        n += 1
                        yield piece
        self.last = {
            "prompt_tokens": int(usage.get("prompt_tokens", 0) or 0),
            "new_tokens": int(usage.get("completion_tokens", n) or n),
            "ended": finish != "length",
            "finished_at": time.perf_counter(),
            "grammar": bool(body.get("grammar")),
        }

    def _open_or_fail(self, body):
        try:
            return self._post(body)
        except urllib.error.HTTPError as exc:
            raise MeshlmError(f"{self.base_url}: HTTP {exc.code}: {exc.reason}") from None
