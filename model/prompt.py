"""Click prompt encoding.

The click is encoded as DetGeo's click map (reference notes, item 8): for a query of
``H x W`` pixels each position gets ``(1 - d / diag)^2``, ``d`` its distance to the click
and ``diag`` the image diagonal, both in query pixels.

By default the click enters at the fusion stage (paper Fig. 4: "fuses the features from
the two views with the encoded click prompts"): the click map is sampled at the centres of
the query's stride-16 feature cells, embedded and added to the query features (as SAM adds
its dense prompt embedding), and it drives a click-centred attention pooling that gives
the query vector of eq. 10. The query backbone therefore never sees the click, so query
features are computed once per photo and reused for every click.

``SMGeoConfig.click_in_backbone`` additionally feeds the full-resolution click map to the
backbone as a 4th input channel (the published code's design, :class:`ClickChannelEmbed`).
"""

from __future__ import annotations

import torch
from torch import nn


def click_map(clicks: torch.Tensor, image_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """DetGeo click map ``[B, 1, h, w]`` sampled at the centres of an ``h x w`` grid.

    clicks: ``[B, 2]`` as (x, y) in query pixels (GDAL-like convention: (0, 0) is the
    top-left corner of the top-left pixel). image_size: query (H, W) in pixels.
    """
    H, W = image_size
    h, w = out_size
    ys = (torch.arange(h, device=clicks.device, dtype=clicks.dtype) + 0.5) * (H / h)
    xs = (torch.arange(w, device=clicks.device, dtype=clicks.dtype) + 0.5) * (W / w)
    dx = xs[None, None, :] - clicks[:, 0, None, None]
    dy = ys[None, :, None] - clicks[:, 1, None, None]
    diag = (H**2 + W**2) ** 0.5
    return ((1 - torch.sqrt(dx**2 + dy**2) / diag).clamp_min(0) ** 2)[:, None]


def moved_clicks(clicks: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """``clicks`` [N, 2] (x, y query pixels) moved half the photo's width and half its height,
    wrapping round its edges: every click lands as far from where it was as the photo allows
    along each axis, on other things."""
    h, w = size_hw
    half = torch.tensor([w / 2, h / 2], dtype=clicks.dtype, device=clicks.device)
    return torch.remainder(clicks + half, 2 * half)


class ClickChannelEmbed(nn.Module):
    """The click map as a 4th input channel: a 4x4/4 patch projection added to the RGB one.

    Zero-initialised, so a pretrained RGB patch embedding is unchanged at the start.
    Output: ``[B, H/4, W/4, E]`` (NHWC, as the backbone's tokens).
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=4, stride=4)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, clicks: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        cmap = click_map(clicks, image_size, image_size)
        return self.proj(cmap).permute(0, 2, 3, 1)


class PromptEncoder(nn.Module):
    """Click + query features -> prompted query features and the query vector of eq. 10.

    forward(query_features ``[B, C, h, w]``, clicks ``[B, 2]`` (x, y query pixels),
    query_size (H, W)) returns the query vector ``[B, C]`` and the pooling weights
    ``[B, 1, h, w]`` (sum to 1; where the model looked in the query).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(1, dim // 4, 1), nn.GELU(), nn.Conv2d(dim // 4, dim, 1))
        nn.init.zeros_(self.dense[2].weight)
        nn.init.zeros_(self.dense[2].bias)
        self.content = nn.Conv2d(dim, 1, 1)  # content term of the pooling logits
        nn.init.zeros_(self.content.weight)
        nn.init.zeros_(self.content.bias)
        # sharpness of the click-centred pooling; 10 puts most weight within ~1/4 diagonal
        self.focus = nn.Parameter(torch.tensor(10.0))

    def forward(
        self, query_features: torch.Tensor, clicks: torch.Tensor, query_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        B, C, h, w = query_features.shape
        cmap = click_map(clicks.to(query_features.dtype), query_size, (h, w))
        prompted = query_features + self.dense(cmap)
        logits = self.focus * cmap + self.content(prompted)
        weights = logits.view(B, 1, h * w).softmax(-1).view(B, 1, h, w)
        return (prompted * weights).sum((2, 3)), weights
