"""Where the places are on Earth, and the georeferencing written into the files.

Each corpus lies in one real projected CRS (WGS 84 / UTM north zone, drawn from the seed
among :data:`smgeo_synth.georef.ZONES`); place ``i``'s target centre gets a unique
(easting, northing) cell of a :class:`~smgeo_synth.georef.TileGrid` (cells 1 km or more
apart). Scene metres (x east, y south, origin at the scene's north-west corner) map to UTM
by a translation: ``E = E0 + (x - x0)``, ``N = N0 - (y - y0)`` with (x0, y0) the target
centre in scene metres and (E0, N0) its UTM position.

Coordinates written out: ``lon``, ``lat`` (WGS84 degrees, x = lon, y = lat) rounded to
:data:`LONLAT_DECIMALS`; satellite tiles are GeoTIFFs in the UTM zone; drone and ground
JPEGs carry EXIF GPS (latitude, longitude, altitude in metres above the scene ground).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyproj
from PIL import ExifTags, Image

from smgeo_synth.georef import ZONES, TileGrid

LONLAT_DECIMALS = 7  # about 1 cm
GENERATED_MAKE = "SMGeo synth"  # EXIF Make of the generated photos
EXIF_SECONDS_DENOMINATOR = 10**6  # EXIF GPS seconds as rationals n / 10^6 (3e-11 degree steps)
GRID_EXTENT_M = 600.0  # tile extent for the place grid: cells of 1 km


def corpus_epsg(seed: int) -> int:
    """The UTM zone (EPSG code) of the corpus of ``seed``."""
    zones = sorted(ZONES)
    return zones[int(np.random.default_rng(np.random.SeedSequence([seed, 0xE95])).integers(len(zones)))]


def place_grid(seed: int, places: int) -> TileGrid:
    """Grid of unique place centres for a corpus (``places`` must fit: checked by the caller)."""
    epsg = corpus_epsg(seed)
    return TileGrid(epsg, GRID_EXTENT_M, int(np.random.default_rng(np.random.SeedSequence([seed, 0x0FF]))
                                            .integers(1 << 30)))


@functools.lru_cache(maxsize=16)
def _to_wgs84(epsg: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class PlaceFrame:
    """Scene metres <-> UTM of one place: scene point (x0, y0) sits at UTM (e0, n0)."""

    epsg: int
    x0: float
    y0: float
    e0: float
    n0: float

    def utm(self, xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` scene (x east, y south) metres -> ``(N, 2)`` UTM (easting, northing)."""
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        return np.c_[self.e0 + (xy[:, 0] - self.x0), self.n0 - (xy[:, 1] - self.y0)]

    def lonlat(self, xy: np.ndarray) -> np.ndarray:
        """``(N, 2)`` scene metres -> ``(N, 2)`` WGS84 (lon, lat) degrees, rounded."""
        en = self.utm(xy)
        lon, lat = _to_wgs84(self.epsg).transform(en[:, 0], en[:, 1])
        return np.round(np.c_[lon, lat], LONLAT_DECIMALS)

    def footprint_wkt(self, xy: np.ndarray) -> str:
        """WKT polygon (WGS84, x = lon, y = lat, closed ring) of the scene polygon ``xy``."""
        ll = self.lonlat(xy)
        ring = [*ll.tolist(), ll[0].tolist()]
        return "POLYGON ((" + ", ".join(f"{lon:.{LONLAT_DECIMALS}f} {lat:.{LONLAT_DECIMALS}f}"
                                        for lon, lat in ring) + "))"


def _dms(deg: float) -> tuple[Fraction, Fraction, Fraction]:
    """Degrees, minutes, seconds (rationals) of ``|deg|`` with seconds in steps of
    1 / :data:`EXIF_SECONDS_DENOMINATOR`."""
    total = round(abs(deg) * 3600 * EXIF_SECONDS_DENOMINATOR)
    whole_s, frac = divmod(total, EXIF_SECONDS_DENOMINATOR)
    d, rest = divmod(whole_s, 3600)
    m, s = divmod(rest, 60)
    return Fraction(d), Fraction(m), Fraction(s * EXIF_SECONDS_DENOMINATOR + frac, EXIF_SECONDS_DENOMINATOR)


def jpeg_with_gps(rgb: np.ndarray, quality: int, lon: float, lat: float, altitude_m: float) -> bytes:
    """Baseline JPEG (Pillow, 4:2:0) of ``rgb`` (H, W, 3 uint8) with EXIF GPS: WGS84
    ``lat``/``lon`` degrees and ``altitude_m`` (metres, above the scene ground, rounded to cm)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = GENERATED_MAKE
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[ExifTags.GPS.GPSLatitude] = _dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _dms(lon)
    gps[ExifTags.GPS.GPSAltitudeRef] = 0
    gps[ExifTags.GPS.GPSAltitude] = Fraction(round(max(altitude_m, 0.0) * 100), 100)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", quality=int(quality), subsampling=2,
                                                     exif=exif)
    return buf.getvalue()


def read_gps(path) -> tuple[float, float, float | None]:
    """(lon, lat, altitude m) from a JPEG's EXIF GPS (read back with Pillow)."""
    with Image.open(path) as img:
        gps = img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    T = ExifTags.GPS

    def deg(v, ref) -> float:
        d, m, s = (float(x) for x in v)
        val = d + m / 60 + s / 3600
        return -val if ref in ("S", "W") else val

    alt = gps.get(T.GPSAltitude)
    return deg(gps[T.GPSLongitude], gps[T.GPSLongitudeRef]), deg(gps[T.GPSLatitude], gps[T.GPSLatitudeRef]), \
        float(alt) if alt is not None else None
