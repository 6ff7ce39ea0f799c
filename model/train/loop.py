"""The training loop: Adam + warm-up/cosine, AMP on GPU, DDP under torchrun, resume.

Files written to ``out_dir`` (rank 0 only):

* ``last.safetensors/.json``: the model after the latest epoch (project checkpoint format);
* ``best.safetensors/.json``: the model with the best validation acc@0.5 (then mIoU);
* ``train_state.pt``: weights, optimiser, scheduler and epoch, for resuming (tensors and
  plain values only, read back with ``weights_only=True``); written last, it is the commit
  point of an epoch;
* ``metrics.jsonl``: one JSON line per epoch (losses, learning rate, validation metrics).

Resuming continues after the last completed epoch. Data order, augmentation and the
model's own randomness (DropPath, gate noise) are seeded per epoch, so an interrupted and
resumed run ends with the same weights as an uninterrupted one (on the same device).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from smgeo_model.build import build_model
from smgeo_model.checkpoint import load_checkpoint, save_checkpoint
from smgeo_model.decode import decode_boxes
from smgeo_model.errors import CheckpointError
from smgeo_model.prompt import moved_clicks
from smgeo_model.fileio import atomic_path, write_text
from smgeo_model.loss import SMGeoLoss
from smgeo_model.metrics import box_iou, localization_metrics


@dataclass
class TrainOptions:
    """Options of :func:`train` (the seed README's, plus the model config).

    Sizes are pixels (height = width); ``None`` takes the model config's default.
    ``max_steps_per_epoch`` shortens epochs (smoke tests, quick looks).
    ``init_checkpoint``: start from this project checkpoint's weights (fine-tuning; its stored
    config is used and ``config`` is ignored). ``time_budget_s``: seconds of training (summed
    over resumed runs); when spent, the running epoch ends early, is validated and saved, and
    training stops.
    """

    out_dir: Path
    config: str = "tiny"
    epochs: int = 25
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    cosine: bool = True
    seed: int = 0
    workers: int = 0
    amp: bool = True
    augment: bool = True
    resume: bool = True
    swin_weights: Path | None = None
    max_steps_per_epoch: int | None = None
    device: str | None = None
    init_checkpoint: Path | None = None
    time_budget_s: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    epochs_run: int
    best: dict
    last: dict
    out_dir: Path
    elapsed_s: float = 0.0
    budget_spent: bool = False


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def _collate(items: list[dict]) -> dict:
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out


def clicks_and_boxes(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The batch's clicks ``[N,2]`` (x, y query px), their boxes ``[N,4]`` (xyxy reference px)
    and the pair of each (``[N]``, None without ``points``): every pair's own click, then the
    valid rows of its ``points`` (x, y, col, row), each answered by a box of the pair's own box
    size centred on (col, row)."""
    clicks, boxes = batch["click"], batch["box"]
    points = batch.get("points")
    if points is None:
        return clicks, boxes, None
    B, K, _ = points.shape
    ok = torch.isfinite(points).all(-1)
    pair = torch.arange(B)[:, None].expand(B, K)[ok]
    p = points[ok]
    half = (boxes[pair, 2:] - boxes[pair, :2]) / 2
    extra = torch.cat([p[:, 2:] - half, p[:, 2:] + half], 1)
    return torch.cat([clicks, p[:, :2]]), torch.cat([boxes, extra]), torch.cat([torch.arange(B), pair])


@torch.inference_mode()
def predict_dataset(model, dataset: Dataset, batch_size: int = 8, device: str | torch.device = "cpu",
                    shuffle_queries: bool = False, seed: int = 0, progress: Callable | None = None,
                    move_clicks: bool = False) -> dict:
    """Top-1 boxes for every sample: ``{"boxes" [N,4], "scores" [N], "truth" [N,4], "index" [N]}``.

    ``shuffle_queries`` pairs each reference with another sample's query and click (a
    fixed derangement of the split), to measure how much the answer depends on the query;
    ``move_clicks`` keeps each pair's photo but moves its click (:func:`moved_clicks`), to
    measure how much it depends on the click.
    """
    model.eval()
    n = len(dataset)
    perm = torch.arange(n)
    if shuffle_queries and n > 1:
        g = torch.Generator().manual_seed(seed)
        perm = (torch.arange(n) + torch.randint(1, n, (), generator=g)) % n
    boxes, scores, truth = [], [], []
    steps = range(0, n, batch_size)
    for start in (progress(steps) if progress else steps):
        idx = list(range(start, min(start + batch_size, n)))
        samples = [dataset[i] for i in idx]
        queries = [dataset[int(perm[i])] for i in idx] if shuffle_queries else samples
        batch = _collate(samples)
        qbatch = _collate(queries) if shuffle_queries else batch
        clicks = moved_clicks(qbatch["click"], tuple(qbatch["query"].shape[-2:])) if move_clicks else qbatch["click"]
        out = model(qbatch["query"].to(device), clicks.to(device), batch["reference"].to(device))
        b, s = decode_boxes(out["heatmap"].float(), out["boxes"].float(), tuple(batch["reference"].shape[-2:]), top_k=1)
        boxes.append(b[:, 0].cpu())
        scores.append(s[:, 0].cpu())
        truth.append(batch["box"])
    return {"boxes": torch.cat(boxes), "scores": torch.cat(scores), "truth": torch.cat(truth).float(),
            "index": torch.arange(n)}


def _lr_factor(step: int, total: int, warmup: int, cosine: bool) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _better(a: dict, b: dict | None) -> bool:
    return b is None or (a["acc@0.5"], a["mIoU"]) > (b["acc@0.5"], b["mIoU"])


def train(options: TrainOptions, train_set: Dataset, val_set: Dataset | None = None,
          progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train a model of ``options.config`` on ``train_set`` (samples as the CVOGL reader's)."""
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if options.device:
        device = torch.device(options.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    use_amp = options.amp and device.type == "cuda"
    out_dir = Path(options.out_dir)
    is_main = rank == 0
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(options.seed)
    if options.init_checkpoint is not None:
        model = load_checkpoint(options.init_checkpoint).train().to(device)
    else:
        model = build_model(options.config, swin_weights=options.swin_weights).to(device)
    loss_fn = SMGeoLoss(model.config)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / (options.batch_size * world))
    if options.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, options.max_steps_per_epoch)
    total, warmup = options.epochs * steps_per_epoch, int(options.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: _lr_factor(s, total, warmup, options.cosine))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, best, last, elapsed = 0, None, {}, 0.0
    state_path = out_dir / "train_state.pt"
    if options.resume and state_path.is_file():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
        except Exception as exc:
            raise CheckpointError(f"cannot resume from {state_path}: {str(exc).splitlines()[0]}") from None
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best = int(state["epoch"]) + 1, (json.loads(state["best"]) if state["best"] else None)
        elapsed = float(state.get("elapsed_s", 0.0))
        if is_main:
            _keep_metrics_until(out_dir / "metrics.jsonl", start_epoch)
            log(f"resuming from {out_dir} after epoch {start_epoch}")
    elif options.resume is False and state_path.exists() and is_main:
        log(f"not resuming: starting over in {out_dir}")

    ddp_model = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
    ) if distributed else model
    augment = getattr(train_set, "transform", None)

    budget = options.time_budget_s
    spent = budget is not None and elapsed >= budget
    epochs_run = 0
    for epoch in range(start_epoch, options.epochs):
        if spent:
            break
        epochs_run += 1
        torch.manual_seed(options.seed * 100_003 + epoch)  # DropPath / gate noise per epoch
        if hasattr(augment, "set_epoch"):
            augment.set_epoch(epoch)
        generator = torch.Generator().manual_seed(options.seed * 7_919 + epoch)
        if distributed:
            sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=options.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(train_set, generator=generator)
        loader = DataLoader(train_set, batch_size=options.batch_size, sampler=sampler, num_workers=options.workers,
                            collate_fn=_collate, drop_last=False, persistent_workers=False)
        ddp_model.train()
        sums = {"loss": 0.0, "heatmap": 0.0, "bbox": 0.0, "entropy": 0.0}
        seen = clicks_seen = pairs_seen = 0
        started = time.time()
        bar = None
        if progress and is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{options.epochs}", leave=False)
        for step, batch in enumerate(loader):
            if step >= steps_per_epoch:
                break
            clicks, boxes, pair_index = clicks_and_boxes(batch)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                out = ddp_model(batch["query"].to(device), clicks.to(device), batch["reference"].to(device),
                                None if pair_index is None else pair_index.to(device))
                parts = loss_fn(out, boxes.to(device).float())
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(parts["loss"]).backward()
            scaler.step(optimiser)
            scaler.update()
            scheduler.step()
            for k in sums:
                sums[k] += float(parts[k].detach())
            seen += 1
            clicks_seen, pairs_seen = clicks_seen + len(clicks), pairs_seen + len(batch["click"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(parts['loss'].detach()):.3f}")
            if budget is not None and elapsed + time.time() - started >= budget:
                spent = True  # the time budget: this epoch ends here
                break
        if bar is not None:
            bar.close()
        if distributed:  # every process stops where the slowest one's budget says
            flag = torch.tensor([float(spent)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            spent = bool(flag.item())
        elapsed += time.time() - started
        record = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "seconds": round(time.time() - started, 2),
                  **{f"train_{k}": v / max(seen, 1) for k, v in sums.items()},
                  "train_clicks_per_pair": clicks_seen / max(pairs_seen, 1)}
        if distributed:
            dist.barrier()
        if is_main:
            if val_set is not None and len(val_set):
                pred = predict_dataset(model, val_set, options.batch_size, device)
                metrics = localization_metrics(box_iou(pred["boxes"], pred["truth"]))
                record.update({f"val_{k}": v for k, v in metrics.items()})
                if _better(metrics, best):
                    best = {**metrics, "epoch": epoch + 1}
                    save_checkpoint(model, out_dir / "best", metadata={"epoch": epoch + 1, "val": metrics,
                                                                       "options": _jsonable(options)})
            meta = {"epoch": epoch + 1, "options": _jsonable(options), "record": record}
            save_checkpoint(model, out_dir / "last", metadata=meta)
            # the state file is the commit point of an epoch: it holds the weights too
            state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                     "best": json.dumps(best) if best else "", "elapsed_s": elapsed}
            with atomic_path(state_path) as tmp:
                torch.save(state, tmp)
            with open(out_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            last = record
        if distributed:
            dist.barrier()
    if distributed:
        dist.barrier()
    return TrainResult(epochs_run=epochs_run, best=best or {}, last=last, out_dir=out_dir, elapsed_s=elapsed,
                       budget_spent=spent)


def _keep_metrics_until(path: Path, epoch: int) -> None:
    """Drop metric lines of epochs after ``epoch`` (written by an interrupted run)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epoch]
    write_text(path, "".join(ln + "\n" for ln in lines))


def _jsonable(options: TrainOptions) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}


__all__ = ["TrainOptions", "TrainResult", "train", "predict_dataset", "CheckpointError"]
