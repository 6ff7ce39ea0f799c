"""Cameras assumed for what a photo's metadata lacks (pose.camera_hypotheses) and the footprint
of a photo without a pitch (photo_meta.approximate_footprint)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from smgeo_geo.errors import MetadataError
from smgeo_geo.photo_meta import UNKNOWN_PITCH_MAX_OFF_NADIR_DEG, PhotoMeta, approximate_footprint
from smgeo_geo.pose import (HEIGHT_HYPOTHESES_M, PITCH_HYPOTHESES_DEG, YAW_HYPOTHESES_DEG, camera_from_metadata,
                            camera_hypotheses, heading_hypotheses)

FULL = PhotoMeta(path="DJI_0001.JPG", lon=8.54, lat=47.37, relative_altitude=80.0, gimbal_yaw=30.0,
                 gimbal_pitch=-60.0, gimbal_roll=0.0, flight_yaw=28.0, focal_length_35mm=24.0, size=(4000, 3000),
                 attitude_source="DJI")


def drop(**fields) -> PhotoMeta:
    from dataclasses import replace

    return replace(FULL, **fields)


def pitch_and_heading(prior) -> tuple[float, float]:
    return round(prior.pitch, 6), round(prior.yaw % 360.0, 6)


def test_complete_metadata_needs_no_hypotheses_and_a_photo_without_gps_gets_none():
    assert camera_hypotheses(FULL) == []
    assert camera_hypotheses(drop(lon=None, lat=None, gimbal_pitch=None)) == []


def test_a_missing_pitch_is_an_error_naming_it_not_a_silent_nadir():
    with pytest.raises(MetadataError, match="DJI_0001.JPG: no camera pitch"):
        camera_from_metadata(drop(gimbal_pitch=None))


def test_missing_pitch_tries_every_pitch_at_the_known_heading_nadir_first():
    hyps = camera_hypotheses(drop(gimbal_pitch=None))
    assert [pitch_and_heading(h) for h in hyps] == [(p, 30.0) for p in PITCH_HYPOTHESES_DEG]
    assert PITCH_HYPOTHESES_DEG[0] == -90.0 and PITCH_HYPOTHESES_DEG[-1] == -90.0 + UNKNOWN_PITCH_MAX_OFF_NADIR_DEG
    assert all(b - a == 15.0 for a, b in zip(PITCH_HYPOTHESES_DEG, PITCH_HYPOTHESES_DEG[1:]))
    assert [h.assumed for h in hyps[:2]] == ["pitch -90", "pitch -75"]
    assert all(h.camera.centre[2] == 80.0 for h in hyps)  # the known height is kept


def test_missing_gimbal_angles_try_the_flight_heading_first_then_every_heading():
    hyps = camera_hypotheses(drop(gimbal_pitch=None, gimbal_yaw=None))
    seen = [pitch_and_heading(h) for h in hyps]
    oblique = [p for p in PITCH_HYPOTHESES_DEG if p > -90.0]
    assert seen[:len(PITCH_HYPOTHESES_DEG)] == [(p, 28.0) for p in PITCH_HYPOTHESES_DEG]
    rest = seen[len(PITCH_HYPOTHESES_DEG):]
    # every other heading, but not the grid's one next to the flight heading (0 is 28 deg away: kept)
    assert rest == [(p, y) for p in oblique for y in YAW_HYPOTHESES_DEG if abs((y - 28.0 + 180) % 360 - 180) >= 22.5]
    assert "flight heading" in hyps[0].assumed and "heading 45" not in " ".join(h.assumed for h in hyps)


def test_no_xmp_tries_one_heading_at_nadir_and_every_height():
    meta = drop(gimbal_pitch=None, gimbal_yaw=None, gimbal_roll=None, flight_yaw=None, relative_altitude=None,
                gps_altitude=512.0, attitude_source="")
    hyps = camera_hypotheses(meta)
    per_height = 1 + (len(PITCH_HYPOTHESES_DEG) - 1) * len(YAW_HYPOTHESES_DEG)
    assert len(hyps) == per_height * len(HEIGHT_HYPOTHESES_M)
    assert sorted({round(h.camera.centre[2], 6) for h in hyps}) == sorted(HEIGHT_HYPOTHESES_M)
    nadir = [h for h in hyps if h.pitch == -90.0]
    assert len(nadir) == len(HEIGHT_HYPOTHESES_M)  # a turn about the vertical only turns the rectified photo
    assert all(f"height {h.camera.centre[2]:g} m above take-off" in h.assumed for h in hyps)


def test_a_photo_without_pitch_has_a_footprint_that_holds_any_pitch_and_heading():
    """Centred on the drone, reaching the far edge of a view UNKNOWN_PITCH_MAX_OFF_NADIR_DEG off
    nadir in any direction (it used to be the nadir footprint: an oblique photo's far half lay
    outside it)."""
    meta = drop(gimbal_pitch=None)
    fp = approximate_footprint(meta, hfov_deg=70.0, margin=1.0)
    assert (fp.lon, fp.lat) == (pytest.approx(meta.lon, abs=1e-12), pytest.approx(meta.lat, abs=1e-12))
    for pitch in PITCH_HYPOTHESES_DEG:
        for yaw in (0.0, 135.0, 250.0):
            known = approximate_footprint(drop(gimbal_pitch=pitch, gimbal_yaw=yaw), hfov_deg=70.0, margin=1.0)
            _, _, dist = Geod(ellps="WGS84").inv(meta.lon, meta.lat, known.lon, known.lat)
            assert dist + known.radius_m <= fp.radius_m + 1e-6, (pitch, yaw)
    assert fp.radius_m > approximate_footprint(drop(gimbal_pitch=-90.0), hfov_deg=70.0, margin=1.0).radius_m * 2
    assert math.isfinite(fp.radius_m)


def test_other_headings_for_a_compass_far_off_nearest_first_none_at_nadir():
    prior = camera_from_metadata(FULL)  # heading 30
    turned = heading_hypotheses(prior)
    apart = [abs((h.yaw - 30.0 + 180.0) % 360.0 - 180.0) for h in turned]
    assert apart == sorted(apart) and min(apart) >= 22.5 and len(turned) == len(YAW_HYPOTHESES_DEG) - 1
    assert all(h.pitch == prior.pitch and np.array_equal(h.camera.centre, prior.camera.centre) for h in turned)
    for h in turned:  # the camera itself is turned: its optical axis points along the new heading
        axis = h.camera.rays([(h.camera.width / 2, h.camera.height / 2)])[0]
        assert math.degrees(math.atan2(axis[0], axis[1])) % 360.0 == pytest.approx(h.yaw % 360.0, abs=1e-6)
    assert "the metadata's is 30" in turned[0].assumed
    assert heading_hypotheses(camera_from_metadata(drop(gimbal_pitch=-88.0))) == []
