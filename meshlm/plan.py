"""The plan line: what a reply is about to draw, said in words before its mesh (issue 19).

``build-data --plan`` ends every lead-in of a mesh answer with one line naming the shape family
and the number of parts of the parts-format text that follows::

    Here's a low-poly mesh of a wide shelving unit with three shelves:
    Plan: shelf, 6 parts.

    v 0 1 45
    ...

The line is outside the mesh text (any OBJ reader, and :func:`meshlm.meshtext` decoders, start
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


@dataclass(frozen=True)
class Plan:
    """A parsed plan line. ``family``: a shape family name as :mod:`meshlm.shapes` spells it
    (``wine_glass``); ``parts``: the number of parts announced (>= 1)."""

    family: str
    parts: int


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


def parse_plan(lead_in: str) -> Plan | None:
    """The last plan line in a reply's text before its mesh, or None when there is none.
    ``lead_in`` may be the whole reply: lines from the first ``v`` line on are not read."""
    head = lead_in.split("\nv ", 1)[0] if not lead_in.startswith("v ") else ""
    found = _PLAN.findall(head)
    if not found:
        return None
    words, n = found[-1]
    return Plan(words.replace(" ", "_"), int(n))


def count_parts(parts_text: str) -> int:
    """Parts of a parts-format mesh text (docs/format.md): each part is its ``v`` lines then its
    ``f`` lines, so a part begins at the first ``v`` line and at each one after ``f`` lines
    (the rule of :func:`meshlm.part_templates.split_text`; other lines are skipped)."""
    n, in_faces = 0, True
    for line in parts_text.split("\n"):
        if line.startswith("v "):
            n += in_faces
            in_faces = False
        elif line.startswith("f "):
            in_faces = True
    return n
