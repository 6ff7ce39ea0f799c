"""Exceptions raised by smgeo_geo.

Every user-facing failure is an :class:`SMGeoError` (or a subclass) whose message
names the file or field at fault and what was expected. The CLI prints that one
line and exits non-zero; anything else is a bug and keeps its traceback.
Subclasses that describe a file problem also inherit :class:`OSError`, so callers
can catch either.
"""

from __future__ import annotations


class SMGeoError(Exception):
    """Root of every error smgeo_geo raises on purpose."""


class InputFileError(SMGeoError, OSError):
    """A file is missing, unreadable or not of the expected kind."""


class RasterError(InputFileError):
    """A reference raster cannot be used (unreadable, no bands, bad band choice)."""


class NotGeoreferencedError(RasterError):
    """A raster has no geotransform / GCPs, so pixels cannot be put on the map."""


class CRSError(SMGeoError):
    """A coordinate reference system is missing, unknown or cannot be transformed."""


class WindowError(SMGeoError):
    """A requested search window does not overlap the raster or is degenerate."""


class ImageError(InputFileError):
    """A drone photo cannot be read or decoded."""


class ClickError(SMGeoError, ValueError):
    """A click lies outside the photo or is not of the form X,Y."""


class MetadataError(SMGeoError):
    """Photo metadata (EXIF GPS, DJI XMP) is missing or unusable for the asked purpose."""


class OutputError(SMGeoError, OSError):
    """An output file or folder cannot be written as asked (missing folder, a folder that
    holds other files, an image that cannot be encoded). Reading a dataset that does not
    follow the CVOGL layout raises :class:`smgeo_model.data.DatasetError` instead."""


class DeviceError(SMGeoError):
    """The asked compute device (e.g. ``cuda``) is not available to torch here."""
