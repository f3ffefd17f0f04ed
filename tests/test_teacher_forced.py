"""Teacher-forced accuracy by kind of parts-format token (meshlm/eval/teacher_forced.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from meshlm import modelfolder
from meshlm.errors import MeshlmError
from meshlm.eval.mesh_kinds import mesh_token_kinds, repeat_completions, shown_kinds
from meshlm.eval.teacher_forced import FIRST, REPEAT, accuracy, first_value_report, score
from meshlm.exemplars import Exemplar, shown_mesh, with_exemplar

REPLY = (
    "Here:\nv 0 0 0\nv 0 5 0\nv 3 5 0\nf -3 -2 -1\n"
    "v 9 9 9\nv 9 1 9\nv 2 1 9\nf -1 -2 -3\nf -3 -2 -1"
)


def test_kinds_of_every_mesh_token():
    kinds = mesh_token_kinds(REPLY)
    got = [(REPLY[o : o + 3], k) for o, k in sorted(kinds.items())]
    new, copy, idx = "coord new", "coord copy", "face index"
    assert got == [
        (" 0 ", new), (" 0 ", new), (" 0\n", new),
        (" 0 ", copy), (" 5 ", new), (" 0\n", copy),
        (" 3 ", new), (" 5 ", copy), (" 0\n", copy),
        ("f -", "face line"), (" -3", idx), (" -2", idx), (" -1", idx),
        ("\nv ", "part end: more"),  # the decision to go on: a newline, then the next part
        ("v 9", "part start"),  # a new part: its values are new again
        (" 9 ", new), (" 9 ", new), (" 9\n", new),
        (" 9 ", copy), (" 1 ", new), (" 9\n", copy),
        (" 2 ", new), (" 1 ", copy), (" 9\n", copy),
        ("f -", "face line"), (" -1", idx), (" -2", idx), (" -3", idx),
        ("\nf ", "face end: more"),  # the part goes on: a newline, then its next face line
        ("f -", "face line"), (" -3", idx), (" -2", idx), (" -1", idx),
        ("", "part end: stop"),  # the text ends with the last face line
    ]  # fmt: skip
    earlier: dict[int, frozenset[str]] = {}
    assert mesh_token_kinds(REPLY, earlier=earlier) == kinds
    assert set(earlier) == {o for o, k in kinds.items() if k.startswith("coord")}
    # a turn's end glued to the last face line: the decision is at the special token
    ended = mesh_token_kinds(REPLY + "<|im_end|>\n<|im_start|>user")
    assert ended == kinds  # the "stop" offset is where "<|im_end|>" starts
    third = REPLY.index("v 3 5 0")  # its x: "0" before; its y: "0" and "5" before
    assert earlier[third + 1] == {"0"} and earlier[third + 3] == {"0", "5"}
    assert earlier[REPLY.index("v 9 9 9") + 1] == frozenset()  # a new part starts afresh
    # offsets are relative to the whole text; text before ``start`` is not read
    shifted = mesh_token_kinds("v 7 7 7\n" + REPLY, start=8)
    assert shifted == {o + 8: k for o, k in kinds.items()}


def test_a_line_of_prose_ends_a_mesh_and_a_value_ends_at_its_last_digit():
    text = "v 1 2 3\nv 1 5 3<|im_end|>\nuser\nv 1 2 3\nf 1 2 3"
    kinds = mesh_token_kinds(text)
    coords = [k for o, k in sorted(kinds.items()) if k.startswith("coord")]
    # vertex 2: x and z copy vertex 1 ("3<|im_end|>" is 3); after the prose line, all new
    assert (
        coords == ["coord new"] * 3 + ["coord copy", "coord new", "coord copy"] + ["coord new"] * 3
    )
    assert "part start" not in kinds.values()  # a new mesh, not a new part


def test_accuracy_counts_every_mesh_token_of_a_real_model():
    rows = [
        {
            "messages": [
                {"role": "user", "content": "a box"},
                {"role": "assistant", "content": REPLY},
            ]
        }
    ]
    report = accuracy(modelfolder.BUNDLED_MODEL, rows, threads=1)
    # every coordinate, face line and part start lines up with a token of the bundled tokenizer
    assert {k: r["total"] for k, r in report.items()} == {
        "coord copy": 8,
        "coord new": 10,
        "face line": 3,
        "face index": 9,
        "part start": 1,
        "face end: more": 1,
        "part end: more": 1,
        "part end: stop": 1,
        "first x": 1,
        "first y": 1,
        "first z": 1,
    }
    for r in report.values():
        assert 0 <= r["correct"] <= r["total"] and r["accuracy"] == r["correct"] / r["total"]
    for key in FIRST:  # one row: its own majority, nothing to depend on
        assert report[key]["majority"] == 1.0
        assert report[key]["data dependence"] == 0.0
        assert report[key]["dependence"] == pytest.approx(0.0, abs=1e-9)
    new = report["coord new"]  # a wrong new value is a repeat or another value
    assert 0 <= new["repeats"] <= new["total"] - new["correct"]


# REPLY's mesh with one value of each part moved: y of vertex 2 (5 -> 6), x of vertex 6 (1 -> 7)
SHOWN = "v 0 0 0\nv 0 6 0\nv 3 5 0\nf -3 -2 -1\nv 9 9 9\nv 9 7 9\nv 2 1 9\nf -1 -2 -3\nf -3 -2 -1"


def test_shown_kinds_pairs_the_reply_s_coordinates_with_the_exemplar_s():
    start = REPLY.index("v ")
    kinds = shown_kinds(REPLY + "<|im_end|>\n", start, SHOWN)
    got = [(REPLY[o + 1 : o + 2], k) for o, k in sorted(kinds.items())]
    kept, moved = "coord as shown", "coord moved"
    assert got == [
        ("0", kept), ("0", kept), ("0", kept), ("0", kept), ("5", moved), ("0", kept),
        ("3", kept), ("5", kept), ("0", kept), ("9", kept), ("9", kept), ("9", kept),
        ("9", kept), ("1", moved), ("9", kept), ("2", kept), ("1", kept), ("9", kept),
    ]  # fmt: skip
    assert set(kinds) == {o for o, k in mesh_token_kinds(REPLY).items() if k.startswith("coord")}
    # another layout (a face line fewer, or another face) has nothing to pair with
    assert shown_kinds(REPLY, start, SHOWN.rsplit("\n", 1)[0]) == {}
    assert shown_kinds(REPLY, start, SHOWN.replace("f -1 -2 -3", "f -2 -1 -3")) == {}
    # a turn is read back the way with_exemplar wrote it
    turn = with_exemplar("a box", Exemplar("wine_glass", "r", "s", SHOWN))
    assert shown_mesh(turn) == SHOWN and shown_mesh("a box") is None


def test_accuracy_scores_kept_and_moved_coordinates_beside_an_exemplar():
    turn = with_exemplar("a box", Exemplar("box", "r", "s", SHOWN))
    rows = [
        {"messages": [{"role": "user", "content": turn}, {"role": "assistant", "content": REPLY}]}
    ]
    report = accuracy(modelfolder.BUNDLED_MODEL, rows, threads=1)
    assert report["coord as shown"]["total"] == 16 and report["coord moved"]["total"] == 2
    assert report["coord copy"]["total"] == 8 and report["coord new"]["total"] == 10


# a box's first ring, then two lines that start like earlier ones; a second part; a prose break
RING = (
    "Here:\nv 0 0 0\nv 0 0 4\nv 0 4 0\nv 0 4 4\nv 0 0 7\nf -3 -2 -1\n"
    "v 0 0 9\nv 0 0 8\nf -1 -2 -3\nsome prose\nv 0 0 9\nv 0 0 1"
)


def test_repeat_completions_name_the_values_that_write_a_line_twice():
    got = {RING[o : o + 3]: sorted(v) for o, v in repeat_completions(RING).items()}
    offsets = sorted(repeat_completions(RING))
    assert [RING[o : o + 3] for o in offsets] == [" 4\n", " 4\n", " 7\n", " 8\n", " 1"]
    # "v 0 0 4" and "v 0 4 4" can only repeat one line each; "v 0 0 7" either of two; in the
    # second part "v 0 0 8" only its own part's "v 0 0 9"; after the prose, a mesh afresh
    assert [sorted(repeat_completions(RING)[o]) for o in offsets] == [
        ["0"],
        ["0"],
        ["0", "4"],
        ["9"],
        ["9"],
    ]
    assert got[" 7\n"] == ["0", "4"]
    # the turn's end glued to the last value does not change it; text before start is not read
    assert repeat_completions(RING + "<|im_end|>") == repeat_completions(RING)
    assert repeat_completions("v 0 0 3\n" + RING, start=8) == {
        o + 8: v for o, v in repeat_completions(RING).items()
    }
    assert repeat_completions(REPLY) == {}  # no line there starts like an earlier one


def test_accuracy_counts_the_line_repeats_of_a_real_model():
    rows = [
        {"messages": [{"role": "user", "content": "a box"}, {"role": "assistant", "content": RING}]}
    ]
    report = accuracy(modelfolder.BUNDLED_MODEL, rows, threads=1)
    line = report[REPEAT]
    assert line["total"] == 5  # every target lines up with a token of the bundled tokenizer
    assert 0 <= line["repeats"] <= line["total"] - line["correct"]


def test_accuracy_refuses_no_rows():
    with pytest.raises(MeshlmError, match="no generation rows"):
        accuracy(modelfolder.BUNDLED_MODEL, [])


def test_command_line_bad_input_is_one_line(tmp_path, capsys):
    from meshlm.eval.teacher_forced import _main

    assert _main(["bundled", str(tmp_path / "missing.jsonl")]) == 2
    assert _main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 2
    assert "missing.jsonl" in err.splitlines()[0] and "usage:" in err.splitlines()[1]


LOUD = """
import logging, runpy, sys, warnings
import meshlm.infer.named as named
from meshlm import modelfolder
from transformers.utils import logging as hf_logging

def loud(model, root):  # what loading an adapter does: peft warns, transformers logs
    warnings.warn("is_gradient_checkpointing is deprecated", FutureWarning)
    hf_logging.get_logger("transformers.trainer_utils").warning("tokens aligned")
    logging.getLogger("peft").warning("peft says")
    return modelfolder.BUNDLED_MODEL

named.transformers_folder = loud
sys.argv = ["teacher_forced", "bundled", sys.argv[1]]
runpy.run_module("meshlm.eval.teacher_forced", run_name="__main__")
"""


@pytest.mark.parametrize("debug", [False, True])
def test_command_line_keeps_libraries_quiet_unless_debug(tmp_path, debug):
    # a subprocess, as a user runs it; the loader warns and logs as loading an adapter does
    row = {
        "task": "generation",
        "messages": [
            {"role": "user", "content": "a box"},
            {"role": "assistant", "content": REPLY},
        ],
    }
    split = tmp_path / "validation.jsonl"
    split.write_text(json.dumps(row) + "\n", encoding="utf-8")
    env = {
        k: v for k, v in os.environ.items() if k not in ("MESHLM_DEBUG", "TRANSFORMERS_VERBOSITY")
    }
    if debug:
        env["MESHLM_DEBUG"] = "1"
    run = subprocess.run(
        [sys.executable, "-c", LOUD, str(split)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {k: r["total"] for k, r in report.items()} == {
        "coord copy": 8,
        "coord new": 10,
        "face line": 3,
        "face index": 9,
        "part start": 1,
        "face end: more": 1,
        "part end: more": 1,
        "part end: stop": 1,
        "first x": 1,
        "first y": 1,
        "first z": 1,
    }
    if debug:
        for said in ("FutureWarning", "tokens aligned", "peft says"):
            assert said in run.stderr
    else:
        assert run.stderr == ""


def test_score_counts_hits_and_repeats_exactly():
    # a "model" that always predicts " 0", scored on REPLY with the bundled tokenizer
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(modelfolder.BUNDLED_MODEL))
    enc = tok(REPLY, return_offsets_mapping=True, add_special_tokens=False)
    zero = tok(" 0", add_special_tokens=False)["input_ids"]
    assert len(zero) == 1
    ids = enc["input_ids"]
    earlier: dict[int, frozenset[str]] = {}
    kinds = mesh_token_kinds(REPLY, 0, earlier)
    hit, total, repeats = Counter(), Counter(), Counter()
    offsets = [a for a, _ in enc["offset_mapping"]]
    score(kinds, earlier, offsets, ids, zero * len(ids), tok.decode, hit, total, repeats)
    # new values: 0 0 0, 5, 3 | 9 9 9, 1, 2 -> " 0" right 3 times; wrong " 0" for the 5 and
    # the 3 repeats a value of their axis, for 9 9 9, 1 and 2 it does not (a new part)
    assert total["coord new"] == 10 and hit["coord new"] == 3 and repeats["coord new"] == 2
    assert hit["coord copy"] == 3 and total["coord copy"] == 8  # the three copied 0s
    assert hit["face line"] == 0 and set(repeats) == {"coord new"}
    assert total["face index"] == 9 and hit["face index"] == 0  # "-3" etc., never " 0"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("{not json", "not JSON"),
        ('{"task": "generation"}', "without messages"),
        ('{"task": "generation", "messages": [{"role": "user"}]}', "no text content"),
    ],
)
def test_command_line_names_the_bad_line(tmp_path, capsys, line, said):
    from meshlm.eval.teacher_forced import _main

    split = tmp_path / "validation.jsonl"
    good = {"task": "understanding", "messages": [{"role": "user", "content": "x"}]}
    split.write_text(json.dumps(good) + "\n\n" + line + "\n", encoding="utf-8")
    assert _main(["bundled", str(split)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert f"{split}:3: " in err and said in err


def test_first_value_report_by_hand():
    # three requests; the model puts 0.5/0.5, 0.9/0.1 and 0.2/0.8 on values "0"/"31"
    dists = [{"0": 0.5, "31": 0.5}, {"0": 0.9, "31": 0.1}, {"0": 0.2, "31": 0.8}]
    report = first_value_report(dists, ["31", "0", "31"])
    # likeliest values: "0" (ties go to the first), "0", "31": rows 2 and 3 right
    assert report["correct"] == 2 and report["total"] == 3
    assert report["majority"] == pytest.approx(2 / 3)
    # mean distribution {0: 1.6/3, 31: 1.4/3}; each row's total-variation distance to it
    mean0 = 1.6 / 3
    expected = (abs(0.5 - mean0) + abs(0.9 - mean0) + abs(0.2 - mean0)) / 3
    assert report["dependence"] == pytest.approx(expected)
    # the data: "31" twice, "0" once -> 1 - 2/3, 1 - 1/3, 1 - 2/3
    assert report["data dependence"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)


def test_first_value_report_a_model_that_ignores_the_request_has_no_dependence():
    same = {"0": 0.4, "31": 0.35, "45": 0.25}
    report = first_value_report([dict(same) for _ in range(4)], ["31", "31", "45", "0"])
    assert report["dependence"] == pytest.approx(0.0)
    assert report["accuracy"] == 0.25 and report["majority"] == 0.5
    assert report["data dependence"] == pytest.approx((0.5 + 0.5 + 0.75 + 0.75) / 4)


def test_first_value_report_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="one distribution a row"):
        first_value_report([], [])
    with pytest.raises(ValueError, match="one distribution a row"):
        first_value_report([{"0": 1.0}], ["0", "1"])
