"""``smgeo demo``: the main job on the bundled default.

Interim version (issue 2): runs the SMGeo network (``tiny`` config) on the bundled sample
pair and prints the predicted box. The georeferenced demo (issue 4) replaces it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_output"),
              show_default=True, help="folder for the demo's outputs")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the (untrained) weights")
def command(out: Path, seed: int) -> None:
    """Run SMGeo on the bundled sample pair and print the predicted box.

    \b
    Example:
      smgeo demo --out demo_output
    """
    import numpy as np
    import torch
    from PIL import Image

    from smgeo_model import SMGeoPredictor, build_model

    sample = resources.files("smgeo_geo") / "data" / "sample"
    meta = json.loads((sample / "sample.json").read_text())
    load = lambda name: torch.from_numpy(np.array(Image.open(sample / name).convert("RGB"))).permute(2, 0, 1) / 255.0  # noqa: E731
    torch.manual_seed(seed)
    predictor = SMGeoPredictor(build_model("tiny"))
    predictor.set_reference(load("reference.png"))
    predictor.set_query(load("query.png"))
    pred = predictor.predict(tuple(meta["click"]), top_k=3)
    out.mkdir(parents=True, exist_ok=True)
    result = {"click": meta["click"], "box": [round(v, 1) for v in pred.box.tolist()], "score": pred.score,
              "candidates": [[round(v, 1) for v in b] for b in pred.boxes.tolist()], "weights": "untrained tiny"}
    (out / "prediction.json").write_text(json.dumps(result, indent=2))
    click.echo(f"query click (x, y) = {meta['click']} -> predicted reference box (x1, y1, x2, y2) = "
               f"{result['box']} px, score {pred.score:.3f} (untrained weights; see README)")
    click.echo(f"wrote {out / 'prediction.json'}")
