"""The plan line (meshlm/plan.py): its wording, reading it back, the data builder writing it
(`build-data --plan`) and evaluation scoring it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meshlm.data import BuildConfig, BuildError, build_dataset
from meshlm.data.conversations import mesh_text
from meshlm.eval.runner import _plan_fields, _plan_metrics
from meshlm.parts import encode_parts
from meshlm.plan import Plan, count_parts, parse_plan, plan_line
from meshlm.shapes import family_of_uid, list_families


def test_plan_line_reads_back_for_every_family():
    for fam in list_families():
        for n in (1, 2, 11):
            line = plan_line(fam, n)
            assert parse_plan(f"Here is one:\n{line}") == Plan(fam, n)
    assert plan_line("wine_glass", 1) == "Plan: wine glass, 1 part."
    assert plan_line("table", 5) == "Plan: table, 5 parts."
    with pytest.raises(ValueError, match="at least one part"):
        plan_line("table", 0)
    with pytest.raises(ValueError, match="not a family name"):
        plan_line("Table 2", 3)


def test_parse_plan_reads_the_lead_in_only():
    mesh = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1"
    assert parse_plan(mesh) is None
    assert parse_plan("Sure! Here is a chair:\n\n" + mesh) is None
    two = "Plan: box, 1 part.\nPlan: chair, 11 parts.\n\n"
    assert parse_plan(two + mesh) == Plan("chair", 11)  # the last one before the mesh
    assert parse_plan("Plan: chair, 11 parts.\n\n" + mesh + "\nPlan: box, 1 part.").parts == 11
    assert parse_plan("Plan: chair, 11 parts") is None  # the line is exact: final period
    assert parse_plan("Plan: chair, eleven parts.") is None
    assert parse_plan("Plan: chair, 0 parts.") is None  # a plan has at least one part


def _boxes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` unit cubes 2 apart on x: k connected parts."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    tri = np.array(
        [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    )  # fmt: skip
    verts = np.concatenate([corners + [3.0 * i, 0, 0] for i in range(k)])
    faces = np.concatenate([tri + 8 * i for i in range(k)])
    return verts, faces


@pytest.mark.parametrize("k", [1, 2, 5])
def test_count_parts_counts_the_parts_of_parts_text(k):
    text = encode_parts(*_boxes(k))
    assert count_parts(text) == k
    assert text.count("\nf ") == 12 * k


def test_build_data_plan_states_family_and_parts_and_changes_nothing_else(tmp_path):
    common = dict(
        workers=1,
        progress=False,
        procedural=40,
        multi_turn=0.3,
        mix=(1, 1, 0),
        rotations=(0, 90),
        families=["table", "stool", "box"],
        format="parts",
        max_segments=6,
    )
    build_dataset(BuildConfig(out=str(tmp_path / "plain"), **common))
    build_dataset(BuildConfig(out=str(tmp_path / "plan"), plan=True, **common))

    def rows(name):
        return [
            json.loads(x)
            for s in ("train", "validation", "test")
            for x in (tmp_path / name / f"{s}.jsonl").read_text().splitlines()
        ]

    plain, plan = rows("plain"), rows("plan")
    assert len(plain) == len(plan) > 40
    answers = 0
    for a, b in zip(plain, plan, strict=True):
        assert a["source"] == b["source"] and a["task"] == b["task"]
        for ma, mb in zip(a["messages"], b["messages"], strict=True):
            mesh = mesh_text(mb["content"]) if mb["role"] == "assistant" else None
            if mesh is None:  # requests, captions, counts: word for word the same
                assert ma == mb
                continue
            answers += 1
            fam = family_of_uid(b["source"].removeprefix("procedural:"))
            want = plan_line(fam, count_parts(mesh))
            lead = mb["content"][: mb["content"].index(mesh)]
            assert parse_plan(lead) == Plan(fam, count_parts(mesh))
            assert lead.endswith(want + "\n\n")
            # without --plan the same answer, less the plan line
            if lead == want + "\n\n":  # the empty lead-in: the plan line alone
                assert ma["content"] == mesh
            else:
                assert ma["content"] == mb["content"].replace("\n" + want, "", 1)
    assert answers >= 30
    with pytest.raises(BuildError, match="--plan needs --format parts"):
        BuildConfig(out=str(tmp_path / "bad"), plan=True, procedural=4).validate()


def test_eval_scores_the_plan():
    mesh = encode_parts(*_boxes(2))
    text = "Here is a stool:\nPlan: stool, 3 parts.\n\n" + mesh
    fields = _plan_fields(text, text.index("v "), "parts")
    assert fields == {"plan_family": "stool", "plan_parts": 3, "parts": 2}
    assert _plan_fields(mesh, 0, "parts") == {}
    rows = [
        {**fields, "family": "stool", "family_ok": True},  # count not kept
        {"plan_family": "box", "plan_parts": 1, "parts": 1, "family": "stool", "family_ok": False},
        {"family": "table", "family_ok": False},  # no plan stated
        {**fields, "plan_parts": 2, "family": "stool", "family_ok": False},  # count kept
    ]
    m = _plan_metrics(rows)
    assert m == {
        "rate": 0.75,
        "family_named_rate": 2 / 3,
        "family_ok_when_named": 0.5,
        "parts_kept_rate": 2 / 3,
    }
