"""`meshlm eval`: held-out sets, generation and understanding runs on a tiny model, commands."""

from __future__ import annotations

import json

import pytest

from meshlm.cli import main
from meshlm.errors import MeshlmError
from meshlm.eval.runner import (
    HELDOUT_REQUESTS,
    eval_generate,
    eval_understand,
    heldout_set,
    load_jsonl,
    load_references,
    nearest_family,
    strict_error_kind,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def engine():
    from meshlm.infer.engine import Engine
    from meshlm.infer.hf import HFBackend
    from meshlm.train.tokenizer import train_tokenizer

    tok = train_tokenizer(["Create a 3D model of a chair. It is a stool."] * 40, vocab_size=1500)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    return Engine(HFBackend(transformers.LlamaForCausalLM(cfg).eval(), tok, "cpu"))


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    d = tmp_path_factory.mktemp("heldout")
    return heldout_set(d, per_family=1, families=["box", "table", "mug"])


def test_heldout_set_uses_unseen_phrasings_and_labels(heldout):
    from meshlm.data import templates

    prompts = load_jsonl(heldout["prompts"])
    assert {p["family"] for p in prompts} == {"box", "table", "mug"}
    train_forms = {t.split("{")[0] for t in templates.GENERATION_REQUESTS}
    for p in prompts:
        assert any(p["prompt"].startswith(h.split("{")[0]) for h in HELDOUT_REQUESTS)
        assert not any(p["prompt"].startswith(f) for f in train_forms if len(f) > 12)
    refs = load_references(heldout["references"])
    assert len(refs) == 3 * 10  # ten of each chosen family, the prompts' own shapes among them
    assert {fam for fam, _ in refs} == {"box", "table", "mug"}  # judged among them only
    uids = {p.stem for p in heldout["references"].glob("*.obj")}
    assert {p["uid"] for p in prompts} <= uids
    under = load_jsonl(heldout["understand"])
    assert all(u["mesh"].startswith("v ") and u["caption"] for u in under)


def test_heldout_set_can_match_a_low_poly_corpus(tmp_path):
    low = heldout_set(
        tmp_path / "low", per_family=1, families=["barrel"], refs_per_family=1, max_segments=6
    )
    full = heldout_set(tmp_path / "full", per_family=1, families=["barrel"], refs_per_family=1)
    a, b = load_jsonl(full["understand"])[0], load_jsonl(low["understand"])[0]
    assert a["caption"] == b["caption"]  # the same shape, drawn with fewer sides
    assert b["mesh"].count("\nf ") < a["mesh"].count("\nf ")


def test_heldout_set_without_families_judges_among_all(tmp_path):
    paths = heldout_set(tmp_path / "all", per_family=1, refs_per_family=1)
    assert len(load_jsonl(paths["prompts"])) == 38
    assert len({fam for fam, _ in load_references(paths["references"])}) == 38
    with pytest.raises(MeshlmError, match="unknown shape family: teapot"):
        heldout_set(tmp_path / "bad", families=["box", "teapot"])
    assert not (tmp_path / "bad").exists()


def test_nearest_family_recovers_the_reference_itself(heldout):
    from meshlm.codec import decode

    refs = load_references(heldout["references"])
    for u in load_jsonl(heldout["understand"]):
        fam, cd = nearest_family(decode(u["mesh"]), refs)
        assert fam == u["family"] and cd < 5e-3  # the same shape, up to quantization


def test_eval_generate_and_understand_write_their_files(engine, heldout, tmp_path):
    from meshlm.infer import Sampling

    rows = load_jsonl(heldout["prompts"])
    refs = load_references(heldout["references"])
    s = Sampling(seed=0, max_new_tokens=300, temperature=1.0, max_preamble=0)
    m = eval_generate(engine, rows, tmp_path / "gen", s, refs)
    assert m["samples"] == 3 and 0 <= m["family_accuracy"] <= 1 and m["family_references"] == 30
    samples = [json.loads(x) for x in (tmp_path / "gen" / "samples.jsonl").read_text().splitlines()]
    for r in samples:  # constrained: every mesh that finished passes the strict decoder
        assert r["strict"] or r["cut_off"]
        assert r["lead_in"] == ""  # max_preamble 0: the mesh starts the reply
    assert (tmp_path / "gen" / "grid.png").stat().st_size > 0
    written = json.loads((tmp_path / "gen" / "metrics.json").read_text())
    assert written["samples"] == 3
    assert written["sampling"] == {
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 50,
        "seed": 0,
        "constrain": True,
        "templates": False,  # a LLaMA-Mesh model has no part templates
        "exemplar": False,  # nor an exemplar bank
        "exemplar_parts": False,  # so nothing was taken from one
        "exemplar_layout": False,
        "exemplar_lead": False,
    }
    free = eval_generate(
        engine,
        rows,
        tmp_path / "free",
        Sampling(seed=0, max_new_tokens=60, constrain=False),
        refs,
        grid=False,
    )
    bad = [
        json.loads(x)
        for x in (tmp_path / "free" / "samples.jsonl").read_text().splitlines()
        if not json.loads(x)["strict"]
    ]
    assert bad and all(r["strict_error"].startswith("<text>:") for r in bad)  # a random model
    assert sum(free["strict_errors"].values()) == len(bad)
    u = eval_understand(
        engine,
        load_jsonl(heldout["understand"]),
        tmp_path / "und",
        Sampling(temperature=0, max_new_tokens=12, constrain=False),
        families=["box", "table", "mug"],
    )
    assert u["samples"] == 3 and 0 <= u["bleu1"] <= 1 and 0 <= u["family_accuracy"] <= 1


@pytest.mark.parametrize(
    "text, kind",
    [
        ("v 0 0 0\nv 0 0 0\nv 1 1 1\nf 1 2 3\n", "duplicate vertex"),
        ("v 0 0 1\nv 0 0 0\nv 1 1 1\nf 1 2 3\n", "vertices out of order"),
        ("v 0 0 0\nv 0 0 1\nv 1 1 1\nf 1 2 9\n", "face index N out of range"),
        ("v 0 0 0\nv 0 0 1\nv 1 1 1\nf 1 1 3\n", "face repeats a vertex"),
        ("v 0 0 0\nv 0 0 1\nv 1 1 1\nf 2 3 1\n", "face does not start with its smallest index"),
        ("v 0 0 0\nv 0 0 1\nv 1 1 1\nf 1 2 3\nf 1 2 3\n", "duplicate face"),
        ("v 0 0 0\nv 0 0 1\nv 1 1 70\nf 1 2 3\n", "coordinate N out of range N..N"),
        ("v 0 0 0\nv 0 0 1\nv 1 2 it's\nf 1 2 3\n", "malformed vertex line"),
    ],
)
def test_strict_error_kind_drops_numbers_and_quotes(text, kind):
    from meshlm.codec import decode
    from meshlm.errors import MeshFormatError

    with pytest.raises(MeshFormatError) as exc:
        decode(text)
    assert strict_error_kind(exc.value) == kind


def test_eval_commands_fail_cleanly(tmp_path, capsys):
    assert main(["eval", "language", "--model", "x"]) == 1
    assert "lm-eval" in capsys.readouterr().err
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "a"}\nnot json\n')
    assert (
        main(
            [
                "eval",
                "generate",
                "--prompts",
                str(bad),
                "--out",
                str(tmp_path / "o"),
                "--model",
                str(tmp_path),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert f"{bad}:2: not JSON" in err and len(err.strip().splitlines()) == 1


def test_heldout_refuses_empty_pools(tmp_path, capsys):
    assert main(["eval", "heldout", "-o", str(tmp_path / "h"), "--refs-per-family", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["meshlm: error: per_family and refs_per_family must be >= 1, got 3 and 0"]
    assert not (tmp_path / "h").exists()  # refused before writing anything
    assert main(["eval", "heldout", "-o", str(tmp_path / "f"), "--family", "teapot"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["meshlm: error: unknown shape family: teapot (see meshlm shapes --list)"]
    assert not (tmp_path / "f").exists()
