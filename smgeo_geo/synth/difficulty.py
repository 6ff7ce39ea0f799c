"""Difficulty profiles: how far the drone capture departs from the satellite one."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Difficulty:
    """Ranges are (low, high), angles in degrees.

    pitch: drone optical axis off nadir; heading_jitter: largest heading away from north
    (180 = any); hfov: drone horizontal field of view; target_frac: the target's largest
    extent as a share of the query width; offset: largest target offset from the query centre
    (share of the half-width); sun_change: azimuth difference of the two captures' sun;
    season_change: largest season difference (0 lush .. 1 dry/autumn); vehicle_keep: share of
    parked vehicles unchanged; sat_off_nadir: largest satellite off-nadir angle (roof lean);
    distractors: extra look-alikes of the target class planted in the tile; sensor: strength
    of blur / noise / colour differences; min_visible: least visible (unoccluded) share of
    the target in the query.
    """

    name: str
    pitch: tuple[float, float]
    heading_jitter: float
    hfov: tuple[float, float]
    target_frac: tuple[float, float]
    offset: float
    sun_change: tuple[float, float]
    season_change: float
    vehicle_keep: float
    sat_off_nadir: float
    distractors: int
    sensor: float
    min_visible: float

    def as_dict(self) -> dict:
        return asdict(self)


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty("easy", (30, 42), 60, (60, 75), (0.3, 0.6), 0.25, (20, 50), 0.25, 0.6, 4, 1, 0.6, 0.75),
    "medium": Difficulty("medium", (30, 55), 180, (55, 75), (0.2, 0.55), 0.45, (35, 110), 0.5, 0.3, 8, 2, 1.0,
                         0.6),
    "hard": Difficulty("hard", (35, 60), 180, (50, 75), (0.12, 0.45), 0.6, (60, 160), 0.8, 0.0, 12, 4, 1.3, 0.45),
}


def get_difficulty(name: str | Difficulty) -> Difficulty:
    if isinstance(name, Difficulty):
        return name
    try:
        return DIFFICULTIES[name]
    except KeyError:
        from smgeo_geo.synth.options import SynthOptionError

        raise SynthOptionError(f"unknown difficulty {name!r}; choose one of {', '.join(DIFFICULTIES)}") from None
