"""Codec speed: meshlm encode+decode vs trimesh's own OBJ export+load of the same meshes.

Baseline (named, measured in the same run): ``trimesh.exchange.obj.export_obj`` to a string and
``trimesh.load`` of that string (file_type="obj", process=True), which is what a user would do
to turn a mesh into OBJ text and back. Target: meshlm >= 20x faster on meshes of <= 500 faces.
meshlm is timed twice: with its compiled kernel (``meshlm._ccodec``, built at install when a C
compiler is present -- what users get) and on numpy alone (``MESHLM_PURE_NUMPY=1`` behaviour).

    python benchmarks/codec.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import platform
import time

import numpy as np
import trimesh

import meshlm.codec as codec
from meshlm import decode, encode


def corpus() -> dict[str, list[trimesh.Trimesh]]:
    rng = np.random.default_rng(0)
    small, large = [], []
    for i in range(60):
        kind = i % 6
        if kind == 0:
            m = trimesh.creation.icosphere(subdivisions=int(rng.integers(1, 3)))
        elif kind == 1:
            m = trimesh.creation.cylinder(0.3, 1.0, sections=int(rng.integers(6, 40)))
        elif kind == 2:
            m = trimesh.creation.torus(1.0, 0.3, int(rng.integers(8, 20)), int(rng.integers(4, 10)))
        elif kind == 3:
            m = trimesh.creation.capsule(1.0, 0.4, count=[int(rng.integers(6, 14))] * 2)
        elif kind == 4:
            m = trimesh.creation.box(extents=rng.uniform(0.2, 2, 3))
        else:
            m = trimesh.creation.cone(0.5, 1.2, sections=int(rng.integers(6, 60)))
        m.apply_transform(trimesh.transformations.random_rotation_matrix(rng.random(3)))
        (small if len(m.faces) <= 500 else large).append(m)
    for sub in (3, 4):
        large.append(trimesh.creation.icosphere(subdivisions=sub))
    large.append(trimesh.creation.torus(1.0, 0.3, 64, 32))
    return {"<=500 faces": small, ">500 faces": large}


def bench(fn, meshes, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for m in meshes:
            fn(m)
        best = min(best, time.perf_counter() - t0)
    return best / len(meshes)


def meshlm_roundtrip(m):
    decode(encode(m.vertices, m.faces))


def trimesh_roundtrip(m):
    text = trimesh.exchange.obj.export_obj(m)
    trimesh.load(io.BytesIO(text.encode()), file_type="obj", process=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} "
        f"python {platform.python_version()}"
    )
    kernel = codec._ccodec
    print(f"compiled kernel: {'built' if kernel is not None else 'NOT built (numpy only)'}")
    print(
        f"{'group':<12} {'meshes':>6} {'faces(avg)':>10} {'kernel ms':>10} {'numpy ms':>9} "
        f"{'trimesh ms':>11} {'kernel x':>9} {'numpy x':>8}"
    )
    for name, meshes in corpus().items():
        faces = np.mean([len(m.faces) for m in meshes])
        for m in meshes:  # warm-up
            meshlm_roundtrip(m)
            trimesh_roundtrip(m)
        ours = bench(meshlm_roundtrip, meshes, args.repeat) if kernel is not None else float("nan")
        codec._ccodec = None
        try:
            pure = bench(meshlm_roundtrip, meshes, args.repeat)
        finally:
            codec._ccodec = kernel
        base = bench(trimesh_roundtrip, meshes, args.repeat)
        print(
            f"{name:<12} {len(meshes):>6} {faces:>10.0f} {ours * 1e3:>10.3f} {pure * 1e3:>9.3f} "
            f"{base * 1e3:>11.3f} {base / ours:>8.1f}x {base / pure:>7.1f}x"
        )


if __name__ == "__main__":
    main()
