"""The built-ins' compiled step (optimizers/fused.py): torch.optim's update to rounding,
bitwise batch-invariant, one compilation per layout whatever the learning rate."""

from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from optimizers import fused

# class, torch.optim class, hyperparameters (flags the compiled updates branch on)
TABLE = [
    (fused.FusedSGD, torch.optim.SGD, {"lr": 0.1}),
    (fused.FusedSGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
    (
        fused.FusedSGD,
        torch.optim.SGD,
        {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    ),
    (fused.FusedAdam, torch.optim.Adam, {"lr": 1e-2}),
    (fused.FusedAdam, torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
    (fused.FusedAdamW, torch.optim.AdamW, {"lr": 1e-2}),
    (fused.FusedRMSprop, torch.optim.RMSprop, {"lr": 1e-2}),
    (fused.FusedRMSprop, torch.optim.RMSprop, {"lr": 1e-2, "centered": True, "momentum": 0.5}),
    (fused.FusedAdagrad, torch.optim.Adagrad, {"lr": 1e-1, "lr_decay": 0.01, "weight_decay": 0.1}),
]
UPDATE = {
    fused.FusedSGD: "sgd",
    fused.FusedAdam: "adam",
    fused.FusedAdamW: "adam",
    fused.FusedRMSprop: "rmsprop",
    fused.FusedAdagrad: "adagrad",
}
TOL = {torch.float32: (2e-6, 1e-6), torch.float64: (1e-13, 1e-14)}  # (rtol, atol)


def problem(rows: int, dtype, steps: int = 8, seed: int = 0):
    """Parameters shaped like relu1d's ([S, H] x 3 and [S]) and a gradient sequence."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(rows, 7), (rows, 7), (rows, 7), (rows,)]
    start = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    grads = [[torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(steps)]
    return start, grads


def train(cls, hp: dict, start, grads, compiled: bool, rows: slice = slice(None)):
    params = [t[rows].clone().requires_grad_(True) for t in start]
    opt = cls(params, **hp)
    if compiled:
        opt.compile_step(True)
    for step in grads:
        for p, grad in zip(params, step, strict=True):
            p.grad = grad[rows].clone()
        opt.step()
    return [p.detach() for p in params], opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cls,reference,hp", TABLE, ids=[f"{c[1].__name__}{c[2]}" for c in TABLE])
def test_compiled_step_equals_torch_optim_to_rounding(cls, reference, hp, dtype):
    start, grads = problem(64, dtype)
    got, opt = train(cls, hp, start, grads, compiled=True)
    want, ref = train(reference, hp, start, grads, compiled=False)
    rtol, atol = TOL[dtype]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    for p, q in zip(opt.param_groups[0]["params"], ref.param_groups[0]["params"], strict=True):
        assert opt.state[p].keys() == ref.state[q].keys()  # torch.optim's own state
        for key, value in ref.state[q].items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(opt.state[p][key], value, rtol=rtol, atol=atol)
    # the compiled update ran (not torch.optim's step behind it)
    assert any(
        k[0] == UPDATE[cls] and k[2] == dtype and v is not fused._EAGER
        for k, v in fused._COMPILED.items()
    )


@pytest.mark.parametrize("cls,reference,hp", TABLE[1:2] + TABLE[3:4] + TABLE[7:8])
def test_compiled_step_is_bitwise_batch_invariant(cls, reference, hp):
    """A row's update is bit-identical in a stack of 96 rows and in a block of 32 (the
    engine pads every batch to a multiple of 32)."""
    start, grads = problem(96, torch.float32, steps=6, seed=1)
    whole, _ = train(cls, hp, start, grads, compiled=True)
    for rows in (slice(0, 32), slice(32, 64), slice(64, 96)):
        part, _ = train(cls, hp, start, grads, compiled=True, rows=rows)
        for a, b in zip(whole, part, strict=True):
            assert torch.equal(a[rows], b)


def test_a_learning_rate_grid_and_a_schedule_do_not_recompile():
    from torch._dynamo.utils import counters

    start, grads = problem(64, torch.float64, steps=3, seed=2)
    train(fused.FusedAdam, {"lr": 1e-3}, start, grads, compiled=True)  # compiled (or cached)
    before = counters["stats"]["unique_graphs"]
    for lr in (1e-4, 3e-3, 0.1):
        _, opt = train(fused.FusedAdam, {"lr": lr}, start, grads, compiled=True)
        opt.param_groups[0]["lr"] = lr / 2  # what a scheduler does
        opt.step()
    bigger, grads96 = problem(96, torch.float64, steps=2, seed=2)
    train(fused.FusedAdam, {"lr": 1e-3}, bigger, grads96, compiled=True)  # another batch size
    assert counters["stats"]["unique_graphs"] == before


def test_a_failing_compiler_warns_and_runs_torch_optim(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("InductorError: no working C++ compiler")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    start, grads = problem(64, torch.float64, steps=3, seed=3)
    start = [t[:, :1] if t.dim() == 2 else t for t in start]  # a layout no other test compiled
    grads = [[g[:, :1] if g.dim() == 2 else g for g in step] for step in grads]
    with pytest.warns(UserWarning, match="torch.compile failed for the rmsprop update"):
        got, opt = train(fused.FusedRMSprop, {"lr": 1e-2}, start, grads, compiled=True)
    want, _ = train(torch.optim.RMSprop, {"lr": 1e-2}, start, grads, compiled=False)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)  # torch.optim's step from the failure on: the same numbers
    ps = opt.param_groups[0]["params"]  # parameters, gradients, squares: the same shapes
    layout = fused._layout("rmsprop", (False, False), [ps, ps, ps, [], []])
    assert fused._COMPILED[layout] is fused._EAGER  # this layout stays on torch.optim's step


def test_without_compiling_the_step_is_torch_optims():
    start, grads = problem(32, torch.float64, steps=4, seed=4)
    got, _ = train(fused.FusedAdam, {"lr": 1e-2}, start, grads, compiled=False)
    want, _ = train(torch.optim.Adam, {"lr": 1e-2}, start, grads, compiled=False)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls,reference,hp", [TABLE[1], TABLE[3], TABLE[6]])
def test_direct_step_is_the_same_step_without_the_wrapper(cls, reference, hp):
    """The engine's per-step call (fused.direct_step after a first torch.optim step) leaves
    parameters and state bit-identical to calling opt.step() every time."""
    start, grads = problem(64, torch.float32, steps=5, seed=5)
    want, ref = train(cls, hp, start, grads, compiled=True)
    params = [t.clone().requires_grad_(True) for t in start]
    opt = cls(params, **hp).compile_step(True)
    step = opt.step
    for i, grad in enumerate(grads):
        for p, g in zip(params, grad, strict=True):
            p.grad = g.clone()
        step()
        if i == 0:
            step = fused.direct_step(opt)
    assert step != opt.step  # the unwrapped step was used from the second step on
    for a, b in zip(params, want, strict=True):
        assert torch.equal(a.detach(), b)
    for p, q in zip(params, ref.param_groups[0]["params"], strict=True):
        for key, value in ref.state[q].items():
            assert torch.equal(opt.state[p][key], value)


def test_direct_step_keeps_the_wrapper_where_it_has_work():
    """Step hooks (the optimizer's own or global) and the uncompiled step keep opt.step."""
    params = [torch.zeros(4, 3, requires_grad=True)]
    plain = torch.optim.Adam(params)
    uncompiled = fused.FusedAdam(params)
    hooked = fused.FusedAdam(params).compile_step(True)
    hooked.register_step_post_hook(lambda *args: None)
    for opt in (plain, uncompiled, hooked):
        assert fused.direct_step(opt) == opt.step
    handle = register_optimizer_step_pre_hook(lambda *args: None)
    try:
        compiled = fused.FusedAdam(params).compile_step(True)
        assert fused.direct_step(compiled) == compiled.step
    finally:
        handle.remove()
    assert fused.direct_step(compiled) != compiled.step


def _shaped(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    "tensors,fits",
    [
        ([[_shaped(4, 3), _shaped(4)], [_shaped(4, 3), _shaped(4)]], True),
        ([[_shaped(1, 3)], [_shaped(1, 3)]], False),  # one seed
        ([[_shaped()], [_shaped()]], False),  # no seed dimension
        ([[_shaped(4, 3)], [_shaped(5, 3)]], False),  # seed counts differ
        ([[_shaped(4, 3)], [_shaped(4, 3, dtype=torch.float64)]], False),  # mixed dtypes
        ([[_shaped(4, 3)], [_shaped(3, 4).T]], False),  # not contiguous
        ([[_shaped(4, 3)], [_shaped(4, 3)], []], True),  # an empty state group
    ],
)
def test_layout_accepts_exactly_what_one_compiled_update_serves(tensors, fits):
    key = fused._layout("adam", (False,), tensors)
    assert (key is not None) == fits
    if fits:
        shapes = tuple(tuple(tuple(t.shape[1:]) for t in group) for group in tensors)
        assert key == ("adam", (False,), torch.float32, "cpu", shapes)
