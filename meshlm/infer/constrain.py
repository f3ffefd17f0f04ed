"""Valid meshes by construction: a token mask that lets a model write only canonical mesh text.

:class:`VocabIndex` classifies a tokenizer's vocabulary once: every token is decoded to its text,
tokens made only of mesh characters (``v f 0-9``, space, newline) go into a character trie, every
other token is never allowed inside a mesh. :class:`MeshConstraint` then walks the trie alongside
the :class:`~meshlm.infer.grammar.MeshGrammar` automaton at each step: a branch dies at its first
refused character, so a step visits only the few hundred trie nodes that are still possible, not
the vocabulary. This works for any tokenizer -- word-level, BPE with whole numbers up to 999
(Llama-3), digit-by-digit (SentencePiece), tokens that span a space or a newline.

The end-of-mesh tokens (end of turn / end of text) are allowed exactly when the text so far is a
complete mesh. The automaton never dead-ends, so a mask always has an allowed token and every
finished generation passes ``meshlm.codec.decode(text, strict=True)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from math import comb

import numpy as np

from meshlm.infer.grammar import NUM, MeshGrammar

MESH_CHARS = frozenset("vf0123456789 \n")


class _Node:
    __slots__ = ("children", "ids")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.ids: list[int] = []


def token_texts(tokenizer) -> list[str]:
    """The text each token id stands for inside running text (index = token id).

    Decoding a token after a fixed prefix token and removing the prefix's text keeps leading
    spaces that SentencePiece-style decoders drop at the start of a sequence. Special tokens map
    to ``""`` (never part of a mesh).
    """
    size = len(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special |= {i for i, tok in added.items() if getattr(tok, "special", False)}
    prefix = tokenizer.encode("a", add_special_tokens=False)[:1]
    base = tokenizer.decode(prefix) if prefix else ""
    texts = []
    for i in range(size):
        if i in special:
            texts.append("")
            continue
        s = tokenizer.decode(prefix + [i], clean_up_tokenization_spaces=False)
        texts.append(s[len(base) :] if s.startswith(base) else tokenizer.decode([i]))
    return texts


def _can_occur(text: str) -> bool:
    """Whether ``text`` can be a piece of canonical mesh text at all, judged by neighbouring
    characters: a newline is followed by ``v``/``f``, a letter by a space, a space by a digit, a
    digit by a digit, a space or a newline. Tokens that fail (prose BPE pieces such as ``" v"``
    or ``"ff"``) are never allowed inside a mesh, so the index leaves them out."""
    for a, b in zip(text, text[1:], strict=False):
        if a == "\n":
            ok = b in "vf"
        elif a in "vf":
            ok = b == " "
        elif a == " ":
            ok = b.isdigit()
        else:
            ok = b.isdigit() or b in " \n"
        if not ok:
            return False
    return True


class VocabIndex:
    """A tokenizer's vocabulary classified for mesh decoding (build once, reuse for every step).

    Parameters
    ----------
    texts : list[str]
        Token id -> its text (see :func:`token_texts`).
    eos_ids : iterable of int
        Tokens that end a reply (end of turn, end of text).
    """

    def __init__(self, texts: list[str], eos_ids: Iterable[int]):
        self.vocab_size = len(texts)
        self.eos_ids = sorted({int(i) for i in eos_ids if i is not None})
        if not self.eos_ids:
            raise ValueError("the tokenizer has no end-of-sequence token")
        self.texts = texts
        self.root = _Node()
        self.mesh_tokens = 0
        ids_of: dict[str, int] = {}  # text -> id of the tokens that can occur in a mesh
        for i, t in enumerate(texts):
            if t and set(t) <= MESH_CHARS and _can_occur(t):
                node = self.root
                for ch in t:
                    node = node.children.setdefault(ch, _Node())
                node.ids.append(i)
                self.mesh_tokens += 1
                ids_of[t] = i
        for ch in "vf \n0123456789":
            if ch not in self.root.children or not self.root.children[ch].ids:
                raise ValueError(f"the tokenizer cannot write {ch!r} as a token of its own")
        # no mesh token spans a separator, except a space that leads a number (" 12", meshlm's
        # own tokenizer): the mask then depends on local state only, and is cacheable
        self.simple = all(
            len(t) == 1 or t.isdigit() or (t[0] == " " and t[1:].isdigit()) for t in ids_of
        )
        self.spaced = any(len(t) > 1 and t[0] == " " and t[1:].isdigit() for t in ids_of)
        # space-led number token id -> from the id of the same number without its space
        self.spaced_twin = np.full(len(texts), -1, dtype=np.int64)
        for t, i in ids_of.items():
            if len(t) > 1 and t[0] == " " and t[1:].isdigit():
                if t[1:] not in ids_of:  # no bare twin: masks cannot be composed, walk instead
                    self.simple = False
                    break
                self.spaced_twin[ids_of[t[1:]]] = i
        # bare whole-number tokens by value ("12" -> its id); leading zeros are never allowed
        values = {int(t): i for t, i in ids_of.items() if t.isdigit() and (t == "0" or t[0] != "0")}
        self.number_id = np.full(max(values, default=0) + 1, -1, dtype=np.int64)
        for v, i in values.items():
            self.number_id[v] = i
        self.cache: dict = {}
        ordinary = np.array([bool(t) for t in texts], dtype=bool)  # not special, not empty
        ordinary[self.eos_ids] = False
        self.prose_ids = np.flatnonzero(ordinary).astype(np.int64)
        self.newline_ids = np.array(
            sorted(
                i
                for i, t in enumerate(texts)
                if t and t.strip(" ") == "\n" * len(t.strip(" ")) and "\n" in t
            ),
            dtype=np.int64,
        )
        self.newline_set = frozenset(self.newline_ids.tolist())

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def for_tokenizer(cls, tokenizer, eos_ids: Iterable[int] | None = None) -> VocabIndex:
        """Build (or reuse, per tokenizer object) the index of a Hugging Face tokenizer."""
        if eos_ids is None:
            eos_ids = [tokenizer.eos_token_id]
        key = tuple(sorted(int(i) for i in eos_ids if i is not None))
        try:
            per_tok = cls._cache.setdefault(tokenizer, {})
        except TypeError:  # not weak-referenceable
            per_tok = {}
        if key not in per_tok:
            per_tok[key] = cls(token_texts(tokenizer), key)
        return per_tok[key]


class MeshConstraint:
    """The state of one constrained generation: which tokens may come next.

    A reply may open with a short free-text lead-in ("Here is a chair:"), as LLaMA-Mesh-style
    models write, of at most ``max_preamble`` tokens; the mesh must start at the beginning of a
    line (right away when ``max_preamble=0``), after which only canonical mesh text is allowed,
    then an end token. Special tokens other than the end tokens are never allowed. With
    ``min_faces`` the mesh gets at least that many faces: the end token is refused before, the
    grammar keeps room for C(n, 3) >= min_faces vertices, and a face line whose best completion
    leaves too few canonical faces after it is refused (so no reply runs out of face orders).

    ``allowed()`` returns the allowed token ids; ``advance(token_id)`` moves past a token the
    model chose (raises ValueError for a token that was not allowed). ``done`` turns True after
    an end token. ``preamble`` and ``text`` hold the lead-in and the mesh text so far.
    """

    def __init__(
        self,
        index: VocabIndex,
        bins: int = 64,
        max_preamble: int = 64,
        prefix: str = "",
        min_faces: int = 0,
    ):
        self.index = index
        self.min_faces = min_faces
        # room for enough vertices to hold min_faces distinct sorted triples: C(n, 3) >= min_faces
        n = 3
        while comb(n, 3) < min_faces:
            n += 1
        self.grammar = MeshGrammar(bins, min_vertices=min(n, bins**3))
        self.max_preamble = max_preamble
        self.state = None  # grammar state once the mesh has started
        self.done = False
        self.preamble = ""
        self.preamble_tokens = 0
        self.text = ""
        if prefix:
            self.feed_text(prefix)

    # -- the mask ---------------------------------------------------------------------------

    def _mesh_tokens(self, state, skip_spaced: bool = False) -> list[int]:
        """Ids of the mesh tokens the grammar accepts from ``state`` (a walk of the vocabulary
        trie); ``skip_spaced`` leaves out the tokens that start with a space and continue."""
        out: list[int] = []
        step = self.grammar.step
        stack = [(self.index.root, state)]
        while stack:
            node, st = stack.pop()
            for ch, child in node.children.items():
                if skip_spaced and ch == " " and node is self.index.root:
                    if child.ids and step(st, ch) is not None:
                        out.extend(child.ids)
                    continue
                nxt = step(st, ch)
                if nxt is None:
                    continue
                if child.ids:
                    out.extend(child.ids)
                if child.children:
                    stack.append((child, nxt))
        return out

    def _local_key(self, state):
        """What the allowed set depends on when no token spans a separator (``index.simple``):
        the current number's bounds and digits, or which line kinds may start."""
        g = self.grammar
        phase, kind, field, digits, _vals, lo, hi, excl, nv, pv, pf = state
        if phase == 0:  # LINE: may a vertex / a face start, may the mesh end
            v_ok = pf is None and g._vertex_bounds(nv, pv) is not None
            f_ok = g._face_bounds(nv, pf) is not None
            return (g.bins, 0, v_ok, f_ok, pf is not None)
        return (g.bins, phase, kind, field, digits, lo, hi, excl)

    def _own(self, state, key) -> np.ndarray:
        """Allowed ids at ``state`` other than space-led numbers, end tokens included (cached by
        the local key, which they depend on alone when ``index.simple``)."""
        hit = self.index.cache.get(key)
        if hit is None:
            if state[0] == NUM and not state[3]:  # a number starts: no walk needed
                hit = self._number_starts(state[5], state[6], state[7])
            else:
                out = self._mesh_tokens(state, skip_spaced=self.index.spaced)
                if self.grammar.can_end(state):
                    out.extend(self.index.eos_ids)
                hit = np.unique(np.asarray(out, dtype=np.int64))
            if len(self.index.cache) < 400_000:
                self.index.cache[key] = hit
        return hit

    def _number_starts(self, lo: int, hi: int, excl) -> np.ndarray:
        """Bare number tokens that may start a number in ``lo..hi`` other than ``excl`` (the
        grammar's ``_viable`` for every token at once): the prefixes of the allowed numbers with
        ``j`` digits still to come are the values ``lo // 10**j .. hi // 10**j``, one slice of
        the value table per ``j``; ``excl`` removes its own value at ``j = 0``, and for ``j > 0``
        at most a slice's end (where the block of 10**j numbers is clipped to ``excl`` alone)."""
        table = self.index.number_id
        parts = []
        scale = 1
        while True:
            p0, p1 = lo // scale, min(hi // scale, len(table) - 1)
            if scale > 1:
                p0 = max(p0, 1)  # a longer number never starts with 0
            if p0 <= p1:
                keep = np.ones(p1 - p0 + 1, dtype=bool)
                if excl is not None:  # j = 0: each value stands alone; j > 0: only the ends
                    ends = {p0, p1} if scale > 1 else ({excl} if p0 <= excl <= p1 else set())
                    for p in ends:
                        first, last = max(p * scale, lo), min(p * scale + scale - 1, hi)
                        if first == last == excl:
                            keep[p - p0] = False
                parts.append(table[p0 : p1 + 1][keep])
            if scale * 10 > hi:
                break
            scale *= 10
        ids = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        return np.unique(ids[ids >= 0])

    def _allowed_simple(self, state) -> np.ndarray:
        """The allowed set from caches: the local tokens, plus the space-led numbers, which are
        the space-less twins of the numbers that may start after a space -- so a new bound pair
        costs one walk of the number trie, not of the whole vocabulary."""
        key = self._local_key(state)
        own = self._own(state, key)
        if not self.index.spaced:
            return own
        nxt = self.grammar.step(state, " ")
        if nxt is None:
            return own
        key2 = self._local_key(nxt)
        both = self.index.cache.get((key, key2))
        if both is None:
            twins = self.index.spaced_twin[self._own(nxt, key2)]
            both = np.concatenate((own, twins[twins >= 0]))  # disjoint: no space-led ids in own
            if len(self.index.cache) < 400_000:
                self.index.cache[(key, key2)] = both
        return both

    @property
    def _line_start(self) -> bool:
        return not self.preamble or self.preamble.endswith("\n")

    def allowed(self) -> np.ndarray:
        """int64 array of the token ids allowed next (no repeats; not necessarily sorted)."""
        if self.done:
            return np.asarray(self.index.eos_ids, dtype=np.int64)
        if self.state is not None:
            if self.index.simple:
                out = self._allowed_simple(self.state)
            else:
                ids = self._mesh_tokens(self.state)
                if self.grammar.can_end(self.state):
                    ids.extend(self.index.eos_ids)
                out = np.unique(np.asarray(ids, dtype=np.int64))
            if self.min_faces:
                written = self.text.count("\nf") + self.text.startswith("f")  # + open line
                if written < self.min_faces:
                    out = self._toward_min_faces(out, written)
            return out
        idx = self.index
        starts = self._mesh_tokens(self.grammar.start()) if self._line_start else []
        if self.preamble_tokens < self.max_preamble:
            return idx.prose_ids  # any ordinary token, mesh starts included
        if self._line_start:
            return np.unique(np.asarray(starts, dtype=np.int64))
        return idx.newline_ids  # lead-in too long: close the line, then the mesh must start

    def _toward_min_faces(self, out: np.ndarray, written: int) -> np.ndarray:
        """``out`` without the tokens after which fewer than ``min_faces`` faces are possible
        (``written`` face lines so far, an open one included): the end of the mesh, and any token
        of a face line whose best completion leaves too few sorted triples after it for the
        faces still needed (a first face before C(nv, 3) >= min_faces, say, or a face on the
        last vertices). The vertices always leave room (``MeshGrammar.min_vertices``). Where
        nothing would be left, ``out`` stands (the constraint never dead-ends)."""
        state = self.state
        eos = np.isin(out, self.index.eos_ids)
        if not (~eos).any():
            return out
        out = out[~eos]
        if state[1] == "v":
            return out  # inside a vertex line: nothing to weigh
        need = self.min_faces - (written - (state[1] == "f")) - 1  # after the current face
        texts, feed = self.index.texts, self.grammar.feed
        keep = np.ones(len(out), dtype=bool)
        for i, tok in enumerate(out.tolist()):
            s2 = feed(state, texts[tok])
            if s2 is not None and (s2[1] == "f" or s2[10] != state[10]):
                keep[i] = self._best_after(s2) >= need
        return out[keep] if keep.any() else out

    def _best_after(self, s) -> int:
        """The most sorted triples that can follow the face line open (or just closed) in grammar
        state ``s``: its smallest completion, C(nv-a, 3) + C(nv-p, 2) + nv-q for (a, p, q)."""
        g = self.grammar
        phase, kind, field, digits, vals, lo, hi, excl, nv, pv, pf = s
        if kind != "f":  # the line just closed
            return _faces_after(nv, pf)
        if phase != NUM:  # "f" written, its first number not begun
            lo, hi, excl = g._field_range("f", 0, (), nv, pv, pf)
        values = [
            v
            for v in range(lo, min(hi, nv) + 1)
            if v != excl and (not digits or str(v).startswith(digits))
        ]
        low = g._face_bounds(nv, pf)[0] if field == 0 else None
        best = -1
        for v in values:
            if field == 0:
                t = low if low[0] == v else (v, v + 1, v + 2)
            elif field == 1:
                lo2, hi2, ex2 = g._field_range("f", 2, (vals[0], v), nv, pv, pf)
                w = lo2 + (lo2 == ex2)
                if w > hi2:
                    continue
                t = (vals[0], min(v, w), max(v, w))
            else:
                t = (vals[0], min(vals[1], v), max(vals[1], v))
            best = max(best, _faces_after(nv, t))
        return best

    def mask(self) -> np.ndarray:
        """Boolean mask over the vocabulary (True = allowed)."""
        m = np.zeros(self.index.vocab_size, dtype=bool)
        m[self.allowed()] = True
        return m

    # -- moving on ------------------------------------------------------------------------------

    def advance(self, token_id: int) -> None:
        token_id = int(token_id)
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
        if self.state is None:
            started = self.grammar.feed(self.grammar.start(), text) if self._line_start else None
            if started is not None:
                self.state, self.text = started, text
                return
            if self.preamble_tokens >= self.max_preamble and not (
                not self._line_start and token_id in self.index.newline_set
            ):
                raise ValueError(f"token {token_id} ({text!r}) is not allowed after the lead-in")
            self.preamble += text
            self.preamble_tokens += 1
            return
        nxt = self.grammar.feed(self.state, text)
        if nxt is None:
            raise ValueError(f"token {token_id} ({text!r}) is not allowed here")
        self.state = nxt
        self.text += text

    def feed_text(self, text: str) -> None:
        """Advance over text already written (a cut-off reply being continued)."""
        if self.state is None:
            lines = text.split("\n")
            k = next((i for i, ln in enumerate(lines) if ln.startswith("v ")), None)
            if k is None:
                self.preamble += text
                return
            self.preamble += "\n".join(lines[:k]) + ("\n" if k else "")
            text = "\n".join(lines[k:])
            self.state = self.grammar.start()
        nxt = self.grammar.feed(self.state, text)
        if nxt is None:
            raise ValueError("the text to continue is not a valid start of a canonical mesh")
        self.state = nxt
        self.text += text

    @property
    def complete(self) -> bool:
        """True when the text so far is a whole valid mesh."""
        return self.state is not None and self.grammar.can_end(self.state)


def _faces_after(nv: int, t: tuple[int, int, int]) -> int:
    """How many sorted index triples of ``nv`` vertices come after ``t`` in canonical order."""
    a, p, q = t
    return comb(nv - a, 3) + comb(nv - p, 2) + (nv - q)
