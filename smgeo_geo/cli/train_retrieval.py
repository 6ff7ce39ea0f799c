"""``smgeo train-retrieval``: train the text-to-image retrieval model on a generated corpus."""

from __future__ import annotations

from pathlib import Path

import click

PRESET_NAMES = ("tiny", "demo")


@click.command("train-retrieval")
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="retrieval corpus folder (smgeo synth-retrieval); trains on split=train, validates on val")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="run folder: last/best checkpoints (.safetensors + .json), metrics.jsonl, train_state")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="demo", show_default=True, help="model size")
@click.option("--stage1-epochs", type=int, default=8, show_default=True, help="in-batch InfoNCE epochs")
@click.option("--stage2-epochs", type=int, default=4, show_default=True, help="hard-negative epochs")
@click.option("--batch-size", type=int, default=64, show_default=True, help="items per batch (each: image + 2 texts)")
@click.option("--lr", type=float, default=2e-3, show_default=True, help="AdamW learning rate (stage 2: half)")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (bf16 autocast on CUDA)")
@click.option("--resume", is_flag=True, help="continue the run in --out after its last finished epoch")
@click.option("--minutes", type=float, default=None, help="wall-clock budget; each stage gets its epochs' share")
@click.option("--no-experts", is_flag=True, help="ablation: one shared head, no gate")
@click.option("--keep-orientation", is_flag=True, help="ablation: keep orientation words (no removal)")
@click.option("--init-checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="fine-tune: start from this retrieval checkpoint (its weights and vocabulary; same preset)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (1 is fastest on cores shared with other jobs)")
@click.option("--quiet", is_flag=True, help="no progress bars")
def command(corpus, out, preset, stage1_epochs, stage2_epochs, batch_size, lr, device, resume, minutes, no_experts,
            keep_orientation, init_checkpoint, seed, threads, quiet) -> None:
    """Train the retrieval model: stage 1 with in-batch negatives, stage 2 with hard negatives
    mined by the stage-1 model. A checkpoint is written after every epoch; after an
    interruption, rerun the same command with --resume.

    \b
    Example:
      smgeo synth-retrieval --out corpus --places 600 --seed 0
      smgeo train-retrieval --corpus corpus --out runs/retrieval --minutes 20
    """
    from tqdm.auto import tqdm

    from smgeo_geo.cli._options import check_output_folder
    from smgeo_geo.errors import OptionError
    from smgeo_retrieval.corpus_io import read_meta
    from smgeo_retrieval.model import get_retrieval_config
    from smgeo_retrieval.train import RetrievalTrainOptions, resolve_device, set_threads, train_retrieval
    from smgeo_retrieval.train_data import load_pairs

    options = RetrievalTrainOptions(out_dir=out, preset=preset, stage1_epochs=stage1_epochs,
                                    stage2_epochs=stage2_epochs, batch_size=batch_size, lr=lr, device=device,
                                    resume=resume, minutes=minutes, experts=not no_experts,
                                    remove_orientation=not keep_orientation, seed=seed,
                                    init_checkpoint=init_checkpoint).validated()
    resolve_device(device)
    set_threads(threads)
    check_output_folder("--out", out)
    if init_checkpoint is not None and not resume:  # a bad file is named before the images are read
        from smgeo_retrieval.checkpoint import load_retrieval_checkpoint

        load_retrieval_checkpoint(init_checkpoint)
    options.corpus_seed = read_meta(corpus)["seed"]
    size = get_retrieval_config(preset).image_size
    bar = None if quiet else (lambda it: tqdm(it, desc="loading images", leave=False))
    train_data = load_pairs(corpus, "train", size, progress=bar)
    try:
        val_data = load_pairs(corpus, "val", size, progress=bar)
    except OptionError:  # a corpus without a val split trains without validation
        val_data = None
    click.echo(f"training '{preset}' on {len(train_data)} items ({len(set(train_data.place_ids))} places) of "
               f"{corpus}; validation: {len(val_data) if val_data else 0} items -> {out}")
    result = train_retrieval(options, train_data, val_data, progress=not quiet, log=click.echo)
    best = result.best
    msg = f"done in {result.seconds / 60:.1f} min; checkpoint {result.checkpoint}"
    if best:
        msg += (f"; best validation R@1 {best['R@1']:.3f}, R@10 {best['R@10']:.3f}, mAP {best['mAP']:.3f} "
                f"(epoch {best['epoch']}, {out / 'best.safetensors'})")
    click.echo(msg)
