"""meshlm's own reader of Wavefront OBJ geometry (used by :mod:`meshlm.files` for every ``.obj``).

The reference is the OBJ specification: "Object Files (.obj)", Appendix B1 of the Wavefront
Advanced Visualizer manual (version 3.0). meshlm reads OBJ itself, rather than through trimesh,
because the files people have are read wrongly there in ways that lose geometry without a word:

* **relative indices**: "a negative number ... references the most recently defined vertex":
  ``-1`` is the last ``v`` line *above* the face, so three blocks ``v v v v f -4 -3 -2 ...`` are
  three tetrahedra (trimesh resolved them against the whole file: one tetrahedron);
* **white space**: statements are a keyword and arguments separated by any run of spaces or
  tabs (``v<TAB>0.5<TAB>0.5<TAB>0.5``); lines end with LF, CRLF or CR;
* **line continuation**: a line ending in ``\\`` goes on with the next one;
* **byte-order marks and leading bytes**: UTF-8 and UTF-16/32 (LE, BE) files with a BOM are
  decoded; a BOM or NUL bytes anywhere, and invisible bytes glued in front of a keyword (a BOM
  decoded as Latin-1, ``"ï»¿v"``), are dropped so no vertex line is lost;
* **concave polygons**: faces with more than 3 corners are triangulated by
  :func:`meshlm.codec.triangulate` (fan for convex polygons, ear clipping otherwise).

Read: ``v x y z [w]`` (also ``v x y z r g b``: the first three numbers are the position),
``f`` with ``v``, ``v/vt``, ``v/vt/vn`` or ``v//vn`` corners (only the vertex index is used),
``l`` (line) and ``p`` (point) elements, which are counted so a file of lines only is told
apart from an empty one. Ignored, as the geometry does not depend on them: ``vt``, ``vn``,
``vp``, ``g``, ``o``, ``s``, ``mg``, ``usemtl``, ``mtllib`` (so a missing material or texture
file is no problem), comments and unknown statements; free-form geometry (``curv``, ``surf``)
is not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from meshlm.codec import triangulate
from meshlm.errors import MeshlmError

_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xef\xbb\xbf", "utf-8"),
)
# Characters in front of a keyword that are not part of it: white space and anything outside
# printable ASCII (a BOM read as Latin-1 or cp1252, control bytes, non-breaking spaces).
_JUNK = re.compile(r"^[^\x21-\x7e]+")
# Lines end with LF, CRLF or CR (not at the other characters str.splitlines splits at: a
# vertical tab or form feed is white space inside a line).
_LINE_END = re.compile(r"\r\n?|\n")
_KNOWN = frozenset(
    "vt vn vp g o s mg usemtl mtllib usemap maplib lod shadow_obj trace_obj bevel c_interp "
    "d_interp ctech stech cstype deg bmat step curv curv2 surf parm trim hole scrv sp end con "
    "call csh v f l p".split()
)


class ObjParseError(MeshlmError, ValueError):
    """An OBJ statement meshlm cannot read; ``line`` is 1-based, ``problem`` a few words."""

    def __init__(self, line: int, problem: str):
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


@dataclass
class ObjGeometry:
    """What an OBJ file holds, as read by :func:`read_obj`.

    vertices : (n, 3) float64, every ``v`` of the file in order.
    faces : (m, 3) int64, 0-based triangles (polygons triangulated, winding kept).
    n_lines, n_points : how many ``l`` / ``p`` elements the file has.
    notes : what was skipped, one short phrase each (e.g. ``"2 faces with fewer than 3
    corners skipped"``).
    """

    vertices: np.ndarray
    faces: np.ndarray
    n_lines: int = 0
    n_points: int = 0
    notes: list[str] = field(default_factory=list)


def decode_text(data: bytes) -> str:
    """The text of an OBJ (or other text) file: UTF-32/UTF-16/UTF-8 by their byte-order mark,
    UTF-16 without one when every other byte of the start is NUL, else UTF-8 (undecodable bytes
    become U+FFFD). BOM characters and NUL bytes are removed wherever they are."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(codec, errors="replace")
            break
    else:
        head = data[:64]
        even, odd = head[0::2], head[1::2]
        if len(head) >= 8 and odd.count(0) == len(odd) and even.count(0) == 0:
            text = data.decode("utf-16-le", errors="replace")
        elif len(head) >= 8 and even.count(0) == len(even) and odd.count(0) == 0:
            text = data.decode("utf-16-be", errors="replace")
        else:
            text = data.decode("utf-8", errors="replace")
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    if "\x00" in text:
        text = text.replace("\x00", " ")
    return text


def _statements(text: str):
    """(1-based line number, tokens) of each non-empty statement, continuations joined."""
    pending: list[str] = []
    start = 0
    for number, line in enumerate(_LINE_END.split(text), start=1):
        if "#" in line:  # a comment runs to the end of the line
            line = line[: line.index("#")]
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            if not pending:
                start = number
            pending.append(stripped[:-1])
            continue
        if pending:
            line = " ".join(pending + [line])
            pending = []
            number = start
        tokens = line.split()
        if tokens:
            yield number, tokens
    if pending:
        tokens = " ".join(pending).split()
        if tokens:
            yield start, tokens


def read_obj(data: bytes) -> ObjGeometry:
    """Read the geometry of an OBJ file's bytes (see the module docstring for the dialects).

    Returns an :class:`ObjGeometry`. Raises :class:`ObjParseError` naming the line for a vertex
    line without three numbers, a face corner that is not an integer, the index 0, or an index
    that points to no vertex (a negative one counts back from the vertices defined so far; a
    positive one must be at most the number of vertices in the whole file).
    """
    text = decode_text(data)
    coords: list[list[str]] = []  # the three coordinate strings of each v line
    v_at: list[int] = []
    polys: list[list[int]] = []  # 1-based, relative indices resolved
    f_at: list[int] = []
    n_lines = n_points = short = 0
    for number, tokens in _statements(text):
        key = tokens[0]
        if key not in _KNOWN:
            tokens = _JUNK.sub("", " ".join(tokens)).split()  # "\u00ef\u00bb\u00bf v" -> "v"
            if not tokens:
                continue
            key = tokens[0]
        if key == "v":
            if len(tokens) < 4:
                raise ObjParseError(number, f"vertex line needs 3 numbers: {' '.join(tokens)!r}")
            coords.append(tokens[1:4])
            v_at.append(number)
        elif key == "f":
            try:
                poly = [int(c) for c in tokens[1:]]
            except ValueError:
                poly = [_corner(c, number) for c in tokens[1:]]
            if len(poly) < 3:
                short += 1
                continue
            if min(poly) <= 0:
                poly = [_resolve(i, len(coords), number) for i in poly]
            polys.append(poly)
            f_at.append(number)
        elif key == "l":
            n_lines += 1
        elif key == "p":
            n_points += 1
    vertices = _floats(coords, v_at)
    tops = [max(p) for p in polys]
    if tops and max(tops) > len(vertices):
        k = next(i for i, t in enumerate(tops) if t > len(vertices))
        raise ObjParseError(
            f_at[k],
            f"face refers to vertex {tops[k]}, but the file defines only {len(vertices)} vertices",
        )
    notes = [f"{short} face{'s' if short > 1 else ''} with fewer than 3 corners skipped"]
    notes = notes if short else []
    if not polys:
        return ObjGeometry(vertices, np.zeros((0, 3), np.int64), n_lines, n_points, notes)
    if all(len(p) == 3 for p in polys):
        faces = np.array(polys, dtype=np.int64) - 1
    else:
        zero_based = [[i - 1 for i in p] for p in polys]
        faces = triangulate(zero_based, vertices if np.isfinite(vertices).all() else None)
    return ObjGeometry(vertices, faces, n_lines, n_points, notes)


def _corner(corner: str, number: int) -> int:
    """The vertex index of a face corner ``v``, ``v/vt``, ``v/vt/vn`` or ``v//vn``."""
    try:
        return int(corner.split("/", 1)[0])
    except ValueError:
        raise ObjParseError(number, f"face corner {corner[:30]!r} is not a vertex index") from None


def _resolve(i: int, n: int, number: int) -> int:
    """A 1-based index; a negative one counts back from the ``n`` vertices defined so far."""
    if i == 0:
        raise ObjParseError(number, "face index 0 (OBJ indices start at 1)")
    if i < 0:
        if -i > n:
            raise ObjParseError(
                number,
                f"relative face index {i} points before the first vertex "
                f"(only {n} vertices defined so far)",
            )
        return i + n + 1
    return i


def _floats(coords: list[list[str]], v_at: list[int]) -> np.ndarray:
    """(n, 3) float64 of the coordinate strings; ObjParseError names the first bad line."""
    try:
        return np.array(coords, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        for number, row in zip(v_at, coords, strict=True):
            try:
                [float(t) for t in row]
            except ValueError:
                raise ObjParseError(
                    number, f"vertex line needs 3 numbers: {'v ' + ' '.join(row)!r}"
                ) from None
        raise  # pragma: no cover - numpy refused what float() reads
