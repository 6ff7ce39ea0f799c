"""The lens of a photo's camera model from the lensfun database (smgeo_geo.lens_database),
against the real DJI photo's own factory calibration (its DewarpData)."""

from __future__ import annotations

import numpy as np
import pytest

from smgeo_geo.lens_database import DATABASE_K1_FLOOR, database_lens
from smgeo_geo.photo_meta import read_photo_meta
from tests.locate.test_real_odm import SOUTH

W, H = 1368, 912
F_PX = 24.0 * np.hypot(W, H) / 43.2666  # the photo's 24 mm-equivalent lens


def displacement_px(k1: float, k2: float, k3: float = 0.0, radii=(0.3, 0.5, 0.7, 0.9)) -> np.ndarray:
    """How far (photo pixels) the lens moves a point at each normalised radius from where a pinhole puts it."""
    t = np.asarray(radii)
    return F_PX * t * (k1 * t ** 2 + k2 * t ** 4 + k3 * t ** 6)


def test_the_database_lens_of_the_real_photos_camera_agrees_with_its_own_calibration():
    """The real photo (DJI FC6310R, the RTK Phantom 4 Pro: lensfun knows the FC6310) written
    DewarpData: its unit's lens bends a point near the corner about 130 px inwards. The database's
    lens of the model comes within 15 % of that everywhere, where a pinhole is all of it off."""
    meta = read_photo_meta(SOUTH)
    assert (meta.make, meta.model) == ("DJI", "FC6310R")
    lens = database_lens(meta.make, meta.model, meta.focal_length_mm, W, H, F_PX)
    assert lens is not None and "FC6310" in lens.name and lens.fit_rms_px < 1.0
    k1, k2, _, _, k3 = meta.distortion
    own, known = displacement_px(k1, k2, k3), displacement_px(lens.k1, lens.k2)
    assert own[-1] < -100
    assert np.all(np.abs(known - own) < 0.15 * np.abs(own)), (known, own)
    assert lens.k1_sigma >= DATABASE_K1_FLOOR and abs(lens.k1 - k1) < 2 * lens.k1_sigma


def test_the_database_lens_is_the_same_at_any_resolution_of_the_photo():
    """Brown coefficients are on coordinates normalised by the focal length: the full-resolution
    photo (5472 x 3648) and the downsampled one get the same lens."""
    small = database_lens("DJI", "FC6310", 8.8, W, H, F_PX)
    full = database_lens("DJI", "FC6310", 8.8, 4 * W, 4 * H, 4 * F_PX)
    assert full.k1 == pytest.approx(small.k1, abs=0.005) and full.k2 == pytest.approx(small.k2, abs=0.01)


@pytest.mark.parametrize("make, model, found", [
    ("DJI", "FC6310", "FC6310"),
    ("dji", "FC6310S", "FC6310"),  # a one-letter variant of the model code shares its lens
    ("Hasselblad", "L1D-20c", "L1D-20c"),  # the Mavic 2 Pro writes its camera's maker
    ("DJI", "FC2103", "FC2103"),  # lensfun calls it "Mavic Air FC2103"
    ("DJI", "FC330", None),  # not in lensfun (its loose search offers the FC3411: not taken)
    ("DJI", "FC63100", None),
    ("Canon", "FC6310", None),
    ("DJI", "", None),
])
def test_cameras_are_found_by_make_and_model_code_only(make, model, found):
    lens = database_lens(make, model, None, W, H, F_PX)
    assert (lens is None) if found is None else (lens is not None and found in lens.name)
