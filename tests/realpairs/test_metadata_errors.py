"""Copies of a DJI photo with metadata errors written in (bench and tests of locating)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from smgeo_geo.coords import geodesic_distance
from smgeo_geo.errors import ImageError, OptionError
from smgeo_geo.photo_meta import read_photo_meta
from smgeo_synth.realpairs import MetadataErrors, with_metadata_errors
from tests.geo.test_photo_meta import DJI, make_jpeg, xmp_packet

RTK = {**DJI, "RtkFlag": "50", "RtkStdLon": "0.01", "RtkStdLat": "0.01", "RtkStdHgt": "0.02"}


def test_the_copy_carries_the_errors_and_the_same_pixels(tmp_path):
    src = make_jpeg(tmp_path / "DJI_0001.JPG", lat=-33.8598, lon=151.2093, alt=480, xmp=xmp_packet(RTK), f35=24)
    out = with_metadata_errors(src, tmp_path / "off.jpg", MetadataErrors.parse("gps=7@120,yaw=-4,pitch=3,alt=-20,rtk=off"))
    a, b = read_photo_meta(src), read_photo_meta(out)
    assert a.rtk_std_m is not None and b.rtk_std_m is None
    assert b.gimbal_yaw == pytest.approx(a.gimbal_yaw - 4) and b.gimbal_pitch == pytest.approx(a.gimbal_pitch + 3)
    assert b.absolute_altitude == pytest.approx(a.absolute_altitude - 20)
    assert b.gps_altitude == pytest.approx(a.gps_altitude - 20, abs=1e-3)
    assert b.relative_altitude == a.relative_altitude and b.flight_yaw == a.flight_yaw
    # the take-off point 30 m above the ground photographed: the relative altitude says 30 m less
    lower = read_photo_meta(with_metadata_errors(src, tmp_path / "hill.jpg", MetadataErrors.parse("relalt=-30")))
    assert lower.relative_altitude == pytest.approx(a.relative_altitude - 30)
    assert lower.absolute_altitude == a.absolute_altitude
    assert float(geodesic_distance(a.lon, a.lat, b.lon, b.lat)) == pytest.approx(7.0, abs=0.01)
    assert b.lat < a.lat and b.lon > a.lon  # azimuth 120: south-east
    with Image.open(src) as x, Image.open(out) as y:
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_no_errors_is_the_same_metadata(tmp_path):
    src = make_jpeg(tmp_path / "DJI_0002.JPG", lat=47.1, lon=8.2, alt=600, xmp=xmp_packet(RTK), f35=24)
    a, b = read_photo_meta(src), read_photo_meta(with_metadata_errors(src, tmp_path / "same.jpg", MetadataErrors()))
    assert (a.lon, a.lat, a.gimbal_yaw, a.absolute_altitude) == pytest.approx(
        (b.lon, b.lat, b.gimbal_yaw, b.absolute_altitude), abs=1e-7)
    assert a.rtk_std_m == b.rtk_std_m


def test_tags_or_the_whole_xmp_can_be_dropped_keeping_the_exif(tmp_path):
    src = make_jpeg(tmp_path / "DJI_0003.JPG", lat=47.1, lon=8.2, alt=600, xmp=xmp_packet(DJI), f35=24)
    gimbal = read_photo_meta(with_metadata_errors(src, tmp_path / "g.jpg", MetadataErrors.parse(
        "drop=GimbalPitchDegree+GimbalYawDegree")))
    assert gimbal.gimbal_pitch is None and gimbal.gimbal_yaw is None
    assert gimbal.flight_yaw == -12.5 and gimbal.relative_altitude == 50.2  # the other tags stay
    bare = read_photo_meta(with_metadata_errors(src, tmp_path / "x.jpg", MetadataErrors.parse("xmp=off")))
    assert bare.attitude_source == "" and bare.relative_altitude is None and bare.flight_yaw is None
    assert (bare.lat, bare.lon, bare.gps_altitude, bare.focal_length_35mm) == pytest.approx((47.1, 8.2, 600, 24))


@pytest.mark.parametrize("spec", ["gps=five", "roll=2", "rtk=maybe", "alt", "relalt=up", "drop=Gimbal-Pitch", "xmp=no"])
def test_an_unreadable_spec_names_the_part(spec):
    with pytest.raises(OptionError, match="cannot read"):
        MetadataErrors.parse(spec)


def test_a_photo_without_gps_or_dji_xmp_is_refused_and_nothing_is_written(tmp_path):
    src = make_jpeg(tmp_path / "plain.jpg", xmp=None)
    with pytest.raises(ImageError, match="plain.jpg: expected a JPEG with EXIF GPS and a DJI XMP"):
        with_metadata_errors(src, tmp_path / "off.jpg", MetadataErrors(yaw_deg=1.0))
    assert not (tmp_path / "off.jpg").exists()
