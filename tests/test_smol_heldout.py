"""The held-out request files: the helper's rows of the families the references cover only."""

from __future__ import annotations

import json

from meshlm.eval.smol_heldout import write_fresh


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _read(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _folders(tmp_path, captions):
    """A held-out folder with references/captions.csv of ``captions`` and an empty inputs folder."""
    folder, inputs = tmp_path / "heldout", tmp_path / "inputs"
    (folder / "references").mkdir(parents=True)
    inputs.mkdir()
    (folder / "references" / "captions.csv").write_text(
        "uid,caption,family\n" + captions, encoding="utf-8"
    )
    return folder, inputs


THREE = "t1,a table,table\nb1,a box,box\nt2,a low table,table\n"


def test_write_fresh_keeps_the_reference_families_round_robin(tmp_path):
    folder, inputs = _folders(tmp_path, THREE)
    _jsonl(folder / "understand.jsonl", [{"mesh": "v 0 0 0", "family": f} for f in "ab"])
    _jsonl(
        inputs / "mesh_requests.jsonl",
        [
            {"prompt": "table 1", "family": "table"},
            {"prompt": "vase 1", "family": "vase"},
            {"prompt": "table 2", "family": "table"},
            {"prompt": "box 1", "family": "box"},
        ],
    )
    _jsonl(
        inputs / "describe_questions.jsonl",
        [
            {"question": "what is it?", "position": "after"},
            {"question": "name it", "position": "x"},
        ],
    )
    _jsonl(
        inputs / "attributes.jsonl",
        [
            {"prompt": "3 legs", "family": "table", "attributes": {"legs": 3}},
            {"prompt": "tall vase", "family": "vase", "attributes": {"proportion": "tall"}},
        ],
    )
    paths = write_fresh(folder, inputs)
    assert [p.name for p in paths] == [
        "prompts_fresh.jsonl",
        "understand_fresh.jsonl",
        "attributes_fresh.jsonl",
    ]
    # vase is not among the references: left out; round robin over table and box
    assert _read(paths[0]) == [
        {"prompt": "table 1", "family": "table"},
        {"prompt": "box 1", "family": "box"},
        {"prompt": "table 2", "family": "table"},
    ]
    und = _read(paths[1])
    assert [(u["question"], u["question_after"]) for u in und] == [
        ("what is it?", True),
        ("name it", False),
    ]
    assert _read(paths[2]) == [{"prompt": "3 legs", "family": "table", "attributes": {"legs": 3}}]


def test_write_fresh_without_attribute_prompts_writes_two_files(tmp_path):
    folder, inputs = _folders(tmp_path, "b1,a box,box\n")
    _jsonl(folder / "understand.jsonl", [])
    _jsonl(inputs / "mesh_requests.jsonl", [{"prompt": "box", "family": "box"}])
    _jsonl(inputs / "describe_questions.jsonl", [{"question": "q", "position": "before"}])
    paths = write_fresh(folder, inputs)
    assert [p.name for p in paths] == ["prompts_fresh.jsonl", "understand_fresh.jsonl"]
    assert not (folder / "attributes_fresh.jsonl").exists()


def test_write_fresh_asks_every_reference_with_the_read_questions_in_turn(tmp_path):
    folder, inputs = _folders(tmp_path, THREE)
    _jsonl(folder / "understand.jsonl", [])
    _jsonl(inputs / "mesh_requests.jsonl", [{"prompt": "box", "family": "box"}])
    _jsonl(inputs / "describe_questions.jsonl", [{"question": "q", "position": "before"}])
    asks = [{"text": "what's this?", "after": False}]
    asks.append({"text": "and the thing above?", "after": True})
    (inputs / "read_questions.json").write_text(json.dumps({"questions": asks}), encoding="utf-8")
    paths = write_fresh(folder, inputs)
    assert [p.name for p in paths][-1] == "understand_references.jsonl"
    refs = folder / "references"
    assert _read(paths[-1]) == [
        {"path": str(refs / "t1.obj"), "caption": "a table", "family": "table",
         "question": "what's this?", "question_after": False},
        {"path": str(refs / "b1.obj"), "caption": "a box", "family": "box",
         "question": "and the thing above?", "question_after": True},
        {"path": str(refs / "t2.obj"), "caption": "a low table", "family": "table",
         "question": "what's this?", "question_after": False},
    ]  # fmt: skip
