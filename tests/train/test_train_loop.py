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


def _with_points(sample: dict) -> dict:
    """The red-square sample with the blue square as a further click (``points``) and two
    empty rows."""
    ref, query, clicks, boxes = two_object_pair(128, 64, seed=0)
    blue = (boxes[1, :2] + boxes[1, 2:]) / 2
    points = torch.full((3, 4), float("nan"))
    points[0] = torch.cat([clicks[1], blue])
    return {**sample, "points": points}


def test_augmentation_moves_further_clicks_with_both_views():
    aug = PairAugment(seed=4, jitter=0.0)
    sample = _with_points(PairSet(1)[0])
    moved = flipped = 0
    for epoch in range(12):
        aug.set_epoch(epoch)
        out = aug(sample)
        p = out["points"]
        assert torch.isnan(p[1:]).all(), "empty rows stay empty"
        if torch.isnan(p[0]).any():  # the blue square left the crop
            continue
        x, y, col, row = p[0].round().long().tolist()
        assert out["query"][2, y, x] > 0.7 and out["query"][0, y, x] < 0.3, "the click is not on the blue square"
        assert out["reference"][2, row, col] > 0.8 and out["reference"][0, row, col] < 0.2, \
            "the reference pixel is not on the blue square"
        moved += not torch.allclose(p[0, 2:], sample["points"][0, 2:])
        flipped += bool(abs(float(p[0, 0] - sample["points"][0, 0])) > 10)
    assert moved >= 6 and flipped >= 2, "augmentation never moved or flipped the further click"


def test_training_with_further_clicks_decodes_each_against_its_own_pair():
    from smgeo_model import build_model
    from smgeo_model.train.loop import clicks_and_boxes

    torch.manual_seed(0)
    model = build_model("tiny").eval()
    a, b = _with_points(PairSet(1)[0]), _with_points(PairSet(1, seed=7)[0])
    b["points"][:] = float("nan")  # the second pair has no further click
    batch = {k: torch.stack([a[k], b[k]]) for k in ("query", "click", "reference", "box", "points")}
    clicks, boxes, pair = clicks_and_boxes(batch)
    assert pair.tolist() == [0, 1, 0]
    assert torch.equal(clicks[2], a["points"][0, :2])
    # the further click's box: the pair's box size around the point's reference pixel
    size = a["box"][2:] - a["box"][:2]
    assert torch.allclose((boxes[2, :2] + boxes[2, 2:]) / 2, a["points"][0, 2:])
    assert torch.allclose(boxes[2, 2:] - boxes[2, :2], size)
    with torch.no_grad():
        many = model(batch["query"], clicks, batch["reference"], pair)
        alone = model(a["query"][None], clicks[2:3], a["reference"][None])
    assert many["heatmap_logits"].shape[0] == 3
    assert torch.allclose(many["heatmap_logits"][2], alone["heatmap_logits"][0], atol=1e-5)
    assert torch.allclose(many["boxes"][2], alone["boxes"][0], atol=1e-5)


def test_a_training_run_learns_from_the_further_clicks(tmp_path):
    class WithPoints(PairSet):
        def __init__(self, n, transform=None):
            super().__init__(n, transform=transform)
            self.samples = [_with_points(s) for s in self.samples]

    runs = {}
    for name, data in (("plain", PairSet(4, transform=PairAugment(seed=3))),
                       ("points", WithPoints(4, transform=PairAugment(seed=3)))):
        result = train(options(tmp_path, name, 1), data, None, progress=False, log=lambda s: None)
        assert result.epochs_run == 1
        runs[name] = load_checkpoint(tmp_path / name / "last").state_dict()
    head = "head.heatmap.weight"
    assert not torch.equal(runs["plain"][head], runs["points"][head]), "the further clicks changed nothing"
