"""Evaluation report files: ``report.json``, ``report.md`` and ``report.png`` (atomic writes).

The report dict: ``{"corpus", "split", "items", "places", "systems": {name: score report}}``
where a score report is :func:`smgeo_retrieval.evaluate.score_report`'s (plus training
facts for ablations).
"""

from __future__ import annotations

import json
from pathlib import Path

from smgeo_geo.errors import OutputError
from smgeo_model.fileio import write_text

METRICS = ("R@1", "R@5", "R@10", "mAP")
JSON_NAME, MD_NAME, PNG_NAME = "report.json", "report.md", "report.png"


def markdown(report: dict, descriptions: dict[str, str] | None = None) -> str:
    """Tables: overall (same place + platform), place level, and R@1 / mAP per query platform."""
    systems = report["systems"]
    descriptions = descriptions or {}
    lines = [f"# Text-to-image retrieval: {report.get('corpus', '')} ({report.get('split', '')})", "",
             f"{report.get('items', 0)} items of {report.get('places', 0)} places; one query per item (its "
             f"`query` text); relevant = same place and platform (place level: any platform). Values in %.", ""]

    def table(title: str, key: str) -> None:
        lines.extend([f"## {title}", "", "| system | " + " | ".join(METRICS) + " |",
                      "|---|" + "---:|" * len(METRICS)])
        for name, r in systems.items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * r[key][m]:.1f}" for m in METRICS) + " |")
        lines.append("")

    table("Overall (same place and platform)", "overall")
    table("Place level (any platform of the place)", "place_level")
    platforms = sorted({p for r in systems.values() for p in r["per_platform"]},
                       key=lambda p: ("satellite", "drone", "ground").index(p)
                       if p in ("satellite", "drone", "ground") else 9)
    lines.extend(["## Per query platform (R@1 / R@10 / mAP)", "",
                  "| system | " + " | ".join(platforms) + " |", "|---|" + "---:|" * len(platforms)])
    for name, r in systems.items():
        cells = []
        for p in platforms:
            m = r["per_platform"].get(p)
            cells.append(f"{100 * m['R@1']:.1f} / {100 * m['R@10']:.1f} / {100 * m['mAP']:.1f}" if m else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    extra = [(n, r) for n, r in systems.items() if "train_seconds" in r or "gate_accuracy" in r or n in descriptions]
    if extra:
        lines.extend(["## Systems", "", "| system | what | gate accuracy | training |", "|---|---|---:|---:|"])
        for name, r in extra:
            gate = f"{100 * r['gate_accuracy']:.1f}%" if "gate_accuracy" in r else "-"
            secs = f"{r['train_seconds'] / 60:.1f} min, {r.get('train_epochs')} epochs" if "train_seconds" in r else "-"
            lines.append(f"| {name} | {descriptions.get(name, '')} | {gate} | {secs} |")
        lines.append("")
    return "\n".join(lines)


def bar_chart(report: dict, path: Path) -> Path:
    """Grouped bars: R@1, R@5, R@10, mAP (overall) per system, and R@1 per query platform."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    systems = report["systems"]
    names = list(systems)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [4, 3]})
    platforms = [p for p in ("satellite", "drone", "ground") if any(p in r["per_platform"] for r in systems.values())]
    panels = ((axes[0], list(METRICS), lambda r, m: r["overall"][m], "overall (same place + platform)"),
              (axes[1], platforms, lambda r, p: r["per_platform"].get(p, {}).get("R@1", 0.0), "R@1 per query platform"))
    for ax, groups, value, title in panels:
        x = np.arange(len(groups))
        width = 0.8 / max(len(names), 1)
        for i, n in enumerate(names):
            ax.bar(x + i * width - 0.4 + width / 2, [100 * value(systems[n], g) for g in groups], width, label=n)
        ax.set_xticks(x, groups)
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    from smgeo_geo.figures import _save

    return _save(fig, Path(path))


def write_report(report: dict, out_dir: str | Path, descriptions: dict[str, str] | None = None,
                 figure: bool = True) -> list[Path]:
    """Write ``report.json``, ``report.md`` and (``figure``) ``report.png`` into ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create report folder {out}: {exc}") from None
    paths = [out / JSON_NAME, out / MD_NAME]
    write_text(paths[0], json.dumps(report, indent=2) + "\n", OutputError)
    write_text(paths[1], markdown(report, descriptions), OutputError)
    if figure:
        paths.append(bar_chart(report, out / PNG_NAME))
    return paths


__all__ = ["bar_chart", "markdown", "write_report"]
