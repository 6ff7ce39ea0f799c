"""Benchmark: what limits SMGeo alone on the real photo (issue 12's real-data target, median <= 5 m).

Data and truth as ``bench/real_imagery.py`` (``../shared/data/real-odm``, photo 0136 located on
``reference_0018.tif``, the 27 clicks of ``bench/data/real_odm_clicks.csv``). For one checkpoint:

* ``search``: SMGeo as the locator runs it (``method="smgeo"``: the photo's GPS footprint window
  read at the model's input size), with the ground size of one heatmap cell there and of one
  query feature cell (the click map is read on the query's stride-16 cells);
* ``refined S m, top K``: a second pass in a window of S metres around each of the first pass's
  K best boxes, the highest score answering (coarse to fine, the model's own scores deciding);
* ``query crop F``: the photo cropped to F of its width and height around each click (the
  click's things a larger share of the query, as in training), same window;
* ``query N px`` / ``reference N px``: the same checkpoint asked with a larger input side
  (its config's ``query_size`` / ``reference_size``; the weights do not depend on them), no
  retraining: finer cells, other scales than it learnt.

Per variant: median / p90 centre error (m), share within 5 / 10 m, on how many places the answers
fall (3 m apart; the true points fall on ``true_places``). Writes JSON.

    python bench/smgeo_real_limits.py --checkpoint runs/adapt_real_odm/search_seed1/adapted.safetensors \\
        --json bench/results/smgeo_real_limits_adapted_seed1.json
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUERY_STRIDE = 16  # query pixels per feature cell of the tiny / paper Swin (patch 4, three merges)


def _summary(truth, lons, lats) -> dict:
    from real_imagery import answer_places

    from smgeo_geo.coords import geodesic_distance

    err = geodesic_distance(truth[0], truth[1], np.asarray(lons), np.asarray(lats))
    return {"median_m": round(float(np.median(err)), 2), "p90_m": round(float(np.percentile(err, 90)), 2),
            "within_5m": round(float(np.mean(err <= 5)), 3), "within_10m": round(float(np.mean(err <= 10)), 3),
            "answer_places": answer_places(lons, lats), "true_places": answer_places(*truth)}


def _resized_copy(checkpoint: Path, folder: Path, field: str, side: int) -> Path:
    """A copy of ``checkpoint`` whose config asks for ``side`` px inputs (the weights do not depend
    on them), written through the project's checkpoint I/O."""
    from dataclasses import replace

    from smgeo_model import load_checkpoint, save_checkpoint

    model = load_checkpoint(checkpoint, device="cpu")
    model.config = replace(model.config, **{field: (side, side)})
    return save_checkpoint(model, folder / f"{field}_{side}")


def _located(checkpoint, raster, photo: Path, clicks, sides_m=(), top_k=(1,)):
    """First-pass answers (lon, lat), the cells' ground sizes, and each refinement's answers."""
    from rasterio.windows import Window

    from smgeo_geo.locator import Locator

    locator = Locator(checkpoint=checkpoint)
    first, cells = [], []
    for click in clicks:
        det = locator.locate(raster, photo, click, method="smgeo", top_k=max(top_k))
        first.append(det)
        p = locator.predictor
        heat = p.last_heatmap[0]
        cells.append(raster.pixel_size_m * p.reference.window.width / heat.shape[1])
    refined = {}
    for side_m in sides_m:
        side = round(side_m / raster.pixel_size_m)
        for k in top_k:
            pts = []
            for click, det in zip(clicks, first):
                best = None
                for cand in [det, *det.candidates][:k]:
                    x0, y0, x1, y1 = cand.pixel_box
                    c0 = int(np.clip(round((x0 + x1 - side) / 2), 0, max(0, raster.width - side)))
                    r0 = int(np.clip(round((y0 + y1 - side) / 2), 0, max(0, raster.height - side)))
                    p = locator.predictor
                    p.set_reference(raster, Window(c0, r0, min(side, raster.width - c0), min(side, raster.height - r0)))
                    found = p.locate(click, 1)
                    best = found if best is None or found.score > best.score else best
                pts.append(best.centroid_lonlat)
            refined[f"refined {side_m:g} m, top {k}"] = np.array(pts)
    from PIL import Image

    with Image.open(photo) as im:  # the photo's long side is read at the model's query side
        query_cell = max(im.size) / max(locator.predictor.config.query_size) * QUERY_STRIDE
    locator.close()
    pts = np.array([d.extra["located_lon"] for d in first]), np.array([d.extra["located_lat"] for d in first])
    return pts, float(np.median(cells)), query_cell, refined


def _cropped(checkpoint, raster, photo: Path, clicks, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Answers (lon, lat) with the query cropped to ``fraction`` of the photo around each click
    (shifted inside the photo at its edges), in the window the locator searches for the photo."""
    from smgeo_geo.photo import read_photo
    from smgeo_geo.predictor import GeoPredictor

    image = read_photo(photo)
    h, w = image.shape[:2]
    cw, ch = round(w * fraction), round(h * fraction)
    predictor = GeoPredictor(checkpoint)
    predictor.set_reference(raster, predictor.resolve_window(raster, None, photo=photo).window)
    found = []
    for x, y in clicks:
        x0, y0 = int(np.clip(x - cw / 2, 0, w - cw)), int(np.clip(y - ch / 2, 0, h - ch))
        predictor.set_query(np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw]))
        found.append(predictor.locate((x - x0, y - y0), 1).centroid_lonlat)
    found = np.array(found)
    return found[:, 0], found[:, 1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "real-odm")
    ap.add_argument("--clicks", type=Path, default=ROOT / "bench" / "data" / "real_odm_clicks.csv")
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled model")
    ap.add_argument("--refine-m", type=float, nargs="*", default=[40.0, 100.0])
    ap.add_argument("--top-k", type=int, nargs="*", default=[1, 3])
    ap.add_argument("--crops", type=float, nargs="*", default=[0.5, 0.25])
    ap.add_argument("--query-sides", type=int, nargs="*", default=[256])
    ap.add_argument("--reference-sides", type=int, nargs="*", default=[512])
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "smgeo_real_limits.json")
    args = ap.parse_args(argv)

    import torch
    from real_imagery import truth_points

    from smgeo_geo.raster import open_reference
    from smgeo_model import bundled_checkpoint

    torch.set_num_threads(2)
    checkpoint = Path(args.checkpoint) if args.checkpoint else bundled_checkpoint()
    rows = list(csv.DictReader(open(args.clicks, newline="")))
    clicks = [(float(r["click_x"]), float(r["click_y"])) for r in rows]
    truth = truth_points(args.data, clicks, Path(rows[0]["photo"]).stem)["orthophoto_camera"]
    photo = args.data / "photos" / rows[0]["photo"]
    report = {"checkpoint": str(args.checkpoint or "bundled"), "photo": rows[0]["photo"], "clicks": len(clicks),
              "variants": {}}
    with open_reference(args.data / "reference_0018.tif") as raster, tempfile.TemporaryDirectory() as tmp:
        pts, cell_m, query_cell_px, refined = _located(checkpoint, raster, photo, clicks, args.refine_m, args.top_k)
        report["heatmap_cell_m"] = round(cell_m, 2)
        report["query_cell_photo_px"] = round(query_cell_px, 1)
        report["variants"]["search"] = _summary(truth, *pts)
        for label, found in refined.items():
            report["variants"][label] = _summary(truth, found[:, 0], found[:, 1])
        for fraction in args.crops:
            report["variants"][f"query crop {fraction:g}"] = _summary(truth, *_cropped(checkpoint, raster, photo,
                                                                                        clicks, fraction))
        for field, sides in (("query_size", args.query_sides), ("reference_size", args.reference_sides)):
            for side in sides:
                copy = _resized_copy(checkpoint, Path(tmp), field, side)
                pts, cell, qcell, _ = _located(copy, raster, photo, clicks)
                label = f"{field.split('_')[0]} {side} px"
                report["variants"][label] = {**_summary(truth, *pts), "heatmap_cell_m": round(cell, 2),
                                             "query_cell_photo_px": round(qcell, 1)}
    for label, s in report["variants"].items():
        print(f"{label:28s} median {s['median_m']:7.2f} m  p90 {s['p90_m']:7.2f} m  <=5 m {s['within_5m']:5.1%}  "
              f"answers on {s['answer_places']} of {s['true_places']} places")
    print(f"heatmap cell {report['heatmap_cell_m']} m on the ground; query feature cell "
          f"{report['query_cell_photo_px']} photo px")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
