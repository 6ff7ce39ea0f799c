"""coords.py against GDAL's own gdaltransform, plus round trips and CRS errors."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from smgeo_geo import coords
from smgeo_geo.errors import CRSError
from smgeo_geo.raster import open_reference

from .conftest import GEOREF, H, W


def gdaltransform_lonlat(path, cols, rows) -> np.ndarray:
    """Pixel/line -> lon/lat by GDAL. OGC:CRS84 is lon/lat by definition, so the output
    order does not depend on GDAL's EPSG:4326 axis-order handling."""
    exe = shutil.which("gdaltransform")
    assert exe, "gdaltransform not found: install gdal-bin (apt-get install -y gdal-bin)"
    stdin = "".join(f"{float(c):.10f} {float(r):.10f}\n" for c, r in zip(cols, rows))
    out = subprocess.run([exe, "-t_srs", "OGC:CRS84", "-output_xy", str(path)], input=stdin,
                         capture_output=True, text=True, check=True).stdout
    return np.array([[float(v) for v in line.split()[:2]] for line in out.splitlines() if line.strip()])


@pytest.mark.parametrize("name", sorted(GEOREF))
def test_pixel_to_lonlat_matches_gdaltransform(georef_tifs, name):
    rng = np.random.default_rng(1)
    cols = np.concatenate([[0, W, W, 0, W / 2, 0.5], rng.uniform(-10, W + 10, 20)])
    rows = np.concatenate([[0, 0, H, H, H / 2, 0.5], rng.uniform(-10, H + 10, 20)])
    expected = gdaltransform_lonlat(georef_tifs[name], cols, rows)
    with open_reference(georef_tifs[name]) as r:
        lon, lat = coords.pixel_to_lonlat(r.transform, r.crs, cols, rows)
    assert expected.shape == (len(cols), 2)
    np.testing.assert_allclose(lon, expected[:, 0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(lat, expected[:, 1], atol=1e-6, rtol=0)


def test_rotated_box_polygon_is_rotated_quadrilateral(georef_tifs):
    with open_reference(georef_tifs["rotated"]) as r:
        poly = coords.pixel_box_to_polygon(r.transform, (0, 0, 10, 10))
        ll = coords.polygon_to_lonlat(poly, r.crs)
        gd = gdaltransform_lonlat(georef_tifs["rotated"], [0, 10, 10, 0], [0, 0, 10, 10])
    # 10 px * 0.5 m per side, rotated 30 deg: not axis-aligned, right area.
    assert poly.area == pytest.approx(25.0, rel=1e-9)
    assert poly.envelope.area > poly.area * 1.5
    verts = np.array(ll.exterior.coords)[:4]  # same corners, maybe re-ordered to be CCW
    nearest = np.abs(verts[None, :, :] - gd[:, None, :]).max(axis=2).min(axis=1)
    assert nearest.max() < 1e-6
    assert ll.exterior.is_ccw


def test_polygon_to_lonlat_orients_rings():
    # Clockwise exterior and counter-clockwise hole in UTM 33N.
    outer = [(400000, 5000000), (400000, 5000100), (400100, 5000100), (400100, 5000000)]
    hole = [(400010, 5000010), (400020, 5000010), (400020, 5000020), (400010, 5000020)]
    poly = Polygon(outer, [hole])
    assert not poly.exterior.is_ccw and poly.interiors[0].is_ccw
    ll = coords.polygon_to_lonlat(poly, 32633, densify=3)
    assert ll.exterior.is_ccw and not ll.interiors[0].is_ccw
    assert len(ll.exterior.coords) == 4 * 4 + 1


@settings(max_examples=50, deadline=None)
@given(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.sampled_from(sorted(GEOREF)))
def test_pixel_crs_pixel_round_trip(col, row, name):
    tr = GEOREF[name][1]
    back = coords.crs_to_pixel(tr, *coords.pixel_to_crs(tr, col, row))
    np.testing.assert_allclose(back, (col, row), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.floats(-0.01, 0.01), st.floats(-0.01, 0.01), st.sampled_from(sorted(GEOREF)))
def test_lonlat_crs_round_trip(dlon, dlat, name):
    crs, tr = GEOREF[name]
    lon0, lat0 = coords.pixel_to_lonlat(tr, crs, 0, 0)
    x, y = coords.lonlat_to_crs(crs, lon0 + dlon, lat0 + dlat)
    lon, lat = coords.crs_to_lonlat(crs, x, y)
    np.testing.assert_allclose((lon, lat), (lon0 + dlon, lat0 + dlat), atol=1e-9)


def test_crs_inputs_are_equivalent():
    import rasterio.crs
    import pyproj

    forms = [32633, "EPSG:32633", pyproj.CRS.from_epsg(32633).to_wkt(), rasterio.crs.CRS.from_epsg(32633),
             pyproj.CRS.from_epsg(32633)]
    pts = [coords.crs_to_lonlat(f, 400000.0, 5000000.0) for f in forms]
    for p in pts[1:]:
        np.testing.assert_allclose(p, pts[0], atol=1e-12)
    assert coords.crs_string(forms[3]) == "EPSG:32633"


@pytest.mark.parametrize("bad", ["EPSG:999999", "not a crs", None, ""])
def test_unknown_crs_raises_crserror_naming_it(bad):
    with pytest.raises(CRSError) as err:
        coords.to_crs(bad)
    assert str(bad) in str(err.value)


def test_transform_bounds_matches_rasterio():
    from rasterio.warp import transform_bounds

    b = (400_000.0, 4_990_000.0, 410_000.0, 5_000_000.0)
    ours = coords.transform_bounds(32633, 4326, b)
    np.testing.assert_allclose(ours, transform_bounds("EPSG:32633", "EPSG:4326", *b, densify_pts=21), atol=1e-9)
    assert ours[0] < ours[2] and ours[1] < ours[3]
