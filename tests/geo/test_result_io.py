"""Detection -> GeoJSON (RFC 7946), GeoPackage (ogrinfo + pyogrio), heatmap GeoTIFF; atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from smgeo_geo.coords import pixel_to_crs
from smgeo_geo.errors import CRSError, OutputError
from smgeo_geo.raster import open_reference
from smgeo_geo.result import Detection, detections_to_geodataframe, to_feature_collection
from smgeo_geo.vector_io import atomic_path, write_geojson, write_geopackage, write_heatmap_geotiff

from .rfc7946 import check_feature_collection


def detect(path, box, score, rank=0, **kw) -> Detection:
    with open_reference(path) as r:
        return Detection.from_pixel_box(box, r, score=score, rank=rank, query_image="q/DJI_0007.JPG",
                                        click=(12.5, 40.0), model_id="smgeo-test", **kw)


def test_detection_from_rotated_raster(georef_tifs):
    d = detect(georef_tifs["rotated"], (4, 6, 20, 16), 0.8, extra={"iou_with_truth": np.float32(0.5)})
    with rasterio.open(georef_tifs["rotated"]) as ds:
        corners = [ds.transform @ p for p in [(4, 6), (20, 6), (20, 16), (4, 16)]]
    np.testing.assert_allclose(np.array(d.polygon_crs.exterior.coords)[:4], corners, atol=1e-6)
    assert d.crs == "EPSG:32633" and d.reference == str(georef_tifs["rotated"])
    assert d.polygon_lonlat.exterior.is_ccw
    assert d.polygon_lonlat.contains(Point(d.centroid_lonlat))
    props = d.to_geojson_feature()["properties"]
    assert props["pixel_box"] == [4.0, 6.0, 20.0, 16.0] and props["click"] == [12.5, 40.0]
    assert props["iou_with_truth"] == 0.5 and props["created"].endswith("Z")
    json.dumps(props)  # plain JSON types only


def test_rfc7946_checker_can_fail():
    ring = [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]
    good = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    assert check_feature_collection(good) == []
    cw = json.loads(json.dumps(good))
    cw["features"][0]["geometry"]["coordinates"] = [ring[::-1]]
    assert any("counter-clockwise" in e for e in check_feature_collection(cw))
    assert check_feature_collection({**good, "crs": {"type": "name"}})
    far = json.loads(json.dumps(good))
    far["features"][0]["geometry"]["coordinates"][0][1] = [500000, 5000000]
    assert any("lon" in e for e in check_feature_collection(far))
    hole_ccw = json.loads(json.dumps(good))
    hole_ccw["features"][0]["geometry"]["coordinates"].append([[.2, .2], [.4, .2], [.4, .4], [.2, .2]])
    assert any("hole" in e for e in check_feature_collection(hole_ccw))


def test_geojson_is_rfc7946(georef_tifs, tmp_path):
    dets = [detect(georef_tifs[n], (1, 2, 30, 20), s, i) for i, (n, s) in
            enumerate([("utm33s", 0.9), ("rotated", 0.7), ("swiss", 0.6), ("webmerc", 0.5), ("wgs84", 0.4)])]
    dets[0].candidates = [detect(georef_tifs["utm33s"], (30, 30, 40, 40), 0.1, 1)]
    out = tmp_path / "dets.geojson"
    write_geojson(dets, out, include_candidates=True)
    doc = json.loads(out.read_text())
    assert check_feature_collection(doc) == []
    assert len(doc["features"]) == 6
    first = doc["features"][0]["properties"]
    assert (first["score"], first["rank"], first["crs"], first["model_id"]) == (0.9, 0, "EPSG:32733", "smgeo-test")
    assert first["query_image"] == "q/DJI_0007.JPG" and first["reference"].endswith("utm33s.tif")
    assert doc["features"][1]["properties"]["score"] == 0.1  # the candidate follows its detection
    assert doc == json.loads(json.dumps(to_feature_collection(dets, include_candidates=True)))
    assert os.listdir(tmp_path) == ["dets.geojson"]


def ogrinfo(path) -> str:
    exe = shutil.which("ogrinfo")
    assert exe, "ogrinfo not found: install gdal-bin"
    return subprocess.run([exe, "-so", "-al", str(path)], capture_output=True, text=True, check=True).stdout


def test_geopackage_layers_crs_attributes(georef_tifs, tmp_path):
    dets = [detect(georef_tifs["utm33n"], (1, 2, 30, 20), 0.9, 0, extra={"iou_with_truth": 0.75}),
            detect(georef_tifs["utm33n"], (40, 10, 60, 40), 0.3, 1)]
    out = tmp_path / "dets.gpkg"
    write_geopackage(dets, out)
    info = ogrinfo(out)
    for text in ("Layer name: detections", "Layer name: centroids", "Geometry: Polygon", "Geometry: Point",
                 "Feature Count: 2", "UTM zone 33N", "click_x: Real", "score: Real", "source_crs: String"):
        assert text in info, text
    assert sorted(pyogrio.list_layers(out)[:, 0]) == ["centroids", "detections"]
    meta = pyogrio.read_info(out, layer="detections")
    assert meta["crs"] == "EPSG:32633" and meta["features"] == 2
    df = pyogrio.read_dataframe(out, layer="detections")
    assert df["score"].tolist() == [0.9, 0.3] and df["rank"].tolist() == [0, 1]
    assert df["click_x"].tolist() == [12.5, 12.5] and df["click_y"].tolist() == [40.0, 40.0]
    assert set(df["query_image"]) == {"q/DJI_0007.JPG"} and set(df["source_crs"]) == {"EPSG:32633"}
    assert set(df["model_id"]) == {"smgeo-test"} and df["reference"][0].endswith("utm33n.tif")
    assert df["iou_with_truth"][0] == 0.75 and df["created"][0] == dets[0].created
    with rasterio.open(georef_tifs["utm33n"]) as ds:
        xs, ys = pixel_to_crs(ds.transform, [1, 30], [2, 20])
    assert df.geometry[0].bounds == pytest.approx((xs.min(), ys.min(), xs.max(), ys.max()))
    pts = pyogrio.read_dataframe(out, layer="centroids")
    assert pts.crs.to_epsg() == 32633 and pts.geometry[1].equals_exact(dets[1].polygon_crs.centroid, 1e-6)
    # Rewriting replaces the file (no appending) and leaves no temporary files.
    write_geopackage(dets[:1], out)
    assert pyogrio.read_info(out, layer="centroids")["features"] == 1
    assert os.listdir(tmp_path) == ["dets.gpkg"]


def test_mixed_crs_geopackage_fails_cleanly(georef_tifs, tmp_path):
    dets = [detect(georef_tifs["utm33n"], (1, 2, 3, 4), 0.5), detect(georef_tifs["swiss"], (1, 2, 3, 4), 0.4)]
    with pytest.raises(CRSError, match="EPSG:2056"):
        write_geopackage(dets, tmp_path / "mixed.gpkg")
    assert os.listdir(tmp_path) == []
    gdf = detections_to_geodataframe(dets, geometry="lonlat")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 2


def test_heatmap_geotiff(tmp_path):
    heat = np.random.default_rng(3).random((32, 40), dtype=np.float32)
    tr = Affine.translation(600_000, 7_000_000) @ Affine.scale(2.0, -2.0)
    out = tmp_path / "heat.tif"
    write_heatmap_geotiff(heat, tr, 32733, out)
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32733 and ds.transform == tr and ds.dtypes == ("float32",)
        np.testing.assert_array_equal(ds.read(1), heat)
    assert os.listdir(tmp_path) == ["heat.tif"]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "keep.geojson"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["keep.geojson"]
    with pytest.raises(OutputError, match="no_such_dir"):
        write_geojson([], tmp_path / "no_such_dir" / "x.geojson")
