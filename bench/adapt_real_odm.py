"""Benchmark: SMGeo alone on the real photo before and after ``smgeo adapt`` on its orthophoto.

For each seed and recipe (``search``: the default, tiles zoomed to the locator's search scale;
``tile``: ``--tile-scale``; ``search+points``: with ``--match-points``; ``search+10m``: salient
regions of 10 m, ``--region-size 10``, instead of 30 m) it runs ``smgeo adapt``
on ``../shared/data/real-odm`` (``reference_0018.tif`` on ``dsm.tif``) into ``--runs-dir``, then
``bench/real_imagery.py --runs "smgeo only" --checkpoint`` the adapted model (27 real clicks).
A run folder that is already complete is resumed, i.e. only scored again (``smgeo adapt``
reuses its pairs and its spent budget), so the summary can be rebuilt without retraining.
Writes a JSON summary and a PNG (real-click median per run against the bundled model's).

    python bench/adapt_real_odm.py --seeds 0 1 2 --recipes search tile --pairs 800 --minutes 10 \\
        --runs-dir runs/adapt_bench --json bench/results/real_imagery_smgeo_adapted.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"search": {}, "tile": {"search_scale": False}, "search+points": {"match_points": True},
           "search+10m": {"region_size": 10.0}}


def _real_clicks(checkpoint: str | None, data: Path, json_path: Path) -> dict:
    import real_imagery

    argv = ["--data", str(data), "--runs", "smgeo only", "--json", str(json_path)]
    report = real_imagery.main(argv + (["--checkpoint", checkpoint] if checkpoint else []))
    s = report["runs"]["smgeo only"]["orthophoto_camera"]
    return {k: s.get(k) for k in ("median_m", "p90_m", "within_5m", "within_10m", "answer_places", "true_places")}


def _held_back(score: dict | None) -> dict | None:
    if score is None:
        return None
    return {"acc@0.5": score["acc@0.5"], "median_m": score["centre_error"].get("median_m")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-odm")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["search", "tile"])
    ap.add_argument("--pairs", type=int, default=800)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "adapt_real_odm")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "real_imagery_smgeo_adapted.json")
    args = ap.parse_args(argv)

    from smgeo_geo.adapt import AdaptOptions, adapt

    summary: dict = {"what": __doc__.split("\n\n")[0], "data": str(args.data), "pairs": args.pairs,
                     "minutes": args.minutes, "clicks": "bench/data/real_odm_clicks.csv (27)",
                     "before": _real_clicks(None, args.data, args.runs_dir / "bundled_real.json"), "runs": []}
    for recipe in args.recipes:
        for seed in args.seeds:
            out = args.runs_dir / f"{recipe.replace('+', '_')}_seed{seed}"
            opts = AdaptOptions(reference=args.data / "reference_0018.tif", dem=args.data / "dsm.tif", out=out,
                                pairs=args.pairs, minutes=args.minutes, seed=seed, workers=args.workers,
                                **RECIPES[recipe])
            report = adapt(opts, log=lambda m: None, progress=False)
            searched = report.get("searched") or {}
            run = {"recipe": recipe, "seed": seed, "run": str(out), "reference_zoom": report["reference_zoom"],
                   "held_back": {"before": _held_back(report["before"]), "after": _held_back(report["after"]),
                                 "before_at_search_scale": _held_back(searched.get("before")),
                                 "after_at_search_scale": _held_back(searched.get("after"))},
                   "real_clicks": _real_clicks(str(out / "adapted.safetensors"), args.data, out / "real.json")}
            summary["runs"].append(run)
            print(f"{recipe:14s} seed {seed}: real clicks median {run['real_clicks']['median_m']:.1f} m "
                  f"(bundled {summary['before']['median_m']:.1f} m), answers on {run['real_clicks']['answer_places']} places "
                  f"(bundled {summary['before']['answer_places']}, truth {summary['before']['true_places']})")
    summary["median_of_runs_m"] = {r: statistics.median(x["real_clicks"]["median_m"] for x in summary["runs"]
                                                        if x["recipe"] == r) for r in args.recipes}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1) + "\n")
    _figure(summary, args.json.with_suffix(".png"))
    print(f"wrote {args.json} and {args.json.with_suffix('.png')}")
    return summary


def _figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = list(dict.fromkeys(r["recipe"] for r in summary["runs"]))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, recipe in enumerate(recipes):
        runs = [r for r in summary["runs"] if r["recipe"] == recipe]
        ax.scatter([i] * len(runs), [r["real_clicks"]["median_m"] for r in runs], s=40, label=recipe, zorder=3)
        for r in runs:
            ax.annotate(f"seed {r['seed']}", (i, r["real_clicks"]["median_m"]), xytext=(6, -3),
                        textcoords="offset points", fontsize=7)
    ax.axhline(summary["before"]["median_m"], color="grey", ls="--", label="bundled model (before)")
    ax.axhline(5.0, color="green", ls=":", label="target 5 m")
    ax.set_xticks(range(len(recipes)), recipes)
    ax.set_xlim(-0.5, len(recipes) - 0.5)
    ax.set_ylim(0, None)
    ax.set_ylabel("median error, 27 real clicks (m)")
    ax.set_title(f"SMGeo alone after smgeo adapt ({summary['pairs']} pairs, {summary['minutes']:g} min)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
