"""The locator on drone photos rendered from a generated orthophoto with a known camera:
metadata with errors, with and without a DEM, without metadata, and broken metadata."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from smgeo_geo.coords import geodesic_distance
from smgeo_geo.errors import MetadataError
from smgeo_geo.locator import Locator
from smgeo_geo.photo_meta import read_photo_meta
from smgeo_geo.raster import open_reference
from smgeo_geo.terrain import FlatTerrain, intersect_rays

from .scenes import render, true_camera, write_dem, write_dji_photo, write_orthophoto

GROUND = 50.0  # metres: the ground's height in the photo's altitude frame (take-off point too)
HEIGHT = 60.0  # metres above ground
CLICKS = [(240.0, 180.0), (100.0, 80.0), (400.0, 300.0), (60.0, 320.0)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("views")
    ortho = write_orthophoto(d / "ortho.tif")
    cam = true_camera(yaw=35.0, pitch=-70.0, height=GROUND + HEIGHT, offset_m=(4.0, -6.0))
    photo = render(ortho, cam, ground_height=GROUND)
    lon, lat, _ = cam.frame.to_lonlat(*cam.centre)
    # the metadata is off as a drone's is: 2 m of GPS, 3 deg of yaw, 1.5 deg of pitch
    gps = cam.frame.to_lonlat(cam.centre[0] + 1.5, cam.centre[1] - 1.2, 0.0)
    xmp = {"GimbalYawDegree": "38.0", "GimbalPitchDegree": "-71.5", "GimbalRollDegree": "0.0",
           "RelativeAltitude": f"{HEIGHT:+.2f}", "AbsoluteAltitude": f"{GROUND + HEIGHT:+.2f}"}
    path = write_dji_photo(d / "DJI_0001.JPG", photo, lon=float(gps[0]), lat=float(gps[1]), xmp=xmp)
    pts, hit = intersect_rays(cam, CLICKS, FlatTerrain(GROUND))
    assert hit.all()
    tlon, tlat, _ = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
    return {"dir": d, "ortho": ortho, "photo": path, "image": photo, "truth": (tlon, tlat), "drone": (lon, lat),
            "dem": write_dem(d / "dem.tif", GROUND)}


@pytest.fixture(scope="module")
def locator():
    loc = Locator()
    yield loc
    loc.close()


def errors(locator, data, photo, **kw):
    out = []
    with open_reference(data["ortho"]) as raster:
        for click, lon, lat in zip(CLICKS, *data["truth"]):
            det = locator.locate(raster, photo, click, **kw)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            out.append((err, det))
    return out


def test_metadata_alone_is_metres_off_and_says_so(locator, data):
    for err, det in errors(locator, data, data["photo"], method="metadata"):
        assert 0.3 < err < det.extra["uncertainty_m"] < 30, (err, det.extra["uncertainty_m"])
        assert det.extra["method"] == "metadata" and det.extra["box_source"] == "click region"


@pytest.mark.parametrize("with_dem", [False, True])
def test_auto_registers_the_rectified_photo_to_decimetres(locator, data, with_dem):
    results = errors(locator, data, data["photo"], method="auto", dem=data["dem"] if with_dem else None)
    for err, det in results:
        assert err < 0.5, (err, det.extra)
        assert det.extra["answer"] == "registration" and err <= det.extra["uncertainty_m"]
        assert det.extra["registration_mode"] == ("pose" if with_dem else "local")
        assert det.extra["method"] == "metadata+registration+smgeo"
    # the metadata-only estimate is kept beside the answer, and registration improved on it
    for (err, det), lon, lat in zip(results, *data["truth"]):
        assert float(geodesic_distance(lon, lat, det.extra["metadata_lon"], det.extra["metadata_lat"])) > 2 * err


def test_a_photo_without_metadata_registers_on_its_own(locator, data, tmp_path):
    """A near-nadir view stripped of EXIF: registration alone (photo mode) in the window."""
    from PIL import Image

    from smgeo_geo.windows import WindowSpec

    cam = true_camera(yaw=-120.0, pitch=-88.0, height=GROUND + HEIGHT)
    from tests.locate.scenes import render as render_view

    image = render_view(data["ortho"], cam, ground_height=GROUND)
    path = tmp_path / "scan.png"
    Image.fromarray(image).save(path)
    pts, _ = intersect_rays(cam, [CLICKS[0]], FlatTerrain(GROUND))
    lon, lat, _ = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
    with open_reference(data["ortho"]) as raster:
        det = locator.locate(raster, path, CLICKS[0], method="auto", window=WindowSpec("whole"))
    assert "no GPS position" in det.extra["metadata_status"]
    assert det.extra["answer"] == "registration" and det.extra["registration_mode"] == "photo"
    assert float(geodesic_distance(lon[0], lat[0], det.extra["located_lon"], det.extra["located_lat"])) < 0.5


def test_a_high_oblique_photo_without_metadata_registers_with_the_horizon_in_view(locator, data, tmp_path):
    """Looking 22 deg below the horizontal (the horizon and some sky in the top rows): the
    photo -> reference homography has its horizon inside the photo, between the photo's
    origin and the matched ground. That is a valid plane-induced map, not a broken one (it was
    refused as "the homography's horizon crosses the matched area" and the answer fell to SMGeo,
    about 120 m off)."""
    from PIL import Image

    from smgeo_geo.windows import WindowSpec

    cam = true_camera(yaw=-120.0, pitch=-22.0, height=GROUND + HEIGHT)
    above = cam.rays([(cam.width / 2, 0.5)])[0, 2] > 0
    assert above, "the test needs the horizon inside the photo"
    image = render(data["ortho"], cam, ground_height=GROUND)
    path = tmp_path / "oblique.png"
    Image.fromarray(image).save(path)
    click = (240.0, 300.0)
    pts, _ = intersect_rays(cam, [click], FlatTerrain(GROUND))
    lon, lat, _ = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
    with open_reference(data["ortho"]) as raster:
        det = locator.locate(raster, path, click, method="auto", window=WindowSpec("whole"))
    assert det.extra["answer"] == "registration" and det.extra["registration_mode"] == "photo", det.extra
    err = float(geodesic_distance(lon[0], lat[0], det.extra["located_lon"], det.extra["located_lat"]))
    assert err < 2.0 and err <= det.extra["uncertainty_m"], (err, det.extra["uncertainty_m"])


# what a photo's metadata may lack (other drones, photos re-saved by tools that drop XMP): the
# XMP left, the EXIF GPS altitude, and why the metadata stage cannot answer
PARTIAL_METADATA = {
    "no gimbal pitch": ({"GimbalYawDegree": "38.0", "RelativeAltitude": f"{HEIGHT:+.2f}",
                         "AbsoluteAltitude": f"{GROUND + HEIGHT:+.2f}"}, None, "no camera pitch"),
    "no XMP at all": ({}, GROUND + HEIGHT, "no height above ground|no heading"),
}


@pytest.mark.parametrize("with_dem", [False, True])
@pytest.mark.parametrize("case", list(PARTIAL_METADATA))
def test_a_photo_lacking_part_of_its_metadata_registers_under_assumed_cameras(locator, data, tmp_path, case,
                                                                               with_dem):
    """The metadata cannot place a camera without its pitch (it was taken as nadir, and the
    answer, metres off, claimed a 90 % radius it missed by far) or with GPS alone; cameras assumed
    over a grid of pitches, headings and heights are registered in turn, and the one that holds
    (checked by registering again with the camera its matches imply) answers, to a metre."""
    xmp, alt, reason = PARTIAL_METADATA[case]
    lon, lat = data["drone"]
    path = write_dji_photo(tmp_path / "partial.jpg", data["image"], lon=lon, lat=lat, xmp=xmp, alt=alt)
    results = errors(locator, data, path, method="auto", dem=data["dem"] if with_dem else None)
    for err, det in results:
        assert re.search(reason, det.extra["metadata_status"]), det.extra["metadata_status"]
        assert det.extra["answer"] == "registration", det.extra
        assert det.extra["registration_assumed"] and det.extra["registration_hypotheses_tried"] >= 1
        # no metadata point to compare with: the click mapped by the global matches alone is one
        assert det.extra["uncertainty_m"] >= det.extra["registration_second_opinion_m"]
        assert err < 1.0 and err <= det.extra["uncertainty_m"], (err, det.extra["uncertainty_m"])


@pytest.mark.parametrize("lens", [(-0.22, 0.06), (0.0, 0.0)])
def test_a_photo_without_a_lens_model_gets_one_fitted_to_its_matches(locator, data, tmp_path, lens):
    """A barrel lens (and none: a photo dewarped in the camera that does not say so) the metadata
    does not describe: on the DEM the lens is fitted with the pose to the photo's matches, and the
    clicks, out to the photo's corners, land to decimetres."""
    cam = replace(true_camera(yaw=35.0, pitch=-70.0, height=GROUND + HEIGHT, offset_m=(4.0, -6.0)),
                  distortion=(*lens, 0.0, 0.0, 0.0))
    lon, lat = data["drone"]
    xmp = {"GimbalYawDegree": "38.0", "GimbalPitchDegree": "-71.5", "GimbalRollDegree": "0.0",
           "RelativeAltitude": f"{HEIGHT:+.2f}", "AbsoluteAltitude": f"{GROUND + HEIGHT:+.2f}"}
    path = write_dji_photo(tmp_path / "lens.jpg", render(data["ortho"], cam, ground_height=GROUND), lon=lon, lat=lat,
                           xmp=xmp)
    clicks = [(3.0, 357.0), (477.0, 357.0), (3.0, 180.0), (477.0, 180.0), (240.0, 60.0)]
    pts, _ = intersect_rays(cam, clicks, FlatTerrain(GROUND))
    truth = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])[:2]
    with open_reference(data["ortho"]) as raster:
        for click, tlon, tlat in zip(clicks, *truth):
            e = locator.locate(raster, path, click, dem=data["dem"]).extra
            err = float(geodesic_distance(tlon, tlat, e["located_lon"], e["located_lat"]))
            assert e["answer"] == "registration" and e["registration_mode"] == "pose", e
            assert err < 0.3 and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            assert e["registration_lens_k1"] == pytest.approx(lens[0], abs=0.05)


def test_broken_metadata_skips_the_stage_with_its_reason_never_a_traceback(locator, data, tmp_path):
    lon, lat = data["drone"]
    image = data["image"]
    xmp_ok = {"GimbalYawDegree": "38.0", "GimbalPitchDegree": "-71.5", "RelativeAltitude": "+60.0"}
    cases = {
        "no GPS": (dict(lon=None, lat=None, xmp=xmp_ok), "no GPS position"),
        "GPS out of range": (dict(lon=lon, lat=95.0, xmp=xmp_ok), "out of range"),
        "no height": (dict(lon=lon, lat=lat, xmp={"GimbalYawDegree": "38.0"}), "no height above ground"),
        "no heading": (dict(lon=lon, lat=lat, xmp={"RelativeAltitude": "+60"}), "no heading"),
        "corrupt EXIF": (dict(lon=None, lat=None, xmp=xmp_ok, exif_bytes=b"Exif\x00\x00MM\x00*garbage"),
                         "no GPS position"),
        "malformed XMP": (dict(lon=lon, lat=lat, raw_xmp=b'<x:xmpmeta drone-dji:GimbalYawDegree="38.0" '
                                                          b'drone-dji:RelativeAltitude="+60" <unclosed'), None),
    }
    with open_reference(data["ortho"]) as raster:
        for name, (kw, reason) in cases.items():
            path = write_dji_photo(tmp_path / f"{name.replace(' ', '_')}.jpg", image, **kw)
            if reason is None:  # the values are still found in a packet that is not XML
                meta = read_photo_meta(path)
                assert meta.gimbal_yaw == 38.0 and meta.relative_altitude == 60.0, name
                continue
            with pytest.raises(MetadataError, match=reason):
                locator.locate(raster, path, CLICKS[0], method="metadata")
            det = locator.locate(raster, path, CLICKS[0], method="auto")
            assert reason in det.extra["metadata_status"], name
            assert det.extra["answer"] in ("registration", "smgeo"), name


def test_the_worker_answers_with_method_uncertainty_and_stage_details(data):
    """The JSON-lines worker (what QGIS drives) runs the same locator: method, answer,
    uncertainty and the located point come back; an unknown method is an OptionError reply."""
    from tests.bad_inputs.conftest import InProcess

    w = InProcess()
    params = {"reference": str(data["ortho"]), "query": str(data["photo"]), "dem": str(data["dem"])}
    w.run({"id": 1, "method": "locate", "params": {**params, "click": list(CLICKS[0])}})
    w.run({"id": 2, "method": "locate", "params": {**params, "click": list(CLICKS[1]), "method": "metadata"}})
    first, second = w.final(1)["result"], w.final(2)["result"]
    assert first["method"] == "metadata+registration+smgeo" and first["answer"] == "registration"
    lon, lat = first["located"]
    err = float(geodesic_distance(data["truth"][0][0], data["truth"][1][0], lon, lat))
    assert err < first["uncertainty_m"] < 2.0
    extra = first["detections"][0]["extra"]
    assert extra["registration_mode"] == "pose" and extra["registration_inliers"] >= 15
    assert second["method"] == "metadata" and second["uncertainty_m"] > first["uncertainty_m"]
    assert second["window"] is None  # SMGeo did not run for method metadata
    w.run({"id": 3, "method": "locate", "params": {**params, "click": list(CLICKS[0]), "method": "nonsense"}})
    assert w.final(3)["error"]["type"] == "OptionError"


@pytest.mark.parametrize("with_dem", [False, True])
def test_a_web_mercator_reference_gives_the_answers_and_radii_of_the_same_imagery_in_utm(locator, data, tmp_path,
                                                                                        with_dem):
    """Users often have imagery in Web Mercator (EPSG:3857: web map exports), whose "metres" are
    cos(latitude) ground metres (0.71 here, at 45 deg N; 0.5 at 60 deg N). The orthophoto warped
    to it at the same ground resolution: its pixel is measured on the ground (0.1 m, not its 0.14
    Mercator metres), and the answers and radii are those on the UTM orthophoto."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    merc = tmp_path / "ortho_3857.tif"
    with rasterio.open(data["ortho"]) as src:
        tr, w, h = calculate_default_transform(src.crs, "EPSG:3857", src.width, src.height, *src.bounds)
        with rasterio.open(merc, "w", **{**src.profile, "crs": "EPSG:3857", "transform": tr, "width": w,
                                         "height": h}) as dst:
            reproject(rasterio.band(src, [1, 2, 3]), rasterio.band(dst, [1, 2, 3]), resampling=Resampling.bilinear)
    dem = data["dem"] if with_dem else None
    utm = errors(locator, data, data["photo"], method="auto", dem=dem)
    web = errors(locator, {**data, "ortho": merc}, data["photo"], method="auto", dem=dem)
    with open_reference(merc) as raster:
        assert raster.pixel_size_m == pytest.approx(0.1, rel=0.02) and abs(raster.transform.a) > 0.14
    for (e_utm, d_utm), (e_web, d_web) in zip(utm, web):
        assert e_web < 0.5 and e_web <= d_web.extra["uncertainty_m"], (e_web, d_web.extra)
        assert d_web.extra["uncertainty_m"] == pytest.approx(d_utm.extra["uncertainty_m"], rel=0.25)


def test_a_photo_gps_window_over_the_nodata_of_a_mosaic_is_refused_with_its_reason(data, tmp_path):
    """The generated orthophoto inside a mosaic 300 m larger on every side, nodata around it; the
    photo's GPS moved 200 m west: its footprint lies on the mosaic but holds none of its pixels.
    Asked for, the photo_gps window is refused and says why; auto falls back to the whole raster
    and says so."""
    from smgeo_geo.errors import WindowError
    from smgeo_geo.windows import WindowSpec, resolve
    from smgeo_synth.realpairs import MetadataErrors, in_mosaic, with_metadata_errors

    mosaic = in_mosaic(data["ortho"], tmp_path / "mosaic.tif", 3000)
    moved = with_metadata_errors(data["photo"], tmp_path / "moved.jpg", MetadataErrors(gps_m=200.0, gps_azimuth_deg=270.0))
    with open_reference(mosaic) as raster:
        here = resolve(WindowSpec("photo_gps"), raster, max_side=8192, photo=data["photo"])
        assert here.window.col_off >= 3000 - 40 and "where the raster has pixels" in here.reason, here
        with pytest.raises(WindowError, match="holds no valid pixels"):
            resolve(WindowSpec("photo_gps"), raster, max_side=8192, photo=moved)
        auto = resolve(WindowSpec("auto"), raster, max_side=8192, photo=moved)
        assert auto.mode == "whole" and "holds no valid pixels" in auto.reason, auto
