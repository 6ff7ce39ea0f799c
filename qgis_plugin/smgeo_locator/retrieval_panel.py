"""The "Find by description" tab of the SMGeo dock: an index folder (``smgeo index build``), a
description in words, how many hits; Find runs the worker's ``retrieve`` in a QgsTask
(progress, Cancel). The hits become the layers of :mod:`.hit_layers` and a list with their
thumbnails: clicking a hit selects it on the map and zooms to it; double-clicking it (or *Open
image*) opens its image: a satellite GeoTIFF tile as a raster layer, a photo in the desktop's
image viewer.
"""

from __future__ import annotations

import os

from qgis.core import (
    Qgis, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsGeometry, QgsProject,
    QgsRasterLayer, QgsRectangle,
)
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QSize, Qt, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QCheckBox, QFormLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from . import hit_layers
from .results import WGS84
from .run_controls import RunControls
from .service import log, shared_client
from .settings import PluginSettings
from .tasks import WorkerTask

THUMB_SIZE = 64
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
HIT_ROLE = Qt.UserRole  # the rank of a list item's hit
POINT_HALF_SIDE_DEG = 0.0015  # zooming to a hit without a footprint shows about 300 m around it


def open_url(url: QUrl) -> bool:
    """Open ``url`` with the desktop (tests replace it)."""
    return QDesktopServices.openUrl(url)


class RetrievalPanel(QWidget):
    """Find satellite tiles, drone photos and ground photos by a description in words."""

    def __init__(self, iface, settings: PluginSettings, parent=None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.settings = settings  # shared with the dock: both save the same settings
        self.last_result: dict | None = None
        self.hits_layer_id: str | None = None
        self.footprints_layer_id: str | None = None
        self._feature_ids: dict[int, int] = {}  # rank -> feature id in the hits layer
        self._hits: dict[int, dict] = {}  # rank -> the worker's hit
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.index_widget = QgsFileWidget(self)
        self.index_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.index_widget.setDialogTitle("Index folder (smgeo index build)")
        self.index_widget.setFilePath(self.settings.retrieval_index)
        self.index_widget.setToolTip("the folder written by 'smgeo index build' (index.json, vectors.faiss, thumbs/)")
        form.addRow("Index folder", self.index_widget)
        self.text_edit = QLineEdit(self)
        self.text_edit.setPlaceholderText("e.g. a red roof next to a round pond")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.returnPressed.connect(self.find)
        form.addRow("Description", self.text_edit)
        self.top_k_spin = QSpinBox(self)
        self.top_k_spin.setRange(1, 100)
        self.top_k_spin.setValue(self.settings.retrieval_top_k)
        form.addRow("Hits", self.top_k_spin)
        self.fusion_check = QCheckBox("Weigh in the other views of each place", self)
        self.fusion_check.setChecked(self.settings.retrieval_place_fusion)
        self.fusion_check.setToolTip("place fusion: a hit whose neighbours within 200 m (its place's other "
                                     "satellite, drone and street views) match the description too ranks higher")
        form.addRow("", self.fusion_check)
        layout.addLayout(form)

        self.run = RunControls(layout, self, "Find", self.find, self.cancel, self.notify,
                               "Describe what to find, e.g. its roof, shape and surroundings.")
        self.find_button, self.cancel_button = self.run.run_button, self.run.cancel_button
        self.progress, self.status_label = self.run.progress, self.run.status_label

        layout.addWidget(QLabel("Hits (click: show on the map; double-click: open the image):", self))
        self.hits_list = QListWidget(self)
        self.hits_list.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.hits_list.setUniformItemSizes(True)
        self.hits_list.itemClicked.connect(self.show_hit)
        self.hits_list.itemActivated.connect(self.open_hit)
        layout.addWidget(self.hits_list, 1)
        self.open_button = QPushButton("Open image", self)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(lambda: self.open_hit(self.hits_list.currentItem()))
        self.hits_list.currentItemChanged.connect(lambda item, _old: self.open_button.setEnabled(item is not None))
        layout.addWidget(self.open_button)

    # -- feedback -------------------------------------------------------------------------
    def notify(self, text: str, level=Qgis.Info, duration: int = 6) -> None:
        """One line in the message bar, the log and the status line; never raises."""
        text = " ".join(str(text).split())
        self.status_label.setText(text)
        log(text, level)
        try:
            self.iface.messageBar().pushMessage("SMGeo", text, level, duration)
        except Exception:  # a missing message bar must not break the panel
            pass

    # -- search ---------------------------------------------------------------------------
    def request_params(self) -> dict | None:
        """The ``retrieve`` parameters from the panel (None, after saying what is missing)."""
        text = " ".join(self.text_edit.text().split())
        index = self.index_widget.filePath().strip()
        if not index:
            self.notify("Find by description: choose an index folder (made by 'smgeo index build').", Qgis.Warning)
            return None
        if not text:
            self.notify("Find by description: type a description of what to find.", Qgis.Warning)
            return None
        return {"text": text, "index": index, "top_k": int(self.top_k_spin.value()),
                "place_fusion": bool(self.fusion_check.isChecked())}

    def find(self) -> WorkerTask | None:
        """Start a search (a running one is cancelled: the latest wins)."""
        params = self.request_params()
        if params is None:
            return None
        self.settings.retrieval_index = params["index"]
        self.settings.retrieval_top_k = params["top_k"]
        self.settings.retrieval_place_fusion = params["place_fusion"]
        self.settings.save()
        settings = self.settings
        task = WorkerTask("SMGeo: find by description", lambda: shared_client(settings), "retrieve", params,
                          done=self._found)
        self.run.start(task, f"searching for \u201c{hit_layers.short_text(params['text'])}\u201d\u2026")
        return task

    @property
    def task(self) -> WorkerTask | None:
        """The search running, if any."""
        return self.run.task

    def cancel(self) -> None:
        """Cancel the running search; its answer, whenever it comes, is dropped."""
        self.run.cancel()

    def _found(self, task: WorkerTask) -> None:
        outcome = self.run.finish(task)  # "stale": cancelled or superseded by a newer search
        if outcome == "failed":
            self.notify(f"Find by description: {task.error or 'the search failed'}", Qgis.Critical, 10)
        if outcome != "ok":
            return
        self.show_hits(task.result, task.params["text"])

    # -- results --------------------------------------------------------------------------
    def show_hits(self, result: dict, text: str) -> None:
        """Layers and list of the hits of a worker ``retrieve`` result; zoom to them."""
        project = QgsProject.instance()
        try:
            points, footprints = hit_layers.add_hits(result, text, project)
        except RuntimeError as exc:
            self.notify(str(exc), Qgis.Critical)
            return
        self.last_result = result
        self.hits_layer_id = points.id()
        self.footprints_layer_id = footprints.id() if footprints is not None else None
        self._feature_ids = {int(f["rank"]): f.id() for f in points.getFeatures()}
        self._hits = {int(hit["rank"]): hit for hit in result.get("hits", [])}
        self.hits_list.clear()
        for hit in result.get("hits", []):
            item = QListWidgetItem(f"#{hit['rank']}  {hit['platform']}  score {hit['score']:.4f}\n{hit['item_id']}")
            item.setData(HIT_ROLE, int(hit["rank"]))
            item.setToolTip(f"{hit['image']}\nlon {hit['lon']:.6f}, lat {hit['lat']:.6f}")
            thumbnail = hit.get("thumbnail")
            if thumbnail and os.path.isfile(thumbnail):
                pixmap = QPixmap(thumbnail)
                if not pixmap.isNull():
                    item.setIcon(QIcon(pixmap))
            self.hits_list.addItem(item)
        self.progress.setValue(100)
        hits = result.get("hits", [])
        if hits:
            box = QgsRectangle(points.extent())
            if footprints is not None:
                box.combineExtentWith(footprints.extent())
            self._zoom_to(box)
        cached = " (index cached)" if result.get("index_cached") else ""
        text_line = (f"{len(hits)} hit(s) of {result.get('count', '?')} items for "
                     f"\u201c{hit_layers.short_text(text)}\u201d in {result.get('seconds', 0):.2f} s{cached}.")
        self.status_label.setText(text_line if hits else f"No hits: the index is empty. {text_line}")
        log(text_line)

    def hit_of(self, item: QListWidgetItem | None) -> dict | None:
        """The worker's hit shown by a list item."""
        return self._hits.get(item.data(HIT_ROLE)) if item is not None else None

    def hits_layer(self):
        """The layer of the last search, or None when it was removed."""
        return QgsProject.instance().mapLayer(self.hits_layer_id) if self.hits_layer_id else None

    def _zoom_to(self, box_wgs84: QgsRectangle) -> None:
        """Zoom the map to a lon/lat box (a point becomes a small box around it)."""
        if box_wgs84.width() == 0 or box_wgs84.height() == 0:
            box_wgs84 = QgsRectangle(box_wgs84.center().x() - POINT_HALF_SIDE_DEG,
                                     box_wgs84.center().y() - POINT_HALF_SIDE_DEG,
                                     box_wgs84.center().x() + POINT_HALF_SIDE_DEG,
                                     box_wgs84.center().y() + POINT_HALF_SIDE_DEG)
        else:
            box_wgs84.scale(1.3)
        canvas = self.iface.mapCanvas()
        crs = canvas.mapSettings().destinationCrs()
        box = box_wgs84
        if crs.isValid():  # (a map without a CRS draws the hits' lon/lat as they are)
            transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem(WGS84), crs, QgsProject.instance())
            try:
                box = transform.transformBoundingBox(box_wgs84)
            except Exception as exc:  # e.g. a point outside the map CRS's area of use
                log(f"cannot zoom to the hit: {exc}", Qgis.Warning)
                return
        canvas.setExtent(box)
        canvas.refresh()

    def show_hit(self, item: QListWidgetItem | None) -> None:
        """Select the hit of ``item`` in its layer and zoom to it (its footprint if it has one)."""
        hit = self.hit_of(item)
        if hit is None:
            return
        layer = self.hits_layer()
        if layer is not None and int(hit["rank"]) in self._feature_ids:
            layer.selectByIds([self._feature_ids[int(hit["rank"])]])
        footprints = QgsProject.instance().mapLayer(self.footprints_layer_id) if self.footprints_layer_id else None
        if footprints is not None:
            footprints.selectByExpression(f"\"rank\" = {int(hit['rank'])}")
        if hit.get("footprint"):
            self._zoom_to(QgsGeometry.fromWkt(hit["footprint"]).boundingBox())
        else:
            self._zoom_to(QgsRectangle(hit["lon"], hit["lat"], hit["lon"], hit["lat"]))

    def open_hit(self, item: QListWidgetItem | None):
        """Open the image of ``item``'s hit: a GeoTIFF tile as a raster layer (returned), a photo
        in the desktop's viewer (returns whether it opened)."""
        hit = self.hit_of(item)
        if hit is None:
            return None
        image = str(hit.get("image") or "")
        if not os.path.isfile(image):
            self.notify(f"Find by description: image {image} not found (moved since the index was built?)",
                        Qgis.Warning)
            return None
        if image.lower().endswith(RASTER_SUFFIXES):
            project = QgsProject.instance()
            for layer in project.mapLayers().values():
                if isinstance(layer, QgsRasterLayer) and os.path.abspath(layer.source()) == os.path.abspath(image):
                    return layer
            layer = QgsRasterLayer(image, f"SMGeo tile #{hit['rank']} {hit['item_id']}", "gdal")
            if not layer.isValid():
                self.notify(f"Find by description: {image} cannot be opened as a raster", Qgis.Warning)
                return None
            project.addMapLayer(layer, False)
            root = project.layerTreeRoot()  # below the hit layers, above the rest
            ids = {self.hits_layer_id, self.footprints_layer_id} - {None}
            below = [i + 1 for i, node in enumerate(root.children())
                     if getattr(node, "layerId", lambda: None)() in ids]
            root.insertLayer(max(below, default=0), layer)
            return layer
        opened = open_url(QUrl.fromLocalFile(image))
        if not opened:
            self.notify(f"Find by description: no application opened {image}", Qgis.Warning)
        return opened
