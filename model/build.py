"""Settings become objects here: the one builder of SMGeo networks."""

from __future__ import annotations

import os

from smgeo_model.backbone import SwinMoEBackbone
from smgeo_model.config import SMGeoConfig, get_config
from smgeo_model.fusion import QueryGuidedFusion
from smgeo_model.head import AnchorFreeHead, FeatureNeck
from smgeo_model.prompt import ClickChannelEmbed, PromptEncoder
from smgeo_model.smgeo import SMGeo


def build_model(config: str | SMGeoConfig = "paper", checkpoint: str | os.PathLike | None = None,
                swin_weights: str | os.PathLike | None = None) -> SMGeo:
    """Build an SMGeo network.

    config: ``"paper"``, ``"tiny"`` or an :class:`SMGeoConfig`.
    checkpoint: a project checkpoint (``.safetensors`` + ``.json``) to load; its stored
        config must equal ``config`` (see :func:`smgeo_model.load_checkpoint`).
    swin_weights: a standard Swin-T checkpoint (timm/Microsoft) to initialise the backbone.
    """
    if checkpoint is not None:
        from smgeo_model.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint, config=config)
    cfg = get_config(config)
    dims = cfg.stage_dims()
    model = SMGeo(
        cfg,
        backbone=SwinMoEBackbone(cfg),
        neck=FeatureNeck((dims[2], dims[3]), cfg.neck_dim),
        prompt_encoder=PromptEncoder(cfg.neck_dim),
        fusion=QueryGuidedFusion(cfg.neck_dim, cfg.fusion_groups),
        head=AnchorFreeHead(cfg.neck_dim, cfg.head_dim),
        click_channel=ClickChannelEmbed(cfg.embed_dim) if cfg.click_in_backbone else None,
    )
    if swin_weights is not None:
        from smgeo_model.checkpoint import load_swin_weights

        load_swin_weights(model, swin_weights)
    return model


def count_parameters(model) -> int:
    """Number of parameters (all, trainable or not)."""
    return sum(p.numel() for p in model.parameters())
