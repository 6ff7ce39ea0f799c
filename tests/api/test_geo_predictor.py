"""GeoPredictor: pixel boxes, CRS and lon/lat polygons, caching, window choice, search."""

import numpy as np
import pyproj
import pytest
from rasterio.windows import Window

from smgeo_geo.errors import ClickError, WindowError
from smgeo_geo.predictor import GeoPredictor, model_size
from smgeo_geo.raster import open_reference
from smgeo_model import SMGeoPredictor, load_checkpoint

from .conftest import GSD, ORIGIN, write_geotiff


def test_detection_geometry_follows_the_pixel_box(scene):
    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(scene["reference"]) as raster:
        predictor.set_reference(raster)
        predictor.set_query(scene["photo"])
        det = predictor.locate(tuple(scene["clicks"][0].tolist()), top_k=3)
    # the same model on the same pixels, without any geo layer
    tensor_pred = SMGeoPredictor(load_checkpoint(scene["checkpoint"]))
    tensor_pred.set_reference(scene["ref_tensor"])
    tensor_pred.set_query(scene["query_tensor"])
    expected = tensor_pred.predict(tuple(scene["clicks"][0].tolist()), top_k=3)
    np.testing.assert_allclose(det.pixel_box, expected.boxes[0].numpy(), atol=0.6)  # uint8 round trip of pixels
    assert [c.rank for c in det.candidates] == [1, 2]
    # polygon corners are the pixel box through the geotransform (north-up, 0.5 m pixels)
    x1, y1, x2, y2 = det.pixel_box
    minx, miny, maxx, maxy = det.polygon_crs.bounds
    assert minx == pytest.approx(ORIGIN[0] + x1 * GSD) and maxx == pytest.approx(ORIGIN[0] + x2 * GSD)
    assert maxy == pytest.approx(ORIGIN[1] - y1 * GSD) and miny == pytest.approx(ORIGIN[1] - y2 * GSD)
    c = det.polygon_crs.centroid
    lon, lat = pyproj.Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True).transform(c.x, c.y)
    assert det.centroid_lonlat == pytest.approx((lon, lat), abs=1e-9)
    assert det.crs == "EPSG:32632" and det.model_id.startswith("tiny@")
    feature = det.to_geojson_feature()
    assert feature["properties"]["pixel_box"] == pytest.approx(list(det.pixel_box))


def test_reference_features_are_cached_per_window(scene):
    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(scene["reference"]) as raster:
        first = predictor.set_reference(raster)
        again = predictor.set_reference(raster)
        other = predictor.set_reference(raster, Window(0, 0, 128, 128))
    assert again is first and other is not first
    assert other.image.shape[:2] == (256, 256)  # a 128 px window is upsampled to the model size
    assert other.mapping.scale_x == pytest.approx(0.5)


def test_model_size_keeps_aspect_in_multiples_of_32():
    assert model_size((1000, 2000), 256) == (128, 256)
    assert model_size((3000, 4000), 256) == (192, 256)
    assert model_size((10, 10), 256) == (256, 256)


def test_big_raster_needs_a_window_and_search_covers_it(scene, tmp_path):
    big = np.zeros((1100, 1100, 3), np.uint8)
    with open_reference(scene["reference"]) as small:
        img, _ = small.read_window(Window(0, 0, 256, 256), (256, 256))
    big[700:956, 300:556] = img  # the scene sits inside a larger empty mosaic
    write_geotiff(tmp_path / "big.tif", big, scene["transform"])
    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(tmp_path / "big.tif") as raster:
        with pytest.raises(WindowError, match="big.tif: raster is 1100x1100 pixels; choose a search window"):
            predictor.default_window(raster)
        predictor.set_query(scene["photo"])
        det = predictor.search(raster, tuple(scene["clicks"][0].tolist()), top_k=3, window_size=512)
    x1, y1, x2, y2 = det.pixel_box
    assert 0 <= x1 <= x2 <= 1100 and 0 <= y1 <= y2 <= 1100
    scores = [det.score] + [c.score for c in det.candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_sliding_search_reports_how_far_its_answer_moves_with_the_click(scene, tmp_path):
    """``click_moved_answer_m`` of a sliding search: the distance, in ground metres, to the answer the
    same search gives for the click moved half the photo's width and height."""
    from smgeo_geo.coords import geodesic_distance

    big = np.zeros((700, 700, 3), np.uint8)
    with open_reference(scene["reference"]) as small:
        img, _ = small.read_window(Window(0, 0, 256, 256), (256, 256))
    big[300:556, 100:356] = img
    write_geotiff(tmp_path / "big.tif", big, scene["transform"])
    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(tmp_path / "big.tif") as raster:
        predictor.set_query(scene["photo"])
        click = tuple(scene["clicks"][0].tolist())
        w, h = predictor._query_size_wh
        det = predictor.search(raster, click, top_k=3, window_size=256)
        there = predictor.search(raster, ((click[0] + w / 2) % w, (click[1] + h / 2) % h), top_k=1, window_size=256)
    expected = float(geodesic_distance(*det.centroid_lonlat, *there.centroid_lonlat))
    assert det.extra["click_moved_answer_m"] == pytest.approx(expected, abs=0.01)
    assert "click_moved_answer_m" not in det.candidates[0].extra


def test_click_outside_the_photo_is_a_click_error(scene):
    predictor = GeoPredictor(scene["checkpoint"])
    predictor.set_reference(scene["reference"])
    predictor.set_query(scene["photo"])
    with pytest.raises(ClickError, match=r"click \(500, 3\) lies outside the 128x128 photo"):
        predictor.locate((500, 3))


def test_an_unavailable_gpu_is_a_clear_error(scene):
    import torch

    from smgeo_geo.errors import DeviceError

    if torch.cuda.is_available():  # on a GPU machine the same call must work
        assert GeoPredictor(scene["checkpoint"], device="cuda").model is not None
    else:
        with pytest.raises(DeviceError, match="'cuda'.*no CUDA GPU.*use 'cpu'"):
            GeoPredictor(scene["checkpoint"], device="cuda")


def test_click_moved_answer_is_the_distance_between_the_answers_for_the_click_and_the_moved_click(scene):
    """What the locator reports as ``smgeo_click_moved_answer_m``: the click moved half the photo's
    width and height (wrapping round), both answered in the same window, in ground metres."""
    from smgeo_geo.coords import geodesic_distance

    predictor = GeoPredictor(scene["checkpoint"])
    with open_reference(scene["reference"]) as raster:
        predictor.set_reference(raster)
        predictor.set_query(scene["photo"])
        click = tuple(scene["clicks"][0].tolist())
        w, h = predictor._query_size_wh
        here = predictor.locate(click, 1)
        heat = predictor.last_heatmap
        there = predictor.locate(((click[0] + w / 2) % w, (click[1] + h / 2) % h), 1)
        predictor.last_heatmap = heat
        moved_m = predictor.click_moved_answer_m(click)
        assert predictor.last_heatmap is heat  # the map of the click's own answer stays
    expected = float(geodesic_distance(*here.centroid_lonlat, *there.centroid_lonlat))
    assert moved_m == pytest.approx(expected, abs=1e-6)
