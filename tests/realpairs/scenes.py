"""Small generated inputs for the real-texture pairs: a textured orthophoto GeoTIFF (UTM 33N,
0.5 m), a DSM GeoTIFF (1 m, sloping ground with box-shaped buildings) and the buildings'
footprints as a GeoPackage in WGS84 (another CRS on purpose). Every roof has its own colour,
none of which the ground has, so a pixel's colour says what it sees."""

from __future__ import annotations

from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box

from smgeo_geo.coords import transform_xy

CRS = "EPSG:32633"
EPSG = 32633
ORIGIN = (500000.0, 5000400.0)  # top-left corner of the orthophoto
RES = 0.5
SIZE = 800  # pixels a side (400 m)
GROUND = 100.0  # ground height at the orthophoto's west edge; it rises 2 m per 100 m eastwards
SLOPE = 0.02
# (x0, y0, x1, y1) metres from the orthophoto's bottom-left corner, height above ground, roof RGB, class
BUILDINGS = [
    ((190, 190, 220, 210), 20.0, (200, 30, 30), "building"),
    ((100, 260, 120, 276), 8.0, (40, 60, 210), "building_house"),
    ((280, 110, 300, 135), 12.0, (230, 200, 20), "building"),
    ((260, 280, 272, 292), 6.0, (240, 240, 250), "building_house"),
    ((120, 120, 145, 138), 10.0, (240, 120, 10), "building"),
]
MAIN = 0  # the tall red building


def world(x: float, y: float) -> tuple[float, float]:
    """Orthophoto-local metres (from the bottom-left corner) -> UTM 33N."""
    return ORIGIN[0] + x, ORIGIN[1] - SIZE * RES + y


def ground_height(east: np.ndarray) -> np.ndarray:
    return GROUND + SLOPE * (np.asarray(east, float) - ORIGIN[0])


def footprint(i: int):
    """Building ``i``'s footprint in UTM 33N."""
    (x0, y0, x1, y1), *_ = BUILDINGS[i]
    return box(*world(x0, y0), *world(x1, y1))


def texture(seed: int = 0) -> np.ndarray:
    """Ground: multi-scale green/grey/brown noise with dark bushes and pale paths (no roof colour)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    base = np.array([90, 120, 70], np.float32)
    for scale, weight in ((4, 25), (16, 30), (64, 35)):
        small = rng.random((SIZE // scale + 2, SIZE // scale + 2, 1)).astype(np.float32) - 0.5
        img += weight * cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)[..., None]
    img += base
    for _ in range(250):
        x, y = (int(v) for v in rng.integers(0, SIZE, 2))
        cv2.circle(img, (x, y), int(rng.integers(3, 10)), (40, 70, 35), -1)
    for _ in range(12):
        p = rng.integers(0, SIZE, 4)
        cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), (170, 160, 140), int(rng.integers(3, 8)))
    for (x0, y0, x1, y1), _, rgb, _ in BUILDINGS:
        c0, r0 = int(x0 / RES), int(SIZE - y1 / RES)
        c1, r1 = int(x1 / RES), int(SIZE - y0 / RES)
        roof = np.array(rgb, np.float32) + rng.normal(0, 6, (r1 - r0, c1 - c0, 1)).astype(np.float32)
        roof[(r1 - r0) // 2 - 1:(r1 - r0) // 2 + 1] *= 0.8  # a ridge
        img[r0:r1, c0:c1] = roof
    return np.clip(img, 0, 255).astype(np.uint8)


def write_orthophoto(path: Path, seed: int = 0) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", crs=CRS,
                       transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])) as ds:
        ds.write(texture(seed).transpose(2, 0, 1))
    return path


def write_dsm(path: Path, buildings: bool = True) -> Path:
    """1 m DSM over the orthophoto and 20 m around it: the sloping ground and the boxes."""
    n = int(SIZE * RES) + 40
    x0, top = ORIGIN[0] - 20, ORIGIN[1] + 20
    east = x0 + np.arange(n) + 0.5
    dsm = np.repeat(ground_height(east)[None], n, axis=0)
    if buildings:
        for (bx0, by0, bx1, by1), height, _, _ in BUILDINGS:
            (wx0, wy0), (wx1, wy1) = world(bx0, by0), world(bx1, by1)
            c0, c1 = int(round(wx0 - x0)), int(round(wx1 - x0))
            r0, r1 = int(round(top - wy1)), int(round(top - wy0))
            dsm[r0:r1, c0:c1] = ground_height(east[c0:c1]).max() + height
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=CRS,
                       transform=Affine(1.0, 0, x0, 0, -1.0, top), nodata=-9999.0) as ds:
        ds.write(dsm[None].astype(np.float32))
    return path


def write_footprints(path: Path) -> Path:
    """The buildings' footprints in WGS84 with a ``class`` field."""
    frame = gpd.GeoDataFrame({"class": [b[3] for b in BUILDINGS]}, geometry=[footprint(i) for i in range(len(BUILDINGS))],
                             crs=CRS).to_crs(4326)
    frame.to_file(path, driver="GPKG", layer="buildings")
    return path


def lonlat(x: float, y: float) -> tuple[float, float]:
    (lon,), (lat,) = transform_xy(CRS, 4326, [x], [y])
    return float(lon), float(lat)


def write_town(folder: Path, size: int = 2000, res: float = 0.25, buildings: int = 120, seed: int = 0,
               crs: str = CRS, origin: tuple[float, float] = ORIGIN) -> tuple[Path, Path, Path]:
    """A bigger generated town for benchmarks: ``size`` x ``size`` orthophoto at ``res`` m, random
    box buildings (4-40 m, 3-30 m tall) with their DSM (``res`` x 2 cells) and footprints
    GeoPackage. Returns (orthophoto, DSM, footprints)."""
    rng = np.random.default_rng(seed)
    side = size * res
    img = np.zeros((size, size, 3), np.float32)
    for scale, weight in ((4, 25), (16, 30), (64, 35), (256, 30)):
        small = rng.random((size // scale + 2, size // scale + 2, 1)).astype(np.float32) - 0.5
        img += weight * cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
    img += np.array([90, 120, 70], np.float32)
    for _ in range(size // 3):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, (x, y), int(rng.integers(3, 12)), (40, 70, 35), -1)
    for _ in range(size // 60):
        p = rng.integers(0, size, 4)
        cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), (150, 150, 150), int(rng.integers(8, 30)))
    cell = 2 * res
    n = int(side / cell)
    dsm = np.full((n, n), GROUND, np.float64)
    polys, classes = [], []
    for _ in range(buildings):
        w, h = rng.uniform(4, 40, 2)
        x0, y0 = rng.uniform(10, side - 50, 2)
        x0, y0 = round(x0 / cell) * cell, round(y0 / cell) * cell
        x1, y1 = x0 + round(w / cell) * cell, y0 + round(h / cell) * cell
        c0, r0, c1, r1 = int(x0 / res), int(size - y1 / res), int(x1 / res), int(size - y0 / res)
        rgb = rng.integers(60, 250, 3).astype(np.float32)
        img[r0:r1, c0:c1] = rgb + rng.normal(0, 6, (r1 - r0, c1 - c0, 1)).astype(np.float32)
        dsm[int(n - y1 / cell):int(n - y0 / cell), int(x0 / cell):int(x1 / cell)] = GROUND + rng.uniform(3, 30)
        polys.append(box(origin[0] + x0, origin[1] - side + y0, origin[0] + x1, origin[1] - side + y1))
        classes.append("building")
    ortho, dsm_path, fp = folder / "town.tif", folder / "town_dsm.tif", folder / "town.gpkg"
    with rasterio.open(ortho, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=crs,
                       transform=Affine(res, 0, origin[0], 0, -res, origin[1]), tiled=True) as ds:
        ds.write(np.clip(img, 0, 255).astype(np.uint8).transpose(2, 0, 1))
    with rasterio.open(dsm_path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=crs,
                       transform=Affine(cell, 0, origin[0], 0, -cell, origin[1])) as ds:
        ds.write(dsm[None].astype(np.float32))
    gpd.GeoDataFrame({"class": classes}, geometry=polys, crs=crs).to_file(fp, driver="GPKG")
    return ortho, dsm_path, fp
