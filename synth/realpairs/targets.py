"""What the pairs are about: building footprints from a vector file, or salient structures.

Every target is a polygon in the dataset's *work CRS*: the projected CRS (metres, an EPSG
code) the satellite tiles are cut in and named by (:func:`work_epsg`: the orthophoto's own
CRS when it is such a CRS, else the WGS 84 UTM zone of its centre).

* **Footprints** (:func:`footprint_targets`): polygons of a GeoPackage / GeoJSON / Shapefile
  (anything pyogrio reads, any CRS), kept when they lie on valid orthophoto (and DSM) pixels
  and fit a tile; the click goes on a visible point deep inside the footprint, the truth box
  is the footprint's envelope.
* **Salient structures** (:func:`salient_targets`): strong corners of the orthophoto seen at
  the scale of a region (Shi-Tomasi on the image resampled so a region is
  :data:`SALIENT_REGION_PX` pixels), away from nodata; the target is a square region of
  ``region_m`` around the point, the click is the point itself, when visible.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np
import pyproj
import shapely
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.ops import polylabel

from smgeo_geo.coords import to_crs, transform_xy
from smgeo_geo.errors import InputFileError, OptionError, RasterError
from smgeo_geo.raster import ReferenceRaster
from smgeo_synth.realpairs.render import SPECK_M2, fill_small_holes

OVERVIEW_SIDE = 2048  # pixels a side of the decimated orthophoto targets and tiles are checked on
MIN_AREA_M2 = 12.0  # smaller footprints are not targets
SALIENT_REGION_PX = 24  # a salient region is this many pixels of the image the corners are found on
SALIENT_QUALITY = 0.03  # Shi-Tomasi quality level (share of the strongest corner's response)
OUTLINE_STEP_M = 2.0  # footprints are checked for valid pixels every this many metres of outline


@dataclass(frozen=True)
class Target:
    """One object pairs can be made of. ``polygon``: work CRS; ``anchor``: a point on the target
    (work CRS; footprints: the point of the polygon furthest from its edges, salient: the
    corner found); ``kind``: ``"footprint"`` or ``"salient"``; ``source``: the feature's
    position in the vector file, or the corner's orthophoto pixel."""

    tid: int
    polygon: Polygon | MultiPolygon
    anchor: tuple[float, float]
    class_name: str
    kind: str
    source: str

    @property
    def size_m(self) -> float:
        x0, y0, x1, y1 = self.polygon.bounds
        return max(x1 - x0, y1 - y0)

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)


def work_epsg(raster: ReferenceRaster) -> int:
    """EPSG code of the CRS tiles are cut in: the raster's when it is projected in metres with an
    EPSG code, else the WGS 84 UTM zone (north or south) of the raster's centre."""
    crs = to_crs(raster.crs)
    epsg = crs.to_epsg()
    metres = all(a.unit_name in ("metre", "meter") for a in crs.axis_info[:2])
    if crs.is_projected and metres and epsg is not None:
        return int(epsg)
    x0, y0, x1, y1 = raster.bounds
    (lon,), (lat,) = transform_xy(crs, 4326, [(x0 + x1) / 2], [(y0 + y1) / 2])
    zone = min(60, int((float(lon) + 180) // 6) + 1)
    return (32600 if lat >= 0 else 32700) + zone


@dataclass
class Overview:
    """The orthophoto decimated to at most :data:`OVERVIEW_SIDE` pixels a side: ``grey`` uint8,
    ``valid`` (eroded by a pixel, so a True pixel is valid through and through), ``transform``
    (overview pixel -> orthophoto CRS) and that ``crs``."""

    grey: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: pyproj.CRS

    @classmethod
    def of(cls, raster: ReferenceRaster, max_side: int = OVERVIEW_SIDE) -> "Overview":
        f = max(1.0, max(raster.width, raster.height) / max_side)
        out = (max(1, round(raster.width / f)), max(1, round(raster.height / f)))
        image, valid, mapping = raster.read_window_with_mask(Window(0, 0, raster.width, raster.height), out,
                                                              Resampling.average if f > 1 else Resampling.nearest)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        out = cls(grey, valid, raster.transform @ mapping.affine, to_crs(raster.crs))
        px_m2 = abs(out.transform.determinant) * (out.crs.axis_info[0].unit_conversion_factor ** 2
                                                    if out.crs.is_projected else 111_000.0 ** 2)
        valid = fill_small_holes(valid, SPECK_M2 / px_m2)
        out.valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0) > 0
        return out

    def pixels(self, xs, ys, crs) -> tuple[np.ndarray, np.ndarray]:
        """Overview pixels ``(col, row)`` of points in ``crs``."""
        ox, oy = transform_xy(crs, self.crs, np.asarray(xs, float), np.asarray(ys, float))
        c, r = ~self.transform @ (np.asarray(ox), np.asarray(oy))
        return np.asarray(c), np.asarray(r)

    def valid_at(self, xs, ys, crs) -> np.ndarray:
        """Whether the orthophoto is valid at points ``(xs, ys)`` in ``crs`` (False off it)."""
        c, r = self.pixels(xs, ys, crs)
        ci, ri = np.floor(c).astype(int), np.floor(r).astype(int)
        h, w = self.valid.shape
        inside = (ci >= 0) & (ri >= 0) & (ci < w) & (ri < h)
        out = np.zeros(ci.shape, bool)
        out[inside] = self.valid[ri[inside], ci[inside]]
        return out

    def largest_square_m(self, epsg: int) -> float:
        """Side (metres) of the largest square of valid pixels (overview axes)."""
        dist = cv2.distanceTransform(np.pad(self.valid, 1).astype(np.uint8), cv2.DIST_C, 3)
        return 2.0 * float(dist.max()) * self.pixel_m(epsg)

    def pixel_m(self, epsg: int) -> float:
        """Metres (work CRS) of one overview pixel near the centre."""
        h, w = self.valid.shape
        xs, ys = self.transform @ (np.array([w / 2, w / 2 + 1, w / 2]), np.array([h / 2, h / 2, h / 2 + 1]))
        ex, ey = transform_xy(self.crs, epsg, xs, ys)
        return float(np.sqrt(math.hypot(ex[1] - ex[0], ey[1] - ey[0]) * math.hypot(ex[2] - ex[0], ey[2] - ey[0])))


def _outline_points(geom: Polygon | MultiPolygon) -> np.ndarray:
    """Points every :data:`OUTLINE_STEP_M` along the outline of ``geom`` (its CRS), and its vertices."""
    dense = shapely.segmentize(geom.boundary, OUTLINE_STEP_M)
    return shapely.get_coordinates(dense)


def _largest(geom: Polygon | MultiPolygon) -> Polygon:
    return max(geom.geoms, key=lambda g: g.area) if isinstance(geom, MultiPolygon) else geom


def _on_data(geom, anchor, overview: Overview, epsg: int, surface) -> bool:
    """All of ``geom``'s outline and its anchor on valid orthophoto pixels (and DSM heights)."""
    pts = np.r_[_outline_points(geom), [anchor]]
    if not overview.valid_at(pts[:, 0], pts[:, 1], epsg).all():
        return False
    if surface is not None and surface.terrain is not None:
        lon, lat = transform_xy(epsg, 4326, pts[:, 0], pts[:, 1])
        return bool(np.isfinite(surface.heights(lon, lat)).all())
    return True


def footprint_targets(path: str | os.PathLike, overview: Overview, epsg: int, *, max_size_m: float,
                      layer: str | int | None = None, class_name: str = "building", class_field: str | None = None,
                      surface=None, min_area_m2: float = MIN_AREA_M2) -> list[Target]:
    """Targets from the polygons of the vector file ``path`` (``layer``: name or index; default
    the first), in file order: reprojected to ``EPSG:epsg``; kept when at least
    ``min_area_m2``, at most ``max_size_m`` across and on valid orthophoto (and ``surface``'s
    DSM) pixels. ``class_field``: the attribute holding each feature's class (empty values get
    ``class_name``). :class:`InputFileError` naming the file when it cannot be read, has no
    CRS or no polygon that can be used; :class:`OptionError` for a missing ``class_field``."""
    import pyogrio

    path = os.fspath(path)
    if not os.path.exists(path) and "://" not in path and not path.startswith("/vsi"):
        raise InputFileError(f"--footprints {path}: no such file")
    try:
        frame = pyogrio.read_dataframe(path, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputFileError(f"--footprints {path}: cannot read as a vector layer: {first}") from None
    if frame.crs is None:
        raise InputFileError(f"--footprints {path}: the layer has no CRS; footprints cannot be placed on the map")
    if class_field is not None and class_field not in frame.columns:
        fields = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name) or "none"
        raise OptionError(f"--class-field {class_field!r}: {path} has no such field (fields: {fields})")
    polygonal = frame.geometry.notna() & frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.any():
        raise InputFileError(f"--footprints {path}: holds no polygons ({len(frame)} features)")
    frame = frame[polygonal]
    try:
        geoms = frame.geometry.to_crs(epsg=epsg)
    except (pyproj.exceptions.CRSError, ValueError) as exc:
        raise InputFileError(f"--footprints {path}: cannot transform its CRS to EPSG:{epsg}: {exc}") from None
    targets: list[Target] = []
    labels = frame[class_field] if class_field is not None else [None] * len(frame)
    for pos, (geom, label) in enumerate(zip(geoms, labels)):
        if geom is None or geom.is_empty:
            continue
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
            polys = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, (Polygon, MultiPolygon))]
            if not polys:
                continue
            geom = shapely.union_all(polys)
        x0, y0, x1, y1 = geom.bounds
        if geom.area < min_area_m2 or max(x1 - x0, y1 - y0) > max_size_m:
            continue
        part = _largest(geom)
        anchor = polylabel(part, tolerance=max(0.05, math.sqrt(part.area) / 100))
        anchor_xy = (float(anchor.x), float(anchor.y))
        if not _on_data(geom, anchor_xy, overview, epsg, surface):
            continue
        name = str(label).strip() if label is not None and str(label).strip() not in ("", "None", "nan") \
            else class_name
        targets.append(Target(len(targets), geom, anchor_xy, name, "footprint", f"feature {pos}"))
    if not targets:
        raise InputFileError(f"--footprints {path}: none of its {len(frame)} polygons can be a target (each must "
                             f"lie on valid orthophoto{' and DSM' if surface is not None and surface.terrain else ''} "
                             f"pixels, cover at least {min_area_m2:g} m^2 and be at most {max_size_m:g} m across)")
    return targets


def salient_targets(overview: Overview, epsg: int, region_m: float, *, class_name: str = "salient",
                    max_targets: int = 4000, surface=None, source: str = "orthophoto") -> list[Target]:
    """Square regions of ``region_m`` (work CRS) around the orthophoto's strongest corners at
    that scale, at least half a region apart, wholly on valid pixels (strongest first).
    :class:`RasterError` naming ``source`` when there is none."""
    px_m = overview.pixel_m(epsg)
    f = (region_m / SALIENT_REGION_PX) / px_m  # overview pixels per pixel of the image searched
    h, w = overview.grey.shape
    size = (max(1, round(w / f)), max(1, round(h / f))) if f > 1 else (w, h)
    scale = (w / size[0], h / size[1])
    grey = cv2.resize(overview.grey, size, interpolation=cv2.INTER_AREA) if size != (w, h) else overview.grey
    valid = cv2.resize(overview.valid.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    half = max(1, int(math.ceil(SALIENT_REGION_PX * max(1.0, 1 / f) / 2)) + 1)
    mask = cv2.erode(valid, np.ones((2 * half + 1, 2 * half + 1), np.uint8), borderValue=0)
    corners = None
    if mask.any():
        corners = cv2.goodFeaturesToTrack(grey, maxCorners=max_targets, qualityLevel=SALIENT_QUALITY,
                                          minDistance=max(2.0, SALIENT_REGION_PX / 2 * max(1.0, 1 / f)), mask=mask,
                                          blockSize=7)
    if corners is None or len(corners) == 0:
        raise RasterError(f"{source}: no salient structure found on valid pixels at the scale of {region_m:g} m "
                          f"regions (try a smaller --region-size or give --footprints)")
    pts = corners.reshape(-1, 2).astype(np.float64) * np.array(scale)
    xs, ys = overview.transform @ (pts[:, 0], pts[:, 1])
    ex, ey = transform_xy(overview.crs, epsg, np.asarray(xs), np.asarray(ys))
    targets: list[Target] = []
    r = region_m / 2
    for x, y in zip(np.asarray(ex), np.asarray(ey)):
        geom = box(x - r, y - r, x + r, y + r)
        if not _on_data(geom, (float(x), float(y)), overview, epsg, surface):
            continue
        targets.append(Target(len(targets), geom, (float(x), float(y)), class_name, "salient",
                              f"corner at ({x:.1f}, {y:.1f}) EPSG:{epsg}"))
    if not targets:
        raise RasterError(f"{source}: no salient structure whose {region_m:g} m region lies on valid pixels")
    return targets
