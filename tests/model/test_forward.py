"""Forward shapes at the benchmark's sizes and variable input sizes."""

import pytest
import torch

from smgeo_model import build_model


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return build_model("paper").eval()


@pytest.mark.parametrize("query_hw", [(256, 256), (256, 512)], ids=["drone-256", "svi-256x512"])
def test_paper_forward_on_1024_reference(paper_model, query_hw):
    query = torch.rand(1, 3, *query_hw)
    reference = torch.rand(1, 3, 1024, 1024)
    clicks = torch.tensor([[query_hw[1] / 2, query_hw[0] / 3]])
    with torch.inference_mode():
        out = paper_model(query, clicks, reference)
    assert out["heatmap"].shape == (1, 1, 64, 64)
    assert out["boxes"].shape == (1, 4, 64, 64)
    assert torch.isfinite(out["boxes"]).all()
    assert ((out["heatmap"] >= 0) & (out["heatmap"] <= 1)).all()
    # routing of every GMoE layer for both views: stage 1 (1), stage 2 (3), stage 3 (1)
    assert len(out["routing"]["query"]) == len(out["routing"]["reference"]) == 5


@pytest.mark.parametrize("ref_hw,query_hw", [((96, 160), (64, 32)), ((320, 224), (128, 96))])
def test_any_multiple_of_32_works(ref_hw, query_hw):
    model = build_model("tiny").eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, *query_hw), torch.tensor([[5.0, 5.0], [20.0, 30.0]]), torch.rand(2, 3, *ref_hw))
    assert out["heatmap"].shape == (2, 1, ref_hw[0] // 16, ref_hw[1] // 16)
    assert out["boxes"].shape == (2, 4, ref_hw[0] // 16, ref_hw[1] // 16)


def test_size_not_multiple_of_32_is_refused_with_the_size():
    model = build_model("tiny").eval()
    with pytest.raises(ValueError, match=r"reference image size \(100, 128\)"):
        model(torch.rand(1, 3, 64, 64), torch.tensor([[1.0, 1.0]]), torch.rand(1, 3, 100, 128))
