"""Copies of a real DJI photo whose metadata is off as a consumer drone's can be.

Benchmarks and tests use them to ask how locating holds when the photo's GPS, gimbal angles or
altitude are wrong by more than an RTK drone's (the shared real photos are RTK-accurate): the
copy keeps the photo's pixels byte for byte and rewrites only its EXIF GPS and DJI XMP tags.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pyproj
from PIL import ExifTags, Image

from smgeo_geo.errors import ImageError, OptionError, OutputError
from smgeo_model.fileio import atomic_path


@dataclass(frozen=True)
class MetadataErrors:
    """Errors to write into a photo's metadata: GPS moved ``gps_m`` metres towards azimuth
    ``gps_azimuth_deg`` (degrees clockwise from north), ``yaw_deg`` / ``pitch_deg`` added to the
    gimbal angles, ``altitude_m`` added to the absolute altitudes (EXIF GPSAltitude, DJI
    AbsoluteAltitude), ``relative_altitude_m`` added to DJI ``RelativeAltitude`` (the height above
    the take-off point: a drone that took off on a hill above the ground it photographs says it is
    that much lower over it than it is), ``rtk`` False drops the DJI Rtk* tags (the drone then claims no RTK),
    ``drop`` DJI XMP tags removed (as from a drone or tool that does not write them), ``xmp``
    False removes the XMP packet (EXIF alone is left), ``camera_model`` replaces the EXIF model
    (e.g. one the lens database does not know)."""

    gps_m: float = 0.0
    gps_azimuth_deg: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    altitude_m: float = 0.0
    relative_altitude_m: float = 0.0
    rtk: bool = True
    drop: tuple[str, ...] = ()
    xmp: bool = True
    camera_model: str = ""

    @classmethod
    def parse(cls, spec: str) -> "MetadataErrors":
        """``"gps=5@30,yaw=8,pitch=-3,alt=20,relalt=-30,rtk=off,drop=GimbalPitchDegree+GimbalYawDegree,xmp=off,model=FC0000"``
        (any subset, any order)."""
        fields: dict = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            try:
                if key == "gps":
                    dist, _, azimuth = value.partition("@")
                    fields.update(gps_m=float(dist), gps_azimuth_deg=float(azimuth or 0.0))
                elif key in ("yaw", "pitch", "alt", "relalt"):
                    fields[{"yaw": "yaw_deg", "pitch": "pitch_deg", "alt": "altitude_m",
                            "relalt": "relative_altitude_m"}[key]] = float(value)
                elif key in ("rtk", "xmp") and value in ("on", "off"):
                    fields[key] = value == "on"
                elif key == "drop" and re.fullmatch(r"\w+(\+\w+)*", value):
                    fields["drop"] = tuple(value.split("+"))
                elif key == "model" and re.fullmatch(r"\w[\w-]*", value):
                    fields["camera_model"] = value
                else:
                    raise ValueError
            except ValueError:
                raise OptionError(f"metadata errors: cannot read {part!r}; expected gps=METRES@AZIMUTH, yaw=DEG, "
                                  f"pitch=DEG, alt=METRES, relalt=METRES, rtk=on|off, drop=TAG+TAG, xmp=on|off, model=NAME") from None
        return cls(**fields)


def with_metadata_errors(photo: str | os.PathLike, out: str | os.PathLike, errors: MetadataErrors) -> Path:
    """Write a copy of the DJI JPEG ``photo`` to ``out`` (atomically) with ``errors`` in its EXIF
    GPS and DJI XMP; the compressed image data is copied unchanged."""
    photo, out = Path(photo), Path(out)
    raw = photo.read_bytes()
    start, end = raw.find(b"<x:xmpmeta"), raw.find(b"</x:xmpmeta>")
    with Image.open(photo) as im:
        exif = im.getexif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if errors.camera_model:
        exif[ExifTags.Base.Model] = errors.camera_model
    T = ExifTags.GPS
    if raw[:2] != b"\xff\xd8" or start < 0 or end < 0 or T.GPSLatitude not in gps or T.GPSLongitude not in gps:
        raise ImageError(f"{photo}: expected a JPEG with EXIF GPS and a DJI XMP packet")
    lat = _degrees(gps[T.GPSLatitude], gps.get(T.GPSLatitudeRef, "N"))
    lon = _degrees(gps[T.GPSLongitude], gps.get(T.GPSLongitudeRef, "E"))
    if errors.gps_m:
        lon, lat, _ = pyproj.Geod(ellps="WGS84").fwd(lon, lat, errors.gps_azimuth_deg, errors.gps_m)
        gps[T.GPSLatitude], gps[T.GPSLatitudeRef] = _rational_dms(lat), "N" if lat >= 0 else "S"
        gps[T.GPSLongitude], gps[T.GPSLongitudeRef] = _rational_dms(lon), "E" if lon >= 0 else "W"
    if errors.altitude_m and T.GPSAltitude in gps:
        gps[T.GPSAltitude] = Fraction(float(gps[T.GPSAltitude]) + errors.altitude_m).limit_denominator(1000)
    xmp = raw[start:end + len(b"</x:xmpmeta>")].decode("utf-8")
    for tag, by in (("GimbalYawDegree", errors.yaw_deg), ("GimbalPitchDegree", errors.pitch_deg),
                    ("AbsoluteAltitude", errors.altitude_m), ("RelativeAltitude", errors.relative_altitude_m)):
        xmp = _retag(xmp, tag, lambda v, by=by: f"{float(v) + by:+.2f}")
    xmp = _retag(xmp, "GpsLongtitude", lambda v: f"{lon:.8f}")
    xmp = _retag(xmp, "GpsLatitude", lambda v: f"{lat:.8f}")
    if not errors.rtk:
        xmp = re.sub(r"\s*<drone-dji:Rtk\w+>[^<]*</drone-dji:Rtk\w+>|\s*drone-dji:Rtk\w+=\"[^\"]*\"", "", xmp)
    for tag in errors.drop:
        xmp = re.sub(rf"\s*<drone-dji:{tag}>[^<]*</drone-dji:{tag}>|\s*drone-dji:{tag}=\"[^\"]*\"", "", xmp)
    segments, i = [], 2  # header segments up to the image data, without the old APP1 (EXIF, XMP)
    while i + 4 <= len(raw) and raw[i] == 0xFF and raw[i + 1] not in (0xDA, 0xD9):
        size = int.from_bytes(raw[i + 2:i + 4], "big")
        if raw[i + 1] != 0xE1:
            segments.append(raw[i:i + 2 + size])
        i += 2 + size
    app1 = [b"Exif\x00\x00" + exif.tobytes()]
    if errors.xmp:
        app1.append(b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode("utf-8"))
    app1 = [b"\xff\xe1" + (len(p) + 2).to_bytes(2, "big") + p for p in app1]
    with atomic_path(out, OutputError) as tmp:
        tmp.write_bytes(raw[:2] + b"".join(app1 + segments) + raw[i:])
    return out


def _retag(xmp: str, tag: str, value) -> str:
    """``xmp`` with the DJI ``tag``'s number (element or attribute form) replaced by ``value(old)``."""
    pattern = rf"(<drone-dji:{tag}>|drone-dji:{tag}=\")([-+0-9.]+)"
    return re.sub(pattern, lambda m: m[1] + value(m[2]), xmp)


def _degrees(dms, ref) -> float:
    d, m, s = (float(v) for v in dms)
    return (d + m / 60 + s / 3600) * (-1 if ref in ("S", "W") else 1)


def _rational_dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return Fraction(d), Fraction(m), Fraction(round((value - d - m / 60) * 3600 * 10**6), 10**6)
