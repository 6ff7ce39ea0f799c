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
    @click.option("--photo-gps", is_flag=True,
                  help="search around the footprint from the photo's EXIF/XMP metadata (where the raster has pixels)")
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


def window_spec(kw: dict):
    """The :class:`~smgeo_geo.windows.WindowSpec` the window options ask for (default auto)."""
    from smgeo_geo.windows import WindowSpec

    chosen = [k for k in ("bbox", "center", "photo_gps", "search") if kw.get(k)]
    if len(chosen) > 1:
        given = ", ".join("--" + c.replace("_", "-") for c in chosen)
        raise click.UsageError(f"choose one way to pick the search window, got {given}")
    if kw.get("radius") is not None and not kw.get("center"):
        raise click.UsageError("--radius needs --center LON,LAT")
    if kw.get("search"):
        return WindowSpec("search")
    if kw.get("bbox"):
        from smgeo_geo.coords import check_bounds_crs

        spec = WindowSpec("bounds", bounds=_floats(kw["bbox"], 4, "--bbox"), bounds_crs=kw["bbox_crs"])
        check_bounds_crs(spec.bounds, spec.bounds_crs, "--bbox", "--bbox-crs")
        return spec
    if kw.get("center"):
        if kw.get("radius") is None:
            raise click.UsageError("--center needs --radius (metres)")
        lon, lat = _floats(kw["center"], 2, "--center")
        return WindowSpec("center", lon=lon, lat=lat, radius_m=kw["radius"])
    if kw.get("photo_gps"):
        return WindowSpec("photo_gps")
    return WindowSpec("auto")


def check_outputs(outputs: dict, inputs: dict) -> None:
    """:func:`smgeo_geo.vector_io.check_output_paths`: refuse bad outputs before any work."""
    from smgeo_geo.vector_io import check_output_paths

    check_output_paths(outputs, inputs)


def checkpoint_inputs(checkpoint) -> dict:
    """The files of ``--checkpoint`` (weights and config) as inputs no output may overwrite."""
    if checkpoint is None:
        return {}
    from smgeo_model.checkpoint import checkpoint_paths

    weights, config = checkpoint_paths(checkpoint)
    return {"--checkpoint": weights, "--checkpoint config": config}


def check_output_folder(name: str, folder: Path) -> None:
    """:func:`smgeo_geo.vector_io.check_output_folder` (refuse an output folder that cannot be made)."""
    from smgeo_geo.vector_io import check_output_folder as check

    check(name, folder)


def make_folder(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created (deepest last), for :func:`remove_folders`."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def remove_folders(created: list[Path]) -> None:
    """Remove the (empty) folders :func:`make_folder` created, deepest first."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def write_outputs(detection, out: Path | None, heatmap: Path | None, last_heatmap, crs) -> None:
    """Write the result (``--out``: .geojson or .gpkg) and the heatmap GeoTIFF all or nothing."""
    from smgeo_geo.vector_io import detections_writer, heatmap_writer, write_all

    jobs = []
    if out is not None:
        jobs.append((out, detections_writer([detection], out)))
    if heatmap is not None:
        heat, transform = last_heatmap
        jobs.append((heatmap, heatmap_writer(heat, transform, crs)))
    write_all(jobs)
    for path, _ in jobs:
        click.echo(f"wrote {path}")


def method_options(fn):
    """``--method`` (which stages locate) and ``--dem`` (heights for the metadata camera)."""
    @click.option("--method", type=click.Choice(["auto", "metadata", "registration", "smgeo"]), default="auto",
                  show_default=True, help="auto: photo metadata, registration and SMGeo fused; or one stage alone")
    @click.option("--dem", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="DSM/DEM raster (any CRS), heights in the photo's altitude frame (its absolute altitude)")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def parse_query_size(value: str) -> tuple[int, int]:
    """``--query-size``: ``N`` or ``HxW`` pixels -> ``(height, width)``."""
    import re

    from smgeo_geo.errors import OptionError

    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", value)
    if not m:
        raise OptionError(f"--query-size must be N or HxW (e.g. 256 or 256x512), got {value!r}")
    h = int(m[1])
    return h, int(m[2]) if m[2] else h


def parse_splits(value: str) -> tuple[float, float, float]:
    """``--splits``: three fractions ``train,val,test``."""
    from smgeo_geo.errors import OptionError

    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise OptionError(f"--splits must be three fractions train,val,test (e.g. 0.8,0.1,0.1), got {value!r}")
    return parts  # type: ignore[return-value]
