"""Batch geocoding of a drone survey: many (photo, click) rows -> one GeoPackage.

Rows come from a manifest CSV (columns ``query, click_x, click_y`` and optionally
``reference``, ``lon``, ``lat``, ``radius_m``) or from a folder of photos plus a clicks CSV
(``image, click_x, click_y``). Relative paths are relative to the manifest's folder.

Resumable and crash-safe: every finished row (ok or error) is written atomically as one
JSON file in ``OUT.parts/``; a rerun skips the rows found there, so nothing is computed
twice and nothing is duplicated. The GeoPackage is assembled from those files, in row
order, into a temporary file that replaces ``OUT`` only when complete.

Parallel: rows are grouped by search window (so each window is encoded once) and the
groups run on a Dask cluster: a local one with ``workers`` processes, or an existing one
given by its scheduler address. Each worker process keeps one loaded model.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from shapely import wkt

from smgeo_geo.errors import InputFileError, OutputError, SMGeoError
from smgeo_geo.result import Detection

DEFAULT_RADIUS_M = 250.0


@dataclass(frozen=True)
class Row:
    """One manifest row; ``click`` in photo pixels; ``hint`` (lon, lat, radius_m) or None."""

    index: int
    query: str
    click: tuple[float, float]
    reference: str
    hint: tuple[float, float, float] | None

    @property
    def key(self) -> str:
        """Stable id of the row's content (part file name)."""
        text = json.dumps([self.index, self.query, self.click, self.reference, self.hint])
        return f"{self.index:06d}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"

    @property
    def group(self) -> tuple:
        return (self.reference, self.hint)


def _float(value: str, what: str, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputFileError(f"{where}: {what} must be a number, got {value!r}") from None


def read_manifest(path: str | os.PathLike, default_reference: str | None = None,
                  photo_folder: str | os.PathLike | None = None) -> list[Row]:
    """Rows of a manifest (or clicks file with ``photo_folder``); errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"manifest {path} not found")
    base = Path(photo_folder) if photo_folder else path.parent
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or [])
        qcol = "image" if photo_folder else "query"
        missing = {qcol, "click_x", "click_y"} - fields
        if missing:
            raise InputFileError(f"manifest {path}: missing column(s) {', '.join(sorted(missing))} "
                                 f"(expected {qcol}, click_x, click_y[, reference, lon, lat, radius_m])")
        rows = []
        for i, rec in enumerate(reader):
            where = f"{path} line {i + 2}"
            ref = (rec.get("reference") or "").strip() or default_reference
            if not ref:
                raise InputFileError(f"{where}: no reference raster (add a reference column or pass --reference)")
            hint = None
            if (rec.get("lon") or "").strip() or (rec.get("lat") or "").strip():
                hint = (_float(rec.get("lon"), "lon", where), _float(rec.get("lat"), "lat", where),
                        _float(rec.get("radius_m") or DEFAULT_RADIUS_M, "radius_m", where))
            query = str((base / rec[qcol].strip()).resolve()) if rec[qcol] else ""
            ref_path = str((path.parent / ref).resolve()) if not Path(ref).is_absolute() else ref
            rows.append(Row(i, query, (_float(rec["click_x"], "click_x", where), _float(rec["click_y"], "click_y", where)),
                            ref_path, hint))
    return rows


# -- work done on a worker ----------------------------------------------------------------
_PREDICTORS: dict = {}


def _predictor(checkpoint: str | None, device: str):
    from smgeo_geo.predictor import GeoPredictor

    key = (checkpoint, device)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = GeoPredictor(checkpoint, device=device)
    return _PREDICTORS[key]


def process_group(rows: list[Row], checkpoint: str | None, device: str = "cpu", top_k: int = 5) -> list[dict]:
    """Locate every row of a group (same reference and hint); one record per row."""
    from smgeo_geo.raster import open_reference
    from smgeo_geo.windows import WindowSpec

    predictor = _predictor(checkpoint, device)
    out = []
    try:
        raster = open_reference(rows[0].reference)
    except SMGeoError as exc:
        return [_error(r, exc) for r in rows]
    with raster:
        for row in rows:
            try:
                predictor.set_query(row.query)
                predictor.validate_click(row.click)
                spec = (WindowSpec("center", lon=row.hint[0], lat=row.hint[1], radius_m=row.hint[2])
                        if row.hint is not None else WindowSpec("auto"))
                resolved = predictor.resolve_window(raster, spec, photo=row.query)
                det = predictor.locate_resolved(raster, resolved, row.click, top_k)
                out.append({"row": row.index, "key": row.key, "status": "ok", "message": "",
                            "query": row.query, "detection": detection_to_record(det)})
            except SMGeoError as exc:
                out.append(_error(row, exc))
    return out


def _error(row: Row, exc: Exception) -> dict:
    return {"row": row.index, "key": row.key, "status": "error", "message": str(exc), "query": row.query,
            "detection": None}


def detection_to_record(det: Detection) -> dict:
    """JSON-safe record of a detection (polygons as WKT), without its candidates."""
    return {"pixel_box": list(det.pixel_box), "score": det.score, "rank": det.rank, "crs": det.crs,
            "polygon_crs": det.polygon_crs.wkt, "polygon_lonlat": det.polygon_lonlat.wkt,
            "centroid_lonlat": list(det.centroid_lonlat), "query_image": det.query_image,
            "click": list(det.click) if det.click else None, "model_id": det.model_id,
            "reference": det.reference, "created": det.created, "extra": det.extra}


def detection_from_record(rec: dict) -> Detection:
    return Detection(pixel_box=tuple(rec["pixel_box"]), score=rec["score"], rank=rec["rank"], crs=rec["crs"],
                     polygon_crs=wkt.loads(rec["polygon_crs"]), polygon_lonlat=wkt.loads(rec["polygon_lonlat"]),
                     centroid_lonlat=tuple(rec["centroid_lonlat"]), query_image=rec["query_image"],
                     click=tuple(rec["click"]) if rec["click"] else None, model_id=rec["model_id"],
                     reference=rec["reference"], created=rec["created"], extra=rec.get("extra") or {})


# -- driver ---------------------------------------------------------------------------------
def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _write_part(folder: Path, record: dict) -> None:
    target = folder / f"{record['key']}.json"
    tmp = target.with_name("." + target.name + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, target)


def run_batch(rows: list[Row], out: str | os.PathLike, checkpoint: str | None = None, device: str = "cpu",
              workers: int = 1, scheduler: str | None = None, top_k: int = 5,
              progress: Callable[[Iterable, int], Iterable] | None = None) -> dict:
    """Process the rows not yet done, then (re)write ``out`` (a .gpkg). Returns counts."""
    out = Path(out)
    if not out.parent.is_dir():
        raise OutputError(f"output folder {out.parent} does not exist")
    folder = parts_dir(out)
    folder.mkdir(exist_ok=True)
    done = {p.stem for p in folder.glob("*.json")}
    todo = [r for r in rows if r.key not in done]
    groups: dict[tuple, list[Row]] = {}
    for r in todo:
        groups.setdefault(r.group, []).append(r)
    chunks = [g[i: i + 16] for g in groups.values() for i in range(0, len(g), 16)]
    results = _run(chunks, checkpoint, device, workers, scheduler, top_k)
    bar = progress(results, len(todo)) if progress else results
    for records in bar:
        for rec in records:
            _write_part(folder, rec)
    return assemble(rows, out)


def _run(chunks, checkpoint, device, workers, scheduler, top_k):
    """Yield each chunk's records as it completes (inline, local Dask cluster, or remote)."""
    if not chunks:
        return
    if scheduler is None and workers <= 1:
        for chunk in chunks:
            yield process_group(chunk, checkpoint, device, top_k)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1")
    client = Client(scheduler or cluster)
    try:
        futures = [client.submit(process_group, c, checkpoint, device, top_k, pure=False) for c in chunks]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def assemble(rows: list[Row], out: Path) -> dict:
    """Write ``out`` from the part files of ``rows`` (row order): layers ``detections``,
    ``centroids`` (raster CRS if all rows share one, else WGS84) and ``rows`` (status)."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from smgeo_geo.result import detections_to_geodataframe
    from smgeo_geo.vector_io import atomic_path

    folder = parts_dir(out)
    records = []
    for r in rows:
        p = folder / f"{r.key}.json"
        records.append(json.loads(p.read_text()) if p.is_file() else {"row": r.index, "status": "pending",
                                                                       "message": "", "query": r.query})
    dets = []
    for rec in records:
        if rec["status"] == "ok":
            d = detection_from_record(rec["detection"])
            d.extra = {**d.extra, "row": rec["row"]}
            dets.append(d)
    geometry = "crs" if len({d.crs for d in dets}) <= 1 else "lonlat"
    status = pd.DataFrame([{"row": rec["row"], "query_image": rec["query"], "status": rec["status"],
                            "message": rec["message"]} for rec in records])
    with atomic_path(out) as tmp:
        if dets:
            pyogrio.write_dataframe(detections_to_geodataframe(dets, geometry), tmp, layer="detections", driver="GPKG")
            pyogrio.write_dataframe(detections_to_geodataframe(dets, geometry, centroids=True), tmp,
                                    layer="centroids", driver="GPKG")
        pyogrio.write_dataframe(gpd.GeoDataFrame(status), tmp, layer="rows", driver="GPKG")
    counts = status["status"].value_counts().to_dict()
    return {"ok": int(counts.get("ok", 0)), "error": int(counts.get("error", 0)),
            "pending": int(counts.get("pending", 0)), "out": str(out)}
