"""meshlm's own small tokenizer, trained with the ``tokenizers`` library on the dataset's text.

Contract of the tokenizer :func:`train_tokenizer` returns (a ``transformers`` fast tokenizer):

* every integer ``0..MAX_INTEGER`` (1023, enough for 1024 bins) is one whole token, and so is
  every integer with the space before it (`` 12``), so a mesh line ``v 12 0 63`` costs 5 tokens --
  ``v``, `` 12``, `` 0``, `` 63``, newline -- where the Llama-3 tokenizer of the released
  LLaMA-Mesh spends 8 (the spaces are tokens of their own there). Fewer tokens per face means
  more meshes per training hour and faster generation for a small CPU model; numbers stay whole,
  so the constrained decoder still classifies the vocabulary once (see ``infer/constrain.py``);
* for the ``parts`` format (relative face indices, :mod:`meshlm.parts`), every space-led
  negative integer `` -1`` .. `` -MAX_RELATIVE`` is one token too, so ``f -3 -2 -1`` costs 5
  tokens like ``f 1 2 3`` (without them a relative index is a `` -`` byte pair plus a number:
  measured ~1.75x the tokens of the LLaMA-Mesh text for the same procedural mesh);
* the rest is byte-level BPE (nothing is ever unknown) learnt from captions and chat text, with
  the Llama-3 pre-tokenization pattern, so GGUF converters can declare it as a Llama-3 tokenizer;
* special tokens and a Llama-3-style chat template; ``eos_token`` is ``<|eot_id|>`` (a reply
  ends there). The template marks assistant turns with ``{% generation %}`` so that
  ``apply_chat_template(..., return_assistant_tokens_mask=True)`` -- which TRL's
  ``assistant_only_loss`` uses -- masks everything but the assistant's words and end-of-turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from meshlm.errors import require
from meshlm.modelfolder import dataset_format

MAX_INTEGER = 1023
#: Largest relative index with a token of its own (``parts`` text): the largest part of a
#: procedural shape at ``--max-segments 6`` has 80 vertices; longer ones still tokenize (bytes).
MAX_RELATIVE = 255
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
START_HEADER, END_HEADER, EOT = "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
SPECIAL_TOKENS = [BOS, EOS, START_HEADER, END_HEADER, EOT, PAD]

#: Llama-3's pre-tokenization pattern: letters, 1-3 digit runs, punctuation, newlines and single
#: spaces become separate pieces, so spaces and newlines in mesh text stay tokens of their own.
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Llama-3 chat layout. Content is trimmed; the assistant's content *and* its end-of-turn token
#: sit inside the generation block, so the model is trained to stop.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first -%}{{ bos_token }}{%- endif -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}{{ message['content'] | trim }}{{ '<|eot_id|>' }}{%- endgeneration -%}"
    "{%- else -%}"
    "{{ message['content'] | trim }}{{ '<|eot_id|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif -%}"
)

_MESH_LINE = re.compile(r"^[vf](?: -?\d+){3,}\s*$")


def text_for_bpe(text: str) -> str:
    """``text`` without its mesh lines: the BPE learns words, numbers are tokens already."""
    return "\n".join(ln for ln in text.split("\n") if not _MESH_LINE.match(ln))


def corpus_texts(
    data_dir: str | Path, split: str = "train", limit: int | None = None
) -> Iterator[str]:
    """Message contents of ``DATA_DIR/<split>.jsonl`` (rows with a ``messages`` list), mesh lines
    removed. Reads at most ``limit`` rows."""
    path = Path(data_dir) / f"{split}.jsonl"
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            if not line.strip():
                continue
            for message in json.loads(line).get("messages", []):
                yield text_for_bpe(str(message.get("content", "")))


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4096,
    model_max_length: int = 8192,
    min_frequency: int = 2,
    relative_indices: int = 0,
):
    """Train a byte-level BPE on ``texts`` and return a ``transformers`` fast tokenizer.

    ``vocab_size`` is the target size of the whole vocabulary (specials + bytes + merges +
    integers 0..1023, bare and space-led, + ``relative_indices`` space-led negative integers
    `` -1`` .. `` -N``, the ``parts`` format's face indices); the result can be slightly smaller
    when the text has few distinct words.
    Deterministic for the same input.
    """
    tk = require("tokenizers", "train", "training a tokenizer")
    transformers = require("transformers", "train", "training a tokenizer")
    n_integer = MAX_INTEGER + 1
    bpe_size = max(vocab_size - 2 * n_integer - relative_indices, len(SPECIAL_TOKENS) + 256)

    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.Sequence(
        [
            tk.pre_tokenizers.Split(tk.Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
            tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = tk.decoders.ByteLevel()
    tok.post_processor = tk.processors.ByteLevel(trim_offsets=False)
    trainer = tk.trainers.BpeTrainer(
        vocab_size=bpe_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Whole-number tokens, bare and space-led: matched before pre-tokenization, leftmost-longest
    # (" 1023" beats " 102" and "1023"). llama.cpp splits them out the same way (USER_DEFINED).
    tok.add_tokens(
        [
            tk.AddedToken(f"{sep}{i}", normalized=False, single_word=False)
            for sep in ("", " ")
            for i in range(n_integer)
        ]
        + [
            tk.AddedToken(f" -{i}", normalized=False, single_word=False)
            for i in range(1, relative_indices + 1)
        ]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        additional_special_tokens=[EOS, START_HEADER, END_HEADER],
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def train_tokenizer_from_dataset(
    data_dir: str | Path,
    vocab_size: int = 4096,
    model_max_length: int = 8192,
    limit: int | None = 20000,
):
    """:func:`train_tokenizer` on the first ``limit`` rows of ``DATA_DIR/train.jsonl``; with
    relative-index tokens (:data:`MAX_RELATIVE`) when the dataset's manifest records the
    ``parts`` format."""
    fmt = dataset_format(data_dir)
    return train_tokenizer(
        corpus_texts(data_dir, "train", limit),
        vocab_size=vocab_size,
        model_max_length=model_max_length,
        relative_indices=MAX_RELATIVE if fmt.name == "parts" else 0,
    )
