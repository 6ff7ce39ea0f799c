"""Grid-level sparse MoE: routing invariants, sparse dispatch, gradients, view-specific gates."""

import math

import pytest
import torch

from smgeo_model.moe import GridMoE, Routing, gate_entropy_loss, grid_cells


def make_moe(**kw) -> GridMoE:
    torch.manual_seed(0)
    args = dict(dim=16, hidden_dim=8, num_experts=6, top_k=2, grid=(4, 4))
    args.update(kw)
    return GridMoE(**args)


def dense_reference(moe: GridMoE, x: torch.Tensor, routing: Routing) -> torch.Tensor:
    """Every expert on every token, combined with the cell's top-k weights (slow, obvious)."""
    B, H, W, C = x.shape
    cell, gh, gw = grid_cells(H, W, moe.grid, x.device)
    all_out = torch.stack([e(x.reshape(B, H * W, C)) for e in moe.experts], dim=2)  # [B, HW, E, C]
    weights = torch.zeros(B, gh * gw, moe.num_experts)
    weights.scatter_(2, routing.experts.reshape(B, gh * gw, -1), routing.weights.reshape(B, gh * gw, -1))
    return (all_out * weights[:, cell, :, None]).sum(2).reshape(B, H, W, C)


def test_each_cell_uses_exactly_top_k_experts_with_weights_summing_to_one():
    moe = make_moe()
    x = torch.randn(2, 8, 12, 16)
    _, routing = moe(x, "reference")
    assert routing.experts.shape == (2, 4, 4, 2)
    sorted_experts = routing.experts.sort(-1).values
    assert (sorted_experts[..., 0] != sorted_experts[..., 1]).all()
    torch.testing.assert_close(routing.weights.sum(-1), torch.ones(2, 4, 4))
    torch.testing.assert_close(routing.probs.sum(-1), torch.ones(2, 4, 4))
    # renormalised weights are the full softmax restricted to the chosen experts (eq. 8)
    chosen = routing.probs.gather(-1, routing.experts)
    torch.testing.assert_close(routing.weights, chosen / chosen.sum(-1, keepdim=True))
    # top-k really are the k most probable experts
    assert (chosen.min(-1).values >= routing.probs.topk(2, -1).values[..., -1] - 1e-6).all()


def test_sparse_dispatch_equals_dense_computation_with_masking():
    moe = make_moe()
    x = torch.randn(2, 8, 12, 16)
    out, routing = moe(x, "query")
    torch.testing.assert_close(out, dense_reference(moe, x, routing), rtol=1e-5, atol=1e-6)


def test_routing_is_per_cell_not_per_token():
    moe = make_moe(grid=(2, 2))
    x = torch.randn(1, 8, 8, 16)
    _, before = moe(x, "reference")
    x2 = x.clone()
    x2[0, 0:4, 0:4] += 50 * torch.randn(16)  # change only the top-left cell (rows 0-3, cols 0-3)
    _, after = moe(x2, "reference")
    assert not torch.equal(before.probs[0, 0, 0], after.probs[0, 0, 0])
    torch.testing.assert_close(before.probs[0, 1:], after.probs[0, 1:])
    torch.testing.assert_close(before.probs[0, 0, 1], after.probs[0, 0, 1])


def test_backward_reaches_only_selected_experts_and_the_view_gate():
    moe = make_moe()
    with torch.no_grad():  # force every cell of the query view to experts 0 and 1
        moe.gates["query"].bias.copy_(torch.tensor([8.0, 7.0, -8.0, -8.0, -8.0, -8.0]))
    out, routing = moe(torch.randn(2, 8, 12, 16), "query")
    assert set(routing.experts.unique().tolist()) == {0, 1}
    out.square().mean().backward()
    for i, expert in enumerate(moe.experts):
        grads = [p.grad for p in expert.parameters()]
        if i in (0, 1):
            assert all(g is not None and g.abs().sum() > 0 for g in grads), f"expert {i} selected but no gradient"
        else:
            assert all(g is None for g in grads), f"expert {i} was not selected but got a gradient"
    assert moe.gates["query"].weight.grad.abs().sum() > 0
    assert moe.gates["reference"].weight.grad is None


def test_gates_are_view_specific():
    moe = make_moe()
    x = torch.randn(1, 8, 8, 16)
    _, rq = moe(x, "query")
    _, rr = moe(x, "reference")
    assert not torch.allclose(rq.probs, rr.probs)


def test_grid_larger_than_map_uses_one_token_per_cell():
    cell, gh, gw = grid_cells(3, 5, (8, 8), torch.device("cpu"))
    assert (gh, gw) == (3, 5)
    assert sorted(cell.tolist()) == list(range(15))


@pytest.mark.parametrize("num_experts", [2, 6])
def test_entropy_loss_is_negative_entropy(num_experts):
    uniform = torch.full((1, 2, 2, num_experts), 1 / num_experts)
    one_hot = torch.nn.functional.one_hot(torch.zeros(1, 2, 2, dtype=torch.long), num_experts).float()
    r = lambda p: Routing(p, p.topk(1, -1).indices, torch.ones(1, 2, 2, 1))  # noqa: E731
    assert gate_entropy_loss([r(uniform)]).item() == pytest.approx(-math.log(num_experts), rel=1e-5)
    assert gate_entropy_loss([r(one_hot)]).item() == pytest.approx(0.0, abs=1e-6)
