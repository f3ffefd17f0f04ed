"""meshlm.train.ship: a trained adapter folder copied into a shipped one at half width."""

from __future__ import annotations

import json

import pytest

from meshlm import modelfolder
from meshlm.errors import MeshlmError
from meshlm.train.ship import REQUIRED, _main, ship_adapter

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")


def _run(folder):
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    st.save_file(
        {
            "base_model.model.layers.0.q_proj.lora_A.weight": torch.randn(64, 64, generator=g),
            "base_model.model.embed.token_adapter.trainable_tokens_delta": 0.02
            * torch.randn(32, 64, generator=g),
            "step": torch.tensor([7], dtype=torch.int64),
        },
        str(folder / "adapter_model.safetensors"),
    )
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "part_templates.json").write_text('{"templates": []}')
    info = modelfolder.ModelInfo(
        format=modelfolder.MeshFormat("parts", 64), kind="adapter", recipe={"max_steps": 440}
    )
    info.extra["global_step"] = 440
    modelfolder.write(folder, info)
    return folder


def test_an_adapter_is_shipped_at_half_width_and_says_so(tmp_path):
    run = _run(tmp_path / "run")
    out = ship_adapter(run, tmp_path / "shipped")
    before = st.load_file(str(run / "adapter_model.safetensors"))
    after = st.load_file(str(out / "adapter_model.safetensors"))
    assert after.keys() == before.keys()
    for k, v in before.items():
        if v.is_floating_point():
            assert after[k].dtype == torch.float16
            assert torch.allclose(after[k].float(), v, rtol=2**-10, atol=1e-7)
        else:  # integers are kept as they are
            assert after[k].dtype == v.dtype and torch.equal(after[k], v)
    assert (out / "adapter_model.safetensors").stat().st_size < 0.75 * (
        run / "adapter_model.safetensors"
    ).stat().st_size
    info = modelfolder.read(out)
    assert info.format.name == "parts" and info.kind == "adapter"
    assert info.recipe == {"max_steps": 440} and info.extra["global_step"] == 440
    assert info.extra["stored_dtype"] == "float16"
    for name in (*REQUIRED, "part_templates.json"):
        assert (out / name).is_file()
    assert (out / "part_templates.json").read_text() == '{"templates": []}'
    assert not (out / "loss.png").exists()  # optional, absent in the run


def test_a_folder_that_is_no_trained_adapter_is_one_line_and_nothing_written(tmp_path, capsys):
    run = _run(tmp_path / "run")
    (run / "tokenizer.json").unlink()
    with pytest.raises(MeshlmError, match=r"not a trained adapter folder \(no tokenizer.json\)"):
        ship_adapter(run, tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()
    assert _main([str(run), str(tmp_path / "shipped")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ship: ") and "tokenizer.json" in err
    with pytest.raises(MeshlmError, match="float16 or float32"):
        ship_adapter(run, tmp_path / "shipped", dtype="bfloat16")


def test_a_shipped_adapter_loads_through_peft_and_gives_the_runs_logits(tmp_path):
    """The strongest property: a tiny Llama with LoRA and trainable token rows (as the number
    tokens are trained), its run folder and its float16 ship loaded by PEFT on a float32 base
    give the same logits to float16 rounding, and the merged model stays float32."""
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path / "base")
    lora = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
        trainable_token_indices=list(range(80, 96)), task_type="CAUSAL_LM",
    )  # fmt: skip
    model = peft.get_peft_model(
        transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base"), lora
    )
    with torch.no_grad():  # trained-looking values (LoRA's B starts at zero)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    run = tmp_path / "run"
    model.save_pretrained(run)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (run / name).write_text("{}")
    modelfolder.write(run, modelfolder.ModelInfo(format=modelfolder.MeshFormat("parts", 64)))
    shipped = ship_adapter(run, tmp_path / "shipped")
    ids = torch.tensor([[1, 5, 81, 90, 7, 95, 3]])

    def logits(folder):
        base = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base")
        m = peft.PeftModel.from_pretrained(base, str(folder))
        with torch.no_grad():
            out = m(ids).logits
        merged = m.merge_and_unload()
        assert {p.dtype for p in merged.parameters()} == {torch.float32}
        return out

    a, b = logits(run), logits(shipped)
    assert not torch.equal(a, b)  # the weights were rounded ...
    assert torch.allclose(a, b, atol=2e-3)  # ... and that is all


def test_bad_weights_the_run_folder_itself_and_stale_files(tmp_path):
    run = _run(tmp_path / "run")
    out = tmp_path / "shipped"
    with pytest.raises(MeshlmError, match="the run folder itself"):
        ship_adapter(run, run)
    out.mkdir()
    (out / "README.md").write_text("card")
    (out / "loss.png").write_bytes(b"old")  # an earlier ship's, which this run lacks
    ship_adapter(run, out)
    assert (out / "README.md").read_text() == "card" and not (out / "loss.png").exists()
    (run / "adapter_model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(MeshlmError, match="not a safetensors file"):
        ship_adapter(run, tmp_path / "other")
    big = {"w": torch.full((4, 4), 1e6)}  # beyond float16's range
    st.save_file(big, str(run / "adapter_model.safetensors"))
    with pytest.raises(MeshlmError, match="w is not finite as float16"):
        ship_adapter(run, tmp_path / "other")
    assert not (tmp_path / "other").exists()
