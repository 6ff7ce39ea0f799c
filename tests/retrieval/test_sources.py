"""Which platform a photo of an image folder is indexed as (``smgeo index build --images``),
from real JPEGs with EXIF and vendor XMP."""

from __future__ import annotations

from fractions import Fraction

import pytest
from PIL import ExifTags, Image

from smgeo_geo.photo_meta import read_photo_meta
from smgeo_retrieval.corpus.georef import GENERATED_MAKE
from smgeo_retrieval.sources import photo_platform

from ..geo.test_photo_meta import VENDOR_PACKETS


def photo(path, make: str | None, altitude_m: float | None = None, xmp: bytes | None = None):
    """A JPEG with EXIF Make, a GPS position (and altitude above sea level) and an XMP packet."""
    exif = Image.Exif()
    if make is not None:
        exif[ExifTags.Base.Make] = make
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (Fraction(47), Fraction(10), Fraction(3))
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (Fraction(8), Fraction(5), Fraction(1))
    if altitude_m is not None:
        gps[ExifTags.GPS.GPSAltitudeRef], gps[ExifTags.GPS.GPSAltitude] = 0, Fraction(altitude_m)
    Image.new("RGB", (64, 48), (90, 120, 60)).save(path, exif=exif)
    if xmp is not None:
        raw = path.read_bytes()
        payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
        path.write_bytes(raw[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + raw[2:])
    return read_photo_meta(path)


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
