"""`meshlm eval language-kept`: chats for the reply perplexity (distilled chats or an earlier
run's open.jsonl) and the transformers folder behind a model name, on the bundled model."""

from __future__ import annotations

import json
import math

import pytest

from meshlm import modelfolder
from meshlm.cli import main
from meshlm.errors import MeshlmError
from meshlm.eval.language_kept import reply_pairs
from meshlm.infer.named import transformers_folder

ROOT = modelfolder.BUNDLED_MODEL.parent


def test_reply_pairs_read_chats_and_open_rows(tmp_path):
    p = tmp_path / "c.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Yo."}]},
        {"prompt": "Why?", "reply": "Because."},
    ]
    p.write_text("\ufeff" + "\n\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert reply_pairs(p) == [("Hi?", "Yo."), ("Why?", "Because.")]


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"prompt": "a"}',
        '{"prompt": "a", "reply": "  "}',
        '{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}',
        "[1, 2]",
    ],
)
def test_reply_pairs_name_the_file_and_line(tmp_path, line):
    p = tmp_path / "c.jsonl"
    p.write_text('{"prompt": "a", "reply": "b"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(MeshlmError, match=rf"^{p}:2: needs 'messages' \(user, then assistant\)"):
        reply_pairs(p)


def test_transformers_folder_of_names_and_paths(tmp_path):
    assert transformers_folder("bundled", ROOT) == modelfolder.BUNDLED_MODEL
    assert transformers_folder(str(tmp_path), ROOT) == tmp_path
    with pytest.raises(MeshlmError, match=r"not a transformers model folder \(pass --hf-model\)"):
        transformers_folder(str(tmp_path / "nope"), ROOT)


def test_language_kept_refuses_a_missing_chats_file_before_loading(tmp_path, capsys):
    facts = tmp_path / "f.jsonl"
    facts.write_text('{"question": "2+2?", "answers": ["4"]}\n', encoding="utf-8")
    out = tmp_path / "o"
    argv = ["eval", "language-kept", "--facts", str(facts), "--out", str(out)]
    assert main([*argv, "--chats", str(tmp_path / "c.jsonl"), "--model", "bundled"]) == 1
    assert capsys.readouterr().err.strip() == f"meshlm: error: {tmp_path / 'c.jsonl'}: no such file"
    assert main([*argv, "--chats", str(tmp_path / "c.jsonl")]) == 1
    assert "--chats needs --model or --hf-model" in capsys.readouterr().err
    chats = tmp_path / "chats.jsonl"
    chats.write_text('{"prompt": "a", "reply": "b"}\n', encoding="utf-8")
    gguf = tmp_path / "m.gguf"  # llama.cpp could answer, but gives no log-probs here
    assert main([*argv, "--chats", str(chats), "--model", str(gguf)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"meshlm: error: {gguf}: not a transformers model folder (pass --hf-model)"
    assert not out.exists()  # refused before any answer was written


@pytest.mark.slow
def test_perplexity_of_the_models_own_replies_from_this_runs_open_file(tmp_path, capfd):
    """The "before" of the language-kept table: the base scored on the replies it has just
    written (greedy, so every token was its first choice: a perplexity near 1); the same file
    scored again by the library call gives the same number; nothing of transformers' loading
    reaches the terminal."""
    pytest.importorskip("transformers")
    from meshlm.eval.language_kept import reply_perplexity

    facts = tmp_path / "f.jsonl"
    facts.write_text('{"question": "A chair?", "answers": ["chair"]}\n', encoding="utf-8")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Create a 3D model of a table."}\n', encoding="utf-8")
    out = tmp_path / "o"
    code = main(
        [
            "eval",
            "language-kept",
            "--model",
            "bundled",
            "--facts",
            str(facts),
            "--open",
            str(prompts),
            "--chats",
            str(out / "open.jsonl"),
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    assert "Loading weights" not in capfd.readouterr().err  # transformers' bar stays off
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reply_perplexity_chats"] == 1 and metrics["facts"] == 1
    ppl = metrics["reply_perplexity"]
    assert 1.0 <= ppl < 1.5
    again = reply_perplexity(modelfolder.BUNDLED_MODEL, reply_pairs(out / "open.jsonl"), threads=1)
    assert math.isclose(ppl, again, rel_tol=1e-6)
