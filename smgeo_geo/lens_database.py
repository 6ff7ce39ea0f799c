"""Lens distortion of a photo's camera model from the lensfun database (the ``lensfunpy`` package).

Most drones write no lens model into their photos (of DJI's, only some models write
``DewarpData``), but lensfun has calibrated the fixed lenses of common survey drones (DJI
FC6310 of the Phantom 4 Pro, FC3411 of the Air 2S, FC2103 of the Mavic Air, FC220 of the Mavic
Pro, Hasselblad L1D-20c of the Mavic 2 Pro, L2D-20c of the Mavic 3, ...). :func:`database_lens`
finds the photo's camera by its EXIF make and model, lets lensfun compute where each pixel of
the undistorted photo lies in the photo as taken, and fits the radial Brown coefficients
``k1``, ``k2`` (OpenCV convention, on image coordinates normalised by the photo's focal length
in pixels) to that map: lensfun's own conventions (its ``ptlens`` polynomial, radii normalised
by the calibration frame's crop factor and aspect ratio) stay inside lensfun.

A camera matches when lensfun has its model code exactly, or the code followed by one letter
(``FC6310R``, the RTK variant of ``FC6310``, shares its lens). No looser match is taken: lensfun's
own loose search ranks ``FC3411`` first for an ``FC330``.

A database lens is a calibration of the camera model, not of this unit at this focus: the
metadata budget gives its ``k1`` a 1-sigma of :data:`DATABASE_K1_SHARE` of its size (at least
:data:`DATABASE_K1_FLOOR`), and with a DEM the lens is refitted to the registration's matches
around it (:mod:`smgeo_geo.lens`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

DATABASE_K1_SHARE = 0.15  # 1-sigma of a database lens's k1 as a share of |k1|: unit, focus, database
DATABASE_K1_FLOOR = 0.02  # ... and at least this (a database lens near a pinhole is not exactly one)
FIT_SIDE = 1024  # pixels: the long side of the photo size lensfun's map is computed at
MAP_STEP_PX = 8  # lensfun's map sampled every this many of those pixels for the fit
MAX_FIT_RMS = 0.002  # of the focal length (1.8 px at 912 px): a Brown k1, k2 farther from lensfun's map is not used


@dataclass(frozen=True)
class DatabaseLens:
    """Radial Brown ``k1``, ``k2`` of the photo's camera (normalised image coordinates), the
    lensfun ``name`` they come from, and how far (photo pixels, RMS) the two-term fit lies from
    lensfun's own model."""

    k1: float
    k2: float
    name: str
    fit_rms_px: float

    @property
    def k1_sigma(self) -> float:
        return max(DATABASE_K1_FLOOR, DATABASE_K1_SHARE * abs(self.k1))


def _model_code(model: str) -> str:
    """The last word of a model name, upper case (``"Mavic Air FC2103"`` -> ``"FC2103"``)."""
    words = model.split()
    return words[-1].upper() if words else ""


def _matches(exif_model: str, db_model: str) -> bool:
    exif, code = exif_model.strip().upper(), _model_code(db_model)
    return bool(code) and (exif == db_model.strip().upper() or exif == code
                           or re.fullmatch(re.escape(code) + r"[A-Z]", exif) is not None)


@functools.lru_cache(maxsize=1)
def _database():
    import lensfunpy

    return lensfunpy.Database()


def database_lens(make: str, model: str, focal_mm: float | None, width: int, height: int,
                  focal_px: float) -> DatabaseLens | None:
    """The lens of camera ``make`` / ``model`` (EXIF) at ``focal_mm`` (default: its calibration's)
    for a ``width`` x ``height`` photo whose focal length is ``focal_px`` photo pixels; ``None``
    when lensfun does not know the camera, has no distortion calibration for its lens, or the
    two-term fit does not reproduce it."""
    if not make or not model or not (width > 1 and height > 1 and focal_px > 0):
        return None
    return _database_lens(make.strip(), model.strip(), None if focal_mm is None else round(float(focal_mm), 3),
                          int(width), int(height), round(float(focal_px), 3))


@functools.lru_cache(maxsize=32)
def _database_lens(make: str, model: str, focal_mm: float | None, width: int, height: int,
                   focal_px: float) -> DatabaseLens | None:
    try:
        db = _database()
    except ImportError:  # lensfunpy is a dependency; a broken install must not stop locating
        return None
    cameras = [c for c in db.cameras if c.maker.strip().upper() == make.upper() and _matches(model, c.model)]
    for camera in cameras:
        for lens in db.find_lenses(camera):
            if not lens.calib_distortion:
                continue
            focal = focal_mm if focal_mm else lens.calib_distortion[0].focal
            # Brown coefficients do not depend on the resolution: lensfun's map at most FIT_SIDE a side
            shrink = min(1.0, FIT_SIDE / max(width, height))
            k1, k2, rms = _fit_brown(lens, camera.crop_factor, focal, max(2, round(width * shrink)),
                                     max(2, round(height * shrink)), focal_px * shrink)
            rms /= shrink  # photo pixels
            if rms <= MAX_FIT_RMS * focal_px:
                return DatabaseLens(k1, k2, f"{camera.maker} {lens.model} (lensfun)", rms)
    return None


def _fit_brown(lens, crop_factor: float, focal_mm: float, width: int, height: int,
               focal_px: float) -> tuple[float, float, float]:
    """``(k1, k2, RMS px)``: Brown radial terms reproducing lensfun's distortion of ``lens``.

    lensfun maps each pixel ``u`` of its undistorted frame to the photo as taken, ``d``; its
    undistorted frame's scale at the centre is its own (``s`` below), so with radii from the
    centre ``|d| / f = t (1 + k1 t^2 + k2 t^4)``, ``t = s |u| / f``: linear in ``s``, ``k1 s^3``
    and ``k2 s^5`` on the powers of ``|u| / f``, one least-squares solve."""
    import lensfunpy

    modifier = lensfunpy.Modifier(lens, crop_factor, width, height)
    modifier.initialize(focal_mm, 5.6, 10.0, pixel_format=np.float32)
    taken = modifier.apply_geometry_distortion()[::MAP_STEP_PX, ::MAP_STEP_PX]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    rows, cols = np.mgrid[0:height:MAP_STEP_PX, 0:width:MAP_STEP_PX]
    r_u = np.hypot(cols - cx, rows - cy).ravel() / focal_px
    r_d = np.hypot(taken[..., 0] - cx, taken[..., 1] - cy).ravel() / focal_px
    powers = np.stack([r_u, r_u ** 3, r_u ** 5], axis=1)
    (s, b3, b5), *_ = np.linalg.lstsq(powers, r_d, rcond=None)
    rms = float(np.sqrt(np.mean((powers @ (s, b3, b5) - r_d) ** 2))) * focal_px
    return float(b3 / s ** 3), float(b5 / s ** 5), rms


__all__ = ["DATABASE_K1_FLOOR", "DATABASE_K1_SHARE", "DatabaseLens", "database_lens"]
