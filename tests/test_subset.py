"""meshlm.data.subset: one task's rows of a built dataset, or its tasks reweighed, with a
manifest that says so."""

from __future__ import annotations

import json

import pytest

from meshlm.data import BuildConfig, build_dataset
from meshlm.data.subset import main, subset
from meshlm.errors import MeshlmError


def test_subset_keeps_one_tasks_rows_in_order_and_says_so(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "und"
    build_dataset(
        BuildConfig(
            out=str(src), workers=1, progress=False, procedural=30, mix=(1, 1, 0),
            families=["table", "box"], format="parts", max_segments=6,
        )
    )  # fmt: skip
    bank = src / "exemplars.json"  # the rows' exemplar bank, which training ships: kept
    bank.write_text('{"note": "stands for a bank"}')
    counts = subset(src, dst, "understanding")
    assert (dst / "exemplars.json").read_bytes() == bank.read_bytes()
    for split in ("train", "validation", "test"):
        rows = (src / f"{split}.jsonl").read_text().splitlines()
        want = [r for r in rows if json.loads(r)["task"] == "understanding"]
        assert (dst / f"{split}.jsonl").read_text().splitlines() == want
        assert counts[split] == len(want)
    assert 0 < counts["train"] < len((src / "train.jsonl").read_text().splitlines())
    manifest = json.loads((dst / "manifest.json").read_text())
    source = json.loads((src / "manifest.json").read_text())
    recorded = manifest.pop("subset")
    assert recorded.pop("by_task") == {s: {"understanding": n} for s, n in counts.items() if n}
    assert recorded == {"source": str(src), "task": "understanding", "rows": counts}
    assert manifest == source
    with pytest.raises(MeshlmError, match="no training row of task 'caption'"):
        subset(src, tmp_path / "none", "caption")

    # Reweighed: every task kept, understanding's training rows twice, held-out rows once.
    mixed = tmp_path / "mixed"
    counts2 = subset(src, mixed, None, {"understanding": 2})
    train = (src / "train.jsonl").read_text().splitlines()
    want = [c for r in train for c in [r] * (2 if json.loads(r)["task"] == "understanding" else 1)]
    assert (mixed / "train.jsonl").read_text().splitlines() == want
    assert counts2["train"] == len(train) + counts["train"]
    for split in ("validation", "test"):
        assert (mixed / f"{split}.jsonl").read_text() == (src / f"{split}.jsonl").read_text()
    recorded = json.loads((mixed / "manifest.json").read_text())["subset"]
    tasks = [json.loads(r)["task"] for r in train]
    assert recorded.pop("by_task")["train"] == {
        "generation": tasks.count("generation"), "understanding": 2 * tasks.count("understanding"),
    }  # fmt: skip
    assert recorded == {
        "source": str(src), "task": None, "rows": counts2, "repeat": {"understanding": 2},
    }  # fmt: skip
    with pytest.raises(MeshlmError, match="understanding=0: a task's rows are written at least"):
        subset(src, tmp_path / "zero", None, {"understanding": 0})
    # a misspelt task is refused (it would weigh nothing), naming the tasks there are
    with pytest.raises(
        MeshlmError, match=r"understnding=2: .* \(its tasks: generation, understanding\)"
    ):
        subset(src, tmp_path / "typo", None, {"understnding": 2})
    assert not (tmp_path / "typo").exists()


def test_subset_names_the_bad_line_in_one_line(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "manifest.json").write_text("{}")
    (src / "train.jsonl").write_text('{"task": "understanding"}\n{oops\n')
    assert main([str(src), str(tmp_path / "out"), "--task", "understanding"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {src / 'train.jsonl'}:2: not a JSON row") and "\n" not in err
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "o"), "--task", "x"]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert main([str(src), str(tmp_path / "o"), "--repeat", "understanding=two"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: --repeat understanding=two: expected TASK=N, N a whole number"
    )
