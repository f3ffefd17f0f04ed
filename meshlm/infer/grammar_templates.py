"""The parts language with each part held to a template of a library (a model's training parts).

:class:`TemplateGrammar` is :class:`~meshlm.infer.grammar_parts.PartsGrammar` (every rule of
the parts constraint still holds) that, within a part, allows only what some template of a
:class:`~meshlm.part_templates.TemplateLibrary` still consistent with the part so far allows:

* a vertex line's coordinate on an axis either *repeats* the part's value the template says
  (its ``seq``) or is a *new* value, different from the part's values on that axis and ranked
  among them as the template says (its ``order``: strictly between the nearest smaller and
  larger values);
* a vertex line may come only while a template has more vertices, a face line only once a
  template has exactly the part's vertex count, and then only the template's next face;
* a new part, and the end, only once the part is a whole template (every face written);
* a part shares no vertex with an earlier part, unless its template forces one (three
  repeated values; the vertex is then written, the part stays its template's): the text's
  parts are then the pieces the strict decoder splits the mesh into (a part whose edges other
  parts share is cut into several, "part is not one piece"; a corner alone joins nothing).
  4.3 % of data/smol-parts16's training parts touch an earlier one at a corner; under the
  constraint such a corner comes out one bin apart; and a new value that would settle a later
  vertex of the part (its values then all known) on an earlier part's vertex is refused while
  another is left (:meth:`TemplateGrammar._forcing`, a one-step lookahead);
* parts come in the format's canonical order (:mod:`meshlm.partorder`, step 6): a part's key --
  its vertex count and face lines (its template's), then its bounding box's minimum corner,
  maximum corner and its coordinates in writing order -- must exceed the previous part's. A
  template whose shape (count, faces) is larger is free; one of the same shape is held to the
  rest of the key, whose values come out of order (a box's minimum x may be its fifth vertex):
  :meth:`TemplateGrammar._after` asks whether the values so far can still be completed, within
  the template's ranking and room, to a larger key. After a part no larger template may follow,
  only the end may.
* with a token budget (``room``, set by :class:`~meshlm.infer.constrain_parts.PartsConstraint`:
  the lines the tokens left still pay for), a new part may take only a template whose lines
  (vertices + faces) fit, and when none does the reply ends, whole, instead of being cut off
  inside a part (``stop_parts`` forbids a new part outright).
* with a part count (``parts_goal``, :class:`~meshlm.infer.grammar_parts.PartsGrammar`'s,
  set by the constraint from the reply's plan line, :mod:`meshlm.plan`): no new part once
  that many are begun, and no end before while a new part may still follow (the budget or the
  order may leave none: then the end is allowed, never a dead end).

* with part boxes (``boxes``, set by the constraint from the plan's part lines,
  :mod:`meshlm.plan`), part ``k`` is held to box ``k``: on each axis the template's smallest
  value is the box's minimum, its largest the box's maximum, and the values between strictly
  inside (a flat part, one value on an axis, takes the minimum). A part takes only templates
  that fit its box (as many distinct values on each axis as the box has bins for; one value
  where the box is flat), when some do; where the template's ranking and room leave no value
  in the box, the box gives way on that coordinate (never a dead end).

So a part is one of the library's shapes with the model's own numbers: a box stays a box
whatever its proportions, and the model cannot write a wedge or copy a value where the box needs
a new one; the text of library parts is the canonical text of its mesh. Not held: where parts go.

Never a dead end: where the template rule leaves nothing (a vertex value no template allows
within the grid, a face an earlier part already wrote), the field falls back to the plain parts
rule and the part continues under it (no template any more; at most as many vertices as the
library's largest template, so a model that lost its template cannot run on writing vertex
lines -- seen on smol-parts16h: 200 vertex lines to the token limit); the plain rule never
dead-ends.
Pure Python.
"""

from __future__ import annotations

from meshlm.infer.grammar_parts import LINE, PartsGrammar
from meshlm.part_templates import TemplateLibrary


def _within(rule, value: int) -> bool:
    """Whether ``value`` keeps a rule of :meth:`TemplateGrammar._values`."""
    if rule is None:
        return False
    same, span = rule
    return value == same if span is None else span[0] <= value <= span[1]


class TemplateGrammar(PartsGrammar):
    """:class:`PartsGrammar` for ``library.bins`` levels with every part held to a template of
    ``library`` (module docstring). ``cands``: indices of the templates the current part still
    fits (empty: the part has left every template and follows the plain rule). Raises
    ValueError when ``bins`` is given and differs from the library's."""

    def __init__(self, library: TemplateLibrary, bins: int | None = None, min_faces: int = 0):
        if bins is not None and bins != library.bins:
            raise ValueError(f"the part templates are for {library.bins} bins, not {bins}")
        super().__init__(library.bins, min_faces)
        self.library, self.lib = library, library.templates
        self.pool = list(range(len(self.lib)))  # the templates a part may take (hold_to)
        self.families = sorted({f for fs in library.families for f in fs})  # all it records
        self.ranks = [tuple(t.rank(a) for a in range(3)) for t in self.lib]
        self.shapes = [(t.vertices, t.faces) for t in self.lib]
        self.max_shape = max(self.shapes, default=None)
        self.max_vertices = max((t.vertices for t in self.lib), default=0)
        # the parts-order key of a template's part as (axis, appearance index) per entry: min
        # corner, max corner, then each vertex's values in writing order
        self.slots = [
            [(a, t.axes[a][1][0]) for a in range(3)]
            + [(a, t.axes[a][1][-1]) for a in range(3)]
            + [(a, t.axes[a][0][i]) for i in range(t.vertices) for a in range(3)]
            for t in self.lib
        ]
        self.prior: dict[tuple[int, int], set[int]] = {}  # (x, y) -> z, earlier parts' vertices
        self.prior_axis: list[set[int]] = [set(), set(), set()]  # their values on each axis
        self.prev: tuple | None = None  # the previous part's key (none before the first part)
        self.tied: set[int] = set()  # templates of the previous part's shape
        self.flabels: list[tuple[int, ...]] = []  # face labels of the current part
        self.stop_parts = False  # no new part: the token budget is spent (PartsConstraint)
        # lines the token budget still has room for (PartsConstraint; None: no budget): a new
        # part may take only a template whose lines (vertices + faces) fit
        self.room: float | None = None
        self.lines = [t.vertices + len(t.faces) for t in self.lib]
        # per template and axis: the appearance indices of its smallest and largest values
        self.extremes = [
            tuple((r.index(0), r.index(max(r))) if r else (0, 0) for r in rk) for rk in self.ranks
        ]
        # the plan's part boxes (x0, y0, z0, x1, y1, z1) in bins, part 1 first (PartsConstraint)
        self.boxes: tuple[tuple[int, ...], ...] = ()
        # part k's template, part 1 first (hold_layout: the shown exemplar's; PartsConstraint)
        self.layout: tuple[int | None, ...] = ()
        self._new_part(*self._start(None))

    def hold_to(self, family: str) -> None:
        """From here on, only the templates ``family``'s training replies used (the library's
        ``families``, read from the plan lines): the reply named its family (meshlm.plan), so
        its parts are that family's shapes. Nothing changes when the library does not know the
        family. Called again, the last family holds (from the whole library)."""
        keep = sorted(self.library.of_family(family))
        if not keep:
            return
        self.pool = keep
        self.max_shape = max(self.shapes[t] for t in keep)
        if not self.n_parts:  # the mesh has not begun: its first part too
            self.cands = list(keep)
        self.memo.pop("start", None)

    def hold_boxes(self, boxes) -> None:
        """Hold part ``k`` to ``boxes[k]`` (``(x0, y0, z0, x1, y1, z1)`` in bins; the plan's
        part lines, meshlm.plan; module docstring). Before the mesh begins."""
        self.boxes = tuple(tuple(b) for b in boxes)
        if not self.n_parts:
            self.cands = self._boxed(self.cands, 0)
        self.memo.pop("start", None)

    def hold_layout(self, layout) -> None:
        """Hold part ``k`` to template ``layout[k]`` (an index into the library, or None: any),
        e.g. the parts of the exemplar shown (``Sampling.exemplar_layout``). Before the mesh
        begins; a part whose held template cannot follow the parts before it in the canonical
        order takes any the order allows (never a dead end)."""
        self.layout = tuple(layout)
        if not self.n_parts:
            self.cands = self._held(self.cands, 0)
        self.memo.pop("start", None)

    def _held(self, cands: list[int], part: int) -> list[int]:
        """The template of ``cands`` that :meth:`hold_layout` holds part ``part`` to; all of
        them when there is none or it is not among them (asked last, after the order, the
        boxes and the budget have had their say)."""
        if part < len(self.layout) and self.layout[part] is not None:
            return [t for t in cands if t == self.layout[part]] or cands
        return cands

    def _boxed(self, cands: list[int], part: int) -> list[int]:
        """The templates of ``cands`` that fit part ``part``'s box; all of them when there is
        no box or none fits."""
        if part >= len(self.boxes):
            return cands
        b = self.boxes[part]

        def fits(t: int) -> bool:
            for a in range(3):
                n, room = len(self.lib[t].axes[a][1]), b[a + 3] - b[a]
                if (room != 0) if n == 1 else (room < n - 1):
                    return False
            return True

        return [t for t in cands if fits(t)] or cands

    def _taken(self, x: int, y: int) -> set[int]:
        """z of the vertices of earlier parts at ``(x, y)`` (a vertex line of a new part after
        faces: the current part is an earlier one)."""
        out = set(self.prior.get((x, y), ()))
        if self.in_faces:
            out |= self.col.get((x, y), set())
        return out

    def _new_part(self, cands: list[int], tied: set[int]) -> None:
        self.cands, self.tied = cands, tied
        self.dist: list[list[int]] = [[], [], []]  # distinct values per axis, first appearance
        self.nf = 0  # faces written in this part
        self.flabels = []

    # -- the order between parts -------------------------------------------------------------------

    def _key(self) -> tuple:
        """The current part's order key (:mod:`meshlm.partorder` step 6): ``(shape, rest)``,
        ``shape`` = (vertex count, face labels), ``rest`` = min corner + max corner + the
        coordinates in writing order, flat."""
        v = self.verts
        lo = tuple(min(p[a] for p in v) for a in range(3))
        hi = tuple(max(p[a] for p in v) for a in range(3))
        return (len(v), tuple(self.flabels)), lo + hi + tuple(x for p in v for x in p)

    def _start(self, prev) -> tuple[list[int], set[int]]:
        """Templates a part after the part of key ``prev`` may take, and those of them of its
        shape (held to the rest of the key); every template for the first part (``prev`` None)."""
        if prev is None:
            return list(self.pool), set()
        shape = prev[0]
        tied = {t for t in self.pool if self.shapes[t] == shape}
        cands = [
            t
            for t in self.pool
            if self.shapes[t] > shape or (t in tied and self._after(t, [[], [], []], prev))
        ]
        return cands, tied & set(cands)

    def _can_follow(self, key) -> bool:
        """Whether some template's part can follow a part of key ``key`` (the cheap form of
        ``bool(self._start(key)[0])``, asked at every line start after a face)."""
        if key[0] < self.max_shape:
            return True
        return any(
            self.shapes[t] == key[0] and self._after(t, [[], [], []], key) for t in self.pool
        )

    def _span(self, t: int, axis: int, k: int, known) -> tuple[int, int] | None:
        """``(lo, hi)`` for template ``t``'s value ``k`` (appearance index) on ``axis`` given the
        ``known`` ``(index, value)`` pairs there: ranked as the template says, leaving one bin for
        each value still to come between it and its neighbours (so the template can always be
        finished); None when there is no room."""
        r = self.ranks[t][axis]
        known = list(known)
        below = [(r[j], v) for j, v in known if r[j] < r[k]]
        above = [(r[j], v) for j, v in known if r[j] > r[k]]
        rb, vb = max(below) if below else (-1, -1)
        ra, va = min(above) if above else (len(r), self.bins)
        lo, hi = vb + (r[k] - rb), va - (ra - r[k])
        return (lo, hi) if lo <= hi else None

    def _after(self, t: int, dist, prev) -> bool:
        """Whether template ``t``'s part with distinct values ``dist`` so far can still be
        completed to a key larger than ``prev`` (the previous part's, of the same shape: the
        rest of the key decides). Exact within the template's ranking and room: going through
        the key, an unknown entry that can exceed ``prev``'s value settles it; one that can at
        best equal it must (the rest decides); a known one decides, or passes on a tie."""
        known = [dict(enumerate(d)) for d in dist]
        for (a, k), p in zip(self.slots[t], prev[1], strict=True):
            v = known[a].get(k)
            if v is None:
                span = self._span(t, a, k, known[a].items())
                if span is None or span[1] < p:
                    return False
                if span[1] > p:
                    return True
                v = known[a][k] = p  # only a tie is left for this entry
            if v != p:
                return v > p
        return False  # the same key: the same part again

    # -- a template's rule for one coordinate ----------------------------------------------------

    def _values(self, t: int, axis: int, n: int, dist: list[list[int]]):
        """What template ``t`` allows for vertex ``n``'s coordinate on ``axis`` after a part
        whose distinct values are ``dist``: ``(value, None)`` to repeat a value, ``(None, (lo,
        hi))`` for a new one in ``lo..hi``, or None when no value fits (the grid is too small
        for the template's values there: only when the part's first values leave no room)."""
        k = self.lib[t].axes[axis][0][n]
        d = dist[axis]
        if k < len(d):
            return d[k], None
        part = (
            (self.n_parts if self.in_faces or not self.verts else self.n_parts - 1)
            if self.boxes
            else 0
        )
        if part < len(self.boxes):  # the plan's box for this part (module docstring)
            lo, hi = self.boxes[part][axis], self.boxes[part][axis + 3]
            i_lo, i_hi = self.extremes[t][axis]
            # the smallest and largest values are the box's: their room counts for the rest
            ends = [(i, v) for i, v in ((i_lo, lo), (i_hi, hi)) if k != i >= len(d)]
            span = self._span(t, axis, k, [*enumerate(d), *ends])
            want = (lo, lo) if k == i_lo else (hi, hi) if k == i_hi else (lo + 1, hi - 1)
            if span is not None and max(span[0], want[0]) <= min(span[1], want[1]):
                return None, (max(span[0], want[0]), min(span[1], want[1]))
        span = self._span(t, axis, k, enumerate(d))
        return None if span is None else (None, span)

    def _fits(self, t: int, axis: int, n: int, value: int, dist) -> bool:
        return _within(self._values(t, axis, n, dist), value)

    def _part_state(self):
        """(candidates, those held to the previous part's key, that key, vertex count,
        distinct values) as a vertex line now sees them (a new part after faces)."""
        if self.in_faces:
            if "start" not in self.memo:  # the memo is cleared at each commit
                # after a part under the plain rule (its faces not a template's) the order is
                # not held: its key would mean little, and holding it could only end the mesh
                key = self._key() if self.cands else None
                cands, tied = self._start(key)
                cands = self._boxed(cands, self.n_parts)
                tied &= set(cands)
                if self.room is not None:  # only templates the budget has room for
                    cands = [t for t in cands if self.lines[t] <= self.room]
                    tied &= set(cands)
                cands = self._held(cands, self.n_parts)
                tied &= set(cands)
                self.memo["start"] = (cands, tied, key)
            return (*self.memo["start"], 0, [[], [], []])
        return self.cands, self.tied, self.prev, len(self.verts), self.dist

    # -- ranges: the plain rule narrowed by the templates ------------------------------------------

    @staticmethod
    def _narrow(base, allowed: set[int]):
        lo, hi, excl = base
        keep = {x for x in allowed if lo <= x <= hi and x not in excl}
        if not keep:
            return base  # no template value is possible here: the plain rule (module docstring)
        a, b = min(keep), max(keep)
        return a, b, frozenset(x for x in range(a, b + 1) if x not in keep)

    def v_range(self, field: int, vals: tuple):
        base = super().v_range(field, vals)
        cands, tied, prev, n, dist = self._part_state()
        if not cands:
            return base  # the part left every template: the plain rule
        allowed: set[int] = set()
        # (template, rules, its values, a test for values it was not asked about: see below)
        per_t: list[tuple[int, object, range | list[int], object]] = []
        for t in cands:
            if self.lib[t].vertices <= n:
                continue
            rules = [self._values(t, a, n, dist) for a in range(3)]
            if None in rules or not all(_within(rules[a], vals[a]) for a in range(field)):
                continue  # (a later axis with no room would leave the part without a template)
            same, span = rules[field]
            opts = range(same, same + 1) if span is None else range(span[0], span[1] + 1)
            also = None
            if t in tied:  # only values after which the part can still follow the previous one
                grown = [dist[a] + [vals[a]] * (rules[a][1] is not None) for a in range(field)]
                grown += dist[field:]

                def follows(x, t=t, grown=grown, new=span is not None):
                    g = [*grown[:field], dist[field] + [x] * new, *grown[field + 1 :]]
                    return self._after(t, g, prev)

                # values another template already allows are not asked here (the costly part);
                # _forcing asks about them when it needs to know
                skipped = {x for x in opts if x in allowed}
                opts = [x for x in opts if x not in skipped and follows(x)]
                also = (skipped, follows)
            allowed.update(opts)
            per_t.append((t, rules, opts, also))
            if len(allowed) >= self.bins:
                break
        if field == 2:
            # a vertex the template forces onto an earlier part is written anyway: leaving the
            # template here would free the part from every rule but the plain one
            allowed = (allowed - self._taken(*vals)) or allowed
        if self.prior and len(allowed) > 1 and not self.in_faces:
            allowed = (allowed - self._forcing(field, vals, per_t, n, dist)) or allowed
        return self._narrow(base, allowed)

    def _forcing(self, field: int, vals: tuple, per_t, n: int, dist) -> set[int]:
        """New values on ``field`` after which every template that allows them (of those
        :meth:`v_range` visited: it stops once every bin is allowed) forces a vertex
        of the part onto an earlier part's vertex (its values all repeats: a box's fourth vertex
        is settled by its third's new z). A preference, not a rule (the caller keeps them when
        nothing else is left): shared vertices join parts, and parts that share a face's edges
        are cut into other pieces by the strict decoder ("part is not one piece"). Looks at the
        part's vertices from this one on whose values are all known once this one is chosen;
        only values some earlier part has on ``field`` can force anything."""
        axis_vals = self.prior_axis[field]
        bad: set[int] = set()
        good: set[int] = set()
        for t, rules, opts, also in per_t:
            if rules[field][1] is None:
                good.update(opts)  # a repeat: no choice here, so nothing to prefer
                continue
            if also is not None:  # a tied template: the values it was not asked about, now
                skipped, follows = also
                opts = [*opts, *(x for x in skipped & axis_vals if x not in good and follows(x))]
            seqs = [self.lib[t].axes[a][0] for a in range(3)]
            known = [list(d) for d in dist]
            for a in range(field):
                if rules[a][1] is not None:
                    known[a].append(vals[a])
            new_k = len(dist[field])
            known[field].append(-1)  # the value to choose
            uses = []  # vertices settled once the value is chosen, that use it
            for m in range(n, self.lib[t].vertices):
                ks = [seqs[a][m] for a in range(3)]
                if any(ks[a] >= len(known[a]) for a in range(3)):
                    continue
                if ks[field] == new_k:
                    uses.append(ks)
            opts = set(opts)
            check = (opts & axis_vals) - good if uses else set()
            good |= opts - check
            for v in check:
                known[field][new_k] = v
                hit = any(
                    known[2][k[2]] in self.prior.get((known[0][k[0]], known[1][k[1]]), ())
                    for k in uses
                )
                (bad if hit else good).add(v)
        return bad - good

    def f_range(self, field: int, vals: tuple):
        base = super().f_range(field, vals)
        n = len(self.verts)
        if not self.cands:
            return base
        want = tuple(n - k for k in vals)
        allowed = set()
        for t in self.cands:
            tpl = self.lib[t]
            if tpl.vertices == n and self.nf < len(tpl.faces):
                face = tpl.faces[self.nf]
                if face[:field] == want:
                    allowed.add(n - face[field])
        return self._narrow(base, allowed)

    # -- lines ------------------------------------------------------------------------------------

    def _whole(self) -> bool:
        """The current part is a whole template (all its faces written)."""
        n = len(self.verts)
        return any(
            self.lib[t].vertices == n and len(self.lib[t].faces) == self.nf for t in self.cands
        )

    def _free_line(self):
        base = super()._free_line()
        _, v_ok, f_ok, end = base
        n = len(self.verts)
        if self.in_faces:
            if self.cands:
                whole = self._whole()
                more = any(
                    self.lib[t].vertices == n and self.nf < len(self.lib[t].faces)
                    for t in self.cands
                )
                # a new part only once this one is whole and some template may follow it
                v_ok = v_ok and whole and self._can_follow(self._key())
                if v_ok and self.room is not None and self.room < max(self.lines):
                    v_ok = bool(self._part_state()[0])  # a template that fits may follow
                f_ok, end = f_ok and more, end and whole
            v_ok = v_ok and not self.stop_parts
        elif self.cands:
            v_ok = v_ok and any(self.lib[t].vertices > n for t in self.cands)
            f_ok = f_ok and any(self.lib[t].vertices == n for t in self.cands)
        elif n >= self.max_vertices and f_ok:
            # a part under the plain rule has no more vertices than the library's largest
            # part: a model that lost its template cannot run on writing vertex lines
            v_ok = False
        else:
            return base
        if not (v_ok or f_ok or end):
            self.cands = []  # no template can go on: the plain rule from here (never a dead end)
            return base
        return (LINE, v_ok, f_ok, end)

    def can_end(self, s) -> bool:
        if not super().can_end(s) or not self.cands or s[0] == LINE:
            return super().can_end(s)  # at a line start line() has weighed the templates
        # the end right after a face line's last digit: that face must finish a template
        n = len(self.verts)
        labels = tuple(n - k for k in (*s[4], int(s[3])))
        return any(
            self.lib[t].vertices == n
            and len(self.lib[t].faces) == self.nf + 1
            and self.lib[t].faces[self.nf] == labels
            for t in self.cands
        )

    def commit(self, kind: str, vals: tuple) -> None:
        if kind == "v":
            n = len(self.verts)
            if self.in_faces:  # a new part (super().commit empties verts after us)
                for p in self.verts:
                    self.prior.setdefault(tuple(p[:2]), set()).add(p[2])
                    for a in range(3):
                        self.prior_axis[a].add(p[a])
                cands, tied, self.prev, _, _ = self._part_state()  # (memoized since the faces)
                self._new_part(cands, tied)
                n = 0
            grown = [d + [v] * (v not in d) for d, v in zip(self.dist, vals, strict=True)]
            self.cands = [
                t
                for t in self.cands
                if self.lib[t].vertices > n
                and all(self._fits(t, a, n, vals[a], self.dist) for a in range(3))
                and (t not in self.tied or self._after(t, grown, self.prev))
            ]
            self.dist = grown
        else:
            n = len(self.verts)
            labels = tuple(n - k for k in vals)
            self.flabels.append(labels)
            self.cands = [
                t
                for t in self.cands
                if self.lib[t].vertices == n
                and self.nf < len(self.lib[t].faces)
                and self.lib[t].faces[self.nf] == labels
            ]
            self.nf += 1
        super().commit(kind, vals)
