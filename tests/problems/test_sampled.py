import dataclasses

import numpy as np
import pytest
import torch

from benchmarks import engine
from benchmarks.engine import RunConfig, train_cell, uses_fast_gradient
from optimizers.registry import BUILTINS
from problems import sampled
from problems.deepfc import forward
from problems.registry import make
from problems.rng import problem_key, stream, uniform
from problems.targets import square

SHALLOW = "relu1d-x2:width=5,sampled=true,batch=64"
DEEP = "deep-target:arch=1-6-5-1,sampled=true,batch=48"


def random_shallow(s: int, width: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, width, generator=g, dtype=torch.float64) for k in "wbv"} | {
        "c": torch.randn(s, generator=g, dtype=torch.float64)
    }


def autograd_of(risk_fn, params: dict) -> tuple[torch.Tensor, dict]:
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    risk = risk_fn(leaves)
    grads = torch.autograd.grad(risk.sum(), list(leaves.values()))
    return risk.detach(), dict(zip(leaves, grads, strict=True))


def assert_same(closed: tuple, reference: tuple) -> None:
    torch.testing.assert_close(closed[0], reference[0], rtol=1e-12, atol=1e-14)
    assert closed[1].keys() == reference[1].keys()
    for k in closed[1]:
        torch.testing.assert_close(closed[1][k], reference[1][k], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("terms", [sampled.SLICE_TERMS, 56], ids=["one slice", "7 slices"])
@pytest.mark.parametrize("act", sampled.ACTS)
def test_shallow_gradient_equals_autograd(act, terms, monkeypatch):
    """Every parameter, both activations, with neurons active on some samples, on all and on
    none (w = 0 with b < 0: dead, exactly zero gradient); the samples in one slice or in
    slices of 8 with a shorter last one."""
    monkeypatch.setattr(sampled, "SLICE_TERMS", terms)
    params = random_shallow(6, 7)
    params["w"][:, 0], params["b"][:, 0] = 0.0, -1.0  # dead everywhere
    if act == "clip":  # saturated on every sample: output 1, no w or b gradient
        params["w"][:, 1], params["b"][:, 1] = 0.0, 2.0
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 50, generator=g, dtype=torch.float64)
    y = torch.sin(3 * x)

    def reference(p):
        z = x[:, :, None] * p["w"][:, None, :] + p["b"][:, None, :]
        h = torch.relu(z) if act == "relu" else torch.clamp(z, 0.0, 1.0)
        err = p["c"][:, None] + (h * p["v"][:, None, :]).sum(dim=2) - y
        return (err * err).mean(dim=1)

    closed = sampled.shallow_risk_grad(params, x, y, act)
    assert_same(closed, autograd_of(reference, params))
    assert torch.all(closed[1]["w"][:, 0] == 0) and torch.all(closed[1]["b"][:, 0] == 0)
    if act == "clip":
        assert torch.all(closed[1]["w"][:, 1] == 0) and torch.all(closed[1]["v"][:, 1] != 0)


@pytest.mark.parametrize(
    "width,samples", [(1, 65536), (16, 4096), (256, 256), (1000, 64), (10**6, 8)]
)
def test_sample_slices_are_whole_vectors_sized_by_width(width, samples):
    assert sampled.sample_slice(width) == samples


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        sampled.activation(torch.zeros(3), "gelu")


@pytest.mark.parametrize("step", [0, 7, 1234])
def test_problem_gradient_equals_autograd_of_its_train_risk(step):
    problem = make(SHALLOW)
    seeds = torch.arange(3, 9)
    params = problem.init(seeds, torch.float64, torch.device("cpu"))
    closed = problem.train_risk_grad(params, seeds, torch.tensor(step))
    assert_same(closed, autograd_of(lambda p: problem.train_risk(p, seeds, step), params))


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_deep_gradient_equals_autograd(act):
    problem = make(f"{DEEP},act={act}")
    seeds = torch.arange(5)
    params = problem.init(seeds, torch.float64, torch.device("cpu"))
    params = {k: v + 0.1 for k, v in params.items()}  # non-zero biases
    closed = problem.train_risk_grad(params, seeds, torch.tensor(3))
    assert_same(closed, autograd_of(lambda p: problem.train_risk(p, seeds, 3), params))


def test_sample_stream_is_unchanged():
    """The batch train_risk_grad draws is, bit for bit, the one relu1d.sampled_risk drew
    before the fast path (rng stream ``batch`` + step, a + (b - a) u), with the step an int
    or a 0-d tensor, eager or compiled."""
    key, seeds = problem_key(SHALLOW), torch.tensor([0, 5, 977])
    for dtype in (torch.float32, torch.float64):
        for step in (0, 1, 9999):
            before = 0.0 + (1.0 - 0.0) * uniform(key, seeds, stream("batch", step), 64, dtype)
            drawn = sampled.batch_inputs(key, seeds, step, 64, (0.0, 1.0), dtype)
            assert torch.equal(drawn, before)
            as_tensor = torch.tensor(step)
            drawn = sampled.batch_inputs(key, seeds, as_tensor, 64, (0.0, 1.0), dtype)
            assert torch.equal(drawn, before)
    # the values the sampled stream gave before the fast path existed (seeds 0 and 977,
    # step 9999, first two samples), so a change of the stream itself fails too
    golden = ["0x1.55444d0c59a0cp-1", "0x1.cc1c574894ac7p-2"]
    golden += ["0x1.280e33be83ad6p-3", "0x1.4fedf4ef56a6ap-3"]
    drawn = sampled.batch_inputs(key, seeds[[0, 2]], 9999, 64, (0.0, 1.0), torch.float64)
    assert [float.hex(float(v)) for v in drawn[:, :2].flatten()] == golden
    shifted = uniform(key, seeds, stream("batch", 3), 64)
    compiled = torch.compile(sampled.batch_inputs, dynamic=True)
    drawn = compiled(key, seeds, torch.tensor(3), 64, (-1.0, 2.0), torch.float64)
    assert torch.equal(drawn, -1.0 + 3.0 * shifted)


def test_sampled_risk_is_the_mean_squared_error_on_that_batch():
    problem = make(SHALLOW)
    seeds = torch.arange(4)
    params = problem.init(seeds, torch.float64, torch.device("cpu"))
    x = sampled.batch_inputs(problem_key(problem.name), seeds, 11, 64, (0.0, 1.0), torch.float64)
    err = (
        params["c"][:, None]
        + (
            torch.relu(x[:, :, None] * params["w"][:, None] + params["b"][:, None])
            * params["v"][:, None]
        ).sum(dim=2)
        - square().fn(x)
    )
    torch.testing.assert_close(problem.train_risk(params, seeds, 11), (err * err).mean(dim=1))


def test_deep_target_sampled_keeps_the_grid_risk_for_evaluation():
    grid, online = make("deep-target:arch=1-6-5-1"), make(DEEP)
    assert grid.exact and grid.train_risk_grad is None
    assert not online.exact and online.train_risk_grad is not None
    params = online.init(torch.arange(3), torch.float64, torch.device("cpu"))
    torch.testing.assert_close(online.risk(params), grid.risk(params))
    key = problem_key(online.name)
    x = sampled.batch_inputs(key, torch.arange(3), 2, 48, (0.0, 1.0), torch.float64)
    err = forward(params, x[:, :, None], "relu") - torch.sin(3 * x)
    torch.testing.assert_close(online.train_risk(params, torch.arange(3), 2), (err**2).mean(1))
    with pytest.raises(ValueError, match="batch"):
        make("deep-target:sampled=true,batch=0")


@pytest.mark.parametrize("spec", [SHALLOW, DEEP])
def test_a_short_engine_run_uses_the_fast_path(spec, monkeypatch):
    """The engine trains a sampled problem through train_risk_grad, never autograd, and gets
    the autograd path's parameters (SGD, float64, 30 steps)."""
    problem = make(spec)
    assert uses_fast_gradient(problem, BUILTINS["sgd"], RunConfig(steps=1))
    assert not uses_fast_gradient(problem, BUILTINS["sgd"], RunConfig(steps=1, analytic=False))
    calls = []
    counted = dataclasses.replace(
        problem,
        train_risk_grad=lambda p, s, t: calls.append(int(t)) or problem.train_risk_grad(p, s, t),
    )
    cfg = RunConfig(steps=30, dtype=torch.float64)
    seeds = torch.arange(40)
    slow, _ = train_cell(
        problem,
        BUILTINS["sgd"],
        {"lr": 0.05},
        seeds,
        dataclasses.replace(cfg, analytic=False),
        keep_params=True,
    )
    autograd = engine._autograd

    def no_autograd_in_training(risk_fn, params, mask=None):
        assert mask is None, "a training step went through autograd"
        return autograd(risk_fn, params, mask)

    monkeypatch.setattr(engine, "_autograd", no_autograd_in_training)
    fast, _ = train_cell(counted, BUILTINS["sgd"], {"lr": 0.05}, seeds, cfg, keep_params=True)
    assert calls == list(range(30))  # one chunk, one call per step
    for key in [k for k in fast if k.startswith("param.")] + ["final_risk"]:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-9, atol=1e-12)


BATCH = torch.tensor([*range(300, 330), 81, *range(1000, 1017), 609, 259])


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("spec", [SHALLOW, DEEP])
def test_sampled_fast_path_is_bitwise_batch_invariant(spec, compiled):
    """float64: a seed's final parameters are bit-identical alone, in an odd-sized batch at
    any position, and under another chunking, on the fast (optionally compiled) path."""
    problem = make(spec)
    cfg = RunConfig(steps=40, dtype=torch.float64, compile=compiled)
    sgd, hp = BUILTINS["sgd"], {"lr": 0.05}
    batch, _ = train_cell(problem, sgd, hp, BATCH, cfg, keep_params=True)
    chunked, _ = train_cell(
        problem, sgd, hp, BATCH, dataclasses.replace(cfg, chunk=7), keep_params=True
    )
    keys = [k for k in batch if k.startswith("param.")] + ["final_risk", "stop_step"]
    for key in keys:
        assert np.array_equal(batch[key], chunked[key], equal_nan=True), key
    for seed in (81, 609, 259):
        i = BATCH.tolist().index(seed)
        alone, _ = train_cell(problem, sgd, hp, torch.tensor([seed]), cfg, keep_params=True)
        for key in keys:
            assert np.array_equal(batch[key][i], alone[key][0], equal_nan=True), (seed, key)
