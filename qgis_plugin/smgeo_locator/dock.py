"""The SMGeo dock panel: photo, click, reference layer, search window, method, DEM, Locate,
results (the object's box, the located point and its 90 % uncertainty circle, and in the
status line which stage answered, with which uncertainty, and why other stages did not run);
a second tab, "Find by description", is :class:`.retrieval_panel.RetrievalPanel`."""

from __future__ import annotations

import os
import tempfile
import time

from qgis.core import (
    Qgis, QgsCoordinateTransform, QgsMapLayerProxyModel, QgsProject, QgsProviderRegistry,
    QgsRasterLayer, QgsRectangle,
)
from qgis.gui import QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
    QFrame, QPushButton, QScrollArea, QTabWidget, QVBoxLayout, QWidget,
)

from . import export, results
from .photo_view import PhotoLoadError, PhotoView
from .retrieval_panel import RetrievalPanel
from .run_controls import RunControls
from .service import log, shared_client
from .settings import METHODS, SETUP_HELP, PluginSettings
from .tasks import WorkerTask

PHOTO_FILTER = "Images (*.jpg *.jpeg *.JPG *.JPEG *.png *.PNG *.tif *.tiff *.TIF *.TIFF);;All files (*)"
WINDOW_MODES = [("extent", "Map's current extent"), ("photo_gps", "Photo GPS (EXIF / drone XMP metadata)"),
                ("whole", "Whole layer")]
STAGES = ("metadata", "registration", "smgeo")
STAGE_NAMES = {"metadata": "photo metadata", "registration": "registration", "smgeo": "SMGeo"}
METHOD_STAGES = {"auto": STAGES, "metadata": ("metadata",), "registration": ("registration",),
                 "smgeo": ("smgeo",)}


def describe_result(result: dict, method: str = "auto") -> str:
    """What the status line says about a worker ``locate`` result: which stage answered, the
    stages that held, the 90 % uncertainty, and why any stage asked for did not run."""
    best = result["detections"][0]
    extra = best.get("extra") or {}
    answer = result.get("answer") or extra.get("answer") or "?"
    held = result.get("method") or extra.get("method") or "?"
    radius = result.get("uncertainty_m", extra.get("uncertainty_m"))
    located = result.get("located") or [extra.get("located_lon"), extra.get("located_lat")]
    parts = [f"Answered by {answer} ({held}), " + (f"\u00b1{radius:.1f} m (90 %)" if isinstance(radius, (int, float))
                                                  else "uncertainty unknown")]
    if all(isinstance(v, (int, float)) for v in located):
        parts.append(f"at lon {located[0]:.6f}, lat {located[1]:.6f}")
    if isinstance(extra.get("confidence"), (int, float)):
        parts.append(f"confidence {extra['confidence']:.2f}")
    text = ", ".join(parts) + "."
    box = extra.get("box_source") or "smgeo"
    text += f" Box: {box}, score {best['score']:.3f}"
    if extra.get("registration_status") == "ok" and extra.get("registration_inliers") is not None:
        text += f"; registration {extra['registration_inliers']} inliers"
        if extra.get("registration_patch_inliers"):
            text += f", {extra['registration_patch_inliers']} around the click"
    cached = " (reference features cached)" if result.get("reference_cached") else ""
    text += f"; in {result.get('seconds', 0):.2f} s{cached}."
    missing = []
    photo = best.get("query_image") or ""
    for stage in METHOD_STAGES.get(method, STAGES):
        status = extra.get(f"{stage}_status")
        if status is None:
            missing.append(f"{STAGE_NAMES[stage]}: did not run")
        elif status != "ok":
            status = str(status)
            if photo and status.startswith(f"{photo}: "):  # the photo is named in the panel already
                status = status[len(photo) + 2:]
            missing.append(f"{STAGE_NAMES[stage]}: {status}")
    if missing:
        text += " Not used: " + "; ".join(missing) + "."
    return text


class LocatorDock(QgsDockWidget):
    """Pick a drone photo, click the target, choose the reference raster layer, Locate."""

    def __init__(self, iface, parent=None) -> None:
        super().__init__("SMGeo Locator", parent)
        self.setObjectName("SMGeoLocatorDock")
        self.iface = iface
        self.settings = PluginSettings.load()
        self.last_result: dict | None = None
        self.last_feature_id: int | None = None
        self._build()
        self._refresh_recent()
        self._check_setup()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        layout = QVBoxLayout(body)
        form = QFormLayout()
        self.photo_widget = QgsFileWidget(body)
        self.photo_widget.setFilter(PHOTO_FILTER)
        self.photo_widget.setDialogTitle("Drone photo")
        self.photo_widget.fileChanged.connect(self._photo_chosen)
        form.addRow("Drone photo", self.photo_widget)
        self.recent_combo = QComboBox(body)
        self.recent_combo.activated.connect(self._recent_chosen)
        form.addRow("Recent", self.recent_combo)
        layout.addLayout(form)

        self.photo_view = PhotoView(body)
        self.photo_view.clicked.connect(self._photo_clicked)
        layout.addWidget(self.photo_view, 1)
        self.click_label = QLabel("Choose a photo, then click the target in it.", body)
        layout.addWidget(self.click_label)

        form = QFormLayout()
        self.layer_combo = QgsMapLayerComboBox(body)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(False)
        form.addRow("Reference layer", self.layer_combo)
        self.window_combo = QComboBox(body)
        for key, label in WINDOW_MODES:
            self.window_combo.addItem(label, key)
        self.window_combo.setCurrentIndex(2)
        form.addRow("Search window", self.window_combo)
        self.method_combo = QComboBox(body)
        for key, label in METHODS:
            self.method_combo.addItem(label, key)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(self.settings.method)))
        self.method_combo.setToolTip("Auto: the photo's metadata camera, refined by registering the photo on the "
                                     "reference, and SMGeo for the object's box; or one stage alone")
        form.addRow("Method", self.method_combo)
        self.dem_combo = QgsMapLayerComboBox(body)
        self.dem_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        # only rasters the worker can open: files read by GDAL (no tile or web services)
        self.dem_combo.setExcludedProviders([p for p in QgsProviderRegistry.instance().providerList() if p != "gdal"])
        self.dem_combo.setAllowEmptyLayer(True)
        self.dem_combo.setLayer(None)
        self.dem_combo.setToolTip("a DSM/DEM raster file (heights in metres, in the photo's altitude frame) "
                                  "for metadata and registration; empty = flat ground at the take-off height")
        form.addRow("DEM / DSM", self.dem_combo)
        layout.addLayout(form)
        active = self.iface.activeLayer() if self.iface is not None else None
        if isinstance(active, QgsRasterLayer):
            self.layer_combo.setLayer(active)

        options = QHBoxLayout()
        self.auto_check = QCheckBox("Locate on click", body)
        self.auto_check.setChecked(True)
        self.heatmap_check = QCheckBox("Add heatmap layer", body)
        options.addWidget(self.auto_check)
        options.addWidget(self.heatmap_check)
        layout.addLayout(options)

        self.run = RunControls(layout, body, "Locate", self.locate, self.cancel, self.notify)
        self.locate_button, self.cancel_button = self.run.run_button, self.run.cancel_button
        self.progress, self.status_label = self.run.progress, self.run.status_label

        layout.addWidget(QLabel("Candidates (tick to show on the map):", body))
        self.candidates_list = QListWidget(body)
        self.candidates_list.setMaximumHeight(110)
        self.candidates_list.itemChanged.connect(self._candidates_changed)
        layout.addWidget(self.candidates_list)
        self.save_button = QPushButton("Save results to GeoPackage…", body)
        self.save_button.clicked.connect(self._save_clicked)
        layout.addWidget(self.save_button)
        scroll = QScrollArea(self)  # a short window scrolls the panel instead of squeezing its rows together
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(body)
        self.retrieval_panel = RetrievalPanel(self.iface, self.settings, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(scroll, "Locate")
        self.tabs.addTab(self.retrieval_panel, "Find by description")
        self.setWidget(self.tabs)

    # -- user feedback --------------------------------------------------------------------
    def notify(self, text: str, level=Qgis.Info, duration: int = 6) -> None:
        """Message bar + log + status line; never raises."""
        self.status_label.setText(text)
        log(text, level)
        try:
            self.iface.messageBar().pushMessage("SMGeo", text, level, duration)
        except Exception:  # a missing message bar must not break the panel
            pass

    def _check_setup(self) -> None:
        if not self.settings.worker_python():
            self.status_label.setText(SETUP_HELP)

    def apply_settings(self) -> None:
        """After the settings dialog: the panel takes the (new) default method."""
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(self.settings.method)))
        self._check_setup()

    # -- photo and click ------------------------------------------------------------------
    def _refresh_recent(self) -> None:
        self.recent_combo.clear()
        self.recent_combo.addItem("", "")
        for path in self.settings.recent_photos:
            self.recent_combo.addItem(os.path.basename(path), path)

    def _recent_chosen(self, index: int) -> None:
        path = self.recent_combo.itemData(index)
        if path:
            self.photo_widget.setFilePath(path)

    def _photo_chosen(self, path: str) -> None:
        if path:
            self.set_photo(path)

    def set_photo(self, path: str) -> bool:
        """Show the photo ``path``; the click is reset."""
        try:
            width, height = self.photo_view.load(path)
        except PhotoLoadError as exc:
            self.notify(str(exc), Qgis.Warning)
            return False
        self.photo_path = path
        if self.photo_widget.filePath() != path:
            self.photo_widget.blockSignals(True)
            self.photo_widget.setFilePath(path)
            self.photo_widget.blockSignals(False)
        self.settings.add_recent_photo(path)
        self.settings.save()
        self._refresh_recent()
        self.recent_combo.blockSignals(True)
        self.recent_combo.setCurrentIndex(1)  # the photo just chosen heads the list
        self.recent_combo.blockSignals(False)
        self.click_label.setText(f"{width} x {height} px: click the target")
        return True

    def _photo_clicked(self, x: float, y: float) -> None:
        self.click_label.setText(f"click x {x:.1f}, y {y:.1f} (photo pixels)")
        if self.auto_check.isChecked() and self.layer_combo.currentLayer() is not None:
            self.locate()

    # -- locate ---------------------------------------------------------------------------
    def _canvas_extent_in(self, crs) -> QgsRectangle:
        """The map's current extent, transformed from the canvas CRS to ``crs``."""
        canvas = self.iface.mapCanvas()
        transform = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), crs, QgsProject.instance())
        return transform.transformBoundingBox(canvas.extent())

    def _window_spec(self, layer: QgsRasterLayer) -> dict:
        """The search window for the worker, taken on the main thread; map extents are
        transformed from the canvas CRS to the raster layer's CRS."""
        mode = self.window_combo.currentData()
        if mode == "extent":
            box = self._canvas_extent_in(layer.crs())
            return {"mode": "bounds", "bounds": [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()],
                    "crs": layer.crs().toWkt()}
        return {"mode": mode}

    def request_params(self) -> tuple[dict, export.Snapshot | None] | None:
        """Locate parameters from the panel and, for a layer that is not a file (XYZ/WMS
        tiles...), the snapshot of the map extent to write first; None (after telling the
        user what is missing) when the panel is not ready."""
        click = self.photo_view.click
        layer = self.layer_combo.currentLayer()
        if self.photo_view.photo_size is None:
            self.notify("Choose a drone photo first.", Qgis.Warning)
            return None
        if click is None:
            self.notify("Click the target in the photo first.", Qgis.Warning)
            return None
        if not isinstance(layer, QgsRasterLayer):
            self.notify("Choose a reference raster layer (a georeferenced GeoTIFF/COG, or a tile layer).",
                        Qgis.Warning)
            return None
        method = self.method_combo.currentData() or "auto"
        params = {"query": self.photo_path, "click": list(click), "top_k": 5, "method": method, "dem": None}
        dem_layer = self.dem_combo.currentLayer()
        if dem_layer is not None:
            dem = export.file_path(dem_layer) if isinstance(dem_layer, QgsRasterLayer) else ""
            if not dem:
                self.notify(f"DEM / DSM: layer '{dem_layer.name()}' is not a raster file; choose a GeoTIFF/VRT "
                            f"DSM or DEM, or none.", Qgis.Warning)
                return None
            params["dem"] = dem
        snapshot = None
        path = export.file_path(layer)
        if path:
            params.update(reference=path, window=self._window_spec(layer))
        elif self.window_combo.currentData() != "extent":
            self.notify(f"Layer '{layer.name()}' is a {layer.providerType()} layer, not a file: SMGeo reads the "
                        f"part of it shown on the map. Choose the search window \"Map's current extent\".",
                        Qgis.Warning)
            return None
        else:
            try:
                canvas = self.iface.mapCanvas()
                snapshot = export.plan_snapshot(layer, self._canvas_extent_in(layer.crs()),
                                                long_side=max(canvas.width(), canvas.height()))
            except export.SnapshotError as exc:
                self.notify(str(exc), Qgis.Warning)
                return None
            params.update(reference=snapshot.path, window={"mode": "whole"})
        if self.heatmap_check.isChecked() and method in ("auto", "smgeo"):  # only SMGeo makes a heatmap
            folder = tempfile.mkdtemp(prefix="smgeo_heatmap_")
            params["heatmap"] = os.path.join(folder, f"heatmap_{int(time.time() * 1000)}.tif")
        return params, snapshot

    def locate(self) -> WorkerTask | None:
        """Start a locate task (a running one is cancelled: the latest click wins)."""
        request = self.request_params()
        if request is None:
            return None
        params, snapshot = request
        settings = self.settings
        prepare = (f"reading layer '{snapshot.layer_name}'", snapshot.write) if snapshot is not None else None
        task = WorkerTask("SMGeo: locate object", lambda: shared_client(settings), "locate", params,
                          done=self._located, prepare=prepare)
        task.snapshot = snapshot  # removed by _located once the worker has read it
        self.run.start(task, "locating…")
        return task

    @property
    def task(self) -> WorkerTask | None:
        """The locate task running, if any."""
        return self.run.task

    def cancel(self) -> None:
        """Cancel the running search: whenever the worker's answer arrives, it is dropped
        (no layer is added); the panel says "cancelled" at once."""
        self.run.cancel()

    def _located(self, task: WorkerTask) -> None:
        snapshot = getattr(task, "snapshot", None)
        if snapshot is not None:
            snapshot.relabel(task.result)
            snapshot.remove()
        outcome = self.run.finish(task)  # "stale": an older click (superseded) or a cancelled one
        if outcome == "failed":
            self.notify(f"{task.error}" if task.error is not None else "locate failed", Qgis.Critical, 10)
        if outcome != "ok":
            return
        self.show_result(task.result, task.params.get("method"))

    def show_result(self, result: dict, method: str | None = None) -> None:
        """Add the best detection to "SMGeo results", its located point and uncertainty circle,
        list the candidates, zoom to it, say how it was found (``method``: the one asked for;
        default the panel's)."""
        project = QgsProject.instance()
        layer, feature = results.add_result(result, project)
        self.last_result, self.last_feature_id = result, feature.id()
        location = results.add_location(result, project)
        if result.get("heatmap"):
            try:
                results.add_heatmap(result["heatmap"], project)
            except RuntimeError as exc:
                self.notify(str(exc), Qgis.Warning)
        self.candidates_list.blockSignals(True)
        self.candidates_list.clear()
        for record in result["detections"]:
            lon, lat = record["centroid_lonlat"]
            item = QListWidgetItem(f"#{record['rank'] + 1}  score {record['score']:.3f}  lon {lon:.6f}, lat {lat:.6f}")
            item.setData(Qt.UserRole, record["rank"])
            if record["rank"] > 0:
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Unchecked)
            self.candidates_list.addItem(item)
        self.candidates_list.blockSignals(False)
        results.show_candidates(result, [], project)
        self.zoom_to(layer, feature, location[0] if location else None)
        self.progress.setValue(100)
        text = describe_result(result, method or self.method_combo.currentData() or "auto")
        if self.heatmap_check.isChecked() and not result.get("heatmap"):
            text += " No heatmap: only SMGeo makes one (method Auto or SMGeo only)."
        self.status_label.setText(text)
        log(text)

    def zoom_to(self, layer, feature, circle=None) -> None:
        """Zoom to the found box (and the uncertainty circle, when given)."""
        canvas = self.iface.mapCanvas()
        transform = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
        box = transform.transformBoundingBox(feature.geometry().boundingBox())
        box.scale(6.0)
        if circle is not None:
            around = transform.transformBoundingBox(circle.geometry().boundingBox())
            around.scale(1.3)
            box.combineExtentWith(around)
        canvas.setExtent(box)
        canvas.refresh()

    def checked_candidates(self) -> list[int]:
        ranks = []
        for i in range(self.candidates_list.count()):
            item = self.candidates_list.item(i)
            if item.flags() & Qt.ItemIsUserCheckable and item.checkState() == Qt.Checked:
                ranks.append(int(item.data(Qt.UserRole)))
        return ranks

    def _candidates_changed(self, _item) -> None:
        if self.last_result is not None:
            results.show_candidates(self.last_result, self.checked_candidates())

    # -- saving ---------------------------------------------------------------------------
    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save SMGeo results", "", "GeoPackage (*.gpkg)")
        if path:
            self.save_results(path if path.lower().endswith(".gpkg") else path + ".gpkg")

    def save_results(self, path: str) -> str | None:
        layers = QgsProject.instance().mapLayersByName(results.RESULTS_LAYER)
        if not layers:
            self.notify("No results to save yet.", Qgis.Warning)
            return None
        try:
            written = results.save_geopackage(layers[0], path)
        except RuntimeError as exc:
            self.notify(str(exc), Qgis.Critical)
            return None
        self.notify(f"saved {layers[0].featureCount()} result(s) to {written}", Qgis.Success)
        return written
