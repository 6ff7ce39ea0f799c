"""A long-lived SMGeo worker process speaking JSON lines on stdin/stdout.

GUI hosts (the QGIS plugin) run ``python -m smgeo_geo.worker`` in the project's own
environment, so their Python never imports torch. The worker keeps the model loaded and
the reference/query features cached, so repeated clicks are fast.

Protocol (version 1). Every message is one JSON object on one line (UTF-8).

Requests, host -> worker::

    {"id": 7, "method": "locate", "params": {...}}

Replies, worker -> host; every request gets exactly one *final* reply
(``result``, ``error``, ``cancelled`` or ``superseded``), possibly preceded by
``progress`` replies::

    {"id": 7, "event": "progress", "progress": 0.4, "message": "window 2/5"}
    {"id": 7, "event": "result", "result": {...}}
    {"id": 7, "event": "error", "error": {"type": "ClickError", "message": "..."}}
    {"id": 7, "event": "cancelled"}
    {"id": 7, "event": "superseded"}   # a newer locate was queued: the latest click wins

Methods:

``hello`` {} -> ``{"protocol", "version", "python", "torch", "checkpoint", "model_id", "device"}``
    (loads the model on first use).
``configure`` {"checkpoint": path | null (bundled demo model), "device": "cpu" | "cuda"}
    -> as ``hello``; reloads the model and clears the caches when either changes.
``locate`` {"reference": raster path, "bands": [r, g, b] | null, "query": photo path,
    "click": [x, y] (photo pixels, upright photo), "window": WINDOW | null (auto), "top_k": 5,
    "heatmap": GeoTIFF path | null, "method": "auto" | "metadata" | "registration" | "smgeo",
    "dem": DSM/DEM path | null} -> ``{"detections": [RECORD, ...] (rank 0 first),
    "crs": raster CRS (EPSG:xxxx or WKT), "method": the stages that held (e.g.
    "metadata+registration+smgeo"), "answer": the stage whose point answered,
    "uncertainty_m": 90 % radius (m) of the clicked point, "located": [lon, lat] of the
    clicked point (WGS84), "window": SMGeo's window [col_off, row_off, width, height] (raster
    pixels; null when SMGeo did not run or searched sliding windows), "window_mode" /
    "window_reason": how that window was chosen (or null),
    "reference_cached": bool, "heatmap": path written, or null (none asked, or SMGeo did not
    run), "seconds": float}``. RECORD is
    :func:`smgeo_geo.batch.detection_to_record` (polygons as WKT in the raster CRS and in
    WGS84 lon/lat, ``pixel_box`` in raster pixels, score, rank, model_id, and ``extra`` with
    every stage's status and details, see :mod:`smgeo_geo.locator`).
    WINDOW is one of ``{"mode": "auto"}`` (the photo's metadata footprint, else the whole
    raster), ``{"mode": "whole"}`` (the whole raster; a sliding-window search
    when it is too big for one window), ``{"mode": "bounds", "bounds": [minx, miny, maxx,
    maxy], "crs": any pyproj CRS string or WKT}``, ``{"mode": "center", "lon": ..., "lat":
    ..., "radius_m": ...}`` (WGS84, metres), ``{"mode": "photo_gps"}`` (EXIF/DJI
    metadata of the photo) or ``{"mode": "search"}`` (sliding windows over the raster).
``batch`` {"manifest": CSV, "reference": raster | null, "out": .gpkg, "workers": 1,
    "top_k": 5, "photos": folder | null, "method": "auto" | ..., "dem": path | null} -> the
    summary of :func:`smgeo_geo.batch.run_batch`. Resumable like ``smgeo batch``; cancelling
    stops between rows (finished rows are already kept).
``retrieve`` {"text": description in words, "index": index folder (``smgeo index build``),
    "top_k": 10, "checkpoint": path | null (the checkpoint recorded in the index), "ef_search":
    HNSW candidates per query | null (the index's own), "place_fusion": true (rank again with each
    hit's neighbours within 200 m, as ``smgeo retrieve``) | false} -> ``{"hits":
    [HIT, ...] (rank 1 first), "model": {"checkpoint", "model_id"}, "index": folder, "count":
    items in the index, "index_cached": bool, "seconds": float}``. HIT is
    :class:`smgeo_retrieval.hits.Hit` as a dict: rank, score (the model's inner product, or
    with place fusion the fused score; higher is better), item_id, platform (satellite / drone / ground), image and thumbnail (absolute
    paths; thumbnail may be null), lon, lat (WGS84 degrees of the item's centre), footprint
    (WKT polygon in WGS84 lon/lat, or null). The retrieval model runs on the device set by
    ``configure`` (cpu by default); the opened index and its model stay cached per index folder
    (reopened when the folder is rebuilt). An empty text is
    ``OptionError``, a missing or corrupt index ``InputFileError``, a checkpoint that is not the
    index's model ``CheckpointError``.
``cancel`` {"target": id}: cancels a queued or running request (no reply of its own).
``shutdown`` {} -> ``{"ok": true}``; the worker exits. End of stdin also ends it.

Requests are checked before any work: a line that is not a JSON object, an ``id`` that is
not a string / number / null, ``params`` that is not an object, an unknown method or
parameter, or a parameter of the wrong JSON type (e.g. ``"click": "10,20"``, ``"top_k":
"5"``, ``"bands": [1, 2]``) comes back as ``error`` of type ``ProtocolError`` naming the
parameter and what it must be. Values of the right type that the library refuses come back
as that library error (``ClickError`` for a click outside the photo, ``OptionError`` for
``top_k`` 0, ``DeviceError``, ``RasterError``, ``ImageError``, ``CRSError``, ...), before the
model is loaded wherever the check needs no model.

User errors (:class:`smgeo_geo.SMGeoError`, model/config errors) come back as ``error``
with the exception's type name and its one-line message; anything else (a bug) as ``error``
of type ``InternalError`` with the traceback's last line (the full traceback goes to stderr).
Library output never reaches stdout: it is redirected to stderr, which hosts should log.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any, TextIO

from smgeo_geo.errors import ProtocolError, SMGeoError, as_geo_error

PROTOCOL_VERSION = 1
FINAL_EVENTS = ("result", "error", "cancelled", "superseded")


class Cancelled(Exception):
    """The request being processed was cancelled by the host."""


class _Request:
    def __init__(self, message: dict) -> None:
        self.id = message.get("id")
        self.method = message.get("method")
        self.params = message.get("params")
        if self.params is None:
            self.params = {}

    def check(self) -> None:
        """:class:`ProtocolError` when the request cannot even be queued (bad id or params)."""
        if not _is_id(self.id):
            raise ProtocolError(f"'id' must be a string, a number or null, got {_shown(self.id)}")
        if not isinstance(self.params, dict):
            raise ProtocolError(f"'params' must be an object, got {_shown(self.params)}")


# method -> the parameters it accepts (see the module docstring); others are refused by name
PARAMS = {
    "hello": (),
    "configure": ("checkpoint", "device"),
    "locate": ("reference", "bands", "query", "click", "window", "top_k", "heatmap", "method", "dem"),
    "batch": ("manifest", "reference", "out", "workers", "top_k", "photos", "dask", "method", "dem"),
    "retrieve": ("text", "index", "top_k", "checkpoint", "ef_search", "place_fusion"),
    "cancel": ("target",),
    "shutdown": (),
}


def _shown(value: Any) -> str:
    """``repr`` of a request value, cut to 80 characters (for messages)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_id(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and "\0" not in v


def _is_path(v: Any) -> bool:
    return _is_text(v) and bool(v.strip())


def _is_whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _param(request: "_Request", name: str, expected: str, ok, required: bool = False, default: Any = None) -> Any:
    """``params[name]`` checked with ``ok(value)``; :class:`ProtocolError` naming the method, the
    parameter and what was ``expected`` when it is missing (and ``required``) or mistyped.
    ``null`` counts as not given (optional paths also take ``""`` for not given)."""
    value = request.params.get(name)
    if value is None:
        if required:
            raise ProtocolError(f"{request.method} needs '{name}' ({expected})")
        return default
    if not ok(value):
        raise ProtocolError(f"{request.method}: '{name}' must be {expected}, got {_shown(value)}")
    return value


def check_params(request: "_Request") -> None:
    """:class:`ProtocolError` naming any parameter ``request.method`` does not accept."""
    unknown = sorted(str(k) for k in request.params if k not in PARAMS.get(request.method, ()))
    if unknown:
        allowed = ", ".join(PARAMS[request.method]) or "none"
        raise ProtocolError(f"{request.method}: unknown parameter(s) {', '.join(repr(k) for k in unknown)} "
                            f"(accepted: {allowed})")


class Worker:
    """Serves requests read from ``stdin``; replies on ``stdout`` (both text streams)."""

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self._stdin, self._stdout = stdin, stdout
        self._write_lock = threading.Lock()
        self._queue: deque[_Request | None] = deque()
        self._ready = threading.Condition()
        self._cancelled: set = set()
        self._predictor = None
        self._model_key: tuple[str | None, str] | None = None
        self._rasters: dict[tuple, Any] = {}
        self._query_key: tuple | None = None
        self._query_size: tuple[int, int] = (0, 0)  # (width, height) of the photo of _query_key
        self._retrievers: dict[tuple, Any] = {}  # (index folder, checkpoint, device, index.json mtime) -> Retriever

    # -- transport ------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        line = json.dumps(message, allow_nan=False, default=str)
        with self._write_lock:
            self._stdout.write(line + "\n")
            self._stdout.flush()

    def _read_loop(self) -> None:
        try:
            for line in self._stdin:
                self.receive(line)
        finally:  # end of input (or an unreadable stream): the worker finishes what it has, then exits
            with self._ready:
                self._queue.append(None)
                self._ready.notify()

    def receive(self, line: str) -> None:
        """Take one request line as if read from stdin: queue it, apply a ``cancel`` at once, or
        reply ``error`` (ProtocolError) to a line that is not a usable request. Thread-safe;
        in-process hosts and tests may queue requests with it before calling :meth:`serve`."""
        line = line.strip()
        if not line:
            return
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:
            self._protocol_error(None, f"bad request line ({exc}): {line[:200]}")
            return
        request = _Request(message)
        try:
            request.check()
            if request.method == "cancel":  # handled here, at once: it must overtake the queue
                check_params(request)
                target = _param(request, "target", "the id of a request (a string or a number)",
                                lambda v: _is_id(v) and v is not None, required=True)
                with self._ready:
                    self._cancelled.add(target)
                return
        except ProtocolError as exc:
            self._protocol_error(request.id if _is_id(request.id) else None, str(exc))
            return
        with self._ready:
            self._queue.append(request)
            self._ready.notify()

    def _protocol_error(self, request_id, message: str) -> None:
        self.send({"id": request_id, "event": "error", "error": {"type": "ProtocolError", "message": message}})

    def _next(self) -> _Request | None:
        with self._ready:
            while not self._queue:
                self._ready.wait()
            request = self._queue.popleft()
            if request is not None and request.method == "locate" and any(
                    r is not None and r.method == "locate" for r in self._queue):
                request.method = "_superseded"
            return request

    def check_cancelled(self, request: _Request) -> None:
        with self._ready:
            if request.id in self._cancelled:
                raise Cancelled()

    def progress(self, request: _Request, fraction: float, message: str = "") -> None:
        self.check_cancelled(request)
        self.send({"id": request.id, "event": "progress", "progress": round(float(fraction), 4), "message": message})

    # -- main loop ------------------------------------------------------------------------
    def serve(self) -> None:
        threading.Thread(target=self._read_loop, name="smgeo-worker-stdin", daemon=True).start()
        while True:
            request = self._next()
            if request is None:
                return
            if request.method == "_superseded":
                self.send({"id": request.id, "event": "superseded"})
                continue
            try:
                self.check_cancelled(request)
                if request.method not in PARAMS:
                    raise ProtocolError(f"unknown method {_shown(request.method)} (expected hello, configure, "
                                        f"locate, batch, retrieve, cancel or shutdown)")
                check_params(request)
                result = getattr(self, f"do_{request.method}")(request)
                self.send({"id": request.id, "event": "result", "result": result})
            except Cancelled:
                self.send({"id": request.id, "event": "cancelled"})
            except Exception as exc:  # every failure is reported; the worker keeps serving
                self.send({"id": request.id, "event": "error", "error": _describe(exc)})
            finally:
                with self._ready:
                    self._cancelled.discard(request.id)
            if request.method == "shutdown":
                return

    # -- methods --------------------------------------------------------------------------
    def _ensure_model(self, key: tuple[str | None, str] | None = None):
        """The loaded predictor; (re)loads it for ``key = (checkpoint, device)`` when that
        differs from the loaded one (default: keep the loaded one, or the bundled model on CPU)."""
        key = key or self._model_key or (None, "cpu")
        if self._predictor is None or key != self._model_key:
            from smgeo_geo.predictor import GeoPredictor

            self._predictor = GeoPredictor(key[0], device=key[1])
            self._model_key = key  # open rasters stay open: a locate may hold one while the model loads
        return self._predictor

    def _describe_model(self) -> dict:
        import platform

        import torch

        from smgeo_geo import __version__

        predictor = self._ensure_model()
        return {"protocol": PROTOCOL_VERSION, "version": __version__, "python": sys.executable,
                "python_version": platform.python_version(), "torch": torch.__version__,
                "cuda_available": bool(torch.cuda.is_available()),
                "checkpoint": self._model_key[0], "model_id": predictor.model_id, "device": self._model_key[1]}

    def do_hello(self, request: _Request) -> dict:
        return self._describe_model()

    def do_configure(self, request: _Request) -> dict:
        from smgeo_geo.predictor import check_device

        checkpoint = _param(request, "checkpoint", "a checkpoint path (string) or null", _is_text) or None
        device = _param(request, "device", "a device name such as 'cpu' or 'cuda'", _is_text) or "cpu"
        self._ensure_model((checkpoint, check_device(device)))
        return self._describe_model()

    def do_shutdown(self, request: _Request) -> dict:
        self._close_rasters()
        return {"ok": True}

    def _raster(self, path: str, bands):
        from smgeo_geo.raster import open_reference

        key = (str(path), tuple(bands) if bands else None, _mtime(path))
        if key not in self._rasters:
            if len(self._rasters) >= 8:
                self._close_rasters()
            self._rasters[key] = open_reference(path, bands=key[1])
        return self._rasters[key]

    def _close_rasters(self) -> None:
        for raster in self._rasters.values():
            raster.close()
        self._rasters.clear()

    def do_locate(self, request: _Request) -> dict:
        from smgeo_geo.batch import detection_to_record
        from smgeo_geo.coords import check_bounds_crs
        from smgeo_geo.photo import check_click, read_photo
        from smgeo_geo.checks import check_top_k
        from smgeo_geo.vector_io import check_output_paths, write_heatmap_geotiff
        from smgeo_geo.locator import check_method
        from smgeo_geo.terrain import DemTerrain
        from smgeo_geo.windows import WindowSpec

        # every parameter is checked before the model or any pixel is touched
        reference = _param(request, "reference", "the path of the reference raster", _is_path, required=True)
        query = _param(request, "query", "the path of the drone photo", _is_path, required=True)
        click_xy = _param(request, "click", "[x, y]: two finite numbers in photo pixels",
                          lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(map(_is_number, v)),
                          required=True)
        top_k = check_top_k(_param(request, "top_k", "a whole number from 1 to 100", _is_whole, default=5))
        bands = _param(request, "bands", "a list of 1 or 3 band numbers, or null",
                       lambda v: isinstance(v, list) and len(v) in (1, 3) and all(map(_is_whole, v)))
        heatmap = _param(request, "heatmap", "a GeoTIFF path ending in .tif, or null",
                         lambda v: _is_path(v) and v.lower().endswith((".tif", ".tiff")))
        window = _param(request, "window", "an object with a 'mode', or null", lambda v: isinstance(v, dict))
        method = check_method(_param(request, "method", "one of auto, metadata, registration, smgeo",
                                     lambda v: isinstance(v, str), default="auto"))
        dem = _param(request, "dem", "the path of a DSM/DEM raster, or null", _is_path)
        spec = WindowSpec.from_dict(window)
        if spec.mode == "bounds":
            check_bounds_crs(spec.bounds, spec.bounds_crs, "window bounds", "window crs")
        if heatmap:
            check_output_paths({"heatmap": heatmap}, {"reference": reference, "query": query, "dem": dem})
        if dem:
            DemTerrain(dem).close()  # a bad DEM is named before the model loads
        dem = dem or None
        started = time.perf_counter()
        raster = self._raster(reference, bands)
        query_key = (str(query), _mtime(query))
        if query_key != self._query_key:  # a new photo: decode it before the model loads
            photo = read_photo(query)
            self._query_size = (photo.shape[1], photo.shape[0])
            self._query_key = query_key
        click = check_click(click_xy, self._query_size)
        self.progress(request, 0.02, "loading model")
        predictor = self._ensure_model()
        self.progress(request, 0.1, "encoding")
        predictor.last_heatmap = None

        def tick(fraction: float, message: str) -> None:
            self.progress(request, 0.15 + 0.8 * fraction, message)

        detection = predictor.locate_photo(raster, query, click, method=method, window=spec, dem=dem, top_k=top_k,
                                           progress=tick)
        cached = predictor.last_reference_cached
        if heatmap and predictor.last_heatmap is None:  # SMGeo did not run (e.g. auto answered without it)
            heatmap = None
        if heatmap:
            heat, transform = predictor.last_heatmap
            write_heatmap_geotiff(heat, transform, raster.crs, heatmap)
        detections = [detection, *detection.candidates]
        x = detection.extra
        ran_smgeo = predictor.last_heatmap is not None and predictor.reference is not None
        window = predictor.reference.window if ran_smgeo and x.get("window_mode") != "search" else None
        return {"detections": [detection_to_record(d) for d in detections], "crs": detection.crs,
                "window": None if window is None else [float(v) for v in window.flatten()],
                "method": x["method"], "answer": x["answer"], "uncertainty_m": x["uncertainty_m"],
                "located": [x["located_lon"], x["located_lat"]],
                "window_mode": x.get("window_mode"), "window_reason": x.get("window_reason"),
                "reference_cached": bool(cached), "heatmap": heatmap or None,
                "seconds": round(time.perf_counter() - started, 4)}

    def do_batch(self, request: _Request) -> dict:
        from smgeo_geo.batch import read_manifest, run_batch
        from smgeo_geo.locator import check_method
        from smgeo_geo.terrain import DemTerrain

        manifest = _param(request, "manifest", "the path of the manifest CSV", _is_path, required=True)
        out = _param(request, "out", "the path of the output .gpkg", _is_path, required=True)
        reference = _param(request, "reference", "a raster path or null", _is_text) or None
        photos = _param(request, "photos", "a folder path or null", _is_text) or None
        scheduler = _param(request, "dask", "a Dask scheduler address or null", _is_text) or None
        workers = _param(request, "workers", "a whole number of processes (1 or more)",
                         lambda v: _is_whole(v) and v >= 1, default=1)
        top_k = _param(request, "top_k", "a whole number from 1 to 100", _is_whole, default=5)
        method = check_method(_param(request, "method", "one of auto, metadata, registration, smgeo",
                                     lambda v: isinstance(v, str), default="auto"))
        dem = _param(request, "dem", "the path of a DSM/DEM raster, or null", _is_path) or None
        if dem:
            DemTerrain(dem).close()  # a bad DEM is named before any row runs
        rows = read_manifest(manifest, reference, photo_folder=photos)
        self.progress(request, 0.0, f"{len(rows)} rows")
        predictor_key = self._model_key or (None, "cpu")

        def tick(items, todo):
            done = 0
            for records in items:
                self.check_cancelled(request)  # parts written so far stay: a rerun resumes
                done += len(records)
                self.progress(request, done / max(todo, 1), f"{done}/{todo} rows")
                yield records

        return run_batch(rows, out, predictor_key[0], predictor_key[1], workers, scheduler, top_k, progress=tick,
                         method=method, dem=dem)

    def do_retrieve(self, request: _Request) -> dict:
        from smgeo_geo.checks import check_top_k
        from smgeo_retrieval.api import check_text

        text = check_text(_param(request, "text", "the description to search for (a string)", _is_text, required=True))
        index = _param(request, "index", "the path of an index folder", _is_path, required=True)
        top_k = check_top_k(_param(request, "top_k", "a whole number from 1 to 100", _is_whole, default=10))
        checkpoint = _param(request, "checkpoint", "a checkpoint path (string) or null", _is_text) or None
        ef_search = _param(request, "ef_search", "a whole number of 1 or more, or null", _is_whole)
        place_fusion = _param(request, "place_fusion", "true or false", lambda v: isinstance(v, bool), default=True)
        started = time.perf_counter()
        device = (self._model_key or (None, "cpu"))[1]
        key = (os.path.abspath(index), checkpoint and os.path.abspath(checkpoint), device,
               _mtime(os.path.join(index, "index.json")))
        cached = key in self._retrievers
        if not cached:
            from smgeo_retrieval.api import Retriever

            self.progress(request, 0.05, "loading the index and its model")
            retriever = Retriever.open(index, checkpoint, device=device)
            if len(self._retrievers) >= 4:
                self._retrievers.clear()
            self._retrievers[key] = retriever
        retriever = self._retrievers[key]
        self.check_cancelled(request)
        hits = retriever.search(text, top_k, ef_search, place_fusion=place_fusion)
        return {"hits": [h.to_record() for h in hits],
                "model": {"checkpoint": str(retriever.checkpoint), "model_id": retriever.model_id},
                "index": str(retriever.index.root), "count": retriever.index.count, "index_cached": cached,
                "seconds": round(time.perf_counter() - started, 4)}


def _mtime(path) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _describe(exc: BaseException) -> dict:
    """The ``error`` object of a reply: a user error's class name and one-line message, or
    ``InternalError`` with the exception's last line (the traceback goes to stderr)."""
    error = as_geo_error(exc)
    if isinstance(error, SMGeoError):
        return {"type": type(error).__name__, "message": " ".join(str(error).split())}
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    lines = traceback.format_exception_only(type(exc), exc)
    return {"type": "InternalError", "message": lines[-1].strip()}


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m smgeo_geo.worker``. Keeps stdout for the protocol only."""
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints (even from C) go to stderr
    sys.stdout = sys.stderr
    # bytes that are not UTF-8 become U+FFFD: the line is then refused (or names a missing file), never fatal
    stdin = open(sys.stdin.fileno(), "r", encoding="utf-8", errors="replace", closefd=False)
    Worker(stdin, protocol_out).serve()


if __name__ == "__main__":
    main()
