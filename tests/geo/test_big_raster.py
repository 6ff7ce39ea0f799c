"""A 40,000 x 40,000 (4.8 GB uncompressed) tiled, compressed, sparse GeoTIFF is read in
windows with bounded memory: only the requested windows' blocks are ever read.

Measured on the dev machine (GDAL 3.10 from the rasterio wheel): peak RSS (VmHWM) growth
143 MB for a 4,000 x 4,000 px window of real deflate-compressed data read down to
512 x 512 (decompressed blocks in GDAL's block cache + resampling buffers), a boundless
corner window and two sliding windows. Bound asserted: 300 MB. For comparison a plain
full-resolution read of a 40,000 x 6,000 strip grew RSS by 1,415 MB; the whole raster
would need 4.8 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import rasterio
from rasterio.windows import Window

from .conftest import from_origin

SIZE = 40_000
BLOCK = 512
MARK = (20_480, 20_480)  # top-left (col, row) of the one block written with a known colour

PROBE = r"""
import json, sys
import numpy as np
from smgeo_geo.coords import pixel_to_lonlat
from smgeo_geo.raster import open_reference
from smgeo_geo.windows import sliding_windows, window_from_center

def rss_mb():
    # Peak RSS of this process. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child
    # of a big pytest process would report the parent's peak.
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024  # KiB -> MiB

base = rss_mb()
out = {}
with open_reference(sys.argv[1]) as r:
    lon, lat = (float(v) for v in pixel_to_lonlat(r.transform, r.crs, r.width / 2, r.height / 2))
    win = window_from_center(r, lon, lat, 1000.0)  # 0.5 m pixels -> 4000 x 4000 px
    img, m = r.read_window(win, (512, 512))
    u, v = m.to_model(20_736, 20_736)  # centre of the marked block
    out["window"] = [win.col_off, win.row_off, win.width, win.height]
    out["marked"] = img[int(v), int(u)].tolist()
    out["elsewhere"] = img[5, 5].tolist()
    out["nonzero_fraction"] = float((img > 0).mean())
    clon, clat = (float(x) for x in pixel_to_lonlat(r.transform, r.crs, 0, 0))
    corner, valid, _ = r.read_window_with_mask(window_from_center(r, clon, clat, 300.0), (256, 256))
    out["corner_valid_fraction"] = float(valid.mean())
    wins = sliding_windows(r, 1024, 0.25)
    out["n_sliding"] = len(wins)
    for w in (wins[0], wins[len(wins) // 2]):
        r.read_window(w, (512, 512))
out["peak_growth_mb"] = rss_mb() - base
print(json.dumps(out))
"""


def make_big_sparse_tif(path) -> None:
    profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", tiled=True,
                   blockxsize=BLOCK, blockysize=BLOCK, compress="deflate", sparse_ok=True,
                   crs="EPSG:32633", transform=from_origin(400_000, 5_000_000, 0.5, 0.5))
    block = np.empty((3, BLOCK, BLOCK), np.uint8)
    block[0], block[1], block[2] = 200, 100, 50
    # Real (compressible, non-zero) data in the 4608 x 4608 px centre that the probe reads.
    c0 = 17_920
    rows, cols = np.mgrid[0:4608, 0:4608]
    pattern = ((rows * 3 + cols * 7) % 251 + 1).astype(np.uint8)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([pattern] * 3), window=Window(c0, c0, 4608, 4608))
        dst.write(block, window=Window(*MARK, BLOCK, BLOCK))
        dst.write(block // 2, window=Window(0, 0, BLOCK, BLOCK))


def test_windowed_reads_of_40k_raster_use_bounded_memory(tmp_path):
    path = tmp_path / "big.tif"
    t0 = time.perf_counter()
    make_big_sparse_tif(path)
    assert path.stat().st_size < 20_000_000  # sparse: only the centre blocks and one corner block stored
    res = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                         timeout=120, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    c0, r0, w, h = out["window"]  # 2 km on the ground ~ 4000 px (UTM scale factor ~0.9997 here)
    assert abs(w - 4000) < 40 and abs(h - 4000) < 40 and abs(c0 + w / 2 - 20_000) <= 1 and abs(r0 + h / 2 - 20_000) <= 1
    assert out["marked"] == [200, 100, 50] and out["nonzero_fraction"] > 0.99
    assert 0.1 < out["corner_valid_fraction"] < 0.4  # a quarter of the corner window is inside
    step = int(round(1024 * 0.75))
    assert out["n_sliding"] == (len(range(0, SIZE - 1024, step)) + 1) ** 2
    assert out["peak_growth_mb"] < 300, f"peak RSS grew by {out['peak_growth_mb']:.0f} MB (bound 300 MB)"
    assert time.perf_counter() - t0 < 60
