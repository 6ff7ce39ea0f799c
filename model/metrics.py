"""Benchmark metrics (paper eqs. 23-24, CVOGL/DetGeo definition).

Predicted and true boxes are absolute (x1, y1, x2, y2) in reference pixels; acc@t is the
fraction of pairs with IoU strictly greater than t; mIoU is the mean IoU.
"""

from __future__ import annotations

import torch


def box_iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """IoU of aligned boxes ``[N,4]`` and ``[N,4]`` (xyxy) -> ``[N]``."""
    lt = torch.maximum(pred[:, :2], truth[:, :2])
    rb = torch.minimum(pred[:, 2:], truth[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(dim=1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp_min(0).prod(dim=1)
    area_t = (truth[:, 2:] - truth[:, :2]).clamp_min(0).prod(dim=1)
    union = area_p + area_t - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def localization_metrics(ious: torch.Tensor, thresholds: tuple[float, ...] = (0.25, 0.5)) -> dict[str, float]:
    """``{"acc@0.25", "acc@0.5", "mIoU", "count"}`` as fractions of the pairs."""
    n = int(ious.numel())
    out: dict[str, float] = {f"acc@{t:g}": (float((ious > t).float().mean()) if n else 0.0) for t in thresholds}
    out["mIoU"] = float(ious.mean()) if n else 0.0
    out["count"] = n
    return out
