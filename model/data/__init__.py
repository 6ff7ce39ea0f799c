"""CVOGL-layout datasets (the benchmark itself, or data generated in its layout).

>>> from smgeo_model.data import CVOGLDataset, read_split
>>> items = read_split("data", "CVOGL_DroneAerial", "test")   # validated list of CVOGLItem
>>> ds = CVOGLDataset("data", "CVOGL_DroneAerial", "train", reference_size=1024, query_size=256)
>>> ds[0]["query"].shape, ds[0]["box"]                         # [3,256,256], xyxy satellite px
"""

from smgeo_model.data.cvogl import (
    SPLITS,
    CVOGLDataset,
    CVOGLItem,
    DatasetError,
    list_path,
    load_list,
    load_rgb,
    read_split,
    satellite_georef,
    write_split,
)

__all__ = [
    "SPLITS", "CVOGLDataset", "CVOGLItem", "DatasetError", "list_path", "load_list", "load_rgb", "read_split",
    "satellite_georef", "write_split",
]
