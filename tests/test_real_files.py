"""Real files (issue 17): the kinds of mesh files people have, read as the OBJ/PLY specs and other
tools read them -- relative OBJ indices, tabs and line endings, byte-order marks, concave
polygons, double-sided geometry, PLY trailing bytes and mixed face lists -- and no library noise
on the terminal. The fixtures are written by ``tests/make_real_fixtures.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")

from make_real_fixtures import CUBE_Q, CUBE_V  # noqa: E402

import meshlm.codec as codec  # noqa: E402
from meshlm.codec import decode, encode, triangulate  # noqa: E402
from meshlm.errors import MeshlmError  # noqa: E402
from meshlm.files import (  # noqa: E402
    CorruptMeshFileError,
    MeshFileNote,
    load_mesh,
    load_mesh_bytes,
)
from meshlm.objreader import ObjParseError, decode_text, read_obj  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MESHLM = Path(sys.executable).parent / "meshlm"

TETRA_V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
TETRA_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # outward
TETRA_TEXT = "".join(f"v {x} {y} {z}\n" for x, y, z in TETRA_V) + "".join(
    f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in TETRA_F
)
CUBE = trimesh.creation.box((1, 1, 1))
QUAD_CUBE = (np.array(CUBE_V, float), [[i - 1 for i in q] for q in CUBE_Q])  # as the fixtures


def reference(kind: str) -> str:
    """The canonical text of the fixtures' tetrahedron or quad cube."""
    return encode(TETRA_V, TETRA_F) if kind == "tetra" else encode(*QUAD_CUBE)


def load(name: str, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MeshFileNote)
        return load_mesh(FIXTURES / name, **kwargs)


def load_text(text: str | bytes, ext: str = "obj"):
    data = text.encode() if isinstance(text, str) else text
    return load_mesh_bytes(data, ext)


def area(vertices, faces) -> float:
    t = np.asarray(vertices, float)[np.asarray(faces)]
    return float(0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1).sum())


def solid(mesh) -> trimesh.Trimesh:
    """A codec Mesh or (vertices, faces) as a Trimesh, checked closed and consistently wound."""
    tm = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    return tm


def canonical(mesh) -> str:
    return encode(np.asarray(mesh.vertices), np.asarray(mesh.faces))


def bodies(tm) -> list:
    return tm.split(only_watertight=False)


# --------------------------------------------------------------------- 1. relative indices


@pytest.mark.parametrize(
    ("name", "n_vertices", "n_faces", "n_bodies", "volume"),
    [
        ("rel_three_tetras.obj", 12, 12, 3, 3 / 6),
        ("rel_mixed_absolute.obj", 12, 16, 2, 1 + 1 / 6),
        ("rel_slashes.obj", 8, 8, 2, 2 / 6),
        ("bom_concatenated.obj", 8, 8, 2, 2 / 6),
    ],
)
def test_relative_indices_count_back_from_the_vertices_defined_so_far(
    name, n_vertices, n_faces, n_bodies, volume
):
    mesh = load(name)
    assert mesh.vertices.shape == (n_vertices, 3) and mesh.faces.shape == (n_faces, 3)
    tm = solid(mesh)
    assert len(bodies(tm)) == n_bodies
    assert tm.volume == pytest.approx(volume)
    text = canonical(mesh)
    assert text.count("v ") == n_vertices and text.count("f ") == n_faces
    assert solid(decode(text)).volume > 0


@pytest.mark.parametrize("blocks", [1, 2, 5])
def test_relative_blocks_are_separate_parts(blocks):
    lines = []
    for k in range(blocks):
        lines += [f"v {x + 3 * k} {y} {z}" for x, y, z in TETRA_V]
        lines += ["f " + " ".join(str(i - 4) for i in f) for f in TETRA_F]
    mesh = load_text("\n".join(lines))
    assert mesh.faces.shape == (4 * blocks, 3) and len(bodies(solid(mesh))) == blocks


def test_faces_with_fewer_than_three_corners_are_skipped_with_a_note():
    with pytest.warns(MeshFileNote) as record:
        mesh = load_mesh_bytes((TETRA_TEXT + "f 1 2\nf 3\n").encode(), "obj", name="x.obj")
    assert [str(w.message) for w in record] == ["x.obj: 2 faces with fewer than 3 corners skipped"]
    assert canonical(mesh) == encode(TETRA_V, TETRA_F)


def test_a_relative_index_before_the_first_vertex_names_the_line():
    with pytest.raises(ObjParseError, match="line 4: relative face index -4 points before"):
        read_obj(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf -1 -2 -4\n")
    with pytest.raises(CorruptMeshFileError, match="upload.obj: cannot parse as OBJ: line 3"):
        load_mesh_bytes(b"v 0 0 0\nv 1 0 0\nf 1 2 0\n", "obj", name="upload.obj")


# ------------------------------------------------------------------------- 2. white space


@pytest.mark.parametrize(
    ("name", "kind"),
    [("ws_tabs.obj", "tetra"), ("ws_crlf_spaces.obj", "cube"), ("ws_cr_continuation.obj", "tetra")],
)
def test_whitespace_fixtures(name, kind):
    mesh = load(name)
    assert canonical(mesh) == reference(kind)
    assert solid(mesh).volume == pytest.approx(1 / 6 if kind == "tetra" else 1.0)


@pytest.mark.parametrize("sep", [" ", "\t", "  ", " \t ", "\t\t", "\x0b", "\x0c"])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", " \n", "\t\r\n"])
def test_any_blank_separates_and_any_line_end_ends(sep, end):
    text = (
        end.join(sep.join(["v", *map(str, p)]) for p in TETRA_V.tolist())
        + end
        + end.join(sep.join(["f", *(str(i + 1) for i in f)]) for f in TETRA_F.tolist())
    )
    assert canonical(load_text(sep + text + end)) == encode(TETRA_V, TETRA_F)


def test_continued_lines_and_comments():
    text = (
        "v 0 0 0 # origin\nv 1 0 \\\n 0\nv 0 1 0\nv 0 0 1\nf 1 3 2 # bottom\n"
        "f 1 2 \\\n4\nf 1 4 3\nf 2 3 4\n"
    )
    assert canonical(load_text(text)) == encode(TETRA_V, TETRA_F)


# ------------------------------------------------------------ 3. byte-order marks, lead bytes


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bom_utf8.obj", "tetra"),
        ("bom_utf16le.obj", "cube"),
        ("bom_utf16be.obj", "cube"),
        ("bom_mojibake_nul.obj", "tetra"),
    ],
)
def test_bom_fixtures_lose_no_vertex(name, kind):
    mesh = load(name)
    n = 4 if kind == "tetra" else 8
    assert len(mesh.vertices) == n
    assert canonical(mesh) == reference(kind)


@pytest.mark.parametrize(
    "data",
    [
        TETRA_TEXT.encode("utf-8-sig"),
        TETRA_TEXT.encode("utf-16"),  # BOM in the machine's order
        b"\xff\xfe" + TETRA_TEXT.encode("utf-16-le"),
        b"\xfe\xff" + TETRA_TEXT.encode("utf-16-be"),
        TETRA_TEXT.encode("utf-16-le"),  # no BOM: told by the NUL bytes
        TETRA_TEXT.encode("utf-32"),
        b"\x00\x00\x00" + TETRA_TEXT.encode(),
        b"\x1a" + TETRA_TEXT.encode(),
        "\ufeff".encode().decode("cp1252").encode() + TETRA_TEXT.encode(),
        b"\xef\xbb\xbf\xef\xbb\xbf" + TETRA_TEXT.encode(),
        "\u00a0".encode() + TETRA_TEXT.encode(),
        b"\xff\xfe" + ("\ufeff" + TETRA_TEXT).encode("utf-16-le"),
    ],
    ids=[
        "utf8-bom",
        "utf16",
        "utf16le-bom",
        "utf16be-bom",
        "utf16le-nobom",
        "utf32",
        "nul",
        "ctrl-z",
        "cp1252-bom",
        "two-boms",
        "nbsp",
        "bom-in-utf16",
    ],
)
def test_leading_bytes_lose_no_vertex(data):
    mesh = load_text(data)
    assert len(mesh.vertices) == 4 and canonical(mesh) == encode(TETRA_V, TETRA_F)


def test_decode_text_contract():
    assert decode_text(b"\xef\xbb\xbfv 1\x002") == "v 1 2"
    assert decode_text(b"\xfe\xff\x00v") == "v"
    assert "\ufffd" in decode_text(b"v \xff\xfe\xfd 1")  # undecodable bytes are replaced


# ------------------------------------------------------------------- 4. concave polygons

U_SHAPE = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]  # area 7 (of 9)


def shoelace(poly) -> float:
    p = np.asarray(poly, float)
    return 0.5 * float(
        np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(np.roll(p[:, 0], -1), p[:, 1])
    )


@pytest.mark.parametrize("name", ["concave_u.obj", "concave_u_ascii.ply"])
def test_u_shaped_8gon_file_keeps_its_notch(name):
    mesh = load(name)
    assert len(mesh.faces) == 6
    assert area(mesh.vertices, mesh.faces) == pytest.approx(7 / 9)
    # and after encoding: thirds of 63 bins are whole bins, so the area is exact there too
    assert area(decode(canonical(mesh)).vertices, decode(canonical(mesh)).faces) == pytest.approx(
        7 / 9
    )


@pytest.mark.parametrize("start", range(8))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("plane", ["xy", "xz", "tilted"])
def test_u_shape_any_start_any_winding_any_plane(start, reverse, plane):
    p = np.array(U_SHAPE, float) / 3
    if plane == "xy":
        v = np.c_[p, np.zeros(8)]
    elif plane == "xz":
        v = np.c_[p[:, 0], np.zeros(8), p[:, 1]]
    else:
        rot = trimesh.transformations.rotation_matrix(0.7, (1, 2, 3))[:3, :3]
        v = np.c_[p, np.zeros(8)] @ rot.T + 5.0
    poly = np.roll(np.arange(8), start)
    poly = poly[::-1] if reverse else poly
    tris = triangulate([poly.tolist()], v)
    assert tris.shape == (6, 3)
    assert area(v, tris) == pytest.approx(7 / 9)
    normals = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    # every triangle is wound like the polygon (the polygon's Newell normal)
    newell = np.cross(v[poly], v[np.roll(poly, -1)]).sum(axis=0)
    assert (normals @ newell > 0).all()
    # encode() triangulates the same way: in a grid plane, thirds of 63 bins are whole bins
    m = decode(encode(v, [poly.tolist()]))
    assert len(m.faces) == 6
    if plane != "tilted":
        assert area(m.vertices, m.faces) == pytest.approx(7 / 9)
        assert m.to_text() == encode(v, tris)


@pytest.mark.parametrize("seed", range(40))
def test_random_star_shaped_polygons_are_covered_exactly(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(5, 30))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(0.2, 1.0, k)
    p = np.c_[np.cos(angles) * radii, np.sin(angles) * radii]
    v = np.c_[p, np.zeros(k)]
    tris = triangulate([list(range(k))], v)
    assert tris.shape == (k - 2, 3)
    assert area(v, tris) == pytest.approx(shoelace(p), rel=1e-9)
    normals = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    assert (normals[:, 2] >= -1e-12).all()  # counter-clockwise polygon, counter-clockwise ears


def test_convex_polygons_keep_the_fan():
    rng = np.random.default_rng(1)
    for k in range(4, 12):
        a = np.sort(rng.uniform(0, 2 * np.pi, k))
        v = np.c_[np.cos(a), np.sin(a), np.zeros(k)] * 2 + 1
        poly = list(range(k))
        assert triangulate([poly], v).tolist() == triangulate([poly]).tolist()
        assert encode(v, [poly]) == encode(v, triangulate([poly]))
    # a square with a point on one side (collinear corner) is convex too
    v = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0]], float)
    assert triangulate([[0, 1, 2, 3, 4]], v).tolist() == triangulate([[0, 1, 2, 3, 4]]).tolist()


@pytest.mark.parametrize(
    ("name", "cap_area", "height"),
    [
        ("concave_l_prism.obj", 3.0, 1.0),
        ("concave_l_prism_binary.ply", 3.0, 1.0),
        ("concave_l_prism.off", 3.0, 1.0),
        ("concave_star_prism.obj", None, 0.5),
    ],
)
def test_prisms_with_concave_caps_are_closed_with_the_right_volume(name, cap_area, height):
    mesh = load(name)
    tm = solid(mesh)
    if cap_area is None:  # the star: its cap's area by the shoelace formula
        bottom = mesh.vertices[np.isclose(mesh.vertices[:, 1], 0)]
        ang = np.arctan2(bottom[:, 2], bottom[:, 0])
        cap_area = shoelace(bottom[np.argsort(ang)][:, [0, 2]])
    assert tm.volume == pytest.approx(cap_area * height)
    assert solid(decode(canonical(mesh))).volume > 0


# ------------------------------------------------------------------ 5. double-sided geometry


@pytest.mark.parametrize("name", ["double_tetra.obj", "double_tetra.glb"])
def test_double_sided_tetrahedron_encodes_like_the_outward_one(name):
    text = canonical(load(name))
    assert text == encode(TETRA_V, TETRA_F)
    tm = solid(decode(text))
    assert tm.volume > 0


def test_double_sided_top_of_a_closed_box_follows_its_neighbours():
    text = canonical(load("double_box_one_side.ply"))
    assert text == reference("cube")  # the top's orientation is its neighbours'
    assert solid(decode(text)).volume > 0


def test_double_sided_open_plane_is_deterministic():
    mesh = decode(canonical(load("double_plane.obj")))
    assert len(mesh.faces) == 2
    normals = np.cross(
        *(mesh.vertices[mesh.faces[:, i]] - mesh.vertices[mesh.faces[:, 0]] for i in (1, 2))
    )
    assert (normals[:, 1] > 0).all() and np.allclose(normals[:, [0, 2]], 0)


SOLIDS = {
    "tetra": (TETRA_V, TETRA_F),
    "cube": (CUBE.vertices, CUBE.faces),
    "icosphere": (trimesh.creation.icosphere(1).vertices, trimesh.creation.icosphere(1).faces),
    "torus": (
        trimesh.creation.torus(1.0, 0.3, 12, 8).vertices,
        trimesh.creation.torus(1.0, 0.3, 12, 8).faces,
    ),
}


@pytest.mark.parametrize("shape", sorted(SOLIDS))
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kernel", [True, False])
def test_double_sided_solids_come_out_outward_whatever_the_order(shape, seed, kernel, monkeypatch):
    if not kernel:
        monkeypatch.setattr(codec, "_ccodec", None)
    v, f = SOLIDS[shape]
    rng = np.random.default_rng(seed)
    single = encode(v, f)
    both = np.concatenate([f, f[:, ::-1]])[rng.permutation(2 * len(f))]
    assert encode(v, both) == single
    assert encode(v, np.concatenate([f[:, ::-1], f[:, ::-1][:, [1, 2, 0]], f])) == single
    # each side with its own vertices (how glTF exporters write it)
    v2 = np.concatenate([v, v])
    assert encode(v2, np.concatenate([f, f[:, ::-1] + len(v)])) == single
    # all double-sided but a single inward face: that face decides the piece
    inward = encode(v, np.concatenate([f[:, ::-1], f[1:]]))
    assert inward == encode(v, f[:, ::-1])
    assert solid(decode(single)).volume > 0


def test_two_double_sided_pieces_are_each_outward():
    v = np.concatenate([TETRA_V, TETRA_V + 5])
    f = np.concatenate([TETRA_F, TETRA_F + 4])
    assert encode(v, np.concatenate([f, f[:, ::-1]])) == encode(v, f)


# ----------------------------------------------------------------------- 6. PLY tolerance


@pytest.mark.parametrize(
    ("name", "extra", "kind"),
    [
        ("ply_binary_trailing.ply", "13 bytes", "tetra"),
        ("ply_binary_be_trailing.ply", "5 bytes", "cube"),
        ("ply_ascii_trailing.ply", "11 bytes of text", "tetra"),
        ("ply_binary_mixed_trailing.ply", "7 bytes", "cube"),
    ],
)
def test_ply_bytes_after_the_last_element_are_noted_and_the_rest_read(name, extra, kind):
    with pytest.warns(MeshFileNote) as record:
        mesh = load_mesh(FIXTURES / name)
    assert len(record) == 1
    assert str(record[0].message) == (
        f"{FIXTURES / name}: {extra} after the last element the header describes were ignored"
    )
    assert mesh.metadata["meshlm_notes"] == [str(record[0].message)]
    assert canonical(mesh) == reference(kind)


def test_binary_ply_with_triangles_and_quads_mixed():
    mesh = load("ply_binary_mixed_faces.ply")
    assert mesh.faces.shape == (12, 3)
    assert solid(mesh).volume == pytest.approx(1.0)


@pytest.mark.parametrize("trailer", [b"\n", b"\x00", b"\x00" * 1000, b"junk", b"\r\n\x1a"])
@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_ply_trailers_of_every_kind(tmp_path, trailer, fmt):
    tm = trimesh.Trimesh(TETRA_V, TETRA_F, process=False)
    data = tm.export(file_type="ply", encoding="ascii" if fmt == "ascii" else "binary")
    if fmt == "binary_big_endian":  # trimesh writes little endian: swap the data by hand
        head, body = data.split(b"end_header\n", 1)
        v = np.frombuffer(body[: 4 * 12], "<f4").astype(">f4").tobytes()
        rows = np.frombuffer(body[4 * 12 :], dtype=[("n", "u1"), ("i", "<i4", (3,))])
        out = np.zeros(len(rows), dtype=[("n", "u1"), ("i", ">i4", (3,))])
        out["n"], out["i"] = rows["n"], rows["i"]
        data = head.replace(b"binary_little_endian", b"binary_big_endian") + b"end_header\n"
        data += v + out.tobytes()
    noted = fmt != "ascii" or trailer.strip()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        mesh = load_mesh_bytes(data + trailer, "ply", name="t.ply")
    assert canonical(mesh) == encode(TETRA_V, TETRA_F)
    notes = [str(w.message) for w in record if issubclass(w.category, MeshFileNote)]
    assert len(notes) == (1 if noted else 0)
    assert not [w for w in record if not issubclass(w.category, MeshFileNote)]


def test_truncated_ply_is_one_clean_error():
    with pytest.raises(CorruptMeshFileError) as info:
        load_mesh(FIXTURES / "ply_binary_truncated.ply")
    assert str(info.value) == (
        f"{FIXTURES / 'ply_binary_truncated.ply'}: cannot parse as PLY: file ends early: the "
        "header describes 100 bytes of data, the file has 90"
    )


# ------------------------------------------------------------------- 7. no library noise


def run_cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": ""}
    env.pop("MESHLM_DEBUG", None)
    env.update(env_extra or {})
    return subprocess.run(
        [str(MESHLM), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.slow
def test_missing_texture_and_huge_coordinates_print_nothing_but_the_text():
    for name, n in [
        ("noise_texture_missing.ply", 4),
        ("noise_texture_missing.obj", 4),
        ("noise_huge_coords.obj", 4),
        ("noise_tiny_coords.obj", 4),
    ]:
        proc = run_cli("encode", str(FIXTURES / name))
        assert (proc.returncode, proc.stderr) == (0, ""), name
        assert proc.stdout.count("v ") == n and proc.stdout.count("f ") == 4


def test_huge_and_tiny_coordinates_keep_every_vertex():
    for name in ("noise_huge_coords.obj", "noise_tiny_coords.obj"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no numpy RuntimeWarning either
            mesh = load(name)
            text = canonical(mesh)
        assert len(mesh.vertices) == 4 and text.count("v ") == 4 and text.count("f ") == 4
        assert solid(decode(text)).volume > 0


QUIET_PROBE = """
import logging, warnings
from meshlm._quiet import install, MeshlmWarning
install()
try:
    raise OSError("image file missing")
except OSError:
    logging.getLogger("trimesh").warning("unable to load image!", exc_info=True)
logging.getLogger("PIL.Image").info("some detail")
warnings.warn("overflow encountered in multiply", RuntimeWarning)
logging.getLogger("meshlm.render").warning("pyrender unavailable; using matplotlib previews")
warnings.warn("x.ply: 3 bytes after the last element were ignored", MeshlmWarning)
print("done")
"""


def test_library_logs_and_warnings_go_to_the_debug_log_only():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MESHLM_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", QUIET_PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.stdout == "done\n"
    assert proc.stderr == (
        "meshlm: warning: pyrender unavailable; using matplotlib previews\n"
        "meshlm: note: x.ply: 3 bytes after the last element were ignored\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", QUIET_PROBE],
        capture_output=True,
        text=True,
        env={**env, "MESHLM_DEBUG": "1"},
        timeout=120,
    )
    assert "trimesh: WARNING: unable to load image!" in proc.stderr
    assert "OSError: image file missing" in proc.stderr  # the traceback, in the debug log
    assert "RuntimeWarning: overflow encountered in multiply" in proc.stderr
    assert "PIL.Image: INFO: some detail" in proc.stderr
    assert "meshlm: note: x.ply: 3 bytes" in proc.stderr


@pytest.mark.slow
def test_build_data_over_noisy_files_is_quiet(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for name in ("noise_texture_missing.ply", "noise_huge_coords.obj", "ply_binary_trailing.ply"):
        (meshes / name).write_bytes((FIXTURES / name).read_bytes())
    args = ["--meshes", "meshes", "--name-captions", "--out", "data", "--no-progress"]
    proc = run_cli("build-data", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for noise in ("Traceback", "Warning:", "unable to load image", "RuntimeWarning"):
        assert noise not in proc.stderr
    assert [x for x in proc.stderr.splitlines() if x.startswith("meshlm: note:")] == [
        "meshlm: note: meshes/ply_binary_trailing.ply: 13 bytes after the last element "
        "the header describes were ignored"
    ]
    assert proc.stdout.startswith("2 objects kept of 3 (1 left out)")  # two equal tetrahedra


# ------------------------------------------------------------------------------ the corpus

CORPUS = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.name != "README.md")
MUST_FAIL = {
    "bad_index.obj",
    "empty.obj",
    "garbage.bin",
    "garbage.glb",
    "garbage.ply",
    "garbage.stl",
    "inf.obj",
    "nan.obj",
    "lines_only.obj",
    "not_a_mesh.obj",
    "points_only.obj",
    "points_only.ply",
    "whitespace.obj",
    "ply_binary_truncated.ply",
}


def in_process(path: Path) -> tuple[str | None, str, list[str]]:
    """(canonical text or None, error message or '', notes) by the library, as the CLI reads it."""
    from meshlm.cli.mesh_cmds import load_any

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            text, error = load_any(str(path), 64).to_text(), ""
        except MeshlmError as exc:
            text, error = None, str(exc)
    notes = [str(w.message) for w in record if issubclass(w.category, MeshFileNote)]
    assert not [w for w in record if not issubclass(w.category, MeshFileNote)]
    return text, error, notes


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_encodes_canonically_or_fails_in_one_line(name):
    path = FIXTURES / name
    proc = run_cli("encode", str(path))
    text, error, notes = in_process(path)
    if name in MUST_FAIL:
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr == f"meshlm: error: {error}\n"
        assert error.startswith(f"{path}: ") and "\n" not in error
        return
    assert proc.returncode == 0
    assert proc.stderr == "".join(f"meshlm: note: {n}\n" for n in notes)
    assert proc.stdout == text + "\n"
    mesh = decode(text)  # strict: canonical
    assert encode(mesh.vertices, mesh.faces) == text


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_describe_and_web_upload_read_the_same(name, tmp_path):
    """``meshlm describe`` loads a file with the CLI's ``load_any``; the web demo with
    ``Demo.load_upload``: the same mesh or the same one-line problem."""
    from meshlm.web import Demo

    path = FIXTURES / name
    text, error, _ = in_process(path)
    assert (text is None) == (name in MUST_FAIL)
    demo = Demo(workdir=tmp_path)
    upload = tmp_path / "upload" / name
    upload.parent.mkdir()
    upload.write_bytes(path.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MeshFileNote)
        try:
            mesh, summary = demo.load_upload(upload)
        except MeshlmError as exc:
            assert text is None, str(exc)
            assert str(exc) == f"{name}: " + error.removeprefix(f"{path}: ")
            return
    assert text is not None
    assert mesh.to_text() == text
    assert summary == f"{name} ({len(mesh.quantized)} vertices, {len(mesh.faces)} faces)"
