"""``smgeo adapt``: fine-tune a checkpoint on the user's own area, without labels."""

from __future__ import annotations

import os
from pathlib import Path

import click

from smgeo_geo.adapt import DEFAULT_REGION_M

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("adapt")
@click.option("--reference", type=_FILE, required=True, help="orthophoto of the area (GeoTIFF/COG, any CRS)")
@click.option("--dem", type=_FILE, default=None, help="DSM/DEM of the area (any CRS) [default: flat ground]")
@click.option("--footprints", type=_FILE, default=None,
              help="target polygons (GeoPackage/GeoJSON) [default: salient structures]")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="run folder (rerun the same command to resume)")
@click.option("--checkpoint", type=_FILE, default=None, help="checkpoint to start from [default: the bundled model]")
@click.option("--minutes", type=float, default=20.0, show_default=True,
              help="training time, summed over resumed runs (rendering and scoring come on top)")
@click.option("--pairs", type=int, default=400, show_default=True,
              help="pairs to render: 80 % train, 10 % validation, 10 % held back for the before/after score")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: GPU if present)")
@click.option("--workers", type=int, default=None,
              help="processes rendering the pairs [default: one per CPU core]")
@click.option("--match-points", is_flag=True,
              help="also train on up to 8 corners of each rendered photo as further clicks (one encoding, "
                   "more answers per pair)")
@click.option("--search-scale/--tile-scale", default=True, show_default=True,
              help="zoom the training tiles to the scale the locator searches each photo's area at (its GPS "
                   "footprint window at the model's input size), or keep them near the tiles' own scale")
@click.option("--region-size", type=float, default=DEFAULT_REGION_M, show_default=True,
              help="metres across the region around each salient structure clicked (without --footprints)")
@click.option("--restart", is_flag=True, help="start over in --out (its pairs and run are replaced)")
@click.option("--quiet", is_flag=True, help="no progress bars")
def command(reference, dem, footprints, out, checkpoint, minutes, pairs, seed, batch_size, device, workers,
            match_points, search_scale, region_size, restart, quiet) -> None:
    """Adapt SMGeo to your area: render drone views of your orthophoto (on its DSM), fine-tune on them
    for --minutes, and score the model before and after on held-back views of the area.

    The adapted checkpoint (OUT/adapted.safetensors) is taken by `smgeo locate --checkpoint`,
    `smgeo batch`, the worker and the QGIS plugin (Settings: checkpoint). OUT/adapt.json, .md and
    .png hold the before/after scores.

    \b
    Example:
      smgeo adapt --reference ortho.tif --dem dsm.tif --out runs/my_area --minutes 20
      smgeo locate --checkpoint runs/my_area/adapted.safetensors ...
    """
    from smgeo_geo.adapt import AdaptOptions, adapt
    from smgeo_geo.predictor import check_device

    if device is not None:
        check_device(device)
    opts = AdaptOptions(reference=reference, out=out, dem=dem, footprints=footprints, checkpoint=checkpoint,
                        minutes=minutes, pairs=pairs, seed=seed, batch_size=batch_size, device=device,
                        workers=workers or os.cpu_count() or 1, restart=restart, match_points=match_points,
                        search_scale=search_scale, region_size=region_size)
    report = adapt(opts, log=click.echo, progress=not quiet)
    b, a = report["before"], report["after"]
    click.echo(f"acc@0.5 {b['acc@0.5']:.3f} -> {a['acc@0.5']:.3f}; median centre error "
               f"{b['centre_error'].get('median_m', float('nan')):.1f} m -> "
               f"{a['centre_error'].get('median_m', float('nan')):.1f} m")
    click.echo(f"adapted checkpoint: {report['checkpoint']} (report: {out / 'adapt.md'})")
