"""``smgeo locate``: one photo, one click, one georeferenced raster -> the object on the map."""

from __future__ import annotations

from pathlib import Path

import click

from smgeo_geo.cli._options import model_options, window_options


@click.command("locate")
@click.option("--reference", type=click.Path(path_type=Path), required=True,
              help="georeferenced raster (GeoTIFF, COG, VRT: anything GDAL reads)")
@click.option("--query", type=click.Path(path_type=Path), required=True, help="drone photo")
@click.option("--click", "click_xy", required=True, help="X,Y: the target in photo pixels")
@window_options
@model_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the result: .geojson (RFC 7946, WGS84) or .gpkg (raster CRS)")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the georeferenced heatmap as a GeoTIFF")
@click.option("--top-k", type=int, default=5, show_default=True, help="candidates to keep")
def command(reference, query, click_xy, out, heatmap, top_k, **kw) -> None:
    """Locate the object clicked in a drone photo on a georeferenced raster.

    Prints the object's centre (lon/lat) and score, and writes the footprint polygon.

    \b
    Example:
      smgeo locate --reference mosaic.tif --query DJI_0042.JPG --click 812,455 \\
                   --center 8.5417,47.3769 --radius 300 --out result.geojson
    """
    from smgeo_geo.cli._options import check_outputs, load_predictor, window_spec, write_outputs
    from smgeo_geo.photo import parse_click
    from smgeo_geo.predictor import check_top_k
    from smgeo_geo.raster import open_reference

    xy = parse_click(click_xy)
    top_k = check_top_k(top_k)
    spec = window_spec(kw)
    check_outputs({"--out": out, "--heatmap": heatmap}, {"--reference": reference, "--query": query})
    if out is not None and out.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise click.BadParameter("must end in .geojson or .gpkg", param_hint="--out")
    if heatmap is not None and heatmap.suffix.lower() not in (".tif", ".tiff"):
        raise click.BadParameter("must end in .tif", param_hint="--heatmap")
    predictor = load_predictor(kw)
    with open_reference(reference, bands=kw["bands"]) as raster:
        predictor.set_query(query)
        predictor.validate_click(xy)
        resolved = predictor.resolve_window(raster, spec, photo=query)
        det = predictor.locate_resolved(raster, resolved, xy, top_k)
        lon, lat = det.centroid_lonlat
        click.echo(f"lon {lon:.7f}, lat {lat:.7f}  score {det.score:.3f}  "
                   f"pixel box {[round(v, 1) for v in det.pixel_box]}  ({raster.crs.to_string()}; {resolved.reason})")
        # every output is made in memory first, then written: a failing write leaves no other file behind
        write_outputs(det, out, heatmap, predictor.last_heatmap, raster.crs)
