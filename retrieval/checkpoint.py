"""Retrieval checkpoints: ``NAME.safetensors`` (tensors) + ``NAME.json`` (never a pickle).

The JSON sidecar::

    {"format": "smgeo-retrieval", "version": 1,
     "config": {...RetrievalConfig...},
     "tokenizer": {...Tokenizer.to_json()...},
     "metadata": {"stage": 1|2, "epoch": int, "corpus_seed": int, "metrics": {...}, ...}}

Both files are written atomically (:func:`smgeo_model.fileio.atomic_path`), the weights first,
so a reader that finds the sidecar finds complete weights too. Every problem raises
:class:`smgeo_geo.errors.CheckpointError` naming the file and field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from smgeo_geo.errors import CheckpointError, OptionError
from smgeo_model.checkpoint import checkpoint_paths
from smgeo_model.fileio import atomic_path, write_text
from smgeo_retrieval.model import RetrievalConfig, RetrievalModel
from smgeo_retrieval.text import Tokenizer

FORMAT, VERSION = "smgeo-retrieval", 1
BUNDLED_NAME = "retrieval_demo"


def bundled_retrieval_checkpoint() -> Path:
    """The demo retrieval model shipped in the package (``demo`` preset trained on a generated corpus)."""
    path = Path(__file__).parent / "weights" / f"{BUNDLED_NAME}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"the bundled retrieval model {path} is missing from this installation "
                              f"(train one with 'smgeo train-retrieval' and pass --checkpoint)")
    return path


def save_retrieval_checkpoint(model: RetrievalModel, path: str | os.PathLike,
                              metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as ``NAME.safetensors`` + ``NAME.json``; returns the ``.safetensors`` path.
    ``path`` may be ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    weights, meta_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    doc = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
           "tokenizer": model.tokenizer.to_json(), "metadata": metadata or {}}
    try:
        text = json.dumps(doc, indent=2, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: metadata is not JSON-serialisable ({exc})") from None
    with atomic_path(weights, CheckpointError) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    write_text(meta_path, text, CheckpointError)
    return weights


def read_retrieval_sidecar(path: str | os.PathLike) -> tuple[RetrievalConfig, Tokenizer, dict[str, Any]]:
    """``(config, tokenizer, metadata)`` from a checkpoint's JSON sidecar."""
    _, meta_path = checkpoint_paths(path)
    if not meta_path.is_file():
        raise CheckpointError(f"retrieval checkpoint config {meta_path} not found (expected beside the "
                              f".safetensors file)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"retrieval checkpoint config {meta_path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise CheckpointError(f"{meta_path}: field format must be {FORMAT!r}, got {found!r} "
                              f"(not a retrieval checkpoint)")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise CheckpointError(f"{meta_path}: field version must be {VERSION}, got {doc.get('version')!r}")
    for key in ("config", "tokenizer"):
        if not isinstance(doc.get(key), dict):
            raise CheckpointError(f"{meta_path}: field {key} is missing or not an object")
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{meta_path}: field metadata must be an object, got {metadata!r}")
    try:
        config = RetrievalConfig.from_dict(doc["config"])
    except (OptionError, TypeError) as exc:
        raise CheckpointError(f"{meta_path}: field config: {exc}") from None
    try:
        tokenizer = Tokenizer.from_json(doc["tokenizer"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{meta_path}: field tokenizer: {exc}") from None
    if len(tokenizer) != config.vocab_size:
        raise CheckpointError(f"{meta_path}: the tokenizer has {len(tokenizer)} ids but config.vocab_size is "
                              f"{config.vocab_size}")
    return config, tokenizer, metadata


def read_retrieval_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's ``.safetensors`` file."""
    weights, _ = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"retrieval checkpoint {weights} not found")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from None


def load_retrieval_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> RetrievalModel:
    """The :class:`RetrievalModel` of a checkpoint, in eval mode on ``device``; its sidecar
    metadata is ``model.checkpoint_metadata``."""
    weights, _ = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(f"retrieval checkpoint {weights} not found")
    config, tokenizer, metadata = read_retrieval_sidecar(path)
    state = read_retrieval_weights(path)
    model = RetrievalModel(config, tokenizer)
    own = model.state_dict()
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
           if k in own and own[k].shape != v.shape]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if bad or missing or unexpected:
        parts = ([f"{len(bad)} tensor shape(s) differ, e.g. {bad[0]}"] if bad else []) + \
            ([f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"] if missing else []) + \
            ([f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}"] if unexpected else [])
        raise CheckpointError(f"retrieval checkpoint {weights} does not match its config: " + "; ".join(parts))
    model.load_state_dict(state)
    model.checkpoint_metadata = metadata
    return model.to(device).eval()


__all__ = ["BUNDLED_NAME", "FORMAT", "VERSION", "bundled_retrieval_checkpoint", "load_retrieval_checkpoint", "read_retrieval_sidecar", "read_retrieval_weights",
           "save_retrieval_checkpoint"]
