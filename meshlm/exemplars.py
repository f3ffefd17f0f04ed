"""Exemplars: a few training meshes per family, shown to a parts model before it writes one.

A small model on a CPU budget learns to *name* the family a request asks for (the plan line,
:mod:`meshlm.plan`) and to *copy* text it is shown (94 % of copied coordinates teacher-forced),
but not where a family's parts go (docs/parts-model.md). Exemplar-conditioned writing gives it
the layout: the request's user turn is preceded by one training mesh of the family its plan
named, and the model is trained to write the *requested* variant -- the parts kept, the numbers
the request's attributes move changed (retrieval-augmented generation; cf. Phidias, arXiv
2409.11406, reference-augmented 3D generation). The reply stays a plan line and plain OBJ text.

An :class:`ExemplarBank` holds up to ``per_family`` meshes a family, drawn from a ``parts``
dataset's training replies (:meth:`ExemplarBank.from_rows`); it travels in the model folder as
:data:`FILE` so inference shows the very meshes training showed. :meth:`ExemplarBank.choose`
picks the exemplar whose request shares the most words with the new one (training uses the
same rule, never a row's own mesh); :func:`with_exemplar` owns the wording of the user turn.
Only json and string work here: the codec layer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from meshlm.errors import MeshlmError
from meshlm.plan import parse_plan

FILE = "exemplars.json"
SCHEMA_VERSION = 1
_WORD = re.compile(r"[a-z0-9]+")
# request words that say nothing about the shape (how people ask, not what for)
_FILLER = frozenset(
    "a an the of with and in as to for me my please could can you would will create make "
    "generate give build write draw show produce model mesh obj file format text 3d more "
    "next i want need like some it is that this on its by here there now also then another "
    "poly lowpoly shape object simple".split()
)


@dataclass(frozen=True)
class Exemplar:
    """One bank entry. ``family``: as :mod:`meshlm.shapes` spells it; ``request``: the user turn
    of the training row it came from; ``source``: that row's ``source`` (e.g.
    ``procedural:table_0_000123``); ``text``: its parts-format mesh text (the reply from its
    first ``v`` line, no trailing newline)."""

    family: str
    request: str
    source: str
    text: str


def single_request(row: dict) -> bool:
    """Whether a dataset row is one request and its reply (a system turn aside): the rows an
    exemplar is shown in (a follow-up such as "the same, turned 90 degrees" is not one)."""
    turns = [m.get("role") for m in row.get("messages", []) if m.get("role") != "system"]
    return turns == ["user", "assistant"]


def mesh_text(reply: str) -> str:
    """The mesh of a reply: from its first ``v`` line on ('' when it has none)."""
    if reply.startswith("v "):
        return reply.rstrip("\n")
    i = reply.find("\nv ")
    return reply[i + 1 :].rstrip("\n") if i >= 0 else ""


_NUMBER = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}


def _stem(word: str) -> str:
    """One spelling for a word's forms that name the same thing: number words as digits
    ("three" -> "3"), plurals singular ("legs" -> "leg", "shelves" -> "shelf", "boxes" ->
    "box"), adjectives of a noun bare ("legged" -> "leg", "tiered" -> "tier", "finned" ->
    "fin")."""
    if word in _NUMBER:
        return _NUMBER[word]
    if len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
        return word[:-1] if word[-1] == word[-2] else word
    if len(word) > 4 and word.endswith("ves"):
        return word[:-3] + "f"  # shelves -> shelf
    if word.endswith(("xes", "ches", "shes", "sses")):
        return word[:-2]  # boxes -> box
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> frozenset[str]:
    """The words of a request that may describe a shape (lower case, fillers dropped, each in
    one spelling: :func:`_stem`; "low poly" is a style, "low" alone a proportion)."""
    t = text.lower().replace("low poly", " ").replace("low-poly", " ")
    return frozenset(_stem(w) for w in _WORD.findall(t) if w not in _FILLER)


def _split(text: str) -> tuple[list[str], list[int]]:
    """A parts mesh text's face lines and its coordinates (every vertex line's values in order)."""
    faces: list[str] = []
    coords: list[int] = []
    for line in text.split("\n"):
        if line.startswith("f "):
            faces.append(line)
        elif line.startswith("v "):
            coords += [int(v) for v in line.split()[1:]]
    return faces, coords


def with_exemplar(request: str, exemplar: Exemplar) -> str:
    """The user turn that shows ``exemplar`` before ``request``::

    For reference, a table:
    v 4 0 4
    ...

    <request>
    """
    name = exemplar.family.replace("_", " ")
    return f"For reference, a {name}:\n{exemplar.text}\n\n{request}"


_SHOWN = re.compile(r"For reference, an? [a-z ]+:\n(v .*?)\n\n", re.S)


def shown_mesh(turn: str) -> str | None:
    """The exemplar's mesh text in a user turn :func:`with_exemplar` wrote (None in any other
    turn)."""
    m = _SHOWN.match(turn)
    return m.group(1) if m else None


def shows_exemplar(text: str) -> bool:
    """Does ``text`` (a user turn, or a whole conversation as its tokens spell it) hold an
    exemplar that :func:`with_exemplar` wrote, anywhere in it?"""
    return _SHOWN.search(text) is not None


def without_exemplar(turn: str) -> str:
    """The request in a user turn :func:`with_exemplar` wrote (any other turn as it is)."""
    m = _SHOWN.match(turn)
    return turn[m.end() :] if m else turn


class ExemplarBank:
    """Exemplars by family (each family's list in bank order). ``bins``: the grid of their
    text; ``source``: where they were drawn from (recorded in :data:`FILE`)."""

    def __init__(self, exemplars: Iterable[Exemplar], bins: int, source: dict | None = None):
        self.by_family: dict[str, list[Exemplar]] = {}
        for e in exemplars:
            self.by_family.setdefault(e.family, []).append(e)
        self.bins = bins
        self.source = dict(source or {})
        # each exemplar's request words, worked out once: choose() scores a whole family a call
        self._words = {f: [words(e.request) for e in v] for f, v in self.by_family.items()}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_family.values())

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[dict],
        per_family: int,
        bins: int,
        seed: int = 0,
        source=None,
        shortest_half: bool = True,
    ) -> ExemplarBank:
        """The bank of ``parts`` training rows (dicts with ``messages``, ``task``, ``source``):
        per family (its reply's plan line), of the rows that are one request and its reply
        (:func:`single_request`), ``per_family`` distinct meshes drawn at random (``seed``;
        0: every one) among those no longer than the family's median mesh text when
        ``shortest_half`` (short exemplars leave the context room for the reply). The more a
        family has, the nearer the one chosen for a request is to what it asks (a full bank's
        choice for a training request has the same part templates as the request's own mesh
        83 % of the time, 8 a family's 57 %; docs/parts-model.md). Rows without a plan
        line are skipped."""
        if per_family < 0:
            raise MeshlmError(f"per_family must be >= 0 (0: every mesh), got {per_family}")
        pool: dict[str, dict[str, Exemplar]] = {}
        for row in rows:
            if row.get("task") != "generation" or not single_request(row):
                continue
            reply = row["messages"][-1]["content"]
            plan, text = parse_plan(reply), mesh_text(reply)
            if plan is None or not text:
                continue
            request = row["messages"][-2]["content"]
            fam = pool.setdefault(plan.family, {})
            fam.setdefault(text, Exemplar(plan.family, request, str(row.get("source", "")), text))
        rng = random.Random(seed)
        chosen: list[Exemplar] = []
        for family in sorted(pool):
            cands = list(pool[family].values())
            if shortest_half:
                lengths = sorted(len(e.text) for e in cands)
                median = lengths[(len(lengths) - 1) // 2]
                cands = [e for e in cands if len(e.text) <= median]
            rng.shuffle(cands)
            chosen += cands[: per_family or None]
        src = {"per_family": per_family, "seed": seed, "shortest_half": shortest_half}
        src.update(source or {})
        return cls(chosen, bins, src)

    def choose(self, family: str, request: str, avoid: str | None = None) -> Exemplar | None:
        """The exemplar of ``family`` whose request shares the most words with ``request``
        (Jaccard over :func:`words`; ties: bank order), never one whose mesh text is ``avoid``
        (a training row's own mesh). None for a family the bank lacks."""
        want = words(request)
        best, best_score = None, -1.0
        for e, have in zip(
            self.by_family.get(family, []), self._words.get(family, []), strict=True
        ):
            if avoid is not None and e.text == avoid:
                continue
            union = want | have
            score = len(want & have) / len(union) if union else 0.0
            if score > best_score:
                best, best_score = e, score
        return best

    def nearest(self, family: str, text: str, avoid: str | None = None) -> Exemplar | None:
        """The exemplar of ``family`` with the same face lines as the mesh ``text`` (parts
        text) whose coordinates agree with it most: the most values equal position by position,
        then the least summed difference in bins (ties: bank order); never one whose text is
        ``avoid``. None when no exemplar of the family has the same face lines. Training rows
        shown such an exemplar learn the copy (72 % of its coordinates are the reply's own in
        data/smol-parts16r, against 41 % for :meth:`choose`'s, docs/parts-model.md)."""
        faces, coords = _split(text)
        best, best_key = None, None
        for e in self.by_family.get(family, []):
            if avoid is not None and e.text == avoid:
                continue
            e_faces, e_coords = _split(e.text)
            if e_faces != faces:
                continue
            same = sum(a == b for a, b in zip(e_coords, coords, strict=True))
            gap = sum(abs(a - b) for a, b in zip(e_coords, coords, strict=True))
            key = (-same, gap)
            if best_key is None or key < best_key:
                best, best_key = e, key
        return best

    # -- the file ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "format": {"name": "parts", "bins": self.bins},
            "source": self.source,
            "exemplars": [
                {"family": e.family, "request": e.request, "source": e.source, "text": e.text}
                for fam in sorted(self.by_family)
                for e in self.by_family[fam]
            ],
        }

    def _text(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/exemplars.json``; returns its path."""
        path = Path(folder) / FILE
        path.write_text(self._text() + "\n", encoding="utf-8")
        return path

    def sha256(self) -> str:
        """Hash of the bank's file content, less its final newline (what a dataset manifest
        records)."""
        return hashlib.sha256(self._text().encode()).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> ExemplarBank:
        """Read a bank file. Raises MeshlmError naming the file and the problem."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA_VERSION or data["format"]["name"] != "parts":
                raise ValueError(f"schema {data.get('schema')!r} / format {data['format']!r}")
            ex = []
            for e in data["exemplars"]:
                item = Exemplar(str(e["family"]), str(e["request"]), str(e["source"]), e["text"])
                if not isinstance(item.text, str) or not item.text.startswith("v "):
                    raise ValueError(f"exemplar {item.source!r}: its text is not a mesh")
                ex.append(item)
            return cls(ex, int(data["format"]["bins"]), data.get("source"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MeshlmError(f"{path}: not an exemplar bank ({exc})") from None


def read(folder: str | Path) -> ExemplarBank | None:
    """The bank in a model folder (``folder/exemplars.json``), None without one."""
    path = Path(folder) / FILE
    return ExemplarBank.load(path) if path.is_file() else None
