"""Place fusion: neighbours by ground distance, and the fused score's behaviour."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from smgeo_geo.errors import OptionError
from smgeo_retrieval.place_fusion import PlaceNeighbours, fused_scores


def test_neighbours_are_the_items_within_the_radius_by_geodesic_distance():
    rng = np.random.default_rng(3)
    geod = pyproj.Geod(ellps="WGS84")
    # clusters a few hundred metres across (cells' edges cross them), at 0, 60 and -45 degrees
    # of latitude and across the antimeridian
    centres = [(8.0, 47.0), (179.999, 0.0), (-70.0, -45.0), (10.0, 60.0)]
    lon, lat = [], []
    for c_lon, c_lat in centres:
        az, d = rng.uniform(0, 360, 60), rng.uniform(0, 400, 60)
        x, y, _ = geod.fwd(np.full(60, c_lon), np.full(60, c_lat), az, d)
        lon += list(x)
        lat += list(y)
    lon, lat = np.array(lon), np.array(lat)
    n = len(lon)
    _, _, dist = geod.inv(np.repeat(lon, n), np.repeat(lat, n), np.tile(lon, n), np.tile(lat, n))
    dist = dist.reshape(n, n)
    found = PlaceNeighbours(lon, lat, radius_m=150.0, max_neighbours=n).of(np.arange(n))
    for i in range(n):
        truth = set(np.flatnonzero((dist[i] <= 150.0) & (np.arange(n) != i)))
        # the sphere's chord and the ellipsoid's geodesic differ by under 0.5 % at this scale
        borderline = set(np.flatnonzero(np.abs(dist[i] - 150.0) < 1.0))
        assert set(found[i]) - borderline == truth - borderline, i
        assert np.all(np.diff(dist[i, found[i]]) > -1.0)  # nearest first
    assert sum(len(f) for f in found) > n  # the clusters do give neighbours
    assert PlaceNeighbours(lon, lat).of([]) == []
    capped = PlaceNeighbours(lon, lat, radius_m=150.0, max_neighbours=5).of(np.arange(n))
    for i in range(n):  # the cap keeps the nearest
        assert list(capped[i]) == list(found[i][:5]), i


def test_in_a_dense_index_the_nearest_neighbours_are_exact_whichever_cells_answer():
    """3,000 items within 250 m (many rows find their 8 nearest in the cells next to their own,
    those at the cluster's edge and the sparse ones beside it look farther): the nearest 8 within
    200 m of each, by the sphere's chord, as brute force finds them."""
    rng = np.random.default_rng(11)
    geod = pyproj.Geod(ellps="WGS84")
    az, d = rng.uniform(0, 360, 3000), 250.0 * np.sqrt(rng.uniform(0, 1, 3000))
    far_az, far_d = rng.uniform(0, 360, 40), rng.uniform(300, 900, 40)  # a sparse ring around it
    lon, lat, _ = geod.fwd(np.full(3040, 8.5), np.full(3040, 47.4), np.r_[az, far_az], np.r_[d, far_d])
    found = PlaceNeighbours(lon, lat, radius_m=200.0, max_neighbours=8).of(np.arange(3040))
    lo, la = np.radians(lon), np.radians(lat)
    pts = 6_371_000.0 * np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    for i in range(3040):
        dist = np.linalg.norm(pts - pts[i], axis=1)
        dist[i] = np.inf
        near = np.flatnonzero(dist <= 200.0)
        truth = near[np.argsort(dist[near], kind="stable")][:8]
        assert np.allclose(dist[found[i]], dist[truth], atol=1e-6), i  # same distances, nearest first
    assert sum(len(f) == 8 for f in found) > 3000 and sum(len(f) < 8 for f in found) > 0


def test_bad_settings_are_refused():
    for kw in (dict(radius_m=1.0), dict(radius_m=float("nan")), dict(max_neighbours=0), dict(max_neighbours=2.5)):
        with pytest.raises(OptionError, match="place fusion"):
            PlaceNeighbours([0.0], [0.0], **kw)


def test_weight_zero_is_the_plain_gated_score_and_corroborated_items_rise():
    rng = np.random.default_rng(0)
    cos = rng.uniform(-1, 1, (3, 5))
    gates = rng.uniform(0, 1, (3, 5))
    neighbours = [np.array([1, 2]), np.array([0]), np.array([0]), np.array([], np.int64), np.array([], np.int64)]
    np.testing.assert_allclose(fused_scores(cos, gates, neighbours, weight=0.0), gates * cos)
    # items 0 and 3 match a query equally; 0's neighbours match it too, 3 stands alone, 4 matches less
    cos = np.array([[0.6, 0.5, 0.55, 0.6, 0.5]])
    gates = np.ones((1, 5))
    fused = fused_scores(cos, gates, neighbours, weight=0.5)[0]
    assert fused[3] == 0.6  # alone: its own score
    assert fused[0] < fused[3]  # neighbours that match less pull down
    cos[0, 1:3] = 0.9
    fused = fused_scores(cos, gates, neighbours, weight=0.5)[0]
    assert fused[0] > fused[3] > fused[4]
    assert fused_scores(cos, gates, [neighbours[3]], columns=[3]).shape == (1, 1)
