"""Tiny real GeoTIFFs (seeded) in many CRSs, dtypes and georeferencing states."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

W, H = 64, 48  # non-square on purpose: catches x/y swaps


def from_origin(west: float, north: float, xres: float, yres: float) -> Affine:
    """North-up geotransform, top-left corner at (west, north)."""
    return Affine.translation(west, north) @ Affine.scale(xres, -yres)

# name -> (CRS, geotransform); one per CRS family the library must handle.
GEOREF = {
    "utm33n": ("EPSG:32633", from_origin(400_000, 5_000_000, 0.5, 0.5)),
    "utm33s": ("EPSG:32733", from_origin(600_000, 7_000_000, 0.5, 0.5)),
    "webmerc": ("EPSG:3857", from_origin(1_000_000, 6_000_000, 0.6, 0.6)),
    "wgs84": ("EPSG:4326", from_origin(10.0, 60.0, 5e-6, 5e-6)),
    "swiss": ("EPSG:2056", from_origin(2_600_000, 1_200_000, 0.25, 0.25)),
    "british": ("EPSG:27700", from_origin(530_000, 180_000, 0.25, 0.25)),
    "rotated": ("EPSG:32633", Affine.translation(400_000, 5_000_000) @ Affine.rotation(30) @ Affine.scale(0.5, -0.5)),
}


def write_tif(path: Path, data: np.ndarray, crs=None, transform=None, nodata=None, **extra) -> Path:
    """Write ``data`` (bands x H x W) as a GeoTIFF; ``crs``/``transform`` None -> omitted."""
    profile = dict(driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                   dtype=data.dtype.name, nodata=nodata, **extra)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


def rgb8(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)


@pytest.fixture(scope="session")
def georef_tifs(tmp_path_factory) -> dict[str, Path]:
    """One 3-band uint8 GeoTIFF per entry of GEOREF."""
    d = tmp_path_factory.mktemp("georef")
    return {name: write_tif(d / f"{name}.tif", rgb8(i), crs, tr) for i, (name, (crs, tr)) in enumerate(GEOREF.items())}


@pytest.fixture(scope="session")
def variants(tmp_path_factory) -> dict[str, Path]:
    """uint8/uint16/float32/nodata/no-georef/no-CRS variants, all UTM 33N."""
    d = tmp_path_factory.mktemp("variants")
    crs, tr = GEOREF["utm33n"]
    rng = np.random.default_rng(42)
    u16 = rng.integers(1000, 5001, (3, H, W)).astype(np.uint16)
    u16_nd = u16.copy()
    u16_nd[:, :10, :] = 0  # top 10 rows are nodata
    f32 = rng.normal(0.3, 0.1, (1, H, W)).astype(np.float32)
    f32[0, 5, 7] = np.nan
    gradient = np.broadcast_to((np.arange(W, dtype=np.uint8) * 3)[None, None, :], (3, H, W)).copy()
    gradient[1] = (np.arange(H, dtype=np.uint8) * 5)[:, None]  # band 2 varies with the row
    return {
        "uint8": write_tif(d / "uint8.tif", rgb8(7), crs, tr),
        "gradient": write_tif(d / "gradient.tif", gradient, crs, tr),
        "uint16": write_tif(d / "uint16.tif", u16, crs, tr),
        "uint16_nodata": write_tif(d / "uint16_nodata.tif", u16_nd, crs, tr, nodata=0),
        "float32": write_tif(d / "float32.tif", f32, crs, tr),
        "five_band": write_tif(d / "five_band.tif", rng.integers(0, 256, (5, H, W), dtype=np.uint8), crs, tr),
        "no_georef": write_tif(d / "no_georef.tif", rgb8(3)),
        "no_crs": write_tif(d / "no_crs.tif", rgb8(4), None, tr),
    }
