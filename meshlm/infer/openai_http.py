"""The OpenAI-compatible HTTP backend: vLLM, the llama.cpp server, llama-cpp-python's server,
Ollama -- anything that serves ``POST {base_url}/chat/completions`` with server-sent events.

A server cannot run meshlm's token constraint, so with ``constrain`` on the request carries the
mesh *syntax* -- vertex lines with coordinates in range, then face lines -- in the form the
server reads: a GBNF ``grammar`` (llama.cpp-based servers), or for vLLM (found by probing its
``GET /version``) a regex in ``structured_outputs`` (vLLM >= 0.11; ``guided_regex`` before;
vLLM's "Structured Outputs" documentation), plus ``vllm_xargs`` with the settings of meshlm's own
processor (:mod:`meshlm.infer.vllm_processor`) for servers started with it, which then write
canonical meshes only (valid parts text for a parts model). For a model that writes the
``parts`` format (``fmt``, set by the engine from the model folder) the grammar and regex are
:mod:`meshlm.infer.grammar_parts`'s. Servers that refuse the fields are asked again without
them. Order and index rules are beyond a regex or context-free grammar, so replies from this
backend are read with the lenient decoder, whose report lists every repair. Standard library
only.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from meshlm.errors import MeshlmError
from meshlm.infer.grammar_parts import parts_gbnf, parts_regex
from meshlm.infer.types import Sampling


def number_rule(lo: int, hi: int) -> str:
    """A GBNF alternation of the decimal integers lo..hi (at most a few thousand)."""
    return " | ".join(f'"{n}"' for n in range(lo, hi + 1))


def mesh_gbnf(bins: int = 64, max_index_digits: int = 4) -> str:
    """GBNF for canonical-format syntax: >= 3 vertex lines (coordinates 0..bins-1), then >= 1
    face line (1-based indices), newline-separated."""
    idx = "[1-9] " + " ".join(["[0-9]?"] * (max_index_digits - 1))
    return "\n".join(
        [
            'root ::= vline vline vline vline* fline ("\\n" fline)*',
            'vline ::= "v " c " " c " " c "\\n"',
            'fline ::= "f " i " " i " " i',
            f"c ::= {number_rule(0, bins - 1)}",
            f"i ::= {idx}",
        ]
    )


def mesh_regex(bins: int = 64, max_index_digits: int = 4) -> str:
    """The same syntax as :func:`mesh_gbnf` as a regular expression (vLLM's structured outputs):
    >= 3 vertex lines with coordinates 0..bins-1, then >= 1 face line, ``\\n``-separated (a
    last newline may end it, as meshlm's constraint allows)."""
    c = "(" + "|".join(str(n) for n in range(bins)) + ")"
    i = f"[1-9][0-9]{{0,{max_index_digits - 1}}}"
    return f"(v {c} {c} {c}\\n){{3,}}f {i} {i} {i}(\\nf {i} {i} {i})*\\n?"


class OpenAIBackend:
    """Chat completions over HTTP (streamed)."""

    name = "openai"
    exact_constraint = False  # the grammar fixes the syntax only; replies are read leniently

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        bins: int = 64,
        fmt: str = "llama-mesh",
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.bins = bins
        self.fmt = fmt  # the model's mesh format: which grammar to send
        self.last: dict = {}
        self.grammar_supported: bool | None = None
        self.server_kind: str | None = None  # "vllm" or "grammar" (llama.cpp style), probed
        self.vllm_version: tuple[int, ...] = ()

    def _post(self, body: dict):
        req = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        return urllib.request.urlopen(req, timeout=self.timeout)

    def stream_reply(
        self, messages: list[dict], sampling: Sampling, make_constraint=None, prefix: str = ""
    ) -> Iterator[str]:
        if sampling.guidance != 1.0:  # a second branch per token is not in the chat API
            raise MeshlmError(
                "guidance needs the llama.cpp or transformers backend, not an HTTP server"
            )
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
        extra = self._syntax_fields(make_constraint is not None, sampling)
        use_grammar = bool(extra) and self.grammar_supported is not False
        if use_grammar:
            body.update(extra)
        try:
            resp = self._post(body)
            if use_grammar:
                self.grammar_supported = True
        except urllib.error.HTTPError as exc:
            if use_grammar and exc.code in (400, 422):
                self.grammar_supported = False
                for key in extra:
                    body.pop(key)
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
            "grammar": bool(
                body.get("grammar") or body.get("structured_outputs") or body.get("guided_regex")
            ),
        }

    def _probe(self) -> str:
        """``"vllm"`` when ``GET {server}/version`` answers vLLM's ``{"version": ...}``, else
        ``"grammar"``; asked once."""
        if self.server_kind is None:
            root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
            self.server_kind = "grammar"
            try:
                with urllib.request.urlopen(f"{root}/version", timeout=5) as r:
                    ver = json.loads(r.read().decode("utf-8", errors="replace")).get("version")
                if isinstance(ver, str):
                    self.server_kind = "vllm"
                    self.vllm_version = tuple(int(p) for p in re.findall(r"\d+", ver)[:2])
            except (OSError, ValueError, AttributeError):
                pass
        return self.server_kind

    def _syntax_fields(self, constrain: bool, sampling: Sampling) -> dict:
        """The request fields that carry the mesh syntax in the server's own form."""
        parts = self.fmt == "parts"
        if self._probe() != "vllm":
            if not constrain:
                return {}
            return {"grammar": parts_gbnf(self.bins) if parts else mesh_gbnf(self.bins)}
        xargs = {"meshlm_constrain": int(constrain)}
        if not constrain:  # a chat turn: meshlm's processor (if loaded) leaves it alone
            return {"vllm_xargs": xargs}
        xargs.update(
            meshlm_bins=self.bins,
            meshlm_max_preamble=sampling.max_preamble,
            meshlm_min_faces=sampling.min_faces,
        )
        if parts:
            xargs["meshlm_format"] = "parts"
        regex = parts_regex(self.bins) if parts else mesh_regex(self.bins)
        if self.vllm_version >= (0, 11) or not self.vllm_version:
            return {"structured_outputs": {"regex": regex}, "vllm_xargs": xargs}
        return {"guided_regex": regex, "vllm_xargs": xargs}

    def _open_or_fail(self, body):
        try:
            return self._post(body)
        except urllib.error.HTTPError as exc:
            raise MeshlmError(f"{self.base_url}: HTTP {exc.code}: {exc.reason}") from None
