"""``smgeo evaluate-retrieval``: Recall@K and mAP of text-to-image retrieval, with ablations."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("evaluate-retrieval")
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="retrieval corpus folder to evaluate on")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="retrieval checkpoint (.safetensors + .json); default: the bundled demo model")
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="test", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="report folder: report.json, report.md, report.png (and ablations/ runs)")
@click.option("--ablations", is_flag=True,
              help="also train and score, with the same budget each: full system, no experts, orientation words "
                   "kept, one stage; plus a random baseline")
@click.option("--variants", default="full,no_experts,keep_orientation,one_stage", show_default=True,
              help="ablation variants to train, comma-separated; also: route_all, no_word_head")
@click.option("--train-corpus", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="corpus whose train split the ablations train on (default: --corpus)")
@click.option("--preset", type=click.Choice(["tiny", "demo"]), default="demo", show_default=True,
              help="model size of the ablation runs")
@click.option("--stage1-epochs", type=int, default=8, show_default=True, help="ablation budget: stage-1 epochs")
@click.option("--stage2-epochs", type=int, default=4, show_default=True, help="ablation budget: stage-2 epochs")
@click.option("--minutes", type=float, default=None, help="ablation budget: wall-clock minutes per variant")
@click.option("--batch-size", type=int, default=64, show_default=True, help="ablation training batch size")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (1 is fastest on cores shared with other jobs)")
@click.option("--quiet", is_flag=True, help="no progress bars")
def command(corpus, checkpoint, split, out, ablations, variants, train_corpus, preset, stage1_epochs, stage2_epochs, minutes,
            batch_size, device, seed, threads, quiet) -> None:
    """Score retrieval on a corpus split: one query per item (its platform-specific `query`
    text) against every item of the split; relevant = same place and platform (also
    reported: any platform of the place). Recall@1/5/10 and mAP overall and per platform.

    Ablation runs go to OUT/ablations/<name>/ and resume when the command is rerun.

    \b
    Example:
      smgeo evaluate-retrieval --corpus corpus --checkpoint runs/retrieval/best.safetensors --out eval/retrieval
    """
    from tqdm.auto import tqdm

    from smgeo_geo.cli._options import check_output_folder
    from smgeo_geo.errors import OptionError
    from smgeo_retrieval.checkpoint import bundled_retrieval_checkpoint, load_retrieval_checkpoint
    from smgeo_retrieval.corpus_io import read_meta
    from smgeo_retrieval.evaluate import (ABLATIONS, DESCRIPTIONS, EXTRA_ABLATIONS, PLACE_FUSION, evaluate_model,
                                          random_report, run_ablations)
    from smgeo_retrieval.model import get_retrieval_config
    from smgeo_retrieval.report import write_report
    from smgeo_retrieval.train import RetrievalTrainOptions, resolve_device, set_threads
    from smgeo_retrieval.train_data import load_pairs

    resolve_device(device)
    set_threads(threads)
    check_output_folder("--out", out)
    base = None
    names = tuple(v.strip() for v in variants.split(",") if v.strip())
    unknown = [v for v in names if v not in ABLATIONS + EXTRA_ABLATIONS]
    if unknown or not names:
        raise OptionError(f"--variants: unknown variant {unknown[0] if unknown else variants!r} (choose from "
                          f"{', '.join(ABLATIONS + EXTRA_ABLATIONS)})")
    if ablations:
        if (train_corpus is None or Path(train_corpus).resolve() == Path(corpus).resolve()) and split in ("train", "all"):
            raise OptionError(f"--ablations train on the train split of {train_corpus or corpus}: evaluate on val or "
                              f"test, or on another corpus")
        base = RetrievalTrainOptions(out_dir=out / "ablations", preset=preset, stage1_epochs=stage1_epochs,
                                     stage2_epochs=stage2_epochs, batch_size=batch_size, device=device,
                                     resume=True, minutes=minutes, seed=seed).validated()
    ckpt = checkpoint or bundled_retrieval_checkpoint()
    model = load_retrieval_checkpoint(ckpt, device=device)
    bar = None if quiet else (lambda it: tqdm(it, desc="loading images", leave=False))
    meta = read_meta(corpus)
    data = load_pairs(corpus, split, model.config.image_size, progress=bar)
    report = {"corpus": str(corpus), "corpus_seed": meta["seed"], "split": split, "items": len(data),
              "places": len(set(data.place_ids)), "systems": {}}
    report["systems"]["checkpoint"] = {**evaluate_model(model, data), "checkpoint": str(ckpt)}
    report["systems"][PLACE_FUSION] = report["systems"]["checkpoint"].pop("place_fusion")
    if ablations:
        source = train_corpus or corpus
        base.corpus_seed = read_meta(source)["seed"]
        size = get_retrieval_config(preset).image_size
        train_data = load_pairs(source, "train", size, progress=bar)
        eval_data = data if size == model.config.image_size else load_pairs(corpus, split, size, progress=bar)
        try:
            val_data = load_pairs(source, "val", size, progress=bar)
        except OptionError:
            val_data = None
        report["systems"].update(run_ablations(base, train_data, val_data, eval_data, out / "ablations", names,
                                               progress=not quiet, log=click.echo))
    else:
        report["systems"]["random"] = random_report(data, seed=seed)
    paths = write_report(report, out, DESCRIPTIONS)
    for name, r in report["systems"].items():
        o = r["overall"]
        click.echo(f"{name:>17}: R@1 {o['R@1']:.3f}  R@5 {o['R@5']:.3f}  R@10 {o['R@10']:.3f}  mAP {o['mAP']:.3f}  "
                   f"(place-level R@1 {r['place_level']['R@1']:.3f})")
    click.echo(f"wrote {', '.join(str(p) for p in paths)}")
