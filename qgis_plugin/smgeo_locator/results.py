"""Turning worker results into QGIS layers: "SMGeo results" (the object's box, raster CRS),
"SMGeo uncertainty" (the 90 % circle around the located click point), "SMGeo located points"
(that point), the candidates layer, the heatmap raster; saving to GeoPackage. Main thread only.

Every result feature carries how it was found: ``method`` (the stages that held, e.g.
``metadata+registration+smgeo``), ``answer`` (the stage whose point answered),
``uncertainty_m`` (90 % radius in metres of the clicked point), ``confidence``,
``located_lon`` / ``located_lat`` (WGS84 of the clicked point) and ``box_source`` (where the
box came from: ``smgeo``, ``click region`` or ``uncertainty``), as in ``smgeo`` GeoPackages.

The uncertainty circle is a true ground circle: drawn directly in the reference raster's CRS
when that is projected in metres with a scale within 1 % of true at the point (UTM, national
grids), otherwise (lon/lat, feet, Web Mercator away from the equator) built in a local
azimuthal-equidistant CRS centred on the point and transformed to the raster's CRS.
"""

from __future__ import annotations

import math

from qgis.core import (
    QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsFeature, QgsField, QgsFields, QgsGeometry,
    QgsPalLayerSettings, QgsPoint, QgsPointXY, QgsProject, QgsRasterLayer, QgsTextFormat, QgsUnitTypes,
    QgsVectorFileWriter, QgsVectorLayer, QgsVectorLayerSimpleLabeling, QgsWkbTypes, QgsSingleBandPseudoColorRenderer,
    QgsColorRampShader, QgsRasterShader, QgsStyle, QgsCoordinateTransformContext,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

RESULTS_LAYER = "SMGeo results"
CANDIDATES_LAYER = "SMGeo candidates"
HEATMAP_LAYER = "SMGeo heatmap"
UNCERTAINTY_LAYER = "SMGeo uncertainty"
LOCATED_LAYER = "SMGeo located points"
WGS84 = "EPSG:4326"
CIRCLE_SEGMENTS = 180  # vertices of the uncertainty circle (area within 0.02 % of pi r^2)

# what the worker's detection ``extra`` says about how the object was found (kept per feature)
LOCATION_FIELDS = [("method", QVariant.String), ("answer", QVariant.String), ("uncertainty_m", QVariant.Double),
                   ("confidence", QVariant.Double), ("located_lon", QVariant.Double),
                   ("located_lat", QVariant.Double), ("box_source", QVariant.String)]


def result_fields() -> QgsFields:
    """Attributes of every result feature (same names as ``smgeo`` GeoPackages)."""
    fields = QgsFields()
    for name, kind in [("rank", QVariant.Int), ("score", QVariant.Double), ("query_image", QVariant.String),
                       ("click_x", QVariant.Double), ("click_y", QVariant.Double), ("model_id", QVariant.String),
                       ("reference", QVariant.String), ("source_crs", QVariant.String),
                       ("created", QVariant.String), ("px_x1", QVariant.Double), ("px_y1", QVariant.Double),
                       ("px_x2", QVariant.Double), ("px_y2", QVariant.Double), ("centroid_lon", QVariant.Double),
                       ("centroid_lat", QVariant.Double), *LOCATION_FIELDS]:
        fields.append(QgsField(name, kind))
    return fields


def location_fields() -> QgsFields:
    """Attributes of the uncertainty circles and located points."""
    fields = QgsFields()
    for name, kind in [("query_image", QVariant.String), ("click_x", QVariant.Double),
                       ("click_y", QVariant.Double), ("reference", QVariant.String), ("created", QVariant.String),
                       *LOCATION_FIELDS]:
        fields.append(QgsField(name, kind))
    return fields


def _finite(value):
    """A finite float, else None (a NULL attribute)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def location_values(record: dict) -> dict:
    """The LOCATION_FIELDS values of a worker detection record (None where it has none:
    candidates carry no stage details)."""
    extra = record.get("extra") or {}
    return {"method": extra.get("method"), "answer": extra.get("answer"),
            "uncertainty_m": _finite(extra.get("uncertainty_m")), "confidence": _finite(extra.get("confidence")),
            "located_lon": _finite(extra.get("located_lon")), "located_lat": _finite(extra.get("located_lat")),
            "box_source": extra.get("box_source")}


def crs_of(text: str) -> QgsCoordinateReferenceSystem:
    """QGIS CRS from 'EPSG:xxxx' or WKT (as the worker reports it)."""
    crs = QgsCoordinateReferenceSystem(text) if text.upper().startswith("EPSG:") else \
        QgsCoordinateReferenceSystem.fromWkt(text)
    return crs


def feature_from_record(record: dict, fields: QgsFields) -> QgsFeature:
    """A feature (geometry in the raster CRS) from a worker detection record."""
    feature = QgsFeature(fields)
    feature.setGeometry(QgsGeometry.fromWkt(record["polygon_crs"]))
    x1, y1, x2, y2 = record["pixel_box"]
    click = record.get("click") or [None, None]
    values = {"rank": record["rank"], "score": record["score"], "query_image": record.get("query_image", ""),
              "click_x": click[0], "click_y": click[1], "model_id": record.get("model_id", ""),
              "reference": record.get("reference", ""), "source_crs": record["crs"],
              "created": record.get("created", ""), "px_x1": x1, "px_y1": y1, "px_x2": x2, "px_y2": y2,
              "centroid_lon": record["centroid_lonlat"][0], "centroid_lat": record["centroid_lonlat"][1],
              **location_values(record)}
    for name, value in values.items():
        if fields.indexOf(name) >= 0:
            feature.setAttribute(name, value)
    return feature


def _style(layer: QgsVectorLayer, color: str, dashed: bool) -> None:
    symbol = layer.renderer().symbol()
    symbol.setColor(QColor(0, 0, 0, 0))
    outline = symbol.symbolLayer(0)
    outline.setStrokeColor(QColor(color))
    outline.setStrokeWidth(0.8)
    outline.setFillColor(QColor(color).lighter(150))
    outline.setColor(QColor(255, 255, 255, 40))
    if dashed:
        from qgis.PyQt.QtCore import Qt

        outline.setStrokeStyle(Qt.DashLine)
    expression = "'#' || (\"rank\" + 1) || '  ' || format_number(\"score\", 2)" if dashed else \
        "'score ' || format_number(\"score\", 2)"
    _label(layer, expression, color, 10)


def _label(layer: QgsVectorLayer, expression: str, color: str, size: float, placement=None) -> None:
    """Label ``layer``'s features with ``expression`` in ``color``, on a white halo."""
    labels = QgsPalLayerSettings()
    labels.fieldName = expression
    labels.isExpression = True
    if placement is not None:
        labels.placement = placement
    text = QgsTextFormat()
    text.setColor(QColor(color))
    text.setSize(size)
    buffer = text.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("white"))
    text.setBuffer(buffer)
    labels.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(labels))
    layer.setLabelsEnabled(True)


def _memory_layer(name: str, geometry: str, crs: QgsCoordinateReferenceSystem, fields: QgsFields,
                  project: QgsProject, style=None) -> QgsVectorLayer:
    """The project's memory layer called ``name`` of ``geometry`` in ``crs`` (with any of
    ``fields`` it lacks added), created and styled with ``style(layer)`` if missing."""
    for layer in project.mapLayersByName(name):
        if isinstance(layer, QgsVectorLayer) and layer.crs() == crs and \
                QgsWkbTypes.displayString(QgsWkbTypes.flatType(layer.wkbType())) == geometry:
            missing = [f for f in fields if layer.fields().indexOf(f.name()) < 0]
            if missing and layer.dataProvider().addAttributes(missing):
                layer.updateFields()
            return layer
    layer = QgsVectorLayer(f"{geometry}?crs={crs.authid() or 'wkt:' + crs.toWkt()}", name, "memory")
    if not layer.crs().isValid() or layer.crs() != crs:
        layer.setCrs(crs)
    layer.dataProvider().addAttributes(fields.toList())
    layer.updateFields()
    if style is not None:
        style(layer)
    project.addMapLayer(layer)
    return layer


def _layer(name: str, crs: QgsCoordinateReferenceSystem, color: str, dashed: bool,
           project: QgsProject) -> QgsVectorLayer:
    """The project's result layer called ``name`` in ``crs``, created (styled) if missing."""
    return _memory_layer(name, "Polygon", crs, result_fields(), project, lambda layer: _style(layer, color, dashed))


def add_result(result: dict, project: QgsProject | None = None) -> tuple[QgsVectorLayer, QgsFeature]:
    """Append the best detection of a worker ``locate`` result to "SMGeo results";
    returns the layer and the added feature (with its id)."""
    project = project or QgsProject.instance()
    crs = crs_of(result["crs"])
    layer = _layer(RESULTS_LAYER, crs, "#e31a1c", False, project)
    feature = feature_from_record(result["detections"][0], layer.fields())
    ok, added = layer.dataProvider().addFeatures([feature])
    if not ok:
        raise RuntimeError(f"could not add the result to layer {RESULTS_LAYER}")
    layer.updateExtents()
    layer.triggerRepaint()
    return layer, added[0]


def _metric_at(crs: QgsCoordinateReferenceSystem, lon: float, lat: float) -> bool:
    """Whether ``crs`` measures true metres near (lon, lat): projected in metres, with a scale
    within 1 % of true there (UTM and national grids are; Web Mercator is only near the equator)."""
    if crs.isGeographic() or crs.mapUnits() != QgsUnitTypes.DistanceMeters:
        return False
    factors = crs.factors(QgsPoint(lon, lat))
    if not factors.isValid():
        return False
    return abs(factors.meridionalScale() - 1.0) < 0.01 and abs(factors.parallelScale() - 1.0) < 0.01


def uncertainty_circle(lon: float, lat: float, radius_m: float, crs: QgsCoordinateReferenceSystem,
                       project: QgsProject | None = None) -> QgsGeometry:
    """The circle of ``radius_m`` metres on the ground around (lon, lat) (WGS84) as a polygon
    in ``crs`` (see the module docstring for how)."""
    context = (project or QgsProject.instance()).transformContext()
    radius_m = max(float(radius_m), 0.01)
    if _metric_at(crs, lon, lat):
        centre = QgsCoordinateTransform(QgsCoordinateReferenceSystem(WGS84), crs, context).transform(
            QgsPointXY(lon, lat))
        return QgsGeometry.fromPointXY(centre).buffer(radius_m, CIRCLE_SEGMENTS // 4)
    local = QgsCoordinateReferenceSystem.fromProj(
        f"+proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs")
    circle = QgsGeometry.fromPointXY(QgsPointXY(0.0, 0.0)).buffer(radius_m, CIRCLE_SEGMENTS // 4)
    circle.transform(QgsCoordinateTransform(local, crs, context))
    return circle


def _style_uncertainty(layer: QgsVectorLayer) -> None:
    from qgis.PyQt.QtCore import Qt

    symbol = layer.renderer().symbol()
    fill = symbol.symbolLayer(0)
    fill.setColor(QColor(31, 120, 180, 45))
    fill.setStrokeColor(QColor("#1f78b4"))
    fill.setStrokeWidth(0.5)
    fill.setStrokeStyle(Qt.DashLine)
    _label(layer, "'\u00b1' || format_number(\"uncertainty_m\", 1) || ' m (90 %)'", "#1f78b4", 9,
           QgsPalLayerSettings.OutsidePolygons)


def _style_points(layer: QgsVectorLayer) -> None:
    symbol = layer.renderer().symbol()
    marker = symbol.symbolLayer(0)
    marker.setShape(marker.Cross2)
    marker.setSize(3.0)
    marker.setStrokeColor(QColor("#1f78b4"))
    marker.setStrokeWidth(0.6)


def add_location(result: dict, project: QgsProject | None = None) -> tuple[QgsFeature, QgsFeature] | None:
    """Append the located click point of a worker ``locate`` result to "SMGeo located points"
    and its 90 % uncertainty circle to "SMGeo uncertainty" (both in the raster's CRS); returns
    (circle, point) features, or None when the result has no finite point and radius."""
    project = project or QgsProject.instance()
    best = result["detections"][0]
    values = location_values(best)
    located = result.get("located") or [values["located_lon"], values["located_lat"]]
    lon, lat = (_finite(v) for v in located)
    radius = _finite(result.get("uncertainty_m", values["uncertainty_m"]))
    if lon is None or lat is None or radius is None:
        return None
    values.update(located_lon=lon, located_lat=lat, uncertainty_m=radius,
                  method=result.get("method") or values["method"], answer=result.get("answer") or values["answer"])
    click = best.get("click") or [None, None]
    values.update(query_image=best.get("query_image", ""), click_x=click[0], click_y=click[1],
                  reference=best.get("reference", ""), created=best.get("created", ""))
    crs = crs_of(result["crs"])
    added = []
    for name, geometry, style, shape in [
            (UNCERTAINTY_LAYER, "Polygon", _style_uncertainty, uncertainty_circle(lon, lat, radius, crs, project)),
            (LOCATED_LAYER, "Point", _style_points, None)]:
        layer = _memory_layer(name, geometry, crs, location_fields(), project, style)
        feature = QgsFeature(layer.fields())
        if shape is None:
            to_crs = QgsCoordinateTransform(QgsCoordinateReferenceSystem(WGS84), crs, project.transformContext())
            shape = QgsGeometry.fromPointXY(to_crs.transform(QgsPointXY(lon, lat)))
        feature.setGeometry(shape)
        for key, value in values.items():
            if layer.fields().indexOf(key) >= 0:
                feature.setAttribute(key, value)
        ok, features = layer.dataProvider().addFeatures([feature])
        if not ok:
            raise RuntimeError(f"could not add the located point to layer {name}")
        layer.updateExtents()
        layer.triggerRepaint()
        added.append(features[0])
    return added[0], added[1]


def show_candidates(result: dict, ranks: list[int], project: QgsProject | None = None) -> QgsVectorLayer | None:
    """Replace the features of "SMGeo candidates" with the detections of ``ranks``."""
    project = project or QgsProject.instance()
    crs = crs_of(result["crs"])
    existing = project.mapLayersByName(CANDIDATES_LAYER)
    if not ranks:
        for layer in existing:
            layer.dataProvider().truncate()
            layer.triggerRepaint()
        return existing[0] if existing else None
    layer = _layer(CANDIDATES_LAYER, crs, "#ff7f00", True, project)
    layer.dataProvider().truncate()
    feats = [feature_from_record(r, layer.fields()) for r in result["detections"] if r["rank"] in ranks]
    layer.dataProvider().addFeatures(feats)
    layer.updateExtents()
    layer.triggerRepaint()
    return layer


def add_heatmap(path: str, project: QgsProject | None = None) -> QgsRasterLayer:
    """Add the heatmap GeoTIFF as a semi-transparent pseudocolour layer (replacing the last)."""
    project = project or QgsProject.instance()
    for old in project.mapLayersByName(HEATMAP_LAYER):
        project.removeMapLayer(old.id())
    layer = QgsRasterLayer(path, HEATMAP_LAYER, "gdal")
    if not layer.isValid():
        raise RuntimeError(f"heatmap {path} could not be opened")
    ramp = QgsStyle.defaultStyle().colorRamp("Magma")
    shader_fn = QgsColorRampShader(0.0, 1.0, ramp)
    shader_fn.classifyColorRamp(8)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    layer.setRenderer(QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader))
    layer.renderer().setOpacity(0.55)
    project.addMapLayer(layer)
    return layer


def save_geopackage(layer: QgsVectorLayer, path: str, layer_name: str = "smgeo_results") -> str:
    """Write ``layer`` (its CRS kept) to a GeoPackage; returns the path written."""
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = layer_name
    error, message, new_file, _ = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, path, QgsCoordinateTransformContext(), options)
    if error != QgsVectorFileWriter.NoError:
        raise RuntimeError(f"could not write {path}: {message}")
    return new_file or path
