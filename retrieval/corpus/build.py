"""Write a whole corpus folder (layout: ``docs/retrieval.md``).

Place ``i`` depends only on ``(seed, i)`` and the options (its generator is seeded with
``SeedSequence([seed, i])``), so any number of worker processes writes the same bytes.
Item ids are ``i`` + a zero-padded number from a seeded permutation of all items, so they
encode neither the place nor the platform. Images are written first, then ``items.jsonl``,
then ``corpus.json`` (each atomically): a folder without ``corpus.json`` is unfinished.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from smgeo_geo.errors import OptionError, OutputError
from smgeo_synth.dataset import encode_jpeg, map_in_order, split_assignment
from smgeo_synth.georef import geotiff_from_jpeg
from smgeo_model.fileio import TEMP_MARK, write_bytes

from smgeo_retrieval.corpus import captions, views
from smgeo_retrieval.corpus.georef import PlaceFrame, jpeg_with_gps, place_grid
from smgeo_retrieval.corpus.options import GENERATOR_VERSION, CorpusOptions
from smgeo_retrieval.corpus.places import Place, build_place, choose_class
from smgeo_retrieval.corpus_io import (CORPUS_FORMAT, CORPUS_VERSION, ITEMS_FILE, META_FILE, SPLITS, CorpusItem,
                                       write_items, write_meta)

IMAGES = "images"
OURS = {IMAGES, ITEMS_FILE, META_FILE}


def item_ids(seed: int, total: int) -> list[str]:
    """Opaque ids of ``total`` items: item ``j`` (place ``j // K``, view ``j % K``) gets
    ``i`` + the zero-padded ``j``-th number of a seeded permutation."""
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x1D5])).permutation(total)
    width = max(6, len(str(total - 1)))
    return [f"i{int(k):0{width}d}" for k in perm]


def place_id(index: int, places: int) -> str:
    return f"p{index:0{max(5, len(str(places - 1)))}d}"


def _worker_init() -> None:
    cv2.setNumThreads(1)


def seeded_place(seed: int, index: int) -> tuple[Place, np.random.Generator]:
    """Place ``index`` of a corpus made with ``seed`` (what its captions describe; not rendered)
    and the random generator its views and texts are drawn from next."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return build_place(rng, choose_class(rng)), rng


def _make_place(job: tuple) -> tuple[list[dict], dict]:
    """Render place ``index``, write its images; returns its items (dicts) and statistics."""
    index, opts, folder, grid, ids, pid, split = job
    folder = Path(folder)
    place, rng = seeded_place(opts.seed, index)
    e0, n0 = grid.centre(index, rng)
    frame = PlaceFrame(grid.epsg, place.centre[0], place.centre[1], float(e0), float(n0))
    size = opts.image_size
    out: list[dict] = []

    def item(k: int, platform: str, view: views.View, heading: float | None) -> None:
        lon, lat = frame.lonlat(np.array(view.position[:2]))[0].tolist()
        rel = f"{IMAGES}/{platform}/{ids[k]}{'.tif' if platform == 'satellite' else '.jpg'}"
        if platform == "satellite":
            jpeg = encode_jpeg(view.image, view.quality)
            ec, nc = frame.utm(np.array(view.position[:2]))[0].tolist()
            geotiff_from_jpeg(folder / rel, jpeg, size, size, ec, nc, view.side_m, grid.epsg)
        else:
            write_bytes(folder / rel, jpeg_with_gps(view.image, view.quality, lon, lat, view.position[2]), OutputError)
        out.append({"item_id": ids[k], "place_id": pid, "platform": platform, "split": split, "image": rel,
                    "lon": lon, "lat": lat,
                    "footprint": frame.footprint_wkt(view.footprint) if view.footprint is not None else None,
                    "caption": captions.caption(place, rng),
                    "query": captions.query(place, platform, rng, heading or 0.0)})

    # Vertices almost in a low camera's plane project far outside int32 in the renderer's
    # drawing coordinates; those solids are redrawn clipped, so the cast warning is noise.
    with np.errstate(invalid="ignore"):
        item(0, "satellite", views.render_satellite(place, rng, size), None)
        for k in range(opts.drone_views):
            v = views.render_drone(place, rng, k, size)
            item(1 + k, "drone", v, v.heading)
        for k in range(opts.ground_views):
            v = views.render_ground_view(place, rng, size)
            item(1 + opts.drone_views + k, "ground", v, v.heading)
    stats = {"class": place.class_name, "attributes": repr(place.attribute_tuple()), "core": repr(place.core_tuple()),
             "look_alike": repr((place.thing.kind, place.thing.colour, place.thing.roof))}
    return out, stats


def prepare_folder(folder: Path, overwrite: bool) -> None:
    """Make ``folder`` ready: empty, or (``overwrite``) a former corpus emptied."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(f"corpus folder {folder} exists and is not empty; pass --overwrite to replace it "
                              f"(or choose another --out)")
        foreign = [p.name for p in folder.iterdir() if p.name not in OURS and TEMP_MARK not in p.name]
        if foreign:
            raise OutputError(f"refusing to overwrite {folder}: it holds files the generator did not write "
                              f"({', '.join(sorted(foreign)[:5])}); remove them or choose another folder")
        (folder / META_FILE).unlink(missing_ok=True)  # first: a half-deleted corpus must not look valid
        (folder / ITEMS_FILE).unlink(missing_ok=True)
        for p in folder.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for platform in ("satellite", "drone", "ground"):
        (folder / IMAGES / platform).mkdir(parents=True, exist_ok=True)


def unique_share(keys: list[str]) -> float:
    """Share of places whose key occurs once."""
    counts = Counter(keys)
    return sum(1 for k in keys if counts[k] == 1) / max(len(keys), 1)


def generate_corpus(out: str | os.PathLike, options: CorpusOptions, workers: int = 1, overwrite: bool = False,
                    progress: bool = True) -> dict:
    """Write the corpus of ``options`` to folder ``out``; returns ``corpus.json``'s content
    plus ``elapsed_s`` and ``stats`` (uniqueness of the caption attributes)."""
    opts = options.validated()
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise OptionError(f"workers must be a positive integer, got {workers!r}")
    grid = place_grid(opts.seed, opts.places)
    if opts.places > grid.capacity:
        raise OptionError(f"at most {grid.capacity} places fit in one UTM zone")
    folder = Path(out)
    prepare_folder(folder, overwrite)
    k = opts.views_per_place
    ids = item_ids(opts.seed, opts.places * k)
    labels = split_assignment(opts.seed, opts.places, opts.splits)
    jobs = [(i, opts, str(folder), grid, ids[i * k:(i + 1) * k], place_id(i, opts.places), labels[i])
            for i in range(opts.places)]
    start = time.perf_counter()
    results = map_in_order(_make_place, jobs, min(workers, opts.places), progress, "synth-retrieval",
                           initializer=_worker_init)
    elapsed = time.perf_counter() - start
    items = [CorpusItem(**d) for r, _ in results for d in r]
    write_items(folder / ITEMS_FILE, items)
    stats = [s for _, s in results]
    meta = {
        "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "seed": opts.seed, "places": opts.places,
        "platforms": opts.platforms, "image_size": opts.image_size, "crs": "EPSG:4326",
        "generator": "smgeo_retrieval.corpus", "generator_version": GENERATOR_VERSION,
        "projected_crs": f"EPSG:{grid.epsg}",
        "views": {"satellite": 1, "drone": opts.drone_views, "ground": opts.ground_views},
        "split_fractions": list(opts.splits),
        "counts": {s: {"places": labels.count(s), "items": sum(1 for it in items if it.split == s)} for s in SPLITS},
        "classes": dict(sorted(Counter(s["class"] for s in stats).items())),
    }
    write_meta(folder / META_FILE, meta)
    looks = Counter(s["look_alike"] for s in stats)
    meta["elapsed_s"] = elapsed
    meta["stats"] = {
        "unique_caption_attributes": unique_share([s["attributes"] for s in stats]),
        "unique_core_tuple": unique_share([s["core"] for s in stats]),
        "with_look_alike": sum(1 for s in stats if looks[s["look_alike"]] > 1) / len(stats),
    }
    return meta
