"""Validity of model text: does a reply hold canonical mesh text, and what had to be repaired.

Pure functions over strings, in the model's mesh format ``fmt`` (:mod:`meshlm.meshtext`):
LLaMA-Mesh text with :func:`meshlm.codec.decode` (strict) and
:func:`meshlm.lenient.decode_lenient`; parts text with :func:`meshlm.parts.decode_parts`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from meshlm import meshtext
from meshlm.codec import DEFAULT_BINS, RepairReport
from meshlm.errors import MeshFormatError, NoMeshFoundError


def _texts(texts: Iterable[str]) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("no texts to score")
    return texts


def strict_parse_rate(
    texts: Iterable[str], bins: int = DEFAULT_BINS, fmt: str = meshtext.DEFAULT
) -> float:
    """Fraction of ``texts`` that the strict decoder of format ``fmt`` accepts.

    Strict means the whole text (surrounding whitespace aside) is canonical mesh text: no prose,
    no code fence, no repair needed. Returns a float in [0, 1]; raises ``ValueError`` when
    ``texts`` is empty.
    """
    texts = _texts(texts)
    ok = 0
    for text in texts:
        try:
            meshtext.decode_strict(text, fmt, bins)
        except MeshFormatError:
            continue
        ok += 1
    return ok / len(texts)


def repair_counts(
    texts: Iterable[str],
    bins: int = DEFAULT_BINS,
    cut_off: Sequence[bool] | None = None,
    fmt: str = meshtext.DEFAULT,
) -> dict[str, Any]:
    """Aggregate what the lenient decoder had to do to get a mesh out of each text.

    Each text is read in format ``fmt`` by :func:`meshlm.meshtext.read_reply`, the rule every
    stage uses for which mesh of a reply counts (LLaMA-Mesh: the mesh with the most faces,
    :func:`meshlm.lenient.reply_mesh` -- the one the engine returns and the evaluation scores;
    parts: the parts joined into one mesh). ``cut_off[i]`` tells the decoder that text ``i``
    stopped at the token limit (see :func:`meshlm.lenient.decode_lenient`). The counts are
    :func:`report_counts` of those meshes' reports.

    Returns a dict; every rate has all texts as denominator:

    ``n`` number of texts; ``parse_rate`` fraction with a mesh; ``no_mesh`` count without one;
    ``clean_rate`` fraction whose mesh needed no repair or drop and was not cut off;
    ``truncated_rate`` fraction whose mesh was cut off mid-line; ``repairs`` / ``drops``
    ``{reason: total count}`` summed over texts (reasons as the decoder names them);
    ``texts_with_repairs`` / ``texts_with_drops`` counts of texts with at least one.
    Raises ``ValueError`` when ``texts`` is empty or ``cut_off`` has another length.
    """
    texts = _texts(texts)
    flags = [False] * len(texts) if cut_off is None else [bool(c) for c in cut_off]
    if len(flags) != len(texts):
        raise ValueError(f"cut_off has {len(flags)} flags for {len(texts)} texts")
    reports: list[RepairReport | None] = []
    for text, flag in zip(texts, flags, strict=True):
        try:
            reports.append(meshtext.read_reply(text, fmt, bins, cut_off=flag).report)
        except NoMeshFoundError:
            reports.append(None)
    return report_counts(reports)


def report_counts(reports: Sequence[RepairReport | None]) -> dict[str, Any]:
    """:func:`repair_counts`' dict from the repair reports of the meshes already read, one per
    reply (``None``: the reply held no mesh), so that an evaluation counts the repairs of the very
    meshes it scores. Raises ``ValueError`` when ``reports`` is empty."""
    if not reports:
        raise ValueError("no reports to count")
    repairs: Counter = Counter()
    drops: Counter = Counter()
    parsed = clean = truncated = with_repairs = with_drops = 0
    for report in reports:
        if report is None:
            continue
        parsed += 1
        clean += report.clean
        truncated += report.truncated
        with_repairs += bool(report.repairs)
        with_drops += bool(report.drops)
        repairs.update(report.repairs)
        drops.update(report.drops)
    n = len(reports)
    return {
        "n": n,
        "parse_rate": parsed / n,
        "no_mesh": n - parsed,
        "clean_rate": clean / n,
        "truncated_rate": truncated / n,
        "texts_with_repairs": with_repairs,
        "texts_with_drops": with_drops,
        "repairs": dict(sorted(repairs.items())),
        "drops": dict(sorted(drops.items())),
    }
