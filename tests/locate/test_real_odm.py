"""Locating on real imagery: real DJI photos, a real orthophoto and DSM (shared/data/real-odm).

The data sits beside the checkout (``../shared/data/real-odm``), as on CI; a checkout without
it skips these tests (on CI, where it is always present, they fail instead of skipping).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rasterio.windows import Window

from smgeo_geo.camera import camera_from_opensfm
from smgeo_geo.coords import geodesic_distance
from smgeo_geo.errors import MetadataError, SMGeoError
from smgeo_geo.stages import STRONG_INLIERS
from smgeo_geo.photo_meta import read_photo_meta
from smgeo_geo.pose import camera_from_metadata, locate_pixel
from smgeo_geo.raster import open_reference
from smgeo_geo.registration import MIN_INLIERS
from smgeo_geo.terrain import DemTerrain, intersect_rays
from smgeo_geo.windows import WindowSpec, resolve
from smgeo_synth.realpairs import MetadataErrors, coarse_terrain, in_mosaic, satellite_like, with_metadata_errors

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real-odm"
if not DATA.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"real test data missing on CI: {DATA}")
    pytest.skip(f"the shared real-data folder {DATA} is not beside this checkout", allow_module_level=True)

SOUTH = DATA / "photos" / "100_0005_0136.jpg"
EAST = DATA / "photos" / "100_0005_0018.jpg"
ORTHO = DATA / "reference_0018.tif"
DSM = DATA / "dsm.tif"
# clicks on distinct objects in the overlap (a subset of bench/data/real_odm_clicks.csv)
CLICKS = [(88.3, 759.3), (301.7, 807.3), (431.3, 835.0), (570.7, 819.3), (101.7, 889.3), (537.3, 884.0)]
# metadata off as a drone's without RTK can be (2-3 sigma of the error budget each)
CONSUMER = MetadataErrors(gps_m=5.0, gps_azimuth_deg=45.0, yaw_deg=5.0, pitch_deg=2.0, altitude_m=15.0, rtk=False)


@pytest.fixture(scope="module")
def reconstruction():
    return json.loads((DATA / "reconstruction.json").read_text())[0]


def truth_of(reconstruction, clicks) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of each click: ray of the camera that made the orthophoto onto the DSM."""
    cam = camera_from_opensfm(reconstruction, "100_0005_0136", grid_crs="EPSG:32651")
    with DemTerrain(DSM) as dem:
        pts, hit = intersect_rays(cam, clicks, dem)
    assert hit.all()
    lon, lat, _ = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
    return lon, lat


@pytest.fixture(scope="module")
def truth(reconstruction):
    return truth_of(reconstruction, CLICKS)


@pytest.fixture(scope="module")
def locator():
    from smgeo_geo.locator import Locator

    loc = Locator()
    yield loc
    loc.close()


def test_dji_metadata_of_the_real_photos():
    m = read_photo_meta(SOUTH)
    assert (m.gimbal_yaw, m.gimbal_pitch, m.gimbal_roll) == (-175.8, -60.0, 0.0)
    assert m.relative_altitude == pytest.approx(100.01) and m.absolute_altitude == pytest.approx(186.65)
    assert m.focal_length_35mm == 24 and m.size == (1368, 912) and m.make == "DJI"
    assert m.lat == pytest.approx(24.680147, abs=1e-6) and m.lon == pytest.approx(120.951665, abs=1e-6)
    k1, k2, p1, p2, k3 = m.distortion
    assert k1 == pytest.approx(-0.267098) and k3 == pytest.approx(-0.0331614)
    assert m.rtk_std_m is not None and m.rtk_std_m[0] < 0.05


def test_metadata_camera_is_close_to_the_reconstructed_one(reconstruction):
    """Intrinsics from EXIF (35 mm equivalent over the diagonal) agree with the calibrated
    focal length to 0.1 %; the metadata-only ground point of each click lies within its own
    stated 90 % uncertainty of the truth."""
    with DemTerrain(DSM) as dem:
        prior = camera_from_metadata(read_photo_meta(SOUTH), dem)
        accurate = camera_from_opensfm(reconstruction, "100_0005_0136", grid_crs="EPSG:32651")
        assert prior.camera.fx == pytest.approx(accurate.fx, rel=1e-3)
        pts, _ = intersect_rays(accurate, CLICKS, dem)
        tlon, tlat, _ = accurate.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
        for click, lon, lat in zip(CLICKS, tlon, tlat):
            g = locate_pixel(prior, click)
            assert float(geodesic_distance(lon, lat, g.lon, g.lat)) < g.uncertainty_m


def test_the_orthophoto_camera_reproduces_the_orthophoto(reconstruction):
    """The truth of the benchmark is sound: photo 0018 rectified onto the DSM with its
    reconstructed camera (in the UTM grid axes, at its GPS position) lands on the orthophoto
    made from it to within half a pixel (0.1 m)."""
    from smgeo_geo.rectification import features, match, rectify

    with open_reference(ORTHO) as raster, DemTerrain(DSM) as dem:
        cam = camera_from_opensfm(reconstruction, "100_0005_0018", grid_crs="EPSG:32651")
        from smgeo_geo.pose import CameraPrior, ErrorBudget

        prior = CameraPrior(cam, dem, ErrorBudget(), 0.0, 0.0, 0.0)
        from rasterio.windows import Window

        window = Window(0, 700, raster.width, 250)  # the road
        image, valid, mapping = raster.read_window_with_mask(window, (raster.width, 250))
        rect, rect_valid, _ = rectify(np.array(Image.open(EAST).convert("RGB")), prior, raster, mapping,
                                          (raster.width, 250))
        ka, da = features(rect, rect_valid)
        kb, db = features(image, valid)
        pairs = match(da, db)
        shift = kb[pairs[:, 1]] - ka[pairs[:, 0]]
        assert len(pairs) > 100
        assert np.all(np.abs(np.median(shift, axis=0)) < 0.5)


def test_auto_locates_real_clicks_to_within_a_metre_and_says_how_sure(locator, truth):
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            det = locator.locate(raster, SOUTH, click, dem=DSM)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            assert err < 1.0, (click, err)
            assert err <= det.extra["uncertainty_m"] <= 5.0
            assert det.extra["answer"] == "registration"
            assert det.extra["method"].startswith("metadata+registration")
            assert det.extra["registration_inliers"] >= MIN_INLIERS and det.extra["registration_mode"] == "pose"
            assert det.extra["registration_patch_inliers"] >= 12  # refined on the patch around the click
            # the detection's polygon holds the located point
            from shapely.geometry import Point

            assert det.polygon_lonlat.buffer(1e-6).contains(Point(det.extra["located_lon"], det.extra["located_lat"]))
    assert locator.last_registration_cached  # every click after the first reused the registration


@pytest.mark.parametrize("offset_m", [-60.0, 45.0])
def test_a_dsm_in_another_vertical_datum_still_registers_and_the_offset_is_reported(locator, truth, tmp_path,
                                                                                    offset_m):
    """The DSM's heights offset from the photo's RTK altitude (another vertical datum: geoid and
    ellipsoid differ by up to about 100 m): the metadata camera is tens of metres too high or
    low against the DSM and registration at its height fails; trying other camera heights finds
    the one that registers, the refined camera says how far off the DSM's heights are, and the
    answer (the registration's: the metadata's point rests on the wrong height) holds to a metre."""
    import rasterio

    with rasterio.open(DSM) as src:
        profile, heights = src.profile, src.read(1)
    shifted = tmp_path / "dsm_other_datum.tif"
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(heights + offset_m, 1)
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            det = locator.locate(raster, SOUTH, click, dem=shifted)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            assert det.extra["answer"] == "registration" and det.extra["registration_mode"] == "pose", det.extra
            assert err < 1.0 and err <= det.extra["uncertainty_m"], (click, err, det.extra["uncertainty_m"])
            assert det.extra["registration_height_hypothesis_m"] != 0
            assert det.extra["registration_camera_height_change_m"] == pytest.approx(offset_m, abs=3.0)


def test_on_a_coarse_terrain_model_the_answer_stays_inside_its_radius(locator, reconstruction, tmp_path):
    """A 30 m terrain model (as SRTM or Copernicus, which users often have instead of a DSM): its
    smoothed heights drag the pose (the camera 18 m up, against an RTK altitude), and where the
    patch around a click did not register the pose mapped it 8-10 m off with a radius of about 3 m
    (78 % of the bench's errors inside their radius). A pose the metadata-error fit does not explain,
    mapping a click from matches away from it, is now no surer than its distance to the metadata's
    point, and the metadata (metres off, and saying so) answers there."""
    coarse = coarse_terrain(DSM, tmp_path / "dem_30m.tif", 30.0)
    clicks = [(117.3, 762.7), (125.7, 828.0), (185.7, 867.3), (431.3, 835.0), (537.3, 884.0)]
    errors = []
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(clicks, *truth_of(reconstruction, clicks)):
            e = locator.locate(raster, SOUTH, click, dem=coarse).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert err <= e["uncertainty_m"], (click, err, e["uncertainty_m"], e["answer"])
            errors.append(err)
    assert max(errors) < 3.0, errors


def test_a_take_off_point_below_the_ground_photographed_widens_the_metadata_radius(locator, reconstruction, tmp_path):
    """No RTK, and the relative altitude 30 m more than the drone's height over the ground below
    it (it took off 30 m lower): the absolute altitude and DSM + relative altitude disagree by 30 m
    and the metadata takes the latter. Its radius assumed a 5 m height error and missed its 20 m
    error at 89 % of the bench's clicks; now the height's 1-sigma is half the gap (either may be
    wrong), and registration, trying other camera heights on the DSM, answers to decimetres."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(relative_altitude_m=30.0, rtk=False))
    inside = 0
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth_of(reconstruction, CLICKS)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            assert "disagrees with DEM + relative altitude" in e["metadata_notes"]
            meta = float(geodesic_distance(lon, lat, e["metadata_lon"], e["metadata_lat"]))
            inside += meta <= e["metadata_uncertainty_m"]
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert e["answer"] == "registration" and err < 1.0 and err <= e["uncertainty_m"], (click, err, e)
    assert inside >= len(CLICKS) - 1


def test_without_a_dem_a_far_map_that_leaves_the_metadata_circle_widens_the_metadata_radius(locator, reconstruction,
                                                                                             tmp_path):
    """The same photo without a DEM: flat ground at the take-off height, 30 m below the ground
    photographed. At these clicks near the photo's bottom left no patch matched around the click;
    the registration mapped them from distant features, 10-13 m off with radii of 22-26 m, 24-25
    m from the metadata's points, which are 22-27 m off with radii of 13-14 m. The metadata, the
    surer of two overlapping circles, answered with its own radius: outside it. Now the far map
    landing outside the metadata's circle widens the answer's radius to reach its circle."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(relative_altitude_m=30.0, rtk=False))
    clicks = [(117.3, 762.7), (185.7, 867.3)]
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(clicks, *truth_of(reconstruction, clicks)):
            e = locator.locate(raster, photo, click).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert e["registration_patch_inliers"] == 0 and e["metadata_uncertainty_m"] < 20.0 < err, e
            assert err <= e["uncertainty_m"] <= 60.0, (click, err, e["uncertainty_m"])


def test_consumer_grade_metadata_off_beyond_its_radius_does_not_veto_a_good_registration(locator, reconstruction,
                                                                                         tmp_path):
    """The photo's metadata off as a drone without RTK can be (GPS 5 m, gimbal yaw +5 and pitch
    +2 deg, absolute altitude +15 m: 2-3 sigma of the error budget each). At some clicks the
    metadata's point then lies farther from the truth than its own 90 % radius, and a point-by-
    point comparison called the (right) registration a disagreement there. The registration is
    one hypothesis for the whole photo: the error its matches imply lies within the budget, so it
    answers at every click, to a metre."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, CONSUMER)
    moved, real = read_photo_meta(photo), read_photo_meta(SOUTH)
    assert moved.rtk_std_m is None and moved.gimbal_yaw == pytest.approx(real.gimbal_yaw + 5.0)
    assert moved.absolute_altitude == pytest.approx(real.absolute_altitude + 15.0)
    assert float(geodesic_distance(real.lon, real.lat, moved.lon, moved.lat)) == pytest.approx(5.0, abs=0.01)
    with Image.open(photo) as a, Image.open(SOUTH) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    clicks = [(24.0, 812.7), (125.7, 828.0), (185.7, 867.3), (101.7, 889.3), (88.3, 759.3), (431.3, 835.0)]
    beyond = 0
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(clicks, *truth_of(reconstruction, clicks)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            beyond += float(geodesic_distance(lon, lat, e["metadata_lon"], e["metadata_lat"])) > e["metadata_uncertainty_m"]
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert e["answer"] == "registration" and e["registration_metadata_explained"], (click, e)
            assert e["registration_metadata_error_sigma"] > 2.0  # the errors written are seen
            assert err < 1.0 and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
    assert beyond >= 2  # the case this test is about: the metadata alone misses by more than it says


def test_a_real_photo_without_gimbal_angles_registers_under_assumed_cameras(locator, reconstruction, tmp_path):
    """The real photo with its DJI gimbal tags removed (the flight heading stays; the body
    points within a few degrees of the camera here): the metadata has no camera pitch. It was
    taken as nadir: the answer fell 50 m off, inside a radius of a few metres. Now the metadata
    says what it lacks and registration finds the photo under an assumed pitch, to decimetres."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(
        drop=("GimbalPitchDegree", "GimbalYawDegree", "GimbalRollDegree")))
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth_of(reconstruction, CLICKS)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert "no camera pitch" in e["metadata_status"]
            assert e["answer"] == "registration" and "flight heading" in e["registration_assumed"], e
            assert err < 1.0 and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])


def test_a_compass_far_off_is_found_by_registering_under_other_headings(locator, reconstruction, tmp_path):
    """The gimbal yaw 90 deg off (a compass disturbed by metal): the footprint is turned away from
    what the photo shows and registration failed at every height; the metadata answered 60 m off
    with a radius of a few metres, no error inside it. Registration under the other headings
    (verified with the camera its matches imply) finds the photo; it answers, to decimetres."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(yaw_deg=90.0, rtk=False))
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth_of(reconstruction, CLICKS)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert e["answer"] == "registration" and "heading" in e["registration_heading_hypothesis"], e
            assert err < 1.0 and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            meta_err = float(geodesic_distance(lon, lat, e["metadata_lon"], e["metadata_lat"]))
            assert meta_err > 20.0  # the case: the metadata alone is far off


def test_a_real_photo_without_a_lens_model_gets_one_fitted_to_its_matches(locator, reconstruction, tmp_path):
    """Most drones write no lens model (DJI DewarpData on some models only). The real photo without
    it, its camera model one the lens database does not know: the pinhole pose refined on the DSM
    bent towards the photo's left edge, where the patch around a click is cut by the edge and the
    global matches answer: 5-9 m off with a radius of about 3 m (1.08 m median over the bench's 27
    clicks, 81 % inside). The lens fitted to the matches (the photo's real one: k1 -0.267, k2
    0.112) brings every click to decimetres."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(drop=("DewarpData",),
                                                                               camera_model="FC0000"))
    assert read_photo_meta(photo).distortion is None
    clicks = [(88.3, 759.3), (24.0, 812.7), (101.7, 889.3), (117.3, 762.7), (431.3, 835.0), (537.3, 884.0)]
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(clicks, *truth_of(reconstruction, clicks)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert "no lens model" in e["metadata_notes"]
            assert e["answer"] == "registration" and e["registration_mode"] == "pose", e
            assert err < 1.0 and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            assert -0.3 < e["registration_lens_k1"] < -0.1 and e["registration_lens_k1_sigma"] < 0.1
            # the metadata alone has no lens either: its radius counts the lens nobody described
            meta_err = float(geodesic_distance(lon, lat, e["metadata_lon"], e["metadata_lat"]))
            assert meta_err > 1.0 and e["metadata_uncertainty_m"] > 3.0


def test_a_real_photo_without_a_lens_model_takes_its_camera_models_lens_from_the_database(locator, reconstruction,
                                                                                          tmp_path):
    """The real photo without DewarpData, without a DEM (no lens is fitted there): its camera, a DJI
    FC6310R, is one lensfun has calibrated (as FC6310). With the pinhole the clicks across the
    photo's lower half were 2.3-5.1 m off (median 3.4 m over these six; 2.35 m over the bench's 27);
    with the database's lens every one is within 2 m and inside its radius."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(drop=("DewarpData",)))
    clicks = [(162.7, 767.0), (125.7, 828.0), (171.7, 832.3), (255.0, 836.7), (301.7, 807.3), (333.3, 770.0)]
    errors = []
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(clicks, *truth_of(reconstruction, clicks)):
            e = locator.locate(raster, photo, click).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert "lens distortion of the camera model from DJI FC6310" in e["metadata_notes"]
            assert e["answer"] == "registration" and err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            errors.append(err)
    assert np.median(errors) < 1.0 and max(errors) < 2.0, errors


def test_with_a_dsm_a_registration_whose_camera_reproduces_itself_outvotes_a_compass_beyond_the_budget(
        locator, reconstruction, tmp_path):
    """Gimbal yaw 40 deg off (no RTK), with the DSM: registration on the DSM holds, to decimetres,
    but the metadata error its matches imply lies far beyond the budget (30-45 sigma) and it has
    few inliers (about 20): the metadata's point answered where the two disagreed, 19-35 m off.
    The refined camera registers the photo again and implies itself again: the registration
    answers where it matched around the click, its radius at least its distance to the metadata's
    point."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(yaw_deg=-40.0, rtk=False))
    asked = 0
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth_of(reconstruction, CLICKS)):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            if e["registration_patch_inliers"] >= 12:  # matched around the click (elsewhere the metadata
                # may answer: a pose it does not explain, mapping the click from afar, is no surer than
                # their distance)
                assert e["answer"] == "registration" and e["registration_mode"] == "pose", e
                assert err < 1.5, (click, err)
            if "registration_confirmed_by_its_camera" in e:
                assert e["registration_confirmed_by_its_camera"] is True and not e["registration_metadata_explained"]
                if e["answer"] == "registration" and \
                        e["registration_inliers"] + e["registration_patch_inliers"] < STRONG_INLIERS:
                    asked += 1  # the camera test alone made the registration answer here
                    meta = float(geodesic_distance(e["metadata_lon"], e["metadata_lat"], e["located_lon"],
                                                   e["located_lat"]))
                    assert meta > 10.0 and e["uncertainty_m"] >= meta - 0.01  # the case: far apart; honest radius
    assert asked >= 1


def test_without_a_dem_a_registration_whose_camera_reproduces_itself_outvotes_a_compass_error(
        locator, reconstruction, tmp_path):
    """Gimbal yaw 25 deg off, no DEM: the flat-ground registration holds (the matches are rotation
    invariant) but lands 10-30 m from the metadata's point, and fusion, with no metadata-error fit
    without a DEM, answered with the metadata's point at 23 of 27 clicks (18 m off in median). The
    camera the registration's matches imply registers the photo again and implies itself again:
    the match holds for the whole photo, and it answers."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, MetadataErrors(yaw_deg=25.0, rtk=False))
    errors, asked = [], 0
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth_of(reconstruction, CLICKS)):
            e = locator.locate(raster, photo, click).extra
            err = float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"]))
            assert e["answer"] == "registration", e
            # asked only where the two disagree (an extra registration): there it must hold
            if "registration_confirmed_by_its_camera" in e:
                asked += 1
                assert e["registration_confirmed_by_its_camera"] is True, e
            assert err <= e["uncertainty_m"], (click, err, e["uncertainty_m"])
            errors.append(err)
    assert asked >= len(CLICKS) // 2  # the case: the metadata is off by more than its radius at most clicks
    assert np.median(errors) < 2.0, errors


def test_a_poor_pose_on_a_coarse_reference_falls_back_to_flat_ground_registration(locator, truth, tmp_path):
    """The same consumer-grade metadata errors on a satellite-like 0.5 m copy of the orthophoto:
    the DSM-rectified photo, bent by the wrong pose, keeps too few matches for the strict global
    map at every camera height tried; registering on flat ground (locally consistent matches,
    local maps, as without a DSM) still holds and answers most clicks, at less than half the
    metadata's error."""
    photo = with_metadata_errors(SOUTH, tmp_path / SOUTH.name, CONSUMER)
    coarse = satellite_like(ORTHO, tmp_path / "satellite_like.tif", 0.5)
    errs, meta_errs, answered = [], [], 0
    with open_reference(coarse) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            e = locator.locate(raster, photo, click, dem=DSM).extra
            assert e["registration_status"] == "ok" and e["registration_mode"] == "local", (click, e)
            errs.append(float(geodesic_distance(lon, lat, e["located_lon"], e["located_lat"])))
            meta_errs.append(float(geodesic_distance(lon, lat, e["metadata_lon"], e["metadata_lat"])))
            if e["answer"] == "registration":  # else a looser registration agreed with the surer metadata
                answered += 1
                assert errs[-1] <= e["uncertainty_m"], (click, errs[-1], e["uncertainty_m"])
    assert answered >= 4 and np.median(errs) < np.median(meta_errs) / 2, (errs, meta_errs)


def test_a_cached_registration_answers_through_a_new_handle_on_the_raster(truth):
    """Batch and the worker open the reference per request: a registration cached by an earlier
    call (whose handle is closed now) must read its per-click patches through the new one."""
    from smgeo_geo.locator import Locator

    loc = Locator()
    try:
        for dem in (DSM, None):
            for i in (0, 1):
                with open_reference(ORTHO) as raster:
                    det = loc.locate(raster, SOUTH, CLICKS[i], method="registration", dem=dem)
                assert loc.last_registration_cached == (i == 1)
                err = float(geodesic_distance(truth[0][i], truth[1][i], det.extra["located_lon"],
                                              det.extra["located_lat"]))
                assert err <= det.extra["uncertainty_m"]
                assert det.extra["registration_patch_inliers"] > 0
    finally:
        loc.close()


def test_without_a_dem_the_answer_is_coarser_and_says_so(locator, truth):
    with open_reference(ORTHO) as raster:
        det = locator.locate(raster, SOUTH, CLICKS[1], method="metadata")
        err = float(geodesic_distance(truth[0][1], truth[1][1], det.extra["located_lon"], det.extra["located_lat"]))
        assert det.extra["method"] == "metadata" and err < det.extra["uncertainty_m"]
        assert det.extra["uncertainty_m"] > 2.0  # flat ground at the take-off height: metres, not centimetres


def test_auto_without_a_dem_maps_the_click_by_its_surroundings_and_stays_honest(locator, truth):
    """Flat ground at the take-off height (the road runs through a valley): the metadata point is
    metres off; the click is mapped by the features of the photo within 40 m of it, matched near
    native resolution, and the answer lies inside its stated radius."""
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            det = locator.locate(raster, SOUTH, click)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            assert det.extra["answer"] == "registration" and det.extra["registration_mode"] == "local"
            assert det.extra["registration_patch_inliers"] >= 8, click
            assert err <= det.extra["uncertainty_m"] <= 15.0, (click, err, det.extra["uncertainty_m"])


def test_a_survey_orthophoto_inside_a_larger_mosaic_registers_as_on_its_own(locator, truth, tmp_path):
    """Without a DEM the oblique photo's footprint runs hundreds of metres towards the horizon;
    in a mosaic that is nodata beyond the survey, the registration window is cut to where the
    mosaic has pixels (read near native resolution, not 2.3 times coarser): the clicks register
    as on the orthophoto alone (before: registration failed, 1 inlier, and the answer fell to
    the metadata, 3-7 m off): each answer within half a metre of the orthophoto's own."""
    from smgeo_geo import rectification as rect

    mosaic = in_mosaic(ORTHO, tmp_path / "basemap.tif", 1500)  # nodata around the survey
    prior = camera_from_metadata(read_photo_meta(SOUTH), None)
    with open_reference(mosaic) as raster:
        window = rect.footprint_window(prior, raster, 60.0)
        slack = 24  # pixels: two cells of the mask read at 256 cells a side of a footprint < 3,000 px
        assert window.col_off >= 1500 - slack and window.row_off >= 1500 - slack  # within the survey
        assert window.col_off + window.width <= raster.width - 1500 + slack
        assert window.row_off + window.height <= raster.height - 1500 + slack
        answers = [locator.locate(raster, SOUTH, click).extra for click in CLICKS]
    with open_reference(ORTHO) as raster:
        alone = [locator.locate(raster, SOUTH, click).extra for click in CLICKS]
    for det, own, lon, lat in zip(answers, alone, *truth):
        assert det["answer"] == "registration" and det["registration_mode"] == "local", det
        err = float(geodesic_distance(lon, lat, det["located_lon"], det["located_lat"]))
        assert err <= det["uncertainty_m"], (err, det["uncertainty_m"])
        apart = geodesic_distance(det["located_lon"], det["located_lat"], own["located_lon"], own["located_lat"])
        assert float(apart) < 0.5, (apart, err)
    with open_reference(mosaic) as raster:
        assert raster.data_window(Window(0, 0, 1400, 1400)) is None  # nothing of the survey off it
        # SMGeo alone searches the photo's GPS footprint: there too only where the mosaic has pixels
        gps = resolve(WindowSpec("photo_gps"), raster, max_side=4096, photo=SOUTH)
        assert gps.window.col_off >= 1500 - slack and gps.window.row_off >= 1500 - slack, gps
        assert "where the raster has pixels" in gps.reason


def test_where_the_dsm_stops_short_of_the_click_the_metadata_answers_on_flat_ground(locator, truth, tmp_path):
    """A DSM that covers only part of the area (its east, x >= 292830 m; the clicks lie west of
    it): the clicks' rays meet no DSM height. The metadata stage answers as without a DEM (flat
    ground at the take-off height) and says so, instead of failing (before: "does not meet the
    ground"); `auto` still registers."""
    import rasterio
    from rasterio.windows import from_bounds

    east = tmp_path / "dsm_east.tif"
    with rasterio.open(DSM) as src:
        window = from_bounds(292830.0, src.bounds.bottom, src.bounds.right, src.bounds.top, src.transform)
        window = window.round_offsets().round_lengths()
        profile = {**src.profile, "width": window.width, "height": window.height,
                   "transform": src.window_transform(window)}
        with rasterio.open(east, "w", **profile) as dst:
            dst.write(src.read(window=window))
    with open_reference(ORTHO) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            det = locator.locate(raster, SOUTH, click, method="metadata", dem=east).extra
            flat = locator.locate(raster, SOUTH, click, method="metadata").extra
            assert "meets no height of the DEM dsm_east.tif" in det["metadata_notes"], det
            assert (det["located_lon"], det["located_lat"]) == pytest.approx((flat["located_lon"], flat["located_lat"]))
            err = float(geodesic_distance(lon, lat, det["located_lon"], det["located_lat"]))
            assert err <= det["uncertainty_m"], (click, err, det["uncertainty_m"])
        det = locator.locate(raster, SOUTH, CLICKS[1], dem=east).extra
        assert det["answer"] == "registration" and det["metadata_status"] == "ok", det


def test_on_a_coarser_reference_without_a_dem_auto_is_never_looser_than_the_metadata(locator, truth, tmp_path):
    """At 0.5 m pixels the flat-ground registration maps some clicks only from distant features
    (a wide radius): where it agrees with the metadata, the surer of the two answers, and every
    error stays inside its stated radius. With the DSM the pose still holds to a pixel."""
    coarse = satellite_like(ORTHO, tmp_path / "ortho_05m.tif", 0.5)
    with open_reference(coarse) as raster:
        for click, lon, lat in zip(CLICKS, *truth):
            det = locator.locate(raster, SOUTH, click)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            assert err <= det.extra["uncertainty_m"], (click, err)
            assert det.extra["uncertainty_m"] <= det.extra["metadata_uncertainty_m"] + 1e-6, click
            det = locator.locate(raster, SOUTH, click, dem=DSM)
            err = float(geodesic_distance(lon, lat, det.extra["located_lon"], det.extra["located_lat"]))
            assert err < 1.0 and det.extra["answer"] == "registration", (click, err)


def test_auto_answers_without_the_model_when_its_checkpoint_is_broken(truth, tmp_path):
    """SMGeo is one stage of auto: a checkpoint that cannot be loaded is that stage's reason,
    and metadata + registration still answer (no traceback, no lost click)."""
    from smgeo_geo.locator import Locator

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    (tmp_path / "broken.json").write_text("{}")
    loc = Locator(checkpoint=broken)
    try:
        with open_reference(ORTHO) as raster:
            det = loc.locate(raster, SOUTH, CLICKS[0], dem=DSM)
            with pytest.raises(SMGeoError):
                loc.locate(raster, SOUTH, CLICKS[0], method="smgeo", dem=DSM)
    finally:
        loc.close()
    assert det.extra["answer"] == "registration" and det.extra["method"] == "metadata+registration"
    assert "broken" in det.extra["smgeo_status"]
    err = float(geodesic_distance(truth[0][0], truth[1][0], det.extra["located_lon"], det.extra["located_lat"]))
    assert err < 1.0


@pytest.mark.parametrize("dem", [None, DSM], ids=["flat ground", "DSM"])
def test_registration_falls_back_to_the_full_work_scale(monkeypatch, dem):
    """The global registration first tries the coarse scale (with a DEM, with the pose's small
    feature budget); where too few matches hold there (here: a coarse scale made far too
    small), it registers at the full work scale with the full budget."""
    from smgeo_geo import rectification as rect
    from smgeo_geo import registration as reg
    from smgeo_geo.photo import read_photo

    meta = read_photo_meta(SOUTH)
    image = read_photo(str(SOUTH))
    terrain = DemTerrain(dem) if dem else None
    with open_reference(ORTHO) as raster:
        prior = camera_from_metadata(meta, terrain)
        window = rect.footprint_window(prior, raster, 60.0)
        assert max(window.width, window.height) > rect.MAX_WORK_SIDE
        tried = []
        at = reg._register_at
        monkeypatch.setattr(reg, "_register_at", lambda *a: tried.append(a[-2:]) or at(*a))
        monkeypatch.setattr(reg, "COARSE_SIDE", 64)
        held = reg.register(image, raster, window, prior)
        assert held.ok and held.mode == ("pose" if dem else "local"), held.reason
        assert tried == [(64, reg.COARSE_FEATURES if dem else rect.MAX_FEATURES), (rect.MAX_WORK_SIDE, rect.MAX_FEATURES)]
        assert max(window.width / held.mapping.scale_x, window.height / held.mapping.scale_y) == pytest.approx(
            rect.MAX_WORK_SIDE, abs=1)
        assert held.locate(CLICKS[1], 70.0).ok
    if terrain is not None:
        terrain.close()


def test_auto_in_the_users_window_runs_smgeo_there_beside_the_other_stages(truth):
    """With the user's own window (bounds), SMGeo searches exactly that window (started beside
    metadata and registration): its box is the one SMGeo alone finds there, and the point is
    still the registration's."""
    from smgeo_geo.locator import Locator
    from smgeo_geo.windows import WindowSpec

    loc = Locator()
    try:
        with open_reference(ORTHO) as raster:
            x0, y1 = raster.transform @ (0, 400)
            x1, y0 = raster.transform @ (raster.width, 1424)
            window = WindowSpec("bounds", bounds=(x0, y0, x1, y1), bounds_crs=raster.crs.to_string())
            alone = loc.locate(raster, SOUTH, CLICKS[1], method="smgeo", window=window)
            fused = loc.locate(raster, SOUTH, CLICKS[1], method="auto", window=window, dem=DSM)
            assert loc._pending == []  # nothing left running behind the answer
        assert fused.extra["smgeo_status"] == "ok" and fused.extra["answer"] == "registration"
        assert fused.extra["smgeo_window"] == alone.extra["smgeo_window"]
        assert fused.extra["smgeo_score"] == pytest.approx(alone.score, abs=1e-4)
        # both report how far SMGeo's answer moves with the click (the same window, the same model)
        assert fused.extra["smgeo_click_moved_answer_m"] == pytest.approx(alone.extra["smgeo_click_moved_answer_m"],
                                                                          abs=0.01)
        assert fused.extra["smgeo_click_moved_answer_m"] >= 0
        err = float(geodesic_distance(truth[0][1], truth[1][1], fused.extra["located_lon"], fused.extra["located_lat"]))
        assert err <= fused.extra["uncertainty_m"] <= 5.0
    finally:
        loc.close()


def test_photo_without_metadata_skips_the_metadata_stage_with_its_reason(locator, tmp_path):
    stripped = tmp_path / "stripped.jpg"
    Image.open(SOUTH).convert("RGB").save(stripped, quality=95)
    with open_reference(ORTHO) as raster:
        with pytest.raises(MetadataError, match="no GPS position"):
            locator.locate(raster, stripped, CLICKS[0], method="metadata")
        det = locator.locate(raster, stripped, CLICKS[0], method="auto")
        assert "no GPS position" in det.extra["metadata_status"]
        assert det.extra["registration_status"] != "ok"  # an oblique photo alone: too few inliers, said so
        assert det.extra["answer"] == "smgeo" and det.extra["method"] == "smgeo"
        with pytest.raises(SMGeoError, match="registration failed"):
            locator.locate(raster, stripped, CLICKS[0], method="registration")


def test_batch_geocodes_a_survey_of_real_clicks(truth, tmp_path, capsys):
    """`smgeo batch` over the real photo's clicks with the DSM: every row located to within a
    metre of the truth, inside its stated uncertainty, with the stages that held."""
    import pyogrio

    from tests.bad_inputs.conftest import run_cli

    manifest = tmp_path / "survey.csv"
    manifest.write_text("query,click_x,click_y\n" + "".join(f"{SOUTH},{x},{y}\n" for x, y in CLICKS[:3]))
    out = tmp_path / "survey.gpkg"
    code, _, err = run_cli(["batch", "--manifest", manifest, "--reference", ORTHO, "--dem", DSM, "--out", out,
                            "--workers", "1"], capsys)
    assert code == 0, err
    rows = pyogrio.read_dataframe(out, layer="rows").sort_values("row").reset_index(drop=True)
    assert (rows["status"] == "ok").all() and len(rows) == 3
    for i, r in rows.iterrows():
        err_m = float(geodesic_distance(truth[0][i], truth[1][i], r["located_lon"], r["located_lat"]))
        assert err_m < 1.0 and err_m <= r["uncertainty_m"], (i, err_m)
        assert r["method"].startswith("metadata+registration")


def test_the_photo_footprint_window_pads_in_metres_in_a_geographic_crs(tmp_path):
    """The orthophoto warped to lon/lat: the window the metadata footprint asks for covers the
    same ground (north-south extent, metres) as in the orthophoto's UTM grid, not the whole raster."""
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from smgeo_geo import rectification as rect

    lonlat = tmp_path / "ortho_4326.tif"
    with rasterio.open(ORTHO) as src:
        tr, w, h = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds)
        with rasterio.open(lonlat, "w", **{**src.profile, "crs": "EPSG:4326", "transform": tr, "width": w,
                                           "height": h}) as dst:
            for b in range(1, src.count + 1):
                reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.nearest)
    prior = camera_from_metadata(read_photo_meta(SOUTH), None)
    extents = []
    for path in (ORTHO, lonlat):
        with open_reference(path) as raster:
            window = rect.footprint_window(prior, raster, 10.0)
            assert window.height < raster.height - 100, path  # a footprint, not the whole raster
            extents.append(window.height * raster.pixel_size_m)
    assert extents[1] == pytest.approx(extents[0], rel=0.1)
