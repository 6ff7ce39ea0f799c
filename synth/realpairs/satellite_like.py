"""Satellite-like copies of a real orthophoto: coarser pixels, another season's colours, haze;
and a coarse terrain model from a DSM.

Benchmarks and tests use them to ask how locating holds when the reference is not the drone
survey's own orthophoto but something a satellite would give: the same place at 0.5 m pixels,
in autumn colours or through haze. The copy keeps the orthophoto's CRS, bounds, band count,
data type and nodata; only the pixel size and the first three bands' values change.
:func:`coarse_terrain` does the same for a DSM's heights: a 30 m terrain model (SRTM,
Copernicus), which users often have instead of a DSM. :func:`in_mosaic` puts the orthophoto
inside a larger mosaic, nodata around it, as a survey sits in an organisation's basemap.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.errors import OptionError, OutputError
from smgeo_model.fileio import atomic_path

TINTS = ("none", "autumn", "haze")
AUTUMN_GAIN = (1.10, 0.95, 0.80)  # R, G, B: warmer
AUTUMN_PALE = 0.4  # share of each pixel's grey mixed in (paler)
AUTUMN_GAMMA = 1.3  # > 1: darker mid-tones
HAZE_SHARE, HAZE_LEVEL = 0.3, 200.0  # haze: this share of every pixel becomes a bright grey


def satellite_like(ortho: str | os.PathLike, out: str | os.PathLike, metres: float, tint: str = "none") -> Path:
    """Write ``ortho`` box-averaged to ``metres`` pixels (in the CRS's units along x) as the
    GeoTIFF ``out`` (written atomically), its RGB bands in ``tint`` colours (:data:`TINTS`)."""
    if tint not in TINTS:
        raise OptionError(f"tint must be one of {', '.join(TINTS)}, got {tint!r}")
    with rasterio.open(ortho) as src:
        factor = metres / abs(src.transform.a)
        if not factor >= 1.0:
            raise OptionError(f"{ortho} has {abs(src.transform.a):g} pixels; a satellite-like copy must be coarser, "
                              f"got {metres:g}")
        w, h = max(1, round(src.width / factor)), max(1, round(src.height / factor))
        data = src.read(out_shape=(src.count, h, w), resampling=Resampling.average)
        profile = {**src.profile, "driver": "GTiff", "width": w, "height": h,
                   "transform": src.transform @ Affine.scale(src.width / w, src.height / h)}
    rgb = data[:3].astype(np.float32)
    if tint == "autumn":
        rgb = rgb * np.array(AUTUMN_GAIN, np.float32)[:, None, None]
        rgb = (1 - AUTUMN_PALE) * rgb + AUTUMN_PALE * rgb.mean(0, keepdims=True)
        rgb = 255 * (np.clip(rgb, 0, 255) / 255) ** AUTUMN_GAMMA
    elif tint == "haze":
        rgb = (1 - HAZE_SHARE) * rgb + HAZE_SHARE * HAZE_LEVEL
    data[:3] = np.clip(rgb, 0, 255).astype(data.dtype)
    with atomic_path(out, OutputError) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
    return Path(out)


def coarse_terrain(dem: str | os.PathLike, out: str | os.PathLike, metres: float) -> Path:
    """Write ``dem`` box-averaged to ``metres`` cells (in the CRS's units along x; nodata cells
    left out of the averages and kept) as the GeoTIFF ``out`` (written atomically): buildings,
    trees and narrow valleys smoothed away, as in a coarse terrain model."""
    with rasterio.open(dem) as src:
        factor = metres / abs(src.transform.a)
        if not factor >= 1.0:
            raise OptionError(f"{dem} has {abs(src.transform.a):g} cells; a coarse copy must be coarser, got {metres:g}")
        w, h = max(2, round(src.width / factor)), max(2, round(src.height / factor))
        heights = src.read(1, out_shape=(h, w), resampling=Resampling.average, masked=True)
        profile = {k: v for k, v in src.profile.items() if k not in ("blockxsize", "blockysize", "tiled")}
        profile.update(driver="GTiff", width=w, height=h,
                       transform=src.transform @ Affine.scale(src.width / w, src.height / h))
    with atomic_path(out, OutputError) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(heights.filled(profile.get("nodata", np.nan)).astype(profile["dtype"]), 1)
    return Path(out)


def in_mosaic(ortho: str | os.PathLike, out: str | os.PathLike, pad_px: int) -> Path:
    """Write ``ortho`` inside a mosaic ``pad_px`` pixels larger on every side, on the same grid
    (same CRS, pixel size and alignment), nodata 0 around it, as the GeoTIFF ``out`` (written
    atomically; tiled and sparse: the empty tiles are never written, so a large mosaic costs
    little disk)."""
    if isinstance(pad_px, bool) or not isinstance(pad_px, int) or pad_px < 1:
        raise OptionError(f"mosaic padding must be a positive number of pixels, got {pad_px!r}")
    with rasterio.open(ortho) as src:
        data = src.read()
        t = src.transform
        profile = {**src.profile, "driver": "GTiff", "width": src.width + 2 * pad_px,
                   "height": src.height + 2 * pad_px, "transform": t * Affine.translation(-pad_px, -pad_px),
                   "nodata": 0, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
                   "SPARSE_OK": True}
    with atomic_path(out, OutputError) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, window=Window(pad_px, pad_px, data.shape[2], data.shape[1]))
    return Path(out)


__all__ = ["TINTS", "coarse_terrain", "in_mosaic", "satellite_like"]
