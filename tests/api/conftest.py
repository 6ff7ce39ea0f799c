"""A georeferenced two-object scene, a drone photo of it and a small (untrained) checkpoint."""

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image

from smgeo_model import build_model, save_checkpoint

from ..model.scenes import two_object_pair

UTM_32N = "EPSG:32632"
ORIGIN = (500_000.0, 5_200_000.0)  # upper-left corner, metres
GSD = 0.5  # metres per pixel


def write_geotiff(path, rgb: np.ndarray, transform: Affine, crs: str = UTM_32N) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=rgb.shape[1], height=rgb.shape[0], count=3,
                       dtype="uint8", crs=crs, transform=transform, tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(rgb.transpose(2, 0, 1))


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene")
    ref, query, clicks, boxes = two_object_pair(256, 128)
    to_u8 = lambda t: (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
    transform = Affine(GSD, 0, ORIGIN[0], 0, -GSD, ORIGIN[1])
    write_geotiff(root / "reference.tif", to_u8(ref), transform)
    Image.fromarray(to_u8(query)).save(root / "photo.png")
    torch.manual_seed(0)
    model = build_model("tiny")
    ckpt = save_checkpoint(model, root / "tiny")
    return {"root": root, "reference": root / "reference.tif", "photo": root / "photo.png", "clicks": clicks,
            "boxes": boxes, "transform": transform, "checkpoint": ckpt, "ref_tensor": ref, "query_tensor": query}
