"""meshlm works installed, not only in the repository: the wheel holds the bundled model, an
installed copy (not this checkout) finds it from another folder and generates offline, and the
``infer`` extra brings what generation needs and nothing of training (trl, objaverse).

The wheel is built from a copy of the tracked and new files (``git ls-files``), offline
(``--no-build-isolation``: setuptools from this environment); it is unpacked with ``pip install
--no-deps --target`` and run with this environment's torch/transformers on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from meshlm import modelfolder

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_REL = "meshlm/models/meshlm-bundled"
TRAINING_ONLY = ("trl", "objaverse", "peft", "datasets")

pytestmark = pytest.mark.slow  # builds a 35 MB wheel and runs the bundled model twice


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the package's files")
    src = tmp_path_factory.mktemp("src")
    files = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    r = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ]
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("meshlm-*.whl")
    return whl


def test_wheel_holds_the_bundled_model_and_declares_the_infer_extra(wheel):
    tracked = {p.name for p in modelfolder.BUNDLED_MODEL.iterdir() if p.is_file()}
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith(BUNDLED_REL + "/")}
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        for name in ("meshlm.json", "model.safetensors", "model-f16.gguf"):
            info = z.getinfo(f"{BUNDLED_REL}/{name}")
            assert info.file_size == (modelfolder.BUNDLED_MODEL / name).stat().st_size
    assert (
        shipped == tracked
        and {
            "config.json",
            "tokenizer.json",
            "chat_template.jinja",
            "generation_config.json",
            "meshlm.json",
        }
        <= shipped
    )
    assert not any(n.startswith(("tests/", "models/", "data/")) for n in names)
    extra = {
        re.split(r"[<>=!~; \[]", line.removeprefix("Requires-Dist: "))[0]
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and 'extra == "infer"' in line
    }
    assert extra == {"torch", "transformers", "tokenizers"}


def _installed(wheel: Path, target: Path) -> dict:
    r = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ]
    )
    assert r.returncode == 0, r.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "MESHLM_MODEL"}
    return {
        **env,
        "PYTHONPATH": str(target),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


DRIVER = """
import json, sys
from meshlm.cli import main
rc = main(sys.argv[1:])
import meshlm, meshlm.modelfolder as mf
print(json.dumps({"rc": rc, "meshlm": meshlm.__file__, "bundled": str(mf.BUNDLED_MODEL),
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.parametrize("backend", ["auto", "transformers"])
def test_installed_wheel_generates_offline_from_another_folder(wheel, tmp_path, backend):
    """``pip install`` (not editable) then ``meshlm generate "a table" -o t.obj`` elsewhere:
    the installed package's bundled model is found and nothing of training is imported."""
    target, work = tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    env = _installed(wheel, target)
    r = _run(
        [
            sys.executable,
            "-c",
            DRIVER,
            "generate",
            "a table",
            "-o",
            "t.obj",
            "--backend",
            backend,
            "--threads",
            "1",
            "--max-new-tokens",
            "1500",
        ],
        cwd=work,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0
    assert Path(got["meshlm"]).is_relative_to(target)  # the installed copy, not this checkout
    assert Path(got["bundled"]) == target / BUNDLED_REL
    lines = (work / "t.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in lines) >= 3
    assert sum(line.startswith("f ") for line in lines) >= 1
    loaded = set(got["modules"])
    assert not loaded & set(TRAINING_ONLY), loaded & set(TRAINING_ONLY)
    if backend == "transformers":
        assert "transformers" in loaded and "torch" in loaded
