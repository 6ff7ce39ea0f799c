"""Self-supervised adaptation of an SMGeo checkpoint to the user's own area (``smgeo adapt``).

No labels are needed: drone views of the user's orthophoto (draped on the DSM when given) are
rendered with :func:`smgeo_synth.realpairs.generate_realpairs`, whose targets (footprints, else
salient structures) give the clicks and boxes. The checkpoint is fine-tuned on the training
pairs for a time budget and scored on held-back pairs of the same area before and after.

Run folder ``out``::

    adapt_inputs.json      what the data was made from, by content (a rerun with other inputs is
                           refused; a copy of the same files elsewhere resumes)
    data/ADAPT/            the rendered pairs (CVOGL layout, train / val / test)
    train/                 the fine-tuning run (resumable: last, best, train_state.pt)
    adapted.safetensors    the adapted checkpoint (+ .json): what locate, batch, the worker and
                           the QGIS plugin take
    adapt.json, adapt.md, adapt.png   before / after on the held-back (test) pairs

Rerunning the same command resumes: the pairs are kept, training continues until its budget
(summed over runs) is spent, and the evaluation is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from smgeo_geo.errors import OptionError, OutputError

DATASET = "ADAPT"
FINE_TUNE_LR = 5e-5  # a tenth of training from scratch would move too little in minutes; 1e-4 forgets
STEPS_PER_EPOCH = 40  # short epochs: validation (and the best checkpoint) every few minutes on CPU
MAX_EPOCHS = 10_000  # the time budget, not the epoch count, ends adaptation
DEFAULT_REGION_M = 30.0  # metres across a salient structure's region: adapt's and smgeo_synth.realpairs' default


@dataclass
class AdaptOptions:
    """What to adapt to. Paths: ``reference`` orthophoto (any CRS), ``dem`` DSM/DEM,
    ``footprints`` target polygons; ``checkpoint`` the starting model (default: bundled);
    ``minutes`` of training (summed over resumed runs); ``pairs`` rendered pairs (80 % train,
    10 % val, 10 % held back for the before/after score); ``match_points``: also train on each
    photo's recorded corners as further clicks (``pairs_info[i]["points"]``, up to 8 per photo,
    each answered by a box of the pair's box size around the tile pixel it shows);
    ``search_scale``: zoom the training tiles down to the coarsest scale the locator searches
    the area at (:func:`search_scale_range`), not only around the tiles' own scale, and choose the
    kept checkpoint on validation tiles shrunk to that scale; ``region_size``: metres across the
    square region around each salient structure clicked (without ``footprints``): its truth box."""

    reference: Path
    out: Path
    dem: Path | None = None
    footprints: Path | None = None
    checkpoint: Path | None = None
    minutes: float = 20.0
    pairs: int = 400
    seed: int = 0
    batch_size: int = 8
    device: str | None = None
    workers: int = 1
    restart: bool = False
    match_points: bool = False
    search_scale: bool = True
    region_size: float = DEFAULT_REGION_M


SAMPLE_BYTES = 1 << 20  # bytes read at the start, middle and end of an input file for its fingerprint


def _fingerprint(path) -> str:
    """SHA-256 of a file's size and of 1 MiB at its start, middle and end: the same for a copy
    (other folder, other modification time), different for other content, quick for big mosaics."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


def _inputs_record(opts: AdaptOptions, checkpoint: Path) -> dict:
    """What the pairs and the run are made from; :func:`_same_inputs` compares two of them."""
    def file(p):
        if p is None:
            return None
        return {"path": os.path.abspath(p), "bytes": os.path.getsize(p), "fingerprint": _fingerprint(p)}

    return {"reference": file(opts.reference), "dem": file(opts.dem), "footprints": file(opts.footprints),
            "checkpoint": file(checkpoint), "pairs": opts.pairs, "seed": opts.seed, "match_points": opts.match_points,
            "search_scale": opts.search_scale, "region_size": opts.region_size}


def _same_inputs(have: dict | None, record: dict) -> bool:
    """Whether a folder's recorded inputs are ``record``'s: by content, wherever the files now lie."""
    def content(r):
        return {k: ({a: b for a, b in v.items() if a != "path"} if isinstance(v, dict) else v) for k, v in r.items()
                if k != "render_seconds"}

    # runs recorded before an input was recorded used its default
    return have is not None and content({"region_size": DEFAULT_REGION_M, **have}) == content(record)


def check_options(opts: AdaptOptions) -> None:
    """Clear :class:`OptionError` / :class:`InputFileError` before anything is written."""
    from smgeo_geo.errors import InputFileError

    if not opts.minutes > 0:
        raise OptionError(f"--minutes must be above 0 (got {opts.minutes:g})")
    if opts.pairs < 20:
        raise OptionError(f"--pairs must be at least 20 (got {opts.pairs}): 10 % are held back to score the result")
    if not 2 <= opts.region_size <= 1000:
        raise OptionError(f"--region-size must be 2 to 1000 m (got {opts.region_size:g})")
    if opts.batch_size < 1:
        raise OptionError(f"--batch-size must be at least 1 (got {opts.batch_size})")
    for name, p in (("--reference", opts.reference), ("--dem", opts.dem), ("--footprints", opts.footprints),
                    ("--checkpoint", opts.checkpoint)):
        if p is not None and name != "--checkpoint" and not Path(p).is_file():
            raise InputFileError(f"{name} {p}: no such file")
    if opts.out.exists() and not opts.out.is_dir():
        raise OutputError(f"--out {opts.out}: exists and is not a folder")


def adapt(opts: AdaptOptions, log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Render pairs of the area, score the starting checkpoint on the held-back ones, fine-tune
    it for ``opts.minutes``, score again; returns the report written to ``out/adapt.json``."""
    from smgeo_model import bundled_checkpoint, load_checkpoint, save_checkpoint
    from smgeo_model.checkpoint import checkpoint_paths
    from smgeo_model.data import CVOGLDataset
    from smgeo_model.fileio import write_text
    from smgeo_model.train import PairAugment, TrainOptions, train

    from smgeo_geo.errors import model_errors
    from smgeo_geo.evaluation import CentredShrink
    from smgeo_synth.realpairs import generate_realpairs

    check_options(opts)
    started = time.perf_counter()
    base = Path(opts.checkpoint) if opts.checkpoint is not None else bundled_checkpoint()
    with model_errors():
        base_model = load_checkpoint(base, device="cpu")
    cfg = base_model.config
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    record = _inputs_record(opts, checkpoint_paths(base)[0])
    record_path = out / "adapt_inputs.json"
    data_root = out / "data"
    have = json.loads(record_path.read_text()) if record_path.is_file() else None
    fresh = opts.restart or not _same_inputs(have, record)
    if have is not None and fresh and not opts.restart:
        raise OptionError(f"--out {out} holds an adaptation of other inputs ({record_path}); give another --out, "
                          f"or --restart to start over there")
    if fresh or not (data_root / DATASET / "manifest.json").is_file():
        log(f"rendering {opts.pairs} pairs of {opts.reference} ...")
        generate_realpairs(opts.reference, data_root, opts.pairs, seed=opts.seed, name=DATASET, dem=opts.dem,
                           footprints=opts.footprints, region_size=opts.region_size,
                           reference_size=max(cfg.reference_size),
                           query_size=tuple(cfg.query_size), workers=opts.workers, overwrite=True,
                           progress=progress)
        render_s = time.perf_counter() - started
        write_text(record_path, json.dumps({**record, "render_seconds": round(render_s, 1)}, indent=1) + "\n",
                   OutputError)
    else:
        log(f"reusing the pairs in {data_root / DATASET}")
        render_s = have.get("render_seconds")  # the call that rendered them

    augment = PairAugment(seed=opts.seed)
    searched = None  # the coarsest search scale, when coarser than the tiles' own
    if opts.search_scale:
        augment.scale_range = search_scale_range(data_root / DATASET, opts.reference)
        log(f"reference zoom {augment.scale_range[0]:.2f} to {augment.scale_range[1]:.2f} (the scales it is "
            f"searched at)")
        if augment.scale_range[0] < PairAugment().scale_range[0]:
            searched = augment.scale_range[0]
    before = _score(base_model, data_root, opts, log, "before")
    before_searched = _score(base_model, data_root, opts, log, "before", searched) if searched else None
    points = None
    if opts.match_points:  # further clicks per pair
        manifest = json.loads((data_root / DATASET / "manifest.json").read_text())
        points = {p["query"]: p.get("points", []) for p in manifest["pairs_info"]}
    train_set = CVOGLDataset(data_root, DATASET, "train", reference_size=cfg.reference_size,
                             query_size=cfg.query_size, transform=augment, points=points)
    # the kept (best) checkpoint is chosen at the scale it will be used at
    val_set = CVOGLDataset(data_root, DATASET, "val", reference_size=cfg.reference_size, query_size=cfg.query_size,
                           transform=CentredShrink(searched) if searched else None)
    options = TrainOptions(out_dir=out / "train", init_checkpoint=base, epochs=MAX_EPOCHS,
                           batch_size=opts.batch_size, lr=FINE_TUNE_LR, warmup_epochs=0.0, cosine=False,
                           seed=opts.seed, workers=0, resume=not fresh, max_steps_per_epoch=STEPS_PER_EPOCH,
                           device=opts.device, time_budget_s=60.0 * opts.minutes)
    log(f"fine-tuning for {opts.minutes:g} min on {len(train_set)} pairs ({len(val_set)} to validate) ...")
    with model_errors():
        result = train(options, train_set, val_set, progress=progress, log=log)
    chosen = out / "train" / ("best" if (out / "train" / "best.safetensors").is_file() else "last")
    with model_errors():
        adapted = load_checkpoint(chosen, device="cpu")
    after = _score(adapted, data_root, opts, log, "after")
    after_searched = _score(adapted, data_root, opts, log, "after", searched) if searched else None
    save_checkpoint(adapted, out / "adapted", metadata={
        "adapted_from": str(base), "reference": str(opts.reference), "dem": str(opts.dem) if opts.dem else None,
        "training_minutes": round(result.elapsed_s / 60, 2), "before": before, "after": after})
    report = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
              "checkpoint": str(out / "adapted.safetensors"), "started_from": str(base),
              "pairs": {s: len(CVOGLDataset(data_root, DATASET, s, check_images=False))
                        for s in ("train", "val", "test")},
              "reference_zoom": [round(v, 4) for v in augment.scale_range], "before": before, "after": after,
              "searched": None if searched is None else {"reference_zoom": round(searched, 4),
                                                         "before": before_searched, "after": after_searched},
              # rendering (whichever call did it), training (summed over resumed calls), this call's wall time
              "seconds": {"render": None if render_s is None else round(render_s, 1),
                          "training": round(result.elapsed_s, 1), "this_call": round(time.perf_counter() - started, 1)}}
    write_text(out / "adapt.json", json.dumps(report, indent=1) + "\n", OutputError)
    write_text(out / "adapt.md", markdown(report), OutputError)
    before_after_figure(report, out / "adapt.png")
    return report


def search_scale_range(dataset: Path, reference: Path) -> tuple[float, float]:
    """``PairAugment``'s zoom range (tile ground width over the ground width the model input
    shows) reaching the coarsest scale the locator reads this area at, so the model learns the
    area at the scale it will be asked to find things in.

    The locator (:func:`smgeo_geo.windows.resolve`, mode ``auto``) reads a photo's metadata
    footprint, clipped to the raster, at the model's input size whatever its ground size. The
    widest such window is taken for a nadir photo from the top of the rendered altitudes
    (:data:`smgeo_synth.realpairs.pair.ALTITUDE`), at most the raster's long side (ground metres
    at the raster's centre). Where the tiles already cover that much (big areas: CVOGL's 512 m
    tiles) the default range stays; the range never zooms in beyond the default."""
    from smgeo_geo.photo_meta import DEFAULT_HFOV_DEG, view_footprint
    from smgeo_geo.raster import open_reference
    from smgeo_model.train import PairAugment
    from smgeo_synth.realpairs.pair import ALTITUDE

    manifest = json.loads((Path(dataset) / "manifest.json").read_text())
    extent = float(manifest["options"]["tile_extent_m"])
    with open_reference(reference) as raster:
        long_side = max(raster.width, raster.height) * raster.pixel_size_m
    # a nadir footprint's radius is the same anywhere: (0, 0) stands for the raster's centre
    widest = 2 * view_footprint(0.0, 0.0, ALTITUDE[1], -90.0, 0.0, DEFAULT_HFOV_DEG, (4, 3)).radius_m
    lo, hi = PairAugment().scale_range
    return min(lo, extent / min(long_side, widest)), hi


def _score(model, data_root: Path, opts: AdaptOptions, log, when: str, zoom: float = 1.0) -> dict:
    """SMGeo alone on the held-back (test) pairs: acc@0.25/0.5, mIoU, centre error (m), and
    ``moved_click``: the same with each click moved half the photo away (a model that reads the
    click scores far lower there); with ``zoom`` < 1 the tiles shrunk to that search scale
    (:class:`smgeo_geo.evaluation.CentredShrink`)."""
    from smgeo_geo.evaluation import evaluate

    report = evaluate(model, data_root, DATASET, "test", ("smgeo", "moved_click"), opts.batch_size,
                      opts.device or "cpu", reference_zoom=zoom)
    m, moved = report["methods"]["smgeo"], report["methods"]["moved_click"]
    score = {"pairs": report["data"]["pairs"], "acc@0.25": m["acc@0.25"], "acc@0.5": m["acc@0.5"],
             "mIoU": m["mIoU"], "centre_error": m["centre_error"],
             "moved_click": {"acc@0.5": moved["acc@0.5"], "mIoU": moved["mIoU"],
                             "median_m": moved["centre_error"].get("median_m")}}
    med = score["centre_error"].get("median_m")
    at = "" if zoom == 1 else f", tiles at {zoom:.2f}x (the search scale)"
    log(f"{when}{at}: acc@0.5 {score['acc@0.5']:.3f} ({moved['acc@0.5']:.3f} with the click moved), mIoU "
        f"{score['mIoU']:.3f}, median centre error {'-' if med is None else f'{med:.1f} m'} on {score['pairs']} "
        f"held-back pairs")
    return score


def markdown(report: dict) -> str:
    rows = ["| | acc@0.25 | acc@0.5 | mIoU | median centre error (m) | acc@0.5, click moved |",
            "|---|---|---|---|---|---|"]
    searched = report.get("searched")
    scores = [(when, report[when]) for when in ("before", "after")]
    if searched:
        scores += [(f"{when}, tiles at {searched['reference_zoom']:.2f}x (the search scale)", searched[when])
                   for when in ("before", "after")]
    for when, s in scores:
        med = s["centre_error"].get("median_m")
        rows.append(f"| {when} | {s['acc@0.25']:.3f} | {s['acc@0.5']:.3f} | {s['mIoU']:.3f} | "
                    f"{'-' if med is None else f'{med:.1f}'} | {s['moved_click']['acc@0.5']:.3f} |")
    sec = report["seconds"]
    return (f"# Adaptation to {report['options']['reference']}\n\nHeld-back pairs of the area: "
            f"{report['before']['pairs']}. Rendering "
            f"{'-' if sec['render'] is None else format(sec['render'], '.0f')} s, training {sec['training']:.0f} s "
            f"(over every resumed call), this call {sec['this_call']:.0f} s.\n\n" + "\n".join(rows) + "\n")


def before_after_figure(report: dict, path: Path) -> Path:
    """Bars: acc@0.5 and mIoU (%) and the median centre error (m), before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smgeo_geo.figures import _save

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    for i, when in enumerate(("before", "after")):
        s = report[when]
        ax1.bar([j + 0.38 * i for j in range(2)], [100 * s["acc@0.5"], 100 * s["mIoU"]], 0.38, label=when)
        ax2.bar([i], [s["centre_error"].get("median_m") or 0.0], 0.6, label=when)
    ax1.set_xticks([0.19, 1.19], ["acc@0.5", "mIoU"])
    ax1.set_ylabel("%")
    ax1.legend(fontsize=8)
    labels = ["before", "after"]
    searched = report.get("searched")
    if searched:  # the same pairs, tiles at the search scale
        for i, when in enumerate(("before", "after")):
            ax2.bar([2.2 + i], [searched[when]["centre_error"].get("median_m") or 0.0], 0.6, color=f"C{i}", hatch="//")
        labels += [f"before\n{searched['reference_zoom']:.2f}x", f"after\n{searched['reference_zoom']:.2f}x"]
    ax2.set_xticks([0, 1, 2.2, 3.2][: len(labels)], labels)
    ax2.set_ylabel("median centre error (m)")
    fig.suptitle("SMGeo alone on held-back pairs of the area")
    return _save(fig, path)
