"""Generate a whole dataset in the CVOGL layout (see :mod:`smgeo_model.data.cvogl`).

``out_root/<name>/`` gets ``query/*.jpg``, ``satellite/<E>_<N>_<extent>_<EPSG>.jpg`` (plus a
GeoTIFF with the same stem), ``manifest.json`` and the three list files
``<name>_{train,val,test}.pth``. List items: ``(id, query file, satellite file, drone heading
in degrees, (click x, y) query px, [x1, y1, x2, y2] satellite px, object area m^2, class)``.

Every pair's content depends only on ``(seed, pair index)`` and the options (per-pair seeds
from :class:`numpy.random.SeedSequence`), so any number of worker processes writes the same
bytes. Images are written first, the manifest next and the lists last (each atomically), so
an interrupted run never leaves a list pointing at missing images.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from smgeo_geo.errors import OutputError
from smgeo_synth.difficulty import get_difficulty
from smgeo_synth.georef import ZONES, TileGrid, geotiff_from_jpeg, satellite_name
from smgeo_synth.options import GENERATOR_VERSION, PairOptions, SynthOptionError
from smgeo_synth.pair import render_pair
from smgeo_model.fileio import TEMP_MARK, write_bytes, write_text

SPLITS = ("train", "val", "test")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FIELDS = {
    "0": "pair id (int)",
    "1": "query image file name in query/",
    "2": "satellite image file name in satellite/: <easting>_<northing>_<extent m>_<EPSG>.jpg (tile centre)",
    "3": "drone heading, degrees clockwise from north (not used by loaders)",
    "4": "click (x, y) on the target in query pixels",
    "5": "target box [x1, y1, x2, y2] in satellite pixels",
    "6": "target area in m^2 (not used by loaders)",
    "7": "class name",
}


def pair_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def pair_classes(seed: int, pairs: int, weights: dict[str, float]) -> list[str]:
    names = sorted(weights)
    w = np.array([weights[n] for n in names], dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC1A55]))
    return [names[i] for i in rng.choice(len(names), size=pairs, p=w / w.sum())]


def split_assignment(seed: int, pairs: int, fractions: tuple[float, float, float]) -> list[str]:
    """Split of every pair: seeded shuffle, counts from the fractions (each non-zero fraction
    gets at least one pair when there are enough pairs)."""
    f = np.asarray(fractions, dtype=np.float64) / sum(fractions)
    counts = np.floor(f * pairs).astype(int)
    for k in np.argsort(-(f * pairs - counts))[: pairs - counts.sum()]:
        counts[k] += 1
    for k in range(3):
        if f[k] > 0 and counts[k] == 0 and pairs >= int((f > 0).sum()):
            counts[int(np.argmax(counts))] -= 1
            counts[k] += 1
    labels = np.repeat(np.arange(3), counts)
    np.random.default_rng(np.random.SeedSequence([seed, 0x5B117])).shuffle(labels)
    return [SPLITS[k] for k in labels]


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _make_pair(job: tuple) -> tuple:
    """Render pair ``index`` and write its files; returns its list item."""
    index, seed, class_name, opts, folder, grid, geotiff = job
    pair = render_pair(pair_seed(seed, index), opts, class_name)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0x6E0]))
    easting, northing = grid.centre(index, rng)
    sat_name = satellite_name(easting, northing, opts.extent, grid.epsg)
    query_name = f"{index:06d}.jpg"
    folder = Path(folder)
    _write(folder / "query" / query_name, encode_jpeg(pair.query, pair.query_quality))
    sat_jpeg = encode_jpeg(pair.satellite, pair.satellite_quality)
    _write(folder / "satellite" / sat_name, sat_jpeg)
    if geotiff:
        h, w = pair.satellite.shape[:2]
        geotiff_from_jpeg(folder / "satellite" / (Path(sat_name).stem + ".tif"), sat_jpeg, w, h, easting, northing,
                          opts.extent, grid.epsg)
    return (index, query_name, sat_name, pair.heading, pair.click, list(pair.box), pair.area_m2, pair.class_name)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG, YCbCr 4:2:0 (what the GeoTIFF writer declares)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [
        cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    if not ok:
        raise OutputError("could not encode a JPEG image")
    return buf.tobytes()


def _write(path: Path, data: bytes) -> None:
    write_bytes(path, data, OutputError)


def prepare_folder(folder: Path, name: str, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(f"dataset folder {folder} exists and is not empty; pass --overwrite to replace it "
                               f"(or choose another --out / --name)")
        ours = {"query", "satellite", "manifest.json"} | {f"{name}_{s}.pth" for s in SPLITS}
        foreign = [p.name for p in folder.iterdir() if p.name not in ours and TEMP_MARK not in p.name]
        if foreign:
            raise OutputError(f"refusing to overwrite {folder}: it holds files the generator did not write "
                               f"({', '.join(sorted(foreign)[:5])}); remove them or choose another folder")
        for s in SPLITS:  # lists first: a half-deleted dataset must not look valid
            (folder / f"{name}_{s}.pth").unlink(missing_ok=True)
        (folder / "manifest.json").unlink(missing_ok=True)
        for p in folder.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    (folder / "query").mkdir(parents=True, exist_ok=True)
    (folder / "satellite").mkdir(exist_ok=True)


def generate_dataset(out_root: str | os.PathLike, pairs: int, seed: int = 0, name: str = "SYNTH_DroneAerial",
                     reference_size: int = 1024, query_size: int | tuple[int, int] = 256,
                     ground_resolution: float | None = None, difficulty: str = "medium",
                     splits: tuple[float, float, float] = (0.8, 0.1, 0.1), workers: int = 1,
                     overwrite: bool = False, geotiff: bool = True, progress: bool = True,
                     class_weights: dict[str, float] | None = None, epsg: int | None = None) -> dict:
    """Write ``pairs`` synthetic pairs to ``out_root/name`` in the CVOGL layout; returns the
    manifest. ``ground_resolution`` (satellite m/px) defaults to CVOGL's 512 m tile width
    spread over ``reference_size`` pixels; ``epsg`` picks the UTM zone (default: drawn from
    the seed among :data:`.georef.ZONES`)."""
    if not isinstance(pairs, int) or pairs < 1:
        raise SynthOptionError(f"pairs must be a positive integer, got {pairs!r}")
    if not isinstance(seed, int) or seed < 0:
        raise SynthOptionError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise SynthOptionError(f"dataset name {name!r} must be letters, digits, '_', '-' or '.' (e.g. SYNTH_DroneAerial)")
    if not isinstance(workers, int) or workers < 1:
        raise SynthOptionError(f"workers must be a positive integer, got {workers!r}")
    if len(splits) != 3 or any(not np.isfinite(f) or f < 0 for f in splits) or sum(splits) <= 0:
        raise SynthOptionError(f"splits must be three non-negative fractions (train, val, test), got {splits!r}")
    q = (query_size, query_size) if isinstance(query_size, int) else tuple(query_size)
    opts = PairOptions(reference_size, q, ground_resolution, difficulty,
                       dict(class_weights) if class_weights is not None else None).validated()
    if epsg is None:
        zones = sorted(ZONES)
        epsg = zones[int(np.random.default_rng(np.random.SeedSequence([seed, 0xE95])).integers(len(zones)))]
    if epsg not in ZONES:
        raise SynthOptionError(f"EPSG {epsg} is not one of the supported UTM zones {sorted(ZONES)}")
    grid = TileGrid(epsg, opts.extent, int(np.random.default_rng(np.random.SeedSequence([seed, 0x0FF])).integers(1 << 30)))
    if pairs > grid.capacity:
        raise SynthOptionError(f"at most {grid.capacity} pairs fit in one UTM zone at this tile size")
    folder = Path(out_root) / name
    prepare_folder(folder, name, overwrite)

    classes = pair_classes(seed, pairs, opts.class_weights)
    labels = split_assignment(seed, pairs, tuple(float(f) for f in splits))  # type: ignore[arg-type]
    jobs = [(i, seed, classes[i], opts, str(folder), grid, geotiff) for i in range(pairs)]
    start = time.perf_counter()
    items = map_in_order(_make_pair, jobs, workers, progress, "synth", initializer=_worker_init)
    elapsed = time.perf_counter() - start
    names = [it[2] for it in items]
    if len(set(names)) != len(names):  # cannot happen (unique grid cells); never write a bad list
        raise OutputError("internal error: two tiles got the same file name")

    by_split = {s: [it for it, lab in zip(items, labels) if lab == s] for s in SPLITS}
    manifest = {
        "generator": "smgeo_synth", "version": GENERATOR_VERSION, "name": name, "seed": seed, "pairs": pairs,
        "options": {"reference_size": opts.reference_size, "query_size": list(opts.query_size),
                    "ground_resolution_m": opts.resolution, "tile_extent_m": opts.extent,
                    "difficulty": get_difficulty(opts.difficulty).as_dict(), "splits": list(splits),
                    "class_weights": opts.class_weights, "geotiff": geotiff},
        "crs": f"EPSG:{epsg}", "crs_name": ZONES[epsg][0],
        "counts": {s: len(v) for s, v in by_split.items()},
        "classes": {s: dict(sorted(Counter(it[7] for it in v).items())) for s, v in by_split.items()},
        "list_fields": FIELDS,
        "frames": {"click": "query pixels, x = column, y = row, origin at the top-left corner of the image",
                   "box": "satellite pixels, same convention; the tile is north-up"},
    }
    write_text(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n", OutputError)
    from smgeo_model.data import write_split  # lists last (torch is only needed here)

    for s in SPLITS:
        write_split(out_root, name, s, by_split[s])
    manifest["elapsed_s"] = elapsed
    return manifest


def map_in_order(fn, jobs: list, workers: int, progress: bool, desc: str, initializer=None,
                 initargs: tuple = ()) -> list:
    """``[fn(job) for job in jobs]`` with a progress bar: in this process when ``workers`` is 1
    (or one job), else in a process pool (forkserver where there is one) whose workers run
    ``initializer(*initargs)`` first. Results come back in the order of ``jobs``."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="pair", disable=not progress, dynamic_ncols=True)
    try:
        if workers == 1 or len(jobs) == 1:
            out = []
            for job in jobs:
                out.append(fn(job))
                bar.update()
            return out
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(min(workers, len(jobs)), initializer=initializer, initargs=initargs) as pool:
            out = []
            for item in pool.imap(fn, jobs, chunksize=1 if len(jobs) < 64 else 4):
                out.append(item)
                bar.update()
            return out
    finally:
        bar.close()
