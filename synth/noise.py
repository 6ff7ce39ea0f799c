"""World-anchored value noise: the same texture wherever and at whatever resolution it is seen.

A noise layer is a random lattice over the scene (cell size in metres); sampling it for a
raster window (scene metres) at a pixel size (metres) resamples the lattice with a bicubic
affine warp, so the satellite render and the drone's ground raster show the same patches.
"""

from __future__ import annotations

import cv2
import numpy as np


_BANK: dict[str, np.ndarray] = {}
BANK_SIZE = 2048


def noise_bank() -> np.ndarray:
    """``(2048, 2048, 3)`` int16 Gaussian noise with standard deviation 64, fixed for all
    processes. Random crops of it are the per-image noise (much faster than drawing anew)."""
    if "bank" not in _BANK:
        rng = np.random.default_rng(987654321)
        _BANK["bank"] = np.round(rng.standard_normal((BANK_SIZE, BANK_SIZE, 3), dtype=np.float32) * 64).astype(np.int16)
    return _BANK["bank"]


def luminance_bank() -> np.ndarray:
    """:func:`noise_bank` with its first channel copied to all three (grey noise), cached."""
    if "lum" not in _BANK:
        _BANK["lum"] = np.repeat(noise_bank()[..., :1], 3, axis=2)
    return _BANK["lum"]


def noise_crop(rng: np.random.Generator, h: int, w: int, grey: bool = False) -> np.ndarray:
    """``(h, w, 3)`` int16 crop of :func:`noise_bank` (std 64) at an offset drawn from ``rng``;
    ``grey``: the crop of :func:`luminance_bank` at that offset (its first channel, thrice)."""
    bank = luminance_bank() if grey else noise_bank()
    if h > BANK_SIZE or w > BANK_SIZE:
        bank = np.tile(bank, (h // BANK_SIZE + 1, w // BANK_SIZE + 1, 1))
    oy = int(rng.integers(0, bank.shape[0] - h + 1))
    ox = int(rng.integers(0, bank.shape[1] - w + 1))
    return bank[oy:oy + h, ox:ox + w]


class WorldNoise:
    """Lattice noise in [-1, 1] (roughly) covering ``bounds`` = (x0, y0, x1, y1) scene metres.
    ``octaves``: extra coarser lattices (cell x 4, x 16 ...) folded into this one."""

    def __init__(self, seed: int, bounds: tuple[float, float, float, float], cell: float, octaves: int = 0) -> None:
        self.x0, self.y0, x1, y1 = bounds
        self.cell = cell
        rng = np.random.default_rng(seed)
        w = int(np.ceil((x1 - self.x0) / cell)) + 4
        h = int(np.ceil((y1 - self.y0) / cell)) + 4
        self.lattice = rng.uniform(-1.0, 1.0, (h, w)).astype(np.float32)
        for k in range(1, octaves + 1):
            f = 4 ** k
            coarse = rng.uniform(-1.0, 1.0, (h // f + 2, w // f + 2)).astype(np.float32)
            self.lattice += cv2.resize(coarse, ((w // f + 2) * f, (h // f + 2) * f), interpolation=cv2.INTER_CUBIC)[:h, :w]
        if octaves:
            self.lattice /= float(np.sqrt(octaves + 1))

    def sample(self, window: tuple[float, float, float, float], res: float, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` float32 for the raster whose pixel (col, row) covers scene metres
        ``[wx0 + col*res, wx0 + (col+1)*res) x [wy0 + row*res, ...)``. Coarse lattices are
        sampled at a lower resolution and upsampled (same result, less work)."""
        step = int(max(1, min(8, self.cell / (2 * res))))
        if step > 1:
            small = (-(-shape[0] // step), -(-shape[1] // step))
            low = self._warp(window, res * step, small)
            return cv2.resize(low, (small[1] * step, small[0] * step), interpolation=cv2.INTER_LINEAR)[
                :shape[0], :shape[1]]
        return self._warp(window, res, shape)

    def _warp(self, window, res: float, shape: tuple[int, int]) -> np.ndarray:
        k = res / self.cell
        # lattice coordinate (cv2 centre convention) of output pixel centre (col, row)
        ox = (window[0] + 0.5 * res - self.x0) / self.cell + 2 - 0.5
        oy = (window[1] + 0.5 * res - self.y0) / self.cell + 2 - 0.5
        m = np.array([[k, 0, ox], [0, k, oy]], dtype=np.float64)
        return cv2.warpAffine(self.lattice, m, (shape[1], shape[0]), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT)
