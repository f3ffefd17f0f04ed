"""The parts format: exact text, connectivity order, invariances, round trips, strict and lenient
decoding, and the same vertices and triangles as the LLaMA-Mesh encoding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mesh_helpers import cube

from meshlm import MeshError, MeshFormatError, NoMeshFoundError, decode, decode_all, encode
from meshlm.errors import MeshlmError
from meshlm.parts import (
    FORMATS,
    decode_parts,
    encode_parts,
    format_parts,
    get_format,
    split_parts,
)
from meshlm.shapes.geometry import box, lathe

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ---------------------------------------------------------------------------------


@st.composite
def meshes(draw, max_vertices=30, max_faces=40):
    """Random triangle soups (coordinates on a coarse grid or float32, so that merges, shared
    vertices, non-manifold edges and several pieces all happen)."""
    n = draw(st.integers(3, max_vertices))
    coord = st.one_of(
        st.integers(-20, 20).map(float),
        st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32),
    )
    verts = np.array(draw(st.lists(st.tuples(coord, coord, coord), min_size=n, max_size=n)))
    m = draw(st.integers(1, max_faces))
    idx = st.integers(0, n - 1)
    faces = draw(
        st.lists(
            st.tuples(idx, idx, idx).filter(lambda t: len(set(t)) == 3), min_size=m, max_size=m
        )
    )
    return verts, np.array(faces, dtype=np.int64)


@st.composite
def box_scenes(draw):
    """1-4 axis-aligned boxes of random proportions, some touching (one piece), some apart."""
    vs, fs = [], []
    for _ in range(draw(st.integers(1, 4))):
        size = [draw(st.floats(0.3, 3)) for _ in range(3)]
        centre = [draw(st.integers(-3, 3)) * 1.5 for _ in range(3)]
        v, f = box(size, centre)
        fs.append(f + sum(len(x) for x in vs))
        vs.append(v)
    return np.vstack(vs), np.vstack(fs)


def try_encode(v, f, bins=64):
    try:
        return encode_parts(v, f, bins=bins)
    except MeshError:
        assume(False)


def skeleton(text: str) -> str:
    """The text with each vertex line's numbers removed: what stays when proportions change."""
    return "\n".join("v" if line.startswith("v") else line for line in text.split("\n"))


def triangles(mesh) -> set[tuple]:
    """Wound triangles as coordinate triples, each rotated to start at its smallest corner."""
    out = set()
    for t in mesh.faces.tolist():
        pts = [tuple(mesh.quantized[i].tolist()) for i in t]
        k = pts.index(min(pts))
        out.add(tuple(pts[k:] + pts[:k]))
    return out


def vertex_set(mesh) -> set[tuple]:
    return {tuple(r) for r in mesh.quantized.tolist()}


CUBE_TEXT = """v 0 0 0
v 0 0 63
v 0 63 63
v 0 63 0
v 63 63 0
v 63 0 0
v 63 0 63
v 63 63 63
f -8 -7 -6
f -8 -2 -7
f -8 -6 -5
f -8 -5 -4
f -8 -4 -3
f -8 -3 -2
f -7 -1 -6
f -7 -2 -1
f -6 -1 -5
f -5 -1 -4
f -4 -1 -3
f -3 -1 -2"""


# --- the exact format ------------------------------------------------------------------------


def test_cube_text_is_exact():
    # start: the rarest vertex class is the two corners of degree 6, (0,0,0) and (63,63,63); both
    # give the same face lines, the smaller coordinates win; then the neighbours of (0,0,0) in
    # winding order around it, then theirs
    text = encode_parts(*cube())
    assert text == CUBE_TEXT
    m = decode_parts(text)
    assert triangles(m) == triangles(decode(encode(*cube())))


def test_two_pieces_are_two_parts_in_corner_order():
    v1, f1 = box((1, 1, 1), (5, 0, 0))
    v2, f2 = box((1, 2, 1), (0, 0, 0))
    text = encode_parts(np.vstack([v1, v2]), np.vstack([f1, f2 + 8]))
    lines = text.split("\n")
    assert [ln[0] for ln in lines] == (["v"] * 8 + ["f"] * 12) * 2
    # the part at x = 0 (smaller minimum corner) comes first; relative indices stay in the part
    assert lines[0].startswith("v 0 ") and lines[20].startswith("v 52 ")
    assert all(int(k) >= -8 for ln in lines if ln[0] == "f" for k in ln.split()[1:])
    assert skeleton("\n".join(lines[:20])) == skeleton("\n".join(lines[20:]))


@SETTINGS
@given(box_scenes())
def test_every_box_is_written_with_the_same_face_lines(scene):
    text = try_encode(*scene)
    m = decode_parts(text)
    unit = decode_parts(encode_parts(*box((1, 1, 1))))
    ref = split_parts(unit.quantized, unit.faces)
    seen = 0
    for part in split_parts(m.quantized, m.faces):
        if len(part.vertices) == 8 and len(part.faces) == 12:  # a box that touches nothing
            assert part.faces == ref[0].faces
            seen += 1
    assert seen >= 1 or len(scene[1]) > 12


@settings(max_examples=60, deadline=None)
@given(
    segments=st.sampled_from([6, 8, 12]),
    radii=st.lists(st.floats(0.4, 1.2), min_size=4, max_size=4),
    gaps=st.lists(st.floats(0.25, 0.8), min_size=5, max_size=5),
    phase=st.floats(0, 1),
)
def test_surfaces_of_revolution_have_one_template_per_topology(segments, radii, gaps, phase):
    """A vase of any proportions: same face lines as a reference one with the same rings and
    sides (the LLaMA-Mesh order changes with the proportions)."""
    h = np.cumsum(gaps)
    prof = [(0, 0)] + list(zip(radii, h[:4], strict=True)) + [(0, h[4])]
    v, f = lathe(prof, segments, phase=phase)
    ref_prof = [(0, 0), (1, 0.5), (1, 1), (1, 1.5), (1, 2), (0, 2.5)]
    ref = encode_parts(*lathe(ref_prof, segments))
    text = encode_parts(v, f)
    assume(len(decode_parts(text).quantized) == len(v))  # no vertices merged at 64 bins
    assert skeleton(text) == skeleton(ref)


def test_chair_is_six_boxes_with_one_template():
    """Six boxes; the seat and the back share two corners (an edge of four faces), which does
    not join them: six parts, one template, the shared corners written in both."""
    pytest.importorskip("trimesh")
    from mesh_helpers import chair

    c = chair()
    text = encode_parts(c.vertices, c.faces)
    m = decode_parts(text)
    parts = split_parts(m.quantized, m.faces)
    assert [len(p.vertices) for p in parts] == [8] * 6
    assert len({tuple(p.faces) for p in parts}) == 1
    assert len(m.quantized) == 46 and text.count("v ") == 48
    assert triangles(m) == triangles(decode(encode(c.vertices, c.faces)))


def test_parts_welded_at_a_vertex_or_an_edge_stay_apart():
    a = box((1, 1, 1), (0, 0, 0))
    for shift in ((1, 1, 1), (1, 1, 0)):  # a corner, an edge in common
        b = box((1, 1, 1), shift)
        text = encode_parts(np.vstack([a[0], b[0]]), np.vstack([a[1], b[1] + 8]))
        lines = text.split("\n")
        assert [ln[0] for ln in lines] == (["v"] * 8 + ["f"] * 12) * 2, shift
        m = decode_parts(text)
        assert len(m.quantized) == 16 - {(1, 1, 1): 1, (1, 1, 0): 2}[shift]


# --- properties ------------------------------------------------------------------------------


@SETTINGS
@given(meshes(), st.sampled_from([8, 64, 256]))
def test_decode_then_encode_is_byte_identical(mesh, bins):
    text = try_encode(*mesh, bins=bins)
    m = decode_parts(text, bins=bins)  # canonical text always passes the strict decoder
    assert encode_parts(m.vertices, m.faces, bins=bins) == text
    assert format_parts(m) == text
    assert encode_parts(*mesh, bins=bins) == text  # deterministic


@SETTINGS
@given(meshes(), st.sampled_from([16, 64, 512]))
def test_same_vertices_and_triangles_as_the_llama_mesh_encoding(mesh, bins):
    text = try_encode(*mesh, bins=bins)
    parts = decode_parts(text, bins=bins)
    llama = decode(encode(*mesh, bins=bins), bins=bins)
    assert vertex_set(parts) == vertex_set(llama)
    assert triangles(parts) == triangles(llama)
    assert len(parts.faces) == len(llama.faces) and len(parts.quantized) == len(llama.quantized)


@SETTINGS
@given(meshes(), st.randoms(use_true_random=False))
def test_encoding_ignores_vertex_and_face_order(mesh, rnd):
    v, f = mesh
    text = try_encode(v, f)
    perm = list(range(len(v)))
    rnd.shuffle(perm)
    inv = np.argsort(perm)
    f2 = inv[f]
    order = list(range(len(f2)))
    rnd.shuffle(order)
    f2 = np.array([np.roll(t, rnd.randint(0, 2)) for t in f2[order]])  # same winding
    assert encode_parts(v[perm], f2) == text


@SETTINGS
@given(
    meshes(),
    st.tuples(*[st.floats(-100, 100, allow_nan=False)] * 3),
    st.floats(0.01, 100),
)
def test_encoding_ignores_translation_and_uniform_scale(mesh, shift, scale):
    v, f = mesh
    text = try_encode(v, f)
    assert encode_parts(v * scale + np.array(shift), f) == text


def test_quads_are_fan_triangulated_like_the_codec():
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    assert encode_parts(v, [[0, 1, 2, 3]]) == encode_parts(v, [[0, 1, 2], [0, 2, 3]])
    assert triangles(decode_parts(encode_parts(v, [[0, 1, 2, 3]]))) == triangles(
        decode(encode(v, [[0, 1, 2, 3]]))
    )


def test_large_symmetric_meshes_encode_quickly():
    """A torus (every vertex alike) tries a bounded number of starts."""
    trimesh = pytest.importorskip("trimesh")
    import time

    t = trimesh.creation.torus(1.0, 0.3, 48, 16)
    t0 = time.perf_counter()
    text = encode_parts(t.vertices, t.faces, bins=256)
    assert time.perf_counter() - t0 < 10
    assert triangles(decode_parts(text, bins=256)) == triangles(
        decode(encode(t.vertices, t.faces, bins=256), bins=256)
    )


def fixture_meshes():
    files = pytest.importorskip("meshlm.files")
    out = []
    for path in sorted(FIXTURES.iterdir()):
        try:
            with warnings.catch_warnings():  # the loader's notes on odd fixture files
                warnings.simplefilter("ignore")
                m = files.load_mesh(path)
            encode(m.vertices, m.faces)
        except (MeshlmError, ValueError):
            continue
        out.append((path.name, m))
    return out


def test_every_fixture_that_encodes_round_trips_with_the_same_triangles():
    found = fixture_meshes()
    assert {"quad.obj", "tetra.off"} <= {name for name, _ in found}
    for name, m in found:
        text = encode_parts(m.vertices, m.faces)
        parts = decode_parts(text, source=name)
        llama = decode(encode(m.vertices, m.faces))
        assert triangles(parts) == triangles(llama), name
        assert encode_parts(parts.vertices, parts.faces) == text, name


def two_piece_text() -> str:
    v1, f1 = box((1, 2, 1), (0, 0, 0))
    v2, f2 = lathe([(0, 0), (1, 0.5), (0.5, 2), (0, 3)], 6)
    return encode_parts(np.vstack([v1, v2 + 3]), np.vstack([f1, f2 + 8]))


def load_with_trimesh(text: str, tmp_path) -> set[tuple]:
    trimesh = pytest.importorskip("trimesh")
    from meshlm.codec import Mesh

    path = tmp_path / "parts.obj"
    path.write_text(text + "\n")
    loaded = trimesh.load(path, process=False, force="mesh")
    q = np.rint(np.asarray(loaded.vertices)).astype(np.int64)
    return triangles(Mesh(q, np.asarray(loaded.faces)))


def test_obj_readers_that_follow_the_spec_get_the_same_triangles(tmp_path):
    """Relative indices are standard OBJ (-1 = the last vertex defined above the face line).
    meshlm's reader of OBJ text in replies follows the spec (it returns each part as a mesh);
    trimesh does for one part."""
    text = two_piece_text()
    meshes = decode_all(text)
    assert len(meshes) == 2
    assert set().union(*map(triangles, meshes)) == triangles(decode_parts(text))
    one = encode_parts(*lathe([(0, 0), (1, 0.5), (0.5, 2), (0, 3)], 6))
    assert load_with_trimesh(one, tmp_path) == triangles(decode_parts(one))


def test_meshlm_files_reads_a_parts_obj_file(tmp_path):
    """meshlm's own OBJ reader (meshlm.objreader) counts relative indices back from the vertices
    defined so far, as the spec says: several parts load right, a shared vertex once."""
    files = pytest.importorskip("meshlm.files")
    from meshlm.codec import Mesh

    a, b = box((1, 1, 1), (0, 0, 0)), box((1, 1, 1), (1, 1, 0))  # sharing an edge
    shared = encode_parts(np.vstack([a[0], b[0]]), np.vstack([a[1], b[1] + 8]))
    path = tmp_path / "parts.obj"
    for text in (two_piece_text(), shared):
        path.write_text(text + "\n")
        m = files.load_mesh(path)
        q = np.rint(np.asarray(m.vertices)).astype(np.int64)
        assert len(q) == len(decode_parts(text).quantized)
        assert triangles(Mesh(q, np.asarray(m.faces))) == triangles(decode_parts(text))


@pytest.mark.xfail(
    strict=True,
    reason="trimesh resolves negative OBJ indices against the file's "
    "last vertex, not the face's position (mikedh/trimesh#2364, open)",
)
def test_trimesh_reads_several_parts(tmp_path):
    text = two_piece_text()
    assert load_with_trimesh(text, tmp_path) == triangles(decode_parts(text))


# --- strict decoding -------------------------------------------------------------------------

TETRA_TEXT = "\n".join(
    [
        "v 5 1 1",
        "v 5 1 9",
        "v 5 9 1",
        "v 9 1 1",
        "f -4 -3 -2",
        "f -4 -1 -3",
        "f -4 -2 -1",
        "f -3 -1 -2",
    ]
)
TWO = TETRA_TEXT + "\n" + CUBE_TEXT  # the smaller part first; the cube's lines are 9-28
_L = TWO.split("\n")
# both pieces in one part: cube vertices, tetrahedron vertices, cube faces (4 more vertices
# after them now), tetrahedron faces
ONE_BLOCK = "\n".join(
    _L[8:16]
    + _L[:4]
    + ["f " + " ".join(f"-{int(k[1:]) + 4}" for k in ln.split()[1:]) for ln in _L[16:]]
    + _L[4:8]
)


def test_strict_accepts_canonical_text_with_surrounding_whitespace():
    m = decode_parts("\n" + CUBE_TEXT + "\n\n")
    assert m.quantized.shape == (8, 3) and m.faces.shape == (12, 3) and m.report.clean
    assert m.faces.tolist()[:2] == [[0, 1, 2], [0, 6, 1]]


def replace_line(text: str, i: int, new: str | None) -> str:
    lines = text.split("\n")
    if new is None:
        del lines[i - 1]
    else:
        lines[i - 1] = new
    return "\n".join(lines)


def test_two_part_text_is_canonical():
    m = decode_parts(TWO)
    assert len(split_parts(m.quantized, m.faces)) == 2
    assert format_parts(m) == TWO


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("", 1, "empty"),
        (replace_line(CUBE_TEXT, 3, "v 0 63 64"), 3, "out of range 0..63"),
        (replace_line(CUBE_TEXT, 3, "v 0 63 063"), 3, "malformed vertex"),
        (replace_line(CUBE_TEXT, 3, "v 0 0 63"), 3, "duplicate vertex"),
        (replace_line(CUBE_TEXT, 9, "f 1 2 3"), 9, "malformed face"),
        (replace_line(CUBE_TEXT, 9, "f -8 -7 -0"), 9, "malformed face"),
        (replace_line(CUBE_TEXT, 9, "f -8 -7 -6 -5"), 9, "malformed face"),
        (replace_line(CUBE_TEXT, 9, "f -9 -7 -6"), 9, "points to no vertex"),
        (replace_line(TWO, 17, "f -9 -7 -6"), 17, "points before the current part (8 vert"),
        (replace_line(CUBE_TEXT, 9, "f -8 -7 -7"), 9, "repeats a vertex"),
        (replace_line(CUBE_TEXT, 10, "f -7 -6 -8"), 10, "duplicate face"),
        (replace_line(CUBE_TEXT, 9, "f -7 -6 -8"), 9, "face out of canonical order or rotation"),
        (replace_line(CUBE_TEXT, 9, "f -8 -6 -7"), 1, "vertex out of canonical order"),  # winding
        (
            replace_line(CUBE_TEXT, 2, "v 0 63 63").replace(
                "v 0 63 63\nv 0 63 63", "v 0 63 63\nv 0 0 63"
            ),
            2,
            "vertex out of canonical order",
        ),
        (replace_line(CUBE_TEXT, 9, ""), 9, "empty line"),
        (replace_line(CUBE_TEXT, 9, "g part"), 9, "not a vertex or face line"),
        ("v 0 0 0\nv 0 0 1\nf -2 -1 -1", 3, "2 vertices before its faces"),
        (CUBE_TEXT + "\nv 9 9 9", 21, "no face lines"),
        ("f -1 -2 -3", 1, "face before any vertex"),
        ("v 9 9 9\n" + CUBE_TEXT, 1, "used by no face"),
        ("\n".join(_L[8:] + _L[:8]), 1, "parts out of canonical order"),
        (ONE_BLOCK, 1, "part is not one piece (2 pieces"),
    ],
)
def test_strict_errors_name_the_line_and_problem(text, line, what):
    with pytest.raises(MeshFormatError) as exc:
        decode_parts(text)
    assert exc.value.line == line, str(exc.value)
    assert what in str(exc.value)
    assert f":{line}:" in str(exc.value) and "\n" not in str(exc.value)


def test_strict_error_lines_count_leading_blank_lines_and_name_the_source():
    with pytest.raises(MeshFormatError) as exc:
        decode_parts("\n\n" + replace_line(CUBE_TEXT, 2, "v 0 0 99"), source="reply.txt")
    assert str(exc.value).startswith("reply.txt:4: ")


def test_llama_mesh_text_is_refused_with_the_line():
    with pytest.raises(MeshFormatError) as exc:
        decode_parts(encode(*cube()))
    assert exc.value.line == 9 and "relative indices" in exc.value.problem


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_strict_raises_only_format_errors_on_arbitrary_text(text):
    try:
        m = decode_parts(text)
    except MeshFormatError:
        return
    assert len(m.faces) >= 1 and format_parts(m) == text.strip()


@SETTINGS
@given(mesh=meshes(max_vertices=16, max_faces=16), data=st.data())
def test_strict_accepts_an_edited_text_only_if_it_is_canonical(mesh, data):
    text = try_encode(*mesh)
    pos = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["", "0", "1", "9", " ", "\n", "v", "f", "-", "x"]))
    cut = data.draw(st.integers(0, 2))
    bad = text[:pos] + edit + text[pos + cut :]
    try:
        m = decode_parts(bad)
    except MeshFormatError as exc:
        assert exc.line is not None and 1 <= exc.line <= bad.count("\n") + 1
        return
    assert format_parts(m) == bad.strip()


# --- lenient decoding ------------------------------------------------------------------------


def test_lenient_reads_canonical_text_like_strict():
    m = decode_parts(TWO, strict=False)
    s = decode_parts(TWO)
    assert m.report.clean
    assert np.array_equal(m.quantized, s.quantized) and np.array_equal(m.faces, s.faces)


def test_lenient_finds_the_parts_in_a_reply_and_joins_them():
    reply = "Here is your mesh:\n```\n" + TWO + "\n```\nEnjoy!"
    m = decode_parts(reply, strict=False)
    assert triangles(m) == triangles(decode_parts(TWO))
    assert reply[m.report.span[0] : m.report.span[1]] == TWO


def test_lenient_repairs_and_reports():
    bad = replace_line(TWO, 18, "f -9 -2 -7")  # points before its part: dropped
    bad = replace_line(bad, 17, "f -8 -7 -6 -1")  # a quad: triangulated, one new face
    m = decode_parts(bad + "\nv 1 2", strict=False)  # a cut-off last line
    assert m.report.drops["face with out-of-range index"] == 1
    assert m.report.repairs["quad triangulated"] == 1
    assert m.report.truncated
    assert len(m.faces) == 4 + 12 - 1 + 1


def test_lenient_merges_vertices_parts_share_and_repairs_duplicates_in_a_part():
    shared = TWO.replace("v 5 1 1", "v 0 0 0")  # the tetrahedron's first corner on the cube's
    m = decode_parts(shared, strict=False)
    assert m.report.clean
    assert len(m.quantized) == 11 and len(m.faces) == 16
    twice = replace_line(TWO, 10, "v 0 0 0")  # two cube corners in one cell: a repair
    m = decode_parts(twice, strict=False)
    assert m.report.repairs["vertices in the same cell merged"] == 1
    assert m.report.drops["face collapsed by a merge"] >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(
            st.sampled_from(
                [
                    "v 1 2 3",
                    "v 0 0 9",
                    "v 5 5 5",
                    "f -1 -2 -3",
                    "f -3 -2 -1 -4",
                    "f -9 -1 -2",
                    "f 1 2 3",
                    "hello",
                    "",
                    "v 1.5 2 3",
                    "f -1 -1 -2",
                ]
            ),
            max_size=20,
        ).map("\n".join),
    )
)
def test_lenient_raises_only_no_mesh_found(text):
    try:
        m = decode_parts(text, strict=False)
    except NoMeshFoundError:
        return
    assert len(m.faces) >= 1
    assert len(np.unique(m.quantized, axis=0)) == len(m.quantized)  # one vertex per cell
    assert m.faces.min() >= 0 and m.faces.max() < len(m.quantized)


def test_lenient_without_a_mesh_raises_no_mesh_found():
    with pytest.raises(NoMeshFoundError):
        decode_parts("I cannot draw that.", strict=False)


# --- the registry ----------------------------------------------------------------------------


def test_formats_round_trip_through_the_registry():
    v, f = cube()
    assert set(FORMATS) == {"llama-mesh", "parts"}
    for name in FORMATS:
        fmt = get_format(name)
        text = fmt.encode(v, f, bins=64)
        m = fmt.decode(text, strict=True, bins=64)
        assert triangles(m) == triangles(decode(encode(v, f)))
        assert fmt.encode(m.vertices, m.faces, bins=64) == text
    with pytest.raises(MeshlmError, match="unknown mesh text format 'obj'.*llama-mesh, parts"):
        get_format("obj")
