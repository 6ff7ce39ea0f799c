"""Incremental construction of a :class:`~.scene.Scene` (used by :mod:`.layout` and :mod:`.objects`).

Block frames: generators place things in a block's local frame (u along the street grid,
v across, metres from the block corner); :class:`Frame` maps local to scene metres.
"""

from __future__ import annotations

import math
import operator

import cv2
import numpy as np

from smgeo_synth import geometry as geo
from smgeo_synth.scene import A_ONLY, B_ONLY, BOTH, Field, GroundFeature, Marks, Scene, Solid, Target


class SceneRng(np.random.Generator):
    """``np.random.default_rng(seed)`` with a faster scalar :meth:`uniform` (scene building
    draws ~12,000 per scene): numpy's scalar uniform returns ``low + (high - low) * u`` for
    the next ``u = random()``, computed here with the same float64 operations, the same
    draw, and without numpy's per-call array conversions."""

    def __init__(self, seed) -> None:
        super().__init__(np.random.PCG64(seed))  # what default_rng(seed) builds

    def uniform(self, low=0.0, high=1.0, size=None):
        if size is None and isinstance(low, (float, int)) and isinstance(high, (float, int)):
            rng = high - low
            if 0 <= rng < math.inf:  # else numpy's own checks raise
                return low + rng * self.random()
        return super().uniform(low, high, size)


def union_area(polys: list[np.ndarray], res: float = 0.25,
               bounds: tuple[float, float, float, float] | None = None) -> float:
    """Area (m^2) of the union of polygons, by rasterising them at ``res`` m (``bounds``:
    their bounding box, when known)."""
    pts = np.concatenate(polys)
    lx, ly, hx, hy = geo.bbox(pts) if bounds is None else bounds
    x0, y0 = lx - 1, ly - 1
    mask = np.zeros((math.ceil((hy - ly) / res) + 3, math.ceil((hx - lx) / res) + 3), np.uint8)
    q = np.round(((pts - (x0, y0)) / res - 0.5) * 4).astype(np.int32)  # all polygons at once
    k = 0
    for p in polys:
        cv2.fillPoly(mask, [q[k:k + len(p)]], 1, cv2.LINE_8, 2)
        k += len(p)
    return float(np.count_nonzero(mask)) * res * res


class Frame:
    """Local frame: origin (scene metres), axis angle (radians), size ``L`` x ``D`` metres."""

    def __init__(self, origin, angle: float, L: float = 0.0, D: float = 0.0) -> None:
        o = origin.tolist() if isinstance(origin, np.ndarray) else origin
        self._o = (float(o[0]), float(o[1]))  # Python floats: scalar maths without numpy overhead
        self._u = (math.cos(angle), math.sin(angle))
        self._v = (-math.sin(angle), math.cos(angle))
        self.angle, self.L, self.D = angle, L, D

    @property
    def origin(self) -> np.ndarray:
        return np.array(self._o)

    @property
    def eu(self) -> np.ndarray:
        return np.array(self._u)

    @property
    def ev(self) -> np.ndarray:
        return np.array(self._v)

    def xy(self, u: float, v: float) -> tuple[float, float]:
        """Scene (x, y) of local (u, v) scalars: the float64 sums of :meth:`pt`, as a tuple."""
        (ox, oy), (ux, uy), (vx, vy) = self._o, self._u, self._v
        return ox + u * ux + v * vx, oy + u * uy + v * vy

    def pt(self, u: float, v: float) -> np.ndarray:
        if isinstance(u, (float, int)) and isinstance(v, (float, int)):  # scalars: the same sums in Python
            return np.array(self.xy(u, v))
        return self.origin + u * self.eu + v * self.ev

    def pts(self, local) -> np.ndarray:
        local = np.asarray(local, dtype=np.float64)
        return self.origin + local[..., :1] * self.eu + local[..., 1:2] * self.ev

    def rect(self, u: float, v: float, length: float, width: float, a: float = 0.0) -> np.ndarray:
        """Rectangle centred at local (u, v), ``length`` along local angle ``a``."""
        x, y = self.xy(u, v)
        return geo.rect(x, y, length, width, self.angle + a)

    def sub(self, u: float, v: float, L: float, D: float, flip: bool = False) -> "Frame":
        """Child frame with origin at local (u, v); ``flip`` turns it by 180 degrees."""
        return Frame(self.xy(u, v), self.angle + (math.pi if flip else 0.0), L, D)


class Placer:
    """Non-overlapping axis-aligned rectangles in a block's local frame."""

    def __init__(self, L: float, D: float, rng: np.random.Generator, margin: float = 2.0) -> None:
        self.L, self.D, self.rng, self.margin = L, D, rng, margin
        self.used: list[tuple[float, float, float, float]] = []

    def free(self, u0, v0, u1, v1) -> bool:
        return all(u1 <= a or u0 >= c or v1 <= b or v0 >= d for a, b, c, d in self.used)

    def take(self, u0, v0, u1, v1) -> None:
        m = self.margin
        self.used.append((u0 - m, v0 - m, u1 + m, v1 + m))

    def place(self, lu: float, lv: float, tries: int = 25) -> tuple[float, float] | None:
        """Centre (u, v) of a free ``lu`` x ``lv`` rectangle, reserved; None if none found."""
        m = self.margin
        if lu + 2 * m > self.L or lv + 2 * m > self.D:
            return None
        for _ in range(tries):
            u = self.rng.uniform(m + lu / 2, self.L - m - lu / 2)
            v = self.rng.uniform(m + lv / 2, self.D - m - lv / 2)
            if self.free(u - lu / 2, v - lv / 2, u + lu / 2, v + lv / 2):
                self.take(u - lu / 2, v - lv / 2, u + lu / 2, v + lv / 2)
                return u, v
        return None

    def is_free_point(self, u: float, v: float, r: float) -> bool:
        return self.free(u - r, v - r, u + r, v + r)


class SceneBuilder:
    """Collects ground features, marks, solids, trees, vehicle slots and targets."""

    def __init__(self, size: float, tile: tuple[float, float, float], seed: int, rng: np.random.Generator) -> None:
        self.scene = Scene(size=size, tile=tile, seed=seed)
        self.rng = rng
        self._tid = 0
        self._group = 0
        self.trees: list[tuple] = []
        self.slots: list[tuple] = []
        self.change_rate = 0.02  # share of trees / minor buildings present in one capture only
        self.pending: dict = {}  # blocks not filled yet (see ensure)
        self.by_tid: dict[int, list[Solid]] = {}  # target id -> its solids
        self.clears: list = []
        self.fill_block = None  # callable(builder, cell) set by the layout
        self.roads: list[dict] = []  # {"pts", "width", "urban"} of every street polyline (for bridges)
        self._tables: dict[str, tuple[list, np.ndarray]] = {}  # see _rows_array

    # --- primitives -------------------------------------------------------------------------
    def ground(self, pts, material: str, layer: int, width: float = 0.0, var: float | None = None,
               tid: int = 0) -> GroundFeature:
        g = GroundFeature(np.asarray(pts, dtype=np.float64), material, layer, width,
                          float(self.rng.random() if var is None else var), tid)
        self.scene.ground.append(g)
        return g

    def marks(self, segs, width: float, colour: str = "white", z: float = 0.0) -> Marks | None:
        segs = np.asarray(segs, dtype=np.float64).reshape(-1, 2, 2)
        if not len(segs):
            return None
        m = Marks(segs, width, colour, z)
        if z == 0:
            self.scene.marks.append(m)
        return m

    def polyline_marks(self, pts, width: float, colour: str = "white", closed: bool = False) -> None:
        pts = np.asarray(pts, dtype=np.float64)
        if closed:
            pts = np.concatenate([pts, pts[:1]])
        self.marks(np.stack([pts[:-1], pts[1:]], 1), width, colour)

    def group(self) -> int:
        self._group += 1
        return self._group

    def solid(self, foot, base: float, top: float, roof: str = "flat", rise: float = 0.0,
              roof_rgb=(0.5, 0.5, 0.5), wall_rgb=(0.75, 0.72, 0.68), windows: float = 0.0, kind: str = "building",
              group: int | None = None, order: int = 0, tid: int = 0, presence: int | None = None,
              parapet: bool = False) -> Solid:
        if presence is None:
            presence = self._presence() if (kind == "building" and tid == 0 and top < 8) else BOTH
        s = Solid(geo.ccw(foot), float(base), float(top), roof, float(rise), tuple(map(float, roof_rgb)),
                  tuple(map(float, wall_rgb)), float(windows), kind, self.group() if group is None else group, order,
                  tid, presence, parapet)
        self.scene.solids.append(s)
        if tid:
            self.by_tid.setdefault(tid, []).append(s)
        self.scene.max_height = max(self.scene.max_height, s.height())
        return s

    def _presence(self) -> int:
        r = self.rng.random()
        if r < self.change_rate / 2:
            return A_ONLY
        if r < self.change_rate:
            return B_ONLY
        return BOTH

    def tree(self, x: float, y: float, r: float, h: float, var: float | None = None) -> None:
        self.trees.append((x, y, r, max(h, r + 1.0), self.rng.random() if var is None else var, self._presence(),
                           int(self.rng.integers(0, 1 << 30))))

    def slot(self, x: float, y: float, angle: float, length: float = 4.5, width: float = 1.85, height: float = 1.5,
             p: float = 0.5) -> None:
        self.slots.append((x, y, angle, length, width, height, p))

    def field(self, poly, angle: float, spacing: float) -> None:
        g = self.ground(poly, "field", 0)
        self.scene.fields.append(Field(geo.ccw(poly), angle, spacing, g.var))

    def new_target(self, class_name: str) -> int:
        self._tid += 1
        self.scene.targets.append(Target(self._tid, class_name, [], 0.0, (0.0, 0.0), 0.0))
        return self._tid

    def finish_target(self, tid: int, ground: list[np.ndarray] | None = None) -> None:
        """Fill a target's geometry summary from its ground polygons and solids."""
        t = self.scene.targets[-1] if self.scene.targets[-1].tid == tid else \
            next(t for t in self.scene.targets if t.tid == tid)
        t.ground = list(ground or [])
        polys = t.ground + [s.foot for s in self.by_tid.get(tid, [])]
        boxes = [geo.bbox(p) for p in polys]  # their union is the bbox of all the points
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        t.centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        t.size_m = float(max(x1 - x0, y1 - y0))
        t.area_m2 = geo.area(polys[0]) if len(polys) == 1 else union_area(polys, bounds=(x0, y0, x1, y1))

    # --- clearing and finishing --------------------------------------------------------------
    def add_clear(self, kind: str, where: np.ndarray, radius: float) -> None:
        """Register (and apply now) a clearance: ``disc`` (centre, radius) keeps roundabouts
        free, ``river`` (:class:`~.geometry.DistanceField` of the centre line, half width)
        keeps the water free (bridges excepted). It is applied again to blocks filled later."""
        self.clears.append((kind, where, radius))
        self._apply_clear(kind, where, radius, (0, 0, 0, 0))

    def _apply_clear(self, kind: str, where, radius: float, since: tuple[int, int, int, int],
                     bounds: tuple[float, float, float, float] | None = None) -> None:
        if bounds is not None:  # skip blocks far from the cleared area
            probe = np.array([[bounds[0], bounds[1]], [bounds[2], bounds[1]], [bounds[2], bounds[3]],
                              [bounds[0], bounds[3]], [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2]])
            diag = 0.5 * float(np.hypot(bounds[2] - bounds[0], bounds[3] - bounds[1]))
            d = np.hypot(*(probe - where).T).min() if kind == "disc" else where(probe).min()
            if d > radius + diag + 20:
                return
        if kind == "disc":
            hit = lambda p, r: np.hypot(*(np.atleast_2d(p) - where).T) < radius + r  # noqa: E731
            keep = ""
        else:
            hit = lambda p, r: where(np.atleast_2d(p)) < radius + r  # noqa: E731
            keep = "man_made_bridge"
        self._remove(hit, keep, since)

    def _solid_hits(self, hit, s0: int) -> np.ndarray:
        """Which solids from index ``s0`` on touch the cleared area (vectorised)."""
        solids = self.scene.solids[s0:]
        if not solids:
            return np.zeros(0, bool)
        add = np.add.reduce  # add(foot, 0) / len(foot) == foot.mean(0), without its Python overhead
        probes = [np.concatenate([s.foot, (add(s.foot, 0) / len(s.foot))[None]]) for s in solids]
        idx = np.cumsum([0] + [len(p) for p in probes[:-1]])
        h = hit(np.concatenate(probes), 0.5)
        return np.logical_or.reduceat(h, idx)

    def _remove(self, hit, keep: str, since: tuple[int, int, int, int]) -> None:
        sc = self.scene
        s0, t0, tr0, sl0 = since
        dead_tids = set()
        removed = set()
        for k in np.flatnonzero(self._solid_hits(hit, s0)) + s0:
            s = sc.solids[k]
            if s.kind in ("bridge", "pier"):
                continue
            removed.add(int(k))
            if s.tid:
                dead_tids.add(s.tid)
        for t in sc.targets[t0:]:
            if t.class_name != keep and any(hit(g, 0.5).any() for g in t.ground):
                dead_tids.add(t.tid)
        for tid in dead_tids:
            self.by_tid.pop(tid, None)
        if removed or dead_tids:
            dead_groups = {s.group for k, s in enumerate(sc.solids) if k >= s0 and s.tid in dead_tids}
            sc.solids = sc.solids[:s0] + [s for k, s in enumerate(sc.solids[s0:], s0) if k not in removed and
                                          s.tid not in dead_tids and s.group not in dead_groups]
            sc.targets = sc.targets[:t0] + [t for t in sc.targets[t0:] if t.tid not in dead_tids]
        if len(self.trees) > tr0:
            t = np.array(self.trees[tr0:])
            ok = ~hit(t[:, :2], t[:, 2])
            self.trees = self.trees[:tr0] + [row for row, k in zip(self.trees[tr0:], ok) if k]
        if len(self.slots) > sl0:
            s = np.array(self.slots[sl0:])
            ok = ~hit(s[:, :2], 2.0)
            self.slots = self.slots[:sl0] + [row for row, k in zip(self.slots[sl0:], ok) if k]

    def ensure(self, region: tuple[float, float, float, float]) -> bool:
        """Fill the pending blocks overlapping ``region`` (scene metres). Each block draws from
        its own seed, so the result does not depend on the order blocks are needed in."""
        keys = [k for k in sorted(self.pending) if geo.boxes_overlap(self.pending[k]["bounds"], region)]
        if not keys:
            return False
        outer = self.rng
        for key in keys:
            cell = self.pending.pop(key)
            since = (len(self.scene.solids), len(self.scene.targets), len(self.trees), len(self.slots))
            self.rng = SceneRng(cell["seed"])
            self.fill_block(self, cell)
            for kind, where, radius in self.clears:
                self._apply_clear(kind, where, radius, since, cell["bounds"])
        self.rng = outer
        self.finish()
        return True

    def _rows_array(self, name: str, rows: list[tuple]) -> np.ndarray:
        """``np.array(rows)`` as ``(N, 7)`` float64, converting only the rows added since the
        last call when the earlier ones are still the same objects (lazy blocks only append)."""
        done, table = self._tables.get(name, ([], np.zeros((0, 7))))
        n = len(done)
        if len(rows) < n or not all(map(operator.is_, rows[:n], done)):
            n, table = 0, np.zeros((0, 7))
        if len(rows) > n:
            table = np.concatenate([table, np.array(rows[n:], dtype=np.float64).reshape(-1, 7)])
        self._tables[name] = (list(rows), table)
        return table.copy()  # the scene's own copy: the cached rows stay as converted

    def finish(self) -> Scene:
        sc = self.scene
        sc.ground.sort(key=lambda g: g.layer)  # stable: within a layer, creation order
        sc.trees = self._rows_array("trees", self.trees)
        sc.slots = self._rows_array("slots", self.slots)
        sc.max_height = max([0.0] + [s.height() for s in sc.solids])
        if len(sc.trees):
            sc.max_height = max(sc.max_height, float((sc.trees[:, 3] + sc.trees[:, 2]).max()))
        sc.version += 1  # invalidates the renderers' per-scene caches
        sc.builder = self
        return sc
