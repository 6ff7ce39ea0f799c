"""Drone photo metadata (EXIF GPS, vendor XMP) and the ground area a photo probably shows.

Positions are WGS84 lon/lat degrees (x=lon, y=lat); altitudes metres; angles degrees.
Every vendor's attitude is turned into DJI's conventions: yaw clockwise from true north;
pitch -90 is nadir (straight down), 0 the horizon; roll about the optical axis.

XMP read (the first vendor found, in this order, gives the attitude and heights):

==========  =====================================  ==============================================
vendor      namespace                              tags
==========  =====================================  ==============================================
DJI         ``http://www.dji.com/drone-dji/1.0/``  ``GimbalYawDegree`` / ``GimbalPitchDegree`` /
                                                   ``GimbalRollDegree``, ``FlightYawDegree``,
                                                   ``RelativeAltitude``, ``AbsoluteAltitude``
                                                   (+ RTK, calibration, dewarp values)
Parrot      ``http://www.parrot.com/drone-parrot/  ``CameraYawDegree`` / ``CameraPitchDegree`` /
            1.0/``                                 ``CameraRollDegree`` (pitch as DJI's),
                                                   ``DroneYawDegree``
Skydio      ``https://www.skydio.com/drone-skydio  ``CameraOrientationNED`` (``Yaw``, ``Pitch``,
            /1.0/``                                ``Roll``; pitch as DJI's), ``RelativeAltitude``,
                                                   ``AbsoluteAltitude``, ``Latitude`` / ``Longitude``
Pix4D       ``http://pix4d.com/camera/1.0/``       ``Camera:Yaw`` / ``Pitch`` / ``Roll`` (pitch 0
                                                   is nadir: DJI pitch = Pitch - 90),
                                                   ``AboveGroundAltitude`` (senseFly, MicaSense,
                                                   Sentera, Parrot; also a height for the others)
==========  =====================================  ==============================================

Quirks handled: EXIF ``GPSAltitude`` 0 means unknown; DJI XMP spells ``GpsLongtitude``;
relative altitude (above take-off) is preferred for heights; a struct's fields are read as
``Struct/Field`` (attribute or element form).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import NamedTuple

import pyproj
from PIL import ExifTags

from smgeo_geo.errors import MetadataError

DJI_NS = "http://www.dji.com/drone-dji/1.0/"
XMP_NAMESPACES = {  # vendor -> XMP namespace URI (see the module docstring)
    "DJI": DJI_NS,
    "Parrot": "http://www.parrot.com/drone-parrot/1.0/",
    "Skydio": "https://www.skydio.com/drone-skydio/1.0/",
    "Pix4D": "http://pix4d.com/camera/1.0/",
}
XMP_PREFIXES = {"DJI": "drone-dji", "Parrot": "drone-parrot", "Skydio": "drone-skydio", "Pix4D": "Camera"}
DEFAULT_HFOV_DEG = 73.7  # 24 mm full-frame-equivalent lens (most DJI cameras): 2*atan(18/24)
MAX_OFF_NADIR_DEG = 75.0  # beyond this the footprint reaches the horizon; clamp
# a photo without a camera pitch may look up to this far off nadir (drone photos for mapping and
# inspection: nadir to 45 deg oblique); its footprint and the pitches tried (smgeo_geo.pose) cover that
UNKNOWN_PITCH_MAX_OFF_NADIR_DEG = 45.0


@dataclass(frozen=True)
class PhotoMeta:
    """Metadata of one drone photo; any field may be None when the photo lacks it."""

    path: str
    lon: float | None = None
    lat: float | None = None
    gps_altitude: float | None = None  # EXIF, metres above sea level (0 -> None)
    relative_altitude: float | None = None  # DJI XMP, metres above take-off point
    absolute_altitude: float | None = None  # DJI XMP, metres above sea level
    gimbal_yaw: float | None = None
    gimbal_pitch: float | None = None
    gimbal_roll: float | None = None
    flight_yaw: float | None = None
    focal_length_35mm: float | None = None
    focal_length_mm: float | None = None  # EXIF FocalLength (real, not 35 mm equivalent)
    make: str = ""
    model: str = ""
    size: tuple[int, int] = (0, 0)  # (width, height) pixels of the upright photo
    xmp: dict[str, str] = field(default_factory=dict, repr=False)  # raw drone-dji values
    problems: str = ""  # metadata blocks that could not be read (the fields they hold are None)
    attitude_source: str = ""  # the vendor XMP the angles and heights came from ("DJI", "Parrot", ...)

    def xmp_number(self, name: str) -> float | None:
        """A finite number from the raw drone-dji XMP value ``name`` (None if absent or not a number)."""
        return _float(self.xmp.get(name))

    @property
    def rtk_std_m(self) -> tuple[float, float] | None:
        """DJI RTK (horizontal, vertical) standard deviations in metres, when the photo says so."""
        lat, lon, hgt = (self.xmp_number(k) for k in ("RtkStdLat", "RtkStdLon", "RtkStdHgt"))
        if lat is None or lon is None:
            return None
        return math.hypot(lat, lon) / math.sqrt(2), hgt if hgt is not None else 0.1

    @property
    def distortion(self) -> tuple[float, float, float, float, float] | None:
        """Brown ``(k1, k2, p1, p2, k3)`` from DJI ``DewarpData`` (``date;fx,fy,cx,cy,k1,k2,p1,p2,k3``)
        when the photo is not dewarped already (``DewarpFlag`` 0 or absent)."""
        text = self.xmp.get("DewarpData", "")
        if not text or (self.xmp.get("DewarpFlag", "0").strip() not in ("0", "")):
            return None
        values = [_float(v) for v in text.split(";")[-1].split(",")]
        if len(values) != 9 or any(v is None for v in values):
            return None
        return tuple(values[4:9])  # type: ignore[return-value]

    @property
    def dewarped(self) -> bool:
        """Whether the camera removed its lens distortion itself (DJI ``DewarpFlag`` 1)."""
        return self.xmp.get("DewarpFlag", "0").strip() not in ("0", "")

    @property
    def yaw(self) -> float | None:
        """Camera heading, degrees clockwise from north: gimbal yaw, else flight yaw."""
        return self.gimbal_yaw if self.gimbal_yaw is not None else self.flight_yaw


class Footprint(NamedTuple):
    """Ground area a photo probably shows: circle centre (WGS84 degrees) and radius (m)."""

    lon: float
    lat: float
    radius_m: float


def _float(text) -> float | None:
    try:
        v = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _dms(value, ref) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60.0 + s / 3600.0
    return -deg if str(ref).strip().upper() in ("S", "W") else deg


def _parse_xmp(packet: bytes | str) -> dict[str, dict[str, str]]:
    """The values of the known vendors' namespaces in an XMP packet: vendor -> {name: value}
    (attributes or elements; a struct's fields as ``Struct/Field``)."""
    text = packet.decode("utf-8", "replace") if isinstance(packet, bytes) else packet
    by_uri = {uri: vendor for vendor, uri in XMP_NAMESPACES.items()}
    out: dict[str, dict[str, str]] = {vendor: {} for vendor in XMP_NAMESPACES}

    def known(tag: str) -> tuple[str, str] | None:
        if tag.startswith("{"):
            uri, name = tag[1:].split("}", 1)
            if uri in by_uri:
                return by_uri[uri], name
        return None

    def walk(el, struct: str) -> None:
        own = known(el.tag)
        for key, val in el.attrib.items():
            found = known(key)
            if found:
                name = f"{own[1]}/{found[1]}" if own else (f"{struct}/{found[1]}" if struct else found[1])
                out[found[0]][name] = val
        children = list(el)
        if own and not children and el.text and el.text.strip():
            out[own[0]][f"{struct}/{own[1]}" if struct else own[1]] = el.text.strip()
        for child in children:
            walk(child, own[1] if own else struct)

    try:
        walk(ET.fromstring(text.strip().strip("\x00")), "")
    except ET.ParseError:  # malformed packet: fall back to the usual prefixes
        for vendor, prefix in XMP_PREFIXES.items():
            for k, v in re.findall(rf'{prefix}:(\w+)\s*=\s*"([^"]*)"', text):
                out[vendor][k] = v
            for k, v in re.findall(rf"<{prefix}:(\w+)>([^<]*)</{prefix}:\1>", text):
                out[vendor][k] = v.strip()
    return out


class _Attitude(NamedTuple):
    """Angles (DJI conventions) and heights read from one vendor's XMP."""

    source: str
    yaw: float | None
    pitch: float | None
    roll: float | None
    flight_yaw: float | None
    relative_altitude: float | None
    absolute_altitude: float | None


def _attitude(xmp: dict[str, dict[str, str]]) -> _Attitude | None:
    """The first vendor's XMP (DJI, Parrot, Skydio, Pix4D) that holds an angle or a height."""
    dji, parrot, skydio, pix4d = (xmp[v] for v in ("DJI", "Parrot", "Skydio", "Pix4D"))
    above = _float(pix4d.get("AboveGroundAltitude"))  # Pix4D's tag: a height for any vendor
    pix4d_pitch = _float(pix4d.get("Pitch"))
    candidates = [
        _Attitude("DJI", _float(dji.get("GimbalYawDegree")), _float(dji.get("GimbalPitchDegree")),
                  _float(dji.get("GimbalRollDegree")), _float(dji.get("FlightYawDegree")),
                  _float(dji.get("RelativeAltitude")), _float(dji.get("AbsoluteAltitude"))),
        _Attitude("Parrot", _float(parrot.get("CameraYawDegree")), _float(parrot.get("CameraPitchDegree")),
                  _float(parrot.get("CameraRollDegree")), _float(parrot.get("DroneYawDegree")), None, None),
        _Attitude("Skydio", _float(skydio.get("CameraOrientationNED/Yaw")),
                  _float(skydio.get("CameraOrientationNED/Pitch")), _float(skydio.get("CameraOrientationNED/Roll")),
                  None, _float(skydio.get("RelativeAltitude")), _float(skydio.get("AbsoluteAltitude"))),
        _Attitude("Pix4D", _float(pix4d.get("Yaw")), None if pix4d_pitch is None else pix4d_pitch - 90.0,
                  _float(pix4d.get("Roll")), None, above, None),
    ]
    for att in candidates:
        if any(v is not None for v in att[1:]):
            if att.relative_altitude is None and above is not None:
                att = att._replace(relative_altitude=above)
            return att
    return None


def read_photo_meta(path: str | os.PathLike) -> PhotoMeta:
    """Read EXIF GPS and the vendor XMP (see the module docstring) from the photo at ``path``.

    Raises :class:`ImageError` naming the file when it is missing or not an image.
    Missing GPS is not an error here (fields are None); see :func:`approximate_footprint`.
    """
    from smgeo_geo.photo import open_photo

    path = os.fspath(path)
    problems = ""
    with open_photo(path) as img:
        size = img.size
        xmp_packet = img.info.get("xmp") or b""
        try:  # metadata written by any device: a broken block is missing metadata, not a crash
            exif = img.getexif()
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
            sub = exif.get_ifd(ExifTags.IFD.Exif)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on corrupt EXIF
            exif, gps, sub = {}, {}, {}
            problems = f"EXIF unreadable ({type(exc).__name__})"
    T = ExifTags.GPS
    lat = _dms(gps.get(T.GPSLatitude), gps.get(T.GPSLatitudeRef, "N"))
    lon = _dms(gps.get(T.GPSLongitude), gps.get(T.GPSLongitudeRef, "E"))
    alt = _float(gps.get(T.GPSAltitude))
    if alt is not None and gps.get(T.GPSAltitudeRef) in (1, b"\x01"):
        alt = -alt
    vendors: dict[str, dict[str, str]] = {vendor: {} for vendor in XMP_NAMESPACES}
    try:
        if xmp_packet:
            vendors = _parse_xmp(xmp_packet)
    except (ValueError, TypeError) as exc:
        problems = (problems + "; " if problems else "") + f"XMP unreadable ({type(exc).__name__})"
    xmp, skydio = vendors["DJI"], vendors["Skydio"]
    if lat is None or lon is None:  # XMP fallback: DJI (with its spelling), Skydio
        lat = _float(xmp.get("GpsLatitude", skydio.get("Latitude")))
        lon = _float(xmp.get("GpsLongtitude", xmp.get("GpsLongitude", skydio.get("Longitude"))))
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise MetadataError(f"{path}: GPS position lat={lat}, lon={lon} out of range")
    f35 = _float(sub.get(ExifTags.Base.FocalLengthIn35mmFilm))
    focal = _float(sub.get(ExifTags.Base.FocalLength))
    orientation = exif.get(ExifTags.Base.Orientation, 1)
    if orientation in (5, 6, 7, 8):  # the upright photo is the stored one turned by 90 degrees
        size = (size[1], size[0])
    att = _attitude(vendors) or _Attitude("", None, None, None, None, None, None)
    return PhotoMeta(
        path=path, lon=lon, lat=lat, gps_altitude=alt if alt else None,
        relative_altitude=att.relative_altitude, absolute_altitude=att.absolute_altitude,
        gimbal_yaw=att.yaw, gimbal_pitch=att.pitch, gimbal_roll=att.roll, flight_yaw=att.flight_yaw,
        focal_length_35mm=f35 if f35 else None, focal_length_mm=focal if focal else None,
        make=str(exif.get(ExifTags.Base.Make, "") or "").strip("\x00 "),
        model=str(exif.get(ExifTags.Base.Model, "") or "").strip("\x00 "), size=size, xmp=xmp, problems=problems,
        attitude_source=att.source,
    )


def approximate_footprint(meta: PhotoMeta, photo_size: tuple[int, int] | None = None, *,
                          hfov_deg: float | None = None, altitude_m: float | None = None,
                          margin: float = 1.5) -> Footprint:
    """Circle on the ground (WGS84 centre, metres radius) that probably contains the photo.

    Maths (flat ground, pinhole camera, ``h`` = height above ground): off-nadir angle
    ``t = 90 + pitch`` (pitch -90 -> t = 0; clamped to 75 deg; a missing pitch is unknown:
    ``t`` = :data:`UNKNOWN_PITCH_MAX_OFF_NADIR_DEG` with the heading unknown).
    The optical axis hits the ground ``d = h*tan(t)`` from the point below the drone,
    along the yaw, so the centre is the drone position moved ``d`` metres (geodesic)
    on azimuth yaw. With ``hfov``, ``vfov = 2*atan(tan(hfov/2) * H/W)``, an image edge
    at angle ``e = t +- vfov/2`` lies ``h*tan(e)`` from the nadir point and its corners
    ``h*tan(hfov/2)*cos(vfov/2)/cos(e)`` to the side (pinhole ray meeting the ground);
    radius = distance from the centre to the farthest corner (for nadir the half
    diagonal ``h*sqrt(tan^2(hfov/2) + tan^2(vfov/2))``), times ``margin``. If the
    yaw is unknown and ``t > 0`` the centre stays at the drone and ``d`` is added to the
    radius. ``h``: ``altitude_m`` if given, else the XMP relative altitude; ``hfov``: argument,
    else from EXIF 35 mm focal length, else 73.7 deg.

    Raises :class:`MetadataError` naming the photo when GPS or a usable height is missing.
    """
    if meta.lon is None or meta.lat is None:
        extra = f"; {meta.problems}" if meta.problems else ""
        raise MetadataError(f"{meta.path}: photo has no GPS position (EXIF GPS, DJI or Skydio XMP){extra}")
    h = altitude_m if altitude_m is not None else meta.relative_altitude
    if h is None or not h > 0:
        raise MetadataError(
            f"{meta.path}: no height above ground (XMP relative altitude: DJI or Skydio RelativeAltitude, "
            f"Pix4D AboveGroundAltitude; missing or <= 0); pass altitude_m")
    w, hh = photo_size or meta.size
    if not (w > 0 and hh > 0):
        raise MetadataError(f"{meta.path}: unknown photo size {photo_size}")
    if hfov_deg is None:
        f35 = meta.focal_length_35mm
        hfov_deg = math.degrees(2 * math.atan(18.0 / f35)) if f35 else DEFAULT_HFOV_DEG
    known = meta.gimbal_pitch is not None  # unknown pitch: any direction
    return view_footprint(meta.lon, meta.lat, h, meta.gimbal_pitch if known else None, meta.yaw if known else None,
                          hfov_deg, (w, hh), margin=margin)


def view_footprint(lon: float, lat: float, height_m: float, pitch_deg: float | None, yaw_deg: float | None,
                   hfov_deg: float, size_wh: tuple[int, int], margin: float = 1.5) -> Footprint:
    """The circle :func:`approximate_footprint` draws for a view: camera at WGS84 ``lon``, ``lat``,
    ``height_m`` above the ground, gimbal ``pitch_deg`` (-90 = nadir; None = unknown) and
    ``yaw_deg`` (clockwise from north; None = unknown), horizontal field of view ``hfov_deg``,
    photo ``size_wh`` (pixels, width first). Same maths and ``margin``."""
    w, hh = size_wh
    half_h = math.radians(hfov_deg) / 2
    half_v = math.atan(math.tan(half_h) * hh / w)
    pitch = pitch_deg if pitch_deg is not None else UNKNOWN_PITCH_MAX_OFF_NADIR_DEG - 90.0
    t = math.radians(min(max(90.0 + pitch, 0.0), MAX_OFF_NADIR_DEG))
    d = height_m * math.tan(t)
    radius = 0.0
    for edge in (min(t + half_v, math.radians(85.0)), t - half_v):  # far and near image edge
        across = height_m * math.tan(half_h) * math.cos(half_v) / math.cos(edge)
        radius = max(radius, math.hypot(height_m * math.tan(edge) - d, across))
    if d > 0 and yaw_deg is not None:
        lon, lat, _ = pyproj.Geod(ellps="WGS84").fwd(lon, lat, yaw_deg, d)
    elif d > 0:
        radius += d
    return Footprint(float(lon), float(lat), float(radius * margin))
