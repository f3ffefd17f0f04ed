"""Attribute judges (meshlm/eval/attributes.py) on procedural shapes with known parameters, the
attribute report, and `meshlm eval attributes` end to end on the bundled model."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("trimesh")

from meshlm.cli import main  # noqa: E402
from meshlm.codec import canonicalize  # noqa: E402
from meshlm.errors import MeshlmError  # noqa: E402
from meshlm.eval import attributes as att  # noqa: E402
from meshlm.eval.attributes_eval import judge_row, summarize  # noqa: E402
from meshlm.shapes import make_shape  # noqa: E402

# every value each generator draws for each count its captions carry (meshlm/shapes/*.py)
SUPPORTED = {
    ("table", "legs"): {1, 3, 4},
    ("stool", "legs"): {3, 4},
    ("chair", "legs"): {4},
    ("bench", "legs"): {0, 4},  # on four legs or on two side panels
    ("stairs", "steps"): {3, 4, 5, 6, 7, 8},
    ("shelf", "shelves"): {3, 4, 5, 6},
    ("snowman", "snowballs"): {2, 3},
    ("rocket", "fins"): {3, 4},
    ("car", "wheels"): {4},
    ("house", "windows"): {1, 2, 4},
}


def known_count(sample, attribute: str) -> int:
    """The count a procedural sample was built with (its parameters)."""
    p = sample.params
    if (sample.family, attribute) == ("chair", "legs") or sample.family == "car":
        return 4  # always four: the captions say so
    if sample.family == "bench":
        return 4 if p["support"] == "legs" else 0
    return p[att.PARAM_OF.get(attribute, attribute)]


@pytest.mark.parametrize("max_segments", [None, 6], ids=["full", "seg6"])
@pytest.mark.parametrize("family,attribute", sorted(SUPPORTED), ids="/".join)
def test_count_judge_recovers_every_supported_value(family, attribute, max_segments):
    judge = att.count_judge(family, attribute)
    seen: dict[int, int] = {}
    for seed in range(300):  # until every value was judged twice
        s = make_shape(family, seed, max_segments=max_segments)
        want = known_count(s, attribute)
        if seen.get(want, 0) >= 2:
            continue
        assert judge(canonicalize(s.vertices, s.faces)) == want, (seed, s.params)
        seen[want] = seen.get(want, 0) + 1
        if set(seen) == SUPPORTED[(family, attribute)] and min(seen.values()) >= 2:
            break
    assert set(seen) == SUPPORTED[(family, attribute)]
    assert min(seen.values()) == 2


def test_count_judges_name_their_families():
    assert att.count_judge("table", "legs") is att.count_legs
    assert att.count_judge("snowman", "balls") is att.count_snowballs  # an alias
    assert att.count_judge("tower", "windows") is None  # towers have no windows to judge
    assert att.count_judge("tower", "floors") is None


def _scaled(family: str, seed: int, factors) -> object:
    s = make_shape(family, seed)
    return canonicalize(s.vertices * np.asarray(factors, dtype=float), s.faces)


def _median_seed(family: str, ratio: str) -> int:
    """A reference seed whose shape sits nearest the family's median of ``ratio``."""
    med = att.reference_medians(family)[ratio]
    seeds = range(att.REFERENCE_SEED, att.REFERENCE_SEED + 16)

    def gap(seed):
        s = make_shape(family, seed)
        return abs(att.extent_ratios(canonicalize(s.vertices, s.faces))[ratio] - med)

    return min(seeds, key=gap)


@pytest.mark.parametrize("family", ["table", "box", "cylinder", "tower", "bench", "mug"])
def test_proportion_judge_on_shapes_made_tall_and_low(family):
    seed = _median_seed(family, "height")
    tall, low = _scaled(family, seed, (1, 2, 1)), _scaled(family, seed, (1, 0.5, 1))
    assert att.judge_proportion(tall, family, "tall")["ok"]
    assert not att.judge_proportion(tall, family, "low")["ok"]
    assert att.judge_proportion(low, family, "low")["ok"]
    assert not att.judge_proportion(low, family, "tall")["ok"]
    short = "short" if family not in att.SHORT_LENGTH else "low"
    assert att.judge_proportion(low, family, short)["ok"]
    items = [
        {"i": 0, "family": family, "word": "tall", "ratios": att.extent_ratios(tall)},
        {"i": 1, "family": family, "word": "low", "ratios": att.extent_ratios(low)},
        {"i": 2, "family": family, "word": "low", "ratios": None},  # no mesh: a wrong pair
    ]
    pairs = att.pairwise(items)
    assert (pairs["pairs"], pairs["correct"]) == (2, 1)
    assert [(r["a"], r["b"], r["ok"]) for r in pairs["rows"]] == [(0, 1, True), (0, 2, False)]


@pytest.mark.parametrize("family", ["table", "box", "cylinder", "tower", "bench", "mug"])
def test_proportion_judge_on_shapes_made_wide_narrow_and_long(family):
    wide = _scaled(family, _median_seed(family, "breadth"), (2, 1, 2))
    assert att.judge_proportion(wide, family, "wide")["ok"]
    s = make_shape(family, _median_seed(family, "slimness"))
    x, _, z = np.ptp(s.vertices, axis=0)
    narrow = _scaled(
        family,
        _median_seed(family, "slimness"),
        (0.5, 1, 0.5) if x == z else ((0.5, 1, 1) if x < z else (1, 1, 0.5)),
    )
    assert att.judge_proportion(narrow, family, "narrow")["ok"]
    s = make_shape(family, _median_seed(family, "length"))
    x, _, z = np.ptp(s.vertices, axis=0)
    long = _scaled(family, _median_seed(family, "length"), (2, 1, 1) if x >= z else (1, 1, 2))
    assert att.judge_proportion(long, family, "long")["ok"]
    if family in att.SHORT_LENGTH:  # a short bench is short in length
        short = _scaled(
            family, _median_seed(family, "length"), (0.5, 1, 1) if x >= z else (1, 1, 0.5)
        )
        assert att.judge_proportion(short, family, "short")["ok"]


def test_proportion_judge_on_generator_parameters():
    """Shapes the generator drew tall or flat, by their own parameters, judged so."""
    for seed in range(40):
        s = make_shape("box", seed)
        m = canonicalize(s.vertices, s.faces)
        if s.params["kind"] == "tall":
            assert att.judge_proportion(m, "box", "tall")["ok"], seed
        if s.params["kind"] == "flat":
            assert att.judge_proportion(m, "box", "low")["ok"], seed
        s = make_shape("cylinder", seed)
        m = canonicalize(s.vertices, s.faces)
        h, d = s.params["height"], 2 * s.params["radius"]
        if h > 1.6 * d:
            assert att.judge_proportion(m, "cylinder", "tall")["ok"], seed
            assert not att.judge_proportion(m, "cylinder", "wide")["ok"], seed
        if h < 0.5 * d:
            assert att.judge_proportion(m, "cylinder", "short")["ok"], seed
            assert att.judge_proportion(m, "cylinder", "wide")["ok"], seed


def test_judge_row_and_summary_count_what_was_judged():
    three = next(s for s in (make_shape("table", k) for k in range(200)) if s.params["legs"] == 3)
    mesh = canonicalize(three.vertices, three.faces)
    rows = []
    for i, (item, m) in enumerate(
        [
            ({"family": "table", "attributes": {"legs": 3}}, mesh),
            ({"family": "table", "attributes": {"legs": 4, "proportion": "tall"}}, mesh),
            ({"family": "tower", "attributes": {"windows": 4}}, mesh),  # no judge
            ({"family": "table", "attributes": {"legs": 3, "proportion": ["low"]}}, None),
        ]
    ):
        counts, props = judge_row(item, m)
        ratios = att.extent_ratios(m) if m is not None else None
        rows.append(
            {
                "i": i,
                "family": item["family"],
                "counts": counts,
                "proportions": props,
                "ratios": ratios,
                "mesh": "x.obj" if m is not None else None,
            }
        )
    assert [c["judged"] for r in rows for c in r["counts"]] == [3, 3, None, None]
    assert [c["ok"] for r in rows for c in r["counts"]] == [True, False, None, False]
    rep = summarize(rows)
    assert rep["prompts"] == 4 and rep["mesh_rate"] == 0.75
    c = rep["counts"]
    assert (c["judged"], c["correct"], c["unjudged"]) == (3, 1, 1)
    assert c["by_family_attribute"]["table/legs"]["judged"] == 3
    assert c["by_family_attribute"]["tower/windows"] == {
        "judged": 0,
        "correct": 0,
        "accuracy": None,
        "unjudged": 1,
    }
    p = rep["proportions"]
    assert p["judged"] == 2 and p["by_word"]["low"]["correct"] == 0  # no mesh is wrong
    assert p["pairwise"]["pairs"] == 1 and p["pairwise"]["correct"] == 0
    with pytest.raises(MeshlmError, match="must be an integer"):
        judge_row({"family": "table", "attributes": {"legs": "three"}}, mesh)


def test_eval_attributes_on_the_bundled_model(tmp_path):
    pytest.importorskip("transformers")
    from meshlm.files import load_mesh
    from meshlm.modelfolder import BUNDLED_MODEL

    if not BUNDLED_MODEL.exists():
        pytest.skip("no bundled model")
    out = tmp_path / "attr"
    assert main(["eval", "attributes", "--out", str(out), "--limit", "3"]) == 0
    report = json.loads((out / "attributes.json").read_text())
    rows = [json.loads(x) for x in (out / "attributes.jsonl").read_text().splitlines()]
    assert report["prompts"] == 3 and len(rows) == 3
    # the first three held-out prompts ask for tables with 3, 4 and 5 legs
    assert [r["counts"][0]["expected"] for r in rows] == [3, 4, 5]
    legs = report["counts"]["by_family_attribute"]["table/legs"]
    assert legs["judged"] + legs["unjudged"] == 3
    assert report["counts"]["judged"] == sum(r["counts"][0]["ok"] is not None for r in rows)
    assert report["counts"]["correct"] == sum(r["counts"][0]["ok"] is True for r in rows)
    assert report["proportions"]["judged"] == 0
    assert report["sampling"]["temperature"] == 0.0 and report["sampling"]["constrain"] is False
    for r in rows:  # each verdict is the judge's count of the mesh written
        if r.get("mesh"):
            tm = load_mesh(out / r["mesh"])
            judged = att.count_legs(canonicalize(tm.vertices, tm.faces))
            assert r["counts"][0]["judged"] == judged
            assert r["counts"][0]["ok"] == (judged == r["counts"][0]["expected"])
    assert (out / "attributes.png").stat().st_size > 0
    assert (out / "samples.jsonl").is_file() and (out / "metrics.json").is_file()
