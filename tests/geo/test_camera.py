"""The frame camera and terrain ray casting against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine

from smgeo_geo.camera import FrameCamera, LocalFrame, angles_from_rotation, rotation_from_angles
from smgeo_geo.terrain import DemTerrain, FlatTerrain, cast_rays, intersect_rays

FRAME = LocalFrame(8.54, 47.37, 0.0)
W, H, F = 1000, 800, 800.0


def camera(yaw: float, pitch: float, roll: float = 0.0, height: float = 100.0, dist=(0, 0, 0, 0, 0)) -> FrameCamera:
    return FrameCamera(W, H, F, F, W / 2, H / 2, dist, rotation_from_angles(yaw, pitch, roll),
                       np.array([0.0, 0.0, height]), FRAME)


def ground(cam: FrameCamera, pixel, terrain=FlatTerrain(0.0)) -> np.ndarray:
    pts, hit = intersect_rays(cam, [pixel], terrain)
    assert hit[0]
    return pts[0]


def test_nadir_centre_pixel_lands_below_and_offsets_scale_with_height():
    cam = camera(0.0, -90.0)
    np.testing.assert_allclose(ground(cam, (W / 2, H / 2))[:2], [0, 0], atol=1e-3)
    # 100 px right of centre at 100 m with f = 800 px: 12.5 m east (image top is north at yaw 0)
    np.testing.assert_allclose(ground(cam, (W / 2 + 100, H / 2))[:2], [12.5, 0], atol=0.01)
    np.testing.assert_allclose(ground(cam, (W / 2, H / 2 - 80))[:2], [0, 10.0], atol=0.01)


@pytest.mark.parametrize("yaw, direction", [(0, (0, 1)), (90, (1, 0)), (180, (0, -1)), (-90, (-1, 0))])
def test_oblique_centre_ray_goes_along_the_yaw(yaw, direction):
    """Pitch -60 (30 deg off nadir) at 100 m: the optical axis meets flat ground 100 tan(30)
    = 57.74 m from the nadir point, along the heading (clockwise from north)."""
    p = ground(camera(yaw, -60.0), (W / 2, H / 2))
    np.testing.assert_allclose(p[:2], 100 * math.tan(math.radians(30)) * np.array(direction), atol=0.02)


def test_nadir_image_right_points_east_of_the_heading():
    """Yaw 90 (facing east) at nadir: the image top points east, so image right points south."""
    p = ground(camera(90.0, -90.0), (W / 2 + 100, H / 2))
    np.testing.assert_allclose(p[:2], [0, -12.5], atol=0.01)


def test_angles_round_trip_and_projection_inverts_rays():
    for yaw, pitch, roll in [(10, -45, 3), (-175.8, -60, 0.7), (92.9, -89, -2)]:
        np.testing.assert_allclose(angles_from_rotation(rotation_from_angles(yaw, pitch, roll)), (yaw, pitch, roll),
                                   atol=1e-9)
    cam = camera(30.0, -50.0, 2.0, dist=(-0.26, 0.1, 0.001, 0.0003, -0.03))
    pixels = np.array([[10.0, 20.0], [500.0, 400.0], [990.0, 790.0], [250.5, 700.25]])
    pts, hit = intersect_rays(cam, pixels, FlatTerrain(-20.0))
    assert hit.all()
    back, front = cam.project(pts)
    assert front.all()
    np.testing.assert_allclose(back, pixels, atol=1e-4)


def test_local_frame_is_metric_east_north_up():
    lon, lat, h = FRAME.to_lonlat([100.0], [0.0], [0.0])
    from smgeo_geo.coords import geodesic_distance

    assert float(geodesic_distance(FRAME.lon0, FRAME.lat0, lon[0], lat[0])) == pytest.approx(100.0, abs=0.01)
    assert lat[0] == pytest.approx(FRAME.lat0, abs=1e-6) and lon[0] > FRAME.lon0
    x, y, z = FRAME.from_lonlat(lon, lat, h)
    np.testing.assert_allclose([x[0], y[0], z[0]], [100.0, 0.0, 0.0], atol=1e-6)


@pytest.fixture
def sloped_dem(tmp_path):
    """A DEM in UTM 32N around FRAME's origin: height = 10 + 0.2 * (metres east of the origin),
    1 m cells, 600 m square."""
    from smgeo_geo.coords import transform_xy

    (e0,), (n0,) = transform_xy(4326, "EPSG:32632", [FRAME.lon0], [FRAME.lat0])
    size = 600
    transform = Affine(1.0, 0, e0 - size / 2, 0, -1.0, n0 + size / 2)
    cols = np.arange(size) + 0.5
    east = transform.c + cols - e0
    heights = np.tile(10 + 0.2 * east, (size, 1)).astype(np.float32)
    path = tmp_path / "slope.tif"
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                       crs="EPSG:32632", transform=transform) as ds:
        ds.write(heights, 1)
    return path


def test_ray_marching_on_a_sloped_dem_matches_the_plane_intersection(sloped_dem):
    """Nadir camera 100 m above the origin; a ray through pixel (W/2 + u, H/2) meets the plane
    z = 10 + 0.2 x where x = (100 - z) u / f, so x = 90 u / (f + 0.2 u). The UTM grid is
    rotated against true north by the meridian convergence (about 1 deg here), so the
    slope's direction differs slightly: tolerance 0.3 m."""
    cam = camera(0.0, -90.0)
    with DemTerrain(sloped_dem) as dem:
        for u in (0.0, 200.0, -300.0):
            p = ground(cam, (W / 2 + u, H / 2), dem)
            expected_x = 90 * u / (F + 0.2 * u)
            assert p[0] == pytest.approx(expected_x, abs=0.3)
            assert p[2] == pytest.approx(10 + 0.2 * expected_x, abs=0.3)


def test_rays_of_several_cameras_cast_together_land_where_each_alone_does(sloped_dem):
    """The metadata error budget casts one ray per perturbed camera in one pass: each must meet
    the ground exactly where its own camera's cast does (a ray missing the DEM stays a miss)."""
    cams = [camera(0.0, -90.0), camera(90.0, -60.0, height=80.0), camera(200.0, -45.0, 5.0, height=120.0),
            camera(0.0, 10.0)]  # the last looks above the horizon
    pixel = (W / 2 + 37.0, H / 2 - 11.0)
    origins = np.array([c.centre for c in cams])
    rays = np.vstack([c.rays([pixel]) for c in cams])
    with DemTerrain(sloped_dem) as dem:
        for terrain in (dem, FlatTerrain(5.0)):
            together, hit = cast_rays(FRAME, origins, rays, terrain)
            assert hit.tolist() == [True, True, True, False]
            for i, c in enumerate(cams[:3]):
                alone, ok = intersect_rays(c, [pixel], terrain)
                assert ok[0]
                np.testing.assert_allclose(together[i], alone[0], atol=1e-6)


def test_local_frame_takes_numpy_scalars():
    frame = LocalFrame(np.float64(FRAME.lon0), np.float64(FRAME.lat0), np.float64(0.0))
    x, y, _ = frame.from_lonlat([FRAME.lon0], [FRAME.lat0], [0.0])
    np.testing.assert_allclose([x[0], y[0]], [0.0, 0.0], atol=1e-6)

