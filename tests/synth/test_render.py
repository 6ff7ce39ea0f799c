"""Rendering: click on the target, box, parallax of heights, sun-dependent shadows, time changes."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from smgeo_synth import CLASSES, PairOptions, render_drone_view, render_pair, render_satellite_view
from smgeo_synth import geometry as geo
from smgeo_synth.builder import SceneBuilder
from smgeo_synth.camera import ParallelCamera, PerspectiveCamera
from smgeo_synth.capture import sample_capture
from smgeo_synth.difficulty import DIFFICULTIES
from smgeo_synth.scene import A_ONLY, B_ONLY, BOTH

SMALL = PairOptions(reference_size=256, query_size=(128, 128))
RED, BLUE = (0.9, 0.05, 0.05), (0.1, 0.15, 0.85)


@pytest.fixture(scope="module")
def pairs():
    return {c: render_pair(100 + i, SMALL, c, keep_scene=True) for i, c in enumerate(CLASSES)}


def test_every_class_click_on_target_and_box(pairs):
    centres, areas = [], []
    for cls, p in pairs.items():
        info = p.info
        assert p.class_name == cls
        assert p.query.shape == (128, 128, 3) and p.satellite.shape == (256, 256, 3)
        cx, cy = p.click
        assert 0 <= cx < 128 and 0 <= cy < 128
        assert info["target_mask"][int(cy), int(cx)], cls  # the visible target is under the click
        # independently of the renderer's id map: the click lies on the target's projected geometry
        scene, t, cam = info["scene"], info["target"], info["drone_camera"]
        uv, depth = cam.project(scene.target_points(t.tid))
        hull = cv2.convexHull((uv / 2).astype(np.float32))
        assert cv2.pointPolygonTest(hull, (cx, cy), True) > -1.0, cls
        # the box is the target's extent in the satellite tile
        sat = info["satellite_camera"]
        ss = sat.width // 256
        suv, _ = sat.project(scene.target_points(t.tid))
        assert p.box == pytest.approx((*(suv.min(0) / ss), *(suv.max(0) / ss)))
        x1, y1, x2, y2 = p.box
        assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
        res = 512.0 / 256
        assert p.area_m2 <= (x2 - x1) * (y2 - y1) * res * res * 1.05 + 1
        centres.append(((x1 + x2) / 2, (y1 + y2) / 2))
        areas.append(p.area_m2)
    # targets anywhere in the tile, sizes across CVOGL's range
    assert np.std(np.array(centres), axis=0).min() > 15
    assert min(areas) < 500 and max(areas) > 6000
    assert pairs["leisure_stadium"].area_m2 > 10000 and pairs["building_house"].area_m2 < 450


def test_distractors_of_the_same_class_in_the_tile(pairs):
    for cls in ("sport_tennis", "building_house", "amenity_parking", "junction_roundabout", "sport_basketball"):
        info = pairs[cls].info
        scene, sat = info["scene"], info["satellite_camera"]
        inside = 0
        for t in scene.targets:
            if t.class_name == cls:
                u, _ = sat.project(np.array([[*t.centre, 0.0]]))
                inside += bool(0 <= u[0, 0] < sat.width and 0 <= u[0, 1] < sat.height)
        assert inside >= 2, cls


def one_building(height: float, roof=RED):
    """A 20 x 20 m flat-roofed block at (100, 100) on open grass."""
    b = SceneBuilder(200.0, (0.0, 0.0, 200.0), 5, np.random.default_rng(0))
    b.ground(geo.rect(100, 100, 600, 600, 0), "lawn", 0, var=0.5)
    b.solid(geo.rect(100, 100, 20, 20, 0), 0, height, "flat", 0, roof, BLUE, presence=BOTH)
    return b.finish()


def _capture(scene, az=150.0, el=50.0, bit=B_ONLY):
    return sample_capture(np.random.default_rng(1), scene, bit, az, el, 0.3)


def _roof(img):
    m = (img[..., 0] > 0.45) & (img[..., 1] < 0.25) & (img[..., 2] < 0.25)
    ys, xs = np.nonzero(m)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5]), m.sum()


def _facade(img):
    return ((img[..., 2] > img[..., 0] + 0.1) & (img[..., 2] > img[..., 1] + 0.1)).sum()


def _drone_roof_shift(height, pitch):
    scene = one_building(height)
    cam = PerspectiveCamera.looking_at((100, 100, 0), 160, 30.0, pitch, 60, 256, 256)
    img = render_drone_view(scene, _capture(scene), cam, np.random.default_rng(2))["image"]
    roof, n = _roof(img)
    foot = cam.project(np.array([[100.0, 100.0, 0.0]]))[0][0]
    expected = cam.project(np.array([[100.0, 100.0, height]]))[0][0]
    assert np.hypot(*(roof - expected)) < 2.0  # the roof is drawn where the camera sees it
    return float(np.hypot(*(roof - foot))), _facade(img)


def test_parallax_grows_with_height_and_obliquity():
    low, facade_low = _drone_roof_shift(10, 45)
    high, facade_high = _drone_roof_shift(40, 45)
    assert high > 3.0 * low > 0
    assert facade_high > facade_low > 100  # facades show in the oblique view
    flat, _ = _drone_roof_shift(30, 30)
    steep, _ = _drone_roof_shift(30, 55)
    assert steep > 1.3 * flat
    # the nadir satellite sees no parallax and no facades
    scene = one_building(40)
    sat = ParallelCamera(0, 0, 0.5, 400, 400, 0, 0.0)
    img = render_satellite_view(scene, _capture(scene, bit=A_ONLY), sat, np.random.default_rng(3))
    roof, _ = _roof(img)
    assert np.hypot(*(roof - (200, 200))) < 1.0 and _facade(img) == 0


def _shadow_centroid(az: float):
    scene = one_building(20, roof=(0.8, 0.8, 0.8))
    sat = ParallelCamera(0, 0, 0.5, 400, 400, 0, 0.0)
    img = render_satellite_view(scene, _capture(scene, az=az, el=40, bit=A_ONLY), sat, np.random.default_rng(4))
    lum = img.mean(-1)
    ground = np.median(lum)
    dark = lum < 0.75 * ground
    dark[180:220, 180:220] = False  # the building itself
    ys, xs = np.nonzero(dark)
    return np.array([xs.mean() - 200, ys.mean() - 200]), dark


def test_shadows_follow_the_sun():
    for az in (90.0, 180.0, 235.0):
        c, dark = _shadow_centroid(az)
        length = 20 / math.tan(math.radians(40)) / 0.5  # pixels
        away = -np.array([math.sin(math.radians(az)), -math.cos(math.radians(az))])  # opposite the sun
        assert np.dot(c / np.linalg.norm(c), away) > 0.95, az
        assert 0.3 * length < np.linalg.norm(c) < 1.2 * length
    _, east = _shadow_centroid(90.0)
    _, south = _shadow_centroid(180.0)
    assert (east & south).sum() < 0.3 * min(east.sum(), south.sum())


def test_the_two_captures_differ_in_time(pairs):
    d = DIFFICULTIES["medium"]
    changed_vehicles = 0
    for p in pairs.values():
        a, b = p.info["capture_a"], p.info["capture_b"]
        daz = abs((a.sun_azimuth - b.sun_azimuth + 180) % 360 - 180)
        assert daz >= d.sun_change[0] - 1e-6
        if len(a.vehicles) and len(b.vehicles):
            dist = np.hypot(*(b.vehicles[:, None, :2] - a.vehicles[None, :, :2]).transpose(2, 0, 1)).min(1)
            changed_vehicles += (dist > 0.8).mean() > 0.3
    assert changed_vehicles >= 5
    scene = pairs["building_house"].info["scene"]
    presence = scene.trees[:, 5].astype(int)
    assert (presence == A_ONLY).any() and (presence == B_ONLY).any() and (presence == BOTH).mean() > 0.9
    a, b = pairs["building_house"].info["capture_a"], pairs["building_house"].info["capture_b"]
    fields = [f.var for p in pairs.values() for f in p.info["scene"].fields]
    assert fields and any(not np.allclose(a.field_stage(v)[0], b.field_stage(v)[0]) for v in fields)
