"""Options of the corpus generator and their validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from smgeo_geo.errors import OptionError

from smgeo_retrieval.corpus_io import PLATFORMS

GENERATOR_VERSION = "1.0.0"  # bump when the same seed + options give other files
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024
MAX_VIEWS = 16  # drone or ground views per place
MAX_PLACES = 200_000


@dataclass(frozen=True)
class CorpusOptions:
    """What one corpus looks like. ``image_size``: side of every (square) image in pixels;
    ``drone_views`` / ``ground_views``: items per place on those platforms (one satellite
    tile always); ``splits``: train, val, test fractions of the places."""

    places: int
    seed: int = 0
    image_size: int = 128
    drone_views: int = 3
    ground_views: int = 2
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)

    @property
    def views_per_place(self) -> int:
        return 1 + self.drone_views + self.ground_views

    @property
    def platforms(self) -> list[str]:
        counts = {"satellite": 1, "drone": self.drone_views, "ground": self.ground_views}
        return [p for p in PLATFORMS if counts[p] > 0]

    def validated(self) -> "CorpusOptions":
        """Self, or :class:`OptionError` naming the first bad option."""
        def whole(name: str, value, lo: int, hi: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise OptionError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")

        whole("places", self.places, 1, MAX_PLACES)
        whole("seed", self.seed, 0, 2**63 - 1)
        whole("image size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        whole("drone views", self.drone_views, 0, MAX_VIEWS)
        whole("ground views", self.ground_views, 0, MAX_VIEWS)
        s = tuple(self.splits)
        if len(s) != 3 or any(not isinstance(f, (int, float)) or not math.isfinite(f) or f < 0 for f in s) \
                or sum(s) <= 0:
            raise OptionError(f"splits must be three non-negative fractions (train, val, test) with a positive "
                              f"sum, got {self.splits!r}")
        return CorpusOptions(self.places, self.seed, self.image_size, self.drone_views, self.ground_views,
                             tuple(float(f) for f in s))  # type: ignore[arg-type]
