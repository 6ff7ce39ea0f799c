"""Real-texture pairs: drone views rendered from a real orthophoto (and DSM), in the CVOGL layout.

The satellite side is the orthophoto itself, cut into north-up tiles named and georeferenced
as ``smgeo synth`` names them; the drone side is rendered from the same orthophoto draped on
the DSM (buildings and trees stand up and hide what is behind them) with a drawn drone camera
(:class:`~smgeo_geo.camera.FrameCamera`: nadir or oblique, drone altitudes, Brown distortion),
sun, season and the synthetic generator's drone sensor. Targets are building footprints from a
vector file, or salient structures of the orthophoto; the click is a visible point on the
target, the truth box its envelope in the tile.

>>> from smgeo_synth.realpairs import generate_realpairs
>>> generate_realpairs("ortho.tif", "data", pairs=500, dem="dsm.tif", footprints="buildings.gpkg")
>>> from smgeo_synth.realpairs import Surface, render_view      # one view, any camera
>>> with Surface("ortho.tif", "dsm.tif") as surface:
...     view = render_view(surface, camera, sun=(160.0, 45.0))  # view.image, view.points, view.valid
"""

from smgeo_synth.realpairs.dataset import REALPAIRS_VERSION, generate_realpairs, tile_extent
from smgeo_synth.realpairs.pair import (PairContext, RealPair, camera_from_info, camera_info, draw_camera,
                                      render_real_pair, season_tint)
from smgeo_synth.realpairs.metadata_errors import MetadataErrors, with_metadata_errors
from smgeo_synth.realpairs.satellite_like import coarse_terrain, in_mosaic, satellite_like
from smgeo_synth.realpairs.render import DroneView, Surface, render_view, scaled_camera
from smgeo_synth.realpairs.targets import Overview, Target, footprint_targets, salient_targets, work_epsg
from smgeo_synth.realpairs.tiles import TileSpec, cut_tile

__all__ = [
    "REALPAIRS_VERSION", "DroneView", "MetadataErrors", "Overview", "PairContext", "RealPair", "Surface", "Target", "TileSpec",
    "camera_from_info", "camera_info", "coarse_terrain", "cut_tile", "draw_camera", "footprint_targets", "generate_realpairs", "in_mosaic", "render_real_pair", "render_view",
    "salient_targets", "satellite_like", "scaled_camera", "season_tint", "tile_extent", "with_metadata_errors", "work_epsg",
]
