"""Fitting the lens a photo's metadata does not give (smgeo_geo.lens) to a registration's matches:
points on hilly ground seen by a real (distorted) camera, matched in the photo with pixel noise
(a tenth of the matches wrong), fitted from a pinhole camera posed a little off; judged by where
the fitted camera's rays meet the ground against the true camera's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.lens import (UNKNOWN_K1_SIGMA, UNKNOWN_LENS, LensPrior, corner_radius, fit_radial_distortion, refit_pose,
                            unfolding_k2)

# photo pixels where the answers are compared: near the bottom-left corner, left edge, centre,
# top-right (far away, at the top of an oblique photo)
PIXELS = np.array([[60.0, 860.0], [150.0, 780.0], [684.0, 456.0], [1200.0, 150.0]])


def camera(k1: float, k2: float = 0.0) -> FrameCamera:
    """A 1368 x 912 photo, 24 mm-equivalent lens, 100 m above the ground, 30 deg off nadir."""
    w, h = 1368, 912
    f = 24.0 * np.hypot(w, h) / 43.2666
    return FrameCamera(w, h, f, f, w / 2, h / 2, (k1, k2, 0.0, 0.0, 0.0), rotation_from_angles(20.0, -60.0, 0.0),
                       np.array([0.0, 0.0, 100.0]), LocalFrame(120.95, 24.68, 0.0))


def matches(cam: FrameCamera, region=(0.0, 1.0, 0.0, 1.0), n: int = 120, seed: int = 0):
    """``n`` ground points (hilly: +-5 m) seen in ``region`` (fractions x0, x1, y0, y1 of the photo),
    their photo pixels with 0.7 px of noise (10 % of the matches wrong) and which are right."""
    rng = np.random.default_rng(seed)
    x0, x1, y0, y1 = region
    px = np.column_stack([rng.uniform(x0, x1, n) * cam.width, rng.uniform(y0, y1, n) * cam.height])
    rays = cam.rays(px)
    t = (5.0 * np.sin(np.arange(n)) - cam.centre[2]) / rays[:, 2]
    world = cam.centre + rays * t[:, None]
    seen, _ = cam.project(world)
    seen += rng.normal(0.0, 0.7, seen.shape)
    wrong = rng.random(n) < 0.1
    seen[wrong] += rng.uniform(-60, 60, (wrong.sum(), 2))
    return world, seen, ~wrong


def metadata_camera(cam: FrameCamera) -> FrameCamera:
    """The metadata's camera: no lens model, pose a little off (yaw 1 deg, pitch 0.5, 2 m)."""
    return replace(cam, distortion=(0.0,) * 5).with_pose(rotation_from_angles(21.0, -59.5, 0.0),
                                                         cam.centre + np.array([2.0, -1.0, 1.0]))


def ground_error_m(posed: FrameCamera, true: FrameCamera, pixels=PIXELS) -> np.ndarray:
    """Metres between where ``posed`` and ``true`` put ``pixels`` on the level ground z = 0."""
    def on_ground(c):
        r = c.rays(pixels)
        return c.centre[:2] + r[:, :2] * (-c.centre[2] / r[:, 2])[:, None]
    return np.linalg.norm(on_ground(posed) - on_ground(true), axis=1)


def fitted(true: FrameCamera, **kw):
    """The lens fitted to the matches and the pose refitted with it (and without: a pinhole),
    each refitted to the right matches as PnP-RANSAC keeps them."""
    world, seen, right = matches(true, **kw)
    pinhole = refit_pose(metadata_camera(true), world[right], seen[right])
    fit = fit_radial_distortion(pinhole, world, seen)
    lens = None if fit is None else refit_pose(fit.applied(metadata_camera(true)), world[right], seen[right])
    return fit, lens, pinhole


@pytest.mark.parametrize("k1, k2", [(-0.15, 0.0), (-0.1, 0.03), (0.0, 0.0), (0.08, 0.0), (-0.267, 0.112)])
def test_the_lens_is_recovered_from_matches_over_the_photo(k1, k2):
    """The last lens is the shared DJI photo's (DewarpData k1 -0.267, k2 0.112)."""
    true = camera(k1, k2)
    fit, lens, pinhole = fitted(true)
    assert fit is not None and fit.points == 120
    assert fit.k1 == pytest.approx(k1, abs=0.03) and 0 < fit.sigma < 0.03
    err = ground_error_m(lens, true)
    assert err.max() < 0.3, err
    if k1 != 0.0:  # the pinhole is most of a metre or more off near the corner
        assert ground_error_m(pinhole, true)[0] > max(0.5, 5 * err[0])


def test_matches_in_a_small_part_of_the_photo_leave_the_lens_near_a_pinhole_and_say_so():
    """Matches near the photo's centre hardly see the lens: the fit stays near the prior (0) and
    says it knows little more than the prior does."""
    fit, _, _ = fitted(camera(-0.25, 0.1), region=(0.45, 0.55, 0.45, 0.55), n=40)
    if fit is not None:
        assert fit.sigma > 0.5 * UNKNOWN_K1_SIGMA
        assert abs(fit.k1) < 2 * fit.sigma


def test_a_fitted_lens_maps_every_pixel_of_the_photo_to_one_ray():
    """k1 -0.25 alone would fold the photo's corners back (no ray through them): k2 is raised until
    it does not, and a ray cast through the very corners comes back to them."""
    true = camera(-0.267, 0.112)
    assert unfolding_k2(-0.25, 0.0, corner_radius(true)) > 0 and unfolding_k2(-0.1, 0.0, corner_radius(true)) == 0
    fit, lens, _ = fitted(true)
    corners = np.array([[0.0, 0.0], [1368.0, 912.0], [0.0, 912.0]])
    back, _ = lens.project(lens.centre + 50.0 * lens.rays(corners))
    assert np.abs(back - corners).max() < 0.01
    for off in fit.one_sigma_off():  # the lens one sigma off either way is one to one too
        assert off.k2 >= unfolding_k2(off.k1, 0.0, corner_radius(true)) - 0.05


def test_too_few_matches_fit_no_lens():
    world, seen, _ = matches(camera(-0.2), n=8)
    assert fit_radial_distortion(camera(-0.2), world, seen) is None


def test_a_described_lens_is_the_fits_prior_and_matches_near_the_centre_keep_it():
    """A camera model's lens from the lens database (k1 -0.23 +- 0.035, the real photo's camera)
    where the matches lie near the photo's centre and hardly see the lens: the fit stays at the
    described lens (a lens nobody described would stay near a pinhole); matches over the whole
    photo move it to the unit's own lens."""
    true = camera(-0.267, 0.112)
    described = LensPrior.around((-0.232, 0.062), 0.035)
    assert described.described and not UNKNOWN_LENS.described
    world, seen, _ = matches(true, region=(0.45, 0.55, 0.45, 0.55), n=40)
    start = refit_pose(replace(metadata_camera(true), distortion=(-0.232, 0.062, 0.0, 0.0, 0.0)), world, seen)
    fit = fit_radial_distortion(start, world, seen, described)
    assert fit is not None and fit.k1 == pytest.approx(-0.232, abs=0.02) and fit.sigma <= 0.035
    world, seen, _ = matches(true)
    fit = fit_radial_distortion(refit_pose(start, world, seen), world, seen, described)
    assert fit.k1 == pytest.approx(-0.267, abs=0.02) and fit.sigma < 0.02
