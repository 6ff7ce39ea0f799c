"""The drone photo and the reference on one grid: windows read from the reference, the photo
rectified into them, SIFT features and their matches (what :mod:`smgeo_geo.registration` builds on).

A *work window* is a window of raster pixels read at most ``MAX_WORK_SIDE`` pixels a side; its
:class:`~smgeo_geo.raster.PixelMapping` maps work pixels to raster pixels. :func:`rectify` puts
every work pixel on the terrain (DEM or flat ground) and projects it into the photo through the
prior camera, so the photo is resampled into the reference's own grid as a near-nadir view.

Frames: photo pixels and raster pixels in the GDAL corner convention (see :mod:`smgeo_geo.raster`);
ground points in the local ENU frame of the prior camera (metres); sizes ``(w, h)``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.classical import ratio_test_matches
from smgeo_geo.coords import pixel_to_crs, transform_xy
from smgeo_geo.pose import CameraPrior
from smgeo_geo.raster import PixelMapping, ReferenceRaster
from smgeo_geo.terrain import cast_rays, intersect_rays

MAX_WORK_SIDE = 768  # pixels a side of the working window (reference and rectified photo)
MAX_FEATURES = 3000  # SIFT keypoints kept per image (strongest first)
RATIO = 0.8
GRID_STEP = 4  # rectification maps are computed every GRID_STEP pixels and interpolated
# SIFT of the reference runs here while the photo is rectified and its own SIFT runs (OpenCV
# releases the GIL; on small images SIFT alone keeps two cores only partly busy)
FEATURE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smgeo-features")


def _gray(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(g)


def features(image: np.ndarray, mask: np.ndarray | None = None, max_features: int = MAX_FEATURES):
    """SIFT keypoints (corner-convention pixels ``(N, 2)``) and descriptors of an RGB image."""
    sift = cv2.SIFT_create(nfeatures=max_features)
    m = None if mask is None else (mask.astype(np.uint8) * 255)
    if m is not None:
        m = cv2.erode(m, np.ones((5, 5), np.uint8))  # no features on the mask's edge
    kps, desc = sift.detectAndCompute(_gray(image), m)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    return np.array([k.pt for k in kps], np.float32) + 0.5, desc


def match(desc_a: np.ndarray, desc_b: np.ndarray, ratio: float = RATIO) -> np.ndarray:
    """Ratio-test SIFT matches ``(M, 2)`` of indexes (a, b) (see :func:`smgeo_geo.classical.ratio_test_matches`)."""
    return ratio_test_matches(desc_a, desc_b, ratio)


def work_window(raster: ReferenceRaster, window: Window, max_side: int = MAX_WORK_SIDE) -> tuple[Window, tuple[int, int]]:
    """``window`` and the out size ``(w, h)`` it is read at: native resolution, capped at ``max_side``."""
    scale = min(1.0, max_side / max(window.width, window.height))
    return window, (max(16, round(window.width * scale)), max(16, round(window.height * scale)))


def footprint_window(prior: CameraPrior, raster: ReferenceRaster, margin_m: float,
                     max_range_m: float | None = None) -> Window | None:
    """Raster window holding the ground the photo sees (rays of a 7 x 5 pixel grid, ranges
    capped at ``max_range_m``, default 8x the camera's height above ground), grown by
    ``margin_m``, and cut to the part of it that holds valid pixels
    (:meth:`~smgeo_geo.raster.ReferenceRaster.within_data`); ``None`` when it misses the raster
    or its valid pixels."""
    cam = prior.camera
    gx, gy = np.meshgrid(np.linspace(0, cam.width, 7), np.linspace(0, cam.height, 5))
    px = np.column_stack([gx.ravel(), gy.ravel()])
    # march no farther than the range limit needs (the height above the ground below the camera)
    below, under = cast_rays(cam.frame, cam.centre[None], np.array([[0.0, 0.0, -1.0]]), prior.terrain)
    reach = 3000.0 if not under[0] else min(3000.0, 8.5 * max(10.0, cam.centre[2] - below[0, 2]) + 100.0)
    pts, hit = intersect_rays(cam, px, prior.terrain, max_range_m=reach)
    if not hit.any() and reach < 3000.0:
        pts, hit = intersect_rays(cam, px, prior.terrain, max_range_m=3000.0)
    if not hit.any():
        return None
    height = max(10.0, cam.centre[2] - float(np.nanmin(pts[hit, 2])))
    limit = max_range_m or 8.0 * height
    horiz = np.linalg.norm(pts[:, :2] - cam.centre[:2], axis=1)
    keep = hit & (horiz <= limit)
    if not keep.any():
        keep = hit
    xs, ys = cam.frame.to_crs(raster.crs, pts[keep, 0], pts[keep, 1], pts[keep, 2])
    inv = ~raster.transform
    cols, rows = inv @ (np.asarray(xs), np.asarray(ys))
    pad = margin_m / raster.pixel_size_m_at(float(np.mean(cols)), float(np.mean(rows)))  # raster pixels
    c0, c1 = max(0, math.floor(np.min(cols) - pad)), min(raster.width, math.ceil(np.max(cols) + pad))
    r0, r1 = max(0, math.floor(np.min(rows) - pad)), min(raster.height, math.ceil(np.max(rows) + pad))
    if c1 - c0 < 16 or r1 - r0 < 16:
        return None
    return raster.within_data(Window(c0, r0, c1 - c0, r1 - r0))


def ground_points(prior: CameraPrior, raster: ReferenceRaster, mapping: PixelMapping, uv: np.ndarray):
    """Work-window pixels ``(N, 2)`` -> local ENU points on the terrain ``(N, 3)`` and the
    raster-CRS ``(x, y)``; rows without terrain height are NaN."""
    cols, rows = mapping.to_raster(uv[:, 0], uv[:, 1])
    xs, ys = pixel_to_crs(raster.transform, cols, rows)
    lon, lat = transform_xy(raster.crs, 4326, xs, ys)
    h = prior.terrain.heights(lon, lat)
    x, y, z = prior.camera.frame.from_lonlat(lon, lat, np.nan_to_num(h, nan=0.0))
    pts = np.column_stack([x, y, z])
    pts[~np.isfinite(h)] = np.nan
    return pts, np.column_stack([xs, ys])


def rectify(photo: np.ndarray, prior: CameraPrior, raster: ReferenceRaster, mapping: PixelMapping,
            size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo resampled into the work window's grid through the prior camera and the
    terrain. Returns the rectified image ``HxWx3``, its valid mask and the maps ``(H, W, 2)``
    giving the photo pixel (corner convention) of every work pixel."""
    w, h = size_wh
    gw, gh = w // GRID_STEP + 2, h // GRID_STEP + 2
    gu, gv = np.meshgrid(np.arange(gw) * GRID_STEP + 0.5, np.arange(gh) * GRID_STEP + 0.5)
    pts, _ = ground_points(prior, raster, mapping, np.column_stack([gu.ravel(), gv.ravel()]))
    finite = np.all(np.isfinite(pts), axis=1)
    px = np.full((len(pts), 2), -1e6)
    proj, front = prior.camera.project(np.nan_to_num(pts))
    ok = finite & front
    px[ok] = proj[ok]
    grid = px.reshape(gh, gw, 2).astype(np.float32)
    # interpolate the coarse map to every work pixel (grid node k sits at k * GRID_STEP + 0.5)
    ys = (np.arange(h) / GRID_STEP).astype(np.float32)
    xs = (np.arange(w) / GRID_STEP).astype(np.float32)
    mx, my = np.meshgrid(xs, ys)
    maps = np.stack([cv2.remap(grid[..., i], mx, my, cv2.INTER_LINEAR) for i in range(2)], axis=-1)
    image = cv2.remap(photo, maps[..., 0] - 0.5, maps[..., 1] - 0.5, cv2.INTER_LINEAR, borderValue=0)
    pw, ph = prior.camera.width, prior.camera.height
    valid = (maps[..., 0] >= 1) & (maps[..., 1] >= 1) & (maps[..., 0] <= pw - 1) & (maps[..., 1] <= ph - 1)
    return image, valid, maps


def sample_maps(maps: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Photo pixels of work-window points ``uv`` (bilinear on the maps)."""
    u = (uv[:, 0] - 0.5).astype(np.float32).reshape(-1, 1)
    v = (uv[:, 1] - 0.5).astype(np.float32).reshape(-1, 1)
    return np.column_stack([cv2.remap(maps[..., i], u, v, cv2.INTER_LINEAR).ravel() for i in range(2)])


def read_window(raster: ReferenceRaster, window: Window, size: tuple[int, int]):
    """The reference window read at ``size`` ``(w, h)``: box-averaged when that shrinks it (as
    sharp for matching as GDAL's bilinear, whose scaled kernel costs about 4x), else bilinear."""
    shrink = size[0] < window.width or size[1] < window.height
    return raster.read_window_with_mask(window, size, Resampling.average if shrink else Resampling.bilinear)


def patch_window(raster: ReferenceRaster, col: float, row: float, half_px: float,
                  max_side: int) -> tuple[Window, tuple[int, int], PixelMapping]:
    """The square window of raster pixels around ``(col, row)``, ``half_px`` to each edge, the
    size ``(w, h)`` it is read at (native resolution, capped at ``max_side``) and the mapping
    from that grid's pixels to raster pixels."""
    window = Window(math.floor(col - half_px), math.floor(row - half_px), math.ceil(2 * half_px),
                    math.ceil(2 * half_px))
    window, size = work_window(raster, window, max_side)
    mapping = PixelMapping(float(window.col_off), float(window.row_off), window.width / size[0],
                           window.height / size[1])
    return window, size, mapping


def pixel_metres(raster: ReferenceRaster, mapping: PixelMapping, window: Window) -> float:
    """Ground metres per pixel of the grid ``mapping`` reads raster ``window`` at (measured at the
    window's centre)."""
    centre = (window.col_off + window.width / 2, window.row_off + window.height / 2)
    return raster.pixel_size_m_at(*centre) * math.sqrt(mapping.scale_x * mapping.scale_y)



__all__ = ["FEATURE_THREAD", "GRID_STEP", "MAX_FEATURES", "MAX_WORK_SIDE", "RATIO", "features", "footprint_window",
           "ground_points", "match", "patch_window", "pixel_metres", "read_window", "rectify",
           "sample_maps", "work_window"]
