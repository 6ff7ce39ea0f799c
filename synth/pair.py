"""One training pair: the scene rendered as a satellite tile (capture A) and a drone photo
(capture B), with the click on the target in the photo and the target's box in the tile.

Output frames: satellite pixels (x = column, y = row, corner-based; tile ``reference_size``
square) and query pixels (same convention, ``query_size`` (h, w)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from smgeo_synth.camera import ParallelCamera, PerspectiveCamera
from smgeo_synth.capture import Capture, sample_capture
from smgeo_synth.difficulty import Difficulty, get_difficulty
from smgeo_synth.ground import render_ground
from smgeo_synth.layout import build_scene
from smgeo_synth.options import CLASSES, MIN_EXTENT, PairOptions, SynthOptionError
from smgeo_synth.render3d import SHIFT, cv_coords, draw_objects, project_polygon
from smgeo_synth.scene import A_ONLY, B_ONLY, Scene, Target
from smgeo_synth.sensor import drone_sensor, satellite_sensor

SUPERSAMPLE = 2  # drone views are rendered at twice the query size and area-averaged down
MAX_TOP_RAY = 76.0  # degrees off nadir of the image's top edge (keeps the horizon out of view)


@dataclass
class Pair:
    """``satellite`` uint8 RGB (R, R, 3); ``query`` uint8 RGB (h, w, 3); ``click`` (x, y)
    query px on the target; ``box`` (x1, y1, x2, y2) satellite px; ``info``: capture and
    camera parameters, and ``target_mask`` (query-sized bool map of the visible target)."""

    satellite: np.ndarray
    query: np.ndarray
    click: tuple[float, float]
    box: tuple[float, float, float, float]
    class_name: str
    area_m2: float
    heading: float
    satellite_quality: int
    query_quality: int
    info: dict = field(default_factory=dict)


def render_satellite_view(scene: Scene, cap: Capture, cam: ParallelCamera, rng: np.random.Generator) -> np.ndarray:
    """Float RGB render of the tile seen by ``cam`` (its raster must cover the tile)."""
    window = (cam.x0, cam.y0, cam.x0 + cam.width * cam.res, cam.y0 + cam.height * cam.res)
    canvas = render_ground(scene, cap, window, cam.res, rng)
    draw_objects(canvas, cam, scene, cap)
    img = canvas.astype(np.float32)
    img /= 255.0  # == canvas.astype(np.float32) / 255.0
    return img


def seen_ground(scene: Scene, cap: Capture, cam: PerspectiveCamera, rng: np.random.Generator,
                max_raster: float = 2.0) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The ground the camera sees, rendered top-down at about the nearest ground sampling
    distance (at most ``max_raster`` raster pixels per camera pixel), and the 3x3 map from that
    raster's pixels (OpenCV centre convention) to the camera's, for ``cv2.warpPerspective``.
    Returns ``(ground, map, metres per raster pixel, metres to the ground per camera pixel)``."""
    size = scene.size
    vb = cam.view_bounds(0.0)
    vb = (max(vb[0], -250.0), max(vb[1], -250.0), min(vb[2], size + 250.0), min(vb[3], size + 250.0))
    rng_map = cam.ground_range()
    gsd = float(rng_map.min()) / cam.f
    area = (vb[2] - vb[0]) * (vb[3] - vb[1])
    res = max(0.8 * gsd, math.sqrt(area / (max_raster * cam.width * cam.height)), 0.04)
    nx, ny = int(math.ceil((vb[2] - vb[0]) / res)), int(math.ceil((vb[3] - vb[1]) / res))
    window = (vb[0], vb[1], vb[0] + nx * res, vb[1] + ny * res)
    ground = render_ground(scene, cap, window, res, rng)
    raster_to_world = np.array([[res, 0, window[0] + 0.5 * res], [0, res, window[1] + 0.5 * res], [0, 0, 1]])
    to_cv = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return ground, to_cv @ cam.ground_homography() @ raster_to_world, res, rng_map


def target_masks(scene: Scene, cam: PerspectiveCamera, target: Target):
    """Camera-raster masks of ``target`` before the objects are drawn: ``ids`` (int32, the
    target id on its ground polygons), ``raw`` (uint8 255 there) and the padded pixel box of
    its projected points ``(x0, y0, x1, y1)`` (None when none is in front of the camera)."""
    ids = np.zeros((cam.height, cam.width), np.int32)
    raw = np.zeros((cam.height, cam.width), np.uint8)
    for g in target.ground:
        uv = project_polygon(cam, np.c_[g, np.zeros(len(g))])
        if uv is not None:
            cv2.fillPoly(ids, [cv_coords(uv)], target.tid, cv2.LINE_8, SHIFT)
            cv2.fillPoly(raw, [cv_coords(uv)], 255, cv2.LINE_8, SHIFT)
    uv, d = cam.project(scene.target_points(target.tid))
    uv = uv[d > cam.near]
    box = (uv[:, 0].min() - 2, uv[:, 1].min() - 2, uv[:, 0].max() + 2, uv[:, 1].max() + 2) if len(uv) else None
    return ids, raw, box


def render_drone_view(scene: Scene, cap: Capture, cam: PerspectiveCamera, rng: np.random.Generator,
                      target: Target | None = None, max_raster: float = 2.0) -> dict:
    """Render the perspective view: the ground of the seen window rendered at about the
    nearest ground sampling distance (at most ``max_raster`` raster pixels per camera pixel)
    and warped by the ground homography, then every 3-D object drawn with parallax.

    Returns ``image`` (float RGB, camera raster size), ``range`` (metres to the ground per
    pixel), ``ground_res`` and, with a target, ``ids`` (target id where the target is the
    visible surface, else 0) and ``raw`` (the target's pixels ignoring occluders)."""
    ground, m, res, rng_map = seen_ground(scene, cap, cam, rng, max_raster)
    warped = cv2.warpPerspective(ground, m, (cam.width, cam.height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    canvas = warped
    out = {"range": rng_map, "ground_res": res}
    ids = raw = box = None
    if target is not None:
        ids, raw, box = target_masks(scene, cam, target)
    draw_objects(canvas, cam, scene, cap, ids, target.tid if target else 0, raw, box)
    img = canvas.astype(np.float32)
    img /= 255.0  # == canvas.astype(np.float32) / 255.0
    out.update(image=img, ids=ids, raw=raw)
    return out


def _eligible(scene: Scene, cam: ParallelCamera, cls: str, reference_size: int, ss: int) -> list[tuple[Target, tuple]]:
    out = []
    targets = [t for t in scene.targets if t.class_name == cls]
    if not targets:
        return out
    pts = [scene.target_points(t.tid) for t in targets]
    starts = np.cumsum([0] + [len(p) for p in pts[:-1]])
    uv, _ = cam.project(np.concatenate(pts))  # the parallel camera projects point by point
    lo = np.stack([np.minimum.reduceat(uv[:, 0], starts), np.minimum.reduceat(uv[:, 1], starts)], 1) / ss
    hi = np.stack([np.maximum.reduceat(uv[:, 0], starts), np.maximum.reduceat(uv[:, 1], starts)], 1) / ss
    for t, (x0, y0), (x1, y1) in zip(targets, lo.tolist(), hi.tolist()):
        if x0 >= 2 and y0 >= 2 and x1 <= reference_size - 2 and y1 <= reference_size - 2 and \
                min(x1 - x0, y1 - y0) >= 4 and t.size_m <= 0.8 * cam.width * cam.res:
            out.append((t, (x0, y0, x1, y1)))
    return out


def _drone_camera(rng: np.random.Generator, diff: Difficulty, scene: Scene, t: Target, qh: int, qw: int,
                  top_height: float) -> PerspectiveCamera:
    heading = float((rng.uniform(-1, 1) * diff.heading_jitter) % 360.0)
    pitch = float(rng.uniform(*diff.pitch))
    hfov = float(rng.uniform(*diff.hfov))
    vfov = 2 * math.degrees(math.atan(math.tan(math.radians(hfov) / 2) * qh / qw))
    if pitch + vfov / 2 > MAX_TOP_RAY:
        vfov = 2 * (MAX_TOP_RAY - pitch)
        hfov = 2 * math.degrees(math.atan(math.tan(math.radians(vfov) / 2) * qw / qh))
    frac = float(rng.uniform(*diff.target_frac))
    tan_h = math.tan(math.radians(hfov) / 2)
    dist = t.size_m / (frac * 2 * tan_h)
    cos_p = math.cos(math.radians(pitch))
    z_min = max(40.0, scene.max_height + 12.0)
    dist = float(np.clip(dist, z_min / cos_p, 420.0 / cos_p))
    centre = np.array([t.centre[0], t.centre[1], top_height / 2])
    cam = PerspectiveCamera.looking_at(centre, dist, heading, pitch, hfov, qw * SUPERSAMPLE, qh * SUPERSAMPLE)
    ox, oy = rng.uniform(-1, 1, 2) * diff.offset
    h_dir = np.array([math.sin(math.radians(heading)), -math.cos(math.radians(heading)), 0.0])
    shift = -ox * dist * tan_h * cam.right + oy * dist * tan_h * (qh / qw) / cos_p * h_dir
    return PerspectiveCamera(cam.position + shift, heading, pitch, hfov, cam.width, cam.height)


def _in_frame_share(cam: PerspectiveCamera, pts: np.ndarray) -> float:
    uv, d = cam.project(pts)
    if (d <= cam.near).any():
        return 0.0
    hull = cv2.convexHull(uv.astype(np.float32))
    area = cv2.contourArea(hull)
    if area <= 1:
        return 0.0
    frame = np.array([[0, 0], [cam.width, 0], [cam.width, cam.height], [0, cam.height]], np.float32)
    inter, _ = cv2.intersectConvexConvex(hull, frame)
    return float(inter) / area


def render_pair(seed: int, options: PairOptions, class_name: str | None = None, keep_scene: bool = False) -> Pair:
    """Render the pair of ``seed`` (deterministic). ``class_name`` defaults to a draw from
    ``options.class_weights``."""
    opts = options.validated()
    diff = get_difficulty(opts.difficulty)
    rng = np.random.default_rng(seed)
    if class_name is None:
        names = list(opts.class_weights)
        w = np.array([opts.class_weights[n] for n in names], dtype=np.float64)
        class_name = names[int(rng.choice(len(names), p=w / w.sum()))]
    elif class_name not in CLASSES or opts.extent < MIN_EXTENT.get(class_name, 0.0):
        raise SynthOptionError(f"class {class_name!r} is not one of {', '.join(CLASSES)} or does not fit a "
                               f"{opts.extent:g} m tile")
    R, res = opts.reference_size, opts.resolution
    ss = 2 if res > 0.75 else 1
    qh, qw = opts.query_size
    for attempt in range(12):
        scene = build_scene(int(rng.integers(0, 2**31 - 1)), opts.extent, class_name, diff)
        x0, y0, _ = scene.tile
        off_nadir = float(rng.uniform(0, diff.sat_off_nadir))
        sat_cam = ParallelCamera(x0, y0, res / ss, R * ss, R * ss, float(rng.uniform(0, 360)), off_nadir)
        candidates = _eligible(scene, sat_cam, class_name, R, ss)
        rng.shuffle(candidates)
        for target, box in candidates[:3]:
            pts = scene.target_points(target.tid)
            top = float(pts[:, 2].max())
            for _ in range(8):
                cam = _drone_camera(rng, diff, scene, target, qh, qw, top)
                if _in_frame_share(cam, pts) < 0.7:
                    continue
                scene.ensure(cam.view_bounds(scene.max_height))
                az_a, el_a, season_a = rng.uniform(105, 235), rng.uniform(30, 65), rng.uniform(0, 1)
                az_b = az_a + rng.uniform(*diff.sun_change) * rng.choice([-1, 1])
                season_b = float(np.clip(season_a + rng.uniform(-1, 1) * diff.season_change, 0, 1))
                cap_a = sample_capture(rng, scene, A_ONLY, float(az_a), float(el_a), float(season_a))
                cap_b = sample_capture(rng, scene, B_ONLY, float(az_b % 360), float(rng.uniform(22, 62)), season_b,
                                       diff.vehicle_keep, cap_a)
                view = render_drone_view(scene, cap_b, cam, rng, target)
                visible = view["ids"] == target.tid
                n_vis, n_raw = int(visible.sum()), int((view["raw"] > 0).sum())
                min_px = (0.045 * cam.width) ** 2
                if n_vis < min_px or n_vis < diff.min_visible * max(n_raw, 1):
                    continue
                return _finish(rng, opts, diff, scene, target, box, sat_cam, ss, cap_a, cap_b, cam, view, visible,
                               keep_scene, seed, attempt)
    raise RuntimeError(f"synth: no usable {class_name} target for pair seed {seed} (please report)")


def _finish(rng, opts: PairOptions, diff: Difficulty, scene: Scene, target: Target, box, sat_cam, ss, cap_a, cap_b,
            cam: PerspectiveCamera, view: dict, visible: np.ndarray, keep_scene: bool, seed: int, attempt: int) -> Pair:
    R = opts.reference_size
    qh, qw = opts.query_size
    # click: a point deep inside the visible target
    mask = visible.astype(np.uint8)
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    rows, cols = np.nonzero(dt >= max(1.0, 0.6 * float(dt.max())))
    k = int(rng.integers(len(rows)))
    click = ((cols[k] + 0.5) / SUPERSAMPLE, (rows[k] + 0.5) / SUPERSAMPLE)
    target_mask = cv2.resize(mask.astype(np.float32), (qw, qh), interpolation=cv2.INTER_AREA) >= 0.5
    query = cv2.resize(view["image"], (qw, qh), interpolation=cv2.INTER_AREA)
    rng_small = cv2.resize(view["range"], (qw, qh), interpolation=cv2.INTER_AREA)
    query_u8, q_quality = drone_sensor(query, rng, diff.sensor, rng_small)
    sat = render_satellite_view(scene, cap_a, sat_cam, rng)
    if ss > 1:
        sat = cv2.resize(sat, (R, R), interpolation=cv2.INTER_AREA)
    sat_u8, s_quality = satellite_sensor(sat, rng, diff.sensor)
    info = {
        "seed": seed, "scene_attempt": attempt, "target_id": target.tid,
        "camera": {"position": [float(v) for v in cam.position], "heading": cam.heading, "pitch": cam.pitch,
                   "hfov": cam.hfov},
        "satellite": {"off_nadir": math.degrees(math.atan(sat_cam.k)), "lean": [float(v) for v in sat_cam.lean]},
        "sun_a": (cap_a.sun_azimuth, cap_a.sun_elevation), "sun_b": (cap_b.sun_azimuth, cap_b.sun_elevation),
        "season_a": cap_a.season, "season_b": cap_b.season,
        "vehicles_a": len(cap_a.vehicles), "vehicles_b": len(cap_b.vehicles),
        "target_mask": target_mask, "drone_ground_res": view["ground_res"],
    }
    if keep_scene:
        info.update(scene=scene, target=target, capture_a=cap_a, capture_b=cap_b, satellite_camera=sat_cam,
                    drone_camera=cam)
    return Pair(sat_u8, query_u8, (float(click[0]), float(click[1])), tuple(float(v) for v in box),
                target.class_name, round(target.area_m2, 1), round(float(cam.heading), 2), s_quality, q_quality, info)
