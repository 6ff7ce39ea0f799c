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

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from affine import Affine
from rasterio.windows import Window

from smgeo_geo.errors import DeviceError, WindowError
from smgeo_geo.photo import check_click, read_photo
from smgeo_geo.raster import PixelMapping, ReferenceRaster, open_reference
from smgeo_geo.result import Detection
from smgeo_geo.windows import merge_boxes, sliding_windows
from smgeo_model import PredictorStateError, SMGeoPredictor, bundled_checkpoint, load_checkpoint
from smgeo_model.smgeo import ReferenceEmbedding

MAX_WHOLE_FACTOR = 4  # a raster up to 4x the model input (per side) may be used whole


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


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


class GeoPredictor:
    """A loaded SMGeo model + caches; ``set_reference`` / ``set_query`` / ``locate``."""

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", cache_size: int = 16) -> None:
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise DeviceError(f"device {device!r}: torch {torch.__version__} sees no CUDA GPU here; use 'cpu'")
        path = Path(checkpoint) if checkpoint is not None else bundled_checkpoint()
        self.model = load_checkpoint(path, device=device)
        self.config = self.model.config
        digest = hashlib.sha256(path.with_suffix(".safetensors").read_bytes()).hexdigest()[:10]
        self.model_id = f"{path.with_suffix('').name}@{digest}"
        self._predictor = SMGeoPredictor(self.model, device)
        self._cache: OrderedDict[tuple, ReferenceWindow] = OrderedDict()
        self.cache_size = cache_size
        self.reference: ReferenceWindow | None = None
        self.query_path: str = ""
        self._query_size_wh: tuple[int, int] | None = None
        self.last_heatmap: tuple[np.ndarray, Affine] | None = None
        self.last_reference_cached = False  # whether the last set_reference came from the cache

    # -- reference ----------------------------------------------------------------------
    def default_window(self, raster: ReferenceRaster) -> Window:
        """The whole raster, if it is at most 4x the model input per side."""
        limit = MAX_WHOLE_FACTOR * max(self.config.reference_size)
        if max(raster.width, raster.height) > limit:
            raise WindowError(
                f"{raster.path}: raster is {raster.width}x{raster.height} pixels; choose a search window "
                f"(a bounding box, a lon/lat centre and radius, the photo's GPS) or a sliding-window search")
        return Window(0, 0, raster.width, raster.height)

    def set_reference(self, raster: ReferenceRaster | str | Path, window: Window | None = None) -> ReferenceWindow:
        """Encode ``window`` (raster pixels; default whole raster) of ``raster`` once."""
        if not isinstance(raster, ReferenceRaster):
            raster = open_reference(raster)
        window = window if window is not None else self.default_window(raster)
        size = model_size((window.height, window.width), max(self.config.reference_size))
        key = (str(raster.path), raster.bands, tuple(round(v, 6) for v in window.flatten()), size)
        ref = self._cache.get(key)
        self.last_reference_cached = ref is not None
        if ref is None:
            image, mapping = raster.read_window(window, (size[1], size[0]))
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
        self._predictor.set_query(_to_tensor(image), size=model_size((h, w), max(self.config.query_size)))

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
        pred = self._predictor.predict(click, top_k=top_k)
        ref = self.reference
        boxes = [ref.mapping.box_to_raster(b) for b in pred.boxes.tolist()]
        heat = pred.heatmap.numpy()
        cell = Affine.scale(ref.image.shape[1] / heat.shape[1], ref.image.shape[0] / heat.shape[0])
        self.last_heatmap = (heat, ref.raster.transform @ ref.mapping.affine @ cell)
        return self._detections(boxes, pred.scores.tolist(), click)

    def search(self, raster: ReferenceRaster, click: tuple[float, float], top_k: int = 5,
               overlap: float = 0.25, window_size: int | None = None, progress=None) -> Detection:
        """Sliding-window search of the whole raster: every window is encoded (cached) and
        its top-k boxes are merged across windows by non-maximum suppression."""
        size = window_size or max(self.config.reference_size)
        windows = sliding_windows(raster, size, overlap)
        all_boxes, all_scores = [], []
        best_score, best_heat = -1.0, None
        for win in (progress(windows) if progress else windows):
            self.set_reference(raster, win)
            det = self.locate(click, top_k)
            for d in [det, *det.candidates]:
                all_boxes.append(d.pixel_box)
                all_scores.append(d.score)
            if det.score > best_score:
                best_score, best_heat = det.score, self.last_heatmap
        boxes, scores, _ = merge_boxes(np.asarray(all_boxes), np.asarray(all_scores), 0.3, max_out=top_k)
        self.last_heatmap = best_heat
        return self._detections([tuple(b) for b in boxes], scores.tolist(), check_click(click, self._query_size_wh))

    def _detections(self, boxes, scores, click) -> Detection:
        raster = self.reference.raster
        common = dict(query_image=self.query_path, click=click, model_id=self.model_id, reference=str(raster.path))
        dets = [Detection.from_pixel_box(b, raster, score=s, rank=i, **common)
                for i, (b, s) in enumerate(zip(boxes, scores))]
        best = dets[0]
        best.candidates = dets[1:]
        return best
