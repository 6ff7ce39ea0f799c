"""Drone photo metadata from real JPEGs with EXIF GPS and DJI XMP packets."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyproj
import pytest
from PIL import ExifTags, Image

from smgeo_geo.errors import ImageError, MetadataError
from smgeo_geo.photo_meta import approximate_footprint, read_photo_meta

GEOD = pyproj.Geod(ellps="WGS84")


def dms(deg: float) -> tuple[Fraction, Fraction, Fraction]:
    d = int(deg)
    m = int((deg - d) * 60)
    s = Fraction(round((deg - d - m / 60) * 3600 * 10000), 10000)
    return Fraction(d), Fraction(m), s


def xmp_packet(attrs: dict[str, str], elements: dict[str, str] | None = None) -> bytes:
    a = " ".join(f'drone-dji:{k}="{v}"' for k, v in attrs.items())
    e = "".join(f"<drone-dji:{k}>{v}</drone-dji:{k}>" for k, v in (elements or {}).items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" {a}>{e}'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode("utf-8")


def make_jpeg(path: Path, lat=None, lon=None, alt=None, xmp: bytes | None = None, f35=None,
              size=(400, 300), make: str | None = "DJI", model: str | None = None) -> Path:
    """A real JPEG; EXIF GPS IFD written by Pillow, XMP as a raw APP1 segment after SOI."""
    exif = Image.Exif()
    if make is not None:
        exif[ExifTags.Base.Make] = make
    if model is not None:
        exif[ExifTags.Base.Model] = model
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if lat is not None:
        gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        gps[ExifTags.GPS.GPSLatitude] = dms(abs(lat))
        gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        gps[ExifTags.GPS.GPSLongitude] = dms(abs(lon))
    if alt is not None:
        gps[ExifTags.GPS.GPSAltitudeRef] = 0
        gps[ExifTags.GPS.GPSAltitude] = Fraction(alt)
    if f35 is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = f35
    Image.new("RGB", size, (90, 120, 60)).save(path, exif=exif)
    if xmp is not None:
        raw = path.read_bytes()
        payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
        segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
        path.write_bytes(raw[:2] + segment + raw[2:])
    return path


DJI = {"RelativeAltitude": "+50.20", "AbsoluteAltitude": "+512.35", "GimbalYawDegree": "+90.0",
       "GimbalPitchDegree": "-90.0", "GimbalRollDegree": "+0.00", "FlightYawDegree": "-12.5"}


def test_exif_gps_and_dji_xmp(tmp_path):
    p = make_jpeg(tmp_path / "DJI_0001.JPG", lat=-33.8598, lon=151.2093, alt=480, xmp=xmp_packet(DJI), f35=24)
    m = read_photo_meta(p)
    assert m.lat == pytest.approx(-33.8598, abs=1e-6) and m.lon == pytest.approx(151.2093, abs=1e-6)
    assert m.gps_altitude == 480 and m.relative_altitude == 50.2 and m.absolute_altitude == 512.35
    assert (m.gimbal_yaw, m.gimbal_pitch, m.flight_yaw, m.focal_length_35mm) == (90.0, -90.0, -12.5, 24)
    assert m.yaw == 90.0 and m.size == (400, 300)


def test_west_and_south_are_negative(tmp_path):
    m = read_photo_meta(make_jpeg(tmp_path / "w.jpg", lat=-12.5, lon=-77.25))
    assert (m.lat, m.lon) == (pytest.approx(-12.5, abs=1e-7), pytest.approx(-77.25, abs=1e-7))


def test_gps_altitude_zero_is_unknown(tmp_path):
    assert read_photo_meta(make_jpeg(tmp_path / "z.jpg", lat=47, lon=8, alt=0)).gps_altitude is None


def test_xmp_only_gps_with_dji_misspelling_and_element_form(tmp_path):
    xmp = xmp_packet({"GpsLatitude": "47.3769", "GpsLongtitude": "8.5417"}, {"RelativeAltitude": "+80.0"})
    m = read_photo_meta(make_jpeg(tmp_path / "x.jpg", xmp=xmp))
    assert (m.lat, m.lon, m.relative_altitude) == (47.3769, 8.5417, 80.0)
    assert m.yaw is None and m.gimbal_pitch is None


def test_nadir_footprint_is_half_diagonal(tmp_path):
    m = read_photo_meta(make_jpeg(tmp_path / "n.jpg", lat=47, lon=8, alt=600, xmp=xmp_packet(DJI)))
    fp = approximate_footprint(m, (4000, 3000), hfov_deg=80.0, margin=1.0)
    t = math.tan(math.radians(40.0))
    assert fp.radius_m == pytest.approx(50.2 * math.hypot(t, t * 3 / 4), rel=1e-9)  # relative, not 600 m
    assert (fp.lon, fp.lat) == (pytest.approx(m.lon, abs=1e-12), pytest.approx(m.lat, abs=1e-12))
    assert approximate_footprint(m, (4000, 3000), hfov_deg=80.0).radius_m == pytest.approx(1.5 * fp.radius_m)


def test_oblique_footprint_shifts_along_gimbal_yaw(tmp_path):
    xmp = xmp_packet({**DJI, "GimbalPitchDegree": "-45.0", "GimbalYawDegree": "+90.0", "FlightYawDegree": "+180"})
    m = read_photo_meta(make_jpeg(tmp_path / "o.jpg", lat=47, lon=8, xmp=xmp))
    fp = approximate_footprint(m, (4000, 3000), hfov_deg=70.0, margin=1.0)
    az, _, dist = GEOD.inv(m.lon, m.lat, fp.lon, fp.lat)
    assert dist == pytest.approx(50.2, rel=1e-6)  # h * tan(45 deg), toward the gimbal yaw (east)
    assert az == pytest.approx(90.0, abs=0.01)
    # Far edge at 45 + vfov/2 from vertical lies beyond the centre; radius reaches it.
    vhalf = math.atan(math.tan(math.radians(35)) * 0.75)
    assert fp.radius_m > 50.2 * math.tan(math.radians(45) + vhalf) - 50.2


def test_focal_length_sets_field_of_view(tmp_path):
    wide = read_photo_meta(make_jpeg(tmp_path / "a.jpg", lat=1, lon=1, xmp=xmp_packet(DJI), f35=24))
    tele = read_photo_meta(make_jpeg(tmp_path / "b.jpg", lat=1, lon=1, xmp=xmp_packet(DJI), f35=48))
    r_wide = approximate_footprint(wide, (400, 300), margin=1).radius_m
    r_tele = approximate_footprint(tele, (400, 300), margin=1).radius_m
    assert r_wide == pytest.approx(50.2 * math.hypot(18 / 24, 13.5 / 24), rel=1e-9)
    assert r_tele == pytest.approx(r_wide / 2, rel=1e-9)


def test_missing_gps_raises_naming_photo(tmp_path):
    m = read_photo_meta(make_jpeg(tmp_path / "nogps.jpg", xmp=xmp_packet({"RelativeAltitude": "50"})))
    with pytest.raises(MetadataError, match="nogps.jpg"):
        approximate_footprint(m, (400, 300))


def test_missing_height_raises_unless_given(tmp_path):
    m = read_photo_meta(make_jpeg(tmp_path / "noalt.jpg", lat=47, lon=8, alt=500,
                                  xmp=xmp_packet({"GimbalPitchDegree": "-90.0"})))  # nadir, no height
    with pytest.raises(MetadataError, match="noalt.jpg"):
        approximate_footprint(m, (400, 300))
    assert approximate_footprint(m, (400, 300), altitude_m=100, hfov_deg=90, margin=1).radius_m == \
        pytest.approx(100 * math.hypot(1, 0.75))


def test_unreadable_files(tmp_path):
    with pytest.raises(ImageError, match="missing.jpg"):
        read_photo_meta(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="bad.jpg"):
        read_photo_meta(bad)


def vendor_packet(body: str) -> bytes:
    """An XMP packet whose rdf:Description holds ``body`` (namespaces of every vendor declared)."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" '
        'xmlns:drone-parrot="http://www.parrot.com/drone-parrot/1.0/" '
        'xmlns:drone-skydio="https://www.skydio.com/drone-skydio/1.0/" xmlns:Camera="http://pix4d.com/camera/1.0/" '
        f'{body}</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode("utf-8")


# one camera (heading 120 deg, pitch -60, roll 2, 80 m above take-off) as each vendor writes it
VENDOR_PACKETS = {
    "DJI": vendor_packet('drone-dji:GimbalYawDegree="+120.0" drone-dji:GimbalPitchDegree="-60.0" '
                         'drone-dji:GimbalRollDegree="+2.0" drone-dji:RelativeAltitude="+80.0">'),
    "Parrot": vendor_packet('drone-parrot:CameraYawDegree="120.0" drone-parrot:CameraPitchDegree="-60.0" '
                            'drone-parrot:CameraRollDegree="2.0" drone-parrot:DroneYawDegree="95.0" '
                            'Camera:AboveGroundAltitude="80.0">'),
    "Skydio (attributes)": vendor_packet(
        'drone-skydio:RelativeAltitude="80.0">'
        '<drone-skydio:CameraOrientationFLU drone-skydio:Yaw="5.0" drone-skydio:Pitch="-10.0" drone-skydio:Roll="0.0"/>'
        '<drone-skydio:CameraOrientationNED drone-skydio:Yaw="120.0" drone-skydio:Pitch="-60.0" '
        'drone-skydio:Roll="2.0"/>'),
    "Skydio (elements)": vendor_packet(
        '><drone-skydio:RelativeAltitude>80.0</drone-skydio:RelativeAltitude>'
        '<drone-skydio:CameraOrientationFLU rdf:parseType="Resource"><drone-skydio:Yaw>5.0</drone-skydio:Yaw>'
        '<drone-skydio:Pitch>-10.0</drone-skydio:Pitch><drone-skydio:Roll>0</drone-skydio:Roll>'
        '</drone-skydio:CameraOrientationFLU>'
        '<drone-skydio:CameraOrientationNED><rdf:Description><drone-skydio:Yaw>120.0</drone-skydio:Yaw>'
        '<drone-skydio:Pitch>-60.0</drone-skydio:Pitch><drone-skydio:Roll>2.0</drone-skydio:Roll>'
        '</rdf:Description></drone-skydio:CameraOrientationNED>'),
    "Pix4D": vendor_packet('Camera:Yaw="120.0" Camera:Pitch="30.0" Camera:Roll="2.0" '
                           'Camera:AboveGroundAltitude="80.0">'),
}


@pytest.mark.parametrize("vendor", list(VENDOR_PACKETS))
def test_each_vendors_attitude_gives_the_same_camera_and_ground_point(tmp_path, vendor):
    """Parrot, Skydio and Pix4D (senseFly, MicaSense, ...) tags in their own conventions give the
    camera DJI's tags give for the same pose, so the click lands on the same ground point."""
    from smgeo_geo.pose import camera_from_metadata, locate_pixel

    dji = read_photo_meta(make_jpeg(tmp_path / "dji.jpg", lat=47.1, lon=8.2, xmp=VENDOR_PACKETS["DJI"], f35=24))
    meta = read_photo_meta(make_jpeg(tmp_path / "v.jpg", lat=47.1, lon=8.2, xmp=VENDOR_PACKETS[vendor], f35=24))
    assert meta.attitude_source == vendor.split(" ")[0]
    assert (meta.gimbal_yaw, meta.gimbal_pitch, meta.gimbal_roll) == pytest.approx((120.0, -60.0, 2.0))
    assert meta.relative_altitude == pytest.approx(80.0)
    ref, cam = camera_from_metadata(dji), camera_from_metadata(meta)
    np.testing.assert_allclose(cam.camera.rotation, ref.camera.rotation, atol=1e-9)
    np.testing.assert_allclose(cam.camera.centre, ref.camera.centre, atol=1e-9)
    assert f"attitude from {meta.attitude_source} XMP" in cam.notes
    a, b = locate_pixel(ref, (100.0, 220.0)), locate_pixel(cam, (100.0, 220.0))
    assert GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2] < 1e-6
    # the oblique view looks south-east (heading 120): the point lies that way from the drone
    az, _, dist = GEOD.inv(8.2, 47.1, b.lon, b.lat)
    assert 60 < az % 360 < 180 and dist > 20


def test_dji_tags_win_over_another_vendors_in_the_same_photo(tmp_path):
    both = vendor_packet('drone-dji:GimbalYawDegree="+10.0" drone-dji:GimbalPitchDegree="-90.0" '
                         'drone-dji:RelativeAltitude="+50.0" Camera:Yaw="200.0" Camera:Pitch="45.0" '
                         'Camera:AboveGroundAltitude="70.0">')
    m = read_photo_meta(make_jpeg(tmp_path / "b.jpg", lat=1, lon=1, xmp=both))
    assert (m.attitude_source, m.gimbal_yaw, m.gimbal_pitch, m.relative_altitude) == ("DJI", 10.0, -90.0, 50.0)


def test_a_vendor_packet_without_a_heading_says_which_tags_it_looked_for(tmp_path):
    from smgeo_geo.pose import camera_from_metadata

    m = read_photo_meta(make_jpeg(tmp_path / "p.jpg", lat=1, lon=1,
                                  xmp=vendor_packet('Camera:AboveGroundAltitude="70.0">')))
    assert m.relative_altitude == 70.0 and m.gimbal_yaw is None
    with pytest.raises(MetadataError, match=r"p\.jpg: no heading .*Parrot CameraYawDegree.*Pix4D Camera:Yaw"):
        camera_from_metadata(m)


DEWARP = ('drone-dji:DewarpData="2018-09-07;3657.02,3650.62,-4.03,23.1,-0.267098,0.111977,0.000924881,0.0000882056,'
          '-0.0331614" drone-dji:DewarpFlag="0" ')


@pytest.mark.parametrize("lens_tags, model, k1, note", [
    (DEWARP, "FC6310", -0.267098, "lens distortion from DJI DewarpData"),
    ('drone-dji:DewarpFlag="1" ', "FC6310", 0.0, "photo dewarped in the camera"),
    ("", "FC6310", "database", "lens distortion of the camera model from DJI FC6310"),
    ("", "FC0000", 0.0, "no lens model in the metadata"),
    ("", None, 0.0, "no lens model in the metadata"),
])
def test_the_metadata_camera_says_whether_it_knows_the_lens(tmp_path, lens_tags, model, k1, note):
    """A lens model (DJI DewarpData: the budget has no lens term), a photo the camera dewarped
    itself, the camera model's lens from the lens database (the budget carries its sigma), or
    none: then the camera is a pinhole and its budget carries the lens nobody described."""
    from smgeo_geo.lens import UNKNOWN_K1_SIGMA
    from smgeo_geo.pose import camera_from_metadata

    xmp = vendor_packet(lens_tags + 'drone-dji:GimbalYawDegree="+120.0" drone-dji:GimbalPitchDegree="-60.0" '
                        'drone-dji:RelativeAltitude="+80.0">')
    prior = camera_from_metadata(read_photo_meta(make_jpeg(tmp_path / "l.jpg", lat=47.1, lon=8.2, xmp=xmp, f35=24,
                                                           model=model)))
    assert any(n.startswith(note) for n in prior.notes), prior.notes
    if k1 == "database":
        assert -0.3 < prior.camera.distortion[0] < -0.15 and 0.02 <= prior.budget.lens_k1 < 0.06
    else:
        assert prior.camera.distortion[0] == k1
        assert prior.budget.lens_k1 == (UNKNOWN_K1_SIGMA if note.startswith("no lens") else 0.0)
