"""Town layout: street grid, land use per block, river with bridges, roundabouts.

:func:`build_scene` makes the scene for one pair. The street grid is rotated and irregular;
a town centre sets how urban each block is (apartments and shops in the centre, houses,
then industry and sports grounds, then fields and woods). The requested target class is
planted at an *anchor* point inside the tile (not at its centre), and ``distractors``
look-alikes of the same class are planted elsewhere in the tile, so that only the query's
context tells which one is meant.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from smgeo_synth import blocks, objects as ob
from smgeo_synth import geometry as geo
from smgeo_synth.builder import Frame, SceneBuilder, SceneRng
from smgeo_synth.difficulty import Difficulty
from smgeo_synth.scene import Scene

CLASS_USES = {
    "building": ["apartments", "commercial", "industrial"],
    "building_house": ["residential"],
    "sport_basketball": ["park_courts", "school"],
    "sport_tennis": ["tennis"],
    "sport_soccer": ["soccer"],
    "leisure_stadium": ["stadium"],
    "amenity_parking": ["commercial"],
    "leisure_swimming_pool": ["pool"],
    "junction_roundabout": ["residential", "commercial", "apartments"],
    "man_made_bridge": ["residential", "commercial", "park"],
}
NEED = {"stadium": (222, 140), "soccer": (122, 84), "tennis": (84, 48), "pool": (80, 62), "commercial": (80, 64),
        "apartments": (70, 55), "industrial": (90, 60), "park_courts": (75, 55), "school": (95, 80),
        "residential": (70, 34), "park": (50, 40)}
URBAN_USES = [  # (urbanity threshold, uses, weights)
    (0.6, ["apartments", "commercial", "residential", "park", "school", "pool", "industrial"],
     [0.3, 0.25, 0.25, 0.08, 0.05, 0.03, 0.04]),
    (0.25, ["residential", "apartments", "commercial", "park", "school", "tennis", "soccer", "pool", "industrial"],
     [0.55, 0.1, 0.1, 0.08, 0.05, 0.03, 0.03, 0.03, 0.03]),
    (0.0, ["residential", "industrial", "commercial", "soccer", "tennis", "park", "farm", "pool", "school"],
     [0.45, 0.18, 0.07, 0.07, 0.05, 0.08, 0.05, 0.02, 0.03]),
]
RURAL_USES = (["field", "forest", "farm", "riverside"], [0.78, 0.1, 0.1, 0.02])


@functools.lru_cache
def _use_cdf(w: tuple[float, ...]) -> np.ndarray:
    cdf = (np.array(w) / sum(w)).cumsum()
    cdf /= cdf[-1]
    return cdf


def _pick_use(rng: np.random.Generator, uses: list[str], w: list[float]) -> str:
    """``uses[rng.choice(len(uses), p=np.array(w) / sum(w))]``: numpy's choice searches one
    random() draw in this cumulative table; here the table is built once per weight list."""
    return uses[int(_use_cdf(tuple(w)).searchsorted(rng.random(), side="right"))]


def _lines(rng: np.random.Generator, a: float, need: float, reach: float) -> list[tuple[float, float, bool]]:
    """Street centre lines (position, width, main road) around the anchor coordinate ``a``,
    such that the block holding ``a`` is at least ``need`` m wide (inside the sidewalks)."""
    def road() -> tuple[float, bool]:
        main = rng.random() < 0.25
        return (rng.uniform(12, 16) if main else rng.uniform(7, 9.5)), main

    sw = 3.0
    interior = need + rng.uniform(0, 25)
    (w0, m0), (w1, m1) = road(), road()
    left = a - rng.uniform(0.25, 0.75) * interior - w0 / 2 - sw
    right = left + w0 / 2 + sw + interior + sw + w1 / 2
    out = [(left, w0, m0), (right, w1, m1)]
    pos = left
    while pos > -reach:
        w, m = road()
        pos -= rng.uniform(55, 145)
        out.insert(0, (pos, w, m))
    pos = right
    while pos < reach:
        w, m = road()
        pos += rng.uniform(55, 145)
        out.append((pos, w, m))
    return out


def _river(rng: np.random.Generator, p0: np.ndarray, direction: np.ndarray, size: float) -> np.ndarray:
    t = np.arange(-1.5 * size, 1.5 * size, 12.0)
    n = np.array([-direction[1], direction[0]])
    lat = np.zeros_like(t)
    for _ in range(2):
        amp, lam, ph = rng.uniform(10, 45), rng.uniform(280, 650), rng.uniform(0, 2 * np.pi)
        lat += amp * (np.sin(2 * np.pi * t / lam + ph) - np.sin(ph))
    return p0 + t[:, None] * direction + lat[:, None] * n


def _band(line: np.ndarray, half: float) -> np.ndarray:
    d = np.gradient(line, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    n = np.c_[-d[:, 1], d[:, 0]]
    return np.concatenate([line + n * half, (line - n * half)[::-1]])


def build_scene(seed: int, extent: float, required: str, diff: Difficulty) -> Scene:
    """Scene for a pair whose target class is ``required``; tile ``extent`` metres wide."""
    rng = SceneRng(seed)
    margin = float(np.clip(0.5 * extent, 120, 300))
    size = extent + 2 * margin
    b = SceneBuilder(size, (margin, margin, extent), seed, rng)
    style = blocks.town_style(rng)
    gamma = rng.uniform(0, math.pi / 2) if rng.random() < 0.7 else rng.normal(0, 0.04)
    eu, ev = np.array([math.cos(gamma), math.sin(gamma)]), np.array([-math.sin(gamma), math.cos(gamma)])
    c0 = np.array([size / 2, size / 2])
    anchor = np.array([margin, margin]) + extent * rng.uniform(0.22, 0.78, 2)
    use = ob.pick(rng, CLASS_USES[required])
    need = NEED.get(use, (60, 40))
    if extent < 300:  # small tiles: no room for big blocks around the anchor
        need = (min(need[0], extent * 0.7), min(need[1], extent * 0.6))
    a_loc = np.array([(anchor - c0) @ eu, (anchor - c0) @ ev])
    reach = size * 0.75
    lu = _lines(rng, a_loc[0], need[0], reach)
    lv = _lines(rng, a_loc[1], need[1], reach)
    sw = 3.0
    (c0x, c0y), (eux, euy), (evx, evy) = c0.tolist(), eu.tolist(), ev.tolist()

    def world_xy(u: float, v: float) -> tuple[float, float]:  # c0 + u * eu + v * ev, in the same order
        return c0x + u * eux + v * evx, c0y + u * euy + v * evy

    def to_world(u, v):
        if isinstance(u, (float, int)) and isinstance(v, (float, int)):
            return np.array(world_xy(u, v))
        return c0 + u * eu + v * ev

    # town centre and urbanity of every block
    town = anchor + rng.normal(0, 120, 2)
    town_r = rng.uniform(280, 650) * (extent / 512) ** 0.5
    cells = {}
    for i in range(len(lu) - 1):
        for j in range(len(lv) - 1):
            u0, u1 = lu[i][0] + lu[i][1] / 2 + sw, lu[i + 1][0] - lu[i + 1][1] / 2 - sw
            v0, v1 = lv[j][0] + lv[j][1] / 2 + sw, lv[j + 1][0] - lv[j + 1][1] / 2 - sw
            if u1 - u0 < 15 or v1 - v0 < 15:
                continue
            quad = [world_xy(u0, v0), world_xy(u1, v0), world_xy(u1, v1), world_xy(u0, v1)]
            xs, ys = [q[0] for q in quad], [q[1] for q in quad]
            if max(xs) < 0 or min(xs) > size or max(ys) < 0 or min(ys) > size:
                continue
            corners = np.array(quad)
            centre = corners.mean(0)
            urb = 1 - np.hypot(*(centre - town)) / town_r + rng.normal(0, 0.12)
            cells[(i, j)] = {"frame": Frame(corners[0], gamma, u1 - u0, v1 - v0), "urb": urb, "centre": centre,
                             "corners": corners, "use": None}
    ia = next(i for i in range(len(lu) - 1) if lu[i][0] <= a_loc[0] <= lu[i + 1][0])
    ja = next(j for j in range(len(lv) - 1) if lv[j][0] <= a_loc[1] <= lv[j + 1][0])
    anchor_cell = (ia, ja)

    # river (always through the anchor for bridges; sometimes elsewhere)
    river = None
    if required == "man_made_bridge":
        k = int(np.argmin([abs(p - a_loc[0]) for p, _, _ in lu]))
        if not 0 < k < len(lu) - 1:
            k = ia
        ja2 = next(j for j in range(len(lv) - 1) if lv[j][0] <= a_loc[1] <= lv[j + 1][0])
        p0 = to_world(lu[k][0], (lv[ja2][0] + lv[ja2 + 1][0]) / 2)
        turn = math.radians(rng.uniform(55, 90)) * rng.choice([-1, 1])
        d = np.array([math.cos(turn) * ev[0] - math.sin(turn) * ev[1], math.sin(turn) * ev[0] + math.cos(turn) * ev[1]])
        river = (_river(rng, p0, d, size), rng.uniform(16, 42) / 2)
    elif rng.random() < 0.3:
        corners = cells[anchor_cell]["corners"] if anchor_cell in cells else anchor[None]
        for _ in range(10):
            p0 = rng.uniform(0, size, 2)
            t = rng.uniform(0, np.pi)
            half = rng.uniform(9, 25)
            line = _river(rng, p0, np.array([math.cos(t), math.sin(t)]), size)
            if geo.polyline_distance(np.concatenate([corners, anchor[None]]), line).min() > half + 40:
                river = (line, half)
                break

    # land use
    for key, c in cells.items():
        if c["urb"] > 0:
            for thr, uses, w in URBAN_USES:
                if c["urb"] > thr:
                    c["use"] = _pick_use(rng, uses, w)
                    break
        else:
            c["use"] = _pick_use(rng, *RURAL_USES)
        if c["use"] in NEED and (c["frame"].L < NEED[c["use"]][0] * 0.8 or c["frame"].D < NEED[c["use"]][1] * 0.8):
            c["use"] = "residential" if c["urb"] > 0 else "field"
    tile_cells = [k for k, c in cells.items() if k != anchor_cell and
                  np.all((c["corners"] > margin + 5) & (c["corners"] < margin + extent - 5))]
    if anchor_cell in cells:
        cells[anchor_cell]["use"] = use
    if required not in ("junction_roundabout", "man_made_bridge", "building_house"):
        order = rng.permutation(len(tile_cells))
        placed = 0
        for idx in order:
            if placed >= diff.distractors:
                break
            c = cells[tile_cells[idx]]
            u2 = ob.pick(rng, CLASS_USES[required])
            nd = NEED.get(u2, (50, 40))
            if c["frame"].L >= nd[0] * 0.8 and c["frame"].D >= nd[1] * 0.8:
                c["use"] = u2
                placed += 1
    field = None
    if river is not None:
        field = geo.DistanceField(river[0], (-320.0, -320.0, size + 320.0, size + 320.0))
    if river is not None and cells:
        line, half = river
        keys = list(cells)
        probe = np.stack([np.concatenate([c["corners"], c["centre"][None],
                                          (c["corners"] + np.roll(c["corners"], 1, 0)) / 2]) for c in cells.values()])
        dist = field(probe.reshape(-1, 2)).reshape(len(keys), -1)
        for key, dmin, dc in zip(keys, dist.min(1), dist[:, 4]):
            if dmin < half + 10 or dc < half:
                cells[key]["use"] = "riverside"

    # blocks are filled lazily: those the satellite sees now, the rest when a drone view needs them
    for key in sorted(cells):
        c = cells[key]
        b.pending[key] = {"frame": c["frame"], "use": c["use"], "bounds": geo.bbox(c["corners"]),
                          "seed": [seed, 7919, key[0] + 1000, key[1] + 1000]}
    b.fill_block = lambda b_, cell: _fill_block(b_, cell, style, sw, required)

    # streets
    _streets(b, rng, lu, lv, cells, to_world, eu, ev, sw)
    if river is not None:
        line, half = river
        b.ground(_band(line, half + rng.uniform(2, 6)), ob.pick(rng, ["sand", "grass", "gravel"]), 6)
        b.ground(_band(line, half), "water", 6)
        b.add_clear("river", field, half + 1.0)
        placed: list[np.ndarray] = []
        for road in b.roads:
            for p, d in geo.segment_intersection(road["pts"][0], road["pts"][-1], line):
                rd = road["pts"][-1] - road["pts"][0]
                rd = rd / np.linalg.norm(rd)
                sin = abs(rd[0] * d[1] - rd[1] * d[0])
                if sin < 0.5:  # road almost along the river: no bridge
                    continue
                if any(np.hypot(*(p - q)) < half / sin + 25 for q in placed):  # crossing roads over the water
                    continue
                placed.append(p)
                ob.bridge(b, p, rd, d, 2 * half, road["width"] + (2 * sw if road["urban"] else 0), not road["urban"])

    # roundabouts
    nodes = []
    pts = np.array([to_world(pu, pv) for pu, _, _ in lu for pv, _, _ in lv])
    far_river = field(pts) - river[1] if field is not None else np.full(len(pts), 1e9)
    for n_idx, (i, j) in enumerate((i, j) for i in range(len(lu)) for j in range(len(lv))):
        p = pts[n_idx]
        if not (-50 < p[0] < size + 50 and -50 < p[1] < size + 50):
            continue
        r = max(lu[i][1], lv[j][1]) / 2 + rng.uniform(9, 16)
        inside = bool(np.all((p > margin + r + 6) & (p < margin + extent - r - 6)))
        urban = any(cells.get(k, {"urb": -1})["urb"] > 0 for k in ((i - 1, j - 1), (i, j), (i - 1, j), (i, j - 1)))
        if urban and far_river[n_idx] > r + 15:
            nodes.append((p, r, inside))
    chosen = []
    if required == "junction_roundabout":
        cand = [n for n in nodes if n[2]]
        if cand:
            chosen.append(min(cand, key=lambda n: np.hypot(*(n[0] - anchor))))
            others = [n for n in cand if np.hypot(*(n[0] - chosen[0][0])) > 90]
            for k in rng.permutation(len(others))[: diff.distractors]:
                chosen.append(others[k])
    elif nodes and rng.random() < 0.35:
        chosen.append(nodes[int(rng.integers(len(nodes)))])
    for p, r, _ in chosen:
        b.add_clear("disc", p, r + 4.0)
        ob.roundabout(b, p, gamma, r, rng.uniform(6.5, 8.5))
    scene = b.finish()
    x0, y0, e = scene.tile
    scene.ensure((x0 - 60, y0 - 60, x0 + e + 60, y0 + e + 60))
    scene.anchor = anchor
    return scene


def _fill_block(b: SceneBuilder, cell: dict, style: dict, sw: float, required: str) -> None:
    rng = b.rng
    fr, u = cell["frame"], cell["use"]
    if u == "residential":
        blocks.residential(b, fr, style, sw)
    elif u == "park_courts":
        blocks.park(b, fr, style, courts=int(rng.integers(2, 4)))
    elif u == "park":
        blocks.park(b, fr, style, courts=int(rng.random() < 0.3), tennis=int(rng.random() < 0.1))
    elif u == "school":
        blocks.school(b, fr, style, courts=int(rng.integers(1, 4)) if required == "sport_basketball" else 1)
    else:
        blocks.FILLERS[u](b, fr, style)


def _streets(b: SceneBuilder, rng, lu, lv, cells, to_world, eu, ev, sw: float) -> None:
    """Roads along both families of grid lines, merged into polylines of one kind."""
    urban_cells = {key for key, c in cells.items() if c["urb"] > 0}
    for fam, (lines, cross) in enumerate(((lu, lv), (lv, lu))):
        for k, (pos, width, main) in enumerate(lines):
            run: list[np.ndarray] = []
            kind_prev = None
            for j in range(len(cross) - 1):
                keys = ((k - 1, j), (k, j)) if fam == 0 else ((j, k - 1), (j, k))
                urban = keys[0] in urban_cells or keys[1] in urban_cells
                exists = keys[0] in cells or keys[1] in cells
                kind = ("urban" if urban else ("rural" if rng.random() > 0.3 else None)) if exists else None
                if kind != kind_prev and run:
                    _road(b, rng, np.array(run), width, main, kind_prev, sw)
                    run = []
                if kind is not None:  # the run goes on to the next crossing
                    if not run:
                        run.append(to_world(pos, cross[j][0]) if fam == 0 else to_world(cross[j][0], pos))
                    run.append(to_world(pos, cross[j + 1][0]) if fam == 0 else to_world(cross[j + 1][0], pos))
                kind_prev = kind
            if run and kind_prev:
                _road(b, rng, np.array(run), width, main, kind_prev, sw)


def _road(b: SceneBuilder, rng, pts: np.ndarray, width: float, main: bool, kind: str, sw: float) -> None:
    urban = kind == "urban"
    if not urban:
        width = rng.uniform(4, 6)
        b.ground(pts, ob.pick(rng, ["dirt_track", "asphalt_old", "gravel"]), 3, width=width)
    else:
        b.ground(pts, "sidewalk", 2, width=width + 2 * sw)
        b.ground(pts, "asphalt", 3, width=width)
        a, c = pts[0], pts[-1]
        d = (c - a) / max(np.linalg.norm(c - a), 1e-9)
        n = np.array([-d[1], d[0]])
        if main:
            b.marks(geo.dashes(a, c, 3.0, 6.0), 0.15, "white")
            for s in (-1, 1):
                b.marks(np.array([[a + n * s * (width / 2 - 0.4), c + n * s * (width / 2 - 0.4)]]), 0.15, "white")
        elif rng.random() < 0.35:
            b.marks(geo.dashes(a, c, 2.0, 4.0), 0.12, "white")
        length = float(np.linalg.norm(c - a))
        t = np.arange(rng.uniform(0, 20), length, 9.0)
        heading = math.atan2(d[1], d[0])
        for s in (-1, 1):  # traffic
            p = a + d * t[:, None] + n * s * width / 4
            occ = 0.05 if main else 0.02
            b.slots.extend([(x, y, heading, 4.5, 1.85, 1.5, occ) for x, y in p.tolist()])
    b.roads.append({"pts": pts, "width": width, "urban": urban})
