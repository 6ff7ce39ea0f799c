"""Real-texture pairs (`smgeo realpairs`): the geometry of the click and the box against the camera
model and the inputs, DSM occlusion, determinism, the CVOGL layout and the commands that read it.

The inputs are generated (``scenes.py``): a 400 m orthophoto with coloured roofs, a DSM with the
buildings as boxes and their footprints in WGS84; every oracle below is computed from those
inputs and the manifest's camera with the project's camera and terrain modules, pyproj and
rasterio, not with the generator's own geometry.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from PIL import Image

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.cli import main
from smgeo_geo.coords import transform_xy
from smgeo_geo.errors import InputFileError, OptionError
from smgeo_synth.realpairs import Surface, camera_from_info, generate_realpairs, render_view
from smgeo_geo.terrain import DemTerrain, FlatTerrain, intersect_rays
from smgeo_model.data import CVOGLDataset, read_split, satellite_georef

from . import scenes

NAME = "REAL_DroneAerial"
SMALL = dict(reference_size=256, query_size=128, progress=False)
PAIRS = 6


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(argv) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("real_inputs")
    return {"ortho": scenes.write_orthophoto(d / "ortho.tif"), "dsm": scenes.write_dsm(d / "dsm.tif"),
            "footprints": scenes.write_footprints(d / "buildings.gpkg"), "dir": d}


@pytest.fixture(scope="module")
def dataset(inputs, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("real_data")
    manifest = generate_realpairs(inputs["ortho"], root, PAIRS, seed=5, dem=inputs["dsm"],
                                  footprints=inputs["footprints"], class_field="class", **SMALL)
    return root, manifest


def _items(root: Path) -> list:
    return sorted((it for s in ("train", "val", "test") for it in read_split(root, NAME, s)),
                  key=lambda it: it.query_path.name)


def _footprints_lonlat(inputs) -> gpd.GeoDataFrame:
    return gpd.read_file(inputs["footprints"]).to_crs(4326)


def test_click_cast_back_through_the_camera_lands_in_the_target_footprint(dataset, inputs):
    _check_clicks(*dataset, inputs, PAIRS)


def _check_clicks(root: Path, manifest: dict, inputs: dict, pairs: int) -> None:
    info = {p["query"]: p for p in manifest["pairs_info"]}
    footprints = _footprints_lonlat(inputs)
    items = _items(root)
    assert len(items) == pairs
    with DemTerrain(inputs["dsm"]) as dsm:
        for it in items:
            pair = info[it.query_path.name]
            cam = pair["camera"]
            camera = camera_from_info(cam)
            assert (camera.width, camera.height) == Image.open(it.query_path).size
            # the recorded pose is the camera's: lon/lat/altitude agree with its local frame
            lon, lat, alt = camera.frame.to_lonlat(*camera.centre)
            assert np.allclose([lon, lat, alt], [cam["lon"], cam["lat"], cam["altitude"]], atol=1e-9)
            assert np.allclose(camera.rotation, rotation_from_angles(cam["yaw"], cam["pitch"], cam["roll"]), atol=1e-9)
            pts, hit = intersect_rays(camera, [it.click], dsm)
            assert hit[0], it
            plon, plat, _ = camera.frame.to_lonlat(*pts[0])
            inside = footprints.contains(gpd.points_from_xy([plon], [plat], crs=4326)[0])
            assert inside.sum() == 1, (it, plon, plat)
            feature = int(np.nonzero(inside.to_numpy())[0][0])
            assert pair["target"]["source"] == f"feature {feature}"
            assert it.class_name == scenes.BUILDINGS[feature][3]


def test_truth_box_is_the_footprint_envelope_in_the_tile(dataset, inputs):
    _check_boxes(*dataset, inputs, 256)


def _check_boxes(root: Path, manifest: dict, inputs: dict, size: int) -> None:
    info = {p["query"]: p for p in manifest["pairs_info"]}
    utm = gpd.read_file(inputs["footprints"])  # back in the file's CRS (WGS84), then to each tile's EPSG
    for it in _items(root):
        epsg, e, n, extent = satellite_georef(it.satellite_path.name)
        with rasterio.open(it.satellite_path.with_suffix(".tif")) as tif:  # the GeoTIFF beside the JPEG
            assert tif.crs.to_epsg() == epsg and (tif.width, tif.height) == (size, size)
            inv = ~tif.transform
        feature = int(info[it.query_path.name]["target"]["source"].split()[1])
        xs, ys = (np.asarray(v) for v in utm.geometry.iloc[feature].exterior.xy)
        ex, ey = transform_xy(utm.crs, epsg, xs, ys)
        cols, rows = inv @ (np.asarray(ex), np.asarray(ey))
        expected = (cols.min(), rows.min(), cols.max(), rows.max())
        assert np.allclose(it.box, expected, atol=1.0), (it.box, expected)
        assert 2 <= min(it.box) and max(it.box) <= size - 2  # a margin from the edges
        # the box holds the roof in the tile's pixels (each roof has a colour the ground lacks)
        tile = np.asarray(Image.open(it.satellite_path).convert("RGB"), np.float32)
        x1, y1, x2, y2 = (int(round(v)) for v in it.box)
        inner = tile[y1 + 1:y2 - 1, x1 + 1:x2 - 1].reshape(-1, 3)
        roof = np.array(scenes.BUILDINGS[feature][2], np.float32)
        assert np.median(np.linalg.norm(inner - roof, axis=1)) < 60, (inner.mean(0), roof)


def test_geographic_orthophoto_is_cut_in_its_utm_zone(inputs, tmp_path):
    """An orthophoto in WGS84 lon/lat: tiles in its UTM zone (EPSG:32633), resampled; the click
    and the box keep their geometry."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    ortho = tmp_path / "ortho_wgs84.tif"
    with rasterio.open(inputs["ortho"]) as src:
        transform, w, h = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds)
        profile = dict(src.profile, crs="EPSG:4326", transform=transform, width=w, height=h, nodata=0)
        with rasterio.open(ortho, "w", **profile) as dst:
            for b in (1, 2, 3):
                reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.bilinear)
    manifest = generate_realpairs(ortho, tmp_path / "data", 2, seed=2, dem=inputs["dsm"],
                                  footprints=inputs["footprints"], class_field="class", **SMALL)
    assert manifest["crs"] == "EPSG:32633"
    _check_clicks(tmp_path / "data", manifest, inputs, 2)
    _check_boxes(tmp_path / "data", manifest, inputs, 256)


def test_click_sits_on_the_target_in_the_photo(dataset):
    """The photo shows the roof's colour at the click (the renderer, the click and the camera agree)."""
    root, manifest = dataset
    info = {p["query"]: p for p in manifest["pairs_info"]}
    for it in _items(root):
        feature = int(info[it.query_path.name]["target"]["source"].split()[1])
        photo = np.asarray(Image.open(it.query_path).convert("RGB"), np.float32)
        x, y = (int(v) for v in it.click)
        patch = photo[max(0, y - 1):y + 2, max(0, x - 1):x + 2].reshape(-1, 3).mean(0)
        roof = np.array(scenes.BUILDINGS[feature][2], np.float32)
        ground = np.array([90, 120, 70], np.float32)
        assert np.linalg.norm(patch - roof) < np.linalg.norm(patch - ground), (patch, roof)


def _camera_south_of_main(width: int = 160) -> tuple[FrameCamera, np.ndarray, float]:
    """A camera 70 m south of the tall red building (20 m), 45 m above the ground, looking north
    and down 25 deg; and a ground point 20 m north of the building: the line of sight passes the
    building's north edge 8 m above the ground, so the building hides the point (a building
    under 8 m would not)."""
    fp = scenes.footprint(scenes.MAIN)
    x0, y0, x1, y1 = fp.bounds
    cx = (x0 + x1) / 2
    lon, lat = scenes.lonlat(cx, y0 - 70.0)
    ground = float(scenes.ground_height([cx])[0])
    frame = LocalFrame(lon, lat, 0.0)
    f = width / 2 / np.tan(np.radians(30))
    camera = FrameCamera(width, width, f, f, width / 2, width / 2, (0.0, 0.0, 0.0, 0.0, 0.0),
                         rotation_from_angles(0.0, -25.0, 0.0), np.array([0.0, 0.0, ground + 45.0]), frame)
    blon, blat = scenes.lonlat(cx, y1 + 20.0)
    behind = np.array(frame.from_lonlat(blon, blat, float(scenes.ground_height([cx])[0])), float).ravel()
    return camera, behind, ground


def test_dsm_occludes_what_is_behind_a_building(inputs):
    camera, behind, ground = _camera_south_of_main()
    top = ground + scenes.BUILDINGS[scenes.MAIN][1]
    # the line of sight from the camera to the point passes through the building's box
    seg = camera.centre + np.linspace(0, 1, 400)[:, None] * (behind - camera.centre)
    lon, lat, h = camera.frame.to_lonlat(seg[:, 0], seg[:, 1], seg[:, 2])
    ex, ey = transform_xy(4326, scenes.CRS, lon, lat)
    x0, y0, x1, y1 = scenes.footprint(scenes.MAIN).bounds
    assert ((ex > x0) & (ex < x1) & (ey > y0) & (ey < y1) & (h < top - 0.5)).any()
    (px,), front = camera.project(behind[None])
    assert front[0] and 0 < px[0] < camera.width and 0 < px[1] < camera.height
    c, r = int(px[0]), int(px[1])
    # the ground point that pixel's centre looks at (the renderer casts pixel centres)
    behind_h = float(camera.frame.to_lonlat(*behind)[2])
    pts, hit = intersect_rays(camera, [(c + 0.5, r + 0.5)], FlatTerrain(behind_h))
    behind = pts[0]
    red = np.array(scenes.BUILDINGS[scenes.MAIN][2]) / 255.0
    with Surface(inputs["ortho"], inputs["dsm"]) as surface:
        view = render_view(surface, camera)
    seen = view.points[r, c]
    assert np.linalg.norm(seen - camera.centre) < np.linalg.norm(behind - camera.centre) - 5  # met before the point
    slon, slat, sh = camera.frame.to_lonlat(*seen)
    (sx,), (sy,) = transform_xy(4326, scenes.CRS, [slon], [slat])
    assert x0 - 1 < sx < x1 + 1 and y0 - 1 < sy < y1 + 1 and sh > ground + 1  # on the building
    assert np.linalg.norm(view.image[r, c] - red) < 0.25, view.image[r, c]
    # without the DSM (flat ground at the point's height) the same pixel sees the ground there
    with Surface(inputs["ortho"], ground_height=behind_h) as flat:
        bare = render_view(flat, camera)
    assert np.linalg.norm(bare.points[r, c] - behind) < 0.01
    assert np.linalg.norm(bare.image[r, c] - red) > 0.4, bare.image[r, c]


def test_rendered_surface_agrees_with_the_camera_model(inputs):
    """Ground points in view project (camera.project) to pixels whose rendered surface point is
    the ground point: the renderer's rays are the camera model's."""
    camera, _, _ = _camera_south_of_main()
    with Surface(inputs["ortho"], inputs["dsm"]) as surface, DemTerrain(inputs["dsm"]) as dsm:
        view = render_view(surface, camera)
        pixels = np.array([[20.5, 150.5], [80.5, 140.5], [140.5, 120.5], [60.5, 110.5]])
        pts, hit = intersect_rays(camera, pixels, dsm)
    assert hit.all()
    for (x, y), p in zip(pixels, pts):
        gsd = np.linalg.norm(p - camera.centre) / camera.fx
        assert np.linalg.norm(view.points[int(y), int(x)] - p) < max(0.15, 2 * gsd)
        assert view.valid[int(y), int(x)]


def test_same_seed_same_bytes_whatever_the_workers(dataset, inputs, tmp_path):
    root, _ = dataset
    generate_realpairs(inputs["ortho"], tmp_path, PAIRS, seed=5, dem=inputs["dsm"], footprints=inputs["footprints"],
                       class_field="class", workers=2, **SMALL)
    a, b = _files(root / NAME), _files(tmp_path / NAME)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    assert len([k for k in a if k.startswith("query/")]) == PAIRS
    assert len([k for k in a if k.endswith(".tif")]) == len([k for k in a if k.startswith("satellite/")]) / 2


def test_layout_is_cvogl_and_evaluate_runs_on_it(dataset, tmp_path, capsys):
    root, manifest = dataset
    folder = root / NAME
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk["counts"] == manifest["counts"] == {"train": 4, "val": 1, "test": 1}
    assert on_disk["crs"] == "EPSG:32633" and on_disk["generator"] == "smgeo_synth.realpairs"
    sample = CVOGLDataset(root, NAME, "train", reference_size=256, query_size=128)[0]
    assert sample["query"].shape == (3, 128, 128) and sample["reference"].shape == (3, 256, 256)
    for it in _items(root):
        epsg, e, n, extent = satellite_georef(it.satellite_path.name)
        assert epsg == 32633 and extent == on_disk["options"]["tile_extent_m"]
        with rasterio.open(it.satellite_path.with_suffix(".tif")) as tif:
            assert np.allclose(tif.transform.c + tif.width * tif.transform.a / 2, e)
            assert np.allclose(tif.transform.f + tif.height * tif.transform.e / 2, n)
            pixels = tif.read().transpose(1, 2, 0).astype(int)  # the JPEG's pixels (GDAL's and PIL's
            assert np.abs(pixels - np.asarray(Image.open(it.satellite_path), int)).mean() < 1  # decoders differ a little)
    out = tmp_path / "eval.json"
    assert run(["evaluate", "--data-root", str(root), "--data-name", NAME, "--split", "train", "--methods",
                "centre_prior", "--limit", "3", "--json", str(out), "--no-figures"]) == 0
    report = json.loads(out.read_text())
    assert report["data"]["pairs"] == 3 and "centre_prior" in report["methods"]
    assert 0.0 <= report["methods"]["centre_prior"]["mIoU"] <= 1.0
    capsys.readouterr()


def test_salient_targets_without_footprints_or_dsm(inputs, tmp_path):
    """Without footprints the targets are salient points with square regions; the click is the
    point itself, cast back (flat ground) within centimetres of it; the box is the region."""
    manifest = generate_realpairs(inputs["ortho"], tmp_path, 2, seed=1, region_size=24.0, **SMALL)
    assert manifest["targets"]["kind"] == "salient" and manifest["targets"]["count"] > 10
    res = manifest["options"]["ground_resolution_m"]
    info = {p["query"]: p for p in manifest["pairs_info"]}
    for it in _items(tmp_path):
        assert it.class_name == "salient"
        x1, y1, x2, y2 = it.box
        assert abs((x2 - x1) - 24.0 / res) < 1 and abs((y2 - y1) - 24.0 / res) < 1
        pair = info[it.query_path.name]
        camera = camera_from_info(pair["camera"])
        pts, hit = intersect_rays(camera, [it.click], FlatTerrain(0.0))
        lon, lat, _ = camera.frame.to_lonlat(*pts[0])
        (x,), (y,) = transform_xy(4326, scenes.CRS, [lon], [lat])
        assert np.hypot(x - pair["target"]["anchor"][0], y - pair["target"]["anchor"][1]) < 0.05
        epsg, e, n, extent = satellite_georef(it.satellite_path.name)
        assert abs((x1 + x2) / 2 - ((x - (e - extent / 2)) / res)) < 1  # the region is centred on the point
        assert abs((y1 + y2) / 2 - (((n + extent / 2) - y) / res)) < 1


def test_cli_writes_pairs_and_reports_user_errors_on_one_line(inputs, tmp_path, capsys):
    args = ["realpairs", "--reference", str(inputs["ortho"]), "--dem", str(inputs["dsm"]), "--footprints",
            str(inputs["footprints"]), "--out", str(tmp_path / "data"), "--pairs", "1", "--reference-size", "256",
            "--query-size", "128", "--quiet", "--workers", "1"]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "wrote 1 pairs" in out and "EPSG:32633" in out and "footprints targets" in out
    assert len(list((tmp_path / "data" / NAME / "query").glob("*.jpg"))) == 1
    assert run(args) == 2  # an existing dataset is not replaced without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err

    missing = tmp_path / "nope.tif"
    (tmp_path / "afile").write_text("x")
    no_polygons = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([15.0], [45.0]), crs=4326).to_file(no_polygons, driver="GeoJSON")
    cases = [
        (["--reference", str(missing)], f"{missing}: no such file"),
        (["--footprints", str(tmp_path / "none.gpkg")], "--footprints"),
        (["--footprints", str(no_polygons)], "holds no polygons"),
        (["--class-field", "kind"], "--class-field 'kind'"),
        (["--query-size", "big"], "--query-size must be N or HxW"),
        (["--pairs", "0"], "--pairs must be a whole number"),
        (["--out", str(tmp_path / "afile")], "is a file"),
    ]
    base = {"--reference": str(inputs["ortho"]), "--footprints": str(inputs["footprints"]),
            "--out": str(tmp_path / "other"), "--pairs": "1", "--query-size": "128", "--reference-size": "256"}
    for extra, message in cases:
        opts = dict(base)
        opts.update(dict(zip(extra[::2], extra[1::2])))
        argv = ["realpairs", "--quiet"] + [v for kv in opts.items() for v in kv]
        assert run(argv) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1, (extra, err)
    assert not (tmp_path / "other").exists()  # refused before anything was written


def test_library_errors_name_the_option_or_file(inputs, tmp_path):
    with pytest.raises(OptionError, match="--region-size"):
        generate_realpairs(inputs["ortho"], tmp_path, 1, region_size=500.0, **SMALL)
    with pytest.raises(OptionError, match="--ground-resolution"):
        generate_realpairs(inputs["ortho"], tmp_path, 1, ground_resolution=5.0, **SMALL)
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame(geometry=[scenes.footprint(0).buffer(1).envelope], crs=scenes.CRS).translate(5000, 0).to_file(far)
    with pytest.raises(InputFileError, match="none of its 1 polygons can be a target"):
        generate_realpairs(inputs["ortho"], tmp_path, 1, footprints=far, **SMALL)
    assert not list(tmp_path.glob(NAME))


def test_help_has_an_example(capsys):
    assert run(["realpairs", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out and "smgeo realpairs --reference ortho.tif" in out


def test_recorded_match_points_show_the_tile_pixel_their_ray_meets(dataset, inputs):
    """Each pair's ``points`` (photo corners with the tile pixel they show) against the photo
    pixel's ray cast onto the DSM with the manifest's camera and put in the tile by its GeoTIFF."""
    root, manifest = dataset
    info = {p["query"]: p for p in manifest["pairs_info"]}
    errors = []
    with DemTerrain(inputs["dsm"]) as dsm:
        for it in _items(root):
            points = np.asarray(info[it.query_path.name]["points"], float).reshape(-1, 4)
            assert 3 <= len(points) <= 8, "a textured photo gives corners to match"
            camera = camera_from_info(info[it.query_path.name]["camera"])
            pts, hit = intersect_rays(camera, points[:, :2], dsm)
            assert hit.all()
            lon, lat, _ = camera.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
            epsg = satellite_georef(it.satellite_path.name)[0]
            with rasterio.open(it.satellite_path.with_suffix(".tif")) as tif:
                xs, ys = transform_xy(4326, epsg, lon, lat)
                cols, rows = ~tif.transform @ (np.asarray(xs), np.asarray(ys))
                assert ((points[:, 2:] >= 0) & (points[:, 2:] <= tif.width)).all()
            errors.extend(np.hypot(cols - points[:, 2], rows - points[:, 3]))
    errors = np.asarray(errors)  # tile pixels; the renderer samples the supersampled pixel's ray
    assert np.median(errors) < 0.5 and np.mean(errors < 1.5) >= 0.9, np.sort(errors)
