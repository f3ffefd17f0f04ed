"""The ``parts`` mesh text format: plain OBJ, written part by part, in connectivity order.

The LLaMA-Mesh format (:mod:`meshlm.codec`) sorts all vertices by their coordinates, so which
vertex numbers form each triangle changes with every proportion of a shape: a table and a
slightly wider table have unrelated face lines. This format writes the *same* vertices and
triangles so that the face lines depend on the mesh's connectivity alone, and a few templates
repeat across shapes (measured in ``docs/benchmarks.md``)::

    v 0 13 9        a part: its vertex lines (integer bins, as in the LLaMA-Mesh format) ...
    v 0 13 54
    ...
    f -8 -7 -6      ... then its faces, with relative (negative) vertex indices
    f -8 -6 -5
    ...
    v 8 0 9         the next part
    ...

It is standard OBJ text (Wavefront OBJ: a negative index ``-k`` is the k-th most recently defined
vertex, so ``-1`` is the last ``v`` line above the face), which any OBJ reader loads.

Encoding (:func:`encode_parts`):

1. Quantize, merge, drop degenerate and duplicate faces and unused vertices exactly as
   :func:`meshlm.codec.canonicalize` does (same bins, same normalization): the vertex set and the
   set of (wound) triangles equal those of the LLaMA-Mesh encoding of the same input.
2-6. Split into parts and order them (:func:`meshlm.partorder.split_parts`; each step is in
   :mod:`meshlm.partorder`'s docstring): parts are pieces of faces joined through edges of
   exactly two faces (a vertex where parts meet is written in each); a part's vertices follow a
   walk over its connectivity from a start chosen by connectivity; its faces are rotated and
   sorted within the part and written as ``-(n - label)``; parts are ordered by vertex count,
   face lines and position.

Quads and n-gons are triangulated as in :func:`meshlm.codec.triangulate` (fan if convex,
ear clipping if not).

Strict decoding (:func:`decode_parts`, ``strict=True``) accepts exactly this grammar and order
and raises :class:`~meshlm.errors.MeshFormatError` naming the line: malformed lines, leading
zeros, coordinates out of range, a relative index that points before the current part or to no
vertex, faces that repeat a vertex, a part with fewer than 3 vertices or no faces, a vertex twice
in one part, duplicate faces, unused vertices, a part that is more than one piece, and any
departure from the canonical order of steps 2-6 (the error quotes the expected line). As in the
LLaMA-Mesh strict decoder, coordinates need not span the whole grid. Lenient decoding
(``strict=False``) reads model replies with :func:`meshlm.lenient.decode_lenient` (relative
indices, prose around, cut-off lines), joins the parts it splits the text into, merges vertices
written in several parts and reports every repair in a :class:`~meshlm.codec.RepairReport`.

Needs numpy alone. :data:`FORMATS` maps ``"llama-mesh"`` and ``"parts"`` to their encode and
decode functions (same signatures). Design and measurements: issue 19, ``docs/format.md``
("The parts format").
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from meshlm import codec, lenient
from meshlm.codec import DEFAULT_BINS, Mesh, RepairReport, canonicalize, check_bins
from meshlm.errors import MeshFormatError, MeshlmError, NoMeshFoundError
from meshlm.partorder import START_BUDGET, Part, split_parts

__all__ = [
    "FORMATS",
    "START_BUDGET",
    "Part",
    "TextFormat",
    "decode_parts",
    "encode_parts",
    "format_parts",
    "get_format",
    "split_parts",
]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _part_lines(q: np.ndarray, part: Part) -> list[str]:
    n = len(part.vertices)
    lines = [f"v {x} {y} {z}" for x, y, z in q[part.vertices].tolist()]
    lines += [f"f -{n - a} -{n - b} -{n - c}" for a, b, c in part.faces]
    return lines


def _text(q: np.ndarray, parts: list[Part]) -> str:
    return "\n".join(line for p in parts for line in _part_lines(q, p))


def format_parts(mesh: Mesh) -> str:
    """The parts text of a mesh's grid coordinates as they are (no re-normalization), like
    :meth:`meshlm.codec.Mesh.to_text` for the LLaMA-Mesh format. Vertices no face uses are left
    out. Raises MeshFormatError if two vertices share a cell or two faces a vertex set."""
    q = np.asarray(mesh.quantized, dtype=np.int64)
    f = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if len(np.unique(q, axis=0)) < len(q):
        raise MeshFormatError("two vertices share a grid cell (encode the mesh instead)")
    if (
        len(np.unique(np.sort(f, axis=1), axis=0)) < len(f)
        or ((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])).any()
    ):
        raise MeshFormatError("degenerate or duplicate faces (encode the mesh instead)")
    return _text(q, split_parts(q, f))


def encode_parts(vertices, faces, bins: int = DEFAULT_BINS) -> str:
    """Encode a triangle mesh as canonical ``parts`` text.

    Parameters
    ----------
    vertices : (n, 3) float
        Positions, Y up; any translation and uniform scale (normalized away).
    faces : (m, 3) int, (m, k) int or a ragged list of polygons
        0-based vertex indices; quads and n-gons triangulated as by ``triangulate`` (convex:
        fan; concave: ear clipping).
    bins : int
        Levels per axis, 2..1024 (LLaMA-Mesh: 64).

    Returns the text (``v``/``f`` lines, single spaces, ``\\n``-separated, no trailing newline).
    Its vertices and wound triangles are exactly those of :func:`meshlm.codec.encode` of the same
    input; only their order, the index notation and the repetition of a vertex in each part it
    belongs to differ. Deterministic; invariant to vertex
    order, face order, translation and uniform scale. Raises :class:`~meshlm.errors.MeshError`
    when the mesh cannot be encoded (the codec's errors).
    """
    mesh = canonicalize(vertices, faces, bins=bins)
    return _text(mesh.quantized, split_parts(mesh.quantized, mesh.faces))


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

_VLINE = re.compile(r"v (0|[1-9]\d*) (0|[1-9]\d*) (0|[1-9]\d*)", re.ASCII)
_FLINE = re.compile(r"f -([1-9]\d*) -([1-9]\d*) -([1-9]\d*)", re.ASCII)


def decode_parts(
    text: str,
    strict: bool = True,
    bins: int = DEFAULT_BINS,
    source: str | None = None,
    cut_off: bool = False,
) -> Mesh:
    """Decode ``parts`` text into a :class:`~meshlm.codec.Mesh`.

    The mesh's vertices are the distinct coordinates in order of first appearance (a vertex
    written in two parts is one vertex); faces are 0-based into them.

    ``strict=True``: ``text`` (surrounding whitespace allowed) must be canonical parts text; any
    problem raises :class:`~meshlm.errors.MeshFormatError` with the 1-based line and the problem
    (see the module docstring for the list).

    ``strict=False``: for model replies; finds the mesh among prose, repairs what it can and
    lists every repair and drop in ``mesh.report``. ``cut_off=True`` says the text stopped at a
    token limit: a last line without a line break is dropped (as in
    :func:`meshlm.lenient.decode_lenient`). Raises :class:`~meshlm.errors.NoMeshFoundError`
    only when the text holds no mesh.
    """
    bins = check_bins(bins)
    if not strict:
        return _decode_lenient(text, bins, source, cut_off)
    if not isinstance(text, str):
        raise MeshFormatError(f"expected text, got {type(text).__name__}", source=source)
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())].count("\n")
    if not body:
        raise MeshFormatError("empty text: no mesh", line=1 + lead, source=source)
    lines = body.split("\n")

    def err(problem: str, i: int) -> MeshFormatError:
        return MeshFormatError(problem, line=i + 1 + lead, source=source)

    verts: list[tuple[int, int, int]] = []  # one per vertex line
    vline: list[int] = []  # text line of each vertex line
    merged: dict[tuple[int, int, int], int] = {}  # coordinates -> vertex of the decoded mesh
    vid: list[int] = []  # vertex line -> vertex of the decoded mesh
    in_part: dict[tuple[int, int, int], int] = {}  # coordinates -> line, in the current part
    faces: list[tuple[int, int, int]] = []  # in decoded-mesh vertices
    fline: list[int] = []
    face_at: dict[tuple[int, int, int], int] = {}
    used: set[int] = set()  # vertex lines some face uses
    parts: list[tuple[int, int]] = []  # (first vertex line, its text line) of each part
    in_faces = True  # so that the first vertex line opens a part
    for i, line in enumerate(lines):
        if line.startswith("v"):
            m = _VLINE.fullmatch(line)
            if not m:
                raise err(f"malformed vertex line {line[:60]!r} (expected 'v X Y Z', integers)", i)
            xyz = (int(m[1]), int(m[2]), int(m[3]))
            if max(xyz) >= bins:
                raise err(f"coordinate {max(xyz)} out of range 0..{bins - 1}", i)
            if in_faces:
                parts.append((len(verts), i))
                in_faces = False
                in_part = {}
            if xyz in in_part:
                raise err(
                    f"duplicate vertex {xyz} in one part (first on line {in_part[xyz] + 1 + lead})",
                    i,
                )
            in_part[xyz] = i
            vid.append(merged.setdefault(xyz, len(merged)))
            verts.append(xyz)
            vline.append(i)
        elif line.startswith("f"):
            m = _FLINE.fullmatch(line)
            if not m:
                raise err(
                    f"malformed face line {line[:60]!r} (expected 'f -A -B -C', relative indices)",
                    i,
                )
            if not verts:
                raise err("face before any vertex", i)
            first, part_line = parts[-1]
            have = len(verts) - first
            if not in_faces and have < 3:
                raise err(f"part has {have} vertices before its faces (need at least 3)", i)
            in_faces = True
            ks = (int(m[1]), int(m[2]), int(m[3]))
            for k in ks:
                if k > len(verts):
                    raise err(f"relative index -{k} points to no vertex ({len(verts)} so far)", i)
                if k > have:
                    raise err(
                        f"relative index -{k} points before the current part "
                        f"({have} vertices, from line {part_line + 1 + lead})",
                        i,
                    )
            if len(set(ks)) < 3:
                raise err(f"face repeats a vertex: {line}", i)
            rows = [len(verts) - k for k in ks]
            used.update(rows)
            tri = (vid[rows[0]], vid[rows[1]], vid[rows[2]])
            key = tuple(sorted(tri))
            if key in face_at:
                raise err(f"duplicate face (same vertices as line {face_at[key] + 1 + lead})", i)
            face_at[key] = i
            faces.append(tri)
            fline.append(i)
        elif not line:
            raise err("empty line inside the mesh", i)
        else:
            raise err(f"not a vertex or face line: {line[:60]!r}", i)
    if not in_faces:
        raise err("part has no face lines", len(lines) - 1)
    if len(used) < len(verts):
        raise err("vertex used by no face", vline[min(set(range(len(verts))) - used)])
    q = np.array(list(merged), dtype=np.int64).reshape(-1, 3)
    f = np.array(faces, dtype=np.int64).reshape(-1, 3)
    _check_canonical(q, f, lines, parts, fline, err)
    return Mesh(quantized=q, faces=f, bins=bins)


def _check_canonical(q, f, lines, parts, fline, err) -> None:
    """Raise at the first line where the text departs from the canonical parts order."""
    canon = split_parts(q, f)
    piece_of: dict[tuple[int, ...], int] = {}  # sorted face -> its piece
    for j, p in enumerate(canon):
        for face in p.faces:
            piece_of[tuple(sorted(p.vertices[x] for x in face))] = j
    # each part of the text must be one piece
    part_lines = [line for _, line in parts]
    seen: dict[int, set[int]] = {}
    for tri, line in zip(f.tolist(), fline, strict=True):
        start = part_lines[bisect.bisect_right(part_lines, line) - 1]
        seen.setdefault(start, set()).add(piece_of[tuple(sorted(tri))])
    for start, pieces in seen.items():
        if len(pieces) > 1:
            raise err(
                f"part is not one piece ({len(pieces)} pieces joined by no edge of two faces: "
                "write each as its own part)",
                start,
            )
    want, canon_at = [], {}  # canonical lines; line index -> that part's piece
    for j, p in enumerate(canon):
        canon_at[len(want)] = j
        want += _part_lines(q, p)
    for i, (got, exp) in enumerate(itertools.zip_longest(lines, want, fillvalue="")):
        if got == exp:
            continue
        if not got:  # a vertex shared by two parts must be written in each
            raise err(f"mesh ends early (expected {exp!r} next)", len(lines) - 1)
        if not exp:
            raise err("line after the end of the canonical text (a shared vertex twice?)", i)
        if i in seen and i in canon_at and seen[i] != {canon_at[i]}:
            raise err(f"parts out of canonical order (expected the part of {exp!r})", i)
        if got[0] == "v" and exp[0] == "v":
            raise err(f"vertex out of canonical order (expected {exp!r})", i)
        if got[0] == "f" and exp[0] == "f":
            raise err(f"face out of canonical order or rotation (expected {exp!r})", i)
        raise err(f"not in canonical order (expected {exp!r})", i)


def _decode_lenient(text, bins: int, source: str | None, cut_off: bool = False) -> Mesh:
    """Lenient decoding: :func:`meshlm.lenient.decode_lenient`, then the parts it returned as
    separate meshes (a ``v`` after ``f`` lines starts one) are joined when only whitespace lies
    between them, and a vertex written in several parts becomes one vertex (the format's
    meaning). Two vertices in one cell within a part are merged too (a repair); faces that this
    collapses or repeats are dropped.

    Text between two runs of parts (prose, a fence) separates two meshes; of those, the one that
    counts is chosen by the rule every stage uses (:func:`meshlm.lenient.main_mesh`: the most
    faces, the earliest on a tie)."""
    meshes = lenient.decode_lenient(text, bins=bins, source=source, cut_off=cut_off)
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    groups = [[meshes[0]]]
    for m in meshes[1:]:
        if text[groups[-1][-1].report.span[1] : m.report.span[0]].strip():
            groups.append([m])
        else:
            groups[-1].append(m)
    joined, error = [], None
    for group in groups:
        try:
            joined.append(_join_parts(group, bins, source))
        except NoMeshFoundError as exc:
            error = exc
    if not joined:
        raise error
    return lenient.main_mesh(joined)


def _join_parts(group: list[Mesh], bins: int, source: str | None) -> Mesh:
    """One mesh from parts written one after another: a vertex in several parts (or twice in
    one cell) becomes one; faces that collapse or repeat are dropped (each a counted drop)."""
    report = RepairReport()
    qs, fs, base, inside = [], [], 0, 0
    for m in group:
        report.repairs.update(m.report.repairs)
        report.drops.update(m.report.drops)
        report.notes += m.report.notes[: max(0, RepairReport.MAX_NOTES - len(report.notes))]
        report.truncated |= m.report.truncated
        inside += len(m.quantized) - len(np.unique(m.quantized, axis=0))
        qs.append(m.quantized)
        fs.append(m.faces + base)
        base += len(m.quantized)
    report.span = (group[0].report.span[0], group[-1].report.span[1])
    q = np.concatenate(qs)
    f = np.concatenate(fs)
    if inside:
        report.repair("vertices in the same cell merged", n=inside)
    # first-occurrence order, as the strict decoder gives
    _, first, inverse = np.unique(q, axis=0, return_index=True, return_inverse=True)
    if len(first) < len(q):
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        f = rank[inverse.reshape(-1)][f]
        q = q[np.sort(first)]
        ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        if not ok.all():
            report.drop("face collapsed by a merge", n=int((~ok).sum()))
            f = f[ok]
        _, keep = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        if len(keep) < len(f):
            report.drop("duplicate face", n=len(f) - len(keep))
            f = f[np.sort(keep)]
        if len(f) == 0:
            raise NoMeshFoundError("no mesh found (every face collapsed)", source=source)
        used = np.unique(f)
        if len(used) < len(q):
            report.drop("vertex no face uses", n=len(q) - len(used))
            renum = np.full(len(q), -1, dtype=np.int64)
            renum[used] = np.arange(len(used))
            q, f = q[used], renum[f]
    return Mesh(quantized=q, faces=f, bins=bins, report=report)


# --------------------------------------------------------------------------------------------
# The formats
# --------------------------------------------------------------------------------------------


class TextFormat(NamedTuple):
    """A mesh text format: ``encode(vertices, faces, bins=64) -> str`` and
    ``decode(text, strict=True, bins=64, source=None) -> Mesh`` (``strict=False``: a model reply,
    read leniently)."""

    name: str
    encode: Callable[..., str]
    decode: Callable[..., Mesh]


#: The mesh text formats by name; ``"llama-mesh"`` is the default (what LLaMA-Mesh reads).
FORMATS: dict[str, TextFormat] = {
    "llama-mesh": TextFormat("llama-mesh", codec.encode, lenient.decode),
    "parts": TextFormat("parts", encode_parts, decode_parts),
}


def get_format(name: str) -> TextFormat:
    """The format called ``name``; raises MeshlmError (one line, listing the names) otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise MeshlmError(
            f"unknown mesh text format {name!r} (known: {', '.join(FORMATS)})"
        ) from None
