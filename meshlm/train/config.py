"""Training configuration: one dataclass, loaded from a YAML recipe plus command-line options.

Every field carries its help text (:func:`meshlm.config.setting`); ``meshlm train``'s options
are derived from the fields (:mod:`meshlm.cli.options`: ``--learning_rate 3e-4`` or
``--learning-rate 3e-4``, ``--packing`` / ``--no-packing``) and ``meshlm train --help-config``
lists them. :meth:`TrainConfig.resolve` checks the values and derives what the recipe leaves
implicit (gradient accumulation from the global batch and the number of processes) with the
standard library only: a dry run (``meshlm train --config R --dry-run``) needs pyyaml and no
torch, transformers or network.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshlm.config import ConfigError, field_help, from_mapping, read_yaml
from meshlm.config import setting as _f

__all__ = ["METHODS", "PRECISIONS", "SCRATCH", "ConfigError", "TrainConfig", "scratch_param_count"]

METHODS = ("full", "lora", "qlora")
PRECISIONS = ("fp32", "bf16", "fp16")
SCRATCH = "scratch"


@dataclass
class TrainConfig:
    """Everything one ``meshlm train`` run needs. Field help doubles as recipe documentation."""

    # --- what to train -------------------------------------------------------------------
    model: str = _f(
        SCRATCH,
        "Base model: a hub id (e.g. meta-llama/Llama-3.1-8B-Instruct), a local folder, "
        "'base:NAME' for a pretrained base meshlm builds offline (base:smollm2, see `meshlm "
        "base`), "
        "or 'scratch' to build a small Llama from the scratch-model fields below.",
    )
    tokenizer: str | None = _f(
        None,
        "Tokenizer folder or hub id. None: the base model's tokenizer, or, with "
        "model=scratch, a meshlm tokenizer trained on the train split.",
    )
    tokenizer_data: str | None = _f(
        None,
        "Dataset folder whose train split trains that meshlm tokenizer (model=scratch, "
        "tokenizer None). None: data_dir. Lets a run on one dataset share the vocabulary of "
        "another (the bundled model's phases all use the tokenizer of data/bundled).",
    )
    tokenizer_vocab_size: int = _f(
        4096,
        "Vocabulary size of a meshlm tokenizer trained from the data (includes the 1024 "
        "integer tokens and the special tokens).",
    )
    number_tokens: int = _f(
        0,
        "Pretrained base only: add the space-led whole numbers ' 0' .. ' N-1' as tokens of "
        "their own (and ' -1' .. ' -N' for a dataset in the parts format), new embeddings "
        "initialised from the mean of their digits' and trained with the adapter "
        "(meshlm/train/number_tokens.py). 0: the base's tokenizer as it is. LLaMA-Mesh relies on "
        "Llama-3 having every number below 1000 as one token; SmolLM2 spells them digit by "
        "digit (~11 tokens a vertex line instead of 5).",
    )
    method: str = _f(
        "full",
        "full (all weights), lora (PEFT adapter) or qlora (4-bit base + "
        "LoRA; CUDA and bitsandbytes only).",
    )
    hidden_size: int = _f(256, "Scratch model: width of the residual stream.")
    num_layers: int = _f(6, "Scratch model: number of decoder layers.")
    num_heads: int = _f(8, "Scratch model: attention heads.")
    num_kv_heads: int = _f(4, "Scratch model: key/value heads (grouped-query attention).")
    intermediate_size: int = _f(768, "Scratch model: MLP width.")
    max_position_embeddings: int = _f(8192, "Scratch model: longest context RoPE is set for.")
    tie_word_embeddings: bool = _f(True, "Scratch model: share input and output embeddings.")
    attn_implementation: str = _f("sdpa", "Attention kernel: sdpa, eager or flash_attention_2.")

    # --- LoRA ------------------------------------------------------------------------------
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA input.")
    lora_target_modules: list[str] = _f(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "Module names LoRA adapts ('all-linear' as the only item adapts every linear layer).",
    )
    init_adapter: str | None = _f(
        None,
        "Start from this LoRA adapter folder (adapter_config.json + weights, e.g. an earlier "
        "stage's output_dir) instead of a fresh adapter: a second stage under another loss or "
        "schedule. method lora only; its rank, alpha and target modules are the adapter's own "
        "and must match the lora_* fields.",
    )

    # --- data ------------------------------------------------------------------------------
    data_dir: str = _f(
        "data/shapes",
        "Dataset folder written by `meshlm build-data`: train.jsonl, "
        "validation.jsonl, manifest.json (rows with a 'messages' list).",
    )
    max_length: int = _f(
        4096,
        "Longest training sequence in tokens (longer ones are truncated; "
        "with packing, the length of a packed row).",
    )
    packing: bool = _f(
        False,
        "Pack several conversations into each row (best-fit decreasing, "
        "padding-free, attention kept within each conversation).",
    )
    assistant_only_loss: bool = _f(
        True, "Train on assistant turns only (user and system tokens get label -100)."
    )
    loss_averaging: str = _f(
        "token",
        "How the loss averages: 'token' (every supervised token of "
        "a step weighs the same: long mesh replies dominate) or 'sample' "
        "(every micro-batch's mean weighs the same; with "
        "per_device_batch_size 1, every conversation: a 15-token caption "
        "answer counts as much as a 1,000-token mesh) or 'mesh' (prose "
        "per conversation plus every mesh line of any turn, the user's too, "
        "per token: see meshlm/train/mesh_loss.py; unpacked rows only, and "
        "it builds the full logits, fine for small vocabularies).",
    )
    mesh_loss_tokens: int = _f(
        512,
        "With loss_averaging 'mesh': a conversation's mesh tokens "
        "add their summed loss divided by this number.",
    )
    mesh_head_tokens: int = _f(
        0,
        "With loss_averaging 'mesh': the first N mesh tokens the "
        "assistant writes in a conversation (the opening vertex lines, "
        "where the reply commits to a shape) also add their mean loss, "
        "weighing as much as the prose. 0 = off.",
    )
    mesh_new_weight: float = _f(
        0.0,
        "With loss_averaging 'mesh': each supervised token of a coordinate "
        "whose value is new on its axis in its part (not a copy of one "
        "written above it) weighs 1 + this many mesh tokens. 0 = off. "
        "See meshlm/train/mesh_loss.py.",
    )
    mesh_turn_end: bool = _f(
        False,
        "With loss_averaging 'mesh': the end-of-turn token right after a "
        "mesh line counts as a mesh token, so stopping after a part weighs "
        "as much as the newline that goes on to the next one (off: it is "
        "prose, ~25x the newline's weight). See meshlm/train/mesh_loss.py.",
    )
    mesh_end_weight: float = _f(
        0.0,
        "With loss_averaging 'mesh': a conversation's part-end tokens (the "
        "newline after a part's last face line, or the end of turn that ends "
        "the mesh: go on or stop) add their mean loss times this weight (1 = "
        "as much as the prose). 0 = off. See meshlm/train/mesh_loss.py.",
    )
    mesh_face_end_weight: float = _f(
        0.0,
        "With loss_averaging 'mesh': a conversation's face-end tokens (the "
        "newline after a face line that another face line of its part "
        "follows: the part goes on) add their mean loss times this weight, "
        "the counterpart of mesh_end_weight. 0 = off. See meshlm/train/mesh_loss.py.",
    )
    mesh_repeat_weight: float = _f(
        0.0,
        "With loss_averaging 'mesh': unlikelihood (Welleck et al. 2019) on the values "
        "that would write a vertex line twice within a part: at each vertex line's last "
        "coordinate whose line starts like an earlier line of its part, a conversation's "
        "mean -log(1 - p(repeat)) times this weight. 0 = off. See meshlm/train/mesh_loss.py.",
    )
    mesh_bare_plan_only: bool = _f(
        False,
        "With loss_averaging 'mesh': in a conversation that shows no exemplar "
        "(meshlm.exemplars), the assistant's tokens from its first mesh line on are not "
        "supervised, so bare requests teach the lead-in and plan line only. "
        "See meshlm/train/mesh_loss.py.",
    )
    max_train_samples: int | None = _f(None, "Use only the first N training rows (quick runs).")
    max_eval_samples: int | None = _f(256, "Use only the first N validation rows for evaluation.")

    # --- optimisation ----------------------------------------------------------------------
    learning_rate: float = _f(1e-5, "Peak learning rate of AdamW.")
    lr_scheduler: str = _f(
        "cosine",
        "Learning-rate schedule after warm-up (cosine, linear, constant_with_warmup, ...).",
    )
    warmup_steps: int = _f(30, "Linear warm-up steps.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    num_epochs: float = _f(1.0, "Passes over the training split (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: run num_epochs).")
    global_batch_size: int = _f(
        8,
        "Sequences per optimizer step, over all processes "
        "(= per_device_batch_size x gradient accumulation x processes).",
    )
    per_device_batch_size: int = _f(1, "Sequences per forward pass on one process.")
    num_processes: int | None = _f(
        None,
        "Data-parallel processes. None: WORLD_SIZE from the "
        "launcher (torchrun / accelerate launch), else 1.",
    )
    precision: str = _f(
        "fp32", "fp32, bf16 or fp16 (bf16 is ~14x slower than fp32 on CPUs without native bf16)."
    )
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    seed: int = _f(0, "Seed of initialisation, data order and dropout.")

    # --- bookkeeping -----------------------------------------------------------------------
    output_dir: str = _f("runs/meshlm", "Folder for checkpoints and the final model.")
    logging_steps: int = _f(10, "Log the training loss every N steps.")
    eval_steps: int = _f(200, "Evaluate on the validation split every N steps (0: at the end).")
    save_steps: int = _f(200, "Save a checkpoint every N steps.")
    save_total_limit: int | None = _f(2, "Keep at most N checkpoints (None: keep all).")
    resume: bool = _f(True, "Resume from the last checkpoint in output_dir when there is one.")
    dataloader_num_workers: int = _f(0, "Worker processes per data loader.")
    greedy: bool = _f(
        False,
        "Write do_sample false into the saved model's "
        "generation_config.json: meshlm then decodes it greedily unless a "
        "temperature is given (the bundled model is measured greedy).",
    )
    recipe: str | None = _f(
        None, "Path of the YAML recipe this config came from (set by the loader).", cli=False
    )

    # ------------------------------------------------------------------------------------
    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Field name -> help text, in declaration order."""
        return field_help(cls)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (values typed or text); unknown keys raise :class:`ConfigError`."""
        return from_mapping(cls, values)

    @classmethod
    def load(
        cls, recipe: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
    ) -> TrainConfig:
        """Read a YAML recipe (may be None), then apply ``overrides`` (field name -> value, e.g.
        the options given on the command line).

        Raises :class:`ConfigError` in one line for a missing file, bad YAML, an unknown key
        (naming the file, line and closest field) or a bad value.
        """
        values: dict[str, Any] = {}
        if recipe is not None:
            values.update(read_yaml(cls, recipe))
            values["recipe"] = str(Path(recipe))
        values.update(overrides or {})
        return cls.from_dict(values)

    # ------------------------------------------------------------------------------------
    def world_size(self) -> int:
        """Number of data-parallel processes (explicit field, else WORLD_SIZE, else 1)."""
        if self.num_processes is not None:
            return self.num_processes
        return int(os.environ.get("WORLD_SIZE", "1"))

    def gradient_accumulation_steps(self) -> int:
        """``global_batch_size / (per_device_batch_size * world_size)``; must divide exactly."""
        per_step = self.per_device_batch_size * self.world_size()
        if self.global_batch_size % per_step:
            raise ConfigError(
                f"global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size} x {self.world_size()} "
                f"process(es) = {per_step}"
            )
        return self.global_batch_size // per_step

    def validate(self) -> None:
        """Check value ranges and choices; raises :class:`ConfigError`."""
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.method != "full" and self.model == SCRATCH:
            raise ConfigError("LoRA/QLoRA adapt an existing model: set model to a folder or hub id")
        if self.init_adapter is not None and self.method != "lora":
            raise ConfigError(f"init_adapter continues a LoRA adapter: method is {self.method!r}")
        if not 0 <= self.number_tokens <= 1024:
            raise ConfigError(f"number_tokens must be 0..1024, got {self.number_tokens}")
        if self.number_tokens and (self.model == SCRATCH or self.tokenizer):
            raise ConfigError(
                "number_tokens extends a pretrained base's own tokenizer: a scratch model's "
                "tokenizer has every number already, and a separate tokenizer is not extended"
            )
        if self.number_tokens and self.loss_averaging != "mesh":
            # TRL 1.x scores 'token'/'sample' losses with a fused LM head that multiplies by
            # lm_head.weight itself, past PEFT's trainable-token rows (they would not train);
            # meshlm's mesh loss takes the logits of the model's own forward.
            raise ConfigError("number_tokens needs loss_averaging 'mesh' (TRL's fused LM head)")
        if self.number_tokens and self.method == "qlora":
            raise ConfigError("number_tokens: new embedding rows are not trained under QLoRA")
        for name in (
            "max_length",
            "global_batch_size",
            "per_device_batch_size",
            "logging_steps",
            "save_steps",
            "tokenizer_vocab_size",
            "lora_r",
            "mesh_loss_tokens",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.loss_averaging not in ("token", "sample", "mesh"):
            raise ConfigError(
                f"loss_averaging must be 'token', 'sample' or 'mesh', got {self.loss_averaging!r}"
            )
        if self.mesh_head_tokens < 0:
            raise ConfigError(f"mesh_head_tokens must be >= 0, got {self.mesh_head_tokens}")
        if self.mesh_head_tokens and self.loss_averaging != "mesh":
            raise ConfigError("mesh_head_tokens needs loss_averaging 'mesh'")
        if not (math.isfinite(self.mesh_new_weight) and self.mesh_new_weight >= 0):
            raise ConfigError(
                f"mesh_new_weight must be a finite number >= 0, got {self.mesh_new_weight}"
            )
        if self.mesh_new_weight and self.loss_averaging != "mesh":
            raise ConfigError("mesh_new_weight needs loss_averaging 'mesh'")
        if not (math.isfinite(self.mesh_end_weight) and self.mesh_end_weight >= 0):
            raise ConfigError(
                f"mesh_end_weight must be a finite number >= 0, got {self.mesh_end_weight}"
            )
        if self.mesh_end_weight and self.loss_averaging != "mesh":
            raise ConfigError("mesh_end_weight needs loss_averaging 'mesh'")
        if not (math.isfinite(self.mesh_face_end_weight) and self.mesh_face_end_weight >= 0):
            raise ConfigError(
                "mesh_face_end_weight must be a finite number >= 0, "
                f"got {self.mesh_face_end_weight}"
            )
        if self.mesh_face_end_weight and self.loss_averaging != "mesh":
            raise ConfigError("mesh_face_end_weight needs loss_averaging 'mesh'")
        if not (math.isfinite(self.mesh_repeat_weight) and self.mesh_repeat_weight >= 0):
            raise ConfigError(
                f"mesh_repeat_weight must be a finite number >= 0, got {self.mesh_repeat_weight}"
            )
        if self.mesh_repeat_weight and self.loss_averaging != "mesh":
            raise ConfigError("mesh_repeat_weight needs loss_averaging 'mesh'")
        if self.mesh_bare_plan_only and self.loss_averaging != "mesh":
            raise ConfigError("mesh_bare_plan_only needs loss_averaging 'mesh'")
        if self.mesh_bare_plan_only and not self.assistant_only_loss:
            # the cut is at the first supervised mesh token: a user turn's mesh would be one
            raise ConfigError("mesh_bare_plan_only needs assistant_only_loss")
        if self.mesh_turn_end and self.loss_averaging != "mesh":
            raise ConfigError("mesh_turn_end needs loss_averaging 'mesh'")
        if self.greedy and self.method != "full":
            raise ConfigError(
                "greedy writes the saved model's generation_config.json: full "
                "fine-tuning only (set it on the merged model of an adapter)"
            )
        if self.tokenizer_data and (self.tokenizer or self.model != SCRATCH):
            raise ConfigError(
                "tokenizer_data trains the tokenizer of a scratch model: it needs "
                "model scratch and no tokenizer"
            )
        if self.loss_averaging == "mesh" and self.packing:
            raise ConfigError(
                "loss_averaging 'mesh' weighs each conversation on its own: set packing false"
            )
        if self.world_size() < 1:
            raise ConfigError("num_processes must be >= 1")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ConfigError("hidden_size must divide by num_heads, num_heads by num_kv_heads")
        self.gradient_accumulation_steps()

    def resolve(self) -> dict[str, Any]:
        """The whole resolved configuration as plain data (validated; no torch, no network).

        Keys: ``config`` (every field), ``world_size``, ``gradient_accumulation_steps``,
        ``tokens_per_step`` (upper bound: global batch x max_length), and ``scratch_model`` with
        the parameter count when the model is built from scratch.
        """
        self.validate()
        out: dict[str, Any] = {
            "config": dataclasses.asdict(self),
            "world_size": self.world_size(),
            "per_device_batch_size": self.per_device_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps(),
            "global_batch_size": self.global_batch_size,
            "max_tokens_per_step": self.global_batch_size * self.max_length,
        }
        if self.model == SCRATCH:
            vocab = self.tokenizer_vocab_size
            out["scratch_model"] = {
                "vocab_size_assumed": vocab,
                "parameters": scratch_param_count(self, vocab),
            }
        return out


def scratch_param_count(cfg: TrainConfig, vocab_size: int) -> int:
    """Parameters of the scratch ``LlamaForCausalLM`` that ``cfg`` describes, by arithmetic.

    The layout is transformers' Llama (no biases; head width hidden_size / num_heads): token
    embedding V x h; per layer the q and o projections h x h each, k and v h x (kv_heads x
    head width) each, the gated MLP 3 x h x intermediate, two RMSNorm weights of h; the final
    norm h; the output head V x h unless tied to the embedding. A test checks it against
    the model transformers builds.
    """
    h, layers = cfg.hidden_size, cfg.num_layers
    kv = cfg.num_kv_heads * (h // cfg.num_heads)
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * cfg.intermediate_size + 2 * h
    head = 0 if cfg.tie_word_embeddings else vocab_size * h
    return vocab_size * h + layers * per_layer + h + head
