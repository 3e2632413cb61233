import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import BUILTINS
from problems import relu1d
from problems.registry import make
from problems.targets import affine, sine3, square, zigzag


def random_params(s: int, width: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, width, generator=g, dtype=torch.float64) for k in "wbv"} | {
        "c": torch.randn(s, generator=g, dtype=torch.float64)
    }


@pytest.mark.parametrize(
    "target", [square(), affine(2.0, -1.0), sine3(), zigzag(3)], ids=lambda t: t.name
)
def test_exact_risk_matches_adaptive_quadrature(target):
    params = random_params(6, 5)
    exact = relu1d.exact_risk(params, target)
    for i in range(6):
        p = {k: v[i : i + 1] for k, v in params.items()}

        def integrand(x, p=p):
            xt = torch.tensor([[x]], dtype=torch.float64)
            return float((relu1d.network(p, xt) - target.fn(xt)) ** 2)

        kinks = relu1d.kinks(p["w"], p["b"], target.a, target.b)[0].tolist()
        ref, _ = quad(
            integrand,
            target.a,
            target.b,
            points=sorted(kinks),
            epsabs=1e-14,
            epsrel=1e-12,
            limit=200,
        )
        assert float(exact[i]) == pytest.approx(ref / (target.b - target.a), rel=1e-9, abs=1e-14)


def test_exact_risk_matches_monte_carlo():
    params = random_params(3, 4, seed=1)
    exact = relu1d.exact_risk(params, square())
    x = torch.rand(3, 400_000, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mc = ((relu1d.network(params, x) - x**2) ** 2).mean(dim=1)
    torch.testing.assert_close(exact, mc, rtol=2e-2, atol=1e-6)


def test_gradcheck_exact_risk():
    params = random_params(3, 4, seed=2)
    keys = list(params)

    def fn(*tensors):
        return relu1d.exact_risk(dict(zip(keys, tensors, strict=True)), square())

    inputs = tuple(params[k].clone().requires_grad_(True) for k in keys)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_sampled_risk_is_unbiased():
    problem = make("relu1d-x2:width=3,sampled=true,batch=512")
    params = problem.init(torch.arange(4), torch.float64, torch.device("cpu"))
    seeds = torch.arange(4)
    est = torch.stack([problem.train_risk(params, seeds, t) for t in range(400)]).mean(0)
    torch.testing.assert_close(est, problem.risk(params), rtol=0.03, atol=1e-6)
    # a fresh batch every step, identical for a seed whatever its batch companions
    assert not torch.equal(
        problem.train_risk(params, seeds, 0), problem.train_risk(params, seeds, 1)
    )


@pytest.mark.parametrize("a,b", [(0.0, 1.0), (-1.0, 1.0), (0.5, 2.0)])
def test_dead_neuron_probability_at_init(a, b):
    """Seed 001's mechanism: p = 1/4 + arcsin(rho) / (2 pi) for w, b ~ N(0, 1)."""
    g = torch.Generator().manual_seed(0)
    n = 400_000
    p = {"w": torch.randn(1, n, generator=g), "b": torch.randn(1, n, generator=g)}
    observed = float(relu1d.dead_neurons(p, a, b)[0]) / n
    expected = relu1d.dead_probability(a, b)
    assert observed == pytest.approx(expected, abs=4 * math.sqrt(expected / n))
    if (a, b) == (0.0, 1.0):
        assert expected == pytest.approx(3 / 8)
    if (a, b) == (-1.0, 1.0):
        assert expected == pytest.approx(1 / 4)


def test_zero_bias_dead_probability_is_one_half():
    problem = make("relu1d-x2:width=8,zero_bias=true")
    params = problem.init(torch.arange(20000), torch.float64, torch.device("cpu"))
    share = float(relu1d.dead_neurons(params, 0.0, 1.0).double().mean()) / 8
    assert share == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_dead_neurons_never_move(name):
    problem = make("relu1d-x2:width=6")
    seeds = torch.arange(64)
    init = problem.init(seeds, torch.float64, torch.device("cpu"))
    dead = (init["w"] * 0 + init["b"] <= 0) & (init["w"] + init["b"] <= 0)
    assert dead.any()
    rec, _ = train_cell(
        problem,
        BUILTINS[name],
        {"lr": 0.01},
        seeds,
        RunConfig(steps=300, dtype=torch.float64),
        keep_params=True,
    )
    for key in "wbv":
        assert np.array_equal(rec[f"param.{key}"][dead.numpy()], init[key][dead].numpy())


def test_init_schemes_scales():
    seeds = torch.arange(20000)
    cpu = torch.device("cpu")
    normal = make("relu1d-x2:width=4").init(seeds, torch.float64, cpu)
    he = make("relu1d-x2:width=4,init=he").init(seeds, torch.float64, cpu)
    xavier = make("relu1d-x2:width=4,init=xavier").init(seeds, torch.float64, cpu)
    assert float(normal["w"].std()) == pytest.approx(1.0, rel=0.02)
    assert float(he["w"].std()) == pytest.approx(math.sqrt(2), rel=0.02)
    assert float(he["v"].std()) == pytest.approx(math.sqrt(2 / 4), rel=0.02)
    assert float(xavier["w"].std()) == pytest.approx(math.sqrt(2 / 5), rel=0.02)


def test_saddle_init_is_near_the_constant_network():
    problem = make("relu1d-affine:width=3,init=saddle,noise=1e-4")
    params = problem.init(torch.arange(50), torch.float64, torch.device("cpu"))
    assert torch.allclose(params["c"], torch.full((50,), 0.5, dtype=torch.float64), atol=1e-3)
    assert params["w"].abs().max() < 1e-3 and params["v"].abs().max() < 1e-3
    assert torch.allclose(params["b"], torch.ones_like(params["b"]), atol=1e-3)
    # risk there is the constant level alpha^2 (b-a)^2 / 12 of the affine target
    assert float(problem.risk(params).mean()) == pytest.approx(1 / 12, rel=1e-2)
    constant = [v for k, v in problem.levels if "constant" in k.split("=")]
    assert constant == [pytest.approx(1 / 12)]


def test_same_seed_same_init_across_optimizer_cells_and_devices():
    problem = make("relu1d-x2")
    a = problem.init(torch.tensor([5, 6]), torch.float32, torch.device("cpu"))
    b = problem.init(torch.arange(10), torch.float32, torch.device("cpu"))
    assert torch.equal(a["w"], b["w"][5:7])


def test_bad_options_raise_clear_errors():
    from problems.registry import ProblemError

    with pytest.raises(ProblemError, match="width must be >= 1"):
        make("relu1d-x2:width=0")
    with pytest.raises(ProblemError, match="unknown init"):
        make("relu1d-x2:init=bogus")
    with pytest.raises(ProblemError, match="has no option 'depth'"):
        make("relu1d-x2:depth=3")
    with pytest.raises(ProblemError, match="Did you mean 'relu1d-x2'"):
        make("relu1d-x3")


def edge_case_params(width: int = 7) -> dict:
    """Random params plus the cases the sorted-kink formulas must get right: w = 0 (a
    constant neuron, active or not), tied kinks, and neurons dead on [0, 1] on either side."""
    params = random_params(24, width, seed=5)
    w, b = params["w"], params["b"]
    w[0, 0], b[0, 0] = 0.0, 0.7  # constant, active
    w[0, 1], b[0, 1] = 0.0, -0.4  # constant, dead
    w[1, 2], b[1, 2] = w[1, 3], b[1, 3]  # identical kinks
    w[2, 0], b[2, 0] = 1.0, -0.5
    w[2, 1], b[2, 1] = -2.0, 1.0  # same kink, opposite sides
    w[3, 0], b[3, 0] = 1.5, -2.0  # dead (kink right of b, active to its right)
    w[3, 1], b[3, 1] = -1.5, -0.5  # dead (kink left of a, active to its left)
    return params


@pytest.mark.parametrize(
    "target", [square(), affine(2.0, -1.0), sine3(), zigzag(3)], ids=lambda t: t.name
)
def test_closed_form_gradient_equals_autograd(target):
    params = edge_case_params()
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    risk = relu1d.exact_risk(leaves, target)
    auto = torch.autograd.grad(risk.sum(), list(leaves.values()))
    value, grads = relu1d.exact_risk_and_grad(params, target)
    torch.testing.assert_close(value, risk.detach(), rtol=0, atol=0)
    for key, g in zip(leaves, auto, strict=True):
        torch.testing.assert_close(grads[key], g, rtol=1e-12, atol=1e-14)
    # a constant active neuron still has dN/dw = x (as autograd through relu gives)
    assert float(grads["w"][0, 0]) != 0.0


def test_dead_neurons_get_exactly_zero_gradient_in_both_paths():
    params = edge_case_params()
    dead = (params["w"] * 0 + params["b"] <= 0) & (params["w"] + params["b"] <= 0)
    assert int(dead.sum()) >= 3
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    auto = torch.autograd.grad(relu1d.exact_risk(leaves, square()).sum(), list(leaves.values()))
    _, grads = relu1d.exact_risk_and_grad(params, square())
    for key, g in zip("wbv", auto, strict=False):
        assert torch.count_nonzero(g[dead]) == 0
        assert torch.count_nonzero(grads[key][dead]) == 0


def test_pieces_reproduce_the_network_between_kinks():
    params = edge_case_params()
    target = zigzag(2)
    p = relu1d.pieces(params, target)
    mid = 0.5 * (p.edges[:, 1:] + p.edges[:, :-1])
    width = p.edges[:, 1:] - p.edges[:, :-1]
    assert bool((width >= 0).all())
    # zero-width pieces (kinks clamped to a or b) carry no weight; on the others N is affine
    real = width > 0
    torch.testing.assert_close((p.alpha * mid + p.beta)[real], relu1d.network(params, mid)[real])
    assert torch.allclose(width.sum(dim=1), torch.ones(24, dtype=torch.float64))


def test_neuron_order_does_not_matter():
    params = edge_case_params()
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    shuffled = {k: (v[:, perm] if v.dim() == 2 else v) for k, v in params.items()}
    r1, g1 = relu1d.exact_risk_and_grad(params, square())
    r2, g2 = relu1d.exact_risk_and_grad(shuffled, square())
    torch.testing.assert_close(r1, r2, rtol=1e-13, atol=0)
    for key in "wbv":
        torch.testing.assert_close(g1[key][:, perm], g2[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "spec", ["relu1d-x2:width=3", "relu1d-trap:width=4", "relu1d-affine:width=2"]
)
def test_hessian_risk_has_the_kink_terms_autograd_misses(spec):
    """The Hessian diagnostics differentiate hessian_risk twice: it must equal the finite
    difference of the exact closed-form gradient (plain autograd misses the delta terms of
    the kinks, off by O(1) here), while its value and gradient equal the risk's."""
    problem = make(spec)
    params = problem.init(torch.arange(3), torch.float64, torch.device("cpu"))
    keys = list(params)
    sizes = [params[k][0].numel() for k in keys]

    def unpack(theta):
        parts = theta.split(sizes)
        return {k: t.reshape(1, *params[k].shape[1:]) for k, t in zip(keys, parts, strict=True)}

    def grad(theta):
        _, g = problem.risk_grad(unpack(theta))
        return torch.cat([g[k].reshape(-1) for k in keys])

    missed = 0.0
    for i in range(3):
        theta = torch.cat([params[k][i].reshape(-1) for k in keys])
        eye = torch.eye(len(theta), dtype=torch.float64)
        fd = torch.stack([(grad(theta + 1e-6 * e) - grad(theta - 1e-6 * e)) / 2e-6 for e in eye])
        exact = torch.autograd.functional.hessian(
            lambda t: problem.hessian_risk(unpack(t))[0], theta
        )
        plain = torch.autograd.functional.hessian(lambda t: problem.risk(unpack(t))[0], theta)
        torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-7)
        missed = max(missed, float((plain - fd).abs().max()))
        leaf = theta.clone().requires_grad_(True)
        value = problem.hessian_risk(unpack(leaf))[0]
        (g,) = torch.autograd.grad(value, leaf)
        torch.testing.assert_close(value.detach(), problem.risk(unpack(theta))[0])
        torch.testing.assert_close(g, grad(theta), rtol=1e-10, atol=1e-12)
    assert missed > 1e-2  # the check would catch a Hessian without the kink terms
