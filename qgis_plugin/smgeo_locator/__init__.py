"""SMGeo Locator: a QGIS plugin that puts the object clicked in a drone photo on the map.

QGIS loads the plugin through :func:`classFactory`. The model runs in a separate worker
process (``python -m smgeo_geo.worker`` in the project's environment), so QGIS's own
Python needs no torch.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import SMGeoLocatorPlugin

    return SMGeoLocatorPlugin(iface)
