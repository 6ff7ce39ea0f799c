"""Turning worker results into QGIS layers: "SMGeo results" (polygons, raster CRS), the
candidates layer, the heatmap raster; saving to GeoPackage. Main thread only."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem, QgsFeature, QgsField, QgsFields, QgsGeometry, QgsPalLayerSettings,
    QgsProject, QgsRasterLayer, QgsTextFormat, QgsVectorFileWriter, QgsVectorLayer,
    QgsVectorLayerSimpleLabeling, QgsSingleBandPseudoColorRenderer, QgsColorRampShader,
    QgsRasterShader, QgsStyle, QgsCoordinateTransformContext,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

RESULTS_LAYER = "SMGeo results"
CANDIDATES_LAYER = "SMGeo candidates"
HEATMAP_LAYER = "SMGeo heatmap"


def result_fields() -> QgsFields:
    """Attributes of every result feature (same names as ``smgeo`` GeoPackages)."""
    fields = QgsFields()
    for name, kind in [("rank", QVariant.Int), ("score", QVariant.Double), ("query_image", QVariant.String),
                       ("click_x", QVariant.Double), ("click_y", QVariant.Double), ("model_id", QVariant.String),
                       ("reference", QVariant.String), ("source_crs", QVariant.String),
                       ("created", QVariant.String), ("px_x1", QVariant.Double), ("px_y1", QVariant.Double),
                       ("px_x2", QVariant.Double), ("px_y2", QVariant.Double), ("centroid_lon", QVariant.Double),
                       ("centroid_lat", QVariant.Double)]:
        fields.append(QgsField(name, kind))
    return fields


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
              "centroid_lon": record["centroid_lonlat"][0], "centroid_lat": record["centroid_lonlat"][1]}
    for name, value in values.items():
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
    labels = QgsPalLayerSettings()
    labels.fieldName = "'#' || (\"rank\" + 1) || '  ' || format_number(\"score\", 2)" if dashed else \
        "'score ' || format_number(\"score\", 2)"
    labels.isExpression = True
    text = QgsTextFormat()
    text.setColor(QColor(color))
    text.setSize(10)
    buffer = text.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("white"))
    text.setBuffer(buffer)
    labels.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(labels))
    layer.setLabelsEnabled(True)


def _layer(name: str, crs: QgsCoordinateReferenceSystem, color: str, dashed: bool,
           project: QgsProject) -> QgsVectorLayer:
    """The project's layer called ``name`` in ``crs``, created (styled) if missing."""
    for layer in project.mapLayersByName(name):
        if isinstance(layer, QgsVectorLayer) and layer.crs() == crs:
            return layer
    layer = QgsVectorLayer(f"Polygon?crs={crs.authid() or 'wkt:' + crs.toWkt()}", name, "memory")
    if not layer.crs().isValid() or layer.crs() != crs:
        layer.setCrs(crs)
    layer.dataProvider().addAttributes(result_fields().toList())
    layer.updateFields()
    _style(layer, color, dashed)
    project.addMapLayer(layer)
    return layer


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
