#!/usr/bin/env bash
# Reproduces the bundled demo model (model/weights/smgeo_tiny_synth.*) and its model card
# figures: generated data (seeded), `tiny` config, three phases, evaluation on the unseen test split
# of phase 2's data (neither phase 2 nor phase 3 trains on it or selects with it).
#   phase 1: from scratch, 10 epochs on 1,920 pairs (seed 0), about 30 min on 2 CPU cores;
#   phase 2: fine-tuned from phase 1's best, 6 epochs on 4,800 new pairs (seed 11), about 70 min;
#   phase 3: fine-tuned from phase 2's best, 2 epochs on 9,500 new pairs (seed 13), about 60 min.
# Usage: bash scripts/train_demo_model.sh [DATA_ROOT] [RUN_DIR]
#   (phase 2 in DATA_ROOT_ft / RUN_DIR_ft, phase 3 in DATA_ROOT_p3 / RUN_DIR_p3)
set -euo pipefail
DATA=${1:-data}
RUN=${2:-runs/demo_tiny}
SMGEO=${SMGEO:-.venv/bin/smgeo}
if [ ! -f "$DATA/SYNTH_DroneAerial/SYNTH_DroneAerial_test.pth" ]; then
  $SMGEO synth --out "$DATA" --pairs 2400 --seed 0 --reference-size 256 --query-size 128 --ground-resolution 1.5
fi
$SMGEO train --data-root "$DATA" --data-name SYNTH_DroneAerial --config tiny --max-epoch 10 \
  --batch-size 8 --lr 1e-3 --warmup-epochs 1 --seed 0 --workers 1 --out "$RUN"
if [ ! -f "${DATA}_ft/SYNTH_DroneAerial/SYNTH_DroneAerial_test.pth" ]; then
  $SMGEO synth --out "${DATA}_ft" --pairs 6000 --seed 11 --reference-size 256 --query-size 128 \
    --ground-resolution 1.5
fi
$SMGEO train --data-root "${DATA}_ft" --data-name SYNTH_DroneAerial --init-checkpoint "$RUN/best.safetensors" \
  --max-epoch 6 --batch-size 8 --lr 5e-4 --warmup-epochs 0.3 --seed 1 --workers 1 --out "${RUN}_ft"
if [ ! -f "${DATA}_p3/SYNTH_DroneAerial/SYNTH_DroneAerial_val.pth" ]; then
  $SMGEO synth --out "${DATA}_p3" --pairs 10000 --seed 13 --reference-size 256 --query-size 128 \
    --ground-resolution 1.5 --splits 0.95,0.05,0 --no-geotiff
fi
$SMGEO train --data-root "${DATA}_p3" --data-name SYNTH_DroneAerial --init-checkpoint "${RUN}_ft/best.safetensors" \
  --max-epoch 2 --batch-size 8 --lr 3e-4 --warmup-epochs 0.1 --seed 2 --workers 1 --out "${RUN}_p3"
# phase 3 is kept if it beats phase 2 on phase 3's validation pairs (new to phase 2);
# the before/after test: phase 2's and phase 3's best on phase 2's unseen test split, same evaluation
$SMGEO evaluate --data-root "${DATA}_p3" --data-name SYNTH_DroneAerial --split val --methods smgeo \
  --checkpoint "${RUN}_ft/best.safetensors" --json "${RUN}_p3/previous_val.json" --no-figures
$SMGEO evaluate --data-root "${DATA}_ft" --data-name SYNTH_DroneAerial --split test \
  --checkpoint "${RUN}_ft/best.safetensors" --json "${RUN}_p3/previous.json" --no-figures
$SMGEO evaluate --data-root "${DATA}_ft" --data-name SYNTH_DroneAerial --split test \
  --checkpoint "${RUN}_p3/best.safetensors" --json "${RUN}_p3/test.json"
"${PYTHON:-.venv/bin/python}" scripts/write_model_card.py "${RUN}_p3" "${DATA}_p3"
