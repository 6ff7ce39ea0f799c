"""The ground a photo's rays meet: flat at a known height, or a DSM/DEM raster (any CRS).

Heights are metres in the vertical frame of the photo's altitude (what DJI writes as
AbsoluteAltitude; a DEM given with ``--dem`` is taken to be in the same frame). Positions
are WGS84 lon/lat degrees (x = lon). :func:`intersect_rays` casts photo rays onto either.

A DEM is read in windows (rasterio), only around the points asked for, so a country-wide
DEM costs no more than the area a photo sees. Nodata / NaN cells are holes (NaN heights).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.camera import FrameCamera
from smgeo_geo.coords import crs_string, to_crs, transform_xy
from smgeo_geo.errors import CRSError, RasterError

RAYS_PER_PASS = 256  # rays marched together (memory: rays x samples x 3 floats)
MARCH_FIRST_M = 400.0  # metres of the first marching segment (then 4x longer each)
MAX_DEM_WINDOW = 4096  # pixels a side read at full resolution; larger areas are read decimated


@dataclass(frozen=True)
class FlatTerrain:
    """Level ground at ``height`` metres; ``sigma_m``: 1-sigma of that height (for error budgets)."""

    height: float
    sigma_m: float = 3.0
    name: str = "flat ground"

    def heights(self, lon, lat) -> np.ndarray:
        return np.full(np.shape(lon), float(self.height))


class DemTerrain:
    """Heights from a DSM/DEM raster (any CRS GDAL reads), bilinear, windowed reads.

    ``sigma_m``: 1-sigma of the DEM heights (for error budgets). Use as a context manager
    or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, sigma_m: float = 1.0) -> None:
        self.path = os.fspath(path)
        self.sigma_m = float(sigma_m)
        self.name = f"DEM {os.path.basename(self.path)}"
        if not os.path.exists(self.path) and "://" not in self.path and not self.path.startswith("/vsi"):
            raise RasterError(f"DEM {self.path}: no such file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._ds = rasterio.open(self.path)
        except (rasterio.errors.RasterioError, OSError) as exc:
            raise RasterError(f"DEM {self.path}: cannot open as a raster: {exc}") from exc
        try:
            if self._ds.crs is None or self._ds.transform.is_identity:
                raise RasterError(f"DEM {self.path}: has no CRS / geotransform; heights cannot be placed")
            if np.dtype(self._ds.dtypes[0]).kind not in "iuf":
                raise RasterError(f"DEM {self.path}: data type {self._ds.dtypes[0]} is not a height")
            try:
                self.crs = to_crs(self._ds.crs)
                transform_xy(self.crs, 4326, [self._ds.bounds.left], [self._ds.bounds.top])
            except CRSError as exc:
                raise CRSError(f"DEM {self.path}: {exc}") from exc
        except BaseException:
            self._ds.close()
            raise
        self._cache: tuple[Window, np.ndarray, rasterio.Affine] | None = None

    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> "DemTerrain":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DemTerrain({self.path!r}, {crs_string(self.crs)})"

    def _load(self, cols: np.ndarray, rows: np.ndarray) -> None:
        """Make the cached window cover the DEM pixels ``(cols, rows)`` (with a margin)."""
        c0, c1 = math.floor(np.nanmin(cols)) - 8, math.ceil(np.nanmax(cols)) + 8
        r0, r1 = math.floor(np.nanmin(rows)) - 8, math.ceil(np.nanmax(rows)) + 8
        if self._cache is not None:
            win = self._cache[0]
            if win.col_off <= c0 and win.row_off <= r0 and c1 <= win.col_off + win.width and r1 <= win.row_off + win.height:
                return
            # grow the cached window to hold both (the footprint, then the click, then the footprint
            # again ...) as long as it stays readable at full resolution
            u0, u1 = min(c0, win.col_off), max(c1, win.col_off + win.width)
            v0, v1 = min(r0, win.row_off), max(r1, win.row_off + win.height)
            if max(u1 - u0, v1 - v0) <= MAX_DEM_WINDOW:
                c0, c1, r0, r1 = u0, u1, v0, v1
        if self._ds.width <= MAX_DEM_WINDOW and self._ds.height <= MAX_DEM_WINDOW:
            c0, c1, r0, r1 = 0, self._ds.width, 0, self._ds.height  # a small DEM is read once, whole
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, self._ds.width), min(r1, self._ds.height)
        if c1 <= c0 or r1 <= r0:
            self._cache = None
            return
        win = Window(c0, r0, c1 - c0, r1 - r0)
        step = max(1.0, max(win.width, win.height) / MAX_DEM_WINDOW)
        shape = (max(1, round(win.height / step)), max(1, round(win.width / step)))
        data = self._ds.read(1, window=win, out_shape=shape, resampling=Resampling.bilinear, masked=True)
        heights = np.ma.filled(data.astype(np.float64), np.nan)
        transform = self._ds.window_transform(win) @ rasterio.Affine.scale(win.width / shape[1], win.height / shape[0])
        self._cache = (win, heights, transform)

    def heights(self, lon, lat) -> np.ndarray:
        """DEM heights (metres) at WGS84 points, bilinear; NaN outside the DEM or on nodata."""
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        flat_lon, flat_lat = lon.reshape(-1), lat.reshape(-1)
        out = np.full(flat_lon.shape, np.nan)
        ok = np.isfinite(flat_lon) & np.isfinite(flat_lat)
        if not ok.any():
            return out.reshape(lon.shape)
        xs, ys = transform_xy(4326, self.crs, flat_lon[ok], flat_lat[ok])
        cols, rows = ~self._ds.transform @ (xs, ys)
        self._load(np.asarray(cols), np.asarray(rows))
        if self._cache is None:
            return out.reshape(lon.shape)
        _, grid, transform = self._cache
        u, v = ~transform @ (xs, ys)
        u, v = np.asarray(u) - 0.5, np.asarray(v) - 0.5  # to cell-centre coordinates
        out[ok] = _bilinear(grid, u, v)
        return out.reshape(lon.shape)


def _bilinear(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``grid`` at cell-centre coordinates ``(u=col, v=row)``; NaN outside
    or where a corner is NaN."""
    h, w = grid.shape
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    inside = (u0 >= 0) & (v0 >= 0) & (u0 + 1 < w) & (v0 + 1 < h)
    # clamp-at-edge for points within half a cell of the border
    edge = ~inside & (u >= -0.5) & (v >= -0.5) & (u <= w - 0.5) & (v <= h - 0.5)
    out = np.full(u.shape, np.nan)
    a, b = u - u0, v - v0
    i = inside
    g00, g01 = grid[v0[i], u0[i]], grid[v0[i], u0[i] + 1]
    g10, g11 = grid[v0[i] + 1, u0[i]], grid[v0[i] + 1, u0[i] + 1]
    out[i] = (g00 * (1 - a[i]) + g01 * a[i]) * (1 - b[i]) + (g10 * (1 - a[i]) + g11 * a[i]) * b[i]
    out[edge] = grid[np.clip(np.rint(v[edge]).astype(int), 0, h - 1), np.clip(np.rint(u[edge]).astype(int), 0, w - 1)]
    return out


def intersect_rays(camera: FrameCamera, pixels, terrain, max_range_m: float = 3000.0,
                   step_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where the rays of photo ``pixels`` ``(N, 2)`` first meet ``terrain``.

    Returns local ENU points ``(N, 3)`` (camera.frame) and a mask of rays that met the
    ground within ``max_range_m``. See :func:`cast_rays`.
    """
    rays = camera.rays(pixels)
    return cast_rays(camera.frame, np.broadcast_to(camera.centre, rays.shape), rays, terrain, max_range_m, step_m)


def cast_rays(frame, origins: np.ndarray, rays: np.ndarray, terrain, max_range_m: float = 3000.0,
              step_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where rays from ``origins`` ``(N, 3)`` along unit ``rays`` ``(N, 3)`` (local ENU metres
    of ``frame``) first meet ``terrain``: points ``(N, 3)`` and a hit mask.

    Flat ground is solved exactly (on the ellipsoid-following height, by a few fixed-point
    steps); a DEM by marching along each ray in steps of ``step_m`` (default 2 m), then again
    in steps of a twentieth around the first crossing, which is refined linearly. A surface
    thinner than ``step_m`` along the ray can be missed. Rays of several cameras (one frame)
    go in one call: one coordinate transform and one height lookup per pass.
    """
    rays = np.asarray(rays, float)
    origins = np.asarray(origins, float)
    n = len(rays)
    points = np.full((n, 3), np.nan)
    if isinstance(terrain, FlatTerrain):
        down = rays[:, 2] < -1e-9
        dz = np.where(down, rays[:, 2], -1)
        t = np.where(down, (terrain.height - frame.h0 - origins[:, 2]) / dz, np.nan)
        for _ in range(3):  # height above h0 in the local frame ~ z + curvature: iterate exactly
            pts = origins + t[:, None] * rays
            _, _, h = frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
            t = t + (terrain.height - h) / dz
        pts = origins + t[:, None] * rays
        hit = down & (t > 0) & (t <= max_range_m)
        points[hit] = pts[hit]
        return points, hit
    step = step_m or 2.0
    t = np.full(n, np.nan)
    # march in growing segments (each starts on the last sample of the one before), so a ray that
    # meets the ground near the camera is not sampled out to the full range
    near, far = 0.0, min(max_range_m, MARCH_FIRST_M)
    todo = np.arange(n)
    while len(todo):
        ts = np.arange(near, far + step, step)
        ts = ts[ts <= max(far, near + step)]
        for start in range(0, len(todo), RAYS_PER_PASS):
            part = todo[start:start + RAYS_PER_PASS]
            t[part] = _first_crossings(frame, origins[part], rays[part], terrain,
                                       np.broadcast_to(ts, (len(part), len(ts))))
        if far >= max_range_m:
            break
        todo = todo[~np.isfinite(t[todo])]
        near, far = float(ts[-1]), min(max_range_m, 4.0 * far)
    found = np.isfinite(t)
    if found.any():
        # refine each bracket to step / 20: 41 samples from one step before to one step after
        fine = np.maximum(0.0, t[found] - step)[:, None] + np.linspace(0.0, 2 * step, 41)[None, :]
        t[found] = _first_crossings(frame, origins[found], rays[found], terrain, fine)
    hit = np.isfinite(t)
    points[hit] = origins[hit] + t[hit, None] * rays[hit]
    return points, hit


def _first_crossings(frame, origins: np.ndarray, rays: np.ndarray, terrain, ts: np.ndarray) -> np.ndarray:
    """Distance along each ray ``(N, 3)`` from its origin ``(N, 3)`` where it first goes from above to below the terrain
    (linear interpolation between its samples ``ts[i]``, ``(N, T)`` metres), NaN where it
    does not. All rays are sampled in one pass: one coordinate transform, one height lookup."""
    n, m = ts.shape
    out = np.full(n, np.nan)
    if n == 0:
        return out
    pts = origins[:, None, :] + ts[:, :, None] * rays[:, None, :]
    lon, lat, h = frame.to_lonlat(pts[..., 0].ravel(), pts[..., 1].ravel(), pts[..., 2].ravel())
    above = (np.asarray(h) - terrain.heights(lon, lat)).reshape(n, m)
    valid = np.isfinite(above)
    cross = valid[:, 1:] & valid[:, :-1] & (above[:, :-1] > 0) & (above[:, 1:] <= 0)
    has = cross.any(axis=1)
    k = np.argmax(cross, axis=1)[has]
    rows = np.nonzero(has)[0]
    a0, a1 = above[rows, k], above[rows, k + 1]
    f = a0 / (a0 - a1)
    out[rows] = ts[rows, k] + f * (ts[rows, k + 1] - ts[rows, k])
    return out
