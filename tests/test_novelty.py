"""Novelty (meshlm/eval/novelty.py): Chamfer distance to the nearest training mesh in
quantization steps, exact copies, distinct meshes per family, and `meshlm eval novelty`."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("trimesh")
pytest.importorskip("scipy")

from meshlm import modelfolder  # noqa: E402
from meshlm.cli import main  # noqa: E402
from meshlm.codec import canonicalize, dequantize  # noqa: E402
from meshlm.errors import MeshlmError  # noqa: E402
from meshlm.eval.novelty import (  # noqa: E402
    distance_steps,
    mesh_key,
    novelty,
    recorded_dataset,
    training_set,
)
from meshlm.files import save_mesh  # noqa: E402
from meshlm.parts import encode_parts, split_parts  # noqa: E402
from meshlm.shapes import make_shape  # noqa: E402


def _mesh(family: str, seed: int):
    s = make_shape(family, seed, max_segments=6)
    return canonicalize(s.vertices, s.faces)


@pytest.fixture(scope="module")
def meshes():
    a = _mesh("table", 3)
    # A with its top (the part with the widest footprint) moved by one bin along z
    q = a.quantized.copy()
    top = max(split_parts(q, a.faces), key=lambda p: int(np.ptp(q[p.vertices][:, 0])))
    q[top.vertices, 2] += 1
    shifted = canonicalize(dequantize(q, a.bins), a.faces)
    return {"a": a, "shifted": shifted, "chair": _mesh("chair", 1), "mug": _mesh("mug", 2)}


def _dataset(folder, rows, fmt="llama-mesh"):
    """A build-data-like dataset folder: manifest.json (format block) and train.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": modelfolder.format_block(64, fmt)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with (folder / "train.jsonl").open("w") as fh:
        for text, uid, task in rows:
            user = "Create a 3D model of a table." if task == "generation" else f"{text}\nWhat?"
            reply = f"Here it is:\n\n{text}" if task == "generation" else "A table."
            msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
            fh.write(json.dumps({"messages": msgs, "source": f"procedural:{uid}", "task": task}))
            fh.write("\n")
    return folder


def test_copy_near_copy_and_other_shape(meshes):
    ts = training_set([meshes["a"], meshes["chair"]], families=["table", "chair"])
    gens = [meshes["a"], meshes["shifted"], meshes["mug"]]
    assert mesh_key(meshes["shifted"], 64) != mesh_key(meshes["a"], 64)
    rows, rep = novelty(gens, ["table", "table", "mug"], ts)
    assert rows[0]["steps"] == 0.0 and rows[0]["exact"] and rows[0]["nearest_family"] == "table"
    assert 0.0 < rows[1]["steps"] <= 1.0 and not rows[1]["exact"] and rows[1]["nearest"] == 0
    assert rows[2]["steps"] > 4.0 and not rows[2]["exact"]
    assert rep["exact_copy_share"] == pytest.approx(1 / 3)
    assert rep["within_1_step_share"] == pytest.approx(2 / 3)
    assert rep["steps"]["min"] == 0.0 and rep["steps"]["max"] == rows[2]["steps"]
    assert rep["steps"]["median"] == rows[1]["steps"]
    assert rep["by_family"] == {
        "mug": {"prompts": 1, "meshes": 1, "distinct": 1},
        "table": {"prompts": 2, "meshes": 2, "distinct": 2},
    }
    assert rep["distinct_meshes"] == 3 and rep["train"]["distinct_meshes"] == 2
    assert 0.3 < rep["sampling_noise_steps"] < 3.0


def test_distance_is_in_steps_of_the_grid(meshes):
    """A distance is a length over the grid step: the same pair is 127/63 times as many steps
    apart on a 128-bin grid as on a 64-bin one; a mesh is 0 steps from itself."""
    a, mug = meshes["a"], meshes["mug"]
    d64 = distance_steps(a, mug, 64)
    assert distance_steps(a, mug, 128) == pytest.approx(d64 * 127 / 63)
    assert distance_steps(a, a, 64) == 0.0


def test_training_set_from_a_dataset_in_either_format(tmp_path, meshes):
    a, chair = meshes["a"], meshes["chair"]
    rows = [
        (a.to_text(), "table_1_000001", "generation"),
        (a.to_text(), "table_1_000002", "generation"),  # a duplicate
        (chair.to_text(), "chair_1_000003", "generation"),
        (meshes["mug"].to_text(), "mug_1_000004", "understanding"),  # a user's mesh: not trained
    ]
    ts = training_set(_dataset(tmp_path / "llm", rows))
    assert (ts.rows, len(ts.keys), ts.copies, ts.families) == (3, 2, [2, 1], ["table", "chair"])
    parts_rows = [
        (encode_parts(m.vertices, m.faces), u, t)
        for (m, (_, u, t)) in zip([a, a, chair, meshes["mug"]], rows, strict=True)
    ]
    tp = training_set(_dataset(tmp_path / "parts", parts_rows, "parts") / "train.jsonl")
    assert tp.keys == ts.keys  # the same meshes, read in their own format


def test_eval_novelty_command(tmp_path, meshes, capsys):
    data = _dataset(tmp_path / "data", [(meshes["a"].to_text(), "table_1_000001", "generation")])
    gen = tmp_path / "gen"
    samples = []
    for i, (name, fam) in enumerate([("a", "table"), ("mug", "mug"), (None, "table")]):
        row = {"i": i, "prompt": f"p{i}", "family": fam}
        if name:
            save_mesh(meshes[name], gen / "meshes" / f"{i:04d}.obj")
            row["mesh"] = f"meshes/{i:04d}.obj"
        samples.append(row)
    (gen / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    out = tmp_path / "nov"
    args = ["eval", "novelty", "-g", str(gen / "samples.jsonl"), "-o", str(out)]
    assert main([*args, "--train", str(data)]) == 0
    rep = json.loads((out / "novelty.json").read_text())
    assert (rep["samples"], rep["measured"], rep["unmeasured"]) == (3, 2, 1)
    assert rep["exact_copy_share"] == 0.5 and rep["steps"]["min"] == 0.0
    assert rep["by_family"]["table"] == {"prompts": 2, "meshes": 1, "distinct": 1}
    rows = [json.loads(x) for x in (out / "novelty.jsonl").read_text().splitlines()]
    assert [r.get("exact") for r in rows] == [True, False, None]
    assert rows[2]["error"] == "no mesh" and rows[0]["mesh"].endswith("0000.obj")
    # without --train: the dataset a model folder records
    model = tmp_path / "model"
    model.mkdir()
    info = modelfolder.ModelInfo(dataset=modelfolder.DatasetRef(dir=str(data)))
    modelfolder.write(model, info)
    assert recorded_dataset(model) == data
    assert main([*args, "--model", str(model)]) == 0
    modelfolder.write(model, modelfolder.ModelInfo(dataset=modelfolder.DatasetRef(dir="/nowhere")))
    capsys.readouterr()
    assert main([*args, "--model", str(model)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/nowhere is not here" in err[0] and "--train" in err[0]
    with pytest.raises(MeshlmError, match="no such file"):
        training_set(tmp_path / "missing")
