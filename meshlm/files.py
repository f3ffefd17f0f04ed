"""Read and write mesh files: OBJ, GLB/GLTF, PLY, STL, OFF.

trimesh does the float-format parsing and writing (it lives behind the ``mesh`` extra and is
imported lazily, so ``import meshlm`` never needs it) -- except where it reads files wrongly:
OBJ geometry is read by :mod:`meshlm.objreader` (relative indices, blanks, byte-order marks,
concave polygons), OFF by :mod:`meshlm.offreader` (concave polygons), and PLY data is first
measured by :mod:`meshlm.plyreader` (bytes after the last element; mixed or polygon face lists
are read there). ``docs/format.md`` ("What meshlm reads") lists every dialect. This module adds
what meshlm relies on:

* :func:`load_mesh` flattens whatever a file holds (a GLB scene with node transforms, an OBJ with
  several objects, quads, n-gons) into ONE triangle mesh of plain geometry, and turns every way a
  file can be bad into a typed one-line :class:`MeshFileError` that names the file.
* :func:`save_mesh` writes atomically; OBJ goes through our own writer (full float precision, no
  header) and GLB is flat-shaded with a colour gradient by height, like the LLaMA-Mesh demo.

A "mesh" argument may be a codec ``Mesh`` (``quantized``/``bins``/``faces``), a
``trimesh.Trimesh`` or a ``(vertices, faces)`` tuple of arrays.

One idea: any mesh file in or out as one triangle mesh; kept in one module because loading and
saving share the typed :class:`MeshFileError` family and the mesh conversions
(:func:`mesh_arrays`), and the dialect parsers already live apart (objreader, offreader,
plyreader).
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from meshlm import plyreader
from meshlm._quiet import MeshlmWarning
from meshlm.codec import triangulate
from meshlm.errors import MeshlmError, require
from meshlm.objreader import ObjParseError, read_obj
from meshlm.offreader import OffParseError, read_off

if TYPE_CHECKING:
    import trimesh

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Files larger than this are refused before a single byte is read."""

READ_EXTENSIONS = frozenset({"obj", "glb", "gltf", "ply", "stl", "off"})
"""Extensions (lower case, no dot) that :func:`load_mesh` accepts."""

# Height gradient used by GLB export and the renderer: low = blue, middle = teal/yellow, top = red.
GRADIENT_STOPS = np.array(
    [[0.16, 0.35, 0.85], [0.20, 0.70, 0.70], [0.95, 0.80, 0.25], [0.90, 0.30, 0.20]]
)


class MeshFileError(MeshlmError):
    """Base class of every mesh-file problem; the message is one line naming the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MeshFileNotFoundError(MeshFileError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class EmptyMeshFileError(MeshFileError, ValueError):
    """The file has no content (0 bytes, or only whitespace)."""


class UnsupportedFormatError(MeshFileError, ValueError):
    """The extension / format name is not one meshlm reads or writes."""


class MeshFileTooLargeError(MeshFileError, ValueError):
    """The file is larger than ``max_bytes`` (checked before reading)."""


class CorruptMeshFileError(MeshFileError, ValueError):
    """The parser failed, or the file holds no recognizable geometry."""


class PointCloudError(MeshFileError, ValueError):
    """The file has vertices but no faces."""


class LineOnlyError(MeshFileError, ValueError):
    """The file has only line/polyline elements (OBJ ``l``, glTF lines), no faces."""


class NonFiniteCoordinatesError(MeshFileError, ValueError):
    """Some vertex coordinate is NaN or infinite."""


class TooManyFacesError(MeshFileError, ValueError):
    """The triangulated mesh has more faces than ``max_faces``."""


class MeshFileNote(MeshlmWarning):
    """A file was read, but something in it was skipped (e.g. bytes after a PLY's last
    element); the message is one line naming the file. The CLI prints it as ``meshlm: note:``."""


def _trimesh(feature: str = "reading mesh files"):
    return require("trimesh", "mesh", feature)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _ext_of(path: str | os.PathLike[str]) -> str:
    return Path(path).suffix.lower().lstrip(".")


# ---------------------------------------------------------------------------------------- loading


def load_mesh(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_faces: int | None = None,
) -> trimesh.Trimesh:
    """Load a mesh file as one triangle mesh.

    Parameters
    ----------
    path : file with an extension in :data:`READ_EXTENSIONS`.
    max_bytes : refuse larger files (checked with ``stat`` before reading); None = no limit.
    max_faces : refuse meshes with more triangles than this after triangulation; None = no limit.

    Returns
    -------
    trimesh.Trimesh
        Geometry only: ``vertices : (n, 3) float64``, ``faces : (m, 3) int64``, with m >= 1. Every
        geometry of a scene is placed by its node transform and concatenated; quads and n-gons are
        triangulated; vertices at the same position are merged (so un-shared STL/flat-shaded GLB
        vertices become shared again) and vertices no face uses are dropped
        (:func:`merge_vertices`). Colours, UVs and normals are dropped.

    Raises
    ------
    MeshFileNotFoundError, EmptyMeshFileError, UnsupportedFormatError, MeshFileTooLargeError,
    CorruptMeshFileError, PointCloudError, LineOnlyError, NonFiniteCoordinatesError,
    TooManyFacesError — all subclasses of :class:`MeshFileError`.
    MissingDependencyError if trimesh is not installed.
    """
    p = Path(path)
    ext = _ext_of(p)
    if not p.is_file():
        raise MeshFileNotFoundError(p, "no such file")
    if ext not in READ_EXTENSIONS:
        raise UnsupportedFormatError(
            p, f"unknown mesh format '.{ext}' (readable: {', '.join(sorted(READ_EXTENSIONS))})"
        )
    size = p.stat().st_size
    _check_size(p, size, max_bytes)
    if size == 0:
        raise EmptyMeshFileError(p, "file is empty (0 bytes)")
    # A path (not an open file) lets trimesh resolve a .gltf's external buffers.
    return _load(p, ext, max_faces, p.read_bytes, source=str(p))


def load_mesh_bytes(
    data: bytes,
    ext: str,
    *,
    name: str = "<upload>",
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_faces: int | None = None,
) -> trimesh.Trimesh:
    """Like :func:`load_mesh` for in-memory bytes (an upload); ``ext`` is e.g. ``"glb"``/``".obj"``.

    ``name`` is only used in error messages. A ``.gltf`` with external buffers cannot be loaded this
    way (use a ``.glb``). Raises the same errors as :func:`load_mesh`.
    """
    ext = ext.lower().lstrip(".")
    if ext not in READ_EXTENSIONS:
        raise UnsupportedFormatError(
            name, f"unknown mesh format '.{ext}' (readable: {', '.join(sorted(READ_EXTENSIONS))})"
        )
    _check_size(name, len(data), max_bytes)
    if len(data) == 0:
        raise EmptyMeshFileError(name, "file is empty (0 bytes)")
    return _load(name, ext, max_faces, lambda: data, source=None)


def _check_size(name, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise MeshFileTooLargeError(
            name, f"file is {size:,} bytes, over the limit of {max_bytes:,} bytes"
        )


def _load(name, ext: str, max_faces: int | None, read_bytes, source: str | None):
    """Read the file as (vertices, faces) parts, check them and join them into one Trimesh."""
    trimesh = _trimesh()
    notes: list[str] = []
    n_points = n_lines = 0
    if ext == "obj":  # meshlm's own reader (objreader's docstring says why)
        try:
            geom = read_obj(read_bytes())
        except ObjParseError as exc:
            raise CorruptMeshFileError(name, f"cannot parse as OBJ: {exc}") from None
        parts = [(geom.vertices, geom.faces)] if len(geom.faces) else []
        n_points = len(geom.vertices) if not parts else 0
        n_lines, notes = geom.n_lines, geom.notes
    elif ext == "off":  # meshlm's own reader: trimesh fans concave polygons
        try:
            verts, polys = read_off(read_bytes())
        except OffParseError as exc:
            raise CorruptMeshFileError(name, f"cannot parse as OFF: {exc}") from None
        finite = np.isfinite(verts).all()
        parts = [(verts, triangulate(polys, verts if finite else None))] if polys else []
        n_points = len(verts) if not parts else 0
    else:
        parts, n_points, n_lines = _read_with_trimesh(name, ext, read_bytes, source, notes)

    for verts, _ in parts:
        if verts.size and not np.isfinite(verts).all():
            bad = int((~np.isfinite(verts)).any(axis=1).sum())
            raise NonFiniteCoordinatesError(
                name, f"{bad} of {len(verts)} vertices have NaN or infinite coordinates"
            )
    if not parts:
        if n_lines:
            raise LineOnlyError(name, "has only line elements, no faces (not a surface mesh)")
        if n_points:
            raise PointCloudError(name, f"is a point cloud: {n_points} vertices and no faces")
        if not read_bytes().strip():
            raise EmptyMeshFileError(name, "file has only whitespace")
        raise CorruptMeshFileError(name, f"no vertices or faces found (not a valid {ext.upper()})")

    offsets = np.cumsum([0] + [len(v) for v, _ in parts])
    vertices = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + o for (_, f), o in zip(parts, offsets, strict=False)])
    if max_faces is not None and len(faces) > max_faces:
        raise TooManyFacesError(name, f"has {len(faces):,} faces, over the limit of {max_faces:,}")
    for note in notes:
        warnings.warn(MeshFileNote(f"{name}: {note}"), stacklevel=3)
    vertices, faces = merge_vertices(vertices, faces)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    mesh.metadata["meshlm_notes"] = [f"{name}: {note}" for note in notes]
    return mesh


def _read_with_trimesh(name, ext: str, read_bytes, source: str | None, notes: list[str]):
    """``([(vertices (n, 3) float64, faces (m, 3) int64), ...], n_points, n_lines)`` of a
    GLB/GLTF/PLY/STL file read by trimesh, each part placed by its node transform. PLY data is
    first cut to what its header describes (``notes`` gets what was cut), and a PLY whose faces
    mix list lengths or have more than 3 corners is read by :mod:`meshlm.plyreader`."""
    trimesh = _trimesh()
    kwargs: dict[str, Any] = {}
    if ext == "ply":
        data = read_bytes()
        try:
            layout = plyreader.measure(data)
        except plyreader.PlyLayoutError as exc:
            raise CorruptMeshFileError(name, f"cannot parse as PLY: {exc}") from None
        if layout.extra:
            what = "bytes" if layout.fmt != "ascii" else "bytes of text"
            notes.append(
                f"{layout.extra:,} {what} after the last element the header describes were ignored"
            )
        data = data[: layout.data_end]
        if not layout.uniform or layout.polygons:  # polygons: trimesh would fan them
            try:
                verts, polys = plyreader.read_geometry(data, layout)
            except plyreader.PlyLayoutError as exc:
                raise CorruptMeshFileError(name, f"cannot parse as PLY: {exc}") from None
            if not polys:
                return [], len(verts), 0
            _check_indices(name, polys, len(verts))
            finite = np.isfinite(verts).all()
            return [(verts, triangulate(polys, verts if finite else None))], 0, 0
        file_obj: Any = io.BytesIO(data)
        kwargs["skip_materials"] = True  # textures are dropped anyway; do not look for them
    else:
        file_obj = source if source is not None else io.BytesIO(read_bytes())
    try:
        scene = trimesh.load_scene(file_obj, file_type=ext, process=False, **kwargs)
    except MeshlmError:
        raise
    except Exception as exc:  # trimesh raises anything from ValueError to IndexError/KeyError
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ImportError):  # trimesh's text-decoding fallback for binary junk
            detail = "not valid text or binary data for this format"
        elif isinstance(exc, KeyError | FileNotFoundError) and exc.args:
            detail = f"missing referenced data {exc.args[-1]!r}"  # e.g. a .gltf's buffer file
        raise CorruptMeshFileError(name, f"cannot parse as {ext.upper()}: {detail}") from exc

    parts, n_points, n_lines = [], 0, 0
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry.get(geom_name)
        if geom is None:
            continue
        verts = np.asarray(getattr(geom, "vertices", np.zeros((0, 3))), dtype=np.float64)
        if hasattr(geom, "entities"):  # a trimesh Path: polylines, no surface
            n_lines += len(geom.entities)
            continue
        faces = getattr(geom, "faces", None)
        if faces is None or len(faces) == 0:
            n_points += len(verts)
            continue
        faces = np.asarray(faces, dtype=np.int64)
        if faces.min() < 0 or faces.max() >= len(verts):
            raise CorruptMeshFileError(name, "a face refers to a vertex that does not exist")
        if not np.array_equal(transform, np.eye(4)):
            matrix = np.asarray(transform, dtype=np.float64)
            with np.errstate(all="ignore"):
                verts = trimesh.transformations.transform_points(verts, matrix)
        parts.append((verts, faces))
    return parts, n_points, n_lines


def merge_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices that are at the same position up to 1e-9 of the mesh's size, and drop
    vertices no face uses.

    vertices : (n, 3) float64 (finite); faces : (m, 3) int64 -> (vertices (k, 3), the first of
    each merged group, sorted by position; faces (m, 3) renumbered). The tolerance is relative:
    trimesh's absolute rounding (1e-8) merges distinct vertices of a very small mesh and, on
    coordinates beyond about 1e11, overflows -- vertices are lost with a numpy warning."""
    used = np.unique(faces)
    v = vertices[used]
    lo, hi = v.min(axis=0), v.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        span = hi - lo
    scale = 0.25 if not np.isfinite(span).all() else 1.0  # exact; keeps the span finite
    extent = float((hi * scale - lo * scale).max())
    if extent > 0:
        keys = np.round((v * scale - lo * scale) * (1e9 / extent)).astype(np.int64)
    else:
        keys = np.zeros((len(v), 3), dtype=np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    remap = np.zeros(len(vertices), dtype=np.int64)
    remap[used] = inverse.reshape(-1)
    return v[first], remap[faces]


def _check_indices(name, polys: list[list[int]], n: int) -> None:
    for poly in polys:
        if len(poly) < 3 or min(poly) < 0 or max(poly) >= n:
            raise CorruptMeshFileError(name, "a face refers to a vertex that does not exist")


# ----------------------------------------------------------------------------------------- saving


def mesh_arrays(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (n, 3) float64, faces (m, 3) int64)`` of a codec Mesh, a Trimesh or a tuple.

    Raises ``TypeError`` for anything else and ``ValueError`` for wrong array shapes.
    """
    if isinstance(mesh, tuple | list) and len(mesh) == 2:
        vertices, faces = mesh
    elif hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
        vertices, faces = mesh.vertices, mesh.faces  # codec Mesh dequantizes in .vertices
    else:
        raise TypeError(f"expected a Mesh, a Trimesh or (vertices, faces), got {mesh!r:.80}")
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.size == 0:
        faces = faces.reshape(0, 3)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (m, 3), got {faces.shape}")
    return vertices, faces


def height_colors(vertices: np.ndarray, axis: int = 1) -> np.ndarray:
    """Colour each vertex by its height along ``axis`` (Y = up) with :data:`GRADIENT_STOPS`.

    vertices : (n, 3) float -> (n, 4) uint8 RGBA, alpha 255; flat meshes get the middle colour.
    """
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(v) == 0:
        return np.zeros((0, 4), dtype=np.uint8)
    h = v[:, axis]
    span = h.max() - h.min()
    t = (h - h.min()) / span if span > 0 else np.full(len(h), 0.5)
    x = t * (len(GRADIENT_STOPS) - 1)
    i = np.minimum(x.astype(int), len(GRADIENT_STOPS) - 2)
    w = (x - i)[:, None]
    rgb = GRADIENT_STOPS[i] * (1 - w) + GRADIENT_STOPS[i + 1] * w
    rgba = np.concatenate([rgb, np.ones((len(v), 1))], axis=1)
    return np.round(rgba * 255).astype(np.uint8)


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """Plain OBJ: ``v x y z`` at full float64 precision (``repr``), then 1-based ``f a b c``."""
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(vertices, np.float64).tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, np.int64).tolist()]
    return "\n".join(lines) + "\n"


def _write_obj(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    return obj_text(vertices, faces).encode("ascii")


def _write_glb(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    trimesh = _trimesh("writing GLB files")
    # Flat shading: every face gets its own three vertices, so normals (and colours) are per face.
    flat_v = vertices[faces].reshape(-1, 3)
    flat_f = np.arange(len(flat_v), dtype=np.int64).reshape(-1, 3)
    tm = trimesh.Trimesh(flat_v, flat_f, vertex_colors=height_colors(flat_v), process=False)
    return tm.export(file_type="glb", include_normals=True)


def _trimesh_writer(file_type: str):
    def write(vertices: np.ndarray, faces: np.ndarray) -> bytes:
        trimesh = _trimesh(f"writing {file_type.upper()} files")
        data = trimesh.Trimesh(vertices, faces, process=False).export(file_type=file_type)
        return data.encode("ascii") if isinstance(data, str) else data

    return write


WRITERS = {
    "obj": _write_obj,
    "glb": _write_glb,
    "ply": _trimesh_writer("ply"),
    "stl": _trimesh_writer("stl"),
    "off": _trimesh_writer("off"),
}
"""Format name -> ``writer(vertices (n, 3) float64, faces (m, 3) int64) -> bytes``."""


def export_mesh(mesh: Any, fmt: str) -> bytes:
    """Serialize a mesh to bytes in format ``fmt`` (a key of :data:`WRITERS`).

    Raises UnsupportedFormatError for an unknown format, MissingDependencyError without trimesh
    (all formats but OBJ).
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in WRITERS:
        raise UnsupportedFormatError(
            f"<{fmt}>", f"cannot write format '{fmt}' (writable: {', '.join(sorted(WRITERS))})"
        )
    return WRITERS[fmt](*mesh_arrays(mesh))


def save_mesh(mesh: Any, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    """Write ``mesh`` to ``path`` atomically (temp file in the same folder, then rename).

    The format is ``fmt`` or the extension of ``path``: obj (our writer, full precision),
    glb (flat-shaded, per-vertex height gradient colours), ply, stl, off (via trimesh).
    Parent folders are created. Returns the path written.

    Raises UnsupportedFormatError for an unknown format (nothing is written).
    """
    p = Path(path)
    fmt = (fmt or _ext_of(p)).lower().lstrip(".")
    if fmt not in WRITERS:
        raise UnsupportedFormatError(
            p, f"cannot write format '.{fmt}' (writable: {', '.join(sorted(WRITERS))})"
        )
    data = WRITERS[fmt](*mesh_arrays(mesh))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
