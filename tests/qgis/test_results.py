"""The result layers' geometry without a worker: the 90 % uncertainty circle is a circle of the
stated radius on the ground whatever the reference raster's CRS (metres, lon/lat, Web Mercator
far from the equator, feet)."""

from __future__ import annotations

import math

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")


@pytest.mark.parametrize("authid, lon, lat", [
    ("EPSG:32654", 143.2918, 38.5240),   # UTM 54N: drawn directly in metres
    ("EPSG:4326", 143.2918, 38.5240),    # lon/lat: built in a local azimuthal equidistant CRS
    ("EPSG:3857", 143.2918, 38.5240),    # Web Mercator at 38.5 N: 1.28x too long, so not in its metres
    ("EPSG:2056", 8.5417, 47.3769),      # Swiss LV95
    ("EPSG:2264", -78.64, 35.78),        # North Carolina, US survey feet
])
def test_uncertainty_circle_is_a_ground_circle(qgis_app, authid, lon, lat):
    from smgeo_locator.results import uncertainty_circle

    crs = QgsCoordinateReferenceSystem(authid)
    radius = 12.5
    circle = uncertainty_circle(lon, lat, radius, crs)
    assert circle.isGeosValid() and not circle.isMultipart()
    local = QgsCoordinateReferenceSystem.fromProj(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    circle.transform(QgsCoordinateTransform(crs, local, QgsProject.instance()))
    assert circle.area() == pytest.approx(math.pi * radius ** 2, rel=0.005)
    ring = circle.asPolygon()[0]
    distances = [math.hypot(p.x(), p.y()) for p in ring]
    assert min(distances) == pytest.approx(radius, rel=0.002) and max(distances) == pytest.approx(radius, rel=0.002)
    assert circle.centroid().asPoint().distance(QgsPointXY(0, 0)) < 0.01
