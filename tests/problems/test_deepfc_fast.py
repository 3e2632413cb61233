"""The deep fast path after its speed-ups (bias added after the product, derivative from the
activation, input-layer gradient as x^T delta): same values as autograd to float64 rounding,
per-seed arithmetic independent of the batch, dead units as defined."""

import pytest
import torch

from problems import deepfc
from problems.registry import make

PERF = "deep-teacher:arch=8-32-32-32-32-1,points=1024"


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_fast_gradient_equals_autograd_on_the_perf_shape(act):
    """Float64 rounding only: the input layer's product now contracts x^T delta instead of
    delta^T x (the same sum over the 1024 inputs, blocked differently). Autograd runs through
    the eager forward, whose bias and activation work in place (each activation kind once)."""
    p = make(f"{PERF},act={act}")
    params = p.init(torch.arange(2), torch.float64, torch.device("cpu"))
    for name in params:
        params[name] = params[name] + 0.1 * torch.randn_like(params[name])
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    auto = torch.autograd.grad(p.risk(leaves).sum(), list(leaves.values()))
    _, grads = p.risk_grad(params)
    for key, g in zip(leaves, auto, strict=True):
        assert grads[key].is_contiguous()
        torch.testing.assert_close(grads[key], g, rtol=1e-11, atol=1e-14)


EAGER_CASES = [("relu", torch.float64), ("tanh", torch.float32), ("sigmoid", torch.float64)]


@pytest.mark.parametrize("act,dtype", EAGER_CASES)
def test_eager_activations_have_the_compiled_forward_bits(act, dtype):
    """The eager forward (one tensor per layer, bias and activation in place) computes what
    hidden_layers computes (product, then bias, then activation), bit for bit; both are
    called eagerly here, with non-zero biases."""
    p = make(f"deep-teacher:arch=3-7-5-4-1,act={act},points=64")
    params = p.init(torch.arange(4), dtype, torch.device("cpu"))
    params = {k: v + 0.3 * torch.randn_like(v) for k, v in params.items()}
    x = torch.rand(64, 3, dtype=dtype) * 2 - 1
    _, post = deepfc.hidden_layers(params, x, act)
    got = deepfc.activations(params, x, act)
    assert len(got) == len(post) == 3
    for mine, theirs in zip(got, post, strict=True):
        assert torch.equal(mine, theirs)


def test_column_sums_are_the_sums_over_inputs_compiled_or_not():
    """The bias gradients' opaque op: delta summed over the inputs, per seed, also
    inside a compiled graph with a dynamic seed count (its fake shape)."""
    delta = torch.randn(32, 1024, 5, dtype=torch.float64)
    expected = delta.sum(dim=1)
    torch.testing.assert_close(deepfc.column_sums(delta), expected, rtol=1e-12, atol=1e-12)
    compiled = torch.compile(lambda d: 2.0 * deepfc.column_sums(d), dynamic=True)
    for seeds in (32, 7):
        got = compiled(delta[:seeds])
        assert got.shape == (seeds, 5)
        torch.testing.assert_close(got, 2.0 * expected[:seeds], rtol=1e-12, atol=1e-12)


def test_a_seed_gets_the_same_bits_in_any_batch_slot():
    """Every product is one per seed, so a seed's risk and gradient do not depend on its
    neighbours (float64, where MKL's batched GEMM is slot-independent)."""
    p = make("deep-teacher:arch=8-32-32-1,points=256")
    batch = p.init(torch.arange(32), torch.float64, torch.device("cpu"))
    shuffled = {k: v.roll(5, dims=0) for k, v in batch.items()}
    r1, g1 = p.risk_grad(batch)
    r2, g2 = p.risk_grad(shuffled)
    assert torch.equal(r1.roll(5), r2)
    for key in g1:
        assert torch.equal(g1[key].roll(5, dims=0), g2[key]), key


def test_dead_units_match_their_definition():
    p = make("deep-teacher:arch=3-6-5-1,points=64")
    params = p.init(torch.arange(8), torch.float64, torch.device("cpu"))
    params["b0"][0, :3] = -100.0  # three units dead on every input
    params["b0"][1, 0] = float("nan")  # NaN is not dead
    x = make_inputs(p)
    pre, _ = deepfc.hidden_layers(params, x, "relu")
    expected = sum((h <= 0).all(dim=1).sum(dim=1) for h in pre)  # both hidden layers
    got = deepfc.dead_units(params, x)
    assert torch.equal(got, expected)
    assert got[0] >= 3


def make_inputs(problem):
    x, _ = deepfc.make_teacher(problem.name, 3, [3, 6, 5, 1], "relu", 64)
    return x
