"""Does a mesh follow the prompt's attributes? Count and proportion judges on the mesh itself.

Every judge works on the mesh on its integer grid (a :class:`meshlm.codec.Mesh`: ``quantized``
``(n, 3) int64`` bins, y up, ``faces`` ``(m, 3)``), split into its *parts* by
:func:`meshlm.parts.split_parts` (pieces of faces joined through edges that exactly two faces
share: a table's top and each leg are separate closed boxes, so separate parts, even where they
touch). A part is judged by its axis-aligned bounding box in bins (``lo``, ``hi``, extent
``ext = hi - lo``). "On the ground": ``lo_y <= ground + tol`` with ``ground`` the mesh's lowest
bin and ``tol = 1 + 3 %`` of the mesh's height in bins. ``H`` is the mesh's height in bins.

Count judges (:data:`COUNT_JUDGES`; the caption words they check are those of
``meshlm/shapes``):

* **legs** (table, stool, chair, bench): parts on the ground, at least ``0.25 H`` tall, thin in
  both horizontal directions (``max(ext_x, ext_z) <= 0.6 ext_y``). A pedestal table's column
  counts as its one leg (its base plate is flat, not a leg); a bench on two side panels has 0
  legs (a panel is as deep as it is tall); stool legs are splayed tubes (still thin).
* **steps** (stairs): distinct heights of horizontal faces (all three corners in one bin row)
  above the ground: one tread a step, the top landing included.
* **shelves** (shelf): flat wide parts, boards: ``ext_y`` at most half of ``min(ext_x, ext_z)``
  and ``max(ext_x, ext_z)`` at least half the mesh's widest horizontal extent (side and back
  panels are upright, so not counted). Top and bottom boards count, as in the captions.
* **snowballs** (snowman): round parts: as tall as wide (``ext_y`` within 20 % of
  ``w = max(ext_x, ext_z)``), round from above (``min(ext_x, ext_z) >= 0.8 w``; a 6-sided ball is
  0.87), narrowing to the top (its top bin row at most ``0.6 w`` wide: a pole, where the hat's
  crown, a cylinder about as tall as wide, is flat) and at least 0.4 times as wide as the widest
  part (the nose is long and thin).
* **fins** (rocket): parts on the ground other than the tallest part (the body) and reaching
  no higher than ``0.6 H``.
* **wheels** (car): parts on the ground, round seen from the side (``ext_x`` within 35 % of
  ``ext_y``) and thinner across (``ext_z < ext_y``); the body rides above the ground.
* **windows** (house): parts thin front to back (``ext_z <= 0.5 min(ext_x, ext_y)``) not on the
  ground (the door is on it).

Each judge recovers the count of every procedural shape for every parameter value the
generators draw, at full detail and at ``max_segments=6`` (tests/test_attributes.py).
Attributes without a judge (a tower's floors, windows anywhere but on a house) are reported as
unjudged, not as wrong.

Proportions (:data:`PROPORTIONS`): a word moves one *extent ratio* of the normalized mesh (the
codec's normalization: bounding box centred, longest side scaled to 1; ratios of the grid
extents ``X``, ``Y`` (up), ``Z``, so independent of the scale):

* ``tall``: ``height = Y / max(X, Z)`` above the family's median; ``low`` and ``short``: below
  (``short`` means the length for bench and car, as their captions use it: ``length`` below);
* ``wide``: ``breadth = min(X, Z) / Y`` above the median (a wide table, box or tower is broad
  for its height);
* ``narrow``: ``slimness = min(X, Z) / max(X, Y, Z)`` below the median (a narrow table is
  shallow, a narrow cylinder or tower thin);
* ``long``: ``length = max(X, Z) / min(X, Z)`` (the footprint's aspect) above the median.

The median is over reference shapes of the family (:func:`reference_medians`: procedural
shapes drawn with a fixed seed). A reply is right when its ratio lies on the asked side of the
median (equal is wrong). :func:`pairwise` adds the judge that needs no reference: within a
family, every reply to a word against every reply to its opposite word (tall/low, tall/short,
wide/narrow, long/short): the right one has the larger (or smaller) ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import NamedTuple

import numpy as np

from meshlm.codec import Mesh, canonicalize
from meshlm.parts import split_parts
from meshlm.shapes import make_shape

#: attribute keys of a prompt row that mean the same count
ALIASES = {"balls": "snowballs", "snowball": "snowballs", "shelf": "shelves", "leg": "legs"}
REFERENCE_SEED = 1919  # reference shapes for the proportion medians
REFERENCE_SHAPES = 64  # per family


class PartBox(NamedTuple):
    """A part's bounding box on the grid: ``lo``, ``hi`` ``(3,) int64`` bins (x, y up, z), and
    ``top``: the horizontal width (larger of x and z extents, bins) of its vertices in its top
    bin row (0 for a single apex, the whole width for a flat top)."""

    lo: np.ndarray
    hi: np.ndarray
    top: int

    @property
    def ext(self) -> np.ndarray:
        """``(3,) int64`` extents in bins."""
        return self.hi - self.lo


def part_boxes(mesh: Mesh) -> list[PartBox]:
    """The :class:`PartBox` of every part of ``mesh`` (:func:`meshlm.parts.split_parts`), in
    the parts format's writing order."""
    q = np.asarray(mesh.quantized, dtype=np.int64)
    out = []
    for part in split_parts(q, mesh.faces):
        pq = q[part.vertices]
        lo, hi = pq.min(axis=0), pq.max(axis=0)
        top = pq[pq[:, 1] == hi[1]][:, [0, 2]]
        out.append(PartBox(lo, hi, int(np.ptp(top, axis=0).max())))
    return out


class _Frame(NamedTuple):
    ground: int  # the mesh's lowest bin (y)
    height: int  # its height in bins
    tol: float  # "on the ground" slack, bins
    boxes: list[PartBox]


def _frame(mesh: Mesh) -> _Frame:
    y = mesh.quantized[np.unique(mesh.faces), 1]
    ground, height = int(y.min()), int(y.max() - y.min())
    return _Frame(ground, height, 1 + 0.03 * height, part_boxes(mesh))


def _grounded(fr: _Frame) -> list[PartBox]:
    return [b for b in fr.boxes if b.lo[1] <= fr.ground + fr.tol]


def count_legs(mesh: Mesh) -> int:
    """Legs: tall thin parts standing on the ground (module docstring)."""
    fr = _frame(mesh)
    return sum(
        1
        for b in _grounded(fr)
        if b.ext[1] >= 0.25 * fr.height and max(b.ext[0], b.ext[2]) <= 0.6 * b.ext[1]
    )


def count_steps(mesh: Mesh) -> int:
    """Steps: distinct heights of horizontal faces above the ground."""
    q = np.asarray(mesh.quantized, dtype=np.int64)
    y = q[mesh.faces][:, :, 1]  # (m, 3) heights of each face's corners
    flat = (y[:, 0] == y[:, 1]) & (y[:, 1] == y[:, 2])
    ground = int(q[np.unique(mesh.faces), 1].min())
    return int(len(np.setdiff1d(np.unique(y[flat, 0]), [ground])))


def count_shelves(mesh: Mesh) -> int:
    """Shelves: flat boards at least half as wide as the mesh."""
    fr = _frame(mesh)
    widest = max(max(int(b.hi[0]) for b in fr.boxes) - min(int(b.lo[0]) for b in fr.boxes), 1)
    widest = max(widest, max(int(b.hi[2]) for b in fr.boxes) - min(int(b.lo[2]) for b in fr.boxes))
    return sum(
        1
        for b in fr.boxes
        if 2 * b.ext[1] <= min(b.ext[0], b.ext[2]) and 2 * max(b.ext[0], b.ext[2]) >= widest
    )


def count_snowballs(mesh: Mesh) -> int:
    """Snowballs: round parts narrowing to the top, at least 0.4 as wide as the widest."""
    boxes = _frame(mesh).boxes
    widest = max(max(b.ext[0], b.ext[2]) for b in boxes)
    return sum(
        1
        for b in boxes
        if abs(b.ext[1] - max(b.ext[0], b.ext[2])) <= 0.2 * max(b.ext[0], b.ext[2])
        and min(b.ext[0], b.ext[2]) >= 0.8 * max(b.ext[0], b.ext[2])
        and b.top <= 0.6 * max(b.ext[0], b.ext[2])
        and max(b.ext[0], b.ext[2]) >= 0.4 * widest
    )


def count_fins(mesh: Mesh) -> int:
    """Fins: parts on the ground, other than the tallest, reaching at most 0.6 of the height."""
    fr = _frame(mesh)
    tallest = max(range(len(fr.boxes)), key=lambda i: fr.boxes[i].ext[1])
    return sum(
        1
        for i, b in enumerate(fr.boxes)
        if i != tallest and b.lo[1] <= fr.ground + fr.tol and b.hi[1] - fr.ground <= 0.6 * fr.height
    )


def count_wheels(mesh: Mesh) -> int:
    """Wheels: parts on the ground, round from the side, thinner across."""
    fr = _frame(mesh)
    return sum(
        1
        for b in _grounded(fr)
        if abs(b.ext[0] - b.ext[1]) <= 0.35 * max(b.ext[0], b.ext[1]) and b.ext[2] < b.ext[1]
    )


def count_windows(mesh: Mesh) -> int:
    """Windows: parts thin front to back, off the ground."""
    fr = _frame(mesh)
    return sum(
        1
        for b in fr.boxes
        if b.lo[1] > fr.ground + fr.tol and 2 * b.ext[2] <= min(b.ext[0], b.ext[1])
    )


#: attribute -> (the families whose captions carry it, its judge)
COUNT_JUDGES: dict[str, tuple[frozenset[str], Callable[[Mesh], int]]] = {
    "legs": (frozenset({"table", "stool", "chair", "bench"}), count_legs),
    "steps": (frozenset({"stairs"}), count_steps),
    "shelves": (frozenset({"shelf"}), count_shelves),
    "snowballs": (frozenset({"snowman"}), count_snowballs),
    "fins": (frozenset({"rocket"}), count_fins),
    "wheels": (frozenset({"car"}), count_wheels),
    "windows": (frozenset({"house"}), count_windows),
}

#: the shape parameter that holds each count in ``meshlm.shapes`` (``ShapeSample.params``)
PARAM_OF = {"snowballs": "balls"}


def count_judge(family: str, attribute: str) -> Callable[[Mesh], int] | None:
    """The judge of ``attribute`` (aliases allowed) for ``family``, or None when there is none."""
    families, judge = COUNT_JUDGES.get(ALIASES.get(attribute, attribute), (frozenset(), None))
    return judge if family in families else None


# --------------------------------------------------------------------------------------------
# Proportions
# --------------------------------------------------------------------------------------------

#: word -> (ratio, +1: the word raises it, -1: lowers it); ``short`` for bench/car: SHORT_LENGTH
PROPORTIONS: dict[str, tuple[str, int]] = {
    "tall": ("height", +1),
    "low": ("height", -1),
    "short": ("height", -1),
    "wide": ("breadth", +1),
    "narrow": ("slimness", -1),
    "long": ("length", +1),
}
SHORT_LENGTH = frozenset({"bench", "car"})  # families whose captions call a short length short
OPPOSITES = (("tall", "low"), ("tall", "short"), ("wide", "narrow"), ("long", "short"))


def proportion_rule(family: str, word: str) -> tuple[str, int]:
    """(ratio name, direction) of a proportion ``word`` for ``family``; KeyError if unknown."""
    if word == "short" and family in SHORT_LENGTH:
        return ("length", -1)
    return PROPORTIONS[word]


def extent_ratios(mesh: Mesh) -> dict[str, float]:
    """The four extent ratios of the module docstring, from the grid extents of the vertices
    the faces use. A zero denominator (a flat mesh) gives ``inf``."""
    q = np.asarray(mesh.quantized, dtype=np.float64)[np.unique(mesh.faces)]
    x, y, z = (q.max(axis=0) - q.min(axis=0)).tolist()

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("inf")

    return {
        "height": ratio(y, max(x, z)),
        "breadth": ratio(min(x, z), y),
        "slimness": ratio(min(x, z), max(x, y, z)),
        "length": ratio(max(x, z), min(x, z)),
    }


@cache
def reference_medians(
    family: str, n: int = REFERENCE_SHAPES, seed: int = REFERENCE_SEED
) -> dict[str, float]:
    """Median of each extent ratio over ``n`` procedural shapes of ``family`` (seeds
    ``seed .. seed + n - 1``, full detail: extents barely depend on the sides of revolved parts),
    quantized at 64 bins. Needs the ``mesh`` extra."""

    rows = []
    for k in range(n):
        s = make_shape(family, seed + k)
        rows.append(extent_ratios(canonicalize(s.vertices, s.faces)))
    return {key: float(np.median([r[key] for r in rows])) for key in rows[0]}


def judge_proportion(mesh: Mesh, family: str, word: str) -> dict:
    """``{"ratio", "value", "median", "ok"}`` for one proportion word (module docstring)."""
    name, sign = proportion_rule(family, word)
    value = extent_ratios(mesh)[name]
    median = reference_medians(family)[name]
    ok = bool(sign * (value - median) > 0)
    return {"ratio": name, "value": value, "median": median, "ok": ok}


def pairwise(items: Sequence[dict]) -> dict:
    """Pairs of replies to opposite words within a family. ``items``: dicts with ``family``,
    ``word`` and ``ratios`` (:func:`extent_ratios`, None for no mesh). Returns
    ``{"pairs", "correct", "accuracy", "rows"}``; a pair with a missing mesh is wrong."""
    rows = []
    for a_word, b_word in OPPOSITES:
        for a in items:
            for b in items:
                if (a["word"], b["word"]) != (a_word, b_word) or a["family"] != b["family"]:
                    continue
                name, sign = proportion_rule(a["family"], a_word)
                if proportion_rule(b["family"], b_word) != (name, -sign):
                    continue  # e.g. "tall" against a bench's "short" (its length)
                ok = bool(
                    a["ratios"] is not None
                    and b["ratios"] is not None
                    and sign * (a["ratios"][name] - b["ratios"][name]) > 0
                )
                rows.append({"family": a["family"], "a": a["i"], "b": b["i"], "ok": ok})
    correct = sum(r["ok"] for r in rows)
    acc = correct / len(rows) if rows else None
    return {"pairs": len(rows), "correct": correct, "accuracy": acc, "rows": rows}
