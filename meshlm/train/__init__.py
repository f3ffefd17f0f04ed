"""Training: meshlm's tokenizer, a from-scratch small Llama, and SFT/LoRA/QLoRA with TRL.

Public API
----------
``TrainConfig``            the run's configuration (YAML recipe + ``--key value`` overrides)
``train(cfg)``             run SFT with TRL's SFTTrainer -> :class:`TrainResult`
``build_trainer(cfg)``     the configured ``trl.SFTTrainer`` without running it
``train_tokenizer(texts)`` meshlm's byte-level BPE with whole-number tokens and a chat template
``build_model(cfg, tok)``  a fresh fp32 ``LlamaForCausalLM`` sized by ``cfg``
``merge_adapter(a, out)``  fold a LoRA adapter into a standalone model

Heavy imports (torch, transformers, trl, peft) happen inside the functions, so importing this
package is cheap; they need the ``train`` extra.
"""

from meshlm.train.config import ConfigError, TrainConfig


def __getattr__(name: str):  # lazy: keep `import meshlm.train` free of torch
    if name in ("train", "build_trainer", "TrainResult", "QLoRAUnavailableError", "TrainDataError"):
        from meshlm.train import sft

        return getattr(sft, name)
    if name in ("train_tokenizer", "train_tokenizer_from_dataset"):
        from meshlm.train import tokenizer

        return getattr(tokenizer, name)
    if name in ("build_model", "count_parameters"):
        from meshlm.train import model

        return getattr(model, name)
    if name in ("merge_adapter", "AdapterError"):
        from meshlm.train import merge

        return getattr(merge, name)
    raise AttributeError(name)


__all__ = [
    "AdapterError",
    "ConfigError",
    "QLoRAUnavailableError",
    "TrainConfig",
    "TrainDataError",
    "TrainResult",
    "build_model",
    "build_trainer",
    "count_parameters",
    "merge_adapter",
    "train",
    "train_tokenizer",
    "train_tokenizer_from_dataset",
]
