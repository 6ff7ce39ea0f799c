"""Choosing search windows in a big reference raster, and merging boxes found in several.

Windows are :class:`rasterio.windows.Window` values in *raster pixels* (GDAL corner
convention: ``(0, 0)`` is the outer top-left corner of the top-left pixel), snapped
outwards to whole pixels. ``window_from_bounds`` / ``window_from_center`` return the
window as asked, which may stick out of the raster (``read_window`` fills that part
with 0 and marks it invalid, keeping the ground scale isotropic); pass ``clip=True``
to get only the part inside. A window that does not overlap the raster at all is a
:class:`WindowError` naming the raster and the requested area.

The functions accept any *raster-like* object with ``width``, ``height``,
``transform`` (Affine, raster pixel -> CRS), ``crs`` and optionally ``path``, such as
:class:`smgeo_geo.raster.ReferenceRaster`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rasterio.windows import Window

from smgeo_geo.coords import CRSLike, crs_to_pixel, geodesic_circle, lonlat_to_pixel, transform_xy
from smgeo_geo.errors import CRSError, MetadataError, OptionError, WindowError
from smgeo_geo.raster import snap_window


def _name(raster) -> str:
    return str(getattr(raster, "path", None) or "raster")


def _envelope(raster, cols: np.ndarray, rows: np.ndarray, what: str, clip: bool, outward: bool = True) -> Window:
    """Whole-pixel window around the raster-pixel points (edges snapped outwards, or to the
    nearest pixel edge when ``outward`` is False); checked against the raster."""
    if outward:
        win = snap_window(Window(cols.min(), rows.min(), cols.max() - cols.min(), rows.max() - rows.min()))
    else:
        c0, r0 = round(float(cols.min())), round(float(rows.min()))
        win = Window(c0, r0, max(1, round(float(cols.max())) - c0), max(1, round(float(rows.max())) - r0))
    c0, r0 = max(win.col_off, 0), max(win.row_off, 0)
    c1 = min(win.col_off + win.width, raster.width)
    r1 = min(win.row_off + win.height, raster.height)
    if c1 <= c0 or r1 <= r0:
        raise WindowError(
            f"{_name(raster)}: requested area {what} does not overlap the raster "
            f"({raster.width}x{raster.height} pixels; requested pixel window "
            f"cols {win.col_off}..{win.col_off + win.width}, rows {win.row_off}..{win.row_off + win.height})"
        )
    return Window(c0, r0, c1 - c0, r1 - r0) if clip else win


def window_from_bounds(raster, bounds: Sequence[float], bounds_crs: CRSLike, *,
                       densify_pts: int = 21, clip: bool = False) -> Window:
    """Window enclosing ``bounds = (minx, miny, maxx, maxy)`` given in ``bounds_crs``
    (any CRS; e.g. lon/lat with 4326). Each edge is densified with ``densify_pts`` points
    before transforming, so curved edges and rotated rasters are enclosed."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    what = f"bounds {tuple(bounds)} in {str(bounds_crs)[:60]}"
    if not (minx < maxx and miny < maxy):
        raise WindowError(f"{_name(raster)}: requested area {what} is empty (need minx < maxx, miny < maxy)")
    t = np.linspace(0.0, 1.0, densify_pts + 2)
    xs = np.concatenate([minx + (maxx - minx) * t, np.full_like(t, maxx), maxx - (maxx - minx) * t, np.full_like(t, minx)])
    ys = np.concatenate([np.full_like(t, miny), miny + (maxy - miny) * t, np.full_like(t, maxy), maxy - (maxy - miny) * t])
    try:
        cx, cy = transform_xy(bounds_crs, raster.crs, xs, ys)
    except CRSError as exc:
        raise WindowError(f"{_name(raster)}: requested area {what}: {exc}") from exc
    cols, rows = crs_to_pixel(raster.transform, cx, cy)
    return _envelope(raster, cols, rows, what, clip)


def window_from_center(raster, lon: float, lat: float, radius_m: float, *, clip: bool = False) -> Window:
    """Square-on-the-ground window enclosing the circle of ``radius_m`` metres (measured on
    the WGS84 ellipsoid) around WGS84 ``(lon, lat)``. Correct for projected CRSs with
    scale distortion (UTM, Web Mercator) and for geographic CRSs alike, since the circle
    is built geodesically (72 points) and then projected into raster pixels; the pixel
    envelope's edges are rounded to the nearest whole pixel (error <= 0.5 pixel a side)."""
    what = f"lon={lon}, lat={lat}, radius={radius_m} m"
    if not (radius_m > 0 and math.isfinite(radius_m)):
        raise WindowError(f"{_name(raster)}: requested area {what}: radius must be a positive number of metres")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise WindowError(f"{_name(raster)}: requested area {what}: lon/lat out of range")
    lons, lats = geodesic_circle(lon, lat, radius_m, 72)
    try:
        cols, rows = lonlat_to_pixel(raster.transform, raster.crs, lons, lats)
    except CRSError as exc:
        raise WindowError(f"{_name(raster)}: requested area {what}: {exc}") from exc
    return _envelope(raster, cols, rows, what, clip, outward=False)


def sliding_windows(raster, size: int | tuple[int, int], overlap: float = 0.25) -> list[Window]:
    """Windows of ``size`` raster pixels (int or ``(width, height)``) covering the whole
    raster, row by row, adjacent windows overlapping by the fraction ``overlap`` in [0, 1).
    The last window of each row/column is flush with the raster edge, so every window lies
    inside the raster; a raster smaller than ``size`` gives one window: the whole raster."""
    w, h = (size, size) if isinstance(size, (int, np.integer)) else size
    if w < 1 or h < 1 or not 0 <= overlap < 1:
        raise WindowError(f"{_name(raster)}: bad sliding window size {size} / overlap {overlap}")

    def starts(total: int, n: int) -> list[int]:
        if total <= n:
            return [0]
        step = max(1, int(round(n * (1 - overlap))))
        return sorted(set(range(0, total - n, step)) | {total - n})

    ww, hh = min(w, raster.width), min(h, raster.height)
    return [Window(c, r, ww, hh) for r in starts(raster.height, h) for c in starts(raster.width, w)]


# -- the one search-window resolver ------------------------------------------------------
WINDOW_MODES = ("auto", "whole", "bounds", "center", "photo_gps", "search")
MAX_SEARCH_WINDOWS = 400  # a sliding search needing more windows asks for a window instead


@dataclass(frozen=True)
class WindowSpec:
    """How the user asked to choose the search window (what the CLI options, a batch row,
    a worker request or the QGIS panel say), before it meets a raster.

    ``mode``: ``"auto"`` (default: the photo's metadata footprint when the photo has GPS and
    a height, else the whole raster, searched with sliding windows when it is large),
    ``"whole"`` (the whole raster; sliding windows when large), ``"bounds"`` (``bounds`` =
    (minx, miny, maxx, maxy) in ``bounds_crs``, default WGS84 lon/lat), ``"center"``
    (WGS84 ``lon``, ``lat`` and ``radius_m`` metres on the ground), ``"photo_gps"`` (the
    photo's metadata footprint; an error when the photo has none) or ``"search"``
    (sliding windows over the whole raster).
    """

    mode: str = "auto"
    bounds: tuple[float, float, float, float] | None = None
    bounds_crs: str = "EPSG:4326"
    lon: float | None = None
    lat: float | None = None
    radius_m: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in WINDOW_MODES:
            raise OptionError(f"window mode must be one of {', '.join(WINDOW_MODES)}, got {self.mode!r}")
        if self.mode == "bounds":
            if self.bounds is None or len(self.bounds) != 4 or not all(_finite(v) for v in self.bounds):
                raise OptionError(f"window bounds must be four numbers MINX,MINY,MAXX,MAXY, got {self.bounds!r}")
            object.__setattr__(self, "bounds", tuple(float(v) for v in self.bounds))
        if self.mode == "center":
            for name in ("lon", "lat", "radius_m"):
                if not _finite(getattr(self, name)):
                    raise OptionError(f"window centre needs a number for {name}, got {getattr(self, name)!r}")
            if not -180 <= float(self.lon) <= 180 or not -90 <= float(self.lat) <= 90:
                raise OptionError(f"window centre lon={self.lon}, lat={self.lat} out of range "
                                  f"(need -180..180, -90..90 degrees)")
            if not float(self.radius_m) > 0:
                raise OptionError(f"window radius must be a positive number of metres, got {self.radius_m!r}")

    @classmethod
    def from_dict(cls, spec: dict | None) -> "WindowSpec":
        """From a worker request's ``window`` object: ``{"mode": ..., "bounds": [...], "crs": ...,
        "lon": ..., "lat": ..., "radius_m": ...}`` (``None`` = auto)."""
        if spec is None:
            return cls()
        if not isinstance(spec, dict):
            raise OptionError(f"window must be an object with a 'mode', got {spec!r}")
        crs = spec.get("crs") or "EPSG:4326"
        return cls(mode=spec.get("mode", "auto"), bounds=spec.get("bounds"), bounds_crs=str(crs),
                   lon=spec.get("lon"), lat=spec.get("lat"), radius_m=spec.get("radius_m"))

    def to_dict(self) -> dict:
        out: dict = {"mode": self.mode}
        if self.mode == "bounds":
            out.update(bounds=list(self.bounds), crs=self.bounds_crs)
        if self.mode == "center":
            out.update(lon=self.lon, lat=self.lat, radius_m=self.radius_m)
        return out


@dataclass(frozen=True)
class ResolvedWindow:
    """A :class:`WindowSpec` met with a raster: ``window`` in raster pixels (clipped to the
    raster) or ``None`` with ``search=True`` for a sliding search over the whole raster;
    ``mode`` is what was used (``auto`` resolves to another mode) and ``reason`` says why,
    in words, for results and logs."""

    window: Window | None
    search: bool
    mode: str
    reason: str


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def resolve(spec: WindowSpec, raster, *, max_side: int, photo=None, search_size: int | None = None) -> ResolvedWindow:
    """Where to search in ``raster`` for ``spec``: the one resolver of the CLI, batch,
    worker and QGIS plugin.

    ``max_side``: the largest raster side (pixels) that is used whole; a bigger raster is
    searched with sliding windows of ``search_size`` pixels (default ``max_side // 4``),
    refused with a :class:`WindowError` when that needs more than ``MAX_SEARCH_WINDOWS``.
    ``photo``: the drone photo's path (for ``auto`` / ``photo_gps``). Errors name the
    raster and what was asked.
    """
    mode = spec.mode
    if mode == "bounds":
        win = window_from_bounds(raster, spec.bounds, spec.bounds_crs, clip=True)
        return ResolvedWindow(win, False, mode, f"bounds {list(spec.bounds)} in {spec.bounds_crs}")
    if mode == "center":
        win = window_from_center(raster, float(spec.lon), float(spec.lat), float(spec.radius_m), clip=True)
        return ResolvedWindow(win, False, mode, f"{spec.radius_m:g} m around lon {spec.lon}, lat {spec.lat}")
    if mode in ("photo_gps", "auto") and photo is not None:
        from smgeo_geo.photo_meta import approximate_footprint, read_photo_meta

        try:
            fp = approximate_footprint(read_photo_meta(photo))
            around = window_from_center(raster, fp.lon, fp.lat, fp.radius_m, clip=True)
            win = raster.within_data(around)  # a survey in a larger mosaic: not the nodata around it
            if win is None:
                raise WindowError(f"{_name(raster)}: the photo's metadata footprint ({fp.radius_m:.0f} m around lon "
                                  f"{fp.lon:.6f}, lat {fp.lat:.6f}) holds no valid pixels of the raster")
            cut = " (where the raster has pixels)" if win != around else ""
            return ResolvedWindow(win, False, "photo_gps", f"photo metadata footprint{cut}: {fp.radius_m:.0f} m "
                                  f"around lon {fp.lon:.6f}, lat {fp.lat:.6f}")
        except (MetadataError, WindowError) as exc:
            if mode == "photo_gps":
                raise
            note = f"photo metadata not used ({exc}); "
    elif mode == "photo_gps":
        raise MetadataError("window mode photo_gps needs the drone photo")
    else:
        note = ""
    size = search_size or max(32, max_side // 4)
    if mode != "search" and max(raster.width, raster.height) <= max_side:
        return ResolvedWindow(Window(0, 0, raster.width, raster.height), False, "whole", note + "whole raster")
    n = len(sliding_windows(raster, size))
    if n > MAX_SEARCH_WINDOWS:
        raise WindowError(f"{_name(raster)}: raster is {raster.width}x{raster.height} pixels, a sliding search would "
                          f"need {n} windows (more than {MAX_SEARCH_WINDOWS}); choose a search window (a bounding "
                          f"box, a lon/lat centre and radius, or a photo with GPS metadata)")
    return ResolvedWindow(None, True, "search", note + f"sliding search, {n} windows of {size} px")


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(x1, y1, x2, y2)`` box with each row of ``boxes`` (same pixel frame)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def merge_boxes(boxes, scores, iou_threshold: float = 0.5,
                max_out: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-maximum suppression across windows.

    ``boxes``: Nx4 ``(x1, y1, x2, y2)`` in *raster pixels* (map window boxes with
    ``PixelMapping.box_to_raster`` first); ``scores``: N. Returns ``(boxes, scores,
    keep)`` of the kept boxes, best score first; ``keep`` indexes the input.
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and (max_out is None or len(keep) < max_out):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou_threshold]
    idx = np.asarray(keep, dtype=int)
    return boxes[idx], scores[idx], idx
