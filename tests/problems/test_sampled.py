import dataclasses

import numpy as np
import pytest
import torch

from benchmarks import engine
from benchmarks.engine import RunConfig, train_cell, uses_fast_gradient
from optimizers.registry import BUILTINS
from problems import sampled, sorted_sums
from problems.deepfc import forward
from problems.registry import make
from problems.rng import problem_key, stream, uniform
from problems.targets import square

SHALLOW = "relu1d-x2:width=5,sampled=true,batch=64"
DEEP = "deep-target:arch=1-6-5-1,sampled=true,batch=48"
WIDE = "relu1d-sin3x:width=40,sampled=true,batch=64"  # the sorted path (uses_sorted)


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


@pytest.mark.parametrize("unrolled", [sampled.UNROLLED_MAX_WIDTH, 0], ids=["unrolled", "broadcast"])
@pytest.mark.parametrize("terms", [sampled.SLICE_TERMS, 56], ids=["one slice", "7 slices"])
@pytest.mark.parametrize("act", sampled.ACTS)
def test_shallow_gradient_equals_autograd(act, terms, unrolled, monkeypatch):
    """Every parameter, both activations, with neurons active on some samples, on all and on
    none (w = 0 with b < 0: dead, exactly zero gradient); the samples in one slice or in
    slices of 8 with a shorter last one; the network's sum over neurons written out neuron
    by neuron (narrow networks) or as a sum over the neuron axis (wide ones)."""
    monkeypatch.setattr(sampled, "SLICE_TERMS", terms)
    monkeypatch.setattr(sampled, "UNROLLED_MAX_WIDTH", unrolled)
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


@pytest.mark.parametrize("spec", [SHALLOW, DEEP, WIDE])
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
@pytest.mark.parametrize("spec", [SHALLOW, DEEP, WIDE])
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


def shallow_with_corner_cases(s: int, width: int, seed: int = 0) -> dict:
    """Random neurons plus, where the width allows, the corner cases of the sorted path:
    w = 0 with b < 0 (dead everywhere), w = 0 with b > 0 (active everywhere), a rising and a
    falling neuron whose kink lies outside [0, 1] (active on every sample, resp. none)."""
    params = random_shallow(s, width, seed)
    corners = [(0.0, -1.0), (0.0, 0.5), (2.0, 3.0), (-1.5, -0.2)]
    for j, (w, b) in enumerate(corners[:width]):
        params["w"][:, j], params["b"][:, j] = w, b
    return params


def dense_of_sorted(params: dict, xs: torch.Tensor, ys: torch.Tensor) -> tuple:
    """The float64 reference: autograd through the dense per-sample risk (relu1d.network)."""
    from problems.relu1d import network

    def risk(p):
        err = network(p, xs) - ys
        return (err * err).mean(dim=1)

    return autograd_of(risk, params)


def assert_close_to_scale(got: tuple, want: tuple, rtol: float = 1e-12) -> None:
    """Equal to rtol relative to each quantity's largest entry: an entry that is a sum
    cancelling to near zero is as exact as the sums it comes from, not relative to itself."""
    torch.testing.assert_close(got[0], want[0], rtol=rtol, atol=0.0)
    for k in want[1]:
        scale = float(want[1][k].abs().max())
        torch.testing.assert_close(got[1][k], want[1][k], rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("width", [1, 3, 16, 300])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_sorted_gradient_equals_autograd(width, compiled):
    """float64: risk and gradient of the sorted path against autograd through the dense
    network, with dead, always-active and out-of-range neurons; a dead neuron's gradient is
    exactly zero, as through autograd."""
    params = shallow_with_corner_cases(5, width)
    g = torch.Generator().manual_seed(2)
    xs = sorted_sums.sort_rows(torch.rand(5, 257, generator=g, dtype=torch.float64))
    ys = torch.sin(3 * xs)
    fn = torch.compile(sorted_sums.sorted_risk_grad) if compiled else sorted_sums.sorted_risk_grad
    got = fn(params, xs, ys)
    assert_close_to_scale(got, dense_of_sorted(params, xs, ys))
    if width >= 3:
        dead = [got[1][k][:, 0] for k in "wbv"]
        assert all(torch.all(t == 0) for t in dead)
        assert torch.all(got[1]["v"][:, 1] != 0)
    if width >= 4:  # falling with its kink below the samples: inactive everywhere
        assert all(torch.all(got[1][k][:, 3] == 0) for k in "wbv")


@pytest.mark.parametrize("w", [2.0, 3.0, -3.0, 0.7, -1e-3])
def test_samples_on_a_kink_count_as_inactive(w):
    """Samples exactly on a kink (w x + b == 0 in floating point; b = -fl(w x)) are inactive,
    relu'(0) = 0 as in autograd, whatever -b / w rounds to (x = 0.1: above x for w = +-3,
    below it for w = 0.7, so a threshold -b / w would count the sample active for w = 0.7
    and -3): the sorted path tests w x + b > 0 itself. Neighbouring
    samples one ulp away on either side, and duplicates of the kink sample, too."""
    x0 = torch.tensor(0.1, dtype=torch.float64)
    near = [x0, torch.nextafter(x0, torch.tensor(0.0)), torch.nextafter(x0, torch.tensor(1.0))]
    xs = sorted_sums.sort_rows(
        torch.stack([*near, x0, x0, torch.tensor(0.05), torch.tensor(0.9)])[None]
    )
    b = -(w * x0)
    assert float(w * x0 + b) == 0.0
    params = {
        "w": torch.tensor([[w, 1.0]], dtype=torch.float64),
        "b": torch.tensor([[float(b), -0.5]], dtype=torch.float64),
        "v": torch.tensor([[1.3, -0.4]], dtype=torch.float64),
        "c": torch.tensor([0.2], dtype=torch.float64),
    }
    ys = xs * xs
    got = sorted_sums.sorted_risk_grad(params, xs, ys)
    assert_close_to_scale(got, dense_of_sorted(params, xs, ys), rtol=1e-14)
    z = w * xs[0] + b
    assert int(sorted_sums.run_starts(xs, params["w"], params["b"])[0, 0]) == (
        int((z <= 0).sum()) if w > 0 else int((z > 0).sum())
    )


@pytest.mark.parametrize(
    "xs,w,b,pos",
    [
        ([0.0, 0.25, 0.5, 0.75], 1.0, -0.5, 3),  # rising, 0.5 on the kink: active from 0.75
        ([0.0, 0.25, 0.5, 0.75], -1.0, 0.5, 2),  # falling: active on 0.0 and 0.25
        ([0.0, 0.25, 0.5, 0.75], 0.0, 1.0, 0),  # w = 0, b > 0: everywhere
        ([0.0, 0.25, 0.5, 0.75], 0.0, 0.0, 4),  # w = 0, b = 0: nowhere
        ([0.0, 0.25, 0.5, 0.75], 1.0, 5.0, 0),  # kink below the samples
        ([0.0, 0.25, 0.5, 0.75], -1.0, 5.0, 4),  # falling, kink above: everywhere
        ([0.3, 0.3, 0.3], 1.0, -0.3, 3),  # all three on the kink
    ],
)
def test_run_starts(xs, w, b, pos):
    xs = torch.tensor([xs], dtype=torch.float64)
    got = sorted_sums.run_starts(
        xs, torch.tensor([[w]], dtype=torch.float64), torch.tensor([[b]], dtype=torch.float64)
    )
    assert int(got[0, 0]) == pos


def test_sort_rows_sorts_each_row():
    x = torch.rand(6, 100, dtype=torch.float32)
    assert torch.equal(sorted_sums.sort_rows(x), torch.sort(x, dim=1).values)


@pytest.mark.parametrize(
    "width,act,sorted_path",
    [
        (5, "relu", False),
        (16, "relu", False),
        (24, "relu", True),
        (300, "relu", True),
        (24, "clip", False),  # a clip network runs as 2H ReLU units: twice the width
        (48, "clip", True),
        (1000, "clip", True),
    ],
)
def test_the_path_is_chosen_by_width(width, act, sorted_path):
    assert sampled.uses_sorted(width, act) is sorted_path


@pytest.mark.parametrize("width", [48, 300])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_wide_clip_gradient_equals_autograd_through_clamp(width, compiled):
    """float64: a wide clip network's sampled risk and gradient (the sorted path on its ReLU
    expansion) against autograd through the dense clamp network, with neurons saturated on
    every sample, on none, and with both kinks inside the batch."""
    from problems.relu1d import network

    params = shallow_with_corner_cases(5, width)
    params["w"][:, 4], params["b"][:, 4] = 4.0, -1.0  # kinks at 0.25 and 0.5
    params["w"][:, 5], params["b"][:, 5] = 0.5, 2.0  # saturated everywhere
    train = sampled.shallow_train_risk_grad(7, 257, (0.0, 1.0), lambda x: torch.sin(3 * x), "clip")
    if compiled:
        train = torch.compile(train)
    seeds = torch.arange(5)
    got = train(params, seeds, torch.tensor(3))
    x = sampled.batch_inputs(7, seeds, 3, 257, (0.0, 1.0), torch.float64)

    def risk(p):
        err = network(p, x, "clip") - torch.sin(3 * x)
        return (err * err).mean(dim=1)

    assert_close_to_scale(got, autograd_of(risk, params))
    assert all(torch.all(got[1][k][:, 5] == 0) for k in "wb")  # saturated: no slope


@pytest.mark.parametrize("step", [0, 1234])
def test_wide_problem_gradient_equals_autograd_of_its_train_risk(step):
    """The problem's train_risk_grad on the sorted path (width 40) against autograd through
    relu1d.sampled_risk on the same (unsorted) batch, float64."""
    problem = make(WIDE)
    assert sampled.uses_sorted(40, "relu")
    seeds = torch.arange(3, 9)
    params = problem.init(seeds, torch.float64, torch.device("cpu"))
    got = problem.train_risk_grad(params, seeds, torch.tensor(step))
    assert_close_to_scale(got, autograd_of(lambda p: problem.train_risk(p, seeds, step), params))


def test_float32_sorted_path_is_as_close_to_float64_as_the_dense_path():
    """float32: the sorted path's gradient is no further from the float64 result than the
    dense path's (its sums run in float64; measured 2-5e-8 against 4-13e-8, relative to the
    largest entry)."""
    params = shallow_with_corner_cases(16, 300, seed=3)
    p32 = {k: v.float() for k, v in params.items()}
    xs = sorted_sums.sort_rows(torch.rand(16, 1024, generator=torch.Generator().manual_seed(4)))
    ys = torch.sin(3 * xs)
    exact = dense_of_sorted({k: v.double() for k, v in p32.items()}, xs.double(), ys.double())
    fast = sorted_sums.sorted_risk_grad(p32, xs, ys)
    dense = sampled.shallow_risk_grad(p32, xs, ys)
    for k in exact[1]:
        scale = exact[1][k].abs().max()
        err_fast = (fast[1][k].double() - exact[1][k]).abs().max() / scale
        err_dense = (dense[1][k].double() - exact[1][k]).abs().max() / scale
        assert err_fast <= max(err_dense, 1e-7), (k, float(err_fast), float(err_dense))
