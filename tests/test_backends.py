"""The three backends on one tiny model: transformers (folder), llama.cpp (GGUF exported here),
and the OpenAI-compatible HTTP backend against llama-cpp-python's own server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from meshlm import decode
from meshlm.cli import main
from meshlm.errors import MeshlmError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
llama_cpp = pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from meshlm.train.tokenizer import train_tokenizer

    tok = train_tokenizer(
        [
            "Create a 3D model of a chair.",
            "Here is a table with four legs.",
            "What is this 3D object? It is a small stool.",
        ]
        * 50,
        vocab_size=2700,
    )
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    d = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def gguf_path(model_dir):
    out = model_dir / "tiny-f32.gguf"
    assert main(["export-gguf", str(model_dir), "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("dtype, tol", [("f32", 1e-3), ("f16", 5e-3)])
def test_gguf_logits_match_transformers(model_dir, dtype, tol):
    from meshlm.infer.gguf_export import export_gguf

    path = export_gguf(model_dir, model_dir / f"cmp-{dtype}.gguf", dtype=dtype)
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    text = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nCreate a 3D model of a "
        "chair.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nv 12 0 63\nf 1 2 3"
    )
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False)
    try:
        ids = tok.encode(text, add_special_tokens=False)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        ll = np.array(llm.scores[: len(ids)])
        with torch.no_grad():
            hf = model(torch.tensor([ids])).logits[0].numpy()
        assert np.abs(ll - hf).max() < tol
        assert (ll.argmax(-1) == hf.argmax(-1)).mean() > 0.95
    finally:
        llm.close()


def test_export_refuses_what_it_cannot_convert(tmp_path, capsys):
    assert main(["export-gguf", str(tmp_path), "-o", str(tmp_path / "x.gguf")]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert main(["export-gguf", str(tmp_path), "-o", str(tmp_path / "x.bin")]) == 2


def test_export_names_the_pre_tokenizer_llama_cpp_must_use():
    from meshlm.infer.gguf_export import ExportError, pre_tokenizer_name
    from meshlm.train.tokenizer import train_tokenizer

    ours = json.loads(train_tokenizer(["a table, a mug"] * 4, vocab_size=2400)._tokenizer.to_str())
    assert pre_tokenizer_name(ours) == "llama-bpe"
    gpt2 = {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    assert pre_tokenizer_name(gpt2) == "gpt-2"  # SmolLM2's, as transformers converts it
    with pytest.raises(ExportError, match="no llama.cpp counterpart"):
        pre_tokenizer_name({"pre_tokenizer": {"type": "Metaspace"}})


def test_transformers_backend_from_folder(model_dir):
    from meshlm.infer import load

    engine = load(str(model_dir))
    assert engine.name == "transformers"
    r = engine.generate("a stool", seed=1, max_new_tokens=400, temperature=1.0, max_preamble=0)
    if not r.stats.cut_off:
        decode(r.text)


def test_llamacpp_backend_constrained_and_deterministic(gguf_path):
    from meshlm.infer import load

    engine = load(str(gguf_path))
    assert engine.name == "llama.cpp"
    done = 0
    for seed in range(4):
        r = engine.generate(
            "a chair", seed=seed, max_new_tokens=600, temperature=1.0, max_preamble=seed % 2
        )
        assert r.stats.constrained
        if r.stats.cut_off:
            continue
        done += 1
        assert r.error is None
        body = r.text[r.text.index("v ") :]
        m = decode(body)  # strict
        assert (len(m.quantized), len(m.faces)) == (r.stats.vertices, r.stats.faces)
    assert done >= 1
    a = engine.generate("a table", seed=7, max_new_tokens=200, temperature=1.0)
    b = engine.generate("a table", seed=7, max_new_tokens=200, temperature=1.0)
    assert a.text == b.text
    # the constraint ran as llama.cpp's first sampler stage at every step (not the slow
    # logits-processor copy), and it picks exactly what the plain mask picks
    last = engine.backend.last
    assert last["filter_steps"] == last["new_tokens"] + last["ended"] > 0
    fast = engine.generate("a table", seed=3, max_new_tokens=300, temperature=0.0)
    engine.backend.fast_filter = False
    slow = engine.generate("a table", seed=3, max_new_tokens=300, temperature=0.0)
    assert engine.backend.last["filter_steps"] == 0
    assert fast.text == slow.text and fast.stats.new_tokens == slow.stats.new_tokens
    engine.backend.llm.close()


def test_cli_generate_with_gguf(gguf_path, tmp_path, capsys):
    out = tmp_path / "m.glb"
    code = main(
        [
            "generate",
            "a stool",
            "-o",
            str(out),
            "--model",
            str(gguf_path),
            "--seed",
            "2",
            "--max-new-tokens",
            "1500",
            "--json",
            "--save-reply",
            str(tmp_path / "r.txt"),
        ]
    )
    captured = capsys.readouterr()
    row = json.loads(captured.out.strip().splitlines()[-1])
    assert row["backend"] == "llama.cpp" and row["constrained"]
    if code == 0:
        assert out.stat().st_size > 0 and row["faces"] >= 1
        assert (
            (tmp_path / "r.txt")
            .read_text()
            .strip()
            .endswith(
                decode(
                    (tmp_path / "r.txt").read_text()[(tmp_path / "r.txt").read_text().index("v ") :]
                )
                .to_text()
                .split("\n")[-1]
            )
        )
    else:
        assert row["cut_off"]


def test_threads_reach_the_backend_and_do_not_change_the_output(gguf_path, tmp_path, capsys):
    from meshlm.infer import load

    one, two = load(str(gguf_path), threads=1), load(str(gguf_path), threads=2)
    assert (one.backend.llm.n_threads, two.backend.llm.n_threads) == (1, 2)
    a = one.generate("a table", seed=5, max_new_tokens=200, temperature=0.0)
    b = two.generate("a table", seed=5, max_new_tokens=200, temperature=0.0)
    assert a.text == b.text
    one.backend.llm.close()
    two.backend.llm.close()
    assert not one.backend.auto_threads
    with pytest.raises(MeshlmError, match="threads must be >= 1, got 0"):
        load(str(gguf_path), threads=0)
    assert (
        main(
            [
                "generate",
                "a stool",
                "-o",
                str(tmp_path / "m.obj"),
                "--model",
                str(gguf_path),
                "--threads",
                "0",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["meshlm: error: threads must be >= 1, got 0"]
    assert not (tmp_path / "m.obj").exists()


def test_automatic_threads_leave_a_busy_core_to_its_job(gguf_path):
    """Without --threads, llama.cpp gets the cores other processes leave free (issue 18), counted
    at load and again before a generation; the reply is the one a fixed count gives."""
    from meshlm.infer import load
    from meshlm.infer.cpu import usable_cores

    n = usable_cores()
    auto = load(str(gguf_path))
    assert auto.backend.auto_threads and 1 <= auto.backend.llm.n_threads <= n
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        auto.backend.RECOUNT_S = 0.0  # count again before this generation
        a = auto.generate("a table", seed=5, max_new_tokens=120, temperature=0.0)
        assert auto.backend.llm.n_threads == auto.backend.llm.n_threads_batch <= max(1, n - 1)
    finally:
        hog.kill()
        hog.wait()
    one = load(str(gguf_path), threads=1)
    assert one.generate("a table", seed=5, max_new_tokens=120, temperature=0.0).text == a.text
    auto.backend.llm.close()
    one.backend.llm.close()


def test_automatic_threads_follow_a_job_that_starts_during_a_generation(gguf_path):
    """A CPU-bound job that starts after the count before the generation is seen between two
    tokens (CoreWatch) and llama.cpp drops to the cores left free; a fixed count never moves."""
    from meshlm.infer import load
    from meshlm.infer.cpu import usable_cores

    n = usable_cores()
    if n < 2:
        pytest.skip("needs two cores")
    auto, fixed = load(str(gguf_path)), load(str(gguf_path), threads=2)
    auto.backend._set_threads(n)  # as on an idle machine
    auto.backend.RECOUNT_S, auto.backend.WATCH_S = 1e9, 0.15  # no count before, looks during
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        r = auto.generate("a table", seed=1, max_new_tokens=1500, constrain=False)
        assert r.stats.new_tokens >= 1000  # long enough for several looks (>= 0.5 s)
        assert auto.backend.llm.n_threads == auto.backend.llm.n_threads_batch == n - 1
        fixed.generate("a table", seed=1, max_new_tokens=300, constrain=False)
        assert fixed.backend.llm.n_threads == 2
    finally:
        hog.kill()
        hog.wait()
        auto.backend.llm.close()
        fixed.backend.llm.close()


def test_generate_warns_when_the_model_does_not_know_the_family(gguf_path, tmp_path, capsys):
    import shutil

    from meshlm.infer import load

    gguf = shutil.copy(gguf_path, tmp_path / "m.gguf")
    (tmp_path / "meshlm.json").write_text(json.dumps({"shape_families": ["box", "mug"]}))
    engine = load(str(gguf))
    assert engine.shape_families == ["box", "mug"]
    assert engine.unknown_family("a wooden chair with four legs") == "chair"
    assert engine.unknown_family("Create a tall mug.") is None
    assert engine.unknown_family("a teapot") is None  # not a family at all: nothing to say
    engine.backend.llm.close()
    args = ["-o", str(tmp_path / "o.obj"), "--model", str(gguf), "--max-new-tokens", "60", "--json"]
    main(["generate", "a wooden chair", *args])
    err = capsys.readouterr().err
    assert (
        "meshlm: warning: the model was trained on 2 shape families and 'chair' is not one "
        "of them (meshlm shapes --list --known); expect another shape"
    ) in err
    main(["generate", "a mug", *args])
    assert "warning" not in capsys.readouterr().err
    assert load(str(gguf_path)).shape_families is None  # no meshlm.json beside it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(gguf_path):
    pytest.importorskip("uvicorn")
    pytest.importorskip("sse_starlette")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "tiny",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("the llama-cpp-python server exited")
                time.sleep(0.5)
        else:
            pytest.fail("the llama-cpp-python server did not start in 90 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_openai_backend_against_llama_cpp_server(server):
    from meshlm.infer import load
    from meshlm.infer.openai_http import mesh_gbnf

    assert '"63"' in mesh_gbnf(64) and '"64"' not in mesh_gbnf(64)
    engine = load("tiny", base_url=server)
    assert engine.name == "openai"
    r = engine.generate("a chair", seed=0, max_new_tokens=400, temperature=1.0)
    assert engine.backend.grammar_supported is True  # the server took the GBNF grammar
    assert not r.stats.constrained  # syntax only: read with the lenient decoder
    assert r.stats.new_tokens > 0
    import re

    lines = r.text.strip().split("\n")
    assert all(re.fullmatch(r"v \d+ \d+ \d+|f \d+ \d+ \d+", ln) for ln in lines[:-1]), r.text
    assert (
        lines[0].startswith("v ")
        and max(int(x) for ln in lines if ln.startswith("v ") for x in ln.split()[1:]) <= 63
    )
    # a random model picks indices the grammar cannot check: the lenient decoder drops those
    assert r.mesh is not None or "no usable faces" in r.error
    text = engine.chat([{"role": "user", "content": "hello"}], max_new_tokens=8).text
    assert isinstance(text, str)


def test_openai_backend_unreachable_server_is_one_clear_error():
    from meshlm.errors import MeshlmError
    from meshlm.infer import load

    engine = load("x", base_url=f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(MeshlmError, match="cannot reach the server"):
        engine.generate("a chair", max_new_tokens=5)


def test_cli_chat_loads_a_mesh_and_saves_reply_meshes(model_dir, tmp_path):
    import trimesh

    trimesh.creation.box().export(tmp_path / "box.obj")
    script = f"/load {tmp_path / 'box.obj'}\nwhat is this?\n/load nope.obj\nhello\n/quit\n"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshlm",
            "chat",
            "--model",
            str(model_dir),
            "--max-new-tokens",
            "20",
            "--out-dir",
            str(tmp_path / "chat"),
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "loaded" in proc.stderr and "nope.obj" in proc.stderr  # the bad /load is one line
    assert proc.stdout.count("model> ") == 2
    assert "Traceback" not in proc.stderr


def test_cli_describe_with_gguf(gguf_path, tmp_path, capsys):
    import trimesh

    trimesh.creation.icosphere(1).export(tmp_path / "s.ply")
    code = main(
        [
            "describe",
            str(tmp_path / "s.ply"),
            "--model",
            str(gguf_path),
            "--json",
            "--max-new-tokens",
            "12",
        ]
    )
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and row["file"].endswith("s.ply") and row["backend"] == "llama.cpp"
    assert row["new_tokens"] <= 12


def test_generation_config_sets_the_default_decoding_and_flags_override_it(gguf_path, tmp_path):
    """A model folder's generation_config.json is its recommended decoding: do_sample false makes
    `meshlm generate` greedy (every seed gives the -t 0 reply); a flag still wins."""
    import shutil

    from meshlm.infer import load
    from meshlm.infer.engine import model_sampling_defaults

    gguf = shutil.copy(gguf_path, tmp_path / "m.gguf")
    assert model_sampling_defaults(gguf) == {}

    def reply(model, *flags):
        path = tmp_path / "reply.txt"
        main(
            [
                "generate",
                "a stool",
                "-o",
                str(tmp_path / "m.obj"),
                "--model",
                str(model),
                "--max-new-tokens",
                "40",
                "--no-constrain",
                "--json",
                "--save-reply",
                str(path),
                *flags,
            ]
        )
        return path.read_text()

    sampled = [reply(gguf, "--seed", s) for s in ("1", "2")]
    assert sampled[0] != sampled[1]  # meshlm's default decoding samples
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    assert model_sampling_defaults(gguf) == {"temperature": 0.0}
    greedy = reply(gguf, "-t", "0")
    assert [reply(gguf, "--seed", s) for s in ("1", "2")] == [greedy, greedy]
    assert reply(gguf, "--seed", "1", "-t", "0.7") == sampled[0]
    (tmp_path / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 20})
    )
    assert model_sampling_defaults(tmp_path) == {"temperature": 0.6, "top_p": 0.9, "top_k": 20}
    (tmp_path / "generation_config.json").write_text(  # unusable values are skipped
        '{"do_sample": true, "temperature": NaN, "top_p": 0, "top_k": -1}'
    )
    assert model_sampling_defaults(gguf) == {}
    (tmp_path / "generation_config.json").write_text("[1, 2]")
    assert model_sampling_defaults(gguf) == {}
    (tmp_path / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 20})
    )
    engine = load(str(gguf))
    assert engine.default_sampling(top_k=5).top_k == 5
    assert engine.default_sampling().temperature == 0.6
    engine.backend.llm.close()


def test_base_gguf_is_rebuilt_when_the_exporter_changes(model_dir, tmp_path):
    """smol-base's GGUF lives in the base folder, named after the exporter's version: a copy an
    older exporter wrote (e.g. before the pre-tokenizer fix) is replaced, a current one reused."""
    import shutil

    from meshlm.infer.gguf_export import EXPORT_VERSION
    from meshlm.infer.named import base_gguf

    folder = tmp_path / "base"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns("*.gguf"))
    (folder / "model-f16.gguf").write_bytes(b"written by exporter 1")
    path = base_gguf(folder)
    assert path == folder / f"model-f16-export{EXPORT_VERSION}.gguf"
    assert sorted(p.name for p in folder.glob("*.gguf")) == [path.name]
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    text = "v 12 0 63\nf 1 2 3"
    assert llm.tokenize(text.encode(), add_bos=False) == tok.encode(text, add_special_tokens=False)
    stamp = path.stat().st_mtime_ns
    assert base_gguf(folder) == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt


def _guided_greedy(model_dir, cond: list[int], uncond: list[int], scale: float, n: int, eos):
    """Greedy classifier-free guidance computed directly (arXiv 2306.17806, eq. 7) with the
    transformers model: each step both branches in full, next = argmax u + scale * (c - u)."""
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    out: list[int] = []
    for _ in range(n):
        with torch.no_grad():
            c = model(torch.tensor([cond + out])).logits[0, -1].numpy()
            u = model(torch.tensor([uncond + out])).logits[0, -1].numpy()
        tok = int(np.argmax(u + scale * (c - u)))
        if tok in eos:
            break
        out.append(tok)
    return out


def test_guidance_is_the_cfg_formula_on_llamacpp_and_transformers(model_dir, gguf_path):
    """`guidance` decodes what the formula picks, on both token backends: the llama.cpp backend's
    second context and transformers' own CFG processor give the greedy tokens computed here from
    both branches in full; 1 is plain decoding; the constrained fast path guides exactly as the
    logits-processor path does."""
    from meshlm.infer import load
    from meshlm.infer.guidance import unconditional_messages

    cpp = load(str(gguf_path))
    msgs = cpp._messages("a round mug with a handle")
    cond = cpp.backend.prompt_ids(msgs)
    uncond = cpp.backend.prompt_ids(unconditional_messages(msgs))
    assert len(uncond) < len(cond)  # the request is gone, the chat around it stays
    eos = set(cpp.backend.eos_ids)
    # a random tiny model hardly depends on its prompt: a large scale makes it
    want = _guided_greedy(model_dir, cond, uncond, 30.0, 24, eos)
    assert len(set(want)) > 2 and want != _guided_greedy(model_dir, cond, uncond, 1.0, 24, eos)
    text = cpp.backend.llm.detokenize(want).decode("utf-8", errors="replace")

    kw = dict(temperature=0.0, max_new_tokens=24, constrain=False)
    got = cpp.generate("a round mug with a handle", guidance=30.0, **kw)
    assert (got.text, got.stats.new_tokens) == (text, len(want))
    plain = cpp.generate("a round mug with a handle", **kw)
    assert cpp.generate("a round mug with a handle", guidance=1.0, **kw).text == plain.text
    assert plain.text != got.text

    path = gguf_path.parent / "guided-reply.txt"  # the CLI flag reaches the backend
    args = ["generate", "a round mug with a handle", "-o", str(path.with_suffix(".obj"))]
    args += ["--model", str(gguf_path), "--no-constrain", "-t", "0", "--max-new-tokens", "24"]
    main([*args, "--guidance", "30", "--save-reply", str(path)])
    assert path.read_text() == text

    hf = load(str(model_dir))
    assert hf.name == "transformers"
    got_hf = hf.generate("a round mug with a handle", guidance=30.0, **kw)
    assert (got_hf.text, got_hf.stats.new_tokens) == (text, len(want))

    kw = dict(temperature=0.0, max_new_tokens=200, guidance=30.0)
    fast = cpp.generate("a chair", **kw)
    assert cpp.backend.last["filter_steps"] > 0
    cpp.backend.fast_filter = False
    slow = cpp.generate("a chair", **kw)
    assert cpp.backend.last["filter_steps"] == 0
    assert fast.text == slow.text and fast.stats.new_tokens == slow.stats.new_tokens
    assert fast.text != cpp.generate("a chair", temperature=0.0, max_new_tokens=200).text
    cpp.backend.llm.close()


def test_guidance_settings_are_checked_and_read_from_generation_config(tmp_path):
    from meshlm.infer import Sampling, load
    from meshlm.infer.engine import model_sampling_defaults
    from meshlm.infer.guidance import guide, unconditional_messages

    c = np.array([2.0, 0.0, -np.inf, 1.0], dtype=np.float32)
    u = np.array([1.0, 1.0, 0.0, -np.inf], dtype=np.float32)
    assert guide(c, u, 3.0).tolist() == [4.0, -2.0, -np.inf, -np.inf]
    assert guide(c[:2], u[:2], 1.0).tolist() == [2.0, 0.0]  # 1: the conditional logits
    with pytest.raises(MeshlmError, match="shape"):
        guide(c, u[:3], 2.0)
    chat = [
        {"role": "system", "content": "You make meshes."},
        {"role": "user", "content": "a mug"},
        {"role": "assistant", "content": "v 0 0 0"},
        {"role": "user", "content": "now a taller one"},
    ]
    assert unconditional_messages(chat) == chat[:3] + [{"role": "user", "content": ""}]
    assert chat[3]["content"] == "now a taller one"  # the caller's chat is not touched
    with pytest.raises(MeshlmError, match="user request"):
        unconditional_messages(chat[:1])
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(MeshlmError, match="guidance"):
            Sampling(guidance=bad)
    (tmp_path / "generation_config.json").write_text(
        json.dumps({"do_sample": False, "guidance_scale": 2.5})
    )
    assert model_sampling_defaults(tmp_path) == {"temperature": 0.0, "guidance": 2.5}
    (tmp_path / "generation_config.json").write_text('{"guidance_scale": -1}')
    assert model_sampling_defaults(tmp_path) == {}
    server = load("x", base_url=f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(MeshlmError, match="guidance needs the llama.cpp or transformers"):
        server.generate("a chair", max_new_tokens=5, guidance=2.0)
