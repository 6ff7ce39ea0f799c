"""Swin-T backbone shared by the drone query and the satellite reference, with GMoE.

Laid out as in timm's ``swin_transformer.py``: block -> stage -> backbone -> checkpoint
filter. Window attention, shifted windows, relative position bias, patch embedding and
patch merging are timm's own modules; module names equal timm's (``patch_embed``,
``layers.{i}.downsample``, ``layers.{i}.blocks.{j}``) so timm and Microsoft Swin
checkpoints load directly (:func:`filter_swin_checkpoint`).

Input sizes: any height and width that are multiples of 32 (windows are padded as in
timm, attention masks are computed per forward). Windows are always 7x7 with shift 3,
whatever the input size (``always_partition``), so the relative position tables of a
224-pixel Swin-T checkpoint apply unchanged.
"""

from __future__ import annotations

import re

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock
from timm.models.swin_transformer import checkpoint_filter_fn as _timm_filter
from torch import nn

from smgeo_model.config import SMGeoConfig
from smgeo_model.moe import GridMoE, Routing

_NOMINAL_RES = 224  # only used to construct timm blocks; real sizes are dynamic


class SMGeoBlock(SwinTransformerBlock):
    """A Swin block whose MLP may be a :class:`GridMoE`; forward takes the view name."""

    def __init__(self, *args, moe: GridMoE | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if moe is not None:
            self.mlp = moe
        self.is_moe = moe is not None

    def forward(self, x: torch.Tensor, view: str = "reference") -> tuple[torch.Tensor, Routing | None]:  # type: ignore[override]
        """``x``: ``[B, H, W, C]`` tokens -> same shape, plus the GMoE routing (or None)."""
        x = x + self.drop_path1(self._attn(self.norm1(x)))
        if self.is_moe:
            y, routing = self.mlp(self.norm2(x), view)
        else:
            y, routing = self.mlp(self.norm2(x)), None
        return x + self.drop_path2(y), routing


class SMGeoStage(nn.Module):
    """Optional 2x patch merging, then ``depth`` blocks (W-MSA and SW-MSA alternating)."""

    def __init__(self, cfg: SMGeoConfig, stage: int, drop_path: list[float]) -> None:
        super().__init__()
        dims = cfg.stage_dims()
        dim, in_dim = dims[stage], dims[max(stage - 1, 0)]
        self.downsample = PatchMerging(dim=in_dim, out_dim=dim) if stage > 0 else nn.Identity()
        moe_blocks = cfg.moe_blocks(stage)
        res = _NOMINAL_RES // 4 // 2**stage
        blocks = []
        for i in range(cfg.depths[stage]):
            moe = None
            if i in moe_blocks:
                moe = GridMoE(
                    dim,
                    hidden_dim=max(1, int(round(dim * cfg.mlp_ratio * cfg.moe_expert_ratio))),
                    num_experts=cfg.moe_num_experts,
                    top_k=cfg.moe_top_k,
                    grid=cfg.moe_grid,
                    gate_noise=cfg.moe_gate_noise,
                )
            blocks.append(
                SMGeoBlock(
                    dim=dim,
                    input_resolution=(res, res),
                    num_heads=cfg.num_heads[stage],
                    window_size=cfg.window_size,
                    shift_size=0 if i % 2 == 0 else cfg.window_size // 2,
                    always_partition=True,
                    dynamic_mask=True,
                    mlp_ratio=cfg.mlp_ratio,
                    drop_path=drop_path[i],
                    moe=moe,
                )
            )
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, view: str) -> tuple[torch.Tensor, list[Routing]]:
        x = self.downsample(x)
        routings = []
        for block in self.blocks:
            x, routing = block(x, view)
            if routing is not None:
                routings.append(routing)
        return x, routings


class SwinMoEBackbone(nn.Module):
    """Shared Swin encoder. ``forward(images, view)`` returns the stride-16 and stride-32 maps.

    images: ``[B, C_in, H, W]``, normalised (see :class:`smgeo_model.SMGeo`), H and W
    multiples of 32. Returns ``([B, 4*E, H/16, W/16], [B, 8*E, H/32, W/32])`` (NCHW, E =
    embed_dim) and the routing of every GMoE layer in network order.
    """

    def __init__(self, cfg: SMGeoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(
            img_size=_NOMINAL_RES, patch_size=4, in_chans=3, embed_dim=cfg.embed_dim,
            norm_layer=nn.LayerNorm, strict_img_size=False, output_fmt="NHWC",
        )
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()
        starts = [sum(cfg.depths[:i]) for i in range(len(cfg.depths))]
        self.layers = nn.ModuleList(
            SMGeoStage(cfg, i, dpr[starts[i]: starts[i] + d]) for i, d in enumerate(cfg.depths)
        )
        dims = cfg.stage_dims()
        self.norm = nn.LayerNorm(dims[3])  # timm's final norm (on the stride-32 map)
        self.norm_s16 = nn.LayerNorm(dims[2])  # ours, on the stride-16 map
        self.apply(_init_weights)

    def forward(
        self, images: torch.Tensor, view: str, extra_embedding: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[Routing]]:
        """``extra_embedding`` (``[B, H/4, W/4, E]``) is added after the patch embedding."""
        if images.shape[-1] % 32 or images.shape[-2] % 32:
            raise ValueError(f"{view} image size {tuple(images.shape[-2:])} is not a multiple of 32")
        x = self.patch_embed(images)
        if extra_embedding is not None:
            x = x + extra_embedding
        routings: list[Routing] = []
        feats = []
        for layer in self.layers:
            x, r = layer(x, view)
            routings += r
            feats.append(x)
        s16 = self.norm_s16(feats[2]).permute(0, 3, 1, 2)
        s32 = self.norm(feats[3]).permute(0, 3, 1, 2)
        return s16.contiguous(), s32.contiguous(), routings


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# --- checkpoint filter ------------------------------------------------------------------

_MLP_KEY = re.compile(r"^(layers\.\d+\.blocks\.\d+)\.mlp\.(fc[12])\.(weight|bias)$")


def filter_swin_checkpoint(state_dict: dict[str, torch.Tensor], backbone: SwinMoEBackbone) -> dict[str, torch.Tensor]:
    """Map a timm or Microsoft Swin state dict onto ``backbone``.

    Key renaming (Microsoft's downsample-at-stage-end layout, classifier names) and
    relative-position-table resizing are timm's ``checkpoint_filter_fn``. The dense MLP
    of a block that is a GMoE here becomes that block's expert weights (see
    :meth:`GridMoE.expert_weights_from_mlp`); the classifier head is dropped. Pure: the
    backbone is only read. Returns tensors to load with ``strict=False``.
    """
    own_modules = dict(backbone.named_modules())
    # blocks this backbone lacks (another Swin variant) pass through untouched, so the
    # caller reports them instead of timm's filter failing on them
    foreign = {k: v for k, v in state_dict.items()
               if k.endswith("relative_position_bias_table") and k[: -len(".relative_position_bias_table")] not in own_modules}
    sd = _timm_filter({k: v for k, v in state_dict.items() if k not in foreign}, backbone)
    sd.update(foreign)
    dense_mlps: dict[str, dict[str, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.startswith("head."):
            continue
        m = _MLP_KEY.match(k)
        if m and getattr(own_modules.get(m.group(1)), "is_moe", False):
            dense_mlps.setdefault(m.group(1), {})[f"{m.group(2)}.{m.group(3)}"] = v
            continue
        out[k] = v
    for block_name, mlp in dense_mlps.items():
        moe = own_modules[block_name].mlp
        out.update({f"{block_name}.mlp.{k}": v for k, v in moe.expert_weights_from_mlp(mlp).items()})
    return out
