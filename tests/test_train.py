"""Training: config, tokenizer, TRL SFT on a tiny from-scratch Llama, LoRA + merge, resume after a
real kill, two-process data parallel (gloo), QLoRA refusal, recipe dry runs.

Everything is built locally (no hub): a tiny dataset folder in the builder's format, a meshlm
tokenizer trained on it, a 2-layer hidden-32 Llama.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

trl = pytest.importorskip("trl")
pytest.importorskip("peft")
torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from meshlm.cli import main  # noqa: E402
from meshlm.train.config import ConfigError, TrainConfig  # noqa: E402
from meshlm.train.sft import _checkpointing_arg, sft_config  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import make_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
TINY = dict(
    model="scratch",
    tokenizer_vocab_size=1400,
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=64,
    max_position_embeddings=1024,
    max_length=512,
    learning_rate=3e-3,
    warmup_steps=2,
    global_batch_size=4,
    per_device_batch_size=2,
    max_steps=10,
    logging_steps=1,
    eval_steps=5,
    save_steps=5,
    max_eval_samples=8,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n_train=48, n_val=8, n_test=8)


@pytest.fixture(scope="module")
def tokenizer_dir(data_dir, tmp_path_factory) -> Path:
    from meshlm.train.tokenizer import train_tokenizer_from_dataset

    out = tmp_path_factory.mktemp("tok")
    tok = train_tokenizer_from_dataset(data_dir, vocab_size=1400, model_max_length=512)
    tok.save_pretrained(out)
    return out


def test_a_parts_dataset_gets_relative_index_tokens(data_dir, tokenizer_dir, tmp_path):
    from meshlm.train.tokenizer import train_tokenizer_from_dataset

    parts = tmp_path / "parts"
    shutil.copytree(data_dir, parts)
    manifest = json.loads((parts / "manifest.json").read_text())
    manifest["format"] = {"name": "parts", "bins": 64}
    (parts / "manifest.json").write_text(json.dumps(manifest))
    tok = train_tokenizer_from_dataset(parts, vocab_size=1400 + 255, model_max_length=512)
    assert len(tok.encode(" -7 -200", add_special_tokens=False)) == 2
    transformers = pytest.importorskip("transformers")
    plain = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)  # the llama-mesh dataset's
    assert len(plain.encode(" -7 -200", add_special_tokens=False)) > 2
    assert len(tok) - len(plain) == 255  # the same BPE and integers, plus " -1" .. " -255"


def _as_parts(data_dir: Path, out: Path) -> Path:
    """A copy of the tiny dataset with every mesh in the parts text and a manifest that says
    so: a real parts dataset."""
    from meshlm import meshtext
    from meshlm.modelfolder import format_block

    shutil.copytree(data_dir, out)
    for split in ("train", "validation", "test"):
        rows = [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines() if x]
        for row in rows:
            for m in row["messages"]:
                c = m["content"]
                k = c.find("v ")
                if k >= 0 and (k == 0 or c[k - 1] == "\n"):
                    m["content"] = c[:k] + meshtext.convert(c[k:], "parts")
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format"] = format_block(64, "parts")
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_parts_run_keeps_the_part_templates_it_learnt(data_dir, tmp_path):
    """``part_templates.json`` beside the weights: the templates of the training replies, with
    the dataset's manifest hash."""
    from meshlm import modelfolder
    from meshlm.part_templates import TemplateLibrary, read
    from meshlm.train import train
    from meshlm.train.tokenizer import train_tokenizer_from_dataset

    parts = _as_parts(data_dir, tmp_path / "parts")
    tok_dir = tmp_path / "tok"
    tok = train_tokenizer_from_dataset(parts, vocab_size=1400 + 255, model_max_length=512)
    tok.save_pretrained(tok_dir)
    out = tmp_path / "run"
    train(tiny_cfg(parts, out, tokenizer=str(tok_dir), max_steps=2, eval_steps=2, save_steps=2))
    assert modelfolder.read(out).format.name == "parts"
    lib, want = read(out), TemplateLibrary.from_dataset(parts)
    assert lib.templates == want.templates and lib.counts == want.counts and len(lib) >= 2
    sha = hashlib.sha256((parts / "manifest.json").read_bytes()).hexdigest()
    assert lib.source["manifest_sha256"] == sha and lib.source["dataset"] == str(parts)
    gen = sum(json.loads(x)["task"] == "generation" for x in (parts / "train.jsonl").open())
    assert lib.source["replies"] == gen


def tiny_cfg(data_dir, out, **kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, "data_dir": str(data_dir), "output_dir": str(out), **kw})


def write_recipe(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def trained_run(data_dir, tokenizer_dir, tmp_path_factory):
    """A finished full-fine-tune run through the public API (model trained from scratch)."""
    from meshlm.train import train

    out = tmp_path_factory.mktemp("run")
    result = train(tiny_cfg(data_dir, out, tokenizer=str(tokenizer_dir)))
    return out, result


# --------------------------------------------------------------------------------------------
# Configuration and recipes (no torch work)
# --------------------------------------------------------------------------------------------


def test_every_field_has_help():
    assert all(text.strip() for text in TrainConfig.field_help().values())


def test_recipe_and_overrides(tmp_path, capsys):
    recipe = write_recipe(
        tmp_path / "r.yaml", learning_rate=1e-4, packing=False, global_batch_size=16
    )
    args = [
        "--learning-rate",
        "3e-4",
        "--packing",
        "--max_steps=7",
        "--no-resume",
        "--lora_target_modules",
        "[q_proj, v_proj]",
        "--save_total_limit",
        "null",
    ]
    assert main(["train", "--config", str(recipe), *args, "--dry-run"]) == 0
    c = json.loads(capsys.readouterr().out)["config"]
    assert (c["learning_rate"], c["packing"], c["max_steps"], c["resume"]) == (3e-4, True, 7, False)
    assert c["lora_target_modules"] == ["q_proj", "v_proj"] and c["save_total_limit"] is None
    assert c["global_batch_size"] == 16 and c["recipe"] == str(recipe)
    # options left at their default do not override the recipe
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 0
    c = json.loads(capsys.readouterr().out)["config"]
    assert (c["learning_rate"], c["max_steps"], c["resume"]) == (1e-4, -1, True)
    with pytest.raises(ConfigError, match="unknown config key 'learning_rat'"):
        TrainConfig.load(recipe, {"learning_rat": 1})
    with pytest.raises(ConfigError, match="max_steps: expected int, got 'many'"):
        TrainConfig.load(recipe, {"max_steps": "many"})
    with pytest.raises(ConfigError, match="not a multiple"):
        TrainConfig.load(recipe, {"per_device_batch_size": 3}).resolve()
    with pytest.raises(ConfigError, match="loss_averaging must be 'token', 'sample' or 'mesh'"):
        TrainConfig.load(recipe, {"loss_averaging": "row"}).validate()
    with pytest.raises(ConfigError, match="mesh_loss_tokens must be >= 1"):
        TrainConfig.load(recipe, {"mesh_loss_tokens": 0}).validate()
    with pytest.raises(ConfigError, match="mesh_head_tokens must be >= 0"):
        TrainConfig.load(recipe, {"loss_averaging": "mesh", "mesh_head_tokens": -1}).validate()
    with pytest.raises(ConfigError, match="mesh_head_tokens needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_head_tokens": 15}).validate()
    with pytest.raises(ConfigError, match="mesh_new_weight must be a finite number >= 0"):
        TrainConfig.load(recipe, {"loss_averaging": "mesh", "mesh_new_weight": -1.0}).validate()
    with pytest.raises(ConfigError, match="mesh_new_weight must be a finite number >= 0"):
        inf = {"loss_averaging": "mesh", "mesh_new_weight": float("inf")}
        TrainConfig.load(recipe, inf).validate()
    with pytest.raises(ConfigError, match="mesh_new_weight needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_new_weight": 4.0}).validate()
    with pytest.raises(ConfigError, match="mesh_turn_end needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_turn_end": True}).validate()
    with pytest.raises(ConfigError, match="mesh_end_weight must be a finite number >= 0"):
        TrainConfig.load(recipe, {"loss_averaging": "mesh", "mesh_end_weight": -0.5}).validate()
    with pytest.raises(ConfigError, match="mesh_end_weight must be a finite number >= 0"):
        nan = {"loss_averaging": "mesh", "mesh_end_weight": float("nan")}
        TrainConfig.load(recipe, nan).validate()
    with pytest.raises(ConfigError, match="mesh_end_weight needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_end_weight": 1.0}).validate()
    with pytest.raises(ConfigError, match="mesh_face_end_weight must be a finite number >= 0"):
        neg = {"loss_averaging": "mesh", "mesh_face_end_weight": -1.0}
        TrainConfig.load(recipe, neg).validate()
    with pytest.raises(ConfigError, match="mesh_face_end_weight needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_face_end_weight": 1.0}).validate()
    with pytest.raises(ConfigError, match="mesh_repeat_weight must be a finite number >= 0"):
        inf = {"loss_averaging": "mesh", "mesh_repeat_weight": float("inf")}
        TrainConfig.load(recipe, inf).validate()
    with pytest.raises(ConfigError, match="mesh_repeat_weight needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_repeat_weight": 1.0}).validate()
    with pytest.raises(ConfigError, match="mesh_bare_plan_only needs loss_averaging 'mesh'"):
        TrainConfig.load(recipe, {"mesh_bare_plan_only": True}).validate()
    with pytest.raises(ConfigError, match="mesh_bare_plan_only needs assistant_only_loss"):
        bare = {"loss_averaging": "mesh", "mesh_bare_plan_only": True}
        TrainConfig.load(recipe, {**bare, "assistant_only_loss": False}).validate()
    with pytest.raises(ConfigError, match="loss_averaging 'mesh' .* packing false"):
        TrainConfig.load(recipe, {"loss_averaging": "mesh", "packing": True}).validate()


def test_mesh_token_mask_marks_the_mesh_lines_of_every_turn():
    """The bundled tokenizer: v/f lines of the user's and the assistant's turn (their newline
    included), not the prose, not a line of prose that starts with 'v', not the end of turn."""
    from transformers import AutoTokenizer

    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    text = tok.apply_chat_template(
        [
            {"role": "user", "content": "Name it:\nv 0 0 0\nv 0 12 63\nf 1 2 3"},
            {"role": "assistant", "content": "v 1 2 is not a vertex. Here:\n\nv 0 0 0\nf 1 2 3"},
        ],
        tokenize=False,
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    marked = "".join(
        tok.decode([i]) for i, m in zip(ids, MeshTokenMask(tok)(ids), strict=True) if m
    )
    assert marked == "v 0 0 0\nv 0 12 63\nf 1 2 3" + "v 0 0 0\nf 1 2 3"


def test_bare_mesh_start_cuts_a_bare_reply_at_its_mesh_and_leaves_an_exemplified_one():
    """``mesh_bare_plan_only``'s cut (bundled tokenizer): a conversation that shows no exemplar
    stops being supervised at the reply's first mesh token, right after its plan line; one
    whose user turn shows an exemplar (meshlm.exemplars.with_exemplar) is not cut, and nor is a
    reply without a mesh."""
    from transformers import AutoTokenizer

    from meshlm.exemplars import Exemplar, with_exemplar
    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    mm = MeshTokenMask(tok)
    reply = "Here is a 3D model of a drum:\nPlan: cylinder, 1 part.\n\nv 0 0 0\nv 0 9 0\nf -2 -1 -2"

    def row(user: str, answer: str) -> tuple[list[int], list[int]]:
        chat = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        prompt = tok.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(chat, tokenize=False)
        assert full.startswith(prompt)
        head = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(full, add_special_tokens=False)["input_ids"]
        assert ids[: len(head)] == head
        return ids, [-100] * len(head) + ids[len(head) :]

    ids, labels = row("a drum, please", reply)
    cut = mm.bare_mesh_start(ids, mm(ids), labels)
    assert tok.decode(ids[cut:]).startswith("v 0 0 0\nv 0 9 0")
    assert tok.decode(ids[:cut]).endswith("Plan: cylinder, 1 part.\n\n")
    shown = Exemplar("cylinder", "a can", "procedural:x", "v 0 0 0\nv 0 5 0\nf -2 -1 -2")
    ids, labels = row(with_exemplar("a drum, please", shown), reply)
    assert mm.bare_mesh_start(ids, mm(ids), labels) is None
    ids, labels = row("Name it:\nv 0 0 0\nv 0 9 0\nf -2 -1 -2", "A cylinder.")
    assert mm(ids).count(True) > 10 and mm.bare_mesh_start(ids, mm(ids), labels) is None


def test_turn_end_after_a_mesh_is_marked_with_mesh_turn_end():
    """``with_turn_ends``: the end of turn right after a mesh line joins the mesh tokens (in
    either turn), the one after prose does not, and nothing else changes."""
    from transformers import AutoTokenizer

    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    text = tok.apply_chat_template(
        [
            {"role": "user", "content": "Name it:\nv 0 0 0\nv 0 12 63\nf 1 2 3"},
            {"role": "assistant", "content": "A box."},
            {"role": "user", "content": "Now one of yours."},
            {"role": "assistant", "content": "Here:\n\nv 0 0 0\nf 1 2 3"},
        ],
        tokenize=False,
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    mask = MeshTokenMask(tok)
    plain, ends = mask(ids), mask.with_turn_ends(ids)
    assert ends == mask.with_turn_ends(ids, plain)
    added = [t for t, (a, b) in enumerate(zip(plain, ends, strict=True)) if a != b]
    assert not any(a and not b for a, b in zip(plain, ends, strict=True))
    # two meshes, two turn ends: the user's and the reply's, each right after its last face line
    assert len(added) == 2
    for t in added:
        assert ids[t] in tok.all_special_ids and plain[t - 1]
    assert tok.decode([ids[added[1] - 1]]).strip() == "3"  # the reply's last face line ends
    assert not mask.with_turn_ends(tok("A box.", add_special_tokens=False)["input_ids"])[-1]


def test_new_value_tokens_are_the_new_values_on_each_axis_of_each_part():
    """The bundled tokenizer (one token a number): in a parts reply, the new-value tokens are
    the coordinates not yet written on their axis in their part -- a second part starts afresh,
    even for a value the first part had; the user's mesh (a turn that ends) passes nothing on;
    prose numbers and face indices are never marked."""
    from transformers import AutoTokenizer

    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    reply = "Box 3 4:\nv 0 0 0\nv 0 5 0\nv 3 5 0\nf -3 -2 -1\nv 0 9 9\nv 0 1 9\nv 2 1 9\nf -1 -2 -3"
    text = tok.apply_chat_template(
        [
            {"role": "user", "content": "Like this, 3 parts:\nv 0 0 0\nv 0 5 0"},
            {"role": "assistant", "content": reply},
        ],
        tokenize=False,
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    mask = MeshTokenMask(tok)
    new = mask.new_values(ids)
    assert new == mask.new_values(ids, mask(ids))
    pieces = mask._pieces(ids)
    # each marked token as its line up to and including it (which coordinate it is)
    got = ["".join(pieces[: t + 1]).rsplit("\n", 1)[-1] for t, m in enumerate(new) if m]
    assert got == [
        "v 0", "v 0 0", "v 0 0 0",  # the user's mesh, vertex 1
        "v 0 5",  # its vertex 2: y
        "v 0", "v 0 0", "v 0 0 0",  # the reply starts afresh: vertex 1 all new
        "v 0 5",  # vertex 2: only y is new
        "v 3",  # vertex 3: only x
        "v 0", "v 0 9", "v 0 9 9",  # part 2 starts afresh (its x 0 was part 1's)
        "v 0 1",  # y
        "v 2",  # x
    ]  # fmt: skip


def test_the_numbers_of_a_plans_part_lines_are_new_value_tokens():
    """A plan's part lines (``--plan-boxes``) say the layout: their six numbers weigh as new
    values; the part's number, the plan line's count and the mesh's copies do not."""
    from transformers import AutoTokenizer

    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    reply = "Plan: box, 1 part.\nPart 1: 0 0 0 to 3 5 0.\n\nv 0 0 0\nv 0 5 0\nv 3 5 0\nf -3 -2 -1"
    text = tok.apply_chat_template(
        [{"role": "user", "content": "a box"}, {"role": "assistant", "content": reply}],
        tokenize=False,
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    mask = MeshTokenMask(tok)
    pieces = mask._pieces(ids)
    got = [
        "".join(pieces[: t + 1]).rsplit("\n", 1)[-1]
        for t, m in enumerate(mask.new_values(ids))
        if m
    ]
    assert got == [
        "Part 1: 0", "Part 1: 0 0", "Part 1: 0 0 0",
        "Part 1: 0 0 0 to 3", "Part 1: 0 0 0 to 3 5", "Part 1: 0 0 0 to 3 5 0",
        "v 0", "v 0 0", "v 0 0 0", "v 0 5", "v 3",
    ]  # fmt: skip


def test_new_value_tokens_cover_every_piece_of_a_number_split_into_digits():
    """A tokenizer that writes numbers digit by digit: a new value's every digit token is
    marked (the digit that tells 13 from the 12 above it is the last), a copied value's none."""
    from tokenizers import decoders, pre_tokenizers

    from meshlm.train.mesh_loss import MeshTokenMask

    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    text = "A box:\nv 12 7 40\nv 13 7 40\nf 1 2 1"
    texts = [text, "x\nv 1 2 3\nf 1 2 3\n"] * 20
    tok = _fast_tokenizer(pre, decoders.Metaspace(), texts)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    mask = MeshTokenMask(tok)
    pieces = mask._pieces(ids)
    assert sum(p.isdigit() and len(p) == 1 for p in pieces) == 13  # one token a digit
    text = "".join(pieces)  # as the mask reads it (Metaspace may lead with a space)
    covered, pos = set(), 0
    for p, m in zip(pieces, mask.new_values(ids), strict=True):
        if m:
            covered |= set(range(pos, pos + len(p)))
        pos += len(p)
    digits = sorted(i for i in covered if text[i].isdigit())
    first, second = text.index("v 12"), text.index("v 13")
    # line 1: every digit (all values new); line 2: the 1 and the 3 of 13, not 7 or 40
    want = [first + i for i in (2, 3, 5, 7, 8)] + [second + 2, second + 3]
    assert digits == want


def _mesh_chat_ids(mesh: str):
    """The bundled tokenizer, a MeshTokenMask over it, and the ids of a chat whose user turn
    shows ``mesh`` before prose and whose reply is a plan line and ``mesh``."""
    from transformers import AutoTokenizer

    from meshlm.modelfolder import BUNDLED_MODEL
    from meshlm.train.mesh_loss import MeshTokenMask

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    text = tok.apply_chat_template(
        [
            {"role": "user", "content": f"Like this:\n{mesh}\n\nOne more."},
            {"role": "assistant", "content": f"Plan: box, 2 parts.\n\n{mesh}"},
        ],
        tokenize=False,
    )
    return tok, MeshTokenMask(tok), tok(text, add_special_tokens=False)["input_ids"]


def test_part_end_tokens_are_where_a_mesh_goes_on_to_a_part_or_stops():
    """The bundled tokenizer: the part-end tokens of a two-part reply after a two-part user
    mesh are the newline after each part's last face line when another part follows, and what
    ends each mesh (the user's newline before prose, the reply's end of turn) -- never a newline
    between face lines or between a part's vertex and face lines."""
    tok, mask, ids = _mesh_chat_ids(
        "v 0 0 0\nv 0 5 0\nv 3 5 0\nf -3 -2 -1\nf -1 -2 -3\nv 0 9 9\nv 0 1 9\nv 2 1 9\nf -1 -2 -3"
    )
    pieces = mask._pieces(ids)
    ends = [t for t, m in enumerate(mask.part_ends(ids)) if m]
    assert len(ends) == 4
    for t in ends:  # each right after a face line's last index
        assert "".join(pieces[:t]).rsplit("\n", 1)[-1] in ("f -3 -2 -1", "f -1 -2 -3")
    more = [t for t in ends if pieces[t] == "\n" and pieces[t + 1] == "v"]
    assert len(more) == 2  # the user's part 1 -> 2 and the reply's
    assert ids[ends[-1]] in tok.all_special_ids  # the reply's mesh ends its turn
    assert pieces[ends[1]].startswith("\n") and pieces[ends[1] + 1] != "v"  # the user's ends
    assert not any(mask.part_ends(tok("f 1 2 3 and prose", add_special_tokens=False)["input_ids"]))
    # the face ends: after each face line that another face line of its part follows
    faces = [t for t, m in enumerate(mask.face_ends(ids)) if m]
    assert len(faces) == 2  # "f -3 -2 -1" then "f -1 -2 -3" in the user's part 1 and the reply's
    for t in faces:
        assert pieces[t] == "\n" and pieces[t + 1] == "f"
        assert "".join(pieces[:t]).rsplit("\n", 1)[-1] == "f -3 -2 -1"
    assert not set(faces) & set(ends)


def test_repeat_targets_are_the_last_values_that_would_write_a_line_twice():
    """The bundled tokenizer: in a two-part user mesh and reply, each vertex line whose first two
    values equal an earlier line's of its part has its last value as a target, with the ids of
    the values that would repeat a line; a multi-digit value is one whole-number token."""
    tok, mask, ids = _mesh_chat_ids(
        "v 0 0 0\nv 0 0 12\nv 0 5 0\nv 0 5 12\nf -4 -3 -2\nf -3 -2 -1\nv 0 0 7\nv 0 0 3\nf -1 -2 -3"
    )
    pieces = mask._pieces(ids)
    got = [(pieces[t], sorted(mask.pieces[i] for i in bad)) for t, bad in mask.repeat_targets(ids)]
    # per mesh: "v 0 0 12" (not "v 0 0 0"), "v 0 5 12" (not "v 0 5 0"), "v 0 0 3" (not 7)
    assert got == [(" 12", [" 0"]), (" 12", [" 0"]), (" 3", [" 7"])] * 2
    for _, bad in mask.repeat_targets(ids):
        assert all(mask.pieces[i] == tok.decode([i]) for i in bad)
    assert mask.repeat_targets(tok("v 1 2 3\nv 1 2 4", add_special_tokens=False)["input_ids"])


def test_new_weight_without_new_mask_is_refused():
    import torch

    from meshlm.train.mesh_loss import mesh_weighted_loss

    ids = torch.tensor([[1, 2, 3]])
    mask = torch.tensor([[False, True, True]])
    with pytest.raises(ValueError, match="new_weight given without new_mask"):
        mesh_weighted_loss(torch.zeros(1, 3, 5), ids, ids, mask, None, 512, 0, None, 2.0)
    with pytest.raises(ValueError, match="end_weight given without end_mask"):
        mesh_weighted_loss(torch.zeros(1, 3, 5), ids, ids, mask, None, 512, 0, None, 0, None, 1)
    with pytest.raises(ValueError, match="face_weight given without face_mask"):
        mesh_weighted_loss(
            torch.zeros(1, 3, 5), ids, ids, mask, None, 512, 0, None, 0, None, 0, None, 1
        )
    with pytest.raises(ValueError, match="repeat_weight given without repeat_ids"):
        mesh_weighted_loss(
            torch.zeros(1, 3, 5), ids, ids, mask, None, 512, 0, None, 0, None, 0, None, 0, None, 1
        )
    loss, _, scored = mesh_weighted_loss(torch.zeros(1, 3, 5), ids, ids, mask, None, 512)
    assert int(scored) == 2 and torch.isclose(loss, torch.log(torch.tensor(5.0)) * 2 / 512)


def _fast_tokenizer(pre, decoder, texts):
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre, decoder
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def test_mesh_token_mask_reads_sentencepiece_pieces_and_refuses_what_it_cannot_read():
    """A SentencePiece-style tokenizer ('\u2581' for spaces) drops a token's leading space when
    the token is decoded alone; the mask still finds the mesh lines. A tokenizer whose decoding
    loses the newlines cannot have its mesh lines found: refused with MeshMaskError."""
    from tokenizers import decoders, pre_tokenizers

    from meshlm.train.mesh_loss import MeshMaskError, MeshTokenMask

    texts = ["x\nv 1 2 3\nv 10 20 30\nf 1 2 3\n", "Here is a box:\nv 0 0 0\nf 3 2 1\n"] * 20
    sp = _fast_tokenizer(pre_tokenizers.Metaspace(), decoders.Metaspace(), texts)
    ids = sp("Box:\nv 10 2 3\nf 1 2 3", add_special_tokens=False)["input_ids"]
    assert any(
        sp.decode([i]) != sp.convert_ids_to_tokens(i).replace("\u2581", " ") for i in ids
    )  # the trap: pieces decoded alone lose their space
    mask = MeshTokenMask(sp)(ids)
    marked = "".join(MeshTokenMask(sp)._pieces([i for i, m in zip(ids, mask, strict=True) if m]))
    assert marked.endswith("v 10 2 3\nf 1 2 3") and "Box" not in marked  # a merged ':\nv' may lead
    lossy = _fast_tokenizer(pre_tokenizers.Whitespace(), None, texts)
    with pytest.raises(MeshMaskError, match="cannot find the mesh lines"):
        MeshTokenMask(lossy)


def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access during a dry run")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_dry_run_llama_mesh_8b_resolves_without_network(monkeypatch, capsys):
    _no_network(monkeypatch)
    recipe = str(RECIPES / "llama-mesh-8b.yaml")
    assert main(["train", "--config", recipe, "--num_processes", "32", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    c = plan["config"]
    assert c["model"] == "meta-llama/Llama-3.1-8B-Instruct" and c["method"] == "full"
    assert (c["learning_rate"], c["lr_scheduler"], c["warmup_steps"]) == (1e-5, "cosine", 30)
    assert (c["max_length"], c["precision"]) == (8192, "bf16")
    assert plan["global_batch_size"] == 128 and plan["world_size"] == 32
    assert plan["per_device_batch_size"] * plan["gradient_accumulation_steps"] * 32 == 128
    assert plan["gradient_accumulation_steps"] == 4
    # one process: all of the global batch through accumulation
    assert main(["train", "--config", recipe, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["gradient_accumulation_steps"] == 128


@pytest.mark.parametrize("name", ["bundled.yaml", "lora-small.yaml"])
def test_other_recipes_dry_run(name, monkeypatch, capsys):
    _no_network(monkeypatch)
    assert main(["train", "--config", str(RECIPES / name), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    if name == "bundled.yaml":
        assert 2e6 < plan["scratch_model"]["parameters"] < 10e6
        assert plan["config"]["precision"] == "fp32"
    else:
        assert plan["config"]["method"] == "lora"


@pytest.mark.parametrize(
    "sizes",
    [
        dict(tie_word_embeddings=True),
        dict(tie_word_embeddings=False, num_heads=4, num_kv_heads=1, intermediate_size=200),
    ],
)
def test_dry_run_parameter_arithmetic_matches_the_transformers_model(sizes):
    """The dry run counts the scratch model without transformers; the model it builds agrees."""
    from transformers import LlamaForCausalLM

    from meshlm.train.config import scratch_param_count
    from meshlm.train.model import count_parameters, llama_config

    cfg = TrainConfig.from_dict({**TINY, **sizes})
    with torch.device("meta"):
        model = LlamaForCausalLM(llama_config(cfg, 1400))
    assert scratch_param_count(cfg, 1400) == count_parameters(model)


@pytest.mark.skipif(torch.cuda.is_available(), reason="QLoRA can run on this machine")
def test_qlora_refuses_on_cpu_at_once(tmp_path, capsys):
    from meshlm.train import QLoRAUnavailableError, train

    started = time.perf_counter()
    code = main(
        [
            "train",
            "--config",
            str(RECIPES / "lora-small.yaml"),
            "--method",
            "qlora",
            "--data_dir",
            str(tmp_path / "nothing"),
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "QLoRA" in err and "CUDA" in err and "--method lora" in err
    assert time.perf_counter() - started < 10  # refused before any loading
    assert not (tmp_path / "o").exists()
    with pytest.raises(QLoRAUnavailableError):
        train(TrainConfig.from_dict({"model": "some/model", "method": "qlora"}))


# --------------------------------------------------------------------------------------------
# Tokenizer and loss mask
# --------------------------------------------------------------------------------------------


def test_tokenizer_numbers_whole_and_chat_template(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    for i in (0, 7, 63, 100, 999, 1000, 1023):
        assert len(tok.encode(str(i), add_special_tokens=False)) == 1, i
        assert len(tok.encode(f" {i}", add_special_tokens=False)) == 1, i
    line = "v 12 0 63\n"
    ids = tok.encode(line, add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == ["v", " 12", " 0", " 63", "Ċ"]
    assert tok.convert_ids_to_tokens(tok.encode("f 1 10 102\n", add_special_tokens=False)) == [
        "f",
        " 1",
        " 10",
        " 102",
        "Ċ",
    ]  # longest match: " 102" is not " 10" + "2"
    text = "v 0 0 0\nv 0 0 63\nv 0 63 0\nf 1 2 3\n"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    msgs = [{"role": "user", "content": "Make a cone."}]
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nMake a cone."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert tok.eos_token == "<|eot_id|>"


def _assistant_text(messages) -> str:
    return "".join(
        m["content"].strip() + "<|eot_id|>" for m in messages if m["role"] == "assistant"
    )


def test_assistant_only_loss_mask(data_dir, tokenizer_dir, tmp_path):
    """Collated labels cover exactly the assistant turns plus their end-of-turn token."""
    from meshlm.train import build_trainer

    trainer = build_trainer(tiny_cfg(data_dir, tmp_path, tokenizer=str(tokenizer_dir)))
    tok = trainer.processing_class
    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()]
    tasks = set()
    for i in range(14):
        batch = trainer.data_collator([trainer.train_dataset[i]])
        ids, labels = batch["input_ids"][0], batch["labels"][0]
        trained = ids[labels != -100].tolist()
        assert tok.decode(trained) == _assistant_text(rows[i]["messages"])
        user_mesh = any(m["role"] == "user" and "\nv " in m["content"] for m in rows[i]["messages"])
        tasks.add((rows[i]["task"], user_mesh))
    assert ("understanding", True) in tasks and ("generation", False) in tasks


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def test_few_steps_lower_loss_and_change_every_parameter(data_dir, tokenizer_dir, tmp_path):
    from meshlm.train import build_trainer

    trainer = build_trainer(
        tiny_cfg(
            data_dir,
            tmp_path,
            tokenizer=str(tokenizer_dir),
            max_steps=12,
            eval_steps=0,
            save_steps=100,
        )
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    loss_before = trainer.evaluate()["eval_loss"]
    trainer.train()
    loss_after = trainer.evaluate()["eval_loss"]
    assert loss_after < loss_before - 0.1
    unchanged = [
        n
        for n, p in trainer.model.named_parameters()
        if p.requires_grad and torch.equal(p.detach(), before[n])
    ]
    assert not unchanged


def test_packing_trains_and_masks_user_turns(data_dir, tokenizer_dir, tmp_path):
    from meshlm.train import build_trainer

    trainer = build_trainer(
        tiny_cfg(
            data_dir,
            tmp_path,
            tokenizer=str(tokenizer_dir),
            packing=True,
            max_steps=3,
            eval_steps=0,
            save_steps=100,
        )
    )
    tok = trainer.processing_class
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    assert "position_ids" in batch and batch["input_ids"].shape[0] == 1  # padding-free rows
    trained = batch["input_ids"][batch["labels"] != -100].tolist()
    header = tok.convert_tokens_to_ids("<|start_header_id|>")
    assert header not in trained and tok.convert_tokens_to_ids("<|eot_id|>") in trained
    out = trainer.train()
    assert out.global_step == 3 and out.training_loss == out.training_loss  # finite


def test_output_folder_describes_itself(trained_run, data_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, result = trained_run
    assert result.global_step == 10 and result.resumed_from is None
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "meshlm.json",
        "loss.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "meshlm.json").read_text())
    assert meta["format"]["bins"] == 64 and meta["format"]["name"] == "llama-mesh"
    assert meta["schema_version"] == 2 and meta["versions"]["meshlm"] and meta["kind"] == "model"
    assert meta["recipe"]["learning_rate"] == TINY["learning_rate"]
    assert meta["recipe"]["gradient_accumulation_steps"] == 2
    manifest_hash = __import__("hashlib").sha256((data_dir / "manifest.json").read_bytes())
    assert meta["dataset"]["manifest_sha256"] == manifest_hash.hexdigest()
    assert meta["dataset"]["counts"] == {"train": 48, "validation": 8, "test": 8}
    assert {"train_loss", "eval_loss"} <= set(meta["metrics"]) and meta["global_step"] == 10
    assert meta["shape_families"] == []  # the test data has no procedural shapes
    tok = AutoTokenizer.from_pretrained(out)
    assert "generation" in tok.chat_template and tok.eos_token == "<|eot_id|>"
    model = AutoModelForCausalLM.from_pretrained(out)
    assert tok.eos_token_id in model.generation_config.eos_token_id  # [<|eot_id|>, <|end_of_text|>]
    assert model.config.use_cache
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Make a cone."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    gen = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > prompt["input_ids"].shape[1]


def test_lora_adapter_saves_reloads_and_merges(trained_run, data_dir, tmp_path, capsys):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    from meshlm.train import train

    base_dir, _ = trained_run
    out = tmp_path / "adapter"
    cfg = tiny_cfg(
        data_dir,
        out,
        model=str(base_dir),
        method="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        learning_rate=1e-2,
        max_steps=6,
        eval_steps=0,
        save_steps=100,
    )
    result = train(cfg)
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    meta = json.loads((out / "meshlm.json").read_text())
    assert meta["kind"] == "adapter" and 0 < meta["trainable_parameters"] < meta["parameters"]
    assert result.global_step == 6

    merged_dir = tmp_path / "merged"
    assert main(["merge", str(out), "-o", str(merged_dir)]) == 0
    assert json.loads((merged_dir / "meshlm.json").read_text())["kind"] == "model"
    adapter = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, base.config.vocab_size, (2, 24), generator=gen)
    with torch.no_grad():
        la, lm, lb = adapter(ids).logits, merged(ids).logits, base(ids).logits
    assert torch.allclose(la, lm, atol=1e-4, rtol=1e-4)
    assert (la - lb).abs().max() > 1e-3  # the adapter really changed the model


def test_init_adapter_continues_a_lora_adapter(trained_run, data_dir, tmp_path):
    """A second stage starts from the first stage's adapter weights, not from a fresh adapter."""
    from safetensors.torch import load_file

    from meshlm.train import train

    base_dir, _ = trained_run
    lora = dict(model=str(base_dir), method="lora", lora_r=4, lora_alpha=8, lora_dropout=0.0)
    lora.update(eval_steps=0, save_steps=100)
    stage1 = tmp_path / "stage1"
    train(tiny_cfg(data_dir, stage1, learning_rate=1e-2, max_steps=4, **lora))
    stage2 = tmp_path / "stage2"  # a learning rate of ~0: the weights stay stage 1's
    stage2.mkdir()
    (stage2 / "README.md").write_text("# our model card\n")  # TRL would write its own over it
    cfg = tiny_cfg(
        data_dir, stage2, learning_rate=1e-12, max_steps=1, init_adapter=str(stage1), **lora
    )
    assert train(cfg).global_step == 1
    first = load_file(stage1 / "adapter_model.safetensors")
    second = load_file(stage2 / "adapter_model.safetensors")
    assert first.keys() == second.keys()
    b = [k for k in first if "lora_B" in k]
    assert b and all(first[k].abs().max() > 0 for k in b)  # a fresh adapter's B is all zeros
    assert all(torch.allclose(first[k], second[k], atol=1e-6) for k in first)
    recorded = json.loads((stage2 / "meshlm.json").read_text())
    assert recorded["recipe"]["init_adapter"] == str(stage1)
    assert (stage2 / "README.md").read_text() == "# our model card\n"

    with pytest.raises(ConfigError, match="r=4 alpha=8 .* differ from the recipe's lora_r=8"):
        train(tiny_cfg(data_dir, tmp_path / "x", init_adapter=str(stage1), **{**lora, "lora_r": 8}))
    with pytest.raises(ConfigError, match="no adapter_config.json"):
        train(tiny_cfg(data_dir, tmp_path / "y", init_adapter=str(tmp_path), **lora))
    with pytest.raises(ConfigError, match="init_adapter continues a LoRA adapter"):
        tiny_cfg(data_dir, tmp_path / "z", init_adapter=str(stage1)).validate()


def test_merge_rejects_non_adapter(tmp_path, capsys):
    assert main(["merge", str(tmp_path), "-o", str(tmp_path / "m")]) == 1
    assert "not a LoRA adapter" in capsys.readouterr().err


def test_merge_and_generate_name_a_broken_adapter_config(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "adapter_config.json").write_text("{not json")
    (run / "meshlm.json").write_text(json.dumps({"schema": 2, "kind": "adapter"}))
    assert main(["merge", str(run), "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "adapter_config.json: not a valid adapter config" in err
    assert not (tmp_path / "m").exists()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "meshlm", *args]


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.slow
def test_resume_after_killing_a_real_run(data_dir, tokenizer_dir, tmp_path):
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "tiny.yaml",
        **TINY,
        data_dir=str(data_dir),
        output_dir=str(out),
        tokenizer=str(tokenizer_dir),
    )
    args = _cli(
        "train",
        "--config",
        str(recipe),
        "--max_steps",
        "60",
        "--save_steps",
        "10",
        "--eval_steps",
        "0",
        "--logging_steps",
        "5",
    )
    proc = subprocess.Popen(
        args,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if any((p / "trainer_state.json").is_file() for p in out.glob("checkpoint-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "meshlm.json").exists()
    from meshlm.train.sft import last_checkpoint

    ckpt = last_checkpoint(out)
    step = int(Path(ckpt).name.split("-")[1])
    assert 0 < step < 60

    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["global_step"] == 60 and summary["resumed_from"] == f"checkpoint-{step}"
    meta = json.loads((out / "meshlm.json").read_text())
    assert meta["resumed_from"] == f"checkpoint-{step}" and meta["global_step"] == 60
    state = json.loads((out / "checkpoint-60" / "trainer_state.json").read_text())
    logged = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged[0] <= step and logged[-1] == 60  # history carried over from the checkpoint


@pytest.mark.slow
def test_two_process_data_parallel_gloo(data_dir, tokenizer_dir, tmp_path):
    out = tmp_path / "ddp"
    recipe = write_recipe(
        tmp_path / "tiny.yaml",
        **TINY,
        data_dir=str(data_dir),
        output_dir=str(out),
        tokenizer=str(tokenizer_dir),
    )
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "meshlm",
        "train",
        "--config",
        str(recipe),
        "--max_steps",
        "4",
        "--global_batch_size",
        "4",
        "--per_device_batch_size",
        "1",
        "--eval_steps",
        "2",
        "--save_steps",
        "100",
    ]
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((out / "meshlm.json").read_text())
    assert meta["recipe"]["world_size"] == 2
    assert meta["recipe"]["gradient_accumulation_steps"] == 2
    assert meta["global_step"] == 4 and "eval_loss" in meta["metrics"]
    assert (out / "model.safetensors").is_file() and (out / "loss.png").is_file()


def _mesh_positions(tokenizer, ids: list[int]) -> list[bool]:
    """Mesh tokens by a rule of meshlm's tokenizer (not the regex of meshlm.train.mesh_loss):
    a 'v'/'f' token that starts a line, the number tokens after it and the newline ending it."""
    pieces = [tokenizer.decode([i]) for i in ids]
    out = [False] * len(ids)
    for t, p in enumerate(pieces):
        if p in ("v", "f") and (t == 0 or pieces[t - 1].endswith("\n")):
            k = t + 1
            while k < len(pieces) and pieces[k].startswith(" ") and pieces[k][1:].isdigit():
                k += 1
            if k - t - 1 >= 3:
                end = k + 1 if k < len(pieces) and pieces[k] == "\n" else k
                out[t:end] = [True] * (end - t)
    return out


def _end_positions(tokenizer, ids: list[int], faces: bool = False) -> list[bool]:
    """Part-end tokens by hand over meshlm's tokenizer's pieces (not meshlm.eval.mesh_kinds):
    the token after a face line's last number token, unless it is a newline and the next line
    is another face line; with ``faces``, exactly those others (the face-end tokens)."""
    pieces = [tokenizer.decode([i]) for i in ids]
    out = [False] * len(ids)
    for t, p in enumerate(pieces):
        if p == "f" and (t == 0 or pieces[t - 1].endswith("\n")):
            k = t + 1
            while (
                k < len(pieces)
                and pieces[k].startswith(" ")
                and pieces[k][1:].lstrip("-").isdigit()
            ):
                k += 1
            if k < len(pieces):
                more = pieces[k] == "\n" and k + 1 < len(pieces) and pieces[k + 1] == "f"
                out[k] = more if faces else not more
    return out


def _repeat_positions(tokenizer, ids: list[int]) -> dict[int, list[int]]:
    """Unlikelihood targets by hand over meshlm's tokenizer's pieces (not meshlm.eval.mesh_kinds):
    token t of a 'v' line's third number -> the ids spelling the third numbers of earlier lines
    of its part (a 'v' line after an 'f' line starts one) that begin with the same two numbers."""
    pieces = [tokenizer.decode([i]) for i in ids]
    spelled: dict[str, list[int]] = {}
    for i in range(len(tokenizer)):
        spelled.setdefault(tokenizer.decode([i]), []).append(i)
    out: dict[int, list[int]] = {}
    heads: dict[tuple[str, str], list[str]] = {}
    after_faces = False
    for t, p in enumerate(pieces):
        if p in ("v", "f") and (t == 0 or pieces[t - 1].endswith("\n")):
            if p == "f":
                after_faces = True
                continue
            if after_faces:
                heads, after_faces = {}, False
            x, y, z = pieces[t + 1 : t + 4]
            if heads.get((x, y)):
                out[t + 3] = sorted(i for v in heads[(x, y)] for i in spelled[v])
            heads.setdefault((x, y), []).append(z)
    return out


def _new_positions(tokenizer, ids: list[int]) -> list[bool]:
    """New-value tokens by hand over meshlm's tokenizer's pieces (not meshlm.eval.mesh_kinds):
    the number tokens of a 'v' line whose value is not yet on their axis since the last part
    began (a 'v' line after an 'f' line starts a part)."""
    pieces = [tokenizer.decode([i]) for i in ids]
    out = [False] * len(ids)
    seen: list[set[str]] = [set(), set(), set()]
    after_faces = False
    for t, p in enumerate(pieces):
        if p == "f" and (t == 0 or pieces[t - 1].endswith("\n")):
            after_faces = True
        if p == "v" and (t == 0 or pieces[t - 1].endswith("\n")):
            if after_faces:
                seen, after_faces = [set(), set(), set()], False
            for axis in range(3):
                value = pieces[t + 1 + axis]
                out[t + 1 + axis] = value not in seen[axis]
                seen[axis].add(value)
    return out


def _with_lead_ins(data_dir: Path, out: Path) -> Path:
    """A copy of ``data_dir`` whose generation replies start "Here is a 3D model:\nPlan: box, 1
    part.\n\n" before their mesh."""
    shutil.copytree(data_dir, out)
    path = out / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        if r["task"] == "generation":
            reply = r["messages"][-1]
            reply["content"] = "Here is a 3D model:\nPlan: box, 1 part.\n\n" + reply["content"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.mark.parametrize(
    "mode",
    [
        "token",
        "sample",
        "mesh",
        "mesh+head",
        "mesh+new",
        "mesh+end",
        "mesh+face",
        "mesh+repeat",
        "mesh+bare",
    ],
)
def test_loss_averaging_weighs_tokens_or_conversations(data_dir, tokenizer_dir, tmp_path, mode):
    """Two micro-batches of one conversation each (a long mesh reply, a short caption): the
    gradient the Trainer accumulates is that of the token-weighted mean ('token'), of the mean
    of the two conversations' means ('sample'), or ('mesh') of the mean over conversations of
    prose mean + summed loss of every mesh token (the user's mesh too) / mesh_loss_tokens,
    computed here by hand; 'mesh+head' adds the mean loss of the first 7 mesh tokens the
    assistant writes; 'mesh+new' adds 3 x the summed loss of the assistant's new-value tokens
    / mesh_loss_tokens; 'mesh+end' adds 2 x the mean loss of the assistant's part-end tokens;
    'mesh+face' adds 1.5 x the mean loss of its face-end tokens; 'mesh+repeat' adds 2.5 x the
    mean over its unlikelihood targets of -log(1 - p(a value that repeats a vertex line));
    'mesh+bare' (mesh_bare_plan_only): the generation row shows no exemplar, so nothing of its
    reply from the first mesh token on counts (its user turn has no mesh either)."""
    import torch
    import torch.nn.functional as F

    from meshlm.train import build_trainer

    head = 7 if mode == "mesh+head" else 0
    new_weight = 3.0 if mode == "mesh+new" else 0.0
    end_weight = 2.0 if mode == "mesh+end" else 0.0
    face_weight = 1.5 if mode == "mesh+face" else 0.0
    repeat_weight = 2.5 if mode == "mesh+repeat" else 0.0
    bare = mode == "mesh+bare"
    if bare:  # replies with a lead-in and plan line before the mesh, as the parts data has
        data_dir = _with_lead_ins(data_dir, tmp_path / "data")
    tr = build_trainer(
        tiny_cfg(
            data_dir,
            tmp_path,
            tokenizer=str(tokenizer_dir),
            loss_averaging=mode.split("+")[0],
            per_device_batch_size=1,
            global_batch_size=2,
            mesh_loss_tokens=300,
            mesh_head_tokens=head,
            mesh_new_weight=new_weight,
            mesh_end_weight=end_weight,
            mesh_face_end_weight=face_weight,
            mesh_repeat_weight=repeat_weight,
            mesh_bare_plan_only=bare,
        )
    )
    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()]
    gen = next(i for i, r in enumerate(rows) if r["task"] == "generation")
    und = next(i for i, r in enumerate(rows) if r["task"] == "understanding")
    batches = [tr.data_collator([tr.train_dataset[i]]) for i in (gen, und)]
    model = tr.model
    model.train()
    sums, counts, per_row = [], [], []
    for b in batches:
        logits = model(input_ids=b["input_ids"]).logits[0, :-1]
        target = b["labels"][0, 1:]
        keep = target != -100
        nll = F.cross_entropy(logits[keep], target[keep], reduction="sum")
        sums.append(nll)
        counts.append(int(keep.sum()))
        ids = b["input_ids"][0].tolist()
        mesh = torch.tensor(_mesh_positions(tr.processing_class, ids))[1:]
        ce = F.cross_entropy(logits, b["input_ids"][0, 1:], reduction="none")
        if bare and b is batches[0]:  # the lead-in and plan stay; the mesh and its end go
            first = int(torch.nonzero(mesh & keep).flatten()[0])
            assert 10 < int(keep[:first].sum()) < 40  # "Here is ...: Plan: ..." only
            keep, mesh = keep.clone(), mesh.clone()
            keep[first:] = False
            mesh[first:] = False
        prose = keep & ~mesh
        per_row.append(ce[prose].sum() / prose.sum() + ce[mesh].sum() / 300)
        written = torch.nonzero(mesh & keep).flatten()
        if head and len(written):  # the reply's first mesh tokens, found here by position
            per_row[-1] = per_row[-1] + ce[written[:head]].mean()
        if new_weight:
            new = torch.tensor(_new_positions(tr.processing_class, ids))[1:] & keep
            per_row[-1] = per_row[-1] + new_weight * ce[new].sum() / 300
            assert new.sum() > 5 if b is batches[0] else not new.any()
        if end_weight:
            end = torch.tensor(_end_positions(tr.processing_class, ids))[1:] & keep
            if end.any():
                per_row[-1] = per_row[-1] + end_weight * ce[end].mean()
            assert end.sum() >= 1 if b is batches[0] else not end.any()
        if face_weight:
            face = torch.tensor(_end_positions(tr.processing_class, ids, faces=True))[1:] & keep
            if face.any():
                per_row[-1] = per_row[-1] + face_weight * ce[face].mean()
            assert face.sum() > 10 if b is batches[0] else not face.any()
        if repeat_weight:
            targets = {t: bad for t, bad in _repeat_positions(tr.processing_class, ids).items()}
            probs = logits.softmax(-1)
            ul = [
                -torch.log(1 - probs[t - 1, bad].sum())
                for t, bad in targets.items()
                if b["labels"][0, t] != -100
            ]
            if ul:
                per_row[-1] = per_row[-1] + repeat_weight * torch.stack(ul).mean()
            assert len(ul) >= 3 if b is batches[0] else not ul
        if b is batches[1]:  # the understanding row: its mesh is in the user turn
            assert mesh.sum() > 30 and not len(written)
        elif bare:  # the trainer's own cut is where this test put it
            cut = tr.mesh_mask.bare_mesh_start(
                ids, _mesh_positions(tr.processing_class, ids), b["labels"][0].tolist()
            )
            assert cut == first + 1 and not len(written)
        else:
            assert len(written) > 50
    assert counts[0] > 3 * counts[1]  # the mesh reply has many more supervised tokens
    # (counts are TRL's own labels: mesh_bare_plan_only changes the loss, not the collator)
    if mode == "token":
        want = (sums[0] + sums[1]) / (counts[0] + counts[1])
    elif mode == "sample":
        want = (sums[0] / counts[0] + sums[1] / counts[1]) / 2
    else:
        want = (per_row[0] + per_row[1]) / 2
    model.zero_grad()
    want.backward()
    expected = model.get_input_embeddings().weight.grad.clone()
    model.zero_grad()
    samples, n_items = tr.get_batch_samples(iter(batches), 2, torch.device("cpu"))
    tr.current_gradient_accumulation_steps = 2  # set by the training loop for each step
    for b in samples:
        tr.training_step(model, b, n_items)
    got = model.get_input_embeddings().weight.grad
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-7)


def test_missing_base_model_folder_is_one_clear_error(data_dir, tmp_path, capsys):
    from meshlm.cli import main

    recipe = write_recipe(
        tmp_path / "r.yaml",
        model=str(tmp_path / "stage1"),
        data_dir=str(data_dir),
        output_dir=str(tmp_path / "out"),
    )
    assert main(["train", "--config", str(recipe)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"meshlm: error: {tmp_path / 'stage1'}: no such local folder")
    assert not any("Traceback" in line for line in err)


def test_shape_families_come_from_the_dataset_manifest():
    from meshlm.shapes import list_families
    from meshlm.train.sft import shape_families

    def fams(args):
        return shape_families({"manifest": {"arguments": args}})

    assert fams({"procedural": 100, "families": ["box", "mug"]}) == ["box", "mug"]
    assert fams({"procedural": 100, "families": []}) == list_families()
    assert fams({"procedural": 100}) == list_families()  # built before --family existed
    assert fams({"procedural": 0, "meshes": ["x"]}) == [] and shape_families({}) == []


def _words_dataset(folder: Path, words: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    row = {
        "messages": [
            {"role": "user", "content": words},
            {"role": "assistant", "content": f"{words}\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3"},
        ]
    }
    (folder / "train.jsonl").write_text((json.dumps(row) + "\n") * 20)
    return folder


def test_tokenizer_data_trains_the_vocabulary_on_another_dataset(data_dir, tmp_path):
    """A scratch run on data_dir with tokenizer_data=OTHER gets exactly the tokenizer trained on
    OTHER's train split (its words whole), not the one of its own data. (2,600 leaves room for
    BPE merges beside the 2,048 integer tokens.)"""
    from transformers import AutoTokenizer

    from meshlm.train import train
    from meshlm.train.tokenizer import train_tokenizer_from_dataset

    other = _words_dataset(tmp_path / "other", "quokka marmot axolotl pangolin " * 4)
    out = tmp_path / "run"
    train(
        tiny_cfg(
            data_dir,
            out,
            tokenizer_data=str(other),
            tokenizer_vocab_size=2600,
            max_steps=1,
            eval_steps=0,
        )
    )
    want = train_tokenizer_from_dataset(other, vocab_size=2600, model_max_length=512)
    want.save_pretrained(tmp_path / "want")
    got = json.loads((out / "tokenizer" / "tokenizer.json").read_text())
    assert got == json.loads((tmp_path / "want" / "tokenizer.json").read_text())
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok(" axolotl", add_special_tokens=False)["input_ids"]) == 1
    own = train_tokenizer_from_dataset(data_dir, vocab_size=2600, model_max_length=512)
    assert len(own(" axolotl", add_special_tokens=False)["input_ids"]) > 1


def test_tokenizer_data_needs_a_scratch_model_without_tokenizer(data_dir, tmp_path, capsys):
    with pytest.raises(ConfigError, match="tokenizer_data"):
        tiny_cfg(data_dir, tmp_path, tokenizer_data=str(data_dir), tokenizer="x").validate()
    with pytest.raises(ConfigError, match="tokenizer_data"):
        tiny_cfg(data_dir, tmp_path, tokenizer_data=str(data_dir), model="some/model").validate()
    recipe = write_recipe(
        tmp_path / "r.yaml",
        **TINY,
        data_dir=str(data_dir),
        tokenizer_data=str(tmp_path / "nowhere"),
        output_dir=str(tmp_path / "out"),
    )
    assert main(["train", "--config", str(recipe)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"meshlm: error: {tmp_path / 'nowhere' / 'train.jsonl'}: no such file "
        "(the tokenizer's training text)"
    )


def test_greedy_recipe_saves_a_model_meshlm_decodes_greedily(data_dir, tokenizer_dir, tmp_path):
    from transformers import GenerationConfig

    from meshlm.infer.engine import model_sampling_defaults
    from meshlm.train import train

    plain, greedy = tmp_path / "plain", tmp_path / "greedy"
    train(tiny_cfg(data_dir, plain, tokenizer=str(tokenizer_dir), max_steps=1, eval_steps=0))
    train(
        tiny_cfg(
            data_dir, greedy, tokenizer=str(tokenizer_dir), max_steps=1, eval_steps=0, greedy=True
        )
    )
    assert model_sampling_defaults(plain) == {}
    assert model_sampling_defaults(greedy) == {"temperature": 0.0}
    saved = json.loads((greedy / "generation_config.json").read_text())
    assert (
        saved["do_sample"] is False
        and saved["eos_token_id"]
        == json.loads((plain / "generation_config.json").read_text())["eos_token_id"]
    )
    assert GenerationConfig.from_pretrained(greedy).do_sample is False
    # sampling-only keys go (transformers calls them inconsistent with greedy decoding)
    from meshlm.train.sft import recommend_greedy

    (plain / "generation_config.json").write_text(
        json.dumps(
            {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 5, "eos_token_id": 3}
        )
    )
    recommend_greedy(plain)
    assert json.loads((plain / "generation_config.json").read_text()) == {
        "do_sample": False,
        "eos_token_id": 3,
    }
    with pytest.raises(ConfigError, match="greedy .* full fine-tuning only"):
        tiny_cfg(data_dir, tmp_path, model=str(greedy), method="lora", greedy=True).validate()


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_bundled_model_phases_resolve(monkeypatch, capsys):
    """The three `meshlm train` commands of `make bundled-model` (read from `make -n`, so the
    Makefile's variables expand) resolve, with the steps the model card reports."""
    import shlex

    _no_network(monkeypatch)
    text = subprocess.run(
        ["make", "-n", "-B", "bundled-model"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    runs = [shlex.split(line)[1:] for line in text.splitlines() if " train --config " in line]
    assert len(runs) == 3
    plans = []
    for args in runs:
        assert main([*args, "--dry-run"]) == 0
        plans.append(json.loads(capsys.readouterr().out)["config"])
    assert [p["max_steps"] for p in plans] == [450, 420, 900]
    assert [p["data_dir"] for p in plans] == ["data/genpool", "data/genpool", "data/genmix"]
    assert [p["model"] for p in plans] == ["scratch", "out/bundled-phase1", "out/bundled-phase2"]
    assert [p["tokenizer_data"] for p in plans] == ["data/bundled", None, None]
    assert [p["greedy"] for p in plans] == [False, False, True]
    assert plans[-1]["output_dir"] == "meshlm/models/meshlm-bundled"
    assert all(p["mesh_head_tokens"] == 20 and p["loss_averaging"] == "mesh" for p in plans)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_loads_and_is_documented(path):
    """A recipe with a misspelt key or value fails here, not an hour into a run; and every
    recipe is named where a user finds how to run it (Makefile, README or a model card)."""
    from meshlm.train.config import TrainConfig

    cfg = TrainConfig.load(path)
    assert cfg.output_dir and cfg.learning_rate > 0
    docs = [ROOT / "Makefile", ROOT / "README.md", *ROOT.glob("meshlm/models/*/README.md")]
    assert any(f"recipes/{path.name}" in d.read_text(encoding="utf-8") for d in docs)


def test_checkpointing_argument_follows_the_installed_transformers(tmp_path):
    """transformers 5.17 knows only ``gradient_checkpointing`` (a lent GPU machine's version
    refused ``activation_checkpointing``); later 5.x renamed it. The config asks under the
    name the installed class has, and the value arrives."""

    @dataclasses.dataclass
    class Old:
        gradient_checkpointing: bool = False

    @dataclasses.dataclass
    class New:
        activation_checkpointing: bool = False
        gradient_checkpointing: bool | None = None

    assert _checkpointing_arg(Old) == "gradient_checkpointing"
    assert _checkpointing_arg(New) == "activation_checkpointing"
    name = _checkpointing_arg(trl.SFTConfig)
    for on in (True, False):
        cfg = TrainConfig.load(None, {"output_dir": str(tmp_path), "gradient_checkpointing": on})
        assert getattr(sft_config(cfg), name) is on


def test_a_dataset_that_shows_exemplars_needs_its_bank(data_dir, tmp_path):
    """Rows that show exemplars (the manifest says so) without the bank beside them would train
    a folder that decodes without them: refused before anything loads."""
    from meshlm.train.sft import check_exemplar_bank

    shown = tmp_path / "shown"
    shutil.copytree(data_dir, shown)
    manifest = json.loads((shown / "manifest.json").read_text())
    check_exemplar_bank(tiny_cfg(shown, tmp_path / "a"))  # no exemplars recorded: nothing asked
    manifest["exemplars"] = {"bank_size": 1}
    (shown / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"shown: its rows show exemplars .* no exemplars.json"):
        check_exemplar_bank(tiny_cfg(shown, tmp_path / "b"))
    (shown / "exemplars.json").write_text("{}")
    check_exemplar_bank(tiny_cfg(shown, tmp_path / "c"))
