"""Training objective (paper eqs. 18-22).

``L = alpha * L_hm + mu * L_bbox + lambda * L_entropy`` with a focal heatmap loss (eq. 19),
an L1 loss on (dx, dy, w, h) at the positive cell (eq. 20) and the mean negative gate
entropy of every GMoE layer of both views (eqs. 21-22). Defaults alpha 0.9, mu 1.1,
lambda 0.015 (the paper's best, Fig. 14); gamma 2, beta 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from smgeo_model.config import SMGeoConfig
from smgeo_model.moe import gate_entropy_loss
from smgeo_model.targets import Targets, build_targets


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Eq. 19 on logits ``[B,1,h,w]`` (log-sigmoid for stability); positives: target == 1."""
    p = torch.sigmoid(logits)
    pos = target.eq(1).to(logits.dtype)
    pos_term = (1 - p) ** gamma * F.logsigmoid(logits) * pos
    neg_term = (1 - target) ** beta * p**gamma * F.logsigmoid(-logits) * (1 - pos)
    return -(pos_term.sum() + neg_term.sum()) / pos.sum().clamp_min(1)


def box_l1_loss(pred_boxes: torch.Tensor, targets: Targets) -> torch.Tensor:
    """Eq. 20: L1 between predicted and true (dx, dy, w, h) at each positive cell."""
    b = torch.arange(pred_boxes.shape[0], device=pred_boxes.device)
    pred = pred_boxes[b, :, targets.cells[:, 0], targets.cells[:, 1]]
    return (pred - targets.boxes).abs().sum() / max(pred_boxes.shape[0], 1)


class SMGeoLoss(nn.Module):
    def __init__(self, config: SMGeoConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, outputs: dict, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """outputs: :meth:`SMGeo.forward`'s dict; boxes ``[B,4]`` xyxy reference px.

        Returns ``{"loss", "heatmap", "bbox", "entropy"}`` (``loss`` is the weighted total).
        """
        c = self.config
        logits = outputs["heatmap_logits"]
        targets = build_targets(boxes.to(logits.dtype), outputs["reference_size"], tuple(logits.shape[-2:]),
                                c.heatmap_sigma_scale, c.heatmap_sigma_min)
        l_hm = focal_heatmap_loss(logits, targets.heatmap, c.focal_gamma, c.focal_beta)
        l_box = box_l1_loss(outputs["boxes"], targets)
        routings = outputs["routing"]["query"] + outputs["routing"]["reference"]
        l_ent = gate_entropy_loss(routings).to(logits.device)
        total = c.loss_alpha * l_hm + c.loss_mu * l_box + c.loss_lambda * l_ent
        return {"loss": total, "heatmap": l_hm.detach(), "bbox": l_box.detach(), "entropy": l_ent.detach()}
