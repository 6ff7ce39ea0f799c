"""``smgeo batch``: geocode a whole drone survey into one GeoPackage (resumable)."""

from __future__ import annotations

from pathlib import Path

import click

from smgeo_geo.cli._options import method_options, model_options


@click.command("batch")
@click.option("--manifest", type=click.Path(path_type=Path), default=None,
              help="CSV with columns query, click_x, click_y [, reference, lon, lat, radius_m]")
@click.option("--photos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="folder of drone photos (with --clicks)")
@click.option("--clicks", type=click.Path(path_type=Path), default=None,
              help="CSV with columns image, click_x, click_y [, reference, lon, lat, radius_m] (with --photos)")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="raster for rows that name none")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output .gpkg")
@click.option("--workers", type=int, default=1, show_default=True, help="worker processes (Dask; 1: this process)")
@click.option("--dask", "scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
@click.option("--top-k", type=int, default=5, show_default=True)
@method_options
@model_options
def command(manifest, photos, clicks, reference, out, workers, scheduler, top_k, method, dem, checkpoint,
            device) -> None:
    """Locate the clicked object of every row; write one GeoPackage with a status per row.

    Each row is kept in OUT.gpkg.parts/ as soon as it finishes, keyed by the model and the
    row's inputs (photo bytes, reference size and time, top-k). Rerunning the command after
    a crash or Ctrl-C skips the finished ok rows and retries error rows; the GeoPackage is
    replaced atomically when complete. Layers: detections (polygons), centroids (points),
    rows (ok / error and its message). A bad row never stops the survey. Each row is located
    with --method (default auto: photo metadata, registration and SMGeo fused; --dem makes the
    metadata camera and registration exact in relief); its method and uncertainty_m are columns.

    \b
    Example:
      smgeo batch --manifest survey.csv --reference mosaic.tif --out survey.gpkg --workers 2
    """
    from tqdm.auto import tqdm

    from smgeo_geo.batch import read_manifest, run_batch

    if (manifest is None) == (clicks is None) or (clicks is not None and photos is None):
        raise click.UsageError("give either --manifest, or --photos with --clicks")
    rows = read_manifest(manifest or clicks, str(reference) if reference else None, photo_folder=photos)
    summary = run_batch(rows, out, str(checkpoint) if checkpoint else None, device, workers, scheduler, top_k,
                        progress=lambda it, n: tqdm(it, total=n, desc="rows", unit="row"),
                        inputs={"--manifest": manifest, "--clicks": clicks}, method=method, dem=dem)
    click.echo(f"{summary['ok']} ok, {summary['error']} error(s) of {len(rows)} rows -> {out} "
               f"({summary['computed']} computed, {summary['kept']} kept from earlier runs)")
