"""Atomic writers for detections (GeoJSON, GeoPackage) and heatmaps (GeoTIFF).

Every writer writes a temporary file in the destination folder and moves it into
place with :func:`os.replace`: readers see the old file or the complete new one,
never a half-written file, and on error no file (temporary or final) is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Iterator, Sequence

import numpy as np

from smgeo_geo.coords import CRSLike, to_crs
from smgeo_geo.errors import OutputError
from smgeo_geo.result import Detection, detections_to_geodataframe, to_feature_collection


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a fresh temporary path next to ``path`` (same extension, not created);
    on success it replaces ``path``, on error it is removed."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: folder {folder} does not exist")
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.{uuid.uuid4().hex[:12]}.tmp{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm", tmp + ".aux.xml"):
            if os.path.exists(leftover):
                os.remove(leftover)


def write_geojson(detections: Sequence[Detection], path: str | os.PathLike,
                  include_candidates: bool = False) -> None:
    """Write an RFC 7946 FeatureCollection: WGS84 lon/lat polygons with right-hand
    (counter-clockwise) exterior rings, no ``crs`` member; properties as in
    :meth:`Detection.to_geojson_feature`."""
    text = json.dumps(to_feature_collection(detections, include_candidates), allow_nan=False, indent=1)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def write_geopackage(detections: Sequence[Detection], path: str | os.PathLike,
                     crs: CRSLike | None = None) -> None:
    """Write a GeoPackage with layers ``detections`` (polygons) and ``centroids`` (points),
    both in the raster CRS shared by all detections (``crs`` is used only when the list
    is empty), attributes query_image, click_x, click_y, score, rank, model_id, reference,
    source_crs, created (+ pixel box, centroid lon/lat, scalar extras)."""
    import pyogrio

    polys = detections_to_geodataframe(detections, geometry="crs")
    points = detections_to_geodataframe(detections, geometry="crs", centroids=True)
    if not detections and crs is not None:
        polys = polys.set_crs(to_crs(crs).to_wkt(), allow_override=True)
        points = points.set_crs(to_crs(crs).to_wkt(), allow_override=True)
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(polys, tmp, layer="detections", driver="GPKG", geometry_type="Polygon")
        pyogrio.write_dataframe(points, tmp, layer="centroids", driver="GPKG", geometry_type="Point")


def write_heatmap_geotiff(heatmap: np.ndarray, transform, crs: CRSLike, path: str | os.PathLike) -> None:
    """Write a float32 ``HxW`` heatmap as a single-band GeoTIFF.

    ``transform``: Affine from heatmap pixels to CRS coordinates of ``crs``; for a heatmap
    over a model input, ``raster.transform @ mapping.affine @ Affine.scale(W_in / W, H_in / H)``
    (``mapping`` from ``read_window``, ``W_in``/``H_in`` the model input size).
    """
    import rasterio

    arr = np.asarray(heatmap, dtype=np.float32)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {arr.shape}")
    crs_wkt = to_crs(crs).to_wkt()
    profile = dict(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype="float32",
                   crs=rasterio.crs.CRS.from_wkt(crs_wkt), transform=transform, compress="deflate")
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr, 1)
