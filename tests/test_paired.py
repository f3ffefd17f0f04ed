"""meshlm.eval.paired and `meshlm eval compare`: exact McNemar on two runs, input by input.

The CLI is checked on the per-request results kept in docs/results/ (real runs of t and n),
against the figures docs/parts-model.md reports for them ("Short of faces").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import meshlm_cli

from meshlm.errors import MeshlmError
from meshlm.eval.paired import compare, judgements, mcnemar_exact, pair_rows

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),
        (0, 9, 2 / 2**9),
        (9, 0, 2 / 2**9),
        (3, 17, 2 * (1 + 20 + 190 + 1140) / 2**20),
        (7, 6, 1.0),  # the tail past the middle is over 1/2: capped
        (1, 1, 1.0),
    ],
)
def test_mcnemar_exact_is_the_two_sided_binomial_tail(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_exact_is_symmetric_and_falls_as_the_split_grows_lopsided():
    for n in range(1, 15):
        ps = [mcnemar_exact(k, n - k) for k in range(n + 1)]
        assert ps == ps[::-1]
        assert all(x <= y for x, y in zip(ps, ps[1 : n // 2 + 1], strict=False))
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_judgements_reads_top_level_booleans_and_ok_items():
    row = {
        "prompt": "x",
        "strict": True,
        "vertices": 8,
        "counts": [{"attribute": "legs", "ok": False}, {"attribute": "steps", "ok": True}],
        "proportions": [{"ok": True}],
        "error": None,
        "seen_in_training": True,  # describes the input (eval understand --train): no judgement
    }
    assert judgements(row) == {
        ("strict", ""): True,
        ("counts", "legs"): False,
        ("counts", "steps"): True,
        ("proportions", "0"): True,
    }


def _rows(*rows):
    return list(enumerate(rows, start=1))


def test_rows_pair_by_input_in_any_order_and_repeats_pair_in_turn():
    a = _rows(
        {"prompt": "p", "strict": True, "family_ok": True},
        {"prompt": "q", "strict": False, "family_ok": True},
        {"prompt": "p", "strict": False, "family_ok": False},
    )
    b = _rows(
        {"prompt": "q", "strict": True, "family_ok": True},
        {"prompt": "p", "strict": True, "family_ok": False},
        {"prompt": "p", "strict": True, "family_ok": True},
    )
    pairs = pair_rows(a, b, "A", "B")
    assert [(x["prompt"], y["prompt"]) for x, y in pairs] == [("p", "p"), ("q", "q"), ("p", "p")]
    assert pairs[0][1] is b[1][1] and pairs[2][1] is b[2][1]
    table = {r["measure"]: r for r in compare(pairs)}
    assert table["strict"] == {
        "measure": "strict",
        "n": 3,
        "a": 1,
        "b": 3,
        "only_a": 0,
        "only_b": 2,
        "p": 0.5,
        "unpaired": 0,
    }
    assert (table["family_ok"]["only_a"], table["family_ok"]["only_b"]) == (1, 1)


def test_a_constant_measure_is_left_out_unless_asked_for():
    pairs = [({"prompt": "p", "constrained": True}, {"prompt": "p", "constrained": True})]
    assert compare(pairs) == []
    assert compare(pairs, ["constrained"])[0]["a"] == 1
    with pytest.raises(MeshlmError, match="no judgement named 'strict'.*known: constrained"):
        compare(pairs, ["strict"])


def test_a_judgement_one_run_lacks_is_counted_unpaired():
    pairs = [
        (
            {"prompt": "p", "counts": [{"attribute": "legs", "ok": True}]},
            {"prompt": "p", "counts": []},
        )
    ]
    assert compare(pairs) == [
        {
            "measure": "counts",
            "n": 0,
            "a": 0,
            "b": 0,
            "only_a": 0,
            "only_b": 0,
            "p": 1.0,
            "unpaired": 1,
        }
    ]


def test_an_input_missing_from_either_run_names_its_file_and_line():
    a = _rows({"prompt": "p"}, {"prompt": "q"})
    with pytest.raises(MeshlmError, match=r"^A:2: input not in B: 'q'$"):
        pair_rows(a, _rows({"prompt": "p"}), "A", "B")
    with pytest.raises(MeshlmError, match=r"^B:3: input not in A: 'r'$"):
        pair_rows(a, _rows({"prompt": "q"}, {"prompt": "p"}, {"prompt": "r"}), "A", "B")
    with pytest.raises(MeshlmError, match=r"^A:1: the row has no prompt or caption"):
        pair_rows(_rows({"i": 0}), a, "A", "B")


def test_compare_cli_reproduces_the_reported_t_against_n_figures(tmp_path):
    """docs/parts-model.md, "Short of faces": strict 18 -> 32 of 64 (17 vs 3, p = 0.003), family
    34 -> 43 (9 vs 0, p = 0.004); counts 24 -> 21 of 50 (8 vs 11, p = 0.65); reading 31 -> 29
    of 48 (8 vs 10, p = 0.81)."""
    t, n = RESULTS / "smol-parts16t", RESULTS / "smol-parts16n"
    expected = {
        "free64-samples.jsonl": {"strict": (18, 32, 3, 17), "family_ok": (34, 43, 0, 9)},
        "attr-rows.jsonl": {"counts": (24, 21, 11, 8), "proportions": (16, 16, 0, 0)},
        "und-samples.jsonl": {"family_ok": (31, 29, 10, 8)},
    }
    for name, want in expected.items():
        out = tmp_path / f"{name}.json"
        args = [f"--measure={m}" for m in want]
        proc = meshlm_cli("eval", "compare", t / name, n / name, *args, "-o", out)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        doc = json.loads(out.read_text(encoding="utf-8"))
        got = {r["measure"]: (r["a"], r["b"], r["only_a"], r["only_b"]) for r in doc["measures"]}
        assert got == want
        assert [r["measure"] for r in doc["measures"]] == list(want)
    p = {
        r["measure"]: r["p"]
        for r in json.loads((tmp_path / "free64-samples.jsonl.json").read_text())["measures"]
    }
    assert round(p["strict"], 3) == 0.003 and round(p["family_ok"], 3) == 0.004


def test_compare_cli_gives_one_error_line_for_unpaired_files():
    t = RESULTS / "smol-parts16t"
    a, b = t / "free64-samples.jsonl", t / "und-samples.jsonl"
    proc = meshlm_cli("eval", "compare", a, b)
    assert proc.returncode == 1 and proc.stdout == ""
    prompt = "crate, wooden, the breakable kind from platformer games"
    assert proc.stderr == f"meshlm: error: {a}:1: input not in {b}: {prompt!r}\n"
