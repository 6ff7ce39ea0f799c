"""Training-free classical baseline: local features + robust homography.

Given a drone photo (*query*) with a click on an object and a satellite image
(*reference*), :class:`ClassicalMatcher` detects local features in both images
(SIFT, or ORB), matches them with exact nearest-neighbour search and Lowe's ratio
test, fits a query-to-reference homography ``H`` with MAGSAC++ (plain RANSAC where
this OpenCV has no USAC), rejects implausible homographies, and maps the click and a
square region around it through ``H``.

A homography is refused (a failure result) when it has fewer than ``min_inliers``
inliers, its inliers cover a tiny part of the query, its horizon line crosses the
matched area or the click region, it mirrors or folds the click region, or its local
scale / anisotropy around the click falls outside ``scale_range`` / ``max_anisotropy``.

Frames (both images): pixel coordinates ``(x, y)``, x to the right, y down, ``(0, 0)``
the top-left corner of the top-left pixel, so the centre of pixel ``[row, col]`` is
``(col + 0.5, row + 0.5)``. Query coordinates are query pixels, reference coordinates
reference pixels; ``H`` maps homogeneous query points ``(x, y, 1)`` to reference points
in exactly these frames (OpenCV keypoints, whose origin is the centre of the top-left
pixel, are shifted by half a pixel before fitting).

Why a region around the click: the query carries a click, not a box, so the extent of
the object is unknown. The baseline maps a square of side ``region`` times the query's
shorter side, centred on the click and clipped to the query, through ``H``; the answer is
the axis-aligned bounding box of that mapped quadrilateral, clipped to the reference.
The box therefore carries the *local* scale, rotation and perspective of the match (a
bigger object footprint where the reference is at finer resolution) around a click
centre that is mapped exactly; its size is a fixed prior, stated here so results that
quote this baseline can say so. Near the query border the clipped square is no longer
centred on the click, so neither is the box.

Failures are reported, not hidden: with ``fallback="none"`` (default) a failed match
returns ``box=None`` and ``score=0`` so evaluation counts it as a miss. With
``fallback="centre"`` the box becomes a square of the same relative size centred on the
reference centre (useful where the reference is cropped around the drone's position, as
in CVOGL), still with ``score=0``, ``homography=None`` and ``ok`` false.

This module imports only numpy and OpenCV.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from smgeo_geo.errors import ClickError

__all__ = ["ClassicalMatcher", "ClassicalResult", "ReferenceFeatures", "horizon_crosses", "ratio_test_matches"]

Box = tuple[float, float, float, float]
Point = tuple[float, float]

_MIN_IMAGE_SIDE = 16
# Inlier query points must span at least this fraction of the query area (convex hull):
# a homography fitted to one small cluster extrapolates wildly.
_MIN_INLIER_HULL_FRACTION = 0.005


@dataclass(frozen=True, eq=False)
class ReferenceFeatures:
    """Features of one reference image, reusable for many queries.

    ``points``: ``(N, 2)`` float32 keypoint positions in reference pixels (corner origin,
    see the module docstring); ``descriptors``: ``(N, D)`` (float32 for SIFT, uint8 for
    ORB); ``shape``: reference ``(height, width)``; ``method``: ``"sift"`` or ``"orb"``.
    """

    points: np.ndarray
    descriptors: np.ndarray
    shape: tuple[int, int]
    method: str


@dataclass(frozen=True, eq=False)
class ClassicalResult:
    """Outcome of one query.

    ``box``: ``(x1, y1, x2, y2)`` in reference pixels, or ``None`` when matching failed
    (and ``fallback="none"``). ``score``: inlier ratio (inliers / ratio-test matches) in
    ``[0, 1]``, ``0.0`` on failure. ``inliers``: matches within the reprojection threshold
    of the fitted homography (reported even when the homography was then rejected; 0 when
    none was fitted). ``homography``: 3x3 query-to-reference matrix normalised to
    ``H[2, 2] = 1``, or ``None`` on failure. ``click_in_reference``: the mapped click
    ``(x, y)`` in reference pixels, ``None`` on failure (the reference centre under
    ``fallback="centre"``). ``reason``: ``"ok"`` or why the match was rejected.
    """

    box: Box | None
    score: float
    inliers: int
    homography: np.ndarray | None
    click_in_reference: Point | None
    reason: str = "ok"

    @property
    def ok(self) -> bool:
        """True when a homography was accepted (a fallback box does not count)."""
        return self.homography is not None


def _check_image(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (H x W x 3 uint8 RGB), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8 (H x W x 3 RGB), got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) (RGB), got {image.shape}")
    if min(image.shape[:2]) < _MIN_IMAGE_SIDE:
        raise ValueError(f"{name} must be at least {_MIN_IMAGE_SIDE} x {_MIN_IMAGE_SIDE} pixels, got {image.shape[:2]}")


def _check_click(click: Sequence[float], width: int, height: int) -> Point:
    try:
        if isinstance(click, (str, bytes)):
            raise TypeError
        x, y = (float(v) for v in click)
    except (TypeError, ValueError):
        raise ClickError(f"click must be two numbers (x, y) in query pixels, got {click!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ClickError(f"click must be finite, got ({x}, {y})")
    if not (0.0 <= x <= width and 0.0 <= y <= height):
        raise ClickError(
            f"click ({x:g}, {y:g}) lies outside the query image of width {width} and height {height} "
            f"(need 0 <= x <= {width}, 0 <= y <= {height})"
        )
    return x, y


def _project(h: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map ``(N, 2)`` points with ``h``; returns mapped points and the homogeneous ``w``."""
    pts = np.asarray(points, dtype=np.float64)
    w = pts @ h[2, :2] + h[2, 2]
    xy = (pts @ h[:2, :2].T + h[:2, 2]) / w[:, None]
    return xy, w


def horizon_crosses(h: np.ndarray, points: np.ndarray) -> bool:
    """Whether the homography's horizon line (``w = 0``) passes through the convex polygon of
    ``points`` ``(N, 2)`` (source pixels) or touches it. A homography is defined up to a
    scale, sign included: ``w`` of one sign at every vertex (hence inside) is a valid map, as
    for an oblique photo whose origin corner lies beyond the horizon (sky)."""
    _, w = _project(h, points)
    return not (np.all(w > 1e-9) or np.all(w < -1e-9))


def ratio_test_matches(query_desc: np.ndarray, ref_desc: np.ndarray, ratio: float,
                       norm: int = cv2.NORM_L2) -> np.ndarray:
    """Lowe's ratio-test matches as ``(M, 2)`` index pairs (query, reference), keeping the best
    query for each reference descriptor, ordered by reference index. Exact nearest neighbours
    (deterministic): float descriptors (L2) through FAISS's flat index (BLAS, several times
    faster than OpenCV's brute force at a few thousand features), binary ones (Hamming)
    through OpenCV."""
    if len(query_desc) < 2 or len(ref_desc) < 2:
        return np.zeros((0, 2), np.int64)
    if norm == cv2.NORM_L2:
        dist, idx = _two_nearest_l2(query_desc, ref_desc)
    else:
        knn = cv2.BFMatcher(norm).knnMatch(query_desc, ref_desc, k=2)
        dist = np.array([[p[0].distance, p[1].distance] if len(p) == 2 else [np.inf, np.inf] for p in knn])
        idx = np.array([[p[0].trainIdx, -1] if len(p) == 2 else [-1, -1] for p in knn], dtype=np.int64)
    q = np.nonzero(dist[:, 0] < ratio * dist[:, 1])[0]
    r, d = idx[q, 0], dist[q, 0]
    order = np.lexsort((q, d, r))  # by reference, then distance, then query index
    r, q = r[order], q[order]
    first = np.ones(len(r), bool)
    first[1:] = r[1:] != r[:-1]  # the best query of each reference descriptor
    return np.column_stack([q[first], r[first]]).astype(np.int64).reshape(-1, 2)


def _two_nearest_l2(query_desc: np.ndarray, ref_desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances ``(N, 2)`` and reference indexes ``(N, 2)`` of each query
    descriptor's two nearest reference descriptors (exact)."""
    import faiss  # imported here: only registration and the baseline need it

    ref = np.ascontiguousarray(ref_desc, dtype=np.float32)
    index = faiss.IndexFlatL2(ref.shape[1])
    index.add(ref)
    d2, idx = index.search(np.ascontiguousarray(query_desc, dtype=np.float32), 2)
    return np.sqrt(np.maximum(d2, 0.0)), idx.astype(np.int64)


def _jacobian(h: np.ndarray, x: float, y: float) -> np.ndarray:
    """2x2 derivative of the homography at ``(x, y)``."""
    xy, w = _project(h, np.array([[x, y]]))
    (u, v), w = xy[0], w[0]
    return np.array(
        [
            [h[0, 0] - u * h[2, 0], h[0, 1] - u * h[2, 1]],
            [h[1, 0] - v * h[2, 0], h[1, 1] - v * h[2, 1]],
        ]
    ) / w


class ClassicalMatcher:
    """Feature-matching + homography baseline for click-to-box localisation.

    Parameters: ``method`` ``"sift"`` (default; falls back to ORB with a warning when this
    OpenCV lacks SIFT) or ``"orb"``; ``ratio``: Lowe's ratio test threshold;
    ``ransac_reproj_threshold``: inlier threshold in reference pixels (robust fit and
    inlier count); ``min_inliers``: fewer inliers is a failure; ``max_features``: keypoint
    cap per image (strongest kept); ``region``: side of the mapped square as a fraction of
    the query's shorter side; ``scale_range``: allowed local query-to-reference scale
    (sqrt of the homography's Jacobian determinant, reference px per query px) at the click
    and the region corners; ``max_anisotropy``: allowed ratio of the Jacobian's singular
    values there; ``fallback``: ``"none"`` or ``"centre"`` (see module docstring).
    """

    def __init__(
        self,
        method: Literal["sift", "orb"] = "sift",
        ratio: float = 0.75,
        ransac_reproj_threshold: float = 3.0,
        min_inliers: int = 12,
        max_features: int = 8000,
        region: float = 0.25,
        scale_range: tuple[float, float] = (1 / 32, 8.0),
        max_anisotropy: float = 6.0,
        fallback: Literal["none", "centre"] = "none",
    ) -> None:
        if method not in ("sift", "orb"):
            raise ValueError(f"method must be 'sift' or 'orb', got {method!r}")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in (0, 1), got {ratio}")
        if not ransac_reproj_threshold > 0:
            raise ValueError(f"ransac_reproj_threshold must be > 0 pixels, got {ransac_reproj_threshold}")
        if int(min_inliers) != min_inliers or min_inliers < 4:
            raise ValueError(f"min_inliers must be an integer >= 4 (a homography needs 4), got {min_inliers}")
        if int(max_features) != max_features or max_features < 10:
            raise ValueError(f"max_features must be an integer >= 10, got {max_features}")
        if not 0.0 < region <= 1.0:
            raise ValueError(f"region must be in (0, 1] (fraction of the query's shorter side), got {region}")
        lo, hi = scale_range
        if not 0 < lo < hi:
            raise ValueError(f"scale_range must be (low, high) with 0 < low < high, got {scale_range}")
        if not max_anisotropy >= 1.0:
            raise ValueError(f"max_anisotropy must be >= 1, got {max_anisotropy}")
        if fallback not in ("none", "centre"):
            raise ValueError(f"fallback must be 'none' or 'centre', got {fallback!r}")
        if method == "sift" and not hasattr(cv2, "SIFT_create"):
            warnings.warn("this OpenCV build has no SIFT; the classical baseline uses ORB instead", stacklevel=2)
            method = "orb"
        self.method: str = method
        self.ratio = float(ratio)
        self.ransac_reproj_threshold = float(ransac_reproj_threshold)
        self.min_inliers = int(min_inliers)
        self.max_features = int(max_features)
        self.region = float(region)
        self.scale_range = (float(lo), float(hi))
        self.max_anisotropy = float(max_anisotropy)
        self.fallback = fallback
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        if method == "sift":
            self._detector = cv2.SIFT_create(nfeatures=self.max_features)
            self._norm = cv2.NORM_L2
        else:
            self._detector = cv2.ORB_create(nfeatures=self.max_features, scaleFactor=1.2, nlevels=8, fastThreshold=10)
            self._norm = cv2.NORM_HAMMING
        self._robust = getattr(cv2, "USAC_MAGSAC", cv2.RANSAC)

    def __repr__(self) -> str:
        return (
            f"ClassicalMatcher(method={self.method!r}, ratio={self.ratio}, "
            f"ransac_reproj_threshold={self.ransac_reproj_threshold}, min_inliers={self.min_inliers}, "
            f"max_features={self.max_features}, region={self.region}, fallback={self.fallback!r})"
        )

    # features --------------------------------------------------------------------------
    def _features(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (corner-origin pixels, float32 ``(N, 2)``) and descriptors of an RGB image."""
        gray = self._clahe.apply(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
        keypoints, descriptors = self._detector.detectAndCompute(gray, None)
        if descriptors is None or len(keypoints) == 0:
            dim, dtype = (128, np.float32) if self.method == "sift" else (32, np.uint8)
            return np.zeros((0, 2), np.float32), np.zeros((0, dim), dtype)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32) + 0.5
        return points, descriptors

    def prepare_reference(self, reference: np.ndarray) -> ReferenceFeatures:
        """Detect and describe features of ``reference`` (``H x W x 3`` uint8 RGB) once."""
        _check_image(reference, "reference")
        points, descriptors = self._features(reference)
        points.setflags(write=False)
        descriptors.setflags(write=False)
        return ReferenceFeatures(points, descriptors, (int(reference.shape[0]), int(reference.shape[1])), self.method)

    # matching --------------------------------------------------------------------------
    def _match(self, query_desc: np.ndarray, ref_desc: np.ndarray) -> np.ndarray:
        """Ratio-test matches as ``(M, 2)`` index pairs (query, reference), one per reference point."""
        return ratio_test_matches(query_desc, ref_desc, self.ratio, self._norm)

    # main entry points -----------------------------------------------------------------
    def locate(self, query: np.ndarray, click: Sequence[float], reference: np.ndarray) -> ClassicalResult:
        """Box of the clicked object in reference pixels; see :meth:`locate_prepared`."""
        _check_image(query, "query")
        _check_click(click, query.shape[1], query.shape[0])
        return self.locate_prepared(query, click, self.prepare_reference(reference))

    def locate_prepared(self, query: np.ndarray, click: Sequence[float], prepared: ReferenceFeatures) -> ClassicalResult:
        """Locate with reference features from :meth:`prepare_reference` (same method).

        ``query``: ``H x W x 3`` uint8 RGB; ``click``: ``(x, y)`` in query pixels.
        Raises ``ValueError`` (:class:`~smgeo_geo.errors.ClickError` for the click) on bad input.
        """
        _check_image(query, "query")
        qh, qw = query.shape[:2]
        cx, cy = _check_click(click, qw, qh)
        if not isinstance(prepared, ReferenceFeatures):
            raise ValueError(f"prepared must come from prepare_reference(), got {type(prepared).__name__}")
        if prepared.method != self.method:
            raise ValueError(
                f"reference features were made with {prepared.method!r} but this matcher uses {self.method!r}"
            )
        rh, rw = prepared.shape

        q_points, q_desc = self._features(query)
        pairs = self._match(q_desc, prepared.descriptors)
        if len(pairs) < max(4, self.min_inliers):
            return self._failure(prepared, 0, f"only {len(pairs)} ratio-test matches")
        src = q_points[pairs[:, 0]].astype(np.float64)
        dst = prepared.points[pairs[:, 1]].astype(np.float64)
        h, _ = cv2.findHomography(
            src, dst, self._robust, self.ransac_reproj_threshold, maxIters=10000, confidence=0.999
        )
        if h is None or not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12:
            return self._failure(prepared, 0, "no homography found")
        h = h / h[2, 2]

        mapped, w = _project(h, src)
        inlier = (w > 0) & (np.linalg.norm(mapped - dst, axis=1) <= self.ransac_reproj_threshold)
        n_in = int(inlier.sum())
        half = 0.5 * self.region * min(qh, qw)
        x1, y1, x2, y2 = max(cx - half, 0.0), max(cy - half, 0.0), min(cx + half, qw), min(cy + half, qh)
        region = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
        reason = self._implausible(h, n_in, src[inlier], region, (cx, cy), qh * qw)
        if reason:
            return self._failure(prepared, n_in, reason)

        ux, uy = _project(h, np.array([[cx, cy]]))[0][0]
        if not (0.0 <= ux <= rw and 0.0 <= uy <= rh):
            return self._failure(prepared, n_in, "click maps outside the reference")
        quad, _ = _project(h, region)
        bx1, by1 = np.clip(quad.min(axis=0), 0.0, [rw, rh])
        bx2, by2 = np.clip(quad.max(axis=0), 0.0, [rw, rh])
        if bx2 <= bx1 or by2 <= by1:
            return self._failure(prepared, n_in, "mapped region lies outside the reference")
        h.setflags(write=False)
        return ClassicalResult(
            box=(float(bx1), float(by1), float(bx2), float(by2)),
            score=n_in / len(pairs),
            inliers=n_in,
            homography=h,
            click_in_reference=(float(ux), float(uy)),
        )

    # checks ----------------------------------------------------------------------------
    def _implausible(
        self, h: np.ndarray, n_in: int, inlier_src: np.ndarray, region: np.ndarray, click: Point, query_area: float
    ) -> str:
        """Why the homography is not believable where it is used, or ``""``.

        Checked on the support (convex hull of the inlier query points) and on the click
        region (``region``: its 4 corners TL, TR, BR, BL), not the whole query, so an oblique
        photo whose upper part (sky, horizon) has no ground-plane mapping is not refused.
        """
        if n_in < self.min_inliers:
            return f"{n_in} inliers < min_inliers={self.min_inliers}"
        hull = cv2.convexHull(inlier_src.astype(np.float32)).reshape(-1, 2)
        if cv2.contourArea(hull) < _MIN_INLIER_HULL_FRACTION * query_area:
            return "inliers are concentrated in a tiny part of the query (degenerate)"
        if horizon_crosses(h, np.vstack([hull, region])):
            return "the homography's horizon crosses the matched area or the click region"
        quad, _ = _project(h, region)
        edges = np.roll(quad, -1, axis=0) - quad
        nxt = np.roll(edges, -1, axis=0)
        if np.any(edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0] <= 0):
            return "the mapped click region is mirrored, twisted or degenerate"
        lo, hi = self.scale_range
        for x, y in [click, *region]:
            jac = _jacobian(h, x, y)
            sv = np.linalg.svd(jac, compute_uv=False)
            scale = math.sqrt(sv[0] * sv[1])
            if np.linalg.det(jac) <= 0 or not lo <= scale <= hi:
                return f"local scale {scale:.3g} in the click region outside scale_range {self.scale_range}"
            if sv[0] > self.max_anisotropy * sv[1]:
                return f"local anisotropy {sv[0] / sv[1]:.3g} in the click region > max_anisotropy"
        return ""

    def _failure(self, prepared: ReferenceFeatures, inliers: int, reason: str) -> ClassicalResult:
        if self.fallback == "centre":
            rh, rw = prepared.shape
            half = 0.5 * self.region * min(rh, rw)
            cx, cy = rw / 2, rh / 2
            return ClassicalResult((cx - half, cy - half, cx + half, cy + half), 0.0, inliers, None, (cx, cy), reason)
        return ClassicalResult(None, 0.0, inliers, None, None, reason)
