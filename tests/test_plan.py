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
from meshlm.plan import (
    Plan,
    box_line,
    box_number_spans,
    count_parts,
    parse_plan,
    part_boxes,
    plan_line,
    plan_text,
    with_parts,
)
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


def test_with_parts_keeps_the_lead_in_and_replaces_the_last_plan_s_count():
    """What a reply goes on from under ``--exemplar-parts`` (meshlm/infer/engine.py)."""
    lead = "Here is a 3D model of a three-legged table:\nPlan: table, 5 parts.\n\n"
    assert (
        with_parts(lead, 4)
        == "Here is a 3D model of a three-legged table:\nPlan: table, 4 parts.\n"
    )
    assert with_parts("Plan: wine glass, 3 parts.", 1) == "Plan: wine glass, 1 part.\n"
    two = "Plan: box, 1 part.\nok\nPlan: chair, 11 parts.\nPart 1: 0 0 0 to 1 1 1.\n"
    assert with_parts(two, 9) == "Plan: box, 1 part.\nok\nPlan: chair, 9 parts.\n"
    assert parse_plan(with_parts(lead, 4)) == Plan("table", 4)
    assert with_parts("Here is a table:\n", 3) is None
    assert with_parts("Plan: chair, 11 parts", 3) is None  # not a whole plan line
    with pytest.raises(ValueError, match="at least one part"):
        with_parts(lead, 0)


def test_part_lines_say_each_parts_box_and_read_back():
    text = encode_parts(*_boxes(3))
    boxes = part_boxes(text)
    # three unit cubes 3 apart on x, the longest axis on the grid: one size, left to right
    assert len(boxes) == 3 and len({(b[3] - b[0], b[4] - b[1], b[5] - b[2]) for b in boxes}) == 1
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes) and boxes[0][0] == 0
    assert boxes[-1][3] == 63 and len({(b[1], b[2], b[4], b[5]) for b in boxes}) == 1
    plan = plan_text("bench", text, boxes=True)
    assert plan.split("\n") == ["Plan: bench, 3 parts."] + [
        box_line(k, b) for k, b in enumerate(boxes, 1)
    ]
    assert box_line(2, (4, 0, 4, 8, 30, 8)) == "Part 2: 4 0 4 to 8 30 8."
    assert plan_text("bench", text) == "Plan: bench, 3 parts."
    assert parse_plan(f"Sure.\n{plan}\n\n{text}") == Plan("bench", 3, tuple(boxes))
    # six numbers a part line, where they are
    spans = box_number_spans(plan)
    assert len(spans) == 18 and [int(plan[a:b]) for a, b in spans] == [x for b in boxes for x in b]
    # part lines are read while numbered in order, well-formed, up to the plan's count
    lines = plan.split("\n")
    assert parse_plan("\n".join([lines[0], lines[2], lines[1]])).boxes == ()
    assert parse_plan("\n".join(lines[:2])).boxes == (boxes[0],)
    bad = "Plan: bench, 2 parts.\nPart 1: 5 0 0 to 4 9 9.\nPart 2: 0 0 0 to 1 1 1."
    assert parse_plan(bad).boxes == ()  # a maximum below its minimum
    extra = "Plan: bench, 1 part.\nPart 1: 0 0 0 to 1 1 1.\nPart 2: 0 0 0 to 2 2 2."
    assert parse_plan(extra).boxes == ((0, 0, 0, 1, 1, 1),)
    # a part whose vertex line is unreadable still counts as a part; it has no box
    broken = "v 1 2\nf -1 -2 -3\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1"
    assert count_parts(broken) == 2
    with pytest.raises(ValueError, match="part 1 has no vertex line"):
        part_boxes(broken)


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
    # --plan-boxes: the same answers with each part's line after the plan line
    build_dataset(BuildConfig(out=str(tmp_path / "boxes"), plan=True, plan_boxes=True, **common))
    boxed = 0
    for a, b in zip(plan, rows("boxes"), strict=True):
        for ma, mb in zip(a["messages"], b["messages"], strict=True):
            mesh = mesh_text(mb["content"]) if mb["role"] == "assistant" else None
            if mesh is None:
                assert ma == mb
                continue
            boxed += 1
            lines = "\n".join(box_line(k, x) for k, x in enumerate(part_boxes(mesh), 1))
            want = plan_line(parse_plan(ma["content"]).family, count_parts(mesh))
            assert mb["content"] == ma["content"].replace(want, f"{want}\n{lines}", 1)
            assert parse_plan(mb["content"]).boxes == tuple(part_boxes(mesh))
    assert boxed == answers
    with pytest.raises(BuildError, match="--plan-boxes needs --plan"):
        BuildConfig(out=str(tmp_path / "bad"), plan_boxes=True, format="parts").validate()


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
    # with part lines: how many the reply gave and how many of its parts have their box
    boxes = part_boxes(mesh)
    other = (0, 0, 0, 9, 9, 9)
    for lines, kept in (((boxes[0], boxes[1]), 2), ((boxes[0], other), 1), ((boxes[0],), 1)):
        parts = "\n".join(box_line(k, b) for k, b in enumerate(lines, 1))
        text = f"Plan: stool, 2 parts.\n{parts}\n\n{mesh}"
        got = _plan_fields(text, text.index("v "), "parts")
        assert got == {
            "plan_family": "stool",
            "plan_parts": 2,
            "parts": 2,
            "plan_boxes": len(lines),
            "boxes_kept": kept,
        }
    rows = [
        {**fields, "plan_boxes": 2, "boxes_kept": 1},
        {**fields, "plan_boxes": 1, "boxes_kept": 1},
        fields,  # no part lines
        {"family": "table"},  # no plan
    ]
    m = _plan_metrics(rows)
    assert m["boxes_rate"] == 0.5 and m["boxes_kept_rate"] == 2 / 3
