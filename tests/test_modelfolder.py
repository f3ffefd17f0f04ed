"""The model folder's meshlm.json: schema, validation with typed errors, the upgrade of folders
written by earlier meshlm versions (the shipped bundled model's), and its readers (load, merge,
the shapes CLI) going through one module."""

from __future__ import annotations

import ast
import copy
import json
import sys
from pathlib import Path

import pytest

from meshlm import modelfolder
from meshlm.modelfolder import (
    DatasetRef,
    MeshFormat,
    ModelFolderError,
    ModelInfo,
    format_block,
    read,
    upgrade,
    write,
)

BUNDLED = modelfolder.BUNDLED_MODEL


def _info() -> ModelInfo:
    return ModelInfo(
        format=MeshFormat("llama-mesh", 128),
        kind="adapter",
        base_model="b",
        method="lora",
        shape_families=["box", "mug"],
        recipe={"lr": 0.1},
        dataset=DatasetRef("/d", "ab" * 32, {"train": 3, "test": 1}),
        metrics={"eval_loss": 0.5, "global": 3},
        versions={"meshlm": "0.1.0"},
        extra={"global_step": 7, "merged_from": {"adapter": "a"}},
    )


def test_bundled_model_folder_written_by_schema_1_still_loads():
    raw = json.loads((BUNDLED / "meshlm.json").read_text())
    assert "schema_version" not in raw and raw["format"]["name"] == "llama-mesh-obj"  # schema 1
    info = read(BUNDLED)
    assert info.schema_version == modelfolder.SCHEMA_VERSION == 2
    assert info.format == MeshFormat("llama-mesh", 64)
    assert info.kind == "model" and info.method == "full"
    assert info.shape_families == raw["shape_families"] and len(info.shape_families) == 20
    assert info.dataset.manifest_sha256 == raw["dataset"]["manifest_sha256"]
    assert info.dataset.counts == {"train": 9647, "validation": 554, "test": 531}
    assert info.versions["meshlm"] == "0.1.0" and info.versions["torch"].startswith("2.13.0")
    assert info.versions["transformers"] == raw["versions"]["transformers"]
    assert info.metrics == raw["metrics"] and info.recipe == raw["recipe"]
    assert info.extra["global_step"] == 900 and "meshlm_version" not in info.extra
    # read through a .gguf path too (the llama.cpp backend's view of the same folder)
    assert read(BUNDLED / "model-f16.gguf") == info
    # upgrading a current dict changes nothing
    assert ModelInfo.from_dict(info.to_dict()) == info


def test_write_read_round_trip_keeps_every_field(tmp_path):
    info = _info()
    path = write(tmp_path, info)
    assert path == tmp_path / "meshlm.json" and not list(tmp_path.glob("*.tmp"))
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 2 and raw["format"] == {
        "name": "llama-mesh",
        "bins": 128,
        "up_axis": "y",
        "description": modelfolder.FORMATS["llama-mesh"],
    }
    assert raw["global_step"] == 7 and raw["merged_from"] == {"adapter": "a"}
    assert read(tmp_path) == info


def test_format_block_is_the_same_in_a_dataset_manifest_and_a_model_folder(tmp_path):
    block = format_block(128)
    assert block == MeshFormat("llama-mesh", 128).to_dict()
    (tmp_path / "manifest.json").write_text(json.dumps({"format": block, "seed": 0}))
    assert modelfolder.dataset_format(tmp_path) == MeshFormat("llama-mesh", 128)
    write(tmp_path, ModelInfo(format=modelfolder.dataset_format(tmp_path)))
    assert json.loads((tmp_path / "meshlm.json").read_text())["format"] == block
    # a manifest of the time before this module: old name, prose keys; none at all: defaults
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": {"name": "llama-mesh-obj", "bins": 32, "vertex_lines": "v X Y Z"}})
    )
    assert modelfolder.dataset_format(tmp_path) == MeshFormat("llama-mesh", 32)
    (tmp_path / "manifest.json").unlink()
    assert modelfolder.dataset_format(tmp_path) == MeshFormat("llama-mesh", 64)


def test_upgrade_from_schema_1():
    old = {
        "meshlm_version": "0.0.9",
        "format": {"name": "llama-mesh-obj", "bins": 64, "coordinates": "integers 0..bins-1"},
        "shape_families": ["box"],
        "versions": {"torch": "2.4"},
    }
    new = upgrade(old)
    assert old["meshlm_version"] == "0.0.9"  # the input is not changed
    assert new == {
        "schema_version": 2,
        "kind": "model",
        "format": {"name": "llama-mesh", "bins": 64},
        "shape_families": ["box"],
        "versions": {"torch": "2.4", "meshlm": "0.0.9"},
    }
    # the smallest files of that time (the shapes CLI's test writes these) read with defaults
    assert ModelInfo.from_dict({"kind": "model"}) == ModelInfo()
    assert ModelInfo.from_dict({}).format == MeshFormat()


def _error(data, tmp_path) -> ModelFolderError:
    (tmp_path / "meshlm.json").write_text(json.dumps(data))
    with pytest.raises(ModelFolderError) as info:
        read(tmp_path)
    return info.value


@pytest.mark.parametrize(
    "patch, field, words",
    [
        ({"format": {"bins": "64"}}, "format.bins", 'must be an integer 2..1024, got "64"'),
        ({"format": {"bins": 1025}}, "format.bins", "got 1025"),
        ({"format": {"bins": True}}, "format.bins", "got true"),
        ({"format": {"name": "Llama Mesh!"}}, "format.name", "must be a format name"),
        ({"format": [64]}, "format", "must be an object"),
        ({"kind": "lora"}, "kind", "must be one of model, adapter"),
        ({"shape_families": "box"}, "shape_families", "must be a list of names"),
        ({"metrics": {"eval_loss": "low"}}, "metrics.eval_loss", "must be a number"),
        ({"versions": {"torch": 2.4}}, "versions.torch", "must be a version string"),
        ({"dataset": {"manifest_sha256": "abc"}}, "dataset.manifest_sha256", "64 hex digits"),
        ({"dataset": {"counts": {"train": -1}}}, "dataset.counts", "row counts"),
        ({"schema_version": 3}, "schema_version", "3 was written by a newer meshlm"),
        ({"schema_version": "2"}, "schema_version", "must be a positive integer"),
    ],
)
def test_a_bad_field_is_named_with_the_file(tmp_path, patch, field, words):
    data = copy.deepcopy(_info().to_dict())
    for k, v in patch.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    err = _error(data, tmp_path)
    assert err.field == field and err.path == str(tmp_path / "meshlm.json")
    assert str(err).startswith(f"{tmp_path / 'meshlm.json'}: field '{field}': ")
    assert words in str(err)


def test_unreadable_files(tmp_path):
    assert read(tmp_path) is None  # no meshlm.json: a hub id or a model trained elsewhere
    assert read("meta-llama/Llama-3.1-8B-Instruct") is None
    (tmp_path / "meshlm.json").write_text('{"kind": "model",\n  oops}')
    with pytest.raises(ModelFolderError, match=r"meshlm.json: not valid JSON \(line 2: "):
        read(tmp_path)
    (tmp_path / "meshlm.json").write_text("[1, 2]")
    with pytest.raises(ModelFolderError, match="must hold a JSON object, got \\[1, 2\\]"):
        read(tmp_path)


def test_module_needs_only_the_standard_library():
    """meshlm.modelfolder imports nothing heavy (no numpy, no torch): any tool reads folders."""
    import meshlm.codec

    tree = ast.parse(Path(modelfolder.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(
                node.module if node.module.startswith("meshlm") else node.module.split(".")[0]
            )
    assert imported - set(sys.stdlib_module_names) == {"meshlm.errors"}
    assert modelfolder.DEFAULT_BINS == meshlm.codec.DEFAULT_BINS


def test_load_refuses_a_format_it_cannot_decode_before_loading_weights(tmp_path):
    from meshlm.errors import MeshlmError
    from meshlm.infer import load

    write(tmp_path, ModelInfo(format=MeshFormat("octree", 64)))  # no weights in the folder
    with pytest.raises(
        MeshlmError,
        match="mesh format 'octree' is not one this meshlm decodes "
        r"\(llama-mesh, parts\)",
    ):
        load(tmp_path, "transformers")
    (tmp_path / "meshlm.json").write_text(json.dumps({"format": {"bins": 0}}))
    with pytest.raises(ModelFolderError, match="field 'format.bins'"):
        load(tmp_path, "transformers")


def test_cli_reports_a_bad_meshlm_json_in_one_line(tmp_path, capsys):
    from meshlm.cli import main

    (tmp_path / "meshlm.json").write_text(json.dumps({"format": {"bins": "many"}}))
    assert main(["generate", "a box", "-o", str(tmp_path / "a.obj"), "-m", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"meshlm: error: {tmp_path / 'meshlm.json'}: field 'format.bins': must be an "
        'integer 2..1024, got "many"'
    ]


def test_a_server_backend_sends_the_engines_bins():
    """No model folder behind a server: --bins sets the grammar's range, with no warning."""
    from meshlm.infer import load

    engine = load("llama-mesh", "openai", base_url="http://127.0.0.1:9/v1", bins=128)
    assert engine.bins == engine.backend.bins == 128 and engine.notes == []
    assert load("llama-mesh", "openai", base_url="http://127.0.0.1:9/v1").backend.bins == 64


def test_gguf_metadata_reader(tmp_path):
    # the shipped GGUF predates the keys: no format inside, the folder's meshlm.json holds it
    assert modelfolder.gguf_format(BUNDLED / "model-f16.gguf") is None
    (tmp_path / "x.gguf").write_bytes(b"GGML" + bytes(20))
    with pytest.raises(ModelFolderError, match="x.gguf: not a GGUF file"):
        modelfolder.gguf_format(tmp_path / "x.gguf")
