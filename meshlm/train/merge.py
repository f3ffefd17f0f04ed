"""Merge a LoRA adapter folder into a standalone model folder.

``merge_adapter(ADAPTER_DIR, OUT)`` loads the base model named in ``adapter_config.json`` (a
local folder or a hub id; a meshlm base such as ``base:smollm2`` in ``meshlm.json`` wins),
applies the adapter, folds the LoRA weights into the base weights (PEFT ``merge_and_unload``)
and saves a plain transformers model with the adapter's tokenizer and chat template.
``meshlm.json`` is carried over (upgraded to the current schema, see :mod:`meshlm.modelfolder`)
with ``kind: model`` and ``merged_from``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from meshlm import exemplars, modelfolder, part_templates
from meshlm.errors import MeshlmError, require
from meshlm.train.base import ensure_base
from meshlm.train.number_tokens import resize_for_adapter
from meshlm.train.sft import BASE_PREFIX, PLOT_FILE


class AdapterError(MeshlmError, ValueError):
    """The folder is not a PEFT adapter, or its base model cannot be loaded."""


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Write the merged model to ``out_dir`` and return it.

    Raises :class:`AdapterError` when ``adapter_dir`` has no ``adapter_config.json`` or the
    base model cannot be loaded.
    """
    peft = require("peft", "train", "merging a LoRA adapter")
    torch = require("torch", "train", "merging a LoRA adapter")
    transformers = require("transformers", "train", "merging a LoRA adapter")
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise AdapterError(f"{adapter_dir}: not a LoRA adapter folder (no adapter_config.json)")
    try:
        base = json.loads(config_path.read_text()).get("base_model_name_or_path")
    except (ValueError, AttributeError) as exc:  # not JSON, or JSON that is not an object
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AdapterError(f"{config_path}: not a valid adapter config ({first})") from None
    meta = modelfolder.read(adapter_dir) or modelfolder.ModelInfo()  # a bad one fails first
    if meta.base_model and meta.base_model.startswith(BASE_PREFIX):
        # a meshlm base (base:smollm2): PEFT's recorded path is the trainer's cache, not ours

        base = str(ensure_base(meta.base_model[len(BASE_PREFIX) :]))
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_source))
        model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
        resize_for_adapter(model, tokenizer)  # added number tokens: rows the adapter carries
        model = peft.PeftModel.from_pretrained(model, str(adapter_dir))
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AdapterError(f"cannot load base model {base!r} of {adapter_dir}: {first}") from None
    merged = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    meta.kind = "model"
    meta.extra["merged_from"] = {"adapter": str(adapter_dir.resolve()), "base_model": base}
    modelfolder.write(out_dir, meta)
    # the picture; a parts model's templates and exemplars
    for name in (PLOT_FILE, part_templates.FILE, exemplars.FILE):
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, out_dir / name)
    return out_dir
