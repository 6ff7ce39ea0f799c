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

Fusion (``auto``, :mod:`smgeo_geo.stages`): the registration's point where it held and agrees
with the metadata (or the photo's matches explain the metadata's error, or its camera reproduces
itself, or it has strong support), else the metadata's, else SMGeo's best box centre; the box is
the best SMGeo candidate that holds the point, else the click region cast onto the ground. A
stage that cannot run says why in the result and the next one answers.

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
photo writes none of its own: around the lens database's lens of its camera model, else a pinhole), ``registration_metadata_error_sigma`` / ``registration_metadata_explained``
(pose mode: the size, in budget sigmas, of the metadata error the matches imply, and whether it
lies within the budget's 99.9 % ellipsoid), ``registration_assumed`` / ``registration_hypotheses_tried``
(what the camera that registered a photo lacking metadata assumed, e.g. ``pitch -60, flight
heading``, and how many were tried) with ``registration_second_opinion_m`` (how far the click
mapped from the global matches alone lies from the answer: the radius is at least that) and
``smgeo_score`` and ``smgeo_click_moved_answer_m`` (how far SMGeo's answer, in the window or the
sliding search it ran, moves when the click is moved half the photo away; near 0, the model found the area the
photo shows but not the clicked object, as on real photos unlike its training pairs).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from smgeo_geo.assumed_cameras import register_under_assumed_cameras, reproduces_itself
from smgeo_geo.errors import MetadataError, OptionError, SMGeoError
from smgeo_geo.photo import check_click, read_photo
from smgeo_geo.photo_meta import read_photo_meta
from smgeo_geo.pose import (CameraPrior, camera_from_metadata, camera_height_sigma, camera_hypotheses,
                            heading_hypotheses, locate_pixel, shifted_height)
from smgeo_geo.raster import ReferenceRaster
from smgeo_geo.rectification import footprint_window
from smgeo_geo.registration import RegisteredPhoto, click_region, register
from smgeo_geo.result import Detection
from smgeo_geo.stages import Stage, circles_overlap, fuse_point, fused_detection, ground_distance_m
from smgeo_geo.terrain import DemTerrain
from smgeo_geo.windows import ResolvedWindow, WindowSpec, resolve

METHODS = ("auto", "metadata", "registration", "smgeo")
REGION = 0.08  # click region side, fraction of the photo's shorter side (box when no model box agrees)
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
        if not smgeo_window.search:  # one window: the click moved costs one more decoding (a search sets it)
            det.extra["click_moved_answer_m"] = round(predictor.click_moved_answer_m(click, det), 2)
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
    def _metadata_stage(self, prior: CameraPrior | None, why: str, raster: ReferenceRaster, click,
                        photo: str) -> Stage:
        if prior is None:
            return Stage("metadata", False, why)
        try:
            g = locate_pixel(prior, click)
        except MetadataError as exc:
            # a DSM that stops short of where the click's ray meets the ground (it covers the
            # survey, the photo looks beyond it; or a nodata hole): flat ground at the take-off
            # height there, as without a DEM (its wider height budget in the radius)
            flat = self._flat_prior(photo) if isinstance(prior.terrain, DemTerrain) else None
            if flat is None:
                return Stage("metadata", False, str(exc))
            try:
                g = locate_pixel(flat, click)
            except MetadataError:
                return Stage("metadata", False, str(exc))
            prior = replace(flat, notes=[*flat.notes, f"the click's ray meets no height of the "
                                                      f"{prior.terrain.name} (beyond it or on nodata)"])
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
                not stage.details.get("metadata_explained") and not circles_overlap(raster, meta_stage, stage):
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
                apart = ground_distance_m(reg.raster, result.point, coarse.point)
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
        col, row = ~raster.transform @ estimate.point
        side_m = max(MIN_SMGEO_WINDOW_M, 8.0 * min(estimate.uncertainty_m, 200.0))
        side = max(32, round(side_m / raster.pixel_size_m_at(col, row)))
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
            meta = self._metadata_stage(prior, why, raster, click, photo)
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
            estimate = fuse_point(stages, raster)
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
                    details = {"score": round(smgeo_det.score, 4), "window": reason}
                    if "click_moved_answer_m" in smgeo_det.extra:
                        details["click_moved_answer_m"] = smgeo_det.extra["click_moved_answer_m"]
                    stages["smgeo"] = Stage("smgeo", True, "", details=details, searched=searched)
                except SMGeoError as exc:
                    if method == "smgeo":
                        raise
                    stages["smgeo"] = Stage("smgeo", False, str(exc))
            tick(0.95, "fusing")
            return fused_detection(raster, photo, click, stages, estimate, smgeo_det, top_k,
                              self._predictor.model_id if self._predictor is not None else "")
        finally:  # nothing of this call runs on (on the raster or the model) once it has returned or raised
            self._wait_pending()


def _fixed_window(user: ResolvedWindow | None) -> bool:
    """Whether SMGeo searches the user's own window (bounds or centre) whatever the stages find."""
    return user is not None and user.window is not None and user.mode in ("bounds", "center")


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
