"""Export a meshlm-trained (Llama-architecture, byte-level BPE) model folder to one GGUF file
that llama.cpp runs, with its tokenizer and chat template.

Written with the ``gguf`` package (the format's reference writer). Facts used, from llama.cpp's
GGUF documentation and its Llama loader: tensor names (``token_embd``, ``blk.N.attn_q`` ...,
``output_norm``, ``output``; a missing ``output`` means tied embeddings); the query/key rows of
a Hugging Face Llama are stored per head as two rotary halves, which llama.cpp expects
interleaved, so those matrices are permuted per head; 1-D norm weights stay float32; a
byte-level BPE tokenizer is stored as the ``gpt2`` model with its merges, and the
pre-tokenizer llama.cpp must split text with is declared by name (``tokenizer.ggml.pre``),
read off ``tokenizer.json`` (:func:`pre_tokenizer_name`): ``llama-bpe`` for meshlm's own
tokenizer (the Llama-3 splitting pattern), ``gpt-2`` for a plain byte-level one (GPT-2's pattern:
SmolLM2's tokenizer as transformers converts it from the GGUF). A name llama.cpp splits
differently would change the ids of ordinary text (measured: ``"\n\n"`` is one token under
``llama-bpe``, two under the GPT-2 pattern that trained SmolLM2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from meshlm import modelfolder
from meshlm.errors import MeshlmError, require
from meshlm.train.tokenizer import PRETOKENIZE_PATTERN

_GEN_TAG = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")

#: Bumped when an export of the same weights changes (the merged-model cache is keyed on it).
EXPORT_VERSION = 2


class ExportError(MeshlmError):
    """The model folder cannot be exported (architecture, tokenizer or files)."""


def _permute_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """(n_head * head_dim, d) rows: per head, [first half | second half] -> interleaved pairs."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tokenizer_dir(model_dir: Path) -> Path:
    for d in (model_dir, model_dir / "tokenizer"):
        if (d / "tokenizer.json").exists():
            return d
    raise ExportError(f"{model_dir}: no tokenizer.json (a fast byte-level BPE tokenizer is needed)")


def export_gguf(model_dir: str | Path, out: str | Path, dtype: str = "f32") -> Path:
    """Write ``out`` (.gguf) from a Hugging Face Llama model folder. ``dtype``: f32 or f16
    (matrices; norms stay f32). Returns the path. Raises ExportError with a one-line reason."""
    gguf = require("gguf", "gguf", "GGUF export")
    transformers = require("transformers", "train", "GGUF export")
    model_dir, out = Path(model_dir), Path(out)
    if dtype not in ("f32", "f16"):
        raise ExportError(f"dtype must be f32 or f16, got {dtype!r}")
    if not (model_dir / "config.json").exists():
        raise ExportError(f"{model_dir}: not a model folder (no config.json)")
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise ExportError(
            f"{model_dir}: only Llama models export (found {config.get('model_type')})"
        )
    tok_dir = _tokenizer_dir(model_dir)
    tj = json.loads((tok_dir / "tokenizer.json").read_text())
    if tj.get("model", {}).get("type") != "BPE" or "ByteLevel" not in json.dumps(tj.get("decoder")):
        raise ExportError(f"{tok_dir}: only byte-level BPE tokenizers export")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tok_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32")
    cfg = model.config

    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    rope = getattr(cfg, "rope_parameters", None) or {}
    rope_theta = float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), arch="llama")
    w.add_name(model_dir.name)
    # the mesh format travels inside the file (read by meshlm.modelfolder.gguf_format), so a
    # GGUF copied away from its folder's meshlm.json still decodes at its own bins
    fmt = (modelfolder.read(model_dir) or modelfolder.ModelInfo()).format
    w.add_string(modelfolder.GGUF_FORMAT_NAME, fmt.name)
    w.add_uint32(modelfolder.GGUF_FORMAT_BINS, fmt.bins)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(rope_theta)
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)

    _add_tokenizer(w, gguf, tokenizer, tj, cfg.vocab_size)

    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for name, arr in state.items():
        gname = _tensor_name(name)
        if gname is None:
            continue
        if gname == "output.weight" and tied:
            continue
        if name.endswith("q_proj.weight"):
            arr = _permute_rotary(arr, n_head)
        elif name.endswith("k_proj.weight"):
            arr = _permute_rotary(arr, n_kv)
        arr = arr.astype(np.float16 if (dtype == "f16" and arr.ndim == 2) else np.float32)
        w.add_tensor(gname, np.ascontiguousarray(arr))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(out)
    return out


def _tensor_name(hf: str) -> str | None:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", hf)
    if not m:
        return None
    i, part = m.groups()
    table = {
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    if part not in table:
        raise ExportError(f"unexpected tensor {hf}")
    return f"blk.{i}.{table[part]}.weight"


def _add_tokenizer(w, gguf, tokenizer, tj: dict, vocab_size: int) -> None:
    vocab = tokenizer.get_vocab()
    if len(vocab) > vocab_size:
        raise ExportError(f"tokenizer has {len(vocab)} tokens but the model only {vocab_size}")
    by_id = {i: t for t, i in vocab.items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(added[i]["content"])
            types.append(
                gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED
            )
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"].get("merges", [])]
    if not merges:
        raise ExportError(
            "the tokenizer has no BPE merges (llama.cpp needs them): train it with a "
            "larger vocabulary"
        )
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre_tokenizer_name(tj))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if tokenizer.bos_token_id is not None:
        w.add_bos_token_id(tokenizer.bos_token_id)
    if tokenizer.eos_token_id is not None:
        w.add_eos_token_id(tokenizer.eos_token_id)
        w.add_eot_token_id(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        w.add_pad_token_id(tokenizer.pad_token_id)
    w.add_add_bos_token(False)  # the chat template writes the BOS itself
    template = getattr(tokenizer, "chat_template", None)
    if template:
        w.add_chat_template(_GEN_TAG.sub("", template))


def pre_tokenizer_name(tj: dict) -> str:
    """llama.cpp's name (``tokenizer.ggml.pre``) for the pre-tokenizer of ``tj`` (a parsed
    ``tokenizer.json``): ``llama-bpe`` for meshlm's Llama-3 split + byte-level, ``gpt-2`` for
    a byte-level pre-tokenizer with GPT-2's own pattern. Raises ExportError for anything else
    (llama.cpp would split its text differently from transformers)."""
    pre = tj.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if (
        len(steps) == 2
        and steps[0].get("type") == "Split"
        and (steps[0].get("pattern") or {}).get("Regex") == PRETOKENIZE_PATTERN
        and steps[1].get("type") == "ByteLevel"
        and not steps[1].get("use_regex", True)
    ):
        return "llama-bpe"
    raise ExportError(
        f"pre-tokenizer {json.dumps(pre)[:120]} has no llama.cpp counterpart meshlm knows "
        "(byte-level with GPT-2's pattern, or meshlm's Llama-3 split)"
    )
