"""The JSON-lines worker (``python -m smgeo_geo.worker``) that GUI hosts drive.

A real worker process in this environment, spoken to over its pipes exactly as the QGIS
plugin does: every stdout line must be a protocol message, every request gets one final
reply, the latest queued click wins, cancels and user errors leave the worker serving.
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
    worker.send(_locate(2, scene, click, top_k=3, heatmap=str(heatmap)))
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
    with rasterio.open(heatmap) as heat:
        assert heat.crs.to_epsg() == 32632 and heat.read(1).max() <= 1.0

    worker.send(_locate(3, scene, scene["clicks"][1].tolist()))  # second click: same photo and raster
    second = worker.final(3)["result"]
    assert second["reference_cached"] is True
    assert second["detections"][0]["pixel_box"] != best["pixel_box"]
    assert worker.close() == 0


def test_latest_click_wins_and_cancel_is_honoured(worker, scene):
    click = scene["clicks"][0].tolist()
    # configure (loads the model) keeps the worker busy while the rest queue up behind it
    worker.send({"id": 1, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}},
                _locate(2, scene, click), _locate(3, scene, click), _locate(4, scene, click),
                {"id": 5, "method": "hello"}, {"id": 6, "method": "cancel", "params": {"target": 5}})
    assert worker.final(1)["event"] == "result"
    assert worker.final(2)["event"] == "superseded"
    assert worker.final(3)["event"] == "superseded"
    assert worker.final(4)["event"] == "result"
    assert worker.final(5)["event"] == "cancelled"
    assert not [r for r in worker.replies if r.get("id") == 6]  # cancel has no reply of its own
    assert worker.close() == 0


def test_user_errors_are_replies_and_the_worker_keeps_serving(worker, scene, tmp_path):
    worker.send("this is not json")
    bad = worker.final(None)
    assert bad["error"]["type"] == "ProtocolError" and "not json" in bad["error"]["message"]

    worker.send({"id": 1, "method": "dance"})
    assert "unknown method 'dance'" in worker.final(1)["error"]["message"]

    worker.send({"id": 2, "method": "configure", "params": {"checkpoint": str(scene["checkpoint"])}},
                _locate(3, scene, [10_000, 5]))
    assert worker.final(2)["event"] == "result"
    click_error = worker.final(3)["error"]
    assert click_error["type"] == "ClickError" and "10000" in click_error["message"]
    stages = [r["message"] for r in worker.replies if r.get("id") == 3 and r["event"] == "progress"]
    assert "encoding reference window" not in stages  # rejected before the expensive step

    missing = tmp_path / "nowhere.tif"
    worker.send({"id": 4, "method": "locate", "params": {"reference": str(missing), "query": str(scene["photo"]),
                                                          "click": [5, 5]}})
    error = worker.final(4)["error"]
    assert error["type"] != "InternalError" and "nowhere.tif" in error["message"]

    worker.send({"id": 5, "method": "locate", "params": {"query": str(scene["photo"])}})
    assert worker.final(5)["error"] == {"type": "ProtocolError", "message": "locate needs 'reference'"}

    worker.send(_locate(6, scene, scene["clicks"][0].tolist()))
    assert worker.final(6)["event"] == "result"
    assert worker.close() == 0
