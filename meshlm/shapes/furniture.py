"""Furniture: table, chair, stool, bench, shelf, bed, lamp.

All are assemblies of closed parts (boxes, prisms, lathed solids) that touch or overlap; each
part is closed, so the mesh is watertight edge-wise, but it is not one boolean union.
Sizes are in metres-ish units; panels are kept at least ~2 % of the largest dimension thick
so they survive quantization to 64 bins.

One idea: the seven furniture families, each a builder and its caption side by side; kept in
one module because they share the leg helper and the panel-thickness rule, as
``household.py``, ``outdoor.py`` and ``items.py`` each hold one kind of object.
"""

from __future__ import annotations

import numpy as np

from meshlm.shapes import geometry as g
from meshlm.shapes.captions import article, count, finish, hyphen, join, pick, size_word
from meshlm.shapes.core import Family
from meshlm.shapes.primitives import seg, uni


def _legs_at(points, leg_r, height, round_legs, n_seg=6):
    """Vertical legs from y=0 to ``height`` at (x, z) ``points``."""
    if round_legs:
        return [g.cylinder(leg_r, height, n_seg, x=x, z=z) for x, z in points]
    return [g.box_on((2 * leg_r, height, 2 * leg_r), x, 0, z) for x, z in points]


# ----------------------------------------------------------------------------------------- table
def _table(rng):
    top = pick(rng, ["round", "square", "rectangular", "rectangular"])
    choices = ["3", "4", "4", "1"] if top == "round" else ["4", "4", "1"]
    legs = int(pick(rng, choices))
    h = uni(rng, 0.45, 1.0)
    w = uni(rng, 0.7, 1.3)
    d = w if top in ("round", "square") else round(w * uni(rng, 0.45, 0.75), 3)
    t = round(max(0.04, 0.035 * w), 3)
    round_legs = bool(rng.random() < 0.5)
    leg_r = round(0.035 * w + 0.01, 3)
    parts = []
    if top == "round":
        parts.append(g.cylinder(w / 2, t, seg(rng, 12, 16), y0=h - t))
    else:
        parts.append(g.box_on((w, t, d), 0, h - t, 0))
    if legs == 1:
        parts.append(g.cylinder(leg_r * 1.6, h - t, 8, y0=0))
        parts.append(
            g.cylinder(w * 0.3, t, 8, y0=0) if top == "round" else g.box_on((w * 0.5, t, d * 0.5))
        )
    else:
        if top == "round":
            a = np.arange(legs) * 2 * np.pi / legs + np.pi / 2
            pts = np.stack([0.36 * w * np.cos(a), 0.36 * w * np.sin(a)], 1)
        else:
            ix, iz = w / 2 - 1.5 * leg_r, d / 2 - 1.5 * leg_r
            pts = [(-ix, -iz), (ix, -iz), (ix, iz), (-ix, iz)]
        parts += _legs_at(pts, leg_r, h - t, round_legs)
    p = {"top": top, "legs": legs, "height": h, "width": w, "depth": d, "round_legs": round_legs}
    return g.combine(parts), p


def _table_text(p, rng):
    shape = {
        "round": pick(rng, ["round", "circular"]),
        "square": "square",
        "rectangular": pick(rng, ["rectangular", "long"]),
    }[p["top"]]
    tall = size_word(
        p["height"],
        0.45,
        1.0,
        ["low", "short", "coffee-height"],
        ["tall", "high", "bar-height"],
        rng,
    )
    if p["legs"] == 1:
        legs = pick(rng, ["a single central leg", "one pedestal leg", "a pedestal base"])
        return finish(
            rng,
            pick(
                rng,
                [
                    f"{article(join([tall, shape, 'table']))} on {legs}",
                    f"{article(join([tall, 'pedestal table']))} with a {shape} top",
                    f"{article(join([shape, 'table']))} with {legs}",
                ],
            ),
        )
    legs = count(p["legs"], "leg")
    leg_kind = "round" if p["round_legs"] else "square"
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, shape, 'table']))} with {legs}",
                f"{article(join([tall, hyphen(p['legs'], 'legged'), 'table']))} with a {shape} top",
                f"{article(join([shape, 'table']))} standing on {legs}",
                f"{article(join([tall, 'table']))}: {shape} top, {legs} ({leg_kind})",
                f"{article(join([shape, 'wooden table']))} with {leg_kind} legs, {legs} in total",
            ],
        ),
    )


# ----------------------------------------------------------------------------------------- chair
def _chair(rng):
    w = uni(rng, 0.4, 0.55)
    seat_h = uni(rng, 0.4, 0.5)
    back_h = uni(rng, 0.3, 0.6)
    t = round(0.06 * w + 0.01, 3)
    leg = round(0.08 * w, 3)
    back = pick(rng, ["solid", "slats", "slats", "rails"])
    slats = int(rng.integers(2, 5)) if back != "solid" else 0
    arms = bool(rng.random() < 0.3)
    round_legs = bool(rng.random() < 0.4)
    ix = w / 2 - 1.4 * leg
    parts = [g.box_on((w, t, w), 0, seat_h - t, 0)]
    parts += _legs_at([(-ix, -ix), (ix, -ix), (ix, ix), (-ix, ix)], leg, seat_h - t / 2, round_legs)
    zb = -w / 2 + t / 2  # back plane
    if back == "solid":
        parts.append(g.box_on((w, back_h, t), 0, seat_h, zb))
    else:
        parts += [g.box_on((leg * 2, back_h, t * 1.3), x, seat_h - t / 2, zb) for x in (-ix, ix)]
        top_rail = 0.18 * back_h
        parts.append(g.box_on((w * 0.96, top_rail, t), 0, seat_h + back_h - top_rail, zb))
        if back == "slats":
            xs = np.linspace(-ix, ix, slats + 2)[1:-1]
            parts += [g.box_on((leg * 1.5, back_h - top_rail, t * 0.8), x, seat_h, zb) for x in xs]
        else:
            ys = np.linspace(seat_h, seat_h + back_h - top_rail, slats + 1)[1:-1]
            parts += [g.box_on((w, top_rail * 0.6, t * 0.8), 0, y, zb) for y in ys]
    if arms:
        ah = 0.22
        for x in (-w / 2 + leg, w / 2 - leg):
            parts.append(g.box_on((leg * 2, ah, leg * 2), x, seat_h, w / 2 - leg))
            parts.append(g.box_on((leg * 2.5, t, w), x, seat_h + ah, 0))
    p = {
        "width": w,
        "seat_height": seat_h,
        "back_height": back_h,
        "back": back,
        "slats": slats,
        "arms": arms,
        "round_legs": round_legs,
    }
    return g.combine(parts), p


def _chair_text(p, rng):
    if p["back"] == "solid":
        back = pick(rng, ["a solid backrest", "a solid back", "a plain panel back"])
    elif p["back"] == "slats":
        back = pick(
            rng,
            [
                f"a backrest of {count(p['slats'], 'vertical slat')}",
                f"{count(p['slats'], 'slat')} in the back",
            ],
        )
    else:
        back = (
            pick(
                rng,
                [
                    f"{count(p['slats'] - 1 or 1, 'horizontal rail')} across the back",
                    "a ladder back",
                ],
            )
            if p["slats"] > 1
            else "a rail back"
        )
    tall = size_word(
        p["back_height"],
        0.3,
        0.6,
        ["low-backed", "short-backed"],
        ["high-backed", "tall-backed"],
        rng,
    )
    noun = "armchair" if p["arms"] else pick(rng, ["chair", "chair", "dining chair"])
    arms = (
        pick(rng, ["with armrests", "with arms"])
        if p["arms"]
        else pick(rng, ["", "without arms", "with four legs"])
    )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, noun]))} with {back}, {arms}".rstrip(", "),
                f"{article(join([tall, 'four-legged', noun]))} {arms} and {back}",
                f"{article(noun)} {arms}, {back}".replace(" ,", ","),
            ],
        ),
    )


# ----------------------------------------------------------------------------------------- stool
def _stool(rng):
    round_seat = bool(rng.random() < 0.7)
    legs = int(pick(rng, ["3", "3", "4"]))
    h = uni(rng, 0.35, 0.85)
    r = uni(rng, 0.15, 0.22)
    t = round(0.06 * max(h, 2 * r), 3)
    splay = round(uni(rng, 0.0, 0.06), 3)
    footrest = bool(h > 0.6 and rng.random() < 0.6)
    parts = [
        g.cylinder(r, t, seg(rng, 10, 14), y0=h - t)
        if round_seat
        else g.box_on((2 * r, t, 2 * r), 0, h - t, 0)
    ]
    a = np.arange(legs) * 2 * np.pi / legs + (np.pi / 4 if legs == 4 else np.pi / 2)
    lr = 0.018 + 0.03 * max(h, 2 * r)
    for ang in a:
        c, s = np.cos(ang), np.sin(ang)
        top = np.array([0.7 * r * c, h - t, 0.7 * r * s])
        bot = np.array([(0.7 * r + splay) * c, 0.0, (0.7 * r + splay) * s])
        parts.append(g.tube([bot, top], lr, 4))
    if footrest:
        y = 0.35 * h
        rr = 0.7 * r + splay * 0.65
        k = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        prof = np.stack([rr + lr * np.cos(k), y + lr * np.sin(k)], 1)
        parts.append(g.lathe(prof, 12, loop=True))
    p = {"round_seat": round_seat, "legs": legs, "height": h, "splay": splay, "footrest": footrest}
    return g.combine(parts), p


def _stool_text(p, rng):
    seat = pick(rng, ["round", "circular"]) if p["round_seat"] else "square"
    kind = "bar stool" if p["height"] > 0.7 else pick(rng, ["stool", "stool", "seat stool"])
    short = "low" if p["height"] < 0.45 else ("tall" if p["height"] > 0.7 else "")
    legs = count(p["legs"], "leg")
    extra = pick(rng, [" and a footrest ring", " with a ring footrest"]) if p["footrest"] else ""
    splay = pick(rng, ["splayed ", "angled "]) if p["splay"] > 0.035 else ""
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([short, hyphen(p['legs'], 'legged'), kind]))} "
                f"with a {seat} seat{extra}",
                f"{article(join([short, seat, kind]))} on {count(p['legs'], splay + 'leg')}{extra}",
                f"{article(join([short, kind]))}: {seat} seat, {legs}{extra}",
            ],
        ),
    )


# ----------------------------------------------------------------------------------------- bench
def _bench(rng):
    length = uni(rng, 1.2, 2.0)
    d = uni(rng, 0.35, 0.5)
    h = uni(rng, 0.4, 0.5)
    t = round(0.035 * length, 3)
    support = pick(rng, ["legs", "panels"])
    back = bool(rng.random() < 0.45)
    slats = int(rng.integers(2, 4)) if back else 0
    parts = [g.box_on((length, t, d), 0, h - t, 0)]
    ix = length / 2 - 0.1
    if support == "legs":
        leg = round(0.025 * length, 3)
        iz = d / 2 - leg
        parts += _legs_at([(-ix, -iz), (ix, -iz), (ix, iz), (-ix, iz)], leg, h - t, False)
    else:
        parts += [g.box_on((t * 1.2, h - t, d * 0.9), x, 0, 0) for x in (-ix, ix)]
    if back:
        zb = -d / 2 + t / 2
        bh = uni(rng, 0.35, 0.5)
        parts += [g.box_on((t * 1.2, bh, t), x, h, zb) for x in (-ix, ix)]
        ys = np.linspace(h + 0.08, h + bh - 0.06, slats)
        parts += [g.box_on((length, 0.07, t * 0.8), 0, y, zb) for y in ys]
    p = {
        "length": length,
        "depth": d,
        "height": h,
        "support": support,
        "back": back,
        "back_slats": slats,
    }
    return g.combine(parts), p


def _bench_text(p, rng):
    long = "long" if p["length"] > 1.7 else ("short" if p["length"] < 1.45 else "")
    sup = (
        pick(rng, ["four legs", "four square legs"])
        if p["support"] == "legs"
        else pick(rng, ["two solid side panels", "slab ends", "two panel supports"])
    )
    if p["back"]:
        back = pick(
            rng,
            [
                f"a backrest of {count(p['back_slats'], 'slat')}",
                f"a slatted back ({count(p['back_slats'], 'board')})",
            ],
        )
        noun = pick(rng, ["park bench", "bench", "garden bench"])
        return finish(
            rng,
            pick(
                rng,
                [
                    f"{article(join([long, noun]))} with {back}, standing on {sup}",
                    f"{article(join([long, 'wooden', noun]))} on {sup} with {back}",
                ],
            ),
        )
    noun = pick(rng, ["bench", "backless bench", "simple bench"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([long, noun]))} on {sup}, no backrest",
                f"{article(join([long, 'flat', noun]))} supported by {sup}",
            ],
        ),
    )


# ----------------------------------------------------------------------------------------- shelf
def _shelf(rng):
    w = uni(rng, 0.6, 1.2)
    h = uni(rng, 0.8, 2.0)
    d = uni(rng, 0.25, 0.4)
    shelves = int(rng.integers(3, 7))
    back = bool(rng.random() < 0.5)
    t = round(0.03 * max(w, h), 3)
    parts = [g.box_on((t, h, d), x, 0, 0) for x in (-w / 2 + t / 2, w / 2 - t / 2)]
    # `shelves` boards including the bottom and the top
    ys = np.linspace(0, h - t, shelves)
    # boards reach half-way into the side panels so no corner coincides after quantization
    parts += [g.box_on((w - t, t, d * 0.9), 0, y, d * 0.05) for y in ys]
    if back:
        parts.append(g.box_on((w - t, h * 0.96, t), 0, h * 0.02, -d / 2 + t / 2))
    p = {"width": w, "height": h, "depth": d, "shelves": shelves, "back": back}
    return g.combine(parts), p


def _shelf_text(p, rng):
    tall = (
        "tall"
        if p["height"] > 1.4 * p["width"] + 0.2
        else ("wide" if p["width"] > p["height"] else "")
    )
    noun = pick(rng, ["bookshelf", "shelf unit", "bookcase", "shelving unit"])
    n = count(p["shelves"], "shelf", "shelves")
    back = (
        pick(rng, ["a back panel", "a closed back"])
        if p["back"]
        else pick(rng, ["an open back", "no back panel"])
    )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, noun]))} with {n}",
                f"{article(join([tall, noun]))} with {n} and {back}",
                f"{article(join([tall, 'wooden', noun]))}: {n}, {back}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------- bed
def _bed(rng):
    double = bool(rng.random() < 0.5)
    w = uni(rng, 1.4, 1.8) if double else uni(rng, 0.9, 1.1)
    length = uni(rng, 1.9, 2.1)
    frame_h = uni(rng, 0.2, 0.35)
    leg_h = uni(rng, 0.08, 0.2)
    mat = uni(rng, 0.15, 0.25)
    head_h = uni(rng, 0.5, 0.9)
    foot = bool(rng.random() < 0.4)
    t = 0.06
    pillows = (2 if double else 1) if rng.random() < 0.8 else 0
    z0 = -length / 2
    parts = [
        g.box_on((w, frame_h - leg_h, length), 0, leg_h, 0),
        g.box_on((w - 0.06, mat, length - 0.12), 0, frame_h, 0.02),
        g.box_on((w + 0.04, head_h + frame_h, t), 0, 0, z0 - t / 2),
    ]
    parts += _legs_at(
        [(sx * (w / 2 - 0.05), sz * (length / 2 - 0.05)) for sx in (-1, 1) for sz in (-1, 1)],
        0.04,
        leg_h,
        False,
    )
    if foot:
        parts.append(g.box_on((w + 0.04, frame_h + 0.25, t), 0, 0, -z0 + t / 2))
    pw = (w - 0.2) / max(pillows, 1)
    for i in range(pillows):
        x = -w / 2 + 0.1 + pw * (i + 0.5)
        parts.append(g.box_on((pw * 0.9, 0.1, 0.35), x, frame_h + mat, z0 + 0.3))
    p = {
        "double": double,
        "width": w,
        "length": length,
        "headboard_height": head_h,
        "footboard": foot,
        "pillows": pillows,
    }
    return g.combine(parts), p


def _bed_text(p, rng):
    size = (
        pick(rng, ["double", "wide double", "queen-size"])
        if p["double"]
        else pick(rng, ["single", "narrow single", "twin"])
    )
    head = "tall headboard" if p["headboard_height"] > 0.7 else "low headboard"
    extra = []
    if p["footboard"]:
        extra.append("a footboard")
    if p["pillows"]:
        extra.append(count(p["pillows"], "pillow"))
    else:
        extra.append("no pillows")
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(size + ' bed')} with a {head}, {' and '.join(extra)}",
                f"{article(size + ' bed')} with a mattress, a {head} and {' and '.join(extra)}",
                f"{article('bed')} ({size}) with a {head}; {', '.join(extra)}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------ lamp
def _lamp(rng):
    kind = pick(rng, ["floor", "table"])
    pole = uni(rng, 1.2, 1.7) if kind == "floor" else uni(rng, 0.25, 0.45)
    base = pick(rng, ["round", "square"])
    shade = pick(rng, ["cone", "drum", "dome"])
    sr = uni(rng, 0.16, 0.25) if kind == "floor" else uni(rng, 0.14, 0.2)
    sh = round(sr * uni(rng, 0.9, 1.3), 3)
    br = uni(rng, 0.12, 0.18)
    n = seg(rng, 10, 14)
    bt = 0.04
    pr = round(0.012 + 0.012 * pole, 3)
    parts = [
        g.cylinder(br, bt, n) if base == "round" else g.box_on((2 * br, bt, 2 * br)),
        g.cylinder(pr, pole, 6, y0=bt),
    ]
    y = bt + pole - 0.3 * sh
    if shade == "cone":
        parts.append(g.frustum(sr, sr * 0.45, sh, n, y0=y))
    elif shade == "drum":
        parts.append(g.cylinder(sr * 0.85, sh, n, y0=y))
    else:
        t = np.linspace(0, np.pi / 2, 5)
        prof = [(0.0, y)] + [(sr * np.cos(a), y + sh * 0.9 * np.sin(a)) for a in t]
        prof[-1] = (0.0, prof[-1][1])
        parts.append(g.lathe(prof, n))
    p = {"kind": kind, "pole_height": pole, "base": base, "shade": shade}
    return g.combine(parts), p


def _lamp_text(p, rng):
    noun = (
        pick(rng, ["floor lamp", "standing lamp"])
        if p["kind"] == "floor"
        else pick(rng, ["table lamp", "desk lamp", "bedside lamp"])
    )
    shade = {
        "cone": pick(rng, ["a conical shade", "a tapered shade", "a cone-shaped shade"]),
        "drum": pick(rng, ["a drum shade", "a cylindrical shade"]),
        "dome": pick(rng, ["a dome shade", "a rounded dome-shaped shade"]),
    }[p["shade"]]
    base = f"a {p['base']} base"
    tall = "tall " if p["kind"] == "floor" else pick(rng, ["small ", "short ", ""])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(tall + noun)} with {shade} and {base}",
                f"{article(noun)} on {base}, topped by {shade}",
                f"{article(tall + noun)}: thin pole, {shade}, {base}",
            ],
        ),
    )


FAMILIES = (
    Family("table", _table, _table_text, group="furniture"),
    Family("chair", _chair, _chair_text, group="furniture"),
    Family("stool", _stool, _stool_text, group="furniture"),
    Family("bench", _bench, _bench_text, group="furniture"),
    Family("shelf", _shelf, _shelf_text, group="furniture"),
    Family("bed", _bed, _bed_text, group="furniture"),
    Family("lamp", _lamp, _lamp_text, group="furniture"),
)
