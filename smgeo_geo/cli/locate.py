"""``smgeo locate``: one photo, one click, one georeferenced raster -> the object on the map."""

from __future__ import annotations

from pathlib import Path

import click

from smgeo_geo.cli._options import method_options, model_options, window_options


@click.command("locate")
@click.option("--reference", type=click.Path(path_type=Path), required=True,
              help="georeferenced raster (GeoTIFF, COG, VRT: anything GDAL reads)")
@click.option("--query", type=click.Path(path_type=Path), required=True, help="drone photo")
@click.option("--click", "click_xy", required=True, help="X,Y: the target in photo pixels")
@window_options
@method_options
@model_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the result: .geojson (RFC 7946, WGS84) or .gpkg (raster CRS)")
@click.option("--heatmap", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the georeferenced heatmap as a GeoTIFF")
@click.option("--top-k", type=int, default=5, show_default=True, help="candidates to keep (1 to 100)")
def command(reference, query, click_xy, out, heatmap, top_k, method, dem, **kw) -> None:
    """Locate the object clicked in a drone photo on a georeferenced raster.

    By default (--method auto) three stages answer together: the photo's metadata (EXIF GPS,
    gimbal angles and altitude from DJI, Parrot, Skydio or Pix4D XMP; with --dem, rays meet the
    DSM/DEM), registration of the
    photo on the raster (local features, camera pose refined on the DEM) and SMGeo (the
    object's box). Prints the clicked point (lon/lat), its 90 % uncertainty in metres and
    which stages held, and writes the object's polygon with all of that as properties.

    \b
    Example:
      smgeo locate --reference ortho.tif --dem dsm.tif --query DJI_0136.JPG --click 330,821 \\
                   --out result.geojson
      smgeo locate --reference mosaic.tif --query DJI_0042.JPG --click 812,455 \\
                   --center 8.5417,47.3769 --radius 300 --method smgeo --heatmap heat.tif
    """
    from smgeo_geo.cli._options import check_outputs, checkpoint_inputs, load_predictor, window_spec, write_outputs
    from smgeo_geo.photo import check_click, parse_click, read_photo
    from smgeo_geo.checks import check_top_k
    from smgeo_geo.predictor import check_device
    from smgeo_geo.errors import OptionError
    from smgeo_geo.raster import open_reference
    from smgeo_geo.terrain import DemTerrain

    # every check that needs no model comes first: a user error costs no model load and writes nothing
    xy = parse_click(click_xy)
    top_k = check_top_k(top_k)
    check_device(kw["device"])
    spec = window_spec(kw)
    if out is not None and out.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise click.BadParameter("must end in .geojson or .gpkg", param_hint="--out")
    if heatmap is not None and heatmap.suffix.lower() not in (".tif", ".tiff"):
        raise click.BadParameter("must end in .tif", param_hint="--heatmap")
    if heatmap is not None and method in ("metadata", "registration"):
        raise OptionError(f"--heatmap is SMGeo's heatmap; --method {method} does not run SMGeo (use auto or smgeo)")
    check_outputs({"--out": out, "--heatmap": heatmap}, {"--reference": reference, "--query": query, "--dem": dem,
                                                        **checkpoint_inputs(kw.get("checkpoint"))})
    if dem is not None:
        DemTerrain(dem).close()  # a bad DEM is named before the model loads
    with open_reference(reference, bands=kw["bands"]) as raster:
        photo = read_photo(query)
        check_click(xy, (photo.shape[1], photo.shape[0]))
        predictor = load_predictor(kw)
        det = predictor.locate_photo(raster, query, xy, method=method, window=spec, dem=dem, top_k=top_k)
        x = det.extra
        click.echo(f"lon {x['located_lon']:.7f}, lat {x['located_lat']:.7f}  +-{x['uncertainty_m']:.2f} m (90 %)  "
                   f"method {x['method']} (answer: {x['answer']})  box from {x['box_source']}, score {det.score:.3f}")
        for stage in ("metadata", "registration", "smgeo"):
            status = x.get(f"{stage}_status")
            if status is not None and status != "ok":
                click.echo(f"  {stage}: {status}")
        if heatmap is not None and predictor.last_heatmap is None:
            raise OptionError("--heatmap: SMGeo did not run, so there is no heatmap to write")
        # every output is made in memory first, then written: a failing write leaves no other file behind
        write_outputs(det, out, heatmap, predictor.last_heatmap, raster.crs)
