"""Located objects (:class:`Detection`) and their GIS forms (GeoJSON features, GeoDataFrames).

Frames: ``pixel_box`` is in *reference-raster pixels* (GDAL corner convention, (0, 0)
= outer top-left corner of the top-left pixel); ``polygon_crs`` in the raster CRS
(x=easting, y=northing); ``polygon_lonlat`` / ``centroid_lonlat`` WGS84 (x=lon, y=lat).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np
from shapely.geometry import Polygon, mapping

from smgeo_geo.coords import crs_string, crs_to_lonlat, pixel_box_to_polygon, polygon_to_lonlat
from smgeo_geo.errors import CRSError

CORE_PROPERTIES = ("pixel_box", "score", "rank", "crs", "centroid_lon", "centroid_lat", "query_image",
                   "click", "model_id", "reference", "created")


def utc_now() -> str:
    """Current time as ISO-8601 UTC, e.g. ``2024-05-01T12:00:00Z``."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """Plain-Python copy of ``value`` (numpy scalars/arrays, tuples) for JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Detection:
    """One located object and where it came from.

    ``score`` in 0..1, ``rank`` 0 = best; ``crs`` is ``'EPSG:xxxx'`` or WKT of the raster
    CRS; ``click`` = (x, y) in query-photo pixels (None if unknown); ``created`` ISO-8601
    UTC; ``candidates`` the other ranked detections; ``extra`` free scalars (e.g.
    ``iou_with_truth``) that become GIS attributes.
    """

    pixel_box: tuple[float, float, float, float]
    score: float
    rank: int
    crs: str
    polygon_crs: Polygon
    polygon_lonlat: Polygon
    centroid_lonlat: tuple[float, float]
    query_image: str = ""
    click: tuple[float, float] | None = None
    model_id: str = ""
    reference: str = ""
    created: str = field(default_factory=utc_now)
    candidates: list["Detection"] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pixel_box(cls, pixel_box: Sequence[float], raster, *, score: float, rank: int = 0,
                       query_image: str = "", click: tuple[float, float] | None = None,
                       model_id: str = "", reference: str | None = None,
                       candidates: Sequence["Detection"] = (), extra: dict[str, Any] | None = None,
                       created: str | None = None) -> "Detection":
        """Build from ``pixel_box = (x1, y1, x2, y2)`` in raster pixels and a raster-like
        object with ``transform`` (raster pixel -> CRS) and ``crs`` (``path`` optional)."""
        box = tuple(float(v) for v in pixel_box)
        poly = pixel_box_to_polygon(raster.transform, box)
        c = poly.centroid
        lon, lat = crs_to_lonlat(raster.crs, [c.x], [c.y])
        return cls(
            pixel_box=box, score=float(score), rank=int(rank), crs=crs_string(raster.crs),
            polygon_crs=poly, polygon_lonlat=polygon_to_lonlat(poly, raster.crs),
            centroid_lonlat=(float(lon[0]), float(lat[0])), query_image=str(query_image),
            click=None if click is None else (float(click[0]), float(click[1])), model_id=str(model_id),
            reference=str(reference if reference is not None else getattr(raster, "path", "") or ""),
            created=created or utc_now(), candidates=list(candidates), extra=dict(extra or {}),
        )

    def properties(self) -> dict[str, Any]:
        """Flat attribute dict: core fields plus ``extra`` (core names win on clashes)."""
        props = {k: v for k, v in _jsonable(self.extra).items() if k not in CORE_PROPERTIES}
        props.update(
            pixel_box=list(self.pixel_box), score=self.score, rank=self.rank, crs=self.crs,
            centroid_lon=self.centroid_lonlat[0], centroid_lat=self.centroid_lonlat[1],
            query_image=self.query_image, click=None if self.click is None else list(self.click),
            model_id=self.model_id, reference=self.reference, created=self.created,
        )
        return _jsonable(props)

    def to_geojson_feature(self) -> dict[str, Any]:
        """RFC 7946 Feature: WGS84 lon/lat polygon (counter-clockwise exterior) + properties."""
        return {"type": "Feature", "geometry": _jsonable(mapping(self.polygon_lonlat)),
                "properties": self.properties()}


def to_feature_collection(detections: Sequence[Detection], include_candidates: bool = False) -> dict[str, Any]:
    """RFC 7946 FeatureCollection (no ``crs`` member) of the detections (and their
    candidates, after each detection, if ``include_candidates``)."""
    feats = []
    for det in detections:
        feats.append(det.to_geojson_feature())
        if include_candidates:
            feats.extend(c.to_geojson_feature() for c in det.candidates)
    return {"type": "FeatureCollection", "features": feats}


def _columns(det: Detection) -> dict[str, Any]:
    cx, cy = det.click if det.click is not None else (float("nan"), float("nan"))
    row = {k: v for k, v in det.extra.items() if np.isscalar(v) or v is None}
    row.update(
        query_image=det.query_image, click_x=float(cx), click_y=float(cy), score=det.score, rank=det.rank,
        model_id=det.model_id, reference=det.reference, source_crs=det.crs, created=det.created,
        px_x1=det.pixel_box[0], px_y1=det.pixel_box[1], px_x2=det.pixel_box[2], px_y2=det.pixel_box[3],
        centroid_lon=det.centroid_lonlat[0], centroid_lat=det.centroid_lonlat[1],
    )
    return _jsonable(row)


def detections_to_geodataframe(detections: Sequence[Detection], geometry: str = "crs",
                               centroids: bool = False):
    """GeoDataFrame, one row per detection, attribute columns query_image, click_x, click_y,
    score, rank, model_id, reference, source_crs, created, px_x1..px_y2, centroid_lon/lat
    and scalar ``extra`` values. ``geometry='crs'``: polygons in the raster CRS (all
    detections must share it, else :class:`CRSError`); ``'lonlat'``: WGS84 polygons.
    ``centroids=True`` gives centroid points instead of polygons."""
    import geopandas as gpd

    if geometry not in ("crs", "lonlat"):
        raise ValueError(f"geometry must be 'crs' or 'lonlat', got {geometry!r}")
    if geometry == "crs":
        crss = sorted({d.crs for d in detections})
        if len(crss) > 1:
            raise CRSError(f"detections are in several CRSs ({', '.join(c[:40] for c in crss)}); use geometry='lonlat'")
        crs = crss[0] if crss else None
        geoms = [d.polygon_crs for d in detections]
    else:
        crs, geoms = "EPSG:4326", [d.polygon_lonlat for d in detections]
    if centroids:
        geoms = [g.centroid for g in geoms]
    return gpd.GeoDataFrame([_columns(d) for d in detections], geometry=geoms, crs=crs)
