"""Supervised fine-tuning on the dataset builder's chat data, with TRL's ``SFTTrainer``.

``train(cfg)`` reads ``cfg.data_dir`` (``train.jsonl``, ``validation.jsonl``, ``manifest.json``;
rows with a ``messages`` list), trains full / LoRA / QLoRA with loss on assistant turns only,
evaluates on the validation split, resumes from the last checkpoint in ``cfg.output_dir``, and
leaves a folder that describes itself:

    OUTPUT_DIR/
      config.json, model.safetensors        the model (LoRA: adapter_config.json, adapter_model.*)
      tokenizer.json, tokenizer_config.json, chat_template.jinja
      meshlm.json                           mesh format + bins, resolved recipe, dataset manifest
                                            hash and counts, final metrics, versions (schema:
                                            meshlm.modelfolder)
      loss.png                              training and validation loss against step
      checkpoint-N/                         the last checkpoints (resume points)

The same code runs unchanged as one process or under ``torchrun`` / ``accelerate launch``
(data parallel; gloo on CPU). Only the main process writes ``meshlm.json`` and ``loss.png``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meshlm
from meshlm import exemplars, modelfolder, part_templates
from meshlm.errors import MeshlmError, require
from meshlm.shapes import list_families
from meshlm.train import tokenizer as mtok
from meshlm.train.base import ensure_base
from meshlm.train.config import SCRATCH, ConfigError, TrainConfig
from meshlm.train.mesh_loss import MeshTokenMask, mesh_loss_trainer_class
from meshlm.train.model import build_model, count_parameters
from meshlm.train.number_tokens import add_number_tokens, init_number_rows

METADATA_FILE = modelfolder.FILE
BASE_PREFIX = "base:"  # model: base:smollm2 -> meshlm.train.base.ensure_base("smollm2")
PLOT_FILE = "loss.png"


class QLoRAUnavailableError(MeshlmError, RuntimeError):
    """QLoRA needs a CUDA GPU and the bitsandbytes package; raised before anything is loaded."""


class TrainDataError(MeshlmError, ValueError):
    """The dataset folder is missing a split or its rows are not chat conversations."""


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    output_dir: Path
    global_step: int
    metrics: dict[str, float]
    resumed_from: str | None


# ------------------------------------------------------------------------------------------
# Checks that must fail fast (before loading anything heavy)
# ------------------------------------------------------------------------------------------


def check_method_available(cfg: TrainConfig) -> None:
    """Raise :class:`QLoRAUnavailableError` at once if ``cfg.method == 'qlora'`` can't run here."""
    if cfg.method != "qlora":
        return
    torch = require("torch", "train", "training")
    if not torch.cuda.is_available():
        raise QLoRAUnavailableError(
            "QLoRA loads the base model in 4-bit with bitsandbytes, which needs a CUDA GPU; "
            "none is available here. Use --method lora (full-precision base) or run on a CUDA "
            "machine."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise QLoRAUnavailableError(
            "QLoRA needs the bitsandbytes package: pip install bitsandbytes"
        ) from None


def split_paths(data_dir: str | Path) -> dict[str, Path]:
    """``{"train": ..., "validation": ...}`` of a dataset folder; raises :class:`TrainDataError`."""
    data_dir = Path(data_dir)
    paths = {"train": data_dir / "train.jsonl", "validation": data_dir / "validation.jsonl"}
    for split, path in paths.items():
        if not path.is_file():
            raise TrainDataError(
                f"{data_dir}: no {split} split ({path.name}); build the data with "
                f"`meshlm build-data` first"
            )
    return paths


def dataset_summary(data_dir: str | Path) -> dict[str, Any]:
    """Manifest hash, row counts and parsed manifest of a dataset folder, for ``meshlm.json``:
    ``{"dir", "manifest_sha256", "counts", "manifest"}``."""
    ref, manifest = modelfolder.dataset_ref(data_dir)
    return {**dataclasses.asdict(ref), "manifest": manifest}


def shape_families(summary: dict[str, Any]) -> list[str]:
    """The procedural shape families a dataset was built from (its manifest's ``--family``
    list, or every family when it has procedural shapes and no list; none otherwise)."""
    args = (summary.get("manifest") or {}).get("arguments") or {}
    if not args.get("procedural"):
        return []
    if args.get("families"):
        return list(args["families"])

    return list_families()


# ------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------


def sft_config(cfg: TrainConfig):
    """The ``trl.SFTConfig`` for ``cfg`` (this also sets up the distributed state)."""
    trl = require("trl", "train", "training")
    torch = require("torch", "train", "training")
    cuda = torch.cuda.is_available()
    evaluate_during = cfg.eval_steps > 0
    return trl.SFTConfig(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps(),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        bf16=cfg.precision == "bf16",
        fp16=cfg.precision == "fp16",
        use_cpu=not cuda,  # on CPU, accelerate picks gloo for multi-process runs
        **{_checkpointing_arg(trl.SFTConfig): cfg.gradient_checkpointing},
        logging_steps=cfg.logging_steps,
        eval_strategy="steps" if evaluate_during else "no",
        eval_steps=cfg.eval_steps if evaluate_during else None,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        dataloader_num_workers=cfg.dataloader_num_workers,
        max_length=cfg.max_length,
        packing=cfg.packing,
        assistant_only_loss=cfg.assistant_only_loss,
        include_num_input_tokens_seen="non_padding",
        model_init_kwargs=None
        if cfg.model == SCRATCH or cfg.init_adapter  # built here, not by TRL
        else {"dtype": _dtype_name(cfg), "attn_implementation": cfg.attn_implementation},
        disable_tqdm=True,
    )


def _checkpointing_arg(config_class) -> str:
    """The training argument that turns activation checkpointing on: transformers renamed
    ``gradient_checkpointing`` to ``activation_checkpointing`` within 5.x (5.17 has only the
    old name, 5.25 keeps it as a deprecated alias), and ``transformers>=5`` covers both."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )


def _dtype_name(cfg: TrainConfig) -> str:
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[cfg.precision]


def load_splits(cfg: TrainConfig):
    """Train and validation ``datasets.Dataset`` with only the ``messages`` column."""
    datasets = require("datasets", "data", "training")
    paths = split_paths(cfg.data_dir)
    ds = datasets.load_dataset("json", data_files={k: str(v) for k, v in paths.items()})
    for split in ("train", "validation"):
        if "messages" not in ds[split].column_names:
            raise TrainDataError(f"{paths[split]}: rows have no 'messages' list")
        ds[split] = ds[split].select_columns(["messages"])
    train, val = ds["train"], ds["validation"]
    if cfg.max_train_samples is not None:
        train = train.select(range(min(cfg.max_train_samples, len(train))))
    if cfg.max_eval_samples is not None:
        val = val.select(range(min(cfg.max_eval_samples, len(val))))
    if len(train) == 0:
        raise TrainDataError(f"{paths['train']}: no rows")
    return train, val


def load_tokenizer(cfg: TrainConfig, args):
    """The tokenizer: ``cfg.tokenizer``, else the base model's, else (scratch model) a meshlm
    tokenizer trained on the train split (of ``cfg.tokenizer_data`` if set, else of the training
    data) and saved to ``OUTPUT_DIR/tokenizer`` (reused on resume
    and by the other processes of a distributed run)."""
    transformers = require("transformers", "train", "training")

    source = cfg.tokenizer or (None if cfg.model == SCRATCH else cfg.model)
    if source is not None:
        try:
            tok = transformers.AutoTokenizer.from_pretrained(source)
        except OSError as exc:  # neither a folder here nor reachable on the hub
            where = "no such local folder, and " if not Path(source).exists() else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MeshlmError(
                f"{source}: {where}cannot load a tokenizer from it ({first})"
            ) from None
        if not tok.chat_template:  # a base (non-chat) model: give it meshlm's Llama-3 layout
            tok.chat_template = mtok.CHAT_TEMPLATE
        return tok
    tok_dir = Path(cfg.output_dir) / "tokenizer"
    with args.main_process_first(desc="meshlm tokenizer"):
        if not (tok_dir / "tokenizer.json").is_file():
            corpus = Path(cfg.tokenizer_data or cfg.data_dir) / "train.jsonl"
            if not corpus.is_file():
                raise TrainDataError(f"{corpus}: no such file (the tokenizer's training text)")
            tok = mtok.train_tokenizer_from_dataset(
                cfg.tokenizer_data or cfg.data_dir,
                cfg.tokenizer_vocab_size,
                model_max_length=cfg.max_length,
            )
            tok.save_pretrained(tok_dir)
    return transformers.AutoTokenizer.from_pretrained(tok_dir)


def recommend_greedy(folder: Path) -> None:
    """Set ``do_sample: false`` in ``folder/generation_config.json`` (written explicitly:
    transformers leaves default values out of the file, and meshlm reads an explicit false as
    "decode greedily by default")."""
    path = folder / "generation_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    cfg["do_sample"] = False
    for key in ("temperature", "top_p", "top_k"):  # sampling-only: inconsistent with greedy
        cfg.pop(key, None)
    path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def _load_base(cfg: TrainConfig):
    """``cfg.model`` loaded here (not by TRL) at the recipe's dtype and attention kernel."""
    transformers = require("transformers", "train", "training")
    return transformers.AutoModelForCausalLM.from_pretrained(
        cfg.model, dtype=_dtype_name(cfg), attn_implementation=cfg.attn_implementation
    )


def peft_config(cfg: TrainConfig, trainable_token_ids: list[int] | None = None):
    """``peft.LoraConfig`` for lora/qlora, else None. ``trainable_token_ids``: rows of the input
    embeddings trained with the adapter (added number tokens; PEFT trainable tokens, tied output
    rows included)."""
    if cfg.method == "full":
        return None
    peft = require("peft", "train", "LoRA training")
    targets: Any = cfg.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return peft.LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        bias="none",
        trainable_token_indices=list(trainable_token_ids) or None,
    )


def check_exemplar_bank(cfg: TrainConfig) -> None:
    """Refuse a dataset whose manifest says its rows show exemplars (``exemplars``, written by
    :mod:`meshlm.data.exemplify`) but whose folder lacks the bank (``exemplars.json``): the
    trained folder would decode without the meshes its rows were shown, silently
    (:class:`ConfigError`, before anything loads)."""
    manifest = Path(cfg.data_dir) / "manifest.json"
    if not manifest.is_file():
        return
    if "exemplars" in json.loads(manifest.read_text(encoding="utf-8")):
        if not (Path(cfg.data_dir) / exemplars.FILE).is_file():
            raise ConfigError(
                f"data_dir {cfg.data_dir}: its rows show exemplars (manifest) but it has no "
                f"{exemplars.FILE}; rebuild it or copy the source dataset's"
            )


def check_init_adapter(cfg: TrainConfig) -> None:
    """Refuse an ``init_adapter`` that is not a LoRA adapter folder, or whose rank, alpha or
    target modules differ from the recipe's ``lora_*`` fields (the recorded recipe must describe
    the adapter that is trained): :class:`ConfigError`. Standard library only, so a bad folder
    is refused before the tokenizer, data and model load."""
    if not cfg.init_adapter:
        return
    folder = Path(cfg.init_adapter)
    conf = folder / "adapter_config.json"
    if not conf.is_file():
        raise ConfigError(f"init_adapter {folder}: no adapter_config.json (not a LoRA adapter)")
    saved = json.loads(conf.read_text(encoding="utf-8"))
    targets = cfg.lora_target_modules
    saved_targets = sorted(saved.get("target_modules") or [])
    want = {"r": cfg.lora_r, "lora_alpha": cfg.lora_alpha}
    got = {k: saved.get(k) for k in want}
    if bool(cfg.number_tokens) != bool(saved.get("trainable_token_indices")):
        raise ConfigError(
            f"init_adapter {folder}: number_tokens={cfg.number_tokens} but the adapter "
            + ("trains no" if cfg.number_tokens else "carries trained")
            + " token rows (an adapter continues with the tokenizer it was trained with)"
        )
    if got != want or (targets != ["all-linear"] and saved_targets != sorted(targets)):
        raise ConfigError(
            f"init_adapter {folder}: r={got['r']} alpha={got['lora_alpha']} targets "
            f"{saved_targets} differ from the recipe's lora_r={cfg.lora_r} "
            f"lora_alpha={cfg.lora_alpha} lora_target_modules={targets}"
        )


def adapter_model(cfg: TrainConfig, number_plan: dict[int, list[int]], vocab_size: int):
    """``cfg.model`` with the LoRA adapter in ``cfg.init_adapter`` (checked by
    :func:`check_init_adapter`) loaded trainable (PEFT); with number tokens, the base's
    embeddings grown to ``vocab_size`` first (the adapter carries their trained rows)."""
    peft = require("peft", "train", "LoRA training")
    base = _load_base(cfg)
    init_number_rows(base, number_plan, vocab_size)
    return peft.PeftModel.from_pretrained(base, str(cfg.init_adapter), is_trainable=True)


def build_trainer(cfg: TrainConfig):
    """A ready ``trl.SFTTrainer`` for ``cfg`` (validated; QLoRA checked first). Does not train."""
    cfg.validate()
    check_method_available(cfg)
    check_init_adapter(cfg)
    check_exemplar_bank(cfg)
    if cfg.model.startswith(BASE_PREFIX):  # a pretrained base built offline (meshlm base)
        cfg = dataclasses.replace(cfg, model=str(ensure_base(cfg.model[len(BASE_PREFIX) :])))
    trl = require("trl", "train", "training")
    args = sft_config(cfg)
    train_ds, val_ds = load_splits(cfg)
    tokenizer = load_tokenizer(cfg, args)
    number_plan: dict[int, list[int]] = {}
    if cfg.number_tokens:  # before the mesh mask: it classifies the grown vocabulary
        relative = modelfolder.dataset_format(cfg.data_dir).name == "parts"
        number_plan = add_number_tokens(tokenizer, cfg.number_tokens, relative)
    trainer_class, mesh_mask = trl.SFTTrainer, None
    if cfg.loss_averaging == "mesh":  # checked before the model is built: a refusal costs nothing
        trainer_class, mesh_mask = mesh_loss_trainer_class(trl.SFTTrainer), MeshTokenMask(tokenizer)
    quantization = None
    if cfg.model == SCRATCH:
        model: Any = build_model(cfg, tokenizer)
    elif cfg.init_adapter:
        model = adapter_model(cfg, number_plan, len(tokenizer))
    elif cfg.number_tokens:  # the base loaded here: its embeddings grow with the tokenizer
        model = _load_base(cfg)
        init_number_rows(model, number_plan, len(tokenizer))
    else:
        model = cfg.model  # TRL loads it with args.model_init_kwargs (dtype, attention kernel)
        if cfg.method == "qlora":
            transformers = require("transformers", "train", "QLoRA")
            torch = require("torch", "train", "QLoRA")
            quantization = transformers.BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds if len(val_ds) else None,
        processing_class=tokenizer,
        peft_config=None if cfg.init_adapter else peft_config(cfg, list(number_plan)),
        quantization_config=quantization,
    )
    if cfg.number_tokens:
        # PEFT would save both whole resized embedding matrices (2 x 114 MB for SmolLM2) in
        # every checkpoint and the final adapter; the trainable-token rows are all it needs
        peft_model = trainer.accelerator.unwrap_model(trainer.model)
        peft_model.save_pretrained = functools.partial(
            peft_model.save_pretrained, save_embedding_layers=False
        )
    if mesh_mask is not None:
        trainer.mesh_mask, trainer.mesh_loss_tokens = mesh_mask, cfg.mesh_loss_tokens
        trainer.mesh_head_tokens = cfg.mesh_head_tokens
        trainer.mesh_new_weight = cfg.mesh_new_weight
        trainer.mesh_turn_end = cfg.mesh_turn_end
        trainer.mesh_end_weight = cfg.mesh_end_weight
        trainer.mesh_face_end_weight = cfg.mesh_face_end_weight
        trainer.mesh_repeat_weight = cfg.mesh_repeat_weight
        trainer.mesh_bare_plan_only = cfg.mesh_bare_plan_only
    if cfg.loss_averaging in ("sample", "mesh"):
        # Without loss kwargs the Trainer passes no token count across micro-batches: TRL takes
        # each micro-batch's own token mean and the Trainer divides by the accumulation steps.
        trainer.model_accepts_loss_kwargs = False
    return trainer


def last_checkpoint(output_dir: str | Path) -> str | None:
    """Path of the newest *complete* ``checkpoint-N`` folder in ``output_dir``, or None.

    A run killed while saving can leave a half-written folder; one without
    ``trainer_state.json`` (written last) is skipped.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = []
    for p in root.glob("checkpoint-*"):
        step = p.name.rpartition("-")[2]
        if step.isdigit() and p.is_dir() and (p / "trainer_state.json").is_file():
            found.append((int(step), p))
    return str(max(found)[1]) if found else None


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def train(cfg: TrainConfig) -> TrainResult:
    """Train according to ``cfg``; returns step, final metrics and where the result is.

    Raises :class:`QLoRAUnavailableError` (before loading anything) for QLoRA without CUDA,
    :class:`TrainDataError` for a missing/ill-formed dataset, ``ConfigError`` for bad values.
    """
    start = time.time()
    modelfolder.dataset_format(cfg.data_dir)  # a bad format block fails now, not after training
    trainer = build_trainer(cfg)
    # a model card already in the folder (written by people, committed) outlives the run: TRL's
    # save_model writes its own generated README.md over it
    card = Path(cfg.output_dir) / "README.md"
    kept_card = card.read_text(encoding="utf-8") if card.is_file() else None
    resume = last_checkpoint(cfg.output_dir) if cfg.resume else None
    out = trainer.train(resume_from_checkpoint=resume)
    metrics: dict[str, float] = {"train_loss": float(out.training_loss)}
    if trainer.eval_dataset is not None:
        metrics.update(
            {k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, int | float)}
        )
    for key in ("train_runtime", "train_samples_per_second", "train_steps_per_second"):
        if key in out.metrics:
            metrics[key] = float(out.metrics[key])
    tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    if tokens:
        metrics["train_tokens_seen"] = tokens
        if out.metrics.get("train_runtime"):
            metrics["train_tokens_per_second"] = tokens / float(out.metrics["train_runtime"])
    trainer.accelerator.unwrap_model(trainer.model).config.use_cache = True  # for inference
    trainer.save_model(cfg.output_dir)  # model or adapter, plus tokenizer (chat template inside)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(cfg.output_dir)
        if kept_card is not None:
            card.write_text(kept_card, encoding="utf-8")
        if cfg.greedy:
            recommend_greedy(Path(cfg.output_dir))
        meta = build_metadata(cfg, trainer, metrics, resume, time.time() - start)
        modelfolder.write(cfg.output_dir, meta)
        plot_losses(trainer.state.log_history, Path(cfg.output_dir) / PLOT_FILE)
        if meta.format.name == "parts":  # the parts it learnt, for the template constraint
            part_templates.TemplateLibrary.from_dataset(cfg.data_dir).save(cfg.output_dir)
            # the meshes its requests were shown (meshlm.data.exemplify): inference shows them too
            bank = Path(cfg.data_dir) / exemplars.FILE
            if bank.is_file():
                shutil.copy2(bank, Path(cfg.output_dir) / exemplars.FILE)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(
        Path(cfg.output_dir),
        int(trainer.state.global_step),
        metrics,
        None if resume is None else Path(resume).name,
    )


def build_metadata(
    cfg: TrainConfig,
    trainer,
    metrics: dict[str, float],
    resumed_from: str | None,
    wall_seconds: float,
) -> modelfolder.ModelInfo:
    """The content of ``meshlm.json``: what this folder holds and how it was made. The mesh
    format (name and bins) is the dataset manifest's ``format`` block, read in one place
    (:func:`meshlm.modelfolder.dataset_format`)."""

    versions = {"meshlm": meshlm.__version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    ref, manifest = modelfolder.dataset_ref(cfg.data_dir)
    model = trainer.model
    return modelfolder.ModelInfo(
        format=modelfolder.dataset_format(cfg.data_dir),
        kind="adapter" if cfg.method != "full" else "model",
        base_model=cfg.model,
        method=cfg.method,
        shape_families=shape_families({"manifest": manifest}),
        recipe={
            **dataclasses.asdict(cfg),
            "gradient_accumulation_steps": trainer.args.gradient_accumulation_steps,
            "world_size": trainer.args.world_size,
        },
        dataset=ref,
        metrics=metrics,
        versions=versions,
        extra={
            "architecture": model.config.architectures or [type(model).__name__],
            "parameters": count_parameters(model),
            "trainable_parameters": count_parameters(model, trainable_only=True),
            "chat_template": "chat_template.jinja (tokenizer files)",
            "stop_token": trainer.processing_class.eos_token,
            "global_step": int(trainer.state.global_step),
            "resumed_from": None if resumed_from is None else Path(resumed_from).name,
            "wall_seconds_this_run": round(wall_seconds, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": platform.machine(),
        },
    )


def plot_losses(log_history: list[dict], path: Path) -> Path:
    """PNG of training loss and validation loss against optimizer step."""
    matplotlib = require("matplotlib", "render", "the loss plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    val = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train", lw=1.2)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation", lw=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_title("meshlm training")
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
