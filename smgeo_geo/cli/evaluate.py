"""``smgeo evaluate``: benchmark metrics of SMGeo and reference methods on a split."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("evaluate")
@click.option("--data-root", "--data_root", "data_root", type=click.Path(path_type=Path), required=True)
@click.option("--data-name", "--data_name", "data_name", default="CVOGL_DroneAerial", show_default=True)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="SMGeo checkpoint (.safetensors + .json); default: the bundled demo model")
@click.option("--methods", default="smgeo,centre_prior,shuffled_query,moved_click,classical,auto", show_default=True,
              help="comma-separated methods to score")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="write the report here (a .md table and PNG figures are written beside it)")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--limit", type=int, default=None, help="score only the first N pairs")
@click.option("--reference-zoom", type=float, default=1.0, show_default=True,
              help="score the model on each tile shrunk by this factor (0-1] about its centre on a black "
                   "canvas, as at a coarser search scale (smgeo, shuffled_query and moved_click)")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="bar chart, heatmap panels (Fig. 9) and expert maps (Fig. 13) as PNG")
def command(data_root, data_name, split, checkpoint, methods, json_out, batch_size, device, limit, reference_zoom,
            figures) -> None:
    """Score SMGeo, the centre prior, shuffled queries, moved clicks, the classical matcher and the
    product's locator (auto: metadata, registration and SMGeo fused) on one split.

    Writes one entry per method with acc@0.25, acc@0.5 and mIoU (fractions), per-class and
    per-scale tables and the centre error in metres, plus OUT.md and OUT_*.png figures.

    \b
    Example:
      smgeo evaluate --data-root data --data-name SYNTH_DroneAerial --split test --json eval/test.json
    """
    import torch
    from tqdm.auto import tqdm

    from smgeo_geo.errors import OptionError, OutputError
    from smgeo_geo.evaluation import METHODS, evaluate, markdown_table
    from smgeo_geo.predictor import check_device
    from smgeo_model import fileio
    from smgeo_model import bundled_checkpoint, load_checkpoint

    check_device(device)  # before the model loads and the split is read
    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown or not chosen:
        raise OptionError(f"--methods {methods!r}: unknown {', '.join(unknown) or '(none given)'}; choose from "
                          f"{','.join(METHODS)}")
    if not 0 < reference_zoom <= 1:
        raise OptionError(f"--reference-zoom must be above 0 and at most 1 (got {reference_zoom:g})")
    ckpt = checkpoint or bundled_checkpoint()
    model = load_checkpoint(ckpt, device=device)
    report = evaluate(model, data_root, data_name, split, chosen, batch_size, device, limit,
                      progress=lambda it: tqdm(it, leave=False), checkpoint=ckpt, reference_zoom=reference_zoom)
    results = report.pop("_results")
    report["checkpoint"] = str(ckpt)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    fileio.write_text(json_out, json.dumps(report, indent=2), OutputError)
    table = markdown_table(report)
    fileio.write_text(json_out.with_suffix(".md"), table, OutputError)
    click.echo(table)
    if figures:
        from smgeo_geo import figures as figs
        from smgeo_model import decode_boxes
        from smgeo_model.data import CVOGLDataset

        cfg = model.config
        figs.bar_chart(report, json_out.with_name(json_out.stem + "_bars.png"))
        dataset = CVOGLDataset(data_root, data_name, split, reference_size=cfg.reference_size, query_size=cfg.query_size)
        samples, first_routing = [], None
        with torch.inference_mode():
            for i in range(min(4, len(dataset))):
                s = dataset[i]
                out = model(s["query"][None].to(device), s["click"][None].to(device), s["reference"][None].to(device))
                box, _ = decode_boxes(out["heatmap"], out["boxes"], cfg.reference_size, top_k=1)
                samples.append({"query": s["query"], "click": s["click"], "reference": s["reference"],
                                "truth": s["box"], "pred": box[0, 0].cpu(), "heatmap": out["heatmap"][0, 0].cpu()})
                first_routing = first_routing or (s["reference"], out["routing"]["reference"])
        if samples:
            figs.heatmap_panels(samples, json_out.with_name(json_out.stem + "_heatmaps.png"))
            per_stage = [(st, len(cfg.moe_blocks(st))) for st in range(4)]
            figs.expert_maps(first_routing[0], first_routing[1], per_stage,
                             json_out.with_name(json_out.stem + "_experts.png"), cfg.moe_num_experts)
    click.echo(f"wrote {json_out} (+ .md{', PNG figures' if figures else ''})")
    del results
