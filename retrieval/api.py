"""The Python API of text-to-image retrieval: build an index, open it with its model, search.

    from smgeo_retrieval.api import Retriever, build_index
    from smgeo_retrieval.sources import CorpusSource, ImageFolder

    build_index([CorpusSource("corpus", split="test")], "runs/ret/best.safetensors", "idx")
    retriever = Retriever.open("idx")               # the model the index was built with
    for hit in retriever.search("a red roof next to a round pond", top_k=5):
        print(hit.rank, hit.score, hit.platform, hit.lon, hit.lat, hit.image)

An index records the checkpoint it was built with and that checkpoint's model id
(``NAME@sha256[:10]`` of the weights, :func:`smgeo_geo.checks.model_id`); queries must be
encoded by the same weights, so :meth:`Retriever.open` refuses another checkpoint
(:class:`~smgeo_geo.errors.CheckpointError`). Scores are the model's fused inner products
(higher is better), joined by default by the scores of each hit's neighbours within
``PLACE_RADIUS_M`` (place fusion, :mod:`smgeo_retrieval.place_fusion`). Positions are WGS84
lon/lat degrees.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from smgeo_geo.errors import CheckpointError, OptionError, model_errors
from smgeo_retrieval.hits import Hit
from smgeo_retrieval.index import (IndexItem, VectorIndex, check_index_folder, remove_stale_thumbnails,
                                   write_thumbnail)
from smgeo_retrieval.model import gated_queries
from smgeo_retrieval.place_fusion import PlaceNeighbours, fused_scores
from smgeo_retrieval.sources import CorpusSource, ImageFolder, SourceItem, load_rgb, unique_ids

__all__ = ["Hit", "Retriever", "BuildReport", "build_index", "collect_items", "checkpoint_model_id",
           "CorpusSource", "ImageFolder"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: items encoded so far, of all."""

FUSION_POOL = 10  # candidates per requested hit that place fusion ranks again
FUSION_MIN_POOL = 100
READ_MAX_SIDE = 512  # pixels: images are read at most this large (thumbnails and the model input come from it)


def checkpoint_files(checkpoint: str | os.PathLike) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` of a checkpoint given as ``NAME``, ``NAME.safetensors`` or
    ``NAME.json`` (absolute paths)."""
    from smgeo_model.checkpoint import checkpoint_paths

    return checkpoint_paths(os.path.abspath(checkpoint))


def checkpoint_model_id(checkpoint: str | os.PathLike) -> str:
    """The model id of a checkpoint's weights (:class:`CheckpointError` when they are missing)."""
    from smgeo_geo.checks import model_id

    weights, _ = checkpoint_files(checkpoint)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {weights} not found")
    try:
        return model_id(weights)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {weights} cannot be read ({exc})") from None


def load_model(checkpoint: str | os.PathLike, device: str = "cpu"):
    """The retrieval model of ``checkpoint`` in eval mode on ``device`` (model errors as
    :class:`~smgeo_geo.errors.ModelError`)."""
    from smgeo_retrieval.checkpoint import load_retrieval_checkpoint

    with model_errors():
        return load_retrieval_checkpoint(checkpoint, device=device)


def check_text(text) -> str:
    """``text`` stripped; :class:`OptionError` when it is not a string or holds no words."""
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"the query text is empty; describe what to find (got {text!r})")
    return " ".join(text.split())


class Retriever:
    """A :class:`VectorIndex` with the model that built it; :meth:`search` ranks its items
    for a description in words."""

    def __init__(self, index: VectorIndex, model, checkpoint: Path, model_id: str) -> None:
        self.index = index
        self.model = model
        self.checkpoint = checkpoint
        self.model_id = model_id
        self._neighbours: PlaceNeighbours | None = None  # built on the first fused search
        self._heads: np.ndarray | None = None  # each item's expert column (-1: none)

    @classmethod
    def open(cls, index_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             device: str = "cpu") -> "Retriever":
        """Open an index folder and load its model: the checkpoint recorded in ``index.json``,
        or ``checkpoint`` (e.g. the same weights moved elsewhere). :class:`CheckpointError`
        when the weights' model id differs from the one the index was built with, or the
        recorded checkpoint is gone; :class:`InputFileError` for a bad index folder."""
        index = VectorIndex.load(index_dir)
        recorded = index.model.get("checkpoint", "")
        expected = index.model.get("model_id", "")
        source = "--checkpoint" if checkpoint is not None else f"the index's checkpoint ({index.root}/index.json)"
        path = checkpoint if checkpoint is not None else recorded
        weights, _ = checkpoint_files(path)
        if not weights.is_file():
            hint = "" if checkpoint is not None else "; give the checkpoint with --checkpoint"
            raise CheckpointError(f"{source} {weights} not found{hint}")
        found = checkpoint_model_id(weights)
        if found != expected:
            raise CheckpointError(f"{source} {weights} is model {found}, but the index {index.root} was built with "
                                  f"{expected}; use that checkpoint or rebuild the index")
        model = load_model(weights, device)
        return cls(index, model, weights, found)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors [N, D] (float32) of ``texts``; :class:`CheckpointError` when their
        dimension is not the index's."""
        with model_errors():
            q = np.asarray(self.model.encode_queries(list(texts)), dtype=np.float32)
        return self._checked(q)

    def _checked(self, q: np.ndarray) -> np.ndarray:
        if q.ndim != 2 or q.shape[1] != self.index.dim:
            raise CheckpointError(f"the model {self.model_id} gives query vectors of shape {q.shape}, the index "
                                  f"{self.index.root} holds vectors of dimension {self.index.dim}")
        return q

    def search(self, text: str, top_k: int = 10, ef_search: int | None = None, place_fusion: bool = True) -> list[Hit]:
        """The ``top_k`` (1..100) items that best match ``text``, best first (rank 1);
        ``ef_search``: see :meth:`~smgeo_retrieval.index.VectorIndex.search`; ``place_fusion``:
        rank the index's best ``FUSION_POOL`` x ``top_k`` (at least 100) candidates again with
        their neighbours' scores (:mod:`~smgeo_retrieval.place_fusion`); hits then carry the fused score."""
        return self.search_many([text], top_k, ef_search, place_fusion)[0]

    def search_many(self, texts: Sequence[str], top_k: int = 10, ef_search: int | None = None,
                    place_fusion: bool = True) -> list[list[Hit]]:
        """:meth:`search` for several texts at once (one model call)."""
        from smgeo_geo.checks import check_top_k

        from smgeo_retrieval.index import check_ef_search

        k = check_top_k(top_k)
        ef_search = check_ef_search(ef_search)
        queries = [check_text(t) for t in texts]
        if not place_fusion:
            scores, ids = self.index.search(self.encode(queries), k, ef_search)
            return [self._hits(s, i) for s, i in zip(scores, ids)]
        with model_errors():
            experts, gates = self.model.encode_query_experts(queries)
        _, ids = self.index.search(self._checked(gated_queries(experts, gates)), max(FUSION_MIN_POOL, FUSION_POOL * k),
                                   ef_search)
        out = []
        for u, g, rows in zip(experts, gates, ids):
            rows = rows[rows >= 0]
            fused = self._fused(u, g, rows)
            best = np.argsort(-fused, kind="stable")[:k]
            out.append(self._hits(fused[best], rows[best]))
        return out

    def _fused(self, expert_query: np.ndarray, gate: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Place-fused scores of item ``rows`` for one query (its ungated vector and gate)."""
        if self._neighbours is None:
            self._neighbours = PlaceNeighbours([it.lon for it in self.index.items],
                                               [it.lat for it in self.index.items])
            heads = list(self.model.config.platforms) if self.model.config.experts else []
            self._heads = np.array([heads.index(it.platform) if it.platform in heads else -1
                                    for it in self.index.items], np.int64)
        around = self._neighbours.of(rows)
        wanted = np.unique(np.concatenate([rows, *around])) if len(rows) else rows  # sorted
        cosines = (self.index.vectors(wanted) @ expert_query)[None]
        heads = self._heads[wanted]
        item_gates = np.where(heads >= 0, gate[np.clip(heads, 0, None)], 1.0)[None]
        local = [np.searchsorted(wanted, nb) for nb in around]
        return fused_scores(cosines, item_gates, local, columns=np.searchsorted(wanted, rows))[0]

    def _hits(self, scores: np.ndarray, ids: np.ndarray) -> list[Hit]:
        hits = []
        for score, row in zip(scores.tolist(), ids.tolist()):
            if row < 0:
                continue
            item = self.index.items[row]
            thumb = self.index.thumbnail_path(item)
            hits.append(Hit(rank=len(hits) + 1, score=float(score), item_id=item.item_id, platform=item.platform,
                            image=item.image, thumbnail=str(thumb) if thumb else None, lon=item.lon, lat=item.lat,
                            footprint=item.footprint))
        return hits


@dataclass
class BuildReport:
    """What :func:`build_index` did: the saved index, the images it skipped (``"path: reason"``),
    seconds spent encoding and in all."""

    index: VectorIndex
    skipped: list[str] = field(default_factory=list)
    encode_seconds: float = 0.0
    seconds: float = 0.0


def collect_items(sources: Sequence[CorpusSource | ImageFolder], exclude: str | os.PathLike | None = None
                  ) -> tuple[list[SourceItem], list[str]]:
    """Every item of ``sources`` (ids made unique) and the skipped images; :class:`OptionError`
    when there is nothing to index."""
    if not sources:
        raise OptionError("nothing to index: give a corpus folder or an images folder")
    items, skipped = [], []
    ex = Path(os.path.abspath(exclude)) if exclude is not None else None
    for source in sources:
        found, missed = source.items(exclude=ex)
        items += found
        skipped += missed
    if not items:
        where = ", ".join(str(s.folder) for s in sources)
        extra = f" ({len(skipped)} skipped: {'; '.join(skipped[:3])})" if skipped else ""
        raise OptionError(f"no images to index in {where}{extra}")
    return unique_ids(items), skipped


def build_index(sources: Sequence[CorpusSource | ImageFolder], checkpoint: str | os.PathLike,
                out_dir: str | os.PathLike, progress: Progress | None = None, kind: str = "auto",
                device: str = "cpu", batch_size: int = 32) -> BuildReport:
    """Encode every image of ``sources`` with the model of ``checkpoint`` and save the index
    folder ``out_dir`` (made if missing; an existing index there is replaced).

    Checks (before the model loads): the output folder (:func:`check_index_folder`), the
    sources, ``kind``. Images without a position are skipped with one warning naming them.
    A failure while encoding leaves an existing index as it was, and removes a folder this
    call made."""
    from smgeo_retrieval.index import choose_kind

    started = time.perf_counter()
    root = check_index_folder(out_dir)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OptionError(f"batch size must be a whole number of 1 or more, got {batch_size!r}")
    choose_kind(kind, 0)
    weights, _ = checkpoint_files(checkpoint)
    model_id = checkpoint_model_id(weights)
    items, skipped = collect_items(sources, exclude=root)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} image(s) that cannot be placed on the map: {'; '.join(skipped)}",
                      UserWarning, stacklevel=2)
    model = load_model(weights, device)

    created = [p for p in [root, *root.parents] if not p.exists()][::-1]
    old_thumbs = set((root / "thumbs").iterdir()) if (root / "thumbs").is_dir() else set()
    written: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    try:
        records, vectors = [], []
        encode_s = 0.0
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            pixels = []
            for item in batch:
                rgb = load_rgb(item, READ_MAX_SIDE)
                rel = write_thumbnail(root, item.item_id, rgb)
                written.append(root / rel)
                records.append(IndexItem(item.item_id, item.platform, item.image, item.lon, item.lat,
                                         item.footprint, rel))
                pixels.append(rgb)  # the model resizes to its input size, as in training
            t = time.perf_counter()
            with model_errors():
                vectors.append(np.asarray(model.encode_images(pixels, [i.platform for i in batch]), np.float32))
            encode_s += time.perf_counter() - t
            if progress is not None:
                progress(min(start + batch_size, len(items)), len(items))
        index = VectorIndex.build(np.concatenate(vectors), records, {"checkpoint": str(weights), "model_id": model_id},
                                  kind=kind)
        index.save(root)
    except BaseException:
        if created:
            shutil.rmtree(created[0], ignore_errors=True)
        else:
            for p in written:
                if p not in old_thumbs:
                    p.unlink(missing_ok=True)
        raise
    remove_stale_thumbnails(index)
    return BuildReport(index, skipped, encode_s, time.perf_counter() - started)

