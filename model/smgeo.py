"""The SMGeo network: shared GMoE-Swin encoder, click prompt, query-guided fusion, head.

Composition by injection (as segment-anything's ``Sam``): :func:`smgeo_model.build_model`
builds the parts from a config and hands them in.

Three steps, so that expensive work is done once (segment-anything style):

* :meth:`SMGeo.encode_reference` - satellite image -> :class:`ReferenceEmbedding` (the
  expensive part: 1024 x 1024 pixels). Computed once per reference window.
* :meth:`SMGeo.encode_query` - drone photo -> :class:`QueryEmbedding`. Computed once per
  photo (once per photo *and click* if ``config.click_in_backbone``).
* :meth:`SMGeo.decode` - click + the two embeddings -> heatmap and boxes. Cheap: a new
  click costs only this step.

Images are float tensors ``[B, 3, H, W]`` with RGB values in [0, 1]; the model applies the
ImageNet mean/std normalisation itself. H and W must be multiples of 32. Clicks are
``[B, 2]`` (x, y) in query pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from smgeo_model.backbone import SwinMoEBackbone
from smgeo_model.config import SMGeoConfig
from smgeo_model.fusion import QueryGuidedFusion
from smgeo_model.head import AnchorFreeHead, FeatureNeck
from smgeo_model.moe import Routing
from smgeo_model.prompt import ClickChannelEmbed, PromptEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ReferenceEmbedding:
    """features: ``[B, D, H/16, W/16]``; image_size: reference (H, W) in pixels."""

    features: torch.Tensor
    image_size: tuple[int, int]
    routings: list[Routing]


@dataclass
class QueryEmbedding:
    """features: ``[B, D, h/16, w/16]``; image_size: query (h, w) in pixels.

    clicks: the clicks baked into the features when ``click_in_backbone`` (else None).
    """

    features: torch.Tensor
    image_size: tuple[int, int]
    routings: list[Routing]
    clicks: torch.Tensor | None = None


class SMGeo(nn.Module):
    def __init__(
        self,
        config: SMGeoConfig,
        backbone: SwinMoEBackbone,
        neck: FeatureNeck,
        prompt_encoder: PromptEncoder,
        fusion: QueryGuidedFusion,
        head: AnchorFreeHead,
        click_channel: ClickChannelEmbed | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.neck = neck
        self.prompt_encoder = prompt_encoder
        self.fusion = fusion
        self.head = head
        self.click_channel = click_channel
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def stride(self) -> int:
        """Reference pixels per heatmap cell."""
        return SMGeoConfig.OUTPUT_STRIDE

    def _encode(self, images: torch.Tensor, view: str, extra: torch.Tensor | None = None):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{view} images must be [B, 3, H, W], got {tuple(images.shape)}")
        s16, s32, routings = self.backbone((images - self.pixel_mean) / self.pixel_std, view, extra)
        return self.neck(s16, s32), routings

    def encode_reference(self, reference: torch.Tensor) -> ReferenceEmbedding:
        """reference: ``[B, 3, H, W]`` satellite images, RGB in [0, 1]."""
        features, routings = self._encode(reference, "reference")
        return ReferenceEmbedding(features, tuple(reference.shape[-2:]), routings)

    def encode_query(self, query: torch.Tensor, clicks: torch.Tensor | None = None) -> QueryEmbedding:
        """query: ``[B, 3, h, w]`` drone photos, RGB in [0, 1].

        ``clicks`` (x, y query pixels) is needed only with ``config.click_in_backbone``.
        """
        size = tuple(query.shape[-2:])
        extra = None
        if self.click_channel is not None:
            if clicks is None:
                raise ValueError("this model feeds the click to the backbone (click_in_backbone): pass clicks")
            extra = self.click_channel(clicks.to(query.dtype), size)
        features, routings = self._encode(query, "query", extra)
        return QueryEmbedding(features, size, routings, clicks if self.click_channel is not None else None)

    def decode(self, reference: ReferenceEmbedding, query: QueryEmbedding, clicks: torch.Tensor) -> dict:
        """Click + embeddings -> outputs (see :meth:`forward`).

        A reference embedding of batch 1 is shared by all queries/clicks of the batch.
        """
        ref = reference.features
        if query.clicks is not None and not torch.equal(query.clicks.to(clicks), clicks):
            raise ValueError("query features were computed with other clicks (click_in_backbone); re-encode the query")
        if ref.shape[0] == 1 and clicks.shape[0] > 1:
            ref = ref.expand(clicks.shape[0], -1, -1, -1)
        qf = query.features
        if qf.shape[0] == 1 and clicks.shape[0] > 1:
            qf = qf.expand(clicks.shape[0], -1, -1, -1)
        query_vector, pooling = self.prompt_encoder(qf, clicks, query.image_size)
        fused, attention = self.fusion(ref, query_vector)
        logits, boxes = self.head(fused)
        return {
            "heatmap": torch.sigmoid(logits),
            "heatmap_logits": logits,
            "boxes": boxes,
            "attention": attention,
            "query_pooling": pooling,
            "routing": {"query": query.routings, "reference": reference.routings},
            "reference_size": reference.image_size,
        }

    def forward(self, query: torch.Tensor, clicks: torch.Tensor, reference: torch.Tensor,
                pair_index: torch.Tensor | None = None) -> dict:
        """Full pair: query ``[B,3,h,w]``, clicks ``[B,2]`` (x, y query px), reference ``[B,3,H,W]``.

        ``pair_index`` ``[N]`` (long): several clicks per pair, ``clicks`` ``[N,2]`` then being
        clicks on photo ``pair_index[i]`` to be found in its reference; each image is encoded
        once (training with many clicks per pair; not with ``click_in_backbone``). Outputs then
        have N rows.

        Returns a dict with ``heatmap`` ``[B,1,H/16,W/16]`` (probabilities of the object
        centre), ``heatmap_logits``, ``boxes`` ``[B,4,H/16,W/16]`` ((dx, dy, w, h) in cells;
        :func:`smgeo_model.decode_boxes` turns them into reference pixels), ``attention``
        (fusion map A ``[B,G,H/16,W/16]``), ``query_pooling`` ``[B,1,h/16,w/16]``,
        ``routing`` (GMoE routing per view) and ``reference_size``.
        """
        if pair_index is None:
            return self.decode(self.encode_reference(reference), self.encode_query(query, clicks), clicks)
        if self.click_channel is not None:
            raise ValueError("pair_index needs the click outside the backbone (click_in_backbone is set)")
        ref, qry = self.encode_reference(reference), self.encode_query(query)
        ref = ReferenceEmbedding(ref.features[pair_index], ref.image_size, ref.routings)
        qry = QueryEmbedding(qry.features[pair_index], qry.image_size, qry.routings)
        return self.decode(ref, qry, clicks)
