"""Whole-number tokens added to a pretrained base's tokenizer (recipe field ``number_tokens``,
meshlm/train/number_tokens.py): a tiny Llama with a digit-by-digit tokenizer (SmolLM2's kind),
built here, trained as a LoRA adapter whose added rows train with it, merged, and continued."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from meshlm.cli import main  # noqa: E402
from meshlm.train.config import ConfigError, TrainConfig  # noqa: E402
from meshlm.train.number_tokens import (  # noqa: E402
    add_number_tokens,
    init_number_rows,
    number_token_strings,
)

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import make_dataset  # noqa: E402

LINE = "v 12 0 63\n"


def digit_tokenizer(texts):
    """A byte-level BPE that spells every number digit by digit, with meshlm's chat layout."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from meshlm.train import tokenizer as mtok

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=mtok.SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=mtok.BOS,
        eos_token=mtok.EOT,
        pad_token=mtok.PAD,
        additional_special_tokens=[mtok.EOS, mtok.START_HEADER, mtok.END_HEADER],
        chat_template=mtok.CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n_train=32, n_val=4, n_test=4)


@pytest.fixture(scope="module")
def base_dir(data_dir, tmp_path_factory) -> Path:
    """A pretrained-looking base: digit tokenizer + tiny tied Llama, saved as a model folder."""
    import transformers

    texts = []
    for line in (data_dir / "train.jsonl").read_text().splitlines():
        texts += [m["content"] for m in json.loads(line)["messages"]]
    tok = digit_tokenizer(texts)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("base")
    transformers.LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def lora_cfg(data_dir, base_dir, out, **kw) -> TrainConfig:
    values = dict(
        model=str(base_dir),
        method="lora",
        number_tokens=64,
        loss_averaging="mesh",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        max_length=512,
        learning_rate=1e-2,
        warmup_steps=0,
        global_batch_size=2,
        per_device_batch_size=2,
        max_steps=4,
        logging_steps=1,
        eval_steps=0,
        save_steps=100,
        data_dir=str(data_dir),
        output_dir=str(out),
    )
    return TrainConfig.from_dict({**values, **kw})


def test_strings_and_the_plan_on_a_digit_tokenizer(base_dir):
    import transformers

    assert number_token_strings(3) == [" 0", " 1", " 2"]
    assert number_token_strings(2, relative=True) == [" 0", " 1", " -1", " -2"]
    tok = transformers.AutoTokenizer.from_pretrained(base_dir)
    size = len(tok)
    before = tok(LINE, add_special_tokens=False)["input_ids"]
    assert len(before) > 5  # digit by digit
    plan = add_number_tokens(tok, 64)
    assert sorted(plan) == list(range(size, size + 64)) and len(tok) == size + 64
    ids = tok(LINE, add_special_tokens=False)["input_ids"]
    assert len(ids) == 5 and tok.decode(ids) == LINE  # v, three numbers, newline; lossless
    assert tok.convert_ids_to_tokens(ids[1]) == " 12"
    text = "In 1969, 3 men"  # longer numbers still read back exactly
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    again = transformers.AutoTokenizer.from_pretrained(base_dir)
    assert add_number_tokens(again, 64) == plan  # deterministic

    model = __import__("transformers").AutoModelForCausalLM.from_pretrained(base_dir)
    old = model.get_input_embeddings().weight.detach().clone()
    init_number_rows(model, plan, len(tok))
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == size + 64 and torch.equal(weight[:size], old)
    new_id = tok.convert_tokens_to_ids(" 12")
    assert torch.allclose(weight[new_id], old[plan[new_id]].mean(dim=0))
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # still tied


def test_adapter_trains_the_added_rows_merges_and_continues(data_dir, base_dir, tmp_path):
    import transformers
    from safetensors.torch import load_file

    from meshlm.train import train

    out = tmp_path / "adapter"
    assert train(lora_cfg(data_dir, base_dir, out)).global_step == 4
    tok = transformers.AutoTokenizer.from_pretrained(out)
    base_tok = transformers.AutoTokenizer.from_pretrained(base_dir)
    assert len(tok) == len(base_tok) + 64
    assert len(tok(LINE, add_special_tokens=False)["input_ids"]) == 5
    meta = json.loads((out / "meshlm.json").read_text())
    assert meta["recipe"]["number_tokens"] == 64
    saved = load_file(out / "adapter_model.safetensors")
    assert not any("base_layer" in k for k in saved)  # not the whole embedding matrices
    rows = [v for k, v in saved.items() if "trainable_tokens" in k]
    trained = {k: v for k, v in saved.items() if "trainable_tokens" in k}
    assert [k.split(".token_adapter")[0].rsplit(".", 1)[-1] for k in trained] == ["embed_tokens"]
    assert not any("base_layer" in k for k in saved)  # not the whole embedding matrices
    rows = list(trained.values())
    assert rows[0].shape == (64, 32)  # only the added rows (the output side is tied to them)
    # they trained: not their initial value (the mean of their digits' rows)
    plan = add_number_tokens(base_tok, 64)
    initial = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    init_number_rows(initial, plan, len(base_tok))
    start = initial.get_input_embeddings().weight[sorted(plan)]
    assert (rows[0] - start).abs().max() > 1e-3

    merged_dir = tmp_path / "merged"
    assert main(["merge", str(out), "-o", str(merged_dir)]) == 0
    merged = transformers.AutoModelForCausalLM.from_pretrained(merged_dir)
    emb = merged.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) and torch.allclose(emb[sorted(plan)], rows[0])
    assert torch.allclose(merged.get_output_embeddings().weight[sorted(plan)], rows[0])
    assert len(transformers.AutoTokenizer.from_pretrained(merged_dir)) == len(tok)

    # a second stage continues the adapter, its rows included
    stage2 = tmp_path / "stage2"
    train(
        lora_cfg(
            data_dir, base_dir, stage2, learning_rate=1e-12, max_steps=1, init_adapter=str(out)
        )
    )
    saved2 = load_file(stage2 / "adapter_model.safetensors")
    rows2 = [v for k, v in saved2.items() if "trainable" in k]
    assert torch.allclose(rows2[0], rows[0], atol=1e-6)
    with pytest.raises(ConfigError, match="number_tokens=0 but the adapter carries trained"):
        train(lora_cfg(data_dir, base_dir, tmp_path / "x", number_tokens=0, init_adapter=str(out)))


def test_number_tokens_are_refused_where_they_cannot_apply(tmp_path):
    with pytest.raises(ConfigError, match="number_tokens must be 0..1024"):
        TrainConfig(number_tokens=2000).validate()
    with pytest.raises(ConfigError, match="scratch model's tokenizer has every number"):
        TrainConfig(model="scratch", number_tokens=64).validate()
    with pytest.raises(ConfigError, match="not trained under QLoRA"):
        TrainConfig(
            model="some/base", method="qlora", number_tokens=64, loss_averaging="mesh"
        ).validate()
    with pytest.raises(ConfigError, match="needs loss_averaging 'mesh'"):
        TrainConfig(model="some/base", method="lora", number_tokens=64).validate()


def test_build_data_counts_the_budget_with_the_number_tokens(base_dir, capsys):
    """build-data --number-tokens N measures rows as a recipe with number_tokens N trains them,
    so meshes that fit only with whole-number tokens are kept."""
    from meshlm.data.assemble import TokenCounter
    from meshlm.data.build import BuildConfig, BuildError

    chat = [[{"role": "user", "content": "A box."}, {"role": "assistant", "content": LINE * 8}]]
    digits = TokenCounter(str(base_dir)).count(chat)[0]
    whole = TokenCounter(str(base_dir), number_tokens=64).count(chat)[0]
    plain = TokenCounter(str(base_dir)).tok(LINE, add_special_tokens=False)["input_ids"]
    assert digits - whole == 8 * (len(plain) - 5)  # every mesh line now costs 5 tokens
    with pytest.raises(BuildError, match="--number-tokens needs --tokenizer"):
        BuildConfig(out=Path("unused"), number_tokens=64).validate()
    assert main(["build-data", "--help"]) == 0
    assert "--number-tokens" in capsys.readouterr().out


def test_a_number_token_run_resumes_from_its_checkpoint(data_dir, base_dir, tmp_path):
    from safetensors.torch import load_file

    from meshlm.train import train

    out = tmp_path / "run"
    first = train(lora_cfg(data_dir, base_dir, out, max_steps=2, save_steps=2))
    assert first.global_step == 2 and (out / "checkpoint-2").is_dir()
    again = train(lora_cfg(data_dir, base_dir, out, max_steps=4, save_steps=2))
    assert again.resumed_from and again.resumed_from.endswith("checkpoint-2")
    assert again.global_step == 4
    saved = load_file(out / "adapter_model.safetensors")
    assert [v.shape for k, v in saved.items() if "trainable_tokens" in k] == [(64, 32)]
