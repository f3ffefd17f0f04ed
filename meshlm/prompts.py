"""What people and models say around a mesh: request phrasing, mesh questions, intent, and the
shape-family vocabulary.

One home for the wording that several stages must agree on -- the dataset builder writes
training conversations with it, the engine and the web demo phrase requests with it, the
evaluation asks and judges with it:

* :data:`REQUEST` / :func:`as_request`: a bare description ("a red chair") becomes the request
  the training data asks most ("Create a 3D model of a red chair.");
* :data:`QUESTION` / :func:`mesh_question`: a user turn that shows a mesh and asks what it is;
* :func:`wants_mesh`: whether a typed prompt asks for a mesh or is a question or a greeting;
* :func:`mesh_start`: where the mesh of a reply begins (after a lead-in);
* :func:`tokenize`, :func:`normalize_family`, :func:`find_family`, :data:`DEFAULT_SYNONYMS`,
  :func:`family_names`, :func:`requested_family`: which procedural shape family a text names
  (the names come from :mod:`meshlm.shapes`).

Layer (docs/architecture.md): above :mod:`meshlm.meshtext` (a :class:`~meshlm.codec.Mesh` is
shown in the model's text format) and :mod:`meshlm.shapes` (the family names); below infer,
eval, data, web and the CLI, which import these from here. Not numpy-free for that reason
(both need numpy); the functions themselves work on strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from meshlm import meshtext
from meshlm.codec import Mesh
from meshlm.errors import MeshlmError
from meshlm.shapes import list_families

#: The request the training data asks most (first of ``meshlm.data.templates``'s requests);
#: ``{obj}`` is the object as a noun phrase. LLaMA-Mesh's demo asks the same way.
REQUEST = "Create a 3D model of {obj}."
#: The question the training data asks most about a shown mesh.
QUESTION = "What is this 3D object?"

_REQUEST = re.compile(
    r"^\s*(create|generate|make|model|build|design|produce|give|draw|sculpt|write|output|"
    r"construct|render|show|can|could|would|please|i\b|i'd|what|describe|turn)",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"^\s*(what|who|why|how|when|where|which|is|are|do|does|did|hi|hello|hey|thanks|thank)\b",
    re.IGNORECASE,
)
_MESH_LINE = re.compile(r"(?m)^v ")


def as_request(prompt: str) -> str:
    """A bare description ("a red chair") becomes a request the way the training data asks it
    (:data:`REQUEST`); anything already phrased as a request or question is left alone. Raises
    :class:`~meshlm.errors.MeshlmError` for an empty prompt."""
    p = prompt.strip()
    if not p:
        raise MeshlmError("empty prompt")
    if _REQUEST.match(p) or p.endswith("?"):
        return p
    return REQUEST.format(obj=p.rstrip("."))


def wants_mesh(prompt: str) -> bool:
    """Whether a typed prompt (without an attached mesh) asks for a mesh: anything but a question
    or a greeting ("what is ...", "... ?", "hello")."""
    p = prompt.strip()
    return bool(p) and not (p.endswith("?") or _QUESTION.match(p))


def mesh_question(
    mesh: Mesh | str, question: str | None = None, after: bool = False, fmt: str = "llama-mesh"
) -> str:
    """A user turn that shows a mesh and asks about it (the mesh text after the question, or
    before it with ``after=True``: people paste a file, then ask). A :class:`Mesh` is written in
    mesh format ``fmt`` (the model's: ``engine.mesh_format.name``); text is shown as given.
    ``question`` defaults to :data:`QUESTION`."""
    text = mesh if isinstance(mesh, str) else meshtext.write(mesh, fmt)
    q = question or QUESTION
    return f"{text}\n{q}" if after else f"{q}\n{text}"


def mesh_start(text: str) -> int:
    """Offset of the first line that starts a mesh (``v ...``) in a reply; 0 if none."""
    m = _MESH_LINE.search(text)
    return m.start() if m else 0


# --------------------------------------------------------------------------------------------
# The shape-family vocabulary
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")

#: Extra phrases that name a shape family (meshlm's procedural families); used by
#: :func:`find_family` for the families present in its ``families`` argument. They cover every
#: noun meshlm's own captions use (tests/test_metrics.py checks that each family's captions name
#: it): a model that answers with the caption it learnt must be judged right. Phrases that
#: start where a shorter one does win ("coffee cup" -> mug, "glass bottle" -> bottle).
DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "arch": ("archway",),
    "axe": ("hatchet",),
    "barrel": ("cask",),
    "bottle": ("glass bottle",),
    "cactus": ("column cactus", "single column"),
    "box": ("cube", "crate", "cuboid", "block", "slab"),
    "capsule": ("pill", "pill shape", "rounded rod"),
    "car": ("automobile", "pickup", "pickup truck", "truck", "van", "minivan", "sedan"),
    "chair": ("armchair",),
    "cup": ("tumbler", "glass", "drinking glass"),
    "cylinder": ("tube", "pipe", "column", "prism", "disc", "disk"),
    "hammer": ("mallet", "sledgehammer", "sledge hammer"),
    "house": ("hut", "cottage", "cabin", "home"),
    "lamp": ("table lamp",),
    "mug": ("coffee cup", "tea cup", "teacup"),
    "mushroom": ("toadstool",),
    "ring": ("wedding band",),
    "sphere": ("ball", "globe", "orb", "ellipsoid"),
    "stairs": ("staircase", "stair", "steps", "stairway"),
    "shelf": ("bookshelf", "bookcase", "shelves", "shelving"),
    "sword": ("blade", "longsword"),
    "pine_tree": ("fir tree", "conifer", "christmas tree", "spruce"),
    "wine_glass": ("goblet", "stemmed glass"),
    "candle": ("candlestick",),
    "dumbbell": ("barbell",),
    "rocket": ("spaceship",),
    "torus": ("donut", "doughnut", "ring torus", "ring shaped torus"),
    "tower": ("watchtower",),
}


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and return its alphanumeric words (``[a-z0-9]+``), in order
    (``"Wine-glass, 2x!"`` -> ``["wine", "glass", "2x"]``)."""
    return _WORD.findall(text.lower())


def normalize_family(name: str) -> str:
    """Canonical spelling of a family name: lowercase words joined by ``_`` (``"Wine glass"``,
    ``"wine-glass"`` and ``"wine_glass"`` all give ``"wine_glass"``)."""
    return "_".join(tokenize(name))


def family_names() -> list[str]:
    """The procedural shape families meshlm knows (:func:`meshlm.shapes.list_families`)."""
    return list_families()


def family_span(
    text: str, family: str, synonyms: Mapping[str, Sequence[str]] | None = None
) -> tuple[int, int] | None:
    """Where ``text`` first names ``family`` -- the character span ``(start, end)`` of the
    earliest phrase, and at the same place the longest, among the family's own words and
    ``synonyms[family]`` (default :data:`DEFAULT_SYNONYMS`), matched as whole words, case
    ignored, the last word maybe plural (``s``/``es``), as :func:`find_family` reads -- or None."""
    synonyms = DEFAULT_SYNONYMS if synonyms is None else synonyms
    phrases = [normalize_family(family).split("_")]
    phrases += [tokenize(s) for s in synonyms.get(normalize_family(family), ())]
    best: tuple[int, int] | None = None
    for phrase in phrases:
        if not phrase:
            continue
        pattern = r"\b" + r"[^a-z0-9]+".join(map(re.escape, phrase)) + r"(?:e?s)?\b"
        m = re.search(pattern, text, re.IGNORECASE)
        if m and (best is None or (m.start(), -m.end()) < (best[0], -best[1])):
            best = (m.start(), m.end())
    return best


def find_family(
    text: str,
    families: Sequence[str],
    synonyms: Mapping[str, Sequence[str]] | None = None,
) -> str | None:
    """The family (as spelled in ``families``) that free ``text`` names, or ``None``.

    A family is named by its own words (``pine_tree`` -> "pine tree") or by any phrase in
    ``synonyms[family]`` (default :data:`DEFAULT_SYNONYMS`; pass ``{}`` for none), matched on
    whole tokens (:func:`tokenize`) with an optional plural ``s``/``es`` on the last word. When
    several families are named, the earliest mention wins, and at the same position the longest
    phrase ("pine tree" over "tree"). A heuristic: "a table lamp" gives ``table``.
    """
    synonyms = DEFAULT_SYNONYMS if synonyms is None else synonyms
    words = tokenize(text)
    best: tuple[int, int, str] | None = None  # (start, -length, family)
    for family in families:
        phrases = [normalize_family(family).split("_")]
        phrases += [tokenize(s) for s in synonyms.get(family, ())]
        phrases += [tokenize(s) for s in synonyms.get(normalize_family(family), ())]
        for phrase in phrases:
            k = len(phrase)
            if not k:
                continue
            for i in range(len(words) - k + 1):
                if words[i : i + k - 1] != phrase[:-1]:
                    continue
                last = words[i + k - 1]
                if last in (phrase[-1], phrase[-1] + "s", phrase[-1] + "es"):
                    cand = (i, -k, family)
                    if best is None or cand[:2] < best[:2]:
                        best = cand
                    break
    return None if best is None else best[2]


def requested_family(prompt: str) -> str | None:
    """The procedural family a prompt asks for ("a round table" -> ``"table"``), among all of
    :func:`family_names`, or None when it names none."""
    return find_family(prompt, family_names())
