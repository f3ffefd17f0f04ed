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
  repeated values): the text's parts are then the pieces the strict decoder splits the mesh
  into (a part whose edges other parts share is cut into several, "part is not one piece").
  4.3 % of data/smol-parts16's training parts touch an earlier one at a corner; under the
  constraint such a corner comes out one bin apart.

So a part is one of the library's shapes with the model's own numbers: a box stays a box
whatever its proportions, and the model cannot write a wedge or copy a value where the box needs
a new one. Not held: which templates follow which (parts order), and where parts go.

Never a dead end: where the template rule leaves nothing (a vertex value no template allows
within the grid, a face an earlier part already wrote), the field falls back to the plain parts
rule and the part continues under it (no template any more); the plain rule never dead-ends.
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
        self.lib = library.templates
        self.ranks = [tuple(t.rank(a) for a in range(3)) for t in self.lib]
        self.prior: dict[tuple[int, int], set[int]] = {}  # (x, y) -> z, earlier parts' vertices
        self._new_part()

    def _taken(self, x: int, y: int) -> set[int]:
        """z of the vertices of earlier parts at ``(x, y)`` (a vertex line of a new part after
        faces: the current part is an earlier one)."""
        out = set(self.prior.get((x, y), ()))
        if self.in_faces:
            out |= self.col.get((x, y), set())
        return out

    def _new_part(self) -> None:
        self.cands = list(range(len(self.lib)))
        self.dist: list[list[int]] = [[], [], []]  # distinct values per axis, first appearance
        self.nf = 0  # faces written in this part

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
        # ranked as the template says, leaving one bin for each value still to come between
        # it and its neighbours (so the template can always be finished)
        r = self.ranks[t][axis]
        below = [(r[j], d[j]) for j in range(len(d)) if r[j] < r[k]]
        above = [(r[j], d[j]) for j in range(len(d)) if r[j] > r[k]]
        rb, vb = max(below) if below else (-1, -1)
        ra, va = min(above) if above else (len(r), self.bins)
        lo, hi = vb + (r[k] - rb), va - (ra - r[k])
        return (None, (lo, hi)) if lo <= hi else None

    def _fits(self, t: int, axis: int, n: int, value: int, dist) -> bool:
        return _within(self._values(t, axis, n, dist), value)

    def _part_state(self):
        """(candidates, vertex count, distinct values) as a vertex line now sees them (a new
        part after faces)."""
        if self.in_faces:
            return range(len(self.lib)), 0, [[], [], []]
        return self.cands, len(self.verts), self.dist

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
        cands, n, dist = self._part_state()
        if not cands:
            return base  # the part left every template: the plain rule
        allowed: set[int] = set()
        for t in cands:
            if self.lib[t].vertices <= n:
                continue
            rules = [self._values(t, a, n, dist) for a in range(3)]
            if None in rules or not all(_within(rules[a], vals[a]) for a in range(field)):
                continue  # (a later axis with no room would leave the part without a template)
            same, span = rules[field]
            if span is None:
                allowed.add(same)
            else:
                allowed.update(range(span[0], span[1] + 1))
            if len(allowed) >= self.bins:
                break
        if field == 2:
            allowed -= self._taken(*vals)
        return self._narrow(base, allowed)

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

    def line(self):
        base = super().line()
        if not self.cands:
            return base
        _, v_ok, f_ok, end = base
        n = len(self.verts)
        if self.in_faces:
            whole = self._whole()
            more = any(
                self.lib[t].vertices == n and self.nf < len(self.lib[t].faces) for t in self.cands
            )
            v_ok, f_ok, end = v_ok and whole, f_ok and more, end and whole
        else:
            v_ok = v_ok and any(self.lib[t].vertices > n for t in self.cands)
            f_ok = f_ok and any(self.lib[t].vertices == n for t in self.cands)
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
                for x, y, z in self.verts:
                    self.prior.setdefault((x, y), set()).add(z)
                self._new_part()
                n = 0
            self.cands = [
                t
                for t in self.cands
                if self.lib[t].vertices > n
                and all(self._fits(t, a, n, vals[a], self.dist) for a in range(3))
            ]
            for a in range(3):
                if vals[a] not in self.dist[a]:
                    self.dist[a].append(vals[a])
        else:
            n = len(self.verts)
            labels = tuple(n - k for k in vals)
            self.cands = [
                t
                for t in self.cands
                if self.lib[t].vertices == n
                and self.nf < len(self.lib[t].faces)
                and self.lib[t].faces[self.nf] == labels
            ]
            self.nf += 1
        super().commit(kind, vals)
