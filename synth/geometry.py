"""2-D polygon helpers in scene metres.

Scene frame (used by the whole generator): metres, x to the east, y to the SOUTH (down the
satellite image), z up; origin at the north-west corner of the scene area. Polygons are
``(N, 2)`` float arrays; :func:`ccw` normalises them to positive shoelace area in this frame,
for which the outward normal of edge a->b is ``(dy, -dx)``.
"""

from __future__ import annotations

import math

import numpy as np


def rect(cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    """Rectangle centred at (cx, cy): ``length`` along direction ``angle``, ``width`` across.
    Vertices 0-1 and 2-3 are the ``length`` edges; orientation is ccw (positive area)."""
    c, s = math.cos(angle), math.sin(angle)
    ax, ay = c * length / 2, s * length / 2
    bx, by = -s * width / 2, c * width / 2
    return np.array([cx - ax - bx, cy - ay - by, cx + ax - bx, cy + ay - by, cx + ax + bx, cy + ay + by,
                     cx - ax + bx, cy - ay + by]).reshape(4, 2)  # flat list: faster than nested


def circle(cx: float, cy: float, r: float, n: int = 0) -> np.ndarray:
    n = n or max(12, min(72, int(r * 2.5)))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def stadium_oval(cx: float, cy: float, straight: float, radius: float, angle: float, n: int = 24) -> np.ndarray:
    """Running-track shape: two semicircles of ``radius`` joined by straights of ``straight``."""
    t = np.linspace(-np.pi / 2, np.pi / 2, n)
    right = np.stack([straight / 2 + radius * np.cos(t), radius * np.sin(t)], 1)
    left = np.stack([-straight / 2 - radius * np.cos(t), -radius * np.sin(t)], 1)
    c, s = math.cos(angle), math.sin(angle)
    return ccw(np.concatenate([right, left]) @ np.array([[c, s], [-s, c]]) + (cx, cy))


def signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(x[:-1] @ y[1:] - x[1:] @ y[:-1] + x[-1] * y[0] - x[0] * y[-1])


def area(p: np.ndarray) -> float:
    return abs(signed_area(p))


def ccw(p: np.ndarray) -> np.ndarray:
    """Orient ``p`` to positive shoelace area (see module docstring)."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) <= _SMALL:  # small polygons: decide the sign in Python floats where it is certain
        xs, ys = p.T.tolist()
        terms = [xs[i - 1] * ys[i] - xs[i] * ys[i - 1] for i in range(len(xs))]
        a = sum(terms)
        if abs(a) > 1e-9 * sum(map(abs, terms)):  # far above the rounding error of either sum
            return p if a > 0 else p[::-1].copy()
    return p if signed_area(p) >= 0 else p[::-1].copy()


_SMALL = 32  # polygons up to this many vertices take the Python fast paths of ccw and bbox


def bbox(p: np.ndarray) -> tuple[float, float, float, float]:
    if len(p) <= _SMALL:  # the same min / max, without numpy's reduction overhead
        xs, ys = p.T.tolist()
        return min(xs), min(ys), max(xs), max(ys)
    lo, hi = p.min(0), p.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def boxes_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def clip_segments_convex(p0: np.ndarray, p1: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Clip segments ``p0[i] -> p1[i]`` (``(M,2)`` each) to a convex ccw polygon (Cyrus-Beck).
    Returns ``(K, 2, 2)`` of the non-empty clipped segments."""
    d = p1 - p0
    t0 = np.zeros(len(p0))
    t1 = np.ones(len(p0))
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        e = b - a
        n = np.array([e[1], -e[0]])  # outward
        num = (p0 - a) @ n
        den = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -num / den
        entering = den < 0
        leaving = den > 0
        t0 = np.where(entering, np.maximum(t0, t), t0)
        t1 = np.where(leaving, np.minimum(t1, t), t1)
        outside = (den == 0) & (num > 0)
        t1 = np.where(outside, -1.0, t1)
    keep = t1 > t0 + 1e-9
    return np.stack([p0 + d * t0[:, None], p0 + d * t1[:, None]], 1)[keep]


def polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of each of ``points`` ``(N,2)`` to the polyline ``line`` ``(M,2)``."""
    points = np.atleast_2d(points)
    lo, hi = points.min(0) - 200.0, points.max(0) + 200.0
    near = np.all((line >= lo) & (line <= hi), axis=1)
    if near.sum() >= 2:  # only the stretch of polyline near the points matters
        k = np.flatnonzero(near)
        line = line[max(k[0] - 1, 0): k[-1] + 2]
    a, b = line[:-1], line[1:]
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - closest) ** 2).sum(-1)).min(1)


class DistanceField:
    """Distance (m) to a polyline, tabulated on a ``cell``-metre grid over ``bounds``
    (scene metres): fast for many queries; exact to about ``cell`` / 2."""

    def __init__(self, line: np.ndarray, bounds: tuple[float, float, float, float], cell: float = 1.5) -> None:
        import cv2  # noqa: PLC0415 - geometry is otherwise numpy-only

        self.x0, self.y0, self.cell = bounds[0], bounds[1], cell
        w = int(np.ceil((bounds[2] - bounds[0]) / cell)) + 1
        h = int(np.ceil((bounds[3] - bounds[1]) / cell)) + 1
        grid = np.full((h, w), 255, np.uint8)
        pts = np.round(((line - (self.x0, self.y0)) / cell) * 16).astype(np.int32)
        cv2.polylines(grid, [pts], False, 0, 1, cv2.LINE_8, 4)
        self.dist = cv2.distanceTransform(grid, cv2.DIST_L2, 5) * cell
        self.line = line

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(points)
        j = np.round((p[:, 0] - self.x0) / self.cell).astype(int)
        i = np.round((p[:, 1] - self.y0) / self.cell).astype(int)
        inside = (i >= 0) & (i < self.dist.shape[0]) & (j >= 0) & (j < self.dist.shape[1])
        out = np.empty(len(p))
        out[inside] = self.dist[i[inside], j[inside]]
        if (~inside).any():
            out[~inside] = polyline_distance(p[~inside], self.line)
        return out


def segment_intersection(p: np.ndarray, q: np.ndarray, line: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Crossings of segment p->q with polyline ``line``: list of (point, line direction)."""
    r = q - p
    a, s = line[:-1], line[1:] - line[:-1]
    den = r[0] * s[:, 1] - r[1] * s[:, 0]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    t = ((a[:, 0] - p[0]) * s[:, 1] - (a[:, 1] - p[1]) * s[:, 0]) / den
    u = ((a[:, 0] - p[0]) * r[1] - (a[:, 1] - p[1]) * r[0]) / den
    hit = ok & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    return [(p + t[k] * r, s[k] / np.linalg.norm(s[k])) for k in np.flatnonzero(hit)]


def dashes(a: np.ndarray, b: np.ndarray, on: float, off: float) -> np.ndarray:
    """Dashed line a->b as ``(K, 2, 2)`` segments."""
    d = b - a
    length = float(np.hypot(*d))
    if length < 1e-6:
        return np.zeros((0, 2, 2))
    u = d / length
    starts = np.arange(0, length, on + off)
    ends = np.minimum(starts + on, length)
    return np.stack([a + starts[:, None] * u, a + ends[:, None] * u], 1)
