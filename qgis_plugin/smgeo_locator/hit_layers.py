"""Layers of "Find by description" hits (the worker's ``retrieve`` result). Main thread only.

``SMGeo hits: <text>``: one point per hit at its lon/lat (EPSG:4326), coloured by platform,
labelled with its rank, with a map tip showing its thumbnail; ``SMGeo hit footprints: <text>``:
the footprint polygons (outlines coloured by platform) of the hits that have one (satellite
tiles, nadir drone photos), left out when none has. Attributes of both: rank (1 = best),
score, platform, item_id, image, thumbnail (absolute paths; thumbnail NULL when the index has
none), lon, lat, query, model_id.
"""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer, QgsCoordinateReferenceSystem, QgsFeature, QgsField, QgsFields, QgsFillSymbol,
    QgsGeometry, QgsMarkerSymbol, QgsPointXY, QgsProject, QgsRendererCategory, QgsSimpleLineSymbolLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

from .results import WGS84, _label

HITS_PREFIX = "SMGeo hits: "
FOOTPRINTS_PREFIX = "SMGeo hit footprints: "
PLATFORM_COLOURS = {"satellite": "#1f78b4", "drone": "#ff7f00", "ground": "#33a02c"}
OTHER_COLOUR = "#6a3d9a"
NAME_CHARS = 80  # the description is cut to this many characters in layer names

FIELDS = [("rank", QVariant.Int), ("score", QVariant.Double), ("platform", QVariant.String),
          ("item_id", QVariant.String), ("image", QVariant.String), ("thumbnail", QVariant.String),
          ("lon", QVariant.Double), ("lat", QVariant.Double), ("query", QVariant.String),
          ("model_id", QVariant.String)]

MAP_TIP = ("<b>#[% \"rank\" %] [% \"platform\" %]</b> score [% format_number(\"score\", 3) %]<br>"
           "[% \"item_id\" %]<br>"
           "[% CASE WHEN coalesce(\"thumbnail\", '') <> '' THEN '<img src=\"file://' || \"thumbnail\" || "
           "'\" width=\"160\"/>' ELSE '' END %]")


def short_text(text: str) -> str:
    """The description on one line, cut to :data:`NAME_CHARS` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "\u2026"


def hits_layer_name(text: str) -> str:
    return HITS_PREFIX + short_text(text)


def footprints_layer_name(text: str) -> str:
    return FOOTPRINTS_PREFIX + short_text(text)


def hit_fields() -> QgsFields:
    fields = QgsFields()
    for name, kind in FIELDS:
        fields.append(QgsField(name, kind))
    return fields


def hit_feature(hit: dict, fields: QgsFields, footprint: bool = False, query: str = "",
                model_id: str = "") -> QgsFeature | None:
    """The feature of one worker hit: its point, or (``footprint``) its footprint polygon
    (None when it has none or the WKT is not a polygon)."""
    feature = QgsFeature(fields)
    if footprint:
        if not hit.get("footprint"):
            return None
        geometry = QgsGeometry.fromWkt(hit["footprint"])
        if geometry.isNull() or geometry.isEmpty():
            return None
    else:
        geometry = QgsGeometry.fromPointXY(QgsPointXY(float(hit["lon"]), float(hit["lat"])))
    feature.setGeometry(geometry)
    values = {"rank": int(hit["rank"]), "score": float(hit["score"]), "platform": hit.get("platform"),
              "item_id": hit.get("item_id"), "image": hit.get("image"), "thumbnail": hit.get("thumbnail") or None,
              "lon": float(hit["lon"]), "lat": float(hit["lat"]), "query": query, "model_id": model_id}
    for name, value in values.items():
        feature.setAttribute(name, value)
    return feature


def hit_features(result: dict, text: str, footprints: bool = False) -> list[QgsFeature]:
    """Features (points, or the footprints there are) of a worker ``retrieve`` result."""
    fields = hit_fields()
    model_id = str((result.get("model") or {}).get("model_id") or "")
    features = [hit_feature(hit, fields, footprints, text, model_id) for hit in result.get("hits", [])]
    return [f for f in features if f is not None]


def style_hits(layer: QgsVectorLayer, polygons: bool = False) -> None:
    """Colour by platform, label with the rank, thumbnail map tip."""
    categories = []
    for platform, colour in [*PLATFORM_COLOURS.items(), ("", OTHER_COLOUR)]:
        if polygons:  # an outline only, so a selected footprint does not hide the map under it
            symbol = QgsFillSymbol()
            symbol.changeSymbolLayer(0, QgsSimpleLineSymbolLayer(QColor(colour), 0.6))  # (QGIS owns it)
        else:
            symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": colour, "size": "3.4",
                                                   "outline_color": "white", "outline_width": "0.4"})
        categories.append(QgsRendererCategory(platform or None, symbol, platform or "other"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("platform", categories))
    if not polygons:  # (the points carry the rank; footprints share it)
        _label(layer, "'#' || \"rank\"", "#222222", 9)
    layer.setDisplayExpression("'#' || \"rank\" || ' ' || \"platform\" || ' ' || \"item_id\"")
    layer.setMapTipTemplate(MAP_TIP)
    layer.triggerRepaint()


def _new_layer(name: str, geometry: str, features: list[QgsFeature], polygons: bool) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{geometry}?crs={WGS84}", name, "memory")
    layer.setCrs(QgsCoordinateReferenceSystem(WGS84))
    layer.dataProvider().addAttributes(hit_fields().toList())
    layer.updateFields()
    if features and not layer.dataProvider().addFeatures(features)[0]:
        raise RuntimeError(f"could not add the hits to layer {name}")
    layer.updateExtents()
    style_hits(layer, polygons)
    return layer


def add_hits(result: dict, text: str, project: QgsProject | None = None
             ) -> tuple[QgsVectorLayer, QgsVectorLayer | None]:
    """Add the layers of a worker ``retrieve`` result (replacing those of the same
    description): the points layer and the footprints layer (None when no hit has one)."""
    project = project or QgsProject.instance()
    names = (hits_layer_name(text), footprints_layer_name(text))
    for name in names:
        for old in project.mapLayersByName(name):
            project.removeMapLayer(old.id())
    polygons = hit_features(result, text, footprints=True)
    footprints = _new_layer(names[1], "Polygon", polygons, True) if polygons else None
    points = _new_layer(names[0], "Point", hit_features(result, text), False)
    if footprints is not None:
        project.addMapLayer(footprints)
    project.addMapLayer(points)  # added last: drawn above the footprints
    return points, footprints
