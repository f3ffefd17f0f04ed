"""Procedural shape families: geometry contracts, codec survival, captions, determinism, CLI."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")

from meshlm.codec import decode, encode  # noqa: E402
from meshlm.errors import MeshlmError  # noqa: E402
from meshlm.shapes import (  # noqa: E402
    FAMILIES,
    MAX_FACES,
    ShapeSample,
    generate,
    list_families,
    make_shape,
    write_corpus,
)
from meshlm.shapes.captions import number  # noqa: E402

SEEDS = range(6)
NAMES = list_families()


def _samples(family: str, n: int, start: int = 0) -> list[ShapeSample]:
    return [make_shape(family, s) for s in range(start, start + n)]


def _first(family: str, pred, limit: int = 400) -> ShapeSample:
    for s in range(limit):
        sample = make_shape(family, s)
        if pred(sample.params):
            return sample
    raise AssertionError(f"no {family} sample in {limit} seeds matches the predicate")


# ------------------------------------------------------------------------------------ registry
def test_at_least_twenty_families_with_consistent_names():
    assert len(NAMES) >= 28
    assert NAMES == list(FAMILIES)
    for name in [
        "table",
        "chair",
        "stool",
        "bench",
        "shelf",
        "bed",
        "lamp",
        "mug",
        "bottle",
        "vase",
        "bowl",
        "sword",
        "hammer",
        "axe",
        "house",
        "tower",
        "pine_tree",
        "mushroom",
        "rocket",
        "arch",
        "stairs",
        "ring",
        "box",
        "cylinder",
        "cone",
        "sphere",
        "torus",
        "pyramid",
        "capsule",
    ]:
        assert name in FAMILIES


def test_unknown_family_is_a_library_error():
    with pytest.raises(MeshlmError, match="unknown shape family"):
        make_shape("spaceship", 0)
    with pytest.raises(MeshlmError):
        list(generate(3, 0, families=["nope"]))


# ------------------------------------------------------------------------------------ geometry
@pytest.mark.parametrize("family", NAMES)
def test_geometry_contract(family):
    for sample in _samples(family, len(SEEDS)):
        m = sample.mesh
        v, f = sample.vertices, sample.faces
        assert sample.family == family
        assert 0 < len(f) <= MAX_FACES
        assert f.dtype.kind == "i" and f.min() >= 0 and f.max() < len(v)
        assert np.isfinite(v).all()
        # Y up, resting on the ground, centred on X and Z
        lo, hi = v.min(0), v.max(0)
        assert abs(lo[1]) < 1e-9
        assert abs(lo[0] + hi[0]) < 1e-9 and abs(lo[2] + hi[2]) < 1e-9
        ext = hi - lo
        assert ext.min() > 0.02 * ext.max(), f"{family}: flat bounding box {ext}"
        # non-degenerate: distinct indices and a real area on every face
        assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all()
        assert (f[:, 0] != f[:, 2]).all()
        assert m.area_faces.min() > 1e-7 * ext.max() ** 2
        # closed: every family is watertight edge-wise (solids, or assemblies of closed parts)
        assert m.is_watertight, f"{family} seed sample not watertight"
        assert m.is_winding_consistent
        assert m.volume > 0


@pytest.mark.parametrize("family", [n for n in NAMES if FAMILIES[n].solid])
def test_solid_families_are_single_bodies(family):
    for sample in _samples(family, 4):
        assert sample.mesh.body_count == 1
        assert sample.mesh.is_volume


@pytest.mark.parametrize("family", NAMES)
def test_survives_the_codec(family):
    for sample in _samples(family, len(SEEDS)):
        text = encode(sample.vertices, sample.faces, bins=64)
        mesh = decode(text)  # strict: canonical text
        assert encode(mesh.quantized, mesh.faces, bins=64) == text
        assert len(mesh.faces) >= 0.85 * len(sample.faces), "collapsed under quantization"
        q = mesh.quantized
        assert q.min() >= 0 and q.max() <= 63
        ext = q.max(0) - q.min(0)
        assert ext.max() == 63
        assert ext[1] >= 6, "height collapsed"
        if FAMILIES[family].solid:
            assert trimesh.Trimesh(q, mesh.faces, process=False).is_watertight


# ---------------------------------------------------------------------------------- low poly
@pytest.mark.parametrize("family", NAMES)
def test_segment_cap_draws_the_same_object_with_fewer_sides(family):
    for seed in range(4):
        full, low = make_shape(family, seed), make_shape(family, seed, max_segments=6)
        # same draws: every parameter but the segment counts is unchanged
        for key, value in full.params.items():
            if key in ("segments", "sides"):  # segment counts
                assert low.params[key] == min(value, 6)
            else:
                assert low.params[key] == value, (family, key)
        assert low.family == family and len(low.faces) <= len(full.faces)
        assert low.mesh.is_watertight and low.mesh.volume > 0
        assert np.allclose(
            low.vertices.max(0) - low.vertices.min(0),
            full.vertices.max(0) - full.vertices.min(0),
            rtol=0.25,
        )
        text = encode(low.vertices, low.faces)
        assert encode(decode(text).quantized, decode(text).faces) == text


def test_segment_cap_counts_sides_exactly():
    cyl = _first("cylinder", lambda p: p["segments"] > 6)
    low = make_shape("cylinder", int(cyl.uid.rsplit("_", 1)[1]), max_segments=6)
    assert len(low.vertices) == 2 + 2 * 6 and len(low.faces) == 4 * 6  # poles, 2 rings, 6 sides
    assert len(cyl.faces) == 4 * cyl.params["segments"]
    # the cap holds for hard-coded side counts too (a round table top is drawn with 12-16)
    mean = np.mean([len(s.faces) for s in generate(2 * len(NAMES), 3, max_segments=6)])
    assert mean < 0.75 * np.mean([len(s.faces) for s in generate(2 * len(NAMES), 3)])


def test_segment_cap_below_six_is_refused(tmp_path):
    with pytest.raises(MeshlmError, match="max_segments must be >= 6"):
        make_shape("mug", 0, max_segments=5)
    main = _cli()
    assert main(["shapes", "--n", "3", "--max-segments", "4", "--out", str(tmp_path)]) == 1
    assert main(["shapes", "--n", "38", "--max-segments", "6", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.obj"))) == 38


def test_face_budget_is_mostly_small():
    counts = [len(s.faces) for s in generate(4 * len(NAMES), 1)]
    assert max(counts) <= MAX_FACES
    assert np.median(counts) <= 300


# ------------------------------------------------------------------------------------ captions
@pytest.mark.parametrize("family", NAMES)
def test_captions_are_sentences_that_vary(family):
    caps = [s.caption for s in _samples(family, 30)]
    for c in caps:
        assert c and not c[0].islower() and "  " not in c and not c.endswith((" ", ",")), c
        assert "{" not in c and "None" not in c, c
    assert len(set(caps)) >= 6, f"{family}: captions barely vary: {set(caps)}"


def test_table_captions_name_the_leg_count():
    seen = set()
    for s in range(300):
        t = make_shape("table", s)
        legs = t.params["legs"]
        words = {1: ("single", "one", "pedestal"), 3: ("three",), 4: ("four",)}[legs]
        assert any(w in t.caption.lower() for w in words), (legs, t.caption)
        assert "table" in t.caption.lower()
        seen.add(legs)
        if t.params["top"] == "round" and legs == 3:
            assert any(w in t.caption.lower() for w in ("round", "circular")), t.caption
    assert {3, 4} <= seen


@pytest.mark.parametrize(
    ("family", "key", "noun"),
    [
        ("shelf", "shelves", ""),
        ("stairs", "steps", "step"),
        ("pine_tree", "tiers", ""),
        ("stool", "legs", ""),
        ("rocket", "fins", "fin"),
        ("barrel", "hoops", "hoop"),
        ("snowman", "balls", "snowball"),
        ("house", "windows", "window"),
        ("dumbbell", "plates", "plate"),
    ],
)
def test_captions_state_counts(family, key, noun):
    seen = set()
    for s in range(60):
        sample = make_shape(family, s)
        k = sample.params[key]
        seen.add(k)
        cap = sample.caption.lower()
        assert re.search(rf"\b{number(k)}\b", cap), (k, cap)
        if noun:
            assert noun in cap, cap
    assert len(seen) >= 2, f"{family}: {key} never varies"


def test_captions_follow_boolean_parameters():
    chair = _first("chair", lambda p: p["arms"])
    assert "arm" in chair.caption.lower()
    chair = _first("chair", lambda p: not p["arms"] and p["back"] == "solid")
    assert "armchair" not in chair.caption.lower()
    bottle = _first("bottle", lambda p: p["neck"] == "long")
    assert "long" in bottle.caption.lower()
    cactus = _first("cactus", lambda p: p["arms"] == 0)
    assert "no arms" in cactus.caption.lower() or "without arms" in cactus.caption.lower()
    axe = _first("axe", lambda p: p["double"])
    assert "double" in axe.caption.lower() or "two blades" in axe.caption.lower()


# ---------------------------------------------------------------------------------- determinism
def test_make_shape_is_deterministic():
    for family in NAMES:
        a, b = make_shape(family, 7), make_shape(family, 7)
        assert a.caption == b.caption and a.params == b.params and a.uid == b.uid
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
    rng = np.random.default_rng(3)
    s = make_shape("mug", rng)
    assert s.uid.startswith("mug_") and s.uid == make_shape("mug", np.random.default_rng(3)).uid


def test_generate_is_a_deterministic_balanced_prefix():
    f = len(NAMES)
    long = list(generate(2 * f + 5, seed=11))
    short = list(generate(f + 3, seed=11))
    for a, b in zip(short, long, strict=False):
        assert (a.uid, a.caption) == (b.uid, b.caption)
        np.testing.assert_array_equal(a.vertices, b.vertices)
    for block in (long[:f], long[f : 2 * f]):
        assert sorted(s.family for s in block) == sorted(NAMES)
    assert len({s.uid for s in long}) == len(long)
    assert long[0].uid == f"{long[0].family}_11_000000"
    other = list(generate(f, seed=12))
    assert [s.caption for s in other] != [s.caption for s in long[:f]]


# --------------------------------------------------------------------------------------- corpus
def test_write_corpus_layout(tmp_path):
    path = write_corpus(tmp_path, 12, seed=4)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["uid", "caption", "family"]
    assert len(rows) == 13
    samples = list(generate(12, 4))
    for row, sample in zip(rows[1:], samples, strict=True):
        assert row == [sample.uid, sample.caption, sample.family]
        obj = tmp_path / f"{sample.uid}.obj"
        lines = obj.read_text().splitlines()
        assert all(ln.startswith(("v ", "f ")) for ln in lines)
        loaded = trimesh.load(obj, process=False, force="mesh")
        np.testing.assert_allclose(loaded.vertices, sample.vertices)
        np.testing.assert_array_equal(loaded.faces, sample.faces)


def _cli():
    try:
        from meshlm.cli import main
    except ImportError as exc:  # pragma: no cover - depends on the CLI package of the day
        pytest.fail(f"meshlm.cli does not import: {exc}")
    return main


def test_cli_list(capsys):
    main = _cli()
    assert main(["shapes", "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == NAMES


def test_cli_refuses_an_unknown_family_before_writing(tmp_path, capsys):
    main = _cli()
    assert main(["shapes", "--n", "2", "--family", "teapot", "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "meshlm: error: unknown shape family: teapot (see meshlm shapes --list)"
    ]
    assert not (tmp_path / "o").exists()


def test_cli_lists_the_families_the_bundled_model_knows(tmp_path, capsys, monkeypatch):
    import json

    from meshlm import modelfolder

    main = _cli()
    monkeypatch.setattr(modelfolder, "BUNDLED_MODEL", tmp_path)
    (tmp_path / "meshlm.json").write_text(json.dumps({"shape_families": ["mug", "box"]}))
    assert main(["shapes", "--list", "--known"]) == 0
    assert capsys.readouterr().out.splitlines() == ["mug", "box"]
    (tmp_path / "meshlm.json").write_text(json.dumps({"kind": "model"}))  # predates the field
    assert main(["shapes", "--list", "--known"]) == 0
    assert capsys.readouterr().out.splitlines() == NAMES
    (tmp_path / "meshlm.json").unlink()
    assert main(["shapes", "--list", "--known"]) == 1
    assert "no bundled model metadata" in capsys.readouterr().err


def test_cli_writes_byte_identical_corpora(tmp_path, capsys):
    main = _cli()
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["shapes", "--n", "45", "--seed", "9", "--out", str(a)]) == 0
    assert main(["shapes", "--n", "45", "--seed", "9", "--out", str(b)]) == 0
    files = sorted(p.name for p in a.iterdir())
    assert len(files) == 46 and files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = tmp_path / "c"
    assert main(["shapes", "--n", "45", "--seed", "10", "--out", str(c)]) == 0
    assert (c / "captions.csv").read_bytes() != (a / "captions.csv").read_bytes()


def test_cli_errors_are_one_line(tmp_path, capsys):
    main = _cli()
    assert main(["shapes", "--n", "3"]) == 1
    assert main(["shapes", "--n", "3", "--family", "nope", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("meshlm: error:") for e in err)
    assert main(["shapes", "--n", "4", "--family", "mug", "--out", str(tmp_path / "m")]) == 0
    assert sorted(p.name for p in (tmp_path / "m").glob("*.obj"))[0].startswith("mug_")
