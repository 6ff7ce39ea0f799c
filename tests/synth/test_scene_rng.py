"""The scene builder's fast random draws are numpy's own draws (same values, same stream)."""

from __future__ import annotations

import numpy as np

from smgeo_synth.builder import SceneRng
from smgeo_synth.layout import RURAL_USES, URBAN_USES, _pick_use


def test_scene_rng_uniform_matches_numpy() -> None:
    bounds = np.random.default_rng(0)
    low = bounds.uniform(-500, 500, 20000) * 10.0 ** bounds.integers(-3, 3, 20000)
    high = low + bounds.uniform(0, 500, 20000) * 10.0 ** bounds.integers(-4, 3, 20000)
    ours, ref = SceneRng([3, 7919]), np.random.default_rng([3, 7919])
    for lo, hi in zip(low.tolist(), high.tolist()):
        assert ours.uniform(lo, hi) == ref.uniform(lo, hi)
    assert ours.uniform(4, 7.5) == ref.uniform(4, 7.5)
    assert ours.random() == ref.random()


def test_pick_use_matches_choice() -> None:
    ours, ref = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(2000):
        for uses, w in [(u, w) for _, u, w in URBAN_USES] + [RURAL_USES]:
            assert _pick_use(ours, uses, w) == uses[int(ref.choice(len(uses), p=np.array(w) / sum(w)))]
    assert ours.random() == ref.random()
