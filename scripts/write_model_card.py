"""Write model/weights/MODEL_CARD.md from the last training phase and its test evaluation.

    .venv/bin/python scripts/write_model_card.py runs/demo_tiny_p3 data_p3
RUN: the last phase's run folder (best.*, last.json, metrics.jsonl, test.json: the test split of
phase 2's data; previous.json: phase 2's model on the same split; previous_val.json, optional: phase 2's model on
RUN's validation split, which decides whether the new phase is bundled). DATA: the data root RUN
trained on (its manifest gives the synth command). Phases 1 and 2 are described as measured
when they ran (scripts/train_demo_model.sh). Copies RUN/best.{safetensors,json} to
model/weights/smgeo_tiny_synth.* and the figures.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from smgeo_model import fileio

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "model" / "weights"


def main(run: Path, data_root: Path) -> None:
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
    manifest = json.loads((data_root / data["name"] / "manifest.json").read_text())
    opts, counts = manifest["options"], manifest["counts"]
    synth_cmd = (f"smgeo synth --out data_p3 --pairs {manifest['pairs']} --seed {manifest['seed']} "
                 f"--reference-size {opts['reference_size']} --query-size {opts['query_size'][0]} "
                 f"--ground-resolution {opts['ground_resolution_m']:g} --splits {','.join(f'{v:g}' for v in opts['splits'])}"
                 + ("" if opts.get("geotiff", True) else " --no-geotiff"))
    train_opts = json.loads((run / "last.json").read_text())["metadata"]["options"]
    stopped = "" if len(epochs) >= train_opts["epochs"] else f", stopped for time after {len(epochs)}"
    before = ""
    best_line = f"Best validation epoch: {best['epoch']} (val acc@0.5 {100 * best['val']['acc@0.5']:.1f} %)."
    if (run / "previous.json").is_file():  # phase 2's model on the same split, same evaluation
        prev = json.loads((run / "previous.json").read_text())["methods"]["smgeo"]
        now = report["methods"]["smgeo"]
        before = (f" On it phase 1's model scored acc@0.5 14.83 %, mIoU 14.55 %; phase 2's "
                  f"{100 * prev['acc@0.5']:.2f} % and {100 * prev['mIoU']:.2f} %; phase 3 took it to "
                  f"{100 * now['acc@0.5']:.2f} % and {100 * now['mIoU']:.2f} %.")
    if (run / "previous_val.json").is_file():
        prev_val = json.loads((run / "previous_val.json").read_text())["methods"]["smgeo"]["acc@0.5"]
        verdict = "higher" if best["val"]["acc@0.5"] > prev_val else "not higher"
        best_line += (f" Phase 2's model on the same validation pairs (new to it): {100 * prev_val:.1f} %: "
                      f"phase 3 scores {verdict} there.")
    card = f"""# Model card: smgeo_tiny_synth (bundled demo model)

**What**: the SMGeo network in its `tiny` configuration (2.39 M parameters: Swin embed 32,
depths 2-2-2-2, GMoE with 4 experts top-2 in the even blocks of stages 1-3, 4 fusion groups),
trained from scratch (no pretrained backbone: none can be downloaded here) on synthetic data
made by `smgeo synth`. Input: satellite 256 x 256 px (1.5 m/px, 384 m across), drone photo
128 x 128 px. It is a demonstration model for this repository's demo, tests and plugin, not a
model for real imagery.

**Training**, three phases, seeded (`bash scripts/train_demo_model.sh data runs/demo_tiny` runs
them all, evaluates and calls `python scripts/write_model_card.py runs/demo_tiny_p3 data_p3`):

1. from scratch: `smgeo synth --out data --pairs 2400 --seed 0 --reference-size 256 --query-size 128
   --ground-resolution 1.5` (1,920 train / 240 val pairs), Adam lr 1e-3, 1 warm-up epoch then
   cosine, batch 8, 10 epochs, augmentation on (27 min on 2 CPU cores; the bundled model until
   2026-12-01: test acc@0.5 17.1 % on its own test split);
2. fine-tuned from phase 1's best on new scenes: `smgeo synth --out data_ft --pairs 6000 --seed 11
   --reference-size 256 --query-size 128 --ground-resolution 1.5` -> 4,800 train / 600 val /
   600 test pairs; Adam lr 5e-4, 0.3 warm-up epoch then cosine, batch 8, 6 epochs planned,
   stopped for time after 5 (57 min on 2 CPU cores); best validation epoch 4 (val acc@0.5
   22.3 %); the bundled model of 2026-12-01;
3. fine-tuned from phase 2's best on new scenes: `{synth_cmd}`
   -> {counts['train']:,} train / {counts['val']:,} val pairs; Adam lr
   {train_opts['lr']:g}, {train_opts['warmup_epochs']:g} warm-up epoch then cosine, batch
   {train_opts['batch_size']}, {train_opts['epochs']} epochs{stopped} ({sum(e['seconds'] for e in epochs) / 60:.0f} min on 2 CPU
   cores). {best_line}

The test split below (phase 2's data, seed 11) was never used for training or model selection;
its scenes are new to all three phases.{before}

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

## Training log of phase 3 (its validation split)

| epoch | train loss | val acc@0.25 | val acc@0.5 | val mIoU | seconds |
|---|---|---|---|---|---|
{rows}
"""
    fileio.write_text(WEIGHTS / "MODEL_CARD.md", card)
    print(f"wrote {WEIGHTS / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
