"""Write model/weights/MODEL_CARD.md from a training run and its test evaluation.

    .venv/bin/python scripts/write_model_card.py runs/demo_tiny
Copies RUN/best.{safetensors,json} to model/weights/smgeo_tiny_synth.* and the figures.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from smgeo_model import fileio

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "model" / "weights"


def main(run: Path) -> None:
    report = json.loads((run / "test.json").read_text())
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    best = json.loads((run / "best.json").read_text())["metadata"]
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "best.safetensors", WEIGHTS / "smgeo_tiny_synth.safetensors")
    shutil.copy(run / "best.json", WEIGHTS / "smgeo_tiny_synth.json")
    for suffix in ("_bars.png", "_heatmaps.png", "_experts.png"):
        src = run / f"test{suffix}"
        if src.is_file():
            shutil.copy(src, WEIGHTS / f"card{suffix}")
    rows = "\n".join(
        f"| {e['epoch']} | {e['train_loss']:.3f} | {100 * e.get('val_acc@0.25', 0):.1f} | "
        f"{100 * e.get('val_acc@0.5', 0):.1f} | {100 * e.get('val_mIoU', 0):.1f} | {e['seconds']:.0f} |" for e in epochs)
    table = (run / "test.md").read_text()
    data = report["data"]
    manifest = json.loads((Path(data["root"]) / data["name"] / "manifest.json").read_text())
    opts, counts = manifest["options"], manifest["counts"]
    synth_cmd = (f"smgeo synth --out data_ft --pairs {manifest['pairs']} --seed {manifest['seed']} "
                 f"--reference-size {opts['reference_size']} --query-size {opts['query_size'][0]} "
                 f"--ground-resolution {opts['ground_resolution_m']:g}")
    train_opts = json.loads((run / "last.json").read_text())["metadata"]["options"]
    stopped = "" if len(epochs) >= train_opts["epochs"] else f", stopped for time after {len(epochs)}"
    before = ""
    if (run / "previous.json").is_file():  # phase 1's model on the same split, same evaluation
        prev = json.loads((run / "previous.json").read_text())["methods"]["smgeo"]
        now = report["methods"]["smgeo"]
        before = (f" On it phase 1's model scored acc@0.5 {100 * prev['acc@0.5']:.2f} %, mIoU "
                  f"{100 * prev['mIoU']:.2f} %; phase 2 took it to {100 * now['acc@0.5']:.2f} % and "
                  f"{100 * now['mIoU']:.2f} %.")
    card = f"""# Model card: smgeo_tiny_synth (bundled demo model)

**What**: the SMGeo network in its `tiny` configuration (2.39 M parameters: Swin embed 32,
depths 2-2-2-2, GMoE with 4 experts top-2 in the even blocks of stages 1-3, 4 fusion groups),
trained from scratch (no pretrained backbone: none can be downloaded here) on synthetic data
made by `smgeo synth`. Input: satellite 256 x 256 px (1.5 m/px, 384 m across), drone photo
128 x 128 px. It is a demonstration model for this repository's demo, tests and plugin, not a
model for real imagery.

**Training**, two phases, seeded (`bash scripts/train_demo_model.sh data runs/demo_tiny`, then
`python scripts/write_model_card.py runs/demo_tiny_ft`):

1. from scratch: `smgeo synth --out data --pairs 2400 --seed 0 --reference-size 256 --query-size 128
   --ground-resolution 1.5` (1,920 train / 240 val pairs), Adam lr 1e-3, 1 warm-up epoch then
   cosine, batch 8, 10 epochs, augmentation on (27 min on 2 CPU cores; the bundled model until
   2026-12-01: test acc@0.5 17.1 % on its own test split);
2. fine-tuned from phase 1's best on new scenes: `{synth_cmd}`
   -> {counts['train']:,} train / {counts['val']:,} val / {counts['test']:,} test pairs; Adam lr
   {train_opts['lr']:g}, {train_opts['warmup_epochs']:g} warm-up epoch then cosine, batch
   {train_opts['batch_size']}, {train_opts['epochs']} epochs{stopped} ({sum(e['seconds'] for e in epochs) / 60:.0f} min on 2 CPU
   cores, shared).
   Best validation epoch: {best['epoch']} (val acc@0.5 {100 * best['val']['acc@0.5']:.1f} %).

The test split below (phase 2's) was never used for training or model selection; its scenes
are new to both phases.{before}

## Test split ({data['pairs']} pairs, measured by `smgeo evaluate` in one run)

{table}
Methods: `smgeo` this model; `centre_prior` a box of the training split's mean size at the tile
centre; `shuffled_query` this model with every reference paired with another pair's photo and
click; `classical` SIFT + MAGSAC homography from photo to tile (failures count as IoU 0;
{report['methods'].get('classical', {}).get('failures', '-')} of {data['pairs']} pairs failed).
Percentages; centre error is the distance between predicted and true box centres on the ground.

![per class and scale](card_bars.png)
![heatmaps](card_heatmaps.png)
![experts](card_experts.png)

## Training log (validation split)

| epoch | train loss | val acc@0.25 | val acc@0.5 | val mIoU | seconds |
|---|---|---|---|---|---|
{rows}
"""
    fileio.write_text(WEIGHTS / "MODEL_CARD.md", card)
    print(f"wrote {WEIGHTS / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
