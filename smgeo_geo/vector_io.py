"""Writers for detections (GeoJSON, GeoPackage) and heatmaps (GeoTIFF).

Every writer goes through the project's one atomic writer (:mod:`smgeo_model.fileio`):
a temporary file in the destination folder moved into place with :func:`os.replace`,
so readers see the old file or the complete new one, and on error no file (temporary
or final) is left.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from smgeo_geo.coords import CRSLike, to_crs
from smgeo_geo.errors import OptionError, OutputError
from smgeo_geo.result import Detection, detections_to_geodataframe, to_feature_collection
from smgeo_model import fileio


Writer = Callable[[Path], None]
"""Writes one output to the (temporary) path it is given."""


def atomic_path(path: str | os.PathLike):
    """:func:`smgeo_model.fileio.atomic_path` raising :class:`OutputError` for a missing folder."""
    return fileio.atomic_path(path, OutputError)


def write_all(jobs: Sequence[tuple[str | os.PathLike, Writer]]) -> None:
    """Write several outputs all or nothing: each writer fills a temporary file beside its
    target; only when every writer succeeded are they all moved into place. A failing
    writer leaves every target as it was and no temporary file behind."""
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(path)) for path, _ in jobs]
        for tmp, (path, writer) in zip(tmps, jobs):
            try:
                writer(tmp)
            except OSError as exc:
                raise OutputError(f"{path}: cannot be written: {exc}") from exc


def geojson_writer(detections: Sequence[Detection], include_candidates: bool = False) -> Writer:
    """Writer of an RFC 7946 FeatureCollection: WGS84 lon/lat polygons with right-hand
    (counter-clockwise) exterior rings, no ``crs`` member; properties as in
    :meth:`Detection.to_geojson_feature`."""
    return text_writer(json.dumps(to_feature_collection(detections, include_candidates), allow_nan=False, indent=1))


def text_writer(text: str) -> Writer:
    """Writer of ``text`` as UTF-8, flushed to disk before the rename."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    return write


def geopackage_writer(detections: Sequence[Detection], crs: CRSLike | None = None) -> Writer:
    """Writer of a GeoPackage with layers ``detections`` (polygons) and ``centroids`` (points),
    both in the raster CRS shared by all detections (``crs`` is used only when the list
    is empty), attributes query_image, click_x, click_y, score, rank, model_id, reference,
    source_crs, created (+ pixel box, centroid lon/lat, scalar extras)."""
    polys = detections_to_geodataframe(detections, geometry="crs")
    points = detections_to_geodataframe(detections, geometry="crs", centroids=True)
    if not detections and crs is not None:
        polys = polys.set_crs(to_crs(crs).to_wkt(), allow_override=True)
        points = points.set_crs(to_crs(crs).to_wkt(), allow_override=True)

    def write(tmp: Path) -> None:
        import pyogrio

        pyogrio.write_dataframe(polys, tmp, layer="detections", driver="GPKG", geometry_type="Polygon")
        pyogrio.write_dataframe(points, tmp, layer="centroids", driver="GPKG", geometry_type="Point")

    return write


def heatmap_writer(heatmap: np.ndarray, transform, crs: CRSLike) -> Writer:
    """Writer of a float32 ``HxW`` heatmap as a single-band GeoTIFF.

    ``transform``: Affine from heatmap pixels to CRS coordinates of ``crs``; for a heatmap
    over a model input, ``raster.transform @ mapping.affine @ Affine.scale(W_in / W, H_in / H)``
    (``mapping`` from ``read_window``, ``W_in``/``H_in`` the model input size).
    """
    import rasterio

    arr = np.asarray(heatmap, dtype=np.float32)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {arr.shape}")
    profile = dict(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype="float32",
                   crs=rasterio.crs.CRS.from_wkt(to_crs(crs).to_wkt()), transform=transform, compress="deflate")

    def write(tmp: Path) -> None:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr, 1)

    return write


def detections_writer(detections: Sequence[Detection], path: str | os.PathLike) -> Writer:
    """GeoPackage writer for a ``.gpkg`` path, else GeoJSON."""
    if Path(path).suffix.lower() == ".gpkg":
        return geopackage_writer(detections)
    return geojson_writer(detections)


def write_geojson(detections: Sequence[Detection], path: str | os.PathLike,
                  include_candidates: bool = False) -> None:
    """Atomically write the detections as RFC 7946 GeoJSON (see :func:`geojson_writer`)."""
    write_all([(path, geojson_writer(detections, include_candidates))])


def write_geopackage(detections: Sequence[Detection], path: str | os.PathLike,
                     crs: CRSLike | None = None) -> None:
    """Atomically write the detections as a GeoPackage (see :func:`geopackage_writer`)."""
    write_all([(path, geopackage_writer(detections, crs))])


def write_heatmap_geotiff(heatmap: np.ndarray, transform, crs: CRSLike, path: str | os.PathLike) -> None:
    """Atomically write a heatmap GeoTIFF (see :func:`heatmap_writer`)."""
    write_all([(path, heatmap_writer(heatmap, transform, crs))])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_paths(outputs: dict[str, str | os.PathLike | None],
                       inputs: dict[str, str | os.PathLike | None] | None = None) -> None:
    """Refuse, before any work, outputs that cannot be written or would destroy something.

    ``outputs`` / ``inputs``: option name -> path (``None`` = not given). Raises
    :class:`OutputError` for a missing or read-only folder or an output that is a folder,
    :class:`OptionError` for an output that is one of the inputs or another output.
    """
    given = {name: Path(os.path.abspath(os.fspath(p))) for name, p in outputs.items() if p is not None}
    sources = {name: Path(os.path.abspath(os.fspath(p))) for name, p in (inputs or {}).items() if p is not None}
    for name, path in given.items():
        if path.is_dir():
            raise OutputError(f"{name} {path} is a folder; give a file name")
        if not path.parent.is_dir():
            raise OutputError(f"{name} {path}: folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise OutputError(f"{name} {path}: folder {path.parent} is not writable")
        for src_name, src in sources.items():
            if path == src or _same_file(path, src):
                raise OptionError(f"{name} {path} is the {src_name} input; writing it would destroy the input")
    names = list(given)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if given[a] == given[b]:
                raise OptionError(f"{a} and {b} name the same file {given[a]}; give two different files")


def check_output_folder(name: str, folder: str | os.PathLike) -> None:
    """Refuse, before any work, an output folder that cannot be made or written:
    :class:`OutputError` naming option ``name`` when ``folder`` is a file, lies under a file,
    or its nearest existing parent folder is not writable. Nothing is created."""
    folder = Path(os.path.abspath(folder))
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{name} {folder} is a file; give a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{name} {folder}: {existing} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{name} {folder}: folder {existing} is not writable")
