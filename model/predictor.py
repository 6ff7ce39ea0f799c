"""A stateful predictor that caches the expensive embeddings (segment-anything style).

>>> predictor = SMGeoPredictor(build_model("tiny"))
>>> predictor.set_reference(satellite)          # [3, H, W] RGB in [0, 1]: encoded once
>>> predictor.set_query(photo)                  # [3, h, w]: encoded once per photo
>>> result = predictor.predict((120.0, 64.0))   # a click (x, y) in photo pixels: cheap

Images of any size are resized to the model's input size (the config's ``reference_size``
and ``query_size`` unless given); :class:`ResizeTransform` owns that rescaling, and every
box the predictor returns is in the pixels of the image that was passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from smgeo_model.decode import decode_boxes
from smgeo_model.errors import PredictorStateError
from smgeo_model.smgeo import QueryEmbedding, ReferenceEmbedding, SMGeo


@dataclass(frozen=True)
class ResizeTransform:
    """Maps an image of ``original`` (H, W) pixels to the model input ``target`` (H, W).

    Points are (x, y) in pixels with (0, 0) the top-left corner of the top-left pixel;
    the map is a pure scaling ``x_model = x * target_w / original_w``.
    """

    original: tuple[int, int]
    target: tuple[int, int]

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.target[1] / self.original[1], self.target[0] / self.original[0]

    def image(self, image: torch.Tensor) -> torch.Tensor:
        """``[B,3,H,W]`` -> ``[B,3,target]`` (bilinear, antialiased when shrinking)."""
        if tuple(image.shape[-2:]) == tuple(self.target):
            return image
        return F.interpolate(image, size=self.target, mode="bilinear", align_corners=False, antialias=True)

    def points_to_model(self, xy: torch.Tensor) -> torch.Tensor:
        sx, sy = self.scale_xy
        return xy * xy.new_tensor([sx, sy])

    def boxes_to_original(self, boxes: torch.Tensor) -> torch.Tensor:
        sx, sy = self.scale_xy
        return boxes / boxes.new_tensor([sx, sy, sx, sy])


@dataclass
class Prediction:
    """boxes ``[k,4]`` xyxy and scores ``[k]`` (best first) in the reference image's pixels;
    heatmap ``[h,w]`` on the model's grid (cell = ``stride`` model pixels)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    heatmap: torch.Tensor

    @property
    def box(self) -> torch.Tensor:
        return self.boxes[0]

    @property
    def score(self) -> float:
        return float(self.scores[0])


def _as_batch(image: torch.Tensor, what: str) -> torch.Tensor:
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"{what} must be a [3, H, W] (or [1, 3, H, W]) RGB tensor, got {tuple(image.shape)}")
    return image.float()


class SMGeoPredictor:
    def __init__(self, model: SMGeo, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.reset()

    def reset(self) -> None:
        self._reference: ReferenceEmbedding | None = None
        self._reference_tf: ResizeTransform | None = None
        self._query_image: torch.Tensor | None = None
        self._query: QueryEmbedding | None = None
        self._query_tf: ResizeTransform | None = None

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    @torch.inference_mode()
    def set_reference(self, image: torch.Tensor, size: tuple[int, int] | None = None) -> None:
        """Encode a reference image ``[3,H,W]`` (RGB in [0,1]) once; ``size`` = model input (H, W)."""
        image = _as_batch(image, "reference image")
        self._reference_tf = ResizeTransform(tuple(image.shape[-2:]), tuple(size or self.model.config.reference_size))
        self._reference = self.model.encode_reference(self._reference_tf.image(image.to(self.device)))

    def set_reference_embedding(self, embedding: ReferenceEmbedding, original_size: tuple[int, int]) -> None:
        """Reuse an embedding computed earlier (e.g. kept in a cache)."""
        self._reference = embedding
        self._reference_tf = ResizeTransform(tuple(original_size), tuple(embedding.image_size))

    @property
    def reference_embedding(self) -> ReferenceEmbedding:
        if self._reference is None:
            raise PredictorStateError("no reference set: call set_reference() first")
        return self._reference

    @torch.inference_mode()
    def set_query(self, image: torch.Tensor, size: tuple[int, int] | None = None) -> None:
        """Set the drone photo ``[3,h,w]``; encoded now unless the model needs the click first."""
        image = _as_batch(image, "query image")
        self._query_tf = ResizeTransform(tuple(image.shape[-2:]), tuple(size or self.model.config.query_size))
        self._query_image = self._query_tf.image(image.to(self.device))
        self._query = None if self.model.click_channel is not None else self.model.encode_query(self._query_image)

    @torch.inference_mode()
    def predict(self, click: tuple[float, float], top_k: int = 5) -> Prediction:
        """Locate the object clicked at ``click`` = (x, y) in the query photo's pixels."""
        if self._reference is None:
            raise PredictorStateError("no reference set: call set_reference() first")
        if self._query_image is None:
            raise PredictorStateError("no query photo set: call set_query() first")
        h0, w0 = self._query_tf.original
        x, y = float(click[0]), float(click[1])
        if not (0 <= x <= w0 and 0 <= y <= h0):
            raise ValueError(f"click ({x:g}, {y:g}) lies outside the {w0}x{h0} query photo")
        clicks = self._query_tf.points_to_model(torch.tensor([[x, y]], device=self.device))
        query = self._query if self._query is not None else self.model.encode_query(self._query_image, clicks)
        out = self.model.decode(self._reference, query, clicks)
        boxes, scores = decode_boxes(out["heatmap"], out["boxes"], self._reference.image_size, top_k=top_k)
        return Prediction(self._reference_tf.boxes_to_original(boxes[0]).cpu(), scores[0].cpu(), out["heatmap"][0, 0].cpu())
