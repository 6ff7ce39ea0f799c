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
    "click": [x, y] (photo pixels, upright photo), "window": WINDOW, "top_k": 5,
    "heatmap": GeoTIFF path | null} -> ``{"detections": [RECORD, ...] (rank 0 first),
    "crs": raster CRS (EPSG:xxxx or WKT), "window": [col_off, row_off, width, height]
    (raster pixels) or null for a sliding search, "reference_cached": bool, "heatmap":
    path | null, "seconds": float}``. RECORD is
    :func:`smgeo_geo.batch.detection_to_record` (polygons as WKT in the raster CRS and in
    WGS84 lon/lat, ``pixel_box`` in raster pixels, score, rank, model_id, ...).
    WINDOW is one of ``{"mode": "whole"}`` (the whole raster; a sliding-window search
    when it is too big for one window), ``{"mode": "bounds", "bounds": [minx, miny, maxx,
    maxy], "crs": any pyproj CRS string or WKT}``, ``{"mode": "center", "lon": ..., "lat":
    ..., "radius_m": ...}`` (WGS84, metres), ``{"mode": "photo_gps"}`` (EXIF/DJI
    metadata of the photo) or ``{"mode": "search"}`` (sliding windows over the raster).
``batch`` {"manifest": CSV, "reference": raster | null, "out": .gpkg, "workers": 1,
    "top_k": 5, "photos": folder | null} -> the summary of :func:`smgeo_geo.batch.run_batch`.
    Resumable like ``smgeo batch``; cancelling stops between groups of rows.
``cancel`` {"target": id}: cancels a queued or running request (no reply of its own).
``shutdown`` {} -> ``{"ok": true}``; the worker exits. End of stdin also ends it.

User errors (:class:`smgeo_geo.SMGeoError`, model/config errors) come back as ``error``
with the exception's type name and its one-line message; anything else as ``error`` of
type ``InternalError`` with the traceback's last line (the full traceback goes to stderr).
Library output never reaches stdout: it is redirected to stderr, which hosts should log.
"""

from __future__ import annotations

import json
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
        self.params = message.get("params") or {}


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

    # -- transport ------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        line = json.dumps(message, allow_nan=False, default=str)
        with self._write_lock:
            self._stdout.write(line + "\n")
            self._stdout.flush()

    def _read_loop(self) -> None:
        for line in self._stdin:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                self.send({"id": None, "event": "error",
                           "error": {"type": "ProtocolError", "message": f"bad request line ({exc}): {line[:200]}"}})
                continue
            request = _Request(message)
            with self._ready:
                if request.method == "cancel":
                    self._cancelled.add(request.params.get("target"))
                else:
                    self._queue.append(request)
                self._ready.notify()
        with self._ready:
            self._queue.append(None)  # end of input
            self._ready.notify()

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
                handler = getattr(self, f"do_{request.method}", None) if isinstance(request.method, str) else None
                if handler is None:
                    raise ProtocolError(f"unknown method {request.method!r} (expected hello, configure, locate, "
                                         f"batch, cancel or shutdown)")
                result = handler(request)
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
            self._model_key = key
            self._close_rasters()
            self._query_key = None
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
        checkpoint = request.params.get("checkpoint") or None
        device = request.params.get("device") or "cpu"
        if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
            raise ProtocolError(f"device must be 'cpu' or 'cuda', got {device!r}")
        self._ensure_model((checkpoint, device))
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
        from smgeo_geo import windows
        from smgeo_geo.batch import detection_to_record
        from smgeo_geo.predictor import check_top_k
        from smgeo_geo.vector_io import write_heatmap_geotiff
        from smgeo_geo.windows import WindowSpec

        p = request.params
        for name in ("reference", "query", "click"):
            if p.get(name) in (None, ""):
                raise ProtocolError(f"locate needs '{name}'")
        started = time.perf_counter()
        self.progress(request, 0.02, "loading model")
        predictor = self._ensure_model()
        raster = self._raster(p["reference"], p.get("bands"))
        query_key = (str(p["query"]), _mtime(p["query"]))
        if query_key != self._query_key:
            self.progress(request, 0.1, "encoding drone photo")
            self._query_key = None
            predictor.set_query(p["query"])
            self._query_key = query_key
        top_k = check_top_k(p.get("top_k", 5))
        click = predictor.validate_click(p["click"])
        resolved = predictor.resolve_window(raster, WindowSpec.from_dict(p.get("window")), photo=p["query"])
        window = resolved.window
        if resolved.search:
            n = len(windows.sliding_windows(raster, max(predictor.config.reference_size)))
            done = [0]

            def tick(items):
                for item in items:
                    self.progress(request, 0.15 + 0.8 * done[0] / n, f"window {done[0] + 1}/{n}")
                    done[0] += 1
                    yield item

            detection = predictor.locate_resolved(raster, resolved, click, top_k, progress=tick)
            cached = False
        else:
            self.progress(request, 0.3, "encoding reference window")
            detection = predictor.locate_resolved(raster, resolved, click, top_k)
            cached = predictor.last_reference_cached
        heatmap = p.get("heatmap")
        if heatmap:
            heat, transform = predictor.last_heatmap
            write_heatmap_geotiff(heat, transform, raster.crs, heatmap)
        detections = [detection, *detection.candidates]
        return {"detections": [detection_to_record(d) for d in detections], "crs": detection.crs,
                "window": None if window is None else [float(v) for v in window.flatten()],
                "window_mode": resolved.mode, "window_reason": resolved.reason,
                "reference_cached": bool(cached), "heatmap": heatmap or None,
                "seconds": round(time.perf_counter() - started, 4)}

    def do_batch(self, request: _Request) -> dict:
        from smgeo_geo.batch import read_manifest, run_batch

        p = request.params
        for name in ("manifest", "out"):
            if not p.get(name):
                raise ProtocolError(f"batch needs '{name}'")
        rows = read_manifest(p["manifest"], p.get("reference") or None, photo_folder=p.get("photos") or None)
        self.progress(request, 0.0, f"{len(rows)} rows")
        predictor_key = self._model_key or (None, "cpu")

        def tick(items, todo):
            done = 0
            for records in items:
                self.check_cancelled(request)  # parts written so far stay: a rerun resumes
                done += len(records)
                self.progress(request, done / max(todo, 1), f"{done}/{todo} rows")
                yield records

        return run_batch(rows, p["out"], predictor_key[0], predictor_key[1], int(p.get("workers", 1)),
                         p.get("dask") or None, int(p.get("top_k", 5)), progress=tick)


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
    stdin = open(sys.stdin.fileno(), "r", encoding="utf-8", closefd=False)
    Worker(stdin, protocol_out).serve()


if __name__ == "__main__":
    main()
