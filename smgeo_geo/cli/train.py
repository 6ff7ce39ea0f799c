"""``smgeo train``: train SMGeo on a CVOGL-layout dataset (CVOGL itself or generated)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train")
@click.option("--data-root", "--data_root", "data_root", type=click.Path(path_type=Path), required=True,
              help="folder holding the dataset folder (e.g. data/ with data/CVOGL_DroneAerial/)")
@click.option("--data-name", "--data_name", "data_name", default=("CVOGL_DroneAerial",), show_default=True,
              multiple=True, help="dataset folder name under --data-root; repeat it to train on several "
                                  "datasets together (e.g. generated towns and real-texture pairs)")
@click.option("--out", "--savename", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="run folder: checkpoints, metrics.jsonl (rerun the same command to resume)")
@click.option("--config", default="tiny", show_default=True, help="model config: paper or tiny")
@click.option("--max-epoch", "--max_epoch", "epochs", type=int, default=25, show_default=True)
@click.option("--batch-size", "--batch_size", "batch_size", type=int, default=8, show_default=True,
              help="per process (per GPU under torchrun)")
@click.option("--img-size", "--img_size", "img_size", type=int, default=None,
              help="reference (satellite) size in pixels; default: the config's")
@click.option("--query-size", type=int, default=None, help="query (drone photo) size in pixels; default: the config's")
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate")
@click.option("--warmup-epochs", type=float, default=1.0, show_default=True)
@click.option("--cosine/--no-cosine", default=True, show_default=True, help="cosine decay after warm-up")
@click.option("--augment/--no-augment", default=True, show_default=True, help="random scale, flips, box-safe crop")
@click.option("--amp/--no-amp", default=True, show_default=True, help="mixed precision (GPU only)")
@click.option("--workers", type=int, default=2, show_default=True, help="data-loading processes")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--swin-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="standard Swin-T checkpoint (.safetensors, or .pth read with weights_only=True)")
@click.option("--init-checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="start from this checkpoint's weights and config (fine-tuning; --config is then ignored)")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="time budget of the run in minutes (summed over resumed runs; the running epoch ends early, "
                   "is validated and saved)")
@click.option("--resume/--restart", default=True, show_default=True, help="continue a run found in --out")
@click.option("--max-steps-per-epoch", type=int, default=None, help="shorten epochs (quick looks)")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: GPU if present)")
def command(data_root, data_name, out, config, epochs, batch_size, img_size, query_size, lr, warmup_epochs, cosine,
            augment, amp, workers, seed, swin_weights, init_checkpoint, minutes, resume, max_steps_per_epoch,
            device) -> None:
    """Train SMGeo (paper recipe: Adam 1e-4, warm-up + cosine, batch 8, 25 epochs).

    Checkpoints go to --out every epoch (last, best by validation acc@0.5); rerunning the
    same command after an interruption resumes where it stopped. Several GPUs: launch with
    torchrun, e.g. `torchrun --nproc_per_node 4 -m smgeo_geo.cli train ...`.

    \b
    Example:
      smgeo synth --out data --pairs 2000 --seed 0 --reference-size 256 --query-size 128
      smgeo train --data-root data --data-name SYNTH_DroneAerial --config tiny \\
                  --max-epoch 10 --batch-size 8 --out runs/tiny
    """
    from smgeo_geo.predictor import check_device
    from smgeo_model import get_config

    if device is not None:
        check_device(device)  # before the data is read
    from smgeo_model.data import CVOGLDataset
    from smgeo_model.train import PairAugment, TrainOptions, train

    if init_checkpoint is not None:
        from smgeo_model.checkpoint import read_checkpoint_config

        cfg = read_checkpoint_config(init_checkpoint)[0]  # a bad checkpoint fails here, before the data is read
        config = cfg.name
    else:
        cfg = get_config(config)
    ref_size = (img_size, img_size) if img_size else cfg.reference_size
    q_size = (query_size, query_size) if query_size else cfg.query_size
    train_set = CVOGLDataset.joined(data_root, data_name, "train", reference_size=ref_size, query_size=q_size,
                                    transform=PairAugment(seed=seed) if augment else None)
    val_set = CVOGLDataset.joined(data_root, data_name, "val", reference_size=ref_size, query_size=q_size)
    click.echo(f"training '{config}' on {' + '.join(data_name)}: {len(train_set)} train / {len(val_set)} val pairs, "
               f"reference {ref_size[0]}x{ref_size[1]}, query {q_size[0]}x{q_size[1]} -> {out}")
    options = TrainOptions(out_dir=out, config=config, epochs=epochs, batch_size=batch_size, lr=lr,
                           warmup_epochs=warmup_epochs, cosine=cosine, seed=seed, workers=workers, amp=amp,
                           resume=resume, swin_weights=swin_weights, max_steps_per_epoch=max_steps_per_epoch,
                           device=device, init_checkpoint=init_checkpoint,
                           time_budget_s=minutes * 60 if minutes else None)
    result = train(options, train_set, val_set, progress=True, log=click.echo)
    if result.best:
        click.echo(f"best validation: acc@0.5 {result.best['acc@0.5']:.3f}, mIoU {result.best['mIoU']:.3f} "
                   f"(epoch {result.best['epoch']}); checkpoint {out / 'best.safetensors'}")
