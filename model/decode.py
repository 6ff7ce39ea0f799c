"""Decoding: heatmap + box map -> ranked boxes in reference pixels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def decode_boxes(
    heatmap: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int], top_k: int = 5, nms_kernel: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k local maxima of the heatmap and their boxes.

    heatmap ``[B,1,h,w]`` (probabilities), boxes ``[B,4,h,w]`` ((dx, dy, w, h) in cells),
    image_size: reference (H, W) in pixels. Returns boxes ``[B,k,4]`` as (x1, y1, x2, y2)
    in reference pixels (clipped to the image) and scores ``[B,k]``, best first. Peaks are
    kept only where the heatmap is the maximum of its ``nms_kernel`` neighbourhood.
    """
    B, _, h, w = heatmap.shape
    H, W = image_size
    pooled = F.max_pool2d(heatmap, nms_kernel, stride=1, padding=nms_kernel // 2)
    peaks = torch.where(pooled == heatmap, heatmap, torch.zeros_like(heatmap)).view(B, -1)
    k = min(top_k, h * w)
    scores, index = peaks.topk(k, dim=1)
    row, col = index // w, index % w
    params = boxes.view(B, 4, -1).gather(2, index[:, None, :].expand(B, 4, k))  # [B,4,k]
    sx, sy = W / w, H / h
    cx = (col + params[:, 0]) * sx
    cy = (row + params[:, 1]) * sy
    bw = params[:, 2].clamp_min(0) * sx
    bh = params[:, 3].clamp_min(0) * sy
    xyxy = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
    xyxy[..., 0::2] = xyxy[..., 0::2].clamp(0, W)
    xyxy[..., 1::2] = xyxy[..., 1::2].clamp(0, H)
    return xyxy, scores
