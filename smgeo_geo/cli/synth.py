"""``smgeo synth``: write a synthetic drone/satellite dataset in the CVOGL layout."""

from __future__ import annotations

import os
from pathlib import Path

import click

from smgeo_geo.cli._options import parse_query_size, parse_splits


@click.command("synth")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="data root: the dataset goes to OUT/NAME/")
@click.option("--pairs", type=int, required=True, help="number of (query, satellite) pairs")
@click.option("--seed", type=int, default=0, show_default=True, help="same seed + options = identical files")
@click.option("--name", default="SYNTH_DroneAerial", show_default=True, help="dataset folder name")
@click.option("--reference-size", type=int, default=1024, show_default=True, help="satellite tile size in pixels")
@click.option("--query-size", default="256", show_default=True, help="drone photo size: N or HxW")
@click.option("--ground-resolution", type=float, default=None,
              help="satellite metres per pixel [default: 512 m / reference size, CVOGL's tile width]")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True)
@click.option("--splits", default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions")
@click.option("--workers", type=int, default=None,
              help="processes; results do not depend on it [default: the CPU cores this process may use]")
@click.option("--epsg", type=int, default=None, help="UTM zone, e.g. 32632 [default: drawn from the seed]")
@click.option("--geotiff/--no-geotiff", default=True, show_default=True,
              help="also write a georeferenced GeoTIFF beside every satellite JPEG")
@click.option("--overwrite", is_flag=True, help="replace an existing dataset folder")
@click.option("--quiet", is_flag=True, help="no progress bar")
def command(out, pairs, seed, name, reference_size, query_size, ground_resolution, difficulty, splits, workers, epsg,
            geotiff, overwrite, quiet) -> None:
    """Generate realistic synthetic pairs in the CVOGL layout.

    Each pair is a town scene rendered twice: an orthophoto-like satellite tile (JPEG named
    <easting>_<northing>_<extent>_<EPSG>.jpg plus a GeoTIFF in that UTM zone) and an oblique
    drone photo taken at another time (sun, season, vehicles, camera), with a click on the
    target in the photo and the target's box in the tile. Lists are written last, so an
    interrupted run never leaves a list pointing at missing images.

    \b
    Example:
      smgeo synth --out data --pairs 2000 --seed 0
      smgeo synth --out data --pairs 2000 --seed 0 --reference-size 256 --query-size 128 --no-geotiff
    """
    from smgeo_synth import generate_dataset

    if workers is None:
        workers = min(pairs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    manifest = generate_dataset(out, pairs, seed=seed, name=name, reference_size=reference_size,
                                query_size=parse_query_size(query_size), ground_resolution=ground_resolution,
                                difficulty=difficulty, splits=parse_splits(splits), workers=workers, overwrite=overwrite,
                                geotiff=geotiff, progress=not quiet, epsg=epsg)
    c = manifest["counts"]
    rate = pairs / max(manifest["elapsed_s"], 1e-9)
    click.echo(f"wrote {pairs} pairs ({c['train']} train / {c['val']} val / {c['test']} test, {manifest['crs']}) "
               f"to {Path(out) / name} in {manifest['elapsed_s']:.1f} s ({rate:.2f} pairs/s, {workers} "
               f"process{'es' if workers > 1 else ''})")
