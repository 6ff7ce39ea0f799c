"""Benchmark: locating clicked objects of a real DJI photo on a real orthophoto.

Data: ``../shared/data/real-odm`` (see its README): photo ``100_0005_0136.jpg`` (looking
south) is located on ``reference_0018.tif`` (an orthophoto made from another photo) with the
clicks of ``bench/data/real_odm_clicks.csv`` (road markings, a parked car, roof corner, drain
grates, ...). Truth: the click's ray cast onto the DSM with the camera that made the
orthophoto (OpenSfM rotation, GPS position, in the UTM grid axes:
``camera_from_opensfm(..., grid_crs=...)``, which reproduces the orthophoto from its own
photo to a few hundredths of a pixel); errors against the reconstruction's literal
topocentric pose are reported too (it sits about 3 m off the orthophoto).

Per method: median / p90 centre error in metres, share within 2 / 5 / 10 m, failures, share of
errors inside the stated 90 % uncertainty, seconds per click (first click, then cached), and on how
many places the answers fall against the true points (points within 3 m of each other counted
once): an answer that does not move with the click falls on few; and where SMGeo answered, the
median of how far its answer moves when the click is moved half the photo away.
Writes JSON and a PNG (error CDFs and the located points on the orthophoto).

    python bench/real_imagery.py --data ../shared/data/real-odm --json bench/results/real_imagery.json

``--runs "smgeo only" --checkpoint adapted.safetensors`` does one row with another model.
``--coarsen 0.5 [--tint autumn]`` locates on a satellite-like reference derived from the
orthophoto (box-averaged to 0.5 m pixels, optionally another season's colours) instead.
``--in-mosaic PX`` locates on the orthophoto inside a mosaic PX pixels larger on every side, nodata
around it (a survey in a basemap: the oblique photo's footprint reaches far beyond the survey).
``--dem-offset M`` adds M metres to the DSM's heights (a DSM in another vertical datum).
``--metadata-error "gps=5@30,yaw=8,pitch=-3,alt=20,rtk=off"`` locates a copy of the photo whose
metadata is off as a consumer drone's can be (GPS moved 5 m towards azimuth 30 deg, gimbal yaw
+8 deg, pitch -3 deg, absolute altitude +20 m, the RTK tags removed:
:class:`smgeo_synth.realpairs.MetadataErrors`); the truth stays the accurate camera's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from smgeo_geo.errors import SMGeoError
from smgeo_synth.realpairs import MetadataErrors, with_metadata_errors
from smgeo_synth.realpairs.satellite_like import TINTS, coarse_terrain, in_mosaic, satellite_like

ROOT = Path(__file__).resolve().parents[1]
ANSWER_PLACE_M = 3.0  # answers closer than this count as one place

# (label, method, use the DEM, strip the photo's metadata)
RUNS = [
    ("auto", "auto", True, False),
    ("auto, no DEM", "auto", False, False),
    ("metadata only", "metadata", True, False),
    ("metadata only, no DEM", "metadata", False, False),
    ("registration", "registration", True, False),
    ("registration, no metadata", "registration", False, True),
    ("smgeo only", "smgeo", False, False),
]


def truth_points(data: Path, clicks: list[tuple[float, float]], photo_id: str):
    """(lon, lat) truth per click: orthophoto camera, and the literal topocentric pose."""
    from smgeo_geo.camera import camera_from_opensfm
    from smgeo_geo.terrain import DemTerrain, intersect_rays

    rec = json.loads((data / "reconstruction.json").read_text())[0]
    with DemTerrain(data / "dsm.tif") as dem:
        out = {}
        for name, grid in (("orthophoto_camera", "EPSG:32651"), ("topocentric_pose", None)):
            cam = camera_from_opensfm(rec, photo_id, grid_crs=grid)
            pts, hit = intersect_rays(cam, clicks, dem)
            lon, lat, _ = cam.frame.to_lonlat(pts[:, 0], pts[:, 1], pts[:, 2])
            out[name] = (np.where(hit, lon, np.nan), np.where(hit, lat, np.nan))
    return out


def stripped_copy(photo: Path, folder: Path) -> Path:
    """The photo re-encoded without EXIF / XMP (pixels unchanged in size)."""
    from PIL import Image

    target = folder / f"stripped_{photo.name}"
    with Image.open(photo) as im:
        im.convert("RGB").save(target, quality=95)
    return target


def offset_dem(dem: Path, metres: float, target: Path) -> Path:
    """A copy of ``dem`` with ``metres`` added to every height (nodata kept)."""
    import rasterio

    with rasterio.open(dem) as src:
        profile, heights = src.profile, src.read(1, masked=True)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write((heights + metres).filled(profile.get("nodata", np.nan)), 1)
    return target


def summarise(errors: np.ndarray, uncertainties: np.ndarray, seconds: list[float]) -> dict:
    ok = np.isfinite(errors)
    e = errors[ok]
    out = {"clicks": int(len(errors)), "failures": int((~ok).sum())}
    if e.size:
        out.update(median_m=float(np.median(e)), p90_m=float(np.percentile(e, 90)),
                   within_2m=float(np.mean(errors <= 2)), within_5m=float(np.mean(errors <= 5)),
                   within_10m=float(np.mean(errors <= 10)),
                   inside_uncertainty=float(np.mean(e <= uncertainties[ok])))
    if seconds:
        out.update(first_click_s=round(seconds[0], 3), later_click_s=round(float(np.median(seconds[1:] or seconds)), 3))
    return out


def answer_places(lons, lats, radius_m: float = ANSWER_PLACE_M) -> int:
    """How many places the answers fall on: located points grouped greedily, each within
    ``radius_m`` of its group's first point. As many as the clicks when the answers move with
    them; 1 when every click gets the same answer (a method that does not read the click)."""
    from smgeo_geo.coords import geodesic_distance

    ok = np.isfinite(lons) & np.isfinite(lats)
    lo, la = np.asarray(lons)[ok], np.asarray(lats)[ok]
    seeds: list[int] = []
    for i in range(len(lo)):
        if not seeds or np.all(geodesic_distance(lo[seeds], la[seeds], np.full(len(seeds), lo[i]),
                                                 np.full(len(seeds), la[i])) > radius_m):
            seeds.append(i)
    return len(seeds)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-odm")
    ap.add_argument("--clicks", type=Path, default=ROOT / "bench" / "data" / "real_odm_clicks.csv")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "real_imagery.json")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--coarsen", type=float, default=None, metavar="M",
                    help="locate on a satellite-like reference instead: the orthophoto box-averaged to M-metre pixels")
    ap.add_argument("--tint", choices=TINTS, default="none",
                    help="with --coarsen: also another season's colours (warmer, paler, darker) or haze")
    ap.add_argument("--in-mosaic", type=int, default=None, metavar="PX",
                    help="locate on the reference inside a mosaic PX pixels larger on every side, nodata around it")
    ap.add_argument("--dem-offset", type=float, default=0.0, metavar="M",
                    help="add M metres to the DSM's heights (a DSM in another vertical datum than the photo's "
                         "altitude, e.g. geoid vs ellipsoid); the truth stays on the real DSM")
    ap.add_argument("--dem-coarsen", type=float, default=None, metavar="M",
                    help="locate on the DSM box-averaged to M-metre cells (a 30 m terrain model as users often have "
                         "instead of a DSM); the truth stays on the real DSM")
    ap.add_argument("--metadata-error", default=None, metavar="SPEC",
                    help="locate a copy of the photo with its metadata moved, e.g. 'gps=5@30,yaw=8,pitch=-3,alt=20,"
                         "rtk=off' (GPS metres@azimuth, gimbal degrees, absolute altitude metres, RTK tags removed), "
                         "'drop=GimbalPitchDegree+GimbalYawDegree' (DJI tags removed) or 'xmp=off' (EXIF alone)")
    ap.add_argument("--runs", default=None, metavar="LABELS",
                    help="labels of the runs to do, separated by '/' (default all): " + " / ".join(r[0] for r in RUNS))
    args = ap.parse_args(argv)
    labels = [r[0] for r in RUNS]
    args.runs = labels if args.runs is None else [x.strip() for x in args.runs.split("/") if x.strip()]
    unknown = [x for x in args.runs if x not in labels]
    if unknown or not args.runs:
        ap.error(f"--runs: unknown label(s) {unknown}; choose from {labels}")
    try:
        errors = MetadataErrors.parse(args.metadata_error) if args.metadata_error else None
    except SMGeoError as exc:
        ap.error(str(exc))

    import torch

    torch.set_num_threads(2)
    rows = list(csv.DictReader(open(args.clicks, newline="")))
    photo_name = rows[0]["photo"]
    clicks = [(float(r["click_x"]), float(r["click_y"])) for r in rows]
    truth = truth_points(args.data, clicks, Path(photo_name).stem)
    photo = args.data / "photos" / photo_name
    points: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        reference = args.data / "reference_0018.tif"
        if args.coarsen:
            reference = satellite_like(reference, Path(tmp) / "satellite_like.tif", args.coarsen, args.tint)
        if args.in_mosaic:
            reference = in_mosaic(reference, Path(tmp) / "mosaic.tif", args.in_mosaic)
        args.dem = args.data / "dsm.tif"
        if args.dem_coarsen:
            args.dem = coarse_terrain(args.dem, Path(tmp) / "dem_coarse.tif", args.dem_coarsen)
        if args.dem_offset:
            args.dem = offset_dem(args.dem, args.dem_offset, Path(tmp) / "dsm_offset.tif")
        if errors:
            photo = with_metadata_errors(photo, Path(tmp) / photo.name, errors)
        report = _locate_all(args, reference, rows, clicks, truth, photo, Path(tmp), points)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json} and {args.json.with_suffix('.png')}")
    return report


def _locate_all(args, reference: Path, rows, clicks, truth, photo: Path, tmp: Path, points: dict) -> dict:
    """Every run of ``RUNS`` on ``reference``; prints a line per run and writes the figure."""
    from smgeo_geo.coords import geodesic_distance
    from smgeo_geo.locator import Locator
    from smgeo_geo.raster import open_reference

    report: dict = {"data": str(args.data), "photo": rows[0]["photo"], "reference": reference.name,
                    "checkpoint": args.checkpoint or "bundled",
                    "coarsen_m": args.coarsen, "in_mosaic_px": args.in_mosaic, "tint": args.tint if args.coarsen else None,
                    "dem_offset_m": args.dem_offset, "dem_coarsen_m": args.dem_coarsen, "metadata_error": args.metadata_error, "clicks": len(rows), "truth": "orthophoto_camera (also reported: topocentric_pose)", "runs": {}}
    with open_reference(reference) as raster:
        stripped = stripped_copy(photo, tmp)
        for label, method, use_dem, strip in (r for r in RUNS if r[0] in args.runs):
            locator = Locator(checkpoint=args.checkpoint)
            lons, lats, uncs, secs, moved = [], [], [], [], []
            for click in clicks:
                t0 = time.perf_counter()
                try:
                    det = locator.locate(raster, stripped if strip else photo, click, method=method,
                                         dem=args.dem if use_dem else None)
                    lons.append(det.extra["located_lon"])
                    lats.append(det.extra["located_lat"])
                    uncs.append(det.extra["uncertainty_m"])
                    moved.append(det.extra.get("smgeo_click_moved_answer_m", np.nan))
                except SMGeoError as exc:
                    print(f"  {label}: {exc}", file=sys.stderr)
                    lons.append(np.nan), lats.append(np.nan), uncs.append(np.nan)
                secs.append(time.perf_counter() - t0)
            locator.close()
            lons, lats, uncs = np.array(lons), np.array(lats), np.array(uncs)
            entry = {}
            for name, (tlon, tlat) in truth.items():
                err = np.where(np.isfinite(lons), geodesic_distance(tlon, tlat, np.nan_to_num(lons),
                                                                    np.nan_to_num(lats)), np.nan)
                entry[name] = summarise(err, uncs, secs if name == "orthophoto_camera" else [])
                if name == "orthophoto_camera":
                    entry["errors_m"] = [None if not math.isfinite(v) else round(float(v), 3) for v in err]
                    entry[name]["answer_places"] = answer_places(lons, lats)
                    if np.isfinite(moved).any():  # SMGeo's answer, click moved half the photo away
                        entry[name]["smgeo_click_moved_answer_median_m"] = round(float(np.nanmedian(moved)), 2)
                    entry[name]["true_places"] = answer_places(tlon, tlat)
            report["runs"][label] = entry
            points[label] = np.column_stack([lons, lats])
            s = entry["orthophoto_camera"]
            print(f"{label:28s} median {s.get('median_m', math.nan):7.2f} m  p90 {s.get('p90_m', math.nan):7.2f} m  "
                  f"<=5 m {s.get('within_5m', 0):5.1%}  failures {s['failures']}  "
                  f"first {s.get('first_click_s', 0):.2f} s, then {s.get('later_click_s', 0):.2f} s/click")
        _figure(report, raster, truth["orthophoto_camera"], points, args.json.with_suffix(".png"))
    return report


def _figure(report: dict, raster, truth, points: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rasterio.windows import Window

    from smgeo_geo.coords import lonlat_to_pixel

    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1, 1.2]})
    for label, entry in report["runs"].items():
        e = np.sort([v for v in entry["errors_m"] if v is not None])
        if e.size:
            a.step(e, np.arange(1, e.size + 1) / len(entry["errors_m"]), where="post", label=label)
    a.set_xscale("log")
    a.axvline(5, color="grey", ls=":")
    a.set_xlabel("centre error (m, log scale)")
    a.set_ylabel("share of clicks")
    on = "a real orthophoto" if not report.get("coarsen_m") else (
        f"the orthophoto at {report['coarsen_m']:g} m" + (f", {report['tint']}" if report.get("tint") != "none" else ""))
    if report.get("in_mosaic_px"):
        on += f" in a {raster.width:,} x {raster.height:,} px mosaic"
    a.set_title(f"{report['clicks']} clicks, real DJI photo on {on}")
    a.legend(fontsize=8)
    tx, ty = lonlat_to_pixel(raster.transform, raster.crs, *truth)
    c0, c1 = max(0, int(np.nanmin(tx)) - 120), min(raster.width, int(np.nanmax(tx)) + 120)
    r0, r1 = max(0, int(np.nanmin(ty)) - 80), min(raster.height, int(np.nanmax(ty)) + 80)
    img, _ = raster.read_window(Window(c0, r0, c1 - c0, r1 - r0), (c1 - c0, r1 - r0))
    b.imshow(img, extent=(c0, c1, r1, r0))
    b.plot(tx, ty, "o", mfc="none", mec="yellow", ms=9, label="truth")
    for label, marker in (("auto", "+"), ("metadata only", "x"), ("smgeo only", "1")):
        found = points[label][np.all(np.isfinite(points[label]), axis=1)] if label in points else []
        if len(found):  # (a run whose every click failed has no points)
            px, py = lonlat_to_pixel(raster.transform, raster.crs, found[:, 0], found[:, 1])
            b.plot(px, py, marker, ms=8, label=label)
    b.set_xlim(c0, c1)
    b.set_ylim(r1, r0)
    b.legend(fontsize=8, loc="lower right")
    b.set_title(f"located clicks on the reference ({abs(raster.transform.a):.2g} m pixels)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
