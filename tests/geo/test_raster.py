"""open_reference / read_window: bands, stretch, nodata, PixelMapping, errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.errors import CRSError, NotGeoreferencedError, RasterError
from smgeo_geo.raster import PixelMapping, open_reference

from .conftest import GEOREF, H, W, rgb8, write_tif


def source(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def expected_stretch(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Independent 2-98 % stretch, for comparison."""
    lo, hi = np.percentile(band[valid].astype(float), [2, 98])
    return np.where(valid, np.rint(np.clip((band - lo) / (hi - lo) * 255, 0, 255)), 0).astype(np.uint8)


def test_uint8_passes_through_at_native_size(variants):
    data = source(variants["uint8"])
    with open_reference(variants["uint8"]) as r:
        assert (r.width, r.height, r.crs.to_epsg(), r.nodata) == (W, H, 32633, None)
        img, m = r.read_window(Window(5, 7, 20, 10), (20, 10), resampling=Resampling.nearest)
    assert img.dtype == np.uint8 and img.shape == (10, 20, 3)
    np.testing.assert_array_equal(img, data[:, 7:17, 5:25].transpose(1, 2, 0))
    assert (m.col_off, m.row_off, m.scale_x, m.scale_y) == (5, 7, 1, 1)


def test_mapping_is_exact_for_resampled_reads(variants):
    """Band 1 = 3*col, band 2 = 5*row: the value at a model pixel centre (nearest
    resampling) tells which raster pixel GDAL read; the mapping must say the same."""
    with open_reference(variants["gradient"]) as r:
        img, m = r.read_window(Window(3, 2, 50, 40), (20, 16), resampling=Resampling.nearest)
    u, v = np.meshgrid(np.arange(20) + 0.5, np.arange(16) + 0.5)
    cols, rows = m.to_raster(u, v)
    np.testing.assert_array_equal(img[..., 0], np.floor(cols).astype(np.uint8) * 3)
    np.testing.assert_array_equal(img[..., 1], np.floor(rows).astype(np.uint8) * 5)
    assert m.scale_x == pytest.approx(2.5) and m.scale_y == pytest.approx(2.5)


def test_band_choice(variants):
    data = source(variants["five_band"])
    with open_reference(variants["five_band"], bands=(5, 3, 1)) as r:
        img, _ = r.read_window(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    np.testing.assert_array_equal(img, data[[4, 2, 0]].transpose(1, 2, 0))
    with open_reference(variants["five_band"], bands=[2]) as r:
        img, _ = r.read_window(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], data[1])
    with open_reference(variants["five_band"]) as r:
        assert r.bands == (1, 2, 3)


@pytest.mark.parametrize("bands", [(6,), (0,), (1, 2), (1, 2, 3, 4)])
def test_bad_bands_raise_naming_file(variants, bands):
    with pytest.raises(RasterError, match="five_band.tif"):
        open_reference(variants["five_band"], bands=bands)


def test_uint16_percentile_stretch(variants):
    data = source(variants["uint16"])
    with open_reference(variants["uint16"]) as r:
        img, _ = r.read_window(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    valid = np.ones((H, W), bool)
    for c in range(3):
        exp = expected_stretch(data[c], valid)
        assert np.abs(img[..., c].astype(int) - exp).max() <= 1
        # 2 % of pixels at or below the low limit -> about 2 % zeros, 2 % at 255.
        assert 0.01 < np.mean(img[..., c] == 0) < 0.04 and 0.01 < np.mean(img[..., c] == 255) < 0.04


def test_nodata_pixels_are_zero_and_invalid(variants):
    data = source(variants["uint16_nodata"])
    with open_reference(variants["uint16_nodata"]) as r:
        assert r.nodata == 0
        img, valid, _ = r.read_window_with_mask(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    assert not valid[:10].any() and valid[10:].all()
    assert (img[:10] == 0).all()
    exp = expected_stretch(data[0], data[0] != 0)  # limits from valid pixels only
    assert np.abs(img[..., 0].astype(int) - exp).max() <= 1


def test_float_single_band_repeated_and_nan_invalid(variants):
    data = source(variants["float32"])[0]
    with open_reference(variants["float32"]) as r:
        img, valid, _ = r.read_window_with_mask(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    assert not valid[5, 7] and valid.sum() == W * H - 1 and img[5, 7].tolist() == [0, 0, 0]
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    assert np.abs(img[..., 0].astype(int) - expected_stretch(data, np.isfinite(data))).max() <= 1


def test_raster_wide_stretch_is_the_same_for_every_window(variants):
    with open_reference(variants["uint16"], stretch="raster") as r:
        a, _ = r.read_window(Window(0, 0, 32, 24), (32, 24), resampling=Resampling.nearest)
        full, _ = r.read_window(Window(0, 0, W, H), (W, H), resampling=Resampling.nearest)
    np.testing.assert_array_equal(a, full[:24, :32])


def test_window_partly_outside_is_filled_and_masked(variants):
    data = source(variants["uint8"])
    with open_reference(variants["uint8"]) as r:
        img, valid, m = r.read_window_with_mask(Window(-10, -20, 40, 40), (40, 40), resampling=Resampling.nearest)
    assert (m.col_off, m.row_off) == (-10, -20)
    assert not valid[:20].any() and not valid[:, :10].any() and valid[20:, 10:].all()
    assert (img[:20] == 0).all()
    np.testing.assert_array_equal(img[20:, 10:], data[:, :20, :30].transpose(1, 2, 0))


def test_small_raster_is_upsampled_whole(variants):
    with open_reference(variants["uint8"]) as r:
        img, m = r.read_window(Window(0, 0, W, H), (512, 512))
    assert img.shape == (512, 512, 3)
    assert m.box_to_raster((0, 0, 512, 512)) == (0, 0, W, H)


@settings(max_examples=60, deadline=None)
@given(st.integers(-500, 500), st.integers(-500, 500), st.integers(1, 4000), st.integers(1, 4000),
       st.integers(1, 1024), st.integers(1, 1024), st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
def test_pixel_mapping_round_trips(c0, r0, w, h, ow, oh, x, y):
    m = PixelMapping(c0, r0, w / ow, h / oh)
    np.testing.assert_allclose(m.to_model(*m.to_raster(x, y)), (x, y), atol=1e-6)
    box = (x, y, x + 10.0, y + 5.0)
    np.testing.assert_allclose(m.box_to_model(m.box_to_raster(box)), box, atol=1e-6)
    # The affine form agrees with the methods (model pixel -> raster pixel).
    np.testing.assert_allclose(m.affine @ (x, y), m.to_raster(x, y), atol=1e-6)
    assert m.box_to_raster((0, 0, ow, oh)) == pytest.approx((c0, r0, c0 + w, r0 + h))


def test_missing_file(tmp_path):
    with pytest.raises(RasterError, match="nothere.tif"):
        open_reference(tmp_path / "nothere.tif")


def test_not_a_raster(tmp_path):
    p = tmp_path / "text.tif"
    p.write_text("hello")
    with pytest.raises(RasterError, match="text.tif"):
        open_reference(p)


def test_not_georeferenced(variants):
    with pytest.raises(NotGeoreferencedError, match="no_georef.tif"):
        open_reference(variants["no_georef"])


def test_no_crs(variants):
    with pytest.raises(CRSError, match="no_crs.tif"):
        open_reference(variants["no_crs"])


def test_close_and_context_manager(variants):
    r = open_reference(variants["uint8"])
    with r:
        assert not r.dataset.closed
    assert r.dataset.closed


def test_gcp_only_raster_gets_fitted_transform(tmp_path):
    """No geotransform but GCPs: the least-squares affine through the GCPs is used."""
    from rasterio.control import GroundControlPoint

    true = rasterio.Affine(0.5, 0.0, 400_000, 0.0, -0.5, 5_000_000)
    gcps = [GroundControlPoint(row=r, col=c, x=(true @ (c, r))[0], y=(true @ (c, r))[1])
            for c, r in [(0, 0), (W, 0), (0, H), (W, H), (10, 20)]]
    path = tmp_path / "gcps.tif"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):  # until the GCPs are set
        with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, H, W), np.uint8))
            dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(32633))
    with open_reference(path) as r:
        assert r.crs.to_epsg() == 32633
        np.testing.assert_allclose(tuple(r.transform)[:6], tuple(true)[:6], atol=1e-6)


def test_global_geographic_raster_and_integer_types_are_accepted(tmp_path):
    """The checks that refuse bad rasters keep good ones: a whole-world lon/lat raster
    (corners exactly at +-180 / +-90) and signed / 64-bit integer pixels open and read."""
    from affine import Affine

    from .conftest import write_tif

    world = write_tif(tmp_path / "world.tif", rgb8(1, 36, 18), "EPSG:4326", Affine(10.0, 0, -180.0, 0, -10.0, 90.0))
    with open_reference(world) as r:
        assert r.bounds == (-180.0, -90.0, 180.0, 90.0)
    for dtype in ("int8", "int16", "uint32", "int64", "float64"):
        data = np.arange(W * H, dtype=dtype).reshape(1, H, W)
        path = write_tif(tmp_path / f"{dtype}.tif", data, "EPSG:32633", Affine(0.5, 0, 4e5, 0, -0.5, 5e6))
        with open_reference(path) as r:
            img, valid, _ = r.read_window_with_mask(Window(0, 0, W, H), (W, H))
        assert r.dtype == np.dtype(dtype) and img.dtype == np.uint8 and valid.all() and img.max() == 255


@pytest.mark.parametrize("crs, pixel, unit_m", [
    ("EPSG:32633", 0.5, 1.0),  # UTM, metres (500 km east of the central meridian: scale 1.0027)
    ("EPSG:2263", 2.0, 0.3048006),  # New York Long Island, US survey feet
    ("EPSG:3857", 0.6, 1.0),  # Web Mercator at 47 deg N: a "metre" is 0.68 m on the ground
    ("EPSG:4326", 5e-6, None),  # degrees, at 60 deg N
])
def test_pixel_size_in_metres_is_measured_on_the_ground(tmp_path, crs, pixel, unit_m):
    """Window sizes and uncertainty radii are worked out in metres on the ground: a pixel of 2 US
    survey feet counts as 0.61 m, a 0.6 m Web Mercator pixel at 47 deg N as 0.41 m, a pixel of
    5e-6 deg at 60 deg N as 0.39 m (0.56 m north-south, 0.28 m east-west). Expected from pyproj's
    projection factors (the areal scale at the raster's centre) and, for degrees, the meridian's
    and parallel's radii of curvature of WGS84."""
    import pyproj

    from smgeo_geo.coords import pixel_to_lonlat

    from .conftest import from_origin, write_tif

    origin = {"EPSG:4326": (10.0, 60.0), "EPSG:3857": (1_000_000.0, 6_000_000.0)}.get(crs, (1_000_000.0, 200_000.0))
    path = write_tif(tmp_path / "r.tif", rgb8(3), crs, from_origin(*origin, pixel, pixel))
    with open_reference(path) as r:
        (lon,), (lat,) = pixel_to_lonlat(r.transform, r.crs, [r.width / 2], [r.height / 2])
        if unit_m is None:
            a, f = 6378137.0, 1 / 298.257223563
            e2 = f * (2 - f)
            phi = np.radians(lat)
            w = 1 - e2 * np.sin(phi) ** 2
            north_m = np.radians(pixel) * a * (1 - e2) / w ** 1.5
            east_m = np.radians(pixel) * a / np.sqrt(w) * np.cos(phi)
            expected = np.sqrt(north_m * east_m)
        else:
            factors = pyproj.Proj(crs).get_factors(lon, lat)
            expected = pixel * unit_m / np.sqrt(factors.areal_scale)
        assert r.pixel_size_m == pytest.approx(expected, rel=1e-3)  # (pseudo-Mercator: not quite conformal)
        if crs == "EPSG:3857":
            assert r.pixel_size_m == pytest.approx(0.6 * np.cos(np.radians(lat)), rel=3e-3)


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:4326"])
def test_pixel_size_is_measured_where_it_is_used_on_a_mosaic_spanning_latitudes(tmp_path, crs):
    """A mosaic from 40 to 60 deg N: Web Mercator's pixels are cos(lat) ground metres, a third
    smaller at the top than at the bottom; a geographic CRS's pixels shrink east-west only. Windows and
    radii around a click use the pixel's ground size at that click (``pixel_size_m_at``), and a
    registration window's metres per work pixel are measured at that window (``pixel_metres``):
    expected from pyproj's projection factors at each point, independently of the raster code."""
    import pyproj
    from rasterio.transform import from_bounds

    from smgeo_geo.coords import pixel_to_lonlat
    from smgeo_geo.rectification import pixel_metres, work_window

    from .conftest import write_tif

    west, south, east, north = pyproj.Transformer.from_crs(4326, crs, always_xy=True).transform_bounds(
        10.0, 40.0, 10.5, 60.0)
    width, height = 40, 400
    path = write_tif(tmp_path / "mosaic.tif", np.full((3, height, width), 128, np.uint8), crs,
                     from_bounds(west, south, east, north, width, height))

    def expected(r, col, row) -> float:
        (lon,), (lat,) = pixel_to_lonlat(r.transform, r.crs, [col + 0.5], [row + 0.5])
        if crs == "EPSG:3857":
            factors = pyproj.Proj(crs).get_factors(lon, lat)
            return np.sqrt(abs(r.transform.a * r.transform.e) / factors.areal_scale)
        geod = pyproj.Geod(ellps="WGS84")
        east_m = geod.inv(lon, lat, lon + abs(r.transform.a), lat)[2]
        north_m = geod.inv(lon, lat, lon, lat + abs(r.transform.e))[2]
        return np.sqrt(east_m * north_m)

    with open_reference(path) as r:
        top, bottom = r.pixel_size_m_at(20, 5), r.pixel_size_m_at(20, height - 5)
        assert top == pytest.approx(expected(r, 20, 5), rel=5e-3)
        assert bottom == pytest.approx(expected(r, 20, height - 5), rel=5e-3)
        # cos(60) / cos(40) = 0.65 (both ways in Web Mercator, east-west in degrees): one size for the
        # whole mosaic would put windows and radii 10-35 % off at its edges
        assert top < (0.7 if crs == "EPSG:3857" else 0.85) * bottom
        assert r.pixel_size_m == pytest.approx(r.pixel_size_m_at(width / 2, height / 2))
        window, size = work_window(r, Window(0, 0, 40, 40), 20)  # the top, read at half resolution
        _, _, mapping = r.read_window_with_mask(window, size)
        assert pixel_metres(r, mapping, window) == pytest.approx(2 * expected(r, 20, 20), rel=1e-2)


def test_data_window_is_the_part_of_a_window_that_holds_pixels(tmp_path):
    """A survey inside a mosaic, as nodata (0) around a block of rows 300-499, cols 200-599 of
    a 1000 x 800 px raster, and as an RGBA alpha band: the window of valid pixels within what is
    asked, exact at full resolution, within one mask cell when the mask is read decimated;
    None where there are none (also wholly outside the raster)."""
    crs, tr = GEOREF["utm33n"]
    data = np.zeros((3, 800, 1000), np.uint8)
    data[:, 300:500, 200:600] = rgb8(5, 400, 200) | 1  # no valid pixel is 0 in every band
    alpha = np.where(data[0] > 0, 255, 0).astype(np.uint8)[None]
    paths = [write_tif(tmp_path / "nodata.tif", data, crs, tr, nodata=0),
             write_tif(tmp_path / "rgba.tif", np.concatenate([data, alpha]), crs, tr, photometric="RGB",
                       alpha="YES")]
    for path in paths:
        with open_reference(path, bands=(1, 2, 3)) as r:
            exact = r.data_window(Window(0, 0, 1000, 800), max_side=1000)
            assert (exact.col_off, exact.row_off, exact.width, exact.height) == (199, 299, 402, 202), path
            # asked for part of the block: cut to it, never grown beyond what was asked
            part = r.data_window(Window(100, 350, 300, 300), max_side=1000)
            assert (part.col_off, part.row_off, part.col_off + part.width, part.row_off + part.height) == \
                   (199, 350, 400, 501)
            coarse = r.data_window(Window(0, 0, 1000, 800), max_side=100)  # 10 px cells
            assert 180 <= coarse.col_off <= 200 and 280 <= coarse.row_off <= 300
            assert 600 <= coarse.col_off + coarse.width <= 620 and 500 <= coarse.row_off + coarse.height <= 520
            assert r.data_window(Window(0, 0, 150, 250)) is None
            assert r.data_window(Window(-500, -500, 300, 300)) is None
            straddling = r.data_window(Window(-100, 250, 400, 400), max_side=1000)
            assert straddling.col_off >= 0 and straddling.col_off == 199
