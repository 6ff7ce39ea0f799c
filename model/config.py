"""The one configuration type of the SMGeo network, and its named configurations.

``SMGeoConfig`` is a flat, JSON-serialisable dataclass. Named configurations:

* ``"paper"``: the paper's model (Swin-T backbone, GMoE with 6 experts, top-2, in the
  even-indexed blocks of stages 1-3, Table IV's best row). 33.3 M parameters.
* ``"tiny"``: a small model of the same design that trains on 2 CPU cores.

Ablation rows of the paper (Tables II-IV) are the paper config with one switch changed,
see :func:`ablation_configs`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from smgeo_model.errors import ConfigError

Placement = Literal["none", "even", "all"]


# field -> (kind, count, low, high, low_inclusive): kind "int" (whole numbers, not booleans) or
# "float" (finite numbers); count None for a scalar, else a sequence of that many; values in
# [low, high] (low excluded when low_inclusive is False). Upper bounds only stop absurd sizes
# (a checkpoint JSON edited by hand) from allocating gigabytes before the weights are compared.
_FIELD_RULES: dict[str, tuple[str, int | None, float, float, bool]] = {
    "embed_dim": ("int", None, 1, 1024, True),
    "depths": ("int", 4, 1, 64, True),
    "num_heads": ("int", 4, 1, 256, True),
    "window_size": ("int", None, 1, 64, True),
    "mlp_ratio": ("float", None, 0, 16, False),
    "drop_path_rate": ("float", None, 0, 0.999, True),
    "moe_num_experts": ("int", None, 1, 64, True),
    "moe_top_k": ("int", None, 1, 64, True),
    "moe_grid": ("int", 2, 1, 64, True),
    "moe_placement": ("str", 4, 0, 0, True),
    "moe_expert_ratio": ("float", None, 0, 4, False),
    "moe_gate_noise": ("float", None, 0, 100, True),
    "neck_dim": ("int", None, 1, 4096, True),
    "fusion_groups": ("int", None, 1, 4096, True),
    "head_dim": ("int", None, 1, 4096, True),
    "loss_alpha": ("float", None, 0, 1e6, True),
    "loss_mu": ("float", None, 0, 1e6, True),
    "loss_lambda": ("float", None, 0, 1e6, True),
    "focal_gamma": ("float", None, 0, 100, True),
    "focal_beta": ("float", None, 0, 100, True),
    "heatmap_sigma_scale": ("float", None, 0, 100, False),
    "heatmap_sigma_min": ("float", None, 0, 1e4, True),
    "query_size": ("int", 2, 32, 8192, True),
    "reference_size": ("int", 2, 32, 8192, True),
}


def _expected(kind: str, count: int | None, low: float, high: float, low_inclusive: bool) -> str:
    if kind == "str":
        return f"a list of {count} strings"
    what = "whole number" if kind == "int" else "number"
    bound = f"from {low:g} to {high:g}" if low_inclusive else f"greater than {low:g} and at most {high:g}"
    return f"a {what} {bound}" if count is None else f"a list of {count} {what}s, each {bound}"


def _checked(name: str, value: Any, spec: tuple, config_name: str) -> Any:
    """``value`` of field ``name`` checked against ``spec`` (see ``_FIELD_RULES``): sequences as
    tuples, float fields as floats; :class:`ConfigError` naming the field otherwise."""
    kind, count, low, high, low_inclusive = spec

    def ok(v: Any) -> bool:
        if kind == "str":
            return isinstance(v, str)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind == "int" and not isinstance(v, int)):
            return False
        return math.isfinite(v) and (low <= v if low_inclusive else low < v) and v <= high

    items = value if count is not None else (value,)
    if (count is not None and (not isinstance(value, (list, tuple)) or len(value) != count)) or not all(
            ok(v) for v in items):
        raise ConfigError(f"field {name} must be {_expected(*spec)}, got {value!r} (config {config_name!r})")
    if kind == "float":
        return float(value)
    return tuple(value) if count is not None and not isinstance(value, tuple) else value


@dataclass(frozen=True)
class SMGeoConfig:
    """All settings of an SMGeo network. Sizes are in pixels of the model's input.

    Backbone (Swin, shared by both views):
        embed_dim, depths, num_heads, window_size, mlp_ratio, drop_path_rate.
    Grid-level MoE (eqs. 7-9):
        moe_num_experts: experts per MoE layer (shared by query and reference).
        moe_top_k: experts each grid cell uses.
        moe_grid: (g_h, g_w) cells the feature map is cut into for routing.
        moe_placement: per stage, "none", "even" (even-indexed blocks) or "all".
        moe_expert_ratio: expert hidden width as a fraction of the dense MLP's hidden
            width (0.25: each expert is a quarter slice of the Swin MLP, see model/moe.py).
        moe_gate_noise: std of Gaussian noise added to gate logits while training.
    Prompt, fusion and head:
        click_in_backbone: also feed the DetGeo click map as a 4th input channel of the
            query (the published code's design); makes query features click-dependent,
            so they can no longer be cached across clicks.
        neck_dim: channels of the stride-16 feature map shared by fusion and head.
        fusion_groups: channel groups of the query-guided fusion (1 = eq. 10 exactly).
        head_dim: channels of the head's two 3x3 conv layers (eq. 11).
    Loss (eqs. 18-22): loss_alpha, loss_mu, loss_lambda, focal_gamma, focal_beta,
        heatmap_sigma_scale (Gaussian sigma = scale * sqrt(w*h) of the box in cells),
        heatmap_sigma_min (cells).
    Default input sizes (used by predictors and training, not fixed by the weights):
        query_size, reference_size as (height, width), multiples of 32.
    """

    name: str = "paper"
    # backbone
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.2
    # grid-level MoE
    moe_num_experts: int = 6
    moe_top_k: int = 2
    moe_grid: tuple[int, int] = (8, 8)
    moe_placement: tuple[Placement, ...] = ("none", "even", "even", "even")
    moe_expert_ratio: float = 0.25
    moe_gate_noise: float = 0.0
    # prompt, fusion, head
    click_in_backbone: bool = False
    neck_dim: int = 256
    fusion_groups: int = 1
    head_dim: int = 256
    # loss
    loss_alpha: float = 0.9
    loss_mu: float = 1.1
    loss_lambda: float = 0.015
    focal_gamma: float = 2.0
    focal_beta: float = 4.0
    heatmap_sigma_scale: float = 1.0 / 6.0
    heatmap_sigma_min: float = 0.8
    # default input sizes (height, width)
    query_size: tuple[int, int] = (256, 256)
    reference_size: tuple[int, int] = (1024, 1024)
    extra: dict[str, Any] = field(default_factory=dict)

    OUTPUT_STRIDE = 16  # heatmap / box map stride in reference pixels (see model/head.py)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"field name must be a non-empty string, got {self.name!r}")
        for name, spec in _FIELD_RULES.items():
            value = _checked(name, getattr(self, name), spec, self.name)
            if value is not getattr(self, name):
                object.__setattr__(self, name, value)  # lists -> tuples, ints -> floats where floats are meant
        if not isinstance(self.click_in_backbone, bool):
            self._fail("click_in_backbone", "true or false")
        if not isinstance(self.extra, dict):
            self._fail("extra", "an object (dict)")
        for p in self.moe_placement:
            if p not in ("none", "even", "all"):
                self._fail("moe_placement", "4 entries, each 'none', 'even' or 'all'", self.moe_placement)
        if not 1 <= self.moe_top_k <= self.moe_num_experts:
            self._fail("moe_top_k", f"in 1..moe_num_experts={self.moe_num_experts}")
        for i, (dim, heads) in enumerate(zip(self.stage_dims(), self.num_heads)):
            if dim % heads:
                self._fail("num_heads", f"divisors of the stage widths {list(self.stage_dims())} "
                                        f"(stage {i}: {dim} channels, {heads} heads)")
        if self.neck_dim % self.fusion_groups:
            self._fail("neck_dim", f"divisible by fusion_groups={self.fusion_groups}")
        for label in ("query_size", "reference_size"):
            if any(s % 32 for s in getattr(self, label)):
                self._fail(label, "(height, width) multiples of 32")

    def _fail(self, name: str, expected: str, value: Any = None) -> None:
        value = getattr(self, name) if value is None else value
        raise ConfigError(f"field {name} must be {expected}, got {value!r} (config {self.name!r})")

    # -- derived -------------------------------------------------------------------
    def moe_blocks(self, stage: int) -> tuple[int, ...]:
        """Indices of the blocks of ``stage`` whose MLP is a GMoE."""
        placement, depth = self.moe_placement[stage], self.depths[stage]
        if placement == "none" or self.moe_num_experts <= 1:
            return ()
        return tuple(range(0, depth, 2)) if placement == "even" else tuple(range(depth))

    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    # -- (de)serialisation ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SMGeoConfig":
        """The config of a JSON object (lists become tuples); :class:`ConfigError` naming the
        first unknown or invalid field."""
        if not isinstance(data, dict):
            raise ConfigError(f"config must be an object of fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"invalid config: {exc}") from None

    def replace(self, **changes: Any) -> "SMGeoConfig":
        return dataclasses.replace(self, **changes)

    def diff(self, other: "SMGeoConfig") -> dict[str, tuple[Any, Any]]:
        """Fields that differ, as ``{field: (self_value, other_value)}``."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


PAPER = SMGeoConfig()

TINY = SMGeoConfig(
    name="tiny",
    embed_dim=32,
    depths=(2, 2, 2, 2),
    num_heads=(1, 2, 4, 8),
    drop_path_rate=0.05,
    moe_num_experts=4,
    moe_grid=(4, 4),
    neck_dim=64,
    fusion_groups=4,
    head_dim=64,
    query_size=(128, 128),
    reference_size=(256, 256),
)

CONFIGS: dict[str, SMGeoConfig] = {"paper": PAPER, "tiny": TINY}


def get_config(config: "str | SMGeoConfig") -> SMGeoConfig:
    """Return a named configuration, or ``config`` itself if it already is one."""
    if isinstance(config, SMGeoConfig):
        return config
    try:
        return CONFIGS[config]
    except KeyError:
        raise ConfigError(f"unknown config {config!r}; choose one of {sorted(CONFIGS)}") from None


def ablation_configs(table: Literal["II", "III", "IV"]) -> dict[str, SMGeoConfig]:
    """The paper config with the switch that a row of Table II, III or IV changes.

    Table II varies the number of experts (top-2), Table III the top-k (6 experts),
    Table IV where GMoE is inserted per stage.
    """
    if table == "II":
        return {f"experts={e}": PAPER.replace(name=f"paper-E{e}", moe_num_experts=e) for e in range(2, 9)}
    if table == "III":
        return {f"top-k={k}": PAPER.replace(name=f"paper-k{k}", moe_top_k=k) for k in range(1, 6)}
    if table == "IV":
        rows: list[tuple[Placement, ...]] = [
            ("none", "none", "none", "none"),
            ("none", "none", "none", "even"),
            ("none", "none", "even", "even"),
            ("none", "even", "even", "even"),
            ("even", "even", "even", "even"),
            ("all", "all", "all", "all"),
        ]
        return {"/".join(r): PAPER.replace(name="paper-" + "-".join(r), moe_placement=r) for r in rows}
    raise ConfigError(f"unknown ablation table {table!r}; choose II, III or IV")
