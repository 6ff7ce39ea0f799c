"""Cameras assumed for what a photo's metadata lacks, and cameras its matches imply.

A photo whose metadata lacks the camera's pitch, heading or height has no metadata camera (:func:`smgeo_geo.pose.camera_from_metadata` says what is
missing). :func:`smgeo_geo.pose.camera_hypotheses` lists cameras over a grid of what is missing;
:func:`register_under_assumed_cameras` registers the photo under each in turn (most likely first),
with a DEM then on level ground at its height below the drone, and verifies the one that holds
by registering the photo again with the camera its matches imply: a false match implies a camera
that does not register, or a pose far from the photo's GPS position. The same idea is the
photo-level test of a flat-ground registration (:func:`reproduces_itself`): the camera its matches
imply must register the photo again and be implied again by that registration.

Frames as in :mod:`smgeo_geo.registration`; cameras in the local ENU frame of the photo's GPS
position (metres).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from smgeo_geo.camera import angles_from_rotation
from smgeo_geo.pose import CameraPrior, flattened, ground_below
from smgeo_geo.registration import MIN_INLIERS, MIN_PHOTO_INLIERS, RegisteredPhoto
from smgeo_geo.terrain import DemTerrain

VERIFIED_HYPOTHESES = 3  # registrations under assumed cameras checked again with the camera their matches imply
# farthest (m) the matches may put the camera of a photo lacking metadata from its GPS position: a
# consumer GPS is metres off (the budget's 1-sigma is 2 m), a false pose tens of metres
MAX_ASSUMED_CAMERA_SHIFT_M = 25.0
MIN_MARGIN_M = 60.0  # metres the footprint window of an assumed camera grows by, at least
# degrees within which the camera a flat-ground registration's matches imply must be implied again
# by the registration it makes (registration itself holds within about +-12 deg pitch, +-30 heading)
CONFIRM_ANGLE_DEG = 10.0

# (prior, margin in metres) -> the photo registered in that prior's footprint window grown by the
# margin, or None when the window misses the reference
RegisterInFootprint = Callable[[CameraPrior, float], "RegisteredPhoto | None"]


def register_under_assumed_cameras(hypotheses: list[CameraPrior], register_in_footprint: RegisterInFootprint,
                                   tick=None) -> tuple[RegisteredPhoto | None, int, str]:
    """The registration under the first hypothesis camera that registers the photo with
    ``MIN_PHOTO_INLIERS`` inliers (else those that held, most inliers first, up to
    ``VERIFIED_HYPOTHESES``), verified (:func:`_verified`); on a DEM, when none holds, the same on
    level ground at the DEM's height below the drone (a pose on the DEM needs a lens model the
    photo may lack). Returns it (or ``None``), the number of cameras tried and what the one that
    registered assumed. ``tick(fraction, message)`` per camera tried."""
    if not hypotheses:
        return None, 0, ""
    terrain = hypotheses[0].terrain
    passes = [hypotheses]
    if isinstance(terrain, DemTerrain):
        passes.append([f for f in map(flattened, hypotheses) if f is not None])
    tried, total = 0, sum(map(len, passes))
    for candidates in passes:
        held = []
        for prior in candidates:
            tried += 1
            if tick is not None:
                tick(0.2 + 0.35 * tried / total, f"registering: assumed {prior.assumed} ({tried}/{total})")
            # the footprint of an assumed camera is off by up to half a grid step: grow it
            below = ground_below(prior)
            margin = MIN_MARGIN_M if below is None else max(MIN_MARGIN_M, 0.5 * (prior.camera.centre[2] - below))
            attempt = register_in_footprint(prior, margin)
            if attempt is not None and attempt.ok:
                held.append(attempt)
                if attempt.inliers >= MIN_PHOTO_INLIERS:
                    break
        for reg in sorted(held, key=lambda r: -r.inliers)[:VERIFIED_HYPOTHESES]:
            found = _verified(reg, register_in_footprint, terrain)
            if found is not None:
                return found, tried, reg.prior.assumed
    return None, tried, ""


def _verified(reg: RegisteredPhoto, register_in_footprint: RegisterInFootprint, terrain) -> RegisteredPhoto | None:
    """``reg`` (made under an assumed camera) registered again with the camera its matches
    imply, on ``terrain`` (the DEM, when there is one: a camera close to the truth may refine
    there where the assumed one did not), else on ``reg``'s own; ``reg`` itself when both fail
    but it has ``MIN_PHOTO_INLIERS``; else ``None``. A pose on the DEM more than
    ``MAX_ASSUMED_CAMERA_SHIFT_M`` from the photo's GPS position is a false one (a camera
    estimated on level ground is only a start: relief moves it)."""
    gps = reg.prior.camera.centre[:2]

    def at_gps(camera) -> bool:
        return camera is not None and float(np.hypot(*(camera.centre[:2] - gps))) <= MAX_ASSUMED_CAMERA_SHIFT_M

    camera = reg.camera_estimate(terrain)
    if camera is not None:
        found = _with_camera(reg.prior, camera)
        for ground in [terrain] if terrain is reg.prior.terrain else [terrain, reg.prior.terrain]:
            again = register_in_footprint(replace(found, terrain=ground), MIN_MARGIN_M)
            if again is not None and again.ok and again.inliers >= MIN_INLIERS and (
                    again.mode != "pose" or at_gps(again.camera)):
                return again
    ok = reg.inliers >= MIN_PHOTO_INLIERS and (reg.mode != "pose" or at_gps(reg.camera))
    return reg if ok else None


def reproduces_itself(reg: RegisteredPhoto, register_in_footprint: RegisterInFootprint, margin_m: float) -> bool:
    """Whether a registration holds up as a whole: the camera its matches imply registers the
    photo again (in its footprint grown by ``margin_m``), and that registration's matches imply
    the same camera (heading and pitch within ``CONFIRM_ANGLE_DEG``; on a DEM, ``pose`` mode, also
    within ``MAX_ASSUMED_CAMERA_SHIFT_M`` of the photo's GPS position); a lock on a repeated
    pattern implies a camera that does not reproduce itself. Without a DEM there is no
    metadata-error fit (relief dominates it), and a metadata error beyond its budget (a compass
    tens of degrees off) fails that fit on a DEM: this is the photo-level test there."""
    camera = reg.camera_estimate()
    if camera is None:
        return False
    found = _with_camera(reg.prior, camera)
    again = register_in_footprint(found, margin_m)
    implied = again.camera_estimate() if again is not None and again.ok else None
    if implied is None:
        return False
    gps = reg.prior.camera.centre[:2]
    if again.mode == "pose" and float(np.hypot(*(implied.centre[:2] - gps))) > MAX_ASSUMED_CAMERA_SHIFT_M:
        return False
    yaw, pitch, _ = angles_from_rotation(implied.rotation)
    return abs((yaw - found.yaw + 180.0) % 360.0 - 180.0) <= CONFIRM_ANGLE_DEG and \
        abs(pitch - found.pitch) <= CONFIRM_ANGLE_DEG


def _with_camera(prior: CameraPrior, camera) -> CameraPrior:
    """``prior`` with the camera its registration's matches imply (no longer assumed)."""
    yaw, pitch, roll = angles_from_rotation(camera.rotation)
    return replace(prior, camera=camera, yaw=yaw, pitch=pitch, roll=roll, assumed="",
                   notes=[*prior.notes, f"camera from the matches (yaw {yaw:.1f}, pitch {pitch:.1f})"])


__all__ = ["CONFIRM_ANGLE_DEG", "MAX_ASSUMED_CAMERA_SHIFT_M", "VERIFIED_HYPOTHESES", "register_under_assumed_cameras",
           "reproduces_itself"]
