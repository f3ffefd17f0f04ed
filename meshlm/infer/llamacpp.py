"""The llama.cpp backend (llama-cpp-python) for ``.gguf`` files: meshlm exports and the community
GGUF builds of LLaMA-Mesh, with the mesh constraint applied as the first stage of llama.cpp's
sampler chain.

The constraint is given to ``Llama.generate`` as a logits processor (the public API). Through
that API llama-cpp-python wraps the candidate array in a numpy record array and copies every
logit out and back each step; :class:`_MeshLlama` swaps that stage's function for one that
keeps only the allowed candidates (it moves them to the front of llama.cpp's array and shrinks
its size, as llama.cpp's own top-k does), so the later stages (top-k, top-p, temperature, the
draw) run over a few dozen candidates instead of the whole vocabulary. The distribution is
the same as masking the others to -inf. If a llama-cpp-python release changes the internals
this relies on, the swap does not happen and the logits processor masks as before.

The prompt is the model's own chat template (stored in the GGUF) rendered with Jinja, then
tokenized by llama.cpp. The vocabulary is classified once from llama.cpp's own token pieces.

Threads: without ``n_threads`` the backend uses the cores that other processes leave free
(:func:`meshlm.infer.cpu.default_threads`), counted at load, again before a generation when
the last count is more than ``RECOUNT_S`` seconds old, and every ``WATCH_S`` seconds during one
(:class:`meshlm.infer.cpu.CoreWatch`, between two tokens) -- llama.cpp's threads wait on each other
at every step, so one thread on a core another job holds slows all of them (issue 18: 78 s for
the demo mesh with two threads on a 2-core machine running one other job, 5.6 s with one).
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from meshlm.errors import MeshlmError, require
from meshlm.infer.constrain import MeshConstraint, VocabIndex
from meshlm.infer.cpu import CoreWatch, default_threads
from meshlm.infer.guidance import OFF, guide, unconditional_messages
from meshlm.infer.types import Sampling

_DEFAULT_TEMPLATE = (  # Llama-3 layout, for GGUFs that carry no template
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


class LlamaCppBackend:
    """A GGUF model in llama.cpp."""

    name = "llama.cpp"
    #: run the constraint as llama.cpp's first sampler stage (False: the logits-processor mask)
    fast_filter = True
    #: with automatic threads, count the free cores again before a generation after this long
    RECOUNT_S = 5.0
    #: ... and during one, every this many seconds (a job that starts meanwhile)
    WATCH_S = 1.0

    def __init__(self, llm, path: str):
        self.llm = llm
        self.path = path
        meta = getattr(llm, "metadata", {}) or {}
        self.template = meta.get("tokenizer.chat_template") or _DEFAULT_TEMPLATE
        self.bos = self._piece(llm.token_bos()) if llm.token_bos() >= 0 else ""
        self.eos_ids = sorted(self._eos_ids(meta))
        self._index: VocabIndex | None = None
        self.last: dict = {}
        self.auto_threads = False  # set by load() when the caller gave no thread count
        self._counted_at = time.monotonic()
        self._uncond = None  # the guidance branch's context, opened on first use

    @classmethod
    def load(
        cls, path: str, n_ctx: int | None = None, n_threads: int | None = None
    ) -> LlamaCppBackend:
        """Open a GGUF; ``n_ctx`` defaults to the model's training context (at most 8192);
        ``n_threads`` (generation and prompt processing) defaults to the free cores."""
        llama_cpp = require("llama_cpp", "gguf", "the llama.cpp backend")
        if not Path(path).is_file():
            raise MeshlmError(f"{path}: no such GGUF file")
        try:
            if n_ctx is None:
                n_ctx = min(8192, _context_length(path))
            threads = n_threads or default_threads()
            llm = _mesh_llama_class(llama_cpp)(
                model_path=str(path),
                n_ctx=n_ctx,
                verbose=False,
                n_threads=threads,
                n_threads_batch=threads,
            )
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError on bad files
            raise MeshlmError(f"{path}: llama.cpp cannot load it: {exc}") from None
        backend = cls(llm, str(path))
        backend.auto_threads = n_threads is None
        return backend

    def _unconditional(self):
        """A second context on the same GGUF for the guidance branch (memory-mapped: the weights
        are shared with the first through the page cache), opened once."""
        if self._uncond is None:
            llama_cpp = require("llama_cpp", "gguf", "the llama.cpp backend")
            try:
                self._uncond = llama_cpp.Llama(
                    model_path=self.path,
                    n_ctx=self.llm.n_ctx(),
                    verbose=False,
                    n_threads=self.llm.n_threads,
                    n_threads_batch=self.llm.n_threads_batch,
                )
            except Exception as exc:  # as in load(): out of memory, file gone meanwhile
                msg = f"{self.path}: llama.cpp cannot open the guidance branch: {exc}"
                raise MeshlmError(msg) from None
        return self._uncond

    def _recount_threads(self) -> None:
        """With automatic threads, use the cores free now if the last count is stale."""
        if not self.auto_threads or time.monotonic() - self._counted_at < self.RECOUNT_S:
            return
        self._set_threads(default_threads(0.05))
        self._counted_at = time.monotonic()

    def _set_threads(self, n: int) -> None:
        """Generation and prompt threads of the loaded contexts, the guidance branch's too
        (between two decode calls)."""
        for llm in (self.llm, self._uncond):
            ctx = getattr(llm, "_ctx", None)
            if llm is not None and n != llm.n_threads and hasattr(ctx, "set_n_threads"):
                ctx.set_n_threads(n, n)
                llm.n_threads = llm.n_threads_batch = n

    def _piece(self, tok: int, special: bool = True) -> str:
        return self.llm.detokenize([tok], special=special).decode("utf-8", errors="replace")

    def _eos_ids(self, meta: dict) -> set[int]:
        ids = {self.llm.token_eos()}
        for key in ("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eos_token_id"):
            if key in meta:
                ids.add(int(meta[key]))
        for text in ("<|eot_id|>", "<|im_end|>", "<|end|>"):
            toks = self.llm.tokenize(text.encode(), add_bos=False, special=True)
            if len(toks) == 1 and self._piece(toks[0]) == text:
                ids.add(toks[0])
        return {i for i in ids if i is not None and i >= 0}

    def vocab_index(self) -> VocabIndex:
        if self._index is None:
            n = self.llm.n_vocab()
            texts = []
            for i in range(n):
                piece = self._piece(i, special=False)
                texts.append(piece)  # control tokens come out empty: never in a mesh
            self._index = VocabIndex(texts, self.eos_ids)
        return self._index

    def prompt_ids(self, messages: list[dict], prefix: str = "") -> list[int]:
        jinja2 = require("jinja2", "train", "chat templates")
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        del jinja2
        text = env.from_string(self.template).render(
            messages=messages,
            add_generation_prompt=True,
            bos_token=self.bos,
            eos_token=self._piece(self.llm.token_eos()),
        )
        return self.llm.tokenize((text + prefix).encode(), add_bos=False, special=True)

    def stream_reply(
        self,
        messages: list[dict],
        sampling: Sampling,
        make_constraint: Callable[[VocabIndex], MeshConstraint] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        self._recount_threads()
        ids = self.prompt_ids(messages, prefix)
        budget = min(sampling.max_new_tokens, self.llm.n_ctx() - len(ids))
        if budget < 1:
            raise MeshlmError(
                f"the prompt ({len(ids)} tokens) fills the model's context "
                f"({self.llm.n_ctx()} tokens)"
            )
        constraint = make_constraint(self.vocab_index()) if make_constraint else None
        scale = sampling.guidance  # checked by Sampling
        uncond, uncond_logits = None, None
        llama_cpp = require("llama_cpp", "gguf", "the llama.cpp backend")
        if scale != OFF:  # the guidance branch: the same chat without the request
            uncond = self._unconditional()
            uncond.reset()
            uncond.eval(self.prompt_ids(unconditional_messages(messages), prefix))
            n_vocab = self.llm.n_vocab()

            def uncond_logits() -> np.ndarray:  # the last token's, as llama.cpp computed them
                ptr = llama_cpp.llama_get_logits_ith(uncond.ctx, -1)
                return np.ctypeslib.as_array(ptr, shape=(n_vocab,))

        processors = None
        steps = [0]
        if constraint is not None or uncond is not None:

            def mask(_input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
                if uncond_logits is not None:
                    scores = guide(scores, uncond_logits()[: scores.size], scale)
                if constraint is None:
                    return scores
                out = np.full_like(scores, -np.inf)
                allowed = constraint.allowed()
                out[allowed] = scores[allowed]
                return out

            processors = llama_cpp.LogitsProcessorList([mask])
            if self.fast_filter and constraint is not None:
                self.llm.candidate_filter = _candidate_filter(
                    constraint, steps, uncond_logits, scale
                )
        self.llm.set_seed(sampling.seed)
        greedy = sampling.temperature == 0
        gen = self.llm.generate(
            ids,
            temp=0.0 if greedy else sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if not greedy else 1,
            min_p=0.0,
            repeat_penalty=1.0,
            logits_processor=processors,
            reset=True,
        )
        n, ended = 0, False
        pending = b""
        watch = CoreWatch() if self.auto_threads else None
        next_watch = time.monotonic() + self.WATCH_S
        for tok in gen:  # generate yields each token before it samples the next one
            if watch is not None and time.monotonic() >= next_watch:
                free = watch.poll()  # the other jobs' use since the last look
                if free is not None:
                    self._set_threads(free)
                    self._counted_at = next_watch = time.monotonic()
                next_watch += self.WATCH_S
            if tok in self.eos_ids:
                ended = True
                break
            if constraint is not None:
                constraint.advance(int(tok))
            if uncond is not None:  # before the next step samples: its logits are read then
                uncond.eval([int(tok)])
            n += 1
            pending += self.llm.detokenize([tok], special=False)
            try:
                piece = pending.decode("utf-8")
                pending = b""
            except UnicodeDecodeError:
                if len(pending) < 4:
                    piece = ""
                else:
                    piece, pending = pending.decode("utf-8", errors="replace"), b""
            if piece:
                yield piece
            if n >= budget:
                break
        if pending:
            yield pending.decode("utf-8", errors="replace")
        self.last = {
            "prompt_tokens": len(ids),
            "new_tokens": n,
            "ended": ended,
            "finished_at": time.perf_counter(),
            "filter_steps": steps[0],
        }


def _candidate_filter(
    constraint: MeshConstraint,
    steps: list[int],
    uncond_logits: Callable[[], np.ndarray] | None = None,
    scale: float = OFF,
) -> Callable:
    """The first stage of the sampler chain: keep only the tokens ``constraint`` allows.

    It receives llama.cpp's ``llama_token_data_array`` (id, logit, p per candidate; at the first
    stage one entry per vocabulary id, in id order), moves the allowed entries to the front and
    sets ``size`` to their number. The numpy view of the array is reused while llama.cpp hands
    over the same buffer. ``steps[0]`` counts the calls. With ``uncond_logits`` (the guidance
    branch's logits, shape ``(vocab,)``), the kept entries' logits are guided by ``scale``
    (:func:`meshlm.infer.guidance.guide`; only the kept ones: the rest are dropped anyway)."""
    cache: dict = {}

    def keep_allowed(cur_p) -> None:
        steps[0] += 1
        arr = cur_p.contents
        allowed = constraint.allowed()
        key = (ctypes.addressof(arr.data.contents), arr.size)
        view = cache.get(key)
        if view is None:
            cache.clear()
            view = cache[key] = np.ctypeslib.as_array(arr.data, shape=(arr.size,))
        ids = view["id"]
        if allowed.size and allowed.max() < arr.size and (ids[allowed] == allowed).all():
            rows = allowed  # entries in id order: entry i is token i
        else:  # not in id order (another stage ran first): find the entries
            rows = np.flatnonzero(np.isin(ids, allowed))
        view[: rows.size] = view[rows]
        arr.size = rows.size
        if uncond_logits is not None:
            kept = view[: rows.size]
            kept["logit"] = guide(kept["logit"], uncond_logits()[kept["id"]], scale)

    return keep_allowed


@functools.cache
def _mesh_llama_class(llama_cpp):
    """``llama_cpp.Llama`` whose logits-processor stage runs ``candidate_filter`` when one is set
    (see the module docstring); the class is made on first use so that importing this module
    needs no llama-cpp-python."""

    class _MeshLlama(llama_cpp.Llama):
        candidate_filter: Callable | None = None

        def _init_sampler(self, *args, **kwargs):
            sampler = super()._init_sampler(*args, **kwargs)
            customs = getattr(sampler, "custom_samplers", None)
            if (
                self.candidate_filter is not None
                and kwargs.get("logits_processor")
                and customs
                and hasattr(customs[0][1], "apply_func")
            ):
                customs[0][1].apply_func = self.candidate_filter
            self.candidate_filter = None
            return sampler

    return _MeshLlama


_GGUF_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _context_length(path: str) -> int:
    """The model's training context (``*.context_length``) from the GGUF header, 8192 when it is
    not recorded or the header cannot be read (llama.cpp will then say what is wrong).

    Reads the key/value section sequentially and stops at the key (GGUF v2/v3 layout:
    github.com/ggml-org/ggml/blob/master/docs/gguf.md); the gguf package's reader parses every
    field first, ~minutes for a 49k-token vocabulary on a busy CPU."""
    import struct

    def skip(f, vtype: int) -> None:
        if vtype in _GGUF_SCALAR:
            f.seek(_GGUF_SCALAR[vtype], 1)
        elif vtype == 8:  # string: u64 length + bytes
            f.seek(struct.unpack("<Q", f.read(8))[0], 1)
        elif vtype == 9:  # array: u32 item type, u64 count, items
            itype, count = struct.unpack("<IQ", f.read(12))
            if itype in _GGUF_SCALAR:
                f.seek(_GGUF_SCALAR[itype] * count, 1)
            else:
                for _ in range(count):
                    skip(f, itype)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    try:
        with open(path, "rb") as f:
            magic, version, _tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
            if magic != b"GGUF" or version < 2:
                return 8192
            for _ in range(n_kv):
                key = f.read(struct.unpack("<Q", f.read(8))[0]).decode("utf-8", "replace")
                (vtype,) = struct.unpack("<I", f.read(4))
                if key.endswith(".context_length") and vtype in (4, 5, 10, 11):
                    fmt = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}[vtype]
                    return int(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])
                skip(f, vtype)
    except (OSError, ValueError, struct.error, UnicodeDecodeError):
        pass
    return 8192


def _raise(msg):
    raise MeshlmError(f"chat template: {msg}")
