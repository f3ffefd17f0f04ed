"""Part templates (meshlm.part_templates) and the template constraint
(meshlm.infer.grammar_templates): a part's template is its value pattern and face lines, the
same for every box whatever its proportions; a library is saved and read back as it was; the
constraint accepts every part of its library with new numbers, refuses a copy where the template
needs a new value, a new value on the wrong side, a face out of order and an end before the
part is whole, keeps parts apart and in canonical order, never dead-ends, and random walks under
it on a 64-level grid write only library parts, as the canonical text of their mesh."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from meshlm import modelfolder
from meshlm.errors import MeshlmError
from meshlm.infer.grammar_templates import TemplateGrammar
from meshlm.part_templates import (
    FILE,
    TemplateLibrary,
    read,
    split_text,
    template_of,
)
from meshlm.parts import decode_parts, encode_parts
from meshlm.plan import part_boxes, plan_line, plan_text
from meshlm.shapes import make_shape

CHARS = "vf0123456789 -\n"


def _box(lo, hi) -> str:
    """Parts text of the axis-aligned box from corner ``lo`` to ``hi`` (grid units): a cube's
    procedural box's canonical text with its two values an axis mapped (monotone, so the
    order is kept)."""
    b = make_shape("box", 0)
    text = encode_parts(b.vertices, b.faces)
    rows = [[int(t) for t in ln.split()[1:]] for ln in text.split("\n") if ln.startswith("v ")]
    col = list(zip(*rows, strict=True))
    out = []
    for line in text.split("\n"):
        if line.startswith("v "):
            x = [int(t) for t in line.split()[1:]]
            vals = [(lo if x[a] == min(col[a]) else hi)[a] for a in range(3)]
            line = "v " + " ".join(map(str, vals))
        out.append(line)
    return "\n".join(out)


def _texts(seed: int) -> dict[str, str]:
    out = {}
    for fam in ("table", "shelf", "chair", "car", "stairs", "vase"):
        s = make_shape(fam, seed, max_segments=6)
        out[fam] = encode_parts(s.vertices, s.faces)
    return out


def _feed(g: TemplateGrammar, text: str, s=None):
    """``(state after text, None)``, or ``(None, index of the first refused character)``; from
    state ``s``, else from the start of a line."""
    s = g.line() if s is None else s
    for i, ch in enumerate(text):
        nxt = g.step(s, ch)
        if nxt is None:
            return None, i
        s = g.settle(nxt)
    return s, None


def test_every_box_has_one_template_whatever_its_proportions():
    a = split_text(_box((0, 0, 0), (63, 63, 63)))
    b = split_text(_box((0, 0, 0), (63, 5, 40)))
    assert len(a) == len(b) == 1 and len(a[0][0]) == 8 and len(a[0][1]) == 12
    ta, tb = template_of(*a[0]), template_of(*b[0])
    assert ta == tb
    assert ta.vertices == 8 and len(ta.faces) == 12
    for seq, order in ta.axes:  # two values an axis, four vertices on each
        assert sorted(seq) == [0, 0, 0, 0, 1, 1, 1, 1] and sorted(order) == [0, 1]
    # a table's top and legs, a shelf's boards are boxes: one template for all of them
    texts = _texts(1)
    for fam in ("table", "shelf"):
        assert {template_of(v, f) for v, f in split_text(texts[fam])} == {ta}


def test_split_text_reads_labels_and_refuses_what_points_outside_a_part():
    text = _texts(1)["chair"]
    parts = split_text("Here it is:\n" + text + "\nDone.")
    mesh = decode_parts(text)
    assert sum(len(f) for _, f in parts) == len(mesh.faces)
    for v, f in parts:
        assert all(0 <= x < len(v) for face in f for x in face)
    with pytest.raises(MeshlmError, match="line 4: a face index points outside its part"):
        split_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf -4 -2 -1")
    with pytest.raises(MeshlmError, match="line 1: expected 3 numbers"):
        split_text("v 0 0")


def test_a_library_is_saved_and_read_back_with_where_it_came_from(tmp_path):
    texts = list(_texts(2).values())
    lib = TemplateLibrary.from_texts(texts, source={"dataset": "shapes"})
    n_parts = sum(len(split_text(t)) for t in texts)
    assert lib.source == {"replies": 6, "parts": n_parts, "dataset": "shapes"}
    assert sum(lib.counts) == n_parts and lib.counts == sorted(lib.counts, reverse=True)
    path = lib.save(tmp_path)
    assert path == tmp_path / FILE
    back = read(tmp_path)
    assert back.templates == lib.templates and back.counts == lib.counts
    assert back.bins == 64 and back.source == lib.source
    assert read(tmp_path / "nowhere") is None
    data = json.loads(path.read_text())
    data["templates"][0]["faces"][0] = [0, 1, 99]
    path.write_text(json.dumps(data))
    with pytest.raises(MeshlmError, match=f"{FILE}: not a part template library"):
        read(tmp_path)


def test_a_library_is_read_from_a_parts_dataset_only(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "a box"}, {"role": "assistant", "content": t}]}
        for t in ("Here:\n" + _box((0, 0, 0), (9, 9, 9)), _box((1, 2, 3), (60, 9, 9)))
    ]
    rows = [{**r, "task": "generation", "source": "test"} for r in rows]
    rows.append({"messages": [{"role": "user", "content": "what?"}], "task": "understanding"})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {"format": modelfolder.format_block(64, "parts")}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    lib = TemplateLibrary.from_dataset(tmp_path)
    assert len(lib) == 1 and lib.counts == [2] and lib.source["replies"] == 2
    assert lib.source["split"] == "train" and len(lib.source["manifest_sha256"]) == 64
    manifest["format"] = modelfolder.format_block(64, "llama-mesh")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MeshlmError, match="its mesh format is 'llama-mesh', not 'parts'"):
        TemplateLibrary.from_dataset(tmp_path)
    with pytest.raises(MeshlmError, match="not a dataset folder"):
        TemplateLibrary.from_dataset(tmp_path / "nowhere")


def test_the_module_command_writes_a_library_or_says_why_in_one_line(tmp_path, capsys):
    from meshlm.part_templates import main

    data = tmp_path / "data"
    data.mkdir()
    row = {"messages": [{"role": "assistant", "content": _box((0, 0, 0), (9, 9, 9))}]}
    (data / "train.jsonl").write_text(json.dumps({**row, "task": "generation"}) + "\n")
    (data / "manifest.json").write_text(
        json.dumps({"format": modelfolder.format_block(64, "parts")})
    )
    model = tmp_path / "model"
    model.mkdir()
    assert main([str(data), str(model)]) == 0
    assert read(model).counts == [1]
    assert capsys.readouterr().out.strip() == f"{model / FILE}: 1 templates of 1 parts"
    for args, problem in (
        ([str(tmp_path / "nowhere"), str(model)], "not a dataset folder (no manifest.json)"),
        ([str(data), str(tmp_path / "nowhere")], "no such model folder"),
    ):
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err and "Traceback" not in err


def test_the_constraint_takes_library_parts_with_new_numbers_and_nothing_else():
    lib = TemplateLibrary.from_texts(_texts(1).values())
    known_families, unknown = set(), set()
    for fam, text in _texts(7).items():  # other proportions, other counts
        known = all(template_of(v, f) in set(lib.templates) for v, f in split_text(text))
        g = TemplateGrammar(lib)
        got, refused = _feed(g, text)
        if known:
            known_families.add(fam)
            assert refused is None and g.can_end(got), fam
        else:
            unknown.add(fam)
            assert refused is not None, fam  # a part the library does not have is refused
    assert {"shelf", "chair", "car"} <= known_families and "vase" in unknown
    assert TemplateGrammar(lib).bins == 64
    with pytest.raises(ValueError, match="for 64 bins, not 32"):
        TemplateGrammar(lib, bins=32)


def test_a_box_needs_its_new_values_in_their_order_and_its_faces_in_theirs():
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63))])
    box = _box((10, 20, 30), (40, 50, 60))
    g = TemplateGrammar(lib)
    assert g.can_end(_feed(g, box)[0])
    lines = box.split("\n")
    k = lib.templates[0].axes[0][0].index(1)  # the vertex line where the second x value comes
    head = "\n".join(lines[:k]) + "\n"
    first_x = lines[0].split()[1]
    assert _feed(TemplateGrammar(lib), head + lines[k] + "\n")[1] is None
    # a copy where the box needs a new value (a wedge), or a new value on the wrong side of the
    # first one: refused within the number or at the space after it
    wrong = "5" if first_x == "10" else "50"
    for x in (first_x, wrong):
        bad = head + f"v {x} "
        _, i = _feed(TemplateGrammar(lib), bad)
        assert i is not None and len(head) + 2 <= i < len(bad), (x, i)
    # after the eight vertices only the template's first face may come, and no end
    g = TemplateGrammar(lib)
    s, _ = _feed(g, "\n".join(lines[:8]) + "\n")
    assert s[1:] == (False, True, False)  # no 9th vertex, a face, no end
    for other in ("f -1 -2 -3\n", "f -7 -8 -6\n", "f -8 -6 -7\n"):
        assert other != lines[8] + "\n" and _feed(g, other)[1] is not None
    # the end only once all twelve faces are written
    g = TemplateGrammar(lib)
    assert not g.can_end(_feed(g, "\n".join(lines[:19]))[0])
    g = TemplateGrammar(lib)
    assert g.can_end(_feed(g, "\n".join(lines[:20]))[0])


def test_a_part_shares_no_vertex_with_an_earlier_one():
    """Parts that touched would be cut into other pieces by the strict decoder: a new part's
    vertex may not repeat an earlier part's (one bin off is fine)."""
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63))])
    box = _box((10, 20, 30), (40, 50, 60))
    assert _feed(TemplateGrammar(lib), box + "\nv 10 20 30\n")[1] is not None
    assert _feed(TemplateGrammar(lib), box + "\nv 10 20 31\n")[1] is None
    assert _feed(TemplateGrammar(lib), box + "\nv 11 20 30\n")[1] is None


def test_a_value_that_would_force_a_vertex_onto_an_earlier_part_is_avoided():
    """A box's second vertex repeats its first's x and z: its new y settles it. A y that would
    put it on an earlier box's vertex (two boxes sharing an edge) is refused while another is
    left; one bin off is taken, and the two boxes are separate pieces in canonical text."""
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63))])
    first = _box((0, 0, 0), (10, 10, 10))
    touching = _box((10, 2, 0), (20, 10, 10))  # its edge x 10, y 10 is an edge of the first
    assert touching.split("\n")[1] == "v 10 10 10" and "v 10 10 10" in first
    text = first + "\n" + touching
    s, refused = _feed(TemplateGrammar(lib), text)
    assert refused == len(first) + 1 + len("v 10 2 10\nv 10 1")  # the y that settles it
    apart = first + "\n" + _box((10, 2, 0), (20, 11, 10))
    g = TemplateGrammar(lib)
    s, refused = _feed(g, apart)
    assert refused is None and g.can_end(s)
    assert len(decode_parts(apart, strict=True).quantized) == 16  # no vertex shared


def test_a_vertex_the_template_forces_onto_an_earlier_part_is_written_anyway():
    """Where no choice is left (the second box's other x has room for one value only, 63, and
    that settles its last vertex on a vertex of the first), the vertex is written: the one
    value allowed (not the plain rule, under which a model could leave the template), the box
    is finished as its template, the text can end and is the canonical text of the two boxes
    touching at a corner."""
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63))])
    first = _box((1, 1, 1), (63, 20, 45))
    second = _box((62, 20, 45), (63, 63, 60)).split("\n")
    assert second[7] == "v 63 20 45" and second[7] in first.split("\n")
    g = TemplateGrammar(lib)
    s, refused = _feed(g, first + "\n" + "\n".join(second[:7]) + "\nv 63 20 ")
    assert refused is None and s[5:7] == (45, 45)  # the template's value, shared
    s, refused = _feed(g, "\n".join(["45", *second[8:]]), s)
    assert refused is None and g.cands == [0] and g.can_end(s)
    text = first + "\n" + "\n".join(second)
    assert len(decode_parts(text, strict=True).quantized) == 15


def test_parts_come_in_canonical_order():
    """A part's key (vertex count and faces, then min corner, max corner, coordinates) must
    exceed the previous part's: a second box whose minimum corner comes lower is refused at the
    value that settles it, even when that value is not its first vertex's; one higher is taken;
    a smaller template may not follow a larger one; when no part can follow, only the end may
    come."""
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63)), _texts(1)["vase"]])
    first = _box((10, 20, 30), (40, 50, 60))
    for lo, hi, ok in [  # (no vertex of the first box: parts are kept apart)
        ((10, 20, 31), (41, 51, 61), True),  # min corner larger in z
        ((11, 0, 0), (12, 1, 1), True),  # larger in x: the rest is free
        ((10, 21, 0), (40, 51, 59), True),
        ((10, 20, 29), (41, 51, 61), False),
        ((9, 30, 40), (50, 60, 61), False),
        ((10, 19, 61), (41, 51, 62), False),
    ]:
        second = _box(lo, hi)
        g = TemplateGrammar(lib)
        got, refused = _feed(g, first + "\n" + second)
        assert (refused is None) == ok, (lo, hi, refused)
        if ok:
            assert g.can_end(got)
            assert decode_parts(first + "\n" + second, strict=True).faces.shape == (24, 3)
        else:  # refused within the second box's vertex lines, at a number
            assert len(first) < refused < len(first) + second.index("f"), refused
            assert (first + "\n" + second)[refused].isdigit()
    # a box's first vertex has its minimum x and y but its maximum z: its minimum z comes with
    # the third vertex, and is held there (a box on its own may take it)
    assert first.startswith("v 10 20 60\nv 10 50 60\nv 10 50 30\n")
    head = "v 10 20 61\nv 10 51 61\n"
    for third, ok in (("v 10 51 29\n", False), ("v 10 51 31\n", True)):
        assert _feed(TemplateGrammar(lib), head + third)[1] is None
        refused = _feed(TemplateGrammar(lib), first + "\n" + head + third)[1]
        assert (refused is None) == ok, third
    # the vase (a larger part) may follow a box, no box the vase
    vase = _texts(1)["vase"]
    g = TemplateGrammar(lib)
    got, refused = _feed(g, first + "\n" + vase)
    assert refused is None and g.can_end(got)
    assert _feed(TemplateGrammar(lib), vase + "\n" + first)[1] is not None
    # after the last box the grid has room for, only the end (no vertex line, no face line)
    g = TemplateGrammar(TemplateLibrary.from_texts([first]))
    got, refused = _feed(g, _box((62, 62, 62), (63, 63, 63)) + "\n")
    assert refused is None and got[1:] == (False, False, True)


def test_the_order_check_is_exact_against_every_completion():
    """``_after`` (can a part with these values so far still get a larger key than the previous
    part?) against brute force over every completion of a box on a 6-level grid: the box's
    values on each axis, two per axis ranked as its template says."""
    import itertools

    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (5, 5, 5))], bins=6)
    g = TemplateGrammar(lib)
    t, tpl = 0, lib.templates[0]
    pairs = list(itertools.combinations(range(6), 2))  # (smaller, larger) value on an axis

    def key(vals):  # vals[a] = values by appearance index
        verts = [tuple(vals[a][tpl.axes[a][0][i]] for a in range(3)) for i in range(8)]
        lo = tuple(min(v[a] for v in verts) for a in range(3))
        hi = tuple(max(v[a] for v in verts) for a in range(3))
        return lo + hi + tuple(x for v in verts for x in v)

    def by_appearance(a, pair):
        return [pair[r] for r in g.ranks[t][a]]

    rng = random.Random(0)
    shape = g.shapes[t]
    checked = {True: 0, False: 0}
    for _ in range(300):
        prev = (shape, key([by_appearance(a, rng.choice(pairs)) for a in range(3)]))
        full = [by_appearance(a, rng.choice(pairs)) for a in range(3)]
        known = [full[a][: rng.randint(0, 2)] for a in range(3)]
        brute = any(
            key(vals) > prev[1]
            for vals in itertools.product(
                *(
                    [by_appearance(a, p) for p in pairs if by_appearance(a, p)[: len(d)] == d]
                    for a, d in enumerate(known)
                )
            )
        )
        assert g._after(t, known, prev) == brute, (known, prev)
        checked[brute] += 1
    assert min(checked.values()) > 30  # both answers seen often


def test_after_a_part_under_the_plain_rule_parts_are_not_held_to_the_order():
    """A part that left every template (no template value fitted a field) has no template's
    key; the next part may be any template, not only a larger one (else the mesh would have to
    end there). Such a part has at most as many vertices as the library's largest."""
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (63, 63, 63))])
    g = TemplateGrammar(lib)
    s, refused = _feed(g, _box((10, 20, 30), (40, 50, 60)) + "\nv 50 1 1\n")
    assert refused is None
    g.cands = []  # as when a field fell back to the plain rule
    s, refused = _feed(g, "v 2 1 1\nv 1 2 1\nv 5 5 5\nv 6 5 5\nv 5 6 5\nv 9 9 9\nv 10 9 9\n", s)
    # under the plain rule no more vertices than the library's largest part (8): a face next
    assert refused is None and s[1:] == (False, True, False)
    s, refused = _feed(g, "f -8 -7 -6\nf -5 -4 -3\nf -3 -2 -1\n", s)
    assert refused is None and s[1:] == (True, True, True)
    s, refused = _feed(g, _box((0, 30, 0), (5, 35, 5)), s)  # a box smaller than the first
    assert refused is None and g.cands and g.can_end(s)


@pytest.mark.parametrize("bins", [8, 64])
def test_random_walks_write_only_library_parts_and_never_dead_end(bins):
    texts = [t for seed in (1, 2) for t in _texts(seed).values()]
    if bins != 64:
        texts = [
            encode_parts(make_shape("table", s).vertices, make_shape("table", s).faces, bins=bins)
            for s in (1, 2)
        ]
    lib = TemplateLibrary.from_texts(texts, bins=bins)
    known = set(lib.templates)
    rng = random.Random(bins)
    for _ in range(4):
        g = TemplateGrammar(lib)
        s, text = g.line(), ""
        while True:
            opts = [c for c in CHARS if g.step(s, c) is not None]
            end = g.can_end(s)
            assert opts or end, text[-80:]
            if end and (not opts or rng.random() < 0.02 or len(text) > 2500):
                break
            c = rng.choice(opts)
            s = g.settle(g.step(s, c))
            text += c
        parts = split_text(text)
        m = decode_parts(text, strict=False, bins=bins)
        assert parts and not m.report.repairs and not m.report.drops
        fit = [template_of(v, f) in known for v, f in parts]
        if bins == 64:  # room enough: every part a library part, no vertex in two parts, and
            # the parts in canonical order: the text is the canonical text of its mesh
            assert all(fit), text[-200:]
            assert len(m.quantized) == sum(len(v) for v, _ in parts)
            assert decode_parts(text, strict=True, bins=bins).faces.shape == m.faces.shape
        else:  # a crowded 8-level grid: parts the templates cannot place take the plain rule
            assert sum(fit) >= len(fit) / 2, text[-200:]


# --- through the token constraint and the engine -----------------------------------------------


def test_token_walks_under_templates_write_library_parts():
    transformers = pytest.importorskip("transformers")
    from meshlm.infer.constrain import VocabIndex
    from meshlm.infer.constrain_parts import PartsConstraint, constraint_for
    from meshlm.infer.grammar_parts import PartsGrammar

    tok = transformers.AutoTokenizer.from_pretrained(modelfolder.BUNDLED_MODEL)
    index = VocabIndex.for_tokenizer(tok, [tok.eos_token_id])
    lib = TemplateLibrary.from_texts(_texts(1).values())
    known = set(lib.templates)
    c = constraint_for("parts", index, 64, 0, templates=lib)
    assert isinstance(c.grammar, TemplateGrammar)
    assert type(constraint_for("parts", index, 64, 0).grammar) is PartsGrammar
    with pytest.raises(ValueError, match="not llama-mesh"):
        constraint_for("llama-mesh", index, templates=lib)
    rng = np.random.default_rng(3)
    for _ in range(3):
        c = PartsConstraint(index, max_preamble=0, templates=lib)
        steps = 0
        while not c.done:
            ids = c.allowed().tolist()
            eos = [a for a in ids if a in index.eos_ids]
            rest = [a for a in ids if a not in index.eos_ids]
            pick = eos[0] if eos and (steps > 600 or not rest or rng.random() < 0.05) else None
            c.advance(pick if pick is not None else int(rng.choice(rest)))
            steps += 1
        parts = split_text(c.text)
        assert parts and all(template_of(v, f) in known for v, f in parts)
    # a library part written token by token with the real tokenizer is allowed all the way
    text = _texts(7)["shelf"]
    c = PartsConstraint(index, max_preamble=0, templates=lib)
    for i in tok.encode(text, add_special_tokens=False):
        assert i in set(c.allowed().tolist())
        c.advance(i)
    assert c.complete


def _vocab():
    """The bundled model's tokenizer and its constraint vocabulary index."""
    transformers = pytest.importorskip("transformers")
    from meshlm.infer.constrain import VocabIndex

    tok = transformers.AutoTokenizer.from_pretrained(modelfolder.BUNDLED_MODEL)
    return tok, VocabIndex.for_tokenizer(tok, [tok.eos_token_id])


def _walk_to_end(c, eos: int, rng) -> None:
    """Random allowed tokens until the constraint ``c`` is done: the end when allowed, 1 time
    in 20 (always after 600 tokens), or when nothing else is."""
    steps = 0
    while not c.done:
        allowed = c.allowed().tolist()
        rest = [a for a in allowed if a != eos]
        end = len(rest) < len(allowed) and (steps > 600 or rng.random() < 0.05)
        c.advance(eos if end or not rest else int(rng.choice(rest)))
        steps += 1


def test_a_token_budget_ends_the_reply_at_a_whole_part_not_inside_one():
    from meshlm.infer.constrain_parts import constraint_for

    tok, index = _vocab()
    lib = TemplateLibrary.from_texts(_texts(1).values())
    text = _texts(7)["shelf"]  # library parts, other numbers
    ids = tok.encode(text, add_special_tokens=False)
    parts = split_text(text)
    assert len(parts) >= 4
    for budget in (len(ids) // 3, len(ids) // 2, len(ids) - 5):
        c = constraint_for("parts", index, 64, 0, templates=lib, budget=budget)
        n = 0
        while ids[n] in set(c.allowed().tolist()):
            c.advance(ids[n])
            n += 1
        # refused at a new part's first token: only the end is left, within the budget
        assert set(c.allowed().tolist()) == {tok.eos_token_id} and c.complete
        assert n + 1 <= budget and c.text.endswith("\n") and text[len(c.text) :].startswith("v")
        got = split_text(c.text)
        assert 1 <= len(got) < len(parts) and got == parts[: len(got)]
        assert decode_parts(c.text, strict=True).faces.shape[0] == sum(len(f) for _, f in got)
        # the text's next part (its lines at the reply's tokens a line, a tenth to spare)
        # would not have fitted in what was left
        per_line = n / c.text.count("\n")
        v, f = parts[len(got)]
        assert (len(v) + len(f)) * 1.1 * per_line > budget - n - 1
    c = constraint_for("parts", index, 64, 0, templates=lib, budget=2 * len(ids))
    for i in ids:  # room for all of it: nothing refused
        c.advance(i)
    assert c.complete


def test_a_plan_line_holds_the_reply_to_its_part_count():
    from meshlm.infer.constrain_parts import constraint_for

    tok, index = _vocab()
    lib = TemplateLibrary.from_texts(_texts(1).values())
    text = _texts(7)["shelf"]  # library parts, other numbers
    parts = split_text(text)
    assert len(parts) >= 4

    def constrained(goal: int):
        c = constraint_for("parts", index, 64, 64, templates=lib)
        for i in tok.encode(f"Here is a shelf:\n{plan_line('shelf', goal)}\n\n"):
            c.advance(i)
        return c

    # fewer parts planned than the text has: the next part's first token is refused
    k = len(parts) - 2
    c, ids = constrained(k), tok.encode(text, add_special_tokens=False)
    n = 0
    while ids[n] in set(c.allowed().tolist()):
        c.advance(ids[n])
        n += 1
    assert set(c.allowed().tolist()) == {tok.eos_token_id} and c.complete
    assert split_text(c.text) == parts[:k] and text[len(c.text) :].startswith("v")
    # more parts planned: the whole text is allowed, its end is not; a new part is
    c = constrained(len(parts) + 1)
    for i in ids:
        c.advance(i)
    assert tok.eos_token_id not in set(c.allowed().tolist()) and not c.complete
    c.advance(tok.encode("\n", add_special_tokens=False)[0])
    after = set(c.allowed().tolist())
    assert tok.eos_token_id not in after and tok.encode("v", add_special_tokens=False)[0] in after
    # random walks keep the plan's count (the order between parts may end a reply sooner)
    rng = np.random.default_rng(5)
    counts = []
    for goal in (1, 2, 3, 3, 4):
        c = constrained(goal)
        _walk_to_end(c, tok.eos_token_id, rng)
        counts.append((goal, len(split_text(c.text))))
    assert all(got <= goal for goal, got in counts) and sum(g == n for g, n in counts) >= 4


def test_a_plan_holds_the_parts_to_the_named_familys_templates(tmp_path):
    from meshlm.infer.constrain_parts import constraint_for

    tok, index = _vocab()
    texts = _texts(1)
    planned = [f"{plan_line(fam, len(split_text(t)))}\n\n{t}" for fam, t in texts.items()]
    lib = TemplateLibrary.from_texts(planned)
    for fam, t in texts.items():  # each family's templates are its text's parts'
        assert {lib.templates[i] for i in lib.of_family(fam)} == {
            template_of(v, f) for v, f in split_text(t)
        }
    assert lib.of_family("bed") == set()
    back = TemplateLibrary.load(lib.save(tmp_path))
    assert back.families == lib.families and any(lib.families)
    assert TemplateLibrary.from_texts(texts.values()).families == [[]] * len(lib)
    vase = {lib.templates[i] for i in lib.of_family("vase")}
    assert len(vase) == 1 and vase != {lib.templates[i] for i in lib.of_family("shelf")}
    rng = np.random.default_rng(11)
    for fam in ("vase", "shelf", "stairs"):
        c = constraint_for("parts", index, 64, 64, templates=lib)
        for i in tok.encode(f"Sure:\n{plan_line(fam, 2)}\n\n"):
            c.advance(i)
        _walk_to_end(c, tok.eos_token_id, rng)
        own = {lib.templates[i] for i in lib.of_family(fam)}
        got = [template_of(v, f) for v, f in split_text(c.text)]
        assert got and all(t in own for t in got), fam
    # a plan line names one of the library's families: the name is held, the rest is free
    c = constraint_for("parts", index, 64, 64, templates=lib)
    for i in tok.encode("Sure:\nPlan:", add_special_tokens=False):
        c.advance(i)
    first = {tok.decode([i]) for i in c.allowed().tolist()}
    names = [f" {f}," for f in texts]
    assert all(any(n.startswith(t) or t.startswith(n) for n in names) for t in first)
    assert all(any(n.startswith(t) for t in first) for n in names)  # each can be begun
    for _ in range(4):  # random walks through the name
        c = constraint_for("parts", index, 64, 64, templates=lib)
        for i in tok.encode("Plan:", add_special_tokens=False):
            c.advance(i)
        while "," not in c.preamble:
            c.advance(int(rng.choice(c.allowed())))
        assert c.preamble.split(",")[0].removeprefix("Plan: ").replace(" ", "_") in texts
    c = constraint_for("parts", index, 64, 64, templates=lib)
    for i in tok.encode("Plan: shelf, 3", add_special_tokens=False):
        c.advance(i)
    assert len(c.allowed()) == len(index.prose_ids)  # after the name: free again
    # a family the library does not know: every template, as without a plan
    c = constraint_for("parts", index, 64, 64, templates=lib)
    for i in tok.encode(f"{plan_line('bed', 1)}\n\n"):
        c.advance(i)
    assert c.grammar.pool == list(range(len(lib)))


def test_a_plan_with_part_boxes_holds_each_part_to_its_box():
    from meshlm.infer.constrain_parts import constraint_for

    tok, index = _vocab()
    rng = np.random.default_rng(3)
    for fam in ("shelf", "stairs", "car", "table"):
        # the family's own templates (as a plan's family holds them): which template each part
        # takes is the model's choice, and a part of more vertices than the planned one can
        # leave later parts no template that fits their boxes (the order between parts)
        lib = TemplateLibrary.from_texts([_texts(1)[fam]])
        planned = _texts(7)[fam]  # other numbers than the library's: new boxes
        boxes = part_boxes(planned)
        lead = f"Here you go:\n{plan_text(fam, planned, boxes=True)}\n\n"
        ids = tok.encode(lead, add_special_tokens=False)
        # a 64-token lead-in limit: the plan's lines are not counted, free prose is
        c = constraint_for("parts", index, 64, 8, templates=lib)
        for i in ids:
            c.advance(i)
        assert c.grammar.boxes == tuple(boxes) and c.preamble_tokens < 8 < len(ids)
        _walk_to_end(c, tok.eos_token_id, rng)
        got = part_boxes(c.text)
        assert 1 <= len(got) <= len(boxes) and got == boxes[: len(got)], fam
    # part lines past the plan's count, and free prose, count toward the lead-in limit
    extra = "Part 2: 0 0 0 to 1 1 1.\n"
    c = constraint_for("parts", index, 64, 64, templates=lib)
    for i in tok.encode("Plan: shelf, 1 part.\nPart 1: 0 0 0 to 1 1 1.\n" + extra + "Ok\n"):
        c.advance(i)
    assert c.preamble_tokens == len(tok.encode(extra + "Ok\n")) and c.grammar.boxes == (
        (0, 0, 0, 1, 1, 1),
    )
    # without part lines nothing is held: a random walk's first box is not the planned one
    lib = TemplateLibrary.from_texts([_texts(1)["shelf"]])
    boxes = part_boxes(_texts(7)["shelf"])
    c = constraint_for("parts", index, 64, 64, templates=lib)
    for i in tok.encode(f"{plan_line('shelf', len(boxes))}\n\n", add_special_tokens=False):
        c.advance(i)
    assert c.grammar.boxes == ()
    _walk_to_end(c, tok.eos_token_id, rng)
    assert part_boxes(c.text)[0] != boxes[0]


def test_a_layout_holds_each_part_to_its_template():
    """``layout`` (the shown exemplar's parts, ``--exemplar-layout``): part k takes template
    ``layout[k]`` -- here a table's parts in their canonical order (each shape after the one
    before, so the order between parts never overrides the hold) -- where random walks without
    it take other templates; a layout for the llama-mesh format, or without templates, is
    refused."""
    from meshlm.infer.constrain_parts import PartsConstraint, constraint_for

    tok, index = _vocab()
    table = _texts(4)["table"]
    lib = TemplateLibrary.from_texts([*_texts(1).values(), table])
    at = {t: i for i, t in enumerate(lib.templates)}
    layout = tuple(at[template_of(v, f)] for v, f in split_text(table))
    shapes = [(lib.templates[t].vertices, lib.templates[t].faces) for t in layout]
    assert len(layout) >= 3 and len(set(layout)) >= 2 and shapes == sorted(shapes)
    lead = tok.encode(f"{plan_line('table', len(layout))}\n\n", add_special_tokens=False)
    free = set()
    for seed in range(3):
        walked = []
        for hold in (layout, ()):
            rng = np.random.default_rng(seed)
            c = constraint_for("parts", index, 64, 64, templates=lib, budget=4000, layout=hold)
            for i in lead:
                c.advance(i)
            _walk_to_end(c, tok.eos_token_id, rng)
            walked.append([at.get(template_of(v, f)) for v, f in split_text(c.text)])
        held, other = walked
        assert held == list(layout), seed
        free.add(tuple(other))
    assert any(w != layout for w in free)  # without the hold the walks go elsewhere
    with pytest.raises(ValueError, match="parts format"):
        constraint_for("llama-mesh", index, 64, 64, layout=(0,))
    with pytest.raises(ValueError, match="give the templates"):
        PartsConstraint(index, 64, 64, layout=(0,))


def test_a_parts_model_folder_with_templates_holds_its_replies_to_them(tmp_path):
    pytest.importorskip("torch")
    from meshlm.infer import Sampling, load
    from meshlm.infer.engine import Engine
    from meshlm.modelfolder import MeshFormat, ModelInfo

    bundled = modelfolder.BUNDLED_MODEL
    for p in bundled.iterdir():
        if p.is_file() and p.suffix != ".gguf" and p.name != modelfolder.FILE:
            (tmp_path / p.name).symlink_to(p)
    modelfolder.write(tmp_path, ModelInfo(format=MeshFormat("parts", 64)))
    lib = TemplateLibrary.from_texts(_texts(1).values())
    lib.save(tmp_path)
    engine = load(tmp_path, "transformers", threads=1)
    assert engine.templates is not None and engine.templates.templates == lib.templates
    known = set(lib.templates)
    res = engine.generate("a shelf", Sampling(temperature=0, max_new_tokens=300))
    text = res.text
    if res.stats.cut_off:  # the last line and part may be unfinished
        text = text[: text.rfind("\n")]
    parts = split_text(text)[: -1 if res.stats.cut_off else None]
    assert res.mesh is not None and parts
    assert all(template_of(v, f) in known for v, f in parts)
    # templates of another grid are not used, and the user is told
    other = TemplateLibrary(lib.templates, lib.counts, bins=32)
    e = Engine(object(), info=ModelInfo(format=MeshFormat("parts", 64)), templates=other)
    assert e.templates is None and e.notes == ["part templates are for 32 bins, not 64: not used"]
    e = Engine(object(), info=ModelInfo(format=MeshFormat("llama-mesh", 64)), templates=lib)
    assert e.templates is None


def test_a_merged_copy_follows_its_adapters_templates(tmp_path):
    """The merged copy of an adapter folder is reused across runs (its hash covers the
    weights): its part_templates.json follows the adapter's, written, changed or removed."""
    pytest.importorskip("torch")
    from meshlm.infer.named import _sync_templates

    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    adapter.mkdir()
    merged.mkdir()
    lib = TemplateLibrary.from_texts([_box((0, 0, 0), (9, 9, 9))])
    lib.save(adapter)
    _sync_templates(adapter, merged)
    assert read(merged).templates == lib.templates
    more = TemplateLibrary.from_texts(_texts(1).values())
    more.save(adapter)
    _sync_templates(adapter, merged)
    assert read(merged).templates == more.templates
    (adapter / FILE).unlink()
    _sync_templates(adapter, merged)
    assert read(merged) is None


DIGITS_ = "0123456789"


def _number_vocab(whole: bool) -> list[str]:
    """Token texts of a small vocabulary: the format's characters, digit pairs, and (``whole``)
    every number a parts reply can hold as one token, as SmolLM2 with ``number_tokens``."""
    vocab = [
        "<eos>",
        "v",
        "f",
        " ",
        "-",
        " -",
        "\n",
        *DIGITS_,
        *(a + b for a in DIGITS_ for b in DIGITS_),
    ]
    vocab += [f" {n}" for n in range(10)]  # a few whole numbers even without the rest
    if whole:
        vocab += [f" {n}" for n in range(10, 256)] + [f" -{n}" for n in range(1, 256)]
    return vocab


def test_numbers_are_written_as_their_whole_tokens_when_the_vocabulary_has_them():
    """A model trained on whole-number tokens, left free, writes numbers in pieces (" 1" then
    "5" for 15) and then more pieces. With every number a token of its own, the constraint
    allows only those: token walks write exactly the canonical tokenization, never a dead end,
    and the shelf's canonical token sequence is allowed all the way. Without them, pieces."""
    from meshlm.infer.constrain import VocabIndex
    from meshlm.infer.constrain_parts import PartsConstraint

    lib = TemplateLibrary.from_texts(_texts(1).values())
    rng = np.random.default_rng(5)
    for whole in (True, False):
        vocab = _number_vocab(whole)
        index = VocabIndex(vocab, [0])
        assert PartsConstraint(index, templates=lib).canonical is whole
        assert PartsConstraint(index).canonical is whole  # without templates too (below)
        for _ in range(3):
            c = PartsConstraint(index, max_preamble=0, templates=lib)
            picked = []
            while not c.done:
                ids = c.allowed().tolist()
                assert ids  # never a dead end
                rest = [a for a in ids if a != 0]
                stop = 0 in ids and (len(picked) > 500 or not rest or rng.random() < 0.05)
                pick = 0 if stop else int(rng.choice(rest))
                c.advance(pick)
                picked.append(pick)
            pieces = [vocab[i] for i in picked[:-1]]
            numbers = [p for p in pieces if p.strip().lstrip("-").isdigit()]
            lines = c.text.split("\n")
            written = [t for ln in lines for t in ln.split()[1:]]
            if whole:  # one token a number, and nothing but numbers, letters and newlines
                assert len(numbers) == len(written) and set(pieces) - set(numbers) <= {
                    "v",
                    "f",
                    "\n",
                }
            else:  # the walk is free to split: some number came in pieces
                assert len(numbers) < len(written) or any(p in (" ", " -", "-") for p in pieces)
    index = VocabIndex(_number_vocab(True), [0])
    text = _texts(7)["shelf"]
    c = PartsConstraint(index, max_preamble=0, templates=lib)
    for line in text.split("\n"):
        for piece in [line[0], *(" " + t for t in line.split()[1:]), "\n"]:
            i = index.texts.index(piece)
            assert i in set(c.allowed().tolist()), (line, piece)
            c.advance(i)
    assert c.complete


def test_without_templates_a_number_past_the_whole_tokens_is_its_longest_token_then_digits():
    """Without templates a part may have more vertices than the vocabulary has index tokens
    (` -1`..` -255`): a cylinder of 130 sections, 262 vertices, is one part with relative
    indices to -262. Such a number is written as the tokenizer cuts it -- its longest prefix
    that has a token, then digits (` -26`, `2`) -- every other number as its own token: the
    whole text is allowed token by token that way, and a cut the tokenizer would not make
    (` -2` then `6`) is refused."""
    import trimesh

    from meshlm.infer.constrain import VocabIndex
    from meshlm.infer.constrain_parts import PartsConstraint

    index = VocabIndex(_number_vocab(True), [0])
    cyl = trimesh.creation.cylinder(radius=1, height=2, sections=130)
    text = encode_parts(cyl.vertices, cyl.faces)

    def pieces(line: str) -> list[str]:
        out = [line[0]]
        for t in line.split()[1:]:
            digits = t.lstrip("-")
            if int(digits) <= 255:
                out.append(" " + t)
                continue
            k = max(k for k in range(1, len(digits)) if int(digits[:k]) <= 255)
            out += [" -" + digits[:k], *digits[k:]]
        return [*out, "\n"]

    ids = [index.texts.index(p) for line in text.split("\n") for p in pieces(line)]
    c = PartsConstraint(index, max_preamble=0)
    assert c.canonical
    for i in ids:
        c.advance(i)  # ValueError for a token the constraint does not allow
    assert c.complete and decode_parts(c.text).faces.shape == (len(cyl.faces), 3)
    big = [n for n, i in enumerate(ids) if index.texts[i] in DIGITS_]  # digits after a token
    assert len(big) >= 100
    # the first such number, cut elsewhere: its first digit alone, then the next digit
    first = big[0] - 1  # the index of its prefix token
    c = PartsConstraint(index, max_preamble=0)
    for i in ids[:first]:
        c.advance(i)
    head = index.texts[ids[first]]  # " -NN"
    allowed = set(c.allowed().tolist())
    assert ids[first] in allowed and index.texts.index(" -") not in allowed
    c.advance(index.texts.index(head[:3]))  # " -N": a whole number of its own here
    assert index.texts.index(head[3]) not in set(c.allowed().tolist())
