"""The vector index folder: FAISS inner-product search over item vectors. No torch.

Layout (``docs/retrieval.md``, "Index folder")::

    INDEX/
      index.json     {"format": "smgeo-retrieval-index", "version": 1, "dim": D, "count": N,
                      "kind": "flat" | "hnsw", "model": {"checkpoint": str, "model_id": str},
                      "hnsw": {"m", "ef_construction", "ef_search"} (HNSW only), "created": ISO UTC}
      vectors.faiss  FAISS index, inner-product metric; row i is line i of items.jsonl
      items.jsonl    one :class:`IndexItem` per line
      thumbs/<item_id>.jpg

Scores are inner products ``q . v`` of a query vector and an item vector (the model's fused
expert score; higher is better); vectors are stored as given (not normalised). ``flat``
(``IndexFlatIP``) is exact; ``hnsw`` (``IndexHNSWFlat``, inner product) is approximate and
much faster on large indexes. ``auto`` picks flat up to :data:`HNSW_FROM` items.

Every file goes through :func:`smgeo_geo.vector_io.write_all` (temporary file + rename);
``index.json``, ``vectors.faiss`` and ``items.jsonl`` are moved into place together, last,
after the thumbnails, and :meth:`VectorIndex.load` checks that they agree.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from smgeo_geo.errors import InputFileError, OptionError, OutputError

FORMAT = "smgeo-retrieval-index"
VERSION = 1
KINDS = ("auto", "flat", "hnsw")
HNSW_FROM = 100_000
"""``kind="auto"``: an exact flat index up to this many items, HNSW above."""
HNSW_M = 32  # graph neighbours per node
HNSW_EF_CONSTRUCTION = 80  # candidate list while building
HNSW_EF_SEARCH = 256  # candidate list while searching (raised to k when k is larger)
THUMB_SIZE = 128  # longest side of a thumbnail, pixels
# searches of this many query vectors or fewer run FAISS on one OpenMP thread: one query gains
# nothing from two, and the idle thread's spinning slows what the caller does next (bench/bench_retrieval.py)
FEW_QUERIES = 8
INDEX_FILES = ("index.json", "vectors.faiss", "items.jsonl")
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class IndexItem:
    """One indexed image. ``image``: absolute path; ``thumbnail``: path relative to the index
    folder (``thumbs/<item_id>.jpg``, ``""`` when none); ``lon``/``lat``: WGS84 degrees of the
    item's centre; ``footprint``: WKT polygon in WGS84 lon/lat of the ground it covers, or None."""

    item_id: str
    platform: str
    image: str
    lon: float
    lat: float
    footprint: str | None = None
    thumbnail: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, row: Any, where: str) -> "IndexItem":
        """An item from one parsed ``items.jsonl`` line; :class:`InputFileError` naming ``where``
        (file and line) and the field at fault."""
        if not isinstance(row, dict):
            raise InputFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for name in ("item_id", "platform", "image"):
            if not isinstance(row.get(name), str) or not row[name]:
                raise InputFileError(f"{where}: '{name}' must be a non-empty string, got {row.get(name)!r}")
        for name in ("lon", "lat"):
            v = row.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputFileError(f"{where}: '{name}' must be a finite number, got {v!r}")
        footprint = row.get("footprint")
        if footprint is not None and not isinstance(footprint, str):
            raise InputFileError(f"{where}: 'footprint' must be a WKT string or null, got {footprint!r}")
        thumbnail = row.get("thumbnail") or ""
        if not isinstance(thumbnail, str):
            raise InputFileError(f"{where}: 'thumbnail' must be a string, got {thumbnail!r}")
        return cls(row["item_id"], row["platform"], row["image"], float(row["lon"]), float(row["lat"]),
                   footprint, thumbnail)


def check_item_id(item_id: str) -> str:
    """``item_id`` if it is usable as a file name (letters, digits, ``._-``; at most 200
    characters, not starting with a dot), else :class:`OptionError`."""
    if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
        raise OptionError(f"item id {item_id!r} cannot name a thumbnail file; use letters, digits, '.', '_', '-'")
    return item_id


def choose_kind(kind: str, count: int) -> str:
    """``flat`` or ``hnsw`` for ``kind`` (``auto``: flat up to :data:`HNSW_FROM` items)."""
    if kind not in KINDS:
        raise OptionError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        return "flat" if count <= HNSW_FROM else "hnsw"
    return kind


def _as_matrix(vectors: Any, what: str, dim: int | None = None) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``[N, D]`` array (a 1-D vector becomes one row);
    :class:`OptionError` naming ``what`` for a bad shape, a dimension other than ``dim`` or
    non-finite values."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise OptionError(f"{what} must be an [N, D] array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise OptionError(f"{what} have dimension {arr.shape[1]}, the index has dimension {dim}")
    if not np.all(np.isfinite(arr)):
        raise OptionError(f"{what} hold NaN or infinite values")
    return np.ascontiguousarray(arr)


def check_ef_search(ef_search) -> int | None:
    """``ef_search`` (``None`` or a whole number >= 1); :class:`OptionError` otherwise."""
    if ef_search is None:
        return None
    if isinstance(ef_search, bool) or not isinstance(ef_search, (int, np.integer)) or ef_search < 1:
        raise OptionError(f"--ef-search (HNSW candidates per query) must be a whole number of 1 or more, "
                          f"got {ef_search!r}")
    return int(ef_search)


def make_faiss_index(vectors: np.ndarray, kind: str, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION,
                     ef_search: int = HNSW_EF_SEARCH):
    """A FAISS inner-product index (``flat`` or ``hnsw``) holding ``vectors`` ([N, D] float32)
    as rows 0..N-1."""
    import faiss

    d = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        raise OptionError(f"index kind must be flat or hnsw, got {kind!r}")
    index.add(vectors)
    return index


class VectorIndex:
    """Item vectors in a FAISS inner-product index, their :class:`IndexItem` records and the
    model that made them (``model``: ``{"checkpoint": path, "model_id": id}``).

    Make one with :meth:`build` (then :meth:`save`) or :meth:`load`; ``root`` is the folder
    it was loaded from or saved to (None before)."""

    def __init__(self, faiss_index, items: Sequence[IndexItem], model: Mapping[str, Any], kind: str,
                 root: Path | None = None, hnsw: Mapping[str, int] | None = None, created: str | None = None) -> None:
        self.faiss_index = faiss_index
        self.items = list(items)
        self.model = dict(model)
        self.kind = kind
        self.root = root
        self.hnsw = dict(hnsw) if hnsw else None
        self.created = created

    @property
    def dim(self) -> int:
        return int(self.faiss_index.d)

    @property
    def count(self) -> int:
        return int(self.faiss_index.ntotal)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"VectorIndex({self.kind}, {self.count} items, dim {self.dim}, root={self.root})"

    @classmethod
    def build(cls, vectors: Any, items: Sequence[IndexItem], model: Mapping[str, Any] | None = None,
              kind: str = "auto") -> "VectorIndex":
        """An index of ``vectors`` ([N, D], row i is ``items[i]``); ``kind``: auto, flat or hnsw.
        :class:`OptionError` for no items, a count mismatch, repeated or unusable item ids,
        or vectors that are not a finite [N, D] array."""
        arr = _as_matrix(vectors, "item vectors")
        if len(items) == 0:
            raise OptionError("no items to index")
        if arr.shape[0] != len(items):
            raise OptionError(f"{arr.shape[0]} item vectors for {len(items)} items")
        seen: set[str] = set()
        for item in items:
            check_item_id(item.item_id)
            if item.item_id in seen:
                raise OptionError(f"item id {item.item_id!r} occurs twice; item ids must be unique")
            seen.add(item.item_id)
        chosen = choose_kind(kind, len(items))
        hnsw = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH} \
            if chosen == "hnsw" else None
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return cls(make_faiss_index(arr, chosen), items, model or {}, chosen, hnsw=hnsw, created=created)

    # -- search ---------------------------------------------------------------------------
    def search(self, queries: Any, k: int, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items of each query vector by inner product.

        ``queries``: [Q, D] (or one [D] vector). Returns ``(scores, ids)``, both [Q, min(k, N)]:
        float32 inner products, best first, and int64 row numbers into :attr:`items` (-1 where
        an approximate index found fewer items). ``ef_search``: candidates an ``hnsw`` index
        examines per query (default the index's own, at least ``k``; more is closer to exact
        and slower; a ``flat`` index is exact and ignores it). Up to :data:`FEW_QUERIES` queries
        run on one FAISS thread. :class:`OptionError` for ``k`` or ``ef_search`` < 1 or queries
        of the wrong dimension."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise OptionError(f"k (the number of results) must be a whole number of 1 or more, got {k!r}")
        ef_search = check_ef_search(ef_search)
        q = _as_matrix(queries, "query vectors", self.dim)
        k = int(min(k, self.count))
        import faiss

        threads = faiss.omp_get_max_threads()
        if len(q) <= FEW_QUERIES:
            faiss.omp_set_num_threads(1)
        try:
            if self.kind == "hnsw":
                ef = max(ef_search or int((self.hnsw or {}).get("ef_search", HNSW_EF_SEARCH)), k)
                scores, ids = self.faiss_index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))
            else:
                scores, ids = self.faiss_index.search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def vectors(self, rows) -> np.ndarray:
        """The stored vectors ``[len(rows), D]`` float32 of item ``rows``."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if not len(rows):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.faiss_index.reconstruct_batch(rows), np.float32)

    def thumbnail_path(self, item: IndexItem) -> Path | None:
        """Absolute path of ``item``'s thumbnail (None when it has none or the index is unsaved)."""
        if not item.thumbnail or self.root is None:
            return None
        return self.root / item.thumbnail

    # -- files ----------------------------------------------------------------------------
    def metadata(self) -> dict:
        """The content of ``index.json``."""
        meta = {"format": FORMAT, "version": VERSION, "dim": self.dim, "count": self.count, "kind": self.kind,
                "model": self.model}
        if self.hnsw:
            meta["hnsw"] = self.hnsw
        if self.created:
            meta["created"] = self.created
        meta["platforms"] = {p: sum(1 for i in self.items if i.platform == p)
                             for p in sorted({i.platform for i in self.items})}
        return meta

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write ``index.json``, ``vectors.faiss`` and ``items.jsonl`` into ``out_dir`` (an
        existing folder) all or nothing; thumbnails (:func:`write_thumbnail`) are written
        before. Returns the folder; :attr:`root` becomes it."""
        import faiss

        from smgeo_geo.vector_io import text_writer, write_all

        root = Path(os.path.abspath(out_dir))
        if not root.is_dir():
            raise OutputError(f"index folder {root} does not exist")
        index = self.faiss_index

        def write_vectors(tmp: Path) -> None:
            try:
                faiss.write_index(index, str(tmp))
            except RuntimeError as exc:
                raise OSError(" ".join(str(exc).split())[-300:]) from exc

        items_text = "".join(json.dumps(i.to_json(), ensure_ascii=False, allow_nan=False) + "\n" for i in self.items)
        meta_text = json.dumps(self.metadata(), indent=1, allow_nan=False) + "\n"
        write_all([(root / "vectors.faiss", write_vectors), (root / "items.jsonl", text_writer(items_text)),
                   (root / "index.json", text_writer(meta_text))])
        self.root = root
        return root

    @classmethod
    def load(cls, index_dir: str | os.PathLike) -> "VectorIndex":
        """Open an index folder; :class:`InputFileError` naming the file and what is wrong when
        the folder is missing, is not an index, or its files are corrupt or disagree."""
        import faiss

        root = Path(os.path.abspath(index_dir))
        if not root.exists():
            raise InputFileError(f"index folder {root} not found")
        if not root.is_dir():
            raise InputFileError(f"index {root} is not a folder (give the folder smgeo index build wrote)")
        meta = read_index_json(root)
        vec_path = root / "vectors.faiss"
        if not vec_path.is_file():
            raise InputFileError(f"{vec_path} not found; the index folder is incomplete (rebuild it)")
        try:
            index = faiss.read_index(str(vec_path))
        except (RuntimeError, MemoryError) as exc:
            raise InputFileError(f"{vec_path} is not a readable FAISS index ({_short(exc)})") from None
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise InputFileError(f"{vec_path}: the index does not use the inner-product metric")
        if index.d != meta["dim"] or index.ntotal != meta["count"]:
            raise InputFileError(f"{vec_path} holds {index.ntotal} vectors of dimension {index.d}; index.json says "
                                 f"{meta['count']} of dimension {meta['dim']} (rebuild the index)")
        items = read_items(root / "items.jsonl")
        if len(items) != meta["count"]:
            raise InputFileError(f"{root / 'items.jsonl'} has {len(items)} items; index.json says {meta['count']} "
                                 f"(rebuild the index)")
        if meta["kind"] == "hnsw":
            index.hnsw.efSearch = int(meta.get("hnsw", {}).get("ef_search", HNSW_EF_SEARCH))
        return cls(index, items, meta["model"], meta["kind"], root=root, hnsw=meta.get("hnsw"),
                   created=meta.get("created"))


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else "..." + text[-197:]


def read_index_json(root: Path) -> dict:
    """The checked content of ``root/index.json`` (:class:`InputFileError` naming the field)."""
    path = root / "index.json"
    if not path.is_file():
        raise InputFileError(f"{root} is not an index folder: {path.name} not found (make one with smgeo index build)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"{path} is not readable JSON ({_short(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputFileError(f"{path}: 'format' must be {FORMAT!r}; this is not a retrieval index")
    if meta.get("version") != VERSION:
        raise InputFileError(f"{path}: 'version' {meta.get('version')!r} is not supported (expected {VERSION})")
    for name in ("dim", "count"):
        v = meta.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "dim" else 0):
            raise InputFileError(f"{path}: '{name}' must be a whole number, got {v!r}")
    if meta.get("kind") not in ("flat", "hnsw"):
        raise InputFileError(f"{path}: 'kind' must be 'flat' or 'hnsw', got {meta.get('kind')!r}")
    model = meta.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("checkpoint", "model_id")):
        raise InputFileError(f"{path}: 'model' must be an object with strings 'checkpoint' and 'model_id'")
    if "hnsw" in meta and not isinstance(meta["hnsw"], dict):
        raise InputFileError(f"{path}: 'hnsw' must be an object")
    return meta


def read_items(path: Path) -> list[IndexItem]:
    """The :class:`IndexItem` rows of an index's ``items.jsonl``."""
    if not path.is_file():
        raise InputFileError(f"{path} not found; the index folder is incomplete (rebuild it)")
    items = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise InputFileError(f"{path}, line {n}: not JSON ({_short(exc)})") from None
                items.append(IndexItem.from_json(row, f"{path}, line {n}"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path} cannot be read ({_short(exc)})") from None
    return items


# -- the folder -------------------------------------------------------------------------------
def check_index_folder(out_dir: str | os.PathLike, name: str = "index folder") -> Path:
    """Refuse, before any work, an output index folder that would destroy something: a file,
    or a folder holding files that are not an index (``name`` is the option shown). An
    empty folder, an existing index (rebuilt in place) or a new folder are fine."""
    from smgeo_geo.vector_io import check_output_folder

    root = Path(os.path.abspath(out_dir))
    check_output_folder(name, root)
    if root.is_dir() and any(root.iterdir()) and not (root / "index.json").is_file():
        raise OutputError(f"{name} {root} holds other files and is not an index; give a new or empty folder")
    return root


def thumbnail_name(item_id: str) -> str:
    """The thumbnail's path relative to the index folder."""
    return f"thumbs/{check_item_id(item_id)}.jpg"


def thumbnail_jpeg(rgb: np.ndarray, size: int = THUMB_SIZE):
    """A writer of ``rgb`` (HxWx3 uint8) as a JPEG whose longest side is at most ``size`` pixels."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    im.thumbnail((size, size), Image.Resampling.BILINEAR)

    def write(tmp: Path) -> None:
        im.save(tmp, format="JPEG", quality=85)

    return write


def write_thumbnail(root: Path, item_id: str, rgb: np.ndarray, size: int = THUMB_SIZE) -> str:
    """Write ``root/thumbs/<item_id>.jpg`` (the folder is made); returns the relative path."""
    from smgeo_geo.vector_io import write_all

    rel = thumbnail_name(item_id)
    (root / "thumbs").mkdir(exist_ok=True)
    write_all([(root / rel, thumbnail_jpeg(rgb, size))])
    return rel


def remove_stale_thumbnails(index: VectorIndex) -> int:
    """Delete thumbnails in ``index.root/thumbs`` that no item names (left by an earlier build
    in the same folder); returns how many."""
    if index.root is None or not (index.root / "thumbs").is_dir():
        return 0
    keep = {Path(i.thumbnail).name for i in index.items if i.thumbnail}
    removed = 0
    for entry in (index.root / "thumbs").iterdir():
        if entry.suffix == ".jpg" and not entry.name.startswith(".") and entry.name not in keep and entry.is_file():
            entry.unlink()
            removed += 1
    return removed
