"""Whole-number tokens for a pretrained base whose tokenizer spells numbers digit by digit.

LLaMA-Mesh works with Llama-3's tokenizer, which holds every number below 1000 as one token, so
a vertex line ``v 12 0 63`` costs 8 tokens there. SmolLM2's tokenizer splits digits: the same
line costs ~11 tokens and a face ~16, so a small mesh costs ~1,400 tokens and a CPU-sized LoRA
run sees a few hundred of them (meshlm/models/meshlm-smol/README.md). :func:`add_number_tokens`
(in :mod:`meshlm.tokens`, shared with ``build-data --number-tokens``) adds the space-led numbers
`` 0`` .. `` N-1`` (and, for the ``parts`` format's relative face indices, `` -1`` .. `` -N``)
as tokens of their own, so a vertex line costs 5 tokens: ``v``, three numbers, the newline.

Contract:

* the tokens are *added tokens* (``normalized=False``), matched before pre-tokenization,
  leftmost-longest; GGUF export declares them ``USER_DEFINED`` (meshlm/infer/gguf_export.py), so
  llama.cpp splits them out the same way. ``single_word`` is left off: llama.cpp has no such
  flag, and a tokenizer that splits differently in the two runtimes would break the exact
  decoding constraint. A longer number in prose (`` 1969``) reads `` 196`` + ``9`` in both;
* the embedding matrix grows to ``len(tokenizer)``; each new row starts as the mean of the
  embeddings of the pieces the base tokenizer spelled it with (`` 12`` -> ``Ġ``, ``1``, ``2``),
  the usual initialisation for added tokens (it keeps them inside the distribution of the
  trained rows); with tied embeddings the output row is the same vector;
* the rows are trained with the LoRA adapter through PEFT's trainable tokens
  (``LoraConfig(trainable_token_indices=...)``); the adapter folder stores only those rows
  (saved with ``save_embedding_layers=False``: PEFT would otherwise add both whole resized
  matrices); whoever loads the adapter resizes the base first (:func:`resize_for_adapter`),
  reading the size from the adapter's own tokenizer;
* training needs ``loss_averaging: mesh``: TRL's other losses score through a fused LM head
  that multiplies by ``lm_head.weight`` itself, past the trainable rows (refused in config).
"""

from __future__ import annotations

from meshlm.errors import require
from meshlm.tokens import add_number_tokens, number_token_strings

__all__ = [
    "add_number_tokens",
    "init_number_rows",
    "number_token_strings",
    "resize_for_adapter",
]


def init_number_rows(model, plan: dict[int, list[int]], vocab_size: int) -> None:
    """Grow ``model``'s embeddings (shape ``(vocab, hidden)``) to ``vocab_size`` rows and set
    each new row of ``plan`` (:func:`add_number_tokens`) to the mean of its pieces' rows; with
    tied embeddings the output rows follow."""
    torch = require("torch", "train", "adding number tokens")
    _grow_embeddings(model, vocab_size)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for i, pieces in plan.items():
            weight[i] = weight[pieces].mean(dim=0)


def resize_for_adapter(model, tokenizer) -> None:
    """Grow ``model``'s embeddings to ``len(tokenizer)`` (an adapter's tokenizer that carries
    added number tokens) before PEFT loads the adapter onto it; no-op when they already fit.
    The new rows' values come from the adapter (trainable tokens), not from here."""
    _grow_embeddings(model, len(tokenizer))


def _grow_embeddings(model, rows: int) -> None:
    if rows > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(rows, mean_resizing=False)
