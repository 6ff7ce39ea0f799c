"""Scene description: everything both captures are rendered from.

A :class:`Scene` is built once per pair (see :mod:`.layout`) and rendered twice: an
orthographic satellite capture and a perspective drone capture at another time.

Frames: scene metres, x east, y south (down the satellite image), z up, origin at the
north-west corner of the scene square ``[0, size]^2``; the satellite tile is the square
``[tile_x0, tile_x0 + extent] x [tile_y0, tile_y0 + extent]`` inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smgeo_synth import geometry as geo

A_ONLY, B_ONLY, BOTH = 1, 2, 3  # presence bits: 1 = satellite capture (A), 2 = drone capture (B)


@dataclass
class GroundFeature:
    """Flat feature on z = 0: a polygon, or a polyline stroke of ``width`` metres (roads)."""

    pts: np.ndarray
    material: str
    layer: int
    width: float = 0.0
    var: float = 0.0  # per-feature variation in [0, 1) (colour, wear)
    tid: int = 0  # target id when this feature is (part of) a target, else 0
    bounds_cache: tuple[float, float, float, float] | None = field(default=None, repr=False, compare=False)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` scene metres, stroke width included (computed once)."""
        if self.bounds_cache is None:
            x0, y0, x1, y1 = geo.bbox(self.pts)
            h = self.width / 2
            self.bounds_cache = (x0 - h, y0 - h, x1 + h, y1 + h)
        return self.bounds_cache


def cache_ground_bounds(features: list[GroundFeature]) -> None:
    """Fill the :meth:`GroundFeature.bounds` cache of every feature lacking it, in one
    vectorised pass (the same min / max and half-width sums, so the same values)."""
    todo = [g for g in features if g.bounds_cache is None and len(g.pts)]
    if not todo:
        return
    starts = np.cumsum([0] + [len(g.pts) for g in todo[:-1]])
    pts = np.concatenate([g.pts for g in todo])
    lo = np.stack([np.minimum.reduceat(pts[:, 0], starts), np.minimum.reduceat(pts[:, 1], starts)], 1)
    hi = np.stack([np.maximum.reduceat(pts[:, 0], starts), np.maximum.reduceat(pts[:, 1], starts)], 1)
    half = np.array([g.width for g in todo])[:, None] / 2
    for g, b in zip(todo, np.c_[lo - half, hi + half].tolist()):
        g.bounds_cache = tuple(b)


@dataclass
class Marks:
    """Painted lines on the ground (court lines, parking stalls, lane markings): ``(K, 2, 2)``
    segments in scene metres, ``width`` metres, a colour name of :data:`.capture.MARK_COLOURS`."""

    segs: np.ndarray
    width: float
    colour: str
    z: float = 0.0  # height of the painted surface (bridge decks)
    bbox_cache: tuple[float, float, float, float] | None = field(default=None, repr=False, compare=False)


@dataclass
class Field:
    """Farm field: a convex polygon whose crop rows run along ``angle`` every ``spacing`` m."""

    poly: np.ndarray
    angle: float
    spacing: float
    var: float


@dataclass
class Solid:
    """Extruded prism: footprint polygon (ccw, scene metres) from z = ``base`` to the eaves at
    z = ``top``. Roofs: ``flat``; ``gable``/``hip`` (ridge ``rise`` m above the eaves, along
    edge 0-1 of a 4-vertex footprint); ``shed`` (edge 2-3 raised by ``rise``)."""

    foot: np.ndarray
    base: float
    top: float
    roof: str = "flat"
    rise: float = 0.0
    roof_rgb: tuple[float, float, float] = (0.5, 0.5, 0.5)
    wall_rgb: tuple[float, float, float] = (0.7, 0.7, 0.7)
    windows: float = 0.0  # window spacing along facades in metres (0: none)
    kind: str = "building"
    group: int = 0  # painter's group: parts of one structure are drawn together
    order: int = 0  # drawing order within the group
    tid: int = 0
    presence: int = BOTH
    parapet: bool = False
    deck_marks: list = field(default_factory=list)
    # derived geometry, filled on first use by the renderers; not part of what the solid is
    faces_cache: object = field(default=None, repr=False, compare=False)  # render3d's faces
    ridge_cache: np.ndarray | None = field(default=None, repr=False, compare=False)  # (2, 3) ridge ends
    centre_cache: tuple[float, float, float] | None = field(default=None, repr=False, compare=False)
    bbox_cache: tuple[float, float, float, float] | None = field(default=None, repr=False, compare=False)

    def height(self) -> float:
        return self.top + self.rise


@dataclass
class Target:
    """A selectable object: its class, the ground polygons and solids (``tid``) that make it."""

    tid: int
    class_name: str
    ground: list[np.ndarray]
    area_m2: float
    centre: tuple[float, float]
    size_m: float  # largest horizontal dimension


@dataclass
class SceneCaches:
    """What the renderers derive from a scene once; each entry records the ``Scene.version`` it
    was built for where the scene can grow after it (lazy blocks)."""

    noise: tuple | None = None  # (large, mid) WorldNoise
    ground_tables: tuple | None = None  # (version, bounds (N, 4), material amplitudes)
    solid_table: dict | None = None  # see ground.solid_table


@dataclass
class Scene:
    size: float
    tile: tuple[float, float, float]  # x0, y0, extent (metres)
    seed: int
    ground: list[GroundFeature] = field(default_factory=list)
    marks: list[Marks] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    solids: list[Solid] = field(default_factory=list)
    trees: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # x, y, r, h, var, presence, seed
    slots: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # x, y, angle, len, wid, hgt, p_occ
    targets: list[Target] = field(default_factory=list)
    max_height: float = 0.0
    version: int = 0  # bumped whenever content is added (lazy block filling)
    anchor: tuple[float, float] | None = None  # scene metres the place is built around (layouts that have one)
    builder: object = field(default=None, repr=False, compare=False)  # fills blocks lazily while set
    caches: SceneCaches = field(default_factory=lambda: SceneCaches(), repr=False, compare=False)

    @property
    def tile_bounds(self) -> tuple[float, float, float, float]:
        x0, y0, e = self.tile
        return x0, y0, x0 + e, y0 + e

    def ensure(self, region: tuple[float, float, float, float]) -> None:
        """Make sure everything inside ``region`` (scene metres) is built (blocks are filled
        lazily, see :meth:`.builder.SceneBuilder.ensure`)."""
        if self.builder is not None:
            self.builder.ensure(region)

    def target_solids(self, tid: int) -> list[Solid]:
        if self.builder is not None:  # indexed by target id while building
            return list(self.builder.by_tid.get(tid, []))
        return [s for s in self.solids if s.tid == tid]

    def target_points(self, tid: int) -> np.ndarray:
        """``(N, 3)`` scene-metre points spanning the target (ground polygons at z = 0, every
        solid vertex at its base, eaves and ridge height)."""
        t = next(t for t in self.targets if t.tid == tid)
        pts = [np.c_[g, np.zeros(len(g))] for g in t.ground]
        for s in self.target_solids(tid):
            for z in (s.base, s.top, s.top + s.rise):
                pts.append(np.c_[s.foot, np.full(len(s.foot), z)])
        return np.concatenate(pts)
