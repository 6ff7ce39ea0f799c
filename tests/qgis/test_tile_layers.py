"""Tile layers (XYZ, as for a satellite basemap) as the reference: the map extent is read
into a GeoTIFF in the task, then searched. The tiles are made here from the demo GeoTIFF
with GDAL's gdal2tiles and served from file:// URLs, so no network is needed."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import subprocess

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsProcessingException, QgsProject, QgsRasterLayer,
    QgsVectorLayer,
)

from .conftest import DEMO, VENV_PYTHON, wait_for_task
from .test_dock import assert_uncertainty_circle, click_photo, layer_named, open_dock_with_demo

WEB_MERCATOR = QgsCoordinateReferenceSystem("EPSG:3857")


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xyz")
    gdal2tiles = shutil.which("gdal2tiles.py") or shutil.which("gdal2tiles")
    assert gdal2tiles, "gdal2tiles comes with gdal-bin (make system-deps)"
    subprocess.run([gdal2tiles, "--xyz", "-z", "16-18", "-r", "bilinear", "-w", "none", "-q",
                    str(DEMO / "satellite.tif"), str(folder)], check=True, capture_output=True)
    return folder


@pytest.fixture
def xyz_layer(project, iface, tiles, demo_meta):
    layer = QgsRasterLayer(f"type=xyz&url=file://{tiles}/{{z}}/{{x}}/{{y}}.png&zmin=16&zmax=18",
                           "satellite tiles", "wms")
    assert layer.isValid() and layer.crs() == WEB_MERCATOR
    project.addMapLayer(layer)
    demo = QgsRasterLayer(str(DEMO / demo_meta["reference"]), "demo", "gdal")
    iface.canvas.setDestinationCrs(WEB_MERCATOR)
    iface.canvas.setExtent(QgsCoordinateTransform(demo.crs(), WEB_MERCATOR, project).transformBoundingBox(
        demo.extent()))
    iface.active_layer = layer
    return layer


def _cli_pixel_box(reference, click, tmp_path, *args: str) -> list[float]:
    out = tmp_path / "cli.geojson"
    subprocess.run([str(VENV_PYTHON), "-m", "smgeo_geo.cli", "locate", "--reference", str(reference), "--query",
                    str(DEMO / "drone_photo.jpg"), "--click", f"{click[0]},{click[1]}", "--out", str(out), *args],
                   check=True, capture_output=True, text=True)
    return json.loads(out.read_text())["features"][0]["properties"]["pixel_box"]


def test_tile_layer_is_read_for_the_map_extent_and_searched(plugin, iface, xyz_layer, demo_meta, tmp_path):
    dock = open_dock_with_demo(plugin, demo_meta)
    assert dock.layer_combo.currentLayer() is xyz_layer
    assert dock.dem_combo.count() == 1 and dock.dem_combo.currentLayer() is None  # tiles are no DEM: only "none"
    dock.window_combo.setCurrentIndex(dock.window_combo.findData("extent"))
    shown = iface.canvas.extent()
    click = click_photo(dock, *demo_meta["click"])
    canvas_size = (iface.canvas.width(), iface.canvas.height())  # when the click was made (the panel may grow)
    task = dock.task
    wait_for_task(dock, task)
    assert task.error is None, task.error

    # The snapshot, read in the task, is gone once searched; the results name the layer instead.
    assert not os.path.exists(task.params["reference"])
    again = dataclasses.replace(task.snapshot, path=str(tmp_path / "again.tif")).write()
    # It is the map extent, in the layer's CRS.
    snapshot = QgsRasterLayer(again, "snapshot", "gdal")
    assert snapshot.isValid() and snapshot.crs() == WEB_MERCATOR and snapshot.bandCount() >= 3
    px = snapshot.rasterUnitsPerPixelX()
    got, want = ([r.xMinimum(), r.yMinimum(), r.xMaximum(), r.yMaximum()] for r in (snapshot.extent(), shown))
    assert got == pytest.approx(want, abs=px)
    # read at the resolution it is shown: the canvas's own pixels
    assert max(snapshot.width(), snapshot.height()) == max(canvas_size)

    layer = QgsProject.instance().mapLayersByName("SMGeo results")[0]
    assert layer.crs() == WEB_MERCATOR
    (feat,) = list(layer.getFeatures())
    assert feat["reference"] == "layer 'satellite tiles' (wms), map extent"
    # exactly what the library finds on that snapshot
    search = ["--search"] if task.result["window"] is None else []  # a snapshot too big for one window
    expected = _cli_pixel_box(again, click, tmp_path, *search)
    assert [feat["px_x1"], feat["px_y1"], feat["px_x2"], feat["px_y2"]] == pytest.approx(expected, abs=1e-3)
    # and on the map it is inside the tiled area (the demo scene)
    demo = QgsRasterLayer(str(DEMO / demo_meta["reference"]), "demo", "gdal")
    to_demo = QgsCoordinateTransform(WEB_MERCATOR, demo.crs(), QgsProject.instance())
    centre = to_demo.transform(feat.geometry().centroid().asPoint())
    assert demo.extent().contains(centre)
    # Web Mercator metres are 1.28x too short at 38.5 N: the 90 % circle is still r metres on the ground
    circles = layer_named("SMGeo uncertainty")
    assert circles.crs() == WEB_MERCATOR
    (circle,) = list(circles.getFeatures())
    assert_uncertainty_circle(circle, circles.crs(), task.result, demo.crs())


def test_tile_layer_needs_the_map_extent_window(plugin, iface, xyz_layer, demo_meta):
    dock = open_dock_with_demo(plugin, demo_meta)
    dock.window_combo.setCurrentIndex(dock.window_combo.findData("whole"))
    click_photo(dock, *demo_meta["click"])
    assert dock.task is None
    text = " ".join(iface.messages())
    assert "'satellite tiles'" in text and "Map's current extent" in text


def test_locate_algorithm_reads_a_tile_layer_extent(plugin, xyz_layer, demo_meta, tmp_path):
    import processing

    ext = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:32654"), WEB_MERCATOR, QgsProject.instance())
    demo = QgsRasterLayer(str(DEMO / demo_meta["reference"]), "demo", "gdal")
    box = ext.transformBoundingBox(demo.extent())
    x, y = demo_meta["click"]
    params = {"PHOTO": str(DEMO / demo_meta["query"]), "CLICK_X": x, "CLICK_Y": y, "REFERENCE": xyz_layer,
              "WINDOW": 1, "EXTENT": f"{box.xMinimum()},{box.xMaximum()},{box.yMinimum()},{box.yMaximum()} "
                                    f"[EPSG:3857]", "CANDIDATES": 0, "OUTPUT": str(tmp_path / "tiles.gpkg")}
    before = set(os.listdir(tempfile.gettempdir()))
    result = processing.run("smgeo:locate", params)
    layer = QgsVectorLayer(result["OUTPUT"], "located", "ogr")
    (feat,) = list(layer.getFeatures())
    assert layer.crs() == WEB_MERCATOR and box.contains(feat.geometry().boundingBox())
    assert feat["reference"] == "layer 'satellite tiles' (wms), map extent"
    assert not [n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("smgeo_layer_")]
    assert not math.isnan(result["CENTROID_LON"])

    with pytest.raises(QgsProcessingException, match="not a file: choose 'Extent below'"):
        processing.run("smgeo:locate", {**params, "WINDOW": 0})
