"""meshlm's constraint as a vLLM logits processor: the batch bookkeeping and masking logic on CPU,
driven by batch updates shaped as vLLM's ``BatchUpdate`` (removed, added, moved) over a changing
batch, with plain torch tensors. vLLM itself does not run on this machine (no GPU); the class
that subclasses vLLM's ``LogitsProcessor`` is a thin shell over what is tested here."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from enum import Enum, auto

import numpy as np
import pytest

from meshlm import decode
from meshlm.infer.constrain import MeshConstraint, VocabIndex
from meshlm.infer.constrain_parts import constraint_for
from meshlm.infer.vllm_processor import MeshBatchState, request_settings
from meshlm.parts import decode_parts

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


class Move(Enum):  # vLLM's MoveDirectionality members
    UNIDIRECTIONAL = auto()
    SWAP = auto()


@dataclass(frozen=True)
class Update:  # vLLM's BatchUpdate fields
    batch_size: int
    removed: list = field(default_factory=list)
    added: list = field(default_factory=list)
    moved: list = field(default_factory=list)


@dataclass
class Params:  # the part of SamplingParams the processor reads
    extra_args: dict | None = None


@pytest.fixture(scope="module")
def index():
    from test_constrain import meshlm_tokenizer

    return VocabIndex.for_tokenizer(meshlm_tokenizer())


def test_request_settings_defaults_opt_out_and_refusals():
    assert request_settings(None) == {
        "fmt": "llama-mesh",
        "bins": 64,
        "max_preamble": 48,
        "min_faces": 0,
    }
    assert request_settings({"meshlm_bins": 8, "meshlm_min_faces": 3, "other": "x"}) == {
        "fmt": "llama-mesh",
        "bins": 8,
        "max_preamble": 48,
        "min_faces": 3,
    }
    assert request_settings({"meshlm_format": "parts"})["fmt"] == "parts"
    assert request_settings({"meshlm_constrain": 0}) is None
    assert request_settings({"meshlm_constrain": False}) is None
    for bad in (
        {"meshlm_bins": 1},
        {"meshlm_bins": "64"},
        {"meshlm_min_faces": -1},
        {"meshlm_max_preamble": 2.5},
        {"meshlm_constrain": "no"},
        {"meshlm_format": "obj"},
        {"meshlm_format": 1},
    ):
        with pytest.raises(ValueError):
            request_settings(bad)


def test_without_vllm_the_module_imports_and_the_class_says_what_is_missing():
    import meshlm.infer.vllm_processor as vp

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ModuleNotFoundError, match="vllm"):
        vp.MeshLogitsProcessor  # noqa: B018


def _sample(logits_row: torch.Tensor, rng: np.random.Generator, ends: set[int], step: int):
    """A walker: the end token as soon as it may come after ~40 tokens, else a random allowed
    token (logits here are 0 where allowed, -inf where refused)."""
    ok = torch.isfinite(logits_row).nonzero().flatten().tolist()
    end = [t for t in ok if t in ends]
    if end and (step > 40 or len(end) == len(ok)):
        return end[0]
    rest = [t for t in ok if t not in ends]
    return int(rng.choice(rest))


def test_batch_of_changing_requests_gives_strict_meshes_and_leaves_others_alone(index):
    """Four requests through a batch of 3 rows, scheduled the way vLLM's model runner does it: a
    finished request's row goes to a waiting one (an add over it), else it is removed and the
    batch condensed (one-way move from the last row); rows are also swapped once. One request
    opts out. Every constrained row's mask equals a lone MeshConstraint's over the same tokens;
    every constrained reply ends as a strictly valid mesh; the opted-out row is never touched."""
    rng = np.random.default_rng(0)
    vocab = index.vocab_size + 7  # vLLM pads the embedding past the tokenizer's size
    ends = set(index.eos_ids)
    settings = {
        "A": {"meshlm_max_preamble": 0},
        "B": {"meshlm_constrain": 0},
        "C": {"meshlm_bins": 8, "meshlm_min_faces": 3},
        "D": {},
        "E": {"meshlm_format": "parts", "meshlm_bins": 8},  # a parts model's request
    }
    outputs: dict[str, list[int]] = {n: [] for n in settings}
    shadow = {n: constraint_for(index=index, **request_settings(settings[n])) for n in "ACDE"}
    rows = ["A", "B", "C"]  # row -> request
    waiting = ["E", "D"]
    state = MeshBatchState(index)
    update = Update(
        3, added=[(i, Params(settings[n]), [1, 2], outputs[n]) for i, n in enumerate(rows)]
    )
    swapped, done = False, set()
    for _step in range(4000):
        state.update(update)
        logits = torch.zeros(len(rows), vocab)
        before = logits.clone()
        out = state.apply(logits)
        assert out is logits  # in place, as vLLM allows
        finished = []
        for i, name in enumerate(rows):
            if name == "B":
                assert torch.equal(out[i], before[i])  # opted out: untouched
                tok = int(rng.integers(index.vocab_size))
            else:
                want = np.zeros(vocab, dtype=bool)
                want[: index.vocab_size] = shadow[name].mask()
                assert np.array_equal(torch.isfinite(out[i]).numpy(), want), name
                tok = _sample(out[i], rng, ends, len(outputs[name]))
                shadow[name].advance(tok)
            outputs[name].append(tok)
            if tok in ends or (name == "B" and len(outputs[name]) == 30):
                finished.append(i)
        removed, added, moved = [], [], []
        for i in finished:
            done.add(rows[i])
            if waiting:
                rows[i] = waiting.pop()
                added.append((i, Params(settings[rows[i]]), [3], outputs[rows[i]]))
            else:
                rows[i] = None
                removed.append(i)
        for i in sorted(removed):  # condense: fill each hole from the last used row
            last = max(j for j, n in enumerate(rows) if n is not None) if any(rows) else -1
            if last > i:
                moved.append((last, i, Move.UNIDIRECTIONAL))
                rows[i], rows[last] = rows[last], None
        rows = [n for n in rows if n is not None]
        if not swapped and len(rows) >= 2 and done:
            moved.append((0, 1, Move.SWAP))
            rows[0], rows[1] = rows[1], rows[0]
            swapped = True
        update = Update(len(rows), removed, added, moved) if (removed or added or moved) else None
        if not rows:
            break
    assert done == set("ABCDE") and swapped
    for name, bins in (("A", 64), ("C", 8), ("D", 64)):
        assert shadow[name].done
        text = index_text(index, outputs[name])
        mesh = decode(text[text.index("v ") :] if not text.startswith("v ") else text, bins=bins)
        assert len(mesh.faces) >= (3 if name == "C" else 1)
    reply = index_text(index, outputs["E"])  # valid by construction: read with no repair
    mesh = decode_parts(reply, strict=False, bins=8)
    assert not mesh.report.repairs and not mesh.report.drops
    assert len(mesh.faces) == reply.count("\nf ") + reply.startswith("f ")
    assert index_text(index, outputs["A"]).startswith("v ")  # no lead-in allowed for A


def index_text(index: VocabIndex, ids: list[int]) -> str:
    return "".join(index.texts[i] for i in ids if i not in index.eos_ids)


def test_preempted_request_resumes_with_its_output_so_far(index):
    """vLLM re-adds a preempted request with its output list already filled: the constraint
    catches up on it; placeholder ids (< 0, async scheduling) wait for the real token."""
    rng = np.random.default_rng(3)
    c = MeshConstraint(index, max_preamble=0)
    out: list[int] = []
    for _ in range(20):
        tok = int(rng.choice(c.allowed()[~np.isin(c.allowed(), index.eos_ids)]))
        c.advance(tok)
        out.append(tok)
    state = MeshBatchState(index)
    state.update(Update(1, added=[(0, Params({"meshlm_max_preamble": 0}), [1], out)]))
    assert np.array_equal(state.allowed_mask(1, index.vocab_size)[1][0], c.mask())
    out.append(-1)
    state.update(None)
    assert state.rows[0].seen == 20
    tok = int(c.allowed()[0])
    out[-1] = tok
    c.advance(tok)
    state.update(None)
    assert state.rows[0].seen == 21
    assert np.array_equal(state.allowed_mask(1, index.vocab_size)[1][0], c.mask())


def test_a_token_outside_the_mask_unmasks_the_row_instead_of_failing_the_server(index):
    state = MeshBatchState(index)
    out: list[int] = []
    state.update(Update(1, added=[(0, Params({"meshlm_max_preamble": 0}), [1], out)]))
    refused = next(
        i for i in range(index.vocab_size) if not state.allowed_mask(1, index.vocab_size)[1][0, i]
    )
    out.append(refused)
    state.update(None)  # logged, not raised
    assert state.rows[0].broken
    logits = torch.zeros(1, index.vocab_size)
    assert torch.isfinite(state.apply(logits)).all()
