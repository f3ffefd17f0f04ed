"""Wording helpers shared by the family captions.

Captions are built from a sample's actual parameters; these helpers only vary the words.
Every choice draws from the ``numpy.random.Generator`` passed in, so captions are deterministic
for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
]
_HYPHEN = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight"}


def number(n: int) -> str:
    """English word for ``n`` (0..16), digits beyond."""
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(3, 'leg') -> 'three legs'``, ``count(1, 'shelf', 'shelves') -> 'one shelf'``."""
    return f"{number(n)} {noun if n == 1 else (plural or noun + 's')}"


def hyphen(n: int, noun: str) -> str:
    """Compound adjective: ``hyphen(3, 'legged') -> 'three-legged'``."""
    return f"{_HYPHEN.get(n, number(n))}-{noun}"


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of ``options``, chosen by ``rng``."""
    return options[int(rng.integers(len(options)))]


def article(phrase: str) -> str:
    """Prefix 'a' or 'an' to ``phrase``."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def low_poly(rng: np.random.Generator) -> str:
    """An optional style adjective ('' most of the time is not wanted: callers decide)."""
    return pick(rng, ["", "", "low poly ", "simple ", "low-poly ", "minimal "])


def finish(rng: np.random.Generator, text: str) -> str:
    """Normalise spacing, sometimes prefix a 3D-model phrase, and capitalise the first letter."""
    text = " ".join(text.split())
    lead = pick(rng, ["", "", "", "", "", "a 3D model of ", "a low poly model of ", "3D model: "])
    if lead:
        text = lead + text
    return text[0].upper() + text[1:]


def size_word(
    value: float,
    lo: float,
    hi: float,
    small: Sequence[str],
    large: Sequence[str],
    rng: np.random.Generator,
) -> str:
    """A word for where ``value`` falls in ``[lo, hi]``: from ``small`` in the bottom third,
    from ``large`` in the top third, '' in the middle (so captions only claim what is clear)."""
    t = (value - lo) / (hi - lo) if hi > lo else 0.5
    if t < 1 / 3:
        return pick(rng, small)
    if t > 2 / 3:
        return pick(rng, large)
    return ""


def join(words: Sequence[str]) -> str:
    """Join non-empty words with single spaces."""
    return " ".join(w for w in words if w)
