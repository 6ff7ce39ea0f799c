"""Render a place from the three platforms with the synth renderers.

* satellite: a nadir-ish orthographic tile (:class:`~smgeo_synth.camera.ParallelCamera`)
  around the target, north-up, rendered at twice the size and area-averaged down, through
  the satellite sensor model;
* drone: perspective views (:class:`~smgeo_synth.camera.PerspectiveCamera`) at
  different altitudes, headings and tilts (view ``k`` takes tilt band ``k mod 3``), through
  the drone sensor model;
* ground: the same perspective renderer with the camera :data:`GROUND_HEIGHT_M` above the
  ground looking roughly horizontally at the target from a spot outside every building and
  tree crown; above the horizon, where the ground renderer has nothing, a sky gradient is
  painted before the objects are drawn (so buildings and trees stand against the sky).

Every view draws from the place's generator only, so a place renders the same bytes
whatever process renders it. Pixel frames: x = column, y = row, corner-based; scene
metres: x east, y south, z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from smgeo_synth.camera import ParallelCamera, PerspectiveCamera
from smgeo_synth.capture import Capture, sample_capture
from smgeo_synth.pair import render_drone_view, render_satellite_view, seen_ground, target_masks
from smgeo_synth.render3d import draw_objects
from smgeo_synth.scene import A_ONLY, B_ONLY
from smgeo_synth.sensor import drone_sensor, satellite_sensor

from smgeo_retrieval.corpus.places import Place

SUPERSAMPLE = 2
SAT_MARGIN_M = 40.0  # ground shown around the target on each side of the satellite tile
SAT_MIN_SIDE_M, SAT_MAX_SIDE_M = 96.0, 480.0
SAT_MAX_OFFSET = 0.12  # largest shift of the target from the tile centre, share of the side
SAT_MAX_OFF_NADIR = 6.0  # degrees
SAT_SENSOR = 0.8
SEASON_MAX = 0.45  # keeps grass green, so "green" in captions stays true
DRONE_PITCH_BANDS = ((0.0, 15.0), (22.0, 40.0), (40.0, 58.0))  # degrees off nadir, view k -> band k % 3
DRONE_HFOV = (55.0, 75.0)
DRONE_TARGET_FRAC = (0.25, 0.55)  # target size / image width
DRONE_MIN_ALT_M, DRONE_MAX_ALT_M = 35.0, 420.0
DRONE_TRIES = 6
DRONE_MIN_VISIBLE = 0.5  # visible share of the target's pixels
DRONE_SENSOR = 0.8
DRONE_MAX_RASTER = 1.25  # ground raster pixels per (supersampled) camera pixel
MAX_TOP_RAY = 76.0  # degrees off nadir of a drone image's top edge
FOOTPRINT_MAX_PITCH = 20.0  # drone views up to this tilt get a footprint polygon
GROUND_HEIGHT_M = (1.5, 2.0)
GROUND_PITCH = (84.0, 89.0)  # degrees off nadir: 90 is horizontal
GROUND_HFOV = (60.0, 78.0)
GROUND_GAP_M = (8.0, 35.0)  # camera distance beyond the target's half size
GROUND_HEADING_JITTER = 12.0
GROUND_TRIES = 8
GROUND_CLEARANCE_M = 1.0  # from building walls and tree crowns
GROUND_VEHICLE_CLEARANCE_M = 4.0  # from vehicle centres
GROUND_MIN_VISIBLE = 0.3
GROUND_SENSOR = 0.7
SKY_TOP = np.array([0.45, 0.60, 0.82], np.float32)
SKY_HORIZON = np.array([0.80, 0.85, 0.90], np.float32)


@dataclass
class View:
    """One rendered item: ``image`` uint8 RGB (size, size, 3), JPEG ``quality``; ``position``
    scene metres (x, y, z) of the camera (satellite: the tile centre at z = 0); ``heading``
    compass degrees of the view (satellite: 0, north-up); ``footprint`` scene polygon (N, 2)
    of the ground shown, or None; ``side_m`` satellite tile width."""

    image: np.ndarray
    quality: int
    position: tuple[float, float, float]
    heading: float
    pitch: float
    footprint: np.ndarray | None = None
    side_m: float = 0.0


def _capture(rng: np.random.Generator, place: Place, bit: int) -> Capture:
    return sample_capture(rng, place.scene, bit, float(rng.uniform(105, 255)), float(rng.uniform(28, 65)),
                          float(rng.uniform(0, SEASON_MAX)))


def render_satellite(place: Place, rng: np.random.Generator, size: int) -> View:
    """North-up tile around the target, ``size`` px square."""
    t = place.target
    side = float(np.clip(t.size_m + 2 * SAT_MARGIN_M, SAT_MIN_SIDE_M, SAT_MAX_SIDE_M))
    room = max(0.0, min(SAT_MAX_OFFSET * side, (side - t.size_m) / 2 - 2.0))
    cx, cy = t.centre[0] + rng.uniform(-room, room), t.centre[1] + rng.uniform(-room, room)
    n = size * SUPERSAMPLE
    cam = ParallelCamera(cx - side / 2, cy - side / 2, side / n, n, n, float(rng.uniform(0, 360)),
                         float(rng.uniform(0, SAT_MAX_OFF_NADIR)))
    place.scene.ensure(cam.view_bounds(place.scene.max_height))
    cap = _capture(rng, place, A_ONLY)
    img = render_satellite_view(place.scene, cap, cam, rng)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    u8, quality = satellite_sensor(img, rng, SAT_SENSOR)
    h = side / 2
    foot = np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    return View(u8, quality, (float(cx), float(cy), 0.0), 0.0, 0.0, foot, side)


def _visible(view: dict, tid: int) -> tuple[int, float]:
    n_vis = int((view["ids"] == tid).sum())
    n_raw = int((view["raw"] > 0).sum())
    return n_vis, n_vis / max(n_raw, 1)


def _drone_camera(rng: np.random.Generator, place: Place, k: int, n: int) -> PerspectiveCamera:
    pitch = float(rng.uniform(*DRONE_PITCH_BANDS[k % len(DRONE_PITCH_BANDS)]))
    heading = float(rng.uniform(0, 360))
    hfov = float(rng.uniform(*DRONE_HFOV))
    if pitch + hfov / 2 > MAX_TOP_RAY:
        hfov = 2 * (MAX_TOP_RAY - pitch)
    t = place.target
    dist = t.size_m / (float(rng.uniform(*DRONE_TARGET_FRAC)) * 2 * math.tan(math.radians(hfov) / 2))
    cos_p = math.cos(math.radians(pitch))
    z_min = max(DRONE_MIN_ALT_M, place.scene.max_height + 12.0)
    dist = float(np.clip(dist, z_min / cos_p, DRONE_MAX_ALT_M / cos_p))
    top = float(place.scene.target_points(t.tid)[:, 2].max())
    jitter = rng.uniform(-0.15, 0.15, 2) * t.size_m
    centre = np.array([t.centre[0] + jitter[0], t.centre[1] + jitter[1], top / 2])
    return PerspectiveCamera.looking_at(centre, dist, heading, pitch, hfov, n, n)


def _camera_footprint(cam: PerspectiveCamera) -> np.ndarray | None:
    corners = np.array([[0.0, 0.0], [cam.width, 0.0], [cam.width, cam.height], [0.0, cam.height]])
    g = cam.pixel_to_ground(corners)
    return None if np.isnan(g).any() else g


def render_drone(place: Place, rng: np.random.Generator, k: int, size: int) -> View:
    """Drone view ``k`` of the place (tilt band ``k mod 3``), ``size`` px square."""
    n = size * SUPERSAMPLE
    cap = _capture(rng, place, B_ONLY)
    best = None
    for _ in range(DRONE_TRIES):
        cam = _drone_camera(rng, place, k, n)
        place.scene.ensure(cam.view_bounds(place.scene.max_height))
        view = render_drone_view(place.scene, cap, cam, rng, place.target, max_raster=DRONE_MAX_RASTER)
        n_vis, share = _visible(view, place.target.tid)
        score = share if n_vis >= (0.04 * n) ** 2 else share - 1.0
        if best is None or score > best[0]:
            best = (score, cam, view)
        if score >= DRONE_MIN_VISIBLE:
            break
    _, cam, view = best
    img = cv2.resize(view["image"], (size, size), interpolation=cv2.INTER_AREA)
    rng_small = cv2.resize(view["range"], (size, size), interpolation=cv2.INTER_AREA)
    u8, quality = drone_sensor(img, rng, DRONE_SENSOR, rng_small)
    foot = _camera_footprint(cam) if cam.pitch <= FOOTPRINT_MAX_PITCH else None
    return View(u8, quality, tuple(float(v) for v in cam.position), cam.heading, cam.pitch, foot)


def _free_spot(place: Place, cap: Capture, x: float, y: float) -> bool:
    """Whether a camera at scene (x, y) stands outside every solid, tree crown and parked
    vehicle (within :data:`GROUND_VEHICLE_CLEARANCE_M`) of capture ``cap``."""
    scene = place.scene
    c = GROUND_CLEARANCE_M
    for s in scene.solids:
        f = s.foot
        if s.base > 2.5 or not (f[:, 0].min() - c < x < f[:, 0].max() + c and f[:, 1].min() - c < y < f[:, 1].max() + c):
            continue
        if cv2.pointPolygonTest(f.astype(np.float32), (x, y), True) > -c:
            return False
    t = scene.trees
    if len(t) and (np.hypot(t[:, 0] - x, t[:, 1] - y) < t[:, 2] + c).any():
        return False
    v = cap.vehicles
    return not (len(v) and (np.hypot(v[:, 0] - x, v[:, 1] - y) < GROUND_VEHICLE_CLEARANCE_M).any())


def render_street_view(place: Place, cap: Capture, cam: PerspectiveCamera, rng: np.random.Generator) -> dict:
    """:func:`smgeo_synth.pair.render_drone_view` for a camera near the ground: the same
    ground warp, a sky gradient above the horizon, then the objects; ``ids``/``raw`` as there."""
    scene, target = place.scene, place.target
    ground, m, _, rng_map = seen_ground(scene, cap, cam, rng, DRONE_MAX_RASTER)
    far = tuple(float(v) for v in ground.reshape(-1, 3).mean(0))  # land beyond the window: its mean colour
    canvas = cv2.warpPerspective(ground, m, (cam.width, cam.height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=far)
    th = math.radians(cam.pitch)
    horizon = cam.height / 2 - cam.f * math.cos(th) / max(math.sin(th), 1e-6)  # row of the horizon (roll 0)
    rows = int(np.clip(math.ceil(horizon + 1.0), 0, cam.height))  # one row of margin: no ground at infinity
    if rows > 0:
        tt = (np.arange(rows, dtype=np.float32) / max(horizon, 1.0))[:, None]
        sky = SKY_TOP[None] * (1 - tt) + SKY_HORIZON[None] * tt
        canvas[:rows] = np.clip(sky * 255, 0, 255).astype(np.uint8)[:, None, :]
    ids, raw, box = target_masks(scene, cam, target)
    draw_objects(canvas, cam, scene, cap, ids, target.tid, raw, box)
    img = canvas.astype(np.float32)
    img /= 255.0
    return {"image": img, "ids": ids, "raw": raw, "range": rng_map}


def _ground_camera(rng: np.random.Generator, place: Place, cap: Capture, n: int) -> PerspectiveCamera | None:
    t = place.target
    for _ in range(GROUND_TRIES):
        bearing = float(rng.uniform(0, 2 * math.pi))  # from the target to the camera
        dist = t.size_m / 2 + float(rng.uniform(*GROUND_GAP_M))
        x, y = t.centre[0] + dist * math.sin(bearing), t.centre[1] - dist * math.cos(bearing)
        if _free_spot(place, cap, x, y):
            heading = (math.degrees(bearing) + 180.0 + float(rng.uniform(-1, 1)) * GROUND_HEADING_JITTER) % 360.0
            return PerspectiveCamera((x, y, float(rng.uniform(*GROUND_HEIGHT_M))), heading,
                                     float(rng.uniform(*GROUND_PITCH)), float(rng.uniform(*GROUND_HFOV)), n, n)
    return None


def render_ground_view(place: Place, rng: np.random.Generator, size: int) -> View:
    """Street-level view of the place, ``size`` px square."""
    n = size * SUPERSAMPLE
    cap = _capture(rng, place, B_ONLY)
    best = None
    for _ in range(GROUND_TRIES):
        cam = _ground_camera(rng, place, cap, n)
        if cam is None:
            continue
        place.scene.ensure(cam.view_bounds(place.scene.max_height))
        view = render_street_view(place, cap, cam, rng)
        n_vis, share = _visible(view, place.target.tid)
        score = share if n_vis >= (0.03 * n) ** 2 else share - 1.0
        if best is None or score > best[0]:
            best = (score, cam, view)
        if score >= GROUND_MIN_VISIBLE:
            break
    if best is None:  # nowhere free around the target (cannot happen in practice): stand at its edge
        t = place.target
        cam = PerspectiveCamera((t.centre[0], t.centre[1] + t.size_m / 2 + GROUND_GAP_M[1], GROUND_HEIGHT_M[1]), 0.0,
                                GROUND_PITCH[1], GROUND_HFOV[0], n, n)
        place.scene.ensure(cam.view_bounds(place.scene.max_height))
        best = (0.0, cam, render_street_view(place, cap, cam, rng))
    _, cam, view = best
    img = cv2.resize(view["image"], (size, size), interpolation=cv2.INTER_AREA)
    rng_small = cv2.resize(view["range"], (size, size), interpolation=cv2.INTER_AREA)
    u8, quality = drone_sensor(img, rng, GROUND_SENSOR, rng_small)
    return View(u8, quality, tuple(float(v) for v in cam.position), cam.heading, cam.pitch, None)
