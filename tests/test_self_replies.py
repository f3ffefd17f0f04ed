"""Rejection-sampling fine-tuning data (meshlm/eval/self_replies.py): which requests are drawn,
the judge's references, and a real run of the shipped parts model."""

import json

import numpy as np
import pytest
from test_smol import needs_smol, smol_dir  # noqa: F401 (a fixture)

from meshlm import exemplars
from meshlm.errors import MeshlmError
from meshlm.eval import self_replies
from meshlm.infer.named import named_models
from meshlm.modelfolder import BUNDLED_MODEL
from meshlm.parts import encode_parts
from meshlm.plan import parse_plan, plan_line
from meshlm.prompts import mesh_start
from meshlm.shapes import generate


def _rows(counts: dict[str, int], seed: int = 0, bank=None) -> list[dict]:
    """Single-request generation rows with a plan line: ``counts[family]`` of each, family by
    family, plus an understanding row and a two-request row that must never be drawn. With an
    exemplar ``bank``, each request is shown its family's exemplar as the training data shows
    it (:func:`meshlm.exemplars.with_exemplar`)."""
    rows = []
    for family, n in counts.items():
        for s in generate(n, seed=seed, families=[family], max_segments=6):
            text = encode_parts(s.mesh.vertices, s.mesh.faces)
            lines = text.split("\n")
            pairs = zip(lines[:-1], lines[1:], strict=True)
            parts = 1 + sum(a[0] == "f" and b[0] == "v" for a, b in pairs)
            reply = f"{plan_line(family, parts)}\n\n{text}"
            turn = s.caption
            if bank is not None:
                turn = exemplars.with_exemplar(turn, bank.choose(family, turn, avoid=text))
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": turn},
                        {"role": "assistant", "content": reply},
                    ],
                    "task": "generation",
                    "source": f"test:{family}_{len(rows)}",
                }
            )
    rows.append({**rows[0], "task": "understanding"})
    rows.append({**rows[0], "messages": rows[0]["messages"] * 2})
    return rows


def test_requests_are_drawn_evenly_over_families_and_never_other_rows():
    rows = _rows({"table": 5, "box": 2, "cone": 1})
    got = self_replies.draw_requests(rows, 6, seed=3)
    # round robin over the sorted families: box cone table, box table, table
    assert sorted(f for _, _, f in got) == ["box", "box", "cone", "table", "table", "table"]
    assert [i for i, _, _ in got] == sorted(i for i, _, _ in got)
    assert all(rows[i] is row and i < 8 for i, row, _ in got)  # not the last two rows
    assert got == self_replies.draw_requests(rows, 6, seed=3)
    assert {i for i, _, _ in self_replies.draw_requests(rows, 8, seed=0)} == set(range(8))
    # more than there are: every drawable row once
    assert len(self_replies.draw_requests(rows, 50, seed=0)) == 8


def test_a_family_is_drawn_until_enough_of_its_replies_are_kept():
    rows = _rows({"table": 5, "box": 3, "cone": 1})
    kept: dict[str, int] = {}
    got = []
    for i, row, family in self_replies.draw_until_kept(rows, 8, 3, 2, kept):
        assert rows[i] is row
        got.append(family)
        if family == "box":  # every box reply kept, no table reply
            kept["box"] = kept.get("box", 0) + 1
    # round 1: box cone table; round 2: box table (box then has 2 kept); after it tables only
    assert got == ["box", "cone", "table", "box", "table", "table", "table", "table"]
    firsts = [i for i, _, _ in self_replies.draw_requests(rows, 3, seed=3)]
    assert sorted(firsts) == sorted(
        i for i, _, _ in list(self_replies.draw_until_kept(rows, 3, 3, 2, {}))
    )
    # no family wants more: nothing drawn; n caps it
    assert list(self_replies.draw_until_kept(rows, 8, 3, 0, {})) == []
    assert len(list(self_replies.draw_until_kept(rows, 4, 3, 9, {}))) == 4
    # every row drawn once when nothing is kept and n is large
    assert len(list(self_replies.draw_until_kept(rows, 50, 3, 1, {}))) == 9


def test_the_judges_references_are_training_meshes_of_every_family():
    rows = _rows({"table": 5, "box": 2, "cone": 1})
    refs = self_replies.training_references(rows, per_family=3, seed=0, bins=64)
    assert sorted(f for f, _ in refs) == ["box", "box", "cone", "table", "table", "table"]
    assert all(p.shape == (2048, 3) and np.isfinite(p).all() for _, p in refs)


def test_a_source_without_manifest_is_one_error(tmp_path):
    with pytest.raises(MeshlmError, match="no manifest.json"):
        self_replies.build("smol-parts", tmp_path / "nothing", tmp_path / "out")


@pytest.mark.slow
@needs_smol
def test_the_shipped_parts_model_answers_and_is_judged(smol_dir, tmp_path, monkeypatch):  # noqa: F811
    """Three requests to the shipped parts model: every attempt logged with its verdict, the
    kept replies strict parts meshes whose plan names the row's family, the training split the
    kept replies plus drawn source rows, the other splits and files copied, and a rerun that
    answers nothing again. The requests show exemplars, as the model's training rows do (bare,
    the model writes a box a quarter of the size and a table without legs)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    bank = exemplars.read(named_models(BUNDLED_MODEL.parent)["smol-parts"])
    rows = _rows({"box": 2, "table": 2, "stool": 2}, bank=bank)
    (src / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (src / "validation.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (src / "exemplars.json").write_text("{}\n")
    (src / "manifest.json").write_text(json.dumps({"format": {"name": "parts"}}) + "\n")
    rec = self_replies.build("smol-parts", src, dst, requests=3, mix=5, threads=1)
    log = [json.loads(line) for line in (dst / "replies.jsonl").read_text().splitlines()]
    assert [r["family"] for r in log] == ["box", "table", "stool"]  # in row order
    assert rec["requests"] == 3 and rec["kept"] == sum(r["kept"] for r in log) >= 1
    for r in log:
        if r["kept"]:
            plan = parse_plan(r["reply"][: mesh_start(r["reply"])])
            assert plan.family == r["family"] == r["judged_family"]
            from meshlm.meshtext import decode_strict

            decode_strict(r["reply"][mesh_start(r["reply"]) :], "parts", 64)
        else:
            assert r["why_not"]
    train = [json.loads(line) for line in (dst / "train.jsonl").read_text().splitlines()]
    assert len(train) == 5 and rec["rows"] == {"train": 5}
    own = [t for t in train if t.get("self_reply") == "smol-parts"]
    assert len(own) == rec["kept"]
    assert {t["messages"][-1]["content"] for t in own} == {r["reply"] for r in log if r["kept"]}
    assert (dst / "validation.jsonl").read_text() == (src / "validation.jsonl").read_text()
    assert not (dst / "test.jsonl").exists()  # the source has none
    assert (dst / "exemplars.json").read_text() == "{}\n"
    manifest = json.loads((dst / "manifest.json").read_text())
    assert manifest["format"] == {"name": "parts"} and manifest["self_replies"] == rec

    def no_second_answer(*args, **kwargs):
        raise AssertionError("a logged request was answered again")

    monkeypatch.setattr(self_replies, "judge", no_second_answer)
    assert self_replies.build("smol-parts", src, dst, requests=3, mix=5, threads=1) == rec
