"""Chat samples built from one captioned object and its encoded rotations.

A *message* is ``{"role": "system"|"user"|"assistant", "content": str}``; a *row* is
``{"messages": [...], "task": "generation"|"understanding", "source": <object id>}``.

Three kinds of conversation, as in LLaMA-Mesh:

* generation: the user asks for the object, the assistant answers with its mesh text;
* understanding: the user gives the mesh text and asks what it is, the assistant answers with the
  caption;
* dialogues interleaving both: a generation dialogue has up to 8 exchanges (user + assistant),
  an understanding dialogue up to 4. Follow-ups are grounded in the data: rotations of the same
  object about the vertical (Y) axis, its description, vertex/face counts, grid extents.

Every conversation is about ONE source object, so splitting by object keeps all of an object's
rotations (and every dialogue mentioning it) in one split. All choices come from the generator
passed in; :func:`object_rows` derives it from ``(seed, object id)``, so an object's rows do not
depend on which other objects are in the build (shards and resumed builds agree).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from meshlm.data import templates as T
from meshlm.plan import plan_text

Message = dict[str, str]
Encodings = Sequence[tuple[int, str]]

#: Paper limits: exchanges per dialogue.
MAX_GENERATION_TURNS = 8
MAX_UNDERSTANDING_TURNS = 4
#: Token estimate per ``v``/``f`` line when no tokenizer is given: Llama-3 spends 8 (see
#: docs/format.md; meshlm's own tokenizer 5), so the estimate never lets a row over the budget.
TOKENS_PER_MESH_LINE = 8


def stable_int(*parts: object) -> int:
    """A 64-bit integer hash of the parts' string forms, stable across runs and machines."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def object_rng(seed: int, source: str) -> np.random.Generator:
    """The generator for one object: depends only on the build seed and the object id."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stable_int("conv", source)])


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Rough Llama-3 token count: 8 per mesh line, 1 per 4 characters of other text."""
    total = 0
    for m in messages:
        text = m["content"]
        lines = text.count("\nv ") + text.count("\nf ") + text.startswith(("v ", "f "))
        total += TOKENS_PER_MESH_LINE * lines + max(0, len(text) - 10 * lines) // 4 + 4
    return total


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


PlanWriter = Callable[[str], str]
"""What ``build-data --plan`` ends a mesh answer's lead-in with: mesh text -> its plan
(:func:`meshlm.plan.plan_text` with the object's family, :func:`plan_writer`)."""


def plan_writer(family: str, boxes: bool = False) -> PlanWriter:
    """The plan of ``family``'s meshes (:func:`meshlm.plan.plan_text`; ``boxes``: with the part
    lines, ``--plan-boxes``)."""
    return partial(plan_text, family, boxes=boxes)


def _mesh_answer(lead_in: str, mesh: str, plan: PlanWriter | None = None) -> str:
    """``plan`` (``build-data --plan``): the lead-in ends with the mesh's plan (meshlm.plan)."""
    if plan is not None:
        text = plan(mesh)
        lead_in = f"{lead_in}\n{text}" if lead_in else text
    return f"{lead_in}\n\n{mesh}" if lead_in else mesh


def mesh_text(content: str) -> str | None:
    """The mesh in a message built here: the first run of consecutive ``v``/``f`` lines,
    or None if there is none (or it has no face line)."""
    lines = content.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.startswith("v ")), None)
    if start is None:
        return None
    end = start
    while end < len(lines) and lines[end].startswith(("v ", "f ")):
        end += 1
    return "\n".join(lines[start:end]) if lines[end - 1].startswith("f ") else None


def mesh_stats(mesh: str) -> dict[str, object]:
    """Counts and grid extents of canonical mesh text (for grounded follow-up answers). The
    vertex count is of distinct coordinates: a parts-format vertex shared by two parts is written
    in each (docs/format.md) but is one vertex."""
    verts = [
        tuple(int(x) for x in line.split()[1:])
        for line in mesh.split("\n")
        if line.startswith("v ")
    ]
    n_faces = sum(1 for line in mesh.split("\n") if line.startswith("f "))
    arr = np.asarray(verts, dtype=np.int64).reshape(-1, 3)
    ext = (arr.max(axis=0) - arr.min(axis=0)).tolist() if len(arr) else [0, 0, 0]
    longest = [a for a, e in zip("xyz", ext, strict=True) if e == max(ext)]
    return {
        "n_vertices": len(set(verts)),
        "n_faces": n_faces,
        "w": ext[0],
        "h": ext[1],
        "d": ext[2],
        "axis": " and ".join(longest),
    }


def generation_exchange(
    caption: str,
    mesh: str,
    rng: np.random.Generator,
    wide: bool = False,
    plan: PlanWriter | None = None,
) -> list[Message]:
    """User asks for the object; the assistant answers with the mesh (maybe after a lead-in).
    ``wide`` (``--phrasings wide``): the request is drawn from both request lists and may get
    an opener and a closer (each with probability 1/3). ``plan`` (``--plan``): the answer
    states its plan before the mesh (:mod:`meshlm.plan`); no random draw depends on it."""
    if wide:
        ask = wide_request(caption, rng)
    else:
        ask = T.fill(_pick(rng, T.GENERATION_REQUESTS), caption)
    lead = T.fill(_pick(rng, T.GENERATION_LEADINS), caption)
    return [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": _mesh_answer(lead, mesh, plan)},
    ]


def wide_request(caption: str, rng: np.random.Generator) -> str:
    """A request from :data:`T.GENERATION_REQUESTS` + :data:`T.WIDE_GENERATION_REQUESTS`, maybe
    opened and closed by small talk (the opener lower-cases the request after a comma)."""
    ask = T.fill(_pick(rng, T.GENERATION_REQUESTS + T.WIDE_GENERATION_REQUESTS), caption)
    if rng.random() < 1 / 3:
        opener = _pick(rng, T.REQUEST_OPENERS)
        if opener.endswith(", ") and not re.match(r"I\b", ask):
            ask = ask[:1].lower() + ask[1:]
        ask = opener + ask
    if rng.random() < 1 / 3:
        ask += _pick(rng, T.REQUEST_CLOSERS)
    return ask


def understanding_exchange(caption: str, mesh: str, rng: np.random.Generator) -> list[Message]:
    """User shows the mesh and asks what it is; the assistant answers with the caption."""
    ask = T.fill(_pick(rng, T.UNDERSTANDING_QUESTIONS), caption, mesh=mesh)
    answer = T.fill(_pick(rng, T.UNDERSTANDING_ANSWERS), caption)
    return [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]


def _follow_up(kind: str, caption: str, mesh: str, rng: np.random.Generator) -> list[Message]:
    stats = mesh_stats(mesh)
    if kind == "describe":
        q, a = _pick(rng, T.DESCRIBE_REQUESTS), T.fill(_pick(rng, T.UNDERSTANDING_ANSWERS), caption)
    elif kind == "faces":
        q = _pick(rng, T.FACE_COUNT_QUESTIONS)
        a = _pick(rng, T.FACE_COUNT_ANSWERS).format(n=stats["n_faces"])
    elif kind == "vertices":
        q = _pick(rng, T.VERTEX_COUNT_QUESTIONS)
        a = _pick(rng, T.VERTEX_COUNT_ANSWERS).format(n=stats["n_vertices"])
    elif kind == "shape":
        q, a = _pick(rng, T.SHAPE_QUESTIONS), _pick(rng, T.SHAPE_ANSWERS).format(**stats)
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def _rotate_exchange(
    caption: str,
    from_rot: int,
    to_rot: int,
    mesh: str,
    rng: np.random.Generator,
    plan: PlanWriter | None = None,
) -> list[Message]:
    deg = (to_rot - from_rot) % 360
    ask = _pick(rng, T.ROTATE_REQUESTS).format(deg=deg)
    lead = _pick(rng, T.ROTATE_LEADINS).format(deg=deg)
    return [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": _mesh_answer(lead, mesh, plan)},
    ]


def dialogue(
    task: str,
    caption: str,
    encodings: Encodings,
    start: int,
    rng: np.random.Generator,
    max_tokens: int,
    wide: bool = False,
    plan: PlanWriter | None = None,
) -> list[Message]:
    """A multi-turn conversation about one object, opening with ``task`` at ``encodings[start]``.

    ``task`` is ``"generation"`` (at most :data:`MAX_GENERATION_TURNS` exchanges) or
    ``"understanding"`` (at most :data:`MAX_UNDERSTANDING_TURNS`). Follow-ups are drawn without
    repetition from: rotations to the object's other encoded angles (the assistant answers with
    that mesh), a description, vertex and face counts and grid extents of the current mesh.
    Follow-ups are added while :func:`estimate_tokens` stays within ``max_tokens``; the first
    exchange is always present (the token budget is enforced exactly later). ``plan``: every
    mesh answer states its plan (:func:`generation_exchange`).
    """
    rot, mesh = encodings[start]
    if task == "generation":
        messages, limit = (
            generation_exchange(caption, mesh, rng, wide, plan),
            MAX_GENERATION_TURNS,
        )
    else:
        messages, limit = understanding_exchange(caption, mesh, rng), MAX_UNDERSTANDING_TURNS
    kinds = ["faces", "vertices", "shape"] + (["describe"] if task == "generation" else [])
    others = [i for i in range(len(encodings)) if i != start]
    pool: list[tuple[str, int]] = [(k, -1) for k in kinds] + [("rotate", i) for i in others]
    order = rng.permutation(len(pool))
    n_extra = int(rng.integers(1, limit)) if limit > 1 else 0
    used = 0
    for j in order:
        if used >= n_extra:
            break
        kind, idx = pool[int(j)]
        if kind == "rotate":
            new_rot, new_mesh = encodings[idx]
            exchange = _rotate_exchange(caption, rot, new_rot, new_mesh, rng, plan)
        else:
            exchange = _follow_up(kind, caption, mesh, rng)
        if estimate_tokens(messages + exchange) > max_tokens:
            continue
        messages += exchange
        if kind == "rotate":
            rot, mesh = new_rot, new_mesh
        used += 1
    return messages


def object_rows(
    source: str,
    caption: str,
    encodings: Encodings,
    *,
    seed: int,
    understanding_ratio: float = 0.5,
    multi_turn: float = 0.25,
    system_prompt: str | None = None,
    max_tokens: int = 8192,
    generation_repeats: int = 1,
    generation_encodings: Encodings | None = None,
    wide_phrasings: bool = False,
    plan: PlanWriter | None = None,
) -> list[dict]:
    """All rows for one object.

    Parameters
    ----------
    source : object id written to each row's ``source``.
    caption : the object's caption.
    encodings : ``[(rotation_degrees, mesh_text), ...]``, distinct texts, non-empty.
    seed : build seed; together with ``source`` it fixes every choice.
    understanding_ratio : understanding rows per generation row (0.5 gives the paper's 20:40).
        Each encoding yields one generation row; ``len(encodings) * understanding_ratio``
        understanding rows are made (the fractional part is drawn).
    multi_turn : probability that a row is a dialogue rather than a single exchange.
    system_prompt : if given, a system message opens every row.
    max_tokens : soft limit for dialogue length (see :func:`dialogue`).
    generation_repeats : generation rows per encoding, each worded anew (0: none; the
        understanding rows are still ``len(encodings) * understanding_ratio``).
    generation_encodings : the meshes the generation rows answer with, when not the object's
        own (``--gen-targets nearest``: the nearest shape of the generation pool); the
        understanding rows always show ``encodings``.
    wide_phrasings : generation requests worded by :func:`wide_request` (``--phrasings wide``).
    plan : when every mesh answer states a plan (``--plan``; :func:`plan_writer` with the
        object's shape family); the mesh texts must then be in the parts format.

    Returns rows ``{"messages", "task", "source"}``: generation rows first, by rotation order.
    """
    rng = object_rng(seed, source)
    rows: list[dict] = []
    gen_encodings = encodings if generation_encodings is None else generation_encodings

    def add(task: str, start: int) -> None:
        encs = gen_encodings if task == "generation" else encodings
        rot_mesh = encs[start]
        if rng.random() < multi_turn:
            msgs = dialogue(task, caption, encs, start, rng, max_tokens, wide_phrasings, plan)
        elif task == "generation":
            msgs = generation_exchange(caption, rot_mesh[1], rng, wide_phrasings, plan)
        else:
            msgs = understanding_exchange(caption, rot_mesh[1], rng)
        if system_prompt:
            msgs = [{"role": "system", "content": system_prompt}, *msgs]
        rows.append({"messages": msgs, "task": task, "source": source})

    for i in range(len(gen_encodings)):
        for _ in range(generation_repeats):
            add("generation", i)
    want = len(encodings) * understanding_ratio
    n_und = int(want) + int(rng.random() < want - int(want))
    perm = rng.permutation(len(encodings))
    for k in range(n_und):
        add("understanding", int(perm[k % len(perm)]))
    return rows
