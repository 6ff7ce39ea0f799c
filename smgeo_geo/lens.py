"""The lens distortion a photo's metadata does not give, fitted to a registration's matches.

Most drones write no lens model into their photos (of DJI's, only some models write
``DewarpData``), so their metadata camera is a pinhole. A barrel lens moves the photo's edges
tens of pixels inwards: a pose refined on a DEM with a pinhole camera then lands metres off
there, with a radius that does not say so.

:func:`fit_radial_distortion` fits the radial coefficients ``k1``, ``k2`` (OpenCV / Brown, on
normalised image coordinates) with the pose. A profile over :data:`K1_GRID` (the pose refitted
by Levenberg-Marquardt for each ``k1``, the matches' squared reprojection errors truncated at
:data:`TRUNCATE_PX`) gives a start near the truth; from there the pose, ``k1`` and ``k2`` are
fitted together (:func:`_map_fit`: Levenberg-Marquardt with Cauchy weights, the matches' errors
in units of their own noise plus the prior's ``((k1 - m1) / s1)^2 + ((k2 - m2) / s2)^2``,
:class:`LensPrior`: a lens nobody described is near a pinhole, :data:`UNKNOWN_LENS`; a camera
model's lens from the lensfun database is near that, :mod:`smgeo_geo.lens_database`, and the fit
then starts there instead of the profile). Its covariance says how well
the matches pin the lens down: matches over a small part of the photo say little, and the fit
then stays near the prior and says so. (``cv2.calibrateCamera`` on one view of non-planar
points needs a good start for the pose it re-estimates, and it has no prior: on the real photo's
matches it ended 124 px off.) The lens must map the whole photo one to one (a strong barrel
``k1`` with too small a ``k2`` folds the corners back, where no ray maps): ``k2`` is raised to the
smallest value that does (:func:`unfolding_k2`).

Frames: ``world`` points are local ENU metres of the camera's frame; photo pixels are the
corner convention of :mod:`smgeo_geo.camera`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from smgeo_geo.camera import FrameCamera

# 1-sigma of k1 / k2 for a lens nobody described: drone cameras' lenses bend by |k1| up to about
# 0.3 (barrel, with k2 of the other sign and smaller), photos dewarped in the camera by about 0
UNKNOWN_K1_SIGMA = 0.12
UNKNOWN_K2_SIGMA = 0.08
K1_GRID = tuple(round(k, 3) for k in np.arange(-0.45, 0.2501, 0.05))
TRUNCATE_PX = 8.0  # photo pixels: a match this far off counts as this far off (robust cost)
MIN_POINTS = 12  # matches needed to fit two lens coefficients with the pose's six


@dataclass(frozen=True)
class LensPrior:
    """What is known of the lens before the matches: ``k1``, ``k2`` and their 1-sigmas."""

    k1: float
    k2: float
    k1_sigma: float
    k2_sigma: float

    @classmethod
    def around(cls, distortion, k1_sigma: float) -> "LensPrior":
        """Centred on Brown ``distortion`` ``(k1, k2, ...)``, ``k2``'s sigma in the unknown lens's proportion."""
        return cls(float(distortion[0]), float(distortion[1]), k1_sigma,
                   k1_sigma * UNKNOWN_K2_SIGMA / UNKNOWN_K1_SIGMA)

    @property
    def described(self) -> bool:
        """Whether the lens is known better than a lens nobody described (the fit starts from it)."""
        return self.k1_sigma < UNKNOWN_K1_SIGMA


UNKNOWN_LENS = LensPrior(0.0, 0.0, UNKNOWN_K1_SIGMA, UNKNOWN_K2_SIGMA)


@dataclass(frozen=True)
class LensFit:
    """A fitted lens: radial coefficients ``k1``, ``k2``, their 2x2 covariance ``cov`` and the
    matches ``points`` it rests on."""

    k1: float
    k2: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    points: int

    @property
    def sigma(self) -> float:
        """1-sigma of ``k1``."""
        return math.sqrt(self.cov[0][0])

    def applied(self, camera: FrameCamera) -> FrameCamera:
        """``camera`` with this lens (``k1``, ``k2``: no other distortion term)."""
        return replace(camera, distortion=(float(self.k1), float(self.k2), 0.0, 0.0, 0.0))

    def one_sigma_off(self) -> list["LensFit"]:
        """This lens moved one sigma of ``k1`` either way, ``k2`` following as the two correlate."""
        step = np.asarray(self.cov)[:, 0] / max(self.sigma, 1e-12)
        return [replace(self, k1=self.k1 + s * step[0], k2=self.k2 + s * step[1]) for s in (-1.0, 1.0)]


def corner_radius(camera: FrameCamera) -> float:
    """The photo's corner in normalised image coordinates (distance from the principal point)."""
    return math.hypot(max(camera.cx, camera.width - camera.cx) / camera.fx,
                      max(camera.cy, camera.height - camera.cy) / camera.fy)


def unfolding_k2(k1: float, k2: float, corner: float) -> float:
    """``k2``, raised in steps of 0.01 where needed, so that ``r (1 + k1 r^2 + k2 r^4)`` rises
    until it passes ``corner`` (normalised): the lens then maps every pixel to one ray."""
    r = np.linspace(0.0, 3.0, 601)
    for step in range(100):
        k = k2 + 0.01 * step
        distorted = r * (1 + k1 * r ** 2 + k * r ** 4)
        past = np.flatnonzero(distorted > 1.02 * corner)
        if len(past) and np.all(np.diff(distorted[:past[0] + 1]) > 0):
            return float(k)
    return float(k2 + 1.0)


def refit_pose(camera: FrameCamera, world: np.ndarray, photo_px: np.ndarray) -> FrameCamera:
    """``camera``'s pose refitted to the matches ``world`` (local ENU ``(N, 3)``) <-> ``photo_px``
    (``(N, 2)``) by Levenberg-Marquardt from its own pose (intrinsics and distortion kept)."""
    rvec, _ = camera.rvec_tvec
    obj = (np.asarray(world, float) - camera.centre).astype(np.float64)  # centred for numerical stability
    rvec1, tvec1 = cv2.solvePnPRefineLM(obj, (np.asarray(photo_px, float) - 0.5).astype(np.float64), camera.matrix,
                                        camera.dist, rvec.astype(np.float64).reshape(3, 1).copy(), np.zeros((3, 1)))
    rot, _ = cv2.Rodrigues(rvec1)
    return camera.with_pose(rot, camera.centre - rot.T @ tvec1.ravel())


def _cost(camera: FrameCamera, world: np.ndarray, photo_px: np.ndarray) -> float:
    """Truncated sum of squared reprojection errors (photo pixels^2) after refitting the pose."""
    proj, _ = refit_pose(camera, world, photo_px).project(world)
    return float(np.sum(np.minimum(np.sum((proj - photo_px) ** 2, axis=1), TRUNCATE_PX ** 2)))


def fit_radial_distortion(camera: FrameCamera, world: np.ndarray, photo_px: np.ndarray,
                          prior: LensPrior = UNKNOWN_LENS) -> LensFit | None:
    """The photo's lens from matches ``world`` <-> ``photo_px`` of a registration posed by
    ``camera`` (see the module docstring). ``None`` with fewer than :data:`MIN_POINTS` matches,
    when the best ``k1`` of the grid lies at its end or the fit does not converge."""
    world, photo_px = np.asarray(world, float), np.asarray(photo_px, float)
    if len(world) < MIN_POINTS:
        return None
    lens = LensFit(prior.k1, prior.k2, ((0.0, 0.0), (0.0, 0.0)), 0)
    if not prior.described:  # the profile over k1 finds a start near the truth
        costs = [_cost(replace(lens, k1=k).applied(camera), world, photo_px) for k in K1_GRID]
        i = int(np.argmin(costs))
        if i in (0, len(K1_GRID) - 1):
            return None
        lens = replace(lens, k1=K1_GRID[i])
    start = refit_pose(lens.applied(camera), world, photo_px)
    found = _map_fit(start, world, photo_px, prior)
    if found is None:
        return None
    (k1, k2), cov = found
    return LensFit(k1, unfolding_k2(k1, k2, corner_radius(camera)), cov, len(world))


def _map_fit(camera: FrameCamera, world: np.ndarray, photo_px: np.ndarray, lens_prior: LensPrior,
             iterations: int = 40) -> tuple[tuple[float, float], tuple] | None:
    """Levenberg-Marquardt on the pose and ``k1``, ``k2`` together from ``camera``: the matches'
    reprojection errors with Cauchy weights (scale :data:`TRUNCATE_PX` / 2), in units of their own
    noise, and the prior's ``(k - m) / s``. Returns ``(k1, k2)`` and their covariance, or ``None``
    when it does not converge."""
    obj = (world - camera.centre).astype(np.float64).reshape(-1, 1, 3)
    seen = (photo_px - 0.5).astype(np.float64)
    rvec, _ = camera.rvec_tvec
    params = np.concatenate([rvec, np.zeros(3), camera.distortion[:2]]).astype(np.float64)
    prior = np.array([0.0] * 6 + [1 / lens_prior.k1_sigma ** 2, 1 / lens_prior.k2_sigma ** 2])
    mean = np.array([0.0] * 6 + [lens_prior.k1, lens_prior.k2])
    scale = TRUNCATE_PX / 2

    def evaluate(p, noise2=None):
        dist = np.array([p[6], p[7], 0.0, 0.0, 0.0])
        px, jac = cv2.projectPoints(obj, p[:3].reshape(3, 1), p[3:6].reshape(3, 1), camera.matrix, dist)
        r = (px.reshape(-1, 2) - seen)
        w = 1.0 / (1.0 + np.sum(r ** 2, axis=1) / scale ** 2)  # Cauchy weights per match
        if noise2 is None:
            return max(float(np.sum(w[:, None] * r ** 2)) / max(2 * len(r) - 8, 1), 1e-6)
        objective = float(np.sum(np.log1p(np.sum(r ** 2, axis=1) / scale ** 2))) * scale ** 2 / noise2 \
            + float(np.sum(prior * (p - mean) ** 2))
        jac = np.concatenate([jac[:, :6], jac[:, 10:12]], axis=1)  # rvec, tvec, k1, k2
        wide = np.repeat(w, 2)
        hessian = (jac * wide[:, None]).T @ jac / noise2 + np.diag(prior)
        gradient = (jac * wide[:, None]).T @ r.reshape(-1) / noise2 + prior * (p - mean)
        return objective, hessian, gradient

    for _ in range(2):  # the matches' noise from where the last pass ended (the start: the grid's lens)
        noise2 = evaluate(params)
        current, hessian, gradient = evaluate(params, noise2)
        damping = 1e-3
        for _ in range(iterations):
            step = np.linalg.solve(hessian + damping * np.diag(np.diag(hessian)), -gradient)
            trial = params + step
            value, h2, g2 = evaluate(trial, noise2)
            if value < current:
                converged = current - value < 1e-6 * max(current, 1.0)
                params, current, hessian, gradient, damping = trial, value, h2, g2, damping / 3
                if converged:
                    break
            else:
                damping *= 5
                if damping > 1e6:
                    break
    if not np.all(np.isfinite(params)):
        return None
    cov = np.linalg.inv(hessian)[6:, 6:]
    return (float(params[6]), float(params[7])), tuple(map(tuple, cov.tolist()))


__all__ = ["K1_GRID", "LensFit", "LensPrior", "UNKNOWN_K1_SIGMA", "UNKNOWN_K2_SIGMA", "UNKNOWN_LENS", "corner_radius",
           "fit_radial_distortion", "refit_pose", "unfolding_k2"]
