"""General chats by self-distillation: a base model's own replies to a list of prompts.

Fine-tuning on meshes alone erodes a small chat model's language (measured: a SmolLM2-135M full
fine-tune on meshes only answered facts but its free writing degenerated). Mixing in chats keeps
it; with no chat data set on the machine, the base's *own* replies are the chats that disturb it
least (self-distillation: the targets are what it already says).

    meshlm distill-chats data-src/general_prompts.jsonl -o data-src/smol_chats.jsonl

Prompts: JSONL with a ``prompt`` field per line. Output: JSONL rows ``{"messages": [user,
assistant]}``, the format ``build-data --general-chat`` reads. Replies run through llama.cpp on
the base's GGUF (its chat template is in the file); a reply that hits the token limit is dropped
(a cut-off answer teaches stopping mid-sentence). Deterministic for a given seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from meshlm.errors import MeshlmError, require


class DistillError(MeshlmError):
    """Bad prompts file (the message names the file and line)."""


def read_prompts(path: str | Path) -> list[str]:
    """The ``prompt`` strings of a JSONL file, in order. Raises DistillError naming
    ``file:line`` for a line that is not a JSON object with a non-empty string ``prompt``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DistillError(f"{path}: {exc.strerror or exc}") from None
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DistillError(f"{path}:{i}: not a JSON object") from None
        p = row.get("prompt") if isinstance(row, dict) else None
        if not isinstance(p, str) or not p.strip():
            raise DistillError(f"{path}:{i}: needs a non-empty string 'prompt'")
        out.append(p.strip())
    if not out:
        raise DistillError(f"{path}: no prompts")
    return out


def distill(
    gguf: str | Path,
    prompts: list[str],
    *,
    max_tokens: int = 320,
    temperature: float = 0.2,
    top_p: float = 0.9,
    seed: int = 0,
    threads: int | None = None,
) -> Iterator[dict]:
    """Yield ``{"messages": [...], "finish": "stop"|"length"}`` for each prompt, replied to by
    the GGUF model at ``gguf`` with its own chat template (llama.cpp). ``temperature`` and
    ``top_p`` default to SmolLM2's recommended sampling (its model card: 0.2, 0.9)."""
    llama_cpp = require("llama_cpp", "gguf", "self-distilled chats")
    # n_threads_batch too: llama-cpp-python defaults it to every core, and on a busy machine
    # the prompt pass then spin-waits (measured: ~20 % of a core used, 10x slower)
    llm = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=1024,
        n_threads=threads,
        n_threads_batch=threads,
        seed=seed,
        verbose=False,
    )
    for i, prompt in enumerate(prompts):
        msgs = [{"role": "user", "content": prompt}]
        out = llm.create_chat_completion(
            msgs, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed + i
        )
        choice = out["choices"][0]
        reply = (choice["message"]["content"] or "").strip()
        yield {
            "messages": [*msgs, {"role": "assistant", "content": reply}],
            "finish": choice.get("finish_reason") or "stop",
        }
