"""Search hits and their writers (GeoJSON, GeoPackage). No torch.

Geometries are WGS84 lon/lat (x = lon, y = lat): a hit with a footprint (satellite tiles,
nadir drone photos) is its footprint polygon, any other hit the point of its centre (the
camera position for drone and ground photos). Writers follow :mod:`smgeo_geo.vector_io`
(one temporary file per output, moved into place by :func:`~smgeo_geo.vector_io.write_all`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from smgeo_geo.errors import OptionError
from smgeo_geo.vector_io import Writer, text_writer, write_all

HIT_SUFFIXES = (".geojson", ".json", ".gpkg")
PROPERTIES = ("rank", "score", "platform", "item_id", "image", "thumbnail", "lon", "lat")


@dataclass(frozen=True)
class Hit:
    """One ranked search result. ``rank``: 1 = best; ``score``: the model's fused inner
    product (higher is better; comparable within one index and model only); ``image`` and
    ``thumbnail``: absolute paths (``thumbnail`` None when the index has none); ``lon``/``lat``:
    WGS84 degrees of the item's centre; ``footprint``: WKT polygon in WGS84 lon/lat or None."""

    rank: int
    score: float
    item_id: str
    platform: str
    image: str
    thumbnail: str | None
    lon: float
    lat: float
    footprint: str | None = None

    def to_record(self) -> dict:
        """JSON-ready dict of every field (the worker's reply rows)."""
        return asdict(self)

    def geometry(self):
        """Shapely footprint polygon (exterior counter-clockwise) if any, else the centre point."""
        from shapely import wkt
        from shapely.geometry import Point
        from shapely.geometry.polygon import orient

        if self.footprint:
            geom = wkt.loads(self.footprint)
            return orient(geom, sign=1.0) if geom.geom_type == "Polygon" else geom
        return Point(self.lon, self.lat)


def check_hits_path(path: str | os.PathLike, name: str = "--out") -> Path:
    """``path`` if it ends in .geojson, .json or .gpkg, else :class:`OptionError` naming ``name``."""
    p = Path(path)
    if p.suffix.lower() not in HIT_SUFFIXES:
        raise OptionError(f"{name} {p} must end in .geojson or .gpkg (got {p.suffix or 'no extension'!r})")
    return p


def _properties(hit: Hit, extra: dict) -> dict:
    props = {k: getattr(hit, k) for k in PROPERTIES}
    props["thumbnail"] = props["thumbnail"] or ""
    return {**props, **extra}


def hits_feature_collection(hits: Sequence[Hit], query: str | None = None, model_id: str | None = None) -> dict:
    """RFC 7946 FeatureCollection of ``hits`` (polygon where there is a footprint, else point;
    no ``crs`` member, WGS84 lon/lat); properties rank, score, platform, item_id, image,
    thumbnail, lon, lat, and query / model_id when given."""
    from shapely.geometry import mapping

    extra = {k: v for k, v in (("query", query), ("model_id", model_id)) if v is not None}
    features = [{"type": "Feature", "geometry": mapping(h.geometry()), "properties": _properties(h, extra)}
                for h in hits]
    return {"type": "FeatureCollection", "features": features}


def hits_geojson_writer(hits: Sequence[Hit], query: str | None = None, model_id: str | None = None) -> Writer:
    """Writer of :func:`hits_feature_collection` as GeoJSON."""
    return text_writer(json.dumps(hits_feature_collection(hits, query, model_id), allow_nan=False, indent=1))


def hits_geopackage_writer(hits: Sequence[Hit], query: str | None = None, model_id: str | None = None) -> Writer:
    """Writer of a GeoPackage in EPSG:4326 with layers ``hits`` (every hit's centre point) and
    ``footprints`` (the footprint polygons of the hits that have one; may be empty), both with
    the properties of :func:`hits_feature_collection`."""
    import geopandas as gpd
    from shapely.geometry import Point

    extra = {k: v for k, v in (("query", query), ("model_id", model_id)) if v is not None}
    columns = [*PROPERTIES, *extra]
    rows = [_properties(h, extra) for h in hits]
    points = gpd.GeoDataFrame(rows, columns=columns, geometry=[Point(h.lon, h.lat) for h in hits], crs="EPSG:4326")
    with_fp = [(r, h) for r, h in zip(rows, hits) if h.footprint]
    polys = gpd.GeoDataFrame([r for r, _ in with_fp], columns=columns,
                             geometry=[h.geometry() for _, h in with_fp], crs="EPSG:4326")

    def write(tmp: Path) -> None:
        import pyogrio

        pyogrio.write_dataframe(points, tmp, layer="hits", driver="GPKG", geometry_type="Point")
        pyogrio.write_dataframe(polys, tmp, layer="footprints", driver="GPKG", geometry_type="Polygon")

    return write


def hits_writer(hits: Sequence[Hit], path: str | os.PathLike, query: str | None = None,
                model_id: str | None = None) -> Writer:
    """The GeoPackage writer for a ``.gpkg`` path, the GeoJSON writer for ``.geojson``/``.json``."""
    if check_hits_path(path).suffix.lower() == ".gpkg":
        return hits_geopackage_writer(hits, query, model_id)
    return hits_geojson_writer(hits, query, model_id)


def write_hits(hits: Sequence[Hit], path: str | os.PathLike, query: str | None = None,
               model_id: str | None = None) -> None:
    """Atomically write ``hits`` to ``path`` (.geojson, .json or .gpkg)."""
    write_all([(path, hits_writer(hits, path, query, model_id))])
