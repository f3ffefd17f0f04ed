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
