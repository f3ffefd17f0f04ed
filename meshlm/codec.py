"""The LLaMA-Mesh text codec: triangle meshes <-> plain OBJ text with integer coordinates.

Needs numpy alone; when the optional compiled kernel ``meshlm._ccodec`` was built at install
time (a C compiler was present), encoding and strict decoding run through it -- it does the same
steps, and tests hold the two paths to identical output. ``MESHLM_PURE_NUMPY=1`` switches it
off. The canonical format (``../shared/docs/llama-mesh-facts.md``, confirmed on a real
output of the released model) is::

    v X Y Z      (X, Y, Z integers in 0..bins-1; all vertex lines first)
    f A B C      (1-based vertex indices of a triangle)

produced by :func:`encode` as follows:

1. centre the axis-aligned bounding box of the vertices used by faces at the origin and
   scale uniformly so that its longest side is 1;
2. quantize ``q = floor((c + 0.5) * (bins - 1))`` (a value within ``QUANT_EPS`` bins below
   an integer counts as that integer, so float32 storage in GLB/PLY/STL cannot move a bin;
   63 stays 63);
3. merge vertices that fall in the same cell, drop faces that become degenerate and duplicate
   faces (the same vertex set and winding), drop vertices no face uses -- and, if dropping faces
   shrank the bounding box, redo 1-3 on what is left, so that encoding is idempotent on its own
   output. A vertex set present with both windings (double-sided geometry, as glTF exporters
   write it) keeps one face, wound to agree with its neighbours and, for a piece that is all
   double-sided, to face outward (:func:`meshlm.canonical._orient_pieces`);
4. sort vertices ascending by (x, y, z) and renumber;
5. rotate each face cyclically so its smallest index comes first (winding kept);
6. sort faces ascending by the tuple of their sorted indices.

The steps live in three modules below this one, whose names this module re-exports
(``meshlm.codec.quantize``, ``meshlm.codec.triangulate``, ...): :mod:`meshlm.grid` (bins,
normalization, quantization), :mod:`meshlm.polygons` (quads and n-gons to triangles) and
:mod:`meshlm.canonical` (steps 1-6 in numpy). This module holds the :class:`Mesh` type, the text
in and out, and the choice between the compiled kernel and numpy.

:func:`decode` reads canonical text back: it accepts only the canonical grammar and order and
raises :class:`~meshlm.errors.MeshFormatError` naming the line. Language-model replies are read
by :mod:`meshlm.lenient`, one layer up (``meshlm.decode(reply, strict=False)``): this module and
the three above import nothing of meshlm but :mod:`meshlm.errors`, each other and the kernel
(tests/test_layering.py). Dequantization maps bin ``q`` to ``q / (bins - 1) - 0.5``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from meshlm.canonical import canonical_arrays
from meshlm.errors import MeshFormatError
from meshlm.grid import (
    DEFAULT_BINS,
    MAX_BINS,
    MIN_BINS,
    QUANT_EPS,
    _pack,
    check_bins,
    dequantize,
    normalize,
    quantize,
)
from meshlm.polygons import triangulate

# the names of grid and polygons are part of this module's API: callers import them from here
__all__ = [
    "DEFAULT_BINS",
    "KERNEL_REVISION",
    "MAX_BINS",
    "MIN_BINS",
    "Mesh",
    "QUANT_EPS",
    "RepairReport",
    "canonicalize",
    "check_bins",
    "decode",
    "dequantize",
    "encode",
    "format_text",
    "normalize",
    "quantize",
    "triangulate",
]

try:  # the optional compiled fast path (see the module docstring)
    from meshlm import _ccodec
except ImportError:  # pragma: no cover - depends on the install
    _ccodec = None
if os.environ.get("MESHLM_PURE_NUMPY") == "1":
    _ccodec = None
#: The kernel revision this module's numpy path matches (``REVISION`` in _ccodec.c); a build
#: left from an older source is not used, as its output could differ.
KERNEL_REVISION = 2
if _ccodec is not None and getattr(_ccodec, "REVISION", 1) != KERNEL_REVISION:
    _ccodec = None  # pragma: no cover - a stale build: reinstall (pip install -e .)


# --------------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------------


@dataclass
class RepairReport:
    """What the lenient decoder changed or dropped to get a valid mesh.

    ``repairs`` and ``drops`` count events by reason (e.g. ``"quad triangulated"``,
    ``"face with out-of-range index"``); ``notes`` keeps the first few line-level details;
    ``truncated`` is True when the text ended inside a line (an unfinished reply);
    ``span`` is the (start, end) character range of the mesh in the source text.
    """

    repairs: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    span: tuple[int, int] = (0, 0)

    MAX_NOTES = 20

    def repair(self, reason: str, line: int | None = None, n: int = 1) -> None:
        self.repairs[reason] += n
        self._note(reason, line)

    def drop(self, reason: str, line: int | None = None, n: int = 1) -> None:
        self.drops[reason] += n
        self._note(f"dropped: {reason}", line)

    def _note(self, text: str, line: int | None) -> None:
        if len(self.notes) < self.MAX_NOTES:
            self.notes.append(f"line {line}: {text}" if line else text)

    @property
    def clean(self) -> bool:
        """True when nothing was repaired or dropped."""
        return not self.repairs and not self.drops and not self.truncated

    def summary(self) -> str:
        """One human line, e.g. ``'2 repairs (quad triangulated: 2); 1 drop (...)'``."""
        if self.clean:
            return "no repairs"
        parts = []
        for name, counter in (("repair", self.repairs), ("drop", self.drops)):
            total = sum(counter.values())
            if total:
                items = ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))
                parts.append(f"{total} {name}{'s' if total != 1 else ''} ({items})")
        if self.truncated:
            parts.append("text was cut off")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "repairs": dict(self.repairs),
            "drops": dict(self.drops),
            "truncated": self.truncated,
            "notes": list(self.notes),
        }


@dataclass
class Mesh:
    """A decoded mesh on the integer grid.

    Attributes
    ----------
    quantized : (n, 3) int64
        Vertex bins, each in ``0..bins-1``; columns are x, y (up), z.
    faces : (m, 3) int64
        Triangles as 0-based vertex indices.
    bins : int
        Grid resolution per axis.
    report : RepairReport
        Empty for strictly decoded or encoded meshes.
    """

    quantized: np.ndarray
    faces: np.ndarray
    bins: int = DEFAULT_BINS
    report: RepairReport = field(default_factory=RepairReport)

    @property
    def vertices(self) -> np.ndarray:
        """(n, 3) float64 vertex positions in the unit cube at the origin."""
        return dequantize(self.quantized, self.bins)

    def to_text(self) -> str:
        """This mesh as text, vertices and faces in their current order (no re-normalization)."""
        return format_text(self.quantized, self.faces)

    def encode(self) -> str:
        """The canonical encoding of this mesh (re-normalized, same bins)."""
        return encode(self.vertices, self.faces, bins=self.bins)

    def __repr__(self) -> str:
        return f"Mesh(vertices={len(self.quantized)}, faces={len(self.faces)}, bins={self.bins})"


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def canonicalize(vertices, faces, bins: int = DEFAULT_BINS) -> Mesh:
    """Quantize and order a mesh canonically (steps 1-6 of the module docstring).

    vertices : (n, 3) float; faces : (m, 3) int (or (m, k) / ragged polygons, triangulated by
    :func:`triangulate` with the vertices: fan if convex, ear clipping if not).
    Returns a :class:`Mesh` whose ``to_text()`` is the canonical text. Invariant to vertex order,
    face order, translation and uniform (positive) scale of the input.
    Raises MeshError for bad arrays, zero size, or a mesh that collapses to nothing at ``bins``.
    """
    bins = check_bins(bins)
    fast = _kernel_call("canonical", vertices, faces, bins)
    if fast is not None:
        q, f = (np.frombuffer(b, dtype=np.int64).reshape(-1, 3) for b in fast)
        return Mesh(quantized=q, faces=f, bins=bins)
    return _canonicalize_numpy(vertices, faces, bins)


def _kernel_call(name: str, vertices, faces, bins: int):
    """The compiled kernel's answer for plain (n, 3) / (m, 3) arrays, or None (no kernel, other
    input types, or an error: the numpy path then raises it with its message)."""
    if _ccodec is None or not isinstance(vertices, np.ndarray) or not isinstance(faces, np.ndarray):
        return None
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        return None
    if vertices.dtype.kind not in "fiu" or faces.dtype.kind not in "iu":
        return None
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    out = getattr(_ccodec, name)(v, f, len(v), len(f), bins)
    return None if isinstance(out, int) else out


def _canonicalize_numpy(vertices, faces, bins: int) -> Mesh:
    """The numpy path of :func:`canonicalize` (tests hold the kernel to it)."""
    q, f = canonical_arrays(vertices, faces, bins)
    return Mesh(quantized=q, faces=f, bins=bins)


def format_text(quantized: np.ndarray, faces: np.ndarray) -> str:
    """Write ``v``/``f`` lines, ``\\n``-separated, no trailing newline; faces become 1-based."""
    q = np.asarray(quantized, dtype=np.int64)
    f = np.asarray(faces, dtype=np.int64)
    template = "v %d %d %d\n" * len(q) + "f %d %d %d\n" * len(f)
    values = np.concatenate((q.reshape(-1), f.reshape(-1) + 1)).tolist()
    return (template % tuple(values))[:-1]


def encode(vertices, faces, bins: int = DEFAULT_BINS) -> str:
    """Encode a triangle mesh as canonical LLaMA-Mesh text.

    Parameters
    ----------
    vertices : (n, 3) float
        Positions, Y up. Any translation and uniform scale (normalized away).
    faces : (m, 3) int, (m, k) int or a ragged list of polygons
        0-based vertex indices. Quads and n-gons are triangulated by :func:`triangulate`: convex
        ones as the fan around their first vertex, concave ones by ear clipping.
    bins : int
        Levels per axis, 2..1024 (LLaMA-Mesh: 64).

    Returns the text: ``v`` lines then ``f`` lines, single spaces, ``\\n``-separated, no trailing
    newline. Raises :class:`~meshlm.errors.MeshError` when the mesh cannot be encoded.
    """
    bins = check_bins(bins)
    fast = _kernel_call("encode", vertices, faces, bins)
    if fast is not None:
        return fast[0]
    # the kernel could not (other input types) or would not (bad input): numpy does it or says why
    return _canonicalize_numpy(vertices, faces, bins).to_text()


# --------------------------------------------------------------------------------------------
# Strict decoding
# --------------------------------------------------------------------------------------------

_STRICT_RE = re.compile(r"(?:v [0-9]+ [0-9]+ [0-9]+\n)+(?:f [0-9]+ [0-9]+ [0-9]+\n)+")
_VLINE = re.compile(r"v (0|[1-9]\d*) (0|[1-9]\d*) (0|[1-9]\d*)", re.ASCII)
_FLINE = re.compile(r"f ([1-9]\d*) ([1-9]\d*) ([1-9]\d*)", re.ASCII)
_LEADING_ZERO = re.compile(r" 0[0-9]")  # every number follows a space in a line that matched


def decode(
    text: str, strict: bool = True, bins: int = DEFAULT_BINS, source: str | None = None
) -> Mesh:
    """Decode canonical mesh text (strictly).

    ``text`` must be canonical-format text (optionally with surrounding
    whitespace): at least 3 vertex lines ``v X Y Z`` with integers in ``0..bins-1`` (no leading
    zeros), strictly increasing in (x, y, z) order, then at least one face line ``f A B C`` with
    1-based indices that exist, are distinct and start with the smallest, faces strictly
    increasing by their sorted index tuple. Unused vertices are allowed. Anything else raises
    :class:`~meshlm.errors.MeshFormatError` with the 1-based line number and the problem.

    ``strict`` must be True (kept for the signature ``meshlm.decode`` shares): model replies are
    read by :func:`meshlm.lenient.decode` / ``meshlm.decode(reply, strict=False)``, which this
    bottom layer does not import; ``strict=False`` here raises ``ValueError`` saying so.
    """
    if not strict:
        raise ValueError(
            "meshlm.codec.decode reads canonical text only; read a model reply with "
            "meshlm.decode(text, strict=False) (meshlm.lenient.reply_mesh)"
        )
    bins = check_bins(bins)
    if not isinstance(text, str):
        raise MeshFormatError(f"expected text, got {type(text).__name__}", source=source)
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())].count("\n")  # line offset of the first line
    if not body:
        raise MeshFormatError("empty text: no mesh", line=1 + lead, source=source)
    body += "\n"
    if _ccodec is not None:
        fast = _ccodec.decode(body, bins)
        if fast is not None:
            q, f = (np.frombuffer(b, dtype=np.int64).reshape(-1, 3) for b in fast)
            return Mesh(quantized=q, faces=f, bins=bins)
    if _STRICT_RE.fullmatch(body) and not _LEADING_ZERO.search(body):
        nums = np.fromstring(body.translate(_TO_SPACES), dtype=np.int64, sep=" ")
        nv = body.count("v")
        q = nums[: 3 * nv].reshape(-1, 3)
        f = nums[3 * nv :].reshape(-1, 3) - 1
        if _valid_arrays(q, f, bins):
            return Mesh(quantized=q, faces=f, bins=bins)
    _strict_line_by_line(body, bins, lead, source)  # raises with the line of the first problem
    raise MeshFormatError("not canonical mesh text", source=source)  # pragma: no cover


_TO_SPACES = str.maketrans("vf\n", "   ")


def _valid_arrays(q: np.ndarray, f: np.ndarray, bins: int) -> bool:
    """Vectorized check of the canonical constraints (the regex already checked the syntax)."""
    n = len(q)
    if n < 3 or q.max() >= bins:
        return False
    kv = _pack(q, bins)
    if (kv[1:] <= kv[:-1]).any():  # vertices strictly increasing in (x, y, z)
        return False
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    if a.min() < 0 or f.max() >= n or ((a >= b) | (a >= c) | (b == c)).any():
        return False
    lo = np.minimum(b, c)
    hi = b + c - lo
    if n < 1_600_000:  # sorted tuple (a, lo, hi) packs into one int64
        ks = (a * n + lo) * n + hi
        return not (ks[1:] <= ks[:-1]).any()  # faces strictly increasing by sorted tuple
    order = np.lexsort((hi, lo, a))
    s = np.stack((a, lo, hi), axis=1)
    dup = (s[1:] == s[:-1]).all(axis=1).any() if len(s) > 1 else False
    return bool(np.array_equal(order, np.arange(len(s))) and not dup)


def _strict_line_by_line(body: str, bins: int, lead: int, source: str | None) -> None:
    """Walk the text line by line and raise MeshFormatError at the first violation."""

    def err(msg: str, i: int) -> MeshFormatError:
        return MeshFormatError(msg, line=i + 1 + lead, source=source)

    verts: list[tuple[int, int, int]] = []
    prev_face: tuple[int, int, int] | None = None
    in_faces = False
    lines = body.split("\n")[:-1]
    for i, line in enumerate(lines):
        if line.startswith("v"):
            if in_faces:
                raise err("vertex line after face lines (all 'v' lines must come first)", i)
            m = _VLINE.fullmatch(line)
            if not m:
                raise err(
                    f"malformed vertex line {line[:60]!r} (expected 'v X Y Z' with integers)", i
                )
            xyz = tuple(int(g) for g in m.groups())
            if max(xyz) >= bins:
                raise err(f"coordinate {max(xyz)} out of range 0..{bins - 1}", i)
            if verts and xyz <= verts[-1]:
                what = "duplicate vertex" if xyz == verts[-1] else "vertices out of order"
                raise err(f"{what}: {xyz} after {verts[-1]} (vertices must strictly increase)", i)
            verts.append(xyz)
        elif line.startswith("f"):
            if not in_faces and len(verts) < 3:
                raise err(f"faces start after only {len(verts)} vertices (need at least 3)", i)
            in_faces = True
            m = _FLINE.fullmatch(line)
            if not m:
                raise err(f"malformed face line {line[:60]!r} (expected 'f A B C', 1-based)", i)
            a, b, c = (int(g) for g in m.groups())
            if max(a, b, c) > len(verts):
                raise err(f"face index {max(a, b, c)} out of range (only {len(verts)} vertices)", i)
            if len({a, b, c}) < 3:
                raise err(f"face repeats a vertex: {a} {b} {c}", i)
            if a != min(a, b, c):
                raise err(f"face does not start with its smallest index: {a} {b} {c}", i)
            key = tuple(sorted((a, b, c)))
            if prev_face is not None and key <= prev_face:
                what = "duplicate face" if key == prev_face else "faces out of order"
                raise err(
                    f"{what}: {a} {b} {c} (faces must strictly increase by sorted indices)", i
                )
            prev_face = key
        elif not line:
            raise err("empty line inside the mesh", i)
        else:
            raise err(f"not a vertex or face line: {line[:60]!r}", i)
    if not in_faces:
        raise err("no face lines", len(lines) - 1 if lines else 0)
