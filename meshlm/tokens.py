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


def number_token_strings(n: int, relative: bool = False) -> list[str]:
    """`` 0`` .. `` n-1``, then `` -1`` .. `` -n`` when ``relative`` (the parts format's face
    indices): the tokens a recipe's ``number_tokens`` adds (meshlm/train/number_tokens.py)."""
    out = [f" {i}" for i in range(n)]
    if relative:
        out += [f" -{i}" for i in range(1, n + 1)]
    return out


def add_number_tokens(tokenizer, n: int, relative: bool = False) -> dict[int, list[int]]:
    """Add :func:`number_token_strings` to ``tokenizer`` (a ``transformers`` fast tokenizer, in
    place) as added tokens (``normalized=False``: matched before pre-tokenization,
    leftmost-longest); return ``{new id: ids of the pieces the tokenizer spelled it with
    before}``. Strings the tokenizer already holds as one token are left as they are (not
    returned). Deterministic: the same base tokenizer gives the same ids."""
    tokenizers = require("tokenizers", "train", "adding number tokens")
    vocab = tokenizer.get_vocab()
    strings = number_token_strings(n, relative)
    pieces = {s: tokenizer(s, add_special_tokens=False)["input_ids"] for s in strings}
    new = [s for s in strings if len(pieces[s]) > 1 and s not in vocab]
    tokenizer.add_tokens([tokenizers.AddedToken(s, normalized=False) for s in new])
    ids = tokenizer.convert_tokens_to_ids(new)
    return {int(i): pieces[s] for s, i in zip(new, ids, strict=True)}
