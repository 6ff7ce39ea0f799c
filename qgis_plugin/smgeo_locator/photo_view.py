"""A view of the drone photo where the user clicks the target.

Click coordinates are photo pixels of the *upright* photo (EXIF orientation applied, as
``smgeo_geo.photo.read_photo`` does): x right, y down, (0, 0) the outer top-left corner
of the top-left pixel. A marker shows the click; clicking again moves it.
"""

from __future__ import annotations

from qgis.PyQt.QtCore import QPointF, Qt, pyqtSignal
from qgis.PyQt.QtGui import QBrush, QColor, QImageReader, QPainter, QPainterPath, QPen, QPixmap
from qgis.PyQt.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView


class PhotoLoadError(Exception):
    pass


def _marker_path() -> QPainterPath:
    path = QPainterPath()
    path.addEllipse(QPointF(0, 0), 9, 9)
    for x1, y1, x2, y2 in ((-15, 0, -4, 0), (4, 0, 15, 0), (0, -15, 0, -4), (0, 4, 0, 15)):
        path.moveTo(x1, y1)
        path.lineTo(x2, y2)
    return path


class PhotoView(QGraphicsView):
    """Shows a photo scaled to fit; emits ``clicked(x, y)`` in photo pixels."""

    clicked = pyqtSignal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setMinimumHeight(200)
        self.setBackgroundBrush(QBrush(QColor(60, 60, 60)))
        self.setCursor(Qt.CrossCursor)
        self.pixmap_item = None
        self.marker = None
        self.photo_size: tuple[int, int] | None = None  # (width, height) of the upright photo
        self.click: tuple[float, float] | None = None

    def load(self, path: str) -> tuple[int, int]:
        """Show ``path`` (EXIF orientation applied); returns its (width, height)."""
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        image = reader.read()
        if image.isNull():
            raise PhotoLoadError(f"photo {path} cannot be read as an image ({reader.errorString()})")
        self.scene().clear()
        self.marker = None
        self.click = None
        self.pixmap_item = self.scene().addPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(self.pixmap_item.boundingRect())
        self.photo_size = (image.width(), image.height())
        self._fit()
        return self.photo_size

    def clear(self) -> None:
        self.scene().clear()
        self.pixmap_item = self.marker = self.photo_size = self.click = None

    def set_click(self, x: float, y: float) -> None:
        """Put the marker at photo pixel (x, y) (moves it if there is one)."""
        if self.marker is None:
            self.marker = QGraphicsPathItem(_marker_path())
            pen = QPen(QColor("#ffea00"), 2.5)
            pen.setCosmetic(True)
            self.marker.setPen(pen)
            self.marker.setFlag(QGraphicsItem.ItemIgnoresTransformations, True)
            self.marker.setZValue(10)
            self.scene().addItem(self.marker)
        self.marker.setPos(QPointF(x, y))
        self.click = (float(x), float(y))

    def view_position(self, x: float, y: float):
        """Widget (viewport) position of photo pixel (x, y): for tests and tooling."""
        return self.mapFromScene(QPointF(x, y))

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.button() != Qt.LeftButton or self.photo_size is None:
            return super().mousePressEvent(event)
        pos = self.mapToScene(event.pos())
        w, h = self.photo_size
        if 0 <= pos.x() <= w and 0 <= pos.y() <= h:
            self.set_click(pos.x(), pos.y())
            self.clicked.emit(pos.x(), pos.y())
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self.pixmap_item is not None:
            self.fitInView(self.pixmap_item, Qt.KeepAspectRatio)
