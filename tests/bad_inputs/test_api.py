"""The Python API with bad inputs: each raises the specific :class:`SMGeoError` subclass,
naming the file or field; pyproj, rasterio and Pillow errors never escape as themselves."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from rasterio.windows import Window

from smgeo_geo.coords import check_bounds_crs, pixel_to_lonlat, transform_bounds, transform_xy
from smgeo_geo.errors import (CheckpointError, ClickError, CRSError, DeviceError, ImageError, NoDataError,
                              NotGeoreferencedError, OptionError, PredictorStateError, RasterError)
from smgeo_geo.photo import MAX_PHOTO_PIXELS, read_photo
from smgeo_geo.predictor import GeoPredictor
from smgeo_geo.raster import open_reference
from smgeo_model import bundled_checkpoint, load_checkpoint, save_checkpoint
from smgeo_model.checkpoint import checkpoint_paths, read_checkpoint_config
from smgeo_model.config import SMGeoConfig, get_config
from smgeo_model.errors import ConfigError

from .conftest import LOCAL_CS, copy_checkpoint, png_header, rgb, write_tif

RASTERS = {
    "complex": (RasterError, ["complex.tif", "complex64", "expected"]),
    "zero_pixel": (RasterError, ["zero_pixel.tif", "degenerate geotransform"]),
    "singular": (RasterError, ["singular.tif", "degenerate geotransform"]),
    "nan_transform": (RasterError, ["nan_transform.tif", "degenerate geotransform"]),
    "lat95": (RasterError, ["lat95.tif", "lat -90..90"]),
    "local_cs": (CRSError, ["local_cs.tif", "WGS84"]),
    "no_georef": (NotGeoreferencedError, ["no_georef.tif"]),
    "no_crs": (CRSError, ["no_crs.tif", "no CRS"]),
    "text_tif": (RasterError, ["text.tif"]),
}


@pytest.mark.parametrize("key,kind,names", [(k, *v) for k, v in RASTERS.items()], ids=RASTERS.keys())
def test_open_reference_refuses_with_the_specific_error(inputs, key, kind, names):
    with pytest.raises(kind) as info:
        open_reference(inputs[key])
    for name in names:
        assert name in str(info.value)


PHOTOS = {
    "bomb": ["bomb.png", "400 megapixels", f"{MAX_PHOTO_PIXELS // 10**6} megapixel limit"],
    "big": ["big.png", "13000x13000"],
    "truncated": ["truncated.jpg", "cannot be read"],
    "empty": ["empty.jpg", "cannot be read"],
    "not_image": ["notes.jpg", "cannot be read"],
    "folder_photo": ["folder.jpg", "not a file"],
}


@pytest.mark.parametrize("key,names", PHOTOS.items(), ids=PHOTOS.keys())
def test_read_photo_refuses_with_image_error(inputs, recwarn, key, names):
    with pytest.raises(ImageError) as info:
        read_photo(inputs[key])
    for name in names:
        assert name in str(info.value)
    assert not [w for w in recwarn if "PIL" in w.filename or "Image" in str(w.category)]  # Pillow kept quiet


def _image_bytes(fmt: str) -> bytes:
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    buf = io.BytesIO()
    if fmt == "JPEG":
        exif = image.getexif()
        exif[0x0112] = 6  # rotated: exercises the EXIF path
        image.save(buf, fmt, exif=exif)
    else:
        image.save(buf, fmt)
    return buf.getvalue()


SEEDS = {fmt: _image_bytes(fmt) for fmt in ("JPEG", "PNG", "TIFF", "GIF", "BMP")}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(SEEDS)),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.integers(0, 2)),
                      min_size=1, max_size=6))
def test_any_damaged_photo_is_read_or_refused_with_image_error(tmp_path_factory, fmt, edits):
    data = bytearray(SEEDS[fmt])
    for where, value, op in edits:  # 0: overwrite a byte, 1: cut from there, 2: insert a byte
        i = int(where * len(data))
        if op == 0:
            data[i] = value
        elif op == 1:
            del data[i:]
        else:
            data.insert(i, value)
        if not data:
            break
    path = tmp_path_factory.mktemp("photo") / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(data))
    try:
        image = read_photo(path)
    except ImageError as exc:
        assert "damaged." in str(exc)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_photo_limit_is_below_pillows_own():
    assert MAX_PHOTO_PIXELS < 2 * Image.MAX_IMAGE_PIXELS  # Pillow would refuse first otherwise


COEFFS = st.one_of(st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e300, 1e-300]),
                   st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coeffs=st.tuples(*[COEFFS] * 6), crs=st.sampled_from(["EPSG:32633", "EPSG:4326", "EPSG:3857", LOCAL_CS]))
def test_any_geotransform_opens_with_finite_lonlat_or_is_refused(tmp_path_factory, coeffs, crs):
    path = write_tif(tmp_path_factory.mktemp("gt") / "gt.tif", rgb(8, 8), crs=crs, transform=Affine(*coeffs))
    try:
        with open_reference(path) as raster:
            lon, lat = pixel_to_lonlat(raster.transform, raster.crs, [0.5, 7.5], [0.5, 7.5])
    except (RasterError, CRSError) as exc:  # NotGeoreferencedError is a RasterError
        assert "gt.tif" in str(exc)
    else:
        assert np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))


def test_coordinate_functions_raise_crs_error_not_pyproj_errors():
    with pytest.raises(CRSError, match="Engineering site"):
        transform_xy(LOCAL_CS, 4326, [1.0], [2.0])
    with pytest.raises(CRSError, match="no coordinate transformation"):
        transform_bounds(4326, LOCAL_CS, (10, 45, 11, 46))
    with pytest.raises(CRSError, match="unknown CRS"):
        transform_xy("EPSG:99999", 4326, [1.0], [2.0])
    with pytest.raises(CRSError, match="bbox-crs"):
        check_bounds_crs((0, 0, 1, 1), LOCAL_CS, "--bbox", "--bbox-crs")
    with pytest.raises(OptionError, match="lat -90..90"):
        check_bounds_crs((10, 80, 11, 95), "EPSG:4326", "--bbox", "--bbox-crs")


# -- GeoPredictor -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictor():
    return GeoPredictor()  # the bundled demo model, loaded once for this module


@pytest.mark.parametrize("key", ["all_nodata", "all_nan"])
def test_window_without_valid_pixels_is_no_data_error(inputs, predictor, key):
    with open_reference(inputs[key]) as raster:
        with pytest.raises(NoDataError, match=f"{key}.tif.*no valid pixels"):
            predictor.set_reference(raster)
        predictor.set_query(inputs["photo"])
        with pytest.raises(NoDataError, match=f"{key}.tif: no window"):
            predictor.search(raster, (20, 20), window_size=32)


def test_window_outside_the_raster_is_no_data_error(inputs, predictor):
    with open_reference(inputs["ref"]) as raster:
        with pytest.raises(NoDataError):
            predictor.set_reference(raster, Window(1000, 1000, 64, 64))


def test_predictor_refuses_bad_calls(inputs, predictor):
    fresh = GeoPredictor()
    with pytest.raises(PredictorStateError):
        fresh.locate((1, 1))
    predictor.set_reference(inputs["ref"])
    predictor.set_query(inputs["photo"])
    with pytest.raises(OptionError, match="got 0"):
        predictor.locate((20, 20), top_k=0)
    with pytest.raises(OptionError, match="got True"):
        predictor.locate((20, 20), top_k=True)
    for click in [(math.nan, 1), (1, math.inf), (500, 20), ("a", 1), (1,)]:
        with pytest.raises(ClickError):
            predictor.locate(click)
    with pytest.raises(DeviceError, match="'gpu'"):
        GeoPredictor(device="gpu")


def test_bad_checkpoint_config_names_the_field(tmp_path):
    stem = copy_checkpoint(tmp_path, "bad", lambda d: d["config"].update(num_heads=[1, 2, 4, "8"]))
    with pytest.raises(CheckpointError, match=r"bad\.json: field num_heads must be a list of 4 whole numbers"):
        GeoPredictor(stem)


def test_checkpoint_names_with_dots_load_their_own_files(tmp_path):
    """``runs/my.model`` is the stem: ``my.model.safetensors`` + ``my.model.json`` load, never a
    ``my.safetensors`` / ``my.json`` beside them (here two unreadable decoys)."""
    stem = copy_checkpoint(tmp_path, "my.model")
    (tmp_path / "my.safetensors").write_bytes(b"decoy")
    (tmp_path / "my.json").write_text("decoy")
    for name in ("my.model", "my.model.safetensors", "my.model.json"):
        assert checkpoint_paths(tmp_path / name) == (tmp_path / "my.model.safetensors", tmp_path / "my.model.json")
    reference = load_checkpoint(bundled_checkpoint())
    model = load_checkpoint(tmp_path / "my.model.json")
    assert model.config == reference.config
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert GeoPredictor(stem).model_id.startswith("my.model@")
    saved = save_checkpoint(reference, tmp_path / "v1.2")
    assert saved.name == "v1.2.safetensors" and (tmp_path / "v1.2.json").is_file()
    assert read_checkpoint_config(tmp_path / "v1.2")[0] == reference.config


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
                    max_leaves=6)
FIELDS = sorted(get_config("tiny").to_dict())


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1, max_size=3))
def test_any_config_json_is_a_config_or_a_config_error_naming_a_field(changes):
    doc = json.loads(json.dumps({**get_config("tiny").to_dict(), **changes}))
    try:
        config = SMGeoConfig.from_dict(doc)
    except ConfigError as exc:
        assert "field" in str(exc) or "config" in str(exc)
    else:  # accepted: every value has the declared type and the config round-trips
        assert SMGeoConfig.from_dict(json.loads(config.to_json())) == config
        assert all(isinstance(getattr(config, f), int) and not isinstance(getattr(config, f), bool)
                   for f in ("embed_dim", "window_size", "neck_dim", "head_dim", "fusion_groups"))
        assert all(math.isfinite(getattr(config, f)) for f in ("mlp_ratio", "drop_path_rate", "loss_alpha"))


def test_model_errors_reach_the_user_as_smgeo_errors(tmp_path, predictor):
    with pytest.raises(CheckpointError):  # smgeo_model's CheckpointError, re-raised as smgeo_geo's
        GeoPredictor(tmp_path / "nothing")
    (tmp_path / "photo.png").write_bytes(png_header(30_000, 30_000))
    with pytest.raises(ImageError, match="megapixel limit"):
        predictor.set_query(tmp_path / "photo.png")
