"""The one error hierarchy of smgeo_geo (and, wrapped, of the model package).

Every user-facing failure is an :class:`SMGeoError` (or a subclass) whose message names
the file or field at fault and what was expected. The CLI prints that one line and exits
with status 2; the worker replies with the class name and the message; anything that is
not an :class:`SMGeoError` is a bug and keeps its traceback.

Errors of the network package (:mod:`smgeo_model.errors`: bad checkpoints, configs,
datasets, call order) are re-raised at the library boundary as the matching subclass
of :class:`ModelError` by :func:`model_errors`, so callers catch one root.
Subclasses that describe a file problem also inherit :class:`OSError`, bad values also
:class:`ValueError`, so callers can catch either.

    SMGeoError
    +-- InputFileError (OSError)       missing / unreadable input file
    |   +-- RasterError                reference raster unusable (dtype, geotransform, bands)
    |   |   +-- NotGeoreferencedError
    |   +-- ImageError                 drone photo unreadable, too large
    |   +-- ManifestError              batch manifest unreadable, empty, bad rows
    +-- CRSError                       CRS missing, unknown, not transformable to WGS84
    +-- WindowError                    search window empty, outside the raster
    |   +-- NoDataError                window holds no valid pixels
    +-- ClickError (ValueError)        click not X,Y or outside the photo
    +-- MetadataError                  photo metadata missing / unusable for the asked purpose
    +-- OptionError (ValueError)       an option value (top-k, device, method, output path)
    |   +-- DeviceError                the asked device is not available
    +-- OutputError (OSError)          an output cannot be written as asked
    +-- ProtocolError                  a worker request that does not follow the protocol
    +-- ModelError                     the model side (wraps smgeo_model's errors)
        +-- CheckpointError (OSError)
        +-- ModelConfigError (ValueError)
        +-- DatasetError (ValueError)
        +-- PredictorStateError (RuntimeError)
"""

from __future__ import annotations

import contextlib
from typing import Iterator


class SMGeoError(Exception):
    """Root of every error smgeo_geo raises on purpose."""


class InputFileError(SMGeoError, OSError):
    """A file is missing, unreadable or not of the expected kind."""


class RasterError(InputFileError):
    """A reference raster cannot be used (unreadable, no bands, bad band choice, unsupported
    data type, degenerate geotransform, coordinates out of range)."""


class NotGeoreferencedError(RasterError):
    """A raster has no geotransform / GCPs, so pixels cannot be put on the map."""


class ImageError(InputFileError):
    """A drone photo cannot be read or decoded, or is larger than the decoder allows."""


class ManifestError(InputFileError):
    """A batch manifest / clicks CSV is missing, not UTF-8, empty or has a bad row."""


class CRSError(SMGeoError):
    """A coordinate reference system is missing, unknown or cannot be transformed."""


class WindowError(SMGeoError):
    """A requested search window does not overlap the raster or is degenerate."""


class NoDataError(WindowError):
    """A search window holds no valid pixels (all nodata, NaN or outside the raster)."""


class ClickError(SMGeoError, ValueError):
    """A click lies outside the photo or is not of the form X,Y."""


class MetadataError(SMGeoError):
    """Photo metadata (EXIF GPS, vendor XMP) is missing or unusable for the asked purpose."""


class OptionError(SMGeoError, ValueError):
    """An option has a value outside what it accepts (``--top-k 0``, an unknown method,
    an output path that would overwrite an input or another output)."""


class DeviceError(OptionError):
    """The asked compute device (e.g. ``cuda``) is not a device, or not available here."""


class OutputError(SMGeoError, OSError):
    """An output file or folder cannot be written as asked (missing folder, a folder that
    holds other files, an image that cannot be encoded)."""


class ProtocolError(SMGeoError):
    """A worker request that does not follow the JSON-lines protocol (unknown method,
    missing or mistyped parameter)."""


class ModelError(SMGeoError):
    """The model side failed on the user's input (wraps :mod:`smgeo_model.errors`)."""


class CheckpointError(ModelError, OSError):
    """A checkpoint is missing, unsafe, malformed or does not match the model."""


class ModelConfigError(ModelError, ValueError):
    """A model configuration is unknown or has an invalid field."""


class DatasetError(ModelError, ValueError):
    """A dataset folder, list file or item does not follow the CVOGL layout."""


class PredictorStateError(ModelError, RuntimeError):
    """A predictor was asked to locate before its reference / query were set."""


def _model_error_map() -> list[tuple[type[BaseException], type[ModelError]]]:
    from smgeo_model import errors as m  # torch-free module

    return [(m.CheckpointError, CheckpointError), (m.ConfigError, ModelConfigError),
            (m.DatasetError, DatasetError), (m.PredictorStateError, PredictorStateError),
            (m.SMGeoModelError, ModelError)]


def as_geo_error(exc: BaseException) -> BaseException:
    """``exc`` as an :class:`SMGeoError` when it is one of smgeo_model's errors, else ``exc``."""
    for model_type, geo_type in _model_error_map():
        if isinstance(exc, model_type):
            return geo_type(str(exc))
    return exc


@contextlib.contextmanager
def model_errors() -> Iterator[None]:
    """Re-raise smgeo_model's errors inside the block as the matching :class:`ModelError`."""
    from smgeo_model.errors import SMGeoModelError

    try:
        yield
    except SMGeoModelError as exc:
        raise as_geo_error(exc) from exc
