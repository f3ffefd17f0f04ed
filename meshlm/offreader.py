"""meshlm's reader of OFF (Object File Format) geometry, used by :mod:`meshlm.files` for ``.off``.

Reference: the OFF format of Geomview ("OFF files", Geomview manual, section 4.2.1): an optional
header keyword (``OFF``, with prefixes ``ST``, ``C``, ``N``, ``4``, ``n`` for the extra vertex
data), the counts ``vertices faces edges``, one vertex per line (x y z, then the extra data), one
face per line (``k i1 ... ik``, 0-based, then an optional colour). ``#`` starts a comment.

meshlm reads it itself because trimesh fans faces of more than three corners, which covers the
wrong area for a concave polygon; here they go through :func:`meshlm.codec.triangulate` (the fan
for convex polygons, ear clipping otherwise). Text is decoded as for OBJ (byte-order marks, UTF-16).
"""

from __future__ import annotations

import re

import numpy as np

from meshlm.errors import MeshlmError
from meshlm.objreader import decode_text

_HEADER = re.compile(r"^(ST)?C?N?4?n?OFF(BINARY)?$")


class OffParseError(MeshlmError, ValueError):
    """An OFF file meshlm cannot read; the message names the problem (and line)."""


def read_off(data: bytes) -> tuple[np.ndarray, list[list[int]]]:
    """``(vertices (n, 3) float64, faces as lists of 0-based indices)`` of an OFF file.

    Raises :class:`OffParseError` for a binary OFF, a missing or malformed count line, too few
    vertex or face lines, a malformed line, or an index that points to no vertex.
    """
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(re.split(r"\r\n?|\n", decode_text(data)), start=1):
        words = line.split("#", 1)[0].split()
        if words:
            rows.append((number, words))
    if rows and _HEADER.match(rows[0][1][0]):
        if rows[0][1][0].endswith("BINARY"):
            raise OffParseError("binary OFF is not supported")
        first = rows[0][1][1:]
        rows = ([(rows[0][0], first)] if first else []) + rows[1:]
    if not rows:
        raise OffParseError("no OFF header or vertex/face counts")
    number, counts = rows[0]
    try:
        n_vertices, n_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise OffParseError(f"line {number}: expected the counts 'vertices faces edges'") from None
    if len(rows) < 1 + n_vertices + n_faces:
        raise OffParseError(
            f"the counts say {n_vertices} vertices and {n_faces} faces, the file has "
            f"{len(rows) - 1} lines of data"
        )
    try:
        vertices = np.array(
            [[float(w) for w in words[:3]] for _, words in rows[1 : 1 + n_vertices]],
            dtype=np.float64,
        ).reshape(-1, 3)
    except ValueError:
        raise OffParseError("a vertex line does not start with 3 numbers") from None
    faces = []
    for number, words in rows[1 + n_vertices : 1 + n_vertices + n_faces]:
        try:
            k = int(words[0])
            face = [int(w) for w in words[1 : 1 + k]]
        except (ValueError, IndexError):
            raise OffParseError(f"line {number}: malformed face line") from None
        if len(face) != k:
            raise OffParseError(f"line {number}: face has fewer than its {k} indices")
        if face and (min(face) < 0 or max(face) >= len(vertices)):
            raise OffParseError(f"line {number}: face refers to a vertex that does not exist")
        if k >= 3:
            faces.append(face)
    return vertices, faces
