"""`smgeo demo`: the README's first command, on the bundled data and model."""

import json

import pyogrio

from smgeo_geo.cli import main
from smgeo_geo.cli.demo import IOU_FOUND, demo_folder
from smgeo_geo.raster import open_reference


def test_demo_prints_lon_lat_and_writes_geojson_gpkg_png(tmp_path, capsys):
    tmp_path = tmp_path / "new" / "folder"  # made by the command, once its outputs are ready
    main(["demo", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    fc = json.loads((tmp_path / "demo_result.geojson").read_text())
    props = fc["features"][0]["properties"]
    assert 0.0 <= props["iou_with_truth"] <= 1.0
    assert f"lon {props['centroid_lon']:.6f}, lat {props['centroid_lat']:.6f}" in printed
    # the demo says whether the model found the object; a miss is not called found
    verdict = "found" if props["iou_with_truth"] > IOU_FOUND else "missed"
    assert printed.startswith(f"Clicked object ({json.loads((demo_folder() / 'demo.json').read_text())['class_name']}) "
                              f"{verdict}:")
    meta = json.loads((demo_folder() / "demo.json").read_text())
    with open_reference(demo_folder() / meta["reference"]) as raster:
        assert raster.crs.to_epsg() // 100 in (326, 327)  # a real UTM zone
        x1, y1, x2, y2 = props["pixel_box"]
        assert 0 <= x1 < x2 <= raster.width and 0 <= y1 < y2 <= raster.height
        assert props["crs"] == f"EPSG:{raster.crs.to_epsg()}"
    info = pyogrio.read_info(tmp_path / "demo_result.gpkg", layer="detections")
    assert "iou_with_truth" in info["fields"] and info["features"] == 1
    assert (tmp_path / "demo_result.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_result.geojson", "demo_result.gpkg",
                                                          "demo_result.png"]  # no temporary file left

