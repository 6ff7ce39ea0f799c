"""The retrieval model: text encoder, image encoder, platform experts, gate (see ``docs/retrieval.md``).

* text: ``normalize(remove_orientation_words(text))`` (removal switchable by the config) ->
  word ids (:class:`~smgeo_retrieval.text.Tokenizer`) -> token + position embedding -> a small
  pre-norm transformer encoder (or none: ``text_layers=0`` is a mean of word embeddings) ->
  masked mean pool -> text feature ``f(q)``;
* image: a small CNN (conv-BN-ReLU blocks, stride 2 each) over ``image_size`` px RGB, shared by
  every platform -> average + max pool -> image feature ``h(x)``;
* platform experts: per platform ``p`` a text head ``t_p(f)`` and an image head ``v_p(h)``
  (``experts=False``: one shared head pair);
* gate: an MLP on ``f(q)`` -> softmax over the platforms, ``g_p(q)``;
* word head (training only, ``word_head``): a linear map from ``h(x)`` to the vocabulary,
  trained to predict which words the item's texts use (a dense auxiliary signal that teaches
  the CNN colours and kinds much faster than the contrastive loss alone).

Fused score ``s(q, x) = sum_p g_p(q) cos(t_p(q), v_p(x))``, realised as one inner product:
:meth:`RetrievalModel.encode_queries` returns ``concat_p g_p(q) t_p(q)/|t_p(q)|`` and
:meth:`RetrievalModel.encode_images` ``concat_p v_p(x)/|v_p(x)|``. With ``image_routing="own"``
(the default) an item's vector keeps only its own platform's block (others are zero), so
``s(q, x) = g_{p(x)}(q) cos(t_{p(x)}(q), v_{p(x)}(x))``: the gate weighs whole platforms, and the
query's wording picks the platform it asks about (measured better than ``"all"``, see
``docs/retrieval.md``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smgeo_geo.errors import OptionError
from smgeo_retrieval.text import PAD_ID, Tokenizer, normalize, remove_orientation_words

PLATFORMS: tuple[str, ...] = ("satellite", "drone", "ground")
ROUTINGS = ("own", "all")
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25  # uint8 / 255 -> (x - mean) / std
INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0
ENCODE_BATCH = 64


@dataclass(frozen=True)
class RetrievalConfig:
    """Architecture and text preprocessing of a :class:`RetrievalModel` (JSON round trip with
    :meth:`to_dict` / :meth:`from_dict`). ``vocab_size`` is the tokenizer's (set when built)."""

    name: str = "demo"
    image_size: int = 128
    image_channels: tuple[int, ...] = (32, 64, 128, 192)
    image_convs: int = 2
    center_pool: bool = True
    vocab_size: int = 2
    max_tokens: int = 48
    text_dim: int = 128
    text_layers: int = 2
    text_heads: int = 4
    embed_dim: int = 128
    gate_hidden: int = 64
    dropout: float = 0.1
    word_head: bool = True
    experts: bool = True
    remove_orientation: bool = True
    image_routing: str = "own"
    platforms: tuple[str, ...] = PLATFORMS

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise OptionError(f"retrieval config field {name} must be a positive integer, got {v!r}")

        for name in ("image_size", "image_convs", "vocab_size", "max_tokens", "text_dim", "text_heads", "embed_dim", "gate_hidden"):
            positive(name)
        if not isinstance(self.text_layers, int) or self.text_layers < 0:
            raise OptionError(f"retrieval config field text_layers must be >= 0, got {self.text_layers!r}")
        if self.text_layers and self.text_dim % self.text_heads:
            raise OptionError(f"retrieval config: text_dim {self.text_dim} is not a multiple of text_heads "
                              f"{self.text_heads}")
        if not self.image_channels or any(not isinstance(c, int) or c < 1 for c in self.image_channels):
            raise OptionError(f"retrieval config field image_channels must be positive integers, "
                              f"got {self.image_channels!r}")
        if self.image_routing not in ROUTINGS:
            raise OptionError(f"retrieval config field image_routing must be one of {', '.join(ROUTINGS)}, "
                              f"got {self.image_routing!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise OptionError(f"retrieval config field dropout must be in [0, 1), got {self.dropout!r}")
        if not self.platforms or len(set(self.platforms)) != len(self.platforms):
            raise OptionError(f"retrieval config field platforms must be distinct names, got {self.platforms!r}")

    @property
    def num_heads(self) -> int:
        """Number of expert blocks in the vectors (1 without experts)."""
        return len(self.platforms) if self.experts else 1

    @property
    def dim(self) -> int:
        """Length of the query and item vectors."""
        return self.num_heads * self.embed_dim

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "RetrievalConfig":
        """Inverse of :meth:`to_dict`; :class:`OptionError` names an unknown or bad field."""
        if not isinstance(data, dict):
            raise OptionError(f"retrieval config must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise OptionError(f"retrieval config has unknown field(s) {', '.join(unknown)}")
        values = {}
        for k, v in data.items():
            default = known[k].default
            if isinstance(default, tuple):
                if not isinstance(v, (list, tuple)):
                    raise OptionError(f"retrieval config field {k} must be a list, got {v!r}")
                v = tuple(v)
            elif isinstance(default, bool) and not isinstance(v, bool):
                raise OptionError(f"retrieval config field {k} must be true or false, got {v!r}")
            elif isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            elif type(default) is not type(v) and not isinstance(default, tuple):
                raise OptionError(f"retrieval config field {k} must be a {type(default).__name__}, got {v!r}")
            values[k] = v
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


PRESETS: dict[str, RetrievalConfig] = {
    "tiny": RetrievalConfig(name="tiny", image_size=32, image_channels=(8, 16, 32), max_tokens=32, text_dim=32,
                            text_layers=1, text_heads=2, embed_dim=16, gate_hidden=16, dropout=0.0),
    # 64 px: on 2 CPU cores 128 px cost twice the time per epoch for +1-2 points of val R@1
    "demo": RetrievalConfig(name="demo", image_size=64, image_channels=(32, 64, 128, 256), image_convs=2),
}


def get_retrieval_config(name: str | RetrievalConfig, **overrides) -> RetrievalConfig:
    """A preset by name (``tiny``, ``demo``) or a config, with ``overrides`` applied."""
    if isinstance(name, RetrievalConfig):
        cfg = name
    elif name in PRESETS:
        cfg = PRESETS[name]
    else:
        raise OptionError(f"unknown retrieval preset {name!r} (choose one of {', '.join(PRESETS)})")
    return replace(cfg, **overrides) if overrides else cfg


def prepare_text(text: str, remove_orientation: bool) -> str:
    """The text the tokenizer sees: orientation words removed (if asked) then normalised."""
    return normalize(remove_orientation_words(text) if remove_orientation else text)


class TextEncoder(nn.Module):
    """Word ids ``[B, L]`` (0 = padding) -> text features ``[B, text_dim]``."""

    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.text_dim, padding_idx=PAD_ID)
        self.position = nn.Parameter(torch.zeros(cfg.max_tokens, cfg.text_dim))
        nn.init.normal_(self.position, std=0.02)
        self.encoder = None
        if cfg.text_layers:
            layer = nn.TransformerEncoderLayer(cfg.text_dim, cfg.text_heads, dim_feedforward=2 * cfg.text_dim,
                                               dropout=cfg.dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.text_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == PAD_ID
        x = self.embed(ids) + self.position[: ids.shape[1]]
        if self.encoder is not None:
            x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.norm(pooled)


class ImageEncoder(nn.Module):
    """Images ``[B, 3, S, S]`` (normalised) -> image features ``[B, k * channels[-1]]``: one block
    per channel count, each ``image_convs`` conv-BN-ReLU layers, the first with stride 2; then
    average and max pooling over the whole map and (``center_pool``, k = 3) average pooling
    over its central half."""

    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        blocks, c_in = [], 3
        for c in cfg.image_channels:
            for k in range(cfg.image_convs):
                blocks += [nn.Conv2d(c_in if k == 0 else c, c, 3, stride=2 if k == 0 else 1, padding=1, bias=False),
                           nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*blocks)
        self.center_pool = cfg.center_pool
        self.out_dim = (3 if cfg.center_pool else 2) * c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        parts = [y.mean((2, 3)), y.amax((2, 3))]
        if self.center_pool:  # the place's object is near the image centre: pool the central half too
            h, w = y.shape[2:]
            parts.append(y[:, :, h // 4: h - h // 4, w // 4: w - w // 4].mean((2, 3)))
        return torch.cat(parts, dim=1)


def _head(d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_in), nn.GELU(), nn.Linear(d_in, d_out))


class RetrievalModel(nn.Module):
    """Text and image encoders with platform experts and a gate; ``tokenizer`` maps words to ids.

    Training uses the tensor methods (:meth:`text_ids`, :meth:`query_vectors`,
    :meth:`image_vectors`); indexing and search use :meth:`encode_queries` and
    :meth:`encode_images` (numpy in, float32 numpy out, no gradients).
    """

    def __init__(self, config: RetrievalConfig, tokenizer: Tokenizer) -> None:
        super().__init__()
        if len(tokenizer) != config.vocab_size:
            config = replace(config, vocab_size=len(tokenizer))
        self.config = config
        self.tokenizer = tokenizer
        self.text = TextEncoder(config)
        self.image = ImageEncoder(config)
        self.text_heads = nn.ModuleList(_head(config.text_dim, config.embed_dim) for _ in range(config.num_heads))
        self.image_heads = nn.ModuleList(_head(self.image.out_dim, config.embed_dim) for _ in range(config.num_heads))
        self.gate = nn.Sequential(nn.Linear(config.text_dim, config.gate_hidden), nn.GELU(),
                                  nn.Linear(config.gate_hidden, len(config.platforms)))
        # training only: predicts the words of an image's texts from its features (auxiliary loss)
        self.word_head = nn.Linear(self.image.out_dim, config.vocab_size) if config.word_head else None
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1.0 / INIT_TEMPERATURE))))
        self.checkpoint_metadata: dict = {}

    # ---- tensors (training) -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def platform_index(self, platforms: Sequence[str]) -> torch.Tensor:
        """Indices of ``platforms`` in the config's platform list (:class:`OptionError` if unknown)."""
        known = {p: i for i, p in enumerate(self.config.platforms)}
        bad = [p for p in platforms if p not in known]
        if bad:
            raise OptionError(f"unknown platform {bad[0]!r} (expected one of {', '.join(self.config.platforms)})")
        return torch.tensor([known[p] for p in platforms], dtype=torch.long)

    def text_ids(self, texts: Sequence[str]) -> torch.Tensor:
        """Word ids ``[N, L]`` of ``texts`` after preprocessing (L <= ``max_tokens``, padded)."""
        prepared = [prepare_text(t, self.config.remove_orientation) for t in texts]
        longest = max([len(p.split()) for p in prepared] + [1])
        return torch.tensor(self.tokenizer.encode(prepared, max_len=min(longest, self.config.max_tokens)),
                            dtype=torch.long)

    def query_parts(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(vectors [B, dim], gate logits [B, P])`` of word ids; vectors are the fused query
        vectors (gate-weighted unit blocks)."""
        f = self.text(ids)
        logits = self.gate(f)
        blocks = [F.normalize(h(f).float(), dim=-1) for h in self.text_heads]
        if not self.config.experts:
            return blocks[0], logits
        g = torch.softmax(logits.float(), dim=-1)
        return torch.cat([g[:, i: i + 1] * b for i, b in enumerate(blocks)], dim=1), logits

    def query_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        return self.query_parts(ids)[0]

    def image_vectors(self, pixels: torch.Tensor, platform_idx: torch.Tensor) -> torch.Tensor:
        """Item vectors ``[B, dim]`` of normalised images ``[B, 3, S, S]`` of the given platforms."""
        h = self.image(pixels)
        blocks = [F.normalize(head(h).float(), dim=-1) for head in self.image_heads]
        if not self.config.experts:
            return blocks[0]
        v = torch.stack(blocks, dim=1)  # [B, P, D]
        if self.config.image_routing == "own":
            mask = F.one_hot(platform_idx.to(v.device), len(self.config.platforms)).to(v.dtype)
            v = v * mask.unsqueeze(-1)
        return v.flatten(1)

    def pixels(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """HxWx3 uint8 images -> normalised ``[B, 3, S, S]`` float tensor (area resize)."""
        return images_to_tensor(images, self.config.image_size)

    # ---- numpy (index and search) -------------------------------------------------------
    def encode_queries(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """Fused query vectors ``[N, dim]`` float32 of ``texts`` (the gate folded into the expert blocks)."""
        if isinstance(texts, str):
            texts = [texts]
        return gated_queries(*self.encode_query_experts(texts, batch_size))

    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray], platforms: Sequence[str],
                      batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """Item vectors ``[N, dim]`` float32 of HxWx3 uint8 ``images`` taken from ``platforms``."""
        if len(images) != len(platforms):
            raise OptionError(f"encode_images got {len(images)} images but {len(platforms)} platforms")
        idx = self.platform_index(platforms)
        was = self.training
        self.eval()
        out = [self.image_vectors(self.pixels(images[i: i + batch_size]).to(self.device), idx[i: i + batch_size]
                                  ).float().cpu() for i in range(0, len(images), batch_size)]
        self.train(was)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.config.dim), np.float32)

    @torch.inference_mode()
    def encode_query_experts(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Ungated query vectors ``[N, dim]`` (every expert's unit block, so that the inner
        product with an item vector is its own expert's cosine) and gate weights ``[N, P]``
        (``[N, 1]`` of ones without experts), float32."""
        was = self.training
        self.eval()
        vecs, gates = [], []
        for i in range(0, len(texts), batch_size):
            f = self.text(self.text_ids(list(texts[i: i + batch_size])).to(self.device))
            vecs.append(torch.cat([F.normalize(h(f).float(), dim=-1) for h in self.text_heads], dim=1).cpu())
            gates.append(torch.softmax(self.gate(f).float(), -1).cpu() if self.config.experts
                         else torch.ones(len(f), 1))
        self.train(was)
        if not vecs:
            return np.zeros((0, self.config.dim), np.float32), np.zeros((0, self.config.num_heads), np.float32)
        return torch.cat(vecs).numpy().astype(np.float32), torch.cat(gates).numpy().astype(np.float32)

    @torch.inference_mode()
    def gate_weights(self, texts: Sequence[str]) -> np.ndarray:
        """Gate probabilities ``[N, P]`` over ``config.platforms`` (uniform-free: softmax of the gate)."""
        was = self.training
        self.eval()
        _, logits = self.query_parts(self.text_ids(list(texts)).to(self.device))
        self.train(was)
        return torch.softmax(logits.float(), -1).cpu().numpy()


def gated_queries(experts: np.ndarray, gates: np.ndarray) -> np.ndarray:
    """Fused query vectors ``[N, dim]``: the ungated expert blocks ``[N, P * D]`` of
    :meth:`RetrievalModel.encode_query_experts`, each scaled by its gate weight ``[N, P]``."""
    n, p = gates.shape
    if n == 0:
        return np.zeros((0, experts.shape[1]), np.float32)
    return (experts.reshape(n, p, -1) * gates[:, :, None]).reshape(n, -1).astype(np.float32, copy=False)


def images_to_tensor(images: Sequence[np.ndarray] | np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 (or HxW) uint8 arrays -> normalised float tensor ``[B, 3, size, size]``."""
    out = []
    for i, img in enumerate(images):
        a = np.asarray(img)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] < 3:
            raise OptionError(f"image {i} must be HxWx3 RGB, got shape {a.shape}")
        out.append(resize_uint8(a[:, :, :3], size))
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
    return (x - PIXEL_MEAN) / PIXEL_STD


def resize_uint8(a: np.ndarray, size: int) -> np.ndarray:
    """Area-resize an HxWx3 uint8 image to ``size`` x ``size`` (unchanged when already that size)."""
    if a.shape[0] == size and a.shape[1] == size:
        return np.ascontiguousarray(a, dtype=np.uint8)
    t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def build_retrieval_model(config: str | RetrievalConfig, tokenizer: Tokenizer) -> RetrievalModel:
    """A freshly initialised model of ``config`` (preset name or config) for ``tokenizer``."""
    return RetrievalModel(get_retrieval_config(config), tokenizer)


__all__ = ["PLATFORMS", "PRESETS", "RetrievalConfig", "RetrievalModel", "build_retrieval_model",
           "get_retrieval_config", "images_to_tensor", "prepare_text", "resize_uint8"]
