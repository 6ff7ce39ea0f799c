"""The model learns, and its answer depends on the query photo and on the click.

The published SMGeo code drops the query before its head (reference notes, item 5), so
its prediction cannot depend on the click; these tests guard against that defect.
"""

import pytest
import torch

from smgeo_model import SMGeoLoss, box_iou, build_model, decode_boxes

from .scenes import two_object_pair


def test_heatmap_changes_with_click_and_with_query():
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    ref, query, clicks, _ = two_object_pair()
    with torch.inference_mode():
        emb_ref = model.encode_reference(ref[None])
        emb_q = model.encode_query(query[None])
        heat_a = model.decode(emb_ref, emb_q, clicks[0:1])["heatmap"]
        heat_b = model.decode(emb_ref, emb_q, clicks[1:2])["heatmap"]
        other_query = model.encode_query(torch.rand_like(query)[None])
        heat_c = model.decode(emb_ref, other_query, clicks[0:1])["heatmap"]
    assert (heat_a - heat_b).abs().max() > 1e-4
    assert (heat_a - heat_c).abs().max() > 1e-4


@pytest.fixture(scope="module")
def overfit_run():
    """Train the tiny model on two pairs that share reference and query and differ only
    in the click, until the loss has fallen 10x (bounded number of steps)."""
    torch.manual_seed(0)
    ref, query, clicks, boxes = two_object_pair()
    model = build_model("tiny")
    loss_fn = SMGeoLoss(model.config)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    refs, queries = ref[None].expand(2, -1, -1, -1), query[None].expand(2, -1, -1, -1)
    losses = []
    for _ in range(150):
        model.train()
        loss = loss_fn(model(queries, clicks, refs), boxes)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if len(losses) > 20 and max(losses[-5:]) < losses[0] / 10:
            break
    return model.eval(), losses, (ref, query, clicks, boxes)


def test_tiny_batch_overfits_loss_falls_tenfold(overfit_run):
    _, losses, _ = overfit_run
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps")
    assert max(losses[-5:]) < losses[0] / 10, f"loss only fell from {losses[0]:.3f} to {losses[-1]:.3f}"


def test_each_click_gets_its_own_target_after_overfit(overfit_run):
    model, _, (ref, query, clicks, boxes) = overfit_run
    with torch.inference_mode():
        out = model(query[None].expand(2, -1, -1, -1), clicks, ref[None].expand(2, -1, -1, -1))
    pred, _ = decode_boxes(out["heatmap"], out["boxes"], tuple(ref.shape[-2:]), top_k=1)
    ious = box_iou(pred[:, 0], boxes)
    swapped = box_iou(pred[:, 0], boxes.flip(0))
    assert (ious > 0.5).all(), f"IoU with own target {ious.tolist()}"
    assert (swapped < 0.1).all(), f"IoU with the other target {swapped.tolist()}"
