"""Digest of the synthetic-data generator's output, to check that a speed-up changed no byte.

The bundled demo model is reproducible only while ``smgeo synth`` writes the same pairs, so
work on the generator's speed must keep its output bit for bit. This renders a fixed set of
pairs (four option sets: CVOGL default sizes, the demo sizes, hard, easy) and records a
SHA-256 prefix of every satellite tile, drone photo and label.

    python scripts/synth_digest.py --write /tmp/before.json     # on the old code
    python scripts/synth_digest.py --check /tmp/before.json     # on the new code: exit 1 on any change

Digests are platform-specific (OpenCV's SIMD paths and the BLAS differ between CPUs): compare
runs on one machine only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
from smgeo_model import fileio

from smgeo_synth.dataset import pair_classes, pair_seed
from smgeo_synth.options import PairOptions
from smgeo_synth.pair import render_pair

CASES = {  # name: (options, pairs)
    "default": ({}, 24),
    "demo": ({"reference_size": 256, "query_size": (128, 128), "ground_resolution": 1.5}, 40),
    "hard": ({"difficulty": "hard", "reference_size": 512, "query_size": (192, 256)}, 8),
    "easy": ({"difficulty": "easy", "reference_size": 512}, 8),
}
SEED = 7


def digests() -> dict[str, list[str]]:
    out = {}
    for name, (kwargs, n) in CASES.items():
        opts = PairOptions(**kwargs).validated()
        classes = pair_classes(SEED, n, opts.class_weights)
        rows = []
        for i in range(n):
            p = render_pair(pair_seed(SEED, i), opts, classes[i])
            labels = repr((p.click, p.box, p.area_m2, p.heading, p.satellite_quality, p.query_quality)).encode()
            rows.append(hashlib.sha256(p.satellite.tobytes() + p.query.tobytes() + labels).hexdigest()[:16])
        out[name] = rows
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", type=Path, help="write the digests to this JSON file")
    what.add_argument("--check", type=Path, help="compare with the digests in this JSON file")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    start = time.perf_counter()
    now = digests()
    print(f"{sum(map(len, now.values()))} pairs in {time.perf_counter() - start:.1f} s")
    if args.write:
        fileio.write_text(args.write, json.dumps(now, indent=1) + "\n")
        return 0
    before = json.loads(args.check.read_text())
    changed = [f"{name}[{i}]" for name in now for i, (a, b) in enumerate(zip(now[name], before.get(name, [])))
               if a != b]
    if changed or any(len(now[k]) != len(before.get(k, [])) for k in now):
        print(f"output changed: {', '.join(changed) or 'different pair counts'}")
        return 1
    print("same bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
