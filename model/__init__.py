"""smgeo_model: the SMGeo network (cross-view object geo-localisation with grid-level MoE).

Installed from the repository folder ``model/`` under the package name ``smgeo_model``.

>>> from smgeo_model import build_model
>>> model = build_model("tiny")
>>> out = model(query, clicks, reference)   # query [B,3,h,w], clicks [B,2] (x, y), reference [B,3,H,W]
>>> out["heatmap"].shape                     # [B, 1, H/16, W/16]
"""

from smgeo_model.build import build_model, count_parameters
from smgeo_model.checkpoint import bundled_checkpoint, load_checkpoint, load_swin_weights, read_checkpoint_config, save_checkpoint
from smgeo_model.config import CONFIGS, SMGeoConfig, ablation_configs, get_config
from smgeo_model.decode import decode_boxes
from smgeo_model.errors import CheckpointError, ConfigError, SMGeoModelError
from smgeo_model.loss import SMGeoLoss
from smgeo_model.metrics import box_iou, localization_metrics
from smgeo_model.predictor import Prediction, PredictorStateError, ResizeTransform, SMGeoPredictor
from smgeo_model.smgeo import QueryEmbedding, ReferenceEmbedding, SMGeo
from smgeo_model.targets import build_targets

__all__ = [
    "CONFIGS", "CheckpointError", "ConfigError", "Prediction", "PredictorStateError", "QueryEmbedding",
    "ReferenceEmbedding", "ResizeTransform", "bundled_checkpoint", "SMGeo", "SMGeoConfig", "SMGeoLoss", "SMGeoModelError",
    "SMGeoPredictor", "ablation_configs", "box_iou", "build_model", "build_targets", "count_parameters",
    "decode_boxes", "get_config", "load_checkpoint", "load_swin_weights", "localization_metrics",
    "read_checkpoint_config", "save_checkpoint",
]
