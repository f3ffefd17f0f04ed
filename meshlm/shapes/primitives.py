"""Plain primitives: box, cylinder, cone, sphere, torus, pyramid, capsule.

Every primitive is one watertight solid, built standing on the ground with Y up.
"""

from __future__ import annotations

import numpy as np

from meshlm.shapes import geometry as g
from meshlm.shapes.captions import article, finish, join, pick
from meshlm.shapes.core import Family


def uni(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Uniform float in [lo, hi], rounded to 3 decimals so params print cleanly."""
    return round(float(rng.uniform(lo, hi)), 3)


def seg(rng: np.random.Generator, lo: int = 6, hi: int = 16) -> int:
    """A segment count in [lo, hi] (even numbers favoured: they look rounder), limited by the
    active :func:`~meshlm.shapes.geometry.segment_cap` (the draw is the same either way)."""
    return g.capped(int(rng.integers(lo // 2, hi // 2 + 1)) * 2)


def _box(rng):
    kind = pick(rng, ["cube", "tall", "flat", "long", "any"])
    w, h, d = uni(rng, 0.4, 1.0), uni(rng, 0.4, 1.0), uni(rng, 0.4, 1.0)
    if kind == "cube":
        h = d = w
    elif kind == "tall":
        h = uni(rng, 1.6, 2.6) * max(w, d)
    elif kind == "flat":
        h = uni(rng, 0.15, 0.3) * max(w, d)
    elif kind == "long":
        w = uni(rng, 1.8, 3.0) * max(h, d)
    return g.box_on((w, h, d)), {"width": w, "height": h, "depth": d, "kind": kind}


def _box_text(p, rng):
    k = p["kind"]
    if k == "cube":
        s = pick(rng, ["a cube", "a cube-shaped block", "a simple cube", "a square block"])
    elif k == "tall":
        s = pick(
            rng,
            [
                "a tall rectangular box",
                "a tall box standing upright",
                "a tall block, like a pillar",
                "an upright rectangular block",
            ],
        )
    elif k == "flat":
        s = pick(rng, ["a flat rectangular slab", "a thin flat box", "a flat plate-like block"])
    elif k == "long":
        s = pick(rng, ["a long rectangular box", "a long low block", "an elongated box"])
    else:
        s = pick(rng, ["a rectangular box", "a box", "a cuboid", "a rectangular block"])
    return finish(rng, s)


def _cylinder(rng):
    r, h, n = uni(rng, 0.2, 0.6), uni(rng, 0.1, 2.0), seg(rng, 6, 16)
    return g.cylinder(r, h, n), {"radius": r, "height": h, "segments": n}


def _proportion(h: float, d: float, rng) -> str:
    if h > 1.6 * d:
        return pick(rng, ["tall", "tall thin", "tall narrow"])
    if h < 0.5 * d:
        return pick(rng, ["short", "flat", "squat", "short wide"])
    return ""


def _cylinder_text(p, rng):
    n = p["segments"]
    prop = _proportion(p["height"], 2 * p["radius"], rng)
    if n <= 8:
        noun = {6: "hexagonal prism", 8: "octagonal prism"}[n]
        s = join([article(join([prop, noun])), pick(rng, ["", "(a coarse cylinder)"])])
    elif p["height"] < 0.35 * p["radius"]:
        s = pick(rng, ["a flat disc", "a thin disk", "a flat round disc, like a coin"])
    else:
        s = article(join([prop, pick(rng, ["cylinder", "cylindrical column", "round cylinder"])]))
    return finish(rng, s)


def _cone(rng):
    r, h, n = uni(rng, 0.25, 0.6), uni(rng, 0.3, 2.0), seg(rng, 6, 16)
    return g.frustum(r, 0, h, n), {"radius": r, "height": h, "segments": n}


def _cone_text(p, rng):
    prop = _proportion(p["height"], 2 * p["radius"], rng)
    noun = pick(rng, ["cone", "pointed cone", "cone standing on its base"])
    return finish(rng, article(join([prop, noun])))


def _sphere(rng):
    r, n, k = uni(rng, 0.3, 0.6), seg(rng, 8, 14), int(rng.integers(5, 9))
    squash = pick(rng, ["round", "round", "flat", "tall"])
    s = {"round": 1.0, "flat": uni(rng, 0.5, 0.7), "tall": uni(rng, 1.4, 1.8)}[squash]
    part = g.sphere(r, n, k, squash=s)
    return part, {"radius": r, "segments": n, "rings": k, "shape": squash, "squash": s}


def _sphere_text(p, rng):
    if p["shape"] == "flat":
        s = pick(rng, ["a flattened sphere", "a squashed ball", "an oblate ellipsoid"])
    elif p["shape"] == "tall":
        s = pick(rng, ["an egg-like stretched sphere", "a tall ellipsoid", "an elongated ball"])
    else:
        s = pick(rng, ["a sphere", "a ball", "a round ball", "a simple sphere", "a faceted sphere"])
    return finish(rng, s)


def _torus(rng):
    big, small = uni(rng, 0.5, 0.8), uni(rng, 0.12, 0.3)
    n, m = seg(rng, 10, 16), seg(rng, 6, 8)
    t = np.linspace(0, 2 * np.pi, m, endpoint=False)
    prof = np.stack([big + small * np.cos(t), small * np.sin(t)], 1)
    return g.lathe(prof, n, loop=True), {
        "major_radius": big,
        "minor_radius": small,
        "segments": n,
        "sides": m,
    }


def _torus_text(p, rng):
    thick = p["minor_radius"] / p["major_radius"]
    if thick > 0.38:
        s = pick(rng, ["a thick torus", "a fat donut shape", "a chunky ring torus"])
    elif thick < 0.22:
        s = pick(rng, ["a thin torus", "a slender ring", "a thin donut-shaped ring"])
    else:
        s = pick(rng, ["a torus", "a donut shape", "a ring-shaped torus lying flat"])
    return finish(rng, s)


def _pyramid(rng):
    n = int(pick(rng, ["3", "4", "4", "4", "5", "6"]))
    r, h = uni(rng, 0.4, 0.7), uni(rng, 0.4, 1.4)
    part = g.frustum(r, 0, h, n, phase=np.pi / 4 if n == 4 else np.pi / 2)
    return part, {"sides": n, "radius": r, "height": h}


def _pyramid_text(p, rng):
    base = {3: "triangular", 4: "square", 5: "pentagonal", 6: "hexagonal"}[p["sides"]]
    prop = _proportion(p["height"], 2 * p["radius"], rng)
    s = pick(
        rng,
        [
            f"{article(join([prop, base, 'pyramid']))}",
            f"{article(join([prop, 'pyramid']))} with a {base} base",
            f"a pyramid with {p['sides']} sides" if p["sides"] != 4 else "a square pyramid",
        ],
    )
    return finish(rng, s)


def _capsule(rng):
    r, length, n = uni(rng, 0.15, 0.4), uni(rng, 0.2, 1.5), seg(rng, 8, 12)
    k = 3
    t = np.linspace(0, np.pi / 2, k + 1)
    lower = [(r * np.cos(a), r - r * np.sin(a)) for a in t[::-1]]
    upper = [(r * np.cos(a), r + length + r * np.sin(a)) for a in t]
    prof = lower + upper
    prof[0] = (0.0, prof[0][1])
    prof[-1] = (0.0, prof[-1][1])
    lying = bool(rng.random() < 0.3)
    part = g.lathe(prof, n)
    if lying:
        part = g.rotate(part, "z", np.pi / 2)
    return part, {"radius": r, "length": length, "segments": n, "lying": lying}


def _capsule_text(p, rng):
    long = p["length"] > 4 * p["radius"]
    noun = pick(rng, ["capsule", "pill shape", "rounded rod", "capsule shape"])
    adj = pick(rng, ["long", "elongated"]) if long else pick(rng, ["short", "stubby", ""])
    where = (
        pick(rng, ["lying on its side", "lying down"])
        if p["lying"]
        else pick(rng, ["standing upright", "", "upright"])
    )
    return finish(rng, join([article(join([adj, noun])), where]))


FAMILIES = (
    Family("box", _box, _box_text, solid=True, group="primitive"),
    Family("cylinder", _cylinder, _cylinder_text, solid=True, group="primitive"),
    Family("cone", _cone, _cone_text, solid=True, group="primitive"),
    Family("sphere", _sphere, _sphere_text, solid=True, group="primitive"),
    Family("torus", _torus, _torus_text, solid=True, group="primitive"),
    Family("pyramid", _pyramid, _pyramid_text, solid=True, group="primitive"),
    Family("capsule", _capsule, _capsule_text, solid=True, group="primitive"),
)
