"""Bad inputs made in code, and the checks every refused input must pass.

The promise (README, "User errors"): a user error prints one line ``Error: ...`` naming the
file or field and what was expected, exits with status 2, prints no traceback, writes no
output (no temporary file either) and leaves every input byte-identical.

Inputs live in one folder per test module (``inputs``); each case writes to an empty
``out`` folder. :func:`run_cli` runs ``smgeo`` in-process; :func:`assert_refused` checks
the promise for one run. The model is the bundled demo model (256 px reference, 128 px
photo), loaded only by the cases that get that far.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from smgeo_geo.cli import main
from smgeo_geo.worker import FINAL_EVENTS, Worker
from smgeo_model import bundled_checkpoint
from smgeo_model.checkpoint import checkpoint_paths

from ..geo.conftest import write_tif as geo_write_tif

UTM = "EPSG:32633"
NORTH_UP = Affine(0.5, 0.0, 400_000.0, 0.0, -0.5, 5_000_000.0)  # 0.5 m pixels, UTM 33N
LOCAL_CS = ('LOCAL_CS["Engineering site",LOCAL_DATUM["site",32767],UNIT["metre",1],'
            'AXIS["X",EAST],AXIS["Y",NORTH]]')
PHOTO_WH = (128, 96)


def write_tif(path: Path, data: np.ndarray, crs=UTM, transform=NORTH_UP, nodata=None) -> Path:
    """``data`` (bands x H x W) as a GeoTIFF (UTM, north-up by default; None leaves it out)."""
    return geo_write_tif(path, data, crs=crs, transform=transform, nodata=nodata)


def rgb(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring ``width x height`` RGB pixels, and no pixel
    data: what a decompression bomb looks like before it is decoded (a few dozen bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def jpeg_bytes(w: int = PHOTO_WH[0], h: int = PHOTO_WH[1], seed: int = 1) -> bytes:
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def copy_checkpoint(folder: Path, name: str, edit=None) -> Path:
    """The bundled demo model copied to ``folder/name`` (+ .safetensors / .json), its JSON
    document passed through ``edit(doc)`` (which changes it in place); returns the stem."""
    weights, config = checkpoint_paths(bundled_checkpoint())
    stem = folder / name
    new_weights, new_config = checkpoint_paths(stem)
    shutil.copyfile(weights, new_weights)
    doc = json.loads(config.read_text())
    if edit is not None:
        edit(doc)
    new_config.write_text(json.dumps(doc, indent=1))
    return stem


def make_inputs(d: Path) -> dict[str, Path]:
    """Every input the suites use, good and bad, written to ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    p = {"dir": d}
    p["ref"] = write_tif(d / "ref.tif", rgb())
    p["ref_5band"] = write_tif(d / "ref_5band.tif", rgb(seed=2)[[0, 1, 2, 0, 1]])
    p["complex"] = write_tif(d / "complex.tif", (rgb()[:1] + 1j).astype(np.complex64))
    p["zero_pixel"] = write_tif(d / "zero_pixel.tif", rgb(), transform=Affine(0.0, 0.0, 400_000.0, 0.0, 0.0, 5e6))
    p["singular"] = write_tif(d / "singular.tif", rgb(), transform=Affine(0.5, 0.5, 400_000.0, 0.5, 0.5, 5e6))
    p["nan_transform"] = write_tif(d / "nan_transform.tif", rgb(),
                                   transform=Affine(float("nan"), 0.0, 400_000.0, 0.0, -0.5, 5e6))
    p["lat95"] = write_tif(d / "lat95.tif", rgb(), crs="EPSG:4326", transform=Affine(1e-4, 0, 10.0, 0, -1e-4, 95.0))
    p["local_cs"] = write_tif(d / "local_cs.tif", rgb(), crs=LOCAL_CS)
    p["no_georef"] = write_tif(d / "no_georef.tif", rgb(), crs=None, transform=None)
    p["no_crs"] = write_tif(d / "no_crs.tif", rgb(), crs=None)
    p["all_nodata"] = write_tif(d / "all_nodata.tif", np.zeros((3, 64, 64), np.uint8), nodata=0)
    p["all_nan"] = write_tif(d / "all_nan.tif", np.full((1, 64, 64), np.nan, np.float32))
    (d / "text.tif").write_text("not a raster\n")
    p["text_tif"] = d / "text.tif"
    (d / "photo.jpg").write_bytes(jpeg_bytes())
    p["photo"] = d / "photo.jpg"
    (d / "bomb.png").write_bytes(png_header(20_000, 20_000))  # 400 MP: beyond Pillow's own limit
    p["bomb"] = d / "bomb.png"
    (d / "big.png").write_bytes(png_header(13_000, 13_000))  # 169 MP: beyond ours, within Pillow's
    p["big"] = d / "big.png"
    (d / "truncated.jpg").write_bytes(jpeg_bytes()[:400])
    p["truncated"] = d / "truncated.jpg"
    (d / "empty.jpg").write_bytes(b"")
    p["empty"] = d / "empty.jpg"
    (d / "notes.jpg").write_text("a text file named like a photo\n")
    p["not_image"] = d / "notes.jpg"
    (d / "folder.jpg").mkdir()
    p["folder_photo"] = d / "folder.jpg"
    p["dotted_model"] = copy_checkpoint(d, "my.model")
    return p


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (folders as ``<dir>``)."""
    out = {}
    for f in sorted(folder.rglob("*")):
        out[str(f.relative_to(folder))] = "<dir>" if f.is_dir() else hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``smgeo ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, out: str, err: str, names: list[str]) -> str:
    """Exit status 2, no traceback, stdout empty, stderr exactly one ``Error: ...`` line
    that contains every string of ``names`` (the file or field). Returns the line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert out == "", out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


class InProcess:
    """A :class:`Worker` in this process. ``run(*requests)`` queues every request line first,
    then serves until the queue is empty, and returns the replies written meanwhile: the
    order of events depends only on the requests, never on timing."""

    def __init__(self, worker_class=Worker) -> None:
        self.out = io.StringIO()
        self.worker = worker_class(io.StringIO(""), self.out)  # empty stdin: serve() stops when the queue is done
        self.replies: list[dict] = []

    def run(self, *requests: dict | str) -> list[dict]:
        start = len(self.out.getvalue())
        for r in requests:
            self.worker.receive(r if isinstance(r, str) else json.dumps(r))
        self.worker.serve()
        new = [json.loads(line) for line in self.out.getvalue()[start:].splitlines()]
        self.replies += new
        return new

    def final(self, request_id) -> dict:
        finals = [r for r in self.replies if r.get("id") == request_id and r["event"] in FINAL_EVENTS]
        assert len(finals) == 1, f"request {request_id!r}: {len(finals)} final replies"
        return finals[0]
