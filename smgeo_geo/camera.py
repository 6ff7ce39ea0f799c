"""A frame (pinhole + Brown distortion) camera in a local east-north-up frame.

Frames:

* **photo pixels** ``(x, y)``: the upright photo, x right, y down, ``(0, 0)`` the outer
  top-left corner of the top-left pixel (pixel centres at ``+0.5``), as clicks are given.
* **camera** axes: x right, y down, z forward (the optical axis), metres.
* **local ENU** (:class:`LocalFrame`): a topocentric east-north-up frame in metres whose
  origin is a WGS84 point ``(lon0, lat0, h0)``; ``z`` is height above ``h0`` in the
  vertical frame of the heights given (photo altitude, DEM). Converted exactly to lon/lat
  and any CRS with pyproj.

Rotation ``R`` maps local ENU vectors to camera vectors (``x_cam = R (X - C)``, ``C`` the
camera centre in local ENU). :func:`rotation_from_angles` builds it from yaw / pitch / roll
as DJI writes them (yaw clockwise from true north, pitch 0 = horizon and -90 = nadir,
roll about the optical axis; Z-Y-X Euler angles in north-east-down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np
import pyproj

from smgeo_geo.coords import CRSLike, transform_xy

WGS84_3D = pyproj.CRS.from_epsg(4979)


@dataclass(frozen=True)
class LocalFrame:
    """Topocentric east-north-up frame (metres) at WGS84 ``lon0, lat0`` (degrees), height ``h0``."""

    lon0: float
    lat0: float
    h0: float = 0.0

    @cached_property
    def _pipeline(self) -> pyproj.Transformer:
        return pyproj.Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=cart +ellps=WGS84 "
            f"+step +proj=topocentric +ellps=WGS84 +lon_0={float(self.lon0):.12f} +lat_0={float(self.lat0):.12f} "
            f"+h_0={float(self.h0):.6f}")  # plain floats: a numpy scalar's repr is not a number to PROJ

    def to_lonlat(self, x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local ENU ``(x, y, z)`` metres -> WGS84 ``(lon, lat)`` degrees and height."""
        lon, lat, h = self._pipeline.transform(np.asarray(x, float), np.asarray(y, float), np.asarray(z, float),
                                               direction="INVERSE")
        return np.asarray(lon), np.asarray(lat), np.asarray(h)

    def from_lonlat(self, lon, lat, h) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """WGS84 ``(lon, lat)`` degrees and height -> local ENU ``(x, y, z)`` metres."""
        x, y, z = self._pipeline.transform(np.asarray(lon, float), np.asarray(lat, float), np.asarray(h, float))
        return np.asarray(x), np.asarray(y), np.asarray(z)

    def to_crs(self, crs: CRSLike, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        """Local ENU points -> ``(x, y)`` in ``crs`` (e.g. a raster's CRS)."""
        lon, lat, _ = self.to_lonlat(x, y, z)
        return transform_xy(4326, crs, lon, lat)

    def from_crs(self, crs: CRSLike, xs, ys, heights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points ``(x, y)`` in ``crs`` with ``heights`` -> local ENU ``(x, y, z)``."""
        lon, lat = transform_xy(crs, 4326, xs, ys)
        return self.from_lonlat(lon, lat, heights)


@dataclass(frozen=True)
class GridFrame:
    """A projected CRS's own axes as the world frame: ``x = easting - x0``, ``y = northing - y0``
    (metres of the CRS grid), ``z`` = height. Grid north differs from true north by the
    meridian convergence; photogrammetry tools (OpenDroneMap's georeferenced outputs,
    orthority) pose cameras in this frame, so a camera that made an orthophoto is exact here."""

    crs: str
    x0: float
    y0: float

    def to_crs(self, crs: CRSLike, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        return transform_xy(self.crs, crs, np.asarray(x, float) + self.x0, np.asarray(y, float) + self.y0)

    def from_crs(self, crs: CRSLike, xs, ys, heights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gx, gy = transform_xy(crs, self.crs, xs, ys)
        return gx - self.x0, gy - self.y0, np.asarray(heights, float)

    def to_lonlat(self, x, y, z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lon, lat = self.to_crs(4326, x, y, z)
        return lon, lat, np.asarray(z, float)

    def from_lonlat(self, lon, lat, h) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.from_crs(4326, lon, lat, h)


def rotation_from_angles(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """World (local ENU) -> camera rotation for a camera at yaw / pitch / roll (degrees).

    At yaw = pitch = roll = 0 the camera looks north with image right = east; pitch -90
    looks straight down with the image top towards ``yaw``.
    """
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    body_to_ned = rz @ ry @ rx
    cam_to_body = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)  # columns: x_cam, y_cam, z_cam
    ned_to_enu = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)
    cam_to_enu = ned_to_enu @ body_to_ned @ cam_to_body
    return cam_to_enu.T


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_angles`: ``(yaw, pitch, roll)`` degrees."""
    cam_to_enu = np.asarray(rotation, float).T
    ned_to_enu = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)
    cam_to_body = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)
    m = ned_to_enu.T @ cam_to_enu @ cam_to_body.T
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -m[2, 0]))))
    yaw = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    roll = math.degrees(math.atan2(m[2, 1], m[2, 2]))
    return yaw, pitch, roll


@dataclass(frozen=True)
class FrameCamera:
    """Pinhole camera with Brown distortion, posed in a :class:`LocalFrame`.

    ``width``, ``height``: photo size in pixels; ``fx``, ``fy``: focal lengths in pixels;
    ``cx``, ``cy``: principal point in photo pixels (corner convention, so the image centre
    is ``(width / 2, height / 2)``); ``distortion``: OpenCV / Brown ``(k1, k2, p1, p2, k3)``
    on normalised coordinates; ``rotation``: local ENU -> camera (3x3); ``centre``: camera
    centre in local ENU metres; ``frame``: the local frame.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float, float]
    rotation: np.ndarray
    centre: np.ndarray
    frame: LocalFrame

    def with_pose(self, rotation: np.ndarray, centre: np.ndarray) -> "FrameCamera":
        return replace(self, rotation=np.asarray(rotation, float), centre=np.asarray(centre, float))

    # -- OpenCV views ---------------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """3x3 intrinsic matrix in OpenCV's pixel-centre convention."""
        return np.array([[self.fx, 0, self.cx - 0.5], [0, self.fy, self.cy - 0.5], [0, 0, 1]], dtype=float)

    @property
    def dist(self) -> np.ndarray:
        return np.asarray(self.distortion, dtype=float)

    @property
    def rvec_tvec(self) -> tuple[np.ndarray, np.ndarray]:
        """OpenCV ``(rvec, tvec)`` of the pose: ``x_cam = R X + t`` with ``t = -R C``."""
        rvec, _ = cv2.Rodrigues(self.rotation)
        return rvec.reshape(3), -self.rotation @ self.centre

    # -- geometry -------------------------------------------------------------------------
    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local ENU points ``(N, 3)`` -> photo pixels ``(N, 2)`` (corner convention) and a
        mask of the points in front of the camera."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        cam = (pts - self.centre) @ self.rotation.T
        front = cam[:, 2] > 1e-6
        rvec, tvec = self.rvec_tvec
        px, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), rvec, tvec, self.matrix, self.dist)
        return px.reshape(-1, 2) + 0.5, front

    def rays(self, pixels) -> np.ndarray:
        """Photo pixels ``(N, 2)`` -> unit ray directions ``(N, 3)`` in local ENU."""
        px = np.asarray(pixels, dtype=float).reshape(-1, 2)
        distorted = np.column_stack([(px[:, 0] - self.cx) / self.fx, (px[:, 1] - self.cy) / self.fy])
        norm = undistort_normalised(distorted, self.distortion)
        cam = np.column_stack([norm, np.ones(len(norm))])
        world = cam @ self.rotation  # R^T applied to row vectors
        return world / np.linalg.norm(world, axis=1, keepdims=True)

    @property
    def ground_sample_scale(self) -> float:
        """Metres on the ground per pixel per metre of range (1 / focal length in pixels)."""
        return 2.0 / (self.fx + self.fy)


def undistort_normalised(points: np.ndarray, distortion, iterations: int = 30) -> np.ndarray:
    """Invert Brown distortion ``(k1, k2, p1, p2, k3)`` (OpenCV's model) on normalised image
    points ``(N, 2)`` by OpenCV's fixed-point iteration, until no point moves by more than 1e-14
    or after ``iterations`` steps (converges for the distortions of drone lenses)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not any(distortion) or len(pts) == 0:
        return pts.copy()
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-14)
    out = cv2.undistortPoints(pts.reshape(-1, 1, 2), np.eye(3), np.asarray(distortion, dtype=np.float64), None,
                              None, None, criteria)
    return out.reshape(-1, 2)


def brown_from_opensfm(camera: dict) -> tuple[float, float, float, float, tuple]:
    """``(fx, fy, cx, cy, distortion)`` in photo pixels from an OpenSfM ``brown`` /
    ``perspective`` camera (focal and principal point normalised by the larger side;
    principal point relative to the image centre)."""
    w, h = int(camera["width"]), int(camera["height"])
    size = max(w, h)
    fx = float(camera.get("focal_x", camera.get("focal"))) * size
    fy = float(camera.get("focal_y", camera.get("focal"))) * size
    cx = w / 2 + float(camera.get("c_x", 0.0)) * size
    cy = h / 2 + float(camera.get("c_y", 0.0)) * size
    dist = tuple(float(camera.get(k, 0.0)) for k in ("k1", "k2", "p1", "p2", "k3"))
    return fx, fy, cx, cy, dist  # type: ignore[return-value]


def camera_from_opensfm(reconstruction: dict, shot_id: str, grid_crs: CRSLike | None = None) -> FrameCamera:
    """The posed camera of ``shot_id`` in one OpenSfM / OpenDroneMap reconstruction (a dict of
    ``cameras``, ``shots``, ``reference_lla``).

    Default: the reconstructed pose in the reconstruction's topocentric frame (exact
    geodesy). With ``grid_crs`` (a projected CRS): the pose as photogrammetry tools place it
    to make georeferenced products: camera centre at the shot's ``gps_position`` converted to
    that CRS, rotation applied in the CRS's grid axes (:class:`GridFrame`). An orthophoto
    made from the shot with those tools is reproduced exactly by this camera.
    """
    shot = reconstruction["shots"][shot_id]
    cam = reconstruction["cameras"][shot["camera"]]
    lla = reconstruction["reference_lla"]
    fx, fy, cx, cy, dist = brown_from_opensfm(cam)
    rotation, _ = cv2.Rodrigues(np.asarray(shot["rotation"], dtype=float))
    t = np.asarray(shot["translation"], dtype=float)
    topo = LocalFrame(float(lla["longitude"]), float(lla["latitude"]), float(lla.get("altitude", 0.0)))
    size = (int(cam["width"]), int(cam["height"]))
    if grid_crs is None:
        return FrameCamera(*size, fx, fy, cx, cy, dist, rotation, -rotation.T @ t, topo)
    gps = np.asarray(shot.get("gps_position", -rotation.T @ t), dtype=float)
    lon, lat, h = topo.to_lonlat(*gps)
    (gx,), (gy,) = transform_xy(4326, grid_crs, [float(lon)], [float(lat)])
    from smgeo_geo.coords import crs_string

    frame = GridFrame(crs_string(grid_crs), float(gx), float(gy))
    return FrameCamera(*size, fx, fy, cx, cy, dist, rotation, np.array([0.0, 0.0, float(h)]), frame)
