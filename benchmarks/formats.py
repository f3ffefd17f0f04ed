"""Mesh text formats side by side: LLaMA-Mesh (the named baseline) vs ``parts`` (issue 19).

On the same meshes -- the fixture files that encode, the procedural corpus at
``--max-segments 6`` and at full detail (``meshlm shapes``, N shapes a family, seed 0) -- it
counts per family:

* distinct *templates*: a mesh text with each ``v`` line's numbers removed (so: the vertex count
  of each part and the face lines), whole mesh and per part. For the LLaMA-Mesh format "per part"
  is each connected piece's faces renumbered in LLaMA-Mesh order (vertices sorted by (x, y, z)
  within the piece): the measure issue 19 quotes;
* characters per mesh, and tokens per face with the bundled model's tokenizer
  (``meshlm/models/meshlm-bundled``), with that tokenizer plus one token for each space-led negative
  integer (`` -1`` .. `` -1023``, as it has for `` 0`` .. `` 1023``: what a tokenizer trained
  for the parts format would add) and, where one can be loaded, a Llama-3-class tokenizer
  (``--llama3 DIR``: a folder or hub id; default: cl100k_base, Llama-3's BPE without its extra
  28k tokens, built offline by ``tests/llama3_vocab.py``);
* encode time per mesh.

Ablations of the ``parts`` rules (``meshlm.parts.split_parts`` options) are measured in the same
run, on the fixtures and the ``--max-segments 6`` corpus: the start edge by coordinates instead
of connectivity, the lowest vertex first, parts ordered by position instead of by shape,
vertices sorted by (x, y, z) within each part (issue 19's first measurement), and faces written
right after the vertex that completes them ("interleaved") instead of after the part's vertices.

    python benchmarks/formats.py [--per-family 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from meshlm.codec import canonicalize, encode
from meshlm.parts import Part, encode_parts, split_parts

ROOT = Path(__file__).resolve().parent.parent

#: name -> split_parts options (the shipped format first)
VARIANTS = {
    "parts": {},
    "parts, start by (x,y,z)": {"start": "coord"},
    "parts, start lowest (y,x,z)": {"start": "ycoord"},
    "parts, parts by corner (x,y,z)": {"part_key": "xyz"},
    "parts, parts by corner (y,x,z)": {"part_key": "yxz"},
    "parts, (x,y,z) sort in part": {"within": "sort"},
}


def skeleton(text: str) -> str:
    return "\n".join("v" if line.startswith("v") else line for line in text.split("\n"))


def blocked(q: np.ndarray, parts: list[Part]) -> str:
    """The shipped layout: each part's vertices, then its faces."""
    lines = []
    for p in parts:
        n = len(p.vertices)
        lines += [f"v {x} {y} {z}" for x, y, z in q[p.vertices].tolist()]
        lines += [f"f -{n - a} -{n - b} -{n - c}" for a, b, c in p.faces]
    return "\n".join(lines)


def interleaved(q: np.ndarray, parts: list[Part]) -> str:
    """Ablation: each face right after the vertex that completes it (its largest label)."""
    lines = []
    for p in parts:
        by_last = defaultdict(list)
        for f in p.faces:
            by_last[max(f)].append(f)
        for lab, row in enumerate(q[p.vertices].tolist()):
            lines.append("v {} {} {}".format(*row))
            for f in sorted(by_last[lab], key=lambda f: sorted(f)):
                lines.append("f " + " ".join(f"-{lab + 1 - x}" for x in f))
    return "\n".join(lines)


def part_skeletons(text: str) -> list[str]:
    """Split a blocked parts text into its parts' skeletons."""
    out, cur, prev = [], [], "f"
    for line in text.split("\n"):
        if line[0] == "v" and prev == "f" and cur:
            out.append("\n".join(cur))
            cur = []
        cur.append("v" if line[0] == "v" else line)
        prev = line[0]
    out.append("\n".join(cur))
    return out


def llama_part_skeletons(q: np.ndarray, faces: np.ndarray) -> list[str]:
    """Each connected piece in LLaMA-Mesh order (sorted by (x, y, z) in the piece)."""
    parts = split_parts(q, faces, within="sort")
    out = []
    for p in parts:
        lines = ["v"] * len(p.vertices)
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in p.faces]
        out.append("\n".join(lines))
    return out


def corpora(per_family: int) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    from meshlm.errors import MeshlmError
    from meshlm.files import load_mesh
    from meshlm.shapes import generate, list_families

    fixtures = []
    for path in sorted((ROOT / "tests" / "fixtures").iterdir()):
        try:
            with warnings.catch_warnings():  # the loader's notes on odd files
                warnings.simplefilter("ignore")
                m = load_mesh(path)
            encode(m.vertices, m.faces)
        except (MeshlmError, ValueError):
            continue
        fixtures.append(("fixture", np.asarray(m.vertices), np.asarray(m.faces)))
    n = per_family * len(list_families())
    out = {"fixtures": fixtures}
    for name, cap in (("procedural, --max-segments 6", 6), ("procedural, full detail", None)):
        out[name] = [
            (s.family, np.asarray(s.mesh.vertices), np.asarray(s.mesh.faces))
            for s in generate(n, seed=0, max_segments=cap)
        ]
    return out


def load_tokenizers(llama3: str | None) -> dict[str, object]:
    from tokenizers import AddedToken, Tokenizer

    import meshlm

    bundled = str(Path(meshlm.__file__).parent / "models/meshlm-bundled/tokenizer.json")
    toks = {"bundled": Tokenizer.from_file(bundled)}
    # what a tokenizer trained for the parts format would have: " -k" as one token, like the
    # bundled tokenizer's " k" (meshlm.train.tokenizer adds " 0".." 1023")
    neg = Tokenizer.from_file(bundled)
    neg.add_tokens([AddedToken(f" -{i}", normalized=False) for i in range(1, 1024)])
    toks["bundled+neg"] = neg
    if llama3:
        from meshlm.tokens import load_tokenizer

        toks["llama-3"] = load_tokenizer(llama3)
    else:
        helper = ROOT / "tests" / "llama3_vocab.py"  # cl100k_base = Llama-3's BPE, built offline
        if helper.exists():
            import tempfile

            spec = importlib.util.spec_from_file_location("llama3_vocab", helper)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            path = Path(tempfile.mkdtemp()) / "tokenizer.json"
            try:
                mod.build_tokenizer_json(path)
                toks["llama-3"] = Tokenizer.from_file(str(path))
            except ImportError as exc:  # its vocabulary file comes with a dev package
                print(f"(no Llama-3-class tokenizer: {exc})")
    return toks


def count(tok, text: str) -> int:
    try:
        ids = tok.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tok.encode(text)
    return len(ids.ids if hasattr(ids, "ids") else ids)


def measure(meshes, toks, ablations: bool = True) -> dict:
    """Per family and format: templates, parts templates, characters, tokens, faces, seconds."""
    fams: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for family, v, f in meshes:
        t0 = time.perf_counter()
        llama = encode(v, f)
        t_llama = time.perf_counter() - t0
        t0 = time.perf_counter()
        encode_parts(v, f)
        t_parts = time.perf_counter() - t0
        m = canonicalize(v, f)
        q, faces = m.quantized, m.faces
        texts = {"llama-mesh": llama}
        pieces = {"llama-mesh": llama_part_skeletons(q, faces)}
        for name, opts in VARIANTS.items():
            if opts and not ablations:
                continue
            parts = split_parts(q, faces, **opts)
            texts[name] = blocked(q, parts)
            pieces[name] = part_skeletons(texts[name])
            if name == "parts":
                texts["parts, interleaved faces"] = interleaved(q, parts)
        for name, text in texts.items():
            row = fams[family][name]
            row["skeleton"].append(skeleton(text))
            if name in pieces:
                row["parts"].extend(pieces[name])
            row["chars"].append(len(text))
            row["faces"].append(len(faces))
            for tname, tok in toks.items():
                row[f"tok:{tname}"].append(count(tok, text))
        fams[family]["llama-mesh"]["seconds"].append(t_llama)
        fams[family]["parts"]["seconds"].append(t_parts)
    return fams


def summarize(fams) -> dict:
    out = {}
    for family, formats in fams.items():
        out[family] = {}
        for name, row in formats.items():
            faces = np.sum(row["faces"])
            d = {
                "meshes": len(row["skeleton"]),
                "templates": len(set(row["skeleton"])),
                "part_templates": len(set(row["parts"])) if row["parts"] else None,
                "parts_per_mesh": len(row["parts"]) / len(row["skeleton"])
                if row["parts"]
                else None,
                "chars": float(np.mean(row["chars"])),
            }
            for k, vals in row.items():
                if k.startswith("tok:"):
                    d[k[4:] + "_tokens_per_face"] = float(np.sum(vals) / faces)
            if row.get("seconds"):
                d["ms_per_mesh"] = 1000 * float(np.mean(row["seconds"]))
            out[family][name] = d
    return out


def table(summary: dict, names: list[str], key: str) -> str:
    head = "| family | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    rows = []
    for family in sorted(summary):
        cells = []
        for n in names:
            v = summary[family].get(n, {}).get(key)
            cells.append("-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)))
        rows.append(f"| {family} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows)


def totals(summary: dict, names: list[str]) -> dict:
    """Per format: sum of templates and part templates over families, mean of the rest."""
    out = {}
    for n in names:
        rows = [summary[f][n] for f in summary if n in summary[f]]
        agg = {
            "templates": sum(r["templates"] for r in rows),
            "meshes": sum(r["meshes"] for r in rows),
        }
        if all(r["part_templates"] is not None for r in rows):
            agg["part_templates"] = sum(r["part_templates"] for r in rows)
        for k in rows[0]:
            if k.endswith("tokens_per_face") or k in ("chars", "ms_per_mesh"):
                agg[k] = float(np.mean([r[k] for r in rows]))
        out[n] = agg
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-family", type=int, default=30)
    ap.add_argument("--llama3", default=None, help="Llama-3-class tokenizer folder or hub id")
    ap.add_argument("--json", default=None, help="write the full results here")
    args = ap.parse_args()
    toks = load_tokenizers(args.llama3)
    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, tokenizers: {', '.join(toks)}\n"
    )
    results = {}
    for cname, meshes in corpora(args.per_family).items():
        t0 = time.perf_counter()
        # the ablations on the low-poly corpus and the fixtures (pure-Python encoding is slow)
        summary = summarize(measure(meshes, toks, ablations="full" not in cname))
        names = list(next(iter(summary.values())))
        results[cname] = {"families": summary, "totals": totals(summary, names)}
        print(f"## {cname}: {len(meshes)} meshes ({time.perf_counter() - t0:.0f} s)\n")
        print("totals (templates summed over families; the rest averaged):\n")
        for n, agg in results[cname]["totals"].items():
            print(
                f"- {n}: "
                + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in agg.items()
                )
            )
        main_names = ["llama-mesh", "parts"]
        print("\ndistinct whole-mesh templates:\n")
        print(table(summary, main_names, "templates"))
        print("\ndistinct part templates:\n")
        print(table(summary, main_names, "part_templates"))
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
