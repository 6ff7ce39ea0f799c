"""Batch geocoding of a drone survey: many (photo, click) rows -> one GeoPackage.

Rows come from a manifest CSV (columns ``query, click_x, click_y`` and optionally
``reference``, ``lon``, ``lat``, ``radius_m``) or from a folder of photos plus a clicks CSV
(``image, click_x, click_y``). Relative paths are relative to the manifest's folder; clicks
are photo pixels (x right, y down), ``lon``/``lat`` WGS84 degrees, ``radius_m`` metres.

Nothing is lost, one bad row never stops a survey:

* Every row ends as a record: ``ok`` with its detection, or ``error`` with a one-line
  message (an :class:`~smgeo_geo.errors.SMGeoError`'s message, or ``internal error: ...``
  for any other exception, whose traceback goes to stderr).
* Each record is written, atomically, as soon as its row is done: one JSON part file per
  row in ``OUT.parts/`` (created with the first one), named by a key over the model id and
  the row's inputs: its content, the photo (size, mtime_ns, SHA-256), the reference raster
  (size, mtime_ns), ``top_k`` and the free-form ``settings``. A rerun skips the rows
  whose ``ok`` part matches; it redoes error rows and rows whose inputs changed. Parts of
  rows no longer asked for stay in the folder but never enter the GeoPackage.
* The GeoPackage is assembled from the parts, in row order, into a temporary file that
  replaces ``OUT`` only when complete. Temporary files of killed runs (``OUT`` and parts)
  are swept at the start of every run.

Parallel: rows run one task each, submitted window by window (rows sharing a reference
and hint are adjacent), on a Dask cluster: a local one with ``workers`` processes, or an
existing one given by its scheduler address. Each process keeps one loaded model whose
window cache encodes a window once. Part files are written by this (the driving) process.

Test hook (fault injection, used by tests/api/test_batch_kill.py): the environment
variable ``SMGEO_BATCH_FAULT`` makes the process misbehave at an exact point:
``after_rows:N`` (after this process wrote its N-th part file) and ``during_write`` (the
GeoPackage's temporary file half written) send this process the signal named by
``SMGEO_BATCH_FAULT_SIGNAL`` (``INT``, the default, or ``KILL``); ``row_error:I`` makes
row ``I`` (0-based) raise a ``RuntimeError`` as a bug would.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shapely import wkt
from smgeo_model import fileio

from smgeo_geo.errors import (
    CheckpointError,
    InputFileError,
    ManifestError,
    OptionError,
    OutputError,
    SMGeoError,
    as_geo_error,
)
from smgeo_geo.result import Detection

DEFAULT_RADIUS_M = 250.0
DASK_CONNECT_TIMEOUT_S = 10.0
PART_FORMAT = ("smgeo-batch-part", 1)
FAULT_ENV, FAULT_SIGNAL_ENV = "SMGEO_BATCH_FAULT", "SMGEO_BATCH_FAULT_SIGNAL"


@dataclass(frozen=True)
class Row:
    """One manifest row: ``index`` (0-based data row), photo path, ``click`` (x, y) in photo
    pixels, reference raster path, ``hint`` (lon, lat WGS84 degrees, radius_m metres) or None."""

    index: int
    query: str
    click: tuple[float, float]
    reference: str
    hint: tuple[float, float, float] | None

    @property
    def content(self) -> list:
        """What the row asks for (without its position in the manifest)."""
        return [self.query, list(self.click), self.reference, list(self.hint) if self.hint else None]

    @property
    def group(self) -> tuple:
        """Rows of one group share a search window (reference + hint)."""
        return (self.reference, self.hint)


# -- manifest ---------------------------------------------------------------------------------
def _float(value: str | None, what: str, where: str) -> float:
    if value is None or not value.strip():
        raise ManifestError(f"{where}: {what} is empty; expected a number")
    try:
        number = float(value)
    except ValueError:
        raise ManifestError(f"{where}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ManifestError(f"{where}: {what} must be a finite number, got {value!r}")
    return number


def _manifest_text(path: Path, label: str) -> str:
    """The file's text (UTF-8, BOM allowed); ManifestError naming the line of a bad byte."""
    if not path.is_file():
        raise ManifestError(f"{label} {path} not found" if not path.exists() else f"{label} {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{label} {path} cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1  # exc.object: the bytes after a BOM
        raise ManifestError(f"{label} {path} line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                            f"save the file as UTF-8") from None


def read_manifest(path: str | os.PathLike, default_reference: str | None = None,
                  photo_folder: str | os.PathLike | None = None) -> list[Row]:
    """Rows of a manifest (or a clicks file with ``photo_folder``).

    Every problem is a :class:`ManifestError` naming the file (and line): missing file, not
    UTF-8, empty or header only, missing columns, bad or empty numbers, empty photo cell,
    no reference. Photo and reference files are not checked here (a row whose files are
    unusable becomes an error row of the batch)."""
    path = Path(path)
    label = "clicks file" if photo_folder else "manifest"
    qcol = "image" if photo_folder else "query"
    expected = f"{qcol}, click_x, click_y[, reference, lon, lat, radius_m]"
    text = _manifest_text(path, label)
    if photo_folder is not None and not Path(photo_folder).is_dir():
        raise InputFileError(f"photo folder {photo_folder} not found (or not a folder)")
    base = Path(photo_folder) if photo_folder else path.parent
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if reader.fieldnames is None:
            raise ManifestError(f"{label} {path} is empty; expected a header line {expected}")
        reader.fieldnames = [(f or "").strip() for f in reader.fieldnames]
        missing = {qcol, "click_x", "click_y"} - set(reader.fieldnames)
        if missing:
            raise ManifestError(f"{label} {path}: missing column(s) {', '.join(sorted(missing))} (expected {expected})")
        rows = [_row(i, rec, f"{label} {path} line {reader.line_num}", qcol, base,
                     path.parent, default_reference) for i, rec in enumerate(reader)]
    except csv.Error as exc:
        raise ManifestError(f"{label} {path} line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise ManifestError(f"{label} {path} has a header but no rows")
    return rows


def _row(index: int, rec: dict, where: str, qcol: str, base: Path, folder: Path, default_reference: str | None) -> Row:
    """One Row from a CSV record; ``where`` = "FILE line N" for messages."""
    photo = (rec.get(qcol) or "").strip()
    if not photo:
        raise ManifestError(f"{where}: the {qcol} cell is empty; expected a photo file name")
    ref = (rec.get("reference") or "").strip() or default_reference
    if not ref:
        raise ManifestError(f"{where}: no reference raster (add a reference column or pass --reference)")
    hint = None
    if (rec.get("lon") or "").strip() or (rec.get("lat") or "").strip():
        hint = (_float(rec.get("lon"), "lon", where), _float(rec.get("lat"), "lat", where),
                _float(rec.get("radius_m") or str(DEFAULT_RADIUS_M), "radius_m", where))
    click = (_float(rec.get("click_x"), "click_x", where), _float(rec.get("click_y"), "click_y", where))
    ref_path = ref if Path(ref).is_absolute() else str((folder / ref).resolve())
    return Row(index, str((base / photo).resolve()), click, ref_path, hint)


# -- one row (runs in this process or on a Dask worker) ---------------------------------------
_PREDICTORS: dict = {}


def _predictor(checkpoint: str | None, device: str):
    """This process's model for (checkpoint, device), loaded once."""
    from smgeo_geo.predictor import GeoPredictor

    key = (checkpoint, device)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = GeoPredictor(checkpoint, device=device)
    return _PREDICTORS[key]


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def internal_error(exc: BaseException) -> dict:
    """Record fields of a row that failed on something other than an SMGeoError (a bug)."""
    print(f"smgeo batch: internal error in a row ({type(exc).__name__}):", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    return {"status": "error", "message": f"internal error: {type(exc).__name__}: {one_line(exc)}",
            "detection": None, "window_cached": None}


def process_row(row: Row, checkpoint: str | None, device: str = "cpu", top_k: int = 5, method: str = "auto",
                dem: str | None = None) -> dict:
    """Locate one row with the locator (``method``: auto | metadata | registration | smgeo;
    ``dem``: DSM/DEM path); ``{status, message, detection, window_cached}``. Never raises an
    ``Exception``: user errors and bugs alike become an error record."""
    from smgeo_geo.raster import open_reference
    from smgeo_geo.windows import WindowSpec

    try:
        _fault_in_row(row)
        predictor = _predictor(checkpoint, device)
        predictor.set_query(row.query)
        predictor.validate_click(row.click)
        spec = (WindowSpec("center", lon=row.hint[0], lat=row.hint[1], radius_m=row.hint[2])
                if row.hint is not None else WindowSpec("auto"))
        with open_reference(row.reference) as raster:
            det = predictor.locate_photo(raster, row.query, row.click, method=method, window=spec, dem=dem,
                                         top_k=top_k)
        return {"status": "ok", "message": "", "detection": detection_to_record(det),
                "window_cached": bool(predictor.last_reference_cached)}
    except Exception as exc:  # noqa: BLE001 - one bad row never stops a survey
        error = as_geo_error(exc)
        if not isinstance(error, SMGeoError):
            return internal_error(exc)
        return {"status": "error", "message": one_line(error), "detection": None, "window_cached": None}


def detection_to_record(det: Detection) -> dict:
    """JSON-safe record of a detection (polygons as WKT: raster CRS and WGS84 lon/lat;
    ``pixel_box`` in raster pixels), without its candidates."""
    return {"pixel_box": list(det.pixel_box), "score": det.score, "rank": det.rank, "crs": det.crs,
            "polygon_crs": det.polygon_crs.wkt, "polygon_lonlat": det.polygon_lonlat.wkt,
            "centroid_lonlat": list(det.centroid_lonlat), "query_image": det.query_image,
            "click": list(det.click) if det.click else None, "model_id": det.model_id,
            "reference": det.reference, "created": det.created, "extra": det.extra}


def detection_from_record(rec: dict) -> Detection:
    """The :class:`Detection` of :func:`detection_to_record` (no candidates)."""
    return Detection(pixel_box=tuple(rec["pixel_box"]), score=rec["score"], rank=rec["rank"], crs=rec["crs"],
                     polygon_crs=wkt.loads(rec["polygon_crs"]), polygon_lonlat=wkt.loads(rec["polygon_lonlat"]),
                     centroid_lonlat=tuple(rec["centroid_lonlat"]), query_image=rec["query_image"],
                     click=tuple(rec["click"]) if rec["click"] else None, model_id=rec["model_id"],
                     reference=rec["reference"], created=rec["created"], extra=rec.get("extra") or {})


# -- keys: model + inputs ---------------------------------------------------------------------
def _stat(path: str) -> list[int] | None:
    """[size bytes, mtime_ns] of a file, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns]


def _photo_fingerprint(path: str) -> list | None:
    """[size, mtime_ns, sha256 hex] of a photo, or None when unreadable."""
    stat = _stat(path)
    if stat is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return [*stat, digest.hexdigest()]


def model_id_of(checkpoint: str | None) -> str:
    """``NAME@sha256[:10]`` of the checkpoint's weights (the bundled model for None), as
    :attr:`GeoPredictor.model_id`, without loading it; CheckpointError when unusable."""
    from smgeo_model import bundled_checkpoint
    from smgeo_model.checkpoint import checkpoint_paths, read_checkpoint_config

    from smgeo_geo.errors import model_errors
    from smgeo_geo.checks import model_id

    with model_errors():
        weights, _ = checkpoint_paths(checkpoint if checkpoint is not None else bundled_checkpoint())
        read_checkpoint_config(weights)
    try:
        return model_id(weights)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {weights} cannot be read ({exc.strerror or exc})") from None


def row_keys(rows: list[Row], model: str, top_k: int, settings: dict | None) -> dict[int, tuple[str, dict]]:
    """Row index -> (part key, inputs): the key is a SHA-256 over the model id and the
    row's inputs (content, photo size/mtime_ns/sha256, reference size/mtime_ns, top_k,
    settings); each file is read once."""
    photos: dict[str, list | None] = {}
    keys = {}
    for row in rows:
        if row.query not in photos:
            photos[row.query] = _photo_fingerprint(row.query)
        inputs = {"model": model, "row": row.content, "photo": photos[row.query],
                  "reference": _stat(row.reference), "top_k": top_k, "settings": settings or {}}
        text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
        keys[row.index] = (hashlib.sha256(text.encode()).hexdigest()[:32], inputs)
    return keys


# -- part files -------------------------------------------------------------------------------
def parts_dir(out: Path) -> Path:
    """``OUT.parts``: the folder of one JSON part file per finished row."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def read_part(folder: Path, key: str) -> dict | None:
    """The part record of ``key``, or None when missing, unreadable or not ours."""
    try:
        rec = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(rec, dict) or rec.get("format") != list(PART_FORMAT) or rec.get("key") != key
            or rec.get("status") not in ("ok", "error")):
        return None
    return rec


def _json_value(value):
    """JSON stand-in for what json cannot write (numpy scalars -> Python numbers, else str)."""
    return value.item() if hasattr(value, "item") else str(value)


def _write_part(folder: Path, record: dict) -> None:
    path = folder / f"{record['key']}.json"
    try:
        folder.mkdir(exist_ok=True)  # created with the first row only
        fileio.write_text(path, json.dumps(record, default=_json_value), OutputError)
    except OSError as exc:
        if isinstance(exc, SMGeoError):
            raise
        raise OutputError(f"{path}: a finished row cannot be kept ({exc})") from exc


_TEMP_RE = re.compile(rf"^\.(.+)\.\d+-[0-9a-f]+{re.escape(fileio.TEMP_MARK)}")


def sweep_temps(out: Path) -> list[Path]:
    """Remove the temporary files (and sidecars) that killed runs left of ``out`` and of
    its part files; those of live processes stay."""
    removed = fileio.sweep_stale_temps(out)
    folder = parts_dir(out)
    if folder.is_dir():
        targets = {m.group(1) for entry in folder.iterdir() if (m := _TEMP_RE.match(entry.name))}
        for name in sorted(targets):
            removed += fileio.sweep_stale_temps(folder / name)
    return removed


# -- driver -----------------------------------------------------------------------------------
def check_batch_options(rows: list[Row], out: Path, workers: int, top_k: int,
                        inputs: dict[str, str | os.PathLike | None] | None = None) -> int:
    """Refuse bad options before any work: ``workers`` < 1, ``top_k`` outside 1..100, an
    output that is a folder, in a missing folder, not ``.gpkg``, or one of the inputs
    (``inputs``: option name -> path, plus every row's reference). Returns top_k as int."""
    from smgeo_geo.checks import check_top_k
    from smgeo_geo.vector_io import check_output_paths

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"--workers must be a whole number of at least 1, got {workers!r}")
    top_k = check_top_k(top_k)
    check_output_paths({"--out": out}, inputs)
    for ref in dict.fromkeys(r.reference for r in rows):
        check_output_paths({"--out": out}, {"reference raster": ref})
    if out.suffix.lower() != ".gpkg":
        raise OptionError(f"--out {out} must end in .gpkg")
    if parts_dir(out).exists() and not parts_dir(out).is_dir():
        raise OutputError(f"{parts_dir(out)} is a file; batch keeps its finished rows in that folder")
    return top_k


def run_batch(rows: list[Row], out: str | os.PathLike, checkpoint: str | None = None, device: str = "cpu",
              workers: int = 1, scheduler: str | None = None, top_k: int = 5,
              progress: Callable[[Iterable, int], Iterable] | None = None, *, settings: dict | None = None,
              inputs: dict[str, str | os.PathLike | None] | None = None, method: str = "auto",
              dem: str | os.PathLike | None = None) -> dict:
    """Process the rows not yet done, then (re)write ``out`` (a .gpkg).

    ``progress(items, todo)`` wraps the iterable of finished rows (each item a list of one
    record, already kept on disk) and must yield them all; ``todo`` = rows to compute.
    ``settings``: free-form options that change results (part of every row's key).
    ``inputs``: more input files ``out`` must not be (e.g. ``{"--manifest": path}``).
    ``method`` / ``dem``: as for ``smgeo locate`` (both part of every row's key; the DEM by
    path, size and modification time).
    Returns ``{ok, error, pending, computed, kept, out}``: row counts (``computed`` this
    run, ``kept`` from earlier runs) and the output path.
    """
    from smgeo_geo.locator import check_method

    out = Path(os.path.abspath(os.fspath(out)))
    method = check_method(method)
    dem = None if dem is None else os.path.abspath(os.fspath(dem))
    if dem is not None and not os.path.isfile(dem):
        raise InputFileError(f"DEM {dem}: no such file")
    settings = {**(settings or {}), "method": method, "dem": None if dem is None else [dem, _stat(dem)]}
    inputs = {**(inputs or {}), "--dem": dem}
    top_k = check_batch_options(rows, out, workers, top_k, inputs)
    sweep_temps(out)
    model = model_id_of(checkpoint)
    keys = row_keys(rows, model, top_k, settings)
    folder = parts_dir(out)
    todo = _todo(rows, keys, folder)
    if todo:
        with _executor(checkpoint, device, top_k, workers, scheduler, method, dem) as compute:
            finished = _keep(compute(todo), keys, folder)
            for _ in (progress(finished, len(todo)) if progress else finished):
                pass
    summary = assemble(rows, out, {i: k for i, (k, _) in keys.items()})
    redone = {keys[r.index][0] for r in todo}
    computed = sum(keys[r.index][0] in redone for r in rows)
    return {**summary, "computed": computed, "kept": len(rows) - computed}


def _todo(rows: list[Row], keys: dict, folder: Path) -> list[Row]:
    """Rows without an ``ok`` part of their key, one per key, grouped by window (first-seen order)."""
    seen, groups = set(), {}
    for row in rows:
        key = keys[row.index][0]
        if key in seen:
            continue
        seen.add(key)
        part = read_part(folder, key)
        if part is None or part["status"] != "ok":
            groups.setdefault(row.group, []).append(row)
    return [row for group in groups.values() for row in group]


def _keep(results: Iterator[tuple[Row, dict]], keys: dict, folder: Path) -> Iterator[list[dict]]:
    """Write each finished row's part file at once, then yield ``[record]``."""
    for written, (row, result) in enumerate(results, start=1):
        key, inputs = keys[row.index]
        record = {"format": list(PART_FORMAT), "key": key, "inputs": inputs, "query": row.query, **result}
        _write_part(folder, record)
        _fault("after_rows", written)
        yield [{**record, "row": row.index}]


@contextlib.contextmanager
def _executor(checkpoint, device, top_k, workers, scheduler, method="auto",
              dem=None) -> Iterator[Callable[[list[Row]], Iterator]]:
    """A function rows -> iterator of (row, result) as rows finish: in this process
    (``workers`` 1, no scheduler), on a local Dask cluster, or on the given scheduler."""
    if scheduler is None and workers <= 1:
        _predictor(checkpoint, device)  # a bad checkpoint or device stops here, not row by row

        def inline(rows):
            for row in rows:
                yield row, process_row(row, checkpoint, device, top_k, method, dem)

        yield inline
        return
    from smgeo_geo.predictor import check_device

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            from dask.distributed import Client, LocalCluster

            check_device(device)
            stack.enter_context(_environ_restored())  # Dask's nanny sets OMP_NUM_THREADS=1 etc. here
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, host="127.0.0.1"))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(connect(scheduler))
        yield lambda rows: _on_dask(client, rows, checkpoint, device, top_k, method, dem)


@contextlib.contextmanager
def _environ_restored() -> Iterator[None]:
    """Put this process's environment variables back as they were when the block ends."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def _on_dask(client, rows: list[Row], checkpoint, device, top_k, method="auto",
             dem=None) -> Iterator[tuple[Row, dict]]:
    from dask.distributed import as_completed

    futures = {client.submit(process_row, row, checkpoint, device, top_k, method, dem, pure=False): row
               for row in rows}
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker, a task that could not run
            result = internal_error(exc)
        yield futures[future], result


def connect(address: str, timeout: float = DASK_CONNECT_TIMEOUT_S):
    """A Dask client of the scheduler at ``address``; OptionError naming it when none
    answers within ``timeout`` seconds (a refused connection fails at once)."""
    import socket
    import time

    from dask.distributed import Client
    from distributed.comm import parse_address, parse_host_port

    what = f"--dask {address}"
    deadline = time.monotonic() + timeout
    try:
        scheme, location = parse_address(address)
        if scheme == "tcp":  # a plain connect first: a refused address fails at once, quietly
            with socket.create_connection(parse_host_port(location, 8786), timeout=timeout):
                pass
        return Client(address, timeout=max(1.0, deadline - time.monotonic()))
    except (OSError, ValueError, TypeError) as exc:
        raise OptionError(f"{what}: no Dask scheduler answers there ({one_line(exc)}); "
                          f"give a running scheduler's address, e.g. tcp://HOST:8786") from None
    except Exception as exc:  # noqa: BLE001 - whatever the address answered, it is not a scheduler
        raise OptionError(f"{what}: not a Dask scheduler ({type(exc).__name__}: {one_line(exc)[:200]})") from None


def assemble(rows: list[Row], out: Path, keys: dict[int, str]) -> dict:
    """Write ``out`` from the part files of ``rows`` (``keys``: row index -> part key), in
    row order: layers ``detections`` and ``centroids`` (raster CRS if all rows share one,
    else WGS84 lon/lat) and ``rows`` (row, query_image, status ok / error / pending, message, and
    for ok rows the locator's method, answer, uncertainty_m, located_lon / located_lat)."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    from smgeo_geo.result import detections_to_geodataframe
    from smgeo_geo.vector_io import atomic_path

    folder = parts_dir(out)
    records = []
    for r in rows:
        part = read_part(folder, keys[r.index]) or {"status": "pending", "message": "", "detection": None}
        records.append({**part, "row": r.index, "query": r.query})
    dets = []
    for rec in records:
        if rec["status"] == "ok":
            d = detection_from_record(rec["detection"])
            d.extra = {**d.extra, "row": rec["row"]}
            dets.append(d)
    geometry = "crs" if len({d.crs for d in dets}) <= 1 else "lonlat"
    def answer(rec: dict, name: str):
        extra = (rec.get("detection") or {}).get("extra") or {}
        return extra.get(name)

    status = pd.DataFrame([{"row": rec["row"], "query_image": rec["query"], "status": rec["status"],
                            "message": rec["message"], "method": answer(rec, "method"),
                            "answer": answer(rec, "answer"), "uncertainty_m": answer(rec, "uncertainty_m"),
                            "located_lon": answer(rec, "located_lon"), "located_lat": answer(rec, "located_lat")}
                           for rec in records])
    layers = [("rows", gpd.GeoDataFrame(status))]
    if dets:
        layers = [("detections", detections_to_geodataframe(dets, geometry)),
                  ("centroids", detections_to_geodataframe(dets, geometry, centroids=True)), *layers]
    try:
        with atomic_path(out) as tmp:
            for i, (name, frame) in enumerate(layers):
                pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG")
                if i == 0:
                    _fault("during_write")
    except OSError as exc:
        if isinstance(exc, SMGeoError):
            raise
        raise OutputError(f"{out}: cannot be written ({exc})") from exc
    counts = status["status"].value_counts().to_dict()
    return {"ok": int(counts.get("ok", 0)), "error": int(counts.get("error", 0)),
            "pending": int(counts.get("pending", 0)), "out": str(out)}


# -- test hook --------------------------------------------------------------------------------
def _fault_spec() -> tuple[str, int | None]:
    kind, _, arg = os.environ.get(FAULT_ENV, "").partition(":")
    return kind, int(arg) if arg.strip() else None


def _fault(point: str, count: int | None = None) -> None:
    """Send this process SMGEO_BATCH_FAULT_SIGNAL when SMGEO_BATCH_FAULT names this point."""
    kind, arg = _fault_spec()
    if kind == point and arg == count:
        sig = getattr(signal, "SIG" + os.environ.get(FAULT_SIGNAL_ENV, "INT").upper().removeprefix("SIG"))
        if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
            # a shell starts background jobs with Ctrl-C ignored; the hook is a Ctrl-C at the terminal
            signal.signal(sig, signal.default_int_handler)
        # raise(): delivered to this (the main) thread before it returns, as a Ctrl-C would be
        # handled; os.kill may hand it to a library's worker thread and land it later, mid-row
        signal.raise_signal(sig)


def _fault_in_row(row: Row) -> None:
    kind, arg = _fault_spec()
    if kind == "row_error" and arg == row.index:
        raise RuntimeError(f"fault injected in row {row.index} ({FAULT_ENV})")
