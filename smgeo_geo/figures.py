"""Figures a person would rather look at than tables (matplotlib, Agg backend, PNG).

* :func:`bar_chart`: acc@0.25 per class and per scale for each method (paper Figs. 10-11);
* :func:`heatmap_panels`: query with click | reference with true and found boxes | heatmap
  (paper Fig. 9);
* :func:`expert_maps`: the reference with the grid-level top-1 expert of each GMoE stage
  (paper Fig. 13).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


def _save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG through the project's atomic writer, then close it."""
    from smgeo_geo.errors import OutputError
    from smgeo_model.fileio import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, OutputError) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def bar_chart(report: dict, path: Path) -> Path:
    methods = list(report["methods"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    for ax, key, title in ((axes[0], "per_class", "acc@0.25 per class"), (axes[1], "per_scale", "acc@0.25 per scale")):
        groups = sorted({g for m in methods for g in report["methods"][m][key]})
        if key == "per_scale":
            groups = [g for g in ("small", "medium", "large") if g in groups]
        x = np.arange(len(groups))
        width = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            vals = [100 * report["methods"][m][key].get(g, {}).get("acc@0.25", 0.0) for g in groups]
            ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=m)
        ax.set_xticks(x, groups, rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def _box(ax, box, colour, label=None):
    x1, y1, x2, y2 = [float(v) for v in box]
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2, ec=colour, label=label))


def heatmap_panels(samples: list[dict], path: Path) -> Path:
    """samples: dicts with ``query`` ``[3,h,w]``, ``click`` (x, y), ``reference`` ``[3,H,W]``,
    ``truth`` and ``pred`` xyxy (reference px, same frame as ``reference``), ``heatmap`` ``[h',w']``."""
    n = len(samples)
    fig, axes = plt.subplots(n, 3, figsize=(10, 3.4 * n), squeeze=False)
    for row, s in zip(axes, samples):
        row[0].imshow(s["query"].permute(1, 2, 0).numpy())
        row[0].plot(*[float(v) for v in s["click"]], marker="*", ms=16, mec="black", mfc="yellow")
        row[0].set_title("query + click")
        ref = s["reference"].permute(1, 2, 0).numpy()
        row[1].imshow(ref)
        _box(row[1], s["truth"], "lime", "truth")
        if s.get("pred") is not None:
            _box(row[1], s["pred"], "red", "SMGeo")
        row[1].legend(fontsize=7, loc="lower right")
        row[1].set_title("reference")
        H, W = ref.shape[:2]
        row[2].imshow(ref)
        row[2].imshow(s["heatmap"].numpy(), extent=(0, W, H, 0), cmap="jet", alpha=0.5)
        row[2].set_title("heatmap")
        for ax in row:
            ax.axis("off")
    return _save(fig, path)


def expert_maps(reference: torch.Tensor, routings: list, blocks_per_stage: list[tuple[int, int]], path: Path,
                num_experts: int) -> Path:
    """reference ``[3,H,W]``; routings: the reference view's GMoE routings in network order;
    blocks_per_stage: (stage, count of GMoE layers) pairs in the same order. The first
    GMoE layer of each stage is drawn, each cell coloured by its top-1 expert."""
    stages, idx, first = [], 0, []
    for stage, count in blocks_per_stage:
        if count:
            first.append((stage, routings[idx]))
        idx += count
    fig, axes = plt.subplots(1, 1 + len(first), figsize=(3.6 * (1 + len(first)), 3.6), squeeze=False)
    ref = reference.permute(1, 2, 0).numpy()
    H, W = ref.shape[:2]
    axes[0, 0].imshow(ref)
    axes[0, 0].set_title("reference")
    cmap = plt.get_cmap("tab10", num_experts)
    for ax, (stage, r) in zip(axes[0, 1:], first):
        top1 = r.experts[0, ..., 0].cpu().numpy()
        ax.imshow(ref)
        im = ax.imshow(top1, extent=(0, W, H, 0), cmap=cmap, vmin=-0.5, vmax=num_experts - 0.5, alpha=0.6,
                       interpolation="nearest")
        ax.set_title(f"stage {stage}: top-1 expert per cell")
        stages.append(im)
    for ax in axes[0]:
        ax.axis("off")
    if stages:
        fig.colorbar(stages[-1], ax=list(axes[0, 1:]), ticks=range(num_experts), fraction=0.03, label="expert")
    return _save(fig, path)
