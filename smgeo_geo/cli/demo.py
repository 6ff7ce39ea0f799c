"""``smgeo demo``: the main job on the bundled default.

A small generated, georeferenced satellite GeoTIFF (real UTM CRS), a drone photo of the
same scene and a click on the target ship in the package (``smgeo_geo/data/demo/``, made by
``scripts/make_demo_data.py``), with the target's true footprint. The bundled demo model
locates the clicked object; the command prints its lon/lat and writes GeoJSON, GeoPackage
and a PNG of the query with its click beside the reference with the found and true boxes.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click

from smgeo_geo.cli._options import model_options

IOU_FOUND = 0.25  # a box overlapping the true footprint by more than this counts as found (acc@0.25)


def demo_folder() -> Path:
    return Path(str(resources.files("smgeo_geo") / "data" / "demo"))


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_output"),
              show_default=True, help="folder for the demo's outputs")
@model_options
def command(out: Path, checkpoint, device) -> None:
    """Locate the clicked object of the bundled drone photo on the bundled satellite GeoTIFF.

    \b
    Example:
      smgeo demo --out demo_output
    """
    import torch

    from smgeo_geo.cli._options import (check_output_folder, check_outputs, checkpoint_inputs, load_predictor,
                                        make_folder, remove_folders)
    from smgeo_geo.photo import read_photo
    from smgeo_geo.predictor import check_device
    from smgeo_geo.raster import open_reference
    from smgeo_geo.vector_io import geojson_writer, geopackage_writer, write_all
    from smgeo_model import box_iou

    # where the outputs go is checked first: a bad --out costs no model load and creates nothing
    targets = {ext: out / f"demo_result.{ext}" for ext in ("geojson", "gpkg", "png")}
    check_output_folder("--out", out)
    check_device(device)
    if out.is_dir():
        check_outputs({f"--out {p.name}": p for p in targets.values()}, checkpoint_inputs(checkpoint))
    folder = demo_folder()
    meta = json.loads((folder / "demo.json").read_text())
    query_path, ref_path = folder / meta["query"], folder / meta["reference"]
    photo = read_photo(query_path)
    predictor = load_predictor({"checkpoint": checkpoint, "device": device})
    with open_reference(ref_path) as raster:
        predictor.set_reference(raster)
        predictor.set_query(photo)
        predictor.query_path = str(query_path)
        det = predictor.locate(tuple(meta["click"]), top_k=5)
        truth = meta["true_pixel_box"]
        iou = float(box_iou(torch.tensor([det.pixel_box]), torch.tensor([truth]))[0])
        det.extra = {"iou_with_truth": round(iou, 4), "class": meta["class_name"]}
        reference = predictor.reference
        crs_text = raster.crs.to_string()

    def figure(tmp: Path) -> None:
        _figure(photo, meta["click"], reference.image, reference.mapping, det.pixel_box, truth, iou, tmp)

    created = make_folder(out)
    try:  # all three files or none
        write_all([(targets["geojson"], geojson_writer([det])), (targets["gpkg"], geopackage_writer([det])),
                   (targets["png"], figure)])
    except BaseException:
        remove_folders(created)
        raise
    lon, lat = det.centroid_lonlat
    verdict = "found" if iou > IOU_FOUND else "missed"
    click.echo(f"Clicked object ({meta['class_name']}) {verdict}: SMGeo's box at lon {lon:.6f}, lat {lat:.6f} "
               f"(score {det.score:.2f}, IoU with the true footprint {iou:.2f})")
    if verdict == "missed":
        click.echo("  the bundled demo model finds about three objects in ten of generated pairs it has not seen "
                   "(model/weights/MODEL_CARD.md); real photos with GPS metadata are located by `smgeo locate`")
    click.echo(f"  reference {ref_path.name} ({crs_text}), pixel box "
               f"{[round(v, 1) for v in det.pixel_box]}; true {[round(v, 1) for v in truth]}")
    for path in targets.values():
        click.echo(f"  wrote {path}")


def _figure(query, click_xy, ref_image, mapping, found, truth, iou, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 5.4), gridspec_kw={"width_ratios": [1, 1.3]})
    a.imshow(query)
    a.plot(*click_xy, marker="*", ms=20, mfc="yellow", mec="black")
    a.set_title("drone photo + click")
    b.imshow(ref_image)
    for box, colour, label in ((truth, "lime", "true footprint"), (found, "red", f"found (IoU {iou:.2f})")):
        x1, y1, x2, y2 = mapping.box_to_model(box)
        b.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=2.5, label=label))
    b.legend(loc="lower right")
    b.set_title("satellite reference (GeoTIFF)")
    for ax in (a, b):
        ax.axis("off")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100, format="png")
    finally:
        plt.close(fig)
