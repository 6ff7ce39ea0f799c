"""The Processing algorithm "Find places by description" in a real QGIS, on the real tiny index of
``retrieval_index``: it writes the hits ``smgeo retrieve`` gives (points and footprints in
EPSG:4326), loads them named and styled as the panel does, and fails with Processing errors
(not tracebacks) on a bad index or an empty description."""

from __future__ import annotations

import pytest
from qgis.core import (
    QgsCategorizedSymbolRenderer, QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProject,
    QgsVectorLayer, QgsWkbTypes,
)

from .conftest import assert_same_ranking, cli_retrieve
from .test_processing import processing  # noqa: F401  (the fixture)

TEXT = "a drone photo of a football pitch across the road from a parking lot"


def test_algorithm_writes_the_hits_of_smgeo_retrieve(processing, retrieval_index, tmp_path):  # noqa: F811
    feedback = QgsProcessingFeedback()
    params = {"TEXT": TEXT, "INDEX": str(retrieval_index.index), "TOP_K": 6, "OUTPUT": str(tmp_path / "hits.gpkg"),
              "FOOTPRINTS": str(tmp_path / "footprints.gpkg")}
    result = processing.run("smgeo:find_by_description", params, feedback=feedback)
    oracle = cli_retrieve(retrieval_index.index, TEXT, 12, tmp_path / "oracle.geojson")
    by_id = {f["properties"]["item_id"]: f for f in oracle}

    layer = QgsVectorLayer(result["OUTPUT"], "hits", "ogr")
    assert layer.isValid() and layer.crs().authid() == "EPSG:4326"
    assert QgsWkbTypes.geometryType(layer.wkbType()) == QgsWkbTypes.PointGeometry
    feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    assert [f["rank"] for f in feats] == [1, 2, 3, 4, 5, 6]
    assert_same_ranking([f["item_id"] for f in feats], [f["score"] for f in feats], oracle)
    for feat in feats:
        props = by_id[feat["item_id"]]["properties"]
        assert (feat["platform"], feat["image"], feat["thumbnail"]) == (props["platform"], props["image"],
                                                                      props["thumbnail"])
        point = feat.geometry().asPoint()
        assert (point.x(), point.y()) == pytest.approx((props["lon"], props["lat"]), abs=1e-9)
    assert result["COUNT"] == 6 and result["INDEX_COUNT"] >= 6 and result["MODEL_ID"] == feats[0]["model_id"]

    footprints = QgsVectorLayer(result["FOOTPRINTS"], "footprints", "ogr")
    assert footprints.isValid() and footprints.crs().authid() == "EPSG:4326"
    assert sorted(f["item_id"] for f in footprints.getFeatures()) == sorted(
        f["item_id"] for f in feats if by_id[f["item_id"]]["geometry"]["type"] == "Polygon")
    assert feedback.progress() == pytest.approx(100.0, abs=1.0)


def test_algorithm_can_leave_the_other_views_out(processing, retrieval_index, tmp_path):  # noqa: F811
    params = {"TEXT": TEXT, "INDEX": str(retrieval_index.index), "TOP_K": 4, "PLACE_FUSION": False,
              "OUTPUT": str(tmp_path / "hits.gpkg")}
    result = processing.run("smgeo:find_by_description", params, feedback=QgsProcessingFeedback())
    oracle = cli_retrieve(retrieval_index.index, TEXT, 8, tmp_path / "oracle.geojson", "--no-place-fusion")
    feats = sorted(QgsVectorLayer(result["OUTPUT"], "hits", "ogr").getFeatures(), key=lambda f: f["rank"])
    assert_same_ranking([f["item_id"] for f in feats], [f["score"] for f in feats], oracle)


def test_loaded_results_are_named_and_styled_like_the_panel(processing, retrieval_index, project):  # noqa: F811
    context = QgsProcessingContext()
    context.setProject(project)
    params = {"TEXT": TEXT, "INDEX": str(retrieval_index.index), "TOP_K": 3, "OUTPUT": "TEMPORARY_OUTPUT",
              "FOOTPRINTS": "TEMPORARY_OUTPUT"}
    processing.runAndLoadResults("smgeo:find_by_description", params, context=context)
    (layer,) = project.mapLayersByName(f"SMGeo hits: {TEXT}")
    assert layer.featureCount() == 3 and layer.crs().authid() == "EPSG:4326"
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer) and layer.labelsEnabled()
    assert "<img" in layer.mapTipTemplate()
    (footprints,) = project.mapLayersByName(f"SMGeo hit footprints: {TEXT}")
    assert QgsWkbTypes.geometryType(footprints.wkbType()) == QgsWkbTypes.PolygonGeometry
    assert isinstance(footprints.renderer(), QgsCategorizedSymbolRenderer)


@pytest.mark.parametrize("text, index, match", [
    (TEXT, "empty", "InputFileError: .*not an index folder"),
    ("   ", "good", "Description: empty"),
])
def test_bad_input_is_a_processing_error(processing, retrieval_index, tmp_path, text, index, match):  # noqa: F811
    folder = tmp_path if index == "empty" else retrieval_index.index
    with pytest.raises(QgsProcessingException, match=match):
        processing.run("smgeo:find_by_description", {"TEXT": text, "INDEX": str(folder), "TOP_K": 3,
                                                     "OUTPUT": "TEMPORARY_OUTPUT"})
    assert not [layer for layer in QgsProject.instance().mapLayers().values()
                if layer.name().startswith("SMGeo hit")]
