"""Cost of meshlm's mesh constraint per decoding step, on a Llama-3-class vocabulary (100k) and on
the bundled model's, side by side with llguidance building masks for the same mesh *syntax*.

Both walk the same token sequences: canonical meshes (an icosphere, a cylinder, a chair, a
torus; 64 bins) tokenized by each tokenizer, then the end token. Per step, meshlm computes the
allowed token ids (``MeshConstraint.allowed``, what the backends consume) and from them a
boolean mask over the vocabulary, then advances; llguidance (``LLMatcher`` with the regex of
``meshlm.infer.openai_http.mesh_regex``, its numpy path ``fill_next_token_bitmask`` into a
bitmask) computes its mask, then consumes the token. The syntax regex cannot express the
canonical order (increasing vertices, faces in order, indices that exist), so llguidance is the
speed anchor, not a replacement: it allows more. Every meshlm mask is checked to be inside
llguidance's.

* cold: the first pass, meshlm's mask cache empty (a fresh vocabulary index);
* warm: the same sequences again (masks cached by grammar state); llguidance with fresh
  matchers both times (its tokenizer's precomputed tables are built once, like meshlm's index);
* one-time: meshlm's classification (token texts + index) and llguidance's tokenizer build and
  grammar compile.

Targets (issue 18): <= 0.5 ms a step warm on the 100k vocabulary and within 3x of the anchor.

``--format parts`` measures the parts format's constraint instead (issue 19:
``PartsConstraint`` over the same meshes written by ``meshlm.parts.encode_parts``, llguidance with
``meshlm.infer.grammar_parts.parts_regex``; the one-time cost adds the parts index).

    python benchmarks/constrain.py [--repeat 2] [--format parts]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
CLOCK = time.thread_time  # CPU time: the machine is shared, wall time counts others' jobs


def meshes(fmt: str = "llama-mesh") -> dict[str, str]:
    """Canonical texts (in format ``fmt``) of a few meshes of 100-600 faces."""
    import trimesh
    from mesh_helpers import chair

    from meshlm import encode
    from meshlm.parts import encode_parts

    shapes = {
        "icosphere(2)": trimesh.creation.icosphere(2),
        "cylinder(32)": trimesh.creation.cylinder(0.3, 1.0, sections=32),
        "chair": chair(),
        "torus": trimesh.creation.torus(0.5, 0.15, major_sections=24, minor_sections=10),
    }
    enc = encode_parts if fmt == "parts" else encode  # the same meshes in either format
    return {k: enc(m.vertices, m.faces) for k, m in shapes.items()}


def tokenizers() -> dict:
    import transformers
    from llama3_vocab import llama3_model_dir

    from meshlm import modelfolder

    return {
        "llama3-class (cl100k, 100,512)": transformers.AutoTokenizer.from_pretrained(
            llama3_model_dir()
        ),
        "bundled": transformers.AutoTokenizer.from_pretrained(modelfolder.BUNDLED_MODEL),
    }


def eos_id(tok) -> int:
    vocab = tok.get_vocab()
    return vocab["<|eot_id|>"] if "<|eot_id|>" in vocab else tok.eos_token_id


def stats(us: list[float]) -> str:
    a = np.asarray(us)
    return f"{np.median(a):7.1f} {a.mean():7.1f} {np.percentile(a, 99):8.1f}"


def run_meshlm(index, seqs, check=None, fmt="llama-mesh"):
    """Per-step µs (allowed ids, + bool mask) over every sequence; ``check(step, ids)``."""
    from meshlm.infer.constrain_parts import constraint_for

    t_ids, t_mask, wall = [], [], []
    for seq in seqs:
        c = constraint_for(fmt, index, max_preamble=0)
        for k, tok in enumerate(seq):
            w0, t0 = time.perf_counter(), CLOCK()
            ids = c.allowed()
            t1 = CLOCK()
            m = np.zeros(index.vocab_size, dtype=bool)
            m[ids] = True
            t2, w2 = CLOCK(), time.perf_counter()
            t_ids.append((t1 - t0) * 1e6)
            t_mask.append((t2 - t0) * 1e6)
            wall.append((w2 - w0) * 1e6)
            if check is not None:
                check(seq, k, m)
            c.advance(tok)
        assert c.done
    return t_ids, t_mask, wall


def run_llg(lltok, grammar, seqs, vocab_size, keep=None):
    """Per-step µs of llguidance's bitmask + the masks (bool) when ``keep`` is a dict."""
    import llguidance
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

    times, wall = [], []
    bitmask = allocate_token_bitmask(1, vocab_size)
    for si, seq in enumerate(seqs):
        m = llguidance.LLMatcher(lltok, grammar, log_level=0)
        for k, tok in enumerate(seq):
            w0, t0 = time.perf_counter(), CLOCK()
            fill_next_token_bitmask(m, bitmask, 0)
            times.append((CLOCK() - t0) * 1e6)
            wall.append((time.perf_counter() - w0) * 1e6)
            if keep is not None:
                bits = np.unpackbits(bitmask[0].view(np.uint8), bitorder="little")
                keep[(si, k)] = bits[:vocab_size].astype(bool)
            assert m.consume_token(tok), m.get_error()
        assert m.is_accepting() or m.is_stopped()
    return times, wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2, help="warm passes (best median kept)")
    ap.add_argument("--format", default="llama-mesh", choices=["llama-mesh", "parts"])
    args = ap.parse_args(argv)
    fmt = args.format
    import llguidance
    import llguidance.hf

    from meshlm.infer.constrain import VocabIndex, token_texts
    from meshlm.infer.constrain_parts import PartsIndex
    from meshlm.infer.grammar_parts import parts_regex
    from meshlm.infer.openai_http import mesh_regex

    regex = parts_regex if fmt == "parts" else mesh_regex

    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.machine()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"llguidance {llguidance.__version__}; load average {os.getloadavg()[0]:.1f}"
    )
    texts = meshes(fmt)
    print(f"format: {fmt}")
    print(
        "meshes: " + ", ".join(f"{k} {t.count(chr(10) + 'f') + 1} faces" for k, t in texts.items())
    )
    print("times: CPU time of this thread (wall clock in brackets: other jobs' preemptions)")
    for name, tok in tokenizers().items():
        eos = eos_id(tok)
        seqs = [tok.encode(t, add_special_tokens=False) + [eos] for t in texts.values()]
        steps = sum(map(len, seqs))
        once = {}
        c0 = time.process_time()
        tt = token_texts(tok)
        c1 = time.process_time()
        index = VocabIndex(tt, [eos])
        if fmt == "parts":
            PartsIndex.of(index)
        c2 = time.process_time()
        lltok = llguidance.hf.from_tokenizer(tok, eos_token=eos)
        c3 = time.process_time()
        grammar = llguidance.LLMatcher.grammar_from_regex(regex(64))
        llguidance.LLMatcher(lltok, grammar, log_level=0)
        c4 = time.process_time()
        once = {
            "meshlm token texts": c1 - c0,
            "meshlm index": c2 - c1,
            "llguidance tokenizer": c3 - c2,
            "llguidance grammar": c4 - c3,
        }
        vocab = index.vocab_size

        llg_masks: dict = {}
        llg_cold = run_llg(lltok, grammar, seqs, vocab, keep=llg_masks)
        outside = [0]

        def check(seq, k, m, _masks=llg_masks, _seqs=seqs, _out=outside):
            si = next(i for i, s in enumerate(_seqs) if s is seq)
            if (m & ~_masks[(si, k)]).any():
                _out[0] += 1

        cold = run_meshlm(index, seqs, check, fmt)
        warm = min(
            (run_meshlm(index, seqs, fmt=fmt) for _ in range(args.repeat)),
            key=lambda w: statistics.median(w[1]),
        )
        llg_warm = min(
            (run_llg(lltok, grammar, seqs, vocab) for _ in range(args.repeat)),
            key=lambda w: statistics.median(w[0]),
        )
        allowed = float(np.mean([n for s in seqs for n in allowed_sizes(index, s, fmt)]))
        print(
            f"\n{name}: vocabulary {vocab:,}, {steps} steps, {allowed:.0f} tokens allowed a "
            "step on average"
        )
        print("  per step, µs             median    mean      p99    (wall median / mean)")
        rows = {
            "meshlm ids, cold": (cold[0], None),
            "meshlm ids + mask, cold": (cold[1], cold[2]),
            "llguidance mask, cold": llg_cold,
            "meshlm ids, warm": (warm[0], None),
            "meshlm ids + mask, warm": (warm[1], warm[2]),
            "llguidance mask, warm": llg_warm,
        }
        for label, (cpu, wall) in rows.items():
            w = f"({np.median(wall):6.1f} / {np.mean(wall):7.1f})" if wall is not None else ""
            print(f"  {label:24s} {stats(cpu)}    {w}")
        for when, mine, anchor in (("warm", warm[1], llg_warm[0]), ("cold", cold[1], llg_cold[0])):
            mean, med = np.mean(mine) / np.mean(anchor), np.median(mine) / np.median(anchor)
            print(
                f"  {when}: meshlm (ids + mask) / llguidance, mean {mean:.2f}x, median {med:.2f}x"
            )
        print("  one-time (CPU s): " + ", ".join(f"{k} {v:.2f}" for k, v in once.items()))
        print(f"  meshlm masks holding a token llguidance refuses: {outside[0]} of {steps}")
    print("\ntargets: meshlm warm <= 500 µs a step on the 100k vocabulary, <= 3x llguidance")
    return 0


def allowed_sizes(index, seq, fmt="llama-mesh") -> list[int]:
    """How many tokens meshlm allows at each step of a sequence (for the printout)."""
    from meshlm.infer.constrain_parts import constraint_for

    c = constraint_for(fmt, index, max_preamble=0)
    sizes = []
    for tok in seq:
        sizes.append(len(c.allowed()))
        c.advance(tok)
    return sizes


if __name__ == "__main__":
    raise SystemExit(main())
