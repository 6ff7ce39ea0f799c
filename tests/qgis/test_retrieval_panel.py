"""The "Find by description" tab of the dock in a real QGIS, on a real tiny index made by the
real CLI (``retrieval_index`` in conftest.py): a description typed and Find pressed gives the
layer of the hits ``smgeo retrieve`` gives for the same text, with thumbnails in the list;
clicking a hit selects it and zooms to it; double-clicking opens its image; a bad index folder
or an empty description is one message, and no layer; Cancel drops the answer; the index
folder is remembered."""

from __future__ import annotations

import pytest
from qgis.core import (
    QgsCategorizedSymbolRenderer, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProject, QgsRasterLayer,
    QgsVectorLayer, QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtTest import QTest

from .conftest import assert_same_ranking, cli_retrieve, wait_until

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
TEXT = "a large outdoor pool with light blue water beside a wide road"
ATTRIBUTES = ("rank", "score", "platform", "item_id", "image", "thumbnail", "lon", "lat")


def open_panel(plugin):
    dock = plugin.show_dock()
    panel = dock.retrieval_panel
    dock.tabs.setCurrentWidget(panel)
    QCoreApplication.processEvents()
    assert panel.isVisible()
    return panel


def type_and_find(panel, index, text: str, top_k: int):
    """Fill the tab as a user does and press Find; returns the task started (or None)."""
    panel.index_widget.setFilePath(str(index))
    panel.text_edit.clear()
    QTest.keyClicks(panel.text_edit, text)
    panel.top_k_spin.setValue(top_k)
    QTest.mouseClick(panel.find_button, Qt.LeftButton)
    return panel.task


def wait_for_search(panel, task, timeout: float = 300.0) -> None:
    wait_until(lambda: task.ended and panel.task is not task, timeout, "the Find by description task")
    QCoreApplication.processEvents()


def hit_layers_in_project() -> list:
    return [layer for layer in QgsProject.instance().mapLayers().values() if layer.name().startswith("SMGeo hit")]


def find(plugin, index, text: str, top_k: int):
    panel = open_panel(plugin)
    task = type_and_find(panel, index, text, top_k)
    assert task is not None, "Find starts a search"
    wait_for_search(panel, task)
    assert task.error is None, task.error
    return panel


def click_item(panel, row: int) -> None:
    item = panel.hits_list.item(row)
    panel.hits_list.scrollToItem(item)
    QTest.mouseClick(panel.hits_list.viewport(), Qt.LeftButton, Qt.NoModifier,
                     panel.hits_list.visualItemRect(item).center())


def test_find_gives_the_hits_of_smgeo_retrieve_as_layers_and_a_thumbnail_list(plugin, iface, retrieval_index,
                                                                              tmp_path):
    iface.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))  # a web basemap's map
    panel = find(plugin, retrieval_index.index, TEXT, 5)
    oracle = cli_retrieve(retrieval_index.index, TEXT, 10, tmp_path / "oracle.geojson")
    by_id = {f["properties"]["item_id"]: f for f in oracle}

    (layer,) = QgsProject.instance().mapLayersByName(f"SMGeo hits: {TEXT}")
    assert isinstance(layer, QgsVectorLayer) and layer.crs().authid() == "EPSG:4326"
    assert QgsWkbTypes.geometryType(layer.wkbType()) == QgsWkbTypes.PointGeometry
    assert set(ATTRIBUTES) <= set(layer.fields().names())
    feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    assert [f["rank"] for f in feats] == [1, 2, 3, 4, 5]
    assert_same_ranking([f["item_id"] for f in feats], [f["score"] for f in feats], oracle)
    for feat in feats:
        props = by_id[feat["item_id"]]["properties"]
        assert feat["platform"] == props["platform"] and feat["image"] == props["image"]
        assert feat["thumbnail"] == props["thumbnail"] and feat["thumbnail"].endswith(".jpg")
        point = feat.geometry().asPoint()
        assert (point.x(), point.y()) == pytest.approx((props["lon"], props["lat"]), abs=1e-9)
        assert feat["query"] == TEXT and feat["model_id"]
    assert feats[0]["score"] >= feats[-1]["score"]
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)
    assert layer.renderer().classAttribute() == "platform" and layer.labelsEnabled()
    assert "<img" in layer.mapTipTemplate() and "thumbnail" in layer.mapTipTemplate()

    # footprints: exactly the hits smgeo retrieve gives a polygon, as polygons in EPSG:4326
    with_footprint = sorted(f["item_id"] for f in feats if by_id[f["item_id"]]["geometry"]["type"] == "Polygon")
    footprints = QgsProject.instance().mapLayersByName(f"SMGeo hit footprints: {TEXT}")
    if with_footprint:
        (fp_layer,) = footprints
        assert fp_layer.crs().authid() == "EPSG:4326"
        assert QgsWkbTypes.geometryType(fp_layer.wkbType()) == QgsWkbTypes.PolygonGeometry
        assert sorted(f["item_id"] for f in fp_layer.getFeatures()) == with_footprint
    else:
        assert not footprints

    # the list: one row per hit, best first, each with its thumbnail
    rows = [panel.hits_list.item(i) for i in range(panel.hits_list.count())]
    assert len(rows) == 5
    for row, feat in zip(rows, feats):
        assert row.text().startswith(f"#{feat['rank']}  {feat['platform']}") and feat["item_id"] in row.text()
        assert not row.icon().isNull(), f"no thumbnail shown for {feat['item_id']}"
    assert panel.progress.value() == 100 and "5 hit(s)" in panel.status_label.text()

    # clicking the third hit selects its feature and shows it on the map
    click_item(panel, 2)
    (selected,) = layer.selectedFeatures()
    assert selected["item_id"] == feats[2]["item_id"]
    canvas = iface.canvas
    to_map = QgsCoordinateTransform(WGS84, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    assert canvas.mapSettings().destinationCrs().authid() == "EPSG:3857"
    point = to_map.transform(selected.geometry().asPoint())
    assert canvas.extent().contains(point) and canvas.extent().width() < 5000  # zoomed in on the hit
    click_item(panel, 0)
    assert [f["rank"] for f in layer.selectedFeatures()] == [1]


def test_the_same_description_again_replaces_its_layers(plugin, retrieval_index):
    find(plugin, retrieval_index.index, TEXT, 3)
    find(plugin, retrieval_index.index, TEXT, 4)
    (layer,) = QgsProject.instance().mapLayersByName(f"SMGeo hits: {TEXT}")
    assert layer.featureCount() == 4
    assert len(QgsProject.instance().mapLayersByName(f"SMGeo hit footprints: {TEXT}")) <= 1


def test_double_clicking_a_hit_opens_its_image(plugin, retrieval_index, monkeypatch):
    import smgeo_locator.retrieval_panel as retrieval_panel

    opened = []
    monkeypatch.setattr(retrieval_panel, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    panel = find(plugin, retrieval_index.index, "a satellite view of a building next to a road", 100)
    rows = {panel.hit_of(panel.hits_list.item(i))["platform"]: i for i in range(panel.hits_list.count())}
    assert {"satellite", "drone", "ground"} <= set(rows), "the whole index is ranked: every platform is there"

    for platform in ("drone", "ground"):  # photos go to the desktop's image viewer
        item = panel.hits_list.item(rows[platform])
        panel.hits_list.scrollToItem(item)
        centre = panel.hits_list.visualItemRect(item).center()
        QTest.mouseClick(panel.hits_list.viewport(), Qt.LeftButton, Qt.NoModifier, centre)  # a double click's
        QTest.mouseDClick(panel.hits_list.viewport(), Qt.LeftButton, Qt.NoModifier, centre)  # first press
        assert opened[-1] == panel.hit_of(item)["image"] and opened[-1].endswith(".jpg")

    item = panel.hits_list.item(rows["satellite"])  # a GeoTIFF tile becomes a raster layer
    panel.hits_list.setCurrentItem(item)
    QTest.mouseClick(panel.open_button, Qt.LeftButton)
    hit = panel.hit_of(item)
    tiles = [layer for layer in QgsProject.instance().mapLayers().values()
             if isinstance(layer, QgsRasterLayer) and layer.source() == hit["image"]]
    assert len(tiles) == 1 and tiles[0].isValid() and hit["item_id"] in tiles[0].name()
    assert len(opened) == 2  # the tile did not go to the image viewer
    QTest.mouseClick(panel.open_button, Qt.LeftButton)  # opening it again adds no second layer
    assert len([layer for layer in QgsProject.instance().mapLayers().values()
                if isinstance(layer, QgsRasterLayer) and layer.source() == hit["image"]]) == 1
    order = [node.layerId() for node in QgsProject.instance().layerTreeRoot().findLayers()]
    assert order.index(panel.hits_layer_id) < order.index(tiles[0].id()), "the hits stay drawn above the tile"


@pytest.mark.parametrize("kind", ["empty folder", "missing folder", "a file"])
def test_a_bad_index_folder_is_one_line_in_the_message_bar_and_no_layer(plugin, iface, tmp_path, kind):
    bad = {"empty folder": tmp_path, "missing folder": tmp_path / "nowhere",
           "a file": tmp_path / "index.json"}[kind]
    if kind == "a file":
        bad.write_text("{}")
    panel = open_panel(plugin)
    task = type_and_find(panel, bad, TEXT, 5)
    assert task is not None
    wait_for_search(panel, task)
    (message,) = [m for m in iface.messages() if m.startswith("Find by description: ")]
    assert str(bad) in message
    assert "\n" not in message and "Traceback" not in message and "InternalError" not in message
    assert panel.status_label.text() == message
    assert not hit_layers_in_project() and panel.hits_list.count() == 0


def test_an_empty_description_starts_no_search(plugin, iface, retrieval_index):
    panel = open_panel(plugin)
    assert type_and_find(panel, retrieval_index.index, "   ", 5) is None
    assert "type a description" in panel.status_label.text()
    assert panel.status_label.text() in iface.messages()
    panel.index_widget.setFilePath("")
    QTest.keyClicks(panel.text_edit, "a pool")
    QTest.mouseClick(panel.find_button, Qt.LeftButton)
    assert panel.task is None and "choose an index folder" in panel.status_label.text()
    assert panel.status_label.text() in iface.messages()
    assert not hit_layers_in_project()


def test_cancel_drops_the_answer(plugin, iface, retrieval_index):
    panel = open_panel(plugin)
    task = type_and_find(panel, retrieval_index.index, "a red roof beside a round pond", 5)
    assert panel.cancel_button.isEnabled()
    QTest.mouseClick(panel.cancel_button, Qt.LeftButton)
    assert panel.task is None and panel.status_label.text() == "cancelled"
    assert not panel.cancel_button.isEnabled()
    wait_until(lambda: task.ended, 300.0, "the cancelled task to end")
    QCoreApplication.processEvents()
    assert not hit_layers_in_project() and panel.hits_list.count() == 0
    assert not [m for m in iface.messages() if "rror" in m]  # a cancel is not an error


def test_the_index_folder_and_hit_count_are_remembered(plugin, retrieval_index):
    from smgeo_locator.retrieval_panel import RetrievalPanel
    from smgeo_locator.settings import PluginSettings

    find(plugin, retrieval_index.index, TEXT, 7)
    settings = PluginSettings.load()
    assert settings.retrieval_index == str(retrieval_index.index) and settings.retrieval_top_k == 7
    panel = RetrievalPanel(None, settings)  # as the panel opens next time
    assert panel.index_widget.filePath() == str(retrieval_index.index) and panel.top_k_spin.value() == 7


def test_weighing_in_the_other_views_is_a_choice_the_panel_remembers(plugin, retrieval_index, tmp_path):
    """Unticked, the panel gives the hits of `smgeo retrieve --no-place-fusion`; ticked (the
    default), those of `smgeo retrieve`; the choice is kept for the next session."""
    from smgeo_locator.retrieval_panel import RetrievalPanel
    from smgeo_locator.settings import PluginSettings

    panel = open_panel(plugin)
    assert panel.fusion_check.isChecked()
    oracles = {True: cli_retrieve(retrieval_index.index, TEXT, 10, tmp_path / "fused.geojson"),
               False: cli_retrieve(retrieval_index.index, TEXT, 10, tmp_path / "plain.geojson", "--no-place-fusion")}
    assert [f["properties"]["score"] for f in oracles[True]] != [f["properties"]["score"] for f in oracles[False]]
    for fusion in (False, True):
        if panel.fusion_check.isChecked() != fusion:
            QTest.mouseClick(panel.fusion_check, Qt.LeftButton)
        assert panel.fusion_check.isChecked() == fusion
        task = type_and_find(panel, retrieval_index.index, TEXT, 5)
        wait_for_search(panel, task)
        assert task.error is None, task.error
        (layer,) = QgsProject.instance().mapLayersByName(f"SMGeo hits: {TEXT}")
        feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
        assert_same_ranking([f["item_id"] for f in feats], [f["score"] for f in feats], oracles[fusion])
        assert PluginSettings.load().retrieval_place_fusion is fusion
        assert RetrievalPanel(None, PluginSettings.load()).fusion_check.isChecked() is fusion
