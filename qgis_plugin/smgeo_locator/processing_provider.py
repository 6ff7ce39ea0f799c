"""Processing provider "SMGeo" with three algorithms: locate one object, batch geocode a
survey, find places by description.

They run the same worker requests as the dock (``locate``, ``batch`` and ``retrieve``), so they
work in the Processing toolbox, batch mode and the model designer. Locate and batch take the
locating method (METHOD: auto | metadata | registration | smgeo, as :data:`settings.METHODS`)
and an optional DSM/DEM raster file (DEM).
"""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem, QgsFeatureSink, QgsProcessing, QgsProcessingAlgorithm, QgsProcessingContext,
    QgsProcessingException, QgsProcessingLayerPostProcessorInterface, QgsProcessingOutputNumber,
    QgsProcessingOutputString, QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink, QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer, QgsProcessingParameterString,
    QgsProcessingProvider, QgsVectorLayer, QgsWkbTypes,
)
from qgis.PyQt.QtGui import QIcon

from . import export, hit_layers, results
from .service import shared_client
from .settings import METHOD_KEYS, METHODS
from .worker_client import WorkerError

ICON = os.path.join(os.path.dirname(__file__), "icon.png")
PHOTO_EXTENSIONS = "Images (*.jpg *.jpeg *.JPG *.JPEG *.png *.PNG *.tif *.tiff);;All files (*)"


def _raster_path(layer, name: str) -> str:
    path = export.file_path(layer)
    if not path:
        raise QgsProcessingException(f"{name}: layer '{layer.name()}' is not a raster file "
                                     f"(provider {layer.providerType()}); SMGeo reads GeoTIFF/COG/VRT files")
    return path


def _add_method_parameters(algorithm: QgsProcessingAlgorithm) -> None:
    """METHOD (enum, default auto) and DEM (optional raster file)."""
    algorithm.addParameter(QgsProcessingParameterEnum("METHOD", "Method", [label for _, label in METHODS],
                                                      defaultValue=0))
    algorithm.addParameter(QgsProcessingParameterRasterLayer(
        "DEM", "DSM / DEM (heights in metres; empty = flat ground at the take-off height)", optional=True))


def _method_params(algorithm: QgsProcessingAlgorithm, parameters, context) -> dict:
    """The worker's ``method`` and ``dem`` from METHOD and DEM."""
    index = algorithm.parameterAsEnum(parameters, "METHOD", context)
    if not 0 <= index < len(METHOD_KEYS):
        raise QgsProcessingException(f"Method: choose 0-{len(METHOD_KEYS) - 1}, got {index}")
    dem = algorithm.parameterAsRasterLayer(parameters, "DEM", context)
    return {"method": METHOD_KEYS[index], "dem": _raster_path(dem, "DSM / DEM") if dem is not None else None}


def _run(method: str, params: dict, feedback) -> dict:
    """One worker request with Processing feedback (progress, Cancel)."""
    try:
        client = shared_client()
    except WorkerError as exc:
        raise QgsProcessingException(str(exc)) from None
    request_ids: list[int] = []

    def cancel() -> None:
        for rid in request_ids:
            client.cancel(rid)

    def progress(fraction: float, message: str) -> None:
        feedback.setProgress(100.0 * fraction)
        if message:
            feedback.setProgressText(message)

    def on_id(rid: int) -> None:
        request_ids.append(rid)
        if feedback.isCanceled():
            client.cancel(rid)

    feedback.canceled.connect(cancel)
    try:
        return client.request(method, params, progress, on_id)
    except WorkerError as exc:
        raise QgsProcessingException(f"{exc.kind}: {exc}") from None
    finally:
        try:
            feedback.canceled.disconnect(cancel)
        except TypeError:
            pass


class _Algorithm(QgsProcessingAlgorithm):
    def group(self) -> str:
        return "Cross-view geo-localization"

    def groupId(self) -> str:  # noqa: N802
        return "crossview"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()


class LocateAlgorithm(_Algorithm):
    PHOTO, CLICK_X, CLICK_Y, REFERENCE = "PHOTO", "CLICK_X", "CLICK_Y", "REFERENCE"
    WINDOW, EXTENT, CANDIDATES, OUTPUT = "WINDOW", "EXTENT", "CANDIDATES", "OUTPUT"
    MODES = ["Whole layer (sliding windows if large)", "Extent below", "Photo GPS (EXIF / drone XMP metadata)"]

    def name(self) -> str:
        return "locate"

    def displayName(self) -> str:  # noqa: N802
        return "Locate object from drone photo"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Finds the object clicked in a drone photo in a georeferenced raster layer with SMGeo. "
                "The click is in photo pixels (x right, y down, from the top-left corner of the upright "
                "photo). Method: Auto fuses the photo's metadata camera (EXIF / DJI, Parrot, Skydio or Pix4D "
                "XMP), registration of the photo on the raster and SMGeo; or one of them alone. A DSM/DEM (optional) gives the ground "
                "heights for metadata and registration. Output: the object's footprint polygon in the raster's "
                "CRS with its score (rank 0; with method, answer (the stage whose point answered), "
                "uncertainty_m (90 % radius of the clicked point, metres), confidence, located_lon/lat, "
                "box_source), followed by the requested number of candidates.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(self.PHOTO, "Drone photo", fileFilter=PHOTO_EXTENSIONS))
        self.addParameter(QgsProcessingParameterNumber(self.CLICK_X, "Click x (photo pixels)",
                                                       QgsProcessingParameterNumber.Double, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.CLICK_Y, "Click y (photo pixels)",
                                                       QgsProcessingParameterNumber.Double, minValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE,
                                                            "Reference raster (satellite / orthophoto)"))
        self.addParameter(QgsProcessingParameterEnum(self.WINDOW, "Search window", self.MODES, defaultValue=0))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent (for 'Extent below')", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.CANDIDATES, "Candidates besides the best",
                                                       QgsProcessingParameterNumber.Integer, 0, minValue=0,
                                                       maxValue=20))
        _add_method_parameters(self)
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, "Located object",
                                                            QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber("SCORE", "Score of the best detection"))
        self.addOutput(QgsProcessingOutputNumber("CENTROID_LON", "Longitude of its centre (WGS84)"))
        self.addOutput(QgsProcessingOutputNumber("CENTROID_LAT", "Latitude of its centre (WGS84)"))
        self.addOutput(QgsProcessingOutputString("METHOD", "Stages that held (e.g. metadata+registration+smgeo)"))
        self.addOutput(QgsProcessingOutputString("ANSWER", "Stage whose point answered"))
        self.addOutput(QgsProcessingOutputNumber("UNCERTAINTY_M", "90 % radius of the clicked point (m)"))
        self.addOutput(QgsProcessingOutputNumber("LOCATED_LON", "Longitude of the clicked point (WGS84)"))
        self.addOutput(QgsProcessingOutputNumber("LOCATED_LAT", "Latitude of the clicked point (WGS84)"))

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback):  # noqa: N802
        photo = self.parameterAsFile(parameters, self.PHOTO, context)
        layer = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        if layer is None:
            raise QgsProcessingException("Reference raster: no layer given")
        click = [self.parameterAsDouble(parameters, self.CLICK_X, context),
                 self.parameterAsDouble(parameters, self.CLICK_Y, context)]
        mode = self.parameterAsEnum(parameters, self.WINDOW, context)
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs()) if mode == 1 else None
        if mode == 1 and (extent.isNull() or extent.isEmpty()):
            raise QgsProcessingException("Extent: 'Extent below' was chosen but no extent was given")
        candidates = self.parameterAsInt(parameters, self.CANDIDATES, context)
        params = {"query": photo, "click": click, "top_k": max(5, candidates + 1),
                  **_method_params(self, parameters, context)}
        snapshot = None
        if export.file_path(layer):
            window = {"mode": "photo_gps" if mode == 2 else "whole"}
            if mode == 1:
                window = {"mode": "bounds", "crs": layer.crs().toWkt(),
                          "bounds": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()]}
            params.update(reference=export.file_path(layer), window=window)
        elif mode != 1:
            raise QgsProcessingException(f"Reference raster: layer '{layer.name()}' is a {layer.providerType()} "
                                         f"layer, not a file: choose 'Extent below' and give the extent to read")
        else:  # a tile/web layer: the extent is read into a GeoTIFF first
            try:
                snapshot = export.plan_snapshot(layer, extent)
            except export.SnapshotError as exc:
                raise QgsProcessingException(str(exc)) from None
        if snapshot is None:
            result = _run("locate", params, feedback)
        else:
            try:
                feedback.setProgressText(f"reading layer '{layer.name()}'")
                params.update(reference=snapshot.write(), window={"mode": "whole"})
                result = _run("locate", params, feedback)
                snapshot.relabel(result)
            except export.SnapshotError as exc:
                raise QgsProcessingException(str(exc)) from None
            finally:
                snapshot.remove()
        fields = results.result_fields()
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Polygon,
                                             results.crs_of(result["crs"]))
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        for record in result["detections"][: candidates + 1]:
            sink.addFeature(results.feature_from_record(record, fields), QgsFeatureSink.FastInsert)
        feedback.setProgress(100.0)
        best = result["detections"][0]
        extra = best.get("extra") or {}
        located = result.get("located") or [None, None]
        feedback.pushInfo(f"score {best['score']:.3f} at lon {best['centroid_lonlat'][0]:.7f}, "
                          f"lat {best['centroid_lonlat'][1]:.7f} ({result['seconds']:.2f} s)")
        feedback.pushInfo(f"answered by {result.get('answer')} ({result.get('method')}), "
                          f"\u00b1{result.get('uncertainty_m', float('nan')):.1f} m (90 %)")
        for stage in ("metadata", "registration", "smgeo"):
            status = extra.get(f"{stage}_status")
            if status not in (None, "ok"):
                feedback.pushInfo(f"{stage} not used: {status}")
        return {self.OUTPUT: dest_id, "SCORE": best["score"], "CENTROID_LON": best["centroid_lonlat"][0],
                "CENTROID_LAT": best["centroid_lonlat"][1], "METHOD": result.get("method"),
                "ANSWER": result.get("answer"), "UNCERTAINTY_M": result.get("uncertainty_m"),
                "LOCATED_LON": located[0], "LOCATED_LAT": located[1]}


class BatchAlgorithm(_Algorithm):
    MANIFEST, REFERENCE, WORKERS, OUTPUT = "MANIFEST", "REFERENCE", "WORKERS", "OUTPUT"

    def name(self) -> str:
        return "batch"

    def displayName(self) -> str:  # noqa: N802
        return "Batch geocode drone survey"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Locates the clicked object of every row of a manifest CSV (columns query, click_x, click_y "
                "and optionally reference, lon, lat, radius_m; relative paths are relative to the CSV) and "
                "writes one GeoPackage with layers detections, centroids and rows (ok / error per row). "
                "Method and DSM/DEM as for 'Locate object from drone photo'; every detection carries method, "
                "answer, uncertainty_m and each stage's status. Rerunning after a cancel or crash skips the rows "
                "already done (rows are redone when the method or DEM changes).")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(self.MANIFEST, "Manifest (CSV)", extension="csv"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, "Reference raster for rows that name none",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.WORKERS, "Worker processes",
                                                       QgsProcessingParameterNumber.Integer, 1, minValue=1,
                                                       maxValue=64))
        _add_method_parameters(self)
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Output GeoPackage",
                                                                "GeoPackage (*.gpkg)"))
        self.addOutput(QgsProcessingOutputNumber("OK", "Rows located"))
        self.addOutput(QgsProcessingOutputNumber("ERRORS", "Rows with an error"))

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback):  # noqa: N802
        manifest = self.parameterAsFile(parameters, self.MANIFEST, context)
        layer = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if not out.lower().endswith(".gpkg"):
            raise QgsProcessingException(f"Output GeoPackage: {out} must end in .gpkg")
        params = {"manifest": manifest, "reference": _raster_path(layer, "Reference raster") if layer else None,
                  "out": out, "workers": self.parameterAsInt(parameters, self.WORKERS, context),
                  **_method_params(self, parameters, context)}
        summary = _run("batch", params, feedback)
        feedback.setProgress(100.0)
        feedback.pushInfo(f"{summary['ok']} ok, {summary['error']} error(s) -> {out}")
        if summary["ok"] and Path(out).is_file():
            details = QgsProcessingContext.LayerDetails("SMGeo batch detections", context.project(), self.OUTPUT)
            context.addLayerToLoadOnCompletion(f"{out}|layername=detections", details)
        return {self.OUTPUT: out, "OK": summary["ok"], "ERRORS": summary["error"]}


class _StyleHits(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded hits / footprints layer as the panel does (colour by platform, rank
    labels, thumbnail map tip)."""

    def __init__(self, polygons: bool) -> None:
        super().__init__()
        self.polygons = polygons

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if isinstance(layer, QgsVectorLayer):
            hit_layers.style_hits(layer, self.polygons)


_POST_PROCESSORS: dict[bool, _StyleHits] = {}  # kept alive here: QGIS does not own them


def _load_styled(context: QgsProcessingContext, dest_id: str, name: str, polygons: bool) -> None:
    if dest_id and context.willLoadLayerOnCompletion(dest_id):
        details = context.layerToLoadOnCompletionDetails(dest_id)
        details.name = name
        details.setPostProcessor(_POST_PROCESSORS.setdefault(polygons, _StyleHits(polygons)))


class FindByDescriptionAlgorithm(_Algorithm):
    TEXT, INDEX, TOP_K, OUTPUT, FOOTPRINTS = "TEXT", "INDEX", "TOP_K", "OUTPUT", "FOOTPRINTS"
    PLACE_FUSION = "PLACE_FUSION"

    def group(self) -> str:
        return "Find by description"

    def groupId(self) -> str:  # noqa: N802
        return "retrieval"

    def name(self) -> str:
        return "find_by_description"

    def displayName(self) -> str:  # noqa: N802
        return "Find places by description"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Ranks the satellite tiles, drone photos and ground photos of a vector index (a folder made by "
                "'smgeo index build') for a description in words, e.g. 'a red roof next to a round pond'. "
                "Output: one point per hit at its position (EPSG:4326; the camera position for photos) with "
                "rank (1 = best), score (the model's inner product, or the fused score when the other views of each "
                "place are weighed in; higher is better), platform, item_id, image "
                "and thumbnail paths, lon, lat, query, model_id; Footprints: the ground polygons of the hits "
                "that have one (satellite tiles, nadir drone photos).")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterString(self.TEXT, "Description (what to find, in words)"))
        self.addParameter(QgsProcessingParameterFile(self.INDEX, "Index folder (smgeo index build)",
                                                     behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterNumber(self.TOP_K, "Number of hits",
                                                       QgsProcessingParameterNumber.Integer, 10, minValue=1,
                                                       maxValue=100))
        self.addParameter(QgsProcessingParameterBoolean(self.PLACE_FUSION, "Weigh in the other views of each place "
                                                        "(neighbours within 200 m)", defaultValue=True))
        self.addParameter(QgsProcessingParameterFeatureSink(self.OUTPUT, "Hits", QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFeatureSink(self.FOOTPRINTS, "Hit footprints",
                                                            QgsProcessing.TypeVectorPolygon, optional=True,
                                                            createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber("COUNT", "Number of hits"))
        self.addOutput(QgsProcessingOutputNumber("INDEX_COUNT", "Items in the index"))
        self.addOutput(QgsProcessingOutputString("MODEL_ID", "Model id of the index's retrieval model"))

    def processAlgorithm(self, parameters, context: QgsProcessingContext, feedback):  # noqa: N802
        text = " ".join(self.parameterAsString(parameters, self.TEXT, context).split())
        if not text:
            raise QgsProcessingException("Description: empty; describe what to find, e.g. 'a red roof next to a "
                                         "round pond'")
        index = self.parameterAsFile(parameters, self.INDEX, context)
        if not index:
            raise QgsProcessingException("Index folder: none given (make one with 'smgeo index build')")
        top_k = self.parameterAsInt(parameters, self.TOP_K, context)
        fusion = self.parameterAsBoolean(parameters, self.PLACE_FUSION, context)
        result = _run("retrieve", {"text": text, "index": index, "top_k": top_k, "place_fusion": fusion}, feedback)
        fields = hit_layers.hit_fields()
        wgs84 = QgsCoordinateReferenceSystem(results.WGS84)
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Point, wgs84)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        for feature in hit_layers.hit_features(result, text):
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        outputs = {self.OUTPUT: dest_id}
        fp_sink, fp_id = self.parameterAsSink(parameters, self.FOOTPRINTS, context, fields, QgsWkbTypes.Polygon,
                                              wgs84)
        if fp_sink is not None:
            for feature in hit_layers.hit_features(result, text, footprints=True):
                fp_sink.addFeature(feature, QgsFeatureSink.FastInsert)
            outputs[self.FOOTPRINTS] = fp_id
            _load_styled(context, fp_id, hit_layers.footprints_layer_name(text), True)
        _load_styled(context, dest_id, hit_layers.hits_layer_name(text), False)
        hits = result.get("hits", [])
        feedback.setProgress(100.0)
        for hit in hits[:3]:
            feedback.pushInfo(f"#{hit['rank']} {hit['platform']} {hit['item_id']} score {hit['score']:.3f} at "
                              f"lon {hit['lon']:.6f}, lat {hit['lat']:.6f}")
        feedback.pushInfo(f"{len(hits)} hit(s) of {result.get('count')} items in {result.get('seconds', 0):.2f} s")
        model_id = str((result.get("model") or {}).get("model_id") or "")
        return {**outputs, "COUNT": len(hits), "INDEX_COUNT": result.get("count"), "MODEL_ID": model_id}


class SMGeoProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "smgeo"

    def name(self) -> str:
        return "SMGeo"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def loadAlgorithms(self) -> None:  # noqa: N802
        self.addAlgorithm(LocateAlgorithm())
        self.addAlgorithm(BatchAlgorithm())
        self.addAlgorithm(FindByDescriptionAlgorithm())
