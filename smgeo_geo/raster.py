"""Reference rasters: open a georeferenced GeoTIFF/COG and read resampled windows of it.

Frames: *raster pixels* ``(x=col, y=row)`` follow GDAL (``(0, 0)`` = outer top-left
corner of the top-left pixel, centres at ``+0.5``); *model pixels* ``(u, v)`` are
pixels of the image returned by :meth:`ReferenceRaster.read_window`, same corner
convention. :class:`PixelMapping` converts exactly between the two.

Only windows are ever read (GDAL windowed reads with ``out_shape`` resampling, which
also pick overviews when present), so memory grows with the requested window and
GDAL's block cache (``GDAL_CACHEMAX``), never with the raster size. A raster smaller
than the model input is not special: the caller asks for ``out_size`` and the window
is resampled (up-sampled) to exactly that size. Reads of one :class:`ReferenceRaster` from
several threads are serialised (a GDAL handle is not thread-safe); the pixels' use is not.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from smgeo_geo.coords import check_lonlat, crs_to_lonlat, geodesic_distance, pixel_to_crs, to_crs
from smgeo_geo.errors import CRSError, NotGeoreferencedError, RasterError, SMGeoError

STRETCH_PERCENTILES = (2.0, 98.0)
DATA_CUT = 0.75  # a search window is cut to its valid pixels when that leaves at most this share of its longer side
SUPPORTED_KINDS = {"u": "unsigned integer", "i": "integer", "f": "float"}  # numpy dtype kinds read as pixels


@dataclass(frozen=True)
class PixelMapping:
    """Exact affine map model pixel ``(u, v)`` -> raster pixel ``(x, y)``.

    ``x = col_off + u * scale_x`` and ``y = row_off + v * scale_y``; ``scale_*`` is
    raster pixels per model pixel. Both frames use the GDAL corner convention.
    """

    col_off: float
    row_off: float
    scale_x: float
    scale_y: float

    @property
    def affine(self) -> Affine:
        """The map as an Affine (model pixel -> raster pixel); ``raster.transform @ affine``
        is the geotransform of the model image (model pixel -> CRS)."""
        return Affine(self.scale_x, 0.0, self.col_off, 0.0, self.scale_y, self.row_off)

    def to_raster(self, us, vs) -> tuple[np.ndarray, np.ndarray]:
        """Model pixel ``(u, v)`` -> raster pixel ``(x, y)``."""
        us, vs = np.asarray(us, dtype=float), np.asarray(vs, dtype=float)
        return self.col_off + us * self.scale_x, self.row_off + vs * self.scale_y

    def to_model(self, xs, ys) -> tuple[np.ndarray, np.ndarray]:
        """Raster pixel ``(x, y)`` -> model pixel ``(u, v)``."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        return (xs - self.col_off) / self.scale_x, (ys - self.row_off) / self.scale_y

    def box_to_raster(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Model-pixel box ``(x1, y1, x2, y2)`` -> raster-pixel box."""
        (x1, x2), (y1, y2) = self.to_raster([box[0], box[2]], [box[1], box[3]])
        return float(x1), float(y1), float(x2), float(y2)

    def box_to_model(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """Raster-pixel box ``(x1, y1, x2, y2)`` -> model-pixel box."""
        (x1, x2), (y1, y2) = self.to_model([box[0], box[2]], [box[1], box[3]])
        return float(x1), float(y1), float(x2), float(y2)


def snap_window(window: Window) -> Window:
    """Grow ``window`` outwards to whole raster pixels (integer offsets and sizes)."""
    c0, r0 = math.floor(window.col_off + 1e-9), math.floor(window.row_off + 1e-9)
    c1 = math.ceil(window.col_off + window.width - 1e-9)
    r1 = math.ceil(window.row_off + window.height - 1e-9)
    return Window(c0, r0, c1 - c0, r1 - r0)


def stretch_to_uint8(band: np.ndarray, valid: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear stretch of ``band`` from ``[lo, hi]`` to ``[0, 255]``; invalid pixels -> 0."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.clip((band.astype(np.float64) - lo) * scale, 0, 255)
    out = np.where(valid & np.isfinite(out), np.rint(out), 0)
    return out.astype(np.uint8)


def percentile_limits(band: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """2nd and 98th percentile of the valid, finite pixels of ``band`` (``(0, 0)`` if none)."""
    vals = band[valid & np.isfinite(band)]
    if vals.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(vals, STRETCH_PERCENTILES)
    return float(lo), float(hi)


DEGREE_M = 111_320.0  # metres per degree of latitude (size estimates in geographic CRSs)


class ReferenceRaster:
    """An open georeferenced reference raster; use as a context manager or call :meth:`close`.

    Attributes: ``path``, ``width``/``height`` (raster pixels), ``crs`` (rasterio CRS),
    ``transform`` (Affine, raster pixel -> CRS), ``nodata``, ``bands`` (1-based indexes
    of the three bands that become R, G, B).
    """

    def __init__(self, dataset, path: str, bands: Sequence[int] | None = None,
                 stretch: Literal["window", "raster"] = "window") -> None:
        self.dataset = dataset
        self._read_lock = threading.Lock()  # a GDAL dataset handle must not be read from two threads at once
        self.path = path
        self.width: int = dataset.width
        self.height: int = dataset.height
        self.nodata = dataset.nodata
        self.stretch = stretch
        self.bands = self._choose_bands(bands)
        self.dtype = self._check_dtype()
        self._raster_limits: list[tuple[float, float]] | None = None
        self.transform, self.crs = self._georeferencing()

    # -- set-up ---------------------------------------------------------------------------
    def _choose_bands(self, bands: Sequence[int] | None) -> tuple[int, int, int]:
        count = self.dataset.count
        if count < 1:
            raise RasterError(f"{self.path}: raster has no bands")
        given = bands if bands is not None else ((1, 2, 3) if count >= 3 else (1,))
        try:
            bands = tuple(int(b) for b in given)
            ok = all(not isinstance(g, bool) and g == b for g, b in zip(given, bands))
        except (TypeError, ValueError):
            ok = False
        if not ok or len(bands) not in (1, 3) or any(b < 1 or b > count for b in bands):
            shown = tuple(given) if isinstance(given, (list, tuple)) else given
            raise RasterError(f"{self.path}: bands {shown!r} invalid; give 1 or 3 band numbers in 1..{count}")
        return bands * 3 if len(bands) == 1 else bands  # type: ignore[return-value]

    def _check_dtype(self) -> np.dtype:
        """The pixel type of the chosen bands; :class:`RasterError` unless integer or float."""
        for b in sorted(set(self.bands)):
            name = self.dataset.dtypes[b - 1]
            try:
                kind = np.dtype(name).kind
            except TypeError:  # GDAL types numpy lacks (complex_int16)
                kind = "?"
            if kind not in SUPPORTED_KINDS:
                raise RasterError(f"{self.path}: band {b} has data type {name}; expected unsigned integer, "
                                  f"integer or float pixels (complex and other types cannot be shown as an image)")
        return np.dtype(self.dataset.dtypes[self.bands[0] - 1])

    def _georeferencing(self):
        ds = self.dataset
        gcps, gcp_crs = ds.gcps
        if ds.transform.is_identity and not gcps:
            raise NotGeoreferencedError(f"{self.path}: raster has no geotransform and no GCPs")
        # With GCPs only, a least-squares affine fit stands in for the geotransform.
        transform = ds.transform if not ds.transform.is_identity else _fit_gcps(gcps, self.path)
        check_geotransform(transform, self.path)
        crs = ds.crs if ds.crs is not None else gcp_crs
        if crs is None or not crs.to_wkt():
            raise CRSError(f"{self.path}: raster has no CRS")
        try:
            pcrs = to_crs(crs)
        except CRSError as exc:
            raise CRSError(f"{self.path}: {exc}") from exc
        # centres of the corner pixels and the centre: a global raster may reach +-180 / +-90 exactly
        w, h = self.width, self.height
        xs, ys = pixel_to_crs(transform, [0.5, w - 0.5, w - 0.5, 0.5, w / 2], [0.5, 0.5, h - 0.5, h - 0.5, h / 2])
        if pcrs.is_geographic and not (np.all(np.abs(xs) <= 180) and np.all(np.abs(ys) <= 90)):
            raise RasterError(f"{self.path}: pixel coordinates lon {xs.min():g}..{xs.max():g}, lat {ys.min():g}.."
                              f"{ys.max():g} lie outside lon -180..180 / lat -90..90 degrees of its geographic CRS")
        try:  # every result is also given in lon/lat: the raster must be transformable to WGS84
            check_lonlat(pcrs, xs, ys, "the raster's pixels")
        except CRSError as exc:
            raise CRSError(f"{self.path}: {exc}") from exc
        return transform, crs

    # -- properties -----------------------------------------------------------------------
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of the raster in its CRS (envelope if rotated)."""
        xs, ys = pixel_to_crs(self.transform, [0, self.width, self.width, 0], [0, 0, self.height, self.height])
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    @functools.cached_property
    def pixel_size_m(self) -> float:
        """Side of one raster pixel on the ground in metres at the raster's centre
        (:meth:`pixel_size_m_at` there)."""
        return self.pixel_size_m_at(self.width / 2, self.height / 2)

    def pixel_size_m_at(self, col: float, row: float) -> float:
        """Side of one raster pixel on the ground in metres at raster pixel ``(col, row)`` (x =
        column, y = row, corner-based): the square root of its area on the WGS84 ellipsoid, whatever
        the CRS (a projection's scale there counted: Web Mercator's metres are cos(latitude) ground
        metres, so a mosaic from 40 to 60 deg N has pixels a third smaller on the ground at its top
        than at its bottom; a geographic CRS's degrees of longitude shrink with latitude; feet are
        feet). Windows and radii around a point use the size there."""
        t = self.transform
        area = abs(t.a * t.e - t.b * t.d)  # CRS units^2
        try:
            c, r = float(col), float(row)
            xs, ys = pixel_to_crs(t, [c, c + 1, c], [r, r, r + 1])
            lon, lat = crs_to_lonlat(self.crs, xs, ys)
            along_col = float(geodesic_distance(lon[0], lat[0], lon[1], lat[1]))  # ground metres per pixel step
            along_row = float(geodesic_distance(lon[0], lat[0], lon[2], lat[2]))
            side = math.sqrt(area * along_col / math.hypot(t.a, t.d) * along_row / math.hypot(t.b, t.e))
            if math.isfinite(side) and side > 0:
                return side
        except SMGeoError:
            pass
        # the point has no lon/lat (a CRS without a transform to WGS84): the CRS's own units
        if self.crs.is_geographic:
            return math.sqrt(area) * DEGREE_M
        try:
            return math.sqrt(area) * float(self.crs.linear_units_factor[1])  # feet, US survey feet ... -> metres
        except rasterio.errors.CRSError:  # a CRS without linear units: taken as metres
            return math.sqrt(area)

    def close(self) -> None:
        """Close the underlying rasterio dataset."""
        self.dataset.close()

    def __enter__(self) -> "ReferenceRaster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReferenceRaster({self.path!r}, {self.width}x{self.height}, bands={self.bands})"

    # -- reading --------------------------------------------------------------------------
    def read_window(self, window: Window, out_size: tuple[int, int],
                    resampling: Resampling = Resampling.bilinear) -> tuple[np.ndarray, PixelMapping]:
        """Read ``window`` (raster pixels, snapped outwards to whole pixels) resampled to
        ``out_size = (width, height)`` model pixels.

        Returns an ``HxWx3`` uint8 image and the :class:`PixelMapping` model -> raster
        pixels. Parts outside the raster and nodata pixels are 0. See
        :meth:`read_window_with_mask` for the valid-pixel mask.
        """
        image, _, mapping = self.read_window_with_mask(window, out_size, resampling)
        return image, mapping

    def _holds(self, win: Window) -> bool:
        """Whether ``win`` (whole raster pixels) lies wholly inside the raster (else a boundless read)."""
        return (win.col_off >= 0 and win.row_off >= 0 and win.col_off + win.width <= self.width
                and win.row_off + win.height <= self.height)

    def read_window_with_mask(self, window: Window, out_size: tuple[int, int],
                              resampling: Resampling = Resampling.bilinear):
        """Like :meth:`read_window` but returns ``(image, valid, mapping)``; ``valid`` is an
        ``HxW`` bool array, False for nodata / masked / outside-the-raster pixels."""
        out_w, out_h = (int(v) for v in out_size)
        if out_w < 1 or out_h < 1:
            raise SMGeoError(f"out_size must be two positive integers (width, height), got {out_size}")
        win = snap_window(window)
        if win.width < 1 or win.height < 1:
            raise SMGeoError(f"{self.path}: empty window {window}")
        inside = self._holds(win)
        unique = sorted(set(self.bands))
        kw = dict(window=win, boundless=not inside)
        try:
            with self._read_lock:
                data = self.dataset.read(unique, out_shape=(len(unique), out_h, out_w), resampling=resampling,
                                         fill_value=0 if not inside else None, **kw)
                masks = self.dataset.read_masks(unique, out_shape=(len(unique), out_h, out_w),
                                                resampling=Resampling.nearest, **kw)
        except rasterio.errors.RasterioError as exc:
            raise RasterError(f"{self.path}: cannot read window {win}: {exc}") from exc
        valid = np.all(masks > 0, axis=0)
        if data.dtype.kind == "f":
            valid &= np.all(np.isfinite(data), axis=0)
        channels = [unique.index(b) for b in self.bands]
        if data.dtype == np.uint8:
            image = np.where(valid[None], data, 0).astype(np.uint8)[channels]
        else:
            limits = self.raster_limits() if self.stretch == "raster" else None
            stretched = {}
            for i, b in enumerate(unique):
                lo, hi = limits[i] if limits else percentile_limits(data[i], valid)
                stretched[b] = stretch_to_uint8(data[i], valid, lo, hi)
            image = np.stack([stretched[b] for b in self.bands])
        mapping = PixelMapping(float(win.col_off), float(win.row_off), win.width / out_w, win.height / out_h)
        return np.ascontiguousarray(image.transpose(1, 2, 0)), valid, mapping

    def data_window(self, window: Window, max_side: int = 256) -> Window | None:
        """The part of ``window`` (raster pixels) that holds valid pixels: the bounding window
        of the valid cells of its mask read at most ``max_side`` cells a side (GDAL picks mask
        overviews when present), grown by one cell, within the raster; ``None`` when none is valid.
        A survey's orthophoto in a larger mosaic is mostly nodata around it: searching only
        where there are pixels keeps a large footprint's window near native resolution."""
        win = snap_window(window)
        scale = min(1.0, max_side / max(win.width, win.height, 1))
        out_h, out_w = max(1, round(win.height * scale)), max(1, round(win.width * scale))
        unique = sorted(set(self.bands))
        try:
            with self._read_lock:
                masks = self.dataset.read_masks(unique, out_shape=(len(unique), out_h, out_w),
                                                resampling=Resampling.nearest, window=win, boundless=not self._holds(win))
        except rasterio.errors.RasterioError as exc:
            raise RasterError(f"{self.path}: cannot read the mask of window {win}: {exc}") from exc
        valid = np.all(masks > 0, axis=0)
        if not valid.any():
            return None
        rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
        cell_w, cell_h = win.width / out_w, win.height / out_h
        c0 = max(0, math.floor(win.col_off + (cols[0] - 1) * cell_w))
        r0 = max(0, math.floor(win.row_off + (rows[0] - 1) * cell_h))
        c1 = min(self.width, math.ceil(win.col_off + (cols[-1] + 2) * cell_w))
        r1 = min(self.height, math.ceil(win.row_off + (rows[-1] + 2) * cell_h))
        c0, r0 = max(c0, win.col_off), max(r0, win.row_off)
        c1, r1 = min(c1, win.col_off + win.width), min(r1, win.row_off + win.height)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def within_data(self, window: Window) -> Window | None:
        """``window`` (raster pixels) cut to :meth:`data_window` where that leaves at most
        :data:`DATA_CUT` of its longer side, else ``window`` itself (trimming a few nodata rows
        would only move the scale a search reads it at, and what it finds, a little); ``None``
        when it holds no valid pixel or less than 16 pixels a side of them. What the
        registration (the photo's footprint) and SMGeo (the photo's GPS footprint) search."""
        data = self.data_window(window)
        if data is None or data.width < 16 or data.height < 16:
            return None
        return data if max(data.width, data.height) <= DATA_CUT * max(window.width, window.height) else window

    def raster_limits(self, max_side: int = 1024) -> list[tuple[float, float]]:
        """Per-band (unique bands, ascending) 2-98 % limits from a decimated whole-raster read
        (at most ``max_side`` pixels a side; GDAL uses overviews when present). Cached."""
        if self._raster_limits is None:
            f = max(self.width, self.height) / max_side
            shape = (max(1, round(self.height / max(f, 1))), max(1, round(self.width / max(f, 1))))
            unique = sorted(set(self.bands))
            try:
                with self._read_lock:
                    data = self.dataset.read(unique, out_shape=(len(unique), *shape), resampling=Resampling.nearest)
                    masks = self.dataset.read_masks(unique, out_shape=(len(unique), *shape))
            except rasterio.errors.RasterioError as exc:
                raise RasterError(f"{self.path}: cannot read the raster: {exc}") from exc
            valid = np.all(masks > 0, axis=0)
            self._raster_limits = [percentile_limits(d, valid) for d in data]
        return self._raster_limits


def check_geotransform(transform: Affine, path: str = "raster") -> None:
    """:class:`RasterError` naming ``path`` unless ``transform`` (raster pixel -> CRS) has six
    finite coefficients and is invertible (non-zero pixel size, pixel axes not parallel)."""
    coeffs = tuple(transform)[:6]
    det = transform.a * transform.e - transform.b * transform.d
    if not all(math.isfinite(v) for v in coeffs) or not math.isfinite(det) or det == 0:
        raise RasterError(f"{path}: degenerate geotransform {tuple(round(v, 12) for v in coeffs)}; expected finite "
                          f"coefficients with a non-zero pixel size and non-parallel pixel axes")


def _fit_gcps(gcps, path: str) -> Affine:
    """Least-squares affine through the ground control points (at least 3, not collinear)."""
    if len(gcps) < 3:
        raise NotGeoreferencedError(f"{path}: raster has no geotransform and only {len(gcps)} GCP(s); "
                                    f"at least 3 are needed")
    return rasterio.transform.from_gcps(gcps)


def open_reference(path: str | os.PathLike, bands: Sequence[int] | None = None,
                   stretch: Literal["window", "raster"] = "window") -> ReferenceRaster:
    """Open the georeferenced raster at ``path`` (GeoTIFF, COG, anything GDAL reads).

    ``bands``: 1-based band numbers for R, G, B (3 numbers) or one band repeated to three
    channels; default first three bands, or band 1 repeated when there are fewer.
    ``stretch``: for non-8-bit data, compute the 2-98 % stretch per window or once for
    the whole raster (from a decimated read). Raises :class:`RasterError` (missing or
    unreadable file, bad bands, pixels that are not integer or float, a degenerate
    geotransform, geographic coordinates beyond lon -180..180 / lat -90..90),
    :class:`NotGeoreferencedError`, :class:`CRSError` (no CRS, or one that cannot be
    transformed to WGS84); every message names ``path``. Only the header is read.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and "://" not in path and not path.startswith("/vsi"):
        raise RasterError(f"{path}: no such file")
    if stretch not in ("window", "raster"):
        raise RasterError(f"{path}: stretch must be 'window' or 'raster', got {stretch!r}")
    try:
        with warnings.catch_warnings():  # reported below as NotGeoreferencedError
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise RasterError(f"{path}: cannot open as a raster: {exc}") from exc
    try:
        return ReferenceRaster(dataset, path, bands=bands, stretch=stretch)
    except BaseException:
        dataset.close()
        raise
