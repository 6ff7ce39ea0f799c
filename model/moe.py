"""Grid-level sparse Mixture-of-Experts (GMoE, paper eqs. 7-9).

The token map of a Swin block (``[B, H, W, C]``) is cut into ``g_h x g_w`` grid cells.
Each cell is routed from its mean-pooled features by a view-specific gate (one for the
drone query, one for the satellite reference; the experts are shared by both views).
The cell keeps its top-k experts with softmax weights renormalised over those k
(eq. 8), and every token of the cell is processed by exactly those experts (eq. 9).

Dispatch is sparse: tokens are gathered per expert and only selected experts run, so
an expert that no cell chose does no work and receives no gradient.

Expert width: a dense Swin MLP has hidden width ``mlp_ratio * C``. An expert here has
``moe_expert_ratio`` of that (0.25 by default, i.e. hidden width C). The paper's parameter
budget (33.57 M with 6 experts vs 29.13 M without MoE) cannot hold six full-width copies
of the MLP (the published code, built so, has 53.5 M); six quarter-width experts in the
paper's placement give 33.3 M. From a pretrained Swin, expert ``i`` is initialised from
slice ``i mod (1/ratio)`` of the MLP's hidden units
(see :meth:`GridMoE.expert_weights_from_mlp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn

VIEWS = ("query", "reference")


@dataclass
class Routing:
    """Routing of one GMoE layer for one view.

    probs: ``[B, g_h, g_w, E]`` full softmax over the experts (for the entropy loss).
    experts: ``[B, g_h, g_w, k]`` indices of the selected experts, best first.
    weights: ``[B, g_h, g_w, k]`` their renormalised weights (sum to 1 over k).
    """

    probs: torch.Tensor
    experts: torch.Tensor
    weights: torch.Tensor


def grid_cells(height: int, width: int, grid: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, int, int]:
    """Cell index (row-major) of every token of an ``height x width`` map.

    The map is cut into ``min(g_h, height) x min(g_w, width)`` cells of (nearly) equal
    size; token row ``i`` falls in cell row ``i * g_h // height``. Returns the flat cell
    index per token ``[height * width]`` and the effective grid ``(g_h, g_w)``.
    """
    gh, gw = min(grid[0], height), min(grid[1], width)
    rows = torch.arange(height, device=device) * gh // height
    cols = torch.arange(width, device=device) * gw // width
    return (rows[:, None] * gw + cols[None, :]).reshape(-1), gh, gw


class GridMoE(nn.Module):
    """Drop-in replacement of a Swin block's MLP: ``[B, H, W, C] -> [B, H, W, C]``."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        num_experts: int,
        top_k: int,
        grid: tuple[int, int],
        gate_noise: float = 0.0,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_experts, self.top_k, self.grid, self.gate_noise = num_experts, top_k, tuple(grid), gate_noise
        self.experts = nn.ModuleList(
            Mlp(in_features=dim, hidden_features=hidden_dim, act_layer=nn.GELU, drop=drop) for _ in range(num_experts)
        )
        self.gates = nn.ModuleDict({view: nn.Linear(dim, num_experts) for view in VIEWS})
        for gate in self.gates.values():
            nn.init.normal_(gate.weight, std=0.02)
            nn.init.zeros_(gate.bias)

    def route(self, x: torch.Tensor, view: str) -> tuple[Routing, torch.Tensor]:
        """Route the cells of ``x`` ``[B, H, W, C]``; also return the per-token cell index."""
        B, H, W, C = x.shape
        cell_of_token, gh, gw = grid_cells(H, W, self.grid, x.device)
        G = gh * gw
        counts = torch.bincount(cell_of_token, minlength=G).to(x.dtype)
        pooled = x.new_zeros(B, G, C).index_add_(1, cell_of_token, x.reshape(B, H * W, C)) / counts[None, :, None]
        logits = self.gates[view](pooled)
        if self.training and self.gate_noise > 0:
            logits = logits + torch.randn_like(logits) * self.gate_noise
        probs = logits.softmax(dim=-1)
        top_logits, experts = logits.topk(self.top_k, dim=-1)
        weights = top_logits.softmax(dim=-1)  # eq. 8: softmax over the selected experts only
        routing = Routing(
            probs=probs.view(B, gh, gw, -1), experts=experts.view(B, gh, gw, -1), weights=weights.view(B, gh, gw, -1)
        )
        return routing, cell_of_token

    def forward(self, x: torch.Tensor, view: str) -> tuple[torch.Tensor, Routing]:
        B, H, W, C = x.shape
        routing, cell_of_token = self.route(x, view)
        G = routing.experts.shape[1] * routing.experts.shape[2]
        # per token: its cell's experts and weights, [B*H*W, k]
        cell_index = (torch.arange(B, device=x.device)[:, None] * G + cell_of_token[None, :]).reshape(-1)
        token_experts = routing.experts.reshape(B * G, -1)[cell_index]
        token_weights = routing.weights.reshape(B * G, -1)[cell_index]
        tokens = x.reshape(B * H * W, C)
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            token_idx, slot = (token_experts == e).nonzero(as_tuple=True)
            if token_idx.numel() == 0:
                continue  # sparse: an unselected expert is never run
            y = expert(tokens[token_idx]) * token_weights[token_idx, slot, None]
            out.index_add_(0, token_idx, y)
        return out.view(B, H, W, C), routing

    def expert_weights_from_mlp(self, mlp: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Expert tensors initialised from a pretrained dense MLP (``fc1: C -> 4C, fc2: 4C -> C``).

        ``mlp`` holds ``fc1.weight, fc1.bias, fc2.weight, fc2.bias``. Expert ``i`` takes
        hidden-unit slice ``i mod n`` of the MLP (``n = 4C / expert hidden width``); its
        ``fc2`` is scaled by ``n``, so that an expert's expected output matches the full
        MLP's (the ``n`` slices partition its hidden sum), and it keeps the full bias.
        Returns a state dict relative to this module (``experts.{i}.fc1.weight`` ...).
        """
        hidden = self.experts[0].fc1.out_features
        n_slices = max(1, mlp["fc1.weight"].shape[0] // hidden)
        out = {}
        for i in range(self.num_experts):
            s = slice((i % n_slices) * hidden, (i % n_slices + 1) * hidden)
            out[f"experts.{i}.fc1.weight"] = mlp["fc1.weight"][s].clone()
            out[f"experts.{i}.fc1.bias"] = mlp["fc1.bias"][s].clone()
            out[f"experts.{i}.fc2.weight"] = mlp["fc2.weight"][:, s] * n_slices
            out[f"experts.{i}.fc2.bias"] = mlp["fc2.bias"].clone()
        return out


def gate_entropy_loss(routings: list[Routing]) -> torch.Tensor:
    """Mean negative gate entropy over all cells of all GMoE layers (eq. 22 without lambda).

    Minimising it raises the entropy of the routing distribution (avoids routing collapse).
    """
    if not routings:
        return torch.zeros(())
    terms = [(r.probs * torch.log(r.probs.clamp_min(1e-9))).sum(-1).mean() for r in routings]
    return torch.stack(terms).mean()


def expert_usage(routing: Routing, num_experts: int) -> torch.Tensor:
    """Fraction of cells whose top-1 expert is each expert, ``[E]`` (for monitoring)."""
    return F.one_hot(routing.experts[..., 0].reshape(-1), num_experts).float().mean(0)
