"""Place fusion: the views around an item corroborate it (see ``docs/retrieval.md``).

A description speaks of a place (a target and its neighbours), and an index holds several views
of most places: a satellite tile, drone photos, street photos. An item whose neighbours (items
within :data:`PLACE_RADIUS_M` of it, any platform) also match the description is more likely
the place described than one that matches alone. Fused score of query ``q`` and item ``x``::

    s'(q, x) = g_p(x)(q) * [(1 - w) c(q, x) + w * mean_{y in N(x)} c(q, y)]

with ``c(q, y) = cos(t_p(y)(q), v_p(y)(y))`` the platform expert's cosine (not gated), ``g`` the
gate, ``N(x)`` the neighbours of ``x`` (itself excluded, the :data:`MAX_NEIGHBOURS` nearest;
``s' = s`` for an item alone) and
``w`` = :data:`PLACE_WEIGHT`. ``w = 0`` is the plain score ``s(q, x) = g_p(x)(q) c(q, x)``.

Positions: WGS84 lon/lat degrees of each item's centre (footprint centre, or the camera's
position for a view without footprint), as the index stores them.
"""

from __future__ import annotations

import numpy as np

from smgeo_geo.errors import OptionError

PLACE_RADIUS_M = 200.0  # a description's reach: its target, the neighbours it names, street views of them
PLACE_WEIGHT = 0.5  # chosen on the validation split of the training corpus (docs/retrieval.md), not the test
MAX_NEIGHBOURS = 32  # nearest neighbours kept per item: bounds the work of a search in a dense index
EARTH_RADIUS_M = 6_371_000.0
MIN_RADIUS_M = 10.0  # with CELLS_PER_RADIUS, keeps a cell index within 21 bits per axis
CELLS_PER_RADIUS = 3  # grid cells of radius / 3: fewer candidates to measure than cells of one radius


def _ecef(lon, lat) -> np.ndarray:
    """Points on a sphere of the Earth's mean radius, metres ``(N, 3)``: chord distances are
    ground distances to a few millimetres at place scale."""
    lo, la = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return EARTH_RADIUS_M * np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


class PlaceNeighbours:
    """Items within ``radius_m`` of each other (the ``max_neighbours`` nearest of them), found
    through a grid of ``radius_m`` cells on the sphere's 3D coordinates (a sort and binary
    searches: no per-item Python loop to build, fast to query for a few hundred items among
    millions)."""

    def __init__(self, lon, lat, radius_m: float = PLACE_RADIUS_M, max_neighbours: int = MAX_NEIGHBOURS) -> None:
        if not radius_m >= MIN_RADIUS_M:
            raise OptionError(f"place fusion radius must be at least {MIN_RADIUS_M:g} m, got {radius_m!r}")
        if isinstance(max_neighbours, bool) or not isinstance(max_neighbours, int) or max_neighbours < 1:
            raise OptionError(f"place fusion max_neighbours must be a positive integer, got {max_neighbours!r}")
        self.radius_m = float(radius_m)
        self.max_neighbours = max_neighbours
        self.points = _ecef(lon, lat)
        cell = self._cell = self.radius_m / CELLS_PER_RADIUS
        self._cells = np.floor(self.points / cell).astype(np.int64)
        self._order = np.argsort(self._key(self._cells), kind="stable")
        self._sorted = self._key(self._cells)[self._order]
        # the cells around an item's cell that can hold a point within the radius of it
        span = np.arange(-CELLS_PER_RADIUS - 1, CELLS_PER_RADIUS + 2)
        offsets = np.array(np.meshgrid(span, span, span, indexing="ij")).reshape(3, -1).T
        gap = np.clip(np.abs(offsets) - 1, 0, None) * cell  # nearest distance between the two cells
        self._offsets = offsets[np.sqrt((gap ** 2).sum(1)) <= self.radius_m]
        self._block = offsets[np.abs(offsets).max(axis=1) <= 1]  # the row's cell and the 26 around it

    @staticmethod
    def _key(cells: np.ndarray) -> np.ndarray:
        c = cells + (1 << 20)  # |cell| <= EARTH_RADIUS_M / (MIN_RADIUS_M / 3) < 2^20: 21 bits per axis
        return (c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]

    def of(self, rows) -> list[np.ndarray]:
        """For each item row in ``rows``: the rows of the other items within the radius, nearest
        first, at most ``max_neighbours``.

        Dense indexes first look in the cells next to each row's own (the block of 3 x 3 x 3):
        an item outside that block is farther than one cell from the row, so a row with
        ``max_neighbours`` items within one cell (and the radius) has its answer there; only the
        other rows look through every cell the radius reaches."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if not len(rows):
            return []
        out: list[np.ndarray | None] = [None] * len(rows)
        near = min(self._cell, self.radius_m) ** 2
        owner, cand, squared = self._candidates(rows, self._block)
        full = np.bincount(owner[squared <= near], minlength=len(rows)) >= self.max_neighbours
        for i, found in zip(np.flatnonzero(full), self._nearest(owner, cand, squared, np.flatnonzero(full))):
            out[i] = found
        rest = np.flatnonzero(~full)
        if len(rest):
            owner, cand, squared = self._candidates(rows[rest], self._offsets)
            for i, found in zip(rest, self._nearest(owner, cand, squared, np.arange(len(rest)))):
                out[i] = found
        return out

    def _candidates(self, rows: np.ndarray, offsets: np.ndarray):
        """Every (position in ``rows``, other item, squared distance) pair of the items in the
        cells at ``offsets`` around each row's cell that lie within the radius, without a Python
        loop."""
        keys = self._key((self._cells[rows][:, None, :] + offsets[None]).reshape(-1, 3))
        lo = np.searchsorted(self._sorted, keys, side="left")
        lengths = np.searchsorted(self._sorted, keys, side="right") - lo
        owner = np.repeat(np.repeat(np.arange(len(rows)), len(offsets)), lengths)
        first = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        cand = self._order[first + np.arange(len(first))]
        d = self.points[cand] - self.points[rows[owner]]
        squared = np.einsum("ij,ij->i", d, d)
        keep = (squared <= self.radius_m ** 2) & (cand != rows[owner])
        return owner[keep], cand[keep], squared[keep]

    def _nearest(self, owner: np.ndarray, cand: np.ndarray, squared: np.ndarray, which: np.ndarray) -> list[np.ndarray]:
        """For each position in ``which``: its candidates, nearest first, at most ``max_neighbours``."""
        # by owner, then nearest first: one sort on owner x (more than any squared distance) + squared distance
        order = np.argsort(owner * (4.0 * self.radius_m ** 2) + squared, kind="stable")
        owner, cand = owner[order], cand[order]
        starts = np.searchsorted(owner, np.arange(owner.max() + 1 if len(owner) else 0))
        rank = np.arange(len(owner)) - starts[owner] if len(owner) else np.zeros(0, np.int64)
        owner, cand = owner[rank < self.max_neighbours], cand[rank < self.max_neighbours]
        lo, hi = np.searchsorted(owner, which, side="left"), np.searchsorted(owner, which, side="right")
        return [cand[a:b] for a, b in zip(lo, hi)]


def fused_scores(cosines: np.ndarray, gates: np.ndarray, neighbours: list[np.ndarray],
                 weight: float = PLACE_WEIGHT, columns=None) -> np.ndarray:
    """Fused scores ``[Q, M]`` of the items ``columns`` (default all ``N``).

    ``cosines``: ``[Q, N]`` expert cosines ``c(q, y)`` of every item; ``gates``: ``[Q, N]`` the
    gate weight of each item's platform for each query; ``neighbours``: per column, the rows of
    its neighbours (:meth:`PlaceNeighbours.of`); ``weight``: ``w`` in the module docstring."""
    cols = np.arange(cosines.shape[1]) if columns is None else np.asarray(columns, np.int64)
    own = cosines[:, cols]
    around = np.stack([cosines[:, n].mean(axis=1) if len(n) else cosines[:, c]
                       for c, n in zip(cols, neighbours)], axis=1) if len(cols) else own
    return gates[:, cols] * ((1.0 - weight) * own + weight * around)


__all__ = ["MAX_NEIGHBOURS", "PLACE_RADIUS_M", "PLACE_WEIGHT", "PlaceNeighbours", "fused_scores"]
