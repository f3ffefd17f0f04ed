"""The mesh format flows from the dataset to every reader: a tiny model trained here on
``build-data --bins 128`` writes coordinates up to 127 under the constraint, and its replies are
read at 128 bins by the engine, the evaluation and ``chat /load``; ``--bins`` overrides with a
warning. Everything is built locally (procedural shapes, a meshlm tokenizer, a 2-layer Llama)."""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("trimesh")
pytest.importorskip("datasets")
pytest.importorskip("trl")
pytest.importorskip("torch")

from meshlm.cli import main  # noqa: E402
from meshlm.codec import decode  # noqa: E402
from meshlm.errors import MeshFormatError  # noqa: E402
from meshlm.infer import Sampling, load  # noqa: E402
from meshlm.modelfolder import format_block, read  # noqa: E402
from meshlm.prompts import mesh_start  # noqa: E402

pytestmark = pytest.mark.slow  # trains a model (about a minute on 2 CPU cores)
BINS = 128
TINY = dict(
    model="scratch",
    tokenizer_vocab_size=2600,  # above the ~2050 whole-number tokens: room for BPE merges
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=64,
    max_position_embeddings=1024,
    max_length=512,
    learning_rate=3e-3,
    warmup_steps=1,
    global_batch_size=2,
    per_device_batch_size=2,
    max_steps=4,
    logging_steps=1,
    eval_steps=0,
    save_steps=100,
    max_eval_samples=4,
)
SAMPLING = dict(temperature=1.0, max_new_tokens=240, min_faces=2)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """build-data --bins 128 (boxes and cones), then a few steps of training from scratch."""
    from meshlm.train import train
    from meshlm.train.config import TrainConfig

    root = tmp_path_factory.mktemp("flow")
    data = root / "data"
    assert (
        main(
            [
                "build-data",
                "--procedural",
                "16",
                "--family",
                "box",
                "--family",
                "cone",
                "--max-segments",
                "6",
                "--rotations",
                "0",
                "--bins",
                str(BINS),
                "--mix",
                "0.7,0.3,0",
                "--multi-turn",
                "0",
                "--splits",
                "0.75,0.125,0.125",
                "-j",
                "1",
                "--no-progress",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    out = root / "model"
    train(TrainConfig.from_dict({**TINY, "data_dir": str(data), "output_dir": str(out)}))
    return data, out


def _coords(text: str) -> list[int]:
    """The coordinates of the mesh part of a reply (after a possible preamble)."""
    body = text[mesh_start(text) :]
    return [int(x) for line in body.splitlines() if line.startswith("v ") for x in line.split()[1:]]


def test_training_copies_the_dataset_format_block(model_dir):
    data, out = model_dir
    manifest = json.loads((data / "manifest.json").read_text())
    meta = json.loads((out / "meshlm.json").read_text())
    assert manifest["format"] == meta["format"] == format_block(BINS)
    assert meta["format"]["bins"] == BINS and meta["format"]["name"] == "llama-mesh"
    assert meta["schema_version"] == 2 and meta["shape_families"] == ["box", "cone"]
    assert {"meshlm", "torch", "transformers"} <= set(meta["versions"])
    info = read(out)
    assert info.format.bins == BINS and info.shape_families == ["box", "cone"]
    # the data really is at 128 bins: the longest axis of every mesh spans 0..127
    row = next(
        json.loads(line)
        for line in (data / "train.jsonl").open()
        if json.loads(line)["task"] == "generation"
    )
    assert max(_coords(row["messages"][-1]["content"])) == BINS - 1


def test_engine_constrains_and_decodes_at_the_models_bins(model_dir):
    _, out = model_dir
    engine = load(out, "transformers")
    assert engine.bins == BINS and engine.mesh_format.name == "llama-mesh"
    assert engine.notes == [] and engine.shape_families == ["box", "cone"]
    seen = []
    for seed in range(4):
        res = engine.generate("a box", Sampling(seed=seed, **SAMPLING))
        assert res.mesh is not None and res.error is None and res.stats.constrained
        assert res.mesh.bins == BINS
        coords = _coords(res.text)
        assert 0 <= min(coords) and max(coords) <= BINS - 1
        assert res.mesh.quantized.max() == max(coords)
        seen.append(max(coords))
        if not res.stats.cut_off and max(coords) > 63:  # the strict decoder read it at 128
            body = res.text[mesh_start(res.text) :]
            assert decode(body, strict=True, bins=BINS).quantized.max() == max(coords)
            with pytest.raises(MeshFormatError, match="out of range|0..63"):
                decode(body, strict=True, bins=64)
    assert max(seen) > 63, f"no coordinate above 63 in {seen}"


def test_evaluation_checks_replies_at_the_models_bins(model_dir, tmp_path):
    from meshlm.eval.runner import eval_generate

    _, out = model_dir
    engine = load(out, "transformers")
    prompts = [{"prompt": p} for p in ("a box", "a cone", "a tall box", "a wide cone")]
    metrics = eval_generate(engine, prompts, tmp_path, Sampling(seed=0, **SAMPLING), grid=False)
    assert metrics["mesh_format"] == {"name": "llama-mesh", "bins": BINS}
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").open()]
    assert len(rows) == len(prompts)
    for row in rows:  # a finished constrained reply passes the strict check at 128 bins
        assert row["strict"] == (not row["cut_off"]), row.get("strict_error")
    tops = [_obj_top(tmp_path / r["mesh"]) for r in rows if r["strict"]]
    assert tops and max(tops) > 63, tops  # ... though it uses the upper half of the range
    assert metrics["strict_rate_of_mesh_part"] == sum(r["strict"] for r in rows) / len(rows)


def _obj_top(path) -> int:
    """The largest bin of a saved OBJ of a 128-bin mesh (its floats are q / 127 - 0.5)."""
    top = max(
        float(x)
        for line in path.read_text().splitlines()
        if line.startswith("v ")
        for x in line.split()[1:]
    )
    q = round((top + 0.5) * (BINS - 1))
    assert abs((top + 0.5) * (BINS - 1) - q) < 1e-6
    return q


def test_chat_load_and_the_bins_override(model_dir, tmp_path, capsys, monkeypatch):
    import trimesh

    _, out = model_dir
    box = tmp_path / "box.obj"
    trimesh.creation.box(extents=(1.0, 0.5, 0.25)).export(box)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"/load {box}\n/quit\n"))
    assert main(["chat", "--model", str(out), "--out-dir", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert f"loaded {box} (8 vertices, 12 faces, {BINS} bins)" in err and "warning" not in err
    # --bins that differs from the model's: used, with one warning line
    monkeypatch.setattr("sys.stdin", io.StringIO(f"/load {box}\n/quit\n"))
    assert (
        main(["chat", "--model", str(out), "--bins", "64", "--out-dir", str(tmp_path / "c")]) == 0
    )
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if "warning" in line]
    assert warnings == [
        f"meshlm: warning: bins 64 overrides the model's {BINS} "
        f"({out / 'meshlm.json'}); its meshes are read at 64"
    ]
    assert any(f"loaded {box} (8 vertices, 12 faces, 64 bins)" in line for line in err)
    engine = load(out, "transformers", bins=64)
    assert engine.bins == 64 and engine.info.format.bins == BINS and len(engine.notes) == 1
    assert load(out, "transformers", bins=BINS).notes == []


def test_generate_cli_writes_the_mesh_read_at_128(model_dir, tmp_path, capsys):
    _, out = model_dir
    reply, obj = tmp_path / "reply.txt", tmp_path / "m.obj"
    for seed in range(4):
        assert (
            main(
                [
                    "generate",
                    "a box",
                    "-o",
                    str(obj),
                    "--model",
                    str(out),
                    "--seed",
                    str(seed),
                    "-t",
                    "1",
                    "--max-new-tokens",
                    "240",
                    "--min-faces",
                    "2",
                    "--save-reply",
                    str(reply),
                    "--json",
                ]
            )
            == 0
        )
        stats = json.loads(capsys.readouterr().out)
        coords = _coords(reply.read_text())
        if max(coords) > 63:
            break
    assert max(coords) > 63
    # the OBJ holds the dequantized coordinates of a 128-bin mesh: q / 127 - 0.5
    assert sum(line.startswith("v ") for line in obj.read_text().splitlines()) == stats["vertices"]
    assert _obj_top(obj) == max(coords)


def test_a_gguf_export_carries_the_bins_away_from_its_folder(model_dir, tmp_path):
    pytest.importorskip("gguf")
    from meshlm.infer.gguf_export import export_gguf
    from meshlm.modelfolder import MeshFormat, gguf_format

    _, out = model_dir
    path = export_gguf(out, tmp_path / "elsewhere" / "m.gguf", dtype="f32")
    assert not (path.parent / "meshlm.json").exists()
    assert gguf_format(path) == MeshFormat("llama-mesh", BINS)
    pytest.importorskip("llama_cpp")
    engine = load(path)
    assert engine.backend.name != "openai" and engine.bins == BINS and engine.notes == []
    tops = []
    for seed in range(4):
        res = engine.generate("a box", Sampling(seed=seed, **SAMPLING))
        assert res.mesh is not None and res.mesh.bins == BINS and res.error is None
        tops.append(max(_coords(res.text)))
    assert max(tops) > 63 and max(tops) <= BINS - 1


# -- the format name flows the same way: build-data --format parts -> meshlm.json -> load() ------


@pytest.fixture(scope="module")
def parts_model_dir(tmp_path_factory):
    """build-data --format parts (boxes and cones), then a few steps of training from scratch."""
    from meshlm.train import train
    from meshlm.train.config import TrainConfig

    root = tmp_path_factory.mktemp("flow-parts")
    data = root / "data"
    args = ["build-data", "--procedural", "16", "--family", "box", "--family", "cone"]
    args += ["--max-segments", "6", "--rotations", "0", "--format", "parts", "--mix", "0.7,0.3,0"]
    args += ["--multi-turn", "0", "--splits", "0.75,0.125,0.125", "-j", "1", "--no-progress"]
    assert main([*args, "--out", str(data)]) == 0
    out = root / "model"
    train(TrainConfig.from_dict({**TINY, "data_dir": str(data), "output_dir": str(out)}))
    return data, out


def test_training_copies_the_format_name_and_load_reads_it(parts_model_dir):
    from meshlm.modelfolder import MeshFormat
    from meshlm.parts import decode_parts

    data, out = parts_model_dir
    manifest = json.loads((data / "manifest.json").read_text())
    meta = json.loads((out / "meshlm.json").read_text())
    assert manifest["format"] == meta["format"] == format_block(64, "parts")
    assert read(out).format == MeshFormat("parts", 64)
    row = next(
        json.loads(line)
        for line in (data / "train.jsonl").open()
        if json.loads(line)["task"] == "generation"
    )
    body = row["messages"][-1]["content"]
    decode_parts(body[mesh_start(body) :])  # the data is parts text (strict)
    engine = load(out, "transformers")
    assert engine.mesh_format == MeshFormat("parts", 64) and engine.notes == []
    res = engine.generate("a box", Sampling(seed=0, **SAMPLING))
    assert res.mesh is not None and res.error is None  # read as parts
    if not res.stats.cut_off:  # valid by construction (not canonical order): nothing repaired
        assert res.mesh.report.clean, res.mesh.report.summary()
