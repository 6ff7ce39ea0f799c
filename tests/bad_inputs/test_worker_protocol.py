"""The worker protocol with bad requests: exactly one final ``error`` reply whose type says
what went wrong (``ProtocolError`` naming the parameter for a request of the wrong shape, the
library's error for a refused value, never ``InternalError``), sent before the model is
loaded, nothing written, inputs untouched, and the worker goes on serving."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smgeo_geo.worker import PARAMS

from .conftest import LOCAL_CS, InProcess, copy_checkpoint, snapshot


def locate(p: dict, **changes) -> dict:
    params = {"reference": str(p["ref"]), "query": str(p["photo"]), "click": [20, 20]}
    params.update(changes)
    return {"id": "r", "method": "locate", "params": {k: v for k, v in params.items() if v is not None}}


# name -> (request made from the inputs and the out folder, error type, strings the message must hold)
CASES = {
    "line not an object": (lambda p, o: [1, 2], "ProtocolError", ["not a JSON object"]),
    "params a list": (lambda p, o: {"id": "r", "method": "locate", "params": [1]}, "ProtocolError",
                      ["'params' must be an object"]),
    "method a number": (lambda p, o: {"id": "r", "method": 5}, "ProtocolError", ["unknown method 5"]),
    "unknown parameter": (lambda p, o: locate(p, clik=[1, 2]), "ProtocolError", ["unknown parameter", "'clik'"]),
    "reference missing": (lambda p, o: locate(p, reference=None), "ProtocolError", ["needs 'reference'"]),
    "reference a number": (lambda p, o: locate(p, reference=5), "ProtocolError", ["'reference' must be"]),
    "reference not found": (lambda p, o: locate(p, reference=f"{p['dir']}/nope.tif"), "RasterError", ["nope.tif"]),
    "reference complex": (lambda p, o: locate(p, reference=str(p["complex"])), "RasterError",
                          ["complex.tif", "complex64"]),
    "reference lat 95": (lambda p, o: locate(p, reference=str(p["lat95"])), "RasterError", ["lat95.tif"]),
    "reference local CRS": (lambda p, o: locate(p, reference=str(p["local_cs"])), "CRSError", ["local_cs.tif"]),
    "query bomb": (lambda p, o: locate(p, query=str(p["bomb"])), "ImageError", ["bomb.png", "megapixel limit"]),
    "query truncated": (lambda p, o: locate(p, query=str(p["truncated"])), "ImageError", ["truncated.jpg"]),
    "click a string": (lambda p, o: locate(p, click="10,20"), "ProtocolError", ["'click' must be [x, y]"]),
    "click three numbers": (lambda p, o: locate(p, click=[1, 2, 3]), "ProtocolError", ["'click'"]),
    "click booleans": (lambda p, o: locate(p, click=[True, 2]), "ProtocolError", ["'click'"]),
    "click NaN": (lambda p, o: locate(p, click=[float("nan"), 2]), "ProtocolError", ["'click'", "finite"]),
    "click outside": (lambda p, o: locate(p, click=[500, 5]), "ClickError", ["outside the 128x96 photo"]),
    "top_k a string": (lambda p, o: locate(p, top_k="5"), "ProtocolError", ["'top_k'", "'5'"]),
    "top_k a fraction": (lambda p, o: locate(p, top_k=1.5), "ProtocolError", ["'top_k'"]),
    "top_k zero": (lambda p, o: locate(p, top_k=0), "OptionError", ["top-k", "got 0"]),
    "bands two": (lambda p, o: locate(p, bands=[1, 2]), "ProtocolError", ["'bands'", "1 or 3"]),
    "bands text": (lambda p, o: locate(p, bands="1,2,3"), "ProtocolError", ["'bands'"]),
    "band out of range": (lambda p, o: locate(p, bands=[5]), "RasterError", ["ref.tif", "bands (5,)"]),
    "window a string": (lambda p, o: locate(p, window="whole"), "ProtocolError", ["'window'"]),
    "window unknown mode": (lambda p, o: locate(p, window={"mode": "nope"}), "OptionError", ["window mode"]),
    "window latitude 95": (lambda p, o: locate(p, window={"mode": "center", "lon": 10, "lat": 95, "radius_m": 50}),
                           "OptionError", ["lat=95"]),
    "window local CRS": (lambda p, o: locate(p, window={"mode": "bounds", "bounds": [0, 0, 9, 9], "crs": LOCAL_CS}),
                         "CRSError", ["window crs", "WGS84"]),
    "window bounds lat 95": (lambda p, o: locate(p, window={"mode": "bounds", "bounds": [10, 89, 11, 95]}),
                             "OptionError", ["window bounds", "lat -90..90"]),
    "heatmap a number": (lambda p, o: locate(p, heatmap=5), "ProtocolError", ["'heatmap'", ".tif"]),
    "heatmap a PNG": (lambda p, o: locate(p, heatmap=f"{o}/heat.png"), "ProtocolError", ["'heatmap'"]),
    "heatmap is the reference": (lambda p, o: locate(p, heatmap=str(p["ref"])), "OptionError",
                                 ["heatmap", "reference input"]),
    "heatmap in a missing folder": (lambda p, o: locate(p, heatmap=f"{o}/no/heat.tif"), "OutputError",
                                    ["heatmap", "does not exist"]),
    "configure device gpu": (lambda p, o: {"id": "r", "method": "configure", "params": {"device": "gpu"}},
                             "DeviceError", ["'gpu'"]),
    "configure device a number": (lambda p, o: {"id": "r", "method": "configure", "params": {"device": 0}},
                                  "ProtocolError", ["'device'"]),
    "configure checkpoint a list": (lambda p, o: {"id": "r", "method": "configure", "params": {"checkpoint": [1]}},
                                    "ProtocolError", ["'checkpoint'"]),
    "batch without manifest": (lambda p, o: {"id": "r", "method": "batch", "params": {"out": f"{o}/b.gpkg"}},
                               "ProtocolError", ["needs 'manifest'"]),
    "batch workers zero": (lambda p, o: {"id": "r", "method": "batch", "params": {
        "manifest": f"{p['dir']}/m.csv", "out": f"{o}/b.gpkg", "workers": 0}}, "ProtocolError", ["'workers'"]),
    "batch top_k a string": (lambda p, o: {"id": "r", "method": "batch", "params": {
        "manifest": f"{p['dir']}/m.csv", "out": f"{o}/b.gpkg", "top_k": "5"}}, "ProtocolError", ["'top_k'"]),
    "cancel without target": (lambda p, o: {"id": "r", "method": "cancel", "params": {}}, "ProtocolError",
                              ["cancel needs 'target'"]),
    "cancel target a list": (lambda p, o: {"id": "r", "method": "cancel", "params": {"target": [1]}},
                             "ProtocolError", ["'target'"]),
}


@pytest.mark.parametrize("make,kind,names", CASES.values(), ids=CASES.keys())
def test_bad_request_gets_one_error_before_the_model(inputs, tmp_path, make, kind, names):
    w = InProcess()
    before = snapshot(inputs["dir"])
    request = make(inputs, tmp_path)
    w.run(json.dumps(request), {"id": "after", "method": "shutdown"})
    request_id = request.get("id") if isinstance(request, dict) else None
    error = w.final(request_id)["error"]
    assert error["type"] == kind, error
    for name in names:
        assert name in error["message"], error
    assert [r for r in w.replies if r["event"] == "progress"] == []  # refused before any work step
    assert w.worker._predictor is None  # the model was never loaded
    assert w.final("after")["result"] == {"ok": True}  # and the worker went on serving
    assert snapshot(inputs["dir"]) == before and snapshot(tmp_path) == {}


def test_bad_checkpoint_keeps_the_loaded_model(inputs, tmp_path):
    stem = copy_checkpoint(tmp_path, "edited", lambda d: d["config"].update(moe_grid=[4, "4"]))
    w = InProcess()
    w.run({"id": 1, "method": "hello"},
          {"id": 2, "method": "configure", "params": {"checkpoint": str(stem)}},
          {"id": 3, "method": "configure", "params": {"checkpoint": str(tmp_path / "nothing")}})
    model_id = w.final(1)["result"]["model_id"]
    bad = w.final(2)["error"]
    assert bad["type"] == "CheckpointError" and "edited.json: field moe_grid" in bad["message"]
    assert w.final(3)["error"]["type"] == "CheckpointError" and "nothing.json" in w.final(3)["error"]["message"]
    w.run(locate(inputs))
    assert w.final("r")["event"] == "result"
    assert w.final("r")["result"]["detections"][0]["model_id"] == model_id


def test_bad_id_is_answered_without_an_id():
    w = InProcess()
    w.run(json.dumps({"id": {"x": 1}, "method": "hello"}), json.dumps({"id": [1], "method": "cancel"}))
    errors = [r for r in w.replies if r["event"] == "error"]
    assert [e["id"] for e in errors] == [None, None]
    assert all(e["error"]["type"] == "ProtocolError" and "'id'" in e["error"]["message"] for e in errors)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)


@pytest.fixture(scope="module")
def served():
    """One worker for every generated request (the model, if a request gets that far, loads once)."""
    return InProcess()


def plausible(p: dict) -> dict:
    """name -> strategy of values a host might send: right types (in or out of range) and wrong ones."""
    paths = st.sampled_from([str(p[k]) for k in ("ref", "photo", "bomb", "local_cs", "all_nodata", "lat95")])
    windows = st.sampled_from([None, {"mode": "whole"}, {"mode": "search"}, {"mode": "photo_gps"},
                               {"mode": "center", "lon": 13.7, "lat": 45.1, "radius_m": 20},
                               {"mode": "bounds", "bounds": [400000, 4999970, 400030, 5000000], "crs": "EPSG:32633"},
                               {"mode": "bounds", "bounds": [0, 0, 1, 1]}, {"mode": "center"}])
    return {"reference": paths, "query": paths,
            "click": st.lists(st.floats(-50, 200, allow_nan=False), min_size=2, max_size=2),
            "top_k": st.integers(-2, 120), "bands": st.sampled_from([[1], [3, 2, 1], [4], [0, 1, 2]]),
            "window": windows, "heatmap": st.sampled_from([str(p["dir"] / "out_never.tif"), str(p["ref"])]),
            "method": st.sampled_from(["auto", "metadata", "registration", "smgeo", "magic", ""]),
            "dem": st.sampled_from([str(p["ref"]), str(p["photo"]), str(p["dir"] / "no_dem.tif"), str(p["complex"])])}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_locate_params_give_one_final_reply_and_no_internal_error(inputs, served, data):
    """A valid request with some parameters dropped, or replaced by values of the right type
    (in or out of range) or by any JSON value."""
    params = locate(inputs)["params"]
    values = plausible(inputs)
    for name in data.draw(st.lists(st.sampled_from(PARAMS["locate"]), max_size=3, unique=True), label="changed"):
        how = data.draw(st.sampled_from(["drop", "plausible", "plausible", "json"]), label=name)
        if how == "drop":
            params.pop(name, None)
        else:
            params[name] = data.draw(values[name] if how == "plausible" else JSON, label=f"{name} value")
    if data.draw(st.integers(0, 9), label="unknown parameter") == 0:
        params["topk"] = 3
    before = snapshot(inputs["dir"])
    served.replies.clear()
    served.run({"id": "fuzz", "method": "locate", "params": params})
    final = served.final("fuzz")
    if final["event"] == "error":
        assert final["error"]["type"] != "InternalError", (params, final)
        if final["error"]["type"] == "ProtocolError":
            assert any(f"'{k}'" in final["error"]["message"] for k in [*params, *PARAMS["locate"]]), final
        assert snapshot(inputs["dir"]) == before  # a refused request writes nothing
    else:
        assert final["event"] == "result", final
        (inputs["dir"] / "out_never.tif").unlink(missing_ok=True)  # a heatmap a valid request asked for
