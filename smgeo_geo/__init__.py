"""SMGeo-Geo: put the object clicked in a drone photo on the map.

The library wraps the SMGeo network (:mod:`smgeo_model`) with georeferenced rasters,
coordinate conversion and GIS outputs::

    from smgeo_geo import GeoPredictor, open_reference
    predictor = GeoPredictor()                      # the bundled demo model
    with open_reference("mosaic.tif") as raster:
        predictor.set_reference(raster, window)     # rasterio Window in raster pixels
        predictor.set_query("DJI_0042.JPG")
        detection = predictor.locate((812, 455))    # click (x, y) in photo pixels: SMGeo alone
        fused = predictor.locate_photo(raster, "DJI_0042.JPG", (812, 455), dem="dsm.tif")  # all stages

Geo modules (coords, raster, windows, photo_meta, result, vector_io) never import torch;
the names below are imported lazily.
"""

from smgeo_geo.errors import SMGeoError

__all__ = ["Detection", "GeoPredictor", "Locator", "SMGeoError", "open_reference"]
__version__ = "0.1.0"

_LAZY = {"GeoPredictor": "smgeo_geo.predictor", "open_reference": "smgeo_geo.raster", "Detection": "smgeo_geo.result",
         "Locator": "smgeo_geo.locator"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'smgeo_geo' has no attribute {name!r}")
