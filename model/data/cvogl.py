"""Reader and writer for the CVOGL dataset layout (DetGeo / SMGeo benchmark).

Layout (exact, as published)::

    DATA_ROOT/<name>/                      e.g. CVOGL_DroneAerial, CVOGL_SVI, SYNTH_DroneAerial
        query/<query file>                 drone photo (256x256) or street view (256x512)
        satellite/<E>_<N>_<extent>_<EPSG>.jpg   satellite tile, 1024x1024
        <name>_train.pth, <name>_val.pth, <name>_test.pth

Each list file is a ``torch.save``'d Python list of 8-tuples (lists accepted too)::

    (0 id, 1 query file, 2 satellite file, 3 unused, 4 click (x, y), 5 box [x1, y1, x2, y2],
     6 unused, 7 class name)

Fields 0, 3 and 6 are not used by loaders; the synthetic generator fills 0 with an int id,
3 with the drone heading in degrees and 6 with the object's area in m^2.

Coordinate frames: the click is in query pixels, the box in satellite pixels; both with
x = column, y = row and (0, 0) the top-left corner of the top-left pixel (so a box may
reach x2 = width). Lists are read with ``torch.load(weights_only=True)``: a list file
carrying code (a pickle with ``__reduce__``) is refused without running anything.

Only torch, numpy and Pillow are used here (no GDAL): :func:`satellite_georef` parses the
georeferencing that CVOGL encodes in satellite file names.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from smgeo_model.errors import DatasetError
from smgeo_model.fileio import atomic_path

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CVOGLItem:
    """One pair of a split. ``click`` (x, y) in query pixels; ``box`` (x1, y1, x2, y2) in
    satellite pixels; ``index`` is the item's position in its list file (in the joined list for
    :meth:`CVOGLDataset.joined`)."""

    index: int
    query_path: Path
    satellite_path: Path
    click: tuple[float, float]
    box: tuple[float, float, float, float]
    class_name: str


def list_path(root: str | os.PathLike, name: str, split: str) -> Path:
    """``root/name/name_split.pth``."""
    return Path(root) / name / f"{name}_{split}.pth"


def _number(value, what: str, where: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{where}: {what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DatasetError(f"{where}: {what} must be finite, got {value!r}")
    return float(value)


def _numbers(value, n: int, what: str, where: str) -> tuple[float, ...]:
    if isinstance(value, torch.Tensor):
        value = value.flatten().tolist()
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise DatasetError(f"{where}: {what} must be a list of {n} numbers, got {value!r}")
    return tuple(_number(v, f"{what} value", where) for v in value)


def _file_name(value, what: str, where: str) -> str:
    if not isinstance(value, str) or not value or value != os.path.basename(value):
        raise DatasetError(f"{where}: {what} must be a plain file name, got {value!r}")
    return value


def _image_size(path: Path, what: str, where: str) -> tuple[int, int]:
    """(width, height) from the image header; DatasetError if missing or unreadable."""
    if not path.is_file():
        raise DatasetError(f"{where}: {what} {path} does not exist")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{where}: {what} {path} cannot be read as an image ({exc})") from None


def load_list(path: str | os.PathLike) -> list:
    """The raw list of a CVOGL list file, loaded with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"list file {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"list file {path} cannot be loaded safely (weights_only=True refuses "
                           f"anything but plain data): {first}") from None
    if not isinstance(data, (list, tuple)):
        raise DatasetError(f"list file {path} must hold a list of 8-tuples, got {type(data).__name__}")
    return list(data)


def read_split(root: str | os.PathLike, name: str, split: str, check_images: bool = True) -> list[CVOGLItem]:
    """Read and validate ``root/name/name_split.pth``.

    Every problem raises :class:`DatasetError` naming the list file and item index (missing
    folder or list, item not an 8-tuple, malformed click/box/class, missing image, box or
    click outside its image); nothing is silently dropped. ``check_images`` opens every
    image header to check existence and bounds (cheap; turn off only for trusted data).
    """
    folder = Path(root) / name
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist (expected DATA_ROOT/{name}/ with query/, "
                           f"satellite/ and {name}_<split>.pth)")
    for sub in ("query", "satellite"):
        if not (folder / sub).is_dir():
            raise DatasetError(f"dataset folder {folder} has no {sub}/ folder")
    path = list_path(root, name, split)
    if not path.is_file():
        raise DatasetError(f"list file {path} does not exist (split {split!r} of {folder})")
    raw = load_list(path)
    sizes: dict[Path, tuple[int, int]] = {}
    items = []
    for i, entry in enumerate(raw):
        where = f"{path} item {i}"
        if not isinstance(entry, (tuple, list)) or len(entry) != 8:
            got = f"{type(entry).__name__} of length {len(entry)}" if isinstance(entry, (tuple, list)) else repr(entry)
            raise DatasetError(f"{where}: expected an 8-tuple (id, query, satellite, _, click, box, _, class), "
                               f"got {got}")
        query = folder / "query" / _file_name(entry[1], "query file name", where)
        sat = folder / "satellite" / _file_name(entry[2], "satellite file name", where)
        click = _numbers(entry[4], 2, "click (x, y)", where)
        box = _numbers(entry[5], 4, "box [x1, y1, x2, y2]", where)
        cls = entry[7]
        if not isinstance(cls, str) or not cls:
            raise DatasetError(f"{where}: class name must be a non-empty string, got {cls!r}")
        if not (box[0] < box[2] and box[1] < box[3]):
            raise DatasetError(f"{where}: box {list(box)} is empty or not ordered x1 < x2, y1 < y2")
        if check_images:
            for p, what in ((query, "query image"), (sat, "satellite image")):
                if p not in sizes:
                    sizes[p] = _image_size(p, what, where)
            w, h = sizes[sat]
            if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
                raise DatasetError(f"{where}: box {list(box)} lies outside satellite image {sat.name} ({w}x{h})")
            w, h = sizes[query]
            if not (0 <= click[0] <= w and 0 <= click[1] <= h):
                raise DatasetError(f"{where}: click {list(click)} lies outside query image {query.name} ({w}x{h})")
        items.append(CVOGLItem(i, query, sat, click, box, cls))  # type: ignore[arg-type]
    return items


def write_split(root: str | os.PathLike, name: str, split: str, items: Sequence[Sequence]) -> Path:
    """Write ``root/name/name_split.pth`` in the exact CVOGL format.

    ``items``: 8-tuples ``(id, query file, satellite file, field3, (x, y), [x1, y1, x2, y2],
    field6, class)`` (any sequences; numbers are stored as Python floats/ints). The file is
    written to a temporary name and renamed, so readers never see half a list; the same items
    always give the same bytes.
    """
    out = []
    for i, it in enumerate(items):
        if len(it) != 8:
            raise DatasetError(f"write_split: item {i} has {len(it)} fields, expected 8")
        out.append((int(it[0]), str(it[1]), str(it[2]), _plain(it[3]), tuple(float(v) for v in it[4]),
                    [float(v) for v in it[5]], _plain(it[6]), str(it[7])))
    out = _canonical(out)
    path = list_path(root, name, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the legacy (non-zip) format is byte-for-byte reproducible (the zip one stores a random id)
    with atomic_path(path, DatasetError) as tmp:
        torch.save(out, tmp, _use_new_zipfile_serialization=False)
    return path


def _canonical(items: list[tuple]) -> list[tuple]:
    """Fresh, unshared objects: pickle memoises shared strings, so without this the bytes
    would depend on where the items came from (one process or several)."""
    try:
        fresh = json.loads(json.dumps(items))
    except (TypeError, ValueError):  # fields 3/6 hold something JSON cannot carry: keep as is
        return items
    return [(a, b, c, d, tuple(e), f, g, h) for a, b, c, d, e, f, g, h in fresh]


def _plain(v):
    """numpy scalars -> Python numbers (lists must load with weights_only=True)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


_GEOREF = re.compile(r"^(-?\d+(?:\.\d+)?)_(-?\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)_(\d{4,5})$")


def satellite_georef(file_name: str | os.PathLike) -> tuple[int, float, float, float]:
    """Parse a CVOGL satellite name ``<easting>_<northing>_<extent>_<EPSG>.<ext>``.

    Returns ``(epsg, centre_easting, centre_northing, extent_m)``: the tile centre in the
    projected CRS ``EPSG:<epsg>`` (metres) and the tile's width in metres (north-up, square,
    so the pixel size is ``extent_m / width_px``). Pure string parsing.
    """
    stem = Path(file_name).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    m = _GEOREF.match(stem)
    if not m:
        raise DatasetError(f"satellite file name {str(file_name)!r} is not of the CVOGL form "
                           f"<easting>_<northing>_<extent>_<EPSG>.jpg (e.g. 547433_5280574_512_32610.jpg)")
    e, n, extent, epsg = float(m[1]), float(m[2]), float(m[3]), int(m[4])
    if extent <= 0:
        raise DatasetError(f"satellite file name {str(file_name)!r}: extent must be positive")
    return epsg, e, n, extent


def _size_hw(size: int | Sequence[int] | None, what: str) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) <= 0:
        raise DatasetError(f"{what} must be a positive int or (height, width), got {size!r}")
    return hw  # type: ignore[return-value]


def load_rgb(path: Path) -> torch.Tensor:
    """``[3, H, W]`` float RGB in [0, 1]."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"image {path} cannot be read ({exc})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def _resize(image: torch.Tensor, hw: tuple[int, int] | None) -> tuple[torch.Tensor, float, float]:
    """Resize ``[3,H,W]`` to ``hw``; returns the image and the (sx, sy) point scale."""
    h, w = image.shape[-2:]
    if hw is None or (h, w) == hw:
        return image, 1.0, 1.0
    shrink = hw[0] < h or hw[1] < w
    out = F.interpolate(image[None], size=hw, mode="bilinear", align_corners=False, antialias=shrink)[0]
    return out.clamp_(0, 1), hw[1] / w, hw[0] / h


class CVOGLDataset(Dataset):
    """CVOGL split as a torch dataset.

    Each sample is a dict: ``query`` ``[3,hq,wq]`` and ``reference`` ``[3,Hr,Wr]`` float RGB in
    [0, 1]; ``click`` ``[2]`` (x, y query px); ``box`` ``[4]`` (x1, y1, x2, y2 reference px);
    ``class_name``, ``query_name``, ``satellite_name`` (file names) and ``index`` (position in
    the list). ``query_size`` / ``reference_size`` (int or (height, width)) resize the images
    and scale click and box with them; ``transform`` (e.g. ``PairAugment``) gets the sample dict
    last and returns the augmented one.

    ``points`` (optional): query file name -> ``[[x, y, col, row], ...]``, further photo pixels
    (x, y) with the reference pixel (col, row) each one shows, in the files' own pixels (as
    ``smgeo realpairs`` records them in its manifest, ``pairs_info[i]["points"]``). Samples then
    carry ``points`` ``[max_points, 4]`` scaled like click and box, NaN rows where a pair has
    fewer; training uses them as further clicks (``smgeo_model.train``).
    """

    def __init__(self, root: str | os.PathLike, name: str = "CVOGL_DroneAerial", split: str = "train",
                 reference_size: int | Sequence[int] | None = None, query_size: int | Sequence[int] | None = None,
                 transform: Callable[[dict], dict] | None = None, check_images: bool = True,
                 points: dict[str, Sequence[Sequence[float]]] | None = None, max_points: int = 8) -> None:
        self.items = read_split(root, name, split, check_images=check_images)
        self.reference_size = _size_hw(reference_size, "reference_size")
        self.query_size = _size_hw(query_size, "query_size")
        self.transform = transform
        self.points = points
        self.max_points = max_points

    @classmethod
    def joined(cls, root: str | os.PathLike, names: Sequence[str], split: str = "train", **kwargs) -> "CVOGLDataset":
        """The ``split`` of several dataset folders under ``root`` as one dataset, in the order
        given (e.g. generated towns and real-texture pairs trained on together). Items are
        renumbered ``0..N-1`` in that order, so ``index`` (which seeds augmentation) stays unique;
        ``kwargs`` as for the constructor (``points`` is keyed by query file name, which folders
        may share: give it for one folder only)."""
        if not names:
            raise DatasetError(f"{root}: no dataset names given")
        first = cls(root, names[0], split, **kwargs)
        for name in names[1:]:
            first.items += read_split(root, name, split, check_images=kwargs.get("check_images", True))
        first.items = [replace(item, index=i) for i, item in enumerate(first.items)]
        return first

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        item = self.items[i]
        query, qx, qy = _resize(load_rgb(item.query_path), self.query_size)
        reference, rx, ry = _resize(load_rgb(item.satellite_path), self.reference_size)
        sample = {
            "query": query,
            "click": torch.tensor([item.click[0] * qx, item.click[1] * qy], dtype=torch.float32),
            "reference": reference,
            "box": torch.tensor(item.box, dtype=torch.float32) * torch.tensor([rx, ry, rx, ry]),
            "class_name": item.class_name,
            "query_name": item.query_path.name,
            "satellite_name": item.satellite_path.name,
            "index": item.index,
        }
        if self.points is not None:
            table = torch.full((self.max_points, 4), float("nan"))
            rows = torch.tensor(self.points.get(item.query_path.name, []), dtype=torch.float32).reshape(-1, 4)
            rows = rows[: self.max_points] * torch.tensor([qx, qy, rx, ry])
            table[: len(rows)] = rows
            sample["points"] = table
        return self.transform(sample) if self.transform is not None else sample
