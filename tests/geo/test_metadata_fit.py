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


def test_a_lens_the_metadata_does_not_describe_is_one_more_source_of_its_error():
    """Matches of a barrel lens (k1 -0.2) against a pinhole metadata camera: with the lens term of
    a photo whose metadata gives no lens model (8 sources, chi-square with 8 degrees of freedom)
    they are explained, the lens taking the barrel (the fit is linearised at one sigma of k1, so it
    finds its sign and size, not its value), not a height or pitch error."""
    from dataclasses import replace

    from smgeo_geo.lens import UNKNOWN_K1_SIGMA

    px, ground = correspondences(replace(camera(), distortion=(-0.2, 0.0, 0.0, 0.0, 0.0)))
    unknown_lens = replace(PRIOR, budget=replace(BUDGET, lens_k1=UNKNOWN_K1_SIGMA))
    fit = fit_metadata_error(unknown_lens, px, ground, noise_m=0.3)
    assert len(fit.sigmas) == 8 and fit.explained
    assert -0.4 < fit.sigmas[7] * UNKNOWN_K1_SIGMA < -0.1
    assert abs(fit.sigmas[2]) < 0.2 and abs(fit.sigmas[4]) < 0.2  # height, pitch
    # without the lens term the pinhole budget takes it for a height, pitch and focal length error
    pinhole = fit_metadata_error(PRIOR, px, ground, noise_m=0.3)
    assert abs(pinhole.sigmas[2]) > 1.0 and abs(pinhole.sigmas[4]) > 1.0


def test_the_metadata_radius_counts_an_undescribed_lens_most_at_the_photos_edge():
    """An RTK drone (GPS and height to 5 cm) whose metadata gives no lens model: at the photo's
    centre the lens moves nothing, at its edge it adds metres (in quadrature) to the radius."""
    from dataclasses import replace

    from smgeo_geo.lens import UNKNOWN_K1_SIGMA
    from smgeo_geo.pose import locate_pixel

    rtk = replace(PRIOR, budget=replace(BUDGET, gps_horizontal_m=0.05, height_m=0.05))
    unknown_lens = replace(rtk, budget=replace(rtk.budget, lens_k1=UNKNOWN_K1_SIGMA))
    centre, edge = (W / 2, H / 2), (20.0, H - 20.0)
    assert locate_pixel(unknown_lens, centre).uncertainty_m == pytest.approx(locate_pixel(rtk, centre).uncertainty_m,
                                                                             rel=0.01)
    with_lens, without = locate_pixel(unknown_lens, edge).uncertainty_m, locate_pixel(rtk, edge).uncertainty_m
    assert (with_lens ** 2 - without ** 2) ** 0.5 > 3.0


def test_a_refined_cameras_height_change_is_counted_in_budget_sigmas():
    """Up or down over the height's 1-sigma with the ground's added (BUDGET: height 2 m, ground
    3 m); a horizontal shift (a GPS error registration corrects) does not count."""
    from smgeo_geo.pose import camera_height_sigma

    vertical = np.hypot(2.0, 3.0)
    assert camera_height_sigma(PRIOR, camera()) == 0.0
    assert camera_height_sigma(PRIOR, camera(dx=30.0)) == 0.0
    assert camera_height_sigma(PRIOR, camera(dy=5.0, dz=-4 * vertical)) == pytest.approx(4.0)
