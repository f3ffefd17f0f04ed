"""A small Llama-architecture causal LM built from scratch (fp32), for CPU-sized training.

The architecture is exactly ``transformers.LlamaForCausalLM``, so everything that reads Llama
checkpoints (transformers, PEFT, GGUF converters, llama.cpp) reads meshlm's bundled model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshlm.errors import require

if TYPE_CHECKING:  # pragma: no cover
    from meshlm.train.config import TrainConfig


def llama_config(
    cfg: TrainConfig,
    vocab_size: int,
    *,
    bos_token_id: int | None = None,
    eos_token_id: int | list[int] | None = None,
    pad_token_id: int | None = None,
):
    """The ``transformers.LlamaConfig`` of a scratch model described by ``cfg``'s model_* fields."""
    transformers = require("transformers", "train", "building a model")
    return transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=cfg.tie_word_embeddings,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        attn_implementation=cfg.attn_implementation,
    )


def build_model(cfg: TrainConfig, tokenizer):
    """A freshly initialised fp32 ``LlamaForCausalLM`` sized by ``cfg`` for ``tokenizer``.

    Special-token ids (bos, eos = end-of-turn, pad) are taken from the tokenizer so that
    ``generate`` stops at the end of an assistant turn.
    """
    transformers = require("transformers", "train", "building a model")
    torch = require("torch", "train", "building a model")
    eos = [tokenizer.convert_tokens_to_ids(t) for t in _stop_tokens(tokenizer)]
    config = llama_config(
        cfg,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos[0] if len(eos) == 1 else eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    model = transformers.LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = config.bos_token_id
    return model


def _stop_tokens(tokenizer) -> list[str]:
    stops = [tokenizer.eos_token]
    for extra in ("<|eot_id|>", "<|end_of_text|>"):
        if extra in tokenizer.get_vocab() and extra not in stops:
            stops.append(extra)
    return [s for s in stops if s is not None]


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of (unique) parameters; tied embeddings count once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
