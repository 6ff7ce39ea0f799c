"""Options shared by several commands: model choice and search-window choice."""

from __future__ import annotations

import functools
from pathlib import Path

import click


def model_options(fn):
    @click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="SMGeo checkpoint (.safetensors + .json); default: the bundled demo model")
    @click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def window_options(fn):
    @click.option("--bbox", default=None, help="search window MINX,MINY,MAXX,MAXY (in --bbox-crs)")
    @click.option("--bbox-crs", default="EPSG:4326", show_default=True, help="CRS of --bbox")
    @click.option("--center", default=None, help="search window centre LON,LAT (WGS84); needs --radius")
    @click.option("--radius", type=float, default=None, help="search radius in metres around --center")
    @click.option("--photo-gps", is_flag=True, help="search around the footprint from the photo's EXIF/DJI metadata")
    @click.option("--search", is_flag=True, help="sliding-window search over the whole raster")
    @click.option("--bands", default=None, help="raster bands for R,G,B (e.g. 3,2,1) or one band (e.g. 1)")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs.get("bands"):
            try:
                kwargs["bands"] = tuple(int(b) for b in kwargs["bands"].split(","))
            except ValueError:
                raise click.BadParameter("give band numbers like 3,2,1", param_hint="--bands") from None
        return fn(*args, **kwargs)

    return wrapper


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise click.BadParameter(f"expected {n} comma-separated numbers, got {text!r}", param_hint=name)
    return vals


def load_predictor(kw: dict):
    from smgeo_geo.predictor import GeoPredictor

    return GeoPredictor(kw.get("checkpoint"), device=kw.get("device", "cpu"))


def choose_window(raster, photo, kw: dict, predictor):
    """(window, search?) from the window options; default: whole raster if small enough."""
    from smgeo_geo import windows

    chosen = [k for k in ("bbox", "center", "photo_gps", "search") if kw.get(k)]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one way to pick the search window, got {', '.join('--' + c for c in chosen)}")
    if kw.get("search"):
        return None, True
    if kw.get("bbox"):
        return windows.window_from_bounds(raster, _floats(kw["bbox"], 4, "--bbox"), kw["bbox_crs"], clip=True), False
    if kw.get("center"):
        if not kw.get("radius"):
            raise click.UsageError("--center needs --radius (metres)")
        lon, lat = _floats(kw["center"], 2, "--center")
        return windows.window_from_center(raster, lon, lat, kw["radius"], clip=True), False
    if kw.get("photo_gps"):
        from smgeo_geo.photo_meta import approximate_footprint, read_photo_meta

        fp = approximate_footprint(read_photo_meta(photo))
        return windows.window_from_center(raster, fp.lon, fp.lat, fp.radius_m, clip=True), False
    return predictor.default_window(raster), False


def write_detections(detections, path: Path) -> None:
    from smgeo_geo.vector_io import write_geojson, write_geopackage

    if path.suffix.lower() == ".gpkg":
        write_geopackage(detections, path)
    else:
        write_geojson(detections, path)
