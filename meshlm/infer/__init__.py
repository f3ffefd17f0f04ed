"""Inference: text -> mesh and mesh -> text, valid by construction, streaming, three backends.

from meshlm.infer import load, Sampling
engine = load()                       # the bundled model; or a folder, hub id, .gguf, server
result = engine.generate("a mug", Sampling(seed=1))
"""

from meshlm.infer.engine import BUNDLED_MODEL, Engine, load
from meshlm.infer.types import GenerationResult, Partial, Sampling, Stats

# request phrasing lives in meshlm.prompts; kept here, where it was public before
from meshlm.prompts import as_request, mesh_question

__all__ = [
    "BUNDLED_MODEL",
    "Engine",
    "GenerationResult",
    "Partial",
    "Sampling",
    "Stats",
    "as_request",
    "load",
    "mesh_question",
]
