"""Small generated data for the locator: a textured orthophoto GeoTIFF, a DEM, and drone
photos rendered from it with a known camera and written with DJI-style EXIF / XMP."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine
from PIL import ExifTags, Image

from smgeo_geo.camera import FrameCamera, LocalFrame, rotation_from_angles
from smgeo_geo.coords import transform_xy
from smgeo_geo.terrain import FlatTerrain, intersect_rays

CRS = "EPSG:32633"
ORIGIN = (400000.0, 5000120.0)  # top-left corner of the orthophoto (UTM 33N)
RES = 0.1  # metres per orthophoto pixel
SIZE = 1200  # orthophoto pixels a side (120 m)


def texture(seed: int = 0) -> np.ndarray:
    """``SIZE x SIZE x 3`` uint8: multi-scale noise with rectangles and discs (features at
    every scale, no repetition)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    for scale, weight in ((8, 60), (32, 50), (128, 40)):
        small = rng.random((SIZE // scale + 2, SIZE // scale + 2, 3)).astype(np.float32)
        img += weight * cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    for _ in range(400):
        x, y = rng.integers(0, SIZE, 2)
        w, h = rng.integers(6, 60, 2)
        colour = rng.integers(0, 255, 3).tolist()
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(img, (int(x), int(y)), int(w // 2), colour, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_orthophoto(path: Path, seed: int = 0) -> Path:
    img = texture(seed)
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", crs=CRS,
                       transform=Affine(RES, 0, ORIGIN[0], 0, -RES, ORIGIN[1])) as ds:
        ds.write(img.transpose(2, 0, 1))
    return path


def write_dem(path: Path, height: float) -> Path:
    """A level DEM at ``height`` metres covering the orthophoto and more (1 m cells)."""
    n = 200
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs=CRS,
                       transform=Affine(1.0, 0, ORIGIN[0] - 40, 0, -1.0, ORIGIN[1] + 40)) as ds:
        ds.write(np.full((1, n, n), height, np.float32))
    return path


def centre_lonlat() -> tuple[float, float]:
    (lon,), (lat,) = transform_xy(CRS, 4326, [ORIGIN[0] + SIZE * RES / 2], [ORIGIN[1] - SIZE * RES / 2])
    return float(lon), float(lat)


def true_camera(yaw: float, pitch: float, height: float, offset_m=(0.0, 0.0), size=(480, 360),
                f35: float = 24.0) -> FrameCamera:
    """The camera that takes the photo: ``height`` metres above the ground, ``offset_m`` east /
    north of the orthophoto's centre."""
    lon, lat = centre_lonlat()
    w, h = size
    f = f35 * np.hypot(w, h) / 43.2666
    frame = LocalFrame(lon, lat, 0.0)
    return FrameCamera(w, h, f, f, w / 2, h / 2, (0, 0, 0, 0, 0), rotation_from_angles(yaw, pitch, 0.0),
                       np.array([offset_m[0], offset_m[1], height]), frame)


def render(ortho: Path, camera: FrameCamera, ground_height: float = 0.0) -> np.ndarray:
    """The photo ``camera`` takes of the orthophoto lying flat at ``ground_height``."""
    w, h = camera.width, camera.height
    gx, gy = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    pts, hit = intersect_rays(camera, np.column_stack([gx.ravel(), gy.ravel()]), FlatTerrain(ground_height))
    cols, rows = np.full(w * h, -1e5), np.full(w * h, -1e5)  # sky (rays above the horizon) stays grey
    xs, ys = camera.frame.to_crs(CRS, pts[hit, 0], pts[hit, 1], pts[hit, 2])
    cols[hit] = (np.asarray(xs) - ORIGIN[0]) / RES - 0.5
    rows[hit] = (ORIGIN[1] - np.asarray(ys)) / RES - 0.5
    with rasterio.open(ortho) as ds:
        img = ds.read().transpose(1, 2, 0)
    photo = cv2.remap(img, cols.reshape(h, w).astype(np.float32), rows.reshape(h, w).astype(np.float32),
                      cv2.INTER_LINEAR, borderValue=(128, 128, 128))
    gain = np.array([1.1, 1.0, 0.9], np.float32)  # another exposure and white balance
    return np.clip(photo.astype(np.float32) * gain + 8, 0, 255).astype(np.uint8)


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), (value - d - m / 60) * 3600


def write_dji_photo(path: Path, image: np.ndarray, *, lon: float | None, lat: float | None,
                    xmp: dict[str, str] | None = None, f35: float | None = 24.0, exif_bytes: bytes | None = None,
                    raw_xmp: bytes | None = None, alt: float | None = None) -> Path:
    """A JPEG with EXIF GPS (``alt``: GPSAltitude, metres above sea level) / 35 mm focal length
    and a DJI ``drone-dji`` XMP packet."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "DJI"
    if lat is not None and lon is not None:
        exif[ExifTags.Base.GPSInfo] = {1: "N" if lat >= 0 else "S", 2: _dms(abs(lat)),
                                       3: "E" if lon >= 0 else "W", 4: _dms(abs(lon))}
        if alt is not None:
            exif[ExifTags.Base.GPSInfo] = {**exif[ExifTags.Base.GPSInfo], 5: 0, 6: float(alt)}
    if f35:
        exif[ExifTags.Base.ExifOffset] = {ExifTags.Base.FocalLengthIn35mmFilm: int(f35)}
    attrs = " ".join(f'drone-dji:{k}="{v}"' for k, v in (xmp or {}).items())
    packet = raw_xmp if raw_xmp is not None else (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" {attrs}/></rdf:RDF></x:xmpmeta>'
    ).encode()
    Image.fromarray(image).save(path, quality=95, exif=exif_bytes if exif_bytes is not None else exif, xmp=packet)
    return path
