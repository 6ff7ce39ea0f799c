"""Benchmark: what `smgeo adapt` costs on a 1 km^2 area at 0.2 m (5,000 x 5,000 px) on this machine.

A generated town (``tests/realpairs/scenes.write_town``: textured ground, roads, trees, box
buildings with their DSM and footprints) is adapted to with the bundled model, exactly as a user
would run it (``smgeo adapt --reference --dem --footprints --minutes --pairs``); the report gives
the measured seconds of rendering, training and the whole command, the rendering cost per pair,
and the before/after scores on the held-back pairs.

    python bench/bench_adapt.py --minutes 20 --pairs 400 --json bench/results/adapt_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget given to smgeo adapt")
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--size", type=int, default=5000, help="orthophoto pixels a side")
    ap.add_argument("--res", type=float, default=0.2, help="orthophoto metres per pixel")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rendering processes (the CLI's default)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "adapt_cpu.json")
    args = ap.parse_args(argv)

    import torch

    sys.path.insert(0, str(ROOT))
    from smgeo_geo.adapt import AdaptOptions, adapt
    from tests.realpairs.scenes import write_town

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ortho, dsm, footprints = write_town(tmp, size=args.size, res=args.res,
                                            buildings=int(120 * (args.size * args.res / 500) ** 2))
        started = time.perf_counter()
        report = adapt(AdaptOptions(reference=ortho, dem=dsm, footprints=footprints, out=tmp / "run",
                                    minutes=args.minutes, pairs=args.pairs, device="cpu", workers=args.workers),
                       progress=False)
        wall = time.perf_counter() - started
    out = {"area_km2": round((args.size * args.res / 1000) ** 2, 3), "resolution_m": args.res,
           "pixels": f"{args.size} x {args.size}", "pairs": args.pairs, "minutes_budget": args.minutes,
           "render_workers": args.workers,
           "threads": torch.get_num_threads(), "seconds": {**report["seconds"], "wall": round(wall, 1)},
           "render_s_per_pair": round(report["seconds"]["render"] / args.pairs, 3),
           "before": report["before"], "after": report["after"]}
    print(f"{out['area_km2']} km^2 at {args.res} m: render {report['seconds']['render']:.0f} s "
          f"({out['render_s_per_pair']:.2f} s/pair), training {report['seconds']['training']:.0f} s, "
          f"whole command {wall / 60:.1f} min")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}")
    return out


if __name__ == "__main__":
    main()
