"""The lenient decoder: meshes inside model replies, repairs, and fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshlm import NoMeshFoundError, decode, decode_all, encode

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
    m = decode("v 0 0 0\nv 0 0 64\nv 0 63 0\nf 1 2 3", strict=False)
    assert m.quantized.max() == 63 and m.report.repairs["coordinate clipped to 0..63"] == 1
    m = decode("v -0.5 0 0\nv 0.5 0 0\nv 0 0.25 0\nf 1 2 3", strict=False)
    assert m.quantized[:, 0].tolist() == [0, 63, 31]
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
    st.integers(-(10**60), 10**60).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["1e400", "-1e999", "٣", "１２", "3.", ".5", "+7", "--1", "1/2/3", "7//8", "0x10"]
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
