"""One inference API over every backend: generate, stream, describe, chat, continue.

    from meshlm.infer import load
    engine = load()                                  # the bundled model
    result = engine.generate("a round table with three legs")
    result.mesh, result.text, result.stats           # Mesh, raw reply, tokens/time/cut-off
    for part in engine.stream("a mug"): ...          # Partial(text, vertices, faces, ...)
    engine.describe(mesh)                            # -> str

Backends turn chat messages into text pieces (one per token); the engine wires the mesh
constraint in, counts, decodes and reports. The CLI and the web demo are thin layers over this.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from meshlm import exemplars as exemplar_bank
from meshlm import meshtext, modelfolder, part_templates
from meshlm.codec import Mesh
from meshlm.errors import MeshFormatError, MeshlmError, NoMeshFoundError
from meshlm.infer.constrain_parts import constraint_for
from meshlm.infer.hf import HFBackend, set_torch_threads
from meshlm.infer.llamacpp import LlamaCppBackend
from meshlm.infer.named import NAMES, is_adapter_folder, resolve, resolve_adapter
from meshlm.infer.openai_http import OpenAIBackend
from meshlm.infer.types import GenerationResult, Partial, Sampling, Stats
from meshlm.modelfolder import MeshFormat, ModelInfo
from meshlm.plan import count_parts, parse_plan, with_parts
from meshlm.prompts import as_request, mesh_question, mesh_start, requested_family

BUNDLED_MODEL = modelfolder.BUNDLED_MODEL  # where the bundled model is (meshlm.modelfolder)
# mesh formats whose decoding constraint lets a model write canonical text only: a finished
# constrained reply must pass the strict decoder (a failure is reported as a constraint bug)
STRICT_WHEN_CONSTRAINED = frozenset({"llama-mesh"})
# tokens past the lead-in limit that the first stage of an exemplar-conditioned reply may spend
# on its plan line ("Plan: wine glass, 12 parts." is ~10)
PLAN_TOKENS = 24


class Engine:
    """Inference over one loaded model (any backend with ``stream_reply``).

    ``mesh_format`` (name and bins) is what the constraint, the strict and lenient decoders and
    the HTTP grammar use: the model folder's (``info.format``, its meshlm.json), else
    LLaMA-Mesh at 64 bins; ``bins`` overrides its bins. ``notes``: one-line remarks for the
    user (an override that differs from the model's bins)."""

    def __init__(
        self,
        backend,
        bins: int | None = None,
        system_prompt: str | None = None,
        shape_families: list[str] | None = None,
        sampling_defaults: dict | None = None,
        *,
        info: ModelInfo | None = None,
        mesh_format: MeshFormat | None = None,
        templates: part_templates.TemplateLibrary | None = None,
        exemplars: exemplar_bank.ExemplarBank | None = None,
    ):
        self.backend = backend
        self.info = info
        self.mesh_format = modelfolder.with_bins(
            mesh_format or (info.format if info else MeshFormat()), bins
        )
        self.notes: list[str] = []
        if hasattr(backend, "bins"):  # a server backend sends the format (GBNF) itself
            backend.bins = self.bins
            backend.fmt = self.mesh_format.name
        self.system_prompt = system_prompt
        # the procedural families the model was trained on (its meshlm.json), None if unknown
        self.shape_families = shape_families
        # the decoding its author recommends (its generation_config.json): Sampling fields
        self.sampling_defaults = dict(sampling_defaults or {})
        # the parts a parts model was trained on (its part_templates.json): constrained
        # replies hold each part to one of them unless ``Sampling.templates`` is off
        self.templates = templates if self.mesh_format.name == "parts" else None
        if self.templates is not None and self.templates.bins != self.bins:
            self.notes.append(
                f"part templates are for {self.templates.bins} bins, not {self.bins}: not used"
            )
            self.templates = None
        # the meshes a parts model was shown before each request in training (its
        # exemplars.json): a mesh request is then answered in two stages (:meth:`stream`)
        self.exemplars = exemplars if self.mesh_format.name == "parts" else None
        if self.exemplars is not None and self.exemplars.bins != self.bins:
            self.notes.append(
                f"exemplars are for {self.exemplars.bins} bins, not {self.bins}: not used"
            )
            self.exemplars = None

    @property
    def bins(self) -> int:
        """Quantization levels per axis the model writes and reads (its mesh format's)."""
        return self.mesh_format.bins

    def default_sampling(self, **overrides) -> Sampling:
        """:class:`Sampling` with the model's recommended decoding, then ``overrides`` (None
        values ignored)."""
        return Sampling(
            **{**self.sampling_defaults, **{k: v for k, v in overrides.items() if v is not None}}
        )

    def unknown_family(self, prompt: str) -> str | None:
        """The shape family ``prompt`` asks for when the model was trained on a list of families
        that lacks it ("chair" for a model that knows only boxes and mugs), else None."""
        if not self.shape_families:
            return None
        fam = requested_family(prompt)
        return fam if fam is not None and fam not in self.shape_families else None

    @property
    def name(self) -> str:
        return self.backend.name

    def _messages(self, messages: list[dict] | str) -> list[dict]:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": as_request(messages)}]
        msgs = [dict(m) for m in messages]
        if self.system_prompt and not any(m.get("role") == "system" for m in msgs):
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    # -- streaming is the primitive -------------------------------------------------------------

    def stream(
        self,
        prompt: list[dict] | str,
        sampling: Sampling | None = None,
        mesh: bool = True,
        prefix: str = "",
        **overrides,
    ) -> Iterator[Partial]:
        """Stream a reply. ``mesh=True`` expects a mesh (constrained if ``sampling.constrain``);
        ``prefix`` continues a reply cut off earlier. The last item has ``done=True`` and
        ``result``.

        A parts model with an exemplar bank (``exemplars.json``, :mod:`meshlm.exemplars`)
        answers a mesh request in two stages when ``sampling.exemplar`` is on: it first writes
        its reply up to the plan line (not streamed), then the bank's exemplar of the planned
        family is shown before the request, as in training, and the reply goes on from the
        first stage's own lead-in and plan line (``sampling.exemplar_lead``, the default; off:
        written anew; with ``sampling.exemplar_parts`` or ``exemplar_layout``: from the first
        stage's plan line, the shown mesh's part count in it; with ``exemplar_layout`` and
        templates, each part held to the template of the shown mesh's part).
        ``result.stats.exemplar`` names the exemplar; tokens and seconds count both stages."""
        sampling = _sampling(sampling or self.default_sampling(), overrides)
        msgs = self._messages(prompt)
        constrained = mesh and sampling.constrain
        t0 = time.perf_counter()
        shown, n0 = None, 0
        if mesh and not prefix and sampling.exemplar and self.exemplars is not None:
            first = self._constraint_maker(sampling, "") if constrained else None
            msgs, shown, n0, prefix = self._show_exemplar(msgs, sampling, first)
        layout = self._layout(shown) if shown is not None and sampling.exemplar_layout else ()
        make = self._constraint_maker(sampling, prefix, layout) if constrained else None
        text, n, v, f = prefix, 0, 0, 0
        for piece in self.backend.stream_reply(msgs, sampling, make, prefix):
            n += 1
            if "\n" in piece:
                before = text.rsplit("\n", 1)[-1] + piece
                for line in before.split("\n")[:-1]:
                    if line.startswith("v "):
                        v += 1
                    elif line.startswith("f "):
                        f += 1
            text += piece
            yield Partial(
                text=text, tokens=n0 + n, seconds=time.perf_counter() - t0, vertices=v, faces=f
            )
        seconds = time.perf_counter() - t0
        info = dict(getattr(self.backend, "last", {}) or {})
        cut_off = not info.get("ended", True)
        info["new_tokens"] = n0 + int(info.get("new_tokens", n))
        exact = constrained and getattr(self.backend, "exact_constraint", True)
        result = self._finish(text, mesh, exact, cut_off, seconds, info, n0 + n)
        if shown is not None:
            result.stats.exemplar = shown.source
        yield Partial(
            text=text,
            tokens=n0 + n,
            seconds=seconds,
            vertices=result.stats.vertices,
            faces=result.stats.faces,
            done=True,
            result=result,
        )

    @functools.cached_property
    def _template_index(self) -> dict:
        """Part template -> its index in the model's library, built once (``_layout``)."""
        return {t: i for i, t in enumerate(self.templates.templates)} if self.templates else {}

    def _layout(self, shown: exemplar_bank.Exemplar) -> tuple[int | None, ...]:
        """The index in the model's part templates of each part of the exemplar ``shown``, in
        writing order (None for a part of no template; empty without templates)."""
        if self.templates is None:
            return ()
        parts = part_templates.split_text(shown.text)
        index = self._template_index
        return tuple(index.get(part_templates.template_of(v, f)) for v, f in parts)

    def _constraint_maker(self, sampling: Sampling, prefix: str, layout=()):
        """The backend's constraint factory for a reply that starts with ``prefix`` (with its
        parts held to ``layout``, :meth:`_layout`): exact for token backends, a syntax grammar
        for HTTP servers; the model's format picks it."""

        def make(index):
            return constraint_for(
                self.mesh_format.name,
                index,
                self.bins,
                sampling.max_preamble,
                prefix,
                min_faces=sampling.min_faces,
                templates=self.templates if sampling.templates else None,
                budget=sampling.max_new_tokens,
                layout=layout if sampling.templates else (),
            )

        return make

    def _show_exemplar(self, msgs: list[dict], sampling: Sampling, make):
        """The first stage of an exemplar-conditioned reply: the reply up to its plan line
        (at most the lead-in budget plus a plan line's tokens, no guidance, the same decoding
        constraint), the planned family's exemplar chosen for the request
        (:meth:`ExemplarBank.choose`), and the messages with it shown before the request.

        Returns ``(messages, exemplar, tokens, lead)``: ``lead`` is ``""``, or with
        ``sampling.exemplar_lead`` the first stage's text through its plan line (the reply
        goes on from it: docs/parts-model.md, "More meshes to read"), or with
        ``sampling.exemplar_parts`` (or ``exemplar_layout``) the first stage's text through its
        plan line with the part count replaced by the exemplar's
        (:func:`meshlm.plan.count_parts`), for the reply to go on from -- the exemplar was
        retrieved by the request's words, so its part count is the request's more often than
        the model's own plan (docs/parts-model.md, "The plan takes the shown mesh's parts").
        The messages as given, no exemplar and no lead when the last turn is not the user's,
        no plan line came, or the bank lacks the family."""
        if not msgs or msgs[-1].get("role") != "user":
            return msgs, None, 0, ""
        budget = sampling.max_preamble + PLAN_TOKENS
        first = replace(sampling, max_new_tokens=min(sampling.max_new_tokens, budget), guidance=1.0)
        text, n, plan = "", 0, None
        pieces = self.backend.stream_reply(msgs, first, make, "")
        try:
            for piece in pieces:
                n += 1
                text += piece
                if "\n" not in piece:
                    continue  # a plan line counts once it has ended
                if text.startswith("v ") or "\nv " in text:
                    break  # the mesh began without a plan
                plan = parse_plan(text[: text.rfind("\n") + 1])  # whole lines only
                if plan is not None:
                    break
        finally:
            pieces.close()  # the backend stops generating
        if plan is None:
            return msgs, None, n, ""
        shown = self.exemplars.choose(plan.family, msgs[-1]["content"])
        if shown is None:
            return msgs, None, n, ""
        out = [dict(m) for m in msgs]
        out[-1]["content"] = exemplar_bank.with_exemplar(out[-1]["content"], shown)
        lead = ""
        if sampling.exemplar_parts or sampling.exemplar_layout:
            lead = with_parts(text, count_parts(shown.text)) or ""
        elif sampling.exemplar_lead:  # a model that also reads meshes may describe the one shown
            lead = with_parts(text, plan.parts) or ""
        return out, shown, n, lead

    def _finish(self, text, want_mesh, constrained, cut_off, seconds, info, n) -> GenerationResult:
        stats = Stats(
            backend=self.backend.name,
            prompt_tokens=int(info.get("prompt_tokens", 0)),
            new_tokens=int(info.get("new_tokens", n)),
            seconds=seconds,
            cut_off=cut_off,
            constrained=constrained,
        )
        mesh, error = None, None
        if want_mesh:
            mesh, error = self._decode_reply(text, constrained, cut_off)
            if mesh is not None:
                stats.vertices, stats.faces = len(mesh.quantized), len(mesh.faces)
        return GenerationResult(mesh=mesh, text=text, stats=stats, error=error)

    def mesh_text(self, mesh: Mesh) -> str:
        """``mesh`` as the model reads it: canonical text in its mesh format, at ``mesh.bins``."""
        return meshtext.write(mesh, self.mesh_format.name)

    def read_reply(self, text: str, cut_off: bool = False) -> Mesh:
        """The mesh in a reply, read leniently in the model's mesh format by the rule every stage
        uses (:func:`meshlm.meshtext.read_reply`: for LLaMA-Mesh text the mesh with the most
        faces, :func:`meshlm.lenient.reply_mesh`; for parts text the parts joined).
        Raises :class:`~meshlm.errors.NoMeshFoundError` when it holds none."""
        return meshtext.read_reply(text, self.mesh_format.name, self.bins, cut_off=cut_off)

    def _decode_reply(self, text: str, constrained: bool, cut_off: bool):
        # the LLaMA-Mesh constraint writes canonical text only; the parts constraint cannot
        # enforce the canonical order (it depends on the whole mesh: infer/constrain_parts.py),
        # so a parts reply is read leniently, with no repair to report
        if constrained and not cut_off and self.mesh_format.name in STRICT_WHEN_CONSTRAINED:
            body = text[mesh_start(text) :]
            try:
                return meshtext.decode_strict(body, self.mesh_format.name, self.bins), None
            except MeshFormatError as exc:  # would be a bug in the constraint: say so
                return None, f"constrained reply failed the strict decoder: {exc}"
        try:
            return self.read_reply(text, cut_off), None
        except NoMeshFoundError as exc:
            return None, str(exc)

    # -- conveniences -----------------------------------------------------------------------------

    def generate(
        self, prompt: list[dict] | str, sampling: Sampling | None = None, **overrides
    ) -> GenerationResult:
        """Generate a mesh from a prompt (or a whole conversation)."""
        return _last(self.stream(prompt, sampling, mesh=True, **overrides)).result

    def continue_mesh(
        self,
        prompt: list[dict] | str,
        cut: GenerationResult,
        sampling: Sampling | None = None,
        **overrides,
    ) -> GenerationResult:
        """Continue a reply that hit its token limit (same conversation, reply text as prefix)."""
        text = cut.text
        if cut.stats.cut_off and "\n" in text:
            text = text[: text.rindex("\n") + 1]  # drop the unfinished last line
        return _last(self.stream(prompt, sampling, mesh=True, prefix=text, **overrides)).result

    def describe(
        self,
        mesh: Mesh | str,
        question: str | None = None,
        sampling: Sampling | None = None,
        **overrides,
    ) -> str:
        """Ask the model what a mesh is; returns its answer."""
        content = mesh_question(mesh, question, fmt=self.mesh_format.name)
        return self.chat([{"role": "user", "content": content}], sampling, **overrides).text.strip()

    def chat(
        self, messages: list[dict], sampling: Sampling | None = None, **overrides
    ) -> GenerationResult:
        """One assistant turn of a conversation whose turns may carry meshes. The reply is free
        text; a mesh in it is decoded leniently, in the model's format, into ``result.mesh``
        (:meth:`read_reply`)."""
        sampling = _sampling(sampling or self.default_sampling(), overrides)
        result = _last(self.stream(messages, sampling, mesh=False)).result
        try:
            result.mesh = self.read_reply(result.text, result.stats.cut_off)
            result.stats.vertices, result.stats.faces = (
                len(result.mesh.quantized),
                len(result.mesh.faces),
            )
        except NoMeshFoundError:
            pass
        return result


BUNDLED_GGUF = "model-f16.gguf"


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _last(parts):
    """The final item of a stream (its ``done`` snapshot)."""
    return deque(parts, maxlen=1)[0]


def model_shape_families(model: str | Path) -> list[str] | None:
    """``shape_families`` of the meshlm.json in a model folder (or beside a ``.gguf``), or None
    (a hub id, a model trained elsewhere, or metadata that predates the field). Raises
    :class:`meshlm.modelfolder.ModelFolderError` for a meshlm.json with a bad field."""
    info = modelfolder.read(model)
    return list(info.shape_families) if info is not None and info.shape_families else None


def model_sampling_defaults(model: str | Path) -> dict:
    """The decoding a model folder (or the folder of a ``.gguf``) recommends in its
    ``generation_config.json``, as :class:`Sampling` fields: ``do_sample: false`` is greedy
    (``temperature 0``); otherwise its ``temperature``, ``top_p`` and ``top_k`` where set and
    usable (out-of-range values such as ``top_k: -1`` are skipped); its ``guidance_scale``
    (transformers' name for classifier-free guidance) as ``guidance``. Empty for a hub id or a
    folder without one. An explicit ``Sampling`` passed to :meth:`Engine.generate` is used as
    it is; these defaults fill in only when none is given (and for the CLI's unset flags)."""
    cfg = modelfolder.read_json(model, "generation_config.json")
    if cfg is None:
        return {}
    g = cfg.get("guidance_scale")
    out = {}
    if isinstance(g, int | float) and not isinstance(g, bool) and 0 <= g < float("inf"):
        out["guidance"] = float(g)
    if cfg.get("do_sample") is False:
        return {**out, "temperature": 0.0}
    valid = {
        "temperature": lambda v: 0 <= v < float("inf"),
        "top_p": lambda v: 0 < v <= 1,
        "top_k": lambda v: v >= 0 and v == int(v),
    }
    for key, ok in valid.items():  # values meshlm cannot use (top_k -1, NaN, ...) are skipped
        v = cfg.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool) and ok(v):
            out[key] = int(v) if key == "top_k" else float(v)
    return out


def _sampling(sampling: Sampling | None, overrides: dict) -> Sampling:
    base = sampling or Sampling()
    clean = {k: v for k, v in overrides.items() if v is not None}
    return replace(base, **clean) if clean else base


def load(
    model: str | Path | None = None,
    backend: str = "auto",
    *,
    device: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    bins: int | None = None,
    threads: int | None = None,
) -> Engine:
    """Load a model: a local folder or hub id (transformers), a ``.gguf`` file (llama.cpp), a
    LoRA adapter folder meshlm trained (run from its merged copy in the cache), a model name
    (``bundled``, ``parts``, ``smol``, ``smol-base``), or a model name on an OpenAI-compatible
    server (``backend="openai"`` with ``base_url``).
    ``model=None`` is the bundled model. ``backend="auto"`` picks llama.cpp for ``.gguf`` paths,
    openai when ``base_url`` is given, else transformers. ``threads``: CPU threads for llama.cpp
    or, for transformers, torch's intra-op threads (process-wide); default: the cores other
    processes leave free (:func:`meshlm.infer.cpu.default_threads`; on a busy machine one thread
    per core collapses).

    The mesh format (name and bins) comes from the model folder's meshlm.json
    (:mod:`meshlm.modelfolder`; LLaMA-Mesh at 64 bins without one, e.g. a hub id or a server);
    ``bins`` overrides it, with a note in ``engine.notes`` when the two differ. Raises
    :class:`meshlm.modelfolder.ModelFolderError` for a bad meshlm.json and ``MeshlmError`` for a
    format this meshlm cannot decode."""
    if threads is not None and threads < 1:
        raise MeshlmError(f"threads must be >= 1, got {threads}")
    if bins is not None and not 2 <= bins <= 1024:
        raise MeshlmError(f"bins must be 2..1024, got {bins}")
    bundled = modelfolder.BUNDLED_MODEL
    named = isinstance(model, str) and model in NAMES
    if not base_url and model is not None and (named or is_adapter_folder(model)):
        # bundled, smol (a shipped adapter, run from its merged copy), smol-base, or a LoRA
        # adapter meshlm trained (e.g. a recipe's output_dir), also run from its merged copy
        use = backend if backend != "auto" or _importable("llama_cpp") else "transformers"
        model = resolve(model, bundled.parent, use) if named else resolve_adapter(model, use)
    name = str(model) if model is not None else str(bundled)
    if model is None and not bundled.exists():
        raise MeshlmError(f"the bundled model is missing at {bundled}")
    if model is None and backend == "auto" and not base_url:
        # the bundled model ships a GGUF too: llama.cpp is ~10x faster than transformers on CPU
        gguf = bundled / BUNDLED_GGUF
        if gguf.is_file() and _importable("llama_cpp"):
            name, backend = str(gguf), "llamacpp"
    if backend == "auto":
        backend = (
            "openai" if base_url else ("llamacpp" if name.endswith(".gguf") else "transformers")
        )
    if backend in ("transformers", "hf"):
        set_torch_threads(threads)  # None: the free cores (process-wide)
        info = _model_info(name)
        return _with_notes(
            Engine(
                HFBackend.load(name, device=device),
                bins=bins,
                info=info,
                shape_families=_families(info),
                sampling_defaults=model_sampling_defaults(name),
                templates=_templates(name, info),
                exemplars=_exemplars(name, info),
            ),
            name,
        )
    if backend in ("llamacpp", "llama.cpp", "gguf"):
        info = _model_info(name)
        return _with_notes(
            Engine(
                LlamaCppBackend.load(name, n_threads=threads),
                bins=bins,
                info=info,
                shape_families=_families(info),
                sampling_defaults=model_sampling_defaults(name),
                templates=_templates(name, info),
                exemplars=_exemplars(name, info),
            ),
            name,
        )
    if backend == "openai":
        if not base_url:
            raise MeshlmError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return Engine(OpenAIBackend(base_url, name, api_key=api_key), bins=bins)
    raise MeshlmError(f"unknown backend {backend!r} (transformers, llamacpp, openai)")


def _templates(name: str, info: ModelInfo | None) -> part_templates.TemplateLibrary | None:
    """A parts model's part templates (``part_templates.json`` in its folder), else None."""
    if info is None or info.format.name != "parts":
        return None
    return part_templates.read(modelfolder.folder_of(name))


def _exemplars(name: str, info: ModelInfo | None) -> exemplar_bank.ExemplarBank | None:
    """A parts model's exemplar bank (``exemplars.json`` in its folder), else None."""
    if info is None or info.format.name != "parts":
        return None
    return exemplar_bank.read(modelfolder.folder_of(name))


def _model_info(name: str) -> ModelInfo | None:
    """The model folder's meshlm.json, read before the weights (a bad one fails first); for a
    ``.gguf`` the format its own metadata carries wins (``meshlm export-gguf`` writes it).
    Refuses a mesh format this meshlm cannot decode."""
    info = modelfolder.read(name)
    if name.endswith(".gguf") and Path(name).is_file():
        fmt = modelfolder.gguf_format(name)
        if fmt is not None:
            info = replace(info, format=fmt) if info is not None else ModelInfo(format=fmt)
    if info is not None and info.format.name not in modelfolder.FORMATS:
        raise MeshlmError(
            f"{modelfolder.folder_of(name) / modelfolder.FILE}: mesh format "
            f"'{info.format.name}' is not one this meshlm decodes "
            f"({', '.join(modelfolder.FORMATS)})"
        )
    return info


def _families(info: ModelInfo | None) -> list[str] | None:
    return list(info.shape_families) if info is not None and info.shape_families else None


def _with_notes(engine: Engine, name: str) -> Engine:
    declared = engine.info.format.bins if engine.info is not None else None
    if declared is not None and declared != engine.bins:
        engine.notes.append(
            f"bins {engine.bins} overrides the model's {declared} "
            f"({modelfolder.folder_of(name) / modelfolder.FILE}); its meshes are read at "
            f"{engine.bins}"
        )
    return engine
