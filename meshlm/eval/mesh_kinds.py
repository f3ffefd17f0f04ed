"""Which item of a mesh text each character offset starts: a coordinate copied or new within
its part, a face line and each of its indices, a part start, a face line's end where the part
goes on, a part's end where the mesh goes on or stops (:func:`mesh_token_kinds`); and, beside an
exemplar with the same face lines, a coordinate kept as shown or moved (:func:`shown_kinds`).

A *copied* coordinate is a value already written on the same axis earlier in the same part (a
box's eight corners use two values per axis, so 18 of its 24 coordinates are copies); a *new*
one carries the shape. Two stages need the same split: teacher-forced accuracy by kind
(:mod:`meshlm.eval.teacher_forced`) and the training loss that weighs new values more
(``mesh_new_weight``, :mod:`meshlm.train.mesh_loss`). A part is a run of vertex lines and the
face lines after it (the parts format, :mod:`meshlm.parts`); a LLaMA-Mesh text is one part; any
other line (prose, a turn's end) ends the mesh. Pure Python (``re`` alone).
"""

from __future__ import annotations

import re

_VALUE = re.compile(r"-?\d+")
_FACE = re.compile(r"f(?: -?\d+)+[ \t]*")

#: The kinds :func:`mesh_token_kinds` assigns.
KINDS = (
    "coord copy",
    "coord new",
    "face line",
    "face index",
    "part start",
    "face end: more",
    "part end: more",
    "part end: stop",
)
#: The kinds :func:`shown_kinds` assigns.
SHOWN_KINDS = ("coord as shown", "coord moved")


def mesh_token_kinds(
    text: str, start: int = 0, earlier: dict[int, frozenset[str]] | None = None
) -> dict[int, str]:
    """Character offsets in ``text`` -> kind, for the mesh text from offset ``start`` on.

    A coordinate's and a face index's offset is that of the space before it (space-led number
    tokens start there); a face line's and a part start's, that of the line's first letter
    (a face line's indices are ``face index``: templates in the parts text, ``-3 -2 -1`` again
    and again; absolute and shape-dependent in the LLaMA-Mesh text). A part's last
    face line has a second offset, right after its last number: the newline before the next
    part (``part end: more``) or what ends the mesh, a turn's end or a newline before prose
    (``part end: stop``) -- the decision to go on or stop; every other face line has one too,
    right after its last number: the newline before the part's next face line (``face end:
    more``, the same decision, taken the other way). Lines other than
    ``v``/``f`` lines get no kind and end the mesh (the next ``v`` line starts afresh); a
    value is read up to its last digit (``3<|im_end|>`` is 3). Returns a dict
    ``{offset: kind}`` with kinds from :data:`KINDS`. If ``earlier`` is given, it is filled
    with each coordinate's offset -> the values written on its axis earlier in its part.
    """
    kinds: dict[int, str] = {}
    seen: list[set[str]] = [set(), set(), set()]
    after_faces = False
    face_end = -1  # where the last face line's numbers end, until the next line is read
    pos = start
    for line in text[start:].split("\n"):
        if face_end >= 0:
            if line.startswith("f "):
                kinds[face_end] = "face end: more"
            else:
                kinds[face_end] = "part end: more" if line.startswith("v ") else "part end: stop"
            face_end = -1
        if line.startswith("v "):
            if after_faces:  # a new part: its coordinates start afresh
                seen = [set(), set(), set()]
                kinds[pos] = "part start"
            c = pos + 1
            for axis, word in enumerate(line[2:].split(" ")[:3]):
                m = _VALUE.match(word)
                value = m.group() if m else word
                kinds[c] = "coord copy" if value in seen[axis] else "coord new"
                if earlier is not None:
                    earlier[c] = frozenset(seen[axis])
                seen[axis].add(value)
                c += 1 + len(word)
            after_faces = False
        elif line.startswith("f "):
            kinds[pos] = "face line"
            after_faces = True
            c = pos + 1
            for word in line[2:].split(" "):
                if word:
                    kinds[c] = "face index"
                c += 1 + len(word)
            m = _FACE.match(line)
            face_end = pos + (m.end() if m else len(line))
        else:  # prose or a turn's end: a later mesh starts afresh
            seen, after_faces = [set(), set(), set()], False
        pos += len(line) + 1
    if face_end >= 0:  # the text ends with a face line
        kinds[face_end] = "part end: stop"
    return kinds


def repeat_completions(text: str, start: int = 0) -> dict[int, frozenset[str]]:
    """Character offsets of vertex lines' last coordinates in ``text`` (from ``start`` on) ->
    the values that, written there, would repeat an earlier vertex line of the same part.

    A part's vertices are distinct points (strict decoding refuses a vertex line written twice
    within a part: "duplicate vertex", :mod:`meshlm.parts`), so once a line's first two values
    equal those of an earlier line of its part, the earlier line's last value is the one choice
    that breaks the mesh -- the commonest strict failure of greedy replies
    (docs/parts-model.md). Offsets as in :func:`mesh_token_kinds` (the space before the value);
    parts and the mesh's end are read the same way. Only offsets with at least one such value
    are returned; values are spelled as written (``"7"``)."""
    out: dict[int, frozenset[str]] = {}
    heads: dict[tuple[str, str], set[str]] = {}
    after_faces = False
    pos = start
    for line in text[start:].split("\n"):
        if line.startswith("v "):
            if after_faces:
                heads, after_faces = {}, False
            words = line[2:].split(" ")
            if len(words) >= 3:
                values = [(m.group() if (m := _VALUE.match(w)) else w) for w in words[:3]]
                key = (values[0], values[1])
                if key in heads:
                    out[pos + 3 + len(words[0]) + len(words[1])] = frozenset(heads[key])
                heads.setdefault(key, set()).add(values[2])
        elif line.startswith("f "):
            after_faces = True
        else:
            heads, after_faces = {}, False
        pos += len(line) + 1
    return out


def shown_kinds(text: str, start: int, shown: str) -> dict[int, str]:
    """Character offsets of the coordinates of the mesh text in ``text`` from ``start`` on ->
    ``coord as shown`` (the value the exemplar mesh ``shown`` has at the same place: same
    vertex line, same axis) or ``coord moved``; offsets and values read as in
    :func:`mesh_token_kinds` (the mesh starts at the first ``v`` line from ``start`` -- a plan
    line or prose before it is passed over -- and ends at the next other line; ``f -3 -2
    -1<|im_end|>`` is its last face line). Empty unless the two meshes have the same face
    lines in the same order (then their vertex lines pair up one to one): a reply with another
    layout has no place to compare."""

    def faces(lines: list[str]) -> list[str]:
        return [m.group().rstrip() for x in lines if (m := _FACE.match(x))]

    mesh: list[str] = []
    if not text.startswith("v ", start):
        found = text.find("\nv ", start)
        start = found + 1 if found >= 0 else len(text)
    for line in text[start:].split("\n"):
        if not line.startswith(("v ", "f ")):
            break
        mesh.append(line)
    ref = [x for x in shown.split("\n") if x.startswith(("v ", "f "))]
    if faces(mesh) != faces(ref):
        return {}
    ref_values = iter(x.split(" ")[1:4] for x in ref if x[0] == "v")
    kinds: dict[int, str] = {}
    pos = start
    for line in mesh:
        if line[0] == "v":
            c = pos + 1
            for word, want in zip(line[2:].split(" ")[:3], next(ref_values), strict=False):
                m = _VALUE.match(word)
                kinds[c] = "coord as shown" if (m.group() if m else word) == want else "coord moved"
                c += 1 + len(word)
        pos += len(line) + 1
    return kinds
