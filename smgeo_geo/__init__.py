"""SMGeo-Geo: put the object clicked in a drone photo on the map.

The library wraps the SMGeo network (:mod:`smgeo_model`) with georeferenced rasters,
coordinate conversion and GIS outputs.
"""

from smgeo_geo.errors import SMGeoError

__all__ = ["SMGeoError"]
__version__ = "0.1.0"
