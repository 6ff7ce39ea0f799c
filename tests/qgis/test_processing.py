"""The Processing provider in a real QGIS: "Locate object from drone photo" and "Batch
geocode drone survey" run through ``processing.run``, inside a model, with a method and a DSM
(on a real DJI photo and orthophoto), and fail with Processing errors (not tracebacks) on bad
input."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProcessingException, QgsProcessingFeedback,
    QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput, QgsProject, QgsVectorLayer,
)

from .conftest import DEMO, VENV_PYTHON
from .test_dock import cli_locate, lonlat_ring

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


@pytest.fixture
def processing(plugin):
    import processing

    assert processing.algorithmHelp  # QGIS's Processing framework is importable
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("smgeo") is not None
    assert {a.id() for a in registry.providerById("smgeo").algorithms()} == {"smgeo:locate", "smgeo:batch",
                                                                            "smgeo:find_by_description"}
    return processing


def _locate_params(demo_layer, demo_meta, out, **extra) -> dict:
    x, y = demo_meta["click"]
    return {"PHOTO": str(DEMO / demo_meta["query"]), "CLICK_X": x, "CLICK_Y": y, "REFERENCE": demo_layer,
            "WINDOW": 0, "CANDIDATES": 2, "OUTPUT": str(out), **extra}


def test_locate_algorithm_writes_the_object_and_its_candidates(processing, demo_layer, demo_meta, tmp_path):
    feedback = QgsProcessingFeedback()
    out = tmp_path / "located.gpkg"
    result = processing.run("smgeo:locate", _locate_params(demo_layer, demo_meta, out), feedback=feedback)
    layer = QgsVectorLayer(result["OUTPUT"], "located", "ogr")
    assert layer.isValid() and layer.crs().authid() == "EPSG:32654"
    feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    assert [f["rank"] for f in feats] == [0, 1, 2]
    assert feats[0]["score"] >= feats[1]["score"] >= feats[2]["score"]
    expected = cli_locate(demo_meta["click"], tmp_path)
    ring = {(round(x, 7), round(y, 7)) for x, y in lonlat_ring(layer, feats[0])}
    assert ring == {(round(x, 7), round(y, 7)) for x, y in expected["geometry"]["coordinates"][0]}
    assert result["SCORE"] == pytest.approx(expected["properties"]["score"], abs=1e-6)
    lon, lat = expected["properties"]["centroid_lon"], expected["properties"]["centroid_lat"]
    assert (result["CENTROID_LON"], result["CENTROID_LAT"]) == pytest.approx((lon, lat), abs=1e-9)
    assert feedback.progress() == pytest.approx(100.0, abs=1.0)
    # METHOD defaults to auto; the best feature says how it was found, candidates carry no stage details
    assert result["METHOD"] == feats[0]["method"] == expected["properties"]["method"]
    assert result["UNCERTAINTY_M"] == pytest.approx(feats[0]["uncertainty_m"]) and result["UNCERTAINTY_M"] > 0
    assert feats[0]["answer"] == result["ANSWER"] and not feats[1]["method"] and not feats[1]["uncertainty_m"]


def test_locate_algorithm_takes_an_extent_in_another_crs(processing, demo_layer, demo_meta, tmp_path):
    ext = demo_layer.extent()  # UTM 54N; search the left 3/4 of it, given in lon/lat
    part = type(ext)(ext.xMinimum(), ext.yMinimum(), ext.xMinimum() + 0.75 * ext.width(), ext.yMaximum())
    to_wgs84 = QgsCoordinateTransform(demo_layer.crs(), WGS84, QgsProject.instance())
    box = to_wgs84.transformBoundingBox(part)
    extent = f"{box.xMinimum()},{box.xMaximum()},{box.yMinimum()},{box.yMaximum()} [EPSG:4326]"
    result = processing.run("smgeo:locate", _locate_params(demo_layer, demo_meta, tmp_path / "part.gpkg",
                                                           WINDOW=1, EXTENT=extent, CANDIDATES=0))
    layer = QgsVectorLayer(result["OUTPUT"], "located", "ogr")
    (feat,) = list(layer.getFeatures())
    window = QgsCoordinateTransform(WGS84, demo_layer.crs(), QgsProject.instance()).transformBoundingBox(box)
    assert window.contains(feat.geometry().boundingBox())  # found inside the asked extent
    assert window.xMaximum() < ext.xMaximum()

    with pytest.raises(QgsProcessingException, match="no extent was given"):
        processing.run("smgeo:locate", _locate_params(demo_layer, demo_meta, tmp_path / "x.gpkg", WINDOW=1))


def test_locate_algorithm_reports_a_click_outside_the_photo(processing, demo_layer, demo_meta, tmp_path):
    with pytest.raises(QgsProcessingException, match="ClickError: .*outside"):
        processing.run("smgeo:locate", _locate_params(demo_layer, demo_meta, tmp_path / "x.gpkg", CLICK_X=1e6))
    assert not (tmp_path / "x.gpkg").exists()


def test_locate_algorithm_runs_inside_a_model(processing, demo_layer, demo_meta, tmp_path):
    """What the model designer builds: the algorithm as a child step with a model output."""
    model = QgsProcessingModelAlgorithm("locate in a model", "tests")
    child = QgsProcessingModelChildAlgorithm("smgeo:locate")
    child.setChildId("locate")
    for name, value in _locate_params(demo_layer.source(), demo_meta, "unused").items():
        if name != "OUTPUT":
            child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    output = QgsProcessingModelOutput("located", "located")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"located": output})
    model.addChildAlgorithm(child)
    out = tmp_path / "model.gpkg"
    result = processing.run(model, {"locate:located": str(out)})
    layer = QgsVectorLayer(result["locate:located"], "located", "ogr")
    assert layer.isValid() and layer.featureCount() == 3


def test_batch_algorithm_geocodes_a_survey(processing, project, demo_layer, demo_meta, tmp_path):
    manifest = tmp_path / "survey.csv"
    x, y = demo_meta["click"]
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "click_x", "click_y"])
        writer.writerow([str(DEMO / demo_meta["query"]), x, y])
        writer.writerow(["missing_photo.jpg", x, y])
        writer.writerow([str(DEMO / demo_meta["query"]), x + 3, y])
    out = tmp_path / "survey.gpkg"
    result = processing.runAndLoadResults("smgeo:batch", {"MANIFEST": str(manifest), "REFERENCE": demo_layer,
                                                          "WORKERS": 1, "OUTPUT": str(out)})
    assert (result["OK"], result["ERRORS"]) == (2, 1)
    detections = QgsVectorLayer(f"{out}|layername=detections", "d", "ogr")
    rows = QgsVectorLayer(f"{out}|layername=rows", "r", "ogr")
    assert detections.featureCount() == 2 and detections.crs().authid() == "EPSG:32654"
    statuses = {f["row"]: (f["status"], f["message"]) for f in rows.getFeatures()}
    assert statuses[0][0] == statuses[2][0] == "ok"
    assert statuses[1][0] == "error" and "missing_photo.jpg" in statuses[1][1]
    assert project.mapLayersByName("SMGeo batch detections")  # loaded into the project

    with pytest.raises(QgsProcessingException, match=r"must end in \.gpkg"):
        processing.run("smgeo:batch", {"MANIFEST": str(manifest), "REFERENCE": demo_layer,
                                       "OUTPUT": str(tmp_path / "survey.csv.out")})


def test_method_and_dem_reach_locate_and_batch(processing, project, real_odm, tmp_path):
    """METHOD and DEM: the real DJI photo located from its metadata on the DSM (exactly what
    ``smgeo locate --method metadata --dem`` finds), then a survey geocoded with auto + DSM."""
    x, y = real_odm.click
    params = {"PHOTO": str(real_odm.photo), "CLICK_X": x, "CLICK_Y": y, "REFERENCE": real_odm.ortho, "WINDOW": 0,
              "CANDIDATES": 0, "METHOD": 1, "DEM": real_odm.dsm, "OUTPUT": str(tmp_path / "meta.gpkg")}
    result = processing.run("smgeo:locate", params)
    layer = QgsVectorLayer(result["OUTPUT"], "located", "ogr")
    (feat,) = list(layer.getFeatures())
    assert layer.crs().authid() == "EPSG:32651"
    assert result["METHOD"] == result["ANSWER"] == feat["method"] == feat["answer"] == "metadata"
    assert feat["uncertainty_m"] == pytest.approx(result["UNCERTAINTY_M"]) and 0 < feat["uncertainty_m"] < 30
    out = tmp_path / "cli.geojson"
    subprocess.run([str(VENV_PYTHON), "-m", "smgeo_geo.cli", "locate", "--reference", real_odm.ortho.source(),
                    "--query", str(real_odm.photo), "--click", f"{x},{y}", "--method", "metadata",
                    "--dem", real_odm.dsm.source(), "--out", str(out)], check=True, capture_output=True, text=True)
    props = json.loads(out.read_text())["features"][0]["properties"]
    assert (result["LOCATED_LON"], result["LOCATED_LAT"]) == pytest.approx((props["located_lon"], props["located_lat"]),
                                                                          abs=1e-9)
    assert feat["uncertainty_m"] == pytest.approx(props["uncertainty_m"])
    assert (feat["located_lon"], feat["located_lat"]) == pytest.approx((props["located_lon"], props["located_lat"]))

    manifest = tmp_path / "survey.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "click_x", "click_y"])
        writer.writerow([str(real_odm.photo), x, y])
        writer.writerow([str(real_odm.photo), 301.7, 807.3])
    gpkg = tmp_path / "survey.gpkg"
    batch = processing.run("smgeo:batch", {"MANIFEST": str(manifest), "REFERENCE": real_odm.ortho, "WORKERS": 1,
                                           "METHOD": 0, "DEM": real_odm.dsm, "OUTPUT": str(gpkg)})
    assert (batch["OK"], batch["ERRORS"]) == (2, 0)
    detections = QgsVectorLayer(f"{gpkg}|layername=detections", "d", "ogr")
    rows = sorted(detections.getFeatures(), key=lambda f: f["row"])
    assert len(rows) == 2
    for row in rows:
        assert row["method"].startswith("metadata+registration") and row["answer"] in ("registration", "metadata")
        assert 0 < row["uncertainty_m"] < 30 and row["metadata_status"] == "ok"
        assert "against the DEM" in row["metadata_notes"]  # the DSM reached every row

    # METHOD is the worker's method: a metadata-only survey gives metadata rows
    meta_gpkg = tmp_path / "survey_meta.gpkg"
    processing.run("smgeo:batch", {"MANIFEST": str(manifest), "REFERENCE": real_odm.ortho, "METHOD": 1,
                                   "OUTPUT": str(meta_gpkg)})
    detections = QgsVectorLayer(f"{meta_gpkg}|layername=detections", "d", "ogr")
    assert {f["method"] for f in detections.getFeatures()} == {"metadata"}
    assert all("flat ground" in f["metadata_notes"] for f in detections.getFeatures())  # no DEM given
