"""Household objects turned on a lathe: mug, cup, bottle, vase, bowl, wine glass, barrel, candle.

Vessels are one revolved profile that climbs the outside and comes back down the inside, so the
body is a single watertight solid with a real cavity. Mug (handle), barrel (hoops) and candle
(wick, flame, holder) add closed parts that overlap the body: assemblies of closed parts.
"""

from __future__ import annotations

import numpy as np

from meshlm.shapes import geometry as g
from meshlm.shapes.captions import article, finish, join, pick
from meshlm.shapes.core import Family
from meshlm.shapes.primitives import seg, uni


def _vessel(outer, inner_r, bottom):
    """Profile for a hollow vessel: ``outer`` (r, y) points bottom to rim, then the inside
    straight down at radius ``inner_r`` (list matching the rim and below) to the floor."""
    return [(0.0, 0.0)] + outer + inner_r + [(0.0, bottom)]


# ------------------------------------------------------------------------------------------- mug
def _mug(rng):
    r, h = uni(rng, 0.3, 0.45), uni(rng, 0.6, 1.1)
    t, n = round(0.05 * h + 0.01, 3), seg(rng, 10, 16)
    taper = bool(rng.random() < 0.3)
    rb = round(r * 0.8, 3) if taper else r
    prof = _vessel([(rb, 0.0), (r, h)], [(r - t, h), (rb - t, t * 1.5)], t * 1.5)
    hr = round(min(h * 0.3, 0.25), 3)
    ym = h * 0.55
    a = np.linspace(-np.pi / 2, np.pi / 2, 6)
    path = (
        [(r - t, ym - hr, 0.0)]
        + [(r + 0.05 + hr * 0.8 * np.cos(x), ym + hr * np.sin(x), 0.0) for x in a]
        + [(r - t, ym + hr, 0.0)]
    )
    handle = g.tube(path, 0.025 + 0.02 * h, 4)
    p = {"radius": r, "height": h, "segments": n, "tapered": taper}
    return g.combine([g.lathe(prof, n), handle]), p


def _mug_text(p, rng):
    tall = (
        "tall"
        if p["height"] > 2.4 * p["radius"]
        else ("short" if p["height"] < 1.7 * p["radius"] else "")
    )
    noun = pick(rng, ["mug", "coffee mug", "coffee cup", "tea mug"])
    shape = "tapered" if p["tapered"] else pick(rng, ["cylindrical", "straight-sided", ""])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, shape, noun]))} with a handle",
                f"{article(join([tall, noun]))} with a loop handle on the side",
                f"{article(join([shape, noun]))}, hollow, with one handle",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------- cup
def _cup(rng):
    r, h = uni(rng, 0.25, 0.4), uni(rng, 0.4, 1.1)
    flare = uni(rng, 1.0, 1.4)
    t, n = round(0.04 * h + 0.01, 3), seg(rng, 10, 16)
    rt = round(r * flare, 3)
    prof = _vessel([(r, 0.0), (rt, h)], [(rt - t, h), (r - t, t * 2)], t * 2)
    return g.lathe(prof, n), {"radius": r, "top_radius": rt, "height": h, "segments": n}


def _cup_text(p, rng):
    tall = (
        "tall"
        if p["height"] > 2.5 * p["radius"]
        else ("short" if p["height"] < 1.5 * p["radius"] else "")
    )
    noun = pick(rng, ["drinking glass", "tumbler", "cup", "glass"])
    shape = "flared" if p["top_radius"] > 1.2 * p["radius"] else "straight"
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, shape, noun]))} without a handle",
                f"{article(join([tall, noun]))} with {shape} sides",
                f"{article(join([tall, 'empty', noun]))}, open at the top",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- bottle
def _bottle(rng):
    r, body = uni(rng, 0.2, 0.35), uni(rng, 0.6, 1.2)
    neck_r = round(r * uni(rng, 0.3, 0.45), 3)
    neck = pick(rng, ["long", "short"])
    nh = round(body * (uni(rng, 0.4, 0.6) if neck == "long" else uni(rng, 0.12, 0.2)), 3)
    sh = round(r * uni(rng, 0.6, 1.2), 3)
    square = bool(rng.random() < 0.2)
    cap = bool(rng.random() < 0.5)
    n = 4 if square else seg(rng, 8, 14)
    rr = r * (1.3 if square else 1.0)
    prof = [(0.0, 0.0), (rr, 0.0), (rr, body)]
    for a in np.linspace(0, np.pi / 2, 4)[1:]:
        prof.append((neck_r + (rr - neck_r) * np.cos(a), body + sh * np.sin(a)))
    top = body + sh + nh
    prof += [(neck_r, top)]
    if cap:
        prof += [(neck_r * 1.25, top), (neck_r * 1.25, top + nh * 0.3 + 0.03)]
    prof.append((0.0, prof[-1][1]))
    part = g.lathe(prof, n, phase=np.pi / 4 if square else 0.0)
    p = {"radius": r, "body_height": body, "neck": neck, "square": square, "cap": cap}
    return part, p


def _bottle_text(p, rng):
    neck = (
        pick(rng, ["a long neck", "a long narrow neck"])
        if p["neck"] == "long"
        else pick(rng, ["a short neck", "a stubby neck"])
    )
    body = "square" if p["square"] else pick(rng, ["round", "cylindrical"])
    tall = "tall" if p["body_height"] > 4 * p["radius"] else ""
    cap = pick(rng, ["a cap", "a screw cap", "a lid"]) if p["cap"] else "no cap"
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, body, 'bottle']))} with {neck} and {cap}",
                f"{article(join([tall, 'bottle']))}: {body} body, {neck}, {cap}",
                f"{article(join([body, 'glass bottle']))} with {neck}, {cap}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------ vase
def _vase(rng):
    h, r = uni(rng, 0.8, 1.6), uni(rng, 0.25, 0.45)
    style = pick(rng, ["bulb", "urn", "flared"])
    k, n = 7, seg(rng, 10, 16)
    y = np.linspace(0, h, k)
    s = y / h
    if style == "bulb":
        rad = r * (0.55 + 0.6 * np.sin(np.pi * s * 0.9) - 0.1 * s)
        rad[-1] = rad[-2] * 1.1
    elif style == "urn":
        rad = r * (0.6 + 0.45 * np.sin(np.pi * s) + 0.35 * s**4)
    else:
        rad = r * (0.5 + 0.1 * np.sin(2 * np.pi * s) + 0.5 * s**2)
    t = 0.03 * h + 0.01
    outer = list(zip(rad.tolist(), y.tolist(), strict=True))
    inner = [(max(rad[i] - t, 0.02), y[i]) for i in range(k - 1, 0, -1)]
    prof = _vessel(outer, inner[:-1] + [(max(rad[1] - t, 0.02), y[1] * 0.5 + t)], t * 2)
    prof[1] = (rad[0], 0.0)
    return g.lathe(prof, n), {"height": h, "radius": r, "style": style, "segments": n}


def _vase_text(p, rng):
    tall = (
        "tall"
        if p["height"] > 3.2 * p["radius"]
        else ("short" if p["height"] < 2.4 * p["radius"] else "")
    )
    shape = {
        "bulb": pick(rng, ["with a round bulging body", "with a bulbous body and narrow top"]),
        "urn": pick(rng, ["shaped like an urn", "with a wide belly and a flared lip"]),
        "flared": pick(rng, ["that flares out toward the top", "with a trumpet-like flare"]),
    }[p["style"]]
    noun = pick(rng, ["vase", "flower vase", "ceramic vase"])
    return finish(rng, f"{article(join([tall, noun]))} {shape}")


# ------------------------------------------------------------------------------------------ bowl
def _bowl(rng):
    r, h = uni(rng, 0.4, 0.6), uni(rng, 0.15, 0.4)
    foot = bool(rng.random() < 0.5)
    t, n = 0.03 + 0.03 * r, seg(rng, 12, 16)
    fr, fh = r * 0.45, (0.04 if foot else 0.0)
    a = np.linspace(0, np.pi / 2, 5)
    outer = [(fr, 0.0)] + ([(fr, fh)] if foot else [])
    outer += [(fr + (r - fr) * np.sin(x), fh + (h - fh) * (1 - np.cos(x))) for x in a[1:]]
    inner = [((r - t) * np.sin(x), fh + t + (h - fh - t) * (1 - np.cos(x))) for x in a[:0:-1]]
    prof = [(0.0, 0.0)] + outer + inner + [(0.0, fh + t)]
    return g.lathe(prof, n), {"radius": r, "height": h, "foot": foot, "segments": n}


def _bowl_text(p, rng):
    deep = (
        "deep"
        if p["height"] > 0.55 * p["radius"]
        else ("shallow" if p["height"] < 0.4 * p["radius"] else "")
    )
    noun = pick(rng, ["bowl", "round bowl", "salad bowl", "soup bowl"])
    foot = (
        pick(rng, ["on a small foot ring", "with a foot"])
        if p["foot"]
        else pick(rng, ["with a flat bottom", ""])
    )
    return finish(rng, join([article(join([deep, noun])), foot]))


# ------------------------------------------------------------------------------------ wine glass
def _wine_glass(rng):
    stem = uni(rng, 0.3, 0.6)
    br, bh = uni(rng, 0.2, 0.3), uni(rng, 0.3, 0.5)
    base = uni(rng, 0.15, 0.25)
    n = seg(rng, 10, 14)
    sr, t = 0.03, 0.025
    y0 = 0.04 + stem
    a = np.linspace(0.15, np.pi / 2, 4)
    outer = [(base, 0.0), (base * 0.8, 0.04), (sr, 0.06), (sr, y0)]
    outer += [(br * np.sin(x), y0 + bh * (1 - np.cos(x))) for x in a]
    inner = [((br - t) * np.sin(x), y0 + t + (bh - t) * (1 - np.cos(x))) for x in a[::-1]]
    prof = [(0.0, 0.0)] + outer + inner + [(0.0, y0 + t)]
    return g.lathe(prof, n), {
        "stem_height": stem,
        "bowl_radius": br,
        "bowl_height": bh,
        "segments": n,
    }


def _wine_glass_text(p, rng):
    stem = "long" if p["stem_height"] > 0.45 else "short"
    noun = pick(rng, ["wine glass", "stemmed glass", "goblet"])
    bowl = "wide" if p["bowl_radius"] > 0.26 else pick(rng, ["narrow", "slim"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(noun)} with a {stem} stem and a {bowl} bowl",
                f"{article(join([stem + '-stemmed', noun]))} on a round foot",
                f"{article(join([bowl, noun]))}, {stem} stem, flat round base",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- barrel
def _barrel(rng):
    h, r = uni(rng, 0.8, 1.3), uni(rng, 0.3, 0.45)
    bulge, hoops, n = uni(rng, 1.08, 1.25), int(pick(rng, ["2", "3", "4"])), seg(rng, 10, 14)
    y = np.linspace(0, h, 7)
    rad = r + r * (bulge - 1) * np.sin(np.pi * y / h)
    prof = [(0.0, 0.0)] + list(zip(rad.tolist(), y.tolist(), strict=True)) + [(0.0, h)]
    parts = [g.lathe(prof, n)]
    hy = np.linspace(0.1 * h, 0.9 * h, hoops)
    for yy in hy:
        rr = r + r * (bulge - 1) * np.sin(np.pi * yy / h)
        parts.append(g.cylinder(rr + 0.02, 0.05 * h, n, y0=yy - 0.025 * h))
    return g.combine(parts), {"height": h, "radius": r, "hoops": hoops, "bulge": bulge}


def _barrel_text(p, rng):
    noun = pick(rng, ["barrel", "wooden barrel", "cask"])
    hoops = f"{['', 'one', 'two', 'three', 'four'][p['hoops']]} metal hoops"
    shape = "bulging" if p["bulge"] > 1.17 else ""
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([shape, noun]))} with {hoops}",
                f"{article(join([shape, noun]))} bound by {hoops}",
                f"{article(noun)} standing upright, {hoops} around it",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- candle
def _candle(rng):
    r, h = uni(rng, 0.08, 0.16), uni(rng, 0.3, 0.9)
    holder = bool(rng.random() < 0.6)
    n = seg(rng, 8, 12)
    y0 = 0.06 if holder else 0.0
    parts = [g.cylinder(r, h, n, y0=y0), g.cylinder(0.012 + 0.01 * r, 0.05, 4, y0=y0 + h - 0.01)]
    fy = y0 + h + 0.03
    flame = [(0.0, fy), (0.04, fy + 0.03), (0.045, fy + 0.06), (0.025, fy + 0.1), (0.0, fy + 0.14)]
    parts.append(g.lathe(flame, 6))
    if holder:
        parts.append(g.cylinder(r * 2.2, 0.06, n))
    return g.combine(parts), {"radius": r, "height": h, "holder": holder, "lit": True}


def _candle_text(p, rng):
    tall = (
        "tall thin"
        if p["height"] > 5 * p["radius"]
        else ("short thick" if p["height"] < 3 * p["radius"] else "")
    )
    noun = pick(rng, ["candle", "wax candle", "pillar candle"])
    hold = pick(rng, ["on a round dish", "in a flat holder"]) if p["holder"] else ""
    return finish(
        rng,
        join(
            [
                article(join([tall, "lit", noun])),
                hold,
                pick(rng, ["with a flame", "with a small flame on the wick", ""]),
            ]
        ),
    )


FAMILIES = (
    Family("mug", _mug, _mug_text, group="household"),
    Family("cup", _cup, _cup_text, solid=True, group="household"),
    Family("bottle", _bottle, _bottle_text, solid=True, group="household"),
    Family("vase", _vase, _vase_text, solid=True, group="household"),
    Family("bowl", _bowl, _bowl_text, solid=True, group="household"),
    Family("wine_glass", _wine_glass, _wine_glass_text, solid=True, group="household"),
    Family("barrel", _barrel, _barrel_text, group="household"),
    Family("candle", _candle, _candle_text, group="household"),
)
