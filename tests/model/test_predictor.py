"""Cached predictor: same answers as the full forward, cheap clicks, clear misuse errors."""

import pytest
import torch

from smgeo_model import PredictorStateError, SMGeoPredictor, build_model, decode_boxes

from .scenes import two_object_pair


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("tiny").eval()


def test_cached_path_equals_full_forward(model):
    ref, query, clicks, _ = two_object_pair()
    predictor = SMGeoPredictor(model)
    predictor.set_reference(ref)
    predictor.set_query(query)
    for click in clicks:
        pred = predictor.predict(tuple(click.tolist()), top_k=3)
        with torch.inference_mode():
            out = model(query[None], click[None], ref[None])
        boxes, scores = decode_boxes(out["heatmap"], out["boxes"], tuple(ref.shape[-2:]), top_k=3)
        torch.testing.assert_close(pred.boxes, boxes[0])
        torch.testing.assert_close(pred.scores, scores[0])


def test_boxes_come_back_in_the_pixels_of_the_image_given(model):
    ref, query, clicks, _ = two_object_pair(reference_size=256)
    big = torch.nn.functional.interpolate(ref[None], size=(512, 384), mode="bilinear", align_corners=False)[0]
    predictor = SMGeoPredictor(model)
    predictor.set_reference(big)  # resized to the config's 256 x 256 inside
    predictor.set_query(query)
    pred = predictor.predict(tuple(clicks[0].tolist()), top_k=1)
    predictor.set_reference(ref)
    direct = predictor.predict(tuple(clicks[0].tolist()), top_k=1)
    torch.testing.assert_close(pred.boxes, direct.boxes * torch.tensor([1.5, 2.0, 1.5, 2.0]), rtol=0.05, atol=8.0)


def test_misuse_gives_clear_errors(model):
    predictor = SMGeoPredictor(model)
    with pytest.raises(PredictorStateError, match="set_reference"):
        predictor.predict((1.0, 1.0))
    predictor.set_reference(torch.rand(3, 64, 64))
    with pytest.raises(PredictorStateError, match="set_query"):
        predictor.predict((1.0, 1.0))
    predictor.set_query(torch.rand(3, 100, 80))
    with pytest.raises(ValueError, match=r"click \(90, 5\) lies outside the 80x100 query photo"):
        predictor.predict((90, 5))
    with pytest.raises(ValueError, match=r"must be a \[3, H, W\]"):
        predictor.set_query(torch.rand(4, 64, 64))


def test_click_in_backbone_variant_reencodes_the_query_per_click():
    torch.manual_seed(0)
    model = build_model(build_model("tiny").config.replace(click_in_backbone=True)).eval()
    with torch.no_grad():  # make the click channel matter (it starts at zero)
        model.click_channel.proj.weight.normal_(std=0.5)
    ref, query, clicks, _ = two_object_pair()
    with torch.inference_mode():
        qa = model.encode_query(query[None], clicks[0:1])
        qb = model.encode_query(query[None], clicks[1:2])
        assert (qa.features - qb.features).abs().max() > 1e-4
        with pytest.raises(ValueError, match="re-encode the query"):
            model.decode(model.encode_reference(ref[None]), qa, clicks[1:2])
        with pytest.raises(ValueError, match="pass clicks"):
            model.encode_query(query[None])
    predictor = SMGeoPredictor(model)
    predictor.set_reference(ref)
    predictor.set_query(query)
    a, b = predictor.predict(tuple(clicks[0].tolist())), predictor.predict(tuple(clicks[1].tolist()))
    assert not torch.equal(a.heatmap, b.heatmap)
