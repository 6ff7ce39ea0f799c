"""Write real-texture pairs in the CVOGL layout, as ``smgeo synth`` writes its pairs.

``out_root/<name>/`` gets ``query/<index>.jpg``, ``satellite/<E>_<N>_<extent>_<EPSG>.jpg`` (plus a
GeoTIFF with the same stem and pixels), ``manifest.json`` (sources, options, the work CRS,
counts and, per pair, the drawn camera, sun, season and target) and the list files
``<name>_{train,val,test}.pth`` (:func:`smgeo_model.data.write_split`). List items: ``(id,
query file, satellite file, drone heading in degrees, (click x, y) query px, [x1, y1, x2, y2]
satellite px, target area m^2, class)``.

Every pair depends only on ``(seed, pair index)``, the inputs and the options, so any number of
worker processes writes the same bytes. Images first, the manifest next, the lists last (each
written atomically through :mod:`smgeo_model.fileio`), so an interrupted run never leaves a list
pointing at missing images.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from smgeo_geo.adapt import DEFAULT_REGION_M
from smgeo_geo.coords import transform_xy
from smgeo_geo.errors import OptionError, OutputError
from smgeo_synth.realpairs.pair import SUPERSAMPLE, PairContext, render_real_pair
from smgeo_synth.realpairs.render import Surface
from smgeo_synth.realpairs.targets import Overview, footprint_targets, salient_targets, work_epsg
from smgeo_synth.realpairs.tiles import MARGIN_PX, TileSpec
from smgeo_synth.dataset import (DATASET_NAME, FIELDS, SPLITS, encode_jpeg, map_in_order, prepare_folder,
                                     split_assignment)
from smgeo_synth.georef import geotiff_from_jpeg, satellite_name
from smgeo_model.fileio import write_bytes, write_text

REALPAIRS_VERSION = "1.0.0"
CVOGL_EXTENT_M = 512.0  # CVOGL's tile width; the default tile is this or smaller
ORTHO_SHARE = 0.8  # the default tile spans at most this share of the orthophoto's shorter side
MAX_TARGET_SHARE = 0.6  # a target spans at most this share of the tile


def _options(pairs, seed, name, reference_size, query_size, ground_resolution, region_size, splits, workers,
             sensor) -> tuple[tuple[int, int], tuple[float, float, float]]:
    def whole(value, what, lo, hi):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
            raise OptionError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")

    whole(pairs, "--pairs", 1, 10_000_000)
    whole(seed, "--seed", 0, 2**63 - 1)
    whole(workers, "--workers", 1, 1024)
    whole(reference_size, "--reference-size", 64, 8192)
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise OptionError(f"--name {name!r} must be letters, digits, '_', '-' or '.' (e.g. REAL_DroneAerial)")
    q = (query_size, query_size) if isinstance(query_size, (int, np.integer)) else tuple(query_size)
    if len(q) != 2:
        raise OptionError(f"--query-size must be N or HxW, got {query_size!r}")
    for v in q:
        whole(v, "--query-size", 32, 4096)
    if ground_resolution is not None and not (isinstance(ground_resolution, (int, float))
                                              and 0.01 <= ground_resolution <= 10):
        raise OptionError(f"--ground-resolution must be 0.01 to 10 m per pixel, got {ground_resolution!r}")
    if not (isinstance(region_size, (int, float)) and 2 <= region_size <= 1000):
        raise OptionError(f"--region-size must be 2 to 1000 m, got {region_size!r}")
    if not (isinstance(sensor, (int, float)) and 0 <= sensor <= 2):
        raise OptionError(f"--sensor must be 0 to 2, got {sensor!r}")
    if len(splits) != 3 or any(not np.isfinite(f) or f < 0 for f in splits) or sum(splits) <= 0:
        raise OptionError(f"--splits must be three non-negative fractions (train, val, test), got {splits!r}")
    return (int(q[0]), int(q[1])), tuple(float(f) for f in splits)  # type: ignore[return-value]


def _ortho_bounds(surface: Surface, epsg: int) -> tuple[float, float, float, float]:
    """The orthophoto's envelope in the work CRS (its outline densified)."""
    o = surface.ortho
    t = np.linspace(0, 1, 17)
    cols = np.r_[t * o.width, np.full(17, o.width), (1 - t) * o.width, np.zeros(17)]
    rows = np.r_[np.zeros(17), t * o.height, np.full(17, o.height), (1 - t) * o.height]
    xs, ys = o.transform @ (cols, rows)
    ex, ey = transform_xy(o.crs, epsg, np.asarray(xs), np.asarray(ys))
    return float(np.min(ex)), float(np.min(ey)), float(np.max(ex)), float(np.max(ey))


def tile_extent(valid_square_m: float, reference_size: int, ground_resolution: float | None) -> float:
    """Tile width in metres (a multiple of 0.1 m, as written in the names): ``reference_size x
    ground_resolution``, or by default CVOGL's 512 m, at most :data:`ORTHO_SHARE` of the
    largest square of valid orthophoto pixels (``valid_square_m``)."""
    if ground_resolution is not None:
        extent = reference_size * ground_resolution
    else:
        extent = min(CVOGL_EXTENT_M, ORTHO_SHARE * valid_square_m)
    return max(0.1, math.floor(extent * 10 + 1e-6) / 10)


# -- workers ----------------------------------------------------------------------------------
_STATE: dict = {}


def _init(spec: dict) -> None:
    """Open the surface for this process (once) and keep the shared context."""
    cv2.setNumThreads(1)
    _STATE.clear()
    surface = Surface(spec["reference"], spec["dem"], bands=spec["bands"])
    _STATE["ctx"] = PairContext(surface, spec["targets"], spec["overview"], spec["tile"], spec["query_size"],
                                spec["seed"], spec["sensor"], spec["ortho_bounds"])
    _STATE["folder"] = Path(spec["folder"])
    _STATE["geotiff"] = spec["geotiff"]


def _make_pair(index: int) -> tuple[tuple, dict]:
    """Render pair ``index``, write its files; returns its list item and its manifest entry."""
    ctx: PairContext = _STATE["ctx"]
    folder: Path = _STATE["folder"]
    pair = render_real_pair(ctx, index)
    spec = ctx.spec
    e, n = pair.centre
    sat_name = satellite_name(e, n, spec.extent, spec.epsg)
    query_name = f"{index:06d}.jpg"
    write_bytes(folder / "query" / query_name, encode_jpeg(pair.query, pair.query_quality), OutputError)
    sat_jpeg = encode_jpeg(pair.satellite, pair.satellite_quality)
    write_bytes(folder / "satellite" / sat_name, sat_jpeg, OutputError)
    if _STATE["geotiff"]:
        geotiff_from_jpeg(folder / "satellite" / (Path(sat_name).stem + ".tif"), sat_jpeg, spec.size, spec.size, e, n,
                          spec.extent, spec.epsg)
    item = (index, query_name, sat_name, pair.heading, pair.click, list(pair.box), pair.area_m2, pair.class_name)
    info = {k: v for k, v in pair.info.items() if k != "target_mask"}
    return item, {"id": index, "query": query_name, "satellite": sat_name, **info}


def _run(indices: list[int], spec: dict, workers: int, progress: bool) -> list[tuple[tuple, dict]]:
    """Every pair, in this process (its surface opened here and closed after) or in a pool."""
    if workers == 1 or len(indices) == 1:
        _init(spec)
        try:
            return map_in_order(_make_pair, indices, 1, progress, "realpairs")
        finally:
            _STATE["ctx"].surface.close()
            _STATE.clear()
    return map_in_order(_make_pair, indices, workers, progress, "realpairs", initializer=_init, initargs=(spec,))


# -- the dataset ------------------------------------------------------------------------------
def generate_realpairs(reference: str | os.PathLike, out_root: str | os.PathLike, pairs: int, seed: int = 0,
                       name: str = "REAL_DroneAerial", dem: str | os.PathLike | None = None,
                       footprints: str | os.PathLike | None = None, layer: str | int | None = None,
                       class_name: str | None = None, class_field: str | None = None,
                       reference_size: int = 1024, query_size: int | tuple[int, int] = 256,
                       ground_resolution: float | None = None, region_size: float = DEFAULT_REGION_M,
                       splits: tuple[float, float, float] = (0.8, 0.1, 0.1), workers: int = 1,
                       overwrite: bool = False, geotiff: bool = True, progress: bool = True, bands=None,
                       sensor: float = 1.0) -> dict:
    """Render ``pairs`` drone/satellite pairs from the orthophoto ``reference`` (with the DSM
    ``dem`` when given) into ``out_root/name`` in the CVOGL layout; returns the manifest.

    Targets: the polygons of ``footprints`` (``layer``; classes from ``class_field``, else
    ``class_name``, default ``building``) or, without, salient structures with square regions of
    ``region_size`` metres (class ``class_name``, default ``salient``). Tiles: ``reference_size``
    pixels a side at ``ground_resolution`` m/px (default: :func:`tile_extent`), in the
    orthophoto's projected CRS or its UTM zone; photos ``query_size`` (N or (h, w)).
    Errors: :class:`~smgeo_geo.errors.OptionError` naming the option,
    :class:`~smgeo_geo.errors.RasterError` / :class:`~smgeo_geo.errors.InputFileError` naming
    the file, :class:`~smgeo_geo.errors.OutputError` for the output folder; all checked before
    anything is written.
    """
    q, fractions = _options(pairs, seed, name, reference_size, query_size, ground_resolution, region_size, splits,
                            workers, sensor)
    start = time.perf_counter()
    with Surface(reference, dem, bands=bands) as surface:
        epsg = work_epsg(surface.ortho)
        bounds = _ortho_bounds(surface, epsg)
        overview = Overview.of(surface.ortho)
        square = overview.largest_square_m(epsg)
        extent = tile_extent(square, reference_size, ground_resolution)
        if extent > square:
            raise OptionError(f"--ground-resolution {ground_resolution:g} x --reference-size {reference_size}: a "
                              f"{extent:g} m tile does not fit on the valid pixels of {surface.ortho.path} (largest "
                              f"valid square about {square:.0f} m); give a finer --ground-resolution")
        spec = TileSpec(epsg, extent, reference_size)
        max_size = MAX_TARGET_SHARE * extent - 2 * MARGIN_PX * spec.res
        if footprints is not None:
            targets = footprint_targets(footprints, overview, epsg, max_size_m=max_size, layer=layer,
                                        class_name=class_name or "building", class_field=class_field,
                                        surface=surface)
        else:
            if region_size > max_size:
                raise OptionError(f"--region-size {region_size:g} m does not fit a {extent:g} m tile (at most "
                                  f"{max_size:.1f} m); give a smaller --region-size or a coarser --ground-resolution")
            targets = salient_targets(overview, epsg, float(region_size), class_name=class_name or "salient",
                                      surface=surface, source=surface.ortho.path)
        sources = {"reference": os.path.basename(surface.ortho.path),
                   "reference_bytes": os.path.getsize(surface.ortho.path) if os.path.isfile(surface.ortho.path) else None,
                   "dem": os.path.basename(surface.dem_path) if surface.dem_path else None,
                   "footprints": os.path.basename(os.fspath(footprints)) if footprints is not None else None}
        ortho_path = surface.ortho.path
    folder = Path(out_root) / name
    prepare_folder(folder, name, overwrite)
    job = {"reference": ortho_path, "dem": os.fspath(dem) if dem is not None else None, "bands": bands,
           "targets": targets, "overview": overview, "tile": spec, "query_size": q, "seed": seed, "sensor": sensor,
           "ortho_bounds": bounds, "folder": str(folder), "geotiff": geotiff}
    results = _run(list(range(pairs)), job, workers, progress)
    items = [r[0] for r in results]
    labels = split_assignment(seed, pairs, fractions)
    by_split = {s: [it for it, lab in zip(items, labels) if lab == s] for s in SPLITS}
    kinds = Counter(t.kind for t in targets)
    manifest = {
        "generator": "smgeo_synth.realpairs", "version": REALPAIRS_VERSION, "name": name, "seed": seed, "pairs": pairs,
        "sources": sources,
        "options": {"reference_size": reference_size, "query_size": list(q), "ground_resolution_m": spec.res,
                    "tile_extent_m": extent, "region_size_m": float(region_size) if footprints is None else None,
                    "splits": list(fractions), "geotiff": geotiff, "sensor": sensor, "supersample": SUPERSAMPLE,
                    "class_name": class_name, "class_field": class_field, "layer": layer},
        "crs": f"EPSG:{epsg}",
        "targets": {"kind": "footprints" if footprints is not None else "salient", "count": len(targets),
                    "by_kind": dict(sorted(kinds.items())),
                    "used": len({r[1]["target"]["id"] for r in results})},
        "counts": {s: len(v) for s, v in by_split.items()},
        "classes": {s: dict(sorted(Counter(it[7] for it in v).items())) for s, v in by_split.items()},
        "list_fields": FIELDS,
        "frames": {"click": "query pixels, x = column, y = row, origin at the top-left corner of the image",
                   "box": "satellite pixels, same convention; the tile is north-up in the CRS above",
                   "camera": "smgeo_geo.camera.FrameCamera at the query's size: rotation (local ENU -> camera, "
                             "= rotation_from_angles(yaw, pitch, roll)), centre_enu in LocalFrame(*frame); lon/lat "
                             "WGS84, altitude in the DSM's vertical frame; smgeo_synth.realpairs.camera_from_info "
                             "rebuilds it"},
        "pairs_info": [r[1] for r in results],
    }
    write_text(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n", OutputError)
    from smgeo_model.data import write_split  # lists last (torch is only needed here)

    for s in SPLITS:
        write_split(out_root, name, s, by_split[s])
    manifest["elapsed_s"] = time.perf_counter() - start
    return manifest
