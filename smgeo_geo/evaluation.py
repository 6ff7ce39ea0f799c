"""Evaluation on a CVOGL-layout split: SMGeo and reference points, one run, same pairs.

Methods (each scored with the benchmark's definition, :mod:`smgeo_model.metrics`):

* ``smgeo``: the model's top-1 box;
* ``centre_prior``: a box of the training split's mean size (as a fraction of the tile)
  at the tile centre;
* ``shuffled_query``: the model, with every reference paired with another pair's query
  and click (a fixed derangement): how much the answer depends on the query;
* ``moved_click``: the model, with each pair's click moved half the photo's width and height
  (wrapping round; the photo and tile unchanged): how much the answer depends on the click;
  a model that reads the click loses most of its score here;
* ``classical``: SIFT + MAGSAC homography (:mod:`smgeo_geo.classical`), at full resolution;
  a failed match counts as IoU 0;
* ``auto``: the product's locator (:mod:`smgeo_geo.locator`, ``method="auto"``) on the
  satellite tile georeferenced from its file name: metadata (generated photos carry none, so
  it is skipped), registration and SMGeo, fused.

Besides acc@0.25 / acc@0.5 / mIoU, per class (paper Fig. 10) and per scale (Fig. 11:
small under 300 x 300, medium to 512 x 512, large above, in CVOGL pixels of 0.5 m), and the
GIS user's figure: the distance between predicted and true box centres in metres (median,
90th percentile), from the georeferencing in the satellite file names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from smgeo_model.data.cvogl import CVOGLDataset, CVOGLItem, DatasetError, load_rgb, read_split, satellite_georef
from smgeo_model.metrics import box_iou, localization_metrics
from smgeo_model.train import predict_dataset

METHODS = ("smgeo", "centre_prior", "shuffled_query", "moved_click", "classical", "auto")
CVOGL_METRES_PER_PIXEL = 0.5


def scale_class(box_m: tuple[float, float]) -> str:
    """Fig. 11's scale of a box (width, height in metres), in CVOGL pixels of 0.5 m."""
    area_px = (box_m[0] / CVOGL_METRES_PER_PIXEL) * (box_m[1] / CVOGL_METRES_PER_PIXEL)
    return "small" if area_px < 300 * 300 else ("medium" if area_px <= 512 * 512 else "large")


@dataclass
class PairInfo:
    """Per pair: original satellite size (H, W) px, metres per pixel (None if unknown)."""

    size: tuple[int, int]
    metres_per_pixel: float | None


def _pair_info(item: CVOGLItem) -> PairInfo:
    with Image.open(item.satellite_path) as im:
        w, h = im.size
    try:
        _, _, _, extent = satellite_georef(item.satellite_path.name)
        mpp = extent / w
    except DatasetError:
        mpp = None
    return PairInfo((h, w), mpp)


@dataclass
class MethodResult:
    boxes: torch.Tensor  # [N,4] xyxy in original satellite pixels (NaN where no answer)
    ious: torch.Tensor  # [N]
    metrics: dict = field(default_factory=dict)


def _summaries(ious: torch.Tensor, labels: list[str]) -> dict[str, dict]:
    out = {}
    for label in sorted(set(labels)):
        mask = torch.tensor([lab == label for lab in labels])
        out[label] = localization_metrics(ious[mask])
    return out


def _centre_errors_m(pred: torch.Tensor, truth: torch.Tensor, infos: list[PairInfo]) -> dict:
    errs = []
    for p, t, info in zip(pred, truth, infos):
        if info.metres_per_pixel is None or torch.isnan(p).any():
            continue
        d = ((p[:2] + p[2:]) / 2 - (t[:2] + t[2:]) / 2).norm().item()
        errs.append(d * info.metres_per_pixel)
    if not errs:
        return {"count": 0}
    a = np.asarray(errs)
    return {"median_m": float(np.median(a)), "p90_m": float(np.percentile(a, 90)), "count": len(errs)}


def evaluate(
    model,
    data_root: str | Path,
    data_name: str,
    split: str = "test",
    methods: tuple[str, ...] = METHODS,
    batch_size: int = 8,
    device: str = "cpu",
    limit: int | None = None,
    progress: Callable | None = None,
    checkpoint: str | Path | None = None,
    reference_zoom: float = 1.0,
) -> dict:
    """Score ``methods`` on a split; returns the report dict written by ``smgeo evaluate``.

    ``checkpoint``: the file ``model`` was loaded from (the ``auto`` method loads its own
    predictor from it; default the bundled model). ``reference_zoom`` (0 < z <= 1, ``smgeo``,
    ``shuffled_query`` and ``moved_click`` only): SMGeo sees each tile shrunk by z about its centre on a black
    canvas, as at a coarser search scale; its boxes are mapped back to the tile's pixels."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; choose from {METHODS}")
    cfg = model.config
    if not 0 < reference_zoom <= 1:
        raise ValueError(f"reference_zoom must be in (0, 1], got {reference_zoom}")
    shrink = CentredShrink(reference_zoom) if reference_zoom < 1 else None
    dataset = CVOGLDataset(data_root, data_name, split, reference_size=cfg.reference_size, query_size=cfg.query_size,
                           transform=shrink)
    if limit:
        dataset.items = dataset.items[:limit]
    items = dataset.items
    infos = [_pair_info(it) for it in items]
    truth = torch.tensor([it.box for it in items], dtype=torch.float32)
    to_original = torch.tensor([[i.size[1] / cfg.reference_size[1], i.size[0] / cfg.reference_size[0]] * 2
                                for i in infos])
    classes = [it.class_name for it in items]
    scales = [scale_class(((b[2] - b[0]) * (i.metres_per_pixel or CVOGL_METRES_PER_PIXEL),
                           (b[3] - b[1]) * (i.metres_per_pixel or CVOGL_METRES_PER_PIXEL))) for b, i in zip(truth, infos)]

    results: dict[str, MethodResult] = {}
    # the model's own answers, and with the photo or the click taken away from the tile
    for name, variant in (("smgeo", {}), ("shuffled_query", {"shuffle_queries": True}),
                          ("moved_click", {"move_clicks": True})):
        if name in methods:
            pred = predict_dataset(model, dataset, batch_size, device, progress=progress, **variant)
            boxes = shrink.to_tile(pred["boxes"], cfg.reference_size) if shrink else pred["boxes"]
            results[name] = MethodResult(boxes * to_original, torch.zeros(0))
    if "centre_prior" in methods:
        results["centre_prior"] = MethodResult(_centre_prior(data_root, data_name, infos), torch.zeros(0))
    if "classical" in methods:
        results["classical"] = MethodResult(_classical(items, progress), torch.zeros(0))
    if "auto" in methods:
        results["auto"] = MethodResult(_auto(items, checkpoint, device, progress), torch.zeros(0))

    report = {"data": {"root": str(data_root), "name": data_name, "split": split, "pairs": len(items),
                       "reference_zoom": reference_zoom},
              "methods": {}}
    for name, res in results.items():
        valid = ~torch.isnan(res.boxes).any(1)
        res.ious = torch.where(valid, box_iou(torch.nan_to_num(res.boxes), truth), torch.zeros(len(items)))
        entry = localization_metrics(res.ious)
        entry["per_class"] = _summaries(res.ious, classes)
        entry["per_scale"] = _summaries(res.ious, scales)
        entry["centre_error"] = _centre_errors_m(res.boxes, truth, infos)
        if name == "classical":
            entry["failures"] = int((~valid).sum())
        report["methods"][name] = entry
    report["_results"] = results  # tensors for figures; dropped before writing JSON
    return report


class CentredShrink:
    """Dataset transform: the reference ``[3,H,W]`` shrunk by ``zoom`` (< 1) about its centre onto
    a black canvas of its size, ``box`` (xyxy reference px) with it; :meth:`to_tile` maps boxes
    from the shrunk frame back to the tile's."""

    def __init__(self, zoom: float) -> None:
        self.zoom = zoom

    def _frame(self, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(scale [4], offset [4], shrunk size (h, w)): shrunk px = tile px * scale + offset."""
        H, W = hw
        sh, sw = max(1, round(H * self.zoom)), max(1, round(W * self.zoom))
        x0, y0 = (W - sw) // 2, (H - sh) // 2
        return torch.tensor([sw / W, sh / H] * 2), torch.tensor([x0, y0] * 2, dtype=torch.float32), (sh, sw)

    def __call__(self, sample: dict) -> dict:
        ref = sample["reference"]
        scale, offset, (sh, sw) = self._frame(tuple(ref.shape[-2:]))
        canvas = ref.new_zeros(ref.shape)
        x0, y0 = int(offset[0]), int(offset[1])
        canvas[:, y0:y0 + sh, x0:x0 + sw] = torch.nn.functional.interpolate(
            ref[None], size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)[0]
        return {**sample, "reference": canvas, "box": sample["box"] * scale + offset}

    def to_tile(self, boxes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        scale, offset, _ = self._frame(tuple(hw))
        return (boxes - offset) / scale


def _centre_prior(data_root, data_name, infos: list[PairInfo]) -> torch.Tensor:
    """Boxes of the training split's mean relative size at the tile centre (original px)."""
    train_items = read_split(data_root, data_name, "train", check_images=False)
    rel = []
    for it in train_items:
        with Image.open(it.satellite_path) as im:
            w, h = im.size
        rel.append(((it.box[2] - it.box[0]) / w, (it.box[3] - it.box[1]) / h))
    mw, mh = np.mean(rel, axis=0) if rel else (0.1, 0.1)
    return torch.tensor([[i.size[1] * (0.5 - mw / 2), i.size[0] * (0.5 - mh / 2),
                          i.size[1] * (0.5 + mw / 2), i.size[0] * (0.5 + mh / 2)] for i in infos], dtype=torch.float32)


def _classical(items: list[CVOGLItem], progress: Callable | None) -> torch.Tensor:
    from smgeo_geo.classical import ClassicalMatcher

    matcher = ClassicalMatcher()
    out = []
    prepared_for, prepared = None, None
    for it in (progress(items) if progress else items):
        to_u8 = lambda p: (load_rgb(p).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
        if prepared_for != it.satellite_path:  # pairs sharing a tile reuse its features
            prepared, prepared_for = matcher.prepare_reference(to_u8(it.satellite_path)), it.satellite_path
        res = matcher.locate_prepared(to_u8(it.query_path), it.click, prepared)
        out.append(list(res.box) if res.box is not None else [float("nan")] * 4)
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 4)


def _auto(items: list[CVOGLItem], checkpoint, device: str, progress: Callable | None) -> torch.Tensor:
    """Boxes of the product's locator (``auto``) per pair, in satellite pixels (NaN: no answer)."""
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    from smgeo_geo.errors import SMGeoError
    from smgeo_geo.locator import Locator
    from smgeo_geo.raster import ReferenceRaster
    from smgeo_geo.windows import WindowSpec

    locator = Locator(checkpoint=checkpoint, device=device)
    out = []
    for it in (progress(items) if progress else items):
        rgb = (load_rgb(it.satellite_path).numpy() * 255).round().astype(np.uint8)
        h, w = rgb.shape[1:]
        try:
            epsg, east, north, extent = satellite_georef(it.satellite_path.name)
        except DatasetError:  # not georeferenced: any metric CRS keeps the pixel geometry
            epsg, east, north, extent = 3857, 0.0, 0.0, float(w)
        profile = dict(driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs=f"EPSG:{epsg}",
                       transform=from_origin(east - extent / 2, north + extent * h / w / 2, extent / w, extent / w))
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(rgb)
            with mem.open() as ds:
                raster = ReferenceRaster(ds, str(it.satellite_path))
                try:
                    det = locator.locate(raster, it.query_path, it.click, method="auto", window=WindowSpec("whole"))
                    out.append(list(det.pixel_box))
                except SMGeoError:
                    out.append([float("nan")] * 4)
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 4)


def markdown_table(report: dict) -> str:
    """Overall and per-scale results as a markdown table (percentages)."""
    lines = ["| method | acc@0.25 | acc@0.5 | mIoU | centre error median (m) | p90 (m) |", "|---|---|---|---|---|---|"]
    for name, m in report["methods"].items():
        ce = m["centre_error"]
        med = f"{ce['median_m']:.1f}" if ce.get("count") else "-"
        p90 = f"{ce['p90_m']:.1f}" if ce.get("count") else "-"
        lines.append(f"| {name} | {100 * m['acc@0.25']:.2f} | {100 * m['acc@0.5']:.2f} | {100 * m['mIoU']:.2f} | {med} | {p90} |")
    lines += ["", "acc@0.25 per scale (%):", "", "| method | " + " | ".join(["small", "medium", "large"]) + " |",
              "|---|---|---|---|"]
    for name, m in report["methods"].items():
        cells = [f"{100 * m['per_scale'][s]['acc@0.25']:.1f} (n={m['per_scale'][s]['count']})"
                 if s in m["per_scale"] else "-" for s in ("small", "medium", "large")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
