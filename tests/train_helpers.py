"""Helpers for the training tests: a tiny dataset folder in the builder's format, built here.

Rows follow the dataset builder's contract: ``{"messages": [...], "task", "source"}`` in
``train.jsonl`` / ``validation.jsonl`` / ``test.jsonl`` plus ``manifest.json``. Meshes are trimesh
primitives encoded with :func:`meshlm.codec.encode`. Also runnable as a script::

    python tests/train_helpers.py OUT_DIR --train 400 --val 40
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from meshlm.codec import encode

ASK = ["Create a 3D model of {c}.", "Make a low poly mesh of {c}.", "Build {c} as an OBJ mesh."]
NAME = ["What is this object?\n{m}", "Name the shape of this mesh:\n{m}"]
CHAT = [
    ("Hi, who are you?", "I am meshlm, I make 3D meshes from text."),
    ("What is a mesh?", "A set of vertices joined by triangular faces."),
]


def _shape(rng: np.random.Generator, detail: int):
    import trimesh

    kind = ["box", "cylinder", "cone", "sphere"][int(rng.integers(4))]
    if kind == "box":
        ext = rng.uniform(0.3, 1.0, 3)
        m = trimesh.creation.box(extents=ext)
        word = "a flat box" if ext[1] < 0.5 else "a tall box"
    elif kind == "cylinder":
        m = trimesh.creation.cylinder(
            radius=float(rng.uniform(0.2, 0.5)),
            height=float(rng.uniform(0.3, 1.0)),
            sections=6 + detail,
        )
        word = "a cylinder"
    elif kind == "cone":
        m = trimesh.creation.cone(
            radius=float(rng.uniform(0.2, 0.5)),
            height=float(rng.uniform(0.3, 1.0)),
            sections=6 + detail,
        )
        word = "a cone"
    else:
        m = trimesh.creation.icosphere(subdivisions=1 if detail > 4 else 0)
        word = "a ball"
    return kind, word, encode(m.vertices, m.faces)


def make_rows(n: int, seed: int, detail: int = 2) -> list[dict]:
    """``n`` conversations: generation, understanding and general chat, in a 4:2:1 rhythm."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind, word, mesh = _shape(rng, detail)
        r = i % 7
        if r < 4:
            msgs = [
                {"role": "user", "content": ASK[r % len(ASK)].format(c=word)},
                {"role": "assistant", "content": mesh},
            ]
            task = "generation"
        elif r < 6:
            msgs = [
                {"role": "user", "content": NAME[r % 2].format(m=mesh)},
                {"role": "assistant", "content": f"It is {word}."},
            ]
            task = "understanding"
        else:
            q, a = CHAT[i % len(CHAT)]
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            task = "general"
        if i % 5 == 0:
            msgs.insert(0, {"role": "system", "content": "You are a 3D modelling assistant."})
        rows.append({"messages": msgs, "task": task, "source": f"test:{kind}"})
    return rows


def make_dataset(
    out: str | Path,
    n_train: int = 64,
    n_val: int = 8,
    n_test: int = 8,
    seed: int = 0,
    detail: int = 2,
) -> Path:
    """Write a tiny dataset folder and return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, n, s in (
        ("train", n_train, seed),
        ("validation", n_val, seed + 1),
        ("test", n_test, seed + 2),
    ):
        rows = make_rows(n, s, detail)
        with (out / f"{split}.jsonl").open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        counts[split] = n
    (out / "manifest.json").write_text(
        json.dumps(
            {"format": {"bins": 64}, "counts": counts, "seed": seed, "source": "tests"}, indent=1
        )
    )
    return out


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--train", type=int, default=400)
    p.add_argument("--val", type=int, default=40)
    p.add_argument("--detail", type=int, default=2, help="extra cylinder/cone sections")
    a = p.parse_args()
    print(make_dataset(a.out, a.train, a.val, a.val, detail=a.detail), file=sys.stderr)
