"""Checks of options and ids that need no model (this module does not import torch), so a
command can refuse bad input, or recognise finished work, before the model loads."""

from __future__ import annotations

import hashlib
from pathlib import Path

from smgeo_geo.errors import OptionError


def check_top_k(top_k) -> int:
    """``top_k`` as a positive int (:class:`OptionError` naming the option otherwise)."""
    try:
        k = int(top_k)
    except (TypeError, ValueError):
        k = 0
    if isinstance(top_k, bool) or k != top_k or not 1 <= k <= 100:
        raise OptionError(f"top-k must be a whole number from 1 to 100, got {top_k!r}")
    return k


def model_id(weights: Path) -> str:
    """``NAME@sha256[:10]`` of a checkpoint's ``.safetensors`` file: names the exact weights."""
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:10]
    return f"{Path(weights).name.removesuffix('.safetensors')}@{digest}"
