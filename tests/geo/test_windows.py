"""Search windows: from bounds, from a ground radius, sliding; NMS across windows."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
from rasterio.windows import Window

from smgeo_geo.coords import pixel_to_lonlat
from smgeo_geo.errors import WindowError
from smgeo_geo.raster import open_reference
from smgeo_geo.windows import merge_boxes, sliding_windows, window_from_bounds, window_from_center

from .conftest import GEOREF, H, W

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.mark.parametrize("name", ["utm33n", "utm33s", "wgs84", "webmerc", "rotated", "british"])
@pytest.mark.parametrize("radius", [40.0, 300.0])
def test_window_from_center_radius_on_the_ground(georef_tifs, name, radius):
    """The window's width and height, measured on the ground through its centre (also
    along the rotated pixel axes), are 2 * radius within 1 % (Web Mercator has scale
    1/cos(lat) ~ 1.47 here; EPSG:4326 has degrees of longitude shrunk by cos(60 deg))."""
    with open_reference(georef_tifs[name]) as r:
        lon, lat = (float(v) for v in pixel_to_lonlat(r.transform, r.crs, W / 2, H / 2))
        win = window_from_center(r, lon, lat, radius)
        c0, r0, w, h = win.col_off, win.row_off, win.width, win.height
        # window centre is the requested point (within a pixel)
        clon, clat = pixel_to_lonlat(r.transform, r.crs, c0 + w / 2, r0 + h / 2)
        left, right = pixel_to_lonlat(r.transform, r.crs, [c0, c0 + w], [r0 + h / 2] * 2)
        top, bottom = pixel_to_lonlat(r.transform, r.crs, [c0 + w / 2] * 2, [r0, r0 + h])
    width_m = GEOD.inv(left[0], right[0], left[1], right[1])[2]
    height_m = GEOD.inv(top[0], bottom[0], top[1], bottom[1])[2]
    assert width_m == pytest.approx(2 * radius, rel=0.01), (width_m, win)
    assert height_m == pytest.approx(2 * radius, rel=0.01), (height_m, win)
    dist = GEOD.inv(lon, lat, float(clon), float(clat))[2]
    assert dist < 1.0  # metres: pixels are 0.25-0.6 m
    assert win.col_off == int(win.col_off) and win.width == int(win.width)


def test_window_from_center_clip(georef_tifs):
    with open_reference(georef_tifs["utm33n"]) as r:
        lon, lat = (float(v) for v in pixel_to_lonlat(r.transform, r.crs, 0, 0))
        win = window_from_center(r, lon, lat, 10.0, clip=True)
        full = window_from_center(r, lon, lat, 10.0)
    assert (win.col_off, win.row_off) == (0, 0) and full.col_off < 0 and full.row_off < 0
    assert win.width == full.width + full.col_off


def test_window_from_center_outside_raster_names_raster(georef_tifs):
    with open_reference(georef_tifs["utm33n"]) as r:
        with pytest.raises(WindowError, match="utm33n.tif") as err:
            window_from_center(r, 13.0, 40.0, 100.0)
        assert "lon=13.0" in str(err.value)
        with pytest.raises(WindowError, match="utm33n.tif"):
            window_from_center(r, 13.0, 45.1, -5.0)


def test_window_from_bounds_in_raster_crs_is_exact(georef_tifs):
    x0, y0 = GEOREF["utm33n"][1].c, GEOREF["utm33n"][1].f
    with open_reference(georef_tifs["utm33n"]) as r:
        win = window_from_bounds(r, (x0 + 10 * 0.5, y0 - 30 * 0.5, x0 + 20 * 0.5, y0 - 5 * 0.5), "EPSG:32633")
        assert win == Window(10, 5, 10, 25)
        # Fractional bounds snap outwards.
        win = window_from_bounds(r, (x0 + 10.2 * 0.5, y0 - 29.5 * 0.5, x0 + 19.9 * 0.5, y0 - 5.5 * 0.5), 32633)
        assert win == Window(10, 5, 10, 25)


def test_window_from_lonlat_bounds_encloses_area(georef_tifs):
    """Bounds given in lon/lat around the raster's own corners -> window covers the raster
    (densified edges, rotated geotransform)."""
    for name in ("utm33s", "rotated", "swiss"):
        with open_reference(georef_tifs[name]) as r:
            lon, lat = pixel_to_lonlat(r.transform, r.crs, [0, W, W, 0], [0, 0, H, H])
            win = window_from_bounds(r, (lon.min(), lat.min(), lon.max(), lat.max()), "EPSG:4326")
            assert win.col_off <= 0 and win.row_off <= 0
            assert win.col_off + win.width >= W and win.row_off + win.height >= H
            assert win.width < 3 * W and win.height < 3 * H
            clipped = window_from_bounds(r, (lon.min(), lat.min(), lon.max(), lat.max()), 4326, clip=True)
            assert clipped == Window(0, 0, W, H)


def test_window_from_bounds_errors(georef_tifs):
    with open_reference(georef_tifs["wgs84"]) as r:
        with pytest.raises(WindowError, match="wgs84.tif"):
            window_from_bounds(r, (20.0, 20.0, 21.0, 21.0), 4326)
        with pytest.raises(WindowError, match="wgs84.tif"):
            window_from_bounds(r, (10.1, 60.0, 10.0, 60.1), 4326)


@pytest.mark.parametrize("size,overlap", [(16, 0.25), ((20, 12), 0.5), (10, 0.0), (100, 0.25)])
def test_sliding_windows_cover_raster(georef_tifs, size, overlap):
    with open_reference(georef_tifs["utm33n"]) as r:
        wins = sliding_windows(r, size, overlap)
    sw, sh = (size, size) if isinstance(size, int) else size
    cover = np.zeros((H, W), int)
    for w in wins:
        assert w.col_off >= 0 and w.row_off >= 0 and w.col_off + w.width <= W and w.row_off + w.height <= H
        assert (w.width, w.height) == (min(sw, W), min(sh, H))
        cover[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert cover.min() >= 1
    if sw >= W and sh >= H:
        assert wins == [Window(0, 0, W, H)]
    # neighbours overlap by at least the asked fraction
    cols = sorted({w.col_off for w in wins})
    if len(cols) > 1:
        assert max(np.diff(cols)) <= round(sw * (1 - overlap))


def test_merge_boxes_suppresses_across_windows():
    boxes = [[100, 100, 150, 150],  # window A, object 1
             [102, 101, 151, 149],  # window B sees object 1 again, lower score
             [400, 400, 420, 430],  # object 2
             [105, 100, 160, 150]]  # object 1 again, best score
    scores = [0.8, 0.7, 0.5, 0.9]
    kept, kept_scores, idx = merge_boxes(boxes, scores, iou_threshold=0.5)
    assert idx.tolist() == [3, 2]
    assert kept_scores.tolist() == [0.9, 0.5]
    np.testing.assert_array_equal(kept[1], boxes[2])
    assert merge_boxes(boxes, scores, iou_threshold=0.99)[2].tolist() == [3, 0, 1, 2]
    assert merge_boxes(boxes, scores, max_out=1)[2].tolist() == [3]
    assert merge_boxes(np.zeros((0, 4)), [])[2].size == 0
