"""Valid ``parts`` meshes by construction: the token mask for the second mesh text format.

:mod:`meshlm.parts` writes a mesh part by part: a part's ``v X Y Z`` lines (integer bins), then
its ``f -a -b -c`` lines, whose relative indices count back from the part's last vertex line.
:class:`PartsConstraint` lets a model write only text that :func:`meshlm.parts.decode_parts`
reads with ``strict=False`` *without a single repair or drop*, and that passes every rule of the
strict decoder that can be decided token by token:

* lines ``v X Y Z`` / ``f -A -B -C``, single spaces, ``\\n`` between lines, no leading zeros;
  coordinates in ``0..bins-1``; indices ``>= 1``;
* a part has at least 3 vertex lines before its first face line, and no two vertex lines with
  the same coordinates (a vertex where parts meet is written in each part: that is allowed);
* a face's three indices are distinct and point to vertices of the current part
  (``1 <= k <= vertices of the part``);
* no duplicate face: no two faces on the same three coordinates, in one part or in two (the
  decoder merges a vertex written in two parts, so those would be one face twice);
* every vertex line is used by a face of its part: a new part (a ``v`` line after faces) and
  the end of the mesh come only when the current part's vertices are all used;
* the mesh ends only after a face line (with or without its newline); ``min_faces`` as in
  :class:`~meshlm.infer.constrain.MeshConstraint`.

Not guaranteed (they depend on the whole mesh, not on the text so far): the canonical order --
parts in their order, vertices in the connectivity walk's order, faces sorted and rotated --
and that each part is one piece (joined through edges of exactly two faces). A constrained
reply may therefore fail ``decode_parts(strict=True)`` with one of those order or piece errors
only; read replies leniently (``meshlm.meshtext.read_reply``), which then reports no repair.

The automaton never dead-ends: a vertex line is allowed only when the part can still be
finished (every vertex of it still has a triangle that is no face yet; with fresh cells left
that always holds, on tiny grids it is checked cell by cell), a face only when one is left.

The vocabulary is the one :class:`~meshlm.infer.constrain.VocabIndex` classified, indexed again
for this alphabet (``-`` added) by :class:`PartsIndex`, once per index. A token may end with a
newline but not continue past it (the next line's bounds depend on the line it closes); such
tokens (``"3\\nf"`` of a BPE trained without a pre-tokenizer) are never allowed. Where no
token spans more than one separator (the bundled tokenizer, Llama-3's), masks are cached by the
local state.

:func:`constraint_for` picks the constraint by the model's mesh format name. With a model's part
templates (:mod:`meshlm.part_templates`) each part is also held to one of them
(:mod:`meshlm.infer.grammar_templates`); the masks' cache stays shared, since its keys hold the
ranges the grammar computed.
"""

from __future__ import annotations

import numpy as np

from meshlm.infer.constrain import MeshConstraint, VocabIndex, _Node
from meshlm.infer.grammar_parts import CLOSED, DASH, DIGITS, NUM, SPACE, PartsGrammar, _viable
from meshlm.infer.grammar_templates import TemplateGrammar
from meshlm.part_templates import TemplateLibrary
from meshlm.plan import parse_plan, plan_line

PARTS_CHARS = frozenset("vf0123456789 -\n")
PLAN_LINE_TOKENS = 24  # the most tokens of one plan line the lead-in limit does not count


def constraint_for(
    fmt: str,
    index: VocabIndex,
    bins: int = 64,
    max_preamble: int = 64,
    prefix: str = "",
    min_faces: int = 0,
    templates: TemplateLibrary | None = None,
    budget: int | None = None,
    layout: tuple[int | None, ...] = (),
):
    """The constraint for a model whose mesh format is ``fmt`` (``"llama-mesh"``:
    :class:`MeshConstraint`; ``"parts"``: :class:`PartsConstraint`, each part held to one of
    ``templates`` when given, part k to ``layout[k]`` of them, ending within ``budget``
    tokens; indices the library lacks hold nothing). Raises ValueError for another name, or
    templates or a layout for the llama-mesh format, or templates for another bins."""
    if fmt == "llama-mesh":
        if templates is not None or layout:
            raise ValueError("part templates are for the parts format, not llama-mesh")
        return MeshConstraint(index, bins, max_preamble, prefix, min_faces=min_faces)
    if fmt == "parts":
        return PartsConstraint(
            index,
            bins,
            max_preamble,
            prefix,
            min_faces=min_faces,
            templates=templates,
            budget=budget,
            layout=layout,
        )
    raise ValueError(f"no decoding constraint for mesh format {fmt!r}")


def _can_occur(text: str) -> bool:
    """Whether ``text`` can be a piece of parts text: ``v``/``f`` then a space, a space then a
    digit or ``-``, ``-`` then a digit, a digit then a digit, a space or a newline; a newline
    only last."""
    for a, b in zip(text, text[1:], strict=False):
        if a == "\n":
            return False
        if a in "vf":
            ok = b == " "
        elif a == " ":
            ok = b.isdigit() or b == "-"
        elif a == "-":
            ok = b.isdigit()
        else:
            ok = b.isdigit() or b in " \n"
        if not ok:
            return False
    return True


#: the largest number with a token of its own in a whole-number vocabulary (``PartsIndex``)
WHOLE_MAX = 255


def _on_the_way(line: str, heads) -> bool:
    """Whether ``line`` is the start of one of ``heads`` or goes on from one."""
    return any(h.startswith(line) or line.startswith(h) for h in heads)


class PartsIndex:
    """A :class:`VocabIndex`'s tokens that can occur in parts text, in a character trie (build
    once per vocabulary index: :meth:`of`). Raises ValueError when a character of the format is
    no token of its own."""

    def __init__(self, base: VocabIndex):
        self.base = base
        self.texts = base.texts
        self.vocab_size = base.vocab_size
        self.eos_ids = base.eos_ids
        self.root = _Node()
        mesh = []
        for i, t in enumerate(base.texts):
            if t and set(t) <= PARTS_CHARS and _can_occur(t):
                node = self.root
                for ch in t:
                    node = node.children.setdefault(ch, _Node())
                node.ids.append(i)
                mesh.append(t)
        for ch in "vf -\n" + DIGITS:
            if ch not in self.root.children or not self.root.children[ch].ids:
                raise ValueError(f"the tokenizer cannot write {ch!r} as a token of its own")
        # a walk from any state then crosses at most one separator: masks depend on local state
        self.simple = all(
            len(t) == 1 or t.isdigit() or t == " -" or (t[0] == " " and t[1:].isdigit())
            for t in mesh
        )
        self.cache: dict = {}
        # every coordinate (< 256) and every relative index -1..-255 is one token of its own:
        # SmolLM2 with `number_tokens` (meshlm/train/number_tokens.py); PartsConstraint then
        # writes each number as the tokenizer does (``canonical``)
        have = set(mesh)
        self.whole_numbers = all(f" {n}" in have for n in range(WHOLE_MAX + 1)) and all(
            f" -{n}" in have for n in range(1, WHOLE_MAX + 1)
        )
        self.plan_cache: dict = {}  # (plan line heads, the line so far) -> allowed ids

    @classmethod
    def of(cls, base: VocabIndex) -> PartsIndex:
        """The parts index of ``base``, built on first use and kept on it."""
        idx = base.__dict__.get("_parts_index")
        if idx is None:
            idx = base._parts_index = cls(base)
        return idx


class PartsConstraint:
    """The state of one constrained generation in the parts format: which tokens may come next.

    Same interface and lead-in rules as :class:`~meshlm.infer.constrain.MeshConstraint`:
    ``allowed()`` (int64 token ids), ``mask()``, ``advance(token_id)`` (ValueError for a token
    that is not allowed), ``feed_text(text)``, ``done``, ``complete``, ``preamble`` and
    ``text``. ``index`` is a :class:`VocabIndex` (its :class:`PartsIndex` is built once) or a
    :class:`PartsIndex`. ``min_faces``: the end is refused before that many faces while a face or
    a part can still be added. ``templates``: hold each part to one of these part templates
    (:class:`~meshlm.infer.grammar_templates.TemplateGrammar`; ValueError for another bins).
    ``budget``: with templates, the tokens the reply may take (the backend's ``max_new_tokens``):
    a new part may take only a template whose lines (vertices + faces) the tokens left pay for
    at the reply's tokens per line so far, with a tenth to spare; when none fits the reply must
    end there, a whole mesh, rather than be cut off inside a part (an estimate: a part whose
    lines cost more tokens than the reply's so far can still be cut off). A lead-in that ends
    in a plan line (``Plan: table, 5 parts.``; :mod:`meshlm.plan`) holds the mesh to that many
    parts (``PartsGrammar.parts_goal``) and, with templates that record families, to the
    named family's part templates (``TemplateGrammar.hold_to``): a model keeps its plan.
    The plan's part lines (``Part 1: 4 0 4 to 8 30 8.``, ``build-data --plan-boxes``) hold
    each part, with templates, to its bounding box (``TemplateGrammar.boxes``); and with
    templates that record families, a plan line can name only one of them (the model's
    families: a plan naming another would hold nothing). ``layout``: with templates, part k
    held to template ``layout[k]`` of the library (None: any; ``TemplateGrammar.hold_layout``),
    e.g. the parts of a shown exemplar. The plan's
    lines do not count toward ``max_preamble`` (a 9-part plan is ~110 tokens; the limit is for
    free prose): at most :data:`PLAN_LINE_TOKENS` tokens a line, for the plan line and as many
    part lines as it announces parts.
    """

    def __init__(
        self,
        index: VocabIndex | PartsIndex,
        bins: int = 64,
        max_preamble: int = 64,
        prefix: str = "",
        min_faces: int = 0,
        templates: TemplateLibrary | None = None,
        budget: int | None = None,
        layout: tuple[int | None, ...] = (),
    ):
        if layout and templates is None:
            raise ValueError("a layout holds parts to templates: give the templates")
        self.layout = tuple(layout)
        self.budget, self.tokens, self.mesh_tokens = budget, 0, 0
        self._lines, self._counted = 0, 0  # newlines in self.text[:_counted] (text only grows)
        self.index = index if isinstance(index, PartsIndex) else PartsIndex.of(index)
        self.grammar = (
            PartsGrammar(bins, min_faces)
            if templates is None
            else TemplateGrammar(templates, bins, min_faces)
        )
        self.bins, self.max_preamble, self.min_faces = bins, max_preamble, min_faces
        # numbers only as the tokenizer writes them, as the model was trained: left free, a
        # constrained model writes " 1" then "5" for 15 and, conditioned on pieces it never saw,
        # more pieces (a reply of 703 canonical tokens took 1,200). At most 256 bins (every
        # coordinate a token); a relative index past -255 (a part of more vertices: without
        # templates) is its longest whole-number token, then digits (:meth:`_ends`)
        self.canonical = self.index.whole_numbers and bins <= WHOLE_MAX + 1
        self.state = None  # automaton state once the mesh has started
        self.done = False
        self.preamble = ""
        self.preamble_tokens = 0  # lead-in tokens counted toward max_preamble
        self._line_tokens = 0  # tokens begun on the lead-in's current line
        self._plan_lines = 0  # plan lines (the plan line, part lines) the lead-in has begun
        self._in_plan_line = False  # the current line began within that count
        self._heads: tuple[str, ...] | None = None  # see _plan_family_ids
        self.text = ""
        if prefix:
            self.feed_text(prefix)

    # -- the mask -----------------------------------------------------------------------------

    def _walk(self, state) -> list[int]:
        """Ids of the tokens the automaton accepts from ``state`` (a walk of the trie); with
        ``canonical``, only tokens that end where a whole-number token would (:meth:`_ends`)
        and none that goes on with a number an earlier token began unless the number is past
        the whole-number tokens (``-300`` is `` -30`` then ``0``)."""
        out: list[int] = []
        canon = self.canonical
        mid = state[3] if canon and state[0] == NUM else ""  # the number an earlier token began
        stack = [(self.index.root, state)]
        while stack:
            node, st = stack.pop()
            for ch, child in node.children.items():
                if mid and node is self.index.root and ch in DIGITS and int(mid + ch) <= WHOLE_MAX:
                    continue  # that number has a token of its own: only a separator may follow
                nxt = self.grammar.step(st, ch)
                if nxt is None:
                    continue
                if child.ids and (not canon or self._ends(nxt)):
                    out.extend(child.ids)
                if child.children and nxt[0] != CLOSED:
                    stack.append((child, nxt))
        return out

    def _ends(self, s) -> bool:
        """Whether a token may end in state ``s`` under ``canonical``: not right after a
        separator or a minus (the number's own token carries them), and inside a number only
        where the number is whole (a separator may follow it) or where the tokenizer cuts a
        number past the whole-number tokens: after its longest prefix that has a token."""
        if s[0] == DASH or (s[0] == NUM and not s[3]):
            return False
        if s[0] == NUM:
            _, _, _, digits, _, lo, hi, excl = s
            n = int(digits)
            if lo <= n <= hi and n not in excl:  # whole: in its field's range
                return True
            return n <= WHOLE_MAX and any(
                int(digits + x) > WHOLE_MAX and _viable(digits + x, lo, hi, excl) for x in DIGITS
            )
        return True

    def _key(self, s, end: bool):
        """What the allowed set at ``s`` depends on when a token crosses at most one separator
        (``index.simple``): the current number and the range of the number after a space."""
        if s[0] == NUM:
            _, kind, field, digits, vals, lo, hi, excl = s
            nxt = None
            if digits and field < 2 and lo <= int(digits) <= hi and int(digits) not in excl:
                nxt = self.grammar.range(kind, field + 1, (*vals, int(digits)))
            return (self.bins, self.canonical, NUM, kind, field, digits, lo, hi, excl, nxt, end)
        if s[0] == SPACE:
            return (self.bins, self.canonical, SPACE, s[1], self.grammar.range(s[1], 0, ()))
        if s[0] == DASH:
            return (self.bins, self.canonical, *s[:4], *s[5:])
        return (self.bins, self.canonical, *s)

    def _spend(self) -> None:
        """Tell a template grammar whether a new part still fits the token budget."""
        g = self.grammar
        if self.budget is None or self.state is None or not isinstance(g, TemplateGrammar):
            return
        self._lines += self.text.count("\n", self._counted)  # the new part only: a hot path
        self._counted = len(self.text)
        lines = self._lines
        if not lines:
            return  # no line yet to price one by
        per_line = self.mesh_tokens / lines
        # lines the tokens left pay for, at the reply's tokens a line with a tenth to spare
        # (1: the end token); the grammar lets a new part take only a template that fits
        g.room = (self.budget - self.tokens - 1) / (1.1 * per_line)

    def allowed(self) -> np.ndarray:
        """int64 array of the token ids allowed next (no repeats; not necessarily sorted)."""
        self._spend()
        idx = self.index
        if self.done:
            return np.asarray(idx.eos_ids, dtype=np.int64)
        if self.state is not None:
            end = self.grammar.can_end(self.state)
            key = self._key(self.state, end) if idx.simple else None
            hit = idx.cache.get(key) if key is not None else None
            if hit is None:
                ids = self._walk(self.state) + (idx.eos_ids if end else [])
                hit = np.unique(np.asarray(ids, dtype=np.int64))
                if key is not None and len(idx.cache) < 400_000:
                    idx.cache[key] = hit
            return hit
        base = idx.base
        if self.preamble_tokens < self.max_preamble:
            held = self._plan_family_ids()  # inside a plan line's family name
            return base.prose_ids if held is None else held  # else any ordinary token
        if self._line_start:
            return np.unique(np.asarray(self._walk(self.grammar.line()), dtype=np.int64))
        return base.newline_ids  # lead-in too long: close the line, then the mesh must start

    def mask(self) -> np.ndarray:
        """Boolean mask over the vocabulary (True = allowed)."""
        m = np.zeros(self.index.vocab_size, dtype=bool)
        m[self.allowed()] = True
        return m

    # -- moving on ------------------------------------------------------------------------------

    @property
    def _line_start(self) -> bool:
        return not self.preamble or self.preamble.endswith("\n")

    def advance(self, token_id: int) -> None:
        token_id = int(token_id)
        self._spend()
        if token_id in self.index.eos_ids:
            if self.state is None or not self.grammar.can_end(self.state):
                raise ValueError("end of reply before the mesh is complete")
            self.done = True
            return
        if self.done:
            raise ValueError("token after the end of the reply")
        text = self.index.texts[token_id] if 0 <= token_id < self.index.vocab_size else ""
        if not text:
            raise ValueError(f"token {token_id} is not allowed (special or unknown)")
        self.tokens += 1
        if self.state is None:
            if self._line_start:
                self._plan()  # before the mesh's first token is read
            started = self.grammar.feed(self.grammar.line(), text) if self._line_start else None
            if started is not None:
                self.state, self.text = self.grammar.settle(started), text
                self.mesh_tokens += 1
                return
            if self.preamble_tokens >= self.max_preamble and not (
                not self._line_start and token_id in self.index.base.newline_set
            ):
                raise ValueError(f"token {token_id} ({text!r}) is not allowed after the lead-in")
            self.preamble_tokens += not self._plan_token(text)
            self.preamble += text
            self._line_tokens = 0 if "\n" in text else self._line_tokens + 1
            return
        nxt = self.grammar.feed(self.state, text)
        if nxt is None:
            raise ValueError(f"token {token_id} ({text!r}) is not allowed here")
        self.state = self.grammar.settle(nxt)
        self.text += text
        self.mesh_tokens += 1

    def _plan_family_ids(self) -> np.ndarray | None:
        """Inside a plan line's family name, with templates that record families: the prose
        tokens that keep the line on ``Plan: <a family the library knows>,`` (a plan naming
        a family the model never drew -- "road", "hat" -- gets none of its templates); None
        elsewhere (no hold)."""
        g = self.grammar
        line = self.preamble.rsplit("\n", 1)[-1]
        if not isinstance(g, TemplateGrammar) or not line.startswith("Plan:"):
            return None
        if self._heads is None:  # "Plan: <family>," for each family (meshlm.plan's wording)
            self._heads = tuple(plan_line(f, 1).split(",")[0] + "," for f in g.families)
        heads = self._heads
        if not heads or any(line.startswith(h) for h in heads):
            return None  # no families recorded, or the name is written
        key = (heads, line)
        hit = self.index.plan_cache.get(key)
        if hit is None:
            texts = self.index.base.texts
            hit = np.asarray(
                [
                    i
                    for i in self.index.base.prose_ids.tolist()
                    if _on_the_way(line + texts[i], heads)
                ],
                dtype=np.int64,
            )
            self.index.plan_cache[key] = hit
        return hit if len(hit) else None

    def _plan_token(self, text: str) -> bool:
        """Whether token ``text``, about to be added to the lead-in, belongs to a plan line
        (the class docstring): its line may still become ``Plan: ...`` or ``Part k: ...``, and
        the line, when it began, was within the plan's count of lines."""
        line = self.preamble.rsplit("\n", 1)[-1] + text.split("\n", 1)[0]
        like = bool(line) and _on_the_way(line, ("Plan:", "Part "))
        if self._line_tokens == 0:  # the line's first token: is there room for a plan line?
            plan = parse_plan(self.preamble)
            room = self._plan_lines < 1 + (plan.parts if plan is not None else 0)
            self._in_plan_line = like and room
            self._plan_lines += self._in_plan_line
        return self._in_plan_line and like and self._line_tokens < PLAN_LINE_TOKENS

    def _plan(self) -> None:
        """Before the mesh: a plan line in the lead-in (meshlm.plan) sets the part count the
        grammar holds the reply to, and with templates that know the family, its part shapes.
        Asked at every line start of the lead-in (the last plan line holds)."""
        plan = parse_plan(self.preamble)
        if plan is not None:
            self.grammar.parts_goal = plan.parts
            if isinstance(self.grammar, TemplateGrammar):
                self.grammar.hold_to(plan.family)
                self.grammar.hold_boxes(plan.boxes)
                if self.layout:
                    self.grammar.hold_layout(self.layout)

    def feed_text(self, text: str) -> None:
        """Advance over text already written (a cut-off reply being continued). Raises
        ValueError when it is not the start of text this constraint allows."""
        if self.state is None:
            lines = text.split("\n")
            k = next((i for i, ln in enumerate(lines) if ln.startswith("v ")), None)
            if k is None:
                self.preamble += text
                return
            self.preamble += "\n".join(lines[:k]) + ("\n" if k else "")
            text = "\n".join(lines[k:])
            self._plan()
            self.state = self.grammar.line()
        s = self.state
        for ch in text:
            s = self.grammar.step(s, ch)
            if s is None:
                raise ValueError("the text to continue is not a valid start of parts text")
            s = self.grammar.settle(s)
        self.state = s
        self.text += text

    @property
    def complete(self) -> bool:
        """True when the text so far is a whole valid mesh."""
        return self.state is not None and self.grammar.can_end(self.state)
