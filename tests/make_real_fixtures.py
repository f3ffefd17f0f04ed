"""Write the real-file fixtures of issue 17 into tests/fixtures/ (run once; the files are kept).

Each file re-creates a kind of input from public bug reports of mesh tools (trimesh, MeshLab,
assimp, tinyobjloader, glTF exporters): relative OBJ indices, tabs and line endings, byte-order
marks, concave polygons, double-sided geometry, PLY trailing bytes and mixed face lists, and
files that make libraries print logs or warnings. ``tests/test_real_files.py`` states what each
must read as. Usage: ``python tests/make_real_fixtures.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "fixtures"

TETRA_V = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
TETRA_F = [(1, 3, 2), (1, 2, 4), (1, 4, 3), (2, 3, 4)]  # 1-based, outward
CUBE_V = [(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
CUBE_Q = [(1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)]
# an L-shaped hexagon (area 3) and the prism over it (height 1, volume 3); caps are concave
L_HEX = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)]


def v_lines(vertices, sep=" ") -> list[str]:
    return [sep.join(["v"] + [repr(float(c)) for c in p]) for p in vertices]


def f_line(face, sep=" ") -> str:
    return sep.join(["f"] + [str(i) for i in face])


def write(name: str, data: bytes | str) -> None:
    (OUT / name).write_bytes(data.encode() if isinstance(data, str) else data)


def prism(poly2d, height=1.0):
    """Vertices and 1-based outward faces (two n-gon caps, quad sides) of the prism of height
    ``height`` along y over a polygon given counter-clockwise in (x, z) coordinates."""
    n = len(poly2d)
    verts = [(x, 0.0, z) for x, z in poly2d] + [(x, height, z) for x, z in poly2d]
    # counter-clockwise in (x, z) is clockwise seen from +y: the bottom cap (seen from -y) is
    # listed as given, the top cap and the sides the other way round
    bottom = list(range(1, n + 1))
    top = [n + i for i in range(n, 0, -1)]
    sides = [(i + 1 + n, (i + 1) % n + 1 + n, (i + 1) % n + 1, i + 1) for i in range(n)]
    return verts, [bottom, top, *sides]


def ply_binary(vertices, faces, order="<", count="B", index="i", trailer=b"") -> bytes:
    fmt = "binary_little_endian" if order == "<" else "binary_big_endian"
    header = (
        f"ply\nformat {fmt} 1.0\ncomment made by meshlm tests\nelement vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()
    body = b"".join(struct.pack(order + "3f", *p) for p in vertices)
    for f in faces:
        body += struct.pack(order + count, len(f)) + struct.pack(order + index * len(f), *f)
    return header + body + trailer


def ply_ascii(vertices, faces, extra_header="", trailer="") -> str:
    lines = [
        "ply",
        "format ascii 1.0",
        *([extra_header] if extra_header else []),
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    lines += [" ".join(repr(float(c)) for c in p) for p in vertices]
    lines += [" ".join(str(i) for i in [len(f), *f]) for f in faces]
    return "\n".join(lines) + "\n" + trailer


def main() -> None:
    import trimesh

    tetra_faces0 = [[i - 1 for i in f] for f in TETRA_F]
    # 1. relative indices
    rel = []
    for k in range(3):
        rel += v_lines([(x + 2 * k, y, z) for x, y, z in TETRA_V])
        rel += [f_line([i - 5 for i in f]) for f in TETRA_F]
    write("rel_three_tetras.obj", "# three tetrahedra, relative indices\n" + "\n".join(rel) + "\n")
    text = ["o cube"] + v_lines(CUBE_V) + [f_line(q) for q in CUBE_Q] + ["o tetra"]
    text += v_lines([(x + 3, y, z) for x, y, z in TETRA_V]) + [
        f_line([i - 5 for i in f]) for f in TETRA_F
    ]
    write("rel_mixed_absolute.obj", "\n".join(text) + "\n")
    text = []
    for k in range(2):
        text += v_lines([(x, y + 2 * k, z) for x, y, z in TETRA_V])
        text += ["vt 0 0", "vt 1 0", "vt 0 1", "vn 0 0 1"]
        text += ["f " + " ".join(f"{i - 5}/{i - 5}/-1" for i in f) for f in TETRA_F]
    write("rel_slashes.obj", "\n".join(text) + "\n")

    # 2. white space and line ends
    tab = v_lines(TETRA_V, "\t") + [f_line(f, "\t") for f in TETRA_F]
    write("ws_tabs.obj", "\n".join(tab) + "\n")
    crlf = [
        "# cube, CRLF",
        *("  v   " + "   ".join(repr(float(c)) for c in p) + "  " for p in CUBE_V),
    ]
    crlf += ["f  " + "  ".join(map(str, q)) + " \t" for q in CUBE_Q]
    write("ws_crlf_spaces.obj", "\r\n".join(crlf) + "\r\n")
    cr = v_lines(TETRA_V) + [f_line(f) for f in TETRA_F[:3]] + ["f 2 3 \\", " 4"]
    write("ws_cr_continuation.obj", "\r".join(cr) + "\r")

    # 3. byte-order marks and leading bytes
    tetra_text = "\n".join(v_lines(TETRA_V) + [f_line(f) for f in TETRA_F]) + "\n"
    cube_text = "\n".join(v_lines(CUBE_V) + [f_line(q) for q in CUBE_Q]) + "\n"
    write("bom_utf8.obj", b"\xef\xbb\xbf" + tetra_text.encode())
    write("bom_utf16le.obj", b"\xff\xfe" + cube_text.encode("utf-16-le"))
    write("bom_utf16be.obj", b"\xfe\xff" + cube_text.encode("utf-16-be"))
    write(
        "bom_mojibake_nul.obj",
        "\ufeff".encode().decode("latin-1").encode() + b"\x00\x00" + tetra_text.encode(),
    )
    rel_tetra = "\n".join(v_lines(TETRA_V) + [f_line([i - 5 for i in f]) for f in TETRA_F])
    moved = "\n".join(
        v_lines([(x, y, z + 3) for x, y, z in TETRA_V])
        + [f_line([i - 5 for i in f]) for f in TETRA_F]
    )
    write(
        "bom_concatenated.obj",
        b"\xef\xbb\xbf" + rel_tetra.encode() + b"\n\xef\xbb\xbf" + moved.encode() + b"\n",
    )

    # 4. concave polygons
    u = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]
    write(
        "concave_u.obj",
        "\n".join(v_lines([(x / 3, y / 3, 0.0) for x, y in u]) + ["f 1 2 3 4 5 6 7 8"]) + "\n",
    )
    verts, faces = prism(L_HEX)
    write("concave_l_prism.obj", "\n".join(v_lines(verts) + [f_line(f) for f in faces]) + "\n")
    star = [
        (np.cos(a) * r, np.sin(a) * r)
        for a, r in zip(np.linspace(0, 2 * np.pi, 10, endpoint=False), [1.0, 0.45] * 5, strict=True)
    ]
    verts, faces = prism([(round(x, 6), round(z, 6)) for x, z in star], height=0.5)
    write("concave_star_prism.obj", "\n".join(v_lines(verts) + [f_line(f) for f in faces]) + "\n")

    u3 = [(x / 3, y / 3, 0.0) for x, y in u]
    write("concave_u_ascii.ply", ply_ascii(u3, [list(range(8))]))
    verts, faces = prism(L_HEX)
    write("concave_l_prism_binary.ply", ply_binary(verts, [[i - 1 for i in f] for f in faces]))
    off = [f"OFF\n{len(verts)} {len(faces)} 0"] + [" ".join(map(repr, p)) for p in verts]
    off += [" ".join(map(str, [len(f)] + [i - 1 for i in f])) for f in faces]
    write("concave_l_prism.off", "\n".join(off) + "\n")

    # 5. double-sided geometry
    both = TETRA_F + [tuple(reversed(f)) for f in TETRA_F]
    write("double_tetra.obj", "\n".join(v_lines(TETRA_V) + [f_line(f) for f in both]) + "\n")
    v2 = np.array(TETRA_V + TETRA_V, float)  # each side its own vertices, as glTF exporters do
    f2 = np.array(tetra_faces0 + [[i + 4 for i in reversed(f)] for f in tetra_faces0])
    glb = trimesh.Trimesh(v2, f2, process=False).export(file_type="glb")
    write("double_tetra.glb", glb)
    cube_tris = [t for q in CUBE_Q for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))]
    top = cube_tris[6:8]  # the y = 1 side, also written the other way round
    mixed = [[i - 1 for i in f] for f in cube_tris + [tuple(reversed(f)) for f in top]]
    write("double_box_one_side.ply", ply_binary(CUBE_V, mixed))
    plane_v = [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)]
    plane_f = [(1, 3, 2), (1, 4, 3), (1, 2, 3), (1, 3, 4)]
    write("double_plane.obj", "\n".join(v_lines(plane_v) + [f_line(f) for f in plane_f]) + "\n")

    # 6. PLY: bytes after the last element, mixed face lists, a truncated file
    write("ply_binary_trailing.ply", ply_binary(TETRA_V, tetra_faces0, trailer=b"\x00" * 13))
    quads0 = [[i - 1 for i in q] for q in CUBE_Q]
    write("ply_binary_be_trailing.ply", ply_binary(CUBE_V, quads0, order=">", trailer=b"\nend\n"))
    write("ply_ascii_trailing.ply", ply_ascii(TETRA_V, tetra_faces0, trailer="end of data\n"))
    cube_mixed = quads0[2:] + [
        t for q in quads0[:2] for t in ([q[0], q[1], q[2]], [q[0], q[2], q[3]])
    ]
    write("ply_binary_mixed_faces.ply", ply_binary(CUBE_V, cube_mixed))
    write("ply_binary_mixed_trailing.ply", ply_binary(CUBE_V, cube_mixed, trailer=b"\x00" * 7))
    write("ply_binary_truncated.ply", ply_binary(TETRA_V, tetra_faces0)[:-10])

    # 7. files that make libraries print logs or warnings
    write(
        "noise_texture_missing.ply",
        ply_ascii(TETRA_V, tetra_faces0, extra_header="comment TextureFile missing_image.png"),
    )
    write("noise_texture_missing.obj", "mtllib missing.mtl\nusemtl wood\n" + tetra_text)
    write(
        "noise_huge_coords.obj",
        "\n".join(
            v_lines([(1e308 * (2 * x - 1), 1e308 * y, 1e308 * z) for x, y, z in TETRA_V])
            + [f_line(f) for f in TETRA_F]
        )
        + "\n",
    )
    write(
        "noise_tiny_coords.obj",
        "\n".join(
            v_lines([(1e-10 * x, 1e-10 * y, 1e-10 * z) for x, y, z in TETRA_V])
            + [f_line(f) for f in TETRA_F]
        )
        + "\n",
    )


if __name__ == "__main__":
    main()
