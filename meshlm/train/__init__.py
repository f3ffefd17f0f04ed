"""Training: meshlm's tokenizer, a from-scratch small Llama, and SFT/LoRA/QLoRA with TRL.

Public API
----------
``TrainConfig``            the run's configuration (YAML recipe + ``--key value`` overrides)
``train(cfg)``             run SFT with TRL's SFTTrainer -> :class:`TrainResult`
``build_trainer(cfg)``     the configured ``trl.SFTTrainer`` without running it
``train_tokenizer(texts)`` meshlm's byte-level BPE with whole-number tokens and a chat template
``build_model(cfg, tok)``  a fresh fp32 ``LlamaForCausalLM`` sized by ``cfg``
``merge_adapter(a, out)``  fold a LoRA adapter into a standalone model

Heavy libraries (torch, transformers, trl, peft) are imported inside the functions that use
them (:func:`meshlm.errors.require`), so importing this package is cheap; they need the ``train``
extra.
"""

from meshlm.train.config import ConfigError, TrainConfig
from meshlm.train.merge import AdapterError, merge_adapter
from meshlm.train.model import build_model, count_parameters
from meshlm.train.sft import (
    QLoRAUnavailableError,
    TrainDataError,
    TrainResult,
    build_trainer,
    train,
)
from meshlm.train.tokenizer import train_tokenizer, train_tokenizer_from_dataset

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
