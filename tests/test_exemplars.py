"""meshlm.exemplars and meshlm.data.exemplify: the bank of training meshes a parts model is shown
before a request, the dataset that shows them, and the engine's two-stage reply."""

from __future__ import annotations

import json

import pytest

from meshlm import exemplars
from meshlm.data import BuildConfig, build_dataset
from meshlm.data.exemplify import exemplify
from meshlm.data.exemplify import main as exemplify_main
from meshlm.errors import MeshlmError
from meshlm.exemplars import Exemplar, ExemplarBank, mesh_text, with_exemplar, words
from meshlm.parts import decode_parts
from meshlm.plan import parse_plan


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    src = tmp_path_factory.mktemp("ex") / "src"
    build_dataset(
        BuildConfig(
            out=str(src), workers=1, progress=False, procedural=60, mix=(1, 1, 0), plan=True,
            families=["table", "box", "stool"], format="parts", max_segments=6,
        )
    )  # fmt: skip
    return src


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_words_drop_how_people_ask_and_keep_what_they_ask_for():
    assert words("Could you make a low poly model of a LOW table with 3 legs?") == {
        "low", "table", "leg", "3"
    }  # fmt: skip
    assert words("Create a 3D mesh of a tall stool, please") == {"tall", "stool"}
    # one spelling for the forms of a word: numbers, plurals, "-legged", "-tiered", "-finned"
    assert words("a three-legged stool") == words("a stool with 3 legs") == {"3", "leg", "stool"}
    assert words("two tiered shelves, one finned rocket") == {"2", "tier", "shelf", "1", "fin"} | {
        "rocket"
    }
    assert words("glass boxes, a bus, a bed, stairs") == {"glass", "box", "bus", "bed", "stair"}


def test_the_bank_holds_short_distinct_training_meshes_of_each_family(dataset):
    train = _rows(dataset / "train.jsonl")
    bank = ExemplarBank.from_rows(train, per_family=3, bins=64, seed=1)
    assert sorted(bank.by_family) == ["box", "stool", "table"]
    replies = {
        mesh_text(r["messages"][-1]["content"]): r for r in train if exemplars.single_request(r)
    }
    for family, items in bank.by_family.items():
        assert 1 <= len(items) <= 3 and len({e.text for e in items}) == len(items)
        same = sorted(
            len(t) for t, r in replies.items()
            if r["task"] == "generation" and parse_plan(r["messages"][-1]["content"]).family
            == family
        )  # fmt: skip
        for e in items:
            row = replies[e.text]  # a training reply, word for word, with its own request
            assert e.request == row["messages"][-2]["content"] and e.source == row["source"]
            assert len(e.text) <= same[(len(same) - 1) // 2]  # no longer than the median
            decode_parts(e.text, strict=True)  # canonical parts text
    again = ExemplarBank.from_rows(train, per_family=3, bins=64, seed=1)
    assert again.to_dict() == bank.to_dict() and bank.sha256() == again.sha256()
    with pytest.raises(MeshlmError, match="per_family must be >= 0"):
        ExemplarBank.from_rows(train, per_family=-1, bins=64)
    # 0 a family and every length: the bank is every distinct single-request training mesh
    full = ExemplarBank.from_rows(train, per_family=0, bins=64, shortest_half=False)
    for family, items in full.by_family.items():
        assert {e.text for e in items} == {
            t for t, r in replies.items()
            if r["task"] == "generation" and parse_plan(r["messages"][-1]["content"]).family
            == family
        }  # fmt: skip
    assert full.source == {"per_family": 0, "seed": 0, "shortest_half": False}


def test_choose_takes_the_most_words_in_common_and_never_the_avoided_mesh():
    a = Exemplar("table", "a tall table with three legs", "s:a", "v 0 0 0")
    b = Exemplar("table", "a low wide table with four legs", "s:b", "v 1 1 1")
    bank = ExemplarBank([a, b], bins=64)
    assert bank.choose("table", "make me a low table with four legs") is b
    assert bank.choose("table", "a table with three legs") is a
    assert bank.choose("table", "something else entirely") is a  # a tie: bank order
    assert bank.choose("table", "a low wide table with four legs", avoid=b.text) is a
    assert bank.choose("chair", "a chair") is None
    turn = with_exemplar("a small table", b)
    assert turn == "For reference, a table:\nv 1 1 1\n\na small table"
    wine = Exemplar("wine_glass", "r", "s", "v 0 0 0")
    assert with_exemplar("x", wine).startswith("For reference, a wine glass:\n")


def test_nearest_takes_the_reply_s_face_lines_and_most_of_its_coordinates():
    tri = "f -3 -2 -1"
    quad = "f -4 -3 -2\nf -4 -2 -1"
    target = f"v 0 0 0\nv 9 0 0\nv 0 9 0\n{tri}"
    near = Exemplar("box", "r1", "s:near", f"v 0 0 0\nv 9 0 0\nv 0 8 0\n{tri}")  # 8 equal
    far = Exemplar("box", "r2", "s:far", f"v 0 0 1\nv 9 0 1\nv 0 9 1\n{tri}")  # 6 equal
    # the most values equal wins over the least summed difference (2 equal, 9 bins off)
    close = Exemplar("box", "r3", "s:close", f"v 1 1 1\nv 8 1 1\nv 1 8 0\n{tri}")
    other = Exemplar("box", "r4", "s:quad", f"v 0 0 0\nv 9 0 0\nv 0 9 0\nv 9 9 0\n{quad}")
    twin = Exemplar("box", "r5", "s:twin", f"v 0 0 0\nv 9 0 0\nv 0 8 0\n{tri}")
    bank = ExemplarBank([far, close, near, other, twin], bins=64)
    assert bank.nearest("box", target) is near  # a tie with its twin: bank order
    assert bank.nearest("box", target, avoid=near.text) is far  # twin has near's text
    assert bank.nearest("box", other.text) is other
    assert bank.nearest("box", other.text, avoid=other.text) is None  # no other quad
    assert bank.nearest("table", target) is None
    gap = Exemplar("box", "r6", "s:gap", f"v 0 0 0\nv 9 0 0\nv 0 1 0\n{tri}")  # 8 equal, 8 off
    assert ExemplarBank([gap, near], bins=64).nearest("box", target) is near  # then the gap


def test_exemplify_shows_some_training_rows_the_mesh_nearest_their_reply(tmp_path, dataset):
    dst = tmp_path / "near"
    res = exemplify(dataset, dst, per_family=0, shortest_half=False, nearest_share=1.0)
    bank = exemplars.read(dst)
    recorded = json.loads((dst / "manifest.json").read_text())["exemplars"]
    assert recorded["nearest_share"] == 1.0
    near = 0
    for split in ("train", "validation"):
        before, after = _rows(dataset / f"{split}.jsonl"), _rows(dst / f"{split}.jsonl")
        for a, b in zip(before, after, strict=True):
            if "exemplar" not in b:
                continue
            reply, request = a["messages"][-1]["content"], a["messages"][-2]["content"]
            own, family = mesh_text(reply), parse_plan(reply).family
            want = bank.nearest(family, own, own) if split == "train" else None
            near += want is not None
            want = want or bank.choose(family, request, own)
            assert b["messages"][-2]["content"] == with_exemplar(request, want)
    assert recorded["nearest_rows"] == near > 10 and res["rows"]["train"] > near
    with pytest.raises(MeshlmError, match="nearest_share must be in 0..1, got 1.5"):
        exemplify(dataset, tmp_path / "bad", nearest_share=1.5)
    assert not (tmp_path / "bad").exists()


def test_the_bank_file_round_trips_and_a_bad_one_is_named(tmp_path, dataset):
    bank = ExemplarBank.from_rows(_rows(dataset / "train.jsonl"), per_family=2, bins=64)
    path = bank.save(tmp_path)
    assert path.name == exemplars.FILE
    back = exemplars.read(tmp_path)
    assert back.to_dict() == bank.to_dict() and len(back) == len(bank)
    assert exemplars.read(tmp_path / "nowhere") is None
    data = json.loads(path.read_text())
    data["exemplars"][0]["text"] = "f -1 -2 -3"
    path.write_text(json.dumps(data))
    with pytest.raises(MeshlmError, match=r"exemplars\.json: not an exemplar bank .*not a mesh"):
        exemplars.read(tmp_path)
    path.write_text("{")
    with pytest.raises(MeshlmError, match="exemplars.json: not an exemplar bank"):
        exemplars.read(tmp_path)


def test_exemplify_shows_an_exemplar_before_every_generation_request(tmp_path, dataset):
    dst = tmp_path / "ex"
    res = exemplify(dataset, dst, per_family=3, seed=0)
    bank = exemplars.read(dst)
    assert res["bank"] == len(bank) and res["dropped"] == {}  # no tokenizer recorded: no count
    shown = 0
    for split in ("train", "validation", "test"):
        before, after = _rows(dataset / f"{split}.jsonl"), _rows(dst / f"{split}.jsonl")
        assert len(before) == len(after) == res["rows"][split]
        for a, b in zip(before, after, strict=True):
            if a["task"] != "generation" or not exemplars.single_request(a):
                assert a == b
                continue
            shown += 1
            reply = a["messages"][-1]["content"]
            assert b["messages"][-1] == a["messages"][-1]  # the reply is what it was
            family = parse_plan(reply).family
            request = a["messages"][-2]["content"]
            # a source may have several meshes (rotated copies): the one shown is in the turn
            turn = b["messages"][-2]["content"]
            ex = next(
                e for e in bank.by_family[family]
                if e.source == b["exemplar"] and turn == with_exemplar(request, e)
            )  # fmt: skip
            if split == "train":  # never shown its own mesh
                assert ex.text != mesh_text(reply)
                assert ex == bank.choose(family, request, avoid=mesh_text(reply))
    assert shown > 20
    manifest = json.loads((dst / "manifest.json").read_text())
    source = json.loads((dataset / "manifest.json").read_text())
    recorded = manifest.pop("exemplars")
    assert manifest == source
    assert recorded["bank_sha256"] == bank.sha256() and recorded["rows"] == res["rows"]
    assert recorded["per_family"] == 3 and recorded["source"] == str(dataset)


def test_exemplify_refuses_what_it_cannot_use_in_one_line(tmp_path, dataset, capsys):
    assert exemplify_main([str(tmp_path / "none"), str(tmp_path / "out")]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text((dataset / "manifest.json").read_text())
    (bad / "train.jsonl").write_text('{"task": "generation"\n')
    assert exemplify_main([str(bad), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "train.jsonl:1: not a JSON row" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
    lm = tmp_path / "lm"
    build_dataset(
        BuildConfig(out=str(lm), workers=1, progress=False, procedural=10, families=["box"])
    )
    with pytest.raises(MeshlmError, match="mesh format is 'llama-mesh'; exemplars need 'parts'"):
        exemplify(lm, tmp_path / "out2")


def test_an_engine_without_a_plan_line_answers_from_the_request_alone(tmp_path):
    """The first stage reads the reply up to its plan line; a model that writes none (a random
    tiny one) is answered as without a bank: the same reply, no exemplar recorded."""
    pytest.importorskip("torch")
    from meshlm.infer import Sampling
    from meshlm.infer.engine import Engine
    from meshlm.infer.hf import HFBackend
    from meshlm.modelfolder import MeshFormat, ModelInfo
    from tests.test_web import make_tiny_model

    model, tok = make_tiny_model()
    bank = ExemplarBank([Exemplar("box", "a box", "s:box", "v 0 0 0")], bins=64)
    info = ModelInfo(format=MeshFormat("parts", 64))
    with_bank = Engine(HFBackend(model, tok, "cpu"), info=info, exemplars=bank)
    plain = Engine(HFBackend(model, tok, "cpu"), info=info)
    assert with_bank.exemplars is bank and plain.exemplars is None
    s = Sampling(temperature=0.0, max_new_tokens=40, constrain=False)
    a, b = with_bank.generate("a box", s), plain.generate("a box", s)
    assert parse_plan(a.text) is None and a.text == b.text
    assert a.stats.exemplar == "" and a.stats.new_tokens > b.stats.new_tokens  # both stages
    # a bank on another grid, or for a LLaMA-Mesh model, is not used
    other = ExemplarBank(bank.by_family["box"], bins=32)
    e = Engine(object(), info=info, exemplars=other)
    assert e.exemplars is None and e.notes == ["exemplars are for 32 bins, not 64: not used"]
    lm = Engine(object(), info=ModelInfo(format=MeshFormat("llama-mesh", 64)), exemplars=bank)
    assert lm.exemplars is None


def test_a_bad_bank_in_an_adapter_folder_is_named_where_the_user_keeps_it(tmp_path):
    """An adapter runs from a merged copy in the cache; a broken exemplars.json is reported at
    the adapter's own path, before anything is merged."""
    from meshlm.infer.named import ensure_merged, merged_dir

    (tmp_path / exemplars.FILE).write_text('{"schema": 1}')
    with pytest.raises(MeshlmError, match=rf"^{tmp_path}/exemplars\.json: not an exemplar bank"):
        ensure_merged(tmp_path)
    assert not merged_dir(tmp_path).exists()
