"""smgeo_model: the SMGeo network (cross-view object geo-localisation with grid-level MoE).

Installed from the repository folder ``model/`` under the package name ``smgeo_model``.

>>> from smgeo_model import build_model
>>> model = build_model("tiny")
>>> out = model(query, clicks, reference)   # query [B,3,h,w], clicks [B,2] (x, y), reference [B,3,H,W]
>>> out["heatmap"].shape                     # [B, 1, H/16, W/16]

The names below are imported on first use, so ``import smgeo_model.fileio`` or
``smgeo_model.errors`` does not import torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "build_model": "build", "count_parameters": "build",
    "bundled_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "load_swin_weights": "checkpoint",
    "read_checkpoint_config": "checkpoint", "save_checkpoint": "checkpoint",
    "CONFIGS": "config", "SMGeoConfig": "config", "ablation_configs": "config", "get_config": "config",
    "decode_boxes": "decode",
    "CheckpointError": "errors", "ConfigError": "errors", "SMGeoModelError": "errors",
    "PredictorStateError": "errors",
    "SMGeoLoss": "loss",
    "box_iou": "metrics", "localization_metrics": "metrics",
    "moved_clicks": "prompt",
    "Prediction": "predictor", "ResizeTransform": "predictor", "SMGeoPredictor": "predictor",
    "QueryEmbedding": "smgeo", "ReferenceEmbedding": "smgeo", "SMGeo": "smgeo",
    "build_targets": "targets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"smgeo_model.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'smgeo_model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
