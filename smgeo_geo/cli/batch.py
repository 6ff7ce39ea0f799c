"""``smgeo batch``: geocode a whole drone survey into one GeoPackage (resumable)."""

from __future__ import annotations

from pathlib import Path

import click

from smgeo_geo.cli._options import model_options


@click.command("batch")
@click.option("--manifest", type=click.Path(path_type=Path), default=None,
              help="CSV with columns query, click_x, click_y [, reference, lon, lat, radius_m]")
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder of drone photos (with --clicks)")
@click.option("--clicks", type=click.Path(path_type=Path), default=None,
              help="CSV with columns image, click_x, click_y [, reference, lon, lat, radius_m] (with --photos)")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="raster for rows that name none")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="output .gpkg")
@click.option("--workers", type=int, default=1, show_default=True, help="local worker processes (Dask)")
@click.option("--dask", "scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
@click.option("--top-k", type=int, default=5, show_default=True)
@model_options
def command(manifest, photos, clicks, reference, out, workers, scheduler, top_k, checkpoint, device) -> None:
    """Locate the clicked object of every row; write one GeoPackage with a status per row.

    Rerunning the same command after a crash or Ctrl-C skips the rows already done
    (kept in OUT.parts/); the GeoPackage is replaced atomically when complete. Layers:
    detections (polygons), centroids (points), rows (ok / error and its message).

    \b
    Example:
      smgeo batch --manifest survey.csv --reference mosaic.tif --out survey.gpkg --workers 2
    """
    from tqdm.auto import tqdm

    from smgeo_geo.batch import read_manifest, run_batch

    if out.suffix.lower() != ".gpkg":
        raise click.BadParameter("must end in .gpkg", param_hint="--out")
    if (manifest is None) == (clicks is None) or (clicks is not None and photos is None):
        raise click.UsageError("give either --manifest, or --photos with --clicks")
    rows = read_manifest(manifest or clicks, str(reference) if reference else None, photo_folder=photos)
    summary = run_batch(rows, out, str(checkpoint) if checkpoint else None, device, workers, scheduler, top_k,
                        progress=lambda it, n: tqdm(it, total=None, desc=f"{n} rows to do", unit="group"))
    click.echo(f"{summary['ok']} ok, {summary['error']} error(s) of {len(rows)} rows -> {out}")
