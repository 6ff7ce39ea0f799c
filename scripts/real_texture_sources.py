"""Real rasters for the bundled model's real-texture pairs, from packages on the package index.

Neither is the shared real set's area (Taiwan) nor anything the benchmarks evaluate on:

* ``atlanta_pan_0.5m.tif`` + ``atlanta_buildings.geojson``: a 900 x 900 px, 0.5 m panchromatic
  satellite image of a suburb of Atlanta, GA (WorldView-2, SpaceNet 4 "off-nadir" data, EPSG:32616,
  uint16) and its 43 building footprints (OpenStreetMap-derived SpaceNet labels), as shipped in
  ``solaris==0.2.1`` (``solaris/data/sample_geotiff.tif``, ``geotiff_labels.geojson``). Solaris is
  Apache-2.0; SpaceNet imagery and labels are CC BY-SA 4.0 (SpaceNet on AWS).
* ``yellowstone_rgb_0.1m.tif`` and ``yellowstone_rgb_0.1m_b.tif``: two crops (2,299 x 2,472 and
  1,249 x 1,035 px, 0.1 m) of NEON's airborne RGB orthophoto tiles of Yellowstone (site YELL, 2019:
  conifers, meadow, dead trees) as shipped in ``deepforest==2.1.0``
  (``deepforest/data/2019_YELL_2_*_image_crop*.png``; DeepForest is MIT, NEON data CC BY 4.0). The
  PNGs carry no georeferencing: each is placed at the north-west corner of the 1 km NEON tile its
  name gives (EPSG:32612), which is only approximately where it lies; only its texture is used.

    python scripts/real_texture_sources.py OUT_DIR [--cache DIR]

Downloads the two packages' files with pip (``pip download --no-deps``; no install) unless
``--cache`` already holds them, and writes the rasters and footprints to ``OUT_DIR``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image

SOLARIS = "solaris==0.2.1"
DEEPFOREST = "deepforest==2.1.0"
NEON_GSD_M = 0.1
YELLOWSTONE = {  # member name suffix -> output name, NEON tile (easting, northing of its south-west corner)
    "2019_YELL_2_528000_4978000_image_crop2.png": ("yellowstone_rgb_0.1m.tif", (528000, 4978000)),
    "2019_YELL_2_541000_4977000_image_crop.png": ("yellowstone_rgb_0.1m_b.tif", (541000, 4977000)),
}


def _download(spec: str, cache: Path, no_binary: bool) -> Path:
    name = spec.split("==")[0]
    found = sorted(cache.glob(f"{name}-*"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), spec]
        if no_binary:
            cmd[4:4] = ["--no-binary", ":all:"]
        subprocess.run(cmd, check=True)
        found = sorted(cache.glob(f"{name}-*"))
    return found[-1]


def atlanta(wheel: Path, out: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        (out / "atlanta_pan_0.5m.tif").write_bytes(z.read("solaris/data/sample_geotiff.tif"))
        (out / "atlanta_buildings.geojson").write_bytes(z.read("solaris/data/geotiff_labels.geojson"))


def yellowstone(sdist: Path, out: Path) -> None:
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers()}
        for member, (name, (east, north)) in YELLOWSTONE.items():
            rgb = np.asarray(Image.open(tar.extractfile(members[member])).convert("RGB"))
            h, w = rgb.shape[:2]
            top = north + 1000.0  # the 1 km tile's north edge
            profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:32612",
                           transform=Affine(NEON_GSD_M, 0, east, 0, -NEON_GSD_M, top), compress="deflate")
            with rasterio.open(out / name, "w", **profile) as dst:
                dst.write(rgb.transpose(2, 0, 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cache", type=Path, default=None, help="folder for the downloaded packages [OUT/packages]")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / "packages"
    cache.mkdir(parents=True, exist_ok=True)
    atlanta(_download(SOLARIS, cache, no_binary=False), args.out)
    yellowstone(_download(DEEPFOREST, cache, no_binary=True), args.out)
    for f in sorted(args.out.glob("*.tif")) + sorted(args.out.glob("*.geojson")):
        print(f)


if __name__ == "__main__":
    main()
