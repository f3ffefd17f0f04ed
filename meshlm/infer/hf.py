"""The transformers backend: any causal LM folder or hub id, device and dtype chosen for you.

Generation runs ``model.generate`` in a worker thread with a streamer that hands each token back
as it is produced; the mesh constraint is a ``LogitsProcessor`` that masks every token the
grammar refuses (it runs before temperature/top-k/top-p, so sampling only sees valid tokens).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from meshlm._quiet import hf_progress_off
from meshlm.errors import MeshlmError, require
from meshlm.infer.constrain import MeshConstraint, VocabIndex
from meshlm.infer.cpu import default_threads
from meshlm.infer.guidance import OFF, unconditional_messages
from meshlm.infer.types import Sampling


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (process-wide) and return them: ``threads`` when given, else
    the cores other processes leave free (:func:`meshlm.infer.cpu.default_threads`; torch's
    OpenMP threads wait on each other like llama.cpp's). With ``OMP_NUM_THREADS`` set and no
    ``threads``, torch's own choice stands."""
    torch = require("torch", "infer", "the transformers backend")
    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


def pick_device(device: str | None = None):
    """(device, dtype): CUDA (bf16 where supported, else fp16), Apple MPS (fp16), else CPU fp32."""
    torch = require("torch", "infer", "the transformers backend")
    if device in (None, "auto"):
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif device == "mps":
        dtype = torch.float16
    else:
        dtype = torch.float32
    return device, dtype


class HFBackend:
    """A transformers causal LM and its tokenizer (with a chat template)."""

    name = "transformers"

    def __init__(self, model, tokenizer, device: str = "cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.last: dict = {}

    @classmethod
    def load(cls, name_or_path: str, device: str | None = None) -> HFBackend:
        transformers = require("transformers", "infer", "the transformers backend")
        dev, dtype = pick_device(device)
        local = Path(name_or_path).expanduser()
        if (local.is_absolute() or name_or_path.startswith((".", "~"))) and not local.is_dir():
            raise MeshlmError(f"{name_or_path}: no such model folder")
        try:
            with hf_progress_off():  # the CLI shows its own status while a model loads
                tok = transformers.AutoTokenizer.from_pretrained(name_or_path)
                model = transformers.AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
        except Exception as exc:  # OSError, ValueError, HTTP errors: one line for the user
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MeshlmError(f"cannot load model {name_or_path!r}: {msg}") from None
        if not getattr(tok, "chat_template", None):
            raise MeshlmError(f"{name_or_path}: the tokenizer has no chat template")
        model.to(dev).eval()
        return cls(model, tok, dev)

    # -- prompts ------------------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict], prefix: str = "") -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        if hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        ids = list(ids)
        if prefix:
            ids += self.tokenizer.encode(prefix, add_special_tokens=False)
        return ids

    def vocab_index(self) -> VocabIndex:
        return VocabIndex.for_tokenizer(self.tokenizer, self.eos_ids)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- generation -----------------------------------------------------------------------------

    def stream_reply(
        self,
        messages: list[dict],
        sampling: Sampling,
        make_constraint: Callable[[VocabIndex], MeshConstraint] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        """Yield the reply's text token by token; ``self.last`` gets token counts at the end."""
        torch = require("torch", "infer", "the transformers backend")
        transformers = require("transformers", "infer", "the transformers backend")
        ids = self.prompt_ids(messages, prefix)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        budget = (
            sampling.max_new_tokens if not limit else min(sampling.max_new_tokens, limit - len(ids))
        )
        if budget < 1:
            raise MeshlmError(
                f"the prompt ({len(ids)} tokens) fills the model's context ({limit} tokens)"
            )
        input_ids = torch.tensor([ids], device=self.device)
        processors = transformers.LogitsProcessorList()
        constraint = make_constraint(self.vocab_index()) if make_constraint else None
        if constraint is not None:
            processors.append(_ConstraintProcessor(constraint, len(ids)))
        q: queue.Queue = queue.Queue()
        streamer = _QueueStreamer(q, skip=1)
        stop = threading.Event()  # set when the caller stops reading: generation ends early

        class _StopWhenClosed(transformers.StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full(
                    (input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device
                )

        greedy = sampling.temperature == 0
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=budget,
            do_sample=not greedy,
            logits_processor=processors,
            stopping_criteria=transformers.StoppingCriteriaList([_StopWhenClosed()]),
            eos_token_id=self.eos_ids,
            pad_token_id=self.tokenizer.pad_token_id or self.eos_ids[0],
            streamer=streamer,
        )
        scale = sampling.guidance  # checked by Sampling
        if scale != OFF:  # transformers' own CFG processor (run before ours): the same formula
            neg = torch.tensor([self.prompt_ids(unconditional_messages(messages), prefix)])
            kwargs.update(
                guidance_scale=scale,
                negative_prompt_ids=neg.to(self.device),
                negative_prompt_attention_mask=torch.ones_like(neg).to(self.device),
            )
        if not greedy:
            kwargs.update(
                temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None
            )
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        errors: list[BaseException] = []

        def work():
            try:
                torch.manual_seed(sampling.seed)
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # surfaced in the caller's thread
                errors.append(exc)
            finally:
                q.put(None)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        n_new, ended = 0, False
        texts = self.vocab_index().texts
        pending: list[int] = []  # byte-level pieces of one character, decoded together
        try:
            while True:
                tok = q.get()
                if tok is None:
                    break
                if tok in self.eos_ids:
                    ended = True
                    continue
                n_new += 1
                piece = texts[tok] if tok < len(texts) else ""
                if pending or "\ufffd" in piece:
                    pending.append(tok)
                    piece = self.tokenizer.decode(pending, skip_special_tokens=True)
                    if piece.endswith("\ufffd") and len(pending) < 4:
                        continue
                    pending = []
                yield piece
            if pending:
                yield self.tokenizer.decode(pending, skip_special_tokens=True)
        finally:  # also when the caller closes the stream early (Stop button, time limit)
            stop.set()
            thread.join()
        if errors:
            raise MeshlmError(f"generation failed: {type(errors[0]).__name__}: {errors[0]}")
        self.last = {
            "prompt_tokens": len(ids),
            "new_tokens": n_new,
            "ended": ended,
            "finished_at": time.perf_counter(),
        }


def _eos_ids(model, tokenizer) -> list[int]:
    ids: list[int] = []
    for src in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        e = getattr(src, "eos_token_id", None) if src is not None else None
        if isinstance(e, int):
            ids.append(e)
        elif e:
            ids.extend(int(i) for i in e)
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    for tok in ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(tok) if tok in tokenizer.get_vocab() else None
        if tid is not None:
            ids.append(int(tid))
    if not ids:
        raise MeshlmError("the model defines no end-of-sequence token")
    return sorted(set(ids))


class _QueueStreamer:
    """A transformers streamer (``put``/``end``) that forwards new token ids to a queue."""

    def __init__(self, q: queue.Queue, skip: int = 1):
        self.q = q
        self.skip = skip  # the first put() carries the prompt

    def put(self, value) -> None:
        if self.skip:
            self.skip -= 1
            return
        for t in value.reshape(-1).tolist():
            self.q.put(int(t))

    def end(self) -> None:
        pass


class _ConstraintProcessor:
    """Masks refused tokens to -inf (a callable ``LogitsProcessorList`` accepts)."""

    def __init__(self, constraint: MeshConstraint, prompt_len: int):
        self.constraint = constraint
        self.prompt_len = prompt_len
        self.seen = 0

    def __call__(self, input_ids, scores):
        import torch

        done = self.prompt_len + self.seen
        if done < input_ids.shape[1]:  # one slice to Python per step, not one index per token
            for tok in input_ids[0, done:].tolist():
                self.constraint.advance(tok)
            self.seen = input_ids.shape[1] - self.prompt_len
        allowed = torch.from_numpy(self.constraint.allowed()).to(scores.device)
        masked = torch.full_like(scores, float("-inf"))
        masked.index_copy_(1, allowed, scores.index_select(1, allowed))
        return masked
