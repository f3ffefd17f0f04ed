"""meshlm.prompts: the wording the dataset builder, the engine, the evaluation and the web demo
share."""

from __future__ import annotations

import pytest

from meshlm.codec import canonicalize
from meshlm.data import templates as T
from meshlm.errors import MeshlmError
from meshlm.parts import format_parts
from meshlm.prompts import (
    QUESTION,
    REQUEST,
    as_request,
    family_names,
    find_family,
    mesh_question,
    mesh_start,
    requested_family,
    wants_mesh,
)
from meshlm.shapes import list_families

TRI = canonicalize([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], bins=64)


def test_a_bare_description_becomes_the_training_data_request():
    assert as_request("a red chair.") == "Create a 3D model of a red chair."
    assert as_request("  a red chair ") == REQUEST.format(obj="a red chair")
    for asked in ("Make a lamp", "Could you model a mug?", "a chair?", "I'd like a box"):
        assert as_request(asked) == asked
    with pytest.raises(MeshlmError, match="empty prompt"):
        as_request("  ")
    # the request a bare description gets is the training data's first phrasing
    assert T.GENERATION_REQUESTS[0] == REQUEST
    assert T.UNDERSTANDING_QUESTIONS[0] == QUESTION + "\n{mesh}"


def test_intent_tells_requests_from_questions_and_greetings():
    for p in ["a chair", "Create a 3D model of a mug.", "make a lamp", "round table"]:
        assert wants_mesh(p), p
    for p in ["What is a mesh?", "hello", "is it a chair", "a chair?", "  ", ""]:
        assert not wants_mesh(p), p


def test_mesh_question_shows_the_mesh_in_the_format_asked():
    text = TRI.encode()
    assert mesh_question(TRI) == f"{QUESTION}\n{text}"
    assert mesh_question(text, "Which?", after=True) == f"{text}\nWhich?"
    parts = format_parts(TRI)
    assert parts != text and mesh_question(TRI, fmt="parts") == f"{QUESTION}\n{parts}"


def test_mesh_start_finds_the_first_vertex_line():
    reply = "Here it is:\nv 0 0 0\nv 0 0 1"
    assert mesh_start(reply) == reply.index("v 0")
    assert mesh_start("no mesh") == 0


def test_the_family_vocabulary_comes_from_shapes():
    assert family_names() == list_families()
    assert requested_family("a round table with three legs") == "table"
    assert requested_family("a wooden CUBE") == "box"  # a synonym
    assert requested_family("a teapot") is None
    assert (
        find_family("a small pine", ["pine_tree"], synonyms={"pine_tree": ["pine"]}) == "pine_tree"
    )
