"""Two models' results on the same inputs, compared input by input (exact McNemar test).

Totals hide what changed: 32/64 against 18/64 may be 17 gained and 3 lost, or 20 gained and 6
lost. On paired yes/no judgements the test that fits is McNemar's (McNemar 1947,
Psychometrika 12:153); with the few dozen inputs of a held-out set, its *exact* form: under the
null hypothesis each discordant input (yes for one model, no for the other) is a fair coin, so
the two-sided p-value is ``min(1, 2 * P[Binomial(b + c, 1/2) <= min(b, c)])`` (Fagerland,
Lydersen and Laake 2013, BMC Med. Res. Methodol. 13:91, the "exact conditional" test).

A row of ``samples.jsonl`` (``meshlm eval generate`` and ``understand``) or ``attributes.jsonl``
(``meshlm eval attributes``) carries its judgements as booleans: top-level ``strict``,
``family_ok``, ``cut_off``, ...; and lists of items with an ``ok`` (the count and proportion
judgements of an attribute prompt), each item one judgement named by its ``attribute``.
Rows of the two runs are paired by their input (``prompt``, else ``caption``; the k-th row with
a given input to the k-th), so the files may list the inputs in any order.

Pure functions on parsed rows; reading the files is the caller's (``meshlm eval compare``).
"""

from __future__ import annotations

from math import comb

from meshlm.errors import MeshlmError

Row = tuple[int, dict]  # (1-based line number in its file, the parsed row)

#: Booleans that describe a row's input, not the model's output (``eval understand --train``):
#: not judgements, so never compared.
INPUT_FLAGS = frozenset({"seen_in_training"})


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    Parameters
    ----------
    only_a, only_b : int
        Inputs judged yes for the first run only, and for the second only (>= 0).

    Returns
    -------
    float
        ``min(1, 2 * sum_{k <= min(b, c)} C(b + c, k) / 2**(b + c))``; 1.0 when there is no
        discordant input.

    Raises
    ------
    ValueError
        A negative count.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)


def _input_of(row: dict, source: str, line: int) -> str:
    for key in ("prompt", "caption"):
        if isinstance(row.get(key), str):
            return row[key]
    raise MeshlmError(f"{source}:{line}: the row has no prompt or caption to pair it by")


def judgements(row: dict) -> dict[tuple[str, str], bool]:
    """The row's yes/no judgements: ``(measure, unit) -> bool``.

    A top-level boolean ``k`` is measure ``k``, unit ``""``. A list of dicts with a boolean
    ``ok`` is one judgement an item: measure = the list's name, unit = the item's
    ``attribute`` (else its position). Other fields, and :data:`INPUT_FLAGS`, are ignored.
    """
    out: dict[tuple[str, str], bool] = {}
    for key, value in row.items():
        if key in INPUT_FLAGS:
            continue
        if isinstance(value, bool):
            out[(key, "")] = value
        elif isinstance(value, list):
            for pos, item in enumerate(value):
                if isinstance(item, dict) and isinstance(item.get("ok"), bool):
                    out[(key, str(item.get("attribute", pos)))] = item["ok"]
    return out


def pair_rows(a: list[Row], b: list[Row], source_a: str, source_b: str) -> list[tuple[dict, dict]]:
    """Rows of run A and run B on the same input, in A's order.

    Raises
    ------
    MeshlmError
        A row with neither ``prompt`` nor ``caption``, or an input one run has and the other
        has not (or has fewer times): names the file and line.
    """
    pending: dict[str, list[Row]] = {}
    for line, row in b:
        pending.setdefault(_input_of(row, source_b, line), []).append((line, row))
    pairs = []
    for line, row in a:
        key = _input_of(row, source_a, line)
        if not pending.get(key):
            raise MeshlmError(f"{source_a}:{line}: input not in {source_b}: {key[:60]!r}")
        pairs.append((row, pending[key].pop(0)[1]))
    for rows in pending.values():
        if rows:
            line, row = rows[0]
            raise MeshlmError(
                f"{source_b}:{line}: input not in {source_a}: "
                f"{_input_of(row, source_b, line)[:60]!r}"
            )
    return pairs


def compare(pairs: list[tuple[dict, dict]], measures: list[str] | None = None) -> list[dict]:
    """Per measure: judgements both runs made, each run's yes count, the discordant counts and
    the exact McNemar p-value.

    Parameters
    ----------
    pairs
        From :func:`pair_rows`.
    measures
        Measure names to report, in this order; ``None``: every measure either run judged,
        sorted, leaving out those whose every judgement is the same in both runs (a constant
        such as ``constrained``).

    Returns
    -------
    list of dict
        ``measure``, ``n`` (judgements paired), ``a``, ``b`` (yes counts), ``only_a``,
        ``only_b``, ``p``, ``unpaired`` (judgements one run made and the other did not, e.g.
        a count judged on one mesh only).

    Raises
    ------
    MeshlmError
        A named measure neither run judged.
    """
    table: dict[str, list[tuple[bool, bool]]] = {}
    unpaired: dict[str, int] = {}
    for ra, rb in pairs:
        ja, jb = judgements(ra), judgements(rb)
        for unit in ja.keys() | jb.keys():
            measure = unit[0]
            if unit in ja and unit in jb:
                table.setdefault(measure, []).append((ja[unit], jb[unit]))
            else:
                table.setdefault(measure, [])
                unpaired[measure] = unpaired.get(measure, 0) + 1
    if measures is None:
        measures = sorted(
            m
            for m, v in table.items()
            if len({x for pair in v for x in pair}) > 1 or unpaired.get(m)
        )
    else:
        missing = [m for m in measures if m not in table]
        if missing:
            known = ", ".join(sorted(table)) or "none"
            raise MeshlmError(f"no judgement named {missing[0]!r} in either run (known: {known})")
    out = []
    for m in measures:
        v = table[m]
        only_a = sum(1 for x, y in v if x and not y)
        only_b = sum(1 for x, y in v if y and not x)
        out.append(
            {
                "measure": m,
                "n": len(v),
                "a": sum(1 for x, _ in v if x),
                "b": sum(1 for _, y in v if y),
                "only_a": only_a,
                "only_b": only_b,
                "p": mcnemar_exact(only_a, only_b),
                "unpaired": unpaired.get(m, 0),
            }
        )
    return out
