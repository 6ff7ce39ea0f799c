"""Locate a clicked object of a drone photo on a georeferenced raster (the library's API).

>>> from smgeo_geo import GeoPredictor, open_reference
>>> predictor = GeoPredictor()                           # bundled demo model by default
>>> with open_reference("mosaic.tif") as raster:
...     predictor.set_reference(raster, window)          # encoded once, cached
...     predictor.set_query("DJI_0042.JPG")              # encoded once per photo
...     det = predictor.locate((812, 455))               # click (x, y) in photo pixels
>>> det.centroid_lonlat, det.polygon_lonlat, det.to_geojson_feature()

Frames: clicks are photo pixels (x right, y down, upright photo); windows and pixel boxes
are reference-raster pixels (GDAL corner convention); polygons are in the raster CRS and
in WGS84 lon/lat. The window is resampled to the model's input size with aspect kept;
``PixelMapping`` holds that exact model <-> raster map, so boxes come back in raster pixels.
Reference embeddings are kept in an LRU cache keyed by (raster, window, size), so rows
of a batch that share a window encode it once.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from affine import Affine
from rasterio.windows import Window

from smgeo_geo.checks import check_top_k, model_id
from smgeo_geo.coords import geodesic_distance
from smgeo_geo.errors import DeviceError, NoDataError, PredictorStateError, WindowError, model_errors
from smgeo_geo.photo import check_click, read_photo
from smgeo_geo.raster import PixelMapping, ReferenceRaster, open_reference
from smgeo_geo.result import Detection
from smgeo_geo.windows import ResolvedWindow, WindowSpec, merge_boxes, resolve, sliding_windows
from smgeo_model import SMGeoPredictor, bundled_checkpoint, load_checkpoint, moved_clicks
from smgeo_model.checkpoint import checkpoint_paths
from smgeo_model.smgeo import ReferenceEmbedding

MAX_WHOLE_FACTOR = 4  # a raster up to 4x the model input (per side) may be used whole
MIN_VALID_FRACTION = 0.01  # a window with fewer valid pixels holds nothing to search


def model_size(size_hw: tuple[float, float], long_side: int) -> tuple[int, int]:
    """(H, W) in model pixels for an image of ``size_hw``: aspect kept, long side
    ``long_side``, both multiples of 32 (at least 32)."""
    h, w = size_hw
    s = long_side / max(h, w)
    return max(32, int(round(h * s / 32)) * 32), max(32, int(round(w * s / 32)) * 32)


@dataclass
class ReferenceWindow:
    """The reference window currently set: raster, window (raster px), model image
    ``HxWx3`` uint8 and the model <-> raster :class:`PixelMapping`."""

    raster: ReferenceRaster
    window: Window
    image: np.ndarray
    mapping: PixelMapping
    embedding: ReferenceEmbedding


def check_device(device) -> str:
    """``device`` as torch names it (``cpu``, ``cuda``, ``cuda:1``, ``mps``); :class:`DeviceError`
    naming it when it is not a device or not available here."""
    text = str(device).strip()
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device {text!r} is not a device; use cpu or cuda (cuda:N for another GPU)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {text!r}: torch {torch.__version__} sees no CUDA GPU here; use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {text!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {text!r}: this torch has no usable MPS device; use 'cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {text!r} is not supported; use cpu or cuda")
    return text


def _file_stamp(path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, None for what is not a local file (a /vsi path, a URL)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


class GeoPredictor:
    """A loaded SMGeo model + caches; ``set_reference`` / ``set_query`` / ``locate``."""

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", cache_size: int = 16) -> None:
        device = check_device(device)
        with model_errors():
            weights, _ = checkpoint_paths(checkpoint if checkpoint is not None else bundled_checkpoint())
            self.model = load_checkpoint(weights, device=device)
        self.config = self.model.config
        self.model_id = model_id(weights)
        self._predictor = SMGeoPredictor(self.model, device)
        self._cache: OrderedDict[tuple, ReferenceWindow] = OrderedDict()
        self.cache_size = cache_size
        self.reference: ReferenceWindow | None = None
        self.query_path: str = ""
        self._query_size_wh: tuple[int, int] | None = None
        self._query_scale: tuple[float, float] = (1.0, 1.0)
        self.last_heatmap: tuple[np.ndarray, Affine] | None = None
        self.last_reference_cached = False  # whether the last set_reference came from the cache
        self._locator = None  # smgeo_geo.locator.Locator bound to this predictor, made on first use

    # -- reference ----------------------------------------------------------------------
    @property
    def max_whole_side(self) -> int:
        """Largest raster side (pixels) searched as one window: 4x the model input."""
        return MAX_WHOLE_FACTOR * max(self.config.reference_size)

    def resolve_window(self, raster: ReferenceRaster, spec: WindowSpec | None = None,
                       photo: str | Path | None = None) -> ResolvedWindow:
        """:func:`smgeo_geo.windows.resolve` with this model's sizes (``spec`` default: auto)."""
        return resolve(spec or WindowSpec(), raster, max_side=self.max_whole_side, photo=photo,
                       search_size=max(self.config.reference_size))

    def default_window(self, raster: ReferenceRaster) -> Window:
        """The whole raster, if it is at most 4x the model input per side (else WindowError)."""
        resolved = resolve(WindowSpec("whole"), raster, max_side=self.max_whole_side,
                           search_size=max(self.config.reference_size))
        if resolved.search:
            raise WindowError(
                f"{raster.path}: raster is {raster.width}x{raster.height} pixels; choose a search window "
                f"(a bounding box, a lon/lat centre and radius, the photo's GPS) or a sliding-window search")
        return resolved.window

    def set_reference(self, raster: ReferenceRaster | str | Path, window: Window | None = None) -> ReferenceWindow:
        """Encode ``window`` (raster pixels; default whole raster) of ``raster`` once."""
        if not isinstance(raster, ReferenceRaster):
            raster = open_reference(raster)
        window = window if window is not None else self.default_window(raster)
        size = model_size((window.height, window.width), max(self.config.reference_size))
        key = (str(raster.path), _file_stamp(raster.path), raster.bands, tuple(round(v, 6) for v in window.flatten()),
               size)  # a raster replaced at the same path is encoded anew
        ref = self._cache.get(key)
        self.last_reference_cached = ref is not None
        if ref is None:
            image, valid, mapping = raster.read_window_with_mask(window, (size[1], size[0]))
            if valid.mean() < MIN_VALID_FRACTION:
                raise NoDataError(
                    f"{raster.path}: the search window (cols {window.col_off}..{window.col_off + window.width}, rows "
                    f"{window.row_off}..{window.row_off + window.height}) holds no valid pixels (nodata, NaN or "
                    f"outside the raster); choose a window over imagery")
            self._predictor.set_reference(_to_tensor(image), size=size)
            ref = ReferenceWindow(raster, window, image, mapping, self._predictor.reference_embedding)
            self._cache[key] = ref
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
            self._predictor.set_reference_embedding(ref.embedding, ref.image.shape[:2])
        self.reference = ref
        return ref

    # -- query --------------------------------------------------------------------------
    def set_query(self, photo: str | Path | np.ndarray) -> None:
        """Set the drone photo (path or ``HxWx3`` uint8 RGB); encoded once."""
        image = read_photo(photo) if not isinstance(photo, np.ndarray) else photo
        self.query_path = "" if isinstance(photo, np.ndarray) else str(photo)
        h, w = image.shape[:2]
        self._query_size_wh = (w, h)
        target = model_size((h, w), max(self.config.query_size))
        self._query_scale = (1.0, 1.0)
        if max(h, w) > 4 * max(target):  # a big photo: shrink it in uint8 before it becomes float
            sh, sw = 2 * target[0], 2 * target[1]
            image = cv2.resize(np.ascontiguousarray(image), (sw, sh), interpolation=cv2.INTER_AREA)
            self._query_scale = (sw / w, sh / h)
        self._predictor.set_query(_to_tensor(image), size=target)

    def validate_click(self, click: tuple[float, float]) -> tuple[float, float]:
        """``click`` = (x, y) photo pixels checked against the photo set (ClickError if
        outside), so a bad click fails before any reference window is encoded."""
        if self._query_size_wh is None:
            raise PredictorStateError("no drone photo set: call set_query() first")
        return check_click(click, self._query_size_wh)

    # -- locate -------------------------------------------------------------------------
    def locate(self, click: tuple[float, float], top_k: int = 5) -> Detection:
        """Best detection (rank 0) for ``click`` = (x, y) photo pixels; the others of the
        ``top_k`` ranked boxes are its ``candidates``."""
        if self.reference is None:
            raise PredictorStateError("no reference window set: call set_reference() first")
        if self._query_size_wh is None:
            raise PredictorStateError("no drone photo set: call set_query() first")
        click = check_click(click, self._query_size_wh)
        sx, sy = self._query_scale  # photo pixels -> pixels of the image the model was given
        pred = self._predictor.predict((click[0] * sx, click[1] * sy), top_k=check_top_k(top_k))
        ref = self.reference
        boxes = [ref.mapping.box_to_raster(b) for b in pred.boxes.tolist()]
        heat = pred.heatmap.numpy()
        cell = Affine.scale(ref.image.shape[1] / heat.shape[1], ref.image.shape[0] / heat.shape[0])
        self.last_heatmap = (heat, ref.raster.transform @ ref.mapping.affine @ cell)
        return self._detections(boxes, pred.scores.tolist(), click)

    def click_moved_answer_m(self, click: tuple[float, float], answer: Detection | None = None) -> float:
        """Ground metres (geodesic) between the best answers, in the reference window set, for
        ``click`` = (x, y) photo pixels and for the click moved half the photo's width and height
        (:func:`smgeo_model.moved_clicks`): near 0 when the model's answer does not depend on the
        click (it found the area, not the object). ``answer``: the click's own answer in this window
        when already at hand (not decoded again). ``last_heatmap`` is left as it was."""
        heat = self.last_heatmap
        click = self.validate_click(click)
        try:
            here = answer if answer is not None else self.locate(click, 1)
            there = self.locate(self._moved_click(click), 1)
        finally:
            self.last_heatmap = heat
        (lon1, lat1), (lon2, lat2) = here.centroid_lonlat, there.centroid_lonlat
        return float(geodesic_distance(lon1, lat1, lon2, lat2))

    def _moved_click(self, click: tuple[float, float]) -> tuple[float, float]:
        """``click`` (x, y photo pixels) moved half the photo's width and height, wrapping round."""
        w, h = self._query_size_wh
        x, y = moved_clicks(torch.tensor([click], dtype=torch.float32), (h, w))[0].tolist()
        return x, y

    def search(self, raster: ReferenceRaster, click: tuple[float, float], top_k: int = 5,
               overlap: float = 0.25, window_size: int | None = None, progress=None) -> Detection:
        """Sliding-window search of the whole raster: every window is encoded (cached) and
        its top-k boxes are merged across windows by non-maximum suppression.

        The result's ``extra["click_moved_answer_m"]`` is :meth:`click_moved_answer_m` over the
        same windows: the best answer for the click moved half the photo away (one more decoding
        per window, no more encoding), its distance to this answer in ground metres."""
        top_k = check_top_k(top_k)
        click = self.validate_click(click)
        moved = self._moved_click(click)
        size = window_size or max(self.config.reference_size)
        windows = sliding_windows(raster, size, overlap)
        all_boxes, all_scores, moved_best = [], [], None
        best_score, best_heat = -1.0, None
        for win in (progress(windows) if progress else windows):
            try:
                self.set_reference(raster, win)
            except NoDataError:
                continue  # a window of nodata holds nothing to find
            there = self.locate(moved, 1)
            if moved_best is None or there.score > moved_best.score:
                moved_best = there
            det = self.locate(click, top_k)
            for d in [det, *det.candidates]:
                all_boxes.append(d.pixel_box)
                all_scores.append(d.score)
            if det.score > best_score:
                best_score, best_heat = det.score, self.last_heatmap
        if not all_boxes:
            raise NoDataError(f"{raster.path}: no window of the raster holds valid pixels (all nodata or NaN)")
        boxes, scores, _ = merge_boxes(np.asarray(all_boxes), np.asarray(all_scores), 0.3, max_out=top_k)
        self.last_heatmap = best_heat
        best = self._detections([tuple(b) for b in boxes], scores.tolist(), click)
        (lon1, lat1), (lon2, lat2) = best.centroid_lonlat, moved_best.centroid_lonlat
        best.extra["click_moved_answer_m"] = round(float(geodesic_distance(lon1, lat1, lon2, lat2)), 2)
        return best

    def locate_resolved(self, raster: ReferenceRaster, resolved: ResolvedWindow, click: tuple[float, float],
                        top_k: int = 5, progress=None) -> Detection:
        """Locate ``click`` in the window :meth:`resolve_window` chose (a sliding search when
        it says so); the result's ``extra`` records ``window_mode`` and ``window_reason``."""
        if resolved.search:
            det = self.search(raster, click, top_k, progress=progress)
        else:
            self.set_reference(raster, resolved.window)
            det = self.locate(click, top_k)
        for d in (det, *det.candidates):
            d.extra.update(window_mode=resolved.mode, window_reason=resolved.reason)
        return det

    def locate_photo(self, raster: ReferenceRaster, photo: str | Path, click: tuple[float, float],
                     method: str = "auto", window: WindowSpec | None = None, dem: str | Path | None = None,
                     top_k: int = 5, progress=None) -> Detection:
        """Locate ``click`` (x, y photo pixels) of the photo at ``photo`` with all three stages
        (photo metadata, registration, this model; see :mod:`smgeo_geo.locator`), fused.

        ``method``: auto | metadata | registration | smgeo; ``dem``: a DSM/DEM whose heights
        are in the photo's altitude frame. The result's ``extra`` holds ``method``,
        ``uncertainty_m`` (90 % radius, metres), ``located_lon`` / ``located_lat`` and the
        stage details. Caches registrations, so further clicks on the same photo are cheap.
        """
        if self._locator is None:
            from smgeo_geo.locator import Locator

            self._locator = Locator(predictor=self)
        return self._locator.locate(raster, photo, click, method=method, window=window, dem=dem, top_k=top_k,
                                    progress=progress)

    def _detections(self, boxes, scores, click) -> Detection:
        raster = self.reference.raster
        common = dict(query_image=self.query_path, click=click, model_id=self.model_id, reference=str(raster.path))
        dets = [Detection.from_pixel_box(b, raster, score=s, rank=i, **common)
                for i, (b, s) in enumerate(zip(boxes, scores))]
        best = dets[0]
        best.candidates = dets[1:]
        return best
