"""Cameras that map scene metres (x east, y south, z up) to image pixels.

Image pixels: x = column, y = row, corner-based (pixel (i, j) spans [i, i+1) x [j, j+1)),
so OpenCV drawing coordinates (pixel centres at integers) are these minus 0.5.

* :class:`ParallelCamera` - the satellite: an affine (weak off-nadir) projection; the ground
  z = 0 maps to the tile's pixel grid exactly, a point z metres up is displaced by
  ``z * tan(off_nadir)`` along the lean direction (roofs lean away from the sensor).
* :class:`PerspectiveCamera` - the drone: pinhole camera at ``position`` with compass
  ``heading`` and ``pitch`` degrees off nadir; square pixels, principal point at the centre.
"""

from __future__ import annotations

import math

import numpy as np


class ParallelCamera:
    """Satellite projection onto a ``width`` x ``height`` raster with pixel size ``res`` m
    whose top-left corner is scene point (x0, y0)."""

    perspective = False

    def __init__(self, x0: float, y0: float, res: float, width: int, height: int, lean_azimuth: float = 0.0,
                 off_nadir: float = 0.0) -> None:
        self.x0, self.y0, self.res, self.width, self.height = x0, y0, res, width, height
        a = math.radians(lean_azimuth)
        self.lean = np.array([math.sin(a), -math.cos(a)])  # horizontal unit vector (scene frame)
        self.k = math.tan(math.radians(off_nadir))
        s = math.sin(math.radians(off_nadir))
        self.view = np.array([self.lean[0] * s, self.lean[1] * s, -math.cos(math.radians(off_nadir))])

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N,3)`` scene metres -> ``(N,2)`` pixels and ``(N,)`` depth along the view."""
        p = np.asarray(p, dtype=np.float64)
        u = (p[:, 0] + p[:, 2] * self.k * self.lean[0] - self.x0) / self.res
        v = (p[:, 1] + p[:, 2] * self.k * self.lean[1] - self.y0) / self.res
        return np.stack([u, v], 1), p @ self.view

    def facing(self, normals: np.ndarray, points: np.ndarray) -> np.ndarray:
        return normals @ self.view < -1e-9

    def px_per_m(self, depth) -> np.ndarray:
        return np.full(np.shape(depth), 1.0 / self.res)

    def view_bounds(self, max_height: float) -> tuple[float, float, float, float]:
        """Scene-metre box holding every ground point whose objects can appear in the image."""
        m = max_height * self.k + 2
        return (self.x0 - m, self.y0 - m, self.x0 + self.width * self.res + m, self.y0 + self.height * self.res + m)


class PerspectiveCamera:
    """Drone camera. ``heading``: compass azimuth of the view (0 = north, 90 = east);
    ``pitch``: angle of the optical axis from nadir (0 = straight down); ``hfov``: horizontal
    field of view in degrees."""

    perspective = True
    near = 0.5

    def __init__(self, position, heading: float, pitch: float, hfov: float, width: int, height: int) -> None:
        self.position = np.asarray(position, dtype=np.float64)
        self.heading, self.pitch, self.hfov = heading, pitch, hfov
        self.width, self.height = width, height
        self.f = (width / 2) / math.tan(math.radians(hfov) / 2)
        psi, th = math.radians(heading), math.radians(pitch)
        h = np.array([math.sin(psi), -math.cos(psi), 0.0])  # horizontal viewing direction
        up = np.array([0.0, 0.0, 1.0])
        self.forward = math.sin(th) * h - math.cos(th) * up
        self.right = np.array([math.cos(psi), math.sin(psi), 0.0])
        self.down = -(math.cos(th) * h + math.sin(th) * up)
        self.R = np.stack([self.right, self.down, self.forward])
        self.K = np.array([[self.f, 0, width / 2], [0, self.f, height / 2], [0, 0, 1.0]])

    @classmethod
    def looking_at(cls, target, distance: float, heading: float, pitch: float, hfov: float, width: int,
                   height: int) -> "PerspectiveCamera":
        """Camera whose optical axis hits scene point ``target`` (x, y, z) from ``distance`` m."""
        psi, th = math.radians(heading), math.radians(pitch)
        fwd = np.array([math.sin(th) * math.sin(psi), -math.sin(th) * math.cos(psi), -math.cos(th)])
        return cls(np.asarray(target, dtype=np.float64) - distance * fwd, heading, pitch, hfov, width, height)

    def scaled(self, factor: float) -> "PerspectiveCamera":
        """The same view on a raster ``factor`` times larger (supersampling)."""
        return PerspectiveCamera(self.position, self.heading, self.pitch, self.hfov, round(self.width * factor),
                                 round(self.height * factor))

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = (np.asarray(p, dtype=np.float64) - self.position) @ self.R.T
        z = v[:, 2]
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = np.stack([self.f * v[:, 0] / zs + self.width / 2, self.f * v[:, 1] / zs + self.height / 2], 1)
        return uv, z

    def camera_coords(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=np.float64) - self.position) @ self.R.T

    def uv_from_camera(self, v: np.ndarray) -> np.ndarray:
        return np.stack([self.f * v[:, 0] / v[:, 2] + self.width / 2, self.f * v[:, 1] / v[:, 2] + self.height / 2], 1)

    def facing(self, normals: np.ndarray, points: np.ndarray) -> np.ndarray:
        return ((self.position - points) * normals).sum(-1) > 1e-9

    def px_per_m(self, depth) -> np.ndarray:
        return self.f / np.maximum(depth, self.near)

    def ground_homography(self) -> np.ndarray:
        """3x3 map of ground points (x, y, 1) at z = 0 to homogeneous pixels."""
        c = self.position
        return self.K @ self.R @ np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, -c[2]]])

    def pixel_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Ground points (x, y) hit by the rays through pixels ``uv`` (NaN above the horizon)."""
        uv = np.atleast_2d(uv)
        d = (self.forward[None] + ((uv[:, 0] - self.width / 2) / self.f)[:, None] * self.right[None]
             + ((uv[:, 1] - self.height / 2) / self.f)[:, None] * self.down[None])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(d[:, 2] < -1e-6, -self.position[2] / d[:, 2], np.nan)
        return self.position[None, :2] + t[:, None] * d[:, :2]

    def ground_range(self) -> np.ndarray:
        """``(H, W)`` float32 distance (m) from the camera to the ground seen at each pixel."""
        u = ((np.arange(self.width, dtype=np.float32) + 0.5 - self.width / 2) / self.f)[None, :]
        v = ((np.arange(self.height, dtype=np.float32) + 0.5 - self.height / 2) / self.f)[:, None]
        # ray d = forward + u right + v down (orthonormal axes, right is horizontal): |d| and d_z
        dz = np.minimum(self.forward[2] + v * self.down[2], -1e-3).astype(np.float32)
        return ((self.position[2] / -dz) * np.sqrt(1.0 + u * u + v * v)).astype(np.float32)

    def view_bounds(self, max_height: float) -> tuple[float, float, float, float]:
        w, h = self.width, self.height
        edge = np.linspace(0, 1, 9)
        uv = np.concatenate([np.c_[edge * w, np.zeros(9)], np.c_[edge * w, np.full(9, h)],
                             np.c_[np.zeros(9), edge * h], np.c_[np.full(9, w), edge * h]])
        g = self.pixel_to_ground(uv)
        g = np.concatenate([g[~np.isnan(g[:, 0])], self.position[None, :2]])
        m = 10.0 + 0.3 * max_height
        return float(g[:, 0].min() - m), float(g[:, 1].min() - m), float(g[:, 0].max() + m), float(g[:, 1].max() + m)
