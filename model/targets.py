"""Training targets of the anchor-free head (paper eqs. 13-17).

Frames: boxes arrive as (x1, y1, x2, y2) in reference pixels; targets live on the
``h x w`` heatmap grid, whose cell ``(i, j)`` covers reference pixels
``[j*sx, (j+1)*sx) x [i*sy, (i+1)*sy)`` with ``sx = W/w``, ``sy = H/h`` (16 by design).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Targets:
    """heatmap ``[B,1,h,w]`` (1 exactly at the centre cell, Gaussian around it);
    boxes ``[B,4]`` (dx, dy, w, h) in cells; cells ``[B,2]`` (row, col) of the centre."""

    heatmap: torch.Tensor
    boxes: torch.Tensor
    cells: torch.Tensor


def build_targets(
    boxes: torch.Tensor,
    image_size: tuple[int, int],
    grid_size: tuple[int, int],
    sigma_scale: float = 1.0 / 6.0,
    sigma_min: float = 0.8,
) -> Targets:
    """boxes ``[B,4]`` xyxy reference px; image_size (H, W) px; grid_size (h, w) cells."""
    H, W = image_size
    h, w = grid_size
    sx, sy = w / W, h / H
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 * sx  # eq. 14
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 * sy
    bw = (boxes[:, 2] - boxes[:, 0]) * sx  # eq. 17
    bh = (boxes[:, 3] - boxes[:, 1]) * sy
    col = cx.floor().clamp(0, w - 1)
    row = cy.floor().clamp(0, h - 1)
    box_t = torch.stack([cx - col, cy - row, bw, bh], dim=1)  # eq. 16
    sigma = (sigma_scale * torch.sqrt(bw.clamp_min(0) * bh.clamp_min(0))).clamp_min(sigma_min)
    xs = torch.arange(w, dtype=boxes.dtype, device=boxes.device) + 0.5  # cell centres
    ys = torch.arange(h, dtype=boxes.dtype, device=boxes.device) + 0.5
    d2 = (xs[None, None, :] - cx[:, None, None]) ** 2 + (ys[None, :, None] - cy[:, None, None]) ** 2
    heat = torch.exp(-d2 / (2 * sigma[:, None, None] ** 2))  # eq. 15
    b = torch.arange(boxes.shape[0], device=boxes.device)
    heat[b, row.long(), col.long()] = 1.0
    return Targets(heat[:, None], box_t, torch.stack([row, col], 1).long())
