"""Reading drone photos (the query images)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from smgeo_geo.errors import ClickError, ImageError


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """``HxWx3`` uint8 RGB of a photo, turned upright by its EXIF orientation (pixel
    coordinates of clicks refer to this upright image, as every viewer shows it)."""
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"photo {p} not found")
    try:
        with Image.open(p) as im:
            return np.array(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"photo {p} cannot be read as an image ({exc})") from None


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
