"""``smgeo realpairs``: drone/satellite pairs rendered from a real orthophoto, in the CVOGL layout."""

from __future__ import annotations

import os
from pathlib import Path

import click

from smgeo_geo.adapt import DEFAULT_REGION_M
from smgeo_geo.cli._options import parse_query_size, parse_splits
from smgeo_geo.errors import OptionError


def _bands(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(b) for b in value.split(","))
    except ValueError:
        raise OptionError(f"--bands must be band numbers like 3,2,1 or 1, got {value!r}") from None


@click.command("realpairs")
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="orthophoto (GeoTIFF/COG/VRT, any CRS): the satellite side and the drone views' texture")
@click.option("--dem", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DSM/DEM (any CRS) so buildings and trees stand up and hide what is behind them "
                   "[default: flat ground]")
@click.option("--footprints", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="target polygons (GeoPackage/GeoJSON/Shapefile, any CRS) [default: salient structures]")
@click.option("--layer", default=None, help="layer of --footprints [default: the first]")
@click.option("--class-field", default=None, help="attribute of --footprints holding each target's class")
@click.option("--class-name", default=None,
              help="class of the targets [default: building with --footprints, else salient]")
@click.option("--region-size", type=float, default=DEFAULT_REGION_M, show_default=True,
              help="metres a side of a salient target's region (without --footprints)")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="data root: the dataset goes to OUT/NAME/")
@click.option("--name", default="REAL_DroneAerial", show_default=True, help="dataset folder name")
@click.option("--pairs", type=int, required=True, help="number of (query, satellite) pairs")
@click.option("--seed", type=int, default=0, show_default=True, help="same inputs + seed + options = identical files")
@click.option("--reference-size", type=int, default=1024, show_default=True, help="satellite tile size in pixels")
@click.option("--query-size", default="256", show_default=True, help="drone photo size: N or HxW")
@click.option("--ground-resolution", type=float, default=None,
              help="tile metres per pixel [default: 512 m (CVOGL's tile width), at most 80 % of the "
                   "orthophoto's shorter side, over the reference size]")
@click.option("--splits", default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions")
@click.option("--bands", default=None, help="orthophoto bands for R,G,B (e.g. 3,2,1) or one band (e.g. 1)")
@click.option("--sensor", type=float, default=1.0, show_default=True,
              help="strength of the drone sensor's colour, blur and noise (0 to 2)")
@click.option("--workers", type=int, default=None,
              help="processes; results do not depend on it [default: the CPU cores this process may use]")
@click.option("--geotiff/--no-geotiff", default=True, show_default=True,
              help="also write a georeferenced GeoTIFF beside every satellite JPEG")
@click.option("--overwrite", is_flag=True, help="replace an existing dataset folder")
@click.option("--quiet", is_flag=True, help="no progress bar")
def command(reference, dem, footprints, layer, class_field, class_name, region_size, out, name, pairs, seed,
            reference_size, query_size, ground_resolution, splits, bands, sensor, workers, geotiff, overwrite,
            quiet) -> None:
    """Render drone views of a real orthophoto (and DSM) as training pairs in the CVOGL layout.

    The satellite tiles are cut from the orthophoto (north-up, in its projected CRS or its UTM
    zone, named <easting>_<northing>_<extent>_<EPSG>.jpg with a GeoTIFF beside each); the drone
    photos are rendered from it, draped on the DSM, with drawn drone cameras (nadir and oblique,
    20-150 m above the target), sun, season and sensor. The click is a visible point on the
    target (a footprint of --footprints, else a salient structure), the box its envelope in
    the tile. `smgeo train` and `smgeo evaluate` read the result as they read `smgeo synth`'s.

    \b
    Example:
      smgeo realpairs --reference ortho.tif --dem dsm.tif --footprints buildings.gpkg \\
                      --out data --pairs 500 --seed 0
      smgeo evaluate --data-root data --data-name REAL_DroneAerial --json eval/real.json
    """
    from smgeo_geo.cli._options import check_output_folder
    from smgeo_synth.realpairs import generate_realpairs

    check_output_folder("--out", out)
    if workers is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = max(1, min(pairs, cores))
    manifest = generate_realpairs(reference, out, pairs, seed=seed, name=name, dem=dem, footprints=footprints,
                                  layer=layer, class_name=class_name, class_field=class_field,
                                  reference_size=reference_size, query_size=parse_query_size(query_size),
                                  ground_resolution=ground_resolution, region_size=region_size,
                                  splits=parse_splits(splits), workers=workers, overwrite=overwrite, progress=not quiet,
                                  bands=_bands(bands), sensor=sensor, geotiff=geotiff)
    c = manifest["counts"]
    rate = pairs / max(manifest["elapsed_s"], 1e-9)
    t = manifest["targets"]
    click.echo(f"wrote {pairs} pairs ({c['train']} train / {c['val']} val / {c['test']} test, {manifest['crs']}, "
               f"{t['used']} of {t['count']} {t['kind']} targets) to {Path(out) / name} in "
               f"{manifest['elapsed_s']:.1f} s ({rate:.2f} pairs/s, {workers} process{'es' if workers > 1 else ''})")
