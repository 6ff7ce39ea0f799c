"""Stage 2: register the drone photo on the reference raster with local features.

With a metadata camera (:mod:`smgeo_geo.pose`) the photo is first *rectified*
(:mod:`smgeo_geo.rectification`): every pixel of the reference window (at the reference's
ground resolution) is put on the terrain (DEM or flat ground) and projected into the photo, so
the photo is resampled into the reference's own grid as a near-nadir view. SIFT features of both, Lowe's ratio test and a MAGSAC++
homography between them then leave correspondences photo pixel <-> reference point; with the
reference point's terrain height they refine the camera pose (PnP, RANSAC) and the click's
ray is cast with the refined camera (with the lens fitted to the matches where the metadata
gives no lens model: :mod:`smgeo_geo.lens`). Tall objects and relief stay exact where the DEM
holds; what the global pose does not explain (lens model, DEM errors, flat ground in hilly land)
is corrected by the residuals of the inliers nearest the click (an offset and its gradient). With a DEM this runs coarse to
fine: the pose from a window read at ``COARSE_SIDE`` pixels with ``COARSE_FEATURES`` per image
(``MAX_WORK_SIDE`` and ``MAX_FEATURES`` when too few matches hold there), then per click a patch of the
reference around it at native resolution, rectified again with the refined camera and matched,
whose correspondences give the local correction (the coarse ones when the patch does not
register, e.g. on texture-less ground). On flat ground (no DEM) each click is mapped by the
affine map that matches between the photo rectified around it and the reference within the
metadata's reach agree on, both near native resolution (the global registration's local maps
when too few agree).

Without metadata the photo (downscaled) is matched to the reference window directly, a
homography is fitted as above and the click is mapped by an affine transform fitted to the
inliers nearest the click, weighted by their distance to it.

Frames: photo pixels and raster pixels in the GDAL corner convention (see
:mod:`smgeo_geo.raster`); ``point`` results are raster-CRS ``(x, y)``; metres are on the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from rasterio.windows import Window

from smgeo_geo.camera import FrameCamera
from smgeo_geo.classical import horizon_crosses
from smgeo_geo.coords import pixel_to_crs
from smgeo_geo.lens import UNKNOWN_K1_SIGMA, LensFit, LensPrior, fit_radial_distortion, refit_pose
from smgeo_geo.pose import CHI2_2D_90, CameraPrior, MetadataFit, fit_metadata_error
from smgeo_geo.raster import PixelMapping, ReferenceRaster
from smgeo_geo.rectification import (FEATURE_THREAD, MAX_FEATURES, MAX_WORK_SIDE, features, ground_points, match,
                                     patch_window, pixel_metres, read_window, rectify, sample_maps,
                                     work_window)
from smgeo_geo.terrain import DemTerrain, intersect_rays

COARSE_SIDE = 384  # pixels a side of the global registration tried first (refined near each click);
# MAX_WORK_SIDE with MAX_FEATURES follows when too few matches hold there
FINE_SIDE = 320  # pixels a side, at most, of the full-resolution patch around a click
FINE_HALF_M = 20.0  # metres from the click to the patch's edge (at least FINE_MIN_HALF_PX native pixels)
FINE_MIN_HALF_PX = 64
FINE_SEARCH_SIDE = 384  # pixels a side, at most, of the reference searched around a click without a DEM
MIN_FINE_INLIERS = 12
COARSE_FEATURES = 500  # per image of the coarse pose registration (a 6-DoF pose needs few)
PATCH_FEATURES = 1000  # per image of the patch around a click, with a DEM
MIN_INLIERS = 15
MIN_PHOTO_INLIERS = 30  # a photo without metadata has no prior to check a match against: ask for more
MATCH_TOLERANCE_PX = 3.0  # work pixels: a correspondence's error on the ground, as the homography's threshold
LOCAL_NEIGHBOURS = 24  # inliers nearest the click that correct / map it locally
LOOSE_THRESHOLD = 40.0  # work pixels: the global filter where relief bends the map
LOCAL_RADIUS_M = 40.0  # metres around the click whose features map it, without a DEM
LOCAL_MIN_HALF_PX = 128  # native pixels from the click to the edge of that patch, at least (features need pixels)
RELIEF_SLOPE = 0.1  # metres of error per metre between the click and its matches, without a DEM
PNP_PX = 4.0  # photo pixels: PnP-RANSAC threshold of the pose refined on a DEM
UNKNOWN_LENS_PNP_PX = 12.0  # the same before a lens the metadata does not give is fitted
GRADIENT_RIDGE = 0.5  # damping of the residual's gradient near a click (x the neighbours' total weight)
CAMERA_ESTIMATE_PX = 8.0  # photo pixels: PnP threshold of the camera a flat-ground registration implies
# (after a first fit at LOOSE_THRESHOLD from the prior's pose, which may be tens of degrees off)


@dataclass
class Registration:
    """Outcome of stage 2.

    ``ok``: a registration was accepted; ``reason``: why not (or ``"ok"``); ``point``: the
    click's position in the raster CRS ``(x, y)``; ``pixel``: the same in raster pixels;
    ``uncertainty_m``: 90 % horizontal radius; ``inliers``; ``matches`` (ratio-test matches);
    ``residual_m``: RMS residual of the inliers near the click on the ground; ``camera``:
    the refined camera (metadata path), ``homography``: photo pixel -> raster pixel
    (no-metadata path) or rectified -> window pixels; ``click_region``: the raster-pixel
    quadrilateral of a square around the click (for a box when no model box agrees).
    """

    ok: bool
    reason: str
    point: tuple[float, float] | None = None
    pixel: tuple[float, float] | None = None
    uncertainty_m: float = math.inf
    inliers: int = 0
    matches: int = 0
    residual_m: float = math.nan
    camera: FrameCamera | None = None
    homography: np.ndarray | None = None
    click_region: np.ndarray | None = None
    details: dict = field(default_factory=dict)


def _homography(src: np.ndarray, dst: np.ndarray, threshold: float):
    if len(src) < MIN_INLIERS:
        return None, np.zeros(len(src), bool)
    h, mask = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), cv2.USAC_MAGSAC, threshold,
                                 maxIters=10000, confidence=0.9999)
    if h is None or not np.all(np.isfinite(h)):
        return None, np.zeros(len(src), bool)
    return h / h[2, 2], mask.ravel().astype(bool)


def _locally_consistent(src: np.ndarray, dst: np.ndarray, k: int = 8, tolerance: float = 3.0) -> np.ndarray:
    """Matches whose displacement agrees (within ``tolerance`` work pixels, after the local
    scale) with the median displacement of their ``k`` nearest neighbours in ``src``: true
    matches move together locally even where relief bends the global map."""
    n = len(src)
    if n <= k:
        return np.ones(n, bool)
    d = np.linalg.norm(src[:, None, :] - src[None, :, :], axis=2)
    nn = np.argsort(d, axis=1)[:, 1:k + 1]
    keep = np.zeros(n, bool)
    for i in range(n):
        coef, res = _local_affine(src[nn[i]], dst[nn[i]], src[i])
        pred = np.append(src[i], 1.0) @ coef
        keep[i] = np.linalg.norm(pred - dst[i]) <= tolerance and np.median(np.linalg.norm(res, axis=1)) <= tolerance
    return keep


def _apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.column_stack([pts, np.ones(len(pts))]) @ h.T
    return p[:, :2] / p[:, 2:3]


def _weights(dist: np.ndarray) -> np.ndarray:
    """Gaussian weights of neighbours by distance, scaled to the neighbourhood's size."""
    scale = max(float(np.median(dist)), 1e-6)
    return np.exp(-0.5 * (dist / scale) ** 2)


def _residual_at(at: np.ndarray, px: np.ndarray, resid: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The pose's residual (photo pixels) at ``at`` from its neighbours' (``px``, ``resid``, ``dist``
    from ``at``): a distance-weighted linear field (offset + gradient, the gradient damped by
    ``GRADIENT_RIDGE``), as what the pose leaves (a lens model's error above all) varies across
    the neighbourhood; their weighted mean with fewer than 8. Returns it, the neighbours'
    residuals left by the fit and the parameters it fitted (6 or 2)."""
    w = _weights(dist)
    mean = (resid * w[:, None]).sum(0) / w.sum()
    if len(px) < 8:
        return mean, resid - mean, 2
    scale = max(float(np.median(dist)), 1e-6)
    a = np.column_stack([np.ones(len(px)), (px - at) / scale])
    sw = np.sqrt(w)[:, None]
    ridge = GRADIENT_RIDGE * w.sum()  # a gradient only where the neighbours pin it down
    ata = (a * sw).T @ (a * sw) + np.diag([0.0, ridge, ridge])
    coef = np.linalg.solve(ata, (a * sw).T @ (resid * sw))
    return coef[0], resid - a @ coef, 6


def _local_affine(src: np.ndarray, dst: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine map (3x2 coefficients on ``(x, y, 1)``) fitted to the ``LOCAL_NEIGHBOURS`` pairs
    nearest ``at`` by distance-weighted least squares, and those neighbours' residuals ``(k, 2)``."""
    d = np.linalg.norm(src - at, axis=1)
    idx = np.argsort(d)[:LOCAL_NEIGHBOURS]
    w = np.sqrt(_weights(d[idx]))[:, None]
    a = np.column_stack([src[idx], np.ones(len(idx))])
    coef, *_ = np.linalg.lstsq(a * w, dst[idx] * w, rcond=None)
    return coef, a @ coef - dst[idx]


def _uncertainty(residuals_m: np.ndarray, resolution_m: float, spread_m: float, slope: float = 0.02,
                 fitted: int = 0) -> float:
    """90 % radius (m) from the local inliers' residuals (m), the pixel size and how far the
    click is from its nearest inliers: ``slope`` metres of error per metre of extrapolation
    (small where a DEM models the relief; ``RELIEF_SLOPE`` where flat ground is assumed).
    ``fitted``: parameters the residuals were fitted with (2 for a shift, 6 for an affine map):
    the residuals' mean square over ``n - fitted`` degrees of freedom, as few inliers leave
    residuals smaller than the errors they measure."""
    n = len(residuals_m)
    if n <= fitted:
        return math.inf
    ms = float(np.sum(residuals_m ** 2)) / (n - fitted)  # two axes: per-point squared length
    sigma = math.sqrt(ms / 2 + (0.5 * resolution_m) ** 2 + (slope * spread_m) ** 2)
    return math.sqrt(CHI2_2D_90) * sigma


@dataclass
class RegisteredPhoto:
    """A photo registered on one reference window: the expensive part, done once per photo
    and window (segment-anything style); :meth:`locate` then answers each click cheaply.

    ``mode``: ``"pose"`` (metadata camera refined by PnP on a DEM), ``"local"`` (metadata
    camera, flat ground: local affine maps in the rectified frame) or ``"photo"`` (no
    metadata: local affine maps photo -> window). Point arrays hold the inlier
    correspondences: ``photo_px`` (photo pixels), ``work_px`` (work-window pixels of the
    reference), ``rect_px`` (rectified-frame pixels; pose / local modes). In ``pose`` mode
    the global registration runs at ``COARSE_SIDE`` pixels and each click is refined on a
    full-resolution patch around it (:meth:`fine_correspondences`), which needs ``photo``.
    """

    ok: bool
    reason: str
    raster: ReferenceRaster
    window: Window | None = None
    mapping: PixelMapping | None = None
    resolution_m: float = math.nan
    matches: int = 0
    mode: str = ""
    prior: CameraPrior | None = None
    camera: FrameCamera | None = None
    photo_px: np.ndarray | None = None
    work_px: np.ndarray | None = None
    rect_px: np.ndarray | None = None
    world: np.ndarray | None = None
    homography: np.ndarray | None = None
    photo_size: tuple[int, int] = (0, 0)
    prior_uncertainty_m: float = 30.0  # how far the metadata may be off (search radius of local matching)
    photo: np.ndarray | None = None  # the upright photo (rectified again around each click)
    metadata_fit: MetadataFit | None = None  # the metadata error its matches imply (pose mode)
    lens: LensFit | None = None  # the lens fitted to the matches (pose mode, no lens model in the metadata)

    @property
    def inliers(self) -> int:
        return 0 if self.work_px is None else len(self.work_px)

    def camera_estimate(self, terrain=None) -> FrameCamera | None:
        """The photo's camera as the matches place it: the refined camera (``pose`` mode), else
        PnP on the matched reference points put on ``terrain`` (default the prior's: flat ground
        in ``local`` mode, which relief leaves a little off; a DEM's heights do better); ``None``
        in ``photo`` mode or when PnP fails."""
        if not self.ok or self.mode == "photo":
            return None
        if self.mode == "pose":
            return self.camera
        prior = self.prior if terrain is None else replace(self.prior, terrain=terrain)
        world, _ = ground_points(prior, self.raster, self.mapping, self.work_px)
        good = np.all(np.isfinite(world), axis=1) & np.all(np.isfinite(self.photo_px), axis=1)
        if good.sum() < MIN_INLIERS:
            return None
        camera = None
        for threshold in (LOOSE_THRESHOLD, CAMERA_ESTIMATE_PX):  # from the prior's pose a loose fit, then a tight one
            refined, _ = refine_pose(camera or self.prior.camera, world[good], self.photo_px[good], threshold_px=threshold)
            if refined is None:
                break
            camera = refined
        return camera

    def failed(self, reason: str | None = None) -> Registration:
        return Registration(False, reason or self.reason, inliers=self.inliers, matches=self.matches)

    def locate(self, click: tuple[float, float], region_px: float, near_click: bool = True) -> Registration:
        """The click's position on the reference (raster CRS), with its uncertainty;
        ``near_click`` False: from the global registration's matches alone (no patch around the
        click matched again), a second opinion where the camera is not the metadata's."""
        if not self.ok:
            return self.failed()
        if self.mode == "pose":
            return self._locate_pose(click, region_px, near_click)
        return self._locate_local(click, region_px, near_click)

    def _result(self, col: float, row: float, unc: float, residual_m: np.ndarray, region, extra: dict) -> Registration:
        x, y = pixel_to_crs(self.raster.transform, [col], [row])
        rms = float(np.sqrt(np.mean(np.sum(residual_m ** 2, axis=1)))) if len(residual_m) else math.nan
        details = {"mode": self.mode, "work_resolution_m": round(self.resolution_m, 4),
                   "window": [int(v) for v in self.window.flatten()], **extra}
        return Registration(True, "ok", (float(x[0]), float(y[0])), (float(col), float(row)), unc, self.inliers,
                            self.matches, rms, self.camera, self.homography, region, details)

    def fine_correspondences(self, click) -> tuple[np.ndarray, np.ndarray, float] | None:
        """``pose`` mode: inlier correspondences photo pixels ``(N, 2)`` <-> local ENU points
        ``(N, 3)`` on a reference patch around the click at native resolution (capped at
        ``FINE_SIDE``), rectified with the refined camera, and that patch's metres per pixel;
        ``None`` when the patch does not register (the coarse correspondences then answer)."""
        camera, raster = self.camera, self.raster
        pts, hit = intersect_rays(camera, [click], self.prior.terrain)
        if self.photo is None or not hit[0]:
            return None
        x, y = camera.frame.to_crs(raster.crs, pts[:, 0], pts[:, 1], pts[:, 2])
        col, row = ~raster.transform @ (float(x[0]), float(y[0]))
        half = max(FINE_HALF_M / raster.pixel_size_m_at(col, row), FINE_MIN_HALF_PX)
        window, size, _ = patch_window(raster, col, row, half, FINE_SIDE)
        ref_img, ref_valid, mapping = read_window(raster, window, size)
        if ref_valid.mean() < 0.25:
            return None
        reference_features = FEATURE_THREAD.submit(features, ref_img, ref_valid, PATCH_FEATURES)
        rect, rect_valid, maps = rectify(self.photo, replace(self.prior, camera=camera), raster, mapping, size)
        if rect_valid.mean() < 0.25:
            return None
        kp_q, d_q = features(rect, rect_valid, PATCH_FEATURES)
        kp_f, d_f = reference_features.result()
        pairs = match(d_q, d_f)
        if len(pairs) < MIN_FINE_INLIERS:
            return None
        src, dst = kp_q[pairs[:, 0]].astype(float), kp_f[pairs[:, 1]].astype(float)
        h, inl = _homography(src, dst, threshold=MATCH_TOLERANCE_PX)
        if h is None or inl.sum() < MIN_FINE_INLIERS:
            return None
        photo_px = sample_maps(maps, src[inl])
        world, _ = ground_points(self.prior, raster, mapping, dst[inl])
        good = np.all(np.isfinite(world), axis=1) & np.all(np.isfinite(photo_px), axis=1)
        if good.sum() < MIN_FINE_INLIERS:
            return None
        return photo_px[good], world[good], pixel_metres(raster, mapping, window)

    def _locate_pose(self, click, region_px, near_click: bool = True) -> Registration:
        camera, terrain = self.camera, self.prior.terrain
        fine = self.fine_correspondences(click) if near_click else None
        photo_px, world, resolution_m = fine if fine is not None else (self.photo_px, self.world, self.resolution_m)
        proj, _ = camera.project(world)
        resid_px = photo_px - proj
        d = np.linalg.norm(photo_px - np.asarray(click), axis=1)
        near = np.argsort(d)[:LOCAL_NEIGHBOURS]
        correction, left_px, fitted = _residual_at(np.asarray(click, float), photo_px[near], resid_px[near], d[near])
        pts, hit = intersect_rays(camera, [np.asarray(click, float) - correction], terrain)
        if not hit[0]:
            return self.failed("the refined camera's ray through the click misses the terrain")
        gsd = float(np.linalg.norm(camera.centre - pts[0])) * camera.ground_sample_scale
        local_res_m = left_px * gsd
        unc = _uncertainty(local_res_m, resolution_m, float(np.median(d[near])) * gsd, fitted=fitted)
        if fine is None and self.lens is not None:
            # matches far from the click: the fitted lens's own error moves it
            unc = math.hypot(unc, math.sqrt(CHI2_2D_90) * self._lens_spread_m(click, pts[0]))
        x, y = camera.frame.to_crs(self.raster.crs, pts[:, 0], pts[:, 1], pts[:, 2])
        col, row = ~self.raster.transform @ (float(x[0]), float(y[0]))
        region = click_region(camera, terrain, self.raster, click, region_px)
        moved = float(np.linalg.norm(camera.centre - self.prior.camera.centre))
        extra = {"pose_shift_m": round(moved, 3), "click_patch": "fine" if fine is not None else "coarse"}
        if fine is not None:
            extra["patch_inliers"] = len(fine[0])
        return self._result(col, row, unc, local_res_m, region, extra)

    def _lens_spread_m(self, click, point: np.ndarray) -> float:
        """Metres the click's ground point moves when the fitted lens is one sigma off (along
        ``k1``; the pose refitted to the matches each time): the larger of the two sides."""
        moved = [0.0]
        for lens in self.lens.one_sigma_off():
            camera = refit_pose(lens.applied(self.camera), self.world, self.photo_px)
            pts, hit = intersect_rays(camera, [click], self.prior.terrain)
            if hit[0]:
                moved.append(float(np.linalg.norm(pts[0, :2] - point[:2])))
        return max(moved)

    def _local_map(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source-frame points -> work-window pixels by the affine map local to ``pts[0]``
        (fitted robustly: neighbours the first fit leaves > 3 px off are dropped, then refit),
        the residuals of the inliers it was fitted to (work pixels) and the map's coefficients."""
        src = self.rect_px if self.mode == "local" else self.photo_px
        d = np.linalg.norm(src - pts[0], axis=1)
        idx = np.argsort(d)[:2 * LOCAL_NEIGHBOURS]
        coef, res = _local_affine(src[idx], self.work_px[idx], pts[0])
        near = idx[np.argsort(d[idx])[:LOCAL_NEIGHBOURS]]
        good = near[np.linalg.norm(res, axis=1) <= 3.0]
        if len(good) >= 6:
            coef, res = _local_affine(src[good], self.work_px[good], pts[0])
        return np.column_stack([pts, np.ones(len(pts))]) @ coef, res, coef

    def _to_source(self, photo_pts: np.ndarray) -> np.ndarray | None:
        """Photo pixels -> the frame the local maps start from (rectified work pixels when
        a metadata camera exists: ray to flat ground -> CRS -> work pixel)."""
        if self.mode == "photo":
            return photo_pts
        cam = self.prior.camera
        pts, hit = intersect_rays(cam, photo_pts, self.prior.terrain)
        if not hit.all():
            return None
        xs, ys = cam.frame.to_crs(self.raster.crs, pts[:, 0], pts[:, 1], pts[:, 2])
        cols, rows = ~self.raster.transform @ (np.asarray(xs), np.asarray(ys))
        u, v = self.mapping.to_model(cols, rows)
        return np.column_stack([u, v])

    def _locate_local(self, click, region_px, near_click: bool = True) -> Registration:
        cx, cy = click
        half = region_px / 2
        w, h = self.photo_size
        corners = np.clip(np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half],
                                    [cx - half, cy + half]]), 0, [w, h])
        src = self._to_source(np.vstack([[cx, cy], corners]))
        if src is None:
            return self.failed("the click's ray does not meet the ground")
        if self.mode == "local" and near_click and not self.prior.assumed:
            # (an assumed camera may be turned or scaled against the truth, so the click's patch is
            # not where it puts it: the global local maps answer)
            near = self._near_click(src)
            if near is not None:
                return near
        mapped, res, coef = self._local_map(src)
        cols, rows = self.mapping.to_raster(mapped[:, 0], mapped[:, 1])
        res_m = res * self.resolution_m
        src_all = self.rect_px if self.mode == "local" else self.photo_px
        d = np.sort(np.linalg.norm(src_all - src[0], axis=1))[:LOCAL_NEIGHBOURS]
        scale = math.sqrt(abs(np.linalg.det(coef[:2, :2])))  # work pixels per source pixel
        unc = _uncertainty(res_m, self.resolution_m, float(np.median(d)) * scale * self.resolution_m, RELIEF_SLOPE,
                           fitted=6)
        region = np.column_stack([cols[1:], rows[1:]])
        return self._result(float(cols[0]), float(rows[0]), unc, res_m, region, {})

    def _near_click(self, src: np.ndarray) -> Registration | None:
        """``local`` mode: rectify the photo around the click (``LOCAL_RADIUS_M``) and read the
        reference within the metadata's reach of it, both near native resolution; match them
        and map the click by the affine map those matches agree on (RANSAC), in raster pixels.
        ``src``: the click and its region's corners in the coarse rectified frame. ``None``
        when too few agree (the coarse local maps then answer)."""
        raster = self.raster
        col, row = (float(v[0]) for v in self.mapping.to_raster([src[0, 0]], [src[0, 1]]))
        native = raster.pixel_size_m_at(col, row)
        reach = max(LOCAL_RADIUS_M / native, float(LOCAL_MIN_HALF_PX))
        _, q_size, q_map = patch_window(raster, col, row, reach, FINE_SIDE)
        q_img, q_valid, _ = rectify(self.photo, self.prior, raster, q_map, q_size)
        search = reach + min(self.prior_uncertainty_m, 100.0) / native
        f_img, f_valid, f_map = read_window(raster, *patch_window(raster, col, row, search, FINE_SEARCH_SIDE)[:2])
        if q_valid.mean() < 0.1 or f_valid.mean() < 0.1:
            return None
        reference_features = FEATURE_THREAD.submit(features, f_img, f_valid)
        kq, dq = features(q_img, q_valid)
        kf, df = reference_features.result()
        pairs = match(dq, df, ratio=0.85)
        if len(pairs) < 8:
            return None
        # both sides in raster pixels: where the prior camera puts a feature -> where it is
        a = np.column_stack(q_map.to_raster(*kq[pairs[:, 0]].T.astype(np.float64)))
        b = np.column_stack(f_map.to_raster(*kf[pairs[:, 1]].T.astype(np.float64)))
        threshold = 3.0 * max(q_map.scale_x, f_map.scale_x)  # 3 patch pixels
        m, inl = cv2.estimateAffine2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=5000,
                                      confidence=0.999)
        if m is None or inl is None or inl.sum() < 8:
            return None
        inl = inl.ravel().astype(bool)
        coef = m.T  # (3, 2) on (x, y, 1)
        at = np.column_stack(self.mapping.to_raster(src[:, 0], src[:, 1]))
        mapped = np.column_stack([at, np.ones(len(at))]) @ coef
        res = (np.column_stack([a[inl], np.ones(inl.sum())]) @ coef - b[inl]) * native
        spread = float(np.median(np.linalg.norm(a[inl] - at[0], axis=1))) * native
        resolution = native * max(q_map.scale_x, f_map.scale_x)
        unc = _uncertainty(res, resolution, spread, RELIEF_SLOPE / 2, fitted=6)
        return self._result(float(mapped[0, 0]), float(mapped[0, 1]), unc, res, mapped[1:],
                            {"patch_inliers": int(inl.sum())})


def register(photo: np.ndarray, raster: ReferenceRaster, window: Window, prior: CameraPrior | None = None,
             photo_side: int = 1024) -> RegisteredPhoto:
    """Register ``photo`` (``HxWx3`` uint8, upright) on ``window`` of ``raster`` (stage 2).

    With a metadata ``prior`` the photo is rectified into the window first; with a DEM the
    camera pose is then refined (``pose`` mode), on flat ground the click is mapped by local
    affine maps (``local`` mode). Without a prior the photo, downscaled to ``photo_side``,
    is matched directly (``photo`` mode). A failure is a result with ``ok`` False and a reason.
    In ``pose`` mode a photo whose metadata has no lens model gets one fitted to its matches
    (:func:`_with_fitted_lens`).
    """
    found = _register_scales(photo, raster, window, prior, photo_side)
    if found.ok and found.mode == "pose" and found.prior.budget.lens_k1 > 0:
        return _with_fitted_lens(found, photo, raster, window, photo_side)
    return found


def _with_fitted_lens(found: RegisteredPhoto, photo: np.ndarray, raster: ReferenceRaster, window: Window,
                      photo_side: int) -> RegisteredPhoto:
    """A ``pose`` registration whose photo carries no lens model of its own (``budget.lens_k1``
    > 0: none, or the camera model's from the lensfun database) with the lens fitted to its
    matches around what is known (:mod:`smgeo_geo.lens`): the photo is
    registered again with that lens (rectified without the pinhole's bend, matches towards the
    photo's edges hold), the lens fitted again to the matches of the better of the two (each
    counted within :data:`PNP_PX` of the camera with the fitted lens: the first registration's
    PnP kept matches within :data:`UNKNOWN_LENS_PNP_PX` of a pinhole), and the pose refitted
    with it."""
    lens_prior = LensPrior.around(found.prior.camera.distortion, found.prior.budget.lens_k1)
    fit = fit_radial_distortion(found.camera, found.world, found.photo_px, lens_prior)
    if fit is None:
        return found
    with_lens = refit_pose(fit.applied(found.camera), found.world, found.photo_px)
    projected, _ = with_lens.project(found.world)
    first_within = int(np.sum(np.linalg.norm(projected - found.photo_px, axis=1) <= PNP_PX))
    again = _register_scales(photo, raster, window, _with_lens(found.prior, fit), photo_side)
    if again.ok and again.mode == "pose" and again.inliers >= first_within:
        found = again
        fit = fit_radial_distortion(found.camera, found.world, found.photo_px, lens_prior) or fit
        with_lens = refit_pose(fit.applied(found.camera), found.world, found.photo_px)
    found.camera = with_lens
    found.lens = fit
    return found


def _with_lens(prior: CameraPrior, fit: LensFit) -> CameraPrior:
    """``prior`` with the fitted lens (the budget's lens 1-sigma the fit's)."""
    return replace(prior, camera=fit.applied(prior.camera), budget=replace(prior.budget, lens_k1=fit.sigma),
                   notes=[*prior.notes, f"lens fitted to the matches: k1 {fit.k1:+.3f} +- {fit.sigma:.3f}, "
                                        f"k2 {fit.k2:+.3f}"])


def _register_scales(photo: np.ndarray, raster: ReferenceRaster, window: Window, prior: CameraPrior | None,
                     photo_side: int) -> RegisteredPhoto:
    """:func:`register` without the lens fit: coarse scale first, full work scale where that fails."""
    dem = prior is not None and isinstance(prior.terrain, DemTerrain)
    if prior is not None and max(window.width, window.height) > COARSE_SIDE:
        # cheap first: the coarse scale (with a DEM a pose needs only COARSE_FEATURES); where too
        # few matches hold there (weak texture, a flat-ground rectification of relief), the full
        # work scale with the full feature budget
        coarse = _register_at(photo, raster, window, prior, photo_side, COARSE_SIDE,
                              COARSE_FEATURES if dem else MAX_FEATURES)
        if coarse.ok:
            return coarse
    return _register_at(photo, raster, window, prior, photo_side, MAX_WORK_SIDE, MAX_FEATURES)


def _register_at(photo: np.ndarray, raster: ReferenceRaster, window: Window, prior: CameraPrior | None,
                 photo_side: int, max_side: int, budget: int) -> RegisteredPhoto:
    """:func:`register` with the reference window read at most ``max_side`` pixels a side and
    ``budget`` SIFT features per image."""
    dem = prior is not None and isinstance(prior.terrain, DemTerrain)
    window, size = work_window(raster, window, max_side)
    ref_img, ref_valid, mapping = read_window(raster, window, size)
    base = dict(raster=raster, window=window, mapping=mapping, resolution_m=pixel_metres(raster, mapping, window),
                prior=prior, photo_size=(photo.shape[1], photo.shape[0]))
    if not ref_valid.any():
        return RegisteredPhoto(False, "the reference window holds no valid pixels", **base)
    reference_features = FEATURE_THREAD.submit(features, ref_img, ref_valid, budget)  # beside the photo's
    if prior is None:
        scale = min(1.0, photo_side / max(photo.shape[:2]))
        small = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA) if scale < 1 else photo
        kp_q, d_q = features(small, max_features=budget)
        kp_q = kp_q / scale
        maps = None
    else:
        rect, rect_valid, maps = rectify(photo, prior, raster, mapping, size)
        if rect_valid.mean() < 0.005:
            return RegisteredPhoto(False, "the photo's footprint does not overlap the reference window", **base)
        kp_q, d_q = features(rect, rect_valid, budget)
    kp_f, d_f = reference_features.result()
    pairs = match(d_q, d_f)
    base["matches"] = len(pairs)
    if len(pairs) < MIN_INLIERS:
        return RegisteredPhoto(False, f"only {len(pairs)} feature matches between the photo and the reference", **base)
    src, dst = kp_q[pairs[:, 0]].astype(float), kp_f[pairs[:, 1]].astype(float)
    if dem or prior is None:  # a DEM-rectified photo: a smooth, near-global map; a raw photo: a plane
        h, inl = _homography(src, dst, threshold=MATCH_TOLERANCE_PX)
        if prior is None and inl.sum() < MIN_PHOTO_INLIERS:
            return RegisteredPhoto(False, f"{int(inl.sum())} inliers < {MIN_PHOTO_INLIERS} for a photo without "
                                          f"metadata (of {len(pairs)} matches)", **base)
    else:  # flat-ground rectification: relief breaks one global map; local consistency
        inl = _locally_consistent(src, dst)
        h, _ = _homography(src[inl], dst[inl], threshold=LOOSE_THRESHOLD)
        if h is None:
            h = np.eye(3)
    if h is None or inl.sum() < MIN_INLIERS:
        return RegisteredPhoto(False, f"{int(inl.sum())} inliers < {MIN_INLIERS} (of {len(pairs)} matches)", **base)
    src, dst = src[inl], dst[inl]
    if prior is None:
        reason = _implausible(h, src, photo.shape[1] * photo.shape[0])
        if reason:
            return RegisteredPhoto(False, reason, **base)
        m = np.array(tuple(mapping.affine), dtype=float).reshape(3, 3)
        return RegisteredPhoto(True, "ok", mode="photo", photo_px=src, work_px=dst, homography=m @ h, **base)
    photo_px = sample_maps(maps, src)
    if not isinstance(prior.terrain, DemTerrain):
        # no metadata fit on flat ground: the relief it leaves out would dominate the fit
        return RegisteredPhoto(True, "ok", mode="local", photo_px=photo_px, work_px=dst, rect_px=src, photo=photo,
                               **base)
    world, _ = ground_points(prior, raster, mapping, dst)
    good = np.all(np.isfinite(world), axis=1) & np.all(np.isfinite(photo_px), axis=1)
    if good.sum() < MIN_INLIERS:
        return RegisteredPhoto(False, f"{int(good.sum())} inliers with DEM heights < {MIN_INLIERS}", **base)
    # a lens nobody described bends the photo's edges tens of pixels: a looser PnP keeps those
    # matches for the lens fit (:func:`_with_fitted_lens`), which registers again with the lens
    unknown_lens = prior.budget.lens_k1 >= UNKNOWN_K1_SIGMA
    camera, keep = refine_pose(prior.camera, world[good], photo_px[good],
                               threshold_px=UNKNOWN_LENS_PNP_PX if unknown_lens else PNP_PX)
    if camera is None:
        return RegisteredPhoto(False, "the camera pose could not be refined from the matches", **base)
    photo_px, world = photo_px[good][keep], world[good][keep]
    return RegisteredPhoto(True, "ok", mode="pose", camera=camera, photo_px=photo_px, work_px=dst[good][keep],
                           rect_px=src[good][keep], world=world, photo=photo,
                           metadata_fit=fit_metadata_error(prior, photo_px, world,
                                                           MATCH_TOLERANCE_PX * base["resolution_m"]), **base)


def refine_pose(camera: FrameCamera, world: np.ndarray, photo_px: np.ndarray,
                threshold_px: float = PNP_PX) -> tuple[FrameCamera | None, np.ndarray | None]:
    """PnP (RANSAC, then Levenberg-Marquardt on the inliers) from the metadata pose.

    ``world``: local ENU points ``(N, 3)``; ``photo_px``: their photo pixels. The camera's
    intrinsics stay fixed. Returns the refined camera and the inlier mask.
    """
    rvec, tvec = camera.rvec_tvec
    obj = world - camera.centre  # centred for numerical stability
    tvec0 = np.zeros(3)
    ok, rvec1, tvec1, inl = cv2.solvePnPRansac(
        obj.astype(np.float64), (photo_px - 0.5).astype(np.float64), camera.matrix, camera.dist,
        rvec.astype(np.float64).reshape(3, 1).copy(), tvec0.reshape(3, 1).copy(), useExtrinsicGuess=True,
        iterationsCount=2000, reprojectionError=threshold_px, confidence=0.9999, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or inl is None or len(inl) < MIN_INLIERS:
        return None, None
    keep = np.zeros(len(world), bool)
    keep[inl.ravel()] = True
    rot, _ = cv2.Rodrigues(rvec1)
    refined = refit_pose(camera.with_pose(rot, camera.centre - rot.T @ tvec1.ravel()), world[keep], photo_px[keep])
    # the refined pose must stay a plausible correction of the metadata pose
    if np.linalg.norm(refined.centre - camera.centre) > 100.0:
        return None, None
    return refined, keep


def click_region(camera: FrameCamera, terrain, raster: ReferenceRaster, click, region_px: float):
    """Raster-pixel quadrilateral ``(4, 2)`` of a square of ``region_px`` photo pixels around
    the click, cast onto the terrain with ``camera``."""
    cx, cy = click
    half = region_px / 2
    corners = np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])
    corners = np.clip(corners, 0, [camera.width, camera.height])
    pts, hit = intersect_rays(camera, corners, terrain)
    if not hit.all():
        return None
    xs, ys = camera.frame.to_crs(raster.crs, pts[:, 0], pts[:, 1], pts[:, 2])
    cols, rows = ~raster.transform @ (np.asarray(xs), np.asarray(ys))
    return np.column_stack([cols, rows])


def _implausible(h: np.ndarray, inlier_src: np.ndarray, photo_area: float) -> str:
    """Why a photo -> reference homography is not believable, or ``""``."""
    hull = cv2.convexHull(inlier_src.astype(np.float32)).reshape(-1, 2)
    if cv2.contourArea(hull) < 0.005 * photo_area:
        return "the inliers are concentrated in a tiny part of the photo (degenerate match)"
    if horizon_crosses(h, hull):
        return "the homography's horizon crosses the matched area"
    return ""


__all__ = ["RegisteredPhoto", "Registration", "click_region", "refine_pose", "register"]
