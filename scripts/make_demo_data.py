"""Make the demo bundle in smgeo_geo/data/demo/ from a generated pair nobody trained on.

Generates pairs with a seed the demo model's data did not use (777), takes the first pair
(no choice by model outcome) and copies its satellite GeoTIFF and drone photo, with the
click and the true footprint, into the package.

    .venv/bin/python scripts/make_demo_data.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from smgeo_model import fileio

OUT = Path(__file__).resolve().parents[1] / "smgeo_geo" / "data" / "demo"
NAME = "SYNTH_DroneAerial"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "smgeo_geo.cli", "synth", "--out", tmp, "--pairs", "1", "--seed", "777",
                        "--reference-size", "256", "--query-size", "128", "--ground-resolution", "1.5",
                        "--splits", "1,0,0"], check=True)
        root = Path(tmp) / NAME
        item = torch.load(root / f"{NAME}_train.pth", weights_only=True)[0]
        OUT.mkdir(parents=True, exist_ok=True)
        sat = root / "satellite" / item[2]
        shutil.copy(sat.with_suffix(".tif"), OUT / "satellite.tif")
        shutil.copy(root / "query" / item[1], OUT / "drone_photo.jpg")
        meta = {"reference": "satellite.tif", "query": "drone_photo.jpg", "click": [float(v) for v in item[4]],
                "true_pixel_box": [float(v) for v in item[5]], "class_name": item[7],
                "source": f"smgeo synth --seed 777 --pairs 1 (tile {item[2]}), not seen in training"}
        fileio.write_text(OUT / "demo.json", json.dumps(meta, indent=2))
        print(f"wrote {OUT}: {meta}")


if __name__ == "__main__":
    main()
