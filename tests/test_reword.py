"""Requests reworded in everyday words (meshlm/data/reword.py)."""

from __future__ import annotations

import json

import pytest

from meshlm.data.reword import VOCABULARY, load_vocabulary, main, reword, reword_dataset
from meshlm.errors import MeshlmError
from meshlm.exemplars import Exemplar, with_exemplar, without_exemplar
from meshlm.prompts import family_names, family_span, find_family

MESH = "v 0 0 0\nv 0 5 0\nv 3 5 0\nf -3 -2 -1"
SHOWN = Exemplar(
    "bench", "a bench", "procedural:bench_0_000001", "v 1 1 1\nv 1 4 1\nv 2 4 1\nf -3 -2 -1"
)


def _gen(request: str, family: str, lead: str = "") -> dict:
    reply = (
        f"{lead}\nPlan: {family}, 1 part.\n\n{MESH}"
        if lead
        else f"Plan: {family}, 1 part.\n\n{MESH}"
    )
    return {
        "messages": [
            {"role": "user", "content": with_exemplar(request, SHOWN)},
            {"role": "assistant", "content": reply},
        ],
        "task": "generation",
        "source": f"procedural:{family}_0_000002",
        "exemplar": SHOWN.source,
    }


def _dataset(tmp_path, train: list[dict], validation: list[dict] | None = None):
    src = tmp_path / "src"
    src.mkdir()
    (src / "manifest.json").write_text(json.dumps({"seed": 0}))
    (src / "exemplars.json").write_text('{"bank": []}')
    (src / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (src / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in validation or []))
    return src


def _vocab(tmp_path, data: dict) -> str:
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_reword_replaces_the_family_s_first_name_and_mends_the_article():
    assert reword("Make a bench in 3D.", "bench", "old pew") == "Make an old pew in 3D."
    assert reword("Make a long bench.", "bench", "old pew") == "Make a long old pew."
    assert reword("An arch, please.", "arch", "torii gate") == "A torii gate, please."
    # a synonym (DEFAULT_SYNONYMS), the plural, the earliest and longest phrase
    assert reword("three bookcases", "shelf", "rack") is None  # counted: an attribute
    assert reword("two bookcases or more", "shelf", "rack") is None
    assert reword("Model some bookcases.", "shelf", "spice rack") == "Model some spice rack."
    assert (
        reword("a flight of stairs, four steps", "stairs", "stoop")
        == "a flight of stoop, four steps"
    )
    assert reword("a box", "cone", "pylon") is None
    assert family_span("A Tall Cylinder", "cylinder") == (7, 15)


def test_reword_dataset_adds_a_bare_reworded_copy_after_each_row(tmp_path):
    rows = [
        _gen("Make a bench in 3D.", "bench", "Here is a bench:"),
        _gen("Could you make a stairs block of four steps?", "stairs"),
        _gen("Something with four steps.", "stairs"),  # counted name only: not reworded
        {"messages": [{"role": "user", "content": "What is this?\n" + MESH},
                      {"role": "assistant", "content": "A bench."}],
         "task": "understanding", "source": "procedural:bench_0_000002"},
    ]  # fmt: skip
    held = [_gen("Make a bench.", "bench")]
    src = _dataset(tmp_path, rows, held)
    vocab = _vocab(
        tmp_path,
        {
            "bench": {"synonyms": [], "objects": ["old pew"], "adjectives": []},
            "stairs": {"synonyms": ["stoop"], "objects": [], "adjectives": []},
        },
    )
    added = reword_dataset(src, tmp_path / "dst", share=1.0, seed=3, vocabulary=vocab)
    assert added == {"bench": 1, "stairs": 1}
    out = [json.loads(x) for x in (tmp_path / "dst" / "train.jsonl").read_text().splitlines()]
    assert len(out) == 6
    assert out[0] == rows[0] and out[2] == rows[1] and out[4:] == rows[2:]
    bench, stairs = out[1], out[3]
    assert bench["messages"][0]["content"] == "Make an old pew in 3D."  # no exemplar before it
    assert bench["messages"][1]["content"] == f"Here is an old pew:\nPlan: bench, 1 part.\n\n{MESH}"
    assert bench["reworded"] == "old pew" and "exemplar" not in bench
    assert stairs["messages"][0]["content"] == "Could you make a stoop block of four steps?"
    assert stairs["messages"][1] == rows[1]["messages"][1]  # plan and mesh as they were
    assert (tmp_path / "dst" / "validation.jsonl").read_text().splitlines() == [
        json.dumps(r) for r in held
    ]
    # the exemplar bank travels with the rows that show it
    assert (tmp_path / "dst" / "exemplars.json").read_text() == '{"bank": []}'
    manifest = json.loads((tmp_path / "dst" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["reword"]["added"] == added
    assert manifest["reword"]["rows"] == {"train": 6, "validation": 1, "test": 0}
    assert len(manifest["reword"]["vocabulary_sha256"]) == 64
    # the same seed, the same rows; share 0 adds none, which is refused
    again = reword_dataset(src, tmp_path / "dst2", share=1.0, seed=3, vocabulary=vocab)
    assert again == added
    assert (tmp_path / "dst2" / "train.jsonl").read_text() == (
        tmp_path / "dst" / "train.jsonl"
    ).read_text()
    with pytest.raises(MeshlmError, match="no training request named its family"):
        reword_dataset(src, tmp_path / "dst3", share=0.0, vocabulary=vocab)


def test_bad_inputs_are_one_line_naming_the_file(tmp_path, capsys):
    src = _dataset(tmp_path, [_gen("Make a bench.", "bench")])
    bad = _vocab(tmp_path, {"bench": {"synonyms": ["Pew"]}})
    with pytest.raises(MeshlmError, match=r"vocab.json: bench.synonyms: expected a list"):
        load_vocabulary(bad)
    lacking = _vocab(tmp_path, {"chair": {"synonyms": ["seat"]}})
    with pytest.raises(MeshlmError, match="no words for the family 'bench'"):
        reword_dataset(src, tmp_path / "dst", share=1.0, vocabulary=lacking)
    with pytest.raises(MeshlmError, match="a share is between 0 and 1"):
        reword_dataset(src, tmp_path / "dst", share=1.5)
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "dst")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no manifest.json" in err[0]
    (tmp_path / "broken.json").write_text("{not json")
    assert main([str(src), str(tmp_path / "dst"), "--vocabulary", str(tmp_path / "broken.json")])
    assert "broken.json: cannot read the vocabulary" in capsys.readouterr().err


def test_without_exemplar_gives_back_the_request():
    assert without_exemplar(with_exemplar("Make a bench.", SHOWN)) == "Make a bench."
    assert without_exemplar("Make a bench.") == "Make a bench."


def test_the_shipped_vocabulary_names_no_other_family():
    """Every word of meshlm/assets/vocabulary.json, read as the evaluation reads a reply
    (find_family over all families), names its own family or none; adjectives name none."""
    words = load_vocabulary(VOCABULARY)
    families = family_names()
    assert set(words) <= set(families) and len(words) == 16
    for family, entry in words.items():
        assert len(entry["synonyms"]) + len(entry["objects"]) >= 20
        for term in entry["synonyms"] + entry["objects"]:
            assert find_family(term, families) in (family, None), (family, term)
        for adjective in entry["adjectives"]:
            assert find_family(adjective, families) is None, (family, adjective)
