"""Drone views of a real orthophoto draped on a DSM (or on flat ground), by ray casting.

A :class:`Surface` is the orthophoto (:func:`smgeo_geo.raster.open_reference`) with an optional
DSM/DEM (:class:`smgeo_geo.terrain.DemTerrain`: any CRS, heights in the camera's vertical
frame). :func:`render_view` renders what a :class:`~smgeo_geo.camera.FrameCamera` sees. Every
pixel's ray (from the camera model, Brown distortion included) is cast onto the DSM surface:
vectorised height-field ray marching, with long safe steps from a pyramid of height maxima
and probe steps of :data:`PROBE_CELLS` DSM cells near the surface, then bisection (a feature
narrower than a probe step, grazed by a ray, can be missed: a few pixels in ten thousand on a
tree-covered DSM); smooth areas are cast at half resolution and interpolated
(:func:`_cast_adaptive`). A ray stops at the first
surface it meets, so buildings and trees stand up and hide what is behind them. The colour of
the point met is read from the orthophoto with trilinear mip-mapping (far, oblique ground is
not aliased). Walls, which an orthophoto does not show, take the colours of their edges and
are shaded by their orientation to the sun.

Frames: the camera's local ENU frame (:class:`~smgeo_geo.camera.LocalFrame`, metres; heights
``h = h0 + z`` plus earth curvature); raster pixels ``(col, row)`` of the windows read (GDAL
corner convention). :class:`LocalMap` maps local ENU ``(x, y)`` to a window's pixels: a
quadratic fitted to exact pyproj conversions over the view (its residual, below a
millimetre over a kilometre, is kept and checked). Photo rays are the camera model's
(:meth:`~smgeo_geo.camera.FrameCamera.rays`) every :data:`RAY_GRID` pixels, interpolated
between (about 0.01 px off).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace

import cv2
import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.camera import FrameCamera, LocalFrame
from smgeo_geo.coords import transform_xy
from smgeo_geo.errors import RasterError
from smgeo_geo.raster import open_reference
from smgeo_geo.terrain import DemTerrain

MAX_WINDOW = 4096  # orthophoto pixels a side read for one view; larger areas are read decimated
MAX_DEM_WINDOW = 1536  # DSM cells a side read for one view (the ray marcher keeps 7 float32 copies)
MAX_OFF_NADIR = 80.0  # degrees: rays further from nadir are not cast (they would meet the ground too far away)
FIT_GRID = 9  # points a side of the exact conversions a LocalMap is fitted to
MAX_FIT_RESIDUAL_PX = 0.01
STACK_MARGIN_M = 0.001  # added to the float32 maxima, so rounding never makes a step unsafe
MAX_LEVELS = 7  # height-maxima levels used for safe steps (blocks of 1 to 64 DSM cells)
PROBE_CELLS = 0.75  # near the surface a ray advances by this many DSM cells (horizontally) per step
RAY_GRID = 8  # photo pixels between rays computed exactly with the camera model (see grid_rays)
EDGE_REL = 0.003  # relative second difference of distances that marks an edge (see _cast_adaptive)
BISECTIONS = 16  # refinement of a ray's crossing after the bracket is found
MAX_MARCH_STEPS = 4000
NODATA_RGB = (0.74, 0.78, 0.84)  # what a pixel that sees no valid surface shows (haze grey)
AMBIENT = 0.45  # share of the light that does not come from the sun (wall and slope shading)
SHADE_LIMITS = (0.4, 1.25)
SPECK_M2 = 4.0  # nodata specks up to this area inside an orthophoto are image (see fill_small_holes)
WALL_SLOPE = 2.0  # a surface steeper than this (height per horizontal metre) is a wall
WALL_REACH = 1.5  # a wall's colour is read this many DSM cells uphill of the point seen


def fill_small_holes(valid: np.ndarray, max_pixels: float) -> np.ndarray:
    """``valid`` with its invalid specks (8-connected groups of at most ``max_pixels`` pixels
    not touching the border) made valid: a nodata value that dark pixels also take (an 8-bit
    orthophoto with nodata 0) leaves such specks, which are image, not holes."""
    invalid = (~valid).astype(np.uint8)
    if not invalid.any():
        return valid
    count, labels, stats, _ = cv2.connectedComponentsWithStats(invalid, connectivity=8)
    h, w = valid.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    small = (area <= max_pixels) & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    small[0] = False
    return valid | small[labels]


# -- local maps -------------------------------------------------------------------------------
def _features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


@dataclass(frozen=True)
class LocalMap:
    """Local ENU ``(x, y)`` metres -> window pixel ``(col, row)`` and the geodetic height of the
    ENU point ``(x, y, 0)`` above the frame's ``h0`` (earth curvature), as quadratics.

    ``centre``, ``scale``: the fit's normalisation; ``coeffs``: ``(6, 3)``; ``residual_px``:
    the largest pixel error of the fit on its own points."""

    centre: tuple[float, float]
    scale: float
    coeffs: np.ndarray
    residual_px: float

    def _eval(self, x, y) -> np.ndarray:
        u = ((np.asarray(x, float) - self.centre[0]) / self.scale)[..., None]
        v = ((np.asarray(y, float) - self.centre[1]) / self.scale)[..., None]
        c = self.coeffs
        return c[0] + u * (c[1] + u * c[3] + v * c[4]) + v * (c[2] + v * c[5])

    def pixels(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        out = self._eval(x, y)
        return out[..., 0], out[..., 1]

    def curvature(self, x, y) -> np.ndarray:
        """Geodetic height of ENU ``(x, y, 0)`` minus ``h0`` (metres; >= 0, ~ r^2 / 2R)."""
        return self._eval(x, y)[..., 2]

    def along(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per ray ``origin + t * dirs``: coefficients ``(c0, c1, c2)``, each ``(N, 3)``, with
        ``(col, row, curvature) = c0 + c1 t + c2 t^2``."""
        u0 = (origin[0] - self.centre[0]) / self.scale
        v0 = (origin[1] - self.centre[1]) / self.scale
        du, dv = dirs[:, 0] / self.scale, dirs[:, 1] / self.scale
        c = self.coeffs
        c0 = _features(np.array([u0]), np.array([v0])) @ c
        c1 = (np.outer(du, c[1]) + np.outer(dv, c[2]) + np.outer(2 * u0 * du, c[3])
              + np.outer(u0 * dv + v0 * du, c[4]) + np.outer(2 * v0 * dv, c[5]))
        c2 = np.outer(du * du, c[3]) + np.outer(du * dv, c[4]) + np.outer(dv * dv, c[5])
        return np.broadcast_to(c0, c1.shape), c1, c2

    @property
    def jacobian(self) -> np.ndarray:
        """``d(col, row) / d(x, y)`` at the fit's centre (pixels per metre), 2x2."""
        return self.coeffs[1:3, :2].T / self.scale

    @property
    def pixel_m(self) -> float:
        """The shortest ground distance (metres) of a one-pixel step in any direction."""
        return 1.0 / float(np.linalg.svd(self.jacobian, compute_uv=False)[0])


def fit_local_map(frame: LocalFrame, crs, to_pixel, bounds: tuple[float, float, float, float],
                  source: str = "raster") -> LocalMap:
    """Fit a :class:`LocalMap` from ``frame`` to the pixels given by ``to_pixel`` (a function of
    ``(X, Y)`` in ``crs`` returning ``(col, row)``) over ENU ``bounds`` ``(x0, y0, x1, y1)``.
    :class:`RasterError` naming ``source`` when the fit is off by more than
    :data:`MAX_FIT_RESIDUAL_PX` (a view far larger than a drone's, or a CRS that bends sharply
    there); over a drone's view it is off by well under a thousandth of a pixel."""
    x0, y0, x1, y1 = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, FIT_GRID), np.linspace(y0, y1, FIT_GRID))
    gx, gy = gx.ravel(), gy.ravel()
    lon, lat, h = frame.to_lonlat(gx, gy, np.zeros_like(gx))
    xs, ys = transform_xy(4326, crs, lon, lat)
    col, row = to_pixel(np.asarray(xs), np.asarray(ys))
    target = np.column_stack([col, row, np.asarray(h) - frame.h0])
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    scale = max(x1 - x0, y1 - y0, 1.0) / 2
    a = _features((gx - centre[0]) / scale, (gy - centre[1]) / scale)
    coeffs, *_ = np.linalg.lstsq(a, target, rcond=None)
    residual = float(np.abs(a @ coeffs - target)[:, :2].max())
    if not residual <= MAX_FIT_RESIDUAL_PX:
        raise RasterError(f"{source}: its CRS cannot be mapped smoothly enough over a view of {x1 - x0:.0f} x "
                          f"{y1 - y0:.0f} m (off by {residual:.3g} pixels)")
    return LocalMap(centre, scale, coeffs, residual)


# -- the surface: orthophoto + DSM ------------------------------------------------------------
@dataclass
class Texture:
    """Orthophoto window as a mip pyramid of float32 RGB images (level 0 first), its valid mask
    and the map from local ENU to level-0 pixels."""

    levels: list[np.ndarray]
    valid: np.ndarray
    lmap: LocalMap

    def sample(self, x: np.ndarray, y: np.ndarray, footprint_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB ``(N, 3)`` at ENU ``(x, y)``, blurred to ``footprint_px`` (level-0 pixels per
        photo pixel; trilinear between pyramid levels), and whether the pixel is valid."""
        col, row = self.lmap.pixels(x, y)
        lod = np.clip(np.log2(np.maximum(footprint_px, 1.0)), 0, len(self.levels) - 1)
        lo = np.floor(lod).astype(int)
        frac = (lod - lo).astype(np.float32)[:, None]
        out = np.zeros((len(x), 3), np.float32)
        for k in np.unique(np.r_[lo, np.minimum(lo + 1, len(self.levels) - 1)]):
            use_lo, use_hi = lo == k, (lo + 1 == k)
            sel = use_lo | use_hi
            f = 2.0 ** k
            rgb = _remap_points(self.levels[k], col[sel] / f - 0.5, row[sel] / f - 0.5)
            w = np.where(use_lo[sel][:, None], 1.0 - frac[sel], frac[sel])
            out[sel] += w * rgb
        h, w_ = self.valid.shape
        ci, ri = np.floor(col).astype(int), np.floor(row).astype(int)
        inside = (ci >= 0) & (ri >= 0) & (ci < w_) & (ri < h)
        valid = np.zeros(len(x), bool)
        valid[inside] = self.valid[ri[inside], ci[inside]]
        return out, valid


def _remap_points(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples ``(N, C)`` of ``image`` at pixel-centre coordinates ``(x, y)`` (edges
    replicated); the points go through :func:`cv2.remap` as rows of at most 1024."""
    n = len(x)
    rows = max(1, -(-n // 1024))
    mx = np.zeros(rows * 1024, np.float32)
    my = np.zeros(rows * 1024, np.float32)
    mx[:n], my[:n] = x, y
    out = cv2.remap(image, mx.reshape(rows, 1024), my.reshape(rows, 1024), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * 1024, -1)[:n]


class HeightField:
    """DSM heights over a view (window pixels, cell-centred) with what ray marching needs: a
    pyramid of dilated block maxima (safe steps), the valid mask and the height gradient."""

    def __init__(self, heights: np.ndarray, lmap: LocalMap) -> None:
        self.valid = np.isfinite(heights)
        if not self.valid.any():
            raise ValueError("no valid height")
        self.h = np.where(self.valid, heights, np.nanmin(heights)).astype(np.float64)
        self.lmap = lmap
        self.cell_m = lmap.pixel_m
        self.hmin, self.hmax = float(self.h.min()), float(self.h.max())
        # level k: max over blocks of 2^k cells of the heights dilated by one cell (the
        # bilinear support), dilated by one block: within 2^k cells of any point of a block,
        # the surface is below the block's value
        kernel = np.ones((3, 3), np.uint8)
        level = cv2.dilate(self.h.astype(np.float32), kernel, borderType=cv2.BORDER_REPLICATE)
        self.levels: list[np.ndarray] = []
        while True:
            self.levels.append(cv2.dilate(level, kernel, borderType=cv2.BORDER_REPLICATE))
            if max(level.shape) <= 2:
                break
            hh, ww = level.shape
            pad = np.pad(level, ((0, hh % 2), (0, ww % 2)), mode="edge")
            level = pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 2, 2).max(axis=(1, 3))
        # every level at full resolution, stacked (levels, cells): one gather per step
        hh, ww = self.h.shape
        rows, cols = np.arange(hh), np.arange(ww)
        self.levels = self.levels[:MAX_LEVELS]
        self.stack = np.stack([lev[(rows >> k)[:, None], (cols >> k)[None, :]].ravel()
                               for k, lev in enumerate(self.levels)]).astype(np.float32) + STACK_MARGIN_M
        self.reach_m = self.cell_m * 2.0 ** np.arange(len(self.levels))
        gy, gx = np.gradient(self.h)
        self.grad = (gx, gy)  # metres per window pixel along (col, row)

    def heights(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Bilinear heights at window pixels (corner convention), edges clamped; see :meth:`inside`."""
        return self._sample(self.h, col, row)

    def slope(self, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Height gradient ``(dh/dx, dh/dy)`` (local ENU, metres per metre) at window pixels."""
        gc, gr = self._sample(self.grad[0], col, row), self._sample(self.grad[1], col, row)
        j = self.lmap.jacobian  # d(col, row) / d(x, y)
        return gc * j[0, 0] + gr * j[1, 0], gc * j[0, 1] + gr * j[1, 1]

    def valid_at(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        hh, ww = self.valid.shape
        ci = np.clip(np.floor(col).astype(np.intp), 0, ww - 1)
        ri = np.clip(np.floor(row).astype(np.intp), 0, hh - 1)
        return self.valid[ri, ci] & self.inside(col, row)

    @staticmethod
    def _sample(grid: np.ndarray, col, row) -> np.ndarray:
        hh, ww = grid.shape
        u = np.clip(np.asarray(col, float) - 0.5, 0.0, ww - 1.000001)
        v = np.clip(np.asarray(row, float) - 0.5, 0.0, hh - 1.000001)
        u0, v0 = u.astype(np.intp), v.astype(np.intp)
        a, b = u - u0, v - v0
        flat = grid.ravel()
        i = v0 * ww + u0
        if ww == 1 or hh == 1:
            return flat[i]
        top = flat[i] * (1 - a) + flat[i + 1] * a
        bottom = flat[i + ww] * (1 - a) + flat[i + ww + 1] * a
        return top * (1 - b) + bottom * b

    def inside(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        hh, ww = self.h.shape
        return (col >= 0) & (row >= 0) & (col <= ww) & (row <= hh)

    def cast(self, origin: np.ndarray, dirs: np.ndarray, h0: float, t_max: float) -> np.ndarray:
        """Distance along each unit ray ``dirs`` ``(N, 3)`` (local ENU, from ``origin``) to
        the first surface it meets; NaN for rays that leave the window or meet nothing.

        Along a ray the window pixel and the curvature term are quadratics in the distance
        ``t`` (the map is quadratic in ``(x, y)``, which are linear in ``t``): their
        coefficients are computed once per ray."""
        n = len(dirs)
        down = -dirs[:, 2]
        horiz = np.hypot(dirs[:, 0], dirs[:, 1])
        t_hit = np.full(n, np.nan)
        ok = down > 1e-6
        q0, q1, q2 = self.lmap.along(origin, dirs)  # (N, 3) each: col, row, curvature
        top = h0 + origin[2]

        def at(t, a, b, c, dz):
            """Height of the ray (geodetic frame of the heights) and its window pixel at ``t``."""
            q = a + t[:, None] * (b + t[:, None] * c)
            return top + t * dz + q[:, 2], q[:, 0], q[:, 1]

        margin = 0.5
        safe_down = np.where(ok, down, 1.0)
        t = np.where(ok, np.maximum(0.0, (top - self.hmax - margin) / safe_down), 0.0)
        t_end = np.where(ok, np.minimum(t_max, (top - self.hmin + margin) / safe_down), 0.0)
        inv_h = 1.0 / np.maximum(horiz, 1e-9)
        lo = np.full(n, np.nan)
        hi = np.full(n, np.nan)
        # the working set: the rays still marching, compacted when a quarter of it has finished
        idx = np.nonzero(ok & (t < t_end))[0]
        w = {"q0": q0[idx], "q1": q1[idx], "q2": q2[idx], "dz": dirs[idx, 2], "down": down[idx],
             "inv_h": inv_h[idx], "t": t[idx], "t_end": t_end[idx]}
        alive = np.ones(idx.size, bool)
        cell = self.cell_m
        for _ in range(MAX_MARCH_STEPS):
            if not alive.any():
                break
            if alive.sum() < 0.75 * alive.size:
                idx = idx[alive]
                w = {k: v[alive] for k, v in w.items()}
                alive = np.ones(idx.size, bool)
            ta = w["t"]
            hr, col, row = at(ta, w["q0"], w["q1"], w["q2"], w["dz"])
            inside = self.inside(col, row)
            ci = np.clip(col.astype(np.intp), 0, self.h.shape[1] - 1)
            ri = np.clip(row.astype(np.intp), 0, self.h.shape[0] - 1)
            gap = hr - self.stack[:, ri * self.h.shape[1] + ci]  # (levels, n): above each level's maximum
            reach = self.reach_m[:, None] * w["inv_h"]
            safe = np.where(gap > 0, np.minimum(reach, gap / w["down"]), 0.0).max(axis=0)
            fine = PROBE_CELLS * cell * w["inv_h"]
            probe = safe < fine
            t_new = np.minimum(ta + np.where(probe, fine, safe), w["t_end"])
            at_end = t_new >= w["t_end"]
            check = (probe | at_end) & inside & alive
            crossed = np.zeros(idx.size, bool)
            if check.any():
                sel = np.nonzero(check)[0]
                hr2, c2, r2 = at(t_new[sel], w["q0"][sel], w["q1"][sel], w["q2"][sel], w["dz"][sel])
                crossed[sel] = (hr2 - self.heights(c2, r2) <= 0) & self.inside(c2, r2)
            hit = crossed & alive
            lo[idx[hit]], hi[idx[hit]] = ta[hit], t_new[hit]
            alive &= ~(crossed | ~inside | at_end)
            w["t"] = t_new
        hits = np.nonzero(np.isfinite(lo))[0]
        a, b = lo[hits], hi[hits]
        h_args = (q0[hits], q1[hits], q2[hits], dirs[hits, 2])
        for _ in range(BISECTIONS):
            mid = (a + b) / 2
            hr, col, row = at(mid, *h_args)
            below = hr - self.heights(col, row) <= 0
            b = np.where(below, mid, b)
            a = np.where(below, a, mid)
        t_hit[hits] = (a + b) / 2
        return t_hit


class Surface:
    """The orthophoto (colours) and optional DSM/DEM (heights) a drone view is rendered from.

    ``reference``: any raster :func:`~smgeo_geo.raster.open_reference` reads (``bands`` as
    there); ``dem``: a DSM/DEM in any CRS (heights in the vertical frame of the camera heights
    used); without one the ground is flat at ``ground_height``. Use as a context manager or
    call :meth:`close`. Errors are :class:`~smgeo_geo.errors.RasterError` naming the file.
    """

    def __init__(self, reference: str | os.PathLike, dem: str | os.PathLike | None = None,
                 bands=None, ground_height: float = 0.0) -> None:
        self.ortho = open_reference(reference, bands=bands)
        self.ground_height = float(ground_height)
        self.terrain: DemTerrain | None = None
        self._dem = None
        try:
            if dem is not None:
                self.terrain = DemTerrain(dem)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                    self._dem = rasterio.open(os.fspath(dem))
        except BaseException:
            self.close()
            raise

    @property
    def dem_path(self) -> str | None:
        return self.terrain.path if self.terrain is not None else None

    def close(self) -> None:
        self.ortho.close()
        if self.terrain is not None:
            self.terrain.close()
        if self._dem is not None:
            self._dem.close()

    def __enter__(self) -> "Surface":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- heights ----------------------------------------------------------------------------
    def heights(self, lon, lat) -> np.ndarray:
        """Surface heights at WGS84 points (DSM bilinear, NaN off it; or the flat ground)."""
        if self.terrain is None:
            return np.full(np.shape(lon), self.ground_height)
        return self.terrain.heights(lon, lat)

    def _dem_window(self, frame: LocalFrame, bounds, res_m: float):
        """DSM window over ENU ``bounds`` read at about ``res_m`` (never finer than the DSM):
        ``(heights with NaN holes, LocalMap to its pixels)`` or None when it misses the DSM."""
        ds = self._dem
        win, shape = _window_for(frame, self.terrain.crs, ds.transform, (ds.width, ds.height), bounds, res_m,
                                 MAX_DEM_WINDOW)
        if win is None:
            return None
        try:
            data = ds.read(1, window=win, out_shape=shape, masked=True,
                           resampling=Resampling.average if shape != (win.height, win.width) else Resampling.nearest)
        except rasterio.errors.RasterioError as exc:
            raise RasterError(f"DEM {self.terrain.path}: cannot read window {win}: {exc}") from exc
        heights = np.ma.filled(data.astype(np.float64), np.nan)
        sx, sy = win.width / shape[1], win.height / shape[0]
        inv = ~ds.transform

        def to_pixel(xs, ys):
            c, r = inv @ (xs, ys)
            return (np.asarray(c) - win.col_off) / sx, (np.asarray(r) - win.row_off) / sy

        return heights, fit_local_map(frame, self.terrain.crs, to_pixel, bounds, f"DEM {self.terrain.path}")

    def height_range(self, frame: LocalFrame, bounds) -> tuple[float, float]:
        """Lowest and highest surface height over ENU ``bounds`` (a decimated read)."""
        if self.terrain is None:
            return self.ground_height, self.ground_height
        size = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        got = self._dem_window(frame, bounds, size / 256)
        if got is None or not np.isfinite(got[0]).any():
            return math.nan, math.nan
        return float(np.nanmin(got[0])), float(np.nanmax(got[0]))

    # -- a view's data ------------------------------------------------------------------------
    def texture(self, frame: LocalFrame, bounds, res_m: float) -> Texture | None:
        """The orthophoto over ENU ``bounds`` at about ``res_m`` (never finer than its pixels)."""
        o = self.ortho
        win, shape = _window_for(frame, o.crs, o.transform, (o.width, o.height), bounds, res_m)
        if win is None:
            return None
        decimated = shape != (win.height, win.width)
        image, valid, mapping = o.read_window_with_mask(
            win, (shape[1], shape[0]), Resampling.average if decimated else Resampling.nearest)
        inv = ~o.transform

        def to_pixel(xs, ys):
            c, r = inv @ (xs, ys)
            return mapping.to_model(c, r)

        lmap = fit_local_map(frame, o.crs, to_pixel, bounds, o.path)
        valid = fill_small_holes(valid, SPECK_M2 * float(np.abs(np.linalg.det(lmap.jacobian))))
        levels = [image.astype(np.float32) / 255.0]
        while min(levels[-1].shape[:2]) > 8 and len(levels) < 8:
            levels.append(cv2.pyrDown(levels[-1]))
        return Texture(levels, valid, lmap)

    def height_field(self, frame: LocalFrame, bounds, res_m: float) -> HeightField | None:
        """The DSM over ENU ``bounds`` (None without a DSM or where it has no data)."""
        if self.terrain is None:
            return None
        got = self._dem_window(frame, bounds, res_m)
        if got is None or not np.isfinite(got[0]).any():
            return None
        return HeightField(*got)


def _window_for(frame: LocalFrame, crs, transform, size: tuple[int, int], bounds, res_m: float,
                max_side: int = MAX_WINDOW):
    """The raster window (clipped to the raster) that covers ENU ``bounds`` and the
    ``(rows, cols)`` to read it at so that a pixel is about ``res_m`` (never finer than the
    raster, at most ``max_side`` a side); ``(None, None)`` when it misses the raster."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(0, 1, 9)
    ex = np.r_[x0 + (x1 - x0) * t, np.full(9, x1), x1 - (x1 - x0) * t, np.full(9, x0)]
    ey = np.r_[np.full(9, y0), y0 + (y1 - y0) * t, np.full(9, y1), y1 - (y1 - y0) * t]
    lon, lat, _ = frame.to_lonlat(ex, ey, np.zeros_like(ex))
    xs, ys = transform_xy(4326, crs, lon, lat)
    cols, rows = ~transform @ (np.asarray(xs), np.asarray(ys))
    c0, c1 = max(0, math.floor(np.min(cols)) - 2), min(size[0], math.ceil(np.max(cols)) + 2)
    r0, r1 = max(0, math.floor(np.min(rows)) - 2), min(size[1], math.ceil(np.max(rows)) + 2)
    if c1 - c0 < 2 or r1 - r0 < 2:
        return None, None
    win = Window(c0, r0, c1 - c0, r1 - r0)
    span_m = math.hypot(x1 - x0, y1 - y0)
    native_m = span_m / max(math.hypot(np.ptp(cols), np.ptp(rows)), 1e-9)  # metres per raster pixel
    step = max(1.0, res_m / native_m, win.width / max_side, win.height / max_side)
    return win, (max(2, round(win.height / step)), max(2, round(win.width / step)))


# -- cameras and views ------------------------------------------------------------------------
def scaled_camera(camera: FrameCamera, factor: int) -> FrameCamera:
    """The same camera with ``factor`` times the pixels (photo pixel ``p`` is pixel ``p * factor``)."""
    return replace(camera, width=camera.width * factor, height=camera.height * factor, fx=camera.fx * factor,
                   fy=camera.fy * factor, cx=camera.cx * factor, cy=camera.cy * factor)


def off_nadir_deg(rays: np.ndarray) -> np.ndarray:
    """Angle of unit ENU rays from straight down, degrees."""
    return np.degrees(np.arccos(np.clip(-rays[:, 2], -1.0, 1.0)))


@dataclass
class DroneView:
    """What :func:`render_view` returns, all at the camera's pixels (rows, cols):
    ``image`` float32 RGB in [0, 1]; ``points`` local ENU (metres) of the surface each pixel
    sees (NaN where none); ``distance`` metres from the camera (NaN where none); ``valid``
    (the pixel sees valid orthophoto and DSM pixels); ``camera``."""

    image: np.ndarray
    points: np.ndarray
    distance: np.ndarray
    valid: np.ndarray
    camera: FrameCamera

    @property
    def nodata_share(self) -> float:
        return 1.0 - float(self.valid.mean())


def _plane_hits(camera: FrameCamera, rays: np.ndarray, height: float) -> np.ndarray:
    """Horizontal ENU positions where ``rays`` meet the level plane at geodetic ``height``
    (curvature ignored; for choosing what to read)."""
    down = np.maximum(-rays[:, 2], 1e-6)
    t = np.maximum(camera.frame.h0 + camera.centre[2] - height, 0.0) / down
    return camera.centre[:2] + t[:, None] * rays[:, :2]


def view_bounds(surface: Surface, camera: FrameCamera) -> tuple[tuple[float, float, float, float], float, float]:
    """ENU bounds of what ``camera`` can see and the surface's height range there: the frame's
    border rays put on the lowest and highest surface (two passes, since the area read
    decides the range)."""
    w, h = camera.width, camera.height
    n = 17
    s = np.linspace(0, 1, n)
    border = np.r_[np.c_[s * w, np.zeros(n)], np.c_[np.full(n, w), s * h], np.c_[s * w, np.full(n, h)],
                   np.c_[np.zeros(n), s * h], [[w / 2, h / 2]]]
    rays = camera.rays(border)
    rays = rays[off_nadir_deg(rays) <= MAX_OFF_NADIR]
    lon, lat, _ = camera.frame.to_lonlat(camera.centre[0], camera.centre[1], 0.0)
    h_lo = h_hi = float(np.nan_to_num(surface.heights(np.atleast_1d(lon), np.atleast_1d(lat))[0],
                                      nan=surface.ground_height))
    bounds = (0.0, 0.0, 0.0, 0.0)
    for _ in range(3):
        pts = np.r_[_plane_hits(camera, rays, h_lo), _plane_hits(camera, rays, h_hi), camera.centre[None, :2]]
        pad = 5.0 + 0.02 * float(np.ptp(pts, axis=0).max())
        bounds = (float(pts[:, 0].min() - pad), float(pts[:, 1].min() - pad),
                  float(pts[:, 0].max() + pad), float(pts[:, 1].max() + pad))
        lo, hi = surface.height_range(camera.frame, bounds)
        if not np.isfinite(lo):
            break
        if lo >= h_lo - 0.5 and hi <= h_hi + 0.5:
            break
        h_lo, h_hi = min(h_lo, lo - 1.0), max(h_hi, hi + 1.0)
    return bounds, h_lo, h_hi


def _footprints(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per pixel, the texture pixels one photo pixel spans (geometric mean of its two axes;
    the smaller of the forward and backward differences, so occlusion edges stay sharp)."""

    def axis_len(axis):
        dc, dr = np.diff(cols, axis=axis), np.diff(rows, axis=axis)
        d = np.hypot(dc, dr)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        back = np.pad(d, pad, mode="edge")
        pad[axis] = (0, 1)
        fwd = np.pad(d, pad, mode="edge")
        return np.fmin(back, fwd)

    return np.sqrt(np.nan_to_num(axis_len(0), nan=1.0) * np.nan_to_num(axis_len(1), nan=1.0))


def render_view(surface: Surface, camera: FrameCamera, sun: tuple[float, float] | None = None) -> DroneView:
    """Render the photo ``camera`` takes of ``surface`` (every pixel centre's ray cast).

    ``sun``: ``(azimuth, elevation)`` degrees (azimuth clockwise from north) for the shading of
    walls and slopes; None: no shading. Pixels whose ray meets nothing valid (off the
    orthophoto or DSM, nodata, beyond :data:`MAX_OFF_NADIR`) show :data:`NODATA_RGB` and are
    False in ``valid``.
    """
    w, h = camera.width, camera.height
    rays = grid_rays(camera, np.arange(w) + 0.5, np.arange(h) + 0.5).reshape(-1, 3)
    castable = off_nadir_deg(rays) <= MAX_OFF_NADIR
    bounds, h_lo, h_hi = view_bounds(surface, camera)
    frame = camera.frame
    top = frame.h0 + camera.centre[2]
    # the nearest surface a ray can meet sets the resolution read (one photo pixel there)
    near = (top - h_hi) / max(float(-rays[castable, 2].min()) if castable.any() else 1.0, 1e-3)
    res_m = max(near, 0.5) / camera.fx
    t_max = (top - h_lo + 1.0) / math.cos(math.radians(MAX_OFF_NADIR))
    field = surface.height_field(frame, bounds, res_m)
    texture = surface.texture(frame, bounds, res_m)
    t = np.full(len(rays), np.nan)
    if field is not None:
        t = _cast_adaptive(field, camera, rays, castable, t_max)
    elif surface.terrain is None and texture is not None:
        t[castable] = _cast_flat(camera, rays[castable], surface.ground_height, texture.lmap)
    pts = camera.centre + t[:, None] * rays
    hit = np.isfinite(t)
    image = np.empty((len(rays), 3), np.float32)
    image[:] = NODATA_RGB
    valid = np.zeros(len(rays), bool)
    if texture is not None and hit.any():
        cols, rows = texture.lmap.pixels(pts[:, 0], pts[:, 1])
        foot = _footprints(cols.reshape(h, w), rows.reshape(h, w)).ravel()
        sx, sy = pts[hit, 0].copy(), pts[hit, 1].copy()
        if field is not None:
            c, r = field.lmap.pixels(sx, sy)
            hx, hy = field.slope(c, r)
            steep = np.hypot(hx, hy)
            wall = steep > WALL_SLOPE  # walls, which an orthophoto does not show, take their top edge's colour
            step = WALL_REACH * field.cell_m / np.maximum(steep[wall], 1e-9)
            sx[wall] += hx[wall] * step
            sy[wall] += hy[wall] * step
        rgb, ok = texture.sample(sx, sy, foot[hit])
        if field is not None:
            ok &= field.valid_at(c, r)
            if sun is not None:
                rgb *= _shade(hx, hy, sun)[:, None]
        idx = np.nonzero(hit)[0]
        image[idx[ok]] = np.clip(rgb[ok], 0.0, 1.0)
        valid[idx[ok]] = True
    return DroneView(image.reshape(h, w, 3), pts.reshape(h, w, 3), t.reshape(h, w), valid.reshape(h, w), camera)


def grid_rays(camera: FrameCamera, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Unit ENU rays ``(len(ys), len(xs), 3)`` of the photo pixels ``(xs[i], ys[j])``: exact
    (:meth:`FrameCamera.rays`) every :data:`RAY_GRID` pixels and at the last ones, bilinear in
    between (the undistorted directions are smooth: well under 0.01 px off), renormalised."""

    def knots(v: np.ndarray) -> np.ndarray:
        k = v[::RAY_GRID]
        return k if k[-1] == v[-1] else np.r_[k, v[-1]]

    kx, ky = knots(np.asarray(xs, float)), knots(np.asarray(ys, float))
    gx, gy = np.meshgrid(kx, ky)
    exact = camera.rays(np.column_stack([gx.ravel(), gy.ravel()])).reshape(len(ky), len(kx), 3)

    def weights(v: np.ndarray, k: np.ndarray):
        if len(k) == 1:
            return np.zeros(len(v), np.intp), np.zeros(len(v))
        i = np.clip(np.searchsorted(k, v, side="right") - 1, 0, len(k) - 2)
        return i, (v - k[i]) / (k[i + 1] - k[i])

    ix, ax = weights(np.asarray(xs, float), kx)
    iy, ay = weights(np.asarray(ys, float), ky)
    jx, jy = np.minimum(ix + 1, len(kx) - 1), np.minimum(iy + 1, len(ky) - 1)
    ax, ay = ax[None, :, None], ay[:, None, None]
    top = exact[iy][:, ix] * (1 - ax) + exact[iy][:, jx] * ax
    bottom = exact[jy][:, ix] * (1 - ax) + exact[jy][:, jx] * ax
    out = top * (1 - ay) + bottom * ay
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _cast_adaptive(field: HeightField, camera: FrameCamera, rays: np.ndarray, castable: np.ndarray,
                   t_max: float) -> np.ndarray:
    """Distances of all pixels' ``rays`` (row-major, ``castable`` mask): rays are cast for the
    centres of 2x2 blocks; where the distance is smooth around a block (second differences
    below :data:`EDGE_REL` of it, in four directions) its four pixels' distances are
    interpolated, elsewhere (occlusion edges, creases, nodata, the frame's border) each pixel's
    ray is cast. Half to two thirds of the cost of casting every ray; distances within 0.2 m of
    it (measured on a generated town and a real DSM of tree-covered slopes)."""
    w, h = camera.width, camera.height
    origin, h0 = camera.centre, camera.frame.h0
    t = np.full(len(rays), np.nan)
    if w % 2 or h % 2 or w < 8 or h < 8:
        t[castable] = field.cast(origin, rays[castable], h0, t_max)
        return t
    bw, bh = w // 2, h // 2
    coarse = grid_rays(camera, 2.0 * np.arange(bw) + 1.0, 2.0 * np.arange(bh) + 1.0).reshape(-1, 3)
    ok = off_nadir_deg(coarse) <= MAX_OFF_NADIR
    tc = np.full(len(coarse), np.nan)
    tc[ok] = field.cast(origin, coarse[ok], h0, t_max)
    tc = tc.reshape(bh, bw)
    pad = np.pad(tc, 1, mode="edge")
    centre = pad[1:-1, 1:-1]
    d2 = np.zeros_like(tc)
    for (a0, a1), (b0, b1) in (((1, 0), (1, 2)), ((0, 1), (2, 1)), ((0, 0), (2, 2)), ((0, 2), (2, 0))):
        second = np.abs(pad[a0:a0 + bh, a1:a1 + bw] - 2 * centre + pad[b0:b0 + bh, b1:b1 + bw])
        d2 = np.fmax(d2, second)
    finite = cv2.boxFilter(np.isfinite(tc).astype(np.float32), -1, (3, 3), normalize=False,
                           borderType=cv2.BORDER_REPLICATE)
    edge = ((finite > 0) & (finite < 9)) | (d2 > EDGE_REL * np.nan_to_num(tc, nan=np.inf))
    edge = cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    full = cv2.resize(tc, (w, h), interpolation=cv2.INTER_LINEAR).ravel()  # NaN where all around is NaN
    exact = np.repeat(np.repeat(edge, 2, axis=0), 2, axis=1).ravel()
    t[~exact] = full[~exact]
    todo = exact & castable
    t[todo] = field.cast(origin, rays[todo], h0, t_max)
    t[~castable] = np.nan
    return t


def _cast_flat(camera: FrameCamera, rays: np.ndarray, height: float, lmap: LocalMap) -> np.ndarray:
    """Distance along ``rays`` to level ground at geodetic ``height`` (curvature included)."""
    down = -rays[:, 2]
    ok = down > 1e-6
    top = camera.frame.h0 + camera.centre[2]
    t = np.where(ok, (top - height) / np.where(ok, down, 1.0), np.nan)
    for _ in range(3):
        p = camera.centre + t[:, None] * rays
        t = np.where(ok, (top + lmap.curvature(p[:, 0], p[:, 1]) - height) / np.where(ok, down, 1.0), np.nan)
    t[t <= 0] = np.nan
    return t


def _shade(hx: np.ndarray, hy: np.ndarray, sun: tuple[float, float]) -> np.ndarray:
    """Light on a surface of height gradient ``(hx, hy)`` relative to level ground, for the sun
    at ``(azimuth, elevation)`` degrees: Lambert with :data:`AMBIENT`."""
    az, el = (math.radians(v) for v in sun)
    s = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
    n = np.column_stack([-hx, -hy, np.ones_like(hx)])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    lit = AMBIENT + (1 - AMBIENT) * np.maximum(n @ s, 0.0)
    return np.clip(lit / (AMBIENT + (1 - AMBIENT) * s[2]), *SHADE_LIMITS).astype(np.float32)
