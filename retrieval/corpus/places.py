"""Places: a target object of a synth scene, its true attributes and its neighbours.

A place is built from one procedural town scene (:func:`smgeo_synth.layout.build_scene`)
of a class drawn from :data:`smgeo_synth.CLASS_WEIGHTS`: one object of that class inside
the scene's tile is the target. Everything a caption says is read from the scene:

* the object's kind (class, refined for buildings by their true geometry), colour (roof,
  surface or water colour, named by :func:`.colours.colour_name`), roof shape, wall colour
  and size (small / medium / large from the true area in m^2, per class);
* its neighbours: the nearest objects within :data:`NEIGHBOUR_RADIUS_M` (gap between
  footprints) whose (kind, colour) differs from the place's and from each other's, with the
  relation ``next to`` / ``near`` / ``across the road from`` / ``across the river from``;
* context: many trees around it, a main road beside it, a river under a bridge.

Frames: scene metres, x east, y south (see :mod:`smgeo_synth.scene`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import nearest_points

from smgeo_synth.capture import MATERIALS
from smgeo_synth.difficulty import get_difficulty
from smgeo_synth.layout import build_scene
from smgeo_synth.options import CLASS_WEIGHTS, MIN_EXTENT
from smgeo_synth.scene import BOTH, Scene, Solid, Target

from smgeo_retrieval.corpus.colours import colour_name

SCENE_EXTENT_M = 200.0  # satellite tile of the synth scene the target is planted in (bigger classes: MIN_EXTENT)
TILE_MARGIN_M = 10.0  # the target's centre lies at least this far inside the scene tile
NEIGHBOUR_RADIUS_M = 45.0  # farthest gap (m) between footprints of a place and a neighbour it names
FALLBACK_RADIUS_M = 90.0  # when nothing distinct is that close, the nearest within this gap
NEXT_TO_M = 10.0  # gap below which a neighbour is "next to" the place (else "near")
MAX_NEIGHBOURS = 2
MIN_NEIGHBOUR_BUILDING_M2 = 40.0  # smaller non-target solids (sheds, kiosks) are not named
TREES_RADIUS_M = 20.0  # trees within this gap of the footprint count as "trees around"
MANY_TREES = 5
MAIN_ROAD_WIDTH_M = 11.5  # roads at least this wide are main roads
MAIN_ROAD_GAP_M = 12.0
SCENE_ATTEMPTS = 12
SCENE_DIFFICULTY = "medium"

ROOF_WORDS = {"flat": "flat", "gable": "gabled", "hip": "hipped", "shed": "sloping"}
# class -> (small below, large from) m^2; classes of a fixed size get no size word
SIZE_LIMITS_M2: dict[str, tuple[float, float]] = {
    "building_house": (105.0, 150.0),
    "building": (900.0, 2200.0),
    "amenity_parking": (450.0, 1100.0),
    "leisure_swimming_pool": (400.0, 800.0),
    "junction_roundabout": (700.0, 1100.0),
    "man_made_bridge": (500.0, 1000.0),
    "sport_soccer": (4500.0, 6500.0),
}
TALL_BUILDING_M = 14.0  # flat-roofed buildings at least this high (eaves) are "tall buildings"
BARN_MAX_M2 = 600.0  # pitched-roof non-house buildings smaller than this are barns, else warehouses
CLASS_KINDS = {"building_house": "house", "junction_roundabout": "roundabout", "sport_basketball": "basketball court",
               "sport_tennis": "tennis court", "sport_soccer": "football pitch", "man_made_bridge": "bridge",
               "leisure_stadium": "stadium", "amenity_parking": "car park",
               "leisure_swimming_pool": "swimming pool"}
GROUND_KINDS = {"track": "running track", "rubber": "playground", "field": "farm field", "forest_floor": "woodland"}
# number of stand sections -> how captions say it ("{c}": the stands' colour)
STAND_WORDS = {1: "a {c} stand on one side", 2: "{c} stands on two sides", 3: "{c} stands on three sides",
               4: "{c} stands on four sides", 5: "{c} stands around one end"}
STANDS_ALL_AROUND = 6  # this many stand sections or more: "stands all around"
STAND_WORDS[STANDS_ALL_AROUND] = "{c} stands all around"
POOL_GROUP_M = 20.0  # other pools this close make "a smaller pool beside it"
BUILDING_KINDS = ("house", "building", "tall building", "warehouse", "barn")


@dataclass
class Thing:
    """A describable object. ``kind``: noun key (see :mod:`.captions`); ``colour``: colour
    name of what is seen from above (roof, surface, water) or None; ``roof``, ``wall``,
    ``size``: words or None; ``detail``: a class-specific word (surface material, stand
    colour, ...); ``extra``: a class-specific feature phrase;
    ``centre``: scene metres; ``shape``: footprint (shapely, scene metres)."""

    kind: str
    colour: str | None
    centre: tuple[float, float]
    shape: object
    roof: str | None = None
    wall: str | None = None
    size: str | None = None
    detail: str | None = None
    extra: str | None = None  # a worded feature ("yellow parking lines", "stands on two sides")
    tid: int = 0

    @property
    def key(self) -> tuple[str, str | None]:
        return self.kind, self.colour


@dataclass
class Neighbour:
    thing: Thing
    relation: str  # "next to", "near", "across the road from", "across the river from"
    gap_m: float


@dataclass
class Place:
    """A target and what is around it; ``scene`` stays for rendering."""

    class_name: str
    target: Target
    thing: Thing
    neighbours: list[Neighbour]
    scene: Scene
    trees: bool = False
    main_road: bool = False
    over_river: bool = False
    extras: dict = field(default_factory=dict)

    @property
    def centre(self) -> tuple[float, float]:
        return self.target.centre

    def attribute_tuple(self) -> tuple:
        """Every attribute the captions state (for the uniqueness measure)."""
        t = self.thing
        nb = tuple(sorted((n.thing.kind, n.thing.colour or "", n.thing.roof or "", n.relation)
                          for n in self.neighbours))
        return (t.kind, t.colour, t.roof, t.wall, t.size, t.detail, t.extra, nb, self.trees, self.main_road)

    def core_tuple(self) -> tuple:
        """(class, colour, roof, size, neighbour class, neighbour colour) of the issue."""
        t = self.thing
        n = self.neighbours[0].thing if self.neighbours else None
        return (t.kind, t.colour, t.roof, t.size, n.kind if n else None, n.colour if n else None)


def scene_extent(class_name: str) -> float:
    return max(SCENE_EXTENT_M, MIN_EXTENT.get(class_name, 0.0))


def _area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def size_word(class_name: str, area_m2: float) -> str | None:
    limits = SIZE_LIMITS_M2.get(class_name)
    if limits is None:
        return None
    return "small" if area_m2 < limits[0] else ("medium-sized" if area_m2 < limits[1] else "large")


def _material_colour(material: str, var: float) -> str:
    """Colour name of a ground material with per-feature variation ``var`` in [0, 1)."""
    rgb, *_, spread = MATERIALS[material]
    return colour_name(np.asarray(rgb) * (1 + spread * (2 * var - 1)))


def _building_kind(main: Solid, area: float) -> str:
    """Noun key of a non-house building from its largest solid and total footprint (m^2)."""
    if main.roof in ("gable", "hip", "shed") and main.kind == "building":
        return "barn" if area < BARN_MAX_M2 else "warehouse"
    return "tall building" if main.top >= TALL_BUILDING_M else "building"


def _building_thing(solids: list[Solid], kind: str | None, size: str | None, tid: int, centre) -> Thing:
    """A building made of ``solids``: roof colour and shape and wall colour of the largest."""
    main = max(solids, key=lambda s: _area(s.foot))
    area = sum(_area(s.foot) for s in solids)
    return Thing(kind or _building_kind(main, area), colour_name(main.roof_rgb), centre,
                 shapely.union_all([Polygon(s.foot) for s in solids]), ROOF_WORDS.get(main.roof, "flat"),
                 colour_name(main.wall_rgb), size, tid=tid)


def describe_target(scene: Scene, t: Target) -> Thing:
    """The true attributes of target ``t``."""
    solids = [s for s in scene.target_solids(t.tid) if s.kind == "building"]
    ground = [g for g in scene.ground if g.tid == t.tid]
    size = size_word(t.class_name, t.area_m2)
    polys = [Polygon(p) for p in t.ground] + [Polygon(s.foot) for s in scene.target_solids(t.tid)]
    shape = shapely.union_all([p.buffer(0) for p in polys])
    c = t.class_name
    if c in ("building", "building_house") and solids:
        return _building_thing(solids, "house" if c == "building_house" else None, size, t.tid, t.centre)
    kind = CLASS_KINDS.get(c, "building")
    colour = None
    detail = extra = None
    by_layer = sorted(ground, key=lambda g: -g.layer)
    if c == "sport_tennis":
        inner = [g for g in ground if g.layer == 5]
        outer = [g for g in ground if g.layer == 4]
        colour = _material_colour(inner[0].material, inner[0].var) if inner else None
        if outer:
            oc = _material_colour(outer[0].material, outer[0].var)
            detail = oc if oc != colour else None
    elif c == "sport_basketball":
        outer = [g for g in ground if g.layer == 4]
        colour = _material_colour(outer[0].material, outer[0].var) if outer else None
    elif c == "sport_soccer":
        colour = "green"
        detail = "artificial turf" if any(g.material == "turf" for g in ground) else "grass"
    elif c == "leisure_stadium":
        track = [g for g in ground if g.material in ("track", "court_blue")]
        colour = _material_colour(track[0].material, 0.5) if track else None
        stands = [s for s in scene.target_solids(t.tid) if s.roof == "shed"]
        detail = colour_name(stands[0].roof_rgb) if stands else None
        extra = STAND_WORDS[min(len(stands), STANDS_ALL_AROUND)].format(c=detail) if stands else None
    elif c == "leisure_swimming_pool":
        colour = "light blue"
        others = [g for g in scene.ground if g.material == "pool" and g.tid == 0
                  and shape.distance(Polygon(g.pts)) < POOL_GROUP_M]
        extra = "a smaller pool beside it" if others else None
    elif c == "amenity_parking":
        colour = _material_colour(ground[0].material, 0.5) if ground else None
        lines = _marks_inside(scene, shape)
        extra = f"{lines} parking lines" if lines else None
    elif c == "junction_roundabout":
        island = [g for g in by_layer if g.layer == 8 and g.material != "concrete"]
        colour = _material_colour(island[-1].material, 0.5) if island else None
    elif c == "man_made_bridge":
        deck = [s for s in scene.target_solids(t.tid) if s.kind == "bridge"]
        colour = colour_name(deck[0].roof_rgb) if deck else None
        detail = colour_name(deck[0].wall_rgb) if deck else None
        extra = "road markings" if deck and deck[0].deck_marks else None
    return Thing(kind, colour, t.centre, shape, size=size, detail=detail, extra=extra, tid=t.tid)


def _marks_inside(scene: Scene, shape) -> str | None:
    """Colour word of the painted lines inside ``shape`` (most segments), or None."""
    x0, y0, x1, y1 = shape.bounds
    best: tuple[int, str] | None = None
    for m in scene.marks:
        mid = m.segs.mean(1)
        ok = (mid[:, 0] > x0) & (mid[:, 0] < x1) & (mid[:, 1] > y0) & (mid[:, 1] < y1)
        if ok.sum() >= 2 and shape.contains(shapely.Point(*mid[ok][0])) and (best is None or ok.sum() > best[0]):
            best = (int(ok.sum()), m.colour)
    return best[1] if best and best[1] in ("white", "yellow") else None


def _candidates(scene: Scene, place: Target, region: tuple[float, float, float, float]) -> list[Thing]:
    """Things other than ``place`` whose bounding box meets ``region`` (scene metres)."""
    def inside(b) -> bool:
        return b[0] < region[2] and b[2] > region[0] and b[1] < region[3] and b[3] > region[1]

    out: list[Thing] = []
    for t in scene.targets:
        if t.tid == place.tid or not t.ground and not scene.target_solids(t.tid):
            continue
        r = t.size_m / 2
        if inside((t.centre[0] - r, t.centre[1] - r, t.centre[0] + r, t.centre[1] + r)):
            out.append(describe_target(scene, t))
    groups: dict[int, list[Solid]] = {}
    for s in scene.solids:
        if s.tid == 0 and s.kind == "building" and s.presence == BOTH and _area(s.foot) >= MIN_NEIGHBOUR_BUILDING_M2:
            x0, y0 = s.foot.min(0)
            x1, y1 = s.foot.max(0)
            if inside((x0, y0, x1, y1)):
                groups.setdefault(s.group, []).append(s)
    for g in sorted(groups):
        solids = groups[g]
        c = np.concatenate([s.foot for s in solids]).mean(0)
        out.append(_building_thing(solids, None, None, 0, (float(c[0]), float(c[1]))))
    for gf in scene.ground:
        if gf.tid or gf.width > 0 or not inside(gf.bounds()):
            continue
        if gf.material == "water":
            kind = "river" if gf.layer == 6 else "pond"
            colour = None
        elif gf.material in GROUND_KINDS:
            kind = GROUND_KINDS[gf.material]
            colour = _material_colour(gf.material, gf.var) if gf.material in ("track", "rubber") else None
        else:
            continue
        poly = Polygon(gf.pts).buffer(0)
        if poly.is_empty:
            continue
        clipped = poly.intersection(shapely.box(*region))
        c = (clipped if not clipped.is_empty else poly).centroid
        out.append(Thing(kind, colour, (float(c.x), float(c.y)), poly))
    return out


def _roads(scene: Scene) -> list:
    roads = scene.builder.roads if scene.builder is not None else []
    return [(LineString(r["pts"]).buffer(r["width"] / 2, cap_style="flat"), r["width"]) for r in roads]


def _relation(a: Thing, b: Thing, roads: list, rivers: list) -> tuple[str, float]:
    gap = float(a.shape.distance(b.shape))
    if a.kind in ("roundabout", "bridge") or b.kind in ("roundabout", "bridge", "river"):
        return ("next to" if gap < NEXT_TO_M else "near"), gap
    p, q = nearest_points(a.shape, b.shape)
    if p.distance(q) > 0.5:
        seg = LineString([p, q])
        if any(seg.crosses(r) or seg.within(r) for r in rivers):
            return "across the river from", gap
        if any(seg.intersects(r) for r, _ in roads):
            return "across the road from", gap
    return ("next to" if gap < NEXT_TO_M else "near"), gap


def find_neighbours(scene: Scene, place: Target, thing: Thing) -> tuple[list[Neighbour], dict]:
    """Neighbours of ``place`` (nearest first) and context flags (trees, main road, river)."""
    x0, y0, x1, y1 = thing.shape.bounds
    m = FALLBACK_RADIUS_M
    region = (x0 - m, y0 - m, x1 + m, y1 + m)
    scene.ensure(region)
    cands = _candidates(scene, place, region)
    roads = _roads(scene)
    rivers = [c.shape for c in cands if c.kind == "river"]
    scored = []
    for c in cands:
        rel, gap = _relation(thing, c, roads, rivers)
        if gap <= FALLBACK_RADIUS_M:
            scored.append((gap, c.kind, c.colour or "", c.centre, rel, c))
    scored.sort(key=lambda s: s[:4])
    chosen: list[Neighbour] = []
    seen = {thing.key}
    for gap, _, _, _, rel, c in scored:
        if len(chosen) >= MAX_NEIGHBOURS or (gap > NEIGHBOUR_RADIUS_M and chosen):
            break
        if c.key in seen or (c.kind == "river" and thing.kind == "bridge"):
            continue
        seen.add(c.key)
        chosen.append(Neighbour(c, rel, gap))
    trees = scene.trees
    n_trees = 0
    if len(trees):
        near = trees[(trees[:, 0] > x0 - TREES_RADIUS_M) & (trees[:, 0] < x1 + TREES_RADIUS_M)
                     & (trees[:, 1] > y0 - TREES_RADIUS_M) & (trees[:, 1] < y1 + TREES_RADIUS_M)]
        if len(near):
            d = shapely.distance(thing.shape, shapely.points(near[:, :2]))
            n_trees = int((d <= TREES_RADIUS_M).sum())
    main_road = any(w >= MAIN_ROAD_WIDTH_M and thing.shape.distance(r) <= MAIN_ROAD_GAP_M for r, w in roads) \
        and thing.kind not in ("roundabout", "bridge")
    over_river = thing.kind == "bridge" and any(thing.shape.intersects(r) for r in rivers)
    return chosen, {"trees": n_trees >= MANY_TREES, "main_road": main_road, "over_river": over_river}


def choose_class(rng: np.random.Generator) -> str:
    names = sorted(CLASS_WEIGHTS)
    w = np.array([CLASS_WEIGHTS[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def build_place(rng: np.random.Generator, class_name: str) -> Place:
    """A place of ``class_name`` drawn with ``rng`` (deterministic for a given generator state)."""
    diff = get_difficulty(SCENE_DIFFICULTY)
    extent = scene_extent(class_name)
    for _ in range(SCENE_ATTEMPTS):
        scene = build_scene(int(rng.integers(0, 2**31 - 1)), extent, class_name, diff)
        x0, y0, e = scene.tile
        lo, hi = TILE_MARGIN_M, e - TILE_MARGIN_M
        targets = [t for t in scene.targets if t.class_name == class_name
                   and lo <= t.centre[0] - x0 <= hi and lo <= t.centre[1] - y0 <= hi and t.size_m > 0]
        if not targets:
            continue
        target = targets[int(rng.integers(len(targets)))]
        thing = describe_target(scene, target)
        if class_name in ("building", "building_house") and thing.roof is None:
            continue
        neighbours, flags = find_neighbours(scene, target, thing)
        return Place(class_name, target, thing, neighbours, scene, flags["trees"], flags["main_road"],
                     flags["over_river"])
    raise RuntimeError(f"synth-retrieval: no usable {class_name} target after {SCENE_ATTEMPTS} scenes (please report)")


def compass(dx: float, dy_south: float) -> str:
    """8-point compass word of the scene vector (dx east, dy south)."""
    bearing = math.degrees(math.atan2(dx, -dy_south)) % 360
    return ("north", "north-east", "east", "south-east", "south", "south-west", "west",
            "north-west")[int(((bearing + 22.5) % 360) // 45)]
