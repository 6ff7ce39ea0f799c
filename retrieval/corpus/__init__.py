"""Seeded multi-platform captioned corpus generator (``smgeo synth-retrieval``).

Modules, one job each: :mod:`.options` (options and their checks), :mod:`.places` (a target
and its true attributes and neighbours from a synth scene), :mod:`.colours` (colour
names), :mod:`.views` (satellite / drone / ground renders), :mod:`.captions` (templates),
:mod:`.georef` (where places are on Earth, EXIF GPS), :mod:`.build` (the folder).

>>> from smgeo_retrieval.corpus import CorpusOptions, generate_corpus
>>> generate_corpus("corpus", CorpusOptions(places=600, seed=0), workers=2)
"""

from smgeo_retrieval.corpus.build import generate_corpus
from smgeo_retrieval.corpus.options import CorpusOptions

__all__ = ["CorpusOptions", "generate_corpus"]
