"""Part templates: the shapes of parts a ``parts`` model was trained on, as patterns.

In the ``parts`` text (:mod:`meshlm.parts`) a part's vertex order and face lines depend on its
connectivity alone, so the parts of a training set come in few *templates*: on data/smol-parts16
(16 families, 2,573 generation replies) 12,243 parts fall into 237 templates, one (an
axis-aligned box) covering 63 % of them. A template is what stays when a part's numbers are
taken away:

* ``vertices`` -- the part's vertex count ``n``;
* ``axes`` -- for each axis ``x, y, z`` a pair ``(seq, order)``: ``seq[i]`` is the index, in
  order of first appearance, of vertex ``i``'s value on that axis among the part's distinct
  values on it (a box's eight x values are ``0 0 0 0 1 1 1 1``: two values, the second new at
  vertex 4); ``order`` lists those appearance indices sorted by value (``(1, 0)``: the second
  value is the smaller);
* ``faces`` -- the face lines as part-local labels ``(a, b, c)`` (0 = the first vertex line),
  written as ``f -(n-a) -(n-b) -(n-c)``.

A part *fits* a template when its values follow ``seq`` and ``order`` on every axis, whatever
the values are: a table's legs and top are one template. The template decoding constraint
(:class:`meshlm.infer.grammar_templates.TemplateGrammar`) lets a model write only parts that
fit a template of its library, so the numbers -- the shape -- stay the model's and the
structure cannot break.

A library is saved beside the model as ``part_templates.json`` (:data:`FILE`) and describes
itself: its format (``parts`` and bins), where it was read from (dataset folder, its
manifest's SHA-256, split, replies and parts read) and each template's count; when the
replies state plan lines (``build-data --plan``, :mod:`meshlm.plan`), each template also lists
the families whose replies used it (``families``), so a reply that names its family can be held
to that family's part shapes. Pure Python (no numpy).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from meshlm import modelfolder
from meshlm.errors import MeshlmError
from meshlm.plan import parse_plan

FILE = "part_templates.json"
SCHEMA_VERSION = 1


class PartTemplate(NamedTuple):
    """One part's pattern (see the module docstring). ``axes``: three ``(seq, order)`` pairs of
    int tuples; ``faces``: ``(a, b, c)`` label triples in writing order."""

    vertices: int
    axes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    faces: tuple[tuple[int, int, int], ...]

    def rank(self, axis: int) -> tuple[int, ...]:
        """Rank by value of each appearance index on ``axis`` (0 = the smallest value)."""
        order = self.axes[axis][1]
        out = [0] * len(order)
        for r, k in enumerate(order):
            out[k] = r
        return tuple(out)


def template_of(vertices, faces) -> PartTemplate:
    """The template of one part: ``vertices`` a sequence of ``(x, y, z)`` int bins in writing
    order, ``faces`` ``(a, b, c)`` part-local labels in writing order."""
    axes = []
    for a in range(3):
        seen: dict[int, int] = {}
        seq = tuple(seen.setdefault(int(v[a]), len(seen)) for v in vertices)
        vals = list(seen)
        axes.append((seq, tuple(sorted(range(len(vals)), key=vals.__getitem__))))
    return PartTemplate(len(vertices), tuple(axes), tuple(tuple(map(int, f)) for f in faces))


def split_text(text: str) -> list[tuple[list[tuple[int, ...]], list[tuple[int, ...]]]]:
    """The parts of ``parts`` text as ``(vertices, faces)``: vertices as int triples in writing
    order, faces as part-local labels (``f -k`` after ``n`` vertex lines is label ``n - k``).
    Lines other than ``v``/``f`` lines are skipped; a part starts at a vertex line after face
    lines. Raises MeshlmError on a malformed ``v``/``f`` line (text written by
    :func:`meshlm.parts.encode_parts` has none)."""
    parts: list[tuple[list, list]] = []
    in_faces = True
    for no, line in enumerate(text.split("\n"), 1):
        tok = line.split()
        if not tok or tok[0] not in ("v", "f"):
            continue
        try:
            nums = tuple(int(t) for t in tok[1:])
        except ValueError:
            raise MeshlmError(f"line {no}: not a parts line: {line!r}") from None
        if len(nums) != 3:
            raise MeshlmError(f"line {no}: expected 3 numbers: {line!r}")
        if tok[0] == "v":
            if in_faces:
                parts.append(([], []))
                in_faces = False
            parts[-1][0].append(nums)
        else:
            if not parts or any(not 1 <= -k <= len(parts[-1][0]) for k in nums):
                raise MeshlmError(f"line {no}: a face index points outside its part: {line!r}")
            in_faces = True
            n = len(parts[-1][0])
            parts[-1][1].append(tuple(n + k for k in nums))
    return parts


class TemplateLibrary:
    """The part templates of a set of ``parts`` texts, most frequent first.

    ``templates`` : list of :class:`PartTemplate`; ``counts`` : parts read per template (same
    order); ``bins`` : the grid the texts were written on; ``source`` : where they came from
    (recorded in :data:`FILE`); ``families`` : per template, the families (sorted names) whose
    texts' plan lines named them (empty lists when the texts stated no plans).
    """

    def __init__(self, templates, counts, bins: int, source: dict | None = None, families=None):
        self.templates = list(templates)
        self.counts = list(counts)
        self.bins = bins
        self.source = dict(source or {})
        self.families = [sorted(f) for f in families] if families else [[] for _ in templates]
        if len(self.families) != len(self.templates):
            raise ValueError("one family list per template")

    def of_family(self, family: str) -> set[int]:
        """Indices of the templates that ``family``'s training replies used (empty: a family
        the library does not know, or a library without plan lines)."""
        return {i for i, fams in enumerate(self.families) if family in fams}

    def __len__(self) -> int:
        return len(self.templates)

    @classmethod
    def from_texts(cls, texts, bins: int = 64, source: dict | None = None) -> TemplateLibrary:
        """The library of the parts of ``texts`` (``parts`` mesh texts)."""
        c: Counter = Counter()
        fams: dict[PartTemplate, set[str]] = {}
        n_texts = 0
        for t in texts:
            n_texts += 1
            plan = parse_plan(t)
            for v, f in split_text(t):
                key = template_of(v, f)
                c[key] += 1
                if plan is not None:
                    fams.setdefault(key, set()).add(plan.family)
        ranked = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
        src = {"replies": n_texts, "parts": sum(c.values()), **(source or {})}
        families = [fams.get(t, set()) for t, _ in ranked] if fams else None
        return cls([t for t, _ in ranked], [k for _, k in ranked], bins, src, families)

    @classmethod
    def from_dataset(cls, data_dir: str | Path, split: str = "train") -> TemplateLibrary:
        """The library of a ``parts`` dataset's generation replies (``data_dir/<split>.jsonl``,
        the last message of each ``generation`` row). Raises MeshlmError when the dataset's
        manifest records another format."""
        data_dir = Path(data_dir)
        if not (data_dir / "manifest.json").is_file():
            raise MeshlmError(f"{data_dir}: not a dataset folder (no manifest.json)")
        fmt = modelfolder.dataset_format(data_dir)
        if fmt.name != "parts":
            raise MeshlmError(f"{data_dir}: its mesh format is {fmt.name!r}, not 'parts'")
        path = data_dir / f"{split}.jsonl"
        if not path.is_file():
            raise MeshlmError(f"{path}: no such file")
        manifest = data_dir / "manifest.json"

        def replies():
            with path.open(encoding="utf-8") as fh:
                for no, line in enumerate(fh, 1):
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        raise MeshlmError(f"{path}:{no}: not a JSON row") from None
                    if row.get("task") == "generation":
                        yield row["messages"][-1]["content"]

        src = {
            "dataset": str(data_dir),
            "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "split": split,
        }
        return cls.from_texts(replies(), bins=fmt.bins, source=src)

    # -- the file ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "format": {"name": "parts", "bins": self.bins},
            "source": self.source,
            "templates": [
                {
                    "vertices": t.vertices,
                    "axes": [[list(s), list(o)] for s, o in t.axes],
                    "faces": [list(f) for f in t.faces],
                    "count": k,
                    **({"families": fams} if fams else {}),
                }
                for t, k, fams in zip(self.templates, self.counts, self.families, strict=True)
            ],
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/part_templates.json``; returns its path."""
        path = Path(folder) / FILE
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TemplateLibrary:
        """Read a library file. Raises MeshlmError naming the file and the problem."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA_VERSION or data["format"]["name"] != "parts":
                raise ValueError(f"schema {data.get('schema')!r} / format {data['format']!r}")
            temps, counts, fams = [], [], []
            for t in data["templates"]:
                axes = tuple((tuple(s), tuple(o)) for s, o in t["axes"])
                faces = tuple(tuple(f) for f in t["faces"])
                n = int(t["vertices"])
                if len(axes) != 3 or any(len(s) != n for s, _ in axes):
                    raise ValueError("a template's axes do not match its vertex count")
                if any(len(f) != 3 or not all(0 <= x < n for x in f) for f in faces):
                    raise ValueError("a face label outside its template")
                temps.append(PartTemplate(n, axes, faces))
                counts.append(int(t["count"]))
                fams.append([str(x) for x in t.get("families", [])])
            return cls(temps, counts, int(data["format"]["bins"]), data.get("source"), fams)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MeshlmError(f"{path}: not a part template library ({exc})") from None


def read(folder: str | Path) -> TemplateLibrary | None:
    """The library in a model folder (``folder/part_templates.json``), None without one."""
    path = Path(folder) / FILE
    return TemplateLibrary.load(path) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    """``python -m meshlm.part_templates DATA_DIR MODEL_DIR``: write the library of a parts
    dataset's training replies into a model folder (``meshlm train`` does this itself)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m meshlm.part_templates DATA_DIR MODEL_DIR", file=sys.stderr)
        return 2
    try:
        lib = TemplateLibrary.from_dataset(args[0])
        if not Path(args[1]).is_dir():
            raise MeshlmError(f"{args[1]}: no such model folder")
        path = lib.save(args[1])
    except (MeshlmError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {len(lib)} templates of {lib.source['parts']} parts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
