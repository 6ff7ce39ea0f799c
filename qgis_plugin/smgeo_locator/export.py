"""Raster layers that are not files (XYZ/WMS tile services, ...) as GeoTIFF snapshots.

The worker reads GDAL files. For any other raster layer the part to search (the map's
extent, in the layer's CRS) is first written to a temporary GeoTIFF: :func:`plan_snapshot`
runs on the main thread (it clones the layer's data provider, so the layer itself is never
used off the main thread), :meth:`Snapshot.write` in the task's thread (tile downloads must
not freeze QGIS). A snapshot is temporary: :meth:`Snapshot.remove` deletes it once the
worker has searched it, and :meth:`Snapshot.relabel` names the layer, not the deleted file,
in the results.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from qgis.core import (
    QgsCoordinateReferenceSystem, QgsCoordinateTransformContext, QgsRasterBlockFeedback, QgsRasterDataProvider,
    QgsRasterFileWriter, QgsRasterLayer, QgsRasterPipe, QgsRectangle,
)

from .worker_client import WorkerError

DEFAULT_SIDE = 1024  # pixels on the long side of a snapshot when no map canvas gives the resolution


class SnapshotError(WorkerError):
    """A layer could not be read into a GeoTIFF snapshot."""

    def __init__(self, message: str) -> None:
        super().__init__("LayerError", message)


def file_path(layer: QgsRasterLayer) -> str:
    """The file a GDAL raster layer reads ('' for any other layer)."""
    path = layer.source().split("|")[0]
    return path if layer.providerType() == "gdal" and os.path.isfile(path) else ""


@dataclass
class Snapshot:
    """What to write: ``extent`` (layer CRS units) of ``provider`` at ``width`` x ``height``
    pixels to the GeoTIFF ``path``."""

    layer_name: str
    provider_type: str
    provider: QgsRasterDataProvider
    extent: QgsRectangle
    crs: QgsCoordinateReferenceSystem
    width: int
    height: int
    path: str

    def write(self, feedback: QgsRasterBlockFeedback | None = None) -> str:
        """Write the GeoTIFF (any thread; any number of times); returns its path."""
        pipe = QgsRasterPipe()
        if not pipe.set(self.provider.clone()):  # the pipe owns (and deletes) what it is given
            raise SnapshotError(f"layer '{self.layer_name}': its data provider cannot be read")
        writer = QgsRasterFileWriter(self.path)
        writer.setOutputFormat("GTiff")
        error = writer.writeRaster(pipe, self.width, self.height, self.extent, self.crs,
                                   QgsCoordinateTransformContext(), feedback or QgsRasterBlockFeedback())
        if error != QgsRasterFileWriter.NoError or not os.path.isfile(self.path):
            raise SnapshotError(f"layer '{self.layer_name}': the map extent could not be read into {self.path} "
                                f"(QgsRasterFileWriter error {int(error)}; is the service reachable?)")
        return self.path

    @property
    def label(self) -> str:
        """What the results record as their reference (the snapshot file does not last)."""
        return f"layer '{self.layer_name}' ({self.provider_type}), map extent"

    def relabel(self, result: dict | None) -> None:
        """Name the layer instead of the snapshot file in a worker ``locate`` result."""
        for record in (result or {}).get("detections", []):
            record["reference"] = self.label

    def remove(self) -> None:
        """Delete the GeoTIFF (and GDAL's side files) and its folder if that is then empty."""
        folder = os.path.dirname(self.path)
        for name in (self.path, self.path + ".aux.xml", self.path + ".ovr"):
            if os.path.exists(name):
                os.remove(name)
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty (someone else's files) or gone: leave it


def plan_snapshot(layer: QgsRasterLayer, extent: QgsRectangle, folder: str | None = None,
                  long_side: int = DEFAULT_SIDE) -> Snapshot:
    """A snapshot of ``extent`` (in the layer's CRS) of ``layer`` at ``long_side`` pixels
    across the extent's long side (the map canvas's own size, to read what is shown at the
    resolution it is shown), clipped to the layer, written to ``folder`` (default: a new
temporary folder); main thread only. Raises
    :class:`SnapshotError` when nothing of the layer is there."""
    area = extent.intersect(layer.extent())
    if area.isEmpty() or area.width() <= 0 or area.height() <= 0:
        raise SnapshotError(f"layer '{layer.name()}': the map extent does not overlap the layer")
    scale = long_side / max(extent.width(), extent.height())  # pixels per layer unit
    width, height = max(32, round(area.width() * scale)), max(32, round(area.height() * scale))
    folder = folder or tempfile.mkdtemp(prefix="smgeo_layer_")
    return Snapshot(layer.name(), layer.providerType(), layer.dataProvider().clone(), QgsRectangle(area),
                    QgsCoordinateReferenceSystem(layer.crs()), width, height, os.path.join(folder, "reference.tif"))
