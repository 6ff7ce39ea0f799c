"""Synthetic cross-view data in the CVOGL layout: drone photo + satellite tile of a town.

A scene (street grid, buildings with heights and roofs, trees, fields, water, vehicles, and
the CVOGL target classes with look-alike distractors) is built once per pair and rendered
twice: an orthographic satellite tile at capture A and an oblique perspective drone photo at
capture B (another sun, season, parked vehicles, sensor), so parallax, moved shadows and
changes in time separate the two views as they do in real data.

>>> from smgeo_synth import generate_dataset
>>> generate_dataset("data", pairs=2000, seed=0, workers=2)          # data/SYNTH_DroneAerial/
>>> from smgeo_synth import PairOptions, render_pair
>>> pair = render_pair(7, PairOptions(reference_size=256, query_size=(128, 128)))
>>> pair.query.shape, pair.click, pair.box                           # (128,128,3), query px, satellite px
"""

from smgeo_synth.dataset import generate_dataset, pair_seed
from smgeo_synth.difficulty import DIFFICULTIES, Difficulty
from smgeo_synth.options import CLASS_WEIGHTS, CLASSES, GENERATOR_VERSION, PairOptions, SynthOptionError
from smgeo_synth.pair import Pair, render_drone_view, render_pair, render_satellite_view

__all__ = [
    "CLASSES", "CLASS_WEIGHTS", "DIFFICULTIES", "Difficulty", "GENERATOR_VERSION", "Pair", "PairOptions",
    "SynthOptionError", "generate_dataset", "pair_seed", "render_drone_view", "render_pair", "render_satellite_view",
]
