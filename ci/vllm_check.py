"""GPU check of meshlm's vLLM logits processor (issue 18): run it inside vLLM and check strictness.

Not part of the test suite (vLLM needs a GPU). On a GPU machine with vLLM installed
(``pip install vllm`` beside meshlm's ``infer`` and ``dev`` extras)::

    python ci/vllm_check.py [--n 16]

It builds the tests' tiny random-weight Llama-3-class model (cl100k vocabulary, Llama-3 chat
layout; no download, ``tests/llama3_vocab.py``) with 64-wide attention heads, loads it in vLLM's
offline ``LLM`` with ``logits_processors=[MeshLogitsProcessor]``, and generates one batch of
``--n`` mesh requests (temperature 1, different seeds and settings) plus one request that opts
out. Passes when every mesh reply that ended on its own decodes with the strict decoder, at
least half of them ended, ``meshlm_min_faces`` held, and the opted-out reply is not a mesh.
Prints one line per request and ``PASS`` / ``FAIL``; exit code 0 on PASS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="mesh requests in the batch")
    ap.add_argument("--max-tokens", type=int, default=800)
    args = ap.parse_args(argv)

    from llama3_vocab import llama3_model_dir
    from vllm import LLM, SamplingParams

    from meshlm import decode
    from meshlm.errors import MeshFormatError
    from meshlm.infer.vllm_processor import MeshLogitsProcessor

    model = llama3_model_dir(hidden=256)  # 4 heads of 64: a size every attention backend takes
    llm = LLM(
        model=str(model),
        logits_processors=[MeshLogitsProcessor],
        enforce_eager=True,
        max_model_len=2048,
        gpu_memory_utilization=0.3,
        seed=0,
    )
    convs, params = [], []
    for i in range(args.n):
        convs.append([{"role": "user", "content": f"Create a 3D model of shape number {i}."}])
        params.append(
            SamplingParams(
                temperature=1.0,
                seed=i,
                max_tokens=args.max_tokens,
                extra_args={
                    "meshlm_max_preamble": i % 3,
                    "meshlm_min_faces": 2 if i % 4 == 0 else 0,
                },
            )
        )
    convs.append([{"role": "user", "content": "hello"}])
    params.append(
        SamplingParams(temperature=1.0, seed=99, max_tokens=40, extra_args={"meshlm_constrain": 0})
    )
    outs = llm.chat(convs, params)
    ended = strict = 0
    ok = True
    for i, out in enumerate(outs[: args.n]):
        o = out.outputs[0]
        if o.finish_reason != "stop":
            print(f"{i:3d} cut off after {len(o.token_ids)} tokens")
            continue
        ended += 1
        text = o.text
        body = text[text.index("v ") :] if "v " in text else text
        try:
            mesh = decode(body)  # strict
        except MeshFormatError as exc:
            print(f"{i:3d} NOT STRICT: {exc}")
            ok = False
            continue
        strict += 1
        if i % 4 == 0 and len(mesh.faces) < 2:
            print(f"{i:3d} min_faces 2 not held: {len(mesh.faces)} faces")
            ok = False
        print(f"{i:3d} strict: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    free = outs[-1].outputs[0]
    opted_out_free = not free.text.startswith("v ") or len(free.text.split("\n")) < 4
    print(f"opted out: {free.text[:60]!r}")
    ok = ok and ended >= args.n // 2 and strict == ended and opted_out_free
    print(
        f"{strict}/{ended} ended replies strict, {ended}/{args.n} ended; {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
