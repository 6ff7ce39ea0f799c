"""A small RFC 7946 (GeoJSON) checker for tests: returns a list of problems, [] if valid."""

from __future__ import annotations

from typing import Any

from shapely.geometry import LinearRing

GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}


def _position(p: Any, where: str) -> list[str]:
    if not (isinstance(p, list) and len(p) in (2, 3) and all(isinstance(v, (int, float)) for v in p)):
        return [f"{where}: position must be [lon, lat(, z)], got {p!r}"]
    lon, lat = p[0], p[1]
    errs = []
    if not -180 <= lon <= 180:
        errs.append(f"{where}: lon {lon} outside [-180, 180]")
    if not -90 <= lat <= 90:
        errs.append(f"{where}: lat {lat} outside [-90, 90]")
    return errs


def _ring(ring: Any, where: str, exterior: bool) -> list[str]:
    if not isinstance(ring, list) or len(ring) < 4:
        return [f"{where}: a linear ring needs >= 4 positions"]
    errs = [e for i, p in enumerate(ring) for e in _position(p, f"{where}[{i}]")]
    if errs:
        return errs
    if ring[0] != ring[-1]:
        errs.append(f"{where}: ring not closed")
    ccw = LinearRing([tuple(p[:2]) for p in ring]).is_ccw
    if exterior and not ccw:
        errs.append(f"{where}: exterior ring must be counter-clockwise (right-hand rule)")
    if not exterior and ccw:
        errs.append(f"{where}: hole must be clockwise (right-hand rule)")
    return errs


def _polygon(coords: Any, where: str) -> list[str]:
    if not isinstance(coords, list) or not coords:
        return [f"{where}: polygon needs a list of rings"]
    return [e for i, r in enumerate(coords) for e in _ring(r, f"{where}[{i}]", exterior=i == 0)]


def check_geometry(g: Any, where: str = "geometry") -> list[str]:
    if g is None:
        return []
    if not isinstance(g, dict) or g.get("type") not in GEOMETRY_TYPES:
        return [f"{where}: bad geometry type {g.get('type') if isinstance(g, dict) else g!r}"]
    errs = [f"{where}: 'crs' member is not allowed"] if "crs" in g else []
    t, c = g["type"], g.get("coordinates")
    if t == "Point":
        return errs + _position(c, where)
    if t in ("MultiPoint", "LineString"):
        return errs + [e for i, p in enumerate(c or []) for e in _position(p, f"{where}[{i}]")]
    if t == "Polygon":
        return errs + _polygon(c, where)
    if t == "MultiPolygon":
        return errs + [e for i, p in enumerate(c or []) for e in _polygon(p, f"{where}[{i}]")]
    return errs + [e for i, line in enumerate(c or []) for j, p in enumerate(line) for e in _position(p, f"{where}[{i}][{j}]")]


def check_feature_collection(doc: Any) -> list[str]:
    """Problems with ``doc`` as an RFC 7946 FeatureCollection."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        return ["top level must be an object with type FeatureCollection"]
    errs = ["'crs' member is not allowed (RFC 7946 section 4)"] if "crs" in doc else []
    if not isinstance(doc.get("features"), list):
        return errs + ["'features' must be a list"]
    for i, f in enumerate(doc["features"]):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            errs.append(f"features[{i}]: type must be Feature")
            continue
        if "geometry" not in f or "properties" not in f:
            errs.append(f"features[{i}]: needs 'geometry' and 'properties' members")
        if "crs" in f:
            errs.append(f"features[{i}]: 'crs' member is not allowed")
        if f.get("properties") is not None and not isinstance(f["properties"], dict):
            errs.append(f"features[{i}]: properties must be an object or null")
        errs += check_geometry(f.get("geometry"), f"features[{i}].geometry")
    return errs
