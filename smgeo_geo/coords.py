"""Coordinate conversion: the one place where pixels, CRS coordinates and lon/lat meet.

Frames used throughout smgeo_geo:

* **raster pixel** ``(x=col, y=row)``, GDAL convention: ``(0, 0)`` is the outer
  top-left corner of the top-left pixel, pixel centres lie at ``+0.5``.
* **CRS coordinates** ``(x=easting, y=northing)`` in the raster's CRS units.
* **lon/lat** WGS84 degrees, always ``x=lon, y=lat`` (``always_xy=True``).

A geotransform is an :class:`affine.Affine` mapping raster pixels to CRS
coordinates (``rasterio``'s ``dataset.transform``); rotated/sheared ones are fine.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Union

import numpy as np
import pyproj
from affine import Affine
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from smgeo_geo.errors import CRSError, OptionError

CRSLike = Union[pyproj.CRS, int, str, Any]  # Any: rasterio.crs.CRS (has .to_wkt())
"""A CRS as a rasterio CRS, a pyproj CRS, an EPSG code or a WKT/PROJ/'EPSG:xxxx' string."""

WGS84 = pyproj.CRS.from_epsg(4326)


def to_crs(crs: CRSLike) -> pyproj.CRS:
    """Return ``crs`` as a :class:`pyproj.CRS`; raise :class:`CRSError` naming it if unknown."""
    if crs is None:
        raise CRSError("no CRS given (None)")
    if isinstance(crs, pyproj.CRS):
        return crs
    try:
        if isinstance(crs, (int, np.integer)) and not isinstance(crs, bool):
            return _parsed_crs("epsg", int(crs), threading.get_ident())
        if hasattr(crs, "to_wkt"):  # rasterio.crs.CRS
            return _parsed_crs("wkt", crs.to_wkt(), threading.get_ident())
        if isinstance(crs, str) and crs.strip():
            return _parsed_crs("user", crs, threading.get_ident())
    except (pyproj.exceptions.CRSError, ValueError, TypeError) as exc:
        raise CRSError(f"unknown CRS {str(crs)[:200]!r}: {exc}") from exc
    raise CRSError(f"unknown CRS {str(crs)[:200]!r}: expected an EPSG code, WKT or CRS object")


@lru_cache(maxsize=256)
def _parsed_crs(kind: str, value: int | str, _thread: int) -> pyproj.CRS:
    # Parsing a CRS costs about 0.2 ms; the same few are parsed for every point transformed.
    if kind == "epsg":
        return pyproj.CRS.from_epsg(value)
    return pyproj.CRS.from_wkt(value) if kind == "wkt" else pyproj.CRS.from_user_input(value)


def crs_string(crs: CRSLike) -> str:
    """Short text for ``crs``: ``'EPSG:32633'`` when it has an authority code, else its WKT."""
    c = to_crs(crs)
    auth = c.to_authority(min_confidence=90)
    return f"{auth[0]}:{auth[1]}" if auth else c.to_wkt()


@lru_cache(maxsize=64)
def _transformer(src_wkt: str, dst_wkt: str, _thread: int) -> pyproj.Transformer:
    # Transformers are cached per thread: pyproj objects are not shared across threads.
    return pyproj.Transformer.from_crs(src_wkt, dst_wkt, always_xy=True)


def transformer(src: CRSLike, dst: CRSLike) -> pyproj.Transformer:
    """Cached ``pyproj.Transformer`` from ``src`` to ``dst`` with x/east/lon first.

    Raises :class:`CRSError` naming both CRSs when PROJ knows no way between them (e.g. a
    local engineering CRS, ``LOCAL_CS[...]``, has no datum to relate it to WGS84).
    """
    source, target = to_crs(src), to_crs(dst)
    try:
        return _transformer(source.to_wkt(), target.to_wkt(), threading.get_ident())
    except pyproj.exceptions.ProjError as exc:
        raise CRSError(f"no coordinate transformation from {_short(source)} to {_short(target)} "
                       f"({source.type_name}; {exc})") from None


def _short(crs: pyproj.CRS) -> str:
    """``EPSG:xxxx`` or the CRS's name (never a whole WKT), for messages."""
    auth = crs.to_authority(min_confidence=90)
    return f"{auth[0]}:{auth[1]}" if auth else repr(crs.name)[:80]


def check_lonlat(crs: CRSLike, xs, ys, what: str = "coordinates") -> tuple[np.ndarray, np.ndarray]:
    """``(lon, lat)`` WGS84 degrees of the points ``(x, y)`` in ``crs``, or :class:`CRSError`
    saying that ``what`` (e.g. "the raster's pixels") cannot be put on the map: no
    transformation to WGS84 exists, or the results are not finite."""
    try:
        return crs_to_lonlat(crs, xs, ys)
    except CRSError as exc:
        raise CRSError(f"{what} cannot be converted to WGS84 lon/lat: {exc}") from None


def check_bounds_crs(bounds, crs: CRSLike, bounds_name: str = "bounds", crs_name: str = "CRS") -> None:
    """Check, before any pixel is read, that ``bounds = (minx, miny, maxx, maxy)`` in ``crs``
    can be put on the map: :class:`CRSError` when ``crs`` is unknown or has no transformation
    to WGS84 (e.g. a local engineering CRS), :class:`OptionError` when the box is empty or,
    in a geographic CRS, lies outside lon -180..180 / lat -90..90. Messages name ``bounds_name`` /
    ``crs_name`` (e.g. the CLI options ``--bbox`` / ``--bbox-crs``)."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    if not (minx < maxx and miny < maxy):
        raise OptionError(f"{bounds_name} {minx:g},{miny:g},{maxx:g},{maxy:g} is empty; need minx < maxx and "
                          f"miny < maxy")
    xs, ys = np.array([minx, maxx, maxx, minx]), np.array([miny, miny, maxy, maxy])
    try:
        c = to_crs(crs)
    except CRSError as exc:
        raise CRSError(f"{crs_name}: {exc}") from None
    if c.is_geographic and not (np.all(np.abs(xs) <= 180) and np.all(np.abs(ys) <= 90)):
        raise OptionError(f"{bounds_name} {minx:g},{miny:g},{maxx:g},{maxy:g} lies outside lon -180..180 / "
                          f"lat -90..90 degrees ({crs_name} {_short(c)} is geographic)")
    try:
        check_lonlat(c, xs, ys, f"{bounds_name} {minx:g},{miny:g},{maxx:g},{maxy:g}")
    except CRSError as exc:
        raise CRSError(f"{crs_name} {_short(c)}: {exc}") from None


def transform_xy(src: CRSLike, dst: CRSLike, xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """Transform points ``(x, y)`` from CRS ``src`` to CRS ``dst`` (x=easting/lon first).

    Raises :class:`CRSError` when the result is not finite (point outside the CRS area).
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    try:
        ox, oy = transformer(src, dst).transform(xs, ys, errcheck=False)
    except pyproj.exceptions.ProjError as exc:
        raise CRSError(f"cannot transform coordinates from {_short(to_crs(src))} to {_short(to_crs(dst))}: "
                       f"{exc}") from None
    ox, oy = np.asarray(ox, dtype=float), np.asarray(oy, dtype=float)
    if not (np.all(np.isfinite(ox)) and np.all(np.isfinite(oy))):
        raise CRSError(f"cannot transform coordinates from {_short(to_crs(src))} to {_short(to_crs(dst))} "
                       f"(outside the area where the transformation is defined)")
    return ox, oy


def transform_bounds(
    src: CRSLike, dst: CRSLike, bounds: tuple[float, float, float, float], densify_pts: int = 21
) -> tuple[float, float, float, float]:
    """Bounding box ``(minx, miny, maxx, maxy)`` in ``src`` -> enclosing box in ``dst``.

    Every edge is densified with ``densify_pts`` points so curved edges are enclosed.
    """
    try:
        out = transformer(src, dst).transform_bounds(*bounds, densify_pts=densify_pts)
    except pyproj.exceptions.ProjError as exc:
        raise CRSError(f"cannot transform bounds {bounds} to {_short(to_crs(dst))}: {exc}") from exc
    if not np.all(np.isfinite(out)):
        raise CRSError(f"cannot transform bounds {bounds} to {_short(to_crs(dst))}")
    return tuple(float(v) for v in out)  # type: ignore[return-value]


def pixel_to_crs(transform: Affine, cols, rows) -> tuple[np.ndarray, np.ndarray]:
    """Raster pixel ``(col=x, row=y)`` (GDAL corner convention) -> CRS ``(x, y)``."""
    cols, rows = np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)
    t = transform
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def crs_to_pixel(transform: Affine, xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """CRS ``(x, y)`` -> raster pixel ``(col=x, row=y)`` (fractional, GDAL corner convention)."""
    return pixel_to_crs(~transform, xs, ys)


def crs_to_lonlat(crs: CRSLike, xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """CRS ``(x, y)`` in ``crs`` -> WGS84 ``(lon, lat)`` degrees."""
    return transform_xy(crs, WGS84, xs, ys)


def lonlat_to_crs(crs: CRSLike, lons, lats) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 ``(lon, lat)`` degrees -> CRS ``(x, y)`` in ``crs``."""
    return transform_xy(WGS84, crs, lons, lats)


def pixel_to_lonlat(transform: Affine, crs: CRSLike, cols, rows) -> tuple[np.ndarray, np.ndarray]:
    """Raster pixel ``(col, row)`` -> WGS84 ``(lon, lat)`` degrees."""
    return crs_to_lonlat(crs, *pixel_to_crs(transform, cols, rows))


def lonlat_to_pixel(transform: Affine, crs: CRSLike, lons, lats) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 ``(lon, lat)`` degrees -> raster pixel ``(col, row)`` (fractional)."""
    return crs_to_pixel(transform, *lonlat_to_crs(crs, lons, lats))


def pixel_box_to_polygon(transform: Affine, box: tuple[float, float, float, float]) -> Polygon:
    """Pixel box ``(x1, y1, x2, y2)`` (raster pixels) -> polygon in the raster CRS.

    All four corners go through the geotransform, so rotated or sheared rasters give
    the correct quadrilateral (not an axis-aligned envelope).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    xs, ys = pixel_to_crs(transform, [x1, x2, x2, x1], [y1, y1, y2, y2])
    return Polygon(zip(xs.tolist(), ys.tolist()))


def polygon_to_lonlat(polygon: Polygon, crs: CRSLike, densify: int = 0) -> Polygon:
    """Polygon in ``crs`` -> WGS84 lon/lat polygon, exterior counter-clockwise, holes clockwise.

    ``densify`` adds that many points per edge before transforming, so long edges
    follow their true curved shape in lon/lat. Antimeridian crossing is not handled.
    """

    def ring(coords) -> list[tuple[float, float]]:
        pts = np.asarray(coords, dtype=float)[:, :2]
        if densify > 0:
            t = np.linspace(0.0, 1.0, densify + 2)[:-1]
            segs = [a + (b - a) * t[:, None] for a, b in zip(pts[:-1], pts[1:])]
            pts = np.vstack([*segs, pts[-1:]])
        lon, lat = crs_to_lonlat(crs, pts[:, 0], pts[:, 1])
        return list(zip(lon.tolist(), lat.tolist()))

    out = Polygon(ring(polygon.exterior.coords), [ring(h.coords) for h in polygon.interiors])
    return orient(out, sign=1.0)


def geodesic_distance(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Distance in metres on the WGS84 ellipsoid between lon/lat points (degrees)."""
    _, _, dist = pyproj.Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=float)


def geodesic_circle(lon: float, lat: float, radius_m: float, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` lon/lat points (degrees) at ``radius_m`` metres on the ground around ``(lon, lat)``."""
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    lons, lats, _ = pyproj.Geod(ellps="WGS84").fwd(
        np.full(n, float(lon)), np.full(n, float(lat)), az, np.full(n, float(radius_m))
    )
    return np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
