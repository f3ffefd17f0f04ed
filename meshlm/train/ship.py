"""Copy a trained LoRA adapter folder into a shipped one, its weights stored at half width.

A shipped adapter is package data (``meshlm/models/<name>``), so its size is the wheel's: an
fp32 adapter of SmolLM2-135M at r=32 on every linear layer, with the 256 number-token rows, is
40 MB. Stored as float16 it is 20 MB; the loader (PEFT, :func:`meshlm.train.merge.merge_adapter`)
casts it back to the base's dtype, so what is lost is float16 rounding of the adapter's values
(relative 2^-11; LoRA factors and embedding rows are far from float16's range limits). The
folder's ``meshlm.json`` records it (``extra.stored_dtype``) and stays the description of the
run (recipe, data manifest, metrics).

    python -m meshlm.train.ship RUN_DIR SHIPPED_DIR

Bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from meshlm import exemplars, modelfolder, part_templates
from meshlm.errors import MeshlmError, require

WEIGHTS = "adapter_model.safetensors"
REQUIRED = ("adapter_config.json", WEIGHTS, modelfolder.FILE, "tokenizer.json",
            "tokenizer_config.json")  # fmt: skip
OPTIONAL = ("chat_template.jinja", "loss.png", part_templates.FILE, exemplars.FILE)


def ship_adapter(run_dir: str | Path, out_dir: str | Path, dtype: str = "float16") -> Path:
    """Copy the adapter folder ``run_dir`` (``meshlm train``'s output) to ``out_dir``: the files
    an adapter needs to load (:data:`REQUIRED`; :data:`OPTIONAL` when present), floating-point
    weight tensors cast to ``dtype`` (``float16`` or ``float32``; others kept as they are).
    Files of an earlier ship that the run lacks are removed; others (the card, README.md) stay.
    Returns ``out_dir``. Raises MeshlmError when a required file is missing or unreadable,
    ``dtype`` is not one of those, a weight is not finite at ``dtype``, or ``out_dir`` is
    ``run_dir``; nothing is written then."""
    torch = require("torch", "train", "shipping an adapter")
    st = require("safetensors.torch", "train", "shipping an adapter")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if dtype not in ("float16", "float32"):
        raise MeshlmError(f"dtype must be float16 or float32, not {dtype!r}")
    if out_dir.resolve() == run_dir.resolve():
        raise MeshlmError(f"{out_dir}: the run folder itself (ship it to another folder)")
    missing = [n for n in REQUIRED if not (run_dir / n).is_file()]
    if missing:
        raise MeshlmError(f"{run_dir}: not a trained adapter folder (no {', '.join(missing)})")
    info = modelfolder.read(run_dir)
    if info is None:
        raise MeshlmError(f"{run_dir / modelfolder.FILE}: unreadable")
    try:
        tensors = st.load_file(str(run_dir / WEIGHTS))
    except Exception as exc:  # safetensors' own error type for a corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MeshlmError(f"{run_dir / WEIGHTS}: not a safetensors file ({first})") from None
    want = getattr(torch, dtype)
    tensors = {k: (v.to(want) if v.is_floating_point() else v) for k, v in tensors.items()}
    over = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    if over:
        raise MeshlmError(f"{run_dir / WEIGHTS}: {over[0]} is not finite as {dtype}")
    out_dir.mkdir(parents=True, exist_ok=True)
    st.save_file(tensors, str(out_dir / WEIGHTS), metadata={"format": "pt"})
    for name in REQUIRED + OPTIONAL:
        if name in (WEIGHTS, modelfolder.FILE):
            continue
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out_dir / name)
        elif (out_dir / name).is_file():  # an earlier ship's, which this run does not have
            (out_dir / name).unlink()
    info.extra["stored_dtype"] = dtype
    modelfolder.write(out_dir, info)
    return out_dir


def _main(argv: list[str]) -> int:
    try:
        if len(argv) != 2:
            raise MeshlmError("usage: python -m meshlm.train.ship RUN_DIR SHIPPED_DIR")
        out = ship_adapter(argv[0], argv[1])
    except (MeshlmError, OSError) as e:
        print(f"ship: {e}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"{out}: {size:.1f} MB")
    return 0


if __name__ == "__main__":
    from meshlm._quiet import install

    install()
    sys.exit(_main(sys.argv[1:]))
