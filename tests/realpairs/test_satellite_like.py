"""satellite_like: a coarser, re-coloured copy of an orthophoto that keeps its place on the map."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from smgeo_geo.errors import OptionError
from smgeo_synth.realpairs import satellite_like


@pytest.fixture()
def ortho(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 40, 60), dtype=np.uint8)
    path = tmp_path / "ortho.tif"
    with rasterio.open(path, "w", driver="GTiff", width=60, height=40, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(0.1, 0, 500_000, 0, -0.1, 5_000_000)) as dst:
        dst.write(data)
    return path, data


def test_box_averages_to_the_asked_pixel_size_over_the_same_bounds(ortho, tmp_path):
    path, data = ortho
    out = satellite_like(path, tmp_path / "sat.tif", 0.5)
    with rasterio.open(out) as src, rasterio.open(path) as orig:
        assert (src.width, src.height) == (12, 8) and src.transform.a == pytest.approx(0.5)
        assert src.bounds == pytest.approx(orig.bounds) and src.crs == orig.crs
        coarse = src.read()
    expected = data.reshape(3, 8, 5, 12, 5).astype(float).mean((2, 4))
    assert np.abs(coarse.astype(float) - expected).max() <= 1.0


@pytest.mark.parametrize("tint", ["autumn", "haze"])
def test_a_tint_changes_the_colours_not_the_grid(ortho, tmp_path, tint):
    path, _ = ortho
    plain = satellite_like(path, tmp_path / "plain.tif", 0.5)
    tinted = satellite_like(path, tmp_path / f"{tint}.tif", 0.5, tint=tint)
    with rasterio.open(plain) as a, rasterio.open(tinted) as b:
        assert a.transform == b.transform
        pa, pb = a.read().astype(float), b.read().astype(float)
    assert np.abs(pa - pb).mean() > 5
    if tint == "haze":
        assert pb.std() < pa.std()  # haze flattens contrast
    else:
        assert (pb[0] - pb[2]).mean() > (pa[0] - pa[2]).mean()  # autumn: warmer


def test_bad_options_are_named_and_nothing_is_written(ortho, tmp_path):
    path, _ = ortho
    with pytest.raises(OptionError, match="tint"):
        satellite_like(path, tmp_path / "a.tif", 0.5, tint="winter")
    with pytest.raises(OptionError, match="coarser"):
        satellite_like(path, tmp_path / "b.tif", 0.05)
    assert not list(tmp_path.glob("[ab].tif"))


def test_a_coarse_terrain_model_averages_heights_over_the_same_bounds_leaving_nodata_out(tmp_path):
    """A DSM (0.8 m cells, NaN nodata) box-averaged to 4 m: each cell the mean of the valid heights
    under it, a cell with none stays nodata, the bounds and CRS kept."""
    from smgeo_synth.realpairs import coarse_terrain

    heights = np.arange(40 * 30, dtype=np.float32).reshape(30, 40) / 10.0
    heights[:5, :5] = np.nan  # one whole coarse cell without heights
    heights[5, 5] = np.nan  # and one height missing inside another
    dem = tmp_path / "dsm.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=40, height=30, count=1, dtype="float32", crs="EPSG:32651",
                       nodata=np.nan, transform=Affine(0.8, 0, 300_000, 0, -0.8, 2_700_000)) as dst:
        dst.write(heights, 1)
    out = coarse_terrain(dem, tmp_path / "dem_4m.tif", 4.0)
    with rasterio.open(out) as src, rasterio.open(dem) as orig:
        assert (src.width, src.height) == (8, 6) and src.transform.a == pytest.approx(4.0)
        assert src.bounds == pytest.approx(orig.bounds) and src.crs == orig.crs
        coarse = src.read(1)
    assert np.isnan(coarse[0, 0])
    assert coarse[1, 1] == pytest.approx(np.nanmean(heights[5:10, 5:10]), abs=1e-3)
    assert coarse[3, 6] == pytest.approx(heights[15:20, 30:35].mean(), abs=1e-3)
    with pytest.raises(OptionError, match="must be coarser"):
        coarse_terrain(dem, tmp_path / "finer.tif", 0.4)


def test_a_mosaic_holds_the_orthophoto_at_its_place_on_the_same_grid_nodata_around(ortho, tmp_path):
    from rasterio.windows import Window

    from smgeo_synth.realpairs import in_mosaic

    path, data = ortho
    out = in_mosaic(path, tmp_path / "mosaic.tif", 300)
    with rasterio.open(out) as src, rasterio.open(path) as orig:
        assert (src.width, src.height, src.nodata, src.crs) == (660, 640, 0, orig.crs)
        assert src.res == orig.res
        inner = src.window(*orig.bounds)
        assert (inner.col_off, inner.row_off, inner.width, inner.height) == pytest.approx((300, 300, 60, 40))
        np.testing.assert_array_equal(src.read(window=Window(300, 300, 60, 40)), data)
        assert not src.read(1, window=Window(0, 0, 300, 640)).any() and src.read_masks(1)[:300].max() == 0
    for bad in (0, -5, 2.5, True):
        with pytest.raises(OptionError, match="mosaic padding"):
            in_mosaic(path, tmp_path / "bad.tif", bad)
