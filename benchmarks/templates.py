"""Cost of the part-template constraint per decoding step, against the plain parts constraint
(the baseline, measured in the same run), idle and with CPU-bound jobs on ``--hogs`` cores.

Both walk the same token sequences: the canonical ``parts`` texts (64 bins) of procedural
multi-part shapes (tables, chairs, shelves, benches, cars, stairs; seeds 5000+, at
``--max-segments 6`` as data/smol-parts16) tokenized by the bundled tokenizer, then the end
token. Per step: ``PartsConstraint.allowed()`` (the ids the backends consume) and
``advance(token)``. Baseline: ``PartsConstraint`` alone (:class:`~meshlm.infer.grammar_parts.
PartsGrammar`); measured: ``PartsConstraint(templates=library)``
(:class:`~meshlm.infer.grammar_templates.TemplateGrammar`: templates, parts apart, parts in
canonical order). The library: ``--library`` (a model's ``part_templates.json``), else the
templates of the 16 families of data/smol-parts16 at seeds 0..``--library-seeds``-1 (walked
shapes are kept only when every part is in the library and no two parts share a vertex, so the
constrained walk takes them).

Times are wall clock (what a user waits; a hog shows here) and this thread's CPU time. Printed:
per-step median / mean / p99 µs, per-reply ms, and the ratios templates / plain and busy / idle.

    python benchmarks/templates.py [--hogs 1] [--repeat 2] [--library out/X/part_templates.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

# the families of data/smol-parts16 (its manifest's arguments)
FAMILIES = (
    "box cylinder cone pyramid arch table chair stool bench shelf bed stairs house car rocket"
)
FAMILIES += " snowman"
WALKED = ("table", "chair", "shelf", "bench", "car", "stairs")


def library(path: str | None, seeds: int):
    from meshlm.part_templates import TemplateLibrary
    from meshlm.parts import encode_parts
    from meshlm.shapes import make_shape

    if path:
        return TemplateLibrary.load(path)
    texts = []
    for fam in FAMILIES.split():
        for seed in range(seeds):
            s = make_shape(fam, seed, max_segments=6)
            texts.append(encode_parts(s.vertices, s.faces))
    return TemplateLibrary.from_texts(texts)


def walked(lib, per_family: int = 2) -> dict[str, str]:
    """Canonical texts of shapes not read into the library, all of whose parts it has, with no
    vertex in two parts."""
    from meshlm.part_templates import split_text, template_of
    from meshlm.parts import encode_parts
    from meshlm.shapes import make_shape

    known, out = set(lib.templates), {}
    for fam in WALKED:
        seed, got = 5000, 0
        while got < per_family and seed < 5200:
            s = make_shape(fam, seed, max_segments=6)
            text = encode_parts(s.vertices, s.faces)
            parts = split_text(text)
            corners = [p for v, _ in parts for p in set(v)]
            # every part a library part, none touching another (the constraint keeps parts
            # apart: a shared corner would be refused)
            if all(template_of(v, f) in known for v, f in parts) and len(set(corners)) == len(
                corners
            ):
                out[f"{fam}#{seed}"] = text
                got += 1
            seed += 1
    return out


def walk(index, seqs, lib) -> tuple[list[float], list[float], list[float]]:
    """Per-step µs (wall, CPU) and per-reply ms (wall) over every sequence."""
    from meshlm.infer.constrain_parts import PartsConstraint

    wall, cpu, reply = [], [], []
    for seq in seqs:
        r0 = time.perf_counter()
        c = PartsConstraint(index, max_preamble=0, templates=lib)
        for tok in seq:
            w0, t0 = time.perf_counter(), time.thread_time()
            c.allowed()
            c.advance(tok)
            cpu.append((time.thread_time() - t0) * 1e6)
            wall.append((time.perf_counter() - w0) * 1e6)
        assert c.done
        reply.append((time.perf_counter() - r0) * 1e3)
    return wall, cpu, reply


def stats(us) -> str:
    a = np.asarray(us)
    return f"{np.median(a):8.1f} {a.mean():8.1f} {np.percentile(a, 99):9.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hogs", type=int, default=1, help="CPU-bound jobs for the busy runs")
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting (best mean kept)")
    ap.add_argument("--library", default=None, help="a part_templates.json (default: procedural)")
    ap.add_argument("--library-seeds", type=int, default=60)
    args = ap.parse_args(argv)
    import transformers

    from meshlm import modelfolder
    from meshlm.infer.constrain import VocabIndex

    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    from meshlm.errors import MeshlmError

    try:
        lib = library(args.library, args.library_seeds)
    except MeshlmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    texts = walked(lib)
    tok = transformers.AutoTokenizer.from_pretrained(modelfolder.BUNDLED_MODEL)
    index = VocabIndex.for_tokenizer(tok, [tok.eos_token_id])
    seqs = [tok.encode(t, add_special_tokens=False) + [tok.eos_token_id] for t in texts.values()]
    print(
        f"library: {len(lib)} templates "
        f"({args.library or f'procedural, seeds 0..{args.library_seeds - 1}'}); "
        f"walked: {len(texts)} replies ({', '.join(texts)}), {sum(map(len, seqs))} steps, "
        f"{sum(t.count(chr(10)) + 1 for t in texts.values())} lines"
    )
    walk(index, seqs, lib)  # warm the vocabulary index and the caches shared by both
    res = {}
    for busy in (False, True):
        hogs = []
        if busy:
            spin = [sys.executable, "-c", "while True: pass"]
            hogs = [subprocess.Popen(spin) for _ in range(args.hogs)]
            time.sleep(1.0)
        try:
            for name, lb in (("plain", None), ("templates", lib)):
                runs = [walk(index, seqs, lb) for _ in range(args.repeat)]
                res[(name, busy)] = min(runs, key=lambda r: np.mean(r[0]))
        finally:
            for h in hogs:
                h.kill()
                h.wait()
    print("\nper step, µs              median     mean       p99   | per reply ms (mean)")
    for (name, busy), (wall, cpu, reply) in res.items():
        when = f"{args.hogs} core(s) busy" if busy else "idle"
        print(f"  {name:9s} {when:16s} wall {stats(wall)} | {np.mean(reply):8.1f}")
        print(f"  {'':9s} {'':16s} CPU  {stats(cpu)}")
    for busy in (False, True):
        a, b = res[("templates", busy)], res[("plain", busy)]
        when = "busy" if busy else "idle"
        print(
            f"templates / plain ({when}): step mean {np.mean(a[0]) / np.mean(b[0]):.2f}x wall, "
            f"{np.mean(a[1]) / np.mean(b[1]):.2f}x CPU; "
            f"per reply {np.mean(a[2]) / np.mean(b[2]):.2f}x"
        )
    for name in ("plain", "templates"):
        r = np.mean(res[(name, True)][0]) / np.mean(res[(name, False)][0])
        print(f"busy / idle ({name}): step mean {r:.2f}x wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
