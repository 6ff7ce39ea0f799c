"""The Processing provider in a real QGIS: "Locate object from drone photo" and "Batch
geocode drone survey" run through ``processing.run``, inside a model, and fail with
Processing errors (not tracebacks) on bad input."""

from __future__ import annotations

import csv

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProcessingException, QgsProcessingFeedback,
    QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput, QgsProject, QgsVectorLayer,
)

from .conftest import DEMO
from .test_dock import cli_locate, lonlat_ring

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


@pytest.fixture
def processing(plugin):
    import processing

    assert processing.algorithmHelp  # QGIS's Processing framework is importable
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("smgeo") is not None
    assert {a.id() for a in registry.providerById("smgeo").algorithms()} == {"smgeo:locate", "smgeo:batch"}
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
