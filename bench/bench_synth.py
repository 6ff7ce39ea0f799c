"""Speed of the synthetic-data generator (``smgeo synth``) on this machine, measured in one run.

Times :func:`smgeo_synth.generate_dataset` in this process (imports done first, so their
cost is left out) for two option sets, each with ``workers=1`` and ``workers=2``:

* ``default``: 1024 px satellite tiles, 256 px drone photos (CVOGL sizes);
* ``demo``: 256 px tiles, 128 px photos, 1.5 m/px ground resolution (the demo data).

Reports wall-clock seconds per pair over ``--pairs`` (worker start-up and one-time caches
included), the start-up cost (a run of one pair per worker), the steady rate after it, the
projected time of 2,000 pairs (start-up + 2,000 pairs at the steady rate) and the
workers=2 / workers=1 speed-up. Target: 2,000 default pairs on 2 cores in a few minutes.

    python bench/bench_synth.py --pairs 100 --json bench/results/synth_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from smgeo_synth import generate_dataset

CASES = {
    "default": {"reference_size": 1024, "query_size": 256},
    "demo": {"reference_size": 256, "query_size": 128, "ground_resolution": 1.5},
}


def timed_run(pairs: int, workers: int, options: dict) -> float:
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as out:
        start = time.perf_counter()
        generate_dataset(out, pairs, seed=0, workers=workers, progress=False, **options)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100, help="pairs per setting (at least 4)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    n = args.pairs
    # generate_dataset imports torch for the list files: import it now so that it is not timed
    # (here, not at module level: worker processes re-import this module and need no torch)
    import smgeo_model.data  # noqa: F401
    if n < 4:
        parser.error("--pairs must be at least 4")
    results: dict = {"pairs": n, "cpus": os.cpu_count(), "machine": platform.platform(), "cases": {}}
    for name, options in CASES.items():
        case = {}
        for workers in (1, 2):
            startup = timed_run(workers, workers, options)
            seconds = timed_run(n, workers, options)
            steady = max(seconds - startup, 0.0) / (n - workers)
            case[f"workers{workers}"] = {"seconds": seconds, "s_per_pair": seconds / n, "pairs_per_s": n / seconds,
                                         "startup_s": startup, "steady_s_per_pair": steady,
                                         "projected_2000_s": startup + (2000 - workers) * steady}
        case["speedup_2_vs_1"] = case["workers1"]["seconds"] / case["workers2"]["seconds"]
        results["cases"][name] = case
        for workers in (1, 2):
            r = case[f"workers{workers}"]
            print(f"{name:8s} workers={workers}: {r['s_per_pair']:.3f} s/pair ({r['pairs_per_s']:.2f} pairs/s), "
                  f"start-up {r['startup_s']:.1f} s, then {r['steady_s_per_pair']:.3f} s/pair; "
                  f"2000 pairs ~ {r['projected_2000_s'] / 60:.1f} min")
        print(f"{name:8s} speed-up workers=2 / workers=1: {case['speedup_2_vs_1']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
