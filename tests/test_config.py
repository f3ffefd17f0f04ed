"""One config mechanism (meshlm.config + meshlm.cli.options): the options of ``build-data`` and
``train`` are the fields of BuildConfig and TrainConfig (names, defaults, help), recipes are read
into the same dataclass, and a dry run needs no torch or transformers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from meshlm.cli import app, main
from meshlm.config import ConfigError, coerce, field_types
from meshlm.data.build import BuildConfig
from meshlm.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]

# Options of the commands that are not config fields.
OWN = {"build-data": {"help"}, "train": {"help", "config", "dry_run", "help_config"}}
CONFIGS = {"build-data": BuildConfig, "train": TrainConfig}

# build-data's option names before they were derived (README, Makefile and docs use them).
BUILD_DATA_FLAGS = {
    *("--out -o --meshes --captions --name-captions --procedural --max-segments --family".split()),
    *("--objaverse --objaverse-cache --objaverse-download --general-chat --general-split".split()),
    *("--max-faces --min-faces --decimate --rotations --bins --format --seed --workers -j".split()),
    *("--shard --num-shards --tokenizer --max-length --number-tokens --system-prompt".split()),
    *("--mix --multi-turn".split()),
    *("--gen-per-family --gen-repeats --gen-targets --phrasings --splits --overwrite".split()),
    *("--progress --no-progress --max-file-bytes --plan --plan-boxes".split()),
}


def _params(verb: str) -> dict:
    command = typer.main.get_command(app).commands[verb]
    return {p.name: p for p in command.params}


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}


@pytest.mark.parametrize("verb", ["build-data", "train"])
def test_every_field_is_an_option_with_its_default_and_help(verb):
    cls, params = CONFIGS[verb], _params(verb)
    fields, types_ = _fields(cls), field_types(cls)
    assert set(params) - OWN[verb] == set(fields)  # no option without a field, and back
    for name, f in fields.items():
        p = params[name]
        assert p.help == f.metadata["help"] and p.help.strip(), name
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            assert p.required, name
            continue
        want = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        got = p.default
        if p.multiple:
            got = [x for item in got for x in coerce(name, item, types_[name])]
        else:
            got = coerce(name, got, types_[name])
        assert got == want and type(got) is type(want), (name, p.default, want)


def test_no_field_is_left_off_the_command_line_but_the_recipe_path():
    """A field kept off the command line is deliberate: only TrainConfig.recipe (the loader
    sets it)."""
    off = {
        (cls.__name__, f.name)
        for cls in CONFIGS.values()
        for f in dataclasses.fields(cls)
        if not f.metadata.get("cli", True)
    }
    assert off == {("TrainConfig", "recipe")}


def test_build_data_keeps_its_option_names_and_train_its_recipe_keys():
    params = _params("build-data")
    names = {o for p in params.values() for o in (*p.opts, *p.secondary_opts)}
    assert names == BUILD_DATA_FLAGS
    train = _params("train")
    for name in _fields(TrainConfig):
        assert f"--{name}" in train[name].opts
        if field_types(TrainConfig)[name] is bool:
            assert train[name].secondary_opts == [f"--no-{name}"]


def _words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("verb", ["build-data", "train"])
def test_help_lists_every_option_with_its_help_and_default(verb):
    env = {**os.environ, "COLUMNS": "160", "TERMINAL_WIDTH": "160", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "meshlm", verb, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    # Rows wrap inside the table: read it as one stream of words, row by row in option order.
    text = _words(out[out.index("Options") :]) + " "
    params = [p for p in _params(verb).values() if p.name not in OWN[verb]]
    starts = []
    for p in params:
        starts.append(text.index(f" {p.opts[0]} ", starts[-1] + 1 if starts else 0))
    for p, begin, end in zip(params, starts, [*starts[1:], len(text)], strict=True):
        row = text[begin:end]
        assert _words(p.help) in row, p.name
        if p.required:
            shown = "required"
        elif p.secondary_opts:  # --x/--no-x: the default's spelling
            shown = "default: " + (p.opts if p.default else p.secondary_opts)[0][2:]
        elif p.multiple and p.default:
            shown = f"default: {', '.join(p.default)}"
        elif p.default is None or p.default is False or p.default == []:
            assert "[default" not in row, p.name
            continue
        else:
            shown = f"default: {p.default}"
        assert f"[{shown}]" in row, (p.name, row)


def test_unknown_recipe_key_fails_in_one_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: scratch\n\nlearning_rat: 0.001\nmax_steps: 3\n")
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"meshlm: error: {recipe}:3: unknown config key 'learning_rat' "
        "(did you mean 'learning_rate'?)\n"
    )
    recipe.write_text("zzz: 1\n")
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 1
    assert capsys.readouterr().err == f"meshlm: error: {recipe}:1: unknown config key 'zzz'\n"


def test_bad_values_fail_in_one_line_naming_file_or_option(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("max_steps: many\n")
    assert main(["train", "--config", str(recipe), "--dry-run"]) == 1
    assert capsys.readouterr().err == (
        f"meshlm: error: {recipe}: max_steps: expected int, got 'many'\n"
    )
    assert main(["build-data", "--out", str(tmp_path / "o"), "--mix", "1,0"]) == 1
    assert capsys.readouterr().err == (
        "meshlm: error: --mix: expected 3 comma-separated float values, got '1,0'\n"
    )
    assert main(["build-data", "--out", str(tmp_path / "o"), "--rotations", "0,x"]) == 1
    assert capsys.readouterr().err == "meshlm: error: --rotations: expected int, got 'x'\n"
    assert not (tmp_path / "o").exists()


def test_coerce_reads_text_as_the_field_type():
    assert coerce("k", "null", int | None) is None
    assert coerce("k", "12", int | None) == 12
    assert coerce("k", "0,90, 180", tuple[int, ...]) == (0, 90, 180)
    assert coerce("k", "[0, 90]", tuple[int, ...]) == (0, 90)
    assert coerce("k", [1, 0, 0], tuple[float, float, float]) == (1.0, 0.0, 0.0)
    assert coerce("k", "[q_proj, v_proj]", list[str]) == ["q_proj", "v_proj"]
    assert coerce("k", "all-linear", list[str]) == ["all-linear"]
    assert coerce("k", "off", bool) is False and coerce("k", "3e-4", float) == 3e-4
    assert coerce("k", 8.0, int) == 8 and coerce("k", 8, float) == 8.0
    for value, hint in [("8.5", int), (True, int), ("maybe", bool), ([1], str), ("1,2", tuple)]:
        if hint is tuple:
            hint = tuple[float, float, float]
        with pytest.raises(ConfigError, match="^k: expected"):
            coerce("k", value, hint)


def test_train_dry_run_needs_no_torch_or_transformers(tmp_path):
    """The documented dry run works where only the CLI and pyyaml are installed: the heavy
    packages are made unimportable in the child process."""
    code = (
        "import sys\n"
        "for m in ('torch', 'transformers', 'trl', 'peft', 'accelerate', 'datasets'):\n"
        "    sys.modules[m] = None\n"
        "from meshlm.cli import main\n"
        "sys.exit(main(['train', '--config', 'recipes/bundled.yaml', '--dry-run']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    import json

    plan = json.loads(proc.stdout)
    cfg = TrainConfig.load(ROOT / "recipes" / "bundled.yaml")
    assert plan["gradient_accumulation_steps"] == cfg.gradient_accumulation_steps()
    assert plan["scratch_model"]["parameters"] == 5_770_496  # = the model transformers builds
