"""Classifier-free guidance over the request (CFG for language models: Sanchez et al., "Stay on
topic with Classifier-Free Guidance", arXiv 2306.17806, eq. 7).

Each step the model is run twice on the same reply so far: once after the real chat
(conditional) and once after the same chat with the last request emptied (unconditional, the
"negative prompt"); the next token is chosen from

    log P_guided(w) = log P(w | reply) + scale * (log P(w | request, reply) - log P(w | reply))

so ``scale`` 1 is plain decoding and larger values push the reply toward what the request, not
the mesh text alone, makes likely. A small mesh model follows the request weakly (its first
vertex hardly moves with the family asked for, docs/parts-model.md); guidance multiplies that
dependence at decode time. Costs one more forward pass a token.

Backends: llama.cpp (a second context on the same memory-mapped GGUF) and transformers
(``generate(guidance_scale=..., negative_prompt_ids=...)``); servers do not offer it.
"""

from __future__ import annotations

import numpy as np

from meshlm.errors import MeshlmError

#: plain decoding
OFF = 1.0


def unconditional_messages(messages: list[dict]) -> list[dict]:
    """``messages`` with the last user turn's content emptied: the chat the unconditional branch
    sees. The system prompt and earlier turns stay (they are context, not the request).

    Raises MeshlmError when there is no user turn to empty."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = ""
            return out
    raise MeshlmError("guidance needs a user request in the chat")


def check_scale(scale: float) -> float:
    """``scale`` as a float; MeshlmError unless it is finite and at least 0."""
    scale = float(scale)
    if not np.isfinite(scale) or scale < 0:
        raise MeshlmError(f"guidance scale must be a finite number >= 0, got {scale}")
    return scale


def guide(cond: np.ndarray, uncond: np.ndarray, scale: float) -> np.ndarray:
    """Guided logits, float32 of shape ``(vocab,)``: ``uncond + scale * (cond - uncond)``.

    ``cond``, ``uncond``: one step's logits (shape ``(vocab,)``) of the conditional and
    unconditional branch. Equal to the log-probability form above up to a constant per step (the
    two log-softmax normalizers), so greedy choice and sampling are the same. Tokens either branch
    rules out (-inf) stay ruled out."""
    c = np.asarray(cond, dtype=np.float32)
    u = np.asarray(uncond, dtype=np.float32)
    if c.shape != u.shape:
        raise MeshlmError(f"guidance: logits of shape {c.shape} and {u.shape}")
    out = np.full_like(c, -np.inf)
    ok = np.isfinite(c) & np.isfinite(u)
    out[ok] = u[ok] + np.float32(scale) * (c[ok] - u[ok])
    return out
