"""Neck (stride-16 feature map) and anchor-free localisation head (paper eqs. 11-12).

Output stride 16: a 1024-pixel reference gives a 64 x 64 heatmap. CVOGL objects cover
about 500-18,000 m^2 at 0.5 m/pixel, i.e. boxes from ~45 to ~270 pixels across, and the
paper stresses small ones (< 300 pixels). At stride 32 the smallest span ~1.4 cells, so
neighbouring objects share a heatmap cell; at stride 16 they span ~3 cells and keep their
own peak, while the sub-cell offsets (dx, dy) restore pixel precision. Stride 8 would
quadruple the head's cost for objects already resolved. The neck therefore merges Swin's
stride-32 map (upsampled) into its stride-16 map, FPN-style, for both views.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm2d
from torch import nn


class FeatureNeck(nn.Module):
    """``([B, C16, H/16, W/16], [B, C32, H/32, W/32]) -> [B, D, H/16, W/16]`` (channel-normalised)."""

    def __init__(self, in_dims: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.lateral_s16 = nn.Conv2d(in_dims[0], dim, 1)
        self.lateral_s32 = nn.Conv2d(in_dims[1], dim, 1)
        self.norm = LayerNorm2d(dim)

    def forward(self, s16: torch.Tensor, s32: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(self.lateral_s32(s32), size=s16.shape[-2:], mode="nearest")
        return self.norm(self.lateral_s16(s16) + top)


class AnchorFreeHead(nn.Module):
    """Fused features ``[B, C, h, w]`` -> heatmap logits ``[B, 1, h, w]`` and boxes ``[B, 4, h, w]``.

    Boxes are (dx, dy, w, h) in feature cells: the centre's offset inside its cell and
    the box size (eqs. 16-17). The heatmap bias starts at -2.19 (prior 0.1, CenterNet);
    the box bias at (0.5, 0.5, 4, 4): centred, 64 x 64 pixels.
    """

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
        )
        self.heatmap = nn.Conv2d(dim, 1, 1)
        self.box = nn.Conv2d(dim, 4, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.1) / 0.1))
        # start from a centred offset and a 4 x 4-cell (64 px) box rather than a point
        with torch.no_grad():
            self.box.bias.copy_(torch.tensor([0.5, 0.5, 4.0, 4.0]))

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(fused)
        return self.heatmap(f), self.box(f)
