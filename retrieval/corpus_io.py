"""Reading and writing a retrieval corpus folder (format: ``docs/retrieval.md``). No torch.

``CORPUS/corpus.json`` (metadata), ``CORPUS/items.jsonl`` (one :class:`CorpusItem` a line,
sorted by ``item_id``) and the images under ``CORPUS/images/<platform>/``. Coordinates:
``lon``, ``lat`` WGS84 degrees; ``footprint`` a WKT polygon in WGS84 (x = lon, y = lat).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from smgeo_geo.errors import ImageError, ManifestError, OutputError
from smgeo_model.fileio import write_text

CORPUS_FORMAT = "smgeo-retrieval-corpus"
CORPUS_VERSION = 1
META_FILE = "corpus.json"
ITEMS_FILE = "items.jsonl"
PLATFORMS = ("satellite", "drone", "ground")
SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = {"satellite": ".tif", "drone": ".jpg", "ground": ".jpg"}
META_KEYS = {"format": str, "version": int, "seed": int, "places": int, "platforms": list, "image_size": int,
             "crs": str}


@dataclass(frozen=True)
class CorpusItem:
    """One line of ``items.jsonl``: ``image`` is relative to the corpus folder; ``lon``/``lat``
    WGS84 degrees of the item's centre (tile centre; camera position for drone/ground);
    ``footprint`` WKT polygon (lon lat) of the ground shown, or None."""

    item_id: str
    place_id: str
    platform: str
    split: str
    image: str
    lon: float
    lat: float
    footprint: str | None
    caption: str
    query: str

    def to_json(self) -> str:
        """The item as one JSON line (keys in field order, no trailing newline)."""
        return json.dumps(asdict(self), ensure_ascii=False)


_FIELD_TYPES = {"item_id": str, "place_id": str, "platform": str, "split": str, "image": str, "lon": float,
                "lat": float, "footprint": (str, type(None)), "caption": str, "query": str}


def _item_from(obj, where: str) -> CorpusItem:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    names = [f.name for f in fields(CorpusItem)]
    missing = [n for n in names if n not in obj]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    for n in names:
        want = _FIELD_TYPES[n]
        v = obj[n]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) if want is float \
            else isinstance(v, want)
        if not ok:
            raise ManifestError(f"{where}: field {n!r} has the wrong type ({v!r})")
    if obj["platform"] not in PLATFORMS:
        raise ManifestError(f"{where}: platform {obj['platform']!r} is not one of {', '.join(PLATFORMS)}")
    if obj["split"] not in SPLITS:
        raise ManifestError(f"{where}: split {obj['split']!r} is not one of {', '.join(SPLITS)}")
    if not -180 <= obj["lon"] <= 180 or not -90 <= obj["lat"] <= 90:
        raise ManifestError(f"{where}: lon/lat {obj['lon']}, {obj['lat']} out of range")
    if not obj["item_id"] or not obj["place_id"]:
        raise ManifestError(f"{where}: empty item_id or place_id")
    img = obj["image"]
    if Path(img).is_absolute() or ".." in Path(img).parts:
        raise ManifestError(f"{where}: image path {img!r} must be relative to the corpus folder")
    return CorpusItem(**{n: (float(obj[n]) if _FIELD_TYPES[n] is float else obj[n]) for n in names})


def read_meta(folder: str | os.PathLike) -> dict:
    """``corpus.json`` of ``folder``, checked (:class:`ManifestError` naming the file)."""
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise ManifestError(f"{path}: not found (is {folder} a retrieval corpus? make one with "
                            f"'smgeo synth-retrieval')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid UTF-8 JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    for key, typ in META_KEYS.items():
        if not isinstance(meta.get(key), typ) or isinstance(meta.get(key), bool):
            raise ManifestError(f"{path}: key {key!r} missing or not a {typ.__name__}")
    if meta["format"] != CORPUS_FORMAT:
        raise ManifestError(f"{path}: format {meta['format']!r} is not {CORPUS_FORMAT!r}")
    if meta["version"] != CORPUS_VERSION:
        raise ManifestError(f"{path}: corpus version {meta['version']} is not supported (expected {CORPUS_VERSION})")
    return meta


def read_items(path: str | os.PathLike) -> list[CorpusItem]:
    """Items of an ``items.jsonl`` file (blank lines skipped); :class:`ManifestError` names
    the file and line of the first bad one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: not found") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    items = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc.msg})") from None
        item = _item_from(obj, where)
        if item.item_id in seen:
            raise ManifestError(f"{where}: item_id {item.item_id!r} appears twice")
        seen.add(item.item_id)
        items.append(item)
    if not items:
        raise ManifestError(f"{path}: holds no items")
    return items


def read_corpus(folder: str | os.PathLike, check_images: bool = False) -> tuple[dict, list[CorpusItem]]:
    """``(meta, items)`` of a corpus folder, validated: metadata keys, item fields, platforms
    listed in the metadata, one split per place; with ``check_images`` every image file must
    exist."""
    folder = Path(folder)
    meta = read_meta(folder)
    path = folder / ITEMS_FILE
    items = read_items(path)
    platforms = set(meta["platforms"])
    split_of: dict[str, str] = {}
    for n, it in enumerate(items, 1):
        if it.platform not in platforms:
            raise ManifestError(f"{path}: item {it.item_id!r} has platform {it.platform!r}, not listed in "
                                f"{META_FILE} ({', '.join(sorted(platforms))})")
        if split_of.setdefault(it.place_id, it.split) != it.split:
            raise ManifestError(f"{path}: place {it.place_id!r} is in two splits ({split_of[it.place_id]}, "
                                f"{it.split}); splits must be by place")
        if check_images and not (folder / it.image).is_file():
            raise ManifestError(f"{path}: image {it.image} of item {it.item_id!r} is missing")
    return meta, items


def load_image(folder: str | os.PathLike, item: CorpusItem) -> np.ndarray:
    """RGB pixels ``(H, W, 3)`` uint8 of ``item`` (rasterio for GeoTIFFs, Pillow for JPEGs)."""
    path = Path(folder) / item.image
    if not path.is_file():
        raise ImageError(f"{path}: image of item {item.item_id!r} not found")
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio

        try:
            with rasterio.open(path) as ds:
                arr = ds.read(indexes=[1, 2, 3] if ds.count >= 3 else [1, 1, 1])
        except rasterio.errors.RasterioError as exc:
            raise ImageError(f"{path}: cannot read ({exc})") from None
        return np.ascontiguousarray(np.moveaxis(arr, 0, -1).astype(np.uint8, copy=False))
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{path}: cannot read ({exc})") from None


def write_items(path: str | os.PathLike, items: list[CorpusItem]) -> None:
    """Atomically write ``items`` (sorted by ``item_id``) as JSON lines to ``path``."""
    ordered = sorted(items, key=lambda it: it.item_id)
    write_text(path, "".join(it.to_json() + "\n" for it in ordered), OutputError)


def write_meta(path: str | os.PathLike, meta: dict) -> None:
    """Atomically write ``meta`` as ``corpus.json`` (sorted keys, indented)."""
    write_text(path, json.dumps(meta, indent=2, sort_keys=True) + "\n", OutputError)
