"""Training loop: checkpoints every epoch, best-by-val, metrics log, exact resume."""

import json

import pytest
import torch
from torch.utils.data import Dataset

from smgeo_model import load_checkpoint
from smgeo_model.train import PairAugment, TrainOptions, train

from ..model.scenes import two_object_pair


class PairSet(Dataset):
    """CVOGL-style samples from seeded two-object scenes (both objects, each clicked)."""

    def __init__(self, n: int, seed: int = 0, transform=None):
        self.samples = []
        for i in range(n):
            ref, query, clicks, boxes = two_object_pair(128, 64, seed=seed + i // 2)
            self.samples.append({"query": query, "click": clicks[i % 2], "reference": ref, "box": boxes[i % 2],
                                 "index": i, "class_name": "square"})
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        return self.transform(s) if self.transform else s


def options(tmp_path, name, epochs):
    return TrainOptions(out_dir=tmp_path / name, config="tiny", epochs=epochs, batch_size=2, lr=1e-3,
                        warmup_epochs=0.5, max_steps_per_epoch=2, seed=3)


def test_resume_after_interruption_gives_the_same_result(tmp_path):
    val = PairSet(2, seed=50)
    straight = train(options(tmp_path, "straight", 2), PairSet(6, transform=PairAugment(seed=3)), val, progress=False,
                     log=lambda s: None)
    assert straight.epochs_run == 2
    # the same run interrupted (Ctrl-C) right after epoch 1 was committed, then rerun: it resumes
    def interrupt(_line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(options(tmp_path, "resumed", 2), PairSet(6, transform=PairAugment(seed=3)), val, progress=False,
              log=interrupt)
    resumed = train(options(tmp_path, "resumed", 2), PairSet(6, transform=PairAugment(seed=3)), val, progress=False,
                    log=lambda s: None)
    assert resumed.epochs_run == 1
    a = load_checkpoint(tmp_path / "straight" / "last").state_dict()
    b = load_checkpoint(tmp_path / "resumed" / "last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"train_loss", "val_acc@0.5", "val_mIoU", "lr"} <= set(lines[0])
    best = json.loads((tmp_path / "resumed" / "best.json").read_text())["metadata"]
    assert best["epoch"] in (1, 2) and "acc@0.5" in best["val"]


def test_augmentation_keeps_box_on_the_object():
    aug = PairAugment(seed=1, jitter=0.0)
    sample = PairSet(1)[0]
    for epoch in range(8):
        aug.set_epoch(epoch)
        out = aug(sample)
        x1, y1, x2, y2 = out["box"].round().long().tolist()
        assert out["reference"].shape == sample["reference"].shape
        assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
        inside = out["reference"][:, y1 + 2: y2 - 2, x1 + 2: x2 - 2]
        assert (inside[0] > 0.8).float().mean() > 0.9, "the red square is not inside the augmented box"
        cx, cy = out["click"].round().long().tolist()
        assert out["query"][0, cy, cx] > 0.7, "the click does not land on the red square in the query"
