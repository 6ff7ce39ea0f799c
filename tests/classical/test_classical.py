"""Classical baseline (SIFT/ORB + MAGSAC homography) on seeded synthetic scenes, real OpenCV."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from smgeo_geo.classical import ClassicalMatcher, ClassicalResult, ReferenceFeatures, horizon_crosses
from smgeo_geo.errors import ClickError
from tests.classical import scenes

OBJECT = (420.0, 330.0)  # object centre in reference pixels
VIEW_CENTRE = (400.0, 350.0)  # where the query centre lands in the reference


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    ref = scenes.satellite(768, seed=0)
    scenes.add_object(ref, OBJECT)
    ref.setflags(write=False)
    return ref


@pytest.fixture(scope="module")
def sift() -> ClassicalMatcher:
    return ClassicalMatcher("sift")


@pytest.fixture(scope="module")
def prepared(sift: ClassicalMatcher, reference: np.ndarray) -> ReferenceFeatures:
    return sift.prepare_reference(reference)


def drone_view(reference: np.ndarray, angle: float, scale: float, perspective=(0.0, 0.0), seed: int = 1):
    """Query image, true query->reference homography and the click on the object."""
    h = scenes.query_to_reference(VIEW_CENTRE, angle, scale, perspective)
    query = scenes.warp_query(reference, h, seed=seed)
    click = scenes.apply(np.linalg.inv(h), *OBJECT)
    return query, h, click


def region_box(click, region: float = 0.25, size: int = 256):
    half = region * size / 2
    return max(click[0] - half, 0), max(click[1] - half, 0), min(click[0] + half, size), min(click[1] + half, size)


def assert_failure(result: ClassicalResult) -> None:
    assert result.box is None and result.score == 0.0
    assert result.homography is None and result.click_in_reference is None
    assert not result.ok and result.reason != "ok"


@pytest.mark.parametrize(
    ("angle", "scale", "perspective"),
    [(30, 0.6, (4e-4, -2e-4)), (120, 0.4, (8e-4, 5e-4)), (-75, 0.8, (1e-3, 0.0))],
)
def test_sift_maps_click_and_box(reference, sift, prepared, angle, scale, perspective):
    query, h, click = drone_view(reference, angle, scale, perspective)
    result = sift.locate_prepared(query, click, prepared)

    assert result.ok, result.reason
    assert np.hypot(result.click_in_reference[0] - OBJECT[0], result.click_in_reference[1] - OBJECT[1]) < 2.0
    truth = scenes.mapped_box(h, region_box(click), reference.shape[:2])
    assert scenes.iou(result.box, truth) > 0.5
    x1, y1, x2, y2 = result.box
    assert 0 <= x1 < OBJECT[0] < x2 <= reference.shape[1] and 0 <= y1 < OBJECT[1] < y2 <= reference.shape[0]
    assert sift.min_inliers <= result.inliers and 0.5 < result.score <= 1.0
    # the returned homography is the one that produced the click, in the same frames
    assert result.homography.shape == (3, 3) and result.homography[2, 2] == 1.0
    assert scenes.apply(result.homography, *click) == pytest.approx(result.click_in_reference, abs=1e-6)
    corners = [scenes.apply(result.homography, x, y) for x, y in ((0, 0), (256, 0), (256, 256), (0, 256))]
    true_corners = [scenes.apply(h, x, y) for x, y in ((0, 0), (256, 0), (256, 256), (0, 256))]
    assert np.abs(np.subtract(corners, true_corners)).max() < 4.0


def test_click_near_query_border_uses_clipped_region(reference, sift, prepared):
    query, h, _ = drone_view(reference, 30, 0.6, (4e-4, -2e-4))
    click = (5.0, 250.0)
    result = sift.locate_prepared(query, click, prepared)
    assert result.ok, result.reason
    assert np.hypot(*np.subtract(result.click_in_reference, scenes.apply(h, *click))) < 2.0
    truth = scenes.mapped_box(h, region_box(click), reference.shape[:2])
    assert scenes.iou(result.box, truth) > 0.5


def test_box_is_clipped_to_the_reference(reference, sift, prepared):
    # the drone also sees ground beyond the reference's top-right corner (rendered black)
    h = scenes.query_to_reference((710.0, 50.0), 20, 0.6)
    query = scenes.warp_query(reference, h, border=cv2.BORDER_CONSTANT)
    click = scenes.apply(np.linalg.inv(h), 755.0, 8.0)
    result = sift.locate_prepared(query, click, prepared)
    assert result.ok, result.reason
    x1, y1, x2, y2 = result.box
    assert y1 == 0.0 and x2 == 768.0 and x1 > 0 and y2 < 768
    assert scenes.iou(result.box, scenes.mapped_box(h, region_box(click), reference.shape[:2])) > 0.5


def test_region_option_sets_box_size(reference, prepared):
    query, h, click = drone_view(reference, 30, 0.6)
    small = ClassicalMatcher(region=0.1).locate_prepared(query, click, prepared)
    large = ClassicalMatcher(region=0.4).locate_prepared(query, click, prepared)
    assert small.ok and large.ok
    width = lambda b: b[2] - b[0]  # noqa: E731
    assert width(large.box) / width(small.box) == pytest.approx(4.0, rel=0.1)
    assert scenes.iou(large.box, scenes.mapped_box(h, region_box(click, 0.4), reference.shape[:2])) > 0.5


def test_prepared_reference_gives_identical_result(reference, sift, prepared):
    query, _, click = drone_view(reference, 120, 0.4, (8e-4, 5e-4))
    cached = sift.locate_prepared(query, click, prepared)
    fresh = sift.locate(query, click, reference)
    assert cached.ok and fresh.ok
    assert cached.box == fresh.box and cached.score == fresh.score and cached.inliers == fresh.inliers
    assert cached.click_in_reference == fresh.click_in_reference
    np.testing.assert_array_equal(cached.homography, fresh.homography)
    # a second query on the same prepared reference is unaffected by the first
    other_query, _, other_click = drone_view(reference, -75, 0.8, (1e-3, 0.0))
    assert sift.locate_prepared(other_query, other_click, prepared).ok
    assert sift.locate_prepared(query, click, prepared).box == cached.box


def test_unrelated_queries_fail_instead_of_guessing(sift, prepared):
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    other_place = scenes.warp_query(scenes.satellite(768, seed=7), scenes.query_to_reference(VIEW_CENTRE, 30, 0.6))
    blank = np.full((256, 256, 3), 128, np.uint8)
    for query in (noise, other_place, blank):
        assert_failure(sift.locate_prepared(query, (128.0, 128.0), prepared))


@pytest.mark.parametrize("method", ["sift", "orb"])
def test_geometry_checks_reject_chance_homographies(method, reference):
    # loose ratio test and the smallest inlier minimum: chance matches reach RANSAC and
    # only the plausibility checks stand between them and a wild box
    matcher = ClassicalMatcher(method, ratio=0.9, min_inliers=4)
    features = matcher.prepare_reference(reference)
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    other_place = scenes.warp_query(scenes.satellite(768, seed=8), scenes.query_to_reference(VIEW_CENTRE, 30, 0.6))
    for query in (noise, other_place):
        result = matcher.locate_prepared(query, (128.0, 128.0), features)
        assert_failure(result)
        assert result.inliers >= 4 and "inliers" not in result.reason


def test_min_inliers_is_the_acceptance_threshold(reference, prepared):
    query, _, click = drone_view(reference, 30, 0.6, (4e-4, -2e-4))
    found = ClassicalMatcher().locate_prepared(query, click, prepared).inliers
    assert ClassicalMatcher(min_inliers=found).locate_prepared(query, click, prepared).ok
    refused = ClassicalMatcher(min_inliers=found + 1).locate_prepared(query, click, prepared)
    assert_failure(refused)
    assert refused.inliers == found and "min_inliers" in refused.reason


def test_fallback_centre_is_a_flagged_guess(reference, prepared):
    noise = np.random.default_rng(4).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    result = ClassicalMatcher(fallback="centre").locate_prepared(noise, (10, 20), prepared)
    assert not result.ok and result.score == 0.0 and result.homography is None
    assert result.box == (288.0, 288.0, 480.0, 480.0)  # 0.25 * 768 square on the centre
    assert result.click_in_reference == (384.0, 384.0)


def test_implausible_homography_is_rejected(reference, prepared):
    # the true local scale is 0.6 reference px per query px: outside (1, 8) it must be refused
    query, _, click = drone_view(reference, 30, 0.6)
    result = ClassicalMatcher(scale_range=(1.0, 8.0)).locate_prepared(query, click, prepared)
    assert_failure(result)
    assert "scale" in result.reason
    assert result.inliers >= 12  # the match itself was good


def test_horizon_check_takes_either_sign_of_w():
    """A ground-plane map of an oblique view whose horizon is the source row y = 20 (sky above):
    ``w = 1 - 0.05 y`` is positive at the origin and negative on the ground below. A homography
    is defined up to its sign, so ground points all on one side are a valid map; points on both
    sides of the horizon are not."""
    h = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -0.05, 1.0]])
    ground = np.array([[10, 60], [250, 60], [250, 250], [10, 250]], float)
    assert not horizon_crosses(h, ground)
    assert not horizon_crosses(-h, ground)
    assert not horizon_crosses(h, np.array([[10, 2], [250, 2], [250, 15], [10, 15]], float))  # sky side only
    straddling = np.array([[10, 5], [250, 5], [250, 250], [10, 250]], float)
    assert horizon_crosses(h, straddling) and horizon_crosses(-h, straddling)


def test_orb_easy_case(reference):
    orb = ClassicalMatcher("orb")
    query, h, click = drone_view(reference, 15, 0.9)
    result = orb.locate(query, click, reference)
    assert result.ok, result.reason
    assert np.hypot(result.click_in_reference[0] - OBJECT[0], result.click_in_reference[1] - OBJECT[1]) < 3.0
    assert scenes.iou(result.box, scenes.mapped_box(h, region_box(click), reference.shape[:2])) > 0.5
    assert_failure(orb.locate(np.random.default_rng(5).integers(0, 256, (256, 256, 3), dtype=np.uint8), (9, 9), reference))


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64, 3), np.float32), "dtype uint8"),
        (np.zeros((64, 64), np.uint8), "shape"),
        (np.zeros((64, 64, 4), np.uint8), "shape"),
        (np.zeros((8, 64, 3), np.uint8), "at least"),
        ([[[0, 0, 0]]], "numpy array"),
    ],
)
def test_bad_images_raise(sift, prepared, image, message):
    with pytest.raises(ValueError, match=message):
        sift.locate_prepared(image, (1, 1), prepared)
    with pytest.raises(ValueError, match=message):
        sift.prepare_reference(image)


@pytest.mark.parametrize("click", [(300.0, 10.0), (-0.5, 3.0), (10.0, 256.5), (float("nan"), 1.0), (1.0,), (1, 2, 3), "12", None])
def test_bad_clicks_raise(reference, sift, prepared, click):
    query = np.zeros((256, 256, 3), np.uint8)
    with pytest.raises(ClickError, match="click"):
        sift.locate_prepared(query, click, prepared)
    with pytest.raises(ValueError, match="click"):  # ClickError is a ValueError
        sift.locate(query, click, reference)


def test_click_on_the_image_edge_is_accepted(sift, prepared):
    query = np.zeros((256, 256, 3), np.uint8)
    assert_failure(sift.locate_prepared(query, (256.0, 0.0), prepared))  # valid, just featureless


def test_array_views_and_numpy_clicks_are_accepted(reference, sift, prepared):
    query, _, click = drone_view(reference, 30, 0.6, (4e-4, -2e-4))
    expected = sift.locate_prepared(query, click, prepared)
    bgr_view = np.ascontiguousarray(query[..., ::-1])[..., ::-1]  # same pixels, negative stride
    result = sift.locate_prepared(bgr_view, np.array(click), prepared)
    assert result.ok and result.box == expected.box


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "surf"},
        {"ratio": 1.0},
        {"ransac_reproj_threshold": 0},
        {"min_inliers": 3},
        {"max_features": 5},
        {"region": 0.0},
        {"region": 1.5},
        {"scale_range": (2.0, 1.0)},
        {"max_anisotropy": 0.5},
        {"fallback": "center"},
    ],
)
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ClassicalMatcher(**kwargs)


def test_prepared_features_must_match_method(sift, reference):
    orb_features = ClassicalMatcher("orb").prepare_reference(reference)
    with pytest.raises(ValueError, match="'orb'"):
        sift.locate_prepared(np.zeros((64, 64, 3), np.uint8), (1, 1), orb_features)
    with pytest.raises(ValueError, match="prepare_reference"):
        sift.locate_prepared(np.zeros((64, 64, 3), np.uint8), (1, 1), reference)


def test_module_does_not_import_torch():
    code = "import sys, smgeo_geo.classical; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
