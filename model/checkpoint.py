"""The one place for checkpoint I/O.

* Project checkpoints are two files: ``NAME.safetensors`` (tensors) and ``NAME.json``
  (``{"format": "smgeo", "version": 1, "config": {...}, "metadata": {...}}``). Loading
  them never unpickles anything.
* Pretrained Swin-T weights (timm or Microsoft key names) load from ``.safetensors`` or
  from ``.pth``/``.pt``/``.bin`` with ``torch.load(weights_only=True)``, which refuses
  pickles that carry code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from smgeo_model.config import SMGeoConfig
from smgeo_model.errors import CheckpointError, ConfigError
from smgeo_model.fileio import atomic_path, write_text

FORMAT, VERSION = "smgeo", 1
BUNDLED_NAME = "smgeo_tiny_synth"


def bundled_checkpoint() -> Path:
    """Path of the demo model shipped in the package (``tiny`` trained on generated data)."""
    path = Path(__file__).parent / "weights" / f"{BUNDLED_NAME}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"the bundled demo model {path} is missing from this installation")
    return path


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (an :class:`~smgeo_model.SMGeo`) as safetensors + JSON config.

    Both files are written atomically (temporary file, then rename). Returns the
    ``.safetensors`` path.
    """
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    doc = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(), "metadata": metadata or {}}
    with atomic_path(weights, CheckpointError) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    write_text(meta_path, json.dumps(doc, indent=2, sort_keys=True), CheckpointError)
    return weights


def read_checkpoint_config(path: str | os.PathLike) -> tuple[SMGeoConfig, dict[str, Any]]:
    """The config and metadata stored beside a project checkpoint."""
    _, meta_path = checkpoint_paths(path)
    if not meta_path.is_file():
        raise CheckpointError(f"checkpoint config {meta_path} not found (expected beside the .safetensors file)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"checkpoint config {meta_path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "config" not in doc:
        raise CheckpointError(f"{meta_path} is not an SMGeo checkpoint config (missing format/config)")
    version = doc.get("version", VERSION)
    if isinstance(version, bool) or version != VERSION:
        raise CheckpointError(f"{meta_path}: field version must be {VERSION}, got {version!r} "
                              f"(written by another version of smgeo_model?)")
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{meta_path}: field metadata must be an object, got {metadata!r}")
    try:
        return SMGeoConfig.from_dict(doc["config"]), metadata
    except ConfigError as exc:
        raise CheckpointError(f"{meta_path}: {exc}") from None


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth/.pt/.bin`` file loaded with
    ``weights_only=True`` (unwrapping ``model``/``state_dict``/``module`` containers)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} not found")
    if p.suffix == ".safetensors":
        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{p} is not a readable safetensors file: {exc}") from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError...: all mean "not a safe weights file"
        raise CheckpointError(
            f"{p} could not be loaded as plain weights (torch.load with weights_only=True refused it: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p} does not hold a state dict of tensors")
    return obj


def _check_and_load(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path, strict: bool) -> tuple[list, list]:
    own = model.state_dict()
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and own[k].shape != v.shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if bad or (strict and (missing or unexpected)):
        parts = []
        if bad:
            parts.append(f"{len(bad)} tensor shape(s) differ, e.g. {bad[0]}")
        if strict and missing:
            parts.append(f"{len(missing)} tensor(s) missing from the file, e.g. {missing[0]}")
        if strict and unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}")
        raise CheckpointError(f"checkpoint {source} does not match the model: " + "; ".join(parts))
    model.load_state_dict(state, strict=False)
    return missing, unexpected


def load_checkpoint(path: str | os.PathLike, config: str | SMGeoConfig | None = None,
                    device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the model a project checkpoint describes and load its weights (eval mode).

    If ``config`` is given and differs from the stored one, a :class:`CheckpointError`
    names the differing fields.
    """
    from smgeo_model.build import build_model
    from smgeo_model.config import get_config

    weights, _ = checkpoint_paths(path)
    stored, metadata = read_checkpoint_config(path)
    if config is not None:
        wanted = get_config(config)
        diff = {k: v for k, v in stored.diff(wanted).items() if k != "name"}
        if diff:
            desc = ", ".join(f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in sorted(diff.items()))
            raise CheckpointError(f"checkpoint {weights} was trained with another config ({desc})")
    model = build_model(stored)
    _check_and_load(model, read_tensors(weights), weights, strict=True)
    model.checkpoint_metadata = metadata
    return model.to(device).eval()


@dataclass
class SwinLoadReport:
    """What :func:`load_swin_weights` did: backbone tensors loaded, and backbone tensors
    left at their initialisation (what SMGeo adds to Swin: GMoE gates, the stride-16 norm)."""

    loaded: list[str]
    not_in_file: list[str]


def load_swin_weights(model: torch.nn.Module, path: str | os.PathLike) -> SwinLoadReport:
    """Initialise ``model.backbone`` from a standard Swin-T checkpoint (timm or Microsoft names).

    GMoE experts are initialised from slices of the pretrained MLPs (see
    :mod:`smgeo_model.moe`). A checkpoint of another architecture (e.g. Swin-S, whose
    tensors have other shapes) raises :class:`CheckpointError` naming the tensor.
    """
    from smgeo_model.backbone import filter_swin_checkpoint

    p = Path(path)
    raw = read_tensors(p)
    if "patch_embed.proj.weight" not in raw and "model.patch_embed.proj.weight" not in raw:
        raise CheckpointError(f"{p} is not a Swin Transformer checkpoint (no patch_embed.proj.weight)")
    raw = {k.removeprefix("model."): v for k, v in raw.items()}
    backbone_state = filter_swin_checkpoint(raw, model.backbone)
    own = model.backbone.state_dict()
    ignored = sorted(k for k in backbone_state if k not in own)
    if ignored:
        raise CheckpointError(
            f"{p} does not match the model: {len(ignored)} tensor(s) the backbone lacks, e.g. {ignored[0]} "
            f"(a Swin of other depths than {list(model.config.depths)}?)"
        )
    state = {k: v for k, v in backbone_state.items() if k in own}
    missing, _ = _check_and_load(model.backbone, state, p, strict=False)
    return SwinLoadReport(loaded=sorted(state), not_in_file=missing)
