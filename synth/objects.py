"""Object generators: houses, large buildings, courts, pitches, stadiums, pools, parking lots,
roundabouts and bridges, each placed in a block :class:`~.builder.Frame` (local metres).

Sizes follow the real objects (tennis court 23.77 x 10.97 m in an 36.6 x 18.3 m enclosure,
basketball 28 x 15 m, football 105 x 68 m, 400 m running track, 25/50 m pools, 2.5 x 5 m
parking stalls) so that object areas span CVOGL's range (~300 to ~20,000 m^2).
"""

from __future__ import annotations

import math

import numpy as np

from smgeo_synth import geometry as geo
from smgeo_synth.builder import Frame, SceneBuilder

ROOF_PITCHED = [(0.63, 0.31, 0.23), (0.55, 0.27, 0.21), (0.29, 0.28, 0.29), (0.42, 0.40, 0.40), (0.46, 0.34, 0.28),
                (0.31, 0.35, 0.41), (0.70, 0.43, 0.31), (0.36, 0.24, 0.20)]
ROOF_FLAT = [(0.73, 0.73, 0.71), (0.56, 0.56, 0.55), (0.36, 0.36, 0.37), (0.86, 0.86, 0.84), (0.50, 0.48, 0.44),
             (0.62, 0.60, 0.56)]
ROOF_METAL = [(0.67, 0.69, 0.71), (0.46, 0.51, 0.57), (0.56, 0.33, 0.26), (0.36, 0.46, 0.41), (0.78, 0.79, 0.80)]
WALLS = [(0.87, 0.83, 0.75), (0.81, 0.77, 0.71), (0.91, 0.89, 0.85), (0.73, 0.56, 0.46), (0.63, 0.43, 0.36),
         (0.79, 0.75, 0.63), (0.70, 0.70, 0.72)]


def jitter(rng: np.random.Generator, rgb, amount: float = 0.05) -> tuple[float, float, float]:
    k = rng.uniform(1 - amount, 1 + amount)
    (r, g, b), (er, eg, eb) = rgb, rng.normal(0, amount / 4, 3).tolist()
    return (min(1.0, max(0.0, float(r) * k + er)), min(1.0, max(0.0, float(g) * k + eg)),
            min(1.0, max(0.0, float(b) * k + eb)))


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


# --- buildings -------------------------------------------------------------------------------
def house(b: SceneBuilder, lot: Frame, style: dict, pool_p: float = 0.1) -> None:
    """A detached house on a lot whose street edge is local v = 0 (lot ``L`` x ``D``)."""
    rng = b.rng
    f, d = lot.L, lot.D
    b.ground(lot.rect(f / 2, d / 2, f, d), "lawn", 0, var=style["lawn"] + rng.uniform(-0.15, 0.15))
    if rng.random() < style["hedge"]:
        b.ground([lot.xy(0.4, 0.5), lot.xy(0.4, d - 0.4), lot.xy(f - 0.4, d - 0.4)], "hedge", 1, width=0.9)
    w = min(16.0, max(7.0, rng.uniform(0.5, 0.72) * f))
    hd = min(d * 0.5, max(6.0, rng.uniform(8, 12.5)))
    setback = rng.uniform(4, 7.5)
    uc = f / 2 + rng.uniform(-1, 1) * max(0.0, f - w - 4) / 2
    vc = setback + hd / 2
    tid = b.new_target("building_house")
    g = b.group()
    roof = style["roof"] if rng.random() < 0.8 else pick(rng, ["gable", "hip", "flat"])
    roof_rgb = jitter(rng, pick(rng, style["roof_rgb"]), 0.06)
    wall = jitter(rng, pick(rng, style["walls"]), 0.04)
    eave = rng.uniform(2.9, 6.3)
    long_u = w >= hd
    length, width = (w, hd) if long_u else (hd, w)
    rise = (width / 2) * math.tan(math.radians(rng.uniform(22, 40))) if roof != "flat" else 0.0
    b.solid(lot.rect(uc, vc, length, width, 0.0 if long_u else math.pi / 2), 0, eave, roof, rise, roof_rgb, wall,
            3.2, kind="building", group=g, tid=tid, parapet=roof == "flat")
    if rng.random() < 0.3 and d - (setback + hd) > 8:  # rear wing
        ww, wd = w * rng.uniform(0.35, 0.5), hd * rng.uniform(0.5, 0.8)
        side = (-1, 1)[int(rng.integers(0, 2))]  # rng.choice([-1, 1]) (the same draw), without its overhead
        wu = uc + side * (w - ww) / 2
        wv = setback + hd + wd / 2 - 0.5
        r2 = (ww / 2) * math.tan(math.radians(30)) if roof != "flat" else 0.0
        b.solid(lot.rect(wu, wv, wd, ww, math.pi / 2), 0, eave * rng.uniform(0.75, 1.0), "gable" if roof != "flat"
                else "flat", r2, roof_rgb, wall, group=g, order=1, tid=tid)
    b.finish_target(tid)
    # driveway and car on the side with more room
    du = uc + w / 2 + 2.0 if uc + w / 2 + 4 < f else uc - w / 2 - 2.0
    if 1.5 < du < f - 1.5:
        b.ground(lot.rect(du, (setback + hd * 0.6) / 2, setback + hd * 0.6, 3.0, math.pi / 2), style["drive"], 3)
        if rng.random() < 0.6:
            x, y = lot.xy(du, rng.uniform(2.5, max(2.6, setback - 0.5)))
            b.slot(x, y, lot.angle + math.pi / 2, p=0.8)
    back0 = setback + hd + 2
    if d - back0 > 6:
        for _ in range(int(rng.integers(0, 4))):
            r = rng.uniform(1.8, 4.2)
            x, y = lot.xy(rng.uniform(1.5, f - 1.5), rng.uniform(back0 + 1, d - 1))
            b.tree(x, y, r, r + rng.uniform(2.5, 7))
        if rng.random() < pool_p and d - back0 > 11 and f > 12:
            pu, pv = rng.uniform(6, f - 6), rng.uniform(back0 + 4, d - 4)
            b.ground(lot.rect(pu, pv, 10.5, 6.5), "deck", 4)
            b.ground(lot.rect(pu, pv, 8.0, 4.0), "pool", 5)
        if rng.random() < 0.3:
            p = lot.rect(f - 3, d - 3, 3.0, 2.6)
            b.solid(p, 0, 2.4, "flat", 0, jitter(rng, (0.5, 0.45, 0.4)), (0.6, 0.55, 0.5), kind="shed")


def flat_building(b: SceneBuilder, foot: np.ndarray, height: float, roof_rgb, wall_rgb, windows: float = 3.2,
                  hvac: int = 3, cls: str | None = "building", group: int | None = None) -> int:
    """Flat-roofed block with parapet and rooftop units; returns its target id (0 if none)."""
    rng = b.rng
    tid = b.new_target(cls) if cls else 0
    g = group or b.group()
    b.solid(foot, 0, height, "flat", 0, roof_rgb, wall_rgb, windows, group=g, tid=tid, parapet=True)
    if len(foot) == 4:
        c = foot.mean(0)
        e1, e2 = (foot[1] - foot[0]) / 2, (foot[3] - foot[0]) / 2
        for k in range(hvac):
            p = c + e1 * rng.uniform(-0.75, 0.75) + e2 * rng.uniform(-0.65, 0.65)
            ang = math.atan2(e1[1], e1[0])
            unit = geo.rect(p[0], p[1], rng.uniform(2, 5), rng.uniform(1.5, 3), ang)
            b.solid(unit, height, height + rng.uniform(1.0, 2.5), "flat", 0, jitter(rng, (0.7, 0.71, 0.72)),
                    (0.6, 0.61, 0.62), kind="hvac", group=g, order=1 + k, tid=tid)
    if tid:
        b.finish_target(tid)
    return tid


def hall(b: SceneBuilder, fr: Frame, u: float, v: float, L: float, D: float, style: str) -> int:
    """Industrial hall (flat, low gable or saw-tooth metal roof) along local u."""
    rng = b.rng
    tid = b.new_target("building")
    g = b.group()
    roof_rgb = jitter(rng, pick(rng, ROOF_METAL + ROOF_FLAT[:2]), 0.04)
    wall = jitter(rng, pick(rng, [(0.75, 0.76, 0.77), (0.62, 0.64, 0.66), (0.80, 0.78, 0.72)]), 0.03)
    h = rng.uniform(7, 13)
    if style == "saw" and D > 20:
        n = max(2, int(D // 11))
        strip = D / n
        for k in range(n):
            foot = fr.rect(u, v - D / 2 + strip * (k + 0.5), L, strip)
            b.solid(foot, 0, h, "shed", rng.uniform(2.0, 3.0), roof_rgb, wall, group=g, order=k, tid=tid)
    elif style == "gable":
        b.solid(fr.rect(u, v, L, D), 0, h, "gable", D / 2 * math.tan(math.radians(rng.uniform(6, 12))), roof_rgb, wall,
                group=g, tid=tid)
    else:
        b.solid(fr.rect(u, v, L, D), 0, h, "flat", 0, roof_rgb, wall, group=g, tid=tid, parapet=True)
    b.finish_target(tid)
    return tid


# --- flat sport & leisure ----------------------------------------------------------------------
def _rect_lines(fr: Frame, u: float, v: float, length: float, width: float, a: float = 0.0) -> np.ndarray:
    p = fr.rect(u, v, length, width, a)
    return np.stack([p, np.roll(p, -1, 0)], 1)


def tennis_court(b: SceneBuilder, fr: Frame, u: float, v: float, inner: str, outer: str | None) -> int:
    """One court (playing area 23.77 x 10.97 m, enclosure 36.6 x 18.3 m) along local u."""
    tid = b.new_target("sport_tennis")
    enclosure = fr.rect(u, v, 36.6, 18.3)
    if outer:
        b.ground(enclosure, outer, 4, tid=tid)
    b.ground(fr.rect(u, v, 23.77 + 1.0, 10.97 + 1.0), inner, 5, tid=tid)
    segs = [_rect_lines(fr, u, v, 23.77, 10.97), _rect_lines(fr, u, v, 23.77, 8.23)[[0, 2]]]
    for s in (-6.40, 6.40):
        segs.append(np.stack([fr.pt(u + s, v - 4.115), fr.pt(u + s, v + 4.115)])[None])
    segs.append(np.stack([fr.pt(u - 6.4, v), fr.pt(u + 6.4, v)])[None])
    b.marks(np.concatenate(segs), 0.08, "white")
    b.marks(np.stack([fr.pt(u, v - 6.4), fr.pt(u, v + 6.4)])[None], 0.12, "net")
    b.finish_target(tid, [enclosure])
    return tid


def basketball_court(b: SceneBuilder, fr: Frame, u: float, v: float, material: str, a: float = 0.0) -> int:
    """28 x 15 m court (with 2 m run-off) along local angle ``a``."""
    tid = b.new_target("sport_basketball")
    sub = Frame(fr.pt(u, v), fr.angle + a)
    outer = sub.rect(0, 0, 32.0, 19.0)
    b.ground(outer, material, 4, tid=tid)
    if b.rng.random() < 0.5:
        for s in (-1, 1):
            b.ground(sub.rect(s * (14 - 2.9), 0, 5.8, 4.9), pick(b.rng, ["court_red", "court_blue", "court_green"]),
                     5, tid=tid)
    segs = [_rect_lines(sub, 0, 0, 28, 15), np.stack([sub.pt(0, -7.5), sub.pt(0, 7.5)])[None],
            _rect_lines(sub, -14 + 2.9, 0, 5.8, 4.9), _rect_lines(sub, 14 - 2.9, 0, 5.8, 4.9)]
    t = np.linspace(0, 2 * np.pi, 25)
    circ = np.c_[1.8 * np.cos(t), 1.8 * np.sin(t)]
    segs.append(np.stack([sub.pts(circ[:-1]), sub.pts(circ[1:])], 1))
    for s in (-1, 1):  # three-point lines
        ang = np.linspace(-np.arccos(0.0 / 6.75) + 0.14, np.arccos(0.0) - 0.14, 17)
        arc = np.c_[s * (14 - 1.575 - 6.75 * np.cos(ang)), 6.75 * np.sin(ang)]
        arc = np.concatenate([[[s * 14, arc[0, 1]]], arc, [[s * 14, arc[-1, 1]]]])
        segs.append(np.stack([sub.pts(arc[:-1]), sub.pts(arc[1:])], 1))
    b.marks(np.concatenate(segs), 0.06, "white")
    b.finish_target(tid, [outer])
    return tid


def soccer_pitch(b: SceneBuilder, fr: Frame, u: float, v: float, length: float, width: float, a: float = 0.0,
                 turf: bool = False, target: bool = True) -> int:
    """Football pitch with mowing stripes and full line markings, centred at local (u, v)."""
    rng = b.rng
    tid = b.new_target("sport_soccer") if target else 0
    sub = Frame(fr.pt(u, v), fr.angle + a)
    area = sub.rect(0, 0, length + 8, width + 8)
    mat = "turf" if turf else "pitch"
    base_var = rng.uniform(0.3, 0.7)
    b.ground(area, mat, 4, var=base_var, tid=tid)
    n = max(6, int(round(length / rng.uniform(5, 7))))
    sw = (length + 8) / n
    for k in range(0, n, 2):
        b.ground(sub.rect(-(length + 8) / 2 + sw * (k + 0.5), 0, sw, width + 8), mat, 5, var=min(1, base_var + 0.22),
                 tid=tid)
    L2, W2 = length / 2, width / 2
    segs = [_rect_lines(sub, 0, 0, length, width), np.stack([sub.pt(0, -W2), sub.pt(0, W2)])[None]]
    t = np.linspace(0, 2 * np.pi, 33)
    circ = np.c_[9.15 * np.cos(t), 9.15 * np.sin(t)]
    segs.append(np.stack([sub.pts(circ[:-1]), sub.pts(circ[1:])], 1))
    for s in (-1, 1):
        pa_d, pa_w = min(16.5, length * 0.16), min(40.3, width * 0.6)
        segs.append(_rect_lines(sub, s * (L2 - pa_d / 2), 0, pa_d, pa_w))
        segs.append(_rect_lines(sub, s * (L2 - 2.75), 0, 5.5, min(18.3, width * 0.28)))
    b.marks(np.concatenate(segs), 0.12, "white")
    for s in (-1, 1):  # goals
        b.marks(np.stack([sub.pt(s * (L2 + 0.6), -3.66), sub.pt(s * (L2 + 0.6), 3.66)])[None], 0.5, "white")
    if tid:
        b.finish_target(tid, [sub.rect(0, 0, length, width)])
    return tid


def running_track(b: SceneBuilder, fr: Frame, u: float, v: float, straight: float, radius: float, lanes: int,
                  a: float = 0.0, material: str = "track", tid: int = 0) -> tuple[np.ndarray, float]:
    """Oval track (inner ``radius``, ``lanes`` x 1.22 m) with the inner field; returns the outer
    oval polygon and outer radius."""
    c = fr.pt(u, v)
    ang = fr.angle + a
    outer_r = radius + lanes * 1.22 + 0.5
    outer = geo.stadium_oval(c[0], c[1], straight, outer_r, ang, 28)
    b.ground(outer, material, 4, tid=tid)
    for k in range(lanes + 1):
        o = geo.stadium_oval(c[0], c[1], straight, radius + k * 1.22, ang, 28)
        b.polyline_marks(o, 0.06, "white", closed=True)
    inner = geo.stadium_oval(c[0], c[1], straight, radius - 0.3, ang, 28)
    b.ground(inner, "pitch", 5, tid=tid)
    return outer, outer_r


def stadium(b: SceneBuilder, fr: Frame, u: float, v: float, max_l: float, max_d: float) -> int:
    """Athletics stadium: 400 m track around a pitch, stands on 2-4 sides (shed-roofed, some
    with a canopy). Needs about 200 x 125 m."""
    rng = b.rng
    tid = b.new_target("leisure_stadium")
    straight, radius = 84.39, 36.5
    outer, ro = running_track(b, fr, u, v, straight, radius, 8, material=pick(rng, ["track", "track", "court_blue"]),
                              tid=tid)
    sub = Frame(fr.pt(u, v), fr.angle)
    soccer_pitch(b, sub, 0, 0, 100, 64, target=False)
    depth = min(15.0, max(8.0, min((max_l - straight - 2 * ro) / 2 - 4, (max_d - 2 * ro) / 2 - 4)))
    sides = pick(rng, [("n", "s"), ("n",), ("n", "s", "e", "w"), ("n", "s")])
    stand_rgb = jitter(rng, pick(rng, [(0.62, 0.62, 0.64), (0.55, 0.35, 0.30), (0.35, 0.42, 0.58), (0.70, 0.70, 0.68)]))
    wall = jitter(rng, (0.70, 0.70, 0.70))
    g = b.group()
    order = 0
    polys = [outer]
    low, rise = 2.0, depth * rng.uniform(0.45, 0.7)
    for side in sides:
        if side in ("n", "s"):
            sgn = 1 if side == "s" else -1
            vc = sgn * (ro + 3 + depth / 2)
            foot = sub.rect(0, vc, straight + 10, depth, 0 if sgn > 0 else math.pi)
            b.solid(foot, 0, low, "shed", rise, stand_rgb, wall, group=g, order=order, tid=tid)
            polys.append(foot)
            order += 1
            if rng.random() < 0.6:  # canopy over the upper rows
                cv = sgn * (ro + 3 + depth * 0.62)
                canopy = sub.rect(0, cv, straight + 6, depth * 0.8, 0 if sgn > 0 else math.pi)
                z = low + rise + 2.5
                b.solid(canopy, z, z + 0.8, "flat", 0, jitter(rng, (0.85, 0.85, 0.84)), (0.5, 0.5, 0.5),
                        kind="canopy", group=g, order=order + 20, tid=tid)
        else:
            sgn = 1 if side == "e" else -1
            for k in range(5):
                phi = -math.pi / 2 + (k + 0.5) * math.pi / 5
                rr = ro + 3 + depth / 2
                cu = sgn * (straight / 2 + rr * math.cos(phi))
                cvv = rr * math.sin(phi)
                chord = 2 * (ro + 3) * math.tan(math.pi / 10) + 1.0
                radial = math.atan2(math.sin(phi), sgn * math.cos(phi))
                foot = sub.rect(cu, cvv, chord, depth * 0.9, radial - math.pi / 2)
                b.solid(foot, 0, low, "shed", rise * 0.8, stand_rgb, wall, group=g, order=order, tid=tid)
                polys.append(foot)
                order += 1
    for k in range(4):  # floodlight masts
        cu, cvv = (1 if k % 2 else -1) * (straight / 2 + ro * 0.6), (1 if k < 2 else -1) * (ro + 1.5)
        b.solid(sub.rect(cu, cvv, 1.2, 1.2), 0, rng.uniform(25, 35), "flat", 0, (0.5, 0.5, 0.5), (0.55, 0.55, 0.55),
                kind="mast", group=g, order=100 + k, tid=tid)
    b.finish_target(tid, polys)
    return tid


def pool_complex(b: SceneBuilder, fr: Frame, u: float, v: float, L: float, D: float) -> list[int]:
    """Public outdoor pool: deck, a 25 or 50 m lane pool (target), learner and leisure pools."""
    rng = b.rng
    sub = Frame(fr.pt(u, v), fr.angle)
    b.ground(sub.rect(0, 0, L, D), "deck", 3, var=rng.uniform(0.2, 0.8))
    big = L >= 62 and rng.random() < 0.6
    pl, pw = (50.0, rng.choice([21.0, 25.0])) if big else (25.0, rng.choice([12.5, 16.6, 21.0]))
    pu = -L / 2 + pl / 2 + 4
    tids = []
    tid = b.new_target("leisure_swimming_pool")
    basin = sub.rect(pu, 0, pl, pw)
    b.ground(basin, "pool", 5, tid=tid)
    lanes = int(pw // 2.5)
    for k in range(1, lanes):
        vv = -pw / 2 + k * pw / lanes
        b.marks(np.stack([sub.pt(pu - pl / 2 + 2, vv), sub.pt(pu + pl / 2 - 2, vv)])[None], 0.25, "lane_blue")
    b.finish_target(tid, [basin])
    tids.append(tid)
    rest = L - pl - 12
    if rest > 12:  # learner pool and a leisure pool
        lu = pu + pl / 2 + 4 + min(rest, 16) / 2
        b.ground(sub.rect(lu, -D / 4, min(rest, 16), min(D / 3, 10)), "pool", 5)
        c = sub.pt(lu, D / 4)
        blob = np.concatenate([geo.circle(c[0], c[1], min(rest, 14) / 2.4), ])
        b.ground(blob, "pool", 5)
    return tids


def parking_lot(b: SceneBuilder, fr: Frame, u: float, v: float, L: float, D: float, occupancy: float,
                target: bool = True, trees: bool = True) -> int:
    """Surface car park centred at local (u, v): rows of 2.5 x 5 m stalls along local u with
    6.5 m aisles, painted lines, vehicle slots, trees on the ends."""
    rng = b.rng
    if L < 16 or D < 12:
        return 0
    tid = b.new_target("amenity_parking") if target else 0
    sub = Frame(fr.pt(u - L / 2, v - D / 2), fr.angle, L, D)
    lot = sub.rect(L / 2, D / 2, L, D)
    b.ground(lot, pick(rng, ["asphalt", "asphalt", "asphalt_old"]), 1, tid=tid)
    rows: list[tuple[float, int]] = []  # (v of the stall row's aisle-side edge, direction)
    vv = 1.0
    while vv + 11.5 <= D - 1.0:
        rows.append((vv + 5.0, -1))
        if vv + 16.5 <= D - 1.0:
            rows.append((vv + 11.5, 1))
            vv += 16.5 + 0.5
        else:
            vv += 11.5
    n = int((L - 2.0) // 2.5)
    u0 = (L - n * 2.5) / 2
    segs = []
    lines_u = u0 + 2.5 * np.arange(n + 1)
    stalls_u = lines_u[:-1] + 1.25
    for edge, sgn in rows:
        a = sub.pts(np.c_[lines_u, np.full(n + 1, edge)])
        c = sub.pts(np.c_[lines_u, np.full(n + 1, edge + sgn * 5.0)])
        segs.append(np.stack([a, c], 1))
        p = sub.pts(np.c_[stalls_u, np.full(n, edge + sgn * 2.5)])
        b.slots.extend(map(tuple, np.c_[p, np.full((n, 1), fr.angle + math.pi / 2),
                                        np.tile([4.5, 1.85, 1.5, occupancy], (n, 1))].tolist()))
    if segs:
        b.marks(np.concatenate(segs), 0.12, pick(rng, ["white", "white", "yellow"]))
    if trees:
        for edge, _ in rows[::2]:
            for uu in (0.2, L - 0.2):
                x, y = sub.xy(uu, edge)
                if rng.random() < 0.7:
                    b.tree(x, y, rng.uniform(2.5, 4), rng.uniform(5, 9))
    if tid:
        b.finish_target(tid, [lot])
    return tid


# --- street furniture -------------------------------------------------------------------------
def roundabout(b: SceneBuilder, centre: np.ndarray, angle: float, radius: float, lane: float) -> int:
    """Roundabout over an intersection: ring road, kerbed central island, splitter islands."""
    rng = b.rng
    tid = b.new_target("junction_roundabout")
    cx, cy = centre
    outer = geo.circle(cx, cy, radius, 48)
    b.ground(geo.circle(cx, cy, radius + 2.5, 48), "sidewalk", 7)
    b.ground(outer, "asphalt", 7, var=rng.uniform(0.2, 0.5), tid=tid)
    ri = radius - lane
    b.ground(geo.circle(cx, cy, ri, 40), "concrete", 8, tid=tid)
    b.ground(geo.circle(cx, cy, ri - 0.8, 40), pick(rng, ["lawn", "lawn", "grass", "plaza"]), 8, tid=tid)
    if rng.random() < 0.5:
        b.ground(geo.circle(cx, cy, (ri - 0.8) * 0.45, 24), pick(rng, ["soil", "plaza"]), 8, tid=tid)
    if rng.random() < 0.6 and ri > 4:
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(0, ri * 0.5)
            t = rng.uniform(0, 2 * np.pi)
            b.tree(cx + r * math.cos(t), cy + r * math.sin(t), rng.uniform(2, min(4.5, ri * 0.5)), rng.uniform(5, 9))
    t = np.linspace(0, 2 * np.pi, 61)
    mid = ri + lane / 2
    ring = np.c_[cx + mid * np.cos(t), cy + mid * np.sin(t)]
    if lane > 7.5:
        segs = np.stack([ring[:-1], ring[1:]], 1)[::2]
        b.marks(segs, 0.12, "white")
    for k in range(4):  # splitter islands and give-way lines on the four approaches
        a = angle + k * math.pi / 2
        d = np.array([math.cos(a), math.sin(a)])
        n = np.array([-d[1], d[0]])
        p0 = centre + d * (radius + 1.0)
        tri = np.array([p0 + n * 1.6, p0 - n * 1.6, p0 + d * 11.0])
        b.ground(tri, "concrete", 8)
        gw = [centre + d * (radius + 0.5) + n * s for s in (2.0, 5.0)]
        b.marks(geo.dashes(gw[0], gw[1], 0.5, 0.4), 0.3, "white")
    b.finish_target(tid, [outer])
    return tid


def bridge(b: SceneBuilder, p: np.ndarray, road_dir: np.ndarray, river_dir: np.ndarray, river_w: float,
           road_w: float, rural: bool) -> int:
    """Road bridge over the river at ``p``: raised deck with girders, abutments, piers."""
    rng = b.rng
    tid = b.new_target("man_made_bridge")
    g = b.group()
    sin = abs(road_dir[0] * river_dir[1] - road_dir[1] * river_dir[0])
    length = river_w / max(sin, 0.35) + 2 * rng.uniform(4, 8)
    width = road_w + 2.0 * rng.uniform(0.8, 1.5)
    h = rng.uniform(4.5, 9.0)
    ang = math.atan2(road_dir[1], road_dir[0])
    deck = geo.rect(p[0], p[1], length, width, ang)
    deck_rgb = jitter(rng, (0.34, 0.34, 0.35) if not rural else (0.45, 0.43, 0.40), 0.05)
    girder = jitter(rng, pick(rng, [(0.72, 0.71, 0.68), (0.55, 0.55, 0.56), (0.45, 0.32, 0.25)]), 0.04)
    s = b.solid(deck, h - rng.uniform(1.0, 1.8), h, "flat", 0, deck_rgb, girder, kind="bridge", group=g, order=2,
                tid=tid)
    if not rural:
        ends = np.array([p - road_dir * length / 2, p + road_dir * length / 2])
        nrm = np.array([-road_dir[1], road_dir[0]]) * (width / 2 - 0.5)
        marks = [b.marks(geo.dashes(ends[0], ends[1], 3, 5), 0.15, "white", z=h),
                 b.marks(np.stack([ends + nrm, ends - nrm]).reshape(2, 2, 2), 0.25, "white", z=h)]
        s.deck_marks = [m for m in marks if m is not None]
    for sgn in (-1, 1):  # abutments where the deck meets the banks
        c = p + sgn * road_dir * (length / 2 - 1.5)
        b.solid(geo.rect(c[0], c[1], 3.0, width, ang), 0, h - 0.05, "flat", 0, deck_rgb, girder, kind="pier", group=g,
                order=0, tid=tid)
    n_piers = int(length // 25)
    for k in range(1, n_piers + 1):
        c = p + road_dir * (-length / 2 + k * length / (n_piers + 1))
        b.solid(geo.rect(c[0], c[1], 1.5, width * 0.7, ang), 0, h - 1.0, "flat", 0, girder, girder, kind="pier",
                group=g, order=1, tid=tid)
    b.finish_target(tid, [deck])
    return tid
