#!/usr/bin/env bash
# Reproduces the bundled demo model (model/weights/smgeo_tiny_synth.*) and its model card
# figures: generated data (seeded), `tiny` config, evaluation on the unseen test split.
# About 40 minutes on 2 CPU cores. Usage: bash scripts/train_demo_model.sh [DATA_ROOT] [RUN_DIR]
set -euo pipefail
DATA=${1:-data}
RUN=${2:-runs/demo_tiny}
EPOCHS=${EPOCHS:-10}
PAIRS=${PAIRS:-2400}
SMGEO=${SMGEO:-.venv/bin/smgeo}
if [ ! -f "$DATA/SYNTH_DroneAerial/SYNTH_DroneAerial_test.pth" ]; then
  $SMGEO synth --out "$DATA" --pairs "$PAIRS" --seed 0 --reference-size 256 --query-size 128 \
    --ground-resolution 1.5
fi
$SMGEO train --data-root "$DATA" --data-name SYNTH_DroneAerial --config tiny --max-epoch "$EPOCHS" \
  --batch-size 8 --lr 1e-3 --warmup-epochs 1 --seed 0 --workers 1 --out "$RUN"
$SMGEO evaluate --data-root "$DATA" --data-name SYNTH_DroneAerial --split test \
  --checkpoint "$RUN/best.safetensors" --json "$RUN/test.json"
"${PYTHON:-.venv/bin/python}" scripts/write_model_card.py "$RUN"
