"""Two-stage training of the retrieval model (``smgeo train-retrieval``).

* stage 1: symmetric in-batch InfoNCE with a learnable temperature over random batches;
* stage 2: the same loss over batches of anchors and their hard negatives, re-mined with
  the current model at the start of every stage-2 epoch (:mod:`.train_data`).

Loss of a batch of ``B`` items (each: one image, its ``query`` and its ``caption``):

* query -> image rows use the fused score (gate included); positives: the images of the
  same place and platform;
* caption -> image rows use the image platform's own expert (``cos(t_p, v_p)``, the gate
  is not asked to guess a platform from platform-neutral words); positives: the images of
  the same place;
* image -> text columns: positives are the texts whose rows count the image as positive;
* plus ``gate_weight`` x cross-entropy of the gate on the query's true platform;
* plus ``word_weight`` x the word head's binary cross-entropy on which vocabulary words the
  item's two texts use (summed over words, per positive word).

Several positives per row: ``-log(sum_pos exp(l) / sum_all exp(l))``.

Run folder (``--out``): ``last.safetensors/.json`` (the model after the latest epoch),
``best.safetensors/.json`` (best validation mAP), ``metrics.jsonl`` (one line per epoch) and
``train_state.safetensors/.json`` (optimiser, schedule, counters; the JSON, written last,
is the commit point of an epoch). No pickle anywhere. ``resume`` continues after the last
committed epoch; per-epoch seeding makes a resumed run end like an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from smgeo_geo.errors import CheckpointError, DeviceError, OptionError
from smgeo_model.fileio import atomic_path, write_text
from smgeo_retrieval.checkpoint import load_retrieval_checkpoint, save_retrieval_checkpoint
from smgeo_retrieval.model import RetrievalConfig, RetrievalModel, get_retrieval_config, prepare_text
from smgeo_retrieval.text import Tokenizer
from smgeo_retrieval.train_data import (PairData, augment, mine_hard_negatives, plain, stage1_batches,
                                        stage2_batches)

STATE_NAME = "train_state"
LAST_NAME, BEST_NAME = "last", "best"
METRICS_FILE = "metrics.jsonl"
STATE_FORMAT = "smgeo-retrieval-train-state"
MAX_LOG_SCALE = math.log(100.0)


@dataclass
class RetrievalTrainOptions:
    """Options of :func:`train_retrieval`. ``minutes``: wall-clock budget of the whole run
    (each stage gets its epochs' share; the schedule follows whichever of steps and time is
    further along; a stage ends early when its share is spent). ``stage2_lr_factor`` scales
    the learning rate of stage 2. ``init_checkpoint``: start from this retrieval checkpoint's
    weights and vocabulary (fine-tuning; its architecture must be the preset's)."""

    out_dir: Path
    preset: str = "demo"
    stage1_epochs: int = 8
    stage2_epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    stage2_lr_factor: float = 0.5
    weight_decay: float = 0.02
    warmup_steps: int = 50
    gate_weight: float = 0.5
    word_weight: float = 1.0
    hard_per_anchor: int = 3
    device: str = "cpu"
    resume: bool = False
    minutes: float | None = None
    experts: bool = True
    remove_orientation: bool = True
    image_routing: str = "own"
    seed: int = 0
    corpus_seed: int | None = None
    config_overrides: dict = field(default_factory=dict)
    init_checkpoint: Path | None = None

    def validated(self) -> "RetrievalTrainOptions":
        for name in ("stage1_epochs", "stage2_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise OptionError(f"{name.replace('_', '-')} must be a non-negative integer, got {v!r}")
        if self.stage1_epochs + self.stage2_epochs < 1:
            raise OptionError("train for at least one epoch (stage1-epochs + stage2-epochs >= 1)")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise OptionError(f"batch-size must be an integer >= 2 (in-batch negatives), got {self.batch_size!r}")
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise OptionError(f"minutes must be a positive number, got {self.minutes!r}")
        if not self.lr > 0:
            raise OptionError(f"lr must be positive, got {self.lr!r}")
        return self


@dataclass
class RetrievalTrainResult:
    out_dir: Path
    checkpoint: Path
    epochs_run: int
    seconds: float
    last: dict
    best: dict


def resolve_device(name: str | None) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; :class:`DeviceError` when not available here."""
    name = name or "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"device {name!r} is not a device (use cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for but CUDA is not available here (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r} is not supported (use cpu or cuda)")
    return device


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads in torch (None: leave torch's choice); :class:`OptionError` if < 1."""
    if threads is None:
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise OptionError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)


def build_tokenizer(data: PairData, remove_orientation: bool) -> Tokenizer:
    """Word vocabulary of the training texts (captions and queries, preprocessed as the model does)."""
    texts = [prepare_text(t, remove_orientation) for t in data.captions + data.queries]
    return Tokenizer.build(texts)


def contrastive_loss(model: RetrievalModel, ids: torch.Tensor, pixels: torch.Tensor, platform_idx: torch.Tensor,
                     place_idx: torch.Tensor, gate_weight: float,
                     word_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch. ``ids``: ``[2B, L]`` query ids then caption ids of the ``B`` items;
    ``pixels`` ``[B, 3, S, S]``; ``platform_idx``, ``place_idx`` ``[B]``."""
    cfg = model.config
    b = pixels.shape[0]
    feats = model.text(ids)
    t = torch.stack([F.normalize(h(feats).float(), dim=-1) for h in model.text_heads], 1)  # [2B, H, D]
    h_img = model.image(pixels)
    v = torch.stack([F.normalize(h(h_img).float(), dim=-1) for h in model.image_heads], 1)  # [B, H, D]
    cos = torch.einsum("thd,ihd->tih", t, v)  # [2B, B, H]
    gate_logits = model.gate(feats[:b]).float()
    if cfg.experts:
        own = platform_idx.view(1, b, 1).expand(2 * b, b, 1)
        cos_own = cos.gather(2, own).squeeze(2)  # [2B, B] cosine of the image platform's expert
        g = torch.softmax(gate_logits, -1)
        if cfg.image_routing == "own":
            q_scores = g[:, platform_idx] * cos_own[:b]
        else:
            q_scores = (g.unsqueeze(1) * cos[:b]).sum(-1)
        scores = torch.cat([q_scores, cos_own[b:]])
    else:
        scores = cos[..., 0]
    same_place = place_idx[:, None] == place_idx[None, :]
    same_platform = platform_idx[:, None] == platform_idx[None, :]
    positive = torch.cat([same_place & same_platform, same_place])  # [2B, B]
    logits = model.logit_scale.clamp(max=MAX_LOG_SCALE).exp() * scores
    neg_inf = torch.finfo(logits.dtype).min
    t2i = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~positive, neg_inf), 1)
    i2t = torch.logsumexp(logits.T, 1) - torch.logsumexp(logits.T.masked_fill(~positive.T, neg_inf), 1)
    nce = 0.5 * (t2i.mean() + i2t.mean())
    loss = nce
    parts = {"nce": float(nce.detach())}
    if model.word_head is not None and word_weight > 0:
        target = torch.zeros(b, cfg.vocab_size, device=ids.device)
        target.scatter_(1, ids[:b], 1.0)
        target.scatter_(1, ids[b:], 1.0)
        target[:, :2] = 0.0  # padding, unknown
        word_logits = model.word_head(h_img).float()
        words = F.binary_cross_entropy_with_logits(word_logits, target, reduction="sum") / \
            target.sum().clamp_min(1.0)
        loss = loss + word_weight * words
        parts["words"] = float(words.detach())
    if cfg.experts and gate_weight > 0:
        gate_ce = F.cross_entropy(gate_logits, platform_idx)
        loss = loss + gate_weight * gate_ce
        parts["gate_ce"] = float(gate_ce.detach())
        parts["gate_acc"] = float((gate_logits.argmax(-1) == platform_idx).float().mean())
    parts["loss"] = float(loss.detach())
    return loss, parts


def batch_tensors(model: RetrievalModel, data: PairData, idx: np.ndarray, generator: torch.Generator | None,
                  platform_codes: np.ndarray, place_codes: np.ndarray) -> tuple[torch.Tensor, ...]:
    """``(ids [2B, L], pixels, platform_idx, place_idx)`` of items ``idx`` (augmented when a
    generator is given), on the model's device."""
    texts = [data.items[i].query for i in idx] + [data.items[i].caption for i in idx]
    ids = model.text_ids(texts)
    images = torch.from_numpy(data.images[idx])
    pixels = augment(images, [data.platforms[i] for i in idx], generator) if generator is not None else plain(images)
    dev = model.device
    return (ids.to(dev), pixels.to(dev), torch.from_numpy(platform_codes[idx]).to(dev),
            torch.from_numpy(place_codes[idx]).to(dev))


def _lr_factor(progress: float, step: int, warmup: int) -> float:
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    return warm * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _make_optimiser(model: RetrievalModel, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay, plain_params = [], []
    for name, p in model.named_parameters():
        (plain_params if p.ndim < 2 or name.endswith("position") or "embed" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": plain_params, "weight_decay": 0.0}], lr=lr)


# ---- training state without pickle ------------------------------------------------------
def save_train_state(out_dir: Path, optimiser: torch.optim.Optimizer, counters: dict) -> None:
    """Optimiser tensors as safetensors, everything else as JSON (written last: the commit point)."""
    sd = optimiser.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    with atomic_path(out_dir / f"{STATE_NAME}.safetensors", CheckpointError) as tmp:
        save_file(tensors or {"_empty": torch.zeros(1)}, str(tmp))
    doc = {"format": STATE_FORMAT, "version": 1, "param_groups": groups, "scalars": scalars, "counters": counters}
    write_text(out_dir / f"{STATE_NAME}.json", json.dumps(doc, indent=1, sort_keys=True), CheckpointError)


def load_train_state(out_dir: Path, optimiser: torch.optim.Optimizer) -> dict:
    """Restore the optimiser from ``out_dir``; returns the counters (:class:`CheckpointError` if unreadable)."""
    meta_path, tensor_path = out_dir / f"{STATE_NAME}.json", out_dir / f"{STATE_NAME}.safetensors"
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
        tensors = load_file(str(tensor_path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"cannot resume from {meta_path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise CheckpointError(f"cannot resume from {meta_path}: field format is not {STATE_FORMAT!r}")
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key == "_empty":
            continue
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    for key, v in doc.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    try:
        optimiser.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot resume from {meta_path}: optimiser state does not match ({exc})") from None
    return doc["counters"]


def _rng_state(seed: int, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    torch.manual_seed(seed * 100_003 + epoch)  # dropout
    return np.random.default_rng([seed, epoch]), torch.Generator().manual_seed(seed * 7_919 + epoch)


def model_config(options: RetrievalTrainOptions, tokenizer: Tokenizer) -> RetrievalConfig:
    return get_retrieval_config(options.preset, vocab_size=len(tokenizer), experts=options.experts,
                                remove_orientation=options.remove_orientation, image_routing=options.image_routing,
                                **options.config_overrides)


def _check_same_model(model: RetrievalModel, options: RetrievalTrainOptions, what: str, hint: str = "") -> None:
    """:class:`OptionError` naming the config fields where ``model`` is not the model
    ``options`` ask for (with ``model``'s vocabulary)."""
    have, wanted = model.config.to_dict(), model_config(options, model.tokenizer).to_dict()
    differ = [f"{k}: run {v!r} vs asked {wanted[k]!r}" for k, v in sorted(have.items()) if wanted[k] != v]
    if differ:
        raise OptionError(f"{what} ({'; '.join(differ)})" + (f"; {hint}" if hint else ""))


def train_retrieval(options: RetrievalTrainOptions, train_data: PairData, val_data: PairData | None = None,
                    progress: bool = True, log: Callable[[str], None] = print,
                    evaluate_fn: Callable[[RetrievalModel, PairData], dict] | None = None) -> RetrievalTrainResult:
    """Train (or resume) a retrieval model on ``train_data``; validation after each epoch when
    ``val_data`` is given (``evaluate_fn(model, data) -> metrics``, default
    :func:`smgeo_retrieval.evaluate.evaluate_pairs`, ``mAP`` picks ``best``)."""
    options = options.validated()
    device = resolve_device(options.device)
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if evaluate_fn is None:
        from smgeo_retrieval.evaluate import evaluate_pairs as evaluate_fn
    use_amp = device.type == "cuda"
    state_json = out_dir / f"{STATE_NAME}.json"
    counters = {"epoch": 0, "step": 0, "stage_seconds": [0.0, 0.0], "best": None}
    if options.resume and state_json.is_file():
        model = load_retrieval_checkpoint(out_dir / LAST_NAME, device=device)
        _check_same_model(model, options, f"{out_dir} holds a run of another model",
                          "resume it with its options or choose another --out")
        optimiser = _make_optimiser(model, options.lr, options.weight_decay)
        counters = load_train_state(out_dir, optimiser)
        _keep_metrics_until(out_dir / METRICS_FILE, counters["epoch"])
        log(f"resuming {out_dir} after epoch {counters['epoch']}")
    else:
        if state_json.is_file():
            raise OptionError(f"{out_dir} already holds a training run; pass --resume to continue it or choose "
                              f"another --out")
        torch.manual_seed(options.seed)
        if options.init_checkpoint is not None:
            model = load_retrieval_checkpoint(options.init_checkpoint, device=device)
            _check_same_model(model, options, f"--init-checkpoint {options.init_checkpoint}")
            log(f"fine-tuning {options.init_checkpoint}")
        else:
            tokenizer = build_tokenizer(train_data, options.remove_orientation)
            model = RetrievalModel(model_config(options, tokenizer), tokenizer).to(device)
        optimiser = _make_optimiser(model, options.lr, options.weight_decay)
        if (out_dir / METRICS_FILE).exists():
            (out_dir / METRICS_FILE).unlink()
    model.train()
    platform_codes = train_data.platform_codes(model.config.platforms)
    place_codes = train_data.place_codes()
    steps_per_epoch = len(stage1_batches(len(train_data), options.batch_size, np.random.default_rng(0)))
    e1, e2 = options.stage1_epochs, options.stage2_epochs
    total_epochs = e1 + e2
    budget = options.minutes * 60 if options.minutes else None
    stage_budget = [budget * e1 / total_epochs, budget * e2 / total_epochs] if budget else [None, None]
    started = time.time()
    last: dict = {}
    epochs_run = 0
    while counters["epoch"] < total_epochs:
        epoch = counters["epoch"]
        stage = 1 if epoch < e1 else 2
        s_i = stage - 1
        stage_epoch = epoch - (0 if stage == 1 else e1)
        stage_epochs = e1 if stage == 1 else e2
        if stage_budget[s_i] is not None and counters["stage_seconds"][s_i] >= stage_budget[s_i]:
            log(f"stage {stage}: time budget spent after {stage_epoch} epoch(s)")
            counters["epoch"] = e1 if stage == 1 else total_epochs
            continue
        rng, gen = _rng_state(options.seed, epoch)
        t0 = time.time()
        if stage == 1:
            batches = stage1_batches(len(train_data), options.batch_size, rng)
        else:
            hard = mine_hard_negatives(model, train_data, device)
            batches = stage2_batches(hard, options.batch_size, options.hard_per_anchor, rng)
        base_lr = options.lr * (options.stage2_lr_factor if stage == 2 else 1.0)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(batches), desc=f"stage {stage} epoch {stage_epoch + 1}/{stage_epochs}", leave=False)
        sums: dict[str, float] = {}
        steps_run = 0
        for k, idx in enumerate(batches):
            step_progress = (stage_epoch + k / len(batches)) / stage_epochs
            spent = counters["stage_seconds"][s_i] + time.time() - t0
            time_progress = spent / stage_budget[s_i] if stage_budget[s_i] else 0.0
            if time_progress >= 1.0 and k > 0:  # the stage's share is spent: end the epoch here
                break
            stage_step = stage_epoch * steps_per_epoch + k
            factor = _lr_factor(max(step_progress, time_progress), stage_step, options.warmup_steps)
            for g in optimiser.param_groups:
                g["lr"] = base_lr * factor
            ids, pixels, plat, place = batch_tensors(model, train_data, idx, gen, platform_codes, place_codes)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, parts = contrastive_loss(model, ids, pixels, plat, place, options.gate_weight,
                                               options.word_weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            counters["step"] += 1
            for key, val in parts.items():
                sums[key] = sums.get(key, 0.0) + val
            steps_run = k + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.3f}")
        if bar is not None:
            bar.close()
        seconds = time.time() - t0
        counters["stage_seconds"][s_i] += seconds
        record = {"epoch": epoch + 1, "stage": stage, "lr": base_lr * factor, "seconds": round(seconds, 2),
                  "steps": steps_run, "epoch_steps": len(batches),
                  "temperature": float(1 / model.logit_scale.detach().exp()),
                  **{f"train_{k}": v / max(steps_run, 1) for k, v in sums.items()}}
        if val_data is not None and len(val_data):
            metrics = evaluate_fn(model, val_data)
            record.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
            model.train()
            if counters["best"] is None or metrics["mAP"] > counters["best"]["mAP"]:
                counters["best"] = {"epoch": epoch + 1, "stage": stage, **{k: v for k, v in metrics.items()
                                                                           if isinstance(v, (int, float))}}
                save_retrieval_checkpoint(model, out_dir / BEST_NAME, _metadata(options, stage, epoch + 1, record))
        counters["epoch"] = epoch + 1
        save_retrieval_checkpoint(model, out_dir / LAST_NAME, _metadata(options, stage, epoch + 1, record))
        with open(out_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        save_train_state(out_dir, optimiser, counters)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        last = record
        epochs_run += 1
    model.eval()
    return RetrievalTrainResult(out_dir=out_dir, checkpoint=out_dir / f"{LAST_NAME}.safetensors",
                                epochs_run=epochs_run, seconds=time.time() - started, last=last,
                                best=counters["best"] or {})


def _metadata(options: RetrievalTrainOptions, stage: int, epoch: int, record: dict) -> dict:
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    return {"stage": stage, "epoch": epoch, "corpus_seed": options.corpus_seed, "metrics": record, "options": opts}


def _keep_metrics_until(path: Path, epoch: int) -> None:
    """Drop metric lines of epochs after ``epoch`` (written by an interrupted run)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
             if ln.strip() and json.loads(ln)["epoch"] <= epoch]
    write_text(path, "".join(ln + "\n" for ln in lines))


def ablation_options(base: RetrievalTrainOptions, name: str, out_dir: Path) -> RetrievalTrainOptions:
    """Options of an ablation variant with the same budget as ``base``: ``full``, ``no_experts``,
    ``keep_orientation``, ``one_stage`` (the issue's), ``route_all`` (item vectors keep every
    expert's block), ``no_word_head`` (no auxiliary word loss)."""
    if name == "full":
        return replace(base, out_dir=out_dir)
    if name == "no_experts":
        return replace(base, out_dir=out_dir, experts=False)
    if name == "keep_orientation":
        return replace(base, out_dir=out_dir, remove_orientation=False)
    if name == "route_all":
        return replace(base, out_dir=out_dir, image_routing="all")
    if name == "no_word_head":
        return replace(base, out_dir=out_dir, word_weight=0.0,
                       config_overrides={**base.config_overrides, "word_head": False})
    if name == "one_stage":
        return replace(base, out_dir=out_dir, stage1_epochs=base.stage1_epochs + base.stage2_epochs, stage2_epochs=0)
    raise OptionError(f"unknown ablation {name!r}")


__all__ = ["RetrievalTrainOptions", "RetrievalTrainResult", "ablation_options", "build_tokenizer",
           "contrastive_loss", "load_train_state", "resolve_device", "save_train_state", "set_threads",
           "train_retrieval"]
