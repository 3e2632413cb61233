"""The relu1d features of Ibragimov, Jentzen & Riekert (2022, arXiv:2212.13111, Section 4):
the clip activation, frozen parameters, the ijr initializations and the new targets."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import quad

from benchmarks.engine import RunConfig, train_cell
from benchmarks.stopping import StopRules
from optimizers.registry import BUILTINS
from problems import relu1d
from problems.registry import make
from problems.rng import problem_key
from problems.targets import TARGETS, fourth_root, quartic_sine, sine3


def random_params(s: int, width: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    p = {k: torch.randn(s, width, generator=g, dtype=torch.float64) for k in "wbv"}
    p["w"] = 3 * p["w"]  # steep enough that many ramps end inside [0, 1]
    return p | {"c": torch.randn(s, generator=g, dtype=torch.float64)}


def clip_kinks(p: dict) -> list[float]:
    w, b = p["w"][0], p["b"][0]
    return sorted(t for t in torch.cat([-b / w, (1 - b) / w]).tolist() if 0 < t < 1)


@pytest.mark.parametrize("target", [sine3(), quartic_sine(), fourth_root()], ids=lambda t: t.name)
def test_clip_risk_matches_adaptive_quadrature_of_the_clip_network(target):
    params = random_params(4, 5, seed=1)
    exact = relu1d.exact_risk_act(params, target, "clip")
    for i in range(4):
        p = {k: v[i : i + 1] for k, v in params.items()}

        def integrand(x, p=p):
            xt = torch.tensor([[x]], dtype=torch.float64)
            return float((relu1d.network(p, xt, "clip") - target.fn(xt)) ** 2)

        points = sorted({*clip_kinks(p), *target.breakpoints})
        ref, _ = quad(integrand, 0, 1, points=points, epsabs=1e-14, epsrel=1e-12, limit=400)
        # x^(1/4) is not polynomial on any piece: 8 nodes are accurate, not exact
        rel = 1e-6 if target.name == "root4" else 1e-9
        assert float(exact[i]) == pytest.approx(ref, rel=rel, abs=1e-14)


def test_clip_network_is_its_relu_expansion_pointwise():
    params = random_params(3, 6, seed=2)
    x = torch.rand(3, 500, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expanded = relu1d.clip_as_relu(params)
    torch.testing.assert_close(relu1d.network(params, x, "clip"), relu1d.network(expanded, x))
    assert float(relu1d.network(params, x, "clip").abs().max()) <= float(
        params["v"].abs().sum(dim=1).max() + params["c"].abs().max()
    )


def test_clip_closed_form_gradient_equals_autograd():
    params = random_params(5, 7, seed=3)
    target = sine3()
    risk, grads = relu1d.exact_risk_and_grad_act(params, target, "clip")
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    auto_risk = relu1d.exact_risk_act(leaves, target, "clip")
    auto = torch.autograd.grad(auto_risk.sum(), list(leaves.values()))
    torch.testing.assert_close(risk, auto_risk.detach())
    for (k, g), a in zip(grads.items(), auto, strict=True):
        torch.testing.assert_close(g, a, rtol=1e-9, atol=1e-12, msg=k)


def test_clip_gradient_equals_finite_differences():
    params = random_params(1, 3, seed=4)
    target = sine3()
    _, grads = relu1d.exact_risk_and_grad_act(params, target, "clip")
    eps = 1e-6
    for k in params:
        flat = params[k].reshape(-1)
        for j in range(flat.numel()):
            up = {n: t.clone() for n, t in params.items()}
            down = {n: t.clone() for n, t in params.items()}
            up[k].view(-1)[j] += eps
            down[k].view(-1)[j] -= eps
            fd = (
                relu1d.exact_risk_act(up, target, "clip")
                - relu1d.exact_risk_act(down, target, "clip")
            ) / (2 * eps)
            assert float(grads[k].reshape(-1)[j]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


def test_clip_optimum_is_bracketed_by_relu_optima():
    clip = make("relu1d-sin3x:width=2,act=clip")
    relu2, relu4 = make("relu1d-sin3x:width=2"), make("relu1d-sin3x:width=4")
    assert clip.provenance == "best_known" and clip.optimum == relu2.optimum
    assert clip.options["optimum_lower_bound"] == pytest.approx(relu4.optimum)
    assert "lower bound" in clip.provenance_detail and clip.levels == ()
    assert make("relu1d-sin3x:width=5,act=clip").options["optimum_lower_bound"] is None


def test_clip_dead_neurons_are_the_constant_ones():
    # ramp inside [0, 1]; ramp left of 0 (constant 1); ramp right of 1 (constant 0); w = 0
    p = {
        "w": torch.tensor([[4.0, 4.0, 4.0, 0.0]]),
        "b": torch.tensor([[-1.0, 2.0, -9.0, 0.5]]),
        "v": torch.ones(1, 4),
        "c": torch.zeros(1),
    }
    assert relu1d.dead_clip_neurons(p, 0.0, 1.0).tolist() == [3]


@pytest.mark.parametrize(
    "train,frozen",
    [("all", ()), ("biases", ("w", "v")), ("inner_biases", ("w", "v", "c"))],
)
@pytest.mark.parametrize("opt,hp", [("sgd", {"lr": 0.05}), ("adam", {"lr": 0.01})])
def test_frozen_parameters_stay_bit_identical(train, frozen, opt, hp):
    problem = make(f"relu1d-x2+2x:width=3,train={train}")
    assert problem.frozen == frozen
    seeds = torch.arange(6)
    start = problem.init(seeds, torch.float64, torch.device("cpu"))
    cfg = RunConfig(steps=60, dtype=torch.float64)
    records, _ = train_cell(problem, BUILTINS[opt], hp, seeds, cfg, keep_params=True)
    for k in start:
        same = np.array_equal(records[f"param.{k}"], start[k].numpy())
        assert same == (k in frozen), k


def test_stationarity_measures_trainable_gradients_only():
    """A run trained on b alone stops on |dR/db| even though dR/dw stays large."""
    problem = make("relu1d-x2+2x:width=3,train=inner_biases")
    seeds = torch.arange(4)
    cfg = RunConfig(steps=20000, dtype=torch.float64, stop=StopRules(grad_tol=1e-5))
    records, _ = train_cell(problem, BUILTINS["gd"], {"lr": 0.1}, seeds, cfg, keep_params=True)
    params = {k[6:]: torch.from_numpy(v) for k, v in records.items() if k.startswith("param.")}
    _, grads = relu1d.exact_risk_and_grad(
        params, problem.train_risk.__closure__ and TARGETS["x2+2x"]()
    )
    assert (records["stop_reason"] == "grad").all()
    assert np.allclose(records["grad_norm"], grads["b"].norm(dim=1).numpy(), rtol=1e-6)
    full = torch.sqrt(sum(g.reshape(4, -1).pow(2).sum(dim=1) for g in grads.values()))
    assert (full.numpy() > 10 * records["grad_norm"]).any()


@pytest.mark.parametrize(
    "scheme,exponents,absolute",
    [
        ("ijr1", (3.0, 3.0, -7 / 8, 0.0), (True, False, True, False)),
        ("ijr2", (-4 / 15, -9 / 10, -4 / 15, -9 / 10), (True, False, True, False)),
        ("ijr4", (-1 / 7, -1 / 2, -1 / 7, -1 / 2), (True, False, True, False)),
    ],
)
def test_ijr_inits_have_the_papers_distributions(scheme, exponents, absolute):
    width, seeds = 5, torch.arange(4000)
    p = relu1d.initial_params(
        problem_key("x"), seeds, width, scheme, False, sine3(), 0.0, torch.float64, "cpu"
    )
    for (k, t), e, half in zip(p.items(), exponents, absolute, strict=True):
        z = (t / width**e).reshape(-1).numpy()
        reference = stats.halfnorm.cdf if half else stats.norm.cdf
        assert stats.kstest(z, reference).pvalue > 1e-3, k
        assert (z >= 0).all() == half, k
    again = relu1d.initial_params(
        problem_key("x"), seeds[7:9], width, scheme, False, sine3(), 0.0, torch.float64, "cpu"
    )
    for k in p:  # a seed's draw depends on (problem, seed) only
        torch.testing.assert_close(again[k], p[k][7:9], rtol=0, atol=0)


@pytest.mark.parametrize(
    "name,fn",
    [("root4", lambda x: x**0.25), ("x4sin", lambda x: x**4 * math.sin(x))],
)
def test_new_targets_and_their_rows(name, fn):
    target = TARGETS[name]()
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    expected = torch.tensor([fn(float(v)) for v in x], dtype=torch.float64)
    torch.testing.assert_close(target.fn(x), expected)
    problem = make(f"relu1d-{name}:width=2")
    assert problem.provenance == "computed"
    assert [label for label, _ in problem.levels][0] == "R*_0"
    assert all(value > problem.optimum + problem.tol for _, value in problem.levels)
    # the width-2 optimum beats the best constant, and a random network does worse
    trivial = dict(problem.levels)["R*_0"]
    assert 0 < problem.optimum < trivial
    random = problem.risk(problem.init(torch.arange(64), torch.float64, "cpu"))
    assert (random >= problem.optimum - 1e-12).all()


def test_sampled_clip_risk_is_unbiased_for_the_exact_risk():
    problem = make("relu1d-root4:width=3,act=clip,sampled=true,batch=4096")
    params = random_params(2, 3, seed=5)
    estimates = torch.stack([problem.train_risk(params, torch.arange(2), t) for t in range(200)])
    torch.testing.assert_close(estimates.mean(dim=0), problem.risk(params), rtol=2e-2, atol=1e-5)
