"""The JSON-lines worker (``python -m smgeo_geo.worker``) that GUI hosts drive.

A real worker process in this environment, spoken to over its pipes exactly as the QGIS
plugin does: every stdout line must be a protocol message, every request gets one final
reply. The queueing rules (the latest queued click wins, cancels, user errors leave the
worker serving) are tested in-process with every request queued before the worker starts
serving, so no test depends on how fast a model loads.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest
import rasterio

from smgeo_geo.predictor import GeoPredictor
from smgeo_geo.raster import open_reference
from smgeo_geo.worker import Worker

from ..bad_inputs.conftest import InProcess

FINAL = ("result", "error", "cancelled", "superseded")


class RawWorker:
    """A worker subprocess; ``send`` writes request lines, ``final`` waits for a reply."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "smgeo_geo.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.replies: list[dict] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # drain

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, *requests: dict | str) -> None:
        """All requests in one write, so the worker sees them queued together."""
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests)
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def final(self, request_id, timeout: float = 120.0) -> dict:
        """The final reply to ``request_id`` (progress replies are kept in ``replies``)."""
        for reply in self.replies:
            if reply.get("id") == request_id and reply["event"] in FINAL:
                return reply
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, "worker exited"
            reply = json.loads(line)  # stdout carries protocol messages only
            self.replies.append(reply)
            if reply.get("id") == request_id and reply["event"] in FINAL:
                return reply

    def close(self) -> int:
        self.send({"id": "bye", "method": "shutdown"})
        assert self.final("bye")["result"] == {"ok": True}
        return self.process.wait(timeout=30)


@pytest.fixture
def worker():
    w = RawWorker()
    yield w
    if w.process.poll() is None:
        w.process.kill()


def _locate(request_id, scene, click, **params) -> dict:
    return {"id": request_id, "method": "locate",
            "params": {"reference": str(scene["reference"]), "query": str(scene["photo"]),
                       "click": [float(v) for v in click], **params}}


def test_locate_matches_the_library_and_caches_the_reference(worker, scene, tmp_path):
    worker.send({"id": 1, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}})
    info = worker.final(1)["result"]
    assert info["protocol"] == 1 and info["model_id"].startswith("tiny@") and info["device"] == "cpu"

    click = scene["clicks"][0].tolist()
    heatmap = tmp_path / "heat.tif"
    worker.send(_locate(2, scene, click, top_k=3, heatmap=str(heatmap), method="smgeo"))
    first = worker.final(2)["result"]
    progress = [r for r in worker.replies if r.get("id") == 2 and r["event"] == "progress"]
    assert progress and all(0 <= r["progress"] <= 1 for r in progress)
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)

    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(scene["reference"]) as raster:
        predictor.set_reference(raster)
        predictor.set_query(scene["photo"])
        expected = predictor.locate(tuple(click), top_k=3)
    best = first["detections"][0]
    assert first["crs"] == "EPSG:32632" and first["window"] == [0, 0, 256, 256]
    assert [d["rank"] for d in first["detections"]] == [0, 1, 2]
    np.testing.assert_allclose(best["pixel_box"], expected.pixel_box, atol=1e-3)
    assert best["score"] == pytest.approx(expected.score, abs=1e-5)
    assert best["polygon_crs"].startswith("POLYGON") and best["polygon_lonlat"].startswith("POLYGON")
    assert first["reference_cached"] is False
    assert first["method"] == "smgeo" and first["answer"] == "smgeo" and first["uncertainty_m"] > 0
    with rasterio.open(heatmap) as heat:
        assert heat.crs.to_epsg() == 32632 and heat.read(1).max() <= 1.0

    worker.send(_locate(3, scene, scene["clicks"][1].tolist(), method="smgeo"))  # second click: same photo, raster
    second = worker.final(3)["result"]
    assert second["reference_cached"] is True
    assert second["detections"][0]["pixel_box"] != best["pixel_box"]

    # through the real pipe: bytes that are not UTF-8 and a line that is not JSON are refused, not fatal
    worker.process.stdin.flush()
    worker.process.stdin.buffer.write(b'{"id": 4, "method": "hel\xff\xfelo"}\n')
    worker.process.stdin.buffer.flush()
    assert "unknown method" in worker.final(4)["error"]["message"]
    worker.send("this is not json")
    assert worker.final(None)["error"]["type"] == "ProtocolError"
    assert worker.close() == 0


def test_latest_click_wins_and_cancel_is_honoured(scene):
    w = InProcess()
    click = scene["clicks"][0].tolist()
    w.run({"id": 1, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}},
          _locate(2, scene, click), _locate(3, scene, click), _locate(4, scene, click),
          {"id": 5, "method": "hello"}, {"id": 6, "method": "cancel", "params": {"target": 5}})
    assert w.final(1)["event"] == "result"
    assert w.final(2)["event"] == "superseded"
    assert w.final(3)["event"] == "superseded"
    assert w.final(4)["event"] == "result"
    assert w.final(5)["event"] == "cancelled"
    assert not [r for r in w.replies if r.get("id") == 6]  # cancel has no reply of its own


def test_cancel_stops_a_running_request_at_its_next_progress_step(scene):
    class CancelOnFirstProgress(Worker):
        """A host that sends ``cancel`` while the request runs (at its first progress report)."""

        def progress(self, request, fraction, message=""):
            self.receive(json.dumps({"id": None, "method": "cancel", "params": {"target": request.id}}))
            super().progress(request, fraction, message)

    w = InProcess(CancelOnFirstProgress)
    w.run({"id": 1, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}},
          _locate(2, scene, scene["clicks"][0].tolist()), {"id": 3, "method": "hello"})
    assert w.final(2)["event"] == "cancelled"
    assert not [r for r in w.replies if r.get("id") == 2 and r["event"] == "progress"]
    assert w.final(3)["event"] == "result"  # the worker goes on serving


def test_user_errors_are_replies_and_the_worker_keeps_serving(scene, tmp_path):
    w = InProcess()
    w.run("this is not json", {"id": 1, "method": "dance"})
    assert w.final(None)["error"]["type"] == "ProtocolError" and "not json" in w.final(None)["error"]["message"]
    assert "unknown method 'dance'" in w.final(1)["error"]["message"]

    w.run({"id": 2, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}},
          _locate(3, scene, [10_000, 5]))
    assert w.final(2)["event"] == "result"
    click_error = w.final(3)["error"]
    assert click_error["type"] == "ClickError" and "10000" in click_error["message"]
    stages = [r["message"] for r in w.replies if r.get("id") == 3 and r["event"] == "progress"]
    assert stages == []  # refused before the model or any encoding step

    missing = tmp_path / "nowhere.tif"
    for request in ({"id": 4, "method": "locate", "params": {"reference": str(missing), "query": str(scene["photo"]),
                                                              "click": [5, 5]}},
                    {"id": 5, "method": "locate", "params": {"query": str(scene["photo"])}},
                    _locate(6, scene, scene["clicks"][0].tolist())):
        w.run(request)  # one at a time: a queued locate would supersede the one before it
    error = w.final(4)["error"]
    assert error["type"] == "RasterError" and "nowhere.tif" in error["message"]
    assert w.final(5)["error"] == {"type": "ProtocolError",
                                   "message": "locate needs 'reference' (the path of the reference raster)"}
    assert w.final(6)["event"] == "result"


def test_a_bug_is_an_internal_error_and_the_worker_keeps_serving():
    class Buggy(Worker):
        def do_hello(self, request):
            return {"ratio": 1 / 0}

    w = InProcess(Buggy)
    w.run({"id": 1, "method": "hello"}, {"id": 2, "method": "shutdown"})
    assert w.final(1)["error"] == {"type": "InternalError", "message": "ZeroDivisionError: division by zero"}
    assert w.final(2)["result"] == {"ok": True}
