"""The metadata error a registration's correspondences imply (pose.fit_metadata_error)."""

from __future__ import annotations

import numpy as np
import pytest

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.pose import CameraPrior, ErrorBudget, fit_metadata_error
from smgeo_geo.terrain import FlatTerrain, intersect_rays

FRAME = LocalFrame(8.54, 47.37, 0.0)
W, H, F = 1200, 800, 1000.0
BUDGET = ErrorBudget()  # GPS 2 m, height 2 m, yaw 3, pitch 1.5, roll 1.5 deg, focal 1 %, ground 3 m
TERRAIN = FlatTerrain(0.0, sigma_m=BUDGET.ground_m)
YAW, PITCH = 40.0, -60.0


def camera(dx=0.0, dy=0.0, dz=0.0, dyaw=0.0, dpitch=0.0) -> FrameCamera:
    return FrameCamera(W, H, F, F, W / 2, H / 2, (0, 0, 0, 0, 0), rotation_from_angles(YAW + dyaw, PITCH + dpitch, 0.0),
                       np.array([dx, dy, 100.0 + dz]), FRAME)


PRIOR = CameraPrior(camera(), TERRAIN, BUDGET, YAW, PITCH, 0.0)


def correspondences(true_camera: FrameCamera, n: int = 150, seed: int = 0):
    """Photo pixels spread below the horizon and where the true camera puts them (local ENU)."""
    rng = np.random.default_rng(seed)
    px = np.column_stack([rng.uniform(0, W, n), rng.uniform(H * 0.3, H, n)])
    ground, hit = intersect_rays(true_camera, px, TERRAIN)
    return px[hit], ground[hit]


def test_an_error_within_the_budget_is_recovered_and_explained():
    # 2 sigma east, 2 sigma yaw (6 deg): off by more than 10 m at far pixels
    px, ground = correspondences(camera(dx=4.0, dyaw=6.0))
    fit = fit_metadata_error(PRIOR, px, ground, noise_m=0.3)
    assert fit is not None and fit.points == len(px)
    assert fit.sigmas[0] == pytest.approx(2.0, abs=0.3)  # GPS east
    assert fit.sigmas[3] == pytest.approx(2.0, abs=0.3)  # yaw
    assert fit.mahalanobis == pytest.approx(np.hypot(2, 2), abs=0.5)
    assert fit.explained
    far = np.argmax(np.linalg.norm(ground[:, :2] - PRIOR.camera.centre[:2], axis=1))
    base, _ = intersect_rays(PRIOR.camera, px[far:far + 1], TERRAIN)
    assert np.linalg.norm(ground[far, :2] - base[0, :2]) > 10.0  # a point test with a few-metre radius would fail


def test_the_matches_of_the_metadata_camera_itself_imply_no_error():
    px, ground = correspondences(camera())
    fit = fit_metadata_error(PRIOR, px, ground, noise_m=0.3)
    assert fit.mahalanobis < 0.1 and fit.explained


@pytest.mark.parametrize("case", ["30 m off", "another place's matches"])
def test_a_registration_the_budget_cannot_explain_is_not_explained(case):
    if case == "30 m off":  # 15 sigma of GPS
        px, ground = correspondences(camera(dx=30.0))
    else:  # matches that belong to other pixels: no pose maps one onto the other
        px, ground = correspondences(camera())
        ground = ground[np.random.default_rng(1).permutation(len(ground))]
    fit = fit_metadata_error(PRIOR, px, ground, noise_m=0.3)
    assert fit is not None and not fit.explained, fit.mahalanobis


def test_too_few_correspondences_give_no_fit():
    px, ground = correspondences(camera(), n=5)
    assert fit_metadata_error(PRIOR, px, ground, noise_m=0.3) is None
