"""Targets (eqs. 13-17), decoding and the benchmark metrics, against hand-worked examples."""

import pytest
import torch

from smgeo_model import box_iou, build_targets, decode_boxes, localization_metrics


def test_targets_follow_eqs_13_to_17():
    # 256 px reference, 16 x 16 grid: one cell = 16 px
    box = torch.tensor([[40.0, 72.0, 104.0, 120.0]])  # centre (72, 96) px -> (4.5, 6.0) cells
    t = build_targets(box, (256, 256), (16, 16))
    assert t.cells.tolist() == [[6, 4]]  # (row, col)
    torch.testing.assert_close(t.boxes, torch.tensor([[0.5, 0.0, 4.0, 3.0]]))
    assert t.heatmap[0, 0, 6, 4] == 1.0
    assert (t.heatmap.flatten().topk(2).values[1] < 1).item()
    # Gaussian: symmetric about the centre x = 4.5 cells -> cells 3 and 5 (centres 3.5, 5.5) are equal
    assert t.heatmap[0, 0, 6, 3] == pytest.approx(t.heatmap[0, 0, 6, 5].item())


def test_decoding_inverts_the_targets():
    box = torch.tensor([[40.0, 72.0, 104.0, 120.0], [200.0, 10.0, 250.0, 30.0]])
    t = build_targets(box, (256, 256), (16, 16))
    box_map = torch.zeros(2, 4, 16, 16)
    for b, (r, c) in enumerate(t.cells.tolist()):
        box_map[b, :, r, c] = t.boxes[b]
    decoded, scores = decode_boxes(t.heatmap, box_map, (256, 256), top_k=1)
    torch.testing.assert_close(decoded[:, 0], box)
    assert scores[:, 0].tolist() == [1.0, 1.0]


def test_decoding_returns_separate_peaks_best_first():
    heat = torch.zeros(1, 1, 8, 8)
    heat[0, 0, 1, 1], heat[0, 0, 1, 2], heat[0, 0, 6, 5] = 0.9, 0.8, 0.7  # (1,2) is not a local max
    boxes = torch.zeros(1, 4, 8, 8)
    boxes[:, 2:] = 2.0
    xyxy, scores = decode_boxes(heat, boxes, (128, 128), top_k=2)
    assert scores[0].tolist() == pytest.approx([0.9, 0.7])
    # cell (row 6, col 5), dx = dy = 0, 2 x 2 cells of 16 px: centre (80, 96) px, 32 px wide
    torch.testing.assert_close(xyxy[0, 1], torch.tensor([64.0, 80.0, 96.0, 112.0]))


def test_iou_and_accuracy_by_hand():
    pred = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    true = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 10, 5], [0, 0, 10, 10]])
    ious = box_iou(pred, true)
    torch.testing.assert_close(ious, torch.tensor([1.0, 50 / 150, 0.5, 0.0]))
    m = localization_metrics(ious)
    # acc@t counts IoU strictly above t: 0.5 itself does not count at t = 0.5
    assert m["acc@0.25"] == pytest.approx(3 / 4)
    assert m["acc@0.5"] == pytest.approx(1 / 4)
    assert m["mIoU"] == pytest.approx((1 + 1 / 3 + 0.5) / 4)
    assert m["count"] == 4
