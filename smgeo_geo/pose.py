"""Stage 1: the camera a photo's metadata describes, and where its rays meet the ground.

:func:`camera_from_metadata` turns EXIF / vendor XMP (DJI, Parrot, Skydio, Pix4D: see
:mod:`smgeo_geo.photo_meta`) into a :class:`~smgeo_geo.camera.FrameCamera`:

* intrinsics: focal length in pixels from the EXIF 35 mm equivalent (CIPA definition: over
  the image diagonal, ``f_px = f35 * diag_px / 43.27``), else DJI ``CalibratedFocalLength``
  (pixels of the full-resolution sensor, rescaled), else a 24 mm-equivalent lens; principal
  point at the image centre; Brown distortion from DJI ``DewarpData`` when the photo is not
  dewarped, else the camera model's from the lensfun database (:mod:`smgeo_geo.lens_database`),
  else none (a pinhole); without ``DewarpData`` the error budget carries the lens's ``k1``,
  and registration on a DEM fits the lens to its matches around it (:mod:`smgeo_geo.lens`);
* position: GPS latitude / longitude; height from DJI ``AbsoluteAltitude`` (or EXIF
  ``GPSAltitude``) when a DEM is given (unless, without RTK, it is more than 15 m from the
  DEM height below the drone + ``RelativeAltitude``, a sign of another vertical datum: then
  that sum, with a height 1-sigma of half the gap, as the take-off point need not lie at the
  height of the ground below the drone), else ``RelativeAltitude`` above flat ground at the take-off height (``z = 0``);
* attitude: DJI ``GimbalYawDegree`` / ``GimbalPitchDegree`` / ``GimbalRollDegree`` (absolute
  angles; ``FlightYawDegree`` when the gimbal yaw is missing; no camera without a pitch),
  or the other vendors' tags in DJI's conventions (:mod:`smgeo_geo.photo_meta`); the heights
  likewise (Skydio's, or Pix4D's ``AboveGroundAltitude`` as the relative altitude).

:class:`ErrorBudget` states the 1-sigma errors assumed for each of those; :func:`locate_pixel`
casts a pixel's ray onto the terrain and propagates the budget (finite differences) into a
horizontal 90 % radius in metres.

A photo whose metadata lacks the camera's pitch, heading or height above the ground has no such
camera; :func:`camera_hypotheses` lists the cameras to try instead (a grid over what is missing,
fine enough that registration, which holds within about +-12 deg of pitch and +-30 deg of heading,
finds the photo from one of them), each saying what it assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.errors import MetadataError
from smgeo_geo.lens import UNKNOWN_K1_SIGMA
from smgeo_geo.lens_database import database_lens
from smgeo_geo.photo_meta import UNKNOWN_PITCH_MAX_OFF_NADIR_DEG, PhotoMeta
from smgeo_geo.terrain import DemTerrain, FlatTerrain, cast_rays, intersect_rays

DIAG_35MM = 43.2666  # mm, diagonal of a 36 x 24 mm frame
DEFAULT_F35 = 24.0  # mm, the common drone lens when the photo says nothing
CHI2_2D_90 = 4.605  # 90 % quantile of chi-square with 2 degrees of freedom
# 99.9 % quantiles of chi-square with 1, 7 and 8 degrees of freedom (a camera height; the
# budget's error sources, with the lens when the metadata has no lens model): a registration
# whose matches a metadata error this large or smaller explains agrees with it
CHI2_999 = {1: 10.83, 7: 24.32, 8: 26.12}
FIT_POINTS = 200  # correspondences (evenly subsampled) a metadata-error fit uses at most
# a non-RTK absolute altitude further than this from DEM-below-the-drone + relative altitude is
# taken to be in another vertical datum (or barometric drift) and not used
ALTITUDE_TOLERANCE_M = 15.0
# what camera_hypotheses tries for what the metadata lacks: gimbal pitch every 15 deg from nadir
# to UNKNOWN_PITCH_MAX_OFF_NADIR_DEG off nadir; heading every 45 deg (one for nadir: a turn about
# the vertical only turns the rectified photo, which the features match anyway); height above the
# take-off point (drones fly tens of metres up; 120 m is the legal ceiling in most countries)
PITCH_HYPOTHESES_DEG = tuple(-90.0 + off for off in range(0, int(UNKNOWN_PITCH_MAX_OFF_NADIR_DEG) + 1, 15))
YAW_HYPOTHESES_DEG = tuple(float(y) for y in range(0, 360, 45))
HEIGHT_HYPOTHESES_M = (100.0, 50.0)
_HALF_YAW_STEP = (YAW_HYPOTHESES_DEG[1] - YAW_HYPOTHESES_DEG[0]) / 2  # a heading this near a tried one is not tried


@dataclass(frozen=True)
class ErrorBudget:
    """1-sigma errors of the metadata: GPS horizontal / vertical (m), yaw / pitch / roll (deg),
    focal length (fraction), ground height (m; the DEM's or the flat-ground assumption's), the
    lens's radial distortion ``k1`` (0 where the metadata gives the lens model or a dewarped photo)."""

    gps_horizontal_m: float = 2.0
    height_m: float = 2.0
    yaw_deg: float = 3.0
    pitch_deg: float = 1.5
    roll_deg: float = 1.5
    focal_fraction: float = 0.01
    ground_m: float = 3.0
    lens_k1: float = 0.0

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class CameraPrior:
    """A photo's camera from its metadata, the terrain its rays meet and the error budget.

    ``yaw``/``pitch``/``roll`` degrees as used; ``notes`` say which metadata was used or assumed.
    """

    camera: FrameCamera
    terrain: object
    budget: ErrorBudget
    yaw: float
    pitch: float
    roll: float
    notes: list[str] = field(default_factory=list)
    assumed: str = ""  # what the metadata lacked and this camera assumes (camera_hypotheses), e.g. "pitch -60"


@dataclass(frozen=True)
class GroundPoint:
    """A photo pixel on the ground: ``lon``, ``lat`` WGS84 degrees, ``height`` metres,
    ``local`` the ENU point of the camera frame, ``uncertainty_m`` 90 % horizontal radius."""

    lon: float
    lat: float
    height: float
    local: np.ndarray
    uncertainty_m: float


def focal_pixels(meta: PhotoMeta, width: int, height: int) -> tuple[float, str]:
    """Focal length in pixels of the photo and where it came from."""
    diag = math.hypot(width, height)
    if meta.focal_length_35mm:
        return meta.focal_length_35mm * diag / DIAG_35MM, "EXIF 35 mm equivalent focal length"
    cal = meta.xmp_number("CalibratedFocalLength")
    ocx = meta.xmp_number("CalibratedOpticalCenterX")
    if cal and ocx and ocx > 0:
        return cal * width / (2 * ocx), "DJI CalibratedFocalLength"
    return DEFAULT_F35 * diag / DIAG_35MM, f"assumed {DEFAULT_F35:g} mm-equivalent lens (no focal length in EXIF)"


def camera_from_metadata(meta: PhotoMeta, terrain=None, budget: ErrorBudget | None = None) -> CameraPrior:
    """The camera of a photo from its metadata (see the module docstring).

    ``terrain``: a :class:`~smgeo_geo.terrain.DemTerrain` (heights in the photo's altitude
    frame) or ``None`` for flat ground at the take-off height. Raises
    :class:`MetadataError` naming the photo and the missing field when GPS or a usable
    height is missing.
    """
    notes: list[str] = []
    if meta.lon is None or meta.lat is None:
        extra = f"; {meta.problems}" if meta.problems else ""
        raise MetadataError(f"{meta.path}: photo has no GPS position (EXIF GPS, DJI or Skydio XMP){extra}")
    width, height = meta.size
    if not (width > 0 and height > 0):
        raise MetadataError(f"{meta.path}: unknown photo size")
    base = budget or ErrorBudget()
    rtk = meta.rtk_std_m
    if rtk is not None:
        base = replace(base, gps_horizontal_m=max(rtk[0], 0.02), height_m=max(rtk[1], 0.05))
        notes.append("RTK GPS accuracy from DJI RtkStd*")
    frame = LocalFrame(meta.lon, meta.lat, 0.0)
    if isinstance(terrain, DemTerrain):
        abs_alt = meta.absolute_altitude if meta.absolute_altitude is not None else meta.gps_altitude
        below = float(terrain.heights([meta.lon], [meta.lat])[0])
        from_dem = below + meta.relative_altitude if meta.relative_altitude is not None else math.nan
        if abs_alt is not None and (rtk is not None or not math.isfinite(from_dem)
                                    or abs(abs_alt - from_dem) <= ALTITUDE_TOLERANCE_M):
            cam_h = abs_alt
            notes.append("height: absolute altitude against the DEM")
            if rtk is None:
                base = replace(base, height_m=max(base.height_m, 5.0))
        elif math.isfinite(from_dem):
            spread = 0.0
            if abs_alt is not None:
                notes.append(f"absolute altitude {abs_alt:.1f} m disagrees with DEM + relative altitude "
                             f"{from_dem:.1f} m (another vertical datum? or the take-off point not at the "
                             f"height of the ground below the drone); using the latter, its 1-sigma half the gap")
                spread = abs(abs_alt - from_dem) / 2  # either may be the wrong one
            cam_h = from_dem
            notes.append("height: DEM below the drone + relative altitude (take-off assumed at that height)")
            base = replace(base, height_m=max(base.height_m, 5.0, spread))
        elif abs_alt is None and meta.relative_altitude is not None:
            raise MetadataError(f"{meta.path}: no absolute altitude and the DEM has no height below the drone")
        else:
            raise MetadataError(f"{meta.path}: no altitude in the metadata (DJI or Skydio AbsoluteAltitude / EXIF GPSAltitude)")
        base = replace(base, ground_m=terrain.sigma_m)
    else:
        if meta.relative_altitude is None or not meta.relative_altitude > 0:
            raise MetadataError(f"{meta.path}: no height above ground (XMP relative altitude: DJI or Skydio "
                                f"RelativeAltitude, Pix4D AboveGroundAltitude; missing or <= 0); "
                                f"give a DEM, whose heights the photo's absolute altitude refers to")
        cam_h = meta.relative_altitude
        terrain = FlatTerrain(0.0, sigma_m=base.ground_m, name="flat ground at the take-off height")
        notes.append("height: relative altitude above flat ground at the take-off height")
    yaw = meta.gimbal_yaw if meta.gimbal_yaw is not None else meta.flight_yaw
    if yaw is None:
        raise MetadataError(f"{meta.path}: no heading in the photo's XMP (DJI GimbalYawDegree / FlightYawDegree, "
                            f"Parrot CameraYawDegree, Skydio CameraOrientationNED, Pix4D Camera:Yaw)")
    if meta.gimbal_pitch is None:
        raise MetadataError(f"{meta.path}: no camera pitch in the photo's XMP (DJI GimbalPitchDegree, Parrot "
                            f"CameraPitchDegree, Skydio CameraOrientationNED, Pix4D Camera:Pitch)")
    notes.append(f"attitude from {meta.attitude_source} XMP")
    pitch = meta.gimbal_pitch
    roll = meta.gimbal_roll or 0.0
    f, source = focal_pixels(meta, width, height)
    notes.append(f"focal {f:.1f} px from {source}")
    dist = meta.distortion or (0.0, 0.0, 0.0, 0.0, 0.0)
    known = None if meta.distortion or meta.dewarped else database_lens(meta.make, meta.model, meta.focal_length_mm,
                                                                        width, height, f)
    if meta.distortion:
        notes.append("lens distortion from DJI DewarpData")
    elif meta.dewarped:
        notes.append("photo dewarped in the camera (DJI DewarpFlag)")
    elif known is not None:
        dist = (known.k1, known.k2, 0.0, 0.0, 0.0)
        notes.append(f"lens distortion of the camera model from {known.name}: k1 {known.k1:+.3f} "
                     f"+- {known.k1_sigma:.3f}, k2 {known.k2:+.3f}")
        base = replace(base, lens_k1=max(base.lens_k1, known.k1_sigma))
    else:
        notes.append(f"no lens model in the metadata: pinhole, radial distortion k1 0 +- {UNKNOWN_K1_SIGMA:g}")
        base = replace(base, lens_k1=max(base.lens_k1, UNKNOWN_K1_SIGMA))
    camera = FrameCamera(width, height, f, f, width / 2, height / 2, dist,
                         rotation_from_angles(yaw, pitch, roll), np.array([0.0, 0.0, cam_h]), frame)
    return CameraPrior(camera, terrain, base, yaw, pitch, roll, notes)


def _height_known(meta: PhotoMeta, terrain) -> bool:
    """Whether the metadata places the camera's height against ``terrain`` (see the module docstring)."""
    if isinstance(terrain, DemTerrain):
        return meta.absolute_altitude is not None or meta.gps_altitude is not None or meta.relative_altitude is not None
    return meta.relative_altitude is not None and meta.relative_altitude > 0


def camera_hypotheses(meta: PhotoMeta, terrain=None, budget: ErrorBudget | None = None) -> list[CameraPrior]:
    """Cameras to try when the metadata lacks the pitch, the heading or the height above ground
    (empty when it has them all, or has no GPS position): every combination of
    :data:`PITCH_HYPOTHESES_DEG`, :data:`YAW_HYPOTHESES_DEG` (the flight heading first when only
    the gimbal's is missing; one heading for nadir) and :data:`HEIGHT_HYPOTHESES_M` (relative
    altitude) for what is missing, most likely first (nadir, then ever more oblique). Each
    camera's ``assumed`` says what it assumed; its budget is the metadata's (only registration
    uses these cameras, and it rests on its own matches)."""
    if meta.lon is None or meta.lat is None or not (meta.size[0] > 0 and meta.size[1] > 0):
        return []
    pitch_known, yaw_known, height_known = meta.gimbal_pitch is not None, meta.gimbal_yaw is not None, \
        _height_known(meta, terrain)
    if pitch_known and yaw_known and height_known:
        return []
    first = (meta.gimbal_yaw,) if yaw_known else ((meta.flight_yaw,) if meta.flight_yaw is not None else ())
    trials = []  # (height, pitch, yaw): the known or flight heading at every pitch first, then the others
    for height in (None,) if height_known else HEIGHT_HYPOTHESES_M:
        pitches = (meta.gimbal_pitch,) if pitch_known else PITCH_HYPOTHESES_DEG
        trials += [(height, p, y) for p in pitches for y in (first or (0.0,) if p <= -90.0 else first)]
        if not yaw_known:
            trials += [(height, p, y) for p in pitches if p > -90.0 for y in YAW_HYPOTHESES_DEG
                       if not first or abs((y - first[0] + 180.0) % 360.0 - 180.0) >= _HALF_YAW_STEP]
    out = []
    for height, pitch, yaw in trials:
        said = [f"pitch {pitch:g}" if not pitch_known else "",
                ("flight heading" if first and yaw == first[0] else f"heading {yaw:g}") if not yaw_known else "",
                f"height {height:g} m above take-off" if height is not None else ""]
        filled = replace(meta, gimbal_pitch=pitch, gimbal_yaw=yaw,
                         relative_altitude=meta.relative_altitude if height is None else height,
                         absolute_altitude=meta.absolute_altitude if height is None else None,
                         gps_altitude=meta.gps_altitude if height is None else None)
        try:
            prior = camera_from_metadata(filled, terrain, budget)
        except MetadataError:
            continue
        assumed = ", ".join(s for s in said if s)
        out.append(replace(prior, assumed=assumed, notes=[*prior.notes, f"assumed {assumed} (not in the photo's metadata)"]))
    return out


def heading_hypotheses(prior: CameraPrior) -> list[CameraPrior]:
    """``prior`` turned to each heading of :data:`YAW_HYPOTHESES_DEG` at least half a grid step from
    its own, nearest first: for a compass far off (magnetic interference), beyond the +-30 deg
    registration holds within. Empty for a camera within 10 deg of nadir (a turn about the
    vertical only turns the rectified photo, which the features match anyway)."""
    if prior.pitch <= -80.0:
        return []
    def apart(yaw: float) -> float:
        return abs((yaw - prior.yaw + 180.0) % 360.0 - 180.0)

    out = []
    for yaw in sorted((y for y in YAW_HYPOTHESES_DEG if apart(y) >= _HALF_YAW_STEP), key=apart):
        camera = prior.camera.with_pose(rotation_from_angles(yaw, prior.pitch, prior.roll), prior.camera.centre)
        said = f"heading {yaw:g} (the metadata's is {prior.yaw:g})"
        out.append(replace(prior, camera=camera, yaw=yaw, assumed=said, notes=[*prior.notes, f"assumed {said}"]))
    return out


def ground_below(prior: CameraPrior) -> float | None:
    """Height (m, the camera frame's z) of ``prior``'s terrain straight below its camera, or
    ``None`` where the terrain has none."""
    cam = prior.camera
    below, hit = cast_rays(cam.frame, cam.centre[None], np.array([[0.0, 0.0, -1.0]]), prior.terrain)
    return float(below[0, 2]) if hit[0] else None


def flattened(prior: CameraPrior) -> CameraPrior | None:
    """``prior`` over level ground at its terrain's height below the camera (``None`` where the
    terrain has no height there)."""
    below = ground_below(prior)
    if below is None:
        return None
    terrain = FlatTerrain(below, sigma_m=prior.budget.ground_m,
                          name=f"level ground at the height of {getattr(prior.terrain, 'name', 'the terrain')} "
                               f"below the drone")
    return replace(prior, terrain=terrain, notes=[*prior.notes, terrain.name])


def shifted_height(prior: CameraPrior, metres: float) -> CameraPrior:
    """``prior`` with the camera ``metres`` higher (negative: lower) against its terrain, as
    when the DEM's heights are in another vertical datum than the photo's altitude; the height's
    1-sigma becomes at least half of ``|metres|``."""
    centre = prior.camera.centre + np.array([0.0, 0.0, float(metres)])
    budget = replace(prior.budget, height_m=max(prior.budget.height_m, abs(float(metres)) / 2))
    return replace(prior, camera=prior.camera.with_pose(prior.camera.rotation, centre), budget=budget,
                   notes=[*prior.notes, f"camera height {metres:+g} m from the metadata's (another vertical datum?)"])


@dataclass(frozen=True)
class MetadataFit:
    """The metadata error that best explains a registration's correspondences.

    ``sigmas``: the fitted error of each source in units of its budget 1-sigma (GPS east,
    GPS north, height above the terrain (the camera's and the ground's errors together), yaw,
    pitch, roll, focal length, and the lens's ``k1`` where the metadata has no lens model);
    ``mahalanobis``: their root sum of squares; ``points``: correspondences used.
    """

    sigmas: np.ndarray
    mahalanobis: float
    points: int

    @property
    def explained(self) -> bool:
        """Whether the registration agrees with the metadata as a whole: the error it implies
        lies within the budget's 99.9 % ellipsoid (chi-square, one degree of freedom per source)."""
        return self.mahalanobis ** 2 <= CHI2_999[len(self.sigmas)]


def fit_metadata_error(prior: CameraPrior, photo_px: np.ndarray, ground: np.ndarray,
                       noise_m: float) -> MetadataFit | None:
    """Fit the budget's error sources to a registration's correspondences (one photo-level test
    of agreement, where comparing single points would call a metadata that is off by more than
    its 90 % radius at the click a disagreement).

    ``photo_px``: ``(N, 2)`` photo pixels (x, y); ``ground``: ``(N, 2+)`` where the registration
    puts them, local ENU metres of ``prior.camera.frame``; ``noise_m``: 1-sigma of a
    correspondence on the ground. Linearised (finite differences of one sigma per source, as
    :func:`locate_pixel`) and regularised by the budget (a maximum a posteriori fit). ``None``
    with fewer than 6 correspondences whose rays meet the terrain for every source.
    """
    photo_px, ground = np.asarray(photo_px, float), np.asarray(ground, float)[:, :2]
    if len(photo_px) > FIT_POINTS:
        keep = np.linspace(0, len(photo_px) - 1, FIT_POINTS).round().astype(int)
        photo_px, ground = photo_px[keep], ground[keep]
    base, hit = intersect_rays(prior.camera, photo_px, prior.terrain)
    columns = []
    for cam in _perturbed(prior, _vertical_m(prior.budget)):  # a terrain offset acts as a camera height error
        moved, ok = intersect_rays(cam, photo_px, prior.terrain)
        hit &= ok
        columns.append(moved[:, :2] - base[:, :2])
    hit &= np.all(np.isfinite(ground), axis=1)
    if hit.sum() < 6:
        return None
    jac = np.stack(columns, axis=-1)[hit].reshape(-1, len(columns))  # (2N, 7 or 8): metres per sigma
    shift = (ground[hit] - base[hit, :2]).reshape(-1)
    w = 1.0 / max(noise_m, 1e-3) ** 2
    sigmas = np.linalg.solve(w * jac.T @ jac + np.eye(jac.shape[1]), w * jac.T @ shift)
    return MetadataFit(sigmas, float(np.linalg.norm(sigmas)), int(hit.sum()))


def camera_height_sigma(prior: CameraPrior, camera: FrameCamera) -> float:
    """How far ``camera`` (a pose refined on a DEM) lies above or below the metadata camera, in
    units of the height's 1-sigma above the terrain (the camera's and the DEM's together). A pose
    dragged by a DEM's wrong heights (a coarse terrain model smooths valleys and roofs away)
    moves up or down by tens of sigmas; one that corrects the metadata within its budget, a few.
    (A horizontal shift is what a GPS error looks like, which registration is there to correct.)"""
    return float(abs(float(camera.centre[2]) - float(prior.camera.centre[2])) / _vertical_m(prior.budget))


def _vertical_m(budget: ErrorBudget) -> float:
    """1-sigma of the camera's height above the terrain (its own height and the ground's)."""
    return math.hypot(budget.height_m, budget.ground_m)


def _perturbed(prior: CameraPrior, vertical_m: float | None = None) -> list[FrameCamera]:
    """The prior camera with each error source of its budget moved by one sigma (GPS east,
    GPS north, height (``vertical_m`` when given, else the budget's), yaw, pitch, roll, focal
    length, and the lens's ``k1`` where the budget has one)."""
    cam, b = prior.camera, prior.budget
    out = []
    for axis in (0, 1):
        centre = cam.centre.copy()
        centre[axis] += b.gps_horizontal_m
        out.append(cam.with_pose(cam.rotation, centre))
    centre = cam.centre.copy()
    centre[2] += b.height_m if vertical_m is None else vertical_m
    out.append(cam.with_pose(cam.rotation, centre))
    for dy, dp, dr in ((b.yaw_deg, 0, 0), (0, b.pitch_deg, 0), (0, 0, b.roll_deg)):
        rot = rotation_from_angles(prior.yaw + dy, prior.pitch + dp, prior.roll + dr)
        out.append(cam.with_pose(rot, cam.centre))
    out.append(replace(cam, fx=cam.fx * (1 + b.focal_fraction), fy=cam.fy * (1 + b.focal_fraction)))
    if b.lens_k1 > 0:
        k1, *rest = cam.distortion
        out.append(replace(cam, distortion=(k1 + b.lens_k1, *rest)))
    return out


def locate_pixel(prior: CameraPrior, pixel: tuple[float, float]) -> GroundPoint:
    """The ground point of photo ``pixel`` (x, y) with its 90 % horizontal uncertainty.

    Raises :class:`MetadataError` when the pixel's ray does not meet the ground (above the
    horizon, or beyond the DEM).
    """
    cam = prior.camera
    pts, hit = intersect_rays(cam, [pixel], prior.terrain)
    if not hit[0]:
        raise MetadataError(f"the ray of pixel ({pixel[0]:g}, {pixel[1]:g}) does not meet the ground "
                            f"({getattr(prior.terrain, 'name', 'terrain')}) within range")
    p0 = pts[0]
    cams = _perturbed(prior)  # one ray each, cast together
    origins = np.array([pcam.centre for pcam in cams])
    rays = np.vstack([pcam.rays([pixel]) for pcam in cams])
    q, ok = cast_rays(cam.frame, origins, rays, prior.terrain)
    shifts = [q[i, :2] - p0[:2] if ok[i] else np.array([np.nan, np.nan]) for i in range(len(cams))]
    # the ground height error moves the point along the ray's horizontal direction
    ray = cam.rays([pixel])[0]
    horiz = math.hypot(ray[0], ray[1])
    if horiz > 1e-9 and abs(ray[2]) > 1e-9:
        along = prior.budget.ground_m * horiz / abs(ray[2])
        shifts.append(np.array([ray[0], ray[1]]) / horiz * along)
    d = np.array([s for s in shifts if np.all(np.isfinite(s))])
    cov = d.T @ d if len(d) else np.full((2, 2), np.inf)
    radius = math.sqrt(CHI2_2D_90 * float(np.max(np.linalg.eigvalsh(cov)))) if np.all(np.isfinite(cov)) else math.inf
    lon, lat, h = cam.frame.to_lonlat(p0[0], p0[1], p0[2])
    return GroundPoint(float(lon), float(lat), float(h), p0, radius)
