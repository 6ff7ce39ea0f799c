"""One locator for the clicked object: photo metadata, image registration and SMGeo, fused.

Three stages, each usable alone (``method``) and combined by ``auto`` (the default):

1. ``metadata`` (:mod:`smgeo_geo.pose`): the photo's camera from EXIF / vendor XMP; the click's
   ray meets the DEM (or flat ground at the take-off height); an uncertainty from a stated
   error budget.
2. ``registration`` (:mod:`smgeo_geo.registration`): the photo (rectified with the metadata
   camera when there is one) matched to the reference window; the click located through the
   refined pose (with a DEM) or local maps; an uncertainty from the local residuals. With a
   DEM, when registration at the metadata camera's height fails, it is tried again with the
   camera ``HEIGHT_SWEEP_M`` higher or lower (a DEM in another vertical datum than the photo's
   altitude, e.g. geoid vs ellipsoid heights, puts the camera tens of metres off against it), and
   when no height holds, on flat ground as without a DEM (a poor metadata pose can bend the
   DEM-rectified photo past the strict global map on a coarse reference); when that fails too,
   under the other headings (:func:`~smgeo_geo.pose.heading_hypotheses`: a compass far off turns
   the footprint away from what the photo shows), verified as below.
   A photo whose metadata lacks the camera's pitch, heading or height (another drone, a tool
   that dropped the XMP) has no metadata camera: the metadata stage says what is missing, and
   registration tries cameras assumed over a grid of what is missing
   (:func:`~smgeo_geo.pose.camera_hypotheses`, nadir first), with a DEM then on level ground at
   its height below the drone; one that registers is checked by registering the photo again
   with the camera its matches imply (a false match implies a camera that does not register;
   :mod:`smgeo_geo.assumed_cameras`), and its radius is at least the distance to where the
   global matches alone put the click.
3. ``smgeo``: the learned model in a window centred on the best estimate so far (or the
   user's window); its candidates re-ranked by agreement with the earlier stages; it supplies
   the object's box. The photo's encoding, and with the user's own window (bounds or centre)
   the whole search, run in a thread beside stages 1 and 2.

Fusion (``auto``): the point is the registration's when it held and agrees with the metadata
(their 90 % circles overlap; or, pose mode, the metadata error the whole photo's matches imply
lies within the budget (:func:`~smgeo_geo.pose.fit_metadata_error`), since the metadata may be off
by more than its 90 % radius at one click; or, where no such fit speaks for it (flat ground: relief
dominates the fit; a DEM: the metadata off beyond its budget, as a compass tens of degrees off),
the camera the matches imply registers the photo again and is implied again by that registration
(:func:`~smgeo_geo.assumed_cameras.reproduces_itself`); or the registration has strong support; or it held only
at another camera height or heading than the metadata's, which discredits the metadata's point), else the metadata's,
else SMGeo's best box centre (its radius: the distance to the farthest corner of the window
SMGeo searched, as the model's scores are not calibrated on real imagery); a metadata point that
answers over a registration that held but disagrees gets a radius that reaches the registration's
circle (their distance plus its radius);
of two points that agree, the one with the smaller radius
answers (a registration that mapped the click from distant features only can be the looser). A registration without a DEM (local maps), or one
that answers on the camera test alone, that lands farther from the metadata's point than its own
radius reports that distance as its uncertainty. Where a pose the metadata-error fit does not
explain maps the click from matches away from it (the patch around the click did not register),
the metadata's point answers, its radius reaching the registration's circle; likewise where the
refined camera lies beyond the budget's 99.9 % above or below the metadata's (a pose dragged by a
coarse DEM's heights). The box is the best SMGeo candidate that contains the point
(within its uncertainty), else the click region (a square of ``region`` times the photo's
shorter side around the click) cast onto the ground. A stage that cannot run says why in
the result and the next one answers.

Result fields (``Detection.extra``, so GeoJSON / GeoPackage / batch rows / the worker carry
them): ``method`` (the stages that held, e.g. ``metadata+registration+smgeo``), ``answer``
(the stage whose point was used), ``uncertainty_m`` (90 % radius in metres of the click's
position), ``confidence`` (``1 / (1 + uncertainty_m / 5)``), ``located_lon`` / ``located_lat``
(WGS84 of the click's ground point), ``box_source`` and per stage ``<stage>_status``,
``<stage>_lon`` / ``_lat``, ``<stage>_uncertainty_m`` plus ``registration_inliers`` /
``registration_mode`` / ``registration_patch_inliers`` (matches on the full-resolution patch
around the click, pose mode; 0 when the global registration answered),
``registration_height_hypothesis_m`` (when another camera height than the metadata's made it
register), ``registration_heading_hypothesis`` (when another heading did, e.g. ``heading 180 (the
metadata's is 94.2)``), ``registration_confirmed_by_its_camera`` (where the registration and the metadata disagree and
no metadata-error fit explains it: whether the camera the matches imply reproduced itself), ``registration_camera_height_change_m`` (pose mode: the refined camera's height minus
the metadata's; tens of metres mean the DEM and the photo's altitude are in different
vertical datums), ``registration_camera_height_sigma`` (pose mode: that change in sigmas of the
budget's height above the terrain, :func:`~smgeo_geo.pose.camera_height_sigma`),
``registration_lens_k1`` / ``_k1_sigma`` / ``_k2`` (the lens fitted to the matches where the
metadata has none), ``registration_metadata_error_sigma`` / ``registration_metadata_explained``
(pose mode: the size, in budget sigmas, of the metadata error the matches imply, and whether it
lies within the budget's 99.9 % ellipsoid), ``registration_assumed`` / ``registration_hypotheses_tried``
(what the camera that registered a photo lacking metadata assumed, e.g. ``pitch -60, flight
heading``, and how many were tried) with ``registration_second_opinion_m`` (how far the click
mapped from the global matches alone lies from the answer: the radius is at least that) and
``smgeo_score``.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from smgeo_geo.assumed_cameras import register_under_assumed_cameras, reproduces_itself
from smgeo_geo.coords import crs_to_lonlat, geodesic_distance, pixel_to_crs
from smgeo_geo.errors import MetadataError, OptionError, SMGeoError
from smgeo_geo.photo import check_click, read_photo
from smgeo_geo.photo_meta import read_photo_meta
from smgeo_geo.pose import (CHI2_999, CameraPrior, camera_from_metadata, camera_height_sigma, camera_hypotheses,
                            heading_hypotheses, locate_pixel, shifted_height)
from smgeo_geo.raster import ReferenceRaster
from smgeo_geo.rectification import footprint_window
from smgeo_geo.registration import RegisteredPhoto, click_region, register
from smgeo_geo.result import Detection
from smgeo_geo.terrain import DemTerrain
from smgeo_geo.windows import ResolvedWindow, WindowSpec, resolve

METHODS = ("auto", "metadata", "registration", "smgeo")
REGION = 0.08  # click region side, fraction of the photo's shorter side (box when no model box agrees)
STRONG_INLIERS = 60  # a registration with this many inliers (global + around the click) outvotes the metadata
MIN_SMGEO_WINDOW_M = 60.0
REGISTRATION_MAX_SIDE = 4096  # raster pixels a side registered whole (read at <= 1600 px)
# metres added to the metadata camera's height, in turn, when registration on a DEM fails: the
# DEM's heights may be in another vertical datum than the photo's altitude (geoid vs ellipsoid:
# -107 to +85 m on Earth); registration holds within about +-15 m of the true height
HEIGHT_SWEEP_M = (-25.0, 25.0, -50.0, 50.0, -75.0, 75.0, -100.0, 100.0)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise OptionError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def confidence(uncertainty_m: float) -> float:
    """A 0..1 confidence that falls with the 90 % radius: ``1 / (1 + u / 5 m)``."""
    return 0.0 if not math.isfinite(uncertainty_m) else 1.0 / (1.0 + uncertainty_m / 5.0)


@dataclass
class Stage:
    """One stage's answer: ``ok``; ``reason`` when not; ``point`` raster-CRS (x, y);
    ``uncertainty_m`` 90 % radius; ``details`` scalars for the result's properties;
    ``searched`` the raster window SMGeo searched (its stage only)."""

    name: str
    ok: bool
    reason: str = ""
    point: tuple[float, float] | None = None
    uncertainty_m: float = math.inf
    region: np.ndarray | None = None  # raster-pixel quadrilateral of the click region
    details: dict = field(default_factory=dict)
    searched: Window | None = None  # smgeo: the raster window it searched


def _quad_box(quad: np.ndarray) -> tuple[float, float, float, float]:
    return float(quad[:, 0].min()), float(quad[:, 1].min()), float(quad[:, 0].max()), float(quad[:, 1].max())


class Locator:
    """Locates clicked objects with the three stages; caches priors, registrations and the
    model's embeddings, so a new click on the same photo and reference is cheap.

    ``predictor``: a :class:`~smgeo_geo.predictor.GeoPredictor` (loaded on first use of
    SMGeo when ``None``: ``checkpoint``/``device`` as for GeoPredictor).
    """

    def __init__(self, predictor=None, checkpoint: str | Path | None = None, device: str = "cpu",
                 cache_size: int = 8) -> None:
        self._predictor = predictor
        self._model_args = (checkpoint, device)
        # -> (registration or None when no window held, metres the camera height was shifted by)
        self._registrations: OrderedDict[tuple, tuple[RegisteredPhoto | None, float]] = OrderedDict()
        self._priors: dict[tuple, CameraPrior | MetadataError] = {}
        self._hypotheses: dict[tuple, list[CameraPrior]] = {}
        self._dems: dict[str, DemTerrain] = {}
        self._photos: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.last_heatmap = None
        self.last_registration_cached = False
        self._query_key: tuple | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []  # work submitted beside the stages, not yet waited for

    @property
    def predictor(self):
        if self._predictor is None:
            from smgeo_geo.predictor import GeoPredictor

            self._predictor = GeoPredictor(self._model_args[0], device=self._model_args[1])
        return self._predictor

    def close(self) -> None:
        for dem in self._dems.values():
            dem.close()
        self._dems.clear()
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None

    def _beside(self) -> ThreadPoolExecutor:
        """A thread for work that overlaps the stages (torch and OpenCV release the GIL)."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smgeo-locator")
        return self._thread

    def _encode_query(self, image: np.ndarray, key: tuple) -> None:
        self._query_key = None
        self.predictor.set_query(image)
        self._query_key = key

    def _wait_pending(self) -> None:
        """Wait for the work started beside the stages (its errors are the callers' to read)."""
        pending, self._pending = self._pending, []
        wait(pending)

    def _smgeo(self, raster: ReferenceRaster, image: np.ndarray, photo: str, query_key: tuple,
               smgeo_window: ResolvedWindow | None, spec: WindowSpec | None, click, top_k: int,
               tick=None) -> tuple[Detection, str, Window]:
        """Stage 3: SMGeo's ranked boxes for the click in ``smgeo_window`` (raster pixels; the
        window ``spec`` resolved for the model when ``None`` or a whole / sliding search), the
        window's reason and the raster window searched. ``tick(fraction, message)`` per sliding
        window when given."""
        predictor = self.predictor
        if smgeo_window is None or smgeo_window.mode in ("whole", "search"):
            smgeo_window = predictor.resolve_window(raster, spec, photo=photo)
        if self._query_key != query_key:
            self._encode_query(image, query_key)
        predictor.query_path = photo

        def windows_tick(items):
            items = list(items)
            for i, item in enumerate(items):
                if tick is not None:
                    tick(0.6 + 0.35 * i / max(len(items), 1), f"SMGeo window {i + 1}/{len(items)}")
                yield item

        det = predictor.locate_resolved(raster, smgeo_window, click, top_k, progress=windows_tick)
        searched = smgeo_window.window if smgeo_window.window is not None else Window(0, 0, raster.width, raster.height)
        return det, smgeo_window.reason, searched

    # -- inputs -------------------------------------------------------------------------
    def dem(self, path: str | os.PathLike | None) -> DemTerrain | None:
        if path is None:
            return None
        key = os.path.abspath(os.fspath(path))
        if key not in self._dems:
            self._dems[key] = DemTerrain(path)
        return self._dems[key]

    def _photo(self, path: str) -> np.ndarray:
        key = (os.path.abspath(path), _mtime(path))
        if key not in self._photos:
            self._photos[key] = read_photo(path)
            while len(self._photos) > 2:
                self._photos.popitem(last=False)
        return self._photos[key]

    def prior(self, photo: str, dem: DemTerrain | None) -> CameraPrior:
        """The photo's metadata camera (cached); :class:`MetadataError` when it has none."""
        key = (os.path.abspath(photo), _mtime(photo), dem.path if dem else None)
        if key not in self._priors:
            try:
                self._priors[key] = camera_from_metadata(read_photo_meta(photo), dem)
            except MetadataError as exc:
                self._priors[key] = exc
        found = self._priors[key]
        if isinstance(found, MetadataError):
            raise found
        return found

    def hypotheses(self, photo: str, dem: DemTerrain | None) -> list[CameraPrior]:
        """Cameras to try for a photo whose metadata lacks its pitch, heading or height
        (:func:`~smgeo_geo.pose.camera_hypotheses`; cached; empty without GPS)."""
        key = (os.path.abspath(photo), _mtime(photo), dem.path if dem else None)
        if key not in self._hypotheses:
            try:
                self._hypotheses[key] = camera_hypotheses(read_photo_meta(photo), dem)
            except MetadataError:  # e.g. a GPS position out of range: the metadata stage says so
                self._hypotheses[key] = []
        return self._hypotheses[key]

    def _flat_prior(self, photo: str) -> CameraPrior | None:
        """The photo's metadata camera over flat ground at the take-off height (``None`` when its
        metadata has no relative altitude)."""
        try:
            return self.prior(photo, None)
        except MetadataError:
            return None

    # -- stages -------------------------------------------------------------------------
    def _metadata_stage(self, prior: CameraPrior | None, why: str, raster: ReferenceRaster, click) -> Stage:
        if prior is None:
            return Stage("metadata", False, why)
        try:
            g = locate_pixel(prior, click)
        except MetadataError as exc:
            return Stage("metadata", False, str(exc))
        x, y = prior.camera.frame.to_crs(raster.crs, [g.local[0]], [g.local[1]], [g.local[2]])
        region = click_region(prior.camera, prior.terrain, raster, click,
                              self._region_px(prior.camera.width, prior.camera.height))
        return Stage("metadata", True, "", (float(x[0]), float(y[0])), g.uncertainty_m, region,
                     {"notes": "; ".join(prior.notes)})

    @staticmethod
    def _region_px(width: int, height: int) -> float:
        return REGION * min(width, height)

    def _registration_stage(self, photo: str, raster: ReferenceRaster, prior: CameraPrior | None,
                            meta_stage: Stage, user: ResolvedWindow | None, click,
                            hypotheses: list[CameraPrior] = (), tick=None) -> Stage:
        image = self._photo(photo)
        if prior is None and hypotheses:
            return self._hypothesis_stage(photo, image, raster, hypotheses, user, click, tick)
        margin = min(200.0, max(30.0, 2.0 * meta_stage.uncertainty_m if meta_stage.ok else 60.0))
        window, why = self._registration_window(raster, prior, margin, user)
        sweep = prior is not None and isinstance(prior.terrain, DemTerrain)
        if prior is None and window is None:
            return Stage("registration", False, why)
        key = (os.path.abspath(photo), _mtime(photo), str(raster.path), raster.bands,
               None if window is None else tuple(window.flatten()),
               None if prior is None else (id(prior.terrain), prior.camera.centre.tobytes()), margin)
        found = self._registrations.get(key)
        self.last_registration_cached = found is not None
        if found is not None:
            reg, height_shift, heading, confirmed = found  # confirmed: [None] until the fusion needs it
            if reg is not None:
                reg.raster = raster  # same file, bands and window; the handle it was made with may be closed
        else:
            reg = register(image, raster, window, prior) if window is not None else None
            height_shift = 0.0
            if sweep and (reg is None or not reg.ok):  # the DEM may be in another vertical datum
                for shift in HEIGHT_SWEEP_M:
                    tried = self._register_in_footprint(image, raster, shifted_height(prior, shift), margin, user)
                    if tried is not None and tried.ok:
                        reg, height_shift = tried, shift
                        break
            if sweep and (reg is None or not reg.ok):
                # a poor metadata pose (a compass or GPS error) bends the DEM-rectified photo past the
                # strict global map on a coarse reference; flat ground's locally consistent matching
                # may still hold (local maps, as without a DEM)
                flat = self._flat_prior(photo)
                tried = self._register_in_footprint(image, raster, flat, margin, user) if flat is not None else None
                if tried is not None and tried.ok:
                    reg = tried
            heading = ""
            if prior is not None and (reg is None or not reg.ok):
                # a compass far off (magnetic interference) turns the footprint away from what
                # the photo shows: other headings, verified as for a photo without one
                turned, _, heading = register_under_assumed_cameras(
                    heading_hypotheses(prior), self._registrar(image, raster, user), tick)
                reg = turned if turned is not None else reg
            confirmed = [None]  # whether a flat-ground registration reproduces its own camera (asked lazily)
            self._registrations[key] = (reg, height_shift, heading, confirmed)
            while len(self._registrations) > self.cache_size:
                self._registrations.popitem(last=False)
        if reg is None:  # no footprint on the raster at any height or heading tried
            return Stage("registration", False, why or "the photo's footprint misses the raster")
        details = {"height_hypothesis_m": height_shift} if height_shift else {}
        if heading:
            details["heading_hypothesis"] = heading
        stage = self._located(reg, image, click, prior, details, second_opinion=bool(heading))
        if stage.ok and reg.mode in ("local", "pose") and not heading and meta_stage.ok and \
                not stage.details.get("metadata_explained") and not _consistent(raster, meta_stage, stage):
            # registration and the metadata disagree here, and no metadata-error fit (flat ground)
            # or a failed one (a DEM) speaks for the registration: the photo-level test the fusion
            # needs (an extra registration, so asked only now, once per registration)
            if confirmed[0] is None:
                confirmed[0] = reproduces_itself(reg, self._registrar(image, raster, user), margin)
            stage.details["confirmed_by_its_camera"] = confirmed[0]
        return stage

    def _registrar(self, image: np.ndarray, raster: ReferenceRaster, user: ResolvedWindow | None):
        """``(prior, margin_m) -> RegisteredPhoto | None``: the photo registered in a prior's
        footprint window (what :mod:`smgeo_geo.assumed_cameras` calls)."""
        def in_footprint(prior: CameraPrior, margin_m: float) -> RegisteredPhoto | None:
            return self._register_in_footprint(image, raster, prior, margin_m, user)

        return in_footprint

    def _hypothesis_stage(self, photo: str, image: np.ndarray, raster: ReferenceRaster,
                          hypotheses: list[CameraPrior], user: ResolvedWindow | None, click, tick=None) -> Stage:
        """Registration for a photo whose metadata lacks its pitch, heading or height, under the
        hypothesis cameras (:func:`~smgeo_geo.assumed_cameras.register_under_assumed_cameras`;
        cached like a registration)."""
        key = ("hypotheses", os.path.abspath(photo), _mtime(photo), str(raster.path), raster.bands,
               None if user is None or user.window is None else tuple(user.window.flatten()),
               id(hypotheses[0].terrain))
        found = self._registrations.get(key)
        self.last_registration_cached = found is not None
        if found is not None:
            reg, tried, assumed = found
            if reg is not None:
                reg.raster = raster
        else:
            reg, tried, assumed = register_under_assumed_cameras(hypotheses, self._registrar(image, raster, user),
                                                                 tick)
            self._registrations[key] = (reg, tried, assumed)
            while len(self._registrations) > self.cache_size:
                self._registrations.popitem(last=False)
        if reg is None:
            return Stage("registration", False, f"the photo registered under none of the {tried} cameras tried for "
                                                f"what its metadata lacks (pitch, heading or height)",
                         details={"hypotheses_tried": tried})
        return self._located(reg, image, click, reg.prior, {"assumed": assumed, "hypotheses_tried": tried},
                             second_opinion=True)

    def _located(self, reg: RegisteredPhoto, image: np.ndarray, click, prior: CameraPrior | None,
                 details: dict, second_opinion: bool = False) -> Stage:
        """The registration stage's answer for ``click`` from a registered photo. With
        ``second_opinion`` (a camera the matches made, no metadata to compare with), the click is
        also mapped from the global matches alone: when that lands farther from the answer than
        its radius, one of the two is off by about that much, and the radius becomes that distance."""
        region_px = self._region_px(image.shape[1], image.shape[0])
        result = reg.locate(click, region_px)
        if second_opinion and result.ok:
            coarse = reg.locate(click, region_px, near_click=False)
            if coarse.ok:
                apart = _ground_distance_m(reg.raster, result.point, coarse.point)
                details["second_opinion_m"] = round(apart, 2)
                if apart > result.uncertainty_m:
                    result = replace(result, uncertainty_m=apart)
        details = {"inliers": result.inliers, "matches": result.matches, "mode": reg.mode or "none", **details}
        if result.ok and reg.mode == "pose":
            # the refined camera against the metadata's: tens of metres up or down say that the
            # DEM's heights and the photo's altitude are in different vertical datums
            details["camera_height_change_m"] = round(float(reg.camera.centre[2] - prior.camera.centre[2]), 2)
            details["camera_height_sigma"] = round(camera_height_sigma(reg.prior, reg.camera), 2)
        if reg.lens is not None:  # fitted to the matches: the metadata has no lens model
            details.update(lens_k1=round(reg.lens.k1, 4), lens_k1_sigma=round(reg.lens.sigma, 4),
                           lens_k2=round(reg.lens.k2, 4))
        fit = reg.metadata_fit
        if fit is not None and not second_opinion:  # (against a camera the matches made: no test)
            details.update(metadata_error_sigma=round(fit.mahalanobis, 2), metadata_explained=fit.explained)
        if not result.ok:
            return Stage("registration", False, result.reason, details=details)
        return Stage("registration", True, "", result.point, result.uncertainty_m, result.click_region,
                     {**details, "patch_inliers": result.details.get("patch_inliers", 0),
                      "residual_m": round(result.residual_m, 3)})

    def _register_in_footprint(self, image, raster: ReferenceRaster, prior: CameraPrior, margin_m: float,
                               user: ResolvedWindow | None) -> RegisteredPhoto | None:
        """``prior``'s photo registered in its footprint window (``None`` when that misses the raster)."""
        window, _ = self._registration_window(raster, prior, margin_m, user)
        return register(image, raster, window, prior) if window is not None else None

    @staticmethod
    def _registration_window(raster: ReferenceRaster, prior: CameraPrior | None, margin_m: float,
                             user: ResolvedWindow | None) -> tuple[Window | None, str]:
        """The raster window to register the photo in (the metadata footprint grown by
        ``margin_m``, within the user's window), or ``None`` and why not."""
        if prior is not None:
            window = footprint_window(prior, raster, margin_m)
            if window is None:
                return None, "the photo's footprint (from its metadata) misses the raster"
            if user is not None and user.window is not None and user.mode in ("bounds", "center"):
                window = _intersect(window, user.window)
                if window is None:
                    return None, "the photo's footprint misses the chosen search window"
            return window, ""
        if user is not None and user.window is not None:
            return user.window, ""
        return None, "no metadata and no search window small enough to register in (give a window)"

    def _smgeo_window(self, raster: ReferenceRaster, estimate: Stage | None, user: ResolvedWindow | None) -> ResolvedWindow:
        if estimate is None or _fixed_window(user):
            return user
        res = raster.pixel_size_m
        side_m = max(MIN_SMGEO_WINDOW_M, 8.0 * min(estimate.uncertainty_m, 200.0))
        side = max(32, round(side_m / res))
        col, row = ~raster.transform @ estimate.point
        c0, r0 = round(col - side / 2), round(row - side / 2)
        c0, r0 = max(0, c0), max(0, r0)
        c1, r1 = min(raster.width, c0 + side), min(raster.height, r0 + side)
        if c1 - c0 < 16 or r1 - r0 < 16:
            return user
        return ResolvedWindow(Window(c0, r0, c1 - c0, r1 - r0), False, "estimate",
                              f"{side_m:.0f} m around the {estimate.name} estimate")

    # -- the public call -----------------------------------------------------------------
    def locate(self, raster: ReferenceRaster, photo: str | os.PathLike, click: tuple[float, float],
               method: str = "auto", window: WindowSpec | None = None, dem: str | os.PathLike | None = None,
               top_k: int = 5, progress=None) -> Detection:
        """The clicked object's detection on ``raster``.

        ``photo``: the drone photo's path; ``click``: (x, y) photo pixels (upright photo);
        ``method``: auto | metadata | registration | smgeo; ``window``: the user's search
        window (default auto); ``dem``: DSM/DEM path (heights in the photo's altitude frame);
        ``progress(fraction, message)``: called between steps (and per sliding window).
        Raises the stage's own error when a single-stage method cannot run (e.g.
        :class:`MetadataError` for ``metadata`` on a photo without GPS), and
        :class:`SMGeoError` when no stage of ``auto`` could answer.
        """
        check_method(method)
        photo = os.fspath(photo)
        image = self._photo(photo)
        click = check_click(click, (image.shape[1], image.shape[0]))
        terrain = self.dem(dem)
        tick = progress or (lambda fraction, message: None)
        query_key = (os.path.abspath(photo), _mtime(photo))
        self._wait_pending()  # a call that raised before waiting for its own background work
        ahead = None  # SMGeo's work, beside metadata and registration in auto
        if method == "auto":
            try:
                self.predictor  # the model loads here, in this thread
                if self._query_key != query_key:
                    self._pending.append(self._beside().submit(self._encode_query, image, query_key))
            except SMGeoError:
                pass  # the SMGeo stage says why below
        prior, why, hypotheses = None, "", []
        if method in ("auto", "metadata", "registration"):
            try:
                prior = self.prior(photo, terrain)
            except MetadataError as exc:
                if method == "metadata":
                    raise
                why = str(exc)
                hypotheses = self.hypotheses(photo, terrain)
        user = None  # the user's window, as registration may use it (up to REGISTRATION_MAX_SIDE whole)
        if method in ("auto", "registration") and ((window is not None and window.mode != "auto") or prior is None):
            user = resolve(window or WindowSpec(), raster, max_side=REGISTRATION_MAX_SIDE, photo=photo)
        if method == "auto" and self._predictor is not None and _fixed_window(user):
            # SMGeo's window is the user's whatever the other stages find: encode and search it
            # now, beside them (the raster's reads are serialised; the model's work is not)
            ahead = self._beside().submit(self._smgeo, raster, image, photo, query_key, user, window, click, top_k)
            self._pending.append(ahead)
        try:
            stages: dict[str, Stage] = {}
            meta = self._metadata_stage(prior, why, raster, click)
            if method in ("auto", "metadata"):
                stages["metadata"] = meta
                if method == "metadata" and not meta.ok:
                    raise MetadataError(meta.reason)
            if method in ("auto", "registration"):
                tick(0.2, "registering the photo on the reference")
                stages["registration"] = self._registration_stage(photo, raster, prior, meta, user, click,
                                                                  hypotheses, tick)
                if method == "registration" and not stages["registration"].ok:
                    raise SMGeoError(f"registration failed: {stages['registration'].reason}")
            estimate = _fuse_point(stages, raster)
            smgeo_det = None
            if method in ("auto", "smgeo"):
                tick(0.6, "running SMGeo")
                try:
                    if ahead is not None:
                        self._wait_pending()
                        smgeo_det, reason, searched = ahead.result()
                    else:
                        self._wait_pending()  # the photo's encoding
                        smgeo_window = self._smgeo_window(raster, estimate, user) if method == "auto" else None
                        smgeo_det, reason, searched = self._smgeo(raster, image, photo, query_key, smgeo_window,
                                                                  window, click, top_k, tick)
                    self.last_heatmap = self.predictor.last_heatmap
                    stages["smgeo"] = Stage("smgeo", True, "", details={"score": round(smgeo_det.score, 4),
                                                                        "window": reason}, searched=searched)
                except SMGeoError as exc:
                    if method == "smgeo":
                        raise
                    stages["smgeo"] = Stage("smgeo", False, str(exc))
            tick(0.95, "fusing")
            return _detection(raster, photo, click, stages, estimate, smgeo_det, top_k,
                              self._predictor.model_id if self._predictor is not None else "")
        finally:  # nothing of this call runs on (on the raster or the model) once it has returned or raised
            self._wait_pending()


def _fixed_window(user: ResolvedWindow | None) -> bool:
    """Whether SMGeo searches the user's own window (bounds or centre) whatever the stages find."""
    return user is not None and user.window is not None and user.mode in ("bounds", "center")


def _ground_distance_m(raster: ReferenceRaster, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres on the ground (geodesic) between two raster-CRS points ``(x, y)``, in any CRS
    (a geographic raster's points are degrees)."""
    lon, lat = crs_to_lonlat(raster.crs, [a[0], b[0]], [a[1], b[1]])
    return float(geodesic_distance(lon[0], lat[0], lon[1], lat[1]))


def _consistent(raster: ReferenceRaster, meta: Stage, reg: Stage) -> bool:
    """Whether two stages' 90 % circles overlap (their points no farther apart than the radii)."""
    return _ground_distance_m(raster, meta.point, reg.point) <= meta.uncertainty_m + reg.uncertainty_m


def _fuse_point(stages: dict[str, Stage], raster: ReferenceRaster) -> Stage | None:
    """The stage whose point answers (see the module docstring), or None; ``raster``: the
    reference the stages' points (raster CRS) lie on."""
    meta, reg = stages.get("metadata"), stages.get("registration")
    if reg is not None and reg.ok:
        if meta is None or not meta.ok:
            return reg
        if reg.details.get("height_hypothesis_m") or reg.details.get("heading_hypothesis"):
            # registration held only with the camera tens of metres higher or lower than the
            # metadata puts it against the DEM, or turned to another heading: the metadata's point
            # rests on that wrong height or heading
            return reg
        dist = _ground_distance_m(raster, meta.point, reg.point)
        support = reg.details.get("inliers", 0) + reg.details.get("patch_inliers", 0)  # matched features
        consistent = _consistent(raster, meta, reg)
        # the photo as a whole (pose mode): the metadata error its matches imply lies within the
        # budget, though at this click the two may lie farther apart than the metadata's radius
        explained = reg.details.get("metadata_explained", False)
        # the camera the matches imply registers the photo again: the match holds for the whole
        # photo, though the metadata is off at this click by more than its radius (beyond its
        # budget, with a DEM)
        confirmed = reg.details.get("confirmed_by_its_camera", False)
        pose_in_budget = explained and reg.details.get("camera_height_sigma", 0.0) ** 2 <= CHI2_999[1]
        if reg.details.get("mode") == "pose" and not reg.details.get("patch_inliers") and not pose_in_budget \
                and dist > reg.uncertainty_m:
            # a pose the metadata does not explain (the matches imply a metadata error beyond the
            # budget, or the refined camera lies far above or below the metadata's: dragged by a
            # coarse DEM's smoothed heights, or the metadata is off beyond its budget) mapping the click from
            # matches away from it (the patch around the click did not register): one of the two is
            # wrong by about their distance, and nothing here tells which; the metadata's point,
            # which does not rest on that pose, answers with a radius that reaches the
            # registration's circle
            reg.details["disagrees_with_metadata_m"] = round(dist, 2)
            return replace(meta, uncertainty_m=max(meta.uncertainty_m, dist + reg.uncertainty_m))
        if consistent or explained or confirmed or support >= STRONG_INLIERS:
            if consistent and meta.uncertainty_m < reg.uncertainty_m:
                return meta  # both hold and agree; the metadata's point is the surer of the two
            alone = not (consistent or explained or support >= STRONG_INLIERS)  # the camera test alone
            if (reg.details.get("mode") != "pose" or alone) and dist > reg.uncertainty_m:
                # local maps without a DEM can lock onto a repeated pattern (lane dashes), and a
                # pose that only reproduces itself might too: when the metadata's point is farther
                # than the registration's own radius, one of them is wrong by about that much, so
                # the answer is no surer than that distance
                return replace(reg, uncertainty_m=dist)
            return reg
        reg.details["disagrees_with_metadata_m"] = round(dist, 2)
        # a registration that held says the metadata may be off by that much (a metadata error
        # beyond its budget, or a false match): the radius reaches the registration's circle
        return replace(meta, uncertainty_m=max(meta.uncertainty_m, dist + reg.uncertainty_m))
    if meta is not None and meta.ok:
        return meta
    return None


def _smgeo_radius_m(raster: ReferenceRaster, centre_px, box, stage: Stage | None) -> float:
    """Radius (m) that SMGeo's answer alone is given: its scores are not calibrated on real
    imagery, so the object is only known to lie in the window searched; the distance from the
    answer to that window's farthest corner (``stage.searched``), else to the box's farthest
    corner (half the box)."""
    w = stage.searched if stage is not None else None
    corners = np.array([box[:2], box[2:]], float) if w is None else \
        np.array([[w.col_off, w.row_off], [w.col_off + w.width, w.row_off + w.height]], float)
    xs, ys = np.meshgrid(corners[:, 0], corners[:, 1])
    lon, lat = crs_to_lonlat(raster.crs, *pixel_to_crs(raster.transform, xs.ravel(), ys.ravel()))
    c_lon, c_lat = crs_to_lonlat(raster.crs, *pixel_to_crs(raster.transform, [centre_px[0]], [centre_px[1]]))
    return float(np.max(geodesic_distance(np.full(len(lon), c_lon[0]), np.full(len(lat), c_lat[0]), lon, lat)))


def _agreement(box, point_px, sigma_px: float) -> float:
    """Gaussian agreement of a raster-pixel box with a raster-pixel point (1 inside the box)."""
    dx = max(box[0] - point_px[0], 0.0, point_px[0] - box[2])
    dy = max(box[1] - point_px[1], 0.0, point_px[1] - box[3])
    return math.exp(-0.5 * (dx * dx + dy * dy) / max(sigma_px, 1e-6) ** 2)


def _holds(box, point_px) -> bool:
    """Whether the raster-pixel box ``(x1, y1, x2, y2)`` holds the raster-pixel point ``(x, y)``."""
    return box[0] <= point_px[0] <= box[2] and box[1] <= point_px[1] <= box[3]


def _detection(raster, photo, click, stages, estimate, smgeo_det, top_k, model_id) -> Detection:
    """The fused :class:`Detection` with every stage's properties (see the module docstring)."""
    extra: dict = {}
    for name, st in stages.items():
        extra[f"{name}_status"] = "ok" if st.ok else st.reason
        if st.ok and st.point is not None:
            lon, lat = crs_to_lonlat(raster.crs, [st.point[0]], [st.point[1]])
            extra.update({f"{name}_lon": float(lon[0]), f"{name}_lat": float(lat[0]),
                          f"{name}_uncertainty_m": round(st.uncertainty_m, 3)})
        for k, v in st.details.items():
            extra[f"{name}_{k}"] = v
    held = [n for n in ("metadata", "registration", "smgeo") if n in stages and stages[n].ok]
    candidates = [] if smgeo_det is None else [smgeo_det, *smgeo_det.candidates]
    box, score, box_source = None, 0.0, ""
    if estimate is not None:
        px = ~raster.transform @ estimate.point
        res = raster.pixel_size_m
        sigma_px = max(estimate.uncertainty_m / math.sqrt(4.605), res) / res
        ranked = sorted(candidates, key=lambda d: -d.score * _agreement(d.pixel_box, px, sigma_px))
        holding = [d for d in ranked if _holds(d.pixel_box, px)]
        if holding:  # the drawn object must hold the located point: a box beside it is a neighbour's
            box, score, box_source = holding[0].pixel_box, holding[0].score, "smgeo"
            candidates = ranked
        elif estimate.region is not None:
            box, score, box_source = _quad_box(estimate.region), confidence(estimate.uncertainty_m), "click region"
        else:
            half = max(estimate.uncertainty_m, 2.0) / res
            box, score, box_source = (px[0] - half, px[1] - half, px[0] + half, px[1] + half), 0.0, "uncertainty"
        point, unc, answer = estimate.point, estimate.uncertainty_m, estimate.name
    elif smgeo_det is not None:
        box, score, box_source = smgeo_det.pixel_box, smgeo_det.score, "smgeo"
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        xs, ys = pixel_to_crs(raster.transform, [cx], [cy])
        point, answer = (float(xs[0]), float(ys[0])), "smgeo"
        unc = _smgeo_radius_m(raster, (cx, cy), box, stages.get("smgeo"))
    else:
        reasons = "; ".join(f"{n}: {s.reason}" for n, s in stages.items() if not s.ok)
        raise SMGeoError(f"{photo}: no stage could locate the click ({reasons})")
    lon, lat = crs_to_lonlat(raster.crs, [point[0]], [point[1]])
    extra.update(method="+".join(held) or "none", answer=answer, uncertainty_m=round(float(unc), 3),
                 confidence=round(confidence(unc), 4), located_lon=float(lon[0]), located_lat=float(lat[0]),
                 box_source=box_source)
    common = dict(query_image=str(photo), click=click, model_id=model_id, reference=str(raster.path))
    best = Detection.from_pixel_box(box, raster, score=score, rank=0, extra=extra, **common)
    others = [c for c in candidates if c.pixel_box != box][: max(0, top_k - 1)]
    best.candidates = [Detection.from_pixel_box(c.pixel_box, raster, score=c.score, rank=i + 1, **common)
                       for i, c in enumerate(others)]
    return best


def _intersect(a: Window, b: Window) -> Window | None:
    c0, r0 = max(a.col_off, b.col_off), max(a.row_off, b.row_off)
    c1 = min(a.col_off + a.width, b.col_off + b.width)
    r1 = min(a.row_off + a.height, b.row_off + b.height)
    if c1 - c0 < 16 or r1 - r0 < 16:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _mtime(path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
