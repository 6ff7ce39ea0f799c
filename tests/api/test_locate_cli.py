"""`smgeo locate`: outputs a GIS user opens, and one clear line for each user error."""

import json
import subprocess

import numpy as np
import pyogrio
import pytest
import rasterio

from smgeo_geo.cli import main


def run(args):
    try:
        main(args)
    except SystemExit as exc:
        return exc.code
    return 0


def test_locate_writes_geojson_geopackage_and_heatmap(scene, tmp_path, capsys):
    click = ",".join(f"{v:.2f}" for v in scene["clicks"][1].tolist())
    base = ["locate", "--reference", str(scene["reference"]), "--query", str(scene["photo"]), "--click", click,
            "--checkpoint", str(scene["checkpoint"])]
    assert run(base + ["--out", str(tmp_path / "r.geojson"), "--heatmap", str(tmp_path / "heat.tif")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("lon ") and "score" in printed
    fc = json.loads((tmp_path / "r.geojson").read_text())
    props = fc["features"][0]["properties"]
    assert props["rank"] == 0 and len(props["pixel_box"]) == 4 and props["crs"] == "EPSG:32632"
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 5 < lon < 10 and 46 < lat < 48  # UTM 32N, 5,200 km north: Switzerland/Germany
    with rasterio.open(tmp_path / "heat.tif") as heat:
        assert heat.crs.to_epsg() == 32632 and heat.shape == (16, 16)
        # the heatmap covers the reference raster exactly (16 cells of 16 px of 0.5 m)
        assert heat.transform.a == pytest.approx(8.0) and heat.bounds.left == pytest.approx(500_000.0)
        assert np.isfinite(heat.read(1)).all()
    assert run(base + ["--out", str(tmp_path / "r.gpkg")]) == 0
    info = pyogrio.read_info(tmp_path / "r.gpkg", layer="detections")
    assert "32632" in info["crs"] and {"score", "rank", "query_image", "click_x", "model_id"} <= set(info["fields"])
    ogr = subprocess.run(["ogrinfo", "-so", "-al", str(tmp_path / "r.gpkg")], capture_output=True, text=True)
    assert ogr.returncode == 0 and "centroids" in ogr.stdout


@pytest.mark.parametrize("change,message", [
    ({"--reference": "missing.tif"}, "missing.tif"),
    ({"--query": "missing.jpg"}, "photo {tmp}/missing.jpg not found"),
    ({"--click": "999,5"}, "click (999, 5) lies outside the 128x128 photo"),
    ({"--click": "12;5"}, "click must be X,Y"),
    ({"--checkpoint": "nope.safetensors"}, "nope.json not found"),
])
def test_user_errors_print_one_line_and_write_nothing(scene, tmp_path, capsys, change, message):
    args = {"--reference": str(scene["reference"]), "--query": str(scene["photo"]), "--click": "10,10",
            "--checkpoint": str(scene["checkpoint"]), "--out": str(tmp_path / "r.geojson")}
    for k, v in change.items():
        args[k] = v if "," in v or ";" in v else str(tmp_path / v)
    code = run(["locate", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.geojson").exists()


def test_raster_without_georeferencing_is_refused(scene, tmp_path, capsys):
    with rasterio.open(tmp_path / "plain.tif", "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as d:
        d.write(np.zeros((3, 64, 64), np.uint8))
    code = run(["locate", "--reference", str(tmp_path / "plain.tif"), "--query", str(scene["photo"]), "--click",
                "1,1", "--checkpoint", str(scene["checkpoint"])])
    err = capsys.readouterr().err
    assert code == 2 and "plain.tif" in err and "no geotransform" in err
