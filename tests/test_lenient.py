"""The lenient decoder: meshes inside model replies, repairs, and fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mesh_helpers import cube

from meshlm import MeshFormatError, NoMeshFoundError, decode, decode_all, encode
from meshlm.codec import normalize, quantize
from meshlm.errors import MeshError

TRI = "v 0 0 0\nv 0 0 63\nv 0 63 0\nv 63 0 0\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 4 3"


def faces_of(m):
    return m.faces.tolist()


def test_canonical_text_decodes_identically_and_cleanly():
    m = decode(TRI, strict=False)
    s = decode(TRI)
    assert np.array_equal(m.quantized, s.quantized) and np.array_equal(m.faces, s.faces)
    assert m.report.clean and m.report.summary() == "no repairs"


def test_finds_mesh_in_chat_text_and_code_fences():
    reply = f"Sure! Here is a tetrahedron:\n\n```obj\n{TRI}\n```\n\nLet me know if you need more."
    m = decode(reply, strict=False)
    assert len(m.faces) == 4 and m.report.clean
    start, end = m.report.span
    assert reply[start:end] == TRI


def test_float_slash_negative_quad_crlf_whitespace_forms():
    text = (
        "v 0.0 0.0 0.0\r\n"
        "v   0 0 63.0  \r\n"
        "\tv 0 63 0\r\n"
        "v 63 63 63 0.5 0.5 0.5\r\n"
        "vn 0 1 0\r\n"
        "f 1/1/1 2/2/2 3/3/3\r\n"
        "f 1//1 3//1 4//1\r\n"
        "f -3 -1 -2\r\n"
    )
    m = decode(text, strict=False)
    assert m.quantized.tolist() == [[0, 0, 0], [0, 0, 63], [0, 63, 0], [63, 63, 63]]
    assert faces_of(m) == [[0, 1, 2], [0, 2, 3], [1, 3, 2]]
    r = m.report
    assert r.repairs["slash face indices reduced to vertex index"] == 2
    assert r.repairs["extra vertex values ignored"] == 1
    assert r.repairs["ignored 'vn' line"] == 1
    assert r.repairs["float coordinates read as whole bins"] == 2


@pytest.mark.parametrize(
    "face", ["f 1// 2// 3//", "f 1/ 2/ 3/", "f 1/1/1 2/2/2 3/3/3", "f 1/1 2/2 3/3", "f\t1\t2\t3"]
)
def test_every_obj_face_form_keeps_the_vertex_index(face):
    m = decode("v 0 0 0\nv 0 0 63\nv 0 63 0\n" + face, strict=False)
    assert faces_of(m) == [[0, 1, 2]]
    slashes = {"slash face indices reduced to vertex index": 1} if "/" in face else {}
    assert m.report.repairs == slashes and not m.report.drops


def test_quads_and_ngons_are_triangulated_and_counted():
    text = "v 0 0 0\nv 63 0 0\nv 63 63 0\nv 0 63 0\nv 30 80 0\nf 1 2 3 4\nf 4 3 5 1 2"
    m = decode(text, strict=False, bins=128)
    assert faces_of(m)[:2] == [[0, 1, 2], [0, 2, 3]]
    assert m.report.repairs["quad triangulated"] == 1
    assert m.report.repairs["polygon triangulated"] == 1


def test_drops_bad_faces_with_reasons():
    text = (
        "v 0 0 0\nv 0 0 63\nv 0 63 0\nv 63 0 0\n"
        "f 1 2 3\n"
        "f 1 2 9\n"  # out of range
        "f 1 1 2\n"  # repeated
        "f 0 1 2\n"  # index 0
        "f 1 2\n"  # too few
        "f 3 1 2\n"  # duplicate of the first (same set)
        "f 1 2 4\n"
    )
    m = decode(text, strict=False)
    assert faces_of(m) == [[0, 1, 2], [0, 1, 3]]
    d = m.report.drops
    assert d["face with out-of-range index"] == 1
    assert d["face repeats a vertex"] == 1
    assert d["face with index 0"] == 1
    assert d["malformed face line (needs 3 or more indices)"] == 1
    assert d["duplicate face"] == 1
    assert not m.report.truncated


def test_truncated_last_line_is_dropped_and_flagged():
    full = encode(*_sphere())
    cut = full[: full.rindex("\n") + 6]  # cut inside the last face line
    m = decode(cut, strict=False)
    assert m.report.truncated and m.report.drops["cut-off last line"] == 1
    # a cut inside a number looks complete unless the caller says the text was cut off
    cut2 = full[:-1]  # "f 15 17 18" -> "f 15 17 1"
    assert len(cut2.rsplit("\n", 1)[1].split()) == 4
    assert not decode(cut2, strict=False).report.truncated
    from meshlm.lenient import decode_lenient

    m2 = decode_lenient(cut2, cut_off=True)[0]
    assert m2.report.truncated and len(m2.faces) == cut2.count("\nf ") - 1
    n_complete = cut.count("\nf ") - 1
    assert len(m.faces) == n_complete
    # every kept face is one of the original faces
    orig = {tuple(t) for t in decode(full).faces.tolist()}
    assert {tuple(t) for t in m.faces.tolist()} <= orig


def test_malformed_vertex_keeps_indices_aligned():
    text = "v 0 0 0\nv 0 0 63\nv 12 oops\nv 0 63 0\nv 63 0 0\nf 1 2 4\nf 1 3 4\nf 1 4 5"
    m = decode(text, strict=False)
    assert m.report.drops["malformed vertex line"] == 1
    assert m.report.drops["face uses a malformed vertex"] == 1
    assert len(m.faces) == 2 and len(m.quantized) == 4


def test_out_of_range_integers_clipped_and_float_obj_requantized():
    # one over the grid at either end: a model's off-by-one, clipped
    m = decode("v 0 0 0\nv 0 0 64\nv 0 63 0\nf 1 2 3", strict=False)
    assert m.quantized.max() == 63 and m.report.repairs["coordinate clipped to 0..63"] == 1
    m = decode("v -1 0 0\nv 0 0 63\nv 0 63 0\nf 1 2 3", strict=False)
    assert m.quantized.tolist() == [[0, 0, 0], [0, 0, 63], [0, 63, 0]]
    assert m.report.repairs["coordinate clipped to 0..63"] == 1
    # floats in the unit cube at the origin: re-quantized in that frame (c + 0.5) * 63
    m = decode("v -0.5 0 0\nv 0.5 0 0\nv 0 0.25 0\nf 1 2 3", strict=False)
    assert m.quantized.tolist() == [[0, 31, 31], [63, 31, 31], [31, 47, 31]]
    assert m.report.repairs["unit-cube coordinates (-0.5..0.5) re-quantized to 64 bins"] == 1
    # floats in world units: re-normalized like encode
    m = decode("v -3.5 0 0\nv 4.5 0 0\nv 0 2 0\nf 1 2 3", strict=False)
    assert m.quantized.tolist() == [[0, 23, 31], [63, 23, 31], [27, 39, 31]]
    assert m.report.repairs["float coordinates re-normalized and quantized"] == 1


def test_several_meshes_in_one_reply():
    a = encode(*_sphere())
    b = TRI
    reply = f"First:\n{a}\nand second:\n```\n{b}\n```\nand a third right after:\n{b}\n{a}"
    ms = decode_all(reply)
    assert [len(m.faces) for m in ms] == [a.count("f "), 4, 4, a.count("f ")]
    for m, t in zip(ms, [a, b, b, a], strict=True):
        assert m.to_text() == t


def test_obj_with_global_indices_across_objects_is_one_mesh():
    text = (
        "o a\nv 0 0 0\nv 0 0 10\nv 0 10 0\nf 1 2 3\n"
        "o b\nv 20 0 0\nv 20 0 10\nv 20 10 0\nf 4 5 6\nf 1 4 5\n"
    )
    ms = decode_all(text)
    assert len(ms) == 1 and len(ms[0].faces) == 3


def test_faces_after_text_join_the_vertices():
    text = "Vertices:\nv 0 0 0\nv 0 0 63\nv 0 63 0\nFaces:\nf 1 2 3"
    ms = decode_all(text)
    assert len(ms) == 1 and faces_of(ms[0]) == [[0, 1, 2]]


@pytest.mark.parametrize(
    "text",
    ["", "hello", "v 1 2 3", "f 1 2 3", "v 1 2\nv 3 4\nf 1 2", "```\n```", "v a b c\nf 1 2 3"],
)
def test_no_mesh_found(text):
    with pytest.raises(NoMeshFoundError, match="no mesh found"):
        decode(text, strict=False)


def test_bytes_and_non_text():
    assert len(decode_all(TRI.encode())) == 1
    with pytest.raises(NoMeshFoundError):
        decode_all(None)


# --- dialects of other models and tools -------------------------------------------------------

# a unit cube, outward triangles (0-based), corners at 0/1
CUBE_V, CUBE_F = cube()
BOX = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.3, 0.3) for z in (-0.1, 0.1)])


def closed_and_consistent(faces) -> bool:
    """Every directed edge once and its reverse once: watertight with one winding throughout."""
    edges = [(int(a), int(b)) for f in faces for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))]
    return len(set(edges)) == len(edges) and all((b, a) in set(edges) for a, b in edges)


def signed_volume(m) -> float:
    v = m.vertices[m.faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6)


def obj_text(verts, faces, base=1, fmt="%d") -> str:
    vl = [
        ("v " + " ".join([fmt] * 3)) % tuple(map(float if "d" not in fmt else int, p))
        for p in verts
    ]
    fl = ["f " + " ".join(str(int(i) + base) for i in f) for f in faces]
    return "\n".join(vl + fl)


def test_zero_based_cube_reads_as_the_one_based_cube():
    canonical = encode(CUBE_V, CUBE_F)
    # the canonical text with every index one lower, as a 0-based model writes it
    zero = "\n".join(
        line if line[0] == "v" else "f " + " ".join(str(int(i) - 1) for i in line.split()[1:])
        for line in canonical.split("\n")
    )
    assert zero.count("\nf 0 ") == 6 and " 8" not in zero
    m = decode(zero, strict=False)
    assert m.encode() == canonical
    assert len(m.faces) == 12 and closed_and_consistent(m.faces.tolist())
    assert signed_volume(m) == pytest.approx(1.0)  # outward, the whole unit cube
    assert m.report.repairs == {"0-based face indices read as 0-based": 1} and not m.report.drops
    # the same cube as any tool writes it 0-based: its own vertex order, quads, in a reply
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    reply = "Here is a cube:\n```obj\n" + obj_text(CUBE_V * 63, quads, base=0) + "\n```\n"
    m = decode(reply, strict=False)
    assert m.encode() == canonical and closed_and_consistent(m.faces.tolist())
    assert m.report.repairs["0-based face indices read as 0-based"] == 1
    assert m.report.repairs["quad triangulated"] == 6
    # a lone 0-based triangle
    m = decode("v 0 0 0\nv 63 0 0\nv 0 63 0\nf 0 1 2", strict=False)
    assert m.faces.tolist() == [[0, 1, 2]] and not m.report.drops
    # an open 0-based strip whose vertex 0 is in one face only
    strip = [[0, 0, 0], [9, 0, 0], [0, 9, 0], [9, 9, 0], [0, 18, 0], [9, 18, 0]]
    m = decode(obj_text(strip, [[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]], base=0), strict=False)
    assert m.faces.tolist() == [[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]]
    assert m.report.repairs["0-based face indices read as 0-based"] == 1 and not m.report.drops


def test_one_based_meshes_are_never_read_as_zero_based():
    canonical = encode(CUBE_V, CUBE_F)
    assert decode(canonical, strict=False).report.clean
    # a 1-based mesh cut off before its last vertex is used, with one stray 0: the stray drops
    body = canonical.split("\n")
    text = "\n".join([*body[:8], "f 0 2 3", *[ln for ln in body[8:] if "8" not in ln.split()]])
    m = decode(text, strict=False)
    assert m.report.drops == {"face with index 0": 1, "vertex no face uses": 1}
    assert "0-based face indices read as 0-based" not in m.report.repairs
    assert len(m.faces) == 12 - 6  # the six faces at vertex 8 were never written
    # any face using index n (the vertex count) makes the mesh 1-based, whatever uses 0
    m = decode("v 0 0 0\nv 0 0 63\nv 0 63 0\nf 0 1 2\nf 0 2 1\nf 1 2 3", strict=False)
    assert m.faces.tolist() == [[0, 1, 2]] and m.report.drops["face with index 0"] == 2


@pytest.mark.parametrize("levels", [128, 256, 1024])
def test_integers_of_another_resolution_are_requantized(levels):
    q = quantize(BOX, levels)
    assert q.max() == levels - 1
    m = decode(obj_text(q, CUBE_F), strict=False)
    assert np.abs(m.quantized - quantize(BOX, 64)).max() <= 1
    assert m.quantized.max() == 63 and len(m.faces) == 12
    reason = f"coordinates read as a {levels}-level grid and re-quantized to 64 bins"
    assert m.report.repairs == {reason: 1}
    # bins is a parameter: the same text read at 32 bins
    m32 = decode(obj_text(q, CUBE_F), strict=False, bins=32)
    assert np.abs(m32.quantized - quantize(BOX, 32)).max() <= 1


@pytest.mark.parametrize("frame", [(-0.5, 0.5), (-1.0, 1.0), (0.0, 1.0)])
@pytest.mark.parametrize("fmt", ["%r", "%.4f"])
def test_floats_in_a_unit_cube_are_requantized_in_that_frame(frame, fmt):
    a, b = frame
    floats = (BOX + 0.5) * (b - a) + a  # the box scaled into the frame
    m = decode(obj_text(floats, CUBE_F, fmt=fmt), strict=False)
    assert np.abs(m.quantized - quantize(BOX, 64)).max() <= 1
    assert m.report.repairs == {f"unit-cube coordinates ({a:g}..{b:g}) re-quantized to 64 bins": 1}
    assert m.encode() == encode(BOX, CUBE_F)


def test_dequantized_mesh_pasted_back_gives_the_same_bins():
    """Mesh.vertices printed (full precision or 4 decimals) reads back to exactly its bins."""
    canonical = encode(*_sphere())
    m = decode(canonical)
    for fmt in ("%r", "%.4f", "%.3f"):
        back = decode(obj_text(m.vertices, m.faces, fmt=fmt), strict=False)
        assert np.array_equal(back.quantized, m.quantized), fmt
        assert back.to_text() == canonical


def test_whole_number_floats_in_the_unit_cube_do_not_collapse():
    # the cube as -1/1 (floats or integers) or as 0/1 floats: the unit cube, not bins 0 and 1
    for frame, verts, fmt in (
        ("-1..1", CUBE_V * 2 - 1, "%.1f"),
        ("-1..1", CUBE_V * 2 - 1, "%d"),
        ("0..1", CUBE_V, "%.1f"),
    ):
        m = decode(obj_text(verts, CUBE_F, fmt=fmt), strict=False)
        assert sorted(set(m.quantized.ravel().tolist())) == [0, 63], (frame, fmt)
        assert m.encode() == encode(CUBE_V, CUBE_F)
        assert m.report.repairs == {f"unit-cube coordinates ({frame}) re-quantized to 64 bins": 1}
    # plain integers 0/1 are bins 0 and 1 (a part of a mesh may sit there): same shape, smaller
    m = decode(obj_text(CUBE_V, CUBE_F), strict=False)
    assert np.array_equal(m.quantized, CUBE_V) and m.report.clean
    assert m.encode() == encode(CUBE_V, CUBE_F)


def test_a_mesh_using_part_of_the_grid_is_not_rescaled():
    q = quantize(BOX, 41)  # bins 0..40 only
    assert q.max() == 40
    m = decode(obj_text(q, CUBE_F), strict=False)
    assert np.array_equal(m.quantized, q) and m.report.clean
    # the same with whole-number floats: read as bins, noted
    m = decode(obj_text(q, CUBE_F, fmt="%.1f"), strict=False)
    assert np.array_equal(m.quantized, q)
    assert m.report.repairs == {"float coordinates read as whole bins": 8}


def test_world_unit_or_negative_integers_are_renormalized():
    for verts in (BOX * 5000 + 2500, BOX * 200):  # huge, or centred on 0 with negatives
        m = decode(obj_text(np.round(verts), CUBE_F), strict=False)
        assert np.array_equal(m.quantized, quantize(np.round(verts)))
        assert m.report.repairs == {"integer coordinates re-normalized and quantized": 1}


def test_backslash_continues_vertex_and_face_lines():
    text = (
        "v 0 0 0\n"
        "v 0 0 \\\n63\n"
        "v 0 \\\n  63 \\\n 0\n"
        "v 63 0 0\n"
        "f 1 2 \\\n3\n"
        "f 1 2 4\\\n\n"  # continued onto an empty line
        "f 1 3 4\n"
        "f 2 4 3"
    )
    m = decode(text, strict=False)
    assert m.to_text() == TRI
    assert m.report.repairs == {"line continued with a backslash": 5}
    assert m.report.notes == [f"line {n}: line continued with a backslash" for n in (2, 4, 8, 10)]
    # prose ending in a backslash does not swallow the mesh line after it
    m = decode("Some text \\\n" + TRI, strict=False)
    assert m.to_text() == TRI and m.report.clean
    # text ending right after a backslash: an unfinished last line, dropped when cut off
    from meshlm.lenient import decode_lenient

    (m,) = decode_lenient(TRI + "\nf 1 3 \\\n", cut_off=True)
    assert m.to_text() == TRI and m.report.truncated


@pytest.mark.parametrize(
    "text, line",
    [
        ("v 0 0 0\nv 0 0 63\nv 0 63 0\nf 0 1 2", 4),  # 0-based
        ("v 0 0 0\nv 0 0 127\nv 0 127 0\nf 1 2 3", 2),  # 128 levels
        ("v -0.5 0 0\nv 0.5 0 0\nv 0 0.5 0\nf 1 2 3", 1),  # floats
        ("v 0 0 0\nv 0 0 \\\n63\nv 0 63 0\nf 1 2 3", 2),  # continuation
    ],
)
def test_strict_decoding_refuses_every_dialect(text, line):
    with pytest.raises(MeshFormatError) as exc:
        decode(text)
    assert exc.value.line == line and not isinstance(exc.value, NoMeshFoundError)
    assert len(decode(text, strict=False).faces) == 1


# --- fuzzing ---------------------------------------------------------------------------------


def check_valid(meshes, bins=64):
    assert meshes
    for m in meshes:
        assert m.quantized.ndim == 2 and m.quantized.shape[1] == 3
        assert m.quantized.min() >= 0 and m.quantized.max() <= bins - 1
        assert len(m.faces) >= 1
        assert m.faces.min() >= 0 and m.faces.max() < len(m.quantized)
        assert (np.sort(m.faces, axis=1)[:, :-1] != np.sort(m.faces, axis=1)[:, 1:]).all()
        assert len(np.unique(m.faces)) == len(m.quantized)  # no unused vertices


def lenient_or_none(text, cut_off=False):
    try:
        ms = decode_all(text, cut_off=cut_off)
    except NoMeshFoundError:
        return None
    check_valid(ms)
    return ms


number = st.one_of(
    st.integers(-5, 80).map(str),
    st.integers(0, 1100).map(str),
    st.floats(-1.5, 1.5).map(lambda x: f"{x:.3f}"),
    st.integers(-(10**60), 10**60).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "1e400",
            "-1e999",
            "٣",
            "１２",
            "3.",
            ".5",
            "+7",
            "--1",
            "1/2/3",
            "7//8",
            "0x10",
            "0",
            "\\",
            "1//",
            "-1",
        ]
    ),
)
obj_line = st.one_of(
    st.tuples(st.just("v"), st.lists(number, min_size=0, max_size=5)).map(
        lambda t: " ".join([t[0], *t[1]])
    ),
    st.tuples(st.just("f"), st.lists(number, min_size=0, max_size=6)).map(
        lambda t: " ".join([t[0], *t[1]])
    ),
    st.sampled_from(
        ["vn 0 1 0", "# c", "o obj", "```", "```obj", "", "Here you go:", "g", "s off"]
    ),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(obj_line, max_size=40), st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_fuzz_obj_like_lines_never_crash(lines, sep, trailing):
    lenient_or_none(sep.join(lines) + (sep if trailing else ""))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_never_crash(data):
    try:
        ms = decode_all(data)
    except NoMeshFoundError:
        return
    check_valid(ms)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_random_unicode_never_crash(text):
    lenient_or_none(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000), st.text(max_size=30), st.text(max_size=30))
def test_fuzz_cut_canonical_mesh_keeps_complete_faces(cut, before, after):
    full = encode(*_sphere())
    part = before + "\n" + full[:cut]
    ms = lenient_or_none(part, cut_off=True)
    if ms is not None:
        orig = {tuple(t) for t in decode(full).faces.tolist()}
        m = ms[-1]
        # faces are re-indexed only if unused vertices were dropped: compare by coordinates
        got = {tuple(sorted(map(tuple, m.quantized[t].tolist()))) for t in m.faces.tolist()}
        want = {tuple(sorted(map(tuple, decode(full).quantized[list(t)].tolist()))) for t in orig}
        assert got <= want


points = st.lists(
    st.tuples(*[st.floats(-10, 10, allow_nan=False)] * 3), min_size=3, max_size=30
).map(lambda p: np.array(p, dtype=float))


def fan_text(rows, fmt) -> str:
    faces = [(1, k, k + 1) for k in range(2, len(rows))]
    return "\n".join([fmt % tuple(r) for r in rows] + [f"f {a} {b} {c}" for a, b, c in faces])


@settings(max_examples=150, deadline=None)
@given(points, st.sampled_from([128, 256, 512, 1024]), st.sampled_from([16, 64]))
# found by hypothesis: a subnormal extent, whose box centre rounds to one of its ends
@example(np.array([(0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 5e-324)]), 128, 16)
def test_fuzz_other_resolutions_and_unit_cubes_land_within_one_bin(p, levels, bins):
    try:
        want = quantize(p, bins)
        q = quantize(p, levels)
    except MeshError:
        return  # all points coincide
    c = (q / (levels - 1) - 0.5).tolist()  # the dequantized points, at the other resolution
    for text in (
        fan_text(q.tolist(), "v %d %d %d"),
        fan_text(normalize(p).tolist(), "v %r %r %r"),
        fan_text((2 * normalize(p)).tolist(), "v %.6f %.6f %.6f"),
    ):
        m = decode(text, strict=False, bins=bins)
        assert m.quantized.shape == p.shape
        assert np.abs(m.quantized - want).max() <= 1
    # a mesh dequantized from bins reads back to exactly those bins
    exact = decode(fan_text(c, "v %r %r %r"), strict=False, bins=levels)
    assert np.array_equal(exact.quantized, q)


def _sphere():
    # an octahedron refined once (no trimesh needed)
    v = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    f = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4), (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
    verts = [np.array(p, float) for p in v]
    cache = {}

    def mid(a, b):
        key = (min(a, b), max(a, b))
        if key not in cache:
            p = verts[a] + verts[b]
            verts.append(p / np.linalg.norm(p))
            cache[key] = len(verts) - 1
        return cache[key]

    out = []
    for a, b, c in f:
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        out += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    return np.array(verts), np.array(out)
