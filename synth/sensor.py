"""Sensor models: what the satellite and the drone camera do to the rendered radiance.

Both take float32 RGB in [0, 1] (any size) and return uint8 RGB plus the JPEG quality to
encode with. The satellite is soft (MTF blur), hazy, low-contrast and slightly cool; the
drone is sharper but has its own white balance, exposure, contrast, vignetting, distance
haze, occasional defocus / motion blur and more noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from smgeo_synth.noise import noise_crop


def _colour_matrix(gains, saturation: float, haze: float, haze_rgb) -> np.ndarray:
    """3x4 matrix: haze blend, per-channel gains, then saturation about the channel mean."""
    sat = saturation * np.eye(3) + (1 - saturation) / 3 * np.ones((3, 3))
    g = np.diag(gains)
    m = sat @ g * (1 - haze)
    off = sat @ g @ (haze * np.asarray(haze_rgb))
    return np.c_[m, off].astype(np.float32)


def _gamma_lut(gamma: float, s_curve: float = 0.0) -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    y = x ** gamma
    y = y * y * (3 - 2 * y) * s_curve + y * (1 - s_curve)
    return np.clip(np.round(y * 255), 0, 255).astype(np.uint8)


def _to_u8(img: np.ndarray) -> np.ndarray:
    """uint8 of ``np.clip(img * 255.0 + 0.5, 0, 255)``, computed in place: ``img`` (float32,
    a temporary of the caller) is overwritten."""
    t = np.multiply(img, 255.0, out=img)
    t += 0.5
    return np.clip(t, 0, 255, out=t).astype(np.uint8)


def _add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, chroma: float) -> np.ndarray:
    """Luminance + chroma Gaussian noise (sigma in [0, 1] units) on a uint8 image."""
    h, w = img.shape[:2]
    lum = noise_crop(rng, h, w, grey=True)
    out = cv2.addWeighted(img, 1.0, lum, sigma * 255.0 / 64 * (1 - chroma), 0.0, dtype=cv2.CV_8U)
    return cv2.addWeighted(out, 1.0, noise_crop(rng, h, w), sigma * 255.0 / 64 * chroma, 0.0, dtype=cv2.CV_8U)


def satellite_sensor(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, int]:
    h = rng.uniform(0.02, 0.08) * strength
    gains = (rng.uniform(0.95, 1.04), 1.0, rng.uniform(0.98, 1.08))
    m = _colour_matrix(gains, rng.uniform(0.78, 0.98), h, (0.62, 0.67, 0.74))
    out = _to_u8(cv2.transform(img, m))
    out = cv2.LUT(out, _gamma_lut(rng.uniform(0.92, 1.08)))
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.45, 0.8))
    out = _add_noise(out, rng, rng.uniform(0.003, 0.010) * strength, 0.3)
    return out, int(rng.integers(86, 96))


def drone_sensor(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                 ground_range: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    h, w = img.shape[:2]
    if ground_range is not None:  # aerial perspective: haze grows with distance
        vis = rng.uniform(1500, 6000) / max(strength, 0.3)
        a = (1 - np.exp(-ground_range / vis))[..., None].astype(np.float32)
        img = img * (1 - a) + a * np.array([0.74, 0.78, 0.84], np.float32)
    wb = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)]) ** strength * rng.uniform(0.85, 1.18)
    m = _colour_matrix(wb, rng.uniform(0.95, 1.3), 0.0, (0, 0, 0))
    img = cv2.transform(img, m)
    mean = float(img.mean())
    contrast = rng.uniform(0.95, 1.25)
    img = (img - mean) * contrast + mean
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    img = img * (1 - rng.uniform(0, 0.3) * r2)[..., None]
    out = cv2.LUT(_to_u8(img), _gamma_lut(1.0, 0.35))
    scale = min(h, w) / 256.0  # blur in pixels of a 256-pixel photo
    blur = rng.random()
    if blur < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), max(0.25, rng.uniform(0.3, 0.7) * strength * scale))
    elif blur < 0.4:  # motion blur: a short line kernel
        length = rng.uniform(1.5, 3.5) * strength * scale
        n = max(1, int(np.ceil(length / 2)))
        k = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
        t = rng.uniform(0, np.pi)
        for s in np.linspace(-length / 2, length / 2, 8 * n + 1):
            k[int(round(n + s * np.sin(t))), int(round(n + s * np.cos(t)))] += 1
        out = cv2.filter2D(out, -1, k / k.sum())
    out = _add_noise(out, rng, rng.uniform(0.004, 0.018) * strength, 0.5)
    return out, int(rng.integers(70, 93))
