"""Benchmark: locating on real imagery when the photo's metadata is off as a drone without RTK's,
or lacks part of what a DJI drone writes.

Runs ``bench/real_imagery.py`` (its photo, clicks, orthophoto, DSM and truth) once per scenario
of :data:`SCENARIOS` (``--set errors``) or :data:`GAPS` (``--set gaps``): a copy of the RTK photo
with errors written into its EXIF / DJI XMP, or tags removed
(:class:`smgeo_synth.realpairs.MetadataErrors`: GPS metres@azimuth, gimbal yaw / pitch degrees,
absolute altitude metres, RTK tags removed, DJI tags dropped, XMP removed). Rows: ``auto``,
``auto, no DEM`` and ``metadata only``. Writes one JSON (per scenario and row: median / p90
error, share within 5 m, share inside the stated 90 % radius) and a PNG of the shares within
5 m and inside the radius.

    python bench/metadata_errors.py --json bench/results/real_imagery_metadata_errors.json
    python bench/metadata_errors.py --set gaps --json bench/results/real_imagery_metadata_gaps.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import real_imagery  # noqa: E402

from smgeo_geo.figures import _save  # noqa: E402

# scenarios: none (the RTK photo as it is), then errors of 2-5 sigma of the locator's budget for a
# drone without RTK (GPS 2 m, yaw 3 deg, pitch 1.5 deg, height 5 m) alone and together
SCENARIOS = ["none", "gps=5@45,yaw=5,pitch=2,alt=15,rtk=off", "gps=10@200,rtk=off", "yaw=15,rtk=off",
             "pitch=-5,rtk=off", "alt=40,rtk=off", "yaw=-8,gps=6@300,alt=-12,rtk=off",
             "yaw=90,rtk=off",  # (added later: a compass far off, as beside metal)
             "yaw=-40,rtk=off", "relalt=30,rtk=off"]  # (later still: a compass 40 deg off; the take-off
# point 30 m below the ground photographed, so that DSM + relative altitude and the absolute altitude disagree)
# scenarios of missing metadata: no gimbal angles (the flight heading stays), no camera pitch, no
# relative altitude, no altitude in the XMP, no XMP at all (EXIF GPS, altitude and focal length
# left), and no XMP with a consumer drone's GPS and altitude errors; (added later) no lens model, as
# most drones write none, alone and with a consumer drone's errors (the camera model's lens then
# comes from the lens database), and (later still) from a camera model the database does not know
GAPS = ["drop=GimbalPitchDegree+GimbalYawDegree+GimbalRollDegree", "drop=GimbalPitchDegree",
        "drop=RelativeAltitude", "drop=RelativeAltitude+AbsoluteAltitude", "xmp=off", "xmp=off,gps=5@45,alt=15",
        "drop=DewarpData", "drop=DewarpData,gps=5@45,yaw=5,pitch=2,alt=15,rtk=off", "drop=DewarpData,model=FC0000",
        "drop=DewarpData,model=FC0000,gps=5@45,yaw=5,pitch=2,alt=15,rtk=off"]
SETS = {"errors": SCENARIOS, "gaps": GAPS}
RUNS = ("auto", "auto, no DEM", "metadata only")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "real_imagery_metadata_errors.json")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--set", choices=list(SETS), default="errors", help="metadata errors, or metadata missing")
    args = ap.parse_args(argv)
    report: dict = {"what": __doc__.split("\n\n")[0], "set": args.set, "runs": list(RUNS), "scenarios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in SETS[args.set]:
            print(f"== {spec}")
            argv_one = ["--runs", "/".join(RUNS), "--json", str(Path(tmp) / "one.json")]
            argv_one += ["--metadata-error", spec] if spec != "none" else []
            argv_one += ["--data", str(args.data)] if args.data else []
            one = real_imagery.main(argv_one)
            report["scenarios"][spec] = {run: one["runs"][run]["orthophoto_camera"] for run in RUNS}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    _figure(report, args.json.with_suffix(".png"))
    print(f"wrote {args.json} and {args.json.with_suffix('.png')}")
    return report


def _figure(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    specs = list(report["scenarios"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    width = 0.8 / len(RUNS)
    for ax, key, title in ((axes[0], "within_5m", "share of clicks within 5 m"),
                           (axes[1], "inside_uncertainty", "share of errors inside the stated 90 % radius")):
        for i, run in enumerate(RUNS):
            vals = [report["scenarios"][s][run].get(key, 0.0) for s in specs]
            ax.barh(np.arange(len(specs)) + i * width, vals, width, label=run)
        labels = [s.replace(",rtk=off", "\nno RTK").replace("+", "\n+").replace(",", "\n") for s in specs]
        ax.set_yticks(np.arange(len(specs)) + width, labels, fontsize=7)
        ax.axvline(0.9, color="grey", ls=":")
        ax.set_xlim(0, 1.02)
        ax.set_title(title)
    axes[0].invert_yaxis()  # shared: the first scenario on top
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(RUNS), fontsize=9)
    fig.suptitle("Real DJI photo, metadata " + ("with errors written in" if report.get("set", "errors") == "errors"
                                                 else "with parts removed") + " (27 clicks each)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _save(fig, path)


if __name__ == "__main__":
    main()
