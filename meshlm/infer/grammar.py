"""A character automaton that accepts exactly the canonical mesh text (numpy-free, pure Python).

The language is what :func:`meshlm.codec.decode` accepts with ``strict=True``: at least three
``v X Y Z`` lines with coordinates in ``0..bins-1``, strictly increasing in (x, y, z) order; then at
least one ``f A B C`` line with 1-based indices that exist, are distinct and start with the
smallest, faces strictly increasing by their sorted index tuple; lines separated by ``\\n``; no
leading zeros. The automaton never dead-ends: every state it reaches has a continuation that
finishes a valid mesh (bounds are computed so that, e.g., the first vertex leaves room for two
more, and a face is only started when a later one -- or the end -- can follow).

States are immutable tuples, so a search over a token trie can branch without copying.
A state is ``(phase, kind, field, digits, vals, lo, hi, excl, nv, pv, pf)``:

* ``phase`` -- ``LINE`` (expects ``v`` / ``f``), ``SPACE`` (expects the space before a number),
  ``NUM`` (inside a number; ``digits`` so far), ``NL_OR_END`` is folded into ``NUM`` of field 2;
* ``kind`` -- ``"v"`` or ``"f"``; ``field`` -- 0, 1, 2; ``vals`` -- finished numbers of this line;
* ``lo, hi, excl`` -- the allowed values of the current number: ``lo..hi`` except ``excl``;
* ``nv`` -- vertices written; ``pv`` -- last vertex; ``pf`` -- last face's sorted indices or None.
"""

from __future__ import annotations

LINE, SPACE, NUM = 0, 1, 2
DIGITS = "0123456789"


class MeshGrammar:
    """The canonical mesh language for ``bins`` levels per axis."""

    def __init__(self, bins: int = 64, min_vertices: int = 3):
        if not 2 <= bins <= 1024:
            raise ValueError(f"bins must be in 2..1024, got {bins}")
        if not 3 <= min_vertices <= bins**3:
            raise ValueError(f"min_vertices must be in 3..{bins**3}, got {min_vertices}")
        self.bins = bins
        self.top = bins - 1
        self.min_vertices = min_vertices  # each vertex leaves room for this many in all

    # -- states -----------------------------------------------------------------------------

    def start(self):
        """The state before the first character of a mesh."""
        return (LINE, None, 0, "", (), 0, 0, None, 0, None, None)

    def can_end(self, s) -> bool:
        """True when the text so far is a complete valid mesh (the end token may follow)."""
        phase, kind, field, digits, _vals, lo, hi, excl, _nv, _pv, pf = s
        if phase == LINE:
            return pf is not None
        if phase == NUM and kind == "f" and field == 2 and digits:
            n = int(digits)
            return lo <= n <= hi and n != excl
        return False

    def vertices_faces(self, s) -> tuple[int, int]:
        """(vertices written, whether any face was written) -- for progress displays."""
        return s[8], s[10] is not None

    # -- bounds -----------------------------------------------------------------------------

    def _vertex_bounds(self, nv, pv):
        """Inclusive lexicographic bounds (L, U) for the next vertex, or None if none fits."""
        t = self.top
        if pv is None:
            lower = (0, 0, 0)
        else:
            x, y, z = pv
            if z < t:
                lower = (x, y, z + 1)
            elif y < t:
                lower = (x, y + 1, 0)
            elif x < t:
                lower = (x + 1, 0, 0)
            else:
                return None
        need_after = max(0, self.min_vertices - 1 - nv)  # vertices that must fit after it
        upper = _unrank(self.bins**3 - 1 - need_after, self.bins)
        if lower > upper:
            return None
        return lower, upper

    def _face_bounds(self, nv, pf):
        """Inclusive bounds (L, U) on the next face's sorted triple, or None if none fits."""
        upper = (nv - 2, nv - 1, nv)
        if pf is None:
            lower = (1, 2, 3)
        else:
            a, b, c = pf
            if c < nv:
                lower = (a, b, c + 1)
            elif b + 1 < nv:
                lower = (a, b + 1, b + 2)
            elif a + 1 <= nv - 2:
                lower = (a + 1, a + 2, a + 3)
            else:
                return None
        if nv < 3 or lower > upper:
            return None
        return lower, upper

    def _field_range(self, kind, field, vals, nv, pv, pf):
        """(lo, hi, excl) for number ``field`` of a ``kind`` line, given the numbers before it."""
        if kind == "v":
            lower, upper = self._vertex_bounds(nv, pv)
            lo, hi = 0, self.top
            if vals[:field] == lower[:field]:
                lo = lower[field]
            if vals[:field] == upper[:field]:
                hi = upper[field]
            return lo, hi, None
        lower, upper = self._face_bounds(nv, pf)
        if field == 0:
            return lower[0], upper[0], None
        a = vals[0]
        p1, p2 = (lower[1], lower[2]) if a == lower[0] else (a + 1, a + 2)
        if field == 1:
            return p1, nv, None
        b = vals[1]
        if b == p1:
            return p2, nv, None
        return (p1 if b >= p2 else p1 + 1), nv, b

    # -- transitions --------------------------------------------------------------------------

    def step(self, s, ch: str):
        """The state after character ``ch``, or None if ``ch`` is not allowed here."""
        phase, kind, field, digits, vals, lo, hi, excl, nv, pv, pf = s
        if phase == NUM:
            if ch in DIGITS:
                d = digits + ch
                if digits == "0" or not _viable(d, lo, hi, excl):
                    return None
                return (NUM, kind, field, d, vals, lo, hi, excl, nv, pv, pf)
            if not digits:
                return None
            n = int(digits)
            if not (lo <= n <= hi) or n == excl:
                return None
            vals = vals + (n,)
            if ch == " " and field < 2:
                lo2, hi2, ex2 = self._field_range(kind, field + 1, vals, nv, pv, pf)
                return (NUM, kind, field + 1, "", vals, lo2, hi2, ex2, nv, pv, pf)
            if ch == "\n" and field == 2:
                if kind == "v":
                    return (LINE, None, 0, "", (), 0, 0, None, nv + 1, vals, pf)
                a, b, c = vals
                return (LINE, None, 0, "", (), 0, 0, None, nv, pv, (a, min(b, c), max(b, c)))
            return None
        if phase == LINE:
            if ch == "v" and pf is None and self._vertex_bounds(nv, pv) is not None:
                return (SPACE, "v", 0, "", (), 0, 0, None, nv, pv, pf)
            if ch == "f" and self._face_bounds(nv, pf) is not None:
                return (SPACE, "f", 0, "", (), 0, 0, None, nv, pv, pf)
            return None
        # SPACE
        if ch == " ":
            lo2, hi2, ex2 = self._field_range(kind, 0, (), nv, pv, pf)
            return (NUM, kind, 0, "", (), lo2, hi2, ex2, nv, pv, pf)
        return None

    def feed(self, s, text: str):
        """Run ``text`` through the automaton; None as soon as a character is refused."""
        for ch in text:
            s = self.step(s, ch)
            if s is None:
                return None
        return s


def _unrank(r: int, bins: int) -> tuple[int, int, int]:
    return (r // (bins * bins), r // bins % bins, r % bins)


def _viable(prefix: str, lo: int, hi: int, excl) -> bool:
    """Is there an allowed number (lo..hi, not excl) whose decimal form starts with ``prefix``?"""
    p = int(prefix)
    if p == 0:  # "0" is only the number 0: no leading zeros
        return lo <= 0 <= hi and excl != 0
    scale = 1
    while p * scale <= hi:
        first = max(p * scale, lo)
        last = min(p * scale + scale - 1, hi)
        if first <= last and not (first == last == excl):
            return True
        scale *= 10
    return False
