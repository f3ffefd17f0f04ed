"""meshlm.files: typed errors on hostile files, scene flattening, save/reload, codec round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

trimesh = pytest.importorskip("trimesh")

from meshlm.errors import MeshlmError  # noqa: E402
from meshlm.files import (  # noqa: E402
    READ_EXTENSIONS,
    WRITERS,
    CorruptMeshFileError,
    EmptyMeshFileError,
    LineOnlyError,
    MeshFileError,
    MeshFileNotFoundError,
    MeshFileTooLargeError,
    NonFiniteCoordinatesError,
    PointCloudError,
    TooManyFacesError,
    UnsupportedFormatError,
    export_mesh,
    height_colors,
    load_mesh,
    load_mesh_bytes,
    mesh_arrays,
    obj_text,
    save_mesh,
)

FIXTURES = Path(__file__).parent / "fixtures"
FORMATS = sorted(WRITERS)


from mesh_helpers import chair  # noqa: E402,F401


def triangle_set(vertices, faces, decimals: int = 6) -> set:
    """Faces as position triples, rotated to start at the smallest (winding kept): order-free."""
    out = set()
    for tri in np.round(np.asarray(vertices)[np.asarray(faces)], decimals).tolist():
        tri = [tuple(p) for p in tri]
        k = tri.index(min(tri))
        out.add(tuple(tri[k:] + tri[:k]))
    return out


# ---------------------------------------------------------------------------- hostile files

HOSTILE = [
    ("empty.obj", EmptyMeshFileError, "empty"),
    ("whitespace.obj", EmptyMeshFileError, "whitespace"),
    ("points_only.obj", PointCloudError, "point cloud"),
    ("points_only.ply", PointCloudError, "point cloud"),
    ("lines_only.obj", LineOnlyError, "line"),
    ("nan.obj", NonFiniteCoordinatesError, "NaN"),
    ("inf.obj", NonFiniteCoordinatesError, "infinite"),
    ("bad_index.obj", CorruptMeshFileError, "OBJ"),
    ("not_a_mesh.obj", CorruptMeshFileError, "no vertices or faces"),
    ("garbage.glb", CorruptMeshFileError, "cannot parse as GLB"),
    ("garbage.ply", CorruptMeshFileError, "cannot parse as PLY"),
    ("garbage.stl", CorruptMeshFileError, "STL"),
    ("garbage.bin", UnsupportedFormatError, "unknown mesh format '.bin'"),
]


@pytest.mark.parametrize(("name", "error", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_raises_its_own_typed_error(name, error, words):
    path = FIXTURES / name
    with pytest.raises(error) as info:
        load_mesh(path)
    exc = info.value
    assert isinstance(exc, MeshFileError) and isinstance(exc, MeshlmError)
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    assert words.lower() in message.lower()
    # every other hostile class is distinct from this one
    others = {e for _, e, _ in HOSTILE if e is not error}
    assert not any(type(exc) is other for other in others)


@pytest.mark.parametrize(("name", "error", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bytes_raise_the_same_errors(name, error, words):
    path = FIXTURES / name
    with pytest.raises(error, match="upload.x"):
        load_mesh_bytes(path.read_bytes(), path.suffix, name="upload.x")


def test_missing_file(tmp_path):
    with pytest.raises(MeshFileNotFoundError, match="no such file") as info:
        load_mesh(tmp_path / "nope.obj")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(MeshFileNotFoundError):
        load_mesh(tmp_path)  # a folder is not a mesh file


def test_size_limit_is_checked_before_parsing():
    # garbage.glb would be a parse error; the size check must come first
    path = FIXTURES / "garbage.glb"
    with pytest.raises(MeshFileTooLargeError, match="over the limit of 100 bytes"):
        load_mesh(path, max_bytes=100)
    with pytest.raises(MeshFileTooLargeError):
        load_mesh_bytes(path.read_bytes(), "glb", max_bytes=100)
    with pytest.raises(CorruptMeshFileError):
        load_mesh(path, max_bytes=None)


def test_face_limit(tmp_path):
    path = save_mesh(trimesh.creation.box(), tmp_path / "box.obj")
    assert len(load_mesh(path, max_faces=12).faces) == 12
    with pytest.raises(TooManyFacesError, match="12 faces, over the limit of 11"):
        load_mesh(path, max_faces=11)


def test_lines_in_a_glb_are_line_only(tmp_path):
    path = trimesh.load_path(np.array([[[0, 0, 0], [1, 0, 0]], [[1, 0, 0], [1, 1, 0]]], float))
    target = tmp_path / "lines.glb"
    target.write_bytes(trimesh.Scene([path]).export(file_type="glb"))
    with pytest.raises(LineOnlyError):
        load_mesh(target)


# ---------------------------------------------------------------------------- good files


def test_quads_are_triangulated():
    mesh = load_mesh(FIXTURES / "quad.obj")
    assert mesh.faces.shape == (2, 3) and mesh.faces.dtype == np.int64
    assert mesh.vertices.shape == (4, 3) and mesh.vertices.dtype == np.float64


def test_off_is_read():
    mesh = load_mesh(FIXTURES / "tetra.off")
    assert mesh.vertices.shape == (4, 3) and mesh.faces.shape == (4, 3)
    assert {"obj", "glb", "gltf", "ply", "stl", "off"} == set(READ_EXTENSIONS)


def test_gltf_with_external_buffers(tmp_path):
    files = trimesh.Scene([trimesh.creation.box()]).export(file_type="gltf")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert load_mesh(tmp_path / "model.gltf").faces.shape == (12, 3)
    for name in files:
        if name.endswith(".bin"):
            (tmp_path / name).unlink()
    with pytest.raises(CorruptMeshFileError, match="missing referenced data"):
        load_mesh(tmp_path / "model.gltf")


def test_scene_is_flattened_with_node_transforms(tmp_path):
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="a", geom_name="box")
    moved = trimesh.transformations.translation_matrix((3.0, 0.0, 0.0))
    moved = moved @ trimesh.transformations.rotation_matrix(np.pi / 4, (0, 1, 0))
    # the same geometry instanced a second time, moved and rotated
    scene.add_geometry(box, node_name="b", geom_name="box", transform=moved)
    path = tmp_path / "two.glb"
    path.write_bytes(scene.export(file_type="glb"))

    mesh = load_mesh(path)
    assert isinstance(mesh, trimesh.Trimesh)
    assert mesh.faces.shape == (24, 3) and mesh.vertices.shape == (16, 3)
    expected = trimesh.util.concatenate([box, box.copy().apply_transform(moved)])
    assert triangle_set(mesh.vertices, mesh.faces) == triangle_set(
        expected.vertices, expected.faces
    )
    assert mesh.bounds[1][0] == pytest.approx(3 + np.sqrt(0.5), abs=1e-6)
    assert mesh.bounds[0][0] == pytest.approx(-0.5, abs=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_then_load_gives_the_same_geometry(tmp_path, fmt):
    source = chair()
    path = save_mesh(source, tmp_path / "deep" / "er" / f"chair.{fmt}")
    assert path.is_file() and path.suffix == f".{fmt}"
    mesh = load_mesh(path)
    assert len(mesh.faces) == len(source.faces)
    assert len(mesh.vertices) == len(np.unique(np.round(source.vertices, 6), axis=0))
    assert triangle_set(mesh.vertices, mesh.faces) == triangle_set(source.vertices, source.faces)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_obj_writer_is_plain_and_full_precision(tmp_path):
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(30, 3))
    faces = np.array([[i, i + 1, i + 2] for i in range(28)])
    text = obj_text(vertices, faces)
    assert text.splitlines()[0].startswith("v ") and text.endswith("\n")
    assert text.splitlines()[30] == "f 1 2 3"
    path = save_mesh((vertices, faces), tmp_path / "r.obj")
    back = load_mesh(path)
    # merging may reorder vertices; values must be bit-identical
    assert np.array_equal(np.unique(back.vertices, axis=0), np.unique(vertices, axis=0))


def test_glb_is_flat_shaded_with_height_colours(tmp_path):
    source = chair()
    path = save_mesh(source, tmp_path / "chair.glb")
    scene = trimesh.load_scene(path, process=False)
    (geom,) = scene.geometry.values()
    assert len(geom.vertices) == 3 * len(source.faces)  # un-shared: one normal per face corner
    colors = np.asarray(geom.visual.vertex_colors)
    y = geom.vertices[:, 1]
    low, high = colors[y == y.min()][0], colors[y == y.max()][0]
    assert low[2] > low[0] and high[0] > high[2]  # blue at the bottom, red at the top
    # flat: the normals of a face's three corners are equal
    normals = np.asarray(geom.vertex_normals).reshape(-1, 3, 3)
    assert np.allclose(normals, normals[:, :1], atol=1e-5)


def test_height_colors_contract():
    c = height_colors(np.array([[0, -1.0, 0], [0, 0, 0], [0, 1.0, 0]]))
    assert c.shape == (3, 4) and c.dtype == np.uint8 and (c[:, 3] == 255).all()
    flat = height_colors(np.zeros((2, 3)))
    assert (flat[0] == flat[1]).all()
    assert height_colors(np.zeros((0, 3))).shape == (0, 4)


def test_unknown_save_format_writes_nothing(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="cannot write format '.xyz'"):
        save_mesh(chair(), tmp_path / "chair.xyz")
    with pytest.raises(UnsupportedFormatError):
        export_mesh(chair(), "fbx")
    assert list(tmp_path.iterdir()) == []
    # fmt overrides the extension
    path = save_mesh(chair(), tmp_path / "chair.bin", fmt="stl")
    assert len(load_mesh_bytes(path.read_bytes(), "stl").faces) == len(chair().faces)


def test_failed_save_keeps_the_old_file(tmp_path):
    path = save_mesh(chair(), tmp_path / "keep.obj")
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_mesh((np.zeros((3, 3)), np.zeros((2, 2), dtype=int)), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.obj"]


def test_mesh_arrays_accepts_trimesh_and_tuples():
    box = trimesh.creation.box()
    for mesh in (box, (box.vertices, box.faces), (box.vertices.tolist(), box.faces.tolist())):
        v, f = mesh_arrays(mesh)
        assert v.dtype == np.float64 and v.shape == (8, 3)
        assert f.dtype == np.int64 and f.shape == (12, 3)
    with pytest.raises(TypeError):
        mesh_arrays("v 1 2 3")


# ---------------------------------------------------------------------------- codec round trip

import meshlm.codec as codec  # noqa: E402  (a broken codec fails here, it does not skip)

SHAPES = {
    "chair": chair,
    "torus": lambda: trimesh.creation.torus(1.0, 0.3),
    "icosphere": lambda: trimesh.creation.icosphere(2),
    "cylinder": lambda: trimesh.creation.cylinder(0.3, 2.0),
    "cone": lambda: trimesh.creation.cone(0.5, 1.5),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_codec_round_trip_through_every_format(tmp_path, shape, fmt):
    source = SHAPES[shape]()
    rng = np.random.default_rng(len(shape))
    rotation = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    text = codec.encode(source.vertices @ rotation.T * 3.7 + 11.0, source.faces)
    mesh = codec.decode(text)
    path = save_mesh(mesh, tmp_path / f"{shape}.{fmt}")
    loaded = load_mesh(path)
    assert codec.encode(loaded.vertices, loaded.faces) == text


def test_codec_mesh_is_accepted_and_dequantized():
    mesh = codec.decode(codec.encode(chair().vertices, chair().faces))
    v, f = mesh_arrays(mesh)
    assert np.array_equal(v, mesh.quantized / (mesh.bins - 1) - 0.5)
    assert np.array_equal(f, mesh.faces)
    assert obj_text(*mesh_arrays(mesh)).count("\nf ") == len(mesh.faces)
