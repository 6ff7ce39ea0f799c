"""Colour names: map an sRGB colour (floats in [0, 1]) to a small vocabulary of words.

The nearest prototype in CIELAB (D65) wins. Prototypes are chosen so that the synth
palettes (roofs, walls, court surfaces, materials in :mod:`smgeo_synth.capture`) fall
into the names a person would use.
"""

from __future__ import annotations

import numpy as np

# name -> prototype sRGB in [0, 1]
COLOUR_PROTOTYPES: dict[str, tuple[float, float, float]] = {
    "white": (0.92, 0.92, 0.90),
    "light grey": (0.70, 0.70, 0.69),
    "grey": (0.50, 0.50, 0.50),
    "dark grey": (0.30, 0.30, 0.31),
    "black": (0.10, 0.10, 0.11),
    "red": (0.62, 0.28, 0.22),
    "brown": (0.42, 0.30, 0.24),
    "orange": (0.76, 0.47, 0.29),
    "beige": (0.82, 0.76, 0.63),
    "yellow": (0.85, 0.75, 0.30),
    "green": (0.33, 0.50, 0.26),
    "dark green": (0.18, 0.28, 0.14),
    "blue": (0.22, 0.38, 0.60),
    "light blue": (0.38, 0.70, 0.80),
    "blue-grey": (0.31, 0.35, 0.42),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOUR_PROTOTYPES)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours ``(..., 3)`` in [0, 1]."""
    c = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


_PROTO_LAB = srgb_to_lab(np.array(list(COLOUR_PROTOTYPES.values())))


def colour_name(rgb) -> str:
    """Name in :data:`COLOUR_NAMES` of the sRGB colour ``rgb`` (3 floats in [0, 1])."""
    d = ((_PROTO_LAB - srgb_to_lab(np.asarray(rgb, dtype=np.float64))) ** 2).sum(-1)
    return COLOUR_NAMES[int(np.argmin(d))]
