"""Training and evaluation loops of the SMGeo network (paper section IV.A).

:func:`train` runs the paper's recipe (Adam, warm-up + cosine, batch 8, random scale /
flip / box-safe crop, DropPath) on any dataset that yields CVOGL-style samples, on CPU, one
GPU or several GPUs with DDP (launched by ``torchrun``), checkpointing every epoch and
resuming to the same result.
"""

from smgeo_model.train.augment import PairAugment
from smgeo_model.train.loop import TrainOptions, TrainResult, predict_dataset, train

__all__ = ["PairAugment", "TrainOptions", "TrainResult", "predict_dataset", "train"]
