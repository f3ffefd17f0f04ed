"""Tools, vehicles and small things: sword, hammer, axe, rocket, ring, car, dumbbell.

Tools stand upright on the end of their handle (Y up), as LLaMA-Mesh draws them. All are
assemblies of closed parts.
"""

from __future__ import annotations

import numpy as np

from meshlm.shapes import geometry as g
from meshlm.shapes.captions import article, count, finish, join, pick
from meshlm.shapes.core import Family
from meshlm.shapes.primitives import seg, uni


# ----------------------------------------------------------------------------------------- sword
def _sword(rng):
    blade, bw = uni(rng, 0.9, 1.4), uni(rng, 0.08, 0.14)
    grip = uni(rng, 0.2, 0.3)
    guard = pick(rng, ["straight", "straight", "short"])
    tip = pick(rng, ["pointed", "pointed", "rounded"])
    t = 0.035 * (blade + grip) + 0.01
    gy = grip + 0.05
    tip_h = bw * (1.5 if tip == "pointed" else 0.6)
    outline = [(-bw / 2, gy), (bw / 2, gy), (bw / 2, gy + blade - tip_h)]
    if tip == "rounded":
        outline += [(bw * 0.3, gy + blade - tip_h * 0.3), (-bw * 0.3, gy + blade - tip_h * 0.3)]
    else:
        outline += [(0.0, gy + blade)]
    outline += [(-bw / 2, gy + blade - tip_h)]
    gw = bw * (3.5 if guard == "straight" else 2.2)
    parts = [
        g.extrude(outline, t),
        g.box_on((gw, 0.05, t * 2.2), 0, grip, 0),
        g.cylinder(0.03, grip, 6, y0=0.04),
        g.sphere(0.05, 6, 4, (0, 0.045, 0)),
    ]
    return g.combine(parts), {"blade_length": blade, "blade_width": bw, "guard": guard, "tip": tip}


def _sword_text(p, rng):
    long = "long" if p["blade_length"] > 1.2 else ("short" if p["blade_length"] < 1.05 else "")
    wide = "broad" if p["blade_width"] > 0.12 else ""
    guard = "a wide crossguard" if p["guard"] == "straight" else "a short guard"
    tip = "a pointed tip" if p["tip"] == "pointed" else "a rounded tip"
    noun = pick(rng, ["sword", "longsword" if long == "long" else "sword", "blade"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([long, wide, noun]))} with {guard} and {tip}",
                f"{article(join([long, noun]))} standing upright: {tip}, {guard}, round pommel",
                f"{article(join([wide, 'medieval', noun]))} with {guard}",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- hammer
def _hammer(rng):
    handle = uni(rng, 0.6, 1.0)
    head = pick(rng, ["claw", "sledge", "mallet"])
    hl = uni(rng, 0.28, 0.4) if head != "sledge" else uni(rng, 0.4, 0.55)
    hs = round(0.06 + 0.06 * hl, 3) * (1.5 if head != "claw" else 1.0)
    parts = [g.cylinder(0.03, handle, 6)]
    y = handle - hs * 0.5
    if head == "mallet":
        parts.append(g.rotate(g.cylinder(hs, hl, 10, y0=-hl / 2), "z", np.pi / 2))
        parts[-1] = g.move(parts[-1], (0, y + hs * 0.5, 0))
    elif head == "sledge":
        parts.append(g.box_on((hl, hs * 1.2, hs * 1.2), 0, y, 0))
    else:
        parts.append(g.box_on((hl * 0.6, hs, hs), 0, y, 0))
        face = g.rotate(g.cylinder(hs * 0.55, hl * 0.2, 8), "z", -np.pi / 2)
        parts.append(g.move(face, (hl * 0.28, y + hs * 0.5, 0)))
        claw = [
            (-hl * 0.2, y + hs * 0.5, 0),
            (-hl * 0.4, y + hs * 0.4, 0),
            (-hl * 0.52, y + hs * 0.05, 0),
            (-hl * 0.58, y - hs * 0.5, 0),
        ]
        parts.append(g.tube(claw, hs * 0.42, 4))
    return g.combine(parts), {"handle_length": handle, "head": head, "head_length": hl}


def _hammer_text(p, rng):
    head = {
        "claw": pick(rng, ["a claw hammer", "a carpenter's claw hammer"]),
        "sledge": pick(rng, ["a sledgehammer", "a heavy sledge hammer"]),
        "mallet": pick(rng, ["a wooden mallet", "a mallet with a round head"]),
    }[p["head"]]
    handle = (
        "a long handle"
        if p["handle_length"] > 0.85
        else ("a short handle" if p["handle_length"] < 0.72 else "a wooden handle")
    )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{head} with {handle}",
                f"{head}, standing on {handle}",
                f"{head}: {handle}, head on top",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------- axe
def _axe(rng):
    handle = uni(rng, 0.7, 1.1)
    double = bool(rng.random() < 0.3)
    bh, bl = uni(rng, 0.18, 0.3), uni(rng, 0.2, 0.3)
    t = 0.045
    y = handle - bh * 0.9
    parts = [g.cylinder(0.03, handle, 6)]
    sides = (1, -1) if double else (1,)
    for s in sides:
        x0 = -s * 0.02  # inner edge hidden in the collar, distinct for each blade
        poly = [
            (x0, y + bh * 0.3),
            (s * bl, y - bh * 0.2),
            (s * bl * 1.05, y + bh * 0.5),
            (s * bl, y + bh * 1.2),
            (x0, y + bh * 0.7),
        ]
        parts.append(g.extrude(poly, t))
    parts.append(g.box_on((0.09, bh * 0.6, 0.08), 0, y + bh * 0.2, 0))
    return g.combine(parts), {"handle_length": handle, "double": double, "blade_length": bl}


def _axe_text(p, rng):
    kind = (
        pick(rng, ["double-bladed axe", "double-bit axe", "battle axe with two blades"])
        if p["double"]
        else pick(
            rng,
            [
                "axe",
                "single-bladed axe",
                "wood axe",
                "hatchet" if p["handle_length"] < 0.8 else "axe",
            ],
        )
    )
    handle = (
        "a long handle"
        if p["handle_length"] > 0.95
        else "a short handle"
        if p["handle_length"] < 0.8
        else "a wooden handle"
    )
    return finish(
        rng,
        pick(
            rng, [f"{article(kind)} with {handle}", f"{article(kind)} standing upright on {handle}"]
        ),
    )


# ---------------------------------------------------------------------------------------- rocket
def _rocket(rng):
    r, body = uni(rng, 0.15, 0.25), uni(rng, 0.8, 1.6)
    nose = round(r * uni(rng, 1.5, 3.0), 3)
    fins = int(pick(rng, ["3", "4", "4"]))
    n = seg(rng, 8, 12)
    base = 0.15
    prof = [(0.0, 0.0), (r * 0.6, 0.0), (r * 0.8, base), (r, base + 0.02), (r, base + body)]
    a = np.linspace(0, np.pi / 2, 4)[1:]
    prof += [(r * np.cos(x), base + body + nose * np.sin(x)) for x in a[:-1]]
    prof.append((0.0, base + body + nose))
    parts = [g.lathe(prof, n)]
    fh, fw, t = body * 0.35, r * 1.1, 0.035 * (body + nose) + 0.01
    for k in range(fins):
        outline = [(r * 0.8, 0.0), (r + fw, 0.0), (r + fw * 0.4, fh), (r * 0.8, fh + 0.1)]
        fin = g.extrude(outline, t)
        parts.append(g.rotate(fin, "y", k * 2 * np.pi / fins))
    return g.combine(parts), {"fins": fins, "body_length": body, "nose_length": nose, "radius": r}


def _rocket_text(p, rng):
    fins = count(p["fins"], "fin")
    long = p["nose_length"] > 2.3 * p["radius"]
    nose = "a long pointed nose cone" if long else "a short nose cone"
    tall = "tall slender" if p["body_length"] > 6 * p["radius"] else ""
    noun = pick(rng, ["rocket", "space rocket", "toy rocket"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, noun]))} with {fins} and {nose}",
                f"{article(join([tall, noun]))}: {nose}, {fins} at the base",
                f"{article(noun)} standing on {fins}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------ ring
def _ring(rng):
    r, w = uni(rng, 0.4, 0.5), uni(rng, 0.08, 0.2)
    band = pick(rng, ["round", "flat"])
    gem = bool(rng.random() < 0.6)
    n = seg(rng, 12, 16)
    t = 0.08
    if band == "flat":
        prof = [(r, -w / 2), (r + t, -w / 2), (r + t, w / 2), (r, w / 2)]
    else:
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        prof = [(r + t / 2 + t * 0.6 * np.cos(x), w * 0.5 * np.sin(x)) for x in a]
    part = g.rotate(g.lathe(prof, n, loop=True, phase=np.pi / 2), "x", np.pi / 2)
    parts = [part]
    if gem:
        top = r + t
        gr = uni(rng, 0.1, 0.16)
        parts.append(g.cylinder(gr * 0.8, 0.05, 6, y0=top - 0.02))
        parts.append(
            g.lathe(
                [
                    (0, top + 0.02),
                    (gr, top + 0.07),
                    (gr * 0.6, top + 0.07 + gr * 0.6),
                    (0, top + 0.07 + gr * 0.6),
                ],
                8,
            )
        )
    return g.combine(parts), {"band": band, "gem": gem, "band_width": w}


def _ring_text(p, rng):
    band = "a flat band" if p["band"] == "flat" else "a rounded band"
    wide = "wide" if p["band_width"] > 0.16 else ("thin" if p["band_width"] < 0.11 else "")
    if p["gem"]:
        return finish(
            rng,
            pick(
                rng,
                [
                    f"{article(join([wide, 'ring']))} with a gemstone on top",
                    f"an engagement ring: {band} set with one gem",
                    f"{article(join([wide, 'gold ring']))} with a jewel",
                ],
            ),
        )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([wide, 'plain ring']))} with {band}",
                f"a simple wedding band, {band}, no stone",
                f"{article(join([wide, 'finger ring']))} standing on its edge",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------- car
def _car(rng):
    kind = pick(rng, ["sedan", "pickup", "van"])
    length, w = uni(rng, 1.6, 2.2), uni(rng, 0.75, 0.9)
    wr = uni(rng, 0.14, 0.2)
    bh = uni(rng, 0.25, 0.35)
    y0 = wr * 0.9
    parts = [g.box_on((length, bh, w), 0, y0, 0)]
    top = y0 + bh
    ch = uni(rng, 0.25, 0.35)
    if kind == "sedan":
        c0, c1 = -length * 0.3, length * 0.2
        cab = [(c0, top - 0.01), (c1, top - 0.01), (c1 - 0.15, top + ch), (c0 + 0.2, top + ch)]
    elif kind == "pickup":
        c0, c1 = 0.0, length * 0.35
        cab = [(c0, top - 0.01), (c1, top - 0.01), (c1 - 0.12, top + ch), (c0, top + ch)]
    else:
        c0, c1 = -length / 2, length * 0.35
        cab = [(c0, top - 0.01), (c1, top - 0.01), (c1 - 0.15, top + ch), (c0, top + ch)]
    parts.append(g.extrude(cab, w * 0.9))
    for x in (-length * 0.32, length * 0.32):
        for z in (-w / 2, w / 2):
            wheel = g.rotate(g.cylinder(wr, 0.12, 10, y0=-0.06), "x", np.pi / 2)
            parts.append(g.move(wheel, (x, wr, z)))
    return g.combine(parts), {"kind": kind, "length": length, "wheel_radius": wr}


def _car_text(p, rng):
    noun = {
        "sedan": pick(rng, ["car", "sedan", "small car"]),
        "pickup": pick(rng, ["pickup truck", "pickup with an open bed", "small truck"]),
        "van": pick(rng, ["van", "minivan", "delivery van"]),
    }[p["kind"]]
    wheels = pick(
        rng,
        [
            "four wheels",
            "4 round wheels",
            "four big wheels" if p["wheel_radius"] > 0.18 else "four small wheels",
        ],
    )
    long = "long" if p["length"] > 2.0 else ""
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([long, noun]))} with {wheels}",
                f"{article(join(['toy', noun]))} on {wheels}",
                f"{article(join([long, 'boxy', noun]))}: body, cabin, {wheels}",
            ],
        ),
    )


# -------------------------------------------------------------------------------------- dumbbell
def _dumbbell(rng):
    bar = uni(rng, 0.5, 0.8)
    r = uni(rng, 0.12, 0.22)
    plates = int(pick(rng, ["1", "2", "3"]))
    hexagonal = bool(rng.random() < 0.4)
    n = 6 if hexagonal else seg(rng, 10, 14)
    pt = 0.06
    parts = [g.cylinder(0.035, bar, 6, y0=-bar / 2)]
    for s in (-1, 1):
        for k in range(plates):
            rr = r * (1 - 0.15 * k)
            y = s * (bar / 2 - 0.1 - k * pt) - (pt if s > 0 else 0)
            parts.append(g.cylinder(rr, pt * 0.98, n, y0=y, phase=np.pi / 6 if hexagonal else 0))
    part = g.rotate(g.combine(parts), "z", np.pi / 2)
    return part, {"plates": plates, "hexagonal": hexagonal, "bar_length": bar}


def _dumbbell_text(p, rng):
    plates = count(p["plates"], "weight plate")
    shape = "hexagonal" if p["hexagonal"] else "round"
    return finish(
        rng,
        pick(
            rng,
            [
                f"a dumbbell lying on its side with {plates} on each end",
                f"{article(shape + ' dumbbell')} with {plates} per side",
                f"{article('dumbbell')}: a bar with {shape} weights, {plates} at each end",
            ],
        ),
    )


FAMILIES = (
    Family("sword", _sword, _sword_text, group="tool"),
    Family("hammer", _hammer, _hammer_text, group="tool"),
    Family("axe", _axe, _axe_text, group="tool"),
    Family("rocket", _rocket, _rocket_text, group="vehicle"),
    Family("car", _car, _car_text, group="vehicle"),
    Family("ring", _ring, _ring_text, group="object"),
    Family("dumbbell", _dumbbell, _dumbbell_text, group="object"),
)
