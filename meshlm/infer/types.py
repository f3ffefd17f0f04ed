"""Plain data of inference: sampling settings, streamed partial results, final results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from meshlm.codec import Mesh
from meshlm.errors import MeshlmError, NoMeshFoundError
from meshlm.infer.guidance import check_scale
from meshlm.meshtext import read_reply


@dataclass
class Sampling:
    """Sampling settings shared by every backend.

    ``temperature=0`` means greedy decoding. The same ``seed`` gives the same output on the same
    backend and machine. ``constrain`` turns valid-by-construction mesh decoding on (generation
    only); ``max_preamble`` bounds the free-text lead-in before a constrained mesh; ``min_faces``
    makes a constrained mesh have at least that many faces: the end is refused before, the
    vertices leave room for enough of them, and no face is allowed that would use up the
    canonical order too soon. ``templates``: for a ``parts`` model whose folder has a
    ``part_templates.json`` (:mod:`meshlm.part_templates`), a constrained reply writes each part
    as one of them (off: any valid part). ``guidance``: classifier-free guidance over the request
    (:mod:`meshlm.infer.guidance`; 1 = off, larger follows the request more; llama.cpp and
    transformers backends). ``exemplar``: for a ``parts`` model whose folder has an
    ``exemplars.json`` (:mod:`meshlm.exemplars`), a mesh request is answered after showing the
    model a training mesh of the family its plan names, as it was trained (off: the request
    alone); with ``exemplar_lead`` too (on by default), the reply starts with the first stage's
    own lead-in and plan line, so it is committed to a mesh before it sees the shown one (off:
    the reply starts afresh after the shown mesh, and a model that also reads meshes may
    describe it instead; docs/parts-model.md, "More meshes to read"); with
    ``exemplar_parts``, the same with the plan's part count replaced by the shown mesh's
    (:meth:`Engine.stream`); with
    ``exemplar_layout``, that and, constrained with part templates, each part held to the
    template of the shown mesh's part in the same place (its topology; the numbers stay the
    model's).
    """

    temperature: float = field(default=0.7, metadata={"help": "0 = greedy"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling mass"})
    top_k: int = field(default=50, metadata={"help": "0 = no top-k cut"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    max_new_tokens: int = field(
        default=8192, metadata={"help": "reply length limit (a 500-face LLaMA-Mesh mesh is ~6,000)"}
    )
    constrain: bool = field(default=True, metadata={"help": "only canonical mesh text"})
    max_preamble: int = field(default=48, metadata={"help": "lead-in tokens before the mesh"})
    min_faces: int = field(
        default=0, metadata={"help": "constrained: no end before this many faces (0 = any)"}
    )
    templates: bool = field(
        default=True,
        metadata={"help": "constrained parts text: each part one of the model's part templates"},
    )
    guidance: float = field(
        default=1.0, metadata={"help": "classifier-free guidance over the request (1 = off)"}
    )
    exemplar: bool = field(
        default=True,
        metadata={"help": "parts model with exemplars: show one of the planned family first"},
    )
    exemplar_lead: bool = field(
        default=True,
        metadata={"help": "parts model with exemplars: the reply goes on from its own plan line"},
    )
    exemplar_parts: bool = field(
        default=False,
        metadata={"help": "parts model with exemplars: the plan takes the shown mesh's part count"},
    )
    exemplar_layout: bool = field(
        default=False,
        metadata={
            "help": "exemplar_parts, and constrained with templates: part k of the reply is held "
            "to the template of the shown mesh's part k"
        },
    )

    def __post_init__(self):
        if self.temperature < 0:
            raise MeshlmError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise MeshlmError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.max_new_tokens < 1 or self.max_preamble < 0 or self.min_faces < 0:
            raise MeshlmError("top_k, max_preamble, min_faces must be >= 0 and max_new_tokens >= 1")
        self.guidance = check_scale(self.guidance)


@dataclass
class Stats:
    """What one generation cost and produced."""

    backend: str = ""
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    vertices: int = 0
    faces: int = 0
    cut_off: bool = False
    constrained: bool = False
    exemplar: str = ""  # the source of the exemplar shown before the request (meshlm.exemplars)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 2)
        d["seconds"] = round(self.seconds, 4)
        return d


@dataclass
class Partial:
    """A streamed snapshot: the reply so far and how much mesh it holds.

    ``vertices``/``faces`` count complete lines; :meth:`mesh` decodes what is complete so far
    (lenient, cut-off aware) for a live viewer. The last item of a stream has ``done=True`` and
    ``result`` set.
    """

    text: str
    tokens: int
    seconds: float
    vertices: int = 0
    faces: int = 0
    done: bool = False
    result: GenerationResult | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def mesh(self, bins: int = 64, fmt: str = "llama-mesh") -> Mesh | None:
        """The mesh written so far, read in mesh format ``fmt`` (the model's) by the rule every
        stage uses (:func:`meshlm.meshtext.read_reply`: the LLaMA-Mesh mesh with the most faces,
        parts text's parts joined), or None."""
        try:
            return read_reply(self.text, fmt, bins, cut_off=not self.done)
        except NoMeshFoundError:
            return None


@dataclass
class GenerationResult:
    """A finished generation: the mesh (None if the reply holds none), the raw reply, stats.

    ``mesh.report`` lists repairs when the lenient decoder had to fix the reply (never with the
    constraint on, except a cut-off last line); ``stats.cut_off`` says the token limit was hit.
    """

    mesh: Mesh | None
    text: str
    stats: Stats
    error: str | None = None

    def to_dict(self) -> dict:
        d = self.stats.to_dict()
        d["error"] = self.error
        d["repairs"] = self.mesh.report.to_dict() if self.mesh is not None else None
        return d
