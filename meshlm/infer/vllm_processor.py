"""meshlm's exact mesh constraint inside vLLM, as a custom logits processor.

vLLM (V1 engine, model runner V1) loads batch-level logits processors at start-up; a server
started with this one writes only canonical meshes::

    vllm serve Zhengyi/LLaMA-Mesh \\
        --logits-processors meshlm.infer.vllm_processor:MeshLogitsProcessor

Interface (vLLM's documentation, "Custom Logits Processors", and
``vllm/v1/sample/logits_processor/interface.py``): a subclass of
``vllm.v1.sample.logits_processor.LogitsProcessor`` with ``__init__(vllm_config, device,
is_pin_memory)``, ``validate_params(cls, sampling_params)``, ``is_argmax_invariant()``,
``update_state(batch_update)`` and ``apply(logits)``. ``update_state`` gets the changes to the
persistent batch before each step (or None when there are none): ``removed`` (row indices),
``added`` (``(index, params, prompt_token_ids, output_token_ids)``, the last being a live
reference to the request's growing output list) and ``moved`` (``(a, b, directionality)``,
one-way or swap), to be processed in that order. ``apply`` gets the ``(rows, vocab)`` logits and
returns them with refused tokens at ``-inf``.

Per request (``SamplingParams.extra_args``, ``vllm_xargs`` in an HTTP request): every request is
constrained unless it sends ``meshlm_constrain: 0`` (a chat or describe turn);
``meshlm_format`` (the model's mesh format, ``"llama-mesh"`` (default) or ``"parts"``: which
constraint, :func:`~meshlm.infer.constrain_parts.constraint_for`), ``meshlm_bins`` (default
64), ``meshlm_max_preamble`` (free-text tokens before the mesh, default 48) and
``meshlm_min_faces`` (default 0) are the constraint's settings. ``meshlm.infer.openai_http``
sends them.

vLLM is imported only when ``MeshLogitsProcessor`` is looked up, so this module imports (and its
logic, :class:`MeshBatchState`, is tested) without vLLM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from meshlm.infer.constrain import MeshConstraint, VocabIndex
from meshlm.infer.constrain_parts import PartsConstraint, constraint_for

log = logging.getLogger(__name__)

XARGS = {
    "meshlm_constrain": (int, bool),
    "meshlm_bins": (int,),
    "meshlm_max_preamble": (int,),
    "meshlm_min_faces": (int,),
}
FORMATS = ("llama-mesh", "parts")


def request_settings(extra_args: dict | None) -> dict | None:
    """Constraint settings of a request from its ``extra_args`` (the keyword arguments of
    :func:`~meshlm.infer.constrain_parts.constraint_for` but the index), or None when it opts
    out (``meshlm_constrain`` 0/false). Raises ValueError on a bad value (vLLM then refuses the
    request before it runs)."""
    args = dict(extra_args or {})
    fmt = args.get("meshlm_format", "llama-mesh")
    if fmt not in FORMATS:
        raise ValueError(f"meshlm_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    for key, types in XARGS.items():
        if key in args and (not isinstance(args[key], types) or isinstance(args[key], float)):
            raise ValueError(f"{key} must be an integer, got {args[key]!r}")
    if not args.get("meshlm_constrain", 1):
        return None
    bins = args.get("meshlm_bins", 64)
    pre = args.get("meshlm_max_preamble", 48)
    mf = args.get("meshlm_min_faces", 0)
    if not 2 <= bins <= 1024 or pre < 0 or mf < 0:
        raise ValueError(
            "meshlm_bins must be in 2..1024, meshlm_max_preamble and meshlm_min_faces >= 0"
        )
    return {"fmt": fmt, "bins": bins, "max_preamble": pre, "min_faces": mf}


@dataclass
class _Row:
    constraint: MeshConstraint | PartsConstraint
    output: list  # vLLM's live list of the request's output token ids
    seen: int = 0  # how many of them the constraint has advanced over
    broken: bool = False  # a token outside the mask arrived (another stage chose it): stop


@dataclass
class MeshBatchState:
    """The constraint state of every row of a vLLM persistent batch (no vLLM needed).

    ``index``: the vocabulary classified once (:class:`VocabIndex`); ``rows``: batch row ->
    its request's state."""

    index: VocabIndex
    rows: dict[int, _Row] = field(default_factory=dict)

    def update(self, batch_update) -> None:
        """Apply a ``BatchUpdate`` (removed, then added, then moved), then advance every row
        over the tokens its request produced since the last step."""
        if batch_update is not None:
            for i in batch_update.removed:
                self.rows.pop(i, None)
            for i, params, _prompt, output in batch_update.added:
                settings = request_settings(getattr(params, "extra_args", None))
                if settings is None:
                    self.rows.pop(i, None)
                else:  # a preempted request comes back with its output so far: fed below
                    self.rows[i] = _Row(constraint_for(index=self.index, **settings), output)
            for a, b, how in batch_update.moved:
                ra, rb = self.rows.pop(a, None), self.rows.pop(b, None)
                if ra is not None:
                    self.rows[b] = ra
                if getattr(how, "name", str(how)).upper().endswith("SWAP") and rb is not None:
                    self.rows[a] = rb
        for row in self.rows.values():
            if row.broken:
                continue
            for tok in row.output[row.seen :]:
                if tok < 0:  # a placeholder of a token not sampled yet (async scheduling)
                    break
                row.seen += 1
                if row.constraint.done:
                    continue
                try:
                    row.constraint.advance(int(tok))
                except ValueError as exc:
                    log.warning("meshlm: constraint lost its place (%s); row left unmasked", exc)
                    row.broken = True
                    break

    def allowed_mask(self, n_rows: int, vocab: int) -> tuple[list[int], np.ndarray]:
        """(constrained row indices below ``n_rows``, bool mask (len(rows), vocab), True =
        allowed)."""
        rows = sorted(i for i, r in self.rows.items() if i < n_rows and not r.broken)
        mask = np.zeros((len(rows), vocab), dtype=bool)
        for k, i in enumerate(rows):
            ids = self.rows[i].constraint.allowed()
            mask[k, ids[ids < vocab]] = True
        return rows, mask

    def apply(self, logits):
        """Refused tokens of the constrained rows to -inf, in place (a torch tensor of shape
        ``(rows, vocab)``, any device and float dtype); returns ``logits``."""
        import torch

        rows, mask = self.allowed_mask(logits.shape[0], logits.shape[1])
        if not rows:
            return logits
        idx = torch.tensor(rows, dtype=torch.long, device=logits.device)
        keep = torch.from_numpy(mask).to(logits.device, non_blocking=True)
        logits[idx] = logits[idx].masked_fill(~keep, float("-inf"))
        return logits


def eos_ids_of(tokenizer, model_path: str | None = None) -> list[int]:
    """End-of-reply ids: the tokenizer's eos, the chat end-of-turn tokens it has, and the model's
    ``generation_config.json`` eos ids when the folder/hub id has one."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for tok in ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"):
        if tok in vocab:
            ids.add(int(vocab[tok]))
    if model_path:
        try:
            from transformers import GenerationConfig

            e = GenerationConfig.from_pretrained(model_path).eos_token_id
            ids.update([e] if isinstance(e, int) else (e or []))
        except Exception:  # no generation_config.json: the tokenizer's ids stand
            pass
    if not ids:
        raise ValueError("the tokenizer defines no end-of-sequence token")
    return sorted(ids)


def _build_class():
    from transformers import AutoTokenizer
    from vllm.v1.sample.logits_processor import LogitsProcessor

    class MeshLogitsProcessor(LogitsProcessor):
        """meshlm's mesh constraint for every request that does not opt out (see module)."""

        @classmethod
        def validate_params(cls, sampling_params) -> None:
            request_settings(getattr(sampling_params, "extra_args", None))

        def __init__(self, vllm_config, device, is_pin_memory: bool):
            mc = vllm_config.model_config
            name = getattr(mc, "tokenizer", None) or mc.model
            tok = AutoTokenizer.from_pretrained(
                name,
                revision=getattr(mc, "tokenizer_revision", None),
                trust_remote_code=bool(getattr(mc, "trust_remote_code", False)),
            )
            index = VocabIndex.for_tokenizer(tok, eos_ids_of(tok, mc.model))
            self.state = MeshBatchState(index)

        def is_argmax_invariant(self) -> bool:
            return False  # it changes which token is most likely

        def update_state(self, batch_update) -> None:
            self.state.update(batch_update)

        def apply(self, logits):
            return self.state.apply(logits)

    MeshLogitsProcessor.__module__ = __name__  # pickled by name (module.__getattr__ below)
    MeshLogitsProcessor.__qualname__ = "MeshLogitsProcessor"
    return MeshLogitsProcessor


def __getattr__(name: str):
    if name == "MeshLogitsProcessor":
        cls = _build_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
