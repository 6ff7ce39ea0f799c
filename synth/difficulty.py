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
    "easy": Difficulty(
        name="easy", pitch=(30, 42), heading_jitter=60, hfov=(60, 75), target_frac=(0.3, 0.6), offset=0.25,
        sun_change=(20, 50), season_change=0.25, vehicle_keep=0.6, sat_off_nadir=4, distractors=1, sensor=0.6,
        min_visible=0.75),
    "medium": Difficulty(
        name="medium", pitch=(30, 55), heading_jitter=180, hfov=(55, 75), target_frac=(0.2, 0.55), offset=0.45,
        sun_change=(35, 110), season_change=0.5, vehicle_keep=0.3, sat_off_nadir=8, distractors=2, sensor=1.0,
        min_visible=0.6),
    "hard": Difficulty(
        name="hard", pitch=(35, 60), heading_jitter=180, hfov=(50, 75), target_frac=(0.12, 0.45), offset=0.6,
        sun_change=(60, 160), season_change=0.8, vehicle_keep=0.0, sat_off_nadir=12, distractors=4, sensor=1.3,
        min_visible=0.45),
}


def get_difficulty(name: str | Difficulty) -> Difficulty:
    if isinstance(name, Difficulty):
        return name
    try:
        return DIFFICULTIES[name]
    except KeyError:
        from smgeo_synth.options import SynthOptionError

        raise SynthOptionError(f"unknown difficulty {name!r}; choose one of {', '.join(DIFFICULTIES)}") from None
