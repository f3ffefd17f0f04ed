"""The plan line: what a reply is about to draw, said in words before its mesh (issue 19).

``build-data --plan`` ends every lead-in of a mesh answer with one line naming the shape family
and the number of parts of the parts-format text that follows::

    Here's a low-poly mesh of a wide shelving unit with three shelves:
    Plan: shelf, 6 parts.

    v 0 1 45
    ...

With ``build-data --plan-boxes`` the plan line is followed by one line per part, in the
mesh's part order, giving the part's bounding box in bins (its minimum corner, then its maximum
corner)::

    Plan: table, 5 parts.
    Part 1: 4 0 4 to 8 30 8.
    ...

so where each part goes is said in six numbers on one line, before the part's 24-odd
coordinates are written (a box's vertices then repeat those six values).

The lines are outside the mesh text (any OBJ reader, and :func:`meshlm.meshtext` decoders, start
at the first ``v`` line), so the answer stays a LLaMA-Mesh-style reply. Its purpose is to split
following a request into two steps a small pretrained LM learns apart: naming the family from
free wording (language, which the base model has), then drawing a family it has just named (one
canonical phrase per family, instead of every wording of the request). This module owns the
line's wording: the data builder writes it with :func:`plan_line`, evaluation reads it back
with :func:`parse_plan`. Only numpy-free string work here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLAN = re.compile(r"^Plan: ([a-z][a-z ]*[a-z]), ([1-9]\d*) parts?\.$", re.MULTILINE)
_BOX = re.compile(r"Part ([1-9]\d*): (\d+) (\d+) (\d+) to (\d+) (\d+) (\d+)\.")
_BOX_LINES = re.compile(f"^{_BOX.pattern}$", re.MULTILINE)

Box = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class Plan:
    """A parsed plan line. ``family``: a shape family name as :mod:`meshlm.shapes` spells it
    (``wine_glass``); ``parts``: the number of parts announced (>= 1)."""

    family: str
    parts: int
    boxes: tuple[Box, ...] = ()
    """Bounding boxes of parts 1, 2, ... as ``(x0, y0, z0, x1, y1, z1)`` in bins (min corner,
    max corner; ``--plan-boxes``): the numbered part lines right after the plan line, as many
    as run on in order (at most ``parts``; empty without them)."""


def plan_line(family: str, parts: int) -> str:
    """The plan line for ``parts`` parts of ``family`` (underscores read as spaces:
    ``"Plan: wine glass, 1 part."``). Raises ValueError for a count below 1 or a name that is
    not lower-case letters and underscores."""
    if parts < 1:
        raise ValueError(f"a plan needs at least one part, got {parts}")
    words = family.replace("_", " ")
    if not re.fullmatch(r"[a-z][a-z ]*[a-z]", words):
        raise ValueError(f"not a family name for a plan line: {family!r}")
    return f"Plan: {words}, {parts} part{'s' if parts != 1 else ''}."


def box_line(k: int, box: Box) -> str:
    """The plan's line for part ``k`` (1-based) with bounding box ``box`` (bins, min corner
    then max corner): ``"Part 2: 4 0 4 to 8 30 8."``."""
    lo, hi = " ".join(map(str, box[:3])), " ".join(map(str, box[3:]))
    return f"Part {k}: {lo} to {hi}."


def plan_text(family: str, parts_text: str, boxes: bool = False) -> str:
    """The plan for the parts-format mesh text ``parts_text`` of ``family``: the plan line with
    its part count (:func:`count_parts`), then with ``boxes`` one :func:`box_line` per part
    (:func:`part_boxes`). Raises ValueError as :func:`plan_line` does."""
    lines = [plan_line(family, count_parts(parts_text))]
    if boxes:
        lines += [box_line(k, b) for k, b in enumerate(part_boxes(parts_text), 1)]
    return "\n".join(lines)


def parse_plan(lead_in: str) -> Plan | None:
    """The last plan line in a reply's text before its mesh, with the part lines that follow
    it, or None when there is none. ``lead_in`` may be the whole reply: lines from the first
    ``v`` line on are not read. Part lines are read while numbered 1, 2, ... one per line, with
    no maximum below its minimum, up to the plan's count (the rest is ignored)."""
    head = lead_in.split("\nv ", 1)[0] if not lead_in.startswith("v ") else ""
    found = list(_PLAN.finditer(head))
    if not found:
        return None
    last = found[-1]
    n = int(last.group(2))
    boxes: list[Box] = []
    for line in head[last.end() :].split("\n")[1 : n + 1]:
        m = _BOX.fullmatch(line)
        if m is None or int(m.group(1)) != len(boxes) + 1:
            break
        box = tuple(int(g) for g in m.groups()[1:])
        if any(box[a] > box[a + 3] for a in range(3)):
            break
        boxes.append(box)  # type: ignore[arg-type]
    return Plan(last.group(1).replace(" ", "_"), n, tuple(boxes))


def with_parts(lead_in: str, parts: int) -> str | None:
    """``lead_in`` through its last plan line, that line's part count replaced by ``parts``
    (the lines before it kept as they are, what follows it dropped), ending in a newline; None
    when it has no plan line. Raises ValueError as :func:`plan_line` does."""
    lines = lead_in.split("\n")
    found = [(i, m) for i, line in enumerate(lines) if (m := _PLAN.fullmatch(line))]
    if not found:
        return None
    at, m = found[-1]
    return "\n".join([*lines[:at], plan_line(m.group(1).replace(" ", "_"), parts), ""])


def box_number_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the six numbers of every part line in ``text``
    (the plan's layout, which training weighs as a mesh's new values: meshlm.train.mesh_loss)."""
    out = []
    for m in _BOX_LINES.finditer(text):
        out += [m.span(g) for g in range(2, 8)]
    return out


def part_vertices(parts_text: str) -> list[list[tuple[int, int, int]]]:
    """Each part's vertex coordinates (bins) of a parts-format mesh text (docs/format.md): each
    part is its ``v`` lines then its ``f`` lines, so a part begins at the first ``v`` line and
    at each one after ``f`` lines (the rule of :func:`meshlm.part_templates.split_text`; other
    lines are skipped; a ``v`` line without three integers begins a part like any other but
    adds no vertex to it: counting parts of a model's reply must not fail on one bad line)."""
    parts: list[list[tuple[int, int, int]]] = []
    in_faces = True
    for line in parts_text.split("\n"):
        if line.startswith("v "):
            if in_faces:
                parts.append([])
            in_faces = False
            nums = line.split()[1:]
            if len(nums) == 3 and all(t.isdigit() for t in nums):
                parts[-1].append((int(nums[0]), int(nums[1]), int(nums[2])))
        elif line.startswith("f "):
            in_faces = True
    return parts


def count_parts(parts_text: str) -> int:
    """Parts of a parts-format mesh text (:func:`part_vertices`'s rule)."""
    return len(part_vertices(parts_text))


def part_boxes(parts_text: str) -> list[Box]:
    """Each part's bounding box ``(x0, y0, z0, x1, y1, z1)`` in bins (:func:`part_vertices`).
    Raises ValueError when a part has no readable vertex line."""
    out = []
    for k, verts in enumerate(part_vertices(parts_text), 1):
        if not verts:
            raise ValueError(f"part {k} has no vertex line with three bin numbers")
        lo = tuple(min(v[a] for v in verts) for a in range(3))
        hi = tuple(max(v[a] for v in verts) for a in range(3))
        out.append(lo + hi)
    return out
