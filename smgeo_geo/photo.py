"""Reading drone photos (the query images).

Photos are decoded with Pillow. A photo may have at most :data:`MAX_PHOTO_PIXELS` pixels
(160 megapixels: the largest aerial cameras, e.g. 151 MP, fit; it stays below Pillow's own
decompression-bomb limit of about 179 MP, so this is the one limit that applies). The size
is checked from the file header, before anything is decoded, so a small file declaring an
enormous image (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from smgeo_geo.errors import ClickError, ImageError

MAX_PHOTO_PIXELS = 160_000_000
"""Largest photo read (width x height, pixels)."""

# what Pillow raises for files it cannot decode: not an image, truncated, corrupt chunks
# (PNG raises SyntaxError), broken EXIF, streams that end early
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)


@contextlib.contextmanager
def open_photo(path: str | os.PathLike) -> Iterator[Image.Image]:
    """The photo at ``path`` opened with Pillow (header read, pixels not yet decoded), for
    everything that reads photos (pixels, EXIF, XMP). Inside the block, Pillow's warnings
    are not shown and its failures on the file (not an image, truncated, corrupt, larger
    than :data:`MAX_PHOTO_PIXELS`) become one :class:`ImageError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"photo {p} not found" if not p.exists() else f"photo {p} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", module=r"PIL\.")
            with Image.open(p) as im:
                w, h = im.size
                if w * h > MAX_PHOTO_PIXELS:
                    raise ImageError(f"photo {p} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), more than "
                                     f"the {MAX_PHOTO_PIXELS / 1e6:.0f} megapixel limit")
                yield im
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, checked inside Image.open
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(m[1]) / 1e6:.0f} megapixels" if m else "an image"
        raise ImageError(f"photo {p} declares {size}, more than the {MAX_PHOTO_PIXELS / 1e6:.0f} megapixel "
                         f"limit") from None
    except _DECODE_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"photo {p} cannot be read as an image ({reason})") from None


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """``HxWx3`` uint8 RGB of a photo, turned upright by its EXIF orientation (pixel
    coordinates of clicks refer to this upright image, as every viewer shows it).

    Raises :class:`ImageError` naming the file when it is missing, not an image, truncated
    or corrupt, or larger than :data:`MAX_PHOTO_PIXELS` (see :func:`open_photo`).
    """
    with open_photo(path) as im:
        rgb = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"photo {path} did not decode to an RGB image (got an array of shape {rgb.shape})")
    return rgb


def check_click(click: tuple[float, float], size_wh: tuple[int, int], what: str = "photo") -> tuple[float, float]:
    """Validate a click ``(x, y)`` in pixels of an image ``size_wh = (width, height)``."""
    try:
        x, y = float(click[0]), float(click[1])
    except (TypeError, ValueError, IndexError):
        raise ClickError(f"click must be two numbers X,Y in {what} pixels, got {click!r}") from None
    w, h = size_wh
    if not (0 <= x <= w and 0 <= y <= h):
        raise ClickError(f"click ({x:g}, {y:g}) lies outside the {w}x{h} {what}")
    return x, y


def parse_click(text: str) -> tuple[float, float]:
    """``"X,Y"`` -> (x, y) floats; :class:`ClickError` otherwise."""
    parts = str(text).replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ClickError(f"click must be X,Y in photo pixels (e.g. 812,455), got {text!r}") from None
