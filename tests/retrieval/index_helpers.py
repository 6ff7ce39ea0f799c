"""Inputs for the index / search tests, made in code: a tiny generated corpus, a tiny untrained
retrieval checkpoint (a real model, saved with the project's save function) and a folder of
GeoTIFF tiles and GPS-tagged photos."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

UTM_32N = "EPSG:32632"
TILE_ORIGIN = (500_000.0, 5_200_000.0)  # upper-left corner, metres (about 9 E, 46.95 N)
TILE_GSD = 0.5  # metres per pixel


def make_corpus(folder: Path, places: int = 4, seed: int = 3) -> Path:
    """A small generated corpus (48 px images, 1 drone and 1 ground view per place)."""
    from smgeo_retrieval.corpus import CorpusOptions, generate_corpus

    generate_corpus(folder, CorpusOptions(places, seed, 48, 1, 1, (0.5, 0.25, 0.25)), workers=1, progress=False)
    return folder


def make_checkpoint(path: Path, corpus: Path | None = None, seed: int = 0) -> Path:
    """A tiny untrained retrieval model saved as ``path`` (.safetensors + .json); its vocabulary
    is the corpus' words (or a few words without a corpus)."""
    import torch

    from smgeo_retrieval.checkpoint import save_retrieval_checkpoint
    from smgeo_retrieval.model import build_retrieval_model
    from smgeo_retrieval.text import Tokenizer

    texts = ["a red roof next to a road", "a round pond", "a white church"]
    if corpus is not None:
        from smgeo_retrieval.corpus_io import read_corpus

        _, items = read_corpus(corpus)
        texts += [t for i in items for t in (i.caption, i.query)]
    torch.manual_seed(seed)
    return save_retrieval_checkpoint(build_retrieval_model("tiny", Tokenizer.build(texts)), path)


def write_tile(path: Path, size: int = 64, seed: int = 0, crs: str | None = UTM_32N) -> Path:
    """An RGB uint8 GeoTIFF tile, ``size`` px at 0.5 m in UTM 32N (no georeferencing with crs None)."""
    rgb = np.random.default_rng(seed).integers(0, 256, (3, size, size), dtype=np.uint8)
    kw = {"crs": crs, "transform": Affine(TILE_GSD, 0, TILE_ORIGIN[0], 0, -TILE_GSD, TILE_ORIGIN[1])} if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", **kw) as dst:
            dst.write(rgb)
    return path


def write_photo(path: Path, lon: float | None, lat: float | None, altitude_m: float = 0.0, seed: int = 0) -> Path:
    """A 80x60 JPEG, with EXIF GPS (WGS84 degrees, altitude in metres) unless ``lon`` is None."""
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    if lon is None:
        Image.fromarray(rgb).save(path, format="JPEG")
        return path
    from smgeo_retrieval.corpus.georef import jpeg_with_gps

    path.write_bytes(jpeg_with_gps(rgb, 90, lon, lat, altitude_m))
    return path


def make_image_folder(folder: Path) -> Path:
    """``tiles/a.tif`` (georeferenced), ``tiles/plain.tif`` (not), ``drone.jpg`` (80 m up),
    ``street.jpg`` (1.5 m), ``nogps.jpg`` (no EXIF GPS)."""
    (folder / "tiles").mkdir(parents=True)
    write_tile(folder / "tiles" / "a.tif")
    write_tile(folder / "tiles" / "plain.tif", crs=None, seed=1)
    write_photo(folder / "drone.jpg", 9.01, 46.95, 80.0, seed=2)
    write_photo(folder / "street.jpg", 9.02, 46.96, 1.5, seed=3)
    write_photo(folder / "nogps.jpg", None, None, seed=4)
    return folder
