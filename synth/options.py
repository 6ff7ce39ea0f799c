"""Generator options, classes and their validation."""

from __future__ import annotations

from dataclasses import dataclass

from smgeo_geo.errors import OptionError

GENERATOR_VERSION = "1.0.0"

# OpenStreetMap-like CVOGL classes the generator plants, with their default share of pairs
# (CVOGL is dominated by buildings).
CLASS_WEIGHTS: dict[str, float] = {
    "building": 0.22,
    "building_house": 0.18,
    "junction_roundabout": 0.07,
    "sport_basketball": 0.07,
    "sport_tennis": 0.07,
    "sport_soccer": 0.07,
    "man_made_bridge": 0.07,
    "leisure_stadium": 0.05,
    "amenity_parking": 0.10,
    "leisure_swimming_pool": 0.10,
}
CLASSES = tuple(CLASS_WEIGHTS)
# smallest satellite tile (metres) a class fits in, with its surroundings
MIN_EXTENT: dict[str, float] = {"leisure_stadium": 280.0, "sport_soccer": 170.0, "man_made_bridge": 140.0}


class SynthOptionError(OptionError):
    """An option of the synthetic-data generator is invalid."""


def _hw(size, what: str) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(not isinstance(v, int) or v < 32 or v > 4096 for v in hw):
        raise SynthOptionError(f"{what} must be an int or (height, width) between 32 and 4096, got {size!r}")
    return hw  # type: ignore[return-value]


@dataclass(frozen=True)
class PairOptions:
    """What one pair looks like. ``ground_resolution``: satellite metres per pixel (None: the
    CVOGL tile width of 512 m spread over ``reference_size`` pixels, 0.5 m/px at 1024)."""

    reference_size: int = 1024
    query_size: tuple[int, int] = (256, 256)
    ground_resolution: float | None = None
    difficulty: str = "medium"
    class_weights: dict | None = None  # None: CLASS_WEIGHTS, less the classes too big for the tile

    @property
    def resolution(self) -> float:
        return self.ground_resolution if self.ground_resolution else 512.0 / self.reference_size

    @property
    def extent(self) -> float:
        return self.reference_size * self.resolution

    def validated(self) -> "PairOptions":
        from smgeo_synth.difficulty import get_difficulty

        if not isinstance(self.reference_size, int) or not 64 <= self.reference_size <= 8192:
            raise SynthOptionError(f"reference size must be an int in [64, 8192], got {self.reference_size!r}")
        q = _hw(self.query_size, "query size")
        if self.ground_resolution is not None and not 0.05 <= self.ground_resolution <= 5:
            raise SynthOptionError(f"ground resolution must be in [0.05, 5] m/px, got {self.ground_resolution}")
        if not 96 <= self.extent <= 2048:
            raise SynthOptionError(f"satellite tile width reference_size x ground_resolution = {self.extent:g} m; "
                                   f"it must be in [96, 2048] m")
        if abs(self.extent * 10 - round(self.extent * 10)) > 1e-6:
            raise SynthOptionError(f"tile width {self.extent} m must be a multiple of 0.1 m (it is written in "
                                   f"the satellite file names)")
        get_difficulty(self.difficulty)
        fits = lambda c: self.extent >= MIN_EXTENT.get(c, 0.0)  # noqa: E731
        if self.class_weights is None:
            weights = {c: w for c, w in CLASS_WEIGHTS.items() if fits(c)}
        else:
            weights = dict(self.class_weights)
            unknown = set(weights) - set(CLASSES)
            if unknown or not weights or any(not w >= 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise SynthOptionError(f"class weights must be non-negative weights of {', '.join(CLASSES)} "
                                       f"(got {weights!r})")
            too_big = sorted(c for c, w in weights.items() if w > 0 and not fits(c))
            if too_big:
                raise SynthOptionError(f"a {self.extent:g} m tile is too small for {', '.join(too_big)} "
                                       f"(needs {max(MIN_EXTENT[c] for c in too_big):g} m)")
        return PairOptions(self.reference_size, q, self.ground_resolution, self.difficulty, weights)
