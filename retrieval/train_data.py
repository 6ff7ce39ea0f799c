"""Training data of the retrieval model: pairs, augmentation, batches, mined hard negatives.

* :class:`PairData` holds one split of a corpus in memory: every item's image (resized to the
  model's ``image_size``, uint8), its ``caption`` and ``query`` texts, place and platform.
  Each item is one training pair *image <-> (caption, query)*: both text styles of the item
  go into the same batch as its image (the generic style teaches the experts the facts; the
  platform style teaches them, and the gate, how each platform's queries talk).
* :func:`augment` - satellite augmentation (the 8 flips / quarter turns: a nadir tile has no
  up), horizontal flips for drone and ground views, mild scale/shift jitter and brightness /
  contrast / saturation jitter (no hue shift: colours are named in the texts).
* :func:`stage1_batches` - random batches of items; :func:`stage2_batches` - batches built
  from anchors and their mined hard negatives (:func:`mine_hard_negatives`: the wrong
  places whose images the stage-1 model scores highest for the anchor's query, which are
  mostly places of the same class and colour).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from smgeo_geo.errors import OptionError
from smgeo_retrieval.corpus_io import CorpusItem, load_image, read_corpus
from smgeo_retrieval.model import PIXEL_MEAN, PIXEL_STD, RetrievalModel, resize_uint8

SATELLITE = "satellite"
SCALE_JITTER = (0.85, 1.0)  # crop side as a share of the image
SHIFT_JITTER = 0.06  # largest centre shift of the crop, share of the side
BRIGHTNESS_JITTER = 0.15
CONTRAST_JITTER = 0.15
SATURATION_JITTER = 0.15
MINE_POOL = 24  # hardest wrong places kept per anchor
MINE_BATCH = 256


@dataclass
class PairData:
    """One split of a corpus, in memory. ``images``: ``[N, S, S, 3]`` uint8."""

    items: list[CorpusItem]
    images: np.ndarray
    platforms: list[str]

    @property
    def captions(self) -> list[str]:
        return [it.caption for it in self.items]

    @property
    def queries(self) -> list[str]:
        return [it.query for it in self.items]

    @property
    def place_ids(self) -> list[str]:
        return [it.place_id for it in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def place_codes(self) -> np.ndarray:
        """Integer code per item of its place."""
        codes: dict[str, int] = {}
        return np.array([codes.setdefault(p, len(codes)) for p in self.place_ids], dtype=np.int64)

    def platform_codes(self, platforms: Sequence[str]) -> np.ndarray:
        known = {p: i for i, p in enumerate(platforms)}
        return np.array([known[p] for p in self.platforms], dtype=np.int64)


def load_pairs(corpus: str | os.PathLike, split: str | Sequence[str], image_size: int,
               progress: Callable | None = None) -> PairData:
    """Items of ``split`` (a split name, ``"all"``, or several) with their images resized to
    ``image_size``. :class:`OptionError` if the split holds no items."""
    _, items = read_corpus(corpus)
    wanted = {"train", "val", "test"} if split == "all" else ({split} if isinstance(split, str) else set(split))
    chosen = [it for it in items if it.split in wanted]
    if not chosen:
        raise OptionError(f"corpus {corpus} holds no items of split {split!r}")
    images = np.zeros((len(chosen), image_size, image_size, 3), dtype=np.uint8)
    seq = range(len(chosen))
    for i in (progress(seq) if progress else seq):
        images[i] = resize_uint8(load_image(corpus, chosen[i])[:, :, :3], image_size)
    return PairData(chosen, images, [it.platform for it in chosen])


def augment(images: torch.Tensor, platforms: Sequence[str], generator: torch.Generator) -> torch.Tensor:
    """Augmented copies of uint8 ``images [B, S, S, 3]`` as normalised float ``[B, 3, S, S]``."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    b = x.shape[0]
    out = []
    turns = torch.randint(0, 4, (b,), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    for i in range(b):
        xi = x[i]
        if platforms[i] == SATELLITE and turns[i]:
            xi = torch.rot90(xi, int(turns[i]), dims=(1, 2))
        if flips[i]:
            xi = torch.flip(xi, dims=(2,))
        out.append(xi)
    x = torch.stack(out)
    # scale / shift jitter as one affine resampling
    scale = torch.empty(b).uniform_(*SCALE_JITTER, generator=generator)
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * SHIFT_JITTER
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # photometric jitter
    def factor(spread: float) -> torch.Tensor:
        return (1 + (torch.rand(b, generator=generator) * 2 - 1) * spread).view(b, 1, 1, 1)

    x = x * factor(BRIGHTNESS_JITTER)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor(CONTRAST_JITTER) + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * factor(SATURATION_JITTER) + grey
    return (x.clamp(0, 1) - PIXEL_MEAN) / PIXEL_STD


def plain(images: torch.Tensor) -> torch.Tensor:
    """Normalised float ``[B, 3, S, S]`` of uint8 ``images [B, S, S, 3]`` (no augmentation)."""
    return (images.permute(0, 3, 1, 2).float() / 255.0 - PIXEL_MEAN) / PIXEL_STD


def stage1_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches (item indices) covering every item once; the last short one is dropped
    when there are full ones (InfoNCE wants a fixed number of negatives)."""
    order = rng.permutation(n)
    batches = [order[i: i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def stage2_batches(hard: np.ndarray, batch_size: int, per_anchor: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of anchors and, for each, ``per_anchor`` items drawn from its hard-negative pool
    ``hard [N, M]`` (item indices, -1 = none); as many batches as :func:`stage1_batches` gives."""
    n = hard.shape[0]
    steps = max(1, n // batch_size)
    order = rng.permutation(n)
    batches = []
    pos = 0
    for _ in range(steps):
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < batch_size:
            if pos >= n:
                order, pos = rng.permutation(n), 0
            a = int(order[pos])
            pos += 1
            if a in seen:
                continue
            chosen.append(a)
            seen.add(a)
            pool = [int(h) for h in hard[a] if h >= 0 and int(h) not in seen]
            for h in rng.permutation(pool)[:per_anchor] if pool else []:
                if len(chosen) < batch_size:
                    chosen.append(int(h))
                    seen.add(int(h))
        batches.append(np.array(chosen, dtype=np.int64))
    return batches


@torch.inference_mode()
def mine_hard_negatives(model: RetrievalModel, data: PairData, device: torch.device, pool: int = MINE_POOL,
                        progress: Callable | None = None) -> np.ndarray:
    """``[N, pool]`` item indices: for each item, the items of other places whose images the
    model scores highest for the item's query (fused score), hardest first; -1 pads."""
    was = model.training
    model.eval()
    n = len(data)
    q, v = [], []
    idx = model.platform_index(data.platforms)
    steps = range(0, n, MINE_BATCH)
    for s in (progress(steps) if progress else steps):
        q.append(model.query_vectors(model.text_ids(data.queries[s: s + MINE_BATCH]).to(device)).float().cpu())
        pixels = plain(torch.from_numpy(data.images[s: s + MINE_BATCH])).to(device)
        v.append(model.image_vectors(pixels, idx[s: s + MINE_BATCH]).float().cpu())
    model.train(was)
    qm, vm = torch.cat(q), torch.cat(v)
    places = torch.from_numpy(data.place_codes())
    k = min(pool, n - 1)
    hard = np.full((n, pool), -1, dtype=np.int64)
    for s in range(0, n, MINE_BATCH):
        scores = qm[s: s + MINE_BATCH] @ vm.T
        scores[places[s: s + MINE_BATCH, None] == places[None, :]] = -math.inf
        top = scores.topk(k, dim=1)
        found = torch.where(torch.isfinite(top.values), top.indices, torch.full_like(top.indices, -1))
        hard[s: s + scores.shape[0], :k] = found.numpy()
    return hard


__all__ = ["PairData", "augment", "load_pairs", "mine_hard_negatives", "plain", "stage1_batches", "stage2_batches"]
