"""Lenient decoding: find and repair meshes inside language-model replies.

A reply is scanned line by line (``\\n``, ``\\r\\n`` or ``\\r``). Lines are classified as

* vertex lines ``v X Y Z [more numbers]`` -- integers or floats; extra values (w, colours) ignored;
* face lines ``f A B C ...`` -- plain, ``a/b/c`` or ``a//c`` forms, negative (relative)
  indices, quads and n-gons (fan-triangulated around the first vertex);
* other OBJ statements (``vn``, ``vt``, ``o``, ``g``, ``s``, ``usemtl``, ``#`` comments...)
  and blank lines, which are skipped inside a mesh;
* anything else (prose, code fences), which ends a mesh.

A ``v`` or ``f`` line ending in a backslash continues on the next line (the OBJ spec's line
continuation: Wavefront "Object Files (.obj)", Advanced Visualizer manual Appendix B1,
"File structure").

A ``v`` line after ``f`` lines starts a new mesh, unless the new part's faces point at earlier
vertices (OBJ files with several objects index vertices globally), in which case it continues
the same mesh. Faces alone after text join the preceding vertices.

Dialects of other models and tools, each read with a repair note:

* 0-based face indices (``f 0 1 2``): detected for a whole mesh (see :func:`_zero_based`);
* coordinates outside the grid: another integer resolution (``0..127``, ``0..255``),
  dequantized floats in a unit cube ([-0.5, 0.5], [0, 1], [-1, 1]) or world-unit floats are
  re-quantized into ``0..bins-1`` (the rule: :func:`_to_bins`); a model's off-by-one
  (``64`` or ``-1`` on a 64-bin grid) is clipped.

Drops: faces with fewer than three indices, index 0 (1-based meshes), out-of-range or repeated
indices, faces touching a malformed vertex line, duplicate faces, and vertices no face uses. A
last line cut off mid-way (text without a final newline) is dropped and the mesh is marked
``truncated``. Every repair and drop is counted in the mesh's
:class:`~meshlm.codec.RepairReport`.

Only :class:`~meshlm.errors.NoMeshFoundError` is raised, whatever the input.

Which mesh of a reply counts, when it holds several: the one with the most faces
(:func:`reply_mesh`; why, there). Everything that needs one mesh of a reply uses that rule.

One idea: a model reply read into meshes, every repair reported; kept in one module because
segmenting the lines, the dialect rules (:func:`_zero_based`, :func:`_to_bins`) and the repair
report are one pass over the same segments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from meshlm.codec import DEFAULT_BINS, Mesh, RepairReport, check_bins, quantize
from meshlm.codec import decode as codec_decode
from meshlm.errors import MeshError, NoMeshFoundError

_NUM = r"[-+]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][-+]?[0-9]{1,6})?"
_V = re.compile(rf"v\s+({_NUM})\s+({_NUM})\s+({_NUM})((?:\s+{_NUM})*)\s*(?:#.*)?", re.ASCII)
_IDX = r"[-+]?[0-9]{1,40}(?:/[-+]?[0-9]{0,40}){0,2}"
_F = re.compile(rf"f((?:\s+{_IDX})+)\s*(?:#.*)?", re.ASCII)
_OTHER_OBJ = re.compile(
    r"(?:#|(?:vn|vt|vp|o|g|s|l|p|usemtl|mtllib|usemap|maplib|mg|cstype|deg|curv|surf|bmat)(?:\s|$))",
    re.ASCII,
)
_V_START = re.compile(r"v\s+[-+.0-9]", re.ASCII)  # looks like a vertex line, maybe broken
_F_START = re.compile(r"f\s+[-+0-9]", re.ASCII)
_MAX_ABS = 1e12  # larger magnitudes are treated as malformed, not as geometry


@dataclass
class _Segment:
    verts: list = field(default_factory=list)  # (x, y, z) floats or None for a malformed line
    vlines: list = field(default_factory=list)
    faces: list = field(default_factory=list)  # (indices, line number, vertices seen so far)
    start: int = 0
    end: int = 0
    continues: bool = False  # began with a 'v' right after faces, no text in between
    float_lines: int = 0
    report: RepairReport = field(default_factory=RepairReport)


def decode_lenient(
    text, bins: int = DEFAULT_BINS, source: str | None = None, cut_off: bool = False
) -> list[Mesh]:
    """Decode every mesh in ``text`` (a reply, a file's content, anything).

    ``cut_off=True`` says the text is known to stop mid-reply (a generation that hit its token
    limit): a last line with no line break after it is then dropped even if it parses, since
    its last number may be incomplete (``f 12 13 1`` of ``f 12 13 14``).

    Returns a non-empty list of :class:`~meshlm.codec.Mesh`, in order of appearance, each with at
    least one face and its own ``report``. Raises :class:`~meshlm.errors.NoMeshFoundError` when the
    text holds no usable mesh.
    """
    bins = check_bins(bins)
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise NoMeshFoundError(f"expected text, got {type(text).__name__}", source=source)
    segments = _segment(text, cut_off)
    meshes: list[Mesh] = []
    nverts = 0
    for seg in segments:
        nverts += sum(v is not None for v in seg.verts)
        mesh = _build(seg, bins)
        if mesh is not None:
            meshes.append(mesh)
    if not meshes:
        hint = f" ({nverts} vertex lines but no usable faces)" if nverts else ""
        raise NoMeshFoundError(f"no mesh found{hint}", source=source)
    return meshes


def decode_all(text, bins: int = DEFAULT_BINS, cut_off: bool = False) -> list[Mesh]:
    """Every mesh in a reply (see :func:`decode_lenient`)."""
    return decode_lenient(text, bins=bins, cut_off=cut_off)


def main_mesh(meshes: Sequence[Mesh]) -> Mesh:
    """The mesh of a reply that counts, among ``meshes`` (non-empty, in order of appearance):
    the one with the most faces, the earliest of those on a tie. See :func:`reply_mesh`."""
    return max(meshes, key=lambda m: len(m.faces))  # max keeps the first of equal keys


def reply_mesh(
    text, bins: int = DEFAULT_BINS, source: str | None = None, cut_off: bool = False
) -> Mesh:
    """The one mesh of a model reply that counts: of the meshes :func:`decode_lenient` finds, the
    one with the **most faces** (the earliest of those on a tie), with its ``report``.

    Every stage that needs "the" mesh of a LLaMA-Mesh reply uses this rule -- the engine
    (``result.mesh``), ``decode(text, strict=False)``, the evaluation's validity, geometry and
    repair counts, the web demo's viewer -- so they all score and show the same mesh
    (docs/format.md, "Which mesh of a reply counts"). Why the largest: a constrained reply holds
    exactly one mesh, so the rule only matters for free replies, and there the meshes beside
    the main one are a stray example triangle in the prose, a fragment cut off by a line of
    text, or a restart the token limit stopped early -- each smaller than the mesh the reply is
    about. The first mesh would pick a lead-in example; the last one an unfinished restart. The
    earliest wins a tie so that a streamed reply's choice changes only when a later mesh has
    grown past it.

    Raises :class:`~meshlm.errors.NoMeshFoundError` when the text holds no usable mesh.
    """
    return main_mesh(decode_lenient(text, bins=bins, source=source, cut_off=cut_off))


def decode(text, strict: bool = True, bins: int = DEFAULT_BINS, source: str | None = None) -> Mesh:
    """Decode mesh text (``meshlm.decode``): ``strict=True`` is :func:`meshlm.codec.decode`
    (canonical text only; :class:`~meshlm.errors.MeshFormatError` names the line),
    ``strict=False`` is :func:`reply_mesh` (any reply; the mesh that counts, with its repair
    report; :class:`~meshlm.errors.NoMeshFoundError` when there is none)."""
    if strict:
        return codec_decode(text, strict=True, bins=bins, source=source)
    return reply_mesh(text, bins=bins, source=source)


_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n)|([^\r\n]+)$")


def _lines(text: str):
    """Yield (line number, start offset, line without its break, whether a break followed)."""
    for n, m in enumerate(_LINE.finditer(text), start=1):
        if m.group(3) is not None:
            yield n, m.start(), m.group(3), False
        else:
            yield n, m.start(), m.group(1), True


# a v or f statement that may continue on the next line (its keyword alone, or numbers follow)
_CONTINUABLE = re.compile(r"\s*(?:v\s+[-+.0-9]|f\s+[-+0-9]|[vf]\s*\\)", re.ASCII)


def _statements(text: str):
    """Yield (line number, start, end, statement, break followed, lines joined).

    A ``v`` or ``f`` line whose last non-blank character is a backslash continues on the next
    line (OBJ spec, "Line continuation"); the joined statement keeps its first line's number and
    start offset. Prose ending in a backslash is left alone, so it cannot swallow a mesh line.
    """
    pending = None  # (line number, start, text so far, lines joined, end of the last piece)
    for n, start, raw, had_break in _lines(text):
        end = start + len(raw)
        joins = 0
        if pending is not None:
            n, start, head, joins, _ = pending
            raw, joins = head + " " + raw, joins + 1
            pending = None
        if "\\" in raw and had_break:  # rare: test the rest only then
            stripped = raw.rstrip()
            if stripped.endswith("\\") and _CONTINUABLE.match(stripped):
                pending = (n, start, stripped[:-1], joins, end)
                continue
        yield n, start, end, raw, had_break, joins
    if pending is not None:  # the text ended right after a backslash: an unfinished statement
        n, start, head, joins, end = pending
        yield n, start, end, head, False, joins


def _segment(text: str, cut_off: bool = False) -> list[_Segment]:
    segments: list[_Segment] = []
    cur: _Segment | None = None

    def close():
        nonlocal cur
        if cur is not None and (cur.verts or cur.faces):
            segments.append(cur)
        cur = None

    for n, start, end, raw, had_break, joins in _statements(text):
        line = raw.strip()
        if not line:
            continue
        if cut_off and not had_break and line[:1] in ("v", "f"):
            if cur is not None:
                cur.report.truncated = True
                cur.report.drop("cut-off last line", n)
            continue
        if _V_START.match(line):
            m = _V.fullmatch(line)
            vert = None
            if m:
                try:
                    vals = tuple(float(g) for g in m.groups()[:3])
                    if all(math.isfinite(x) and abs(x) <= _MAX_ABS for x in vals):
                        vert = vals
                except ValueError:
                    vert = None
            continues = False
            if cur is not None and cur.faces and (vert is not None or had_break):
                close()  # a vertex after faces: a new mesh (possibly merged back later)
                continues = True
            if cur is None:
                cur = _Segment(start=start, continues=continues)
            if vert is None:
                if not had_break:
                    cur.report.truncated = True
                    cur.report.drop("cut-off last line", n)
                    cur.end = end
                    continue
                cur.report.drop("malformed vertex line", n)
            else:
                if m.group(4).strip():
                    cur.report.repair("extra vertex values ignored", n)
                if any(c in g for g in m.groups()[:3] for c in ".eE"):
                    cur.float_lines += 1
            cur.verts.append(vert)
            cur.vlines.append(n)
            cur.end = end
            if joins:
                cur.report.repair("line continued with a backslash", n, n=joins)
        elif _F_START.match(line):
            m = _F.fullmatch(line)
            if cur is None:
                cur = _Segment(start=start)
            if not m or len(m.group(1).split()) < 3:
                if not had_break:
                    cur.report.truncated = True
                    cur.report.drop("cut-off last line", n)
                else:
                    cur.report.drop("malformed face line (needs 3 or more indices)", n)
                cur.end = end
                continue
            try:
                idx = [int(tok.split("/")[0]) for tok in m.group(1).split()]
            except ValueError:
                cur.report.drop("malformed face line", n)
                continue
            if "/" in m.group(1):
                cur.report.repair("slash face indices reduced to vertex index", n)
            cur.faces.append((idx, n, len(cur.verts)))
            cur.end = end
            if joins:
                cur.report.repair("line continued with a backslash", n, n=joins)
        elif _OTHER_OBJ.match(line):
            if cur is not None:
                cur.report.repair(f"ignored '{line.split()[0][:8]}' line", n)
        else:  # prose or a code fence ends the current mesh
            close()
    close()
    return _merge(segments)


def _merge(segments: list[_Segment]) -> list[_Segment]:
    """Join face-only parts to the vertices before them, and globally indexed OBJ objects."""
    out: list[_Segment] = []
    for seg in segments:
        if out and not seg.verts and out[-1].verts:
            prev = out[-1]
            prev.faces += [(i, n, len(prev.verts)) for i, n, _ in seg.faces]
            _absorb(prev, seg)
            prev.report.repair("faces joined to the vertices before them")
            continue
        if out and seg.continues and out[-1].verts:
            # a v-after-f split: continue the previous mesh if faces index past this part
            if any(max(i) > len(seg.verts) for i, _, _ in seg.faces):
                prev = out[-1]
                base = len(prev.verts)
                prev.verts += seg.verts
                prev.vlines += seg.vlines
                prev.faces += [(i, n, base + k) for i, n, k in seg.faces]
                _absorb(prev, seg)
                continue
        out.append(seg)
    return out


def _absorb(dst: _Segment, src: _Segment) -> None:
    dst.end = max(dst.end, src.end)
    dst.report.repairs.update(src.report.repairs)
    dst.report.drops.update(src.report.drops)
    dst.report.notes += src.report.notes[: max(0, RepairReport.MAX_NOTES - len(dst.report.notes))]
    dst.report.truncated |= src.report.truncated


def _build(seg: _Segment, bins: int) -> Mesh | None:
    rep = seg.report
    rep.span = (seg.start, seg.end)
    nv = len(seg.verts)
    valid = np.array([v is not None for v in seg.verts], dtype=bool)
    tris: list[tuple[int, int, int]] = []
    tri_lines: list[int] = []
    base = 0 if _zero_based(seg.faces, seg.verts) else 1
    if base == 0:
        rep.repair("0-based face indices read as 0-based")
    for idx, n, seen in seg.faces:
        if base and 0 in idx:
            rep.drop("face with index 0", n)
            continue
        # -1 is the last vertex defined before this line, whatever the base
        res = [seen + i if i < 0 else i - base for i in idx]
        if any(i < 0 or i >= nv for i in res):
            rep.drop("face with out-of-range index", n)
            continue
        if len(set(res)) < len(res):
            rep.drop("face repeats a vertex", n)
            continue
        if not all(valid[i] for i in res):
            rep.drop("face uses a malformed vertex", n)
            continue
        if len(res) > 3:
            rep.repair("quad triangulated" if len(res) == 4 else "polygon triangulated", n)
        for k in range(1, len(res) - 1):
            tris.append((res[0], res[k], res[k + 1]))
            tri_lines.append(n)
    if not tris or valid.sum() < 3:
        return None
    f = np.asarray(tris, dtype=np.int64)
    # duplicate faces (same vertex set)
    key = np.sort(f, axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    if len(first) < len(f):
        rep.drop("duplicate face", n=len(f) - len(first))
        f = f[np.sort(first)]
    # drop malformed and unused vertices, renumber
    used = np.zeros(nv, dtype=bool)
    used[f.ravel()] = True
    unused = int((valid & ~used).sum())
    if unused:
        rep.drop("vertex no face uses", n=unused)
    keep = np.flatnonzero(used)
    renum = np.full(nv, -1, dtype=np.int64)
    renum[keep] = np.arange(len(keep))
    f = renum[f]
    coords = np.array([seg.verts[i] for i in keep], dtype=np.float64)
    q = _to_bins(coords, bins, rep, seg.float_lines)
    if q is None:
        return None
    return Mesh(quantized=q, faces=f, bins=bins, report=rep)


def _zero_based(faces: list, verts: list) -> bool:
    """Whether a mesh's face lines count vertices from 0 (a convention some models and tools use).

    ``faces``: the segment's (indices, line, vertices seen) triples; ``verts``: its (x, y, z)
    tuples (``None`` for a malformed line). A 1-based mesh never uses index 0; a 0-based one
    uses 0 and never uses ``n`` (the vertex count). When both hold, 0 in two or more face lines
    settles it. A single face with 0 may be a stray in a 1-based mesh (one cut off before its
    last vertex is used): then the reading whose other faces have the shorter total edge length
    wins (meshes join neighbouring vertices; a misread shift draws long diagonals; a tie, or a
    lone face, is read 0-based, which keeps the face). Negative (relative) indices mean the same
    in both readings.
    """
    nv = len(verts)
    with_zero, both = 0, []
    for idx, _, _ in faces:
        if any(i == nv for i in idx):
            return False
        if 0 in idx:
            with_zero += 1
        elif idx and min(idx) > 0 and max(idx) < nv:
            both.append(idx)
    if with_zero != 1:
        return with_zero >= 2

    def length(base: int) -> float:
        total = 0.0
        for idx in both:
            pts = [verts[i - base] for i in idx]
            if any(p is None for p in pts):
                continue
            total += sum(math.dist(p, q) for p, q in zip(pts, pts[1:] + pts[:1], strict=True))
        return total

    return not both or length(0) <= length(1) * (1 + 1e-9)  # a tie keeps the 0 face


#: Integer grids recognised above ``bins`` levels: powers of two up to the largest bins allowed.
_GRIDS = tuple(2**k for k in range(2, 11))
#: Unit-cube frames recognised for float coordinates, tried in this order (smallest first).
_FRAMES = ((-0.5, 0.5), (0.0, 1.0), (-1.0, 1.0))
_FRAME_TOL = 1e-6  # float error (float32 storage, -0.5000000000000001) still inside a frame
_SNAP = 0.05  # bins: a value this close to a whole bin is that bin (text printed at 3+ decimals)


def _snap(x: np.ndarray, top: int) -> np.ndarray:
    """Floor positions on the bin scale, except values within ``_SNAP`` of a whole bin round."""
    r = np.rint(x)
    q = np.where(np.abs(x - r) <= _SNAP, r, np.floor(x))
    return np.clip(q, 0, top).astype(np.int64)


def _to_bins(
    coords: np.ndarray, bins: int, rep: RepairReport, float_lines: int = 0
) -> np.ndarray | None:
    """Read the used vertices' coordinates as bins ``0..bins-1``, recognising other ranges.

    The rule (documented in docs/format.md, "Model-reply dialects"); ``top = bins - 1``:

    1. whole numbers in ``0..top`` are bins as written (a mesh, or a part of one, may use only
       part of the grid: ``v 1 0 1`` is bin 1), unless they are all 0 or 1 written as floats
       (``v 1.0 0.0 1.0``: a unit cube at [0, 1]): then rule 3;
    2. whole numbers, none below -1 and none above ``bins``, not all within -1..1: a model's
       off-by-one; clipped to ``0..top``;
    3. all coordinates within a unit-cube frame -- [-0.5, 0.5] (meshlm's and LLaMA-Mesh's
       dequantized cube), else [0, 1], else [-1, 1]: a dequantized mesh; re-quantized in that
       frame, so that text from :attr:`Mesh.vertices` comes back to the same bins;
    4. whole numbers, none negative, largest at most 1023: a grid of ``L`` levels, ``L`` the
       smallest power of two above the largest (64..127 -> 128, 128..255 -> 256, ...);
       re-quantized by ``q * top / (L - 1)``;
    5. anything else (world-unit floats, negative or huge integers): re-normalized and
       quantized like :func:`meshlm.codec.quantize` (the shape is kept, the placement is not).

    Re-quantized positions floor to a bin (like :func:`~meshlm.codec.quantize`), except that a
    value within 0.05 bins of a whole bin rounds to it (text printed with few decimals).
    """
    top = bins - 1
    lo, hi = float(coords.min()), float(coords.max())
    whole = bool(np.all(coords == np.round(coords)))
    in_unit = lo >= -1.0 - _FRAME_TOL and hi <= 1.0 + _FRAME_TOL
    if whole and lo >= 0 and hi <= top and not (float_lines and hi <= 1 < top):
        if float_lines:
            rep.repair("float coordinates read as whole bins", n=float_lines)
        return coords.astype(np.int64)
    if whole and lo >= -1 and hi <= bins and not in_unit:
        if float_lines:
            rep.repair("float coordinates read as whole bins", n=float_lines)
        q = coords.astype(np.int64)
        out = (q < 0) | (q > top)
        rep.repair(f"coordinate clipped to 0..{top}", n=int(out.sum()))
        return np.clip(q, 0, top)
    if in_unit:
        a, b = next((a, b) for a, b in _FRAMES if lo >= a - _FRAME_TOL and hi <= b + _FRAME_TOL)
        rep.repair(f"unit-cube coordinates ({a:g}..{b:g}) re-quantized to {bins} bins")
        return _snap((coords - a) * (top / (b - a)), top)
    if whole and lo >= 0 and hi <= _GRIDS[-1] - 1:
        levels = next(g for g in _GRIDS if g - 1 >= hi)
        rep.repair(f"coordinates read as a {levels}-level grid and re-quantized to {bins} bins")
        return _snap(coords * (top / (levels - 1)), top)
    rep.repair(("integer" if whole else "float") + " coordinates re-normalized and quantized")
    try:
        return quantize(coords, bins)
    except MeshError:
        rep.drop("mesh has zero size")
        return None
