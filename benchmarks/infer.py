"""Inference speed of a model on each local backend, and the cost of the mesh constraint.

For each backend (transformers; llama.cpp on GGUFs exported in this run, f32 and f16) the same
prompts and seeds are generated with the constraint on and off. Printed per backend: median
seconds per 100 faces (the issue's "time to a 100-face mesh"), tokens/s, and the constraint's
cost as the ratio of milliseconds per token, constrained / unconstrained (named baseline:
unconstrained decoding of the same model, backend, prompts and seeds, in the same run, cut to the
constrained replies' lengths and run between two constrained passes -- a constrained reply that
stops early would otherwise spread its prompt processing over fewer tokens and look slower; the
full-length ratio is printed too).

Then the time to a 100-face mesh (``--faces``): constrained generation with
``Sampling(min_faces=100)`` on prompts for the model's larger shapes, timed from the request to
the stream's first snapshot holding 100 complete faces (prompt processing included), on every
local backend, llama.cpp also with one thread (for a model this small, threads mostly wait on
each other; on a busy machine two spinning threads are much slower than one).

    python benchmarks/infer.py [--model meshlm/models/meshlm-bundled] [--n 6]
                               [--max-new-tokens 2048] [--faces 100] [--skip-cost]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

FACE_PROMPTS = [  # families whose shapes have ~100 faces or more at the bundled model's detail
    "a car",
    "a deep bowl",
    "a mug with a handle",
    "a toy car with four wheels",
    "a wide shallow bowl",
    "a coffee mug",
]

PROMPTS = [
    "a chair",
    "a round table with three legs",
    "a mug",
    "a pine tree",
    "a house",
    "a sword",
    "a lamp",
    "a bottle",
    "a stool",
    "a vase",
]


def run(engine, prompts, constrain: bool, max_new_tokens, seed0: int = 0):
    """Stats of one generation per prompt; ``max_new_tokens`` is one limit or one per prompt."""
    from meshlm.infer import Sampling

    limits = max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(prompts)
    rows = []
    for i, p in enumerate(prompts):
        r = engine.generate(
            p,
            Sampling(
                seed=seed0 + i,
                temperature=0.7,
                max_new_tokens=max(1, limits[i]),
                constrain=constrain,
            ),
        )
        rows.append(r.stats)
    return rows


def time_to_faces(engine, prompts, n_faces: int, max_new_tokens: int, seed0: int = 0):
    """Seconds from the request to the first streamed snapshot with ``n_faces`` complete faces
    (None where a reply ended before), and the tokens it took."""
    from meshlm.infer import Sampling

    out = []
    for i, p in enumerate(prompts):
        s = Sampling(
            seed=seed0 + i, temperature=0.7, max_new_tokens=max_new_tokens, min_faces=n_faces
        )
        t0, hit = time.perf_counter(), None
        stream = engine.stream(p, s)
        for part in stream:
            if part.faces >= n_faces:
                hit = (time.perf_counter() - t0, part.tokens)
                stream.close()
                break
        out.append(hit)
    return out


def summarize(rows):
    ms_tok = sum(s.seconds for s in rows) / max(1, sum(s.new_tokens for s in rows)) * 1e3
    per100 = [s.seconds / s.faces * 100 for s in rows if s.faces]
    return {
        "ms_per_token": ms_tok,
        "tok_s": 1e3 / ms_tok if ms_tok else 0.0,
        "s_per_100_faces": statistics.median(per100) if per100 else float("nan"),
        "faces_median": statistics.median([s.faces for s in rows]),
        "cut_off": sum(s.cut_off for s in rows),
    }


def main() -> None:
    from meshlm.infer import BUNDLED_MODEL, Engine, load
    from meshlm.infer.gguf_export import export_gguf
    from meshlm.infer.llamacpp import LlamaCppBackend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(BUNDLED_MODEL))
    ap.add_argument("--n", type=int, default=6, help="prompts per setting")
    ap.add_argument("--max-new-tokens", type=int, default=2048)
    ap.add_argument("--faces", type=int, default=100, help="time to a mesh of this many faces")
    ap.add_argument("--skip-cost", action="store_true", help="only the time to a mesh")
    args = ap.parse_args()
    prompts = (PROMPTS * 10)[: args.n]
    print(
        f"date: {time.strftime('%Y-%m-%d')}  machine: {platform.machine()} "
        f"{platform.processor() or ''} python {platform.python_version()}  model: {args.model}"
    )
    tmp = Path(tempfile.mkdtemp())
    engines = [("transformers", lambda: load(args.model, "transformers"))]
    for dtype in ("f32", "f16"):
        path = tmp / f"model-{dtype}.gguf"

        def make(path=path, dtype=dtype, threads=None):
            if not path.is_file():
                export_gguf(args.model, path, dtype=dtype)
            return Engine(LlamaCppBackend.load(str(path), n_threads=threads))

        engines.append((f"llama.cpp {dtype}", make))
    if not args.skip_cost:
        constraint_cost(engines, prompts, args.max_new_tokens)
    make_f16 = engines[-1][1]  # the last one built above
    engines.append(("llama.cpp f16 1t", lambda: make_f16(threads=1)))
    face_prompts = (FACE_PROMPTS * 10)[: args.n]
    print(
        f"\ntime to a {args.faces}-face mesh (constrained, min_faces={args.faces}, "
        f"{len(face_prompts)} prompts, seeds 0..{len(face_prompts) - 1}, temperature 0.7)"
    )
    for name, make in engines:
        engine = make()
        engine.generate("a box", max_new_tokens=16)
        hits = time_to_faces(engine, face_prompts, args.faces, args.max_new_tokens)
        got = [h for h in hits if h]
        med = statistics.median([h[0] for h in got]) if got else float("nan")
        toks = statistics.median([h[1] for h in got]) if got else float("nan")
        print(
            f"{name:<16} reached {len(got)}/{len(hits)}; median {med:.2f} s "
            f"({toks:.0f} tokens); each: " + ", ".join(f"{h[0]:.2f}" if h else "-" for h in hits)
        )
        llm = getattr(engine.backend, "llm", None)
        if llm is not None:
            llm.close()


def constraint_cost(engines, prompts, max_new_tokens) -> None:
    header = (
        f"{'backend':<16} {'constraint':<11} {'tok/s':>7} {'ms/tok':>7} "
        f"{'s/100 faces':>12} {'faces':>6} {'cut':>4}"
    )
    print(header)
    for name, make in engines:
        engine = make()
        engine.generate("a box", max_new_tokens=16)  # warm-up (and vocabulary classification)
        res = {}
        for constrain in (False, True):
            res[constrain] = summarize(run(engine, prompts, constrain, max_new_tokens))
            s = res[constrain]
            print(
                f"{name:<16} {'on' if constrain else 'off':<11} {s['tok_s']:>7.0f} "
                f"{s['ms_per_token']:>7.2f} {s['s_per_100_faces']:>12.2f} "
                f"{s['faces_median']:>6.0f} {s['cut_off']:>4}"
            )
        ratio = res[True]["ms_per_token"] / res[False]["ms_per_token"]
        # the fair baseline: unconstrained replies cut to the constrained replies' lengths, so
        # both sides pay the same prompt processing and context lengths per token; measured
        # between two constrained passes (same seeds, same replies) whose mean cancels drift
        # in the machine's speed
        first = run(engine, prompts, True, max_new_tokens)
        same = summarize(run(engine, prompts, False, [s.new_tokens for s in first]))
        second = run(engine, prompts, True, max_new_tokens)
        cons = (summarize(first)["ms_per_token"] + summarize(second)["ms_per_token"]) / 2
        matched = cons / same["ms_per_token"]
        print(
            f"{name:<16} constraint cost: {matched:.3f}x ms/token vs unconstrained replies of "
            f"the same lengths (target <= 1.10); {ratio:.3f}x vs full-length replies"
        )
        llm = getattr(engine.backend, "llm", None)
        if llm is not None:
            llm.close()


if __name__ == "__main__":
    main()
