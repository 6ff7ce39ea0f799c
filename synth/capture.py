"""Capture conditions (sun, season, crops, water, parked vehicles) and the materials palette.

The scene is rendered twice under two :class:`Capture` s: A (satellite) and B (drone, at
another date and hour). Everything that changes between the two lives here: sun azimuth /
elevation (so shadows move), vegetation and crop colour (season), water colour, which
parking stalls and road lanes hold vehicles (and their colours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smgeo_synth.scene import Scene

# material -> (rgb, amplitude of large (~40 m), mid (~3 m) and per-pixel grain noise, colour spread)
MATERIALS: dict[str, tuple[tuple[float, float, float], float, float, float, float]] = {
    "grass": ((0.34, 0.42, 0.23), 0.10, 0.10, 0.07, 0.10),
    "lawn": ((0.37, 0.48, 0.25), 0.05, 0.07, 0.05, 0.08),
    "pitch": ((0.33, 0.50, 0.24), 0.02, 0.03, 0.03, 0.04),
    "turf": ((0.24, 0.52, 0.27), 0.01, 0.02, 0.03, 0.05),
    "soil": ((0.48, 0.40, 0.31), 0.08, 0.10, 0.08, 0.10),
    "field": ((0.40, 0.45, 0.25), 0.06, 0.06, 0.06, 0.0),
    "forest_floor": ((0.22, 0.27, 0.15), 0.10, 0.10, 0.08, 0.05),
    "asphalt": ((0.29, 0.29, 0.30), 0.06, 0.05, 0.05, 0.12),
    "asphalt_old": ((0.42, 0.41, 0.40), 0.06, 0.06, 0.06, 0.08),
    "concrete": ((0.67, 0.66, 0.63), 0.04, 0.04, 0.04, 0.06),
    "sidewalk": ((0.60, 0.58, 0.55), 0.03, 0.04, 0.04, 0.05),
    "plaza": ((0.70, 0.65, 0.58), 0.03, 0.04, 0.05, 0.08),
    "gravel": ((0.62, 0.58, 0.51), 0.05, 0.06, 0.08, 0.08),
    "dirt_track": ((0.57, 0.50, 0.40), 0.06, 0.07, 0.08, 0.06),
    "sand": ((0.80, 0.74, 0.58), 0.04, 0.04, 0.05, 0.05),
    "water": ((0.14, 0.22, 0.24), 0.05, 0.05, 0.02, 0.05),
    "pool": ((0.36, 0.72, 0.80), 0.01, 0.02, 0.02, 0.08),
    "deck": ((0.78, 0.74, 0.66), 0.02, 0.03, 0.04, 0.06),
    "court_green": ((0.31, 0.50, 0.37), 0.01, 0.02, 0.02, 0.06),
    "court_blue": ((0.22, 0.38, 0.58), 0.01, 0.02, 0.02, 0.06),
    "court_clay": ((0.72, 0.41, 0.27), 0.02, 0.03, 0.03, 0.05),
    "court_orange": ((0.80, 0.50, 0.28), 0.01, 0.02, 0.02, 0.06),
    "court_grey": ((0.52, 0.53, 0.53), 0.02, 0.02, 0.03, 0.06),
    "court_red": ((0.60, 0.28, 0.24), 0.01, 0.02, 0.02, 0.06),
    "track": ((0.68, 0.34, 0.26), 0.01, 0.02, 0.03, 0.06),
    "rubber": ((0.62, 0.40, 0.32), 0.02, 0.03, 0.03, 0.10),
    "hedge": ((0.17, 0.27, 0.13), 0.05, 0.08, 0.10, 0.10),
    "yard": ((0.55, 0.54, 0.51), 0.05, 0.05, 0.05, 0.08),
}
SEASONAL = {"grass", "lawn", "pitch", "hedge", "forest_floor"}

MARK_COLOURS = {
    "white": (0.93, 0.93, 0.91),
    "yellow": (0.92, 0.78, 0.24),
    "lane_blue": (0.08, 0.22, 0.52),
    "net": (0.12, 0.12, 0.12),
    "dark": (0.20, 0.20, 0.20),
}

# crop stages: colour and contrast of the rows
FIELD_STAGES = [
    ((0.30, 0.44, 0.19), 0.10),  # green crop
    ((0.43, 0.50, 0.28), 0.28),  # young crop, soil between rows
    ((0.73, 0.65, 0.40), 0.06),  # ripe / yellow
    ((0.70, 0.65, 0.51), 0.10),  # stubble
    ((0.52, 0.42, 0.31), 0.06),  # bare soil
    ((0.39, 0.31, 0.23), 0.30),  # ploughed
    ((0.54, 0.56, 0.30), 0.08),  # hay meadow
]

CAR_COLOURS = np.array([
    (0.88, 0.88, 0.86), (0.90, 0.90, 0.90), (0.10, 0.10, 0.11), (0.16, 0.16, 0.18), (0.55, 0.56, 0.57),
    (0.70, 0.71, 0.72), (0.40, 0.41, 0.43), (0.62, 0.10, 0.10), (0.14, 0.22, 0.45), (0.30, 0.32, 0.28),
])
CAR_P = np.array([0.15, 0.12, 0.13, 0.08, 0.14, 0.12, 0.10, 0.06, 0.06, 0.04])


@dataclass
class Capture:
    """One acquisition of the scene: sun (degrees; azimuth clockwise from north), season in
    [0, 1] (0 lush, 1 dry/autumn), ambient share of the light, and capture-specific state."""

    sun_azimuth: float
    sun_elevation: float
    season: float
    ambient: float
    water_rgb: tuple[float, float, float]
    field_key: float
    pool_tint: float
    bit: int  # presence bit of this capture (see scene.A_ONLY / B_ONLY)
    vehicles: np.ndarray  # (N, 9): x, y, heading (rad), length, width, height, r, g, b
    # which parking slots are taken and by which colours (a later capture keeps some of them)
    slot_state: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)
    palette_cache: tuple | None = field(default=None, repr=False, compare=False)  # (scene, version, RGB table)

    @property
    def sun(self) -> np.ndarray:
        """Unit vector towards the sun in the scene frame (x east, y south, z up)."""
        az, el = math.radians(self.sun_azimuth), math.radians(self.sun_elevation)
        return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])

    def shadow_offset(self, height: float) -> np.ndarray:
        """Horizontal displacement (metres) of the shadow of a point ``height`` m up."""
        s = self.sun
        return -s[:2] / np.hypot(s[0], s[1]) * height / math.tan(math.radians(self.sun_elevation))

    def light(self, normals: np.ndarray) -> np.ndarray:
        """Brightness of surfaces with unit ``normals`` ``(N,3)`` relative to sunlit flat ground."""
        d = 1.0 - self.ambient
        flat = self.ambient + d * math.sin(math.radians(self.sun_elevation))
        return (self.ambient + d * np.clip(np.atleast_2d(normals) @ self.sun, 0, None)) / flat

    @property
    def shadow_factor(self) -> np.ndarray:
        """Per-channel multiplier of ground in shadow (sky-lit only: darker and bluer)."""
        d = 1.0 - self.ambient
        k = self.ambient / (self.ambient + d * math.sin(math.radians(self.sun_elevation)))
        return np.array([0.92, 0.98, 1.12]) * k

    def field_stage(self, var: float) -> tuple[np.ndarray, float]:
        """Crop stage of the field with variation ``var`` at this capture: (rgb, row contrast)."""
        weights = np.array([1.2 - self.season, 1.0 - 0.5 * self.season, 0.3 + self.season, 0.2 + self.season,
                            0.6, 0.3 + 0.7 * self.season, 0.6])
        u = (var * 7.31 + self.field_key) % 1.0
        i = int(np.searchsorted(np.cumsum(weights) / weights.sum(), u))
        rgb, contrast = FIELD_STAGES[min(i, len(FIELD_STAGES) - 1)]
        jitter = 1.0 + 0.08 * (((var * 13.7 + self.field_key * 3.1) % 1.0) - 0.5)
        return np.array(rgb) * jitter, contrast

    def material_rgb(self, material: str, var: float) -> np.ndarray:
        rgb = np.array(MATERIALS[material][0], dtype=np.float64)
        spread = MATERIALS[material][4]
        if material in SEASONAL:
            dry = np.array([0.56, 0.52, 0.36]) if material != "forest_floor" else np.array([0.35, 0.30, 0.20])
            rgb = rgb + (dry - rgb) * self.season * (0.8 if material == "pitch" else 1.0)
        elif material == "water":
            rgb = np.array(self.water_rgb)
        elif material == "pool":
            rgb = rgb * (1 + 0.12 * (self.pool_tint - 0.5))
        elif material == "field":
            return self.field_stage(var)[0]
        return rgb * (1 + spread * (2 * var - 1))

    def palette(self, materials: list[str], var: np.ndarray) -> np.ndarray:
        """``(N, 3)`` colours of N ground features (vectorised :meth:`material_rgb`)."""
        var = np.asarray(var, dtype=np.float64)
        out = np.empty((len(materials), 3))
        names = np.array(materials)
        for m in set(materials):
            rows = np.flatnonzero(names == m)
            v = var[rows]
            if m == "field":
                out[rows] = np.array([self.field_stage(float(x))[0] for x in v])
                continue
            base = self.material_rgb(m, 0.5)
            out[rows] = base[None] * (1 + MATERIALS[m][4] * (2 * v - 1))[:, None]
        return out

    def tree_rgb(self, var: np.ndarray) -> np.ndarray:
        """Canopy albedo ``(N,3)`` for trees of variation ``var`` (season turns some yellow/red)."""
        summer = np.array([0.17, 0.27, 0.12]) + np.outer(var - 0.5, [0.06, 0.08, 0.03])
        autumn_kind = np.floor((var * 17.0) % 3).astype(int)
        autumn = np.array([(0.55, 0.45, 0.15), (0.60, 0.30, 0.12), (0.30, 0.33, 0.14)])[autumn_kind]
        t = np.clip((self.season - 0.55) / 0.45, 0, 1) * (0.4 + 0.6 * ((var * 5.3) % 1.0))
        return summer + (autumn - summer) * t[:, None]


def sample_capture(rng: np.random.Generator, scene: Scene, bit: int, sun_azimuth: float, sun_elevation: float,
                   season: float, vehicle_keep: float = 0.0, reference: Capture | None = None) -> Capture:
    """Draw capture-specific state. ``vehicle_keep``: share of ``reference``'s parked vehicles
    still in place (0: an independent draw of every stall)."""
    water = np.array([0.13, 0.21, 0.24]) + rng.uniform(-1, 1) * np.array([0.05, 0.03, -0.03]) \
        + rng.uniform(0, 1) * np.array([0.07, 0.06, 0.01])
    slots = scene.slots
    occupied = rng.random(len(slots)) < slots[:, 6]
    colours = CAR_COLOURS[rng.choice(len(CAR_COLOURS), size=len(slots), p=CAR_P)]
    colours = colours * rng.uniform(0.92, 1.06, (len(slots), 1))
    if reference is not None and vehicle_keep > 0:
        keep = rng.random(len(slots)) < vehicle_keep
        ref_occ, ref_col = reference.slot_state
        occupied = np.where(keep, ref_occ, occupied)
        colours = np.where(keep[:, None], ref_col, colours)
    idx = np.flatnonzero(occupied)
    vehicles = np.c_[slots[idx, :2] + rng.normal(0, 0.15, (len(idx), 2)), slots[idx, 2] + rng.normal(0, 0.03, len(idx)),
                     slots[idx, 3:6], colours[idx]] if len(idx) else np.zeros((0, 9))
    cap = Capture(sun_azimuth, sun_elevation, season, float(rng.uniform(0.32, 0.45)), tuple(water),
                  float(rng.random()), float(rng.random()), bit, vehicles)
    cap.slot_state = (occupied, colours)
    return cap


def vehicle_corners(v: np.ndarray) -> np.ndarray:
    """Footprint corners ``(N, 4, 2)`` of vehicles ``v`` (rows as in :attr:`Capture.vehicles`)."""
    c, s = np.cos(v[:, 2]), np.sin(v[:, 2])
    ax, ay = c * v[:, 3] / 2, s * v[:, 3] / 2
    bx, by = -s * v[:, 4] / 2, c * v[:, 4] / 2
    x, y = v[:, 0], v[:, 1]
    return np.stack([np.c_[x - ax - bx, y - ay - by], np.c_[x + ax - bx, y + ay - by], np.c_[x + ax + bx, y + ay + by],
                     np.c_[x - ax + bx, y - ay + by]], 1)
