"""Buildings and nature: house, tower, arch, stairs, pine tree, tree, mushroom, cactus, snowman.

Arch, stairs, pine tree and mushroom are single watertight solids (an extruded outline or one
lathe profile). The rest are assemblies of closed parts that overlap.
"""

from __future__ import annotations

import numpy as np

from meshlm.shapes import geometry as g
from meshlm.shapes.captions import article, count, finish, hyphen, join, number, pick
from meshlm.shapes.core import Family
from meshlm.shapes.primitives import seg, uni


# ----------------------------------------------------------------------------------------- house
def _house(rng):
    w, d = uni(rng, 1.0, 1.6), uni(rng, 0.8, 1.2)
    floors = int(pick(rng, ["1", "1", "2"]))
    wall = round(floors * uni(rng, 0.55, 0.7), 3)
    roof = pick(rng, ["gabled", "gabled", "hipped", "flat"])
    rh = uni(rng, 0.35, 0.6)
    chimney = bool(roof != "flat" and rng.random() < 0.5)
    windows = int(rng.integers(1, 3)) * floors
    parts = [g.box_on((w, wall, d))]
    if roof == "gabled":
        o = 0.08
        prism = g.extrude(
            [(-w / 2 - o, wall - 0.02), (w / 2 + o, wall - 0.02), (0, wall + rh)], d + 2 * o
        )
        parts.append(prism)
    elif roof == "hipped":
        unit = g.frustum(np.sqrt(0.5), 0, 1.0, 4, phase=np.pi / 4)  # unit square base
        parts.append(g.move(g.scale(unit, (w + 0.16, rh, d + 0.16)), (0, wall - 0.02, 0)))
    else:
        parts.append(g.box_on((w + 0.08, 0.06, d + 0.08), 0, wall, 0))
    if chimney:
        parts.append(g.box_on((0.14, rh + 0.1, 0.14), w * 0.28, wall + rh * 0.2, -d * 0.15))
    z = d / 2 + 0.02
    parts.append(g.box(((0.22, 0.42, 0.06)), (0 if windows % 2 else -w * 0.2, 0.21, z)))
    per_floor = windows // floors
    for f in range(floors):
        y = f * wall / floors + wall / floors * 0.55
        xs = np.linspace(-w / 2, w / 2, per_floor + 2)[1:-1] if f or per_floor > 1 else [w * 0.25]
        if f == 0 and per_floor == 1:
            xs = [w * 0.25]
        for x in xs:
            parts.append(g.box((0.2, 0.18, 0.06), (x, y, z)))
    p = {"floors": floors, "roof": roof, "chimney": chimney, "windows": windows, "width": w}
    return g.combine(parts), p


def _house_text(p, rng):
    roof = {
        "gabled": pick(rng, ["a pitched roof", "a gabled roof", "a triangular roof"]),
        "hipped": pick(rng, ["a hipped roof", "a pyramid-shaped roof"]),
        "flat": pick(rng, ["a flat roof", "a flat top"]),
    }[p["roof"]]
    storey = (
        pick(rng, ["one-story", "single-storey", "small"])
        if p["floors"] == 1
        else pick(rng, ["two-story", "two-storey", "tall"])
    )
    extra = [roof, count(p["windows"], "window")]
    if p["chimney"]:
        extra.append("a chimney")
    noun = pick(rng, ["house", "house", "cottage", "home"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([storey, noun]))} with {', '.join(extra[:-1])} and {extra[-1]}",
                f"{article(join([storey, noun]))}: {', '.join(extra)}, a front door",
                f"{article(join([storey, 'low poly', noun]))} with a door, {' and '.join(extra)}",
            ],
        ),
    )


# ----------------------------------------------------------------------------------------- tower
def _tower(rng):
    square = bool(rng.random() < 0.35)
    n = 4 if square else seg(rng, 8, 12)
    ph = np.pi / 4 if square else 0.0
    r, h = uni(rng, 0.25, 0.45), uni(rng, 1.6, 3.0)
    top = pick(rng, ["cone", "battlements"])
    parts = [g.cylinder(r, h, n, phase=ph)]
    merlons = 0
    if top == "cone":
        parts.append(g.frustum(r * 1.2, 0, uni(rng, 0.6, 1.1), n, y0=h - 0.02, phase=ph))
    else:
        rr = r * 1.15
        parts.append(g.cylinder(rr, 0.15, n, y0=h - 0.1, phase=ph))
        merlons = int(rng.integers(3, 5)) * 2 if not square else 8
        a = np.arange(merlons) * 2 * np.pi / merlons
        if square:
            pts = [
                (sx * rr * 0.6, sz * rr * 0.6) for sx in (-1, 0, 1) for sz in (-1, 0, 1) if sx or sz
            ]
        else:
            pts = [(rr * 0.82 * np.cos(x), rr * 0.82 * np.sin(x)) for x in a]
        parts += [g.box_on((0.14, 0.16, 0.14), x, h + 0.05, z) for x, z in pts]
    return g.combine(parts), {
        "square": square,
        "radius": r,
        "height": h,
        "top": top,
        "merlons": merlons,
    }


def _tower_text(p, rng):
    body = "square" if p["square"] else pick(rng, ["round", "cylindrical"])
    tall = "tall" if p["height"] > 5 * p["radius"] else ""
    noun = pick(rng, ["tower", "castle tower", "watchtower"])
    if p["top"] == "cone":
        top = pick(rng, ["a conical roof", "a pointed cone roof", "a spire roof"])
    else:
        top = pick(
            rng,
            [
                f"battlements ({number(p['merlons'])} merlons)",
                "crenellated battlements",
                "a crenellated top",
            ],
        )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([tall, body, noun]))} with {top}",
                f"{article(join([tall, noun]))}: {body} body topped by {top}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------ arch
def _arch(rng):
    w, h = uni(rng, 1.0, 1.6), uni(rng, 1.0, 1.8)
    style = pick(rng, ["round", "pointed"])
    ow = round(w * uni(rng, 0.45, 0.65), 3)
    d = uni(rng, 0.2, 0.45)
    r = ow / 2
    spring = round(h * uni(rng, 0.35, 0.5), 3)
    k = 7
    if style == "round":
        a = np.linspace(0, np.pi, k)
        curve = [(r * np.cos(x), spring + r * np.sin(x)) for x in a]
    else:  # two arcs of radius ow meeting in a point
        a = np.linspace(0, np.pi / 3, k // 2 + 1)
        right = [(-r + ow * np.cos(x), spring + ow * np.sin(x)) for x in a]
        curve = right + [(-x, y) for x, y in right[-2::-1]]
    top = max(y for _, y in curve)
    hh = max(h, top + 0.12 * h)
    # `curve` runs right to left over the opening; walk it left to right between the jambs
    poly = (
        [(-w / 2, 0), (-r, 0), (-r, spring)]
        + curve[::-1][1:-1]
        + [(r, spring), (r, 0), (w / 2, 0), (w / 2, hh), (-w / 2, hh)]
    )
    return g.extrude(poly, d), {"style": style, "width": w, "height": hh, "opening": ow, "depth": d}


def _arch_text(p, rng):
    style = (
        pick(rng, ["round", "semicircular"])
        if p["style"] == "round"
        else pick(rng, ["pointed", "gothic"])
    )
    thick = "thick" if p["depth"] > 0.35 else ""
    noun = pick(rng, ["stone arch", "archway", "arch", "gateway arch"])
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([thick, style, noun]))}",
                f"{article(join([thick, noun]))} with a {style} opening",
                f"{article(noun)}: a block with a {style} arched opening",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- stairs
def _stairs(rng):
    steps = int(rng.integers(3, 9))
    rise, run = uni(rng, 0.15, 0.22), uni(rng, 0.22, 0.32)
    width = uni(rng, 0.6, 1.4)
    poly = [(0.0, 0.0), (steps * run, 0.0)]
    for i in range(steps, 0, -1):
        poly += [(i * run, i * rise), ((i - 1) * run, i * rise)]
    part = g.rotate(g.extrude(poly, width), "y", -np.pi / 2)
    return part, {"steps": steps, "rise": rise, "run": run, "width": width}


def _stairs_text(p, rng):
    n = count(p["steps"], "step")
    wide = "wide" if p["width"] > 1.1 else ("narrow" if p["width"] < 0.8 else "")
    steep = (
        "steep" if p["rise"] / p["run"] > 0.75 else ("gentle" if p["rise"] / p["run"] < 0.6 else "")
    )
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(join([wide, steep, 'staircase']))} with {n}",
                f"{article(join([wide, 'flight of stairs']))}, {n}",
                f"{article(join([steep, 'stairs block']))} of {n}",
                f"{join([wide, 'solid steps'])}: {n} going up".strip(),
            ],
        ),
    )


# ------------------------------------------------------------------------------------- pine tree
def _pine_tree(rng):
    tiers = int(rng.integers(2, 5))
    tr, th = uni(rng, 0.06, 0.1), uni(rng, 0.15, 0.35)
    r0 = uni(rng, 0.45, 0.7)
    tier_h = uni(rng, 0.35, 0.55)
    n = seg(rng, 6, 12)
    prof = [(0.0, 0.0), (tr, 0.0), (tr, th)]
    y = th
    for i in range(tiers):
        ri = r0 * (1 - 0.2 * i)
        prof += [(ri, y), (ri * 0.35, y + tier_h * (1 - 0.1 * i))]
        y += tier_h * (1 - 0.1 * i) * 0.55
    prof[-1] = (0.0, prof[-1][1] + tier_h * 0.3)
    return g.lathe(prof, n), {"tiers": tiers, "trunk_height": th, "radius": r0, "segments": n}


def _pine_tree_text(p, rng):
    noun = pick(rng, ["pine tree", "fir tree", "christmas tree", "conifer"])
    tiers = count(p["tiers"], pick(rng, ["tier", "layer"]))
    trunk = "a short trunk" if p["trunk_height"] < 0.25 else "a visible trunk"
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(noun)} with {tiers} of branches",
                f"{article(join([hyphen(p['tiers'], 'tiered'), noun]))}",
                f"{article(noun)} made of {tiers} of cones on {trunk}",
            ],
        ),
    )


# ------------------------------------------------------------------------------------------ tree
def _tree(rng):
    tr, th = uni(rng, 0.07, 0.12), uni(rng, 0.5, 1.0)
    blobs = int(pick(rng, ["1", "1", "3"]))
    cr = uni(rng, 0.4, 0.6)
    parts = [g.frustum(tr * 1.3, tr, th + cr * 0.5, 6)]
    if blobs == 1:
        parts.append(g.sphere(cr, 10, 6, (0, th + cr * 0.8, 0), squash=uni(rng, 0.8, 1.2)))
    else:
        for k in range(3):
            a = k * 2 * np.pi / 3
            c = (0.45 * cr * np.cos(a), th + cr * (0.7 + 0.25 * k), 0.45 * cr * np.sin(a))
            parts.append(g.sphere(cr * 0.75, 8, 5, c))
    return g.combine(parts), {"trunk_height": th, "crown_radius": cr, "blobs": blobs}


def _tree_text(p, rng):
    crown = (
        pick(rng, ["a round crown", "a single ball of leaves", "a spherical canopy"])
        if p["blobs"] == 1
        else pick(rng, ["a crown of three round leaf clusters", "a bushy crown"])
    )
    trunk = "a tall trunk" if p["trunk_height"] > 0.8 else "a short trunk"
    return finish(
        rng,
        pick(
            rng,
            [
                f"a tree with {trunk} and {crown}",
                f"{article(pick(rng, ['leafy tree', 'deciduous tree', 'tree']))}"
                f": {crown} on {trunk}",
            ],
        ),
    )


# -------------------------------------------------------------------------------------- mushroom
def _mushroom(rng):
    sr, sh = uni(rng, 0.08, 0.16), uni(rng, 0.2, 0.6)
    cr = uni(rng, 0.3, 0.55)
    cap = pick(rng, ["dome", "flat", "conical"])
    ch = cr * {"dome": 0.8, "flat": 0.35, "conical": 1.1}[cap]
    n = seg(rng, 8, 14)
    prof = [(0.0, 0.0), (sr * 1.3, 0.0), (sr, sh * 0.5), (sr, sh), (cr, sh + 0.04)]
    a = np.linspace(0, np.pi / 2, 5)[1:]
    if cap == "conical":
        prof += [(cr * 0.5, sh + 0.04 + ch * 0.55)]
    else:
        prof += [(cr * np.cos(x), sh + 0.04 + ch * np.sin(x)) for x in a[:-1]]
    prof.append((0.0, sh + 0.04 + ch))
    return g.lathe(prof, n), {"cap": cap, "cap_radius": cr, "stem_height": sh, "segments": n}


def _mushroom_text(p, rng):
    cap = {
        "dome": pick(rng, ["a domed cap", "a round cap"]),
        "flat": pick(rng, ["a flat wide cap", "a flattened cap"]),
        "conical": pick(rng, ["a pointed conical cap", "a cone-shaped cap"]),
    }[p["cap"]]
    stem = "a tall stem" if p["stem_height"] > 0.45 else "a short stem"
    return finish(
        rng,
        pick(
            rng,
            [
                f"a mushroom with {cap} and {stem}",
                f"a {pick(rng, ['toadstool', 'mushroom'])}: {cap}, {stem}",
            ],
        ),
    )


# ---------------------------------------------------------------------------------------- cactus
def _cactus(rng):
    h, r = uni(rng, 1.0, 1.8), uni(rng, 0.12, 0.18)
    arms = int(rng.integers(0, 3))
    n = 8
    dome = [(r * np.cos(x), h - r + r * np.sin(x)) for x in np.linspace(0, np.pi / 2, 4)]
    parts = [g.lathe([(0.0, 0.0), (r, 0.0)] + dome[:-1] + [(0.0, h)], n)]  # trunk, one solid
    side = pick(rng, ["-1", "1"])
    for k in range(arms):
        s = (1 if k == 0 else -1) * int(side)
        y = h * (0.35 + 0.15 * k)
        reach = r + uni(rng, 0.15, 0.25)
        up = uni(rng, 0.2, 0.4)
        ar = r * 0.7
        parts.append(g.tube([(0, y, 0), (s * reach, y, 0), (s * reach, y + up, 0)], ar, 6))
        parts.append(g.sphere(ar * 1.05, 6, 3, (s * reach, y + up + ar * 0.3, 0)))
    return g.combine(parts), {"height": h, "arms": arms}


def _cactus_text(p, rng):
    noun = pick(rng, ["cactus", "saguaro cactus", "desert cactus"])
    if p["arms"] == 0:
        return finish(
            rng,
            pick(
                rng,
                [
                    f"a single column {noun} with no arms",
                    f"{article(noun)} without arms, a plain rounded column",
                ],
            ),
        )
    arms = count(p["arms"], "arm")
    return finish(
        rng,
        pick(
            rng,
            [
                f"{article(noun)} with {arms} bending upward",
                f"{article(join(['tall' if p['height'] > 1.5 else '', noun]))} with {arms}",
            ],
        ),
    )


# --------------------------------------------------------------------------------------- snowman
def _snowman(rng):
    balls = int(pick(rng, ["2", "3", "3"]))
    r0 = uni(rng, 0.35, 0.45)
    hat = bool(rng.random() < 0.6)
    n = 10
    parts, y, r = [], 0.0, r0
    for _ in range(balls):
        parts.append(g.sphere(r, n, 6, (0, y + r, 0)))
        y += 1.7 * r
        r *= 0.72
    r /= 0.72
    head_c = y - 0.7 * r
    parts.append(g.rotate(g.frustum(0.05, 0, 0.22, 6), "x", np.pi / 2, (0, 0, 0)))
    parts[-1] = g.move(parts[-1], (0, head_c, r * 0.9))
    if hat:
        parts.append(g.cylinder(r * 0.9, 0.04, n, y0=head_c + r * 0.8))
        parts.append(g.cylinder(r * 0.6, r * 0.9, n, y0=head_c + r * 0.8 + 0.02))
    return g.combine(parts), {"balls": balls, "hat": hat}


def _snowman_text(p, rng):
    balls = count(p["balls"], "snowball")
    hat = pick(rng, ["a top hat", "a hat"]) if p["hat"] else "no hat"
    return finish(
        rng,
        pick(
            rng,
            [
                f"a snowman made of {balls} with a carrot nose and {hat}",
                f"a snowman: {balls} stacked, {hat}, carrot nose",
                f"{article('simple snowman')} of {balls}, wearing {hat}"
                if p["hat"]
                else f"a snowman of {balls} with a carrot nose",
            ],
        ),
    )


FAMILIES = (
    Family("house", _house, _house_text, group="building"),
    Family("tower", _tower, _tower_text, group="building"),
    Family("arch", _arch, _arch_text, solid=True, group="building"),
    Family("stairs", _stairs, _stairs_text, solid=True, group="building"),
    Family("pine_tree", _pine_tree, _pine_tree_text, solid=True, group="nature"),
    Family("tree", _tree, _tree_text, group="nature"),
    Family("mushroom", _mushroom, _mushroom_text, solid=True, group="nature"),
    Family("cactus", _cactus, _cactus_text, group="nature"),
    Family("snowman", _snowman, _snowman_text, group="nature"),
)
