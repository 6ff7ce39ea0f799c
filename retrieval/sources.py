"""What ``smgeo index build`` indexes: the items of a corpus folder, or a folder of images. No torch.

* :class:`CorpusSource`: the items of a corpus folder's ``items.jsonl`` (optionally one split);
  platform, centre and footprint as the corpus gives them.
* :class:`ImageFolder`: every GeoTIFF (``.tif``/``.tiff``) and JPEG (``.jpg``/``.jpeg``) under a
  folder, recursively, in sorted order. A GeoTIFF is a ``satellite`` item: centre = the raster's
  centre, footprint = its four edges (densified) reprojected to WGS84. A JPEG is a drone or
  ground photo at its EXIF/DJI GPS position, without footprint; the platform comes from
  :func:`photo_platform`. Images that cannot be placed (no GPS, no georeferencing) are skipped
  and named in the ``skipped`` list.

Positions are WGS84 lon/lat degrees (x = lon, y = lat); footprints WKT polygons in lon/lat.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smgeo_geo.errors import InputFileError, OptionError, SMGeoError

PLATFORMS = ("satellite", "drone", "ground")
PHOTO_PLATFORMS = ("auto", "drone", "ground")
DRONE_MIN_HEIGHT_M = 10.0
DRONE_MAKERS = ("dji", "parrot", "skydio", "autel", "yuneec", "sensefly", "ageagle", "micasense", "sentera",
                "wingtra", "freefly", "teal")  # EXIF Make prefixes (lower case) of drone cameras
"""A photo taken this high or higher (DJI relative altitude, else EXIF GPS altitude) is a drone photo."""
TIFF_SUFFIXES = (".tif", ".tiff")
JPEG_SUFFIXES = (".jpg", ".jpeg")
FOOTPRINT_DENSIFY = 8  # points added per raster edge before reprojecting
LONLAT_DECIMALS = 7  # about 1 cm


@dataclass(frozen=True)
class SourceItem:
    """One image to index: ``image`` absolute path; ``lon``/``lat`` WGS84 degrees of its centre;
    ``footprint`` WKT lon/lat polygon or None; ``kind`` how to read its pixels (geotiff/photo)."""

    item_id: str
    platform: str
    image: str
    lon: float
    lat: float
    footprint: str | None
    kind: str
    origin: tuple | None = field(default=None, compare=False, repr=False)  # (corpus folder, CorpusItem)


@dataclass(frozen=True)
class CorpusSource:
    """The items of corpus folder ``folder`` (``split``: train, val, test or None for all)."""

    folder: Path
    split: str | None = None

    def items(self, exclude: Path | None = None) -> tuple[list[SourceItem], list[str]]:
        from smgeo_retrieval.corpus_io import read_corpus

        _, rows = read_corpus(self.folder)
        if self.split is not None:
            rows = [r for r in rows if r.split == self.split]
            if not rows:
                raise OptionError(f"corpus {self.folder} has no items in split {self.split!r}")
        root = Path(os.path.abspath(self.folder))
        out = []
        for r in rows:
            out.append(SourceItem(r.item_id, r.platform, str(root / r.image), float(r.lon), float(r.lat), r.footprint,
                                  "corpus", (root, r)))
        return out, []


@dataclass(frozen=True)
class ImageFolder:
    """GeoTIFF tiles and GPS-tagged JPEG photos under ``folder`` (see the module docstring);
    ``photo_platform``: ``auto`` (:func:`photo_platform`), or ``drone`` / ``ground`` for all photos."""

    folder: Path
    photo_platform: str = "auto"

    def items(self, exclude: Path | None = None) -> tuple[list[SourceItem], list[str]]:
        """The placed images and the skipped ones (``"path: reason"``); files under ``exclude``
        (the index being written) are ignored."""
        from smgeo_geo.photo_meta import read_photo_meta

        if self.photo_platform not in PHOTO_PLATFORMS:
            raise OptionError(f"photo platform must be one of {', '.join(PHOTO_PLATFORMS)}, "
                              f"got {self.photo_platform!r}")
        root = Path(os.path.abspath(self.folder))
        if not root.is_dir():
            raise InputFileError(f"images folder {root} {'is not a folder' if root.exists() else 'not found'}")
        files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in TIFF_SUFFIXES + JPEG_SUFFIXES
                 and p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
                 and not (exclude is not None and exclude in p.parents)]
        items, skipped = [], []
        for p in files:
            item_id = _file_item_id(p.relative_to(root))
            try:
                if p.suffix.lower() in TIFF_SUFFIXES:
                    lon, lat, footprint = geotiff_place(p)
                    items.append(SourceItem(item_id, "satellite", str(p), lon, lat, footprint, "geotiff"))
                    continue
                meta = read_photo_meta(p)
            except SMGeoError as exc:
                skipped.append(f"{p}: {' '.join(str(exc).split())}")
                continue
            if meta.lon is None or meta.lat is None:
                skipped.append(f"{p}: no GPS position")
                continue
            platform = photo_platform(meta) if self.photo_platform == "auto" else self.photo_platform
            items.append(SourceItem(item_id, platform, str(p), round(float(meta.lon), LONLAT_DECIMALS),
                                    round(float(meta.lat), LONLAT_DECIMALS), None, "photo"))
        return items, skipped


def _file_item_id(rel: Path) -> str:
    """An item id from a path relative to the images folder: ``sub/IMG 01.JPG`` -> ``sub_IMG_01``."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(rel.with_suffix("").parts)).strip("._-") or "image"
    return text[:190] if text[0].isalnum() else f"x{text[:189]}"


def unique_ids(items: list[SourceItem]) -> list[SourceItem]:
    """``items`` with repeated ids made unique by ``-2``, ``-3``, ... suffixes (first keeps its id)."""
    from dataclasses import replace

    used: set[str] = set()
    out = []
    for item in items:
        new, n = item.item_id, 1
        while new in used:
            n += 1
            new = f"{item.item_id}-{n}"
        used.add(new)
        out.append(item if new == item.item_id else replace(item, item_id=new))
    return out


def photo_platform(meta) -> str:
    """``drone`` or ``ground`` for a photo's :class:`~smgeo_geo.photo_meta.PhotoMeta`, by the first
    rule that applies:

    1. the height above take-off (XMP relative altitude) when known: drone from
       :data:`DRONE_MIN_HEIGHT_M`;
    2. camera angles in the XMP (DJI, Parrot, Skydio or Pix4D tags): drone;
    3. the EXIF ``Make``: a drone maker (:data:`DRONE_MAKERS`) means drone, any other maker (a
       phone, a hand-held camera) ground;
    4. photos of the generated corpora (``Make`` :data:`~smgeo_retrieval.corpus.georef.GENERATED_MAKE`)
       or without a maker: the EXIF GPS altitude (metres above sea level, so this rule only suits
       scenes near sea level, as generated ones are; pass ``--photo-platform`` for others)."""
    from smgeo_retrieval.corpus.georef import GENERATED_MAKE

    if meta.relative_altitude is not None:
        return "drone" if meta.relative_altitude >= DRONE_MIN_HEIGHT_M else "ground"
    if meta.gimbal_pitch is not None or meta.attitude_source:
        return "drone"
    make = (meta.make or "").strip().lower()
    if make and make != GENERATED_MAKE.lower():
        return "drone" if make.startswith(DRONE_MAKERS) else "ground"
    if meta.gps_altitude is not None and meta.gps_altitude >= DRONE_MIN_HEIGHT_M:
        return "drone"
    return "ground"


def geotiff_place(path: str | os.PathLike) -> tuple[float, float, str]:
    """``(lon, lat, footprint WKT)`` of a georeferenced raster: the WGS84 lon/lat of its centre
    and of its outline (the four raster edges, densified, as a counter-clockwise polygon).
    :class:`RasterError` / :class:`NotGeoreferencedError` / :class:`CRSError` naming the file."""
    from shapely import wkt

    from smgeo_geo.coords import pixel_box_to_polygon, pixel_to_lonlat, polygon_to_lonlat
    from smgeo_geo.raster import open_reference

    with open_reference(path) as raster:
        lon, lat = pixel_to_lonlat(raster.transform, raster.crs, raster.width / 2, raster.height / 2)
        box = pixel_box_to_polygon(raster.transform, (0, 0, raster.width, raster.height))
        poly = polygon_to_lonlat(box, raster.crs, densify=FOOTPRINT_DENSIFY)
    return round(float(lon), LONLAT_DECIMALS), round(float(lat), LONLAT_DECIMALS), \
        wkt.dumps(poly, rounding_precision=LONLAT_DECIMALS, trim=True)


def load_rgb(item: SourceItem, max_side: int = 512) -> np.ndarray:
    """``HxWx3`` uint8 pixels of ``item``, its longest side at most ``max_side`` pixels.

    Corpus items: :func:`smgeo_retrieval.corpus_io.load_image` (as training reads them), then
    shrunk. GeoTIFFs: the whole raster, decimated on read (overviews when present; non-8-bit data
    stretched 2-98 %). Photos: upright by EXIF orientation (JPEG decoded at reduced size).
    :class:`RasterError` / :class:`ImageError` naming the file."""
    from PIL import Image, ImageOps

    if item.kind == "corpus":
        from smgeo_retrieval.corpus_io import load_image

        rgb = load_image(*item.origin)
        if max(rgb.shape[:2]) <= max_side:
            return rgb
        im = Image.fromarray(rgb)
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        return np.array(im)
    if item.kind == "geotiff":
        from rasterio.windows import Window

        from smgeo_geo.raster import open_reference

        with open_reference(item.image, stretch="raster") as raster:
            w, h = raster.width, raster.height
            f = max(w, h) / max_side if max(w, h) > max_side else 1.0
            size = (max(1, round(w / f)), max(1, round(h / f)))
            rgb, _ = raster.read_window(Window(0, 0, w, h), size)
        return rgb
    from smgeo_geo.errors import ImageError
    from smgeo_geo.photo import open_photo

    with open_photo(item.image) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4 or 1/8 size when that suffices
        try:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            rgb = np.array(im, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"photo {item.image} cannot be decoded ({' '.join(str(exc).split())})") from None
    return rgb
