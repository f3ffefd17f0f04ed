"""meshlm.data.widen: a dataset's rows plus one row of a task for each mesh of a second build
that the first lacks, held-out meshes excluded, with a manifest that says so."""

from __future__ import annotations

import json

import pytest

from meshlm import meshtext
from meshlm.data import BuildConfig, build_dataset
from meshlm.data.widen import main, row_meshes, widen
from meshlm.errors import MeshlmError


def _build(out, seed, fmt="parts"):
    build_dataset(
        BuildConfig(
            out=str(out), workers=1, progress=False, procedural=30, mix=(1, 1, 0), seed=seed,
            families=["table", "box"], format=fmt, max_segments=6, multi_turn=0.0,
        )
    )  # fmt: skip
    return out


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("widen")
    return _build(root / "base", 0), _build(root / "extra", 1)


def test_widen_adds_one_row_per_new_mesh_and_keeps_the_base(builds, tmp_path):
    base, extra = builds
    dst = tmp_path / "wide"
    (base / "exemplars.json").write_text('{"bank": "the rows show it"}')
    counts = widen(base, extra, dst, "understanding")
    assert (dst / "exemplars.json").read_text() == '{"bank": "the rows show it"}'  # shipped
    base_train = (base / "train.jsonl").read_text().splitlines()
    train = (dst / "train.jsonl").read_text().splitlines()
    assert train[: len(base_train)] == base_train  # the base's rows first, unchanged
    for split in ("validation", "test"):  # held-out splits only from the base
        assert (dst / f"{split}.jsonl").read_text() == (base / f"{split}.jsonl").read_text()
    added = [json.loads(x) for x in train[len(base_train) :]]
    assert len(added) == counts["added"] > 0
    have = {m for s in ("train", "validation", "test") for r in _rows(base / f"{s}.jsonl")
            for m in row_meshes(r)}  # fmt: skip
    extra_rows = [json.loads(x) for x in (extra / "train.jsonl").read_text().splitlines()]
    extra_lines = set((extra / "train.jsonl").read_text().splitlines())
    meshes = [row_meshes(r) for r in added]
    assert all(len(m) == 1 and m[0] not in have for m in meshes)
    assert len({m[0] for m in meshes}) == len(meshes)  # one row a mesh
    assert all(r["task"] == "understanding" for r in added)
    assert all(json.dumps(r) in extra_lines or r in extra_rows for r in added)
    extra_meshes = {row_meshes(r)[0] for r in extra_rows if r["task"] == "understanding"}
    assert counts["added"] + counts["in_base"] + counts["excluded"] == len(extra_meshes)
    assert counts["in_base"] == len(extra_meshes & have)
    recorded = json.loads((dst / "manifest.json").read_text())["widen"]
    assert recorded["added"] == counts["added"] and recorded["extra_seed"] == 1
    assert recorded["rows"]["train"] == len(train) and recorded["task"] == "understanding"
    again = tmp_path / "again"  # deterministic in its seed
    widen(base, extra, again, "understanding")
    assert (again / "train.jsonl").read_text() == (dst / "train.jsonl").read_text()


def test_widen_never_adds_an_excluded_mesh(builds, tmp_path):
    base, extra = builds
    first = widen(base, extra, tmp_path / "all", "understanding")
    added = _rows(tmp_path / "all" / "train.jsonl")[-first["added"] :]
    a, b = (row_meshes(r)[0] for r in added[:2])
    held = tmp_path / "held.jsonl"  # one in the other format, as a held-out set writes it
    held.write_text(json.dumps({"mesh": meshtext.convert(a, "llama-mesh")}) + "\n")
    refs = tmp_path / "refs"
    refs.mkdir()
    mesh = meshtext.decode_strict(b, "parts")
    (refs / "ref.obj").write_text(
        "".join(f"v {x} {y} {z}\n" for x, y, z in mesh.vertices)
        + "".join(f"f {i + 1} {j + 1} {k + 1}\n" for i, j, k in mesh.faces)
    )
    counts = widen(base, extra, tmp_path / "held", "understanding", [held, refs])
    assert counts["excluded"] == 2 and counts["added"] == first["added"] - 2
    kept = {row_meshes(r)[0] for r in _rows(tmp_path / "held" / "train.jsonl")}
    assert a not in kept and b not in kept


def test_widen_refuses_what_it_cannot_do(builds, tmp_path):
    base, extra = builds
    llama = _build(tmp_path / "llama", 2, fmt="llama-mesh")
    with pytest.raises(MeshlmError, match="format llama-mesh at 64 bins"):
        widen(base, llama, tmp_path / "x", "understanding")
    with pytest.raises(MeshlmError, match="no training row of task 'caption'"):
        widen(base, extra, tmp_path / "y", "caption")
    with pytest.raises(MeshlmError, match="--exclude .*nowhere: no such file"):
        widen(base, extra, tmp_path / "z", "understanding", [tmp_path / "nowhere"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption": "no mesh"}\n')
    with pytest.raises(MeshlmError, match=r"bad.jsonl:1: no 'mesh' text"):
        widen(base, extra, tmp_path / "w", "understanding", [bad])
    assert not (tmp_path / "w").exists()  # nothing half-written


def test_widen_cli_says_one_line(builds, tmp_path, capsys):
    base, extra = builds
    assert main([str(base), str(tmp_path / "none"), str(tmp_path / "o"), "--task", "x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'none'}: no manifest.json (not a dataset built by "
                   "meshlm build-data)"]  # fmt: skip
    assert main([str(base), str(extra), str(tmp_path / "o"), "--task", "understanding"]) == 0
    assert "added" in capsys.readouterr().out


def test_widen_balance_tops_each_family_up_to_the_largest(builds, tmp_path):
    """``balance``: each family's rows reach the largest family's count with more of EXTRA's
    rows (other phrasings of its meshes), or take every one of them (cones, which BASE lacks
    and EXTRA has six lines of, each written twice); each added line is one of EXTRA's, once,
    never an excluded mesh's nor one of BASE's validation and test meshes; the manifest
    records what a family got."""
    from collections import Counter

    from meshlm.data.widen import row_family

    base, _ = builds  # tables and boxes
    extra = tmp_path / "extra"
    build_dataset(
        BuildConfig(
            out=str(extra), workers=1, progress=False, procedural=12, mix=(0.02, 0.98, 0),
            seed=1, families=["table", "box", "cone"], format="parts", max_segments=6,
            multi_turn=0.0, phrasings="wide",
        )
    )  # fmt: skip
    lines = (extra / "train.jsonl").read_text().splitlines()
    cones = [x for x in lines if '"procedural:cone_' in x and '"understanding"' in x]
    lines = [x for x in lines if x not in cones[6:]]  # few cone rows: every spare one is drawn
    # a build may write a line twice; BASE's held-out meshes must not come back as training
    # rows, whatever family a row claims
    kept_out = [x.replace('"procedural:table_', '"procedural:cone_')
                .replace('"procedural:box_', '"procedural:cone_')
                for s in ("validation", "test") for x in (base / f"{s}.jsonl").read_text()
                .splitlines() if '"understanding"' in x]  # fmt: skip
    assert kept_out
    (extra / "train.jsonl").write_text("\n".join([*lines, *cones[:6], *kept_out]) + "\n")
    pool = [r for r in _rows(extra / "train.jsonl") if r["task"] == "understanding"]
    held_mesh = row_meshes(
        next(r for r in reversed(pool[: -len(kept_out)]) if row_family(r) == "table")
    )[0]  # one of EXTRA's own tables
    held = tmp_path / "held.jsonl"
    held.write_text(json.dumps({"mesh": held_mesh}) + "\n")
    dst = tmp_path / "even"
    counts = widen(base, extra, dst, "understanding", [held], balance=True)
    train = (dst / "train.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in train]
    fam = Counter(row_family(r) for r in rows if r["task"] == "understanding")
    before = Counter(row_family(r) for r in _rows(base / "train.jsonl")
                     if r["task"] == "understanding")  # fmt: skip
    top = max(before.values())
    assert set(before) == {"table", "box"} and top > 0
    assert fam["table"] == fam["box"] >= top  # both at the largest
    added = train[len((base / "train.jsonl").read_text().splitlines()) :]
    assert len(added) == len(set(added)) == counts["added"] + counts["balanced"]
    assert set(added) <= set((extra / "train.jsonl").read_text().splitlines())
    base_lines = set((base / "train.jsonl").read_text().splitlines())
    assert not set(added) & base_lines
    new_cones = sum(row_family(json.loads(x)) == "cone" for x in added[: counts["added"]])
    recorded = json.loads((dst / "manifest.json").read_text())["widen"]
    assert recorded["balanced"]["cone"] == fam["cone"] - new_cones > 0  # cones topped up
    assert fam["cone"] == len(set(cones[:6])) == 6 < top  # every cone line, each once
    assert all(held_mesh not in row_meshes(r) for r in rows)
    their = {m for s in ("validation", "test") for r in _rows(base / f"{s}.jsonl")
             for m in row_meshes(r)}  # fmt: skip
    assert not {m for x in added for m in row_meshes(json.loads(x))} & their
    assert recorded["balance"] is True and recorded["added"] == counts["added"]
    assert sum(recorded["balanced"].values()) == counts["balanced"] and recorded["balanced"]["cone"]
    again = widen(base, extra, tmp_path / "again", "understanding", [held], balance=True)
    assert again == counts  # deterministic in its seed
    assert (tmp_path / "again" / "train.jsonl").read_text() == "\n".join(train) + "\n"
