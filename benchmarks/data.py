"""Dataset-builder throughput: meshes per second through load + 4 rotations + encode.

Corpus: N procedural shapes from ``meshlm.shapes.write_corpus`` (real OBJ files, <= 500 faces,
varied families), written to a temporary folder first (not timed).

Measured in the same run, each on the same files:

* ``pipeline, 2 workers`` -- :func:`meshlm.data.build.process_all` with 2 worker processes:
  load (meshlm.files.load_mesh), rotate by 0/90/180/270 about Y, canonical encode, drop repeated
  rotations, append+flush one checkpoint line per mesh. Timed from pool start to last record.
* ``pipeline, 1 worker`` -- the same, in-process (the baseline for the speed-up).
* ``naive text`` -- trimesh.load + trimesh's own OBJ export of the 4 rotations, in-process:
  what a script without meshlm would do to get (float, non-canonical) text.
* ``full build, 2 workers`` -- ``build_dataset`` end to end (collect, process, conversations,
  split, mix, write jsonl + hf + manifest), for context.

Run: ``python benchmarks/data.py [--n 2000]``. Prints one line per measurement and the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def naive(files: list[Path], rotations=(0, 90, 180, 270)) -> None:
    import trimesh

    for p in files:
        m = trimesh.load(p, force="mesh", process=True)
        for r in rotations:
            t = m.copy()
            t.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(r), [0, 1, 0]))
            t.export(file_type="obj")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of meshes")
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement (best kept)")
    args = ap.parse_args()

    from meshlm.data.build import BuildConfig, collect, process_all
    from meshlm.data.pipeline import build_dataset
    from meshlm.shapes import write_corpus

    tmp = Path(tempfile.mkdtemp(prefix="meshlm-bench-"))
    corpus = tmp / "corpus"
    t0 = time.perf_counter()
    write_corpus(corpus, args.n, seed=0)
    files = sorted(corpus.glob("*.obj"))
    faces = []
    for p in files[:200]:
        faces.append(sum(1 for ln in p.read_text().splitlines() if ln.startswith("f ")))
    print(
        f"corpus: {len(files)} OBJ files, faces mean {np.mean(faces):.0f} / max {max(faces)} "
        f"(first 200), written in {time.perf_counter() - t0:.1f}s"
    )

    cfg = BuildConfig(out=str(tmp / "unused"), meshes=[str(corpus)], progress=False)
    objects = collect(cfg).objects
    params = cfg.process_params()

    def pipeline(workers: int) -> float:
        best = float("inf")
        for k in range(args.repeats):
            ck = tmp / f"ck-{workers}-{k}.jsonl"
            t = time.perf_counter()
            recs = process_all(objects, params, ck, workers=workers, progress=False)
            best = min(best, time.perf_counter() - t)
            assert len(recs) == len(objects)
            assert all(r["status"] == "ok" for r in recs.values())
        return len(objects) / best

    results = {}
    results["pipeline, 2 workers"] = pipeline(2)
    results["pipeline, 1 worker"] = pipeline(1)
    best = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        naive(files)
        best = min(best, time.perf_counter() - t)
    results["naive text (trimesh load + OBJ export), 1 process"] = len(files) / best
    t = time.perf_counter()
    m = build_dataset(
        BuildConfig(out=str(tmp / "full"), meshes=[str(corpus)], workers=2, progress=False)
    )
    results["full build_dataset, 2 workers"] = len(files) / (time.perf_counter() - t)

    print(
        f"date {datetime.date.today()}  machine {platform.machine()} "
        f"{os.cpu_count()} cores  python {platform.python_version()}"
    )
    for name, rate in results.items():
        print(f"{name:55s} {rate:8.0f} meshes/s")
    base = results["pipeline, 2 workers"]
    one = results["pipeline, 1 worker"]
    print(f"2 workers vs 1 worker (same pipeline):      {base / one:.2f}x")
    print(
        f"2 workers vs naive text baseline:           "
        f"{base / results['naive text (trimesh load + OBJ export), 1 process']:.2f}x"
    )
    print(
        f"full build: {m['counts']['encodings_kept']} meshes kept "
        f"({m['counts']['rotation_duplicates_dropped']} repeated rotations dropped), "
        f"{m['counts']['rows_total']} rows"
    )
    print("target >= 200 meshes/s with 2 workers:", "met" if base >= 200 else "NOT met")


if __name__ == "__main__":
    main()
