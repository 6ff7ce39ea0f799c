"""One real-texture pair: a drone photo of a target rendered from the orthophoto (and DSM) with a
drawn camera, light, season and sensor, and the satellite tile cut around the target.

The drone camera (:class:`~smgeo_geo.camera.FrameCamera`, in a local ENU frame at the target)
is drawn as the synthetic generator draws its drone: nadir (0-10 deg off nadir) or oblique
(30-55 deg), any heading, a 55-75 deg field of view narrowed so the top of the frame stays
below :data:`MAX_TOP_RAY` from nadir, 20-150 m above the target so that the target spans a
fifth to a half of the photo, the target off centre; plus a little roll and a drone lens'
Brown distortion; brought closer when the orthophoto's valid pixels around the target are
fewer than the frame would span. A drawn view is kept when it sees no more than
:data:`MAX_NODATA` nodata and at least :data:`MIN_VISIBLE` of the target's outline unoccluded;
later draws are steeper and centred; a pair tries :data:`TARGET_TRIES` targets. The photo is rendered at twice its size (:data:`SUPERSAMPLE`), shaded for the
drawn sun, tinted for the drawn season and put through the drone sensor of
:mod:`smgeo_synth.sensor` (white balance, exposure, contrast, vignetting, haze with
distance, defocus or motion blur, noise, JPEG quality).

Output frames: query pixels (x = column, y = row, corner-based, ``query_size`` (h, w)) and
tile pixels (same convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import shapely

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.coords import transform_xy
from smgeo_geo.errors import RasterError
from smgeo_synth.pair import Pair
from smgeo_synth.realpairs.render import MAX_OFF_NADIR, Surface, off_nadir_deg, render_view, scaled_camera
from smgeo_synth.realpairs.targets import Overview, Target
from smgeo_synth.realpairs.tiles import MARGIN_PX, TileSpec, choose_centre, cut_tile
from smgeo_synth.sensor import drone_sensor, satellite_sensor

SUPERSAMPLE = 2  # the photo is rendered at twice its size and area-averaged down
P_NADIR = 0.25  # share of nadir views among the first draws
NADIR_OFF = (0.0, 10.0)  # degrees off nadir of a nadir view
OBLIQUE_OFF = (30.0, 55.0)  # ... of an oblique view
MAX_TOP_RAY = 72.0  # degrees off nadir of the top of the frame (the field of view is narrowed to keep it)
HFOV = (55.0, 75.0)  # horizontal field of view, degrees
ALTITUDE = (20.0, 150.0)  # metres above the target
CLEARANCE_M = 5.0  # least height of the drone above the surface below it
TARGET_FRAC = (0.2, 0.55)  # the target's size as a share of the photo width
OFFSET = 0.35  # largest offset of the target from the photo centre (share of the half size)
ROLL = 2.0  # largest roll, degrees
K1, K2 = (-0.06, 0.02), (-0.02, 0.03)  # Brown radial distortion drawn for the drone lens
SUN_AZIMUTH, SUN_ELEVATION = (90.0, 270.0), (25.0, 65.0)
SEASON = 0.6  # largest share vegetation is tinted towards dry or lush colours
DRY_RGB, LUSH_RGB = (0.62, 0.55, 0.33), (0.26, 0.50, 0.20)
SATELLITE_STRENGTH = 0.5  # strength of the satellite sensor on the (already real) orthophoto
MAX_NODATA = 0.01  # largest share of the photo that sees no valid surface
MIN_VISIBLE = 0.5  # least visible share of the target's unoccluded outline in the frame
MIN_IN_FRAME = 0.7  # least share of the target's outline inside the frame
MIN_SIDE = 0.04  # the visible target covers at least (MIN_SIDE * width)^2 pixels
SALIENT_TOL_PX = 2.0  # a salient point is visible when the surface its pixel sees is this close (photo pixels)
PRECHECK_GRID = 12  # rays a side tested for valid pixels before a view is rendered
ROOM_SHARE = 0.9  # the frame reaches at most this share of the way from the target to the nearest nodata
MIN_ROOM_M = 10.0  # targets closer than this to nodata are not tried
CAMERA_TRIES = 10  # views drawn per target
TARGET_TRIES = 6  # targets tried per pair
TARGET_STRIDE = 7919  # pair i tries targets order[(i + j * stride) % n], j = 0, 1, ...
TILE_TAG, ORDER_TAG, PAIR_TAG = 0x7113, 0x0DE2, 0x9A12
MATCH_POINTS = 8  # corners of each photo recorded with the tile pixel they show (``info["points"]``)
MATCH_QUALITY = 0.02  # least corner strength, a share of the photo's strongest (cv2.goodFeaturesToTrack)
MATCH_SPACING = 0.1  # least distance between two recorded corners, a share of the photo width


@dataclass(kw_only=True)
class RealPair(Pair):
    """A :class:`~smgeo_synth.pair.Pair` cut from a real orthophoto: ``box`` (x1, y1, x2, y2) in
    tile px; ``centre`` the tile centre (work CRS, whole metres); ``camera`` the drone camera at
    the query's size; ``info``: what was drawn (JSON-ready) and ``target_mask``."""

    centre: tuple[int, int]
    camera: FrameCamera


@dataclass
class PairContext:
    """What every pair of a dataset shares: the open surface, the targets (work CRS), the
    orthophoto overview, the tile spec, the query size ``(h, w)``, the seed, the drone sensor
    strength and the orthophoto's envelope in the work CRS."""

    surface: Surface
    targets: list[Target]
    overview: Overview
    spec: TileSpec
    query_size: tuple[int, int]
    seed: int
    sensor: float = 1.0
    ortho_bounds: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, ORDER_TAG]))
        self.order = rng.permutation(len(self.targets))
        valid = np.pad(self.overview.valid, 1).astype(np.uint8)
        self._room = cv2.distanceTransform(valid, cv2.DIST_L2, 5)[1:-1, 1:-1] * self.overview.pixel_m(self.spec.epsg)

    def room_at(self, x: float, y: float) -> float:
        """Metres from the work-CRS point ``(x, y)`` to the nearest nodata of the orthophoto."""
        c, r = self.overview.pixels([x], [y], self.spec.epsg)
        h, w = self._room.shape
        ci, ri = int(np.floor(c[0])), int(np.floor(r[0]))
        return float(self._room[ri, ci]) if 0 <= ci < w and 0 <= ri < h else 0.0


def season_tint(img: np.ndarray, amount: float) -> np.ndarray:
    """Vegetation (green above red and blue) of float RGB ``img`` tinted towards dry / autumn
    colours (``amount`` > 0) or lusher green (< 0), by ``|amount|`` at most."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    veg = np.clip((g - np.maximum(r, b)) / (r + g + b + 1e-3) * 8.0, 0.0, 1.0)[..., None]
    tint = np.asarray(DRY_RGB if amount > 0 else LUSH_RGB, np.float32)
    lum = (0.3 * r + 0.59 * g + 0.11 * b)[..., None]
    target = lum * tint / float(tint @ np.array([0.3, 0.59, 0.11], np.float32))
    return (img + veg * abs(float(amount)) * (target - img)).astype(np.float32)


def draw_camera(rng: np.random.Generator, frame: LocalFrame, anchor: np.ndarray, size_m: float,
                query_size: tuple[int, int], steep: float = 0.0,
                max_reach_m: float | None = None) -> tuple[FrameCamera, dict]:
    """A drone camera looking at ``anchor`` (local ENU) on a target ``size_m`` across, for a
    photo of ``query_size`` (h, w); ``steep`` in [0, 1] narrows the draws towards nadir, closer
    and centred (later tries); ``max_reach_m``: the camera is brought closer (below the
    altitude range if need be) until the frame, on level ground at the anchor's height,
    reaches no further than this from the anchor. Returns the camera and what was drawn."""
    qh, qw = query_size
    nadir = rng.random() < P_NADIR or steep >= 0.8
    if nadir:
        off = float(rng.uniform(*NADIR_OFF))
    else:
        off = float(rng.uniform(OBLIQUE_OFF[0], OBLIQUE_OFF[1] - (OBLIQUE_OFF[1] - OBLIQUE_OFF[0]) * steep))
    yaw, roll = float(rng.uniform(0, 360)), float(rng.uniform(-ROLL, ROLL))
    hfov = float(rng.uniform(*HFOV))
    vfov = 2 * math.degrees(math.atan(math.tan(math.radians(hfov) / 2) * qh / qw))
    if off + vfov / 2 > MAX_TOP_RAY:
        vfov = 2 * (MAX_TOP_RAY - off)
        hfov = 2 * math.degrees(math.atan(math.tan(math.radians(vfov) / 2) * qw / qh))
    tan_h = math.tan(math.radians(hfov) / 2)
    f = qw / 2 / tan_h
    frac = float(rng.uniform(*TARGET_FRAC))
    dist = size_m / (frac * 2 * tan_h)
    cos_off = math.cos(math.radians(off))
    dist = float(np.clip(dist * cos_off, *ALTITUDE)) / cos_off
    ox, oy = rng.uniform(-OFFSET, OFFSET, 2) * (1 - steep)
    distortion = (float(rng.uniform(*K1)), float(rng.uniform(*K2)), 0.0, 0.0, 0.0)
    rotation = rotation_from_angles(yaw, off - 90.0, roll)
    ray_cam = np.array([ox * qw / 2 / f, oy * qh / 2 / f, 1.0])
    back = rotation.T @ (ray_cam / np.linalg.norm(ray_cam))  # unit vector camera -> anchor

    def camera_at(d: float) -> FrameCamera:
        return FrameCamera(qw, qh, f, f, qw / 2, qh / 2, distortion, rotation, anchor - d * back, frame)

    if max_reach_m is not None:  # the frame's reach grows linearly with the distance
        unit = camera_at(1.0)
        s = np.linspace(0, 1, 5)
        border = np.r_[np.c_[s * qw, np.zeros(5)], np.c_[s * qw, np.full(5, qh)], np.c_[np.zeros(5), s * qh],
                       np.c_[np.full(5, qw), s * qh]]
        rays = unit.rays(border)
        t = (unit.centre[2] - anchor[2]) / np.maximum(-rays[:, 2], 1e-6)
        reach = float(np.hypot(*(unit.centre[:2] + t[:, None] * rays[:, :2] - anchor[:2]).T).max())
        dist = min(dist, max_reach_m / max(reach, 1e-9))
    return camera_at(dist), {"yaw": yaw, "pitch": off - 90.0, "roll": roll, "hfov": hfov, "distance_m": dist}


def _sees_data(ctx: PairContext, camera: FrameCamera, height: float) -> bool:
    """Cheap test before rendering: a grid of the frame's pixels, put on level ground at
    ``height``, lies on valid orthophoto pixels (and no ray is beyond the renderer's reach)."""
    t = np.linspace(0, 1, PRECHECK_GRID)
    gx, gy = np.meshgrid(t * camera.width, t * camera.height)
    rays = camera.rays(np.column_stack([gx.ravel(), gy.ravel()]))
    if (off_nadir_deg(rays) > MAX_OFF_NADIR).any():
        return False
    t = (camera.frame.h0 + camera.centre[2] - height) / -rays[:, 2]
    pts = camera.centre + t[:, None] * rays
    lon, lat, _ = camera.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
    xs, ys = transform_xy(4326, ctx.spec.epsg, lon, lat)
    return bool(ctx.overview.valid_at(xs, ys, ctx.spec.epsg).all())


def _target_in_enu(target: Target, frame: LocalFrame, epsg: int):
    def to_enu(xy: np.ndarray) -> np.ndarray:
        x, y, _ = frame.from_crs(epsg, xy[:, 0], xy[:, 1], np.zeros(len(xy)))
        return np.column_stack([x, y])

    return shapely.transform(target.polygon, to_enu)


def _outline_in_photo(camera: FrameCamera, polygon_enu, z: float):
    """The target's outline at height ``z`` (local ENU) projected into the photo, as a shapely
    geometry in photo pixels (None when part of it is behind the camera)."""
    coords = shapely.get_coordinates(polygon_enu)
    _, front = camera.project(np.c_[coords, np.full(len(coords), z)])
    if not front.all():
        return None

    def to_px(xy: np.ndarray) -> np.ndarray:
        return camera.project(np.c_[xy, np.full(len(xy), z)])[0]

    return shapely.make_valid(shapely.transform(polygon_enu, to_px))


def render_real_pair(ctx: PairContext, index: int) -> RealPair:
    """Pair ``index`` of the dataset (deterministic given the context's seed). Tries up to
    :data:`TARGET_TRIES` targets and :data:`CAMERA_TRIES` views each; :class:`RasterError`
    when none gives a usable view (the orthophoto/DSM has too much nodata around its targets,
    or they are hidden)."""
    rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, index, PAIR_TAG]))
    n = len(ctx.targets)
    for j in range(min(TARGET_TRIES, n)):
        target = ctx.targets[int(ctx.order[(index + j * TARGET_STRIDE) % n])]
        centre = choose_centre(rng, target, ctx.spec, ctx.overview, ctx.ortho_bounds)
        if centre is None:
            continue
        pair = _try_target(ctx, target, centre, rng)
        if pair is not None:
            pair.info.update(pair=index, target_tries=j + 1)
            return pair
    raise RasterError(f"{ctx.surface.ortho.path}: pair {index}: no usable drone view of {min(TARGET_TRIES, n)} "
                      f"target(s) (views off the orthophoto{' or DSM' if ctx.surface.terrain else ''}, nodata, or "
                      f"targets hidden); use a larger orthophoto or other targets")


def _try_target(ctx: PairContext, target: Target, centre: tuple[int, int], rng: np.random.Generator) -> RealPair | None:
    epsg = ctx.spec.epsg
    (lon,), (lat,) = transform_xy(epsg, 4326, [target.anchor[0]], [target.anchor[1]])
    lon, lat = float(lon), float(lat)
    height = float(ctx.surface.heights(np.array([lon]), np.array([lat]))[0])
    if not math.isfinite(height):
        return None
    frame = LocalFrame(lon, lat, 0.0)
    anchor = np.array([0.0, 0.0, height])
    poly = _target_in_enu(target, frame, epsg)
    qh, qw = ctx.query_size
    room = ROOM_SHARE * ctx.room_at(*target.anchor)
    if room < MIN_ROOM_M:
        return None
    for attempt in range(CAMERA_TRIES):
        camera, drawn = draw_camera(rng, frame, anchor, target.size_m, ctx.query_size, attempt / CAMERA_TRIES, room)
        sun = (float(rng.uniform(*SUN_AZIMUTH)), float(rng.uniform(*SUN_ELEVATION)))
        clon, clat, _ = frame.to_lonlat(*camera.centre)
        below = float(ctx.surface.heights(np.atleast_1d(clon), np.atleast_1d(clat))[0])
        if math.isfinite(below) and camera.centre[2] - below < CLEARANCE_M:
            continue
        outline = _outline_in_photo(camera, poly, height)
        if outline is None or outline.area < 1:
            continue
        frame_box = shapely.box(0, 0, qw, qh)
        in_frame = outline.intersection(frame_box).area
        if in_frame < MIN_IN_FRAME * outline.area or not _sees_data(ctx, camera, height):
            continue
        view = render_view(ctx.surface, scaled_camera(camera, SUPERSAMPLE), sun)
        if view.nodata_share > MAX_NODATA:
            continue
        pts = view.points
        ok = np.isfinite(pts[..., 0])
        visible = np.zeros(ok.shape, bool)
        visible[ok] = shapely.contains_xy(poly, pts[..., 0][ok], pts[..., 1][ok])
        visible &= view.valid
        n_vis = int(visible.sum())
        ss2 = SUPERSAMPLE ** 2
        if n_vis < (MIN_SIDE * qw * SUPERSAMPLE) ** 2 or n_vis < MIN_VISIBLE * in_frame * ss2:
            continue
        click = _click(rng, target, camera, view, visible, anchor)
        if click is None:
            continue
        return _finish(ctx, target, centre, rng, camera, view, visible, click, sun, drawn, attempt, height)
    return None


def _click(rng, target: Target, camera: FrameCamera, view, visible: np.ndarray, anchor: np.ndarray):
    """Footprints: a visible pixel deep inside the target (the distance-transform ridge);
    salient targets: the point itself, when the surface its pixel sees is the point."""
    s = SUPERSAMPLE
    if target.kind == "salient":
        (px,), front = camera.project(anchor[None])
        x, y = float(px[0]), float(px[1])
        if not front[0] or not (1 <= x <= camera.width - 1 and 1 <= y <= camera.height - 1):
            return None
        r, c = int(y * s), int(x * s)
        seen = view.points[r, c]
        tol = max(0.3, SALIENT_TOL_PX * float(view.distance[r, c]) / camera.fx)
        if not np.isfinite(seen).all() or np.linalg.norm(seen - anchor) > tol:
            return None
        return x, y
    dt = cv2.distanceTransform(visible.astype(np.uint8), cv2.DIST_L2, 3)
    rows, cols = np.nonzero(dt >= max(1.0, 0.6 * float(dt.max())))
    if len(rows) == 0:
        return None
    k = int(rng.integers(len(rows)))
    return (cols[k] + 0.5) / s, (rows[k] + 0.5) / s


def _finish(ctx: PairContext, target: Target, centre, rng, camera: FrameCamera, view, visible, click, sun, drawn,
            attempt: int, height: float) -> RealPair:
    qh, qw = ctx.query_size
    season = float(rng.uniform(-SEASON, SEASON))
    image = season_tint(view.image, season)
    query = cv2.resize(image, (qw, qh), interpolation=cv2.INTER_AREA)
    dist = view.distance.astype(np.float32)
    dist = np.where(np.isfinite(dist), dist, np.nanmax(dist) if np.isfinite(dist).any() else 0.0)
    distance = cv2.resize(dist.astype(np.float32), (qw, qh), interpolation=cv2.INTER_AREA)
    query_u8, q_quality = drone_sensor(query, rng, ctx.sensor, distance)
    e, n = centre
    tile_rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, TILE_TAG, e % 2**48, n % 2**48]))
    tile, tile_ok = cut_tile(ctx.surface.ortho, ctx.spec, e, n)
    sat_u8, s_quality = satellite_sensor(tile, tile_rng, SATELLITE_STRENGTH)
    sat_u8[~tile_ok] = 0
    target_mask = cv2.resize(visible.astype(np.float32), (qw, qh), interpolation=cv2.INTER_AREA) >= 0.5
    points = match_points(query_u8, view, ctx.spec, e, n)
    info = {
        "target": {"id": target.tid, "kind": target.kind, "source": target.source,
                   "anchor": list(target.anchor), "anchor_height": height},
        "camera": camera_info(camera, drawn),
        "sun": list(sun), "season": season, "view_attempt": attempt, "tile_centre": [e, n],
        "points": points,
    }
    info = _plain(info)
    info["target_mask"] = target_mask
    return RealPair(sat_u8, query_u8, (float(click[0]), float(click[1])), ctx.spec.box(target, e, n),
                    target.class_name, round(target.area_m2, 1), round(drawn["yaw"] % 360.0, 2), s_quality, q_quality,
                    info, centre=(e, n), camera=camera)


def match_points(query_u8: np.ndarray, view, spec: TileSpec, easting: int, northing: int) -> list[list[float]]:
    """Up to :data:`MATCH_POINTS` corners of the rendered photo with the tile pixel each one
    shows: ``[[x, y, col, row], ...]``, photo pixels (x, y) and tile pixels (col, row), both
    corner-based (0, 0 = outer top-left corner). The surface each corner's photo pixel sees
    (``view.points``, local ENU at the supersampled pixel) is put in the tile; corners that see no
    valid surface or fall within :data:`MARGIN_PX` of the tile's edges are left out. Deterministic
    (no random draw), so the pair's images do not change. Training uses them as further clicks
    with known answers (``smgeo_model.train``, ``points``)."""
    grey = cv2.cvtColor(query_u8, cv2.COLOR_RGB2GRAY)
    corners = cv2.goodFeaturesToTrack(grey, MATCH_POINTS * 3, MATCH_QUALITY, MATCH_SPACING * grey.shape[1])
    if corners is None:
        return []
    xy = corners.reshape(-1, 2) + 0.5  # pixel centres -> corner-based coordinates
    s = SUPERSAMPLE
    rows = np.clip((xy[:, 1] * s).astype(int), 0, view.points.shape[0] - 1)
    cols = np.clip((xy[:, 0] * s).astype(int), 0, view.points.shape[1] - 1)
    enu = view.points[rows, cols]
    ok = np.isfinite(enu).all(axis=1) & view.valid[rows, cols]
    if not ok.any():
        return []
    frame = view.camera.frame
    lon, lat, _ = frame.to_lonlat(enu[ok, 0], enu[ok, 1], enu[ok, 2])
    xs, ys = transform_xy(4326, spec.epsg, lon, lat)
    tc, tr = ~spec.transform(easting, northing) @ (np.asarray(xs), np.asarray(ys))
    lo, hi = MARGIN_PX, spec.size - MARGIN_PX
    inside = (tc >= lo) & (tc <= hi) & (tr >= lo) & (tr <= hi)
    found = np.column_stack([xy[ok][inside], tc[inside], tr[inside]])[:MATCH_POINTS]
    return [[round(float(v), 2) for v in row] for row in found]


def _plain(value):
    """JSON-ready copy (numpy scalars and arrays to Python numbers and lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def camera_info(camera: FrameCamera, drawn: dict | None = None) -> dict:
    """The camera as the manifest records it (JSON-ready): WGS84 ``lon``, ``lat`` and
    ``altitude`` (the DSM's vertical frame) of the centre, the drawn angles, ``size`` (w, h),
    the intrinsics, ``frame`` ``[lon0, lat0, h0]`` and ``centre_enu``. :func:`camera_from_info`
    rebuilds it."""
    frame = camera.frame
    lon, lat, alt = frame.to_lonlat(*camera.centre)
    return _plain({"lon": lon, "lat": lat, "altitude": alt, **(drawn or {}), "size": [camera.width, camera.height],
                   "fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy,
                   "distortion": camera.distortion, "rotation": camera.rotation,
                   "frame": [frame.lon0, frame.lat0, frame.h0], "centre_enu": camera.centre})


def camera_from_info(info: dict) -> FrameCamera:
    """The :class:`~smgeo_geo.camera.FrameCamera` of a manifest's ``camera`` entry."""
    w, h = info["size"]
    return FrameCamera(int(w), int(h), float(info["fx"]), float(info["fy"]), float(info["cx"]), float(info["cy"]),
                       tuple(float(v) for v in info["distortion"]), np.asarray(info["rotation"], float),
                       np.asarray(info["centre_enu"], float), LocalFrame(*(float(v) for v in info["frame"])))
