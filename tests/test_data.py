"""Dataset builder: real files, a real objaverse cache layout, a real tokenizer, real kills."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")
datasets = pytest.importorskip("datasets")

from meshlm.codec import decode  # noqa: E402
from meshlm.data import BuildConfig, BuildError, DataSourceError, build_dataset  # noqa: E402
from meshlm.data import templates as T  # noqa: E402
from meshlm.data.assemble import split_of  # noqa: E402
from meshlm.data.build import read_checkpoint  # noqa: E402
from meshlm.data.conversations import mesh_text, object_rows  # noqa: E402
from meshlm.data.process import rotate_y  # noqa: E402
from meshlm.data.sources import load_captions, load_general_chats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "validation", "test")


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """A folder of real mesh files in five formats, broken ones, and a Cap3D-style CSV."""
    d = tmp_path_factory.mktemp("corpus")
    meshes = d / "meshes"
    (meshes / "sub").mkdir(parents=True)
    trimesh.creation.box(extents=[1, 2, 3]).export(meshes / "crate.obj")
    trimesh.creation.cylinder(0.5, 2, sections=12).export(meshes / "sub" / "pipe.glb")
    trimesh.creation.icosphere(1).export(meshes / "ball.ply")
    trimesh.creation.cone(1, 2, sections=10).export(meshes / "cone.stl")
    trimesh.creation.capsule(2, 0.5, count=[8, 8]).export(meshes / "pill.off")
    trimesh.creation.icosphere(4).export(meshes / "bigball.obj")  # 5120 faces
    trimesh.creation.torus(1, 0.3, major_sections=12, minor_sections=6).export(meshes / "nocap.obj")
    (meshes / "broken.obj").write_text("v 1 2\nf 1 2 zz\n")
    (meshes / "empty.glb").write_bytes(b"")
    (meshes / "cloud.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
    )
    (meshes / "notes.txt").write_text("not a mesh")
    caps = d / "cap3d.csv"
    with caps.open("w", newline="") as fh:  # Cap3D layout: no header, uid,caption
        w = csv.writer(fh)
        for k, v in [
            ("crate", "A tall wooden crate."),
            ("pipe", "a metal pipe"),
            ("ball", "A round ball"),
            ("cone", "3D model of a traffic cone"),
            ("pill", "A capsule-shaped pill"),
            ("bigball", "a detailed sphere"),
            ("broken", "a broken thing"),
            ("empty", "nothing"),
            ("cloud", "a cloud"),
        ]:
            w.writerow([k, v])
    chat = d / "chat.jsonl"
    with chat.open("w") as fh:
        for i in range(80):
            fh.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": f"Tell me fact number {i}."},
                            {"role": "assistant", "content": f"Fact {i}: water is wet."},
                        ]
                    }
                )
                + "\n"
            )
        fh.write(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    return {"dir": d, "meshes": meshes, "captions": caps, "chat": chat, "mesh_files": 10}


@pytest.fixture(scope="module")
def objaverse_cache(tmp_path_factory) -> dict:
    """A cache laid out as objaverse.load_objects leaves it: hf-objaverse-v1/object-paths.json.gz
    and hf-objaverse-v1/glbs/<group>/<uid>.glb."""
    base = tmp_path_factory.mktemp("objaverse")
    v1 = base / "hf-objaverse-v1"
    uids = [f"{i:032x}" for i in (0xA1, 0xB2, 0xC3, 0xD4)]
    paths = {u: f"glbs/000-{i:03d}/{u}.glb" for i, u in enumerate(uids)}
    for i, u in enumerate(uids[:3]):  # the last one is indexed but not downloaded
        p = v1 / paths[u]
        p.parent.mkdir(parents=True, exist_ok=True)
        trimesh.creation.cylinder(0.3 + 0.2 * i, 1 + i, sections=6 + 2 * i).export(p)
    with gzip.open(v1 / "object-paths.json.gz", "wt") as fh:
        json.dump(paths, fh)
    caps = base / "Cap3D_automated_Objaverse.csv"
    caps.write_text("".join(f"{u},a column number {i}\n" for i, u in enumerate(uids)))
    return {"cache": base, "uids": uids, "captions": caps}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny word-level tokenizer with a chat template, trained here (no hub)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = [str(i) for i in range(64)] + ["v", "f", "a", "the", "of", "3D", "model"]
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.train_from_iterator(
        [" ".join(words)] * 3, trainers.WordLevelTrainer(special_tokens=["[UNK]", "<eot>"])
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="<eot>")
    tok.chat_template = "{% for m in messages %}<{{ m.role }}> {{ m.content }} <eot> {% endfor %}"
    d = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(d)
    return d


def _cfg(out, **kw) -> BuildConfig:
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return BuildConfig(out=str(out), **kw)


def _rows(out: Path, split: str) -> list[dict]:
    return [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]


def _all_rows(out: Path) -> list[dict]:
    return [r for s in SPLITS for r in _rows(out, s)]


def _jsonl_bytes(out: Path) -> dict[str, bytes]:
    return {s: (out / f"{s}.jsonl").read_bytes() for s in SPLITS}


# --------------------------------------------------------------------------------- wording


def test_at_least_30_phrasings_each_way():
    assert len(set(T.GENERATION_REQUESTS)) >= 30
    assert len(set(T.UNDERSTANDING_QUESTIONS)) >= 30
    for t in T.GENERATION_REQUESTS:
        assert "a red chair" in T.fill(t, "A red chair.") or "red chair" in T.fill(t, "A red chair")
    for t in T.UNDERSTANDING_QUESTIONS:
        assert "v 0 0 0" in T.fill(t, "a chair", mesh="v 0 0 0\nf 1 1 1")


def test_caption_to_phrase():
    assert T.subject("A 3D model of a wooden chair.") == "a wooden chair"
    assert T.subject("3D model of a traffic cone") == "a traffic cone"
    assert T.subject("TV stand with drawers") == "TV stand with drawers"
    assert T.sentence("a metal pipe") == "A metal pipe."


def test_rotation_is_exact_and_about_y():
    v = np.array([[1.0, 2.0, 0.0]])
    assert rotate_y(v, 90).tolist() == [[0.0, 2.0, -1.0]]
    assert rotate_y(v, 360).tolist() == v.tolist()
    assert np.allclose(rotate_y(v, 45)[0, 1], 2.0)


def test_dialogues_respect_turn_limits_and_stay_on_one_object():
    encs = [(r, f"v 0 0 {i}\nv 1 0 0\nv 0 1 0\nf 1 2 3") for i, r in enumerate((0, 90, 180, 270))]
    limit = {"generation": 8, "understanding": 4}
    for k in range(40):
        for row in object_rows(
            f"obj{k}", "a thing", encs, seed=k, multi_turn=1.0, system_prompt="You make meshes."
        ):
            msgs = row["messages"]
            assert msgs[0] == {"role": "system", "content": "You make meshes."}
            exchanges = (len(msgs) - 1) // 2
            assert 2 <= exchanges <= limit[row["task"]]
            assert [m["role"] for m in msgs[1:]] == ["user", "assistant"] * exchanges


def test_captions_formats(tmp_path):
    (tmp_path / "a.csv").write_text("stem,caption,family\nx,a box,box\n")
    (tmp_path / "b.json").write_text(json.dumps({"y": "a cone", "z": {"caption": "a cup"}}))
    (tmp_path / "c.json").write_text(json.dumps([{"uid": "w", "caption": "a mug"}]))
    assert load_captions(tmp_path / "a.csv") == {"x": "a box"}
    assert load_captions(tmp_path / "b.json") == {"y": "a cone", "z": "a cup"}
    assert load_captions(tmp_path / "c.json") == {"w": "a mug"}
    with pytest.raises(DataSourceError):
        load_captions(tmp_path / "missing.csv")


# ---------------------------------------------------------------------------- folder builds


@pytest.fixture(scope="module")
def folder_build(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "out"
    build_dataset(
        _cfg(
            out,
            meshes=[str(corpus["meshes"])],
            captions=[str(corpus["captions"])],
            general_chat=str(corpus["chat"]),
            splits=(0.34, 0.33, 0.33),
        )
    )
    return out


def test_manifest_counts_match_the_files(folder_build, corpus):
    m = json.loads((folder_build / "manifest.json").read_text())
    c = m["counts"]
    assert c["objects_found"] == {"meshes": corpus["mesh_files"]}
    assert m["rejects"] == {
        "corrupt_mesh_file": 1,
        "empty_mesh_file": 1,
        "point_cloud": 1,
        "no_caption": 1,
        "too_many_faces": 1,
    }
    broken = {r["source"]: r["reason"] for r in m["broken_files"]}
    assert broken == {
        "mesh:broken.obj": "corrupt_mesh_file",
        "mesh:empty.glb": "empty_mesh_file",
        "mesh:cloud.ply": "point_cloud",
    }
    assert all(r["detail"] for r in m["broken_files"])
    assert c["objects_kept"] == 5 and c["objects_loaded"] == 5
    assert c["objects_rejected_before_loading"] == 1  # nocap.obj
    rows = _all_rows(folder_build)
    assert len(rows) == c["rows_total"]
    assert {r["source"] for r in rows if r["task"] != "general"} == {
        "mesh:crate.obj",
        "mesh:sub/pipe.glb",
        "mesh:ball.ply",
        "mesh:cone.stl",
        "mesh:pill.off",
    }
    assert m["meshlm_version"] and m["format"]["bins"] == 64 and m["seed"] == 0
    assert sum(1 for _ in open(folder_build / "rejects.jsonl")) == 5
    assert c["general_invalid"] == {"bad_message": 1} and c["general_available"] == 80


def test_generation_meshes_decode_strictly(folder_build):
    n = 0
    for row in _all_rows(folder_build):
        for msg in row["messages"]:
            mesh = mesh_text(msg["content"])
            if msg["role"] == "assistant" and mesh is not None:
                assert len(decode(mesh, strict=True).faces) > 0
                n += 1
    assert n > 10


def test_rows_load_with_datasets(folder_build):
    filled = [s for s in SPLITS if _rows(folder_build, s)]  # an empty file is no json dataset
    assert "train" in filled
    ds = datasets.load_dataset(
        "json", data_files={s: str(folder_build / f"{s}.jsonl") for s in filled}
    )
    saved = datasets.load_from_disk(str(folder_build / "hf"))
    assert set(saved) == set(SPLITS)
    for s in filled:
        assert ds[s].num_rows == saved[s].num_rows == len(_rows(folder_build, s))
        if ds[s].num_rows:
            assert (
                ds[s][0]["messages"]
                == saved[s][0]["messages"]
                == _rows(folder_build, s)[0]["messages"]
            )
    assert set(saved["train"].column_names) == {"messages", "task", "source"}


def test_decimate_brings_big_meshes_under_budget(corpus, tmp_path):
    m = build_dataset(
        _cfg(
            tmp_path / "o",
            meshes=[str(corpus["meshes"])],
            decimate=True,
            captions=[str(corpus["captions"])],
            max_faces=300,
            rotations=(0,),
        )
    )
    assert m["counts"]["objects_decimated"] == 1 and "too_many_faces" not in m["rejects"]
    for row in _all_rows(tmp_path / "o"):
        if row["source"] == "mesh:bigball.obj" and row["task"] == "generation":
            text = mesh_text(row["messages"][1]["content"])  # first answer: the mesh
            assert 0 < decode(text).faces.shape[0] <= 300


# ------------------------------------------------------------------ procedural: splits, mix


@pytest.fixture(scope="module")
def procedural_build(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("p") / "out"
    build_dataset(
        _cfg(out, procedural=120, general_chat=str(corpus["chat"]), splits=(0.6, 0.2, 0.2), seed=3)
    )
    return out


def test_rotations_of_an_object_never_straddle_splits(procedural_build):
    where = defaultdict(set)
    for s in SPLITS:
        for row in _rows(procedural_build, s):
            where[row["source"]].add(s)
    assert all(len(v) == 1 for v in where.values())
    for src, (split,) in where.items():
        if not src.startswith("general:"):
            assert split_of(src, (0.6, 0.2, 0.2)) == split
    m = json.loads((procedural_build / "manifest.json").read_text())
    assert all(m["splits"]["objects"][s] > 5 for s in SPLITS)


def test_mix_hits_the_target(procedural_build):
    m = json.loads((procedural_build / "manifest.json").read_text())
    rows = _all_rows(procedural_build)
    share = {
        t: sum(r["task"] == t for r in rows) / len(rows)
        for t in ("generation", "understanding", "general")
    }
    assert share == pytest.approx(m["mix"]["achieved"], abs=1e-3)
    assert share == pytest.approx(
        {"generation": 0.4, "understanding": 0.2, "general": 0.4}, abs=0.03
    )
    assert m["mix"]["general_data"] is True


def test_without_general_data_mix_is_renormalized(tmp_path, capsys):
    m = build_dataset(_cfg(tmp_path / "o", procedural=60), log=print)
    assert m["mix"]["general_data"] is False and m["warnings"]
    assert "warning: no general chat data" in capsys.readouterr().out
    a = m["mix"]["achieved"]
    assert a["general"] == 0 and a["generation"] == pytest.approx(2 / 3, abs=0.05)


def test_max_segments_builds_the_same_objects_lower_poly(tmp_path):
    full = build_dataset(_cfg(tmp_path / "full", procedural=38, multi_turn=0.0))
    low = build_dataset(_cfg(tmp_path / "low", procedural=38, multi_turn=0.0, max_segments=6))
    assert low["arguments"]["max_segments"] == 6 and full["arguments"]["max_segments"] is None

    def faces(out):
        return {
            r["source"]: r["messages"][-1]["content"].count("\nf ")
            for r in _all_rows(out)
            if r["task"] == "generation"
        }

    a, b = faces(tmp_path / "full"), faces(tmp_path / "low")
    common = a.keys() & b.keys()
    assert len(common) >= 30 and all(b[k] <= a[k] for k in common)
    assert sum(b[k] for k in common) < 0.8 * sum(a[k] for k in common)
    with pytest.raises(BuildError, match="--max-segments must be >= 6"):
        build_dataset(_cfg(tmp_path / "bad", procedural=3, max_segments=4))


def test_families_limit_the_procedural_shapes(tmp_path, capsys):
    m = build_dataset(
        _cfg(tmp_path / "two", procedural=20, multi_turn=0.0, families=["box", "mug"])
    )
    assert m["arguments"]["families"] == ["box", "mug"]
    fams = {r["source"].split(":")[1].rsplit("_", 2)[0] for r in _all_rows(tmp_path / "two")}
    assert fams == {"box", "mug"}
    with pytest.raises(BuildError, match=r"unknown shape family: teapot \(see meshlm shapes"):
        build_dataset(_cfg(tmp_path / "bad", procedural=3, families=["box", "teapot"]))
    assert not (tmp_path / "bad").exists()
    from meshlm.cli import main

    assert (
        main(
            [
                "build-data",
                "--procedural",
                "3",
                "--family",
                "vase",
                "--family",
                "kettle",
                "--out",
                str(tmp_path / "cli"),
                "--no-progress",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["meshlm: error: unknown shape family: kettle (see meshlm shapes --list)"]


def test_generation_pool_writes_few_meshes_many_times_and_keeps_the_mix(tmp_path):
    m = build_dataset(
        _cfg(
            tmp_path / "pool",
            procedural=120,
            multi_turn=0.0,
            mix=(1, 2, 0),
            rotations=(0,),
            families=["box", "table", "mug"],
            gen_per_family=3,
            gen_repeats=5,
        )
    )
    rows = _all_rows(tmp_path / "pool")
    gen = [r for r in rows if r["task"] == "generation"]
    und = [r for r in rows if r["task"] == "understanding"]
    per_source: dict[str, int] = defaultdict(int)
    for r in gen:
        per_source[r["source"]] += 1
    fams = defaultdict(set)
    for s in per_source:
        fams[s.split(":")[1].rsplit("_", 2)[0]].add(s)
    # the first 3 kept objects of each family, 5 rows each, every row worded on its own
    assert {f: len(s) for f, s in fams.items()} == {"box": 3, "table": 3, "mug": 3}
    assert set(per_source.values()) == {5}
    assert m["counts"]["generation_pool_objects"] == 9
    for s in per_source:
        asks = {r["messages"][0]["content"] for r in gen if r["source"] == s}
        meshes = {mesh_text(r["messages"][-1]["content"]) for r in gen if r["source"] == s}
        assert len(asks) >= 3 and len(meshes) == 1
    # every kept object is read; understanding rows are scaled to keep the 1:2 mix
    assert len({r["source"] for r in und}) > 60
    assert len(und) / len(gen) == pytest.approx(2, rel=0.15)
    assert m["mix"]["achieved"]["generation"] == pytest.approx(1 / 3, abs=0.04)
    # repeats without a pool: every kept object is written twice, read twice as often
    a = build_dataset(_cfg(tmp_path / "a", procedural=40, seed=3, multi_turn=0.0))
    b = build_dataset(_cfg(tmp_path / "b", procedural=40, seed=3, multi_turn=0.0, gen_repeats=2))
    assert (
        b["counts"]["generation_pool_objects"]
        == b["counts"]["objects_kept"]
        == a["counts"]["objects_kept"]
    )
    assert b["mix"]["counts"]["generation"] == 2 * a["mix"]["counts"]["generation"]
    assert b["mix"]["counts"]["understanding"] == pytest.approx(
        2 * a["mix"]["counts"]["understanding"], rel=0.2
    )
    with pytest.raises(BuildError, match="--gen-per-family must be >= 0 and --gen-repeats >= 1"):
        build_dataset(_cfg(tmp_path / "bad", procedural=3, gen_repeats=0))
    assert not (tmp_path / "bad").exists()


def test_nearest_targets_answer_every_caption_with_the_nearest_pool_shape(tmp_path):
    from meshlm.data.assemble import _vertices
    from meshlm.eval.metrics import chamfer_distance

    m = build_dataset(
        _cfg(
            tmp_path / "near",
            procedural=60,
            multi_turn=0.0,
            mix=(1, 1, 0),
            rotations=(0,),
            families=["table", "mug"],
            gen_per_family=2,
            gen_repeats=3,
            gen_targets="nearest",
        )
    )
    rows = _all_rows(tmp_path / "near")
    gen = [r for r in rows if r["task"] == "generation"]
    und = {
        r["source"]: mesh_text(r["messages"][0]["content"])
        for r in rows
        if r["task"] == "understanding"
    }
    pool_meshes: dict[str, dict[str, str]] = defaultdict(dict)  # family -> source -> mesh
    per_source: dict[str, int] = defaultdict(int)
    for r in gen:
        per_source[r["source"]] += 1
    for r in gen:
        if per_source[r["source"]] == 3:
            fam = r["source"].split(":")[1].rsplit("_", 2)[0]
            pool_meshes[fam][r["source"]] = mesh_text(r["messages"][-1]["content"])
    assert {f: len(p) for f, p in pool_meshes.items()} == {"table": 2, "mug": 2}
    assert m["counts"]["generation_pool_objects"] == 4
    # every kept object is written: the pool 3 times with its own mesh, the rest once, answered
    # with the pool mesh of its family nearest to its own (seen in its understanding rows)
    assert len(per_source) == m["counts"]["objects_kept"]
    checked = 0
    for r in gen:
        src = r["source"]
        fam = src.split(":")[1].rsplit("_", 2)[0]
        answer = mesh_text(r["messages"][-1]["content"])
        assert answer in pool_meshes[fam].values()
        if per_source[src] == 1 and src in und:
            own = _vertices(und[src])
            best = min(
                pool_meshes[fam].values(),
                key=lambda t: chamfer_distance(own, _vertices(t), normalize=False),
            )
            assert answer == best
            checked += 1
    assert checked >= 10
    with pytest.raises(BuildError, match="--gen-targets nearest needs --gen-per-family >= 1"):
        build_dataset(_cfg(tmp_path / "bad", procedural=3, gen_targets="nearest"))
    with pytest.raises(BuildError, match="--gen-targets must be 'own' or 'nearest'"):
        build_dataset(_cfg(tmp_path / "bad", procedural=3, gen_targets="all"))


def test_same_arguments_give_identical_files(corpus, tmp_path):
    kw = dict(
        procedural=40,
        meshes=[str(corpus["meshes"])],
        captions=[str(corpus["captions"])],
        general_chat=str(corpus["chat"]),
        seed=7,
    )
    build_dataset(_cfg(tmp_path / "a", **kw))
    build_dataset(_cfg(tmp_path / "b", workers=2, **kw))
    assert _jsonl_bytes(tmp_path / "a") == _jsonl_bytes(tmp_path / "b")
    build_dataset(_cfg(tmp_path / "c", **{**kw, "seed": 8}))
    assert _jsonl_bytes(tmp_path / "a") != _jsonl_bytes(tmp_path / "c")


def test_token_budget_drops_and_counts(procedural_build, tokenizer_dir, corpus, tmp_path):
    from transformers import AutoTokenizer

    max_len = 900
    m = build_dataset(
        _cfg(
            tmp_path / "o",
            procedural=120,
            seed=3,
            splits=(0.6, 0.2, 0.2),
            general_chat=str(corpus["chat"]),
            tokenizer=str(tokenizer_dir),
            max_length=max_len,
        )
    )
    dropped = m["counts"]["rows_over_token_budget"]
    assert dropped["generation"] > 0 and m["token_budget"]["counted"] == "chat_template"
    built = m["counts"]["rows_built"]
    kept = m["mix"]["counts"]
    assert kept["generation"] == built["generation"] - dropped["generation"]
    assert kept["understanding"] == built["understanding"] - dropped["understanding"]
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    for row in _all_rows(tmp_path / "o"):
        text = tok.apply_chat_template(row["messages"], tokenize=False)
        assert len(tok(text, add_special_tokens=False)["input_ids"]) <= max_len


# --------------------------------------------------------------------------------- objaverse


def test_objaverse_through_the_package(objaverse_cache, tmp_path):
    import objaverse

    before = objaverse._VERSIONED_PATH
    uids = objaverse_cache["uids"]
    listing = tmp_path / "uids.txt"
    listing.write_text("\n".join(uids + ["f" * 32]) + "\n")
    m = build_dataset(
        _cfg(
            tmp_path / "o",
            objaverse=str(listing),
            objaverse_cache=str(objaverse_cache["cache"]),
            captions=[str(objaverse_cache["captions"])],
        )
    )
    assert objaverse._VERSIONED_PATH == before  # the package's cache path is restored
    assert m["counts"]["objects_kept"] == 3
    assert m["rejects"] == {"not_in_cache": 1, "unknown_uid": 1}
    sources = {r["source"] for r in _all_rows(tmp_path / "o")}
    assert sources == {f"objaverse:{u}" for u in uids[:3]}
    m2 = build_dataset(
        _cfg(
            tmp_path / "all",
            objaverse="all",
            objaverse_cache=str(objaverse_cache["cache"]),
            captions=[str(objaverse_cache["captions"])],
        )
    )
    assert m2["counts"]["objects_kept"] == 3
    with pytest.raises(DataSourceError):
        build_dataset(_cfg(tmp_path / "x", objaverse="all", objaverse_cache=str(tmp_path)))


# -------------------------------------------------------------------------- general chats


def test_general_chats_from_a_saved_hf_dataset(tmp_path, corpus):
    rows = [json.loads(x) for x in corpus["chat"].read_text().splitlines()][:80]
    ds = datasets.DatasetDict({"train_sft": datasets.Dataset.from_list(rows)})
    ds.save_to_disk(str(tmp_path / "ultra"))
    chats, bad = load_general_chats(str(tmp_path / "ultra"))
    assert len(chats) == 80 and not bad
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "train.jsonl").write_text(corpus["chat"].read_text())
    chats, bad = load_general_chats(str(tmp_path / "folder"))  # datasets.load_dataset(folder)
    assert len(chats) == 80 and bad == {"bad_message": 1}


# ---------------------------------------------------------------------------- shards, resume


def test_shards_partition_the_full_build(corpus, tmp_path):
    kw = dict(
        procedural=60,
        meshes=[str(corpus["meshes"])],
        captions=[str(corpus["captions"])],
        general_chat=str(corpus["chat"]),
        seed=1,
    )
    build_dataset(_cfg(tmp_path / "full", **kw))
    full = _all_rows(tmp_path / "full")
    mesh_full = sorted(json.dumps(r) for r in full if r["task"] != "general")
    union, objects, general = [], [], []
    for i in range(3):
        out = tmp_path / f"s{i}"
        m = build_dataset(_cfg(out, shard=i, num_shards=3, **kw))
        rows = _all_rows(out)
        union += [json.dumps(r) for r in rows if r["task"] != "general"]
        objects.append({r["source"] for r in rows if r["task"] != "general"})
        general.append({r["source"] for r in rows if r["task"] == "general"})
        assert m["shard"] == {"index": i, "count": 3}
    assert sorted(union) == mesh_full
    for a in range(3):
        for b in range(a + 1, 3):
            assert not objects[a] & objects[b] and not general[a] & general[b]


def test_torn_checkpoint_line_is_cut_and_redone(corpus, tmp_path):
    kw = dict(procedural=30, seed=2)
    build_dataset(_cfg(tmp_path / "ref", **kw))
    out = tmp_path / "o"
    build_dataset(_cfg(out, **kw))
    ck = out / ".work" / "objects.jsonl"
    lines = ck.read_bytes().splitlines(keepends=True)
    ck.write_bytes(b"".join(lines[:10]) + lines[10][:25])  # killed mid-write
    assert len(read_checkpoint(ck)) == 10 and ck.read_bytes().endswith(b"\n")
    build_dataset(_cfg(out, **kw))
    assert len(ck.read_bytes().splitlines()) == 30
    assert _jsonl_bytes(out) == _jsonl_bytes(tmp_path / "ref")


def test_other_arguments_on_the_same_folder_are_refused(tmp_path):
    build_dataset(_cfg(tmp_path / "o", procedural=5))
    with pytest.raises(BuildError, match="other arguments"):
        build_dataset(_cfg(tmp_path / "o", procedural=6))
    build_dataset(_cfg(tmp_path / "o", procedural=6, overwrite=True))
    # assembly-only arguments may change: records are reused
    m = build_dataset(_cfg(tmp_path / "o", procedural=6, system_prompt="Hi"))
    assert all(r["messages"][0]["role"] == "system" for r in _all_rows(tmp_path / "o"))
    assert m["counts"]["objects_processed"] == 6


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "meshlm", "build-data", *args, "--no-progress"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_cli_errors_are_one_line(tmp_path):
    p = _cli("--out", str(tmp_path / "o"), "--procedural", "3", "--shard", "5")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and err.decode().strip().count("\n") == 0
    assert "--shard" in err.decode()
    p = _cli("--out", str(tmp_path / "o"), "--meshes", str(tmp_path / "nope"))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "meshes folder not found" in err.decode()


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> tuple[Path, Path]:
    """600 real OBJ files of 1280 faces each (decimated by the build, so it takes a while)."""
    d = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    base = trimesh.creation.icosphere(3)
    rows = []
    for i in range(600):
        v = base.vertices * rng.uniform(0.5, 1.5, 3) + rng.normal(0, 0.02, base.vertices.shape)
        (d / f"blob{i:04d}.obj").write_text(
            "\n".join(f"v {a!r} {b!r} {c!r}" for a, b, c in v.tolist())
            + "\n"
            + "\n".join(f"f {a + 1} {b + 1} {c + 1}" for a, b, c in base.faces.tolist())
            + "\n"
        )
        rows.append(f"blob{i:04d},a lumpy blob number {i}")
    caps = d.parent / f"{d.name}_captions.csv"
    caps.write_text("\n".join(rows) + "\n")
    return d, caps


@pytest.mark.slow
def test_killed_build_resumes_to_identical_output(big_folder, corpus, tmp_path):
    folder, caps = big_folder
    args = [
        "--meshes",
        str(folder),
        "--captions",
        str(caps),
        "--decimate",
        "--max-faces",
        "200",
        "--workers",
        "2",
        "--general-chat",
        str(corpus["chat"]),
        "--seed",
        "4",
    ]
    ref = _cli("--out", str(tmp_path / "ref"), *args)
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()

    out = tmp_path / "killed"
    ck = out / ".work" / "objects.jsonl"
    kills = 0
    for threshold in (120, 360):  # kill twice, at different points
        p = _cli("--out", str(out), *args)
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            if (
                ck.is_file()
                and ck.stat().st_size
                and len(ck.read_bytes().splitlines()) >= threshold
            ):
                os.killpg(p.pid, signal.SIGKILL)  # the CLI and its worker processes
                kills += 1
                break
            time.sleep(0.005)
        p.wait(timeout=60)
    assert kills == 2
    n_done = len(read_checkpoint(ck))
    assert 120 <= n_done < 600 and not (out / "manifest.json").exists()
    p = _cli("--out", str(out), *args)
    assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    assert len(ck.read_bytes().splitlines()) == 600  # nothing done twice
    assert _jsonl_bytes(out) == _jsonl_bytes(tmp_path / "ref")
    man = [json.loads((d / "manifest.json").read_text()) for d in (out, tmp_path / "ref")]
    for m in man:
        m.pop("arguments")
    assert man[0] == man[1]
    assert man[0]["counts"]["objects_kept"] == 600


def test_wide_phrasings_word_requests_anew_and_never_like_the_heldout_ones(tmp_path):
    from meshlm.eval.runner import HELDOUT_REQUESTS

    new = T.WIDE_GENERATION_REQUESTS + T.REQUEST_OPENERS + T.REQUEST_CLOSERS
    pieces = [
        p.strip(" .?,:") for h in HELDOUT_REQUESTS for p in h.split("{obj}") if len(p.split()) >= 2
    ]  # "Could you create", "as a 3D model", ...
    for t in new:
        assert not any(p in t for p in pieces), (t, [p for p in pieces if p in t])
    build_dataset(
        _cfg(
            tmp_path / "wide",
            procedural=80,
            multi_turn=0.2,
            mix=(1, 1, 0),
            rotations=(0,),
            families=["table", "mug"],
            phrasings="wide",
        )
    )
    asks = [
        r["messages"][0]["content"]
        for r in _all_rows(tmp_path / "wide")
        if r["task"] == "generation"
    ]
    assert len(asks) >= 60
    wide_heads = tuple(t.split("{")[0] for t in T.WIDE_GENERATION_REQUESTS if t.split("{")[0])
    core = list(asks)
    for o in T.REQUEST_OPENERS:  # strip small talk to see the request itself
        core = [c[len(o) :] if c.startswith(o) else c for c in core]
    opened = sum(a != c for a, c in zip(asks, core, strict=True))
    closed = sum(a.endswith(T.REQUEST_CLOSERS) for a in asks)
    assert 0.15 < opened / len(asks) < 0.5 and 0.15 < closed / len(asks) < 0.5
    assert sum(c.lower().startswith(tuple(h.lower() for h in wide_heads)) for c in core) >= 5
    heads = tuple(h.split("{")[0] for h in HELDOUT_REQUESTS if len(h.split("{")[0].split()) >= 2)
    assert not any(c.startswith(heads) for c in core)
    for a in asks:  # a comma opener lower-cases the request, never "I"
        assert ", i " not in a and ", i'" not in a
    with pytest.raises(BuildError, match="--phrasings must be 'base' or 'wide'"):
        _cfg(tmp_path / "bad", phrasings="many").validate()
