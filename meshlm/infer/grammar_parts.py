"""The ``parts`` mesh language as a character automaton, and as GBNF / a regex for servers.

:class:`PartsGrammar` accepts the text :class:`~meshlm.infer.constrain_parts.PartsConstraint`
allows (its docstring lists the rules, and which strict rules are beyond a left-to-right
check). Unlike :class:`~meshlm.infer.grammar.MeshGrammar` its bounds depend on the whole part
so far (which vertices it has, which faces exist), so that is kept in the object and updated
when a line is committed; within a line, states are immutable tuples, so a search over a token
trie can branch without copying:

* ``(LINE, v_ok, f_ok, end_ok)`` -- a line starts: may a vertex line, a face line, the end come;
* ``(SPACE, kind)`` -- after ``v`` / ``f``;
* ``(DASH, kind, field, "", vals, lo, hi, excl)`` -- a face index's ``-`` comes next;
* ``(NUM, kind, field, digits, vals, lo, hi, excl)`` -- inside number ``field`` (0..2) of a
  ``kind`` line; ``vals`` the numbers before it; allowed values ``lo..hi`` but not ``excl``;
* ``(CLOSED, kind, vals)`` -- the line's newline was stepped over; :meth:`PartsGrammar.settle`
  commits it and gives the next ``LINE`` state (no step leaves a CLOSED state before that).

:func:`parts_gbnf` and :func:`parts_regex` give the part of these rules a context-free grammar
can say, for HTTP servers (:mod:`meshlm.infer.openai_http`). Pure Python.
"""

from __future__ import annotations

from math import comb

LINE, SPACE, DASH, NUM, CLOSED = range(5)
DIGITS = "0123456789"
_NONE: frozenset = frozenset()


def _viable(prefix: str, lo: int, hi: int, excl: frozenset) -> bool:
    """Is there a number in ``lo..hi``, not in ``excl``, whose decimal form starts with
    ``prefix`` (no leading zeros)?"""
    p = int(prefix)
    if p == 0:
        return lo <= 0 <= hi and 0 not in excl
    scale = 1
    while p * scale <= hi:
        first, last = max(p * scale, lo), min(p * scale + scale - 1, hi)
        if first <= last and last - first + 1 > sum(first <= e <= last for e in excl):
            return True
        scale *= 10
    return False


class PartsGrammar:
    """The parts language for ``bins`` levels per axis, at the point the committed lines reached
    (mutable: :meth:`settle` commits each line as its newline is stepped over; the states
    between are immutable tuples, see the module docstring)."""

    def __init__(self, bins: int = 64, min_faces: int = 0):
        if not 2 <= bins <= 1024:
            raise ValueError(f"bins must be in 2..1024, got {bins}")
        self.min_faces = min_faces
        self.bins, self.cells = bins, bins**3
        self.seen: set = set()  # coordinates of every vertex line so far, all parts
        self.verts: list = []  # current part: coordinates by label (0 = first vertex line)
        self.label: dict = {}  # coordinates -> label, current part
        self.col: dict = {}  # (x, y) -> set of z, current part
        self.row: dict = {}  # x -> vertex count, current part
        self.in_faces = False  # the current part has face lines (a v line starts a new part)
        self.used: set = set()  # labels some face uses
        self.cnt: list = []  # label -> faces so far (any part) on three vertices of this part
        self.maxcnt = 0
        self.taken = 0  # faces so far on three vertices of this part
        self.faces: set = set()  # sorted coordinate triples, all parts
        self.by_vertex: dict = {}  # coordinates -> triples with it
        self.by_pair: dict = {}  # sorted coordinate pair -> third coordinates
        self.nfaces = 0
        self.memo: dict = {}  # cleared at each commit
        # parts the reply's plan line announced (meshlm.plan; set by the constraint): no new
        # part once that many are begun, no end before while a new part may still follow
        self.parts_goal: int | None = None
        self.n_parts = 0  # parts begun

    # -- vertex lines ---------------------------------------------------------------------------

    def _part(self):
        """(vertices, labels, col, row) of the part a vertex line now goes to."""
        if self.in_faces:
            return [], {}, {}, {}
        return self.verts, self.label, self.col, self.row

    def _ready(self, verts: list) -> bool:
        """Whether faces can start on ``verts``: each vertex has a triangle that is no face."""
        vs = set(verts)
        cnt = dict.fromkeys(vs, 0)
        for t in {t for x in vs for t in self.by_vertex.get(x, ())}:
            if all(y in vs for y in t):
                for y in t:
                    cnt[y] += 1
        return len(vs) >= 3 and all(c < comb(len(vs) - 1, 2) for c in cnt.values())

    def cells_ok(self):
        """None when every cell not in the part can take the next vertex line, else the
        frozenset of the cells that can (the part must stay finishable: a cell is fine when
        enough never-used cells remain for a fresh vertex, or when faces could start after it)."""
        if "cells" not in self.memo:
            verts, label, _, _ = self._part()
            n, free = len(verts), self.cells - len(self.seen)
            out = None
            if free < max(2, 3 - n):
                b, out = self.bins, set()
                for c in ((x, y, z) for x in range(b) for y in range(b) for z in range(b)):
                    if c in label:
                        continue
                    if free - (c not in self.seen) >= max(1, 2 - n) or self._ready(verts + [c]):
                        out.add(c)
                out = frozenset(out)
            self.memo["cells"] = out
        return self.memo["cells"]

    def v_range(self, field: int, vals: tuple):
        """(lo, hi, excluded) of coordinate ``field`` of a vertex line after ``vals``."""
        top, b = self.bins - 1, self.bins
        cells = self.cells_ok()
        if cells is not None:
            vals_ok = {c[field] for c in cells if c[:field] == vals}
            return min(vals_ok), max(vals_ok), frozenset(set(range(b)) - vals_ok)
        _, _, col, row = self._part()
        if field == 0:
            return 0, top, frozenset(x for x, k in row.items() if k == b * b)
        x = vals[0]
        if field == 1:
            if row.get(x, 0) < b:
                return 0, top, _NONE
            return 0, top, frozenset(y for (cx, y), zs in col.items() if cx == x and len(zs) == b)
        return 0, top, frozenset(col.get(vals, ()))

    def v_ok(self) -> bool:
        """May a vertex line start (a new part only once every vertex of this one is used)."""
        if self.in_faces and len(self.used) < len(self.verts):
            return False
        cells = self.cells_ok()
        return len(self._part()[0]) < self.cells if cells is None else bool(cells)

    # -- face lines -----------------------------------------------------------------------------

    def f_ok(self) -> bool:
        """May a face line start (a triangle on the part's vertices that is no face yet)."""
        n = len(self.verts)
        if self.in_faces:
            return self.taken < comb(n, 3)
        return n >= 3 and self.maxcnt < comb(n - 1, 2)

    def f_range(self, field: int, vals: tuple):
        """(lo, hi, excluded) of relative index ``field`` of a face line after ``vals``."""
        n = len(self.verts)
        full = comb(n - 1, 2)
        if field == 0:
            if self.maxcnt < full:
                return 1, n, _NONE
            return 1, n, frozenset(n - u for u in range(n) if self.cnt[u] >= full)
        ca = self.verts[n - vals[0]]
        if field == 1:  # b with no third vertex left: every triangle on (a, b) is a face
            per: dict = {}
            for t in self.by_vertex.get(ca, ()):
                if all(y in self.label for y in t):
                    for y in t:
                        per[y] = per.get(y, 0) + 1
            gone = {n - self.label[y] for y, k in per.items() if y != ca and k >= n - 2}
            return 1, n, frozenset(gone | {vals[0]})
        cb = self.verts[n - vals[1]]
        third = self.by_pair.get((ca, cb) if ca < cb else (cb, ca), ())
        gone = {n - self.label[y] for y in third if y in self.label}
        return 1, n, frozenset(gone | {vals[0], vals[1]})

    def covers(self, vals: tuple) -> bool:
        """Whether the part's vertices are all used once face ``vals`` is added."""
        n = len(self.verts)
        return len(self.used | {n - k for k in vals}) == n

    def range(self, kind: str, field: int, vals: tuple):
        key = (kind, field, vals)
        hit = self.memo.get(key)
        if hit is None:
            hit = (self.v_range if kind == "v" else self.f_range)(field, vals)
            self.memo[key] = hit
        return hit

    # -- committing a line ----------------------------------------------------------------------

    def commit(self, kind: str, vals: tuple) -> None:
        self.memo = {}
        if kind == "v":
            self.n_parts += self.in_faces or not self.verts
            if self.in_faces:  # a new part
                self.verts, self.label, self.col, self.row = [], {}, {}, {}
                self.in_faces, self.used, self.cnt = False, set(), []
                self.maxcnt = self.taken = 0
            c, n = vals, len(self.verts)
            self.cnt.append(0)
            for t in self.by_vertex.get(c, ()):  # faces of earlier parts now inside this one
                a, b = (y for y in t if y != c)
                if a in self.label and b in self.label:
                    self.taken += 1
                    for u in (self.label[a], self.label[b], n):
                        self.cnt[u] += 1
                        self.maxcnt = max(self.maxcnt, self.cnt[u])
            self.label[c] = len(self.verts)
            self.verts.append(c)
            self.seen.add(c)
            self.col.setdefault(c[:2], set()).add(c[2])
            self.row[c[0]] = self.row.get(c[0], 0) + 1
            return
        n = len(self.verts)
        labels = [n - k for k in vals]
        coords = sorted(self.verts[u] for u in labels)
        t = tuple(coords)
        self.in_faces = True
        self.faces.add(t)
        for x in t:
            self.by_vertex.setdefault(x, []).append(t)
        for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
            self.by_pair.setdefault((t[i], t[j]), set()).add(t[k])
        for u in labels:
            self.cnt[u] += 1
            self.maxcnt = max(self.maxcnt, self.cnt[u])
        self.taken += 1
        self.used.update(labels)
        self.nfaces += 1

    # -- the automaton ----------------------------------------------------------------------------

    def line(self):
        """The state at the start of a line, from the committed lines (held to
        ``parts_goal``: never a dead end, the free state's other choices stay)."""
        kind, v_ok, f_ok, end = self._free_line()
        if self.parts_goal is not None and self.in_faces:
            if self.n_parts >= self.parts_goal:
                v_ok = False
            elif v_ok and end:
                end = False  # short of the plan while a new part may follow
        return (kind, v_ok, f_ok, end)

    def _free_line(self):
        """:meth:`line` without the plan's part count."""
        v_ok, f_ok = self.v_ok(), self.f_ok()
        end = self.in_faces and len(self.used) == len(self.verts)
        if end and self.nfaces < self.min_faces and (v_ok or f_ok):
            end = False
        return (LINE, v_ok, f_ok, end)

    def step(self, s, ch: str):
        """The state after character ``ch``, or None if it is not allowed (pure: lines are
        committed by the caller when a state is CLOSED)."""
        phase = s[0]
        if phase == NUM:
            _, kind, field, digits, vals, lo, hi, excl = s
            if ch in DIGITS:
                d = digits + ch
                if digits == "0" or not _viable(d, lo, hi, excl):
                    return None
                return (NUM, kind, field, d, vals, lo, hi, excl)
            if not digits:
                return None
            n = int(digits)
            if not lo <= n <= hi or n in excl:
                return None
            vals = (*vals, n)
            if ch == " " and field < 2:
                lo2, hi2, ex2 = self.range(kind, field + 1, vals)
                return (NUM if kind == "v" else DASH, kind, field + 1, "", vals, lo2, hi2, ex2)
            if ch == "\n" and field == 2:
                return (CLOSED, kind, vals)
            return None
        if phase == LINE:
            if (ch == "v" and s[1]) or (ch == "f" and s[2]):
                return (SPACE, ch)
            return None
        if phase == SPACE:
            if ch != " ":
                return None
            lo, hi, excl = self.range(s[1], 0, ())
            return (NUM if s[1] == "v" else DASH, s[1], 0, "", (), lo, hi, excl)
        if phase == DASH:
            return (NUM, *s[1:]) if ch == "-" else None
        return None  # CLOSED: the line must be committed first

    def feed(self, s, text: str):
        """Run ``text`` through :meth:`step` (no commits); None as soon as a character is
        refused."""
        for ch in text:
            s = self.step(s, ch)
            if s is None:
                return None
        return s

    def settle(self, s):
        """Commit a line the state closed; the state to continue from."""
        if s[0] == CLOSED:
            self.commit(s[1], s[2])
            return self.line()
        return s

    def can_end(self, s) -> bool:
        """True when the text up to state ``s`` is a whole mesh (the end token may follow)."""
        if s[0] == LINE:
            return s[3]
        if s[0] != NUM or s[1] != "f" or s[2] != 2 or not s[3]:
            return False
        if self.parts_goal is not None and self.n_parts < self.parts_goal:
            return False  # short of the plan: the line closes first, then line() decides
        n = int(s[3])
        if not s[5] <= n <= s[6] or n in s[7]:
            return False
        return self.covers((*s[4], n)) and self.nfaces + 1 >= self.min_faces


# -- for servers: what a context-free grammar can say ---------------------------------------------


def parts_gbnf(bins: int = 64, max_index_digits: int = 4) -> str:
    """GBNF (llama.cpp's grammar format) for parts text: one or more parts, each at least three
    ``v X Y Z`` lines (coordinates ``0..bins-1``, no leading zeros) then at least one
    ``f -A -B -C`` line (indices ``1..10**max_index_digits - 1``, no leading zeros),
    ``\\n``-separated; a new part starts with a vertex line after faces; the text ends after a
    face line. A grammar cannot count, so it does not bound an index by the part's vertices,
    nor make indices distinct, faces or vertices unique, or every vertex used: replies are read
    leniently, and the report lists what was dropped."""
    c = " | ".join(f'"{n}"' for n in range(bins))
    i = "[1-9] " + " ".join(["[0-9]?"] * (max_index_digits - 1))
    return "\n".join(
        [
            'root ::= part ("\\n" part)*',
            'part ::= vline vline vline vline* fline ("\\n" fline)*',
            'vline ::= "v " c " " c " " c "\\n"',
            'fline ::= "f -" i " -" i " -" i',
            f"c ::= {c}",
            f"i ::= {i}",
        ]
    )


def parts_regex(bins: int = 64, max_index_digits: int = 4) -> str:
    """The language of :func:`parts_gbnf` as a regular expression (vLLM's structured outputs),
    a last newline allowed (as the token constraint allows)."""
    c = "(" + "|".join(str(n) for n in range(bins)) + ")"
    i = f"[1-9][0-9]{{0,{max_index_digits - 1}}}"
    f = f"f -{i} -{i} -{i}"
    part = f"(v {c} {c} {c}\\n){{3,}}{f}(\\n{f})*"
    return f"{part}(\\n{part})*\\n?"
