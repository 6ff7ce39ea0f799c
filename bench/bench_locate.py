"""Benchmark: what ``auto`` (metadata + registration + SMGeo) costs beside SMGeo alone.

In one run, on the same 1024-pixel window of the real orthophoto (``../shared/data/real-odm``)
and the same real DJI photo and click, with the DSM:

* ``smgeo``: ``Locator.locate(method="smgeo")``, fresh (photo and window encoded);
* ``auto``: ``Locator.locate(method="auto")``, fresh (metadata camera, footprint,
  rectification, features, PnP, SMGeo in a window around the estimate);
* ``auto`` without the DSM (flat ground at the take-off height: local maps instead of a pose);
* the same for a second click on the same photo (cached encodings / registration);

for the bundled model (``tiny``, 256-pixel input) and for the ``paper`` configuration (1024-pixel
input; random weights, same cost). Median of ``--repeats`` runs each; ratios auto / smgeo of the
wall-clock time (what the user waits: ``auto`` runs SMGeo beside registration when the window is
the user's) and of the process's CPU time (what it costs the machine, all threads).

    python bench/bench_locate.py --json bench/results/locate_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLICKS = [(301.7, 807.3), (431.3, 835.0)]


def run(checkpoint, data: Path, repeats: int) -> dict:
    from smgeo_geo.locator import Locator
    from smgeo_geo.raster import open_reference
    from smgeo_geo.windows import WindowSpec

    photo, dem = data / "photos" / "100_0005_0136.jpg", data / "dsm.tif"
    runs = {"smgeo": ("smgeo", dem), "auto": ("auto", dem), "auto_no_dem": ("auto", None)}
    times: dict[str, list[float]] = {k: [] for name in runs for k in (name, f"{name}_next_click")}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    with open_reference(data / "reference_0018.tif") as raster:
        x0, y1 = raster.transform @ (0, 400)
        x1, y0 = raster.transform @ (raster.width, 1424)
        window = WindowSpec("bounds", bounds=(x0, y0, x1, y1), bounds_crs=raster.crs.to_string())
        warm = Locator(checkpoint=checkpoint)
        warm.predictor  # model loading is not timed
        for _ in range(repeats):
            for name, (method, terrain) in runs.items():
                loc = Locator(predictor=warm.predictor)
                warm.predictor._cache.clear()
                t0, c0 = time.perf_counter(), time.process_time()
                loc.locate(raster, photo, CLICKS[0], method=method, window=window, dem=terrain)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                t0 = time.perf_counter()
                loc.locate(raster, photo, CLICKS[1], method=method, window=window, dem=terrain)
                times[f"{name}_next_click"].append(time.perf_counter() - t0)
                loc.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {"seconds": {k: round(v, 4) for k, v in med.items()},
            "cpu_seconds": {k: round(v, 4) for k, v in med_cpu.items()},
            "auto_over_smgeo_cpu": round(med_cpu["auto"] / med_cpu["smgeo"], 3),
            "auto_over_smgeo": round(med["auto"] / med["smgeo"], 3),
            "auto_no_dem_over_smgeo": round(med["auto_no_dem"] / med["smgeo"], 3),
            "auto_next_click_over_smgeo": round(med["auto_next_click"] / med["smgeo"], 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-odm")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "locate_cpu.json")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from smgeo_model import build_model, save_checkpoint

    torch.set_num_threads(2)
    report = {"window": "971 x 1024 px of reference_0018.tif (0.2 m)", "repeats": args.repeats,
              "threads": torch.get_num_threads(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paper = save_checkpoint(build_model("paper").eval(), Path(tmp) / "paper_random")
        for name, ckpt in (("bundled tiny", None), ("paper config", paper)):
            report["models"][name] = run(ckpt, args.data, args.repeats)
            r = report["models"][name]
            print(f"{name:14s} smgeo {r['seconds']['smgeo']:.3f} s  auto {r['seconds']['auto']:.3f} s  "
                  f"ratio {r['auto_over_smgeo']:.2f} (CPU time {r['auto_over_smgeo_cpu']:.2f})  (next click: auto {r['seconds']['auto_next_click']:.3f} s; "
                  f"without the DSM: auto {r['seconds']['auto_no_dem']:.3f} s, ratio {r['auto_no_dem_over_smgeo']:.2f})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
