import pytest
import torch

from benchmarks.hessian import extreme_eigenvalues, verdict
from problems.planted import construct, critical_points, mse, split, teacher_data
from problems.registry import make


@pytest.fixture(scope="module")
def planted():
    return make("planted-sigmoid")


def test_split_preserves_the_function():
    x, y = teacher_data(3, 12)
    small = {
        "w": torch.randn(1, 2, 2, dtype=torch.float64),
        "b": torch.randn(1, 2, dtype=torch.float64),
        "v": torch.randn(1, 2, dtype=torch.float64),
        "c": torch.zeros(1, dtype=torch.float64),
    }
    for lam in (0.3, 1.7, -0.5):
        wide = split(small, 1, lam)
        assert wide["w"].shape == (1, 3, 2)
        torch.testing.assert_close(mse(wide, x, y), mse(small, x, y))


def test_small_network_point_is_critical():
    x, y = teacher_data(0, 20)
    point = critical_points(x, y, 1, 0)[0]
    leaves = [t.clone().requires_grad_(True) for t in point.values()]
    grads = torch.autograd.grad(mse(dict(zip(point, leaves, strict=True)), x, y).sum(), leaves)
    assert max(float(g.abs().max()) for g in grads) < 1e-8


def test_b_matrix_verdict_agrees_with_the_hessian(planted):
    """The planted point's kind from the B-matrix matches the Hessian of the wide network."""
    info = construct(0, 1, 20, 0, float("nan"))
    params = {k: v.numpy() for k, v in info["planted"].items()}
    low, scale = extreme_eigenvalues(planted, params, 0)
    assert info["kind"] == "saddle"
    assert verdict(low, scale) == "saddle"
    assert planted.options["kind"] == "saddle"
    assert planted.levels[0][0] == "planted"
    assert planted.optimum < planted.levels[0][1]


def test_runs_start_next_to_the_planted_point(planted):
    start = planted.init(torch.arange(16), torch.float64, torch.device("cpu"))
    level = planted.levels[0][1]
    assert torch.allclose(
        planted.risk(start), torch.full((16,), level, dtype=torch.float64), rtol=0.05
    )
