"""Exceptions raised by smgeo_model on purpose (bad configs, checkpoints, datasets, call order).

Every one is an :class:`SMGeoModelError`. ``smgeo_geo`` re-raises them at its boundary as
the matching :class:`smgeo_geo.errors.SMGeoError` subclass (see ``smgeo_geo.errors.model_errors``),
so users of the library and the CLI catch one root.
"""

from __future__ import annotations


class SMGeoModelError(Exception):
    """Root of every error smgeo_model raises for a user's input."""


class ConfigError(SMGeoModelError, ValueError):
    """A model configuration is unknown or has an invalid field."""


class CheckpointError(SMGeoModelError, OSError):
    """A checkpoint is missing, unsafe, malformed or does not match the model."""


class DatasetError(SMGeoModelError, ValueError):
    """A dataset folder, list file or list item does not follow the CVOGL layout."""


class PredictorStateError(SMGeoModelError, RuntimeError):
    """predict() was called before set_reference()/set_query()."""
