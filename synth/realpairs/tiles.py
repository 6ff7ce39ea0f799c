"""Satellite tiles cut from the orthophoto: north-up squares of the work CRS, named as CVOGL
names them (``<easting>_<northing>_<extent>_<EPSG>.jpg``, centre in whole metres).

A tile's pixels are a function of its centre alone (the orthophoto resampled to the tile's
grid, then :func:`smgeo_synth.sensor.satellite_sensor` seeded by the dataset seed and the
centre), so two pairs that happen to draw the same centre share one file, as CVOGL's pairs
share tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.coords import transform_xy
from smgeo_geo.raster import ReferenceRaster
from smgeo_synth.realpairs.targets import Overview, Target

MARGIN_PX = 4  # a target's box keeps this far from the tile's edges
MIN_TILE_VALID = 0.97  # least share of a tile on valid orthophoto pixels
CENTRE_TRIES = 16
VALID_GRID = 24  # points a side a tile's valid share is estimated on
MAP_GRID = 9  # points a side of the exact tile -> orthophoto conversions fitted
MAX_MAP_RESIDUAL_PX = 0.05


@dataclass(frozen=True)
class TileSpec:
    """Tiles of ``size`` pixels a side covering ``extent`` metres of ``EPSG:epsg``."""

    epsg: int
    extent: float
    size: int

    @property
    def res(self) -> float:
        return self.extent / self.size

    def transform(self, easting: float, northing: float) -> Affine:
        """Tile pixel -> work CRS for the tile centred at ``(easting, northing)``."""
        return Affine(self.res, 0.0, easting - self.extent / 2, 0.0, -self.res, northing + self.extent / 2)

    def box(self, target: Target, easting: float, northing: float) -> tuple[float, float, float, float]:
        """The target's envelope in tile pixels ``(x1, y1, x2, y2)``, clipped to the tile."""
        x0, y0, x1, y1 = target.polygon.bounds
        inv = ~self.transform(easting, northing)
        (c0, c1), (r0, r1) = inv @ (np.array([x0, x1]), np.array([y1, y0]))
        s = float(self.size)
        return (float(np.clip(c0, 0, s)), float(np.clip(r0, 0, s)), float(np.clip(c1, 0, s)), float(np.clip(r1, 0, s)))

    def valid_share(self, overview: Overview, easting: float, northing: float) -> float:
        t = (np.arange(VALID_GRID) + 0.5) / VALID_GRID * self.size
        u, v = np.meshgrid(t, t)
        xs, ys = self.transform(easting, northing) @ (u.ravel(), v.ravel())
        return float(overview.valid_at(xs, ys, self.epsg).mean())


def choose_centre(rng: np.random.Generator, target: Target, spec: TileSpec, overview: Overview,
                  ortho_bounds: tuple[float, float, float, float] | None = None) -> tuple[int, int] | None:
    """A whole-metre tile centre holding ``target`` at a random place (its box at least
    :data:`MARGIN_PX` from the edges) on a tile at least :data:`MIN_TILE_VALID` valid;
    ``ortho_bounds`` (work CRS) narrows the draws. None when no draw qualifies."""
    x0, y0, x1, y1 = target.polygon.bounds
    half = spec.extent / 2
    m = MARGIN_PX * spec.res + 1.0  # +1 m: the centre is rounded to whole metres
    lo_e, hi_e = x1 - half + m, x0 + half - m
    lo_n, hi_n = y1 - half + m, y0 + half - m
    if ortho_bounds is not None:  # keep the tile inside the orthophoto's envelope where possible
        b = ortho_bounds
        if b[2] - b[0] >= spec.extent:
            lo_e, hi_e = max(lo_e, b[0] + half), min(hi_e, b[2] - half)
        if b[3] - b[1] >= spec.extent:
            lo_n, hi_n = max(lo_n, b[1] + half), min(hi_n, b[3] - half)
    if hi_e < lo_e or hi_n < lo_n:
        lo_e, hi_e = x1 - half + m, x0 + half - m
        lo_n, hi_n = y1 - half + m, y0 + half - m
        if hi_e < lo_e or hi_n < lo_n:
            return None
    for _ in range(CENTRE_TRIES):
        e = int(round(rng.uniform(lo_e, hi_e)))
        n = int(round(rng.uniform(lo_n, hi_n)))
        if spec.valid_share(overview, e, n) >= MIN_TILE_VALID:
            return e, n
    return None


def _fit(u: np.ndarray, v: np.ndarray, target: np.ndarray, size: float) -> tuple[np.ndarray, float]:
    a = np.stack([np.ones_like(u), u / size, v / size, (u / size) ** 2, u * v / size ** 2, (v / size) ** 2], -1)
    coeffs, *_ = np.linalg.lstsq(a, target, rcond=None)
    return coeffs, float(np.abs(a @ coeffs - target).max())


def cut_tile(raster: ReferenceRaster, spec: TileSpec, easting: float, northing: float) -> tuple[np.ndarray, np.ndarray]:
    """The tile centred at ``(easting, northing)``: float32 RGB in [0, 1] ``(size, size, 3)``
    and its valid mask. The orthophoto is read over the tile at about the tile's resolution
    (averaged when finer) and resampled bilinearly; the map tile pixel -> orthophoto pixel is
    a quadratic fitted to exact conversions (exact when the CRSs agree)."""
    s = spec.size
    t = np.linspace(0, s, MAP_GRID)
    u, v = (a.ravel() for a in np.meshgrid(t, t))
    xs, ys = spec.transform(easting, northing) @ (u, v)
    ox, oy = transform_xy(spec.epsg, raster.crs, xs, ys)
    cols, rows = ~raster.transform @ (np.asarray(ox), np.asarray(oy))
    coeffs, residual = _fit(u, v, np.column_stack([cols, rows]), s)
    if residual > MAX_MAP_RESIDUAL_PX:  # a tile far larger than projections stay smooth over
        raise ValueError(f"tile -> orthophoto map is not smooth enough (residual {residual:.3f} px)")
    c0, c1 = math.floor(cols.min()) - 2, math.ceil(cols.max()) + 2
    r0, r1 = math.floor(rows.min()) - 2, math.ceil(rows.max()) + 2
    win = Window(c0, r0, c1 - c0, r1 - r0)
    jac = coeffs[1:3].T / s  # d(col, row) / d(u, v): orthophoto pixels per tile pixel
    step = max(1.0, float(np.linalg.svd(jac, compute_uv=False)[-1]))  # read no finer than the tile
    out = (max(2, round(win.width / step)), max(2, round(win.height / step)))
    image, valid, mapping = raster.read_window_with_mask(
        win, out, Resampling.average if step > 1 else Resampling.nearest)
    g = np.arange(s) + 0.5
    gu, gv = np.meshgrid(g, g)
    a = np.stack([np.ones_like(gu), gu / s, gv / s, (gu / s) ** 2, gu * gv / s ** 2, (gv / s) ** 2], -1)
    mapped = a @ coeffs
    mu, mv = mapping.to_model(mapped[..., 0], mapped[..., 1])
    mx, my = (mu - 0.5).astype(np.float32), (mv - 0.5).astype(np.float32)
    tile = cv2.remap(image.astype(np.float32) / 255.0, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=(0, 0, 0))
    ok = cv2.remap(valid.astype(np.uint8), mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                   borderValue=0) > 0
    return tile, ok
