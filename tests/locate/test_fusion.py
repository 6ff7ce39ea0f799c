"""Fusion rules of the locator: which stage's point answers, which box is drawn."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from smgeo_geo.errors import OptionError, SMGeoError
from smgeo_geo.locator import check_method
from smgeo_geo.stages import STRONG_INLIERS, Stage, confidence, fuse_point, fused_detection
from smgeo_geo.raster import ReferenceRaster
from smgeo_geo.result import Detection

ORIGIN = (500000.0, 5000000.0)  # UTM 33N, 1 m pixels, 200 x 200


@pytest.fixture
def raster():
    profile = dict(driver="GTiff", width=200, height=200, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(*ORIGIN, 1.0, 1.0))
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(np.full((3, 200, 200), 120, np.uint8))
        with mem.open() as ds:
            yield ReferenceRaster(ds, "mem.tif")


def at(col: float, row: float) -> tuple[float, float]:
    """Raster-CRS point of raster pixel (col, row)."""
    return ORIGIN[0] + col, ORIGIN[1] - row


def meta(col, row, u=8.0):
    return Stage("metadata", True, "", at(col, row), u, np.array([[col - 3, row - 3], [col + 3, row - 3],
                                                                   [col + 3, row + 3], [col - 3, row + 3]]))


def reg(col, row, u=1.0, inliers=20):
    return Stage("registration", True, "", at(col, row), u, None, {"inliers": inliers})


def test_registration_answers_when_it_agrees_with_the_metadata(raster):
    assert fuse_point({"metadata": meta(100, 100), "registration": reg(104, 100)}, raster).name == "registration"


def test_a_weak_registration_that_contradicts_the_metadata_loses_and_says_by_how_much(raster):
    r = reg(150, 100)
    answer = fuse_point({"metadata": meta(100, 100), "registration": r}, raster)
    assert answer.name == "metadata" and answer.point == at(100, 100)
    assert r.details["disagrees_with_metadata_m"] == pytest.approx(50.0, rel=1e-3)  # (UTM scale 0.9996)
    # one of the two is off by about that much: the radius reaches the registration's circle
    assert answer.uncertainty_m == pytest.approx(50.0 + r.uncertainty_m, rel=1e-3)


def test_a_registration_whose_matches_the_metadata_budget_explains_answers_beyond_the_metadata_radius(raster):
    """The metadata is off at this click by more than its 90 % radius, but the error the photo's
    matches imply (a pose fit over the whole photo) lies within the budget: one hypothesis for the
    whole photo, so the registration answers here as at the clicks where the two agree."""
    far = reg(130, 100)
    far.details.update(mode="pose", metadata_explained=True, metadata_error_sigma=3.7)
    assert fuse_point({"metadata": meta(100, 100), "registration": far}, raster).name == "registration"
    far.details.update(metadata_explained=False, metadata_error_sigma=9.0)
    assert fuse_point({"metadata": meta(100, 100), "registration": far}, raster).name == "metadata"


def test_a_strongly_supported_registration_outvotes_the_metadata(raster):
    r = reg(150, 100, inliers=STRONG_INLIERS)
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).name == "registration"


def test_agreeing_points_the_surer_answers_but_a_far_map_outside_the_metadata_circle_widens_its_radius(raster):
    """Both circles overlap and the metadata's radius is the smaller. The registration's point
    inside the metadata's circle: the metadata answers with its own radius. Outside it, where the
    registration mapped the click from distant features only (no patch around the click matched:
    real photo, take-off point 30 m below the ground photographed, no DEM: metadata 22-27 m off
    with a 12-14 m radius, the far map 10-13 m off with 22-26 m): one of the two is off by more
    than the metadata's radius, and the answer's radius reaches the registration's circle. Where
    the patch around the click matched, the registration answers."""
    inside = reg(105, 100, u=20.0)
    answer = fuse_point({"metadata": meta(100, 100, u=8.0), "registration": inside}, raster)
    assert answer.name == "metadata" and answer.uncertainty_m == 8.0
    far = reg(120, 100, u=20.0)
    answer = fuse_point({"metadata": meta(100, 100, u=8.0), "registration": far}, raster)
    assert answer.name == "metadata" and answer.point == at(100, 100)
    assert answer.uncertainty_m == pytest.approx(20.0 + 20.0, rel=1e-3)
    assert far.details["disagrees_with_metadata_m"] == pytest.approx(20.0, rel=1e-3)
    patched = reg(120, 100, u=25.0)
    patched.details.update(mode="local", patch_inliers=12)
    answer = fuse_point({"metadata": meta(100, 100, u=8.0), "registration": patched}, raster)
    assert answer.name == "registration" and answer.uncertainty_m == 25.0


def test_failed_stages_leave_the_others_or_nothing(raster):
    failed = Stage("registration", False, "only 3 feature matches")
    assert fuse_point({"metadata": meta(1, 1), "registration": failed}, raster).name == "metadata"
    assert fuse_point({"registration": failed}, raster) is None
    assert fuse_point({}, raster) is None


def smgeo_boxes(raster, boxes_scores):
    dets = [Detection.from_pixel_box(b, raster, score=s, rank=i) for i, (b, s) in enumerate(boxes_scores)]
    dets[0].candidates = dets[1:]
    return dets[0]


def test_the_box_is_the_model_candidate_holding_the_point_not_the_top_score(raster):
    stages = {"registration": reg(100, 100), "smgeo": Stage("smgeo", True)}
    model = smgeo_boxes(raster, [((10, 10, 30, 30), 0.9), ((95, 90, 110, 108), 0.4)])
    det = fused_detection(raster, "p.jpg", (5, 5), stages, stages["registration"], model, 5, "m@1")
    assert det.pixel_box == (95, 90, 110, 108) and det.extra["box_source"] == "smgeo"
    assert det.extra["answer"] == "registration" and det.extra["method"] == "registration+smgeo"
    assert det.candidates[0].pixel_box == (10, 10, 30, 30)  # the far box stays a candidate
    lon, lat = det.extra["located_lon"], det.extra["located_lat"]
    assert det.polygon_lonlat.buffer(1e-9).contains(__import__("shapely.geometry").geometry.Point(lon, lat))


def test_without_an_agreeing_model_box_the_click_region_is_drawn(raster):
    m = meta(100, 100, u=4.0)
    model = smgeo_boxes(raster, [((10, 10, 30, 30), 0.9)])
    det = fused_detection(raster, "p.jpg", (5, 5), {"metadata": m, "smgeo": Stage("smgeo", True)}, m, model, 5, "")
    assert det.pixel_box == (97, 97, 103, 103) and det.extra["box_source"] == "click region"
    assert det.extra["uncertainty_m"] == 4.0 and det.extra["confidence"] == pytest.approx(confidence(4.0), abs=1e-4)


def test_a_model_box_just_beside_the_located_point_is_not_drawn_as_the_object(raster):
    """The drawn polygon always holds the located point: a box 1 px from a point that is sure to
    2 m (1 m pixels) is a neighbour's, so the click region is drawn instead."""
    from shapely.geometry import Point

    m = meta(100, 100, u=2.0)
    model = smgeo_boxes(raster, [((101, 90, 120, 110), 0.9)])
    det = fused_detection(raster, "p.jpg", (5, 5), {"metadata": m, "smgeo": Stage("smgeo", True)}, m, model, 5, "")
    assert det.extra["box_source"] == "click region"
    assert det.polygon_lonlat.buffer(1e-9).contains(Point(det.extra["located_lon"], det.extra["located_lat"]))
    assert det.candidates[0].pixel_box == (101, 90, 120, 110)  # still offered as a candidate


def test_smgeo_alone_is_only_as_sure_as_the_window_it_searched(raster):
    """SMGeo's scores are not calibrated: alone, its answer's radius reaches the farthest corner
    of the window it searched (1 m pixels: box centre (25, 30), window corner (100, 120))."""
    from rasterio.windows import Window

    model = smgeo_boxes(raster, [((10, 10, 40, 50), 0.7)])
    stage = Stage("smgeo", True, searched=Window(0, 0, 100, 120))
    det = fused_detection(raster, "p.jpg", (5, 5), {"smgeo": stage}, None, model, 5, "")
    assert det.extra["answer"] == "smgeo"
    assert det.extra["uncertainty_m"] == pytest.approx(np.hypot(100 - 25, 120 - 30), abs=0.5)
    det = fused_detection(raster, "p.jpg", (5, 5), {"smgeo": Stage("smgeo", True)}, None, model, 5, "")
    assert det.extra["uncertainty_m"] == pytest.approx(25.0, abs=0.1)  # no window known: half the box


def test_no_stage_is_one_error_listing_why_each_failed(raster):
    stages = {"metadata": Stage("metadata", False, "photo has no GPS position"),
              "registration": Stage("registration", False, "only 2 feature matches")}
    with pytest.raises(SMGeoError, match="no GPS position.*only 2 feature matches"):
        fused_detection(raster, "p.jpg", (5, 5), stages, None, None, 5, "")


def test_unknown_method_is_an_option_error():
    with pytest.raises(OptionError, match="auto, metadata, registration, smgeo"):
        check_method("magic")


def test_a_registration_without_dem_far_from_the_metadata_is_no_surer_than_that_distance(raster):
    r = reg(106, 100, u=1.0)
    r.details["mode"] = "local"
    fused = fuse_point({"metadata": meta(100, 100), "registration": r}, raster)
    assert fused.name == "registration" and fused.uncertainty_m == pytest.approx(6.0, rel=1e-3)
    r.details.update(mode="pose", patch_inliers=30)  # refined on a DEM and the patch around the click: its own radius stands
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).uncertainty_m == 1.0


def test_a_pose_the_metadata_fit_does_not_explain_mapping_the_click_from_afar_is_no_surer_than_its_distance(raster):
    """Pose mode, the patch around the click not registered (the global matches mapped it) and the
    metadata error the matches imply beyond the budget (a coarse DEM dragged the pose, or the
    metadata is off beyond its budget): 6 m from the metadata's point with a 1 m radius, one of the
    two is 6 m off and nothing tells which: the metadata's point answers (it does not rest on the
    pose), its radius reaching the registration's circle."""
    r = reg(106, 100, u=1.0, inliers=80)  # even with many matches far from the click
    r.details.update(mode="pose", patch_inliers=0, metadata_explained=False)
    for u in (5.5, 8.0):
        fused = fuse_point({"metadata": meta(100, 100, u=u), "registration": r}, raster)
        assert fused.name == "metadata" and fused.uncertainty_m == pytest.approx(max(u, 7.0), rel=1e-3)
    r.details["metadata_explained"] = True  # the whole photo's matches agree with the metadata: its own radius
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).uncertainty_m == 1.0
    r.details.update(metadata_explained=False, patch_inliers=30)  # matched around the click
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).name == "registration"
    # the matches agree with the metadata, but the refined camera lies 18 sigma above it (a coarse
    # terrain model dragged the pose): mapping the click from afar, it is not trusted
    r.details.update(metadata_explained=True, patch_inliers=0, camera_height_sigma=18.0)
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).name == "metadata"
    r.details["camera_height_sigma"] = 3.0  # a correction within the budget
    assert fuse_point({"metadata": meta(100, 100), "registration": r}, raster).name == "registration"


def test_points_of_a_geographic_raster_are_compared_in_metres():
    """On a lon/lat reference the stages' points are degrees: a registration 50 m from the
    metadata was 0.0005 "metres" away, always agreeing, and the disagreement rule never ran."""
    profile = dict(driver="GTiff", width=200, height=200, count=3, dtype="uint8", crs="EPSG:4326",
                   transform=from_origin(8.0, 47.0, 1e-5, 1e-5))
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(np.full((3, 200, 200), 120, np.uint8))
        with mem.open() as ds:
            geographic = ReferenceRaster(ds, "lonlat.tif")
            east_50m = 50.0 / (111_320.0 * np.cos(np.radians(47.0)))  # degrees of longitude
            m = Stage("metadata", True, "", (8.001, 46.999), 8.0)
            r = Stage("registration", True, "", (8.001 + east_50m, 46.999), 1.0, None, {"inliers": 20})
            answer = fuse_point({"metadata": m, "registration": r}, geographic)
            assert answer.name == "metadata"
            assert r.details["disagrees_with_metadata_m"] == pytest.approx(50.0, rel=0.01)


def test_of_two_agreeing_points_the_surer_one_answers(raster):
    """A registration that held but maps the click loosely (its 90 % radius wider than the
    metadata's) agrees with the metadata: the tighter answer is the metadata's."""
    loose = reg(104, 100, u=20.0)
    fused = fuse_point({"metadata": meta(100, 100, u=8.0), "registration": loose}, raster)
    assert fused.name == "metadata" and fused.uncertainty_m == 8.0
    tight = reg(104, 100, u=2.0)
    assert fuse_point({"metadata": meta(100, 100, u=8.0), "registration": tight}, raster).name == "registration"
