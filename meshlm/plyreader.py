"""The layout of a PLY file: where the data its header describes ends, and, for binary files
whose faces mix list lengths, the geometry itself.

Reference: Greg Turk, "The PLY Polygon File Format" (1994; the format of the Stanford 3D Scanning
Repository, as MeshLab, Blender and trimesh read it): an ASCII header (``ply``, ``format``,
``element NAME COUNT``, ``property TYPE NAME`` / ``property list COUNT_TYPE TYPE NAME``,
``end_header``), then the elements in header order -- one line per element row in ASCII files,
packed rows in binary ones.

:mod:`meshlm.files` reads PLY with trimesh, and uses this module for what trimesh refuses although
MeshLab and Blender read it:

* bytes after the last element (padding, a second copy, an exporter's trailer): the data the
  header describes is read, the rest is reported (:attr:`PlyLayout.extra`);
* a binary face element whose lists do not all have the same length (triangles and quads
  mixed): trimesh assumes every list has the first row's length; and faces with more than three
  corners, which trimesh fans (wrong for a concave polygon): :func:`read_geometry` reads these
  files itself and :func:`meshlm.codec.triangulate` triangulates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshlm.errors import MeshlmError

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


class PlyLayoutError(MeshlmError, ValueError):
    """The header is malformed or the file ends before the data the header describes."""


@dataclass
class PlyProperty:
    name: str
    dtype: np.dtype  # the value type (of each list item for a list)
    count: np.dtype | None = None  # the list-length type; None for a single value


@dataclass
class PlyElement:
    name: str
    rows: int
    props: list[PlyProperty] = field(default_factory=list)


@dataclass
class PlyLayout:
    """``fmt``: ``"ascii"``, ``"binary_little_endian"`` or ``"binary_big_endian"``;
    ``header_end``: offset of the first data byte; ``data_end``: offset just after the last
    element; ``extra``: bytes after it (in an ASCII file: that are not white space);
    ``uniform``: every list property of a binary element has the same length in every row (what
    trimesh can read); ``polygons``: some face has other than 3 corners (trimesh would fan it)."""

    fmt: str
    elements: list[PlyElement]
    header_end: int
    data_end: int
    extra: int
    uniform: bool
    polygons: bool = False


def parse_header(data: bytes) -> tuple[str, list[PlyElement], int]:
    """``(format, elements, offset of the first data byte)``. Raises PlyLayoutError."""
    end = data.find(b"end_header")
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"ply") or end < 0:
        raise PlyLayoutError("no PLY header ('ply' ... 'end_header')")
    stop = data.find(b"\n", end)
    header_end = len(data) if stop < 0 else stop + 1
    fmt, elements = "", []
    for raw in data[:end].decode("latin-1").splitlines()[1:]:
        words = raw.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            try:
                elements.append(PlyElement(words[1], int(words[2])))
            except ValueError:
                raise PlyLayoutError(f"bad element line {raw.strip()[:60]!r}") from None
        elif words[0] == "property" and elements:
            try:
                if words[1] == "list":
                    prop = PlyProperty(
                        words[4], np.dtype(_TYPES[words[3]]), np.dtype(_TYPES[words[2]])
                    )
                else:
                    prop = PlyProperty(words[2], np.dtype(_TYPES[words[1]]))
            except (IndexError, KeyError):
                raise PlyLayoutError(f"bad property line {raw.strip()[:60]!r}") from None
            elements[-1].props.append(prop)
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PlyLayoutError(f"unknown PLY format {fmt!r}")
    return fmt, elements, header_end


def measure(data: bytes) -> PlyLayout:
    """Find where the data the header describes ends, and whether faces have other than three
    corners. Raises PlyLayoutError when the file ends before that data (a truncated file) or the
    header is malformed."""
    fmt, elements, start = parse_header(data)
    if fmt == "ascii":
        need = sum(e.rows for e in elements)
        ends = np.cumsum([e.rows for e in elements]).tolist()
        pos, seen, el, polygons = start, 0, 0, False
        while seen < need:
            if pos >= len(data):
                raise PlyLayoutError(f"file ends after {seen} of the {need} data lines")
            stop = data.find(b"\n", pos)
            stop = len(data) if stop < 0 else stop + 1
            line = data[pos:stop]
            if line.strip():
                while seen >= ends[el]:
                    el += 1
                if not polygons and _face_list(elements[el]) == 0:
                    polygons = line.split(None, 1)[0] != b"3"
                seen += 1
            pos = stop
        extra = len(data[pos:].strip())
        return PlyLayout(fmt, elements, start, pos, extra, True, polygons)
    order = "<" if fmt == "binary_little_endian" else ">"
    pos, uniform, polygons = start, True, False
    for el in elements:
        pos, same, lengths = _binary_extent(data, pos, el, order)
        uniform &= same
        index = _face_list(el)
        if index is not None and lengths:
            lists = [i for i, p in enumerate(el.props) if p.count is not None]
            polygons |= lengths[lists.index(index)] != 3
    if pos > len(data):
        raise PlyLayoutError(
            f"file ends early: the header describes {pos - start:,} bytes of data, "
            f"the file has {len(data) - start:,}"
        )
    return PlyLayout(fmt, elements, start, pos, len(data) - pos, uniform, polygons)


def _face_list(el: PlyElement) -> int | None:
    """Position of the vertex-index list among the properties of a ``face`` element, or None."""
    if el.name != "face":
        return None
    for i, p in enumerate(el.props):
        if p.count is not None and p.name in ("vertex_indices", "vertex_index"):
            return i
    return None


def _binary_extent(data: bytes, pos: int, el: PlyElement, order: str):
    """``(end offset of element el starting at pos, whether every row's lists have the first
    row's lengths, those lengths)``."""
    if not any(p.count is not None for p in el.props):
        return pos + el.rows * sum(p.dtype.itemsize for p in el.props), True, []
    if el.rows == 0:
        return pos, True, []
    # the first row's lengths; then check every row has them (one strided read per list)
    lengths, offsets, size = [], [], 0
    for p in el.props:
        if p.count is None:
            size += p.dtype.itemsize
            continue
        at = pos + size
        if at + p.count.itemsize > len(data):
            return pos + size + p.count.itemsize, True, []  # truncated: the caller reports it
        n = int(np.frombuffer(data, p.count.newbyteorder(order), 1, at)[0])
        offsets.append(size)
        lengths.append(n)
        size += p.count.itemsize + n * p.dtype.itemsize
    end = pos + el.rows * size
    if end <= len(data):
        ok = True
        for p, off, n in zip(
            (p for p in el.props if p.count is not None), offsets, lengths, strict=True
        ):
            counts = np.ndarray((el.rows,), p.count.newbyteorder(order), data, pos + off, (size,))
            ok &= bool((counts == n).all())
        if ok:
            return end, True, lengths
    return _walk(data, pos, el, order)[0], False, []


def _walk(data: bytes, pos: int, el: PlyElement, order: str) -> tuple[int, list[list]]:
    """Read ``el`` row by row -> (end offset, per property a list of values / lists)."""
    columns: list[list] = [[] for _ in el.props]
    types = [
        (p.dtype.newbyteorder(order), None if p.count is None else p.count.newbyteorder(order))
        for p in el.props
    ]
    total = len(data)
    for _ in range(el.rows):
        for column, (dtype, count) in zip(columns, types, strict=True):
            if count is None:
                if pos + dtype.itemsize > total:
                    return pos + dtype.itemsize, columns
                column.append(np.frombuffer(data, dtype, 1, pos)[0])
                pos += dtype.itemsize
            else:
                if pos + count.itemsize > total:
                    return pos + count.itemsize, columns
                n = int(np.frombuffer(data, count, 1, pos)[0])
                pos += count.itemsize
                if pos + n * dtype.itemsize > total:
                    return pos + n * dtype.itemsize, columns
                column.append(np.frombuffer(data, dtype, n, pos).tolist())
                pos += n * dtype.itemsize
    return pos, columns


def read_geometry(data: bytes, layout: PlyLayout) -> tuple[np.ndarray, list[list[int]]]:
    """``(vertices (n, 3) float64, faces as lists of 0-based indices)`` of a PLY file: the
    ``x``, ``y``, ``z`` of element ``vertex`` and the ``vertex_indices`` (or ``vertex_index``)
    list of element ``face``; other elements and properties are skipped. Raises PlyLayoutError
    when there is no vertex element with x, y, z or an ASCII row is malformed."""
    if layout.fmt == "ascii":
        return _read_ascii(data, layout)
    order = "<" if layout.fmt == "binary_little_endian" else ">"
    pos = layout.header_end
    vertices, faces = None, []
    for el in layout.elements:
        if _is_vertex(el):
            dtype = np.dtype([(p.name, p.dtype.newbyteorder(order)) for p in el.props])
            rows = np.frombuffer(data, dtype, el.rows, pos)
            vertices = np.stack([rows[k].astype(np.float64) for k in "xyz"], axis=1)
            pos += el.rows * dtype.itemsize
            continue
        end, columns = _walk(data, pos, el, order)
        index = _face_list(el)
        if index is not None:
            faces = [list(map(int, f)) for f in columns[index]]
        pos = end
    if vertices is None:
        raise PlyLayoutError("no vertex element with x, y, z properties")
    return vertices, faces


def _is_vertex(el: PlyElement) -> bool:
    names = {p.name for p in el.props}
    return (
        el.name == "vertex" and {"x", "y", "z"} <= names and all(p.count is None for p in el.props)
    )


def _read_ascii(data: bytes, layout: PlyLayout) -> tuple[np.ndarray, list[list[int]]]:
    lines = (ln for ln in data[layout.header_end : layout.data_end].splitlines() if ln.strip())
    vertices, faces = None, []
    for el in layout.elements:
        rows = [next(lines).split() for _ in range(el.rows)]
        if _is_vertex(el):
            at = [[p.name for p in el.props].index(k) for k in "xyz"]
            try:
                vertices = np.array([[float(r[i]) for i in at] for r in rows], dtype=np.float64)
            except (ValueError, IndexError):
                raise PlyLayoutError("a vertex row has fewer values than its properties") from None
            vertices = vertices.reshape(-1, 3)
            continue
        index = _face_list(el)
        if index is None:
            continue
        for row in rows:
            at = 0
            try:
                for i, p in enumerate(el.props):
                    n = 1 if p.count is None else int(row[at]) + 1
                    if i == index:
                        faces.append([int(float(t)) for t in row[at + 1 : at + n]])
                    at += n
            except (ValueError, IndexError):
                text = b" ".join(row).decode("latin-1")[:60]
                raise PlyLayoutError(f"malformed face row {text!r}") from None
    if vertices is None:
        raise PlyLayoutError("no vertex element with x, y, z properties")
    return vertices, faces
