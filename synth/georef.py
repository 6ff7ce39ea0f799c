"""Where the synthetic tiles are on Earth: real UTM zones, CVOGL file names, GeoTIFFs.

Each tile gets a unique centre (easting, northing) in one real projected CRS (WGS 84 / UTM
north zone, EPSG 326xx) per dataset: pair ``i`` gets cell ``(i * P + offset) mod M`` of a
grid of cells (1 km or larger) over the zone, so names never collide. The satellite file is
``<E>_<N>_<extent>_<EPSG>.jpg`` (CVOGL's convention: tile centre in metres, width in
metres) and a GeoTIFF with the same stem and the same JPEG pixels, north-up, beside it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smgeo_geo.errors import OutputError
from smgeo_model.fileio import write_bytes

# EPSG code -> (place, lowest and highest northing used, metres). All WGS 84 / UTM north.
ZONES: dict[int, tuple[str, float, float]] = {
    32610: ("UTM 10N (US/Canada Pacific coast)", 4_200_000, 5_600_000),
    32617: ("UTM 17N (Ontario / Ohio)", 4_300_000, 5_200_000),
    32618: ("UTM 18N (New York / Quebec)", 4_400_000, 5_300_000),
    32630: ("UTM 30N (Spain / UK)", 4_100_000, 5_900_000),
    32631: ("UTM 31N (France / Belgium)", 4_700_000, 5_700_000),
    32632: ("UTM 32N (Germany / Italy)", 4_900_000, 6_000_000),
    32633: ("UTM 33N (Austria / Czechia)", 5_000_000, 5_900_000),
    32650: ("UTM 50N (North China)", 3_500_000, 4_500_000),
    32651: ("UTM 51N (East China)", 3_300_000, 4_200_000),
    32654: ("UTM 54N (Japan)", 3_800_000, 4_500_000),
}
_STRIDE = 1_000_003  # prime, coprime with every grid size used


@dataclass(frozen=True)
class TileGrid:
    """Unique tile centres for one dataset in EPSG ``epsg``."""

    epsg: int
    extent: float
    offset: int

    @property
    def cell(self) -> float:
        return float(max(1000, math.ceil(self.extent * 1.25 / 1000) * 1000))

    @property
    def shape(self) -> tuple[int, int]:
        _, n0, n1 = ZONES[self.epsg]
        return int((n1 - n0) // self.cell), int(500_000 // self.cell)

    @property
    def capacity(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def centre(self, index: int, rng: np.random.Generator) -> tuple[int, int]:
        """Integer (easting, northing) of pair ``index``'s tile centre."""
        rows, cols = self.shape
        c = (index * _STRIDE + self.offset) % self.capacity
        r, q = divmod(c, cols)
        half = self.extent / 2
        lo, hi = math.ceil(half) + 1, int(self.cell - half) - 1
        e = 250_000 + q * self.cell + int(rng.integers(lo, hi + 1))
        n = ZONES[self.epsg][1] + r * self.cell + int(rng.integers(lo, hi + 1))
        return int(e), int(n)


def extent_text(extent: float) -> str:
    return f"{extent:.1f}".rstrip("0").rstrip(".")


def satellite_name(easting: int, northing: int, extent: float, epsg: int, suffix: str = ".jpg") -> str:
    """CVOGL satellite file name, e.g. ``547433_5280574_512_32610.jpg``."""
    return f"{easting}_{northing}_{extent_text(extent)}_{epsg}{suffix}"


def geotiff_from_jpeg(path: Path, jpeg: bytes, width: int, height: int, easting: float, northing: float,
                      extent: float, epsg: int) -> None:
    """Write a north-up GeoTIFF whose single strip is the given baseline JPEG (YCbCr 4:2:0,
    as OpenCV encodes it): the same pixels as the ``.jpg``, georeferenced as a square tile
    centred at (easting, northing), ``extent`` metres wide, in ``EPSG:epsg`` (GeoTIFF
    ModelPixelScale + ModelTiepoint + GeoKeys: projected CRS, pixel-is-area). Readable by
    GDAL/rasterio/QGIS; costs nothing beyond the JPEG already encoded."""
    res_x, res_y = extent / width, extent / height
    x0, y0 = easting - extent / 2, northing + extent / 2
    SHORT, LONG, DOUBLE = 3, 4, 12
    geokeys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, int(epsg)]
    tags = [(256, LONG, [width]), (257, LONG, [height]), (258, SHORT, [8, 8, 8]), (259, SHORT, [7]),
            (262, SHORT, [6]), (273, LONG, [0]), (277, SHORT, [3]), (278, LONG, [height]),
            (279, LONG, [len(jpeg)]), (284, SHORT, [1]), (530, SHORT, [2, 2]),
            (33550, DOUBLE, [res_x, res_y, 0.0]), (33922, DOUBLE, [0.0, 0.0, 0.0, x0, y0, 0.0]),
            (34735, SHORT, geokeys)]
    fmt = {SHORT: "H", LONG: "I", DOUBLE: "d"}
    data_off = 8 + 2 + 12 * len(tags) + 4
    blobs = b""
    records = []
    for tag, typ, values in tags:
        raw = struct.pack("<" + fmt[typ] * len(values), *values)
        if len(raw) <= 4:
            records.append([tag, typ, len(values), raw.ljust(4, b"\0")])
        else:
            if (data_off + len(blobs)) % 2:
                blobs += b"\0"
            records.append([tag, typ, len(values), struct.pack("<I", data_off + len(blobs))])
            blobs += raw
    for r in records:  # the strip comes right after the tag data
        if r[0] == 273:
            r[3] = struct.pack("<I", data_off + len(blobs))
    ifd = struct.pack("<H", len(records)) + b"".join(struct.pack("<HHI", t, ty, c) + v for t, ty, c, v in records)
    write_bytes(path, b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + blobs + jpeg, OutputError)
