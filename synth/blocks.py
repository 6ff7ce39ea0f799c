"""Block fillers: what a city block (or a rural parcel) between streets contains.

Each filler gets the builder, the block's :class:`~.builder.Frame` (local u along the
street grid from the block corner, v across; block ``L`` x ``D`` metres) and the town style
(shared roof colours etc., so neighbouring houses look alike).
"""

from __future__ import annotations

import math

import numpy as np

from smgeo_synth import objects as ob
from smgeo_synth.builder import Frame, Placer, SceneBuilder


def town_style(rng: np.random.Generator) -> dict:
    k = int(rng.integers(2, 4))
    roofs = [ob.ROOF_PITCHED[i] for i in rng.choice(len(ob.ROOF_PITCHED), k, replace=False)]
    return {
        "roof_rgb": roofs,
        "roof": ob.pick(rng, ["gable", "gable", "hip"]),
        "walls": [ob.WALLS[i] for i in rng.choice(len(ob.WALLS), 3, replace=False)],
        "lawn": float(rng.uniform(0.3, 0.7)),
        "hedge": float(rng.uniform(0.1, 0.7)),
        "drive": ob.pick(rng, ["concrete", "asphalt", "gravel"]),
        "frontage": float(rng.uniform(14, 22)),
        "flat_roofs": [ob.ROOF_FLAT[i] for i in rng.choice(len(ob.ROOF_FLAT), 3, replace=False)],
        "court": ob.pick(rng, ["court_green", "court_blue", "court_red", "court_orange", "court_grey"]),
    }


def _scatter_trees(b: SceneBuilder, fr: Frame, placer: Placer | None, n: int, r=(2.0, 4.5), clusters: int = 0) -> None:
    rng = b.rng
    centres = [(rng.uniform(0, fr.L), rng.uniform(0, fr.D)) for _ in range(clusters)]
    for _ in range(n):
        if centres and rng.random() < 0.75:
            cu, cv = centres[int(rng.integers(len(centres)))]
            u, v = cu + rng.normal(0, 10), cv + rng.normal(0, 10)
        else:
            u, v = rng.uniform(1, fr.L - 1), rng.uniform(1, fr.D - 1)
        rr = rng.uniform(*r)
        if not (rr < u < fr.L - rr and rr < v < fr.D - rr):
            continue
        if placer is not None and not placer.is_free_point(u, v, rr * 0.8):
            continue
        x, y = fr.xy(u, v)
        b.tree(x, y, rr, rr + rng.uniform(2.5, 9))


def _street_trees(b: SceneBuilder, fr: Frame, offset: float) -> None:
    rng = b.rng
    spacing = rng.uniform(9, 15)
    r = rng.uniform(2.2, 3.8)
    for v in (-offset, fr.D + offset):
        for u in np.arange(spacing / 2, fr.L, spacing).tolist():
            if rng.random() < 0.85:
                x, y = fr.xy(u, v)
                b.tree(x, y, r * rng.uniform(0.85, 1.15), r + rng.uniform(3, 6))


def residential(b: SceneBuilder, fr: Frame, style: dict, sidewalk: float) -> None:
    rng = b.rng
    two_rows = fr.D >= 46
    depth = fr.D / 2 if two_rows else fr.D
    for row in range(2 if two_rows else 1):
        u = 0.0
        while fr.L - u >= 10:
            f = style["frontage"] * rng.uniform(0.88, 1.12)
            if fr.L - u - f < 0.6 * style["frontage"]:
                f = fr.L - u
            lot = fr.sub(u, 0, f, depth) if row == 0 else fr.sub(u + f, fr.D, f, depth, flip=True)
            ob.house(b, lot, style)
            u += f
    if rng.random() < 0.5:
        _street_trees(b, fr, sidewalk * 0.5)
    for v in (-sidewalk - 1.2, fr.D + sidewalk + 1.2):  # cars parked at the kerb
        for u in np.arange(3, fr.L - 3, 6.0).tolist():
            x, y = fr.xy(u, v)
            b.slot(x, y, fr.angle, p=0.18)


def apartments(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "lawn", 0)
    placer = Placer(fr.L, fr.D, rng, margin=4)
    depth = rng.uniform(11, 16)
    length = min(fr.L - 10, rng.uniform(30, 75))
    v = 6 + depth / 2
    roof = ob.jitter(rng, ob.pick(rng, style["flat_roofs"]), 0.04)
    wall = ob.jitter(rng, ob.pick(rng, ob.WALLS), 0.03)
    while v + depth / 2 <= fr.D - 5:
        u = rng.uniform(5 + length / 2, max(5.1 + length / 2, fr.L - 5 - length / 2))
        h = 3.0 * int(rng.integers(3, 10)) + rng.uniform(0.3, 1.5)
        ob.flat_building(b, fr.rect(u, v, length, depth), h, ob.jitter(rng, roof, 0.03), wall, 3.0,
                         int(rng.integers(1, 5)))
        placer.take(u - length / 2, v - depth / 2, u + length / 2, v + depth / 2)
        lot_v = v + depth / 2 + 9.5
        if lot_v + 6 < fr.D - 3 and rng.random() < 0.6:
            ob.parking_lot(b, fr, u, lot_v, length, 12.0, rng.uniform(0.3, 0.9), trees=False)
            placer.take(u - length / 2, lot_v - 6, u + length / 2, lot_v + 6)
            v = lot_v + 6 + 8 + depth / 2
        else:
            v += depth + rng.uniform(16, 26)
    if rng.random() < 0.4:
        spot = placer.place(32, 19)
        if spot:
            ob.basketball_court(b, fr, spot[0], spot[1], style["court"])
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 250), clusters=3)


def commercial(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "yard", 0)
    bl = min(fr.L - 8, rng.uniform(0.4, 0.7) * fr.L)
    bd = min(fr.D - 8, rng.uniform(0.35, 0.55) * fr.D)
    back = fr.D - 4 - bd / 2
    u = rng.uniform(4 + bl / 2, max(4.1 + bl / 2, fr.L - 4 - bl / 2))
    roof = ob.jitter(rng, ob.pick(rng, ob.ROOF_FLAT), 0.04)
    ob.flat_building(b, fr.rect(u, back, bl, bd), rng.uniform(5.5, 14), roof, ob.jitter(rng, ob.pick(rng, ob.WALLS)),
                     rng.choice([0.0, 4.0]), int(rng.integers(2, 8)))
    lot_d = fr.D - bd - 12
    if lot_d >= 12:
        ob.parking_lot(b, fr, fr.L / 2, 4 + lot_d / 2, fr.L - 8, lot_d, rng.uniform(0.25, 0.9))
    side = fr.L - bl - 12
    if side > 18:
        cu = (u + bl / 2 + fr.L) / 2 if u < fr.L / 2 else (u - bl / 2) / 2
        ob.parking_lot(b, fr, cu, back, side - 4, bd, rng.uniform(0.2, 0.8), trees=False)


def industrial(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "yard", 1)
    placer = Placer(fr.L, fr.D, rng, margin=6)
    kind = ob.pick(rng, ["flat", "gable", "saw"])
    for _ in range(int(rng.integers(1, 4))):
        L, D = rng.uniform(35, min(120, fr.L - 12)), rng.uniform(22, min(55, fr.D - 12))
        if min(L, D) < 20:
            break
        spot = placer.place(L, D)
        if not spot:
            continue
        ob.hall(b, fr, spot[0], spot[1], L, D, kind)
        for k in range(int(rng.integers(0, 4))):
            x, y = fr.xy(spot[0] - L / 2 + 4 + k * 4.0, spot[1] + D / 2 + 9)
            b.slot(x, y, fr.angle + math.pi / 2, 13.0, 2.5, 3.8, p=0.7)
    spot = placer.place(min(40, fr.L - 14), 17)
    if spot:
        ob.parking_lot(b, fr, spot[0], spot[1], min(40, fr.L - 14), 17, rng.uniform(0.3, 0.8), trees=False)


def park(b: SceneBuilder, fr: Frame, style: dict, courts: int = 0, tennis: int = 0) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "grass", 0)
    placer = Placer(fr.L, fr.D, rng, margin=3)
    for k in range(courts):
        spot = placer.place(32, 19) if rng.random() < 0.5 else placer.place(19, 32)
        if spot:
            a = 0.0 if placer.used[-1][2] - placer.used[-1][0] > placer.used[-1][3] - placer.used[-1][1] else math.pi / 2
            ob.basketball_court(b, fr, spot[0], spot[1], style["court"] if rng.random() < 0.7 else
                                ob.pick(rng, ["court_blue", "court_green", "court_orange"]), a)
    for k in range(tennis):
        spot = placer.place(36.6, 18.3)
        if spot:
            ob.tennis_court(b, fr, spot[0], spot[1], "court_blue", "court_green")
    if rng.random() < 0.4:
        spot = placer.place(rng.uniform(20, 45), rng.uniform(15, 30))
        if spot:
            c = fr.pt(*spot)
            r = rng.uniform(8, 14)
            t = np.linspace(0, 2 * np.pi, 28, endpoint=False)
            rad = r * (1 + 0.25 * np.sin(2 * t + rng.uniform(0, 6)) + 0.1 * np.sin(3 * t + rng.uniform(0, 6)))
            pond = np.c_[c[0] + rad * np.cos(t) * 1.3, c[1] + rad * np.sin(t)]
            b.ground(c + (pond - c) * 1.12, "sand", 1)
            b.ground(pond, "water", 2)
    if rng.random() < 0.4:
        spot = placer.place(16, 12)
        if spot:
            b.ground(fr.rect(spot[0], spot[1], 16, 12), "rubber", 2)
    for _ in range(int(rng.integers(1, 3))):  # footpaths
        pts = np.array([[rng.uniform(0, fr.L), 0], [rng.uniform(0, fr.L), rng.uniform(0.3, 0.7) * fr.D],
                        [rng.uniform(0, fr.L), fr.D]])
        if rng.random() < 0.5:
            pts = pts[:, ::-1] * [fr.L / max(fr.D, 1), fr.D / max(fr.L, 1)]
        b.ground(fr.pts(pts), "gravel", 2, width=rng.uniform(2, 3.5))
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 120), (2.5, 5.5), clusters=int(rng.integers(2, 6)))


def school(b: SceneBuilder, fr: Frame, style: dict, courts: int = 1) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "lawn", 0)
    placer = Placer(fr.L, fr.D, rng, margin=4)
    wl, wd = min(fr.L * 0.6, rng.uniform(40, 70)), rng.uniform(12, 16)
    roof = ob.jitter(rng, ob.pick(rng, style["flat_roofs"]))
    wall = ob.jitter(rng, ob.pick(rng, ob.WALLS))
    g = b.group()
    h = rng.uniform(7, 11)
    ob.flat_building(b, fr.rect(4 + wl / 2, 4 + wd / 2, wl, wd), h, roof, wall, 3.5, 2, group=g)
    wing = min(fr.D * 0.5, rng.uniform(25, 40))
    ob.flat_building(b, fr.rect(4 + wd / 2, 4 + wd + wing / 2 - 0.5, wing, wd, math.pi / 2), h, roof, wall, 3.5, 1)
    placer.take(4, 4, 4 + wl, 4 + wd)
    placer.take(4, 4, 4 + wd, 4 + wd + wing)
    yl, yd = min(fr.L - wd - 16, rng.uniform(40, 60)), min(fr.D - wd - 16, rng.uniform(25, 40))
    spot = placer.place(yl, yd)
    if spot:
        b.ground(fr.rect(spot[0], spot[1], yl, yd), "asphalt", 1)
        sub = Placer(yl, yd, rng, margin=1.0)
        origin = (spot[0] - yl / 2, spot[1] - yd / 2)
        for _ in range(courts):
            s2 = sub.place(32, 19)
            if s2:
                ob.basketball_court(b, fr, origin[0] + s2[0], origin[1] + s2[1], style["court"])
    if rng.random() < 0.5:
        spot = placer.place(112, 62)
        if spot:
            ob.running_track(b, fr, spot[0], spot[1], 50.0, 22.0, 4, material=ob.pick(rng, ["track", "court_grey"]))
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 500), clusters=2)


def soccer(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "grass", 0)
    big = fr.L >= 118 and fr.D >= 82
    pl, pw = (105.0, 68.0) if big else (min(90.0, fr.L - 14), min(58.0, fr.D - 14))
    if pl < 50 or pw < 35:
        return park(b, fr, style, courts=1)
    placer = Placer(fr.L, fr.D, rng, margin=4)
    for k in range(3):
        spot = placer.place(pl + 8, pw + 8)
        if not spot:
            break
        ob.soccer_pitch(b, fr, spot[0], spot[1], pl, pw, turf=rng.random() < 0.35)
    spot = placer.place(22, 12)
    if spot:
        b.solid(fr.rect(spot[0], spot[1], 22, 12), 0, 4.5, "gable", 2.5, ob.jitter(rng, ob.pick(rng, style["roof_rgb"])),
                ob.jitter(rng, ob.pick(rng, ob.WALLS)))
    spot = placer.place(35, 17)
    if spot:
        ob.parking_lot(b, fr, spot[0], spot[1], 35, 17, rng.uniform(0.1, 0.7), trees=False)
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 700), clusters=2)


def tennis(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "lawn", 0)
    placer = Placer(fr.L, fr.D, rng, margin=4)
    for _ in range(2):
        ny = int(rng.integers(1, 3))
        nx = int(rng.integers(2, 7))
        while nx > 1 and (ny * 36.6 + 8 > fr.L or nx * 18.3 + 8 > fr.D):
            nx -= 1
        if ny * 36.6 + 8 > fr.L:
            ny = 1
        spot = placer.place(ny * 36.6 + 2, nx * 18.3 + 2)
        if not spot:
            continue
        clay = rng.random() < 0.4
        inner, outer = ("court_clay", "court_clay") if clay else ob.pick(
            rng, [("court_blue", "court_green"), ("court_green", "court_red"), ("court_blue", "court_blue"),
                  ("court_green", "court_green")])
        b.ground(Frame(fr.pt(0, 0), fr.angle).rect(spot[0], spot[1], ny * 36.6 + 2, nx * 18.3 + 2), outer, 3)
        for i in range(ny):
            for j in range(nx):
                ob.tennis_court(b, fr, spot[0] - ny * 36.6 / 2 + 36.6 * (i + 0.5),
                                spot[1] - nx * 18.3 / 2 + 18.3 * (j + 0.5), inner, None)
        corners = Frame(fr.pt(0, 0), fr.angle).rect(spot[0], spot[1], ny * 36.6 + 2, nx * 18.3 + 2)
        b.polyline_marks(corners, 0.15, "dark", closed=True)
    spot = placer.place(18, 11)
    if spot:
        b.solid(fr.rect(spot[0], spot[1], 18, 11), 0, 4, ob.pick(rng, ["gable", "flat"]), 2.0,
                ob.jitter(rng, ob.pick(rng, style["roof_rgb"])), ob.jitter(rng, ob.pick(rng, ob.WALLS)))
    spot = placer.place(30, 17)
    if spot:
        ob.parking_lot(b, fr, spot[0], spot[1], 30, 17, rng.uniform(0.1, 0.8), trees=False)
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 400), clusters=2)


def stadium_block(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "plaza", 0)
    if fr.L < 190 or fr.D < 118:
        return soccer(b, fr, style)
    ob.stadium(b, fr, fr.L / 2, fr.D / 2, fr.L - 4, fr.D - 4)
    for sgn in (-1, 1):
        w = (fr.L - 215) / 2
        if w > 20:
            ob.parking_lot(b, fr, fr.L / 2 + sgn * (215 / 2 + w / 2), fr.D / 2, w - 4, min(fr.D - 10, 80),
                           rng.uniform(0.1, 0.6))


def pools(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "lawn", 0)
    placer = Placer(fr.L, fr.D, rng, margin=4)
    L = min(fr.L - 12, rng.uniform(50, 85))
    D = min(fr.D - 20, rng.uniform(32, 50))
    spot = placer.place(L, D)
    if spot:
        ob.pool_complex(b, fr, spot[0], spot[1], L, D)
        g = placer.place(min(30, L * 0.6), 12)
        if g:
            b.solid(fr.rect(g[0], g[1], min(30, L * 0.6), 12), 0, rng.uniform(3.5, 6), "flat", 0,
                    ob.jitter(rng, ob.pick(rng, style["flat_roofs"])), ob.jitter(rng, ob.pick(rng, ob.WALLS)),
                    parapet=True)
    spot = placer.place(40, 17)
    if spot:
        ob.parking_lot(b, fr, spot[0], spot[1], 40, 17, rng.uniform(0.2, 0.9))
    _scatter_trees(b, fr, placer, int(fr.L * fr.D / 250), clusters=3)


def farm(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "grass", 0)
    placer = Placer(fr.L, fr.D, rng, margin=5)
    yard = placer.place(min(fr.L - 12, 70), min(fr.D - 12, 55))
    if not yard:
        return
    b.ground(fr.rect(yard[0], yard[1], min(fr.L - 12, 70), min(fr.D - 12, 55)), "gravel", 1)
    sub = Frame(fr.pt(yard[0] - min(fr.L - 12, 70) / 2, yard[1] - min(fr.D - 12, 55) / 2), fr.angle,
                min(fr.L - 12, 70), min(fr.D - 12, 55))
    inner = Placer(sub.L, sub.D, rng, margin=3)
    for k in range(int(rng.integers(2, 5))):
        L, D = (rng.uniform(12, 16), rng.uniform(9, 11)) if k == 0 else (rng.uniform(18, 40), rng.uniform(11, 20))
        spot = inner.place(L, D)
        if not spot:
            continue
        roof = ob.pick(rng, style["roof_rgb"]) if k == 0 else ob.pick(rng, ob.ROOF_METAL + ob.ROOF_PITCHED[:3])
        if k > 0 and L * D > 420:
            tid = b.new_target("building")
        else:
            tid = 0
        b.solid(sub.rect(spot[0], spot[1], L, D), 0, rng.uniform(4, 7), "gable",
                D / 2 * math.tan(math.radians(rng.uniform(18, 35))), ob.jitter(rng, roof),
                ob.jitter(rng, ob.pick(rng, ob.WALLS)), tid=tid)
        if tid:
            b.finish_target(tid)
    _scatter_trees(b, fr, placer, int(rng.integers(8, 30)), (3, 6), clusters=2)


def fields(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    n = int(rng.integers(1, 4))
    along = fr.L >= fr.D
    total = fr.L if along else fr.D
    cuts = np.sort(rng.uniform(0.2, 0.8, n - 1)) * total
    edges = np.concatenate([[0.0], cuts, [total]])
    for a, c in zip(edges[:-1], edges[1:]):
        if c - a < 15:
            continue
        if along:
            poly, ext = fr.rect((a + c) / 2, fr.D / 2, c - a - 2, fr.D - 2), (c - a, fr.D)
        else:
            poly, ext = fr.rect(fr.L / 2, (a + c) / 2, fr.L - 2, c - a - 2), (fr.L, c - a)
        angle = fr.angle + (0 if (ext[0] >= ext[1]) == (rng.random() < 0.8) else math.pi / 2)
        b.field(poly, angle, float(rng.uniform(2.5, 6.0)))
    if rng.random() < 0.3:  # hedgerow / tree line on one edge
        v = ob.pick(rng, [0.5, fr.D - 0.5])
        for u in np.arange(3, fr.L - 3, rng.uniform(5, 9)).tolist():
            x, y = fr.xy(u + rng.normal(0, 1), v)
            rr = rng.uniform(2.5, 5)
            b.tree(x, y, rr, rr + rng.uniform(3, 9))


def forest(b: SceneBuilder, fr: Frame, style: dict) -> None:
    rng = b.rng
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "forest_floor", 0)
    spacing = rng.uniform(5.5, 7.5)
    us = np.arange(spacing / 2, fr.L, spacing)
    vs = np.arange(spacing / 2, fr.D, spacing)
    conifer = rng.random() < 0.4
    for u in us.tolist():
        for v in vs.tolist():
            if rng.random() < 0.85:
                x, y = fr.xy(u + rng.normal(0, 1.5), v + rng.normal(0, 1.5))
                rr = rng.uniform(2.5, 4.0) if conifer else rng.uniform(3.0, 5.5)
                b.tree(x, y, rr, rr + rng.uniform(5, 14), var=rng.uniform(0, 0.3) if conifer else None)


def riverside(b: SceneBuilder, fr: Frame, style: dict) -> None:
    b.ground(fr.rect(fr.L / 2, fr.D / 2, fr.L, fr.D), "grass", 0)
    _scatter_trees(b, fr, None, int(fr.L * fr.D / 300), (2.5, 5.0), clusters=3)


FILLERS = {
    "residential": residential, "apartments": apartments, "commercial": commercial, "industrial": industrial,
    "park": park, "school": school, "soccer": soccer, "tennis": tennis, "stadium": stadium_block, "pool": pools,
    "farm": farm, "field": fields, "forest": forest, "riverside": riverside,
}
