"""Valid meshes by construction: the grammar, the token constraint with several tokenizers, and
generation from a random-weight model."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from meshlm import decode
from meshlm.errors import MeshlmError
from meshlm.infer.constrain import MeshConstraint, VocabIndex, token_texts
from meshlm.infer.grammar import MeshGrammar

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

CHARS = "vf0123456789 \n"


@pytest.mark.parametrize("bins", [2, 3, 8, 64, 1024])
def test_grammar_random_walks_always_give_strict_meshes(bins):
    g = MeshGrammar(bins)
    rng = random.Random(bins)
    for _ in range(150):
        s, text = g.start(), ""
        while True:
            opts = [c for c in CHARS if g.step(s, c) is not None]
            end = g.can_end(s)
            assert opts or end, text[-60:]  # never a dead end
            if end and (not opts or rng.random() < 0.02 or len(text) > 3000):
                break
            c = rng.choice(opts)
            s = g.step(s, c)
            text += c
        m = decode(text, bins=bins)
        assert len(m.quantized) >= 3 and len(m.faces) >= 1


def test_grammar_refuses_each_canonical_violation():
    g = MeshGrammar(64)
    ok = "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3"
    assert g.can_end(g.feed(g.start(), ok))
    for bad in [
        "v 0 0 64",
        "v 01",
        "v 0 0 0\nv 0 0 0",
        "v 0 1 0\nv 0 0 5",
        "v 0 0 0\nf",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 2",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 4",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 2",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\nf 1 3 2",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\nv",
        "v  0",
        "f 1 2 3",
        "v 0 0 0\nv 0 0 1\nv 0 1 0\nf 0",
    ]:
        assert g.feed(g.start(), bad) is None, bad
    # the first vertex leaves room for two more; (63,63,63) can only be the third
    assert g.feed(g.start(), "v 63 63 63") is None
    assert g.feed(g.start(), "v 63 63 61\nv 63 63 62\nv 63 63 63") is not None


# --- tokenizers of different kinds ---------------------------------------------------------------


def _wrap(tok, **special):
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **special)


def meshlm_tokenizer():
    from meshlm.train.tokenizer import train_tokenizer

    return train_tokenizer(
        ["Create a 3D model of a chair.", "A table with four legs."] * 20, vocab_size=1100
    )


def char_tokenizer():
    """Digit by digit, one token per character (SentencePiece-like number handling)."""
    chars = ["<eos>", "<unk>"] + list("vf0123456789 \nabcdefghijklmnopqrstuwxyz.:")
    tok = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<unk>")
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = tokenizers.decoders.Fuse()
    return _wrap(tok, eos_token="<eos>", unk_token="<unk>")


def merged_tokenizer():
    """A BPE with no pre-tokenizer, trained on mesh text: tokens span spaces, numbers and
    newlines (e.g. ' 1', '3\\nf', '0 0')."""
    from meshlm import encode

    rng = np.random.default_rng(0)
    corpus = []
    for _ in range(30):
        v = rng.normal(size=(12, 3))
        f = rng.integers(0, 12, size=(20, 3))
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        corpus.append(encode(v, f))
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<eos>", "<unk>"],
        initial_alphabet=list("vf0123456789 \nabcdefghijklmnopqrstuwxyz.:"),
    )
    tok.train_from_iterator(corpus, trainer)
    tok.decoder = tokenizers.decoders.Fuse()
    wrapped = _wrap(tok, eos_token="<eos>", unk_token="<unk>")
    texts = token_texts(wrapped)
    assert any(len(t) > 2 and " " in t and any(c.isdigit() for c in t) for t in texts)
    return wrapped


@pytest.mark.parametrize("make_tok", [meshlm_tokenizer, char_tokenizer, merged_tokenizer])
@pytest.mark.parametrize("bins", [8, 64])
def test_token_walks_with_any_tokenizer_give_strict_meshes(make_tok, bins):
    tok = make_tok()
    index = VocabIndex.for_tokenizer(tok)
    assert VocabIndex.for_tokenizer(tok) is index  # classified once per tokenizer
    rng = np.random.default_rng(bins)
    for trial in range(12):
        c = MeshConstraint(index, bins=bins, max_preamble=trial % 3)
        steps = 0
        while not c.done:
            allowed = c.allowed()
            assert len(allowed) > 0
            eos_ok = set(index.eos_ids) & set(allowed.tolist())
            if eos_ok and (steps > 400 or rng.random() < 0.03):
                choice = next(iter(eos_ok))
            else:
                non_eos = [a for a in allowed.tolist() if a not in index.eos_ids] or list(eos_ok)
                choice = int(rng.choice(non_eos))
            c.advance(choice)
            steps += 1
        m = decode(c.text, bins=bins)  # strict
        assert len(m.faces) >= 1
        # the text the tokens spell out is preamble + mesh
        assert len(c.preamble) >= 0


@pytest.mark.parametrize("bins", [8, 64])
def test_min_faces_holds_back_the_end_without_dead_ends(bins):
    from meshlm import encode

    index = VocabIndex.for_tokenizer(meshlm_tokenizer())
    rng = np.random.default_rng(bins)
    ended_early = 0
    for _ in range(10):
        # a dozen vertices and a first face on the lowest ones, so that many faces still fit
        text = encode(rng.random((12, 3)), [[i, i + 1, i + 2] for i in range(10)], bins=bins)
        head = "".join(ln + "\n" for ln in text.split("\n") if ln.startswith("v ")) + "f 1 2 3\n"
        c = MeshConstraint(index, bins=bins, max_preamble=0, min_faces=4, prefix=head)
        while not c.done:  # a walker that ends the mesh at the first chance it gets
            allowed = c.allowed()
            assert len(allowed) > 0
            eos = [a for a in allowed.tolist() if a in index.eos_ids]
            if eos and c.text.count("\nf ") + c.text.startswith("f ") < 4:
                # an early end only when no further face fits the canonical order
                assert len(eos) == len(allowed)
                ended_early += 1
            c.advance(eos[0] if eos else int(rng.choice(allowed)))
        m = decode(c.text, bins=bins)  # strict
        assert len(m.faces) == 4  # a face that would use up the canonical order is refused
    assert ended_early == 0
    with pytest.raises(MeshlmError, match="min_faces"):
        from meshlm.infer import Sampling

        Sampling(min_faces=-1)


@pytest.mark.parametrize("min_faces", [1, 60, 150])
def test_min_faces_is_reached_by_a_walker_that_tries_to_fall_short(min_faces):
    """Ends at every chance, starts the faces as early as it may and always takes the largest
    index it may (the quickest way to use up the canonical order): still exactly min_faces."""
    index = VocabIndex.for_tokenizer(meshlm_tokenizer())
    rng = np.random.default_rng(min_faces)
    c = MeshConstraint(index, bins=64, max_preamble=0, min_faces=min_faces)
    while not c.done:
        ids = c.allowed().tolist()
        assert ids
        eos = [a for a in ids if a in index.eos_ids]
        face = [a for a in ids if index.texts[a].startswith("f")]
        nums = [(int(t), a) for a in ids if (t := index.texts[a].strip()).isdigit()]
        if eos or face:
            c.advance((eos or face)[0])
        elif nums and c.state[1] == "f":
            c.advance(max(nums)[1])
        else:
            c.advance(int(rng.choice(ids)))
    m = decode(c.text)  # strict
    assert len(m.faces) == min_faces
    n = len(m.vertices)  # no more vertices than the faces need, none fewer
    assert math.comb(n, 3) >= min_faces > (math.comb(n - 1, 3) if n > 3 else 0)


def test_advance_refuses_tokens_outside_the_mask():
    tok = meshlm_tokenizer()
    index = VocabIndex.for_tokenizer(tok)
    c = MeshConstraint(index, max_preamble=0)
    allowed = set(c.allowed().tolist())
    refused = next(i for i in range(index.vocab_size) if i not in allowed)
    with pytest.raises(ValueError):
        c.advance(refused)
    with pytest.raises(ValueError):
        c.advance(index.eos_ids[0])  # no end before a mesh
    v = tok.convert_tokens_to_ids("v")
    assert v in allowed


def test_continuation_prefix_is_fed_through_the_grammar():
    index = VocabIndex.for_tokenizer(meshlm_tokenizer())
    c = MeshConstraint(index, prefix="Here it is:\n\nv 0 0 0\nv 0 0 5\nv 0 3 0\nf 1 2")
    assert c.state is not None and c.preamble == "Here it is:\n\n"
    with pytest.raises(ValueError):
        MeshConstraint(index, prefix="v 5 5 5\nv 1 1 1")


# --- generation with a random-weight model -----------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    torch = pytest.importorskip("torch")
    from meshlm.infer.engine import Engine
    from meshlm.infer.hf import HFBackend

    tok = meshlm_tokenizer()
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    return Engine(HFBackend(model, tok, "cpu"))


def test_random_weights_constrained_generation_is_always_strictly_valid(engine):
    for seed in range(6):
        r = engine.generate(
            "a chair", seed=seed, max_new_tokens=500, temperature=1.0, max_preamble=seed % 3
        )
        if r.stats.cut_off:
            continue
        assert r.error is None, r.error
        body = r.text[r.text.index("v ") :] if not r.text.startswith("v ") else r.text
        m = decode(body)  # strict
        assert (r.stats.vertices, r.stats.faces) == (len(m.quantized), len(m.faces))
        assert r.stats.constrained and r.stats.new_tokens > 0


def test_random_weights_unconstrained_reply_is_reported_not_raised(engine):
    r = engine.generate("a chair", seed=0, max_new_tokens=40, constrain=False)
    assert r.stats.cut_off and not r.stats.constrained
    assert r.mesh is None and "no mesh found" in r.error


def test_same_seed_same_mesh_and_cut_off_keeps_complete_faces(engine):
    a = engine.generate("a table", seed=3, max_new_tokens=200, temperature=1.0, max_preamble=0)
    b = engine.generate("a table", seed=3, max_new_tokens=200, temperature=1.0, max_preamble=0)
    assert a.text == b.text and a.stats.to_dict()["faces"] == b.stats.to_dict()["faces"]
    # 28 tokens cannot hold 3 vertex lines and a face line (8 tokens each): always cut off
    cut = engine.generate("a table", seed=3, max_new_tokens=28, temperature=1.0, max_preamble=0)
    assert cut.stats.cut_off and cut.stats.new_tokens == 28
    assert cut.mesh is None and cut.error
    # continuing the cut-off reply in a follow-up call finishes a strictly valid mesh
    done = engine.continue_mesh("a table", cut, seed=4, max_new_tokens=1500, temperature=1.0)
    assert not done.stats.cut_off and done.error is None
    assert done.text.startswith(cut.text[: cut.text.rindex("\n") + 1])
    decode(done.text)
    # cut after some faces: every complete face is kept
    for seed in range(20):
        r = engine.generate(
            "a table", seed=seed, max_new_tokens=60, temperature=1.0, max_preamble=0
        )
        if r.stats.cut_off and r.mesh is not None:
            complete = r.text[: r.text.rindex("\n")].split("\n")
            assert len(r.mesh.faces) == sum(ln.startswith("f ") for ln in complete)
            break


def test_streaming_reports_growing_counts(engine):
    parts = list(
        engine.stream("a lamp", seed=1, max_new_tokens=300, temperature=1.0, max_preamble=0)
    )
    assert parts[-1].done and parts[-1].result is not None
    counts = [(p.vertices, p.faces) for p in parts[:-1]]
    assert counts == sorted(counts)  # never shrink
    assert parts[-2].text == parts[-1].text and all(not p.done for p in parts[:-1])


def test_cached_masks_equal_the_full_trie_walk():
    index = VocabIndex.for_tokenizer(meshlm_tokenizer())
    assert index.simple  # whole-number tokens never span a space or newline
    assert not VocabIndex.for_tokenizer(merged_tokenizer()).simple
    rng = np.random.default_rng(0)
    for _ in range(4):
        c = MeshConstraint(index, max_preamble=0)
        while not c.done:
            got = c.allowed()
            state = c.state if c.state is not None else c.grammar.start()
            full = c._mesh_tokens(state)
            if c.grammar.can_end(state):
                full += index.eos_ids
            assert np.array_equal(np.sort(got), np.unique(full)) and len(np.unique(got)) == len(got)
            non_eos = [a for a in got.tolist() if a not in index.eos_ids]
            ends = [a for a in got.tolist() if a in index.eos_ids]
            if ends and (not non_eos or rng.random() < 0.02):
                c.advance(ends[0])
            else:
                c.advance(int(rng.choice(non_eos)))


def test_closing_a_stream_stops_the_generation_thread(engine):
    import threading
    import time

    before = threading.active_count()
    stream = engine.stream("a chair", seed=0, max_new_tokens=3000, temperature=1.0)
    for i, _ in enumerate(stream):
        if i == 5:
            break
    t0 = time.perf_counter()
    stream.close()  # what a web client does when the user presses Stop
    assert time.perf_counter() - t0 < 5
    assert threading.active_count() <= before


def test_number_starts_match_the_grammar_for_every_token():
    """The arithmetic shortcut for a number's first token equals asking the grammar token by
    token, for ranges and exclusions of vertex coordinates and face indices (also past 1023)."""
    from meshlm.infer.grammar import _viable

    index = VocabIndex.for_tokenizer(meshlm_tokenizer())
    c = MeshConstraint(index, max_preamble=0)
    digit_tokens = [(i, t) for i, t in enumerate(index.texts) if t and t.isdigit()]
    rng = np.random.default_rng(1)
    cases = [(0, 63, None), (0, 0, None), (5, 5, 5), (9, 10, 10), (1, 2000, 1), (19, 1100, 19)]
    cases += [
        (int(lo), int(lo + rng.integers(0, 400)), None if k % 3 else int(lo + 1))
        for k, lo in enumerate(rng.integers(0, 1500, size=60))
    ]
    for lo, hi, excl in cases:
        want = sorted(
            i for i, t in digit_tokens if (t == "0" or t[0] != "0") and _viable(t, lo, hi, excl)
        )
        assert c._number_starts(lo, hi, excl).tolist() == want, (lo, hi, excl)
