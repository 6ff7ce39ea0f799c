"""Which platform a photo of an image folder is indexed as (``smgeo index build --images``),
from real JPEGs with EXIF and vendor XMP."""

from __future__ import annotations

import pytest

from smgeo_geo.photo_meta import read_photo_meta
from smgeo_retrieval.corpus.georef import GENERATED_MAKE
from smgeo_retrieval.sources import photo_platform

from ..geo.test_photo_meta import VENDOR_PACKETS, make_jpeg


def photo(path, make: str | None, altitude_m: float | None = None, xmp: bytes | None = None):
    """The metadata of a JPEG with EXIF Make, a GPS position (altitude above sea level) and XMP."""
    return read_photo_meta(make_jpeg(path, lat=47.1675, lon=8.0836, alt=altitude_m, xmp=xmp, make=make))


@pytest.mark.parametrize("make, altitude, xmp, expected", [
    ("Apple", 420, None, "ground"),  # a phone photo high above sea level stays a ground photo
    ("samsung", 3, None, "ground"),
    ("DJI", None, None, "drone"),  # a drone maker without XMP
    ("Skydio", 420, None, "drone"),
    ("Hasselblad", 420, VENDOR_PACKETS["DJI"], "drone"),  # a DJI Mavic 3: relative altitude in the DJI XMP
    (None, 420, VENDOR_PACKETS["Parrot"], "drone"),  # camera angles: a drone
    (GENERATED_MAKE, 60, None, "drone"),  # the generated corpora: altitude above their ground near sea level
    (GENERATED_MAKE, 1.6, None, "ground"),
    (None, None, None, "ground"),
])
def test_photo_platform_from_exif_make_xmp_and_altitude(tmp_path, make, altitude, xmp, expected):
    assert photo_platform(photo(tmp_path / "p.jpg", make, altitude, xmp)) == expected
