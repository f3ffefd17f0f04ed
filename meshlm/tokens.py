"""Token accounting for mesh text with any Hugging Face tokenizer.

The tokenizer is passed in (duck-typed: anything with ``encode(text, add_special_tokens=False)``
returning a list of ids, as every ``transformers`` tokenizer has), so this module needs numpy
alone. :func:`load_tokenizer` loads one from a local folder or hub id when ``transformers`` is
installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from meshlm.errors import MeshlmError, require


@dataclass
class TokenStats:
    """Token cost of one mesh text."""

    tokens: int
    characters: int
    vertices: int
    faces: int

    @property
    def tokens_per_face(self) -> float:
        return self.tokens / self.faces if self.faces else float("nan")

    @property
    def tokens_per_line(self) -> float:
        lines = self.vertices + self.faces
        return self.tokens / lines if lines else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_face"] = round(self.tokens_per_face, 3) if self.faces else None
        return d


def count_tokens(text: str, tokenizer) -> int:
    """Number of tokens ``tokenizer`` spends on ``text`` (no special tokens)."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    if hasattr(ids, "ids"):  # a raw `tokenizers.Tokenizer` returns an Encoding
        ids = ids.ids
    return len(ids)


def token_stats(text: str, tokenizer) -> TokenStats:
    """Tokens, characters, vertex and face line counts of a mesh text."""
    lines = text.splitlines()
    return TokenStats(
        tokens=count_tokens(text, tokenizer),
        characters=len(text),
        vertices=sum(1 for ln in lines if ln.startswith("v ")),
        faces=sum(1 for ln in lines if ln.startswith("f ")),
    )


def load_tokenizer(name_or_dir: str):
    """Load a tokenizer by local folder or hub id (``transformers.AutoTokenizer``).

    Raises MeshlmError with a one-line reason when it cannot be loaded (no network, bad folder).
    """
    transformers = require("transformers", "train", "token counting with a tokenizer")
    try:
        return transformers.AutoTokenizer.from_pretrained(name_or_dir)
    except Exception as exc:  # transformers raises many types (OSError, ValueError, HTTP errors)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeshlmError(f"cannot load tokenizer {name_or_dir!r}: {first}") from None
