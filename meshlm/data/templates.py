"""Wording of the chat samples: user requests, questions, assistant lead-ins and answers.

Every list is plain data. Placeholders: ``{obj}`` is the caption as a noun phrase
("a wooden chair with four legs"), ``{Obj}`` the same with a capital first letter,
``{mesh}`` the mesh text, ``{deg}`` an angle in degrees, ``{n}`` a count.
:func:`subject` turns a Cap3D-style caption into the noun phrase; :func:`sentence` into a sentence.
"""

from __future__ import annotations

import re

from meshlm.prompts import QUESTION, REQUEST

#: User asks for an object (the assistant answers with a mesh). At least 30 distinct phrasings;
#: the first is :data:`meshlm.prompts.REQUEST`, the one a bare description is turned into.
GENERATION_REQUESTS: tuple[str, ...] = (
    REQUEST,
    "Create a low poly 3D model of {obj}.",
    "Create a 3D obj file using the following description: {obj}",
    "Generate a 3D mesh of {obj}.",
    "Make {obj} as a 3D mesh.",
    "Can you model {obj} in 3D?",
    "Please build a 3D object: {obj}.",
    "I need a 3D model of {obj}.",
    "Produce an OBJ mesh of {obj}.",
    "Design {obj} as a triangle mesh.",
    "Give me a 3D mesh that looks like {obj}.",
    "Model {obj} for me, please.",
    "Could you generate {obj} as an OBJ file?",
    "Write the OBJ text for {obj}.",
    "Sculpt {obj} as a low-poly mesh.",
    "Draw {obj} in 3D as a mesh.",
    "Build a simple 3D model: {obj}.",
    "Output a triangle mesh representing {obj}.",
    "I'd like a low-poly version of {obj}.",
    "Generate an OBJ model based on this description: {obj}",
    "Create a mesh for the following object: {obj}",
    "Turn this description into a 3D model: {obj}",
    "Please create {obj} in OBJ format.",
    "Show me {obj} as a 3D mesh.",
    "Can you make a 3D shape of {obj}?",
    "Make me a low poly {obj_bare}.",
    "Generate a 3D asset: {obj}.",
    "Construct a 3D mesh of {obj}.",
    "Create a game-ready low-poly model of {obj}.",
    "Produce vertices and faces for {obj}.",
    "3D model request: {obj}.",
    "Could you sketch {obj} as a 3D mesh?",
    "Make an OBJ mesh: {obj}.",
    "Create {obj} as a 3D object.",
    "Render {obj} as mesh text in OBJ format.",
)

#: ``build-data --phrasings wide``: a second set of request wordings, and small talk that may
#: open or close any request, so that a small model learns to find the object in words it has
#: not seen. None of the evaluation's held-out phrasings (meshlm.eval.runner.HELDOUT_REQUESTS)
#: is among them (tests/test_data.py checks).
WIDE_GENERATION_REQUESTS: tuple[str, ...] = (
    "I would like {obj} in 3D.",
    "Can I get a mesh of {obj}?",
    "Need {obj} in OBJ form.",
    "Please generate a low-poly {obj_bare}.",
    "Mesh request: {obj}.",
    "Model this: {obj}.",
    "Make a 3D version of {obj}.",
    "Give me the OBJ for {obj}.",
    "Create a triangle mesh of {obj}.",
    "{Obj}, modelled in 3D, if you can.",
    "{Obj} -- can you make that in 3D?",
    "Could you build {obj} out of triangles?",
    "Let's see {obj} in 3D.",
    "Write me a mesh: {obj}.",
    "I'm after a 3D model of {obj}.",
    "Would you model {obj}?",
    "Make the OBJ of {obj}.",
    "Do a quick 3D model of {obj}.",
    "Generate the mesh for {obj}.",
    "Please produce {obj} as a 3D object.",
    "Model {obj}.",
    "A 3D model of {obj}, please.",
    "Turn {obj} into a mesh.",
    "Create {obj} in 3D.",
)
REQUEST_OPENERS: tuple[str, ...] = (
    "Hi! ",
    "Hello. ",
    "Hey, ",
    "Okay, ",
    "Quick one: ",
    "For my game: ",
    "Next: ",
    "Good morning! ",
    "One more: ",
    "New task. ",
)
REQUEST_CLOSERS: tuple[str, ...] = (
    " Thanks!",
    " Thank you.",
    " Keep it simple.",
    " Low poly is fine.",
    " Just the mesh.",
    " Y is up.",
    " Nothing fancy.",
    " Cheers.",
    " It's for a prototype.",
    " Go!",
)

#: User gives a mesh and asks what it is (the assistant answers with the caption).
#: At least 30 distinct phrasings; ``{mesh}`` may come first or last. The first is
#: :data:`meshlm.prompts.QUESTION`, the one ``describe`` asks by default.
UNDERSTANDING_QUESTIONS: tuple[str, ...] = (
    QUESTION + "\n{mesh}",
    "What does this mesh represent?\n{mesh}",
    "{mesh}\nWhat object is this?",
    "Describe this 3D model.\n{mesh}",
    "Can you tell what this OBJ file shows?\n{mesh}",
    "Here is a mesh:\n{mesh}\nWhat is it?",
    "Identify the object in this OBJ file.\n{mesh}",
    "What am I looking at?\n{mesh}",
    "{mesh}\nDescribe this object.",
    "Give a short description of this 3D mesh.\n{mesh}",
    "What kind of object does this model depict?\n{mesh}",
    "Please caption this 3D model.\n{mesh}",
    "{mesh}\nWhat does this mesh look like?",
    "Look at this OBJ and tell me what it is.\n{mesh}",
    "Which object is described by these vertices and faces?\n{mesh}",
    "I found this mesh. What is it?\n{mesh}",
    "Name the object this mesh represents.\n{mesh}",
    "{mesh}\nCan you describe it in one sentence?",
    "Explain what this 3D shape is.\n{mesh}",
    "What is depicted in the following 3D model?\n{mesh}",
    "Tell me about this 3D object.\n{mesh}",
    "Here's an OBJ file:\n{mesh}\nWhat does it show?",
    "Recognize this 3D model.\n{mesh}",
    "{mesh}\nWhat is this?",
    "Write a caption for this mesh.\n{mesh}",
    "What could this low-poly model be?\n{mesh}",
    "Analyze this mesh and say what object it is.\n{mesh}",
    "Describe the shape defined by this OBJ data.\n{mesh}",
    "{mesh}\nSummarize what this model represents.",
    "What would you call this 3D object?\n{mesh}",
    "Interpret this mesh for me.\n{mesh}",
    "Guess the object from its mesh.\n{mesh}",
)

#: Text before the mesh in a generation answer ("" = the mesh alone).
GENERATION_LEADINS: tuple[str, ...] = (
    "",
    "Here is a 3D model of {obj}:",
    "Sure! Here is {obj} as an OBJ mesh:",
    "Here's a low-poly mesh of {obj}:",
    "Certainly. This mesh represents {obj}:",
    "Here is the OBJ for {obj}:",
    "Below is a triangle mesh of {obj}:",
)

#: Answers to an understanding question.
UNDERSTANDING_ANSWERS: tuple[str, ...] = (
    "{Sentence}",
    "This is {obj}.",
    "It looks like {obj}.",
    "The mesh shows {obj}.",
    "This 3D model depicts {obj}.",
    "It appears to be {obj}.",
    "The object is {obj}.",
    "That is a model of {obj}.",
)

#: Follow-up in a dialogue: turn the previous mesh about the vertical (Y) axis.
ROTATE_REQUESTS: tuple[str, ...] = (
    "Now rotate it by {deg} degrees around the vertical axis.",
    "Turn it {deg} degrees about the Y axis.",
    "Can you show it rotated {deg} degrees around the up axis?",
    "Rotate the model {deg} degrees about Y, please.",
    "Give me the same object turned by {deg} degrees around the vertical axis.",
)
ROTATE_LEADINS: tuple[str, ...] = (
    "",
    "Here it is rotated by {deg} degrees about the Y axis:",
    "Sure, turned {deg} degrees around the vertical axis:",
)

#: Follow-up: ask for a description of the mesh just generated or shown.
DESCRIBE_REQUESTS: tuple[str, ...] = (
    "What did you just make?",
    "Describe the model you created.",
    "Can you describe that object in words?",
    "What is it, in one sentence?",
)
FACE_COUNT_QUESTIONS: tuple[str, ...] = (
    "How many triangles does it have?",
    "How many faces are in that mesh?",
    "What is its face count?",
)
FACE_COUNT_ANSWERS: tuple[str, ...] = (
    "It has {n} triangular faces.",
    "The mesh has {n} faces.",
    "{n} triangles.",
)
VERTEX_COUNT_QUESTIONS: tuple[str, ...] = (
    "How many vertices does it have?",
    "What is the vertex count?",
    "How many vertices are in the mesh?",
)
VERTEX_COUNT_ANSWERS: tuple[str, ...] = (
    "It has {n} vertices.",
    "The mesh has {n} vertices.",
    "{n} vertices.",
)
SHAPE_QUESTIONS: tuple[str, ...] = (
    "What are its proportions?",
    "How big is it on the grid?",
    "What are its dimensions in grid units?",
)
#: ``{axis}`` is x, y or z; ``{w}``, ``{h}``, ``{d}`` are extents in grid cells.
SHAPE_ANSWERS: tuple[str, ...] = (
    "On the grid it spans {w} by {h} by {d} cells (width, height, depth); "
    "its longest axis is {axis}.",
    "Its bounding box is {w} wide, {h} tall and {d} deep in grid units, "
    "so it is longest along {axis}.",
)

_MODEL_PREFIX = re.compile(
    r"^\s*(?:(?:a|an|the)\s+)?(?:low[- ]poly\s+)?(?:3d|three[- ]dimensional)\s+"
    r"(?:model|rendering|render|object|mesh)\s+(?:of|featuring|depicting|showing)\s+",
    re.IGNORECASE,
)


def subject(caption: str) -> str:
    """Caption -> noun phrase for templates: trimmed, no final period, no "3D model of" prefix,
    first letter lower-cased unless the first word is an acronym ("TV stand").

    ``"A 3D model of a wooden chair."`` -> ``"a wooden chair"``.
    """
    text = " ".join(caption.split()).rstrip(" .")
    stripped = _MODEL_PREFIX.sub("", text)
    if stripped:
        text = stripped
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def bare(phrase: str) -> str:
    """Noun phrase without a leading article: ``"a wooden chair"`` -> ``"wooden chair"``."""
    return re.sub(r"^(?:a|an|the)\s+", "", phrase, flags=re.IGNORECASE)


def sentence(caption: str) -> str:
    """Caption as a sentence: capital first letter, final period."""
    text = " ".join(caption.split())
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def fill(template: str, caption: str = "", **values) -> str:
    """Format ``template`` with the caption placeholders and any extra ``values``."""
    obj = subject(caption) if caption else ""
    return template.format(
        obj=obj,
        Obj=obj[:1].upper() + obj[1:],
        obj_bare=bare(obj),
        Sentence=sentence(caption),
        **values,
    )
