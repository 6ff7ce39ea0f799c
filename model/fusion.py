"""Query-guided cross-view fusion (paper eq. 10, Fig. 7).

``A = sigmoid(q . F_r(i, j))``: the pooled query vector ``q`` is compared with the
reference feature at every location, and the resulting map weights the reference
features. With ``groups > 1`` the channels are split into groups, each with its own map
(``groups = 1`` is eq. 10 exactly). The dot product is scaled by ``1/sqrt(channels)``
and a learnable per-group scale and bias (initialised 1 and 0) set its temperature.
"""

from __future__ import annotations

import torch
from torch import nn


class QueryGuidedFusion(nn.Module):
    def __init__(self, dim: int, groups: int = 1) -> None:
        super().__init__()
        self.groups = groups
        self.logit_scale = nn.Parameter(torch.ones(groups))
        self.logit_bias = nn.Parameter(torch.zeros(groups))

    def forward(self, reference: torch.Tensor, query_vector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """reference ``[B, C, H, W]``, query_vector ``[B, C]`` -> fused ``[B, C, H, W]``, A ``[B, G, H, W]``."""
        B, C, H, W = reference.shape
        g, c = self.groups, C // self.groups
        ref = reference.view(B, g, c, H, W)
        sim = torch.einsum("bgchw,bgc->bghw", ref, query_vector.view(B, g, c)) / c**0.5
        attention = torch.sigmoid(self.logit_scale.view(1, g, 1, 1) * sim + self.logit_bias.view(1, g, 1, 1))
        return (ref * attention[:, :, None]).view(B, C, H, W), attention
