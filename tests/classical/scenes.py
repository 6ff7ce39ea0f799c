"""Seeded synthetic "satellite" scenes and warped "drone" views for the classical baseline.

Images are made by code (numpy + OpenCV drawing), never stored. Coordinates follow
smgeo_geo.classical: pixels, x right, y down, (0, 0) the top-left corner of the top-left
pixel. ``H`` maps query points to reference points in that frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def satellite(size: int = 768, seed: int = 0) -> np.ndarray:
    """``size x size x 3`` uint8 RGB scene: smooth ground, fields, buildings, trees, roads, grain."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    for cell, amp in ((64, 50.0), (16, 30.0), (4, 14.0)):  # multi-scale ground texture
        coarse = rng.normal(0, amp, (size // cell, size // cell, 3)).astype(np.float32)
        coarse[..., 1:] = 0.6 * coarse[..., 1:] + 0.4 * coarse[..., :1]  # mostly luminance
        img += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img += 110
    for _ in range(size * size // 1000):  # fields / buildings
        x, y = rng.uniform(0, size, 2)
        w, h = rng.uniform(4, 40, 2)
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        box = cv2.boxPoints(((float(x), float(y)), (float(w), float(h)), float(rng.uniform(0, 90))))
        cv2.fillConvexPoly(img, np.round(box).astype(np.int32), colour, lineType=cv2.LINE_AA)
    for _ in range(size * size // 1000):  # trees
        x, y = rng.integers(0, size, 2)
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.circle(img, (int(x), int(y)), int(rng.integers(2, 8)), colour, -1, lineType=cv2.LINE_AA)
    for _ in range(size // 64):  # roads
        p, q = rng.integers(0, size, (2, 2))
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (200.0, 200.0, 190.0), 3, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def add_object(image: np.ndarray, centre: tuple[float, float], size: int = 14) -> tuple[float, float, float, float]:
    """Paint a distinctive square object (pixel-aligned) centred at ``centre``; returns its box."""
    x1, y1 = int(round(centre[0] - size / 2)), int(round(centre[1] - size / 2))
    image[y1 : y1 + size, x1 : x1 + size] = (230, 30, 30)
    image[y1 + size // 4 : y1 + 3 * size // 4, x1 + size // 4 : x1 + 3 * size // 4] = (250, 240, 40)
    return float(x1), float(y1), float(x1 + size), float(y1 + size)


def query_to_reference(
    centre: tuple[float, float], angle_deg: float, scale: float, perspective: tuple[float, float] = (0.0, 0.0), query_size: int = 256
) -> np.ndarray:
    """3x3 homography (corner frame) taking query pixels to reference pixels.

    The query centre lands on ``centre``; ``scale`` is reference pixels per query pixel;
    ``perspective`` is the (p1, p2) row acting on centred query coordinates.
    """
    c = query_size / 2
    t_q = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], float)
    p = np.array([[1, 0, 0], [0, 1, 0], [perspective[0], perspective[1], 1]], float)
    a = math.radians(angle_deg)
    rs = scale * np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1 / scale]], float)
    t_r = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]], float)
    h = t_r @ rs @ p @ t_q
    return h / h[2, 2]


def warp_query(
    reference: np.ndarray, h: np.ndarray, query_size: int = 256, seed: int = 1, border: int = cv2.BORDER_REFLECT
) -> np.ndarray:
    """Render the drone view: sample the reference through ``h`` (corner frame), then change
    brightness/contrast, blur slightly and add sensor noise, as a different camera would.
    ``border``: OpenCV border mode for parts of the view outside the reference."""
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], float)
    h_cv = np.linalg.inv(half) @ h @ half  # OpenCV pixel-centre frame
    view = cv2.warpPerspective(
        reference, h_cv, (query_size, query_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    ).astype(np.float32)
    rng = np.random.default_rng(seed)
    view = cv2.GaussianBlur(view * 0.8 + 30, (0, 0), 0.7) + rng.normal(0, 3, view.shape).astype(np.float32)
    return np.clip(view, 0, 255).astype(np.uint8)


def apply(h: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Map one point with homography ``h``."""
    v = h @ np.array([x, y, 1.0])
    return float(v[0] / v[2]), float(v[1] / v[2])


def mapped_box(h: np.ndarray, box: tuple[float, float, float, float], ref_shape: tuple[int, int]) -> tuple[float, ...]:
    """Axis-aligned box of ``box``'s corners mapped by ``h``, clipped to the reference."""
    x1, y1, x2, y2 = box
    pts = np.array([apply(h, x, y) for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))])
    lo = np.clip(pts.min(0), 0, [ref_shape[1], ref_shape[0]])
    hi = np.clip(pts.max(0), 0, [ref_shape[1], ref_shape[0]])
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
