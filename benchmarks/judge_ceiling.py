"""The ceiling of the family metric: how often *real* shapes (another seed than the held-out
set's) are judged as their own family by the nearest reference in Chamfer distance.

    python benchmarks/judge_ceiling.py out/eval/heldout20/references --max-segments 6 \
        --per-family 3 [--family box --family mug ...]

A model's "asked-for family" rate cannot be expected above this number with the same references.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from meshlm.codec import canonicalize
from meshlm.eval.runner import load_references, nearest_family
from meshlm.shapes import generate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("references", type=Path, help="a references/ folder written by eval heldout")
    p.add_argument("--per-family", type=int, default=3)
    p.add_argument("--max-segments", type=int, default=None)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument(
        "--family",
        action="append",
        default=None,
        help="families to draw (default: those of the references)",
    )
    a = p.parse_args()
    refs = load_references(a.references)
    with (a.references / "captions.csv").open(newline="", encoding="utf-8") as fh:
        ref_fams = sorted({row["family"] for row in csv.DictReader(fh)})
    fams = a.family or ref_fams
    shapes = list(
        generate(a.per_family * len(fams), a.seed, families=fams, max_segments=a.max_segments)
    )
    wrong: Counter = Counter()
    ok = 0
    for s in shapes:
        mesh = canonicalize(s.mesh.vertices, s.mesh.faces)  # quantized, as a model writes it
        fam, _ = nearest_family(mesh, refs)
        ok += fam == s.family
        if fam != s.family:
            wrong[f"{s.family}->{fam}"] += 1
    print(
        f"{ok}/{len(shapes)} = {ok / len(shapes):.1%} of real shapes judged as their own family "
        f"among {len(ref_fams)} families ({len(refs)} references)"
    )
    if wrong:
        print("confusions:", ", ".join(f"{k} x{v}" for k, v in wrong.most_common()))


if __name__ == "__main__":
    main()
