"""``loss_averaging: mesh`` -- a loss that weighs mesh text per token and prose per conversation.

Why: with one averaging rule for every token, a row's weight goes either to its mesh or to its
prose. Averaged per token, a 15-token caption answer beside 600 mesh tokens gets ~1 % of the
gradient (the model never learns to read); averaged per conversation, each of a mesh reply's 600
tokens gets 1/600 of a row's weight (it never learns to write). And the mesh in an understanding
row's *user* turn costs a full forward and backward pass but teaches nothing.

The rule here, per conversation (micro-batch row)::

    loss = mean CE over its supervised prose tokens            (answers, preambles, end of turn)
         + sum CE over all its mesh tokens / mesh_loss_tokens   (v/f lines of *any* turn)
         + mean CE over its first mesh_head_tokens supervised mesh tokens     (if > 0)
         + mesh_new_weight * sum CE over its supervised new-value tokens / mesh_loss_tokens
         + mesh_end_weight * mean CE over its supervised part-end tokens      (if > 0)
         + mesh_face_end_weight * mean CE over its supervised face-end tokens (if > 0)
         + mesh_repeat_weight * mean -log(1 - p(repeat)) over its unlikelihood targets (if > 0)

A mesh token is a token whose last character lies inside a line of the form ``v X Y Z`` or
``f A B C ...`` (found on the decoded text, so it works with any tokenizer that spells its pieces
back; one that does not is refused). The optional head term is for the tokens where a reply
commits to a shape: the opening vertex lines of a canonical mesh are what the prompt decides, the
rest follows from them, so under a per-token weight those few decisions get ~1 % of a reply's
gradient and a small model learns to write *a* mesh but ignores which one was asked for (v6
on its own training prompts, before the term). The optional new-value term is for the
coordinates that carry the shape: in the parts text most coordinates repeat a value already
written on their axis in the part (18 of a box's 24), so a model that learns to copy gets most
of the mesh loss down and then copies where the part's template needs a new value (SmolLM2
after 400 steps: 34 % of new coordinates predicted as a copy, every greedy reply a box with a
vertex written twice; docs/parts-model.md). A *new-value token* is a token of a coordinate
whose value has not occurred on its axis earlier in its part
(:func:`meshlm.eval.mesh_kinds.mesh_token_kinds`); the term gives each such supervised token
(the assistant's, with ``assistant_only_loss``) ``1 + mesh_new_weight`` times a mesh token's
weight. The term is in the validation loss too: compare runs with and without it by
teacher-forced accuracy (:mod:`meshlm.eval.teacher_forced`), not by ``eval_loss``.
The numbers of a plan's part lines (``build-data --plan-boxes``: ``Part 1: 4 0 4 to 8 30
8.``, :func:`meshlm.plan.box_number_spans`) are new-value tokens too: they are where a reply
says its layout, the values its parts' coordinates then repeat.

The end of turn that closes a mesh is a decision between stopping and one more part (or face):
by default it is a prose token, so in a reply with ~20 prose tokens it weighs ~25 times the
newline that goes on (a mesh token, 1/512), and a model trained on replies of one and of several
parts learns to stop after the first part (SmolLM2 parts model: p(end) 0.5-0.99 after the first
part of validation replies that go on; docs/parts-model.md). With ``mesh_turn_end`` the special
token right after a mesh line is a mesh token, so both outcomes weigh the same. But then each
decision weighs 1/512 of a row, and replies with several parts hold many more "go on" decisions
than "stop" ones: smol-parts16w, teacher-forced on its test rows, goes on right at 163 of 167
part ends and stops right at only 22 of 40, and greedy without a constraint writes more parts
than its own plan says in 35 of 64 held-out replies (a one-part box as 6 to 18 boxes;
docs/parts-model.md). The optional part-end term (``mesh_end_weight``) gives a row's
*part-end tokens* -- the token right after a part's last face line, the newline before another
part or the end of turn that ends the mesh (:func:`meshlm.eval.mesh_kinds.mesh_token_kinds`,
``part end: more`` / ``part end: stop``) -- their mean loss times the weight, so the decision
that counts the parts weighs like the prose (at weight 1) whatever the number of parts.

That term alone teaches stopping where nothing teaches going on: a one-part reply's only part end
is its stop, while the newline after each of its other face lines (``face end: more``) stays a
mesh token at 1/512. smol-parts16t (w + the part-end term) ended 6 of 13 held-out one-part
boxes after 8 of their 12 faces and cut cylinders and cones short (docs/parts-model.md). The
optional face-end term (``mesh_face_end_weight``) gives a row's *face-end tokens* -- the token
right after a face line that another face line of its part follows -- their mean loss times the
weight: the same decision, taken the other way, weighed alike.

With every term above, the commonest strict failure of greedy replies stayed a vertex line
written twice within a part (smol-parts16n: 16 of 32 failures without a constraint; 200 more
steps, smol-parts16m: 22 of 31): where a line's first two values equal those of an earlier line
of its part, the model writes that line's last value again. Cross-entropy only raises the right
value; the optional unlikelihood term (``mesh_repeat_weight``; Welleck et al. 2019, "Neural
Text Generation with Unlikelihood Training", arXiv 1908.04319) lowers the wrong one by name: at
each *unlikelihood target* -- a supervised vertex line's last coordinate, one token, whose line
starts like an earlier line of its part (:func:`meshlm.eval.mesh_kinds.repeat_completions`) --
it adds ``-log(1 - p)``, p the probability of the values that would repeat a line, a row's mean
over its targets times the weight. The data never repeats a line, so the term and the
cross-entropy pull the same way.

A model shown an exemplar (:mod:`meshlm.exemplars`) writes its plan line on the *bare*
request first -- the exemplar is chosen by that plan -- so bare requests reworded in everyday
words (:mod:`meshlm.data.reword`) teach the plan; but their meshes, written with no exemplar
shown, teach a writing the model never does at inference, and smol-parts16o, trained on them,
wrote worse meshes (strict 28/64 against 32; docs/parts-model.md). With
``mesh_bare_plan_only``, a conversation whose text shows no exemplar has its assistant tokens
from the first mesh token on left unsupervised (:meth:`MeshTokenMask.bare_mesh_start`): the
lead-in and plan line are trained, the mesh and the end of turn are not. Understanding rows
(no mesh in the reply) and rows that show an exemplar are unchanged.

Mesh lines in user turns are trained as plain language modelling (the mesh syntax, vertex order
and face indexing the model must learn to write); the user's prose stays unsupervised.
Rows are then averaged, as with ``sample``.
"""

from __future__ import annotations

import re
from typing import Any

from meshlm.errors import MeshlmError
from meshlm.eval.mesh_kinds import mesh_token_kinds, repeat_completions
from meshlm.exemplars import shows_exemplar
from meshlm.plan import box_number_spans


class MeshMaskError(MeshlmError, ValueError):
    """The tokenizer's pieces do not spell mesh lines back, so mesh tokens cannot be found."""


# a whole v/f line: it ends at a newline, the end of the text or a special token (``<|eot_id|>``)
MESH_LINE = re.compile(r"^[vf](?: -?\d+){3,}[ \t]*(?:\r?\n|\Z|(?=<))", re.MULTILINE)
PROBE = "x\nv 1 2 3\nf 1 2 3\n"


class MeshTokenMask:
    """Marks the tokens of a sequence that lie inside mesh lines (``v``/``f`` lines).

    Each token's text is taken as it reads after another token (``decode([a, i])`` minus
    ``decode([a])``): SentencePiece tokenizers drop a token's leading space when it is decoded
    alone, which would glue ``v 1 2 3`` into ``v123``. A tokenizer whose pieces still do not
    spell a mesh line back is refused (:class:`MeshMaskError`) rather than trained as if its
    meshes were prose.
    """

    def __init__(self, tokenizer) -> None:
        self.special = frozenset(tokenizer.all_special_ids)
        anchor = tokenizer("x", add_special_tokens=False)["input_ids"][-1]
        head = tokenizer.decode([anchor])
        self.pieces = []
        for i in range(len(tokenizer)):
            both = tokenizer.decode([anchor, i])
            self.pieces.append(
                both[len(head) :] if both.startswith(head) else tokenizer.decode([i])
            )
        # the ids that spell each space-led whole number (`` 7``): repeat_targets' wrong values
        self.spelled: dict[str, tuple[int, ...]] = {}
        for i, p in enumerate(self.pieces):
            if p.startswith(" ") and p[1:].lstrip("-").isdigit():
                self.spelled[p] = (*self.spelled.get(p, ()), i)
        ids = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
        got = "".join(p for p, m in zip(self._pieces(ids), self(ids), strict=True) if m)
        if not got.rstrip("\n").endswith(PROBE[2:].rstrip("\n")):
            raise MeshMaskError(
                f"loss_averaging 'mesh': cannot find the mesh lines of {PROBE!r} in this "
                f"tokenizer's pieces (found {got!r}); use loss_averaging 'sample' or 'token'"
            )

    def _pieces(self, ids: list[int]) -> list[str]:
        return [self.pieces[i] if 0 <= i < len(self.pieces) else "" for i in ids]

    def __call__(self, ids: list[int]) -> list[bool]:
        pieces = self._pieces(ids)
        ends, pos = [], 0
        for p in pieces:
            pos += len(p)
            ends.append(pos)
        text = "".join(pieces)
        mask = [False] * len(ids)
        spans = [(m.start(), m.end()) for m in MESH_LINE.finditer(text)]
        k = 0
        for t, end in enumerate(ends):  # a token is a mesh token if its last character is
            while k < len(spans) and spans[k][1] < end:  # inside a mesh line
                k += 1
            if k < len(spans) and spans[k][0] < end <= spans[k][1] and pieces[t]:
                mask[t] = True
        return mask

    def with_turn_ends(self, ids: list[int], mesh: list[bool] | None = None) -> list[bool]:
        """The mesh mask ``mesh`` (this mask's :meth:`__call__` of ``ids`` if not given) with
        each special token right after a mesh token (the end of turn that closes a reply's
        mesh, ``f -3 -1 -2<|im_end|>``) marked too (``mesh_turn_end``, module docstring)."""
        mesh = self(ids) if mesh is None else mesh
        return [
            m or (t > 0 and mesh[t - 1] and i in self.special)
            for t, (i, m) in enumerate(zip(ids, mesh, strict=True))
        ]

    def bare_mesh_start(self, ids: list[int], mesh: list[bool], labels: list[int]) -> int | None:
        """Where ``mesh_bare_plan_only`` stops supervising (module docstring): the position of
        the first supervised mesh token (``labels`` != -100 and ``mesh`` true) when the
        conversation's text shows no exemplar; None when it shows one or its reply has no
        mesh. ``ids``, ``mesh``, ``labels``: one row, the same length."""
        if shows_exemplar("".join(self._pieces(ids))):
            return None
        return next(
            (t for t, (m, y) in enumerate(zip(mesh, labels, strict=True)) if m and y != -100),
            None,
        )

    def part_ends(self, ids: list[int]) -> list[bool]:
        """One bool per id: is it a part-end token (module docstring), the token that starts
        where :func:`mesh_token_kinds` puts a ``part end: more`` or ``part end: stop`` (the
        newline after a part's last face line, or the special token that ends the turn)?
        Parts are read over the whole sequence, user turns too; the loss keeps the supervised
        ones."""
        return self.line_ends(ids)[0]

    def face_ends(self, ids: list[int]) -> list[bool]:
        """One bool per id: is it a face-end token (module docstring), the token that starts
        where :func:`mesh_token_kinds` puts a ``face end: more`` (the newline after a face line
        that another face line of the same part follows)? Read like :meth:`part_ends`."""
        return self.line_ends(ids)[1]

    def line_ends(self, ids: list[int]) -> tuple[list[bool], list[bool]]:
        """``(part_ends(ids), face_ends(ids))`` from one reading of the sequence (the loss
        wants both per row, per step)."""
        pieces = self._pieces(ids)
        kinds = mesh_token_kinds("".join(pieces))
        parts = {o for o, kind in kinds.items() if kind.startswith("part end")}
        faces = {o for o, kind in kinds.items() if kind == "face end: more"}
        part_out, face_out, pos = [], [], 0
        for p in pieces:
            part_out.append(bool(p) and pos in parts)
            face_out.append(bool(p) and pos in faces)
            pos += len(p)
        return part_out, face_out

    def repeat_targets(self, ids: list[int]) -> list[tuple[int, tuple[int, ...]]]:
        """The unlikelihood targets of a sequence (module docstring): ``(t, bad)`` for each
        token ``t`` that is a vertex line's last coordinate, written as one token, where
        :func:`~meshlm.eval.mesh_kinds.repeat_completions` finds values that would repeat an
        earlier vertex line of the part; ``bad`` holds the ids of every token that spells one
        of those values as a whole (`` 7``, with the space). A value split over several tokens
        has no single wrong token and is left out. Parts are read over the whole sequence."""
        pieces = self._pieces(ids)
        text = "".join(pieces)
        found = repeat_completions(text)
        out, pos = [], 0
        for t, p in enumerate(pieces):
            bad = found.get(pos)
            whole = pos + len(p) >= len(text) or not text[pos + len(p)].isdigit()
            if bad and whole and p.startswith(" ") and p[1:].lstrip("-").isdigit():
                wrong = tuple(i for v in sorted(bad) for i in self.spelled.get(" " + v, ()))
                if wrong:
                    out.append((t, wrong))
            pos += len(p)
        return out

    def new_values(self, ids: list[int], mesh: list[bool] | None = None) -> list[bool]:
        """One bool per id: is it a new-value token (module docstring)? Those are the tokens
        that overlap the characters of a coordinate :func:`mesh_token_kinds` calls ``coord new``
        (every piece of a number split into several tokens), among the mesh tokens ``mesh``
        (this mask's :meth:`__call__` of ``ids`` if not given), and the tokens of the numbers of
        a plan's part lines (prose, not mesh tokens; module docstring). Parts are read over the
        whole sequence; a line that is not a ``v``/``f`` line (prose, a turn's end) ends one."""
        pieces = self._pieces(ids)
        text = "".join(pieces)
        spans = []
        for o, kind in mesh_token_kinds(text).items():
            if kind == "coord new":
                end = o + 1
                while end < len(text) and (text[end].isdigit() or text[end] == "-"):
                    end += 1
                spans.append((o + 1, end, True))
        spans += [(a, b, False) for a, b in box_number_spans(text)]
        spans.sort()
        mesh = self(ids) if mesh is None else mesh
        out = [False] * len(ids)
        pos, k = 0, 0
        for t, p in enumerate(pieces):
            end = pos + len(p)
            while k < len(spans) and spans[k][1] <= pos:
                k += 1
            if k < len(spans) and spans[k][0] < end and (mesh[t] or not spans[k][2]):
                out[t] = True
            pos = end
        return out


def mesh_weighted_loss(
    logits,
    input_ids,
    labels,
    mesh_mask,
    attention_mask,
    mesh_tokens: int,
    head_tokens: int = 0,
    new_mask=None,
    new_weight: float = 0.0,
    end_mask=None,
    end_weight: float = 0.0,
    face_mask=None,
    face_weight: float = 0.0,
    repeat_ids=None,
    repeat_weight: float = 0.0,
):
    """The loss of the module docstring for one micro-batch.

    logits : (b, t, vocab) float; input_ids, labels : (b, t) int64 (labels -100 where not
    supervised); mesh_mask, new_mask : (b, t) bool (:class:`MeshTokenMask` and its
    :meth:`~MeshTokenMask.new_values`; ``new_mask`` may be None when ``new_weight`` is 0);
    attention_mask : (b, t) or None. ``mesh_tokens``: the mesh term's divisor
    (``mesh_loss_tokens``); ``head_tokens``: ``mesh_head_tokens``; ``new_weight``: the extra
    weight of a supervised new-value token, in mesh tokens (``mesh_new_weight``, >= 0);
    ``end_mask`` : (b, t) bool (:meth:`~MeshTokenMask.part_ends`) and ``end_weight``
    (``mesh_end_weight``, >= 0): the part-end term, a row's mean CE over its supervised part-end
    tokens times the weight; ``face_mask`` (:meth:`~MeshTokenMask.face_ends`) and
    ``face_weight`` (``mesh_face_end_weight``, >= 0) likewise for the face-end tokens;
    ``repeat_ids`` : (b, t, k) int64, at each unlikelihood target (:meth:`~MeshTokenMask.
    repeat_targets`) the ids of the tokens that would repeat a vertex line, -1 elsewhere and as
    padding, and ``repeat_weight`` (``mesh_repeat_weight``, >= 0): a row's mean of
    ``-log(1 - p(repeat))`` over its supervised targets times the weight. Returns
    0-d tensors (loss, tokens predicted right, tokens scored). Raises ValueError for a weight
    given without its mask."""
    import torch
    import torch.nn.functional as F

    target = input_ids[:, 1:]
    ce = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target, reduction="none")
    valid = (
        attention_mask[:, 1:].bool()
        if attention_mask is not None
        else torch.ones_like(target, dtype=torch.bool)
    )
    mesh = mesh_mask[:, 1:] & valid
    prose = (labels[:, 1:] != -100) & ~mesh & valid
    prose_n = prose.sum(1)
    prose_term = (ce * prose).sum(1) / prose_n.clamp(min=1)
    mesh_term = (ce * mesh).sum(1) / float(mesh_tokens)
    loss = prose_term + mesh_term
    if head_tokens > 0:
        written = mesh & (labels[:, 1:] != -100)
        head = written & (written.cumsum(1) <= head_tokens)
        loss = loss + (ce * head).sum(1) / head.sum(1).clamp(min=1)
    if new_weight:
        if new_mask is None:
            raise ValueError("mesh_weighted_loss: new_weight given without new_mask")
        new = new_mask[:, 1:] & valid & (labels[:, 1:] != -100)
        loss = loss + new_weight * (ce * new).sum(1) / float(mesh_tokens)
    for name, weight, marks in (("end", end_weight, end_mask), ("face", face_weight, face_mask)):
        if not weight:
            continue
        if marks is None:
            raise ValueError(f"mesh_weighted_loss: {name}_weight given without {name}_mask")
        sel = marks[:, 1:] & valid & (labels[:, 1:] != -100)  # a row's mean over its own
        loss = loss + weight * (ce * sel).sum(1) / sel.sum(1).clamp(min=1)
    if repeat_weight:
        if repeat_ids is None:
            raise ValueError("mesh_weighted_loss: repeat_weight given without repeat_ids")
        bad = repeat_ids[:, 1:]
        sel = (bad[..., 0] >= 0) & valid & (labels[:, 1:] != -100)
        rows = sel.nonzero()[:, 0]
        logp = logits[:, :-1][sel].float().log_softmax(-1)  # (n, vocab), n targets in the batch
        ids = bad[sel]
        p_bad = (logp.gather(1, ids.clamp(min=0)).exp() * (ids >= 0)).sum(1)
        # -log(1 - p): Welleck et al. 2019 (arXiv 1908.04319), token-level unlikelihood
        ul = -torch.log1p(-p_bad.clamp(max=1 - 1e-6))
        per_row = torch.zeros(len(loss), dtype=ul.dtype, device=ul.device).index_add(0, rows, ul)
        count = torch.zeros_like(per_row).index_add(0, rows, torch.ones_like(ul))
        loss = loss + repeat_weight * per_row / count.clamp(min=1)
    loss = loss.mean()
    scored = prose | mesh
    with torch.no_grad():
        correct = ((logits[:, :-1].argmax(-1) == target) & scored).sum()
    return loss, correct, scored.sum()


def mesh_loss_trainer_class(base: type) -> type:
    """A subclass of TRL's ``SFTTrainer`` (``base``) whose loss is :func:`mesh_weighted_loss`."""

    class MeshLossSFTTrainer(base):  # type: ignore[misc, valid-type]
        """Set ``mesh_mask`` (a :class:`MeshTokenMask`), ``mesh_loss_tokens``,
        ``mesh_head_tokens``, ``mesh_new_weight``, ``mesh_turn_end``, ``mesh_end_weight``,
        ``mesh_face_end_weight``, ``mesh_repeat_weight`` and ``mesh_bare_plan_only`` before
        training."""

        mesh_mask: MeshTokenMask
        mesh_loss_tokens: int = 512
        mesh_head_tokens: int = 0
        mesh_new_weight: float = 0.0
        mesh_turn_end: bool = False
        mesh_end_weight: float = 0.0
        mesh_face_end_weight: float = 0.0
        mesh_repeat_weight: float = 0.0
        mesh_bare_plan_only: bool = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            ids = inputs["input_ids"]
            rows = ids.tolist()
            marks = [self.mesh_mask(row) for row in rows]
            labels = inputs["labels"]
            if self.mesh_bare_plan_only:
                labels = labels.clone()
                for b, row in enumerate(rows):
                    cut = self.mesh_mask.bare_mesh_start(row, marks[b], labels[b].tolist())
                    if cut is not None:
                        labels[b, cut:] = -100
                        marks[b] = marks[b][:cut] + [False] * (len(row) - cut)
            if self.mesh_turn_end:
                marks = [
                    self.mesh_mask.with_turn_ends(r, m) for r, m in zip(rows, marks, strict=True)
                ]
            mask = torch.tensor(marks, dtype=torch.bool, device=ids.device)
            new = None
            if self.mesh_new_weight:
                new = torch.tensor(
                    [self.mesh_mask.new_values(r, m) for r, m in zip(rows, marks, strict=True)],
                    dtype=torch.bool,
                    device=ids.device,
                )
            ends = faces = None
            if self.mesh_end_weight or self.mesh_face_end_weight:
                both = [self.mesh_mask.line_ends(r) for r in rows]
                if self.mesh_end_weight:
                    ends = torch.tensor([b[0] for b in both], dtype=torch.bool, device=ids.device)
                if self.mesh_face_end_weight:
                    faces = torch.tensor([b[1] for b in both], dtype=torch.bool, device=ids.device)
            repeat = None
            if self.mesh_repeat_weight:
                targets = [self.mesh_mask.repeat_targets(r) for r in rows]
                k = max((len(bad) for row in targets for _, bad in row), default=1)
                repeat = torch.full((*ids.shape, k), -1, dtype=torch.long, device=ids.device)
                for b, row in enumerate(targets):
                    for t, bad in row:
                        repeat[b, t, : len(bad)] = torch.tensor(bad, device=ids.device)
            fwd: dict[str, Any] = {k: v for k, v in inputs.items() if k != "labels"}
            fwd["use_cache"] = False
            aux = getattr(self, "aux_loss_enabled", False)
            if aux:  # mixture-of-experts: the router's load-balancing loss, as TRL adds it
                fwd["output_router_logits"] = True
            outputs = model(**fwd)
            loss, correct, scored = mesh_weighted_loss(
                outputs.logits,
                ids,
                labels,
                mask,
                inputs.get("attention_mask"),
                self.mesh_loss_tokens,
                self.mesh_head_tokens,
                new,
                self.mesh_new_weight,
                ends,
                self.mesh_end_weight,
                faces,
                self.mesh_face_end_weight,
                repeat,
                self.mesh_repeat_weight,
            )
            if aux:
                loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            mode = "train" if model.training else "eval"
            n = self.accelerator.gather_for_metrics(scored).sum()
            c = self.accelerator.gather_for_metrics(correct).sum()
            self._metrics[mode]["mean_token_accuracy"].append((c / n).item() if n > 0 else 0.0)
            if mode == "train":
                seen = (
                    ids.numel()
                    if inputs.get("attention_mask") is None
                    else int(inputs["attention_mask"].sum())
                )
                self._total_train_tokens += int(
                    self.accelerator.gather_for_metrics(torch.tensor(seen, device=ids.device)).sum()
                )
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, outputs) if return_outputs else loss

    return MeshLossSFTTrainer
