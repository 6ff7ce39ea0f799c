"""Exceptions raised by smgeo_model on purpose (bad configs, bad checkpoints)."""

from __future__ import annotations


class SMGeoModelError(Exception):
    """Root of every error smgeo_model raises for a user's input."""


class ConfigError(SMGeoModelError, ValueError):
    """A model configuration is unknown or has an invalid field."""


class CheckpointError(SMGeoModelError, OSError):
    """A checkpoint is missing, unsafe, malformed or does not match the model."""
