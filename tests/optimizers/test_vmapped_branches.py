"""Data-dependent branches under vmap (optimizers/branches.py): seeds that disagree on a
branch are split and each group runs batched, equal to every seed stepped alone; a per-seed
number used as a number (``.item()``) still falls back, seed by seed, and says so."""

from __future__ import annotations

import warnings

import pytest
import torch

from optimizers.branches import SeedsDisagree, run_split
from optimizers.vmapped import VMAP_FAILED, VmappedOptimizer


class TwoBranches(torch.optim.Optimizer):
    """A toy plug-in with two nested branches on its tensors' values (three updates), and a
    counter in its state that only one branch moves."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                g, state = p.grad, self.state[p]
                if "big" not in state:
                    state["big"] = torch.zeros((), dtype=p.dtype)
                if g.abs().max() > 1.0:
                    p.sub_(g.sign() * group["lr"])
                    state["big"].add_(1.0)
                elif p.abs().max() > 0.5:
                    p.sub_(g * (2 * group["lr"]))
                else:
                    p.sub_(g * group["lr"])


class NumericItem(torch.optim.Optimizer):
    """A step that turns a per-seed tensor into a number and uses it as one (with a state
    tensor: a plug-in without one runs seed by seed silently, as on its first step)."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["last"] = p.grad.clone()
                scale = p.grad.abs().max().item()
                p.sub_(p.grad * (group["lr"] / (1.0 + scale)))


def run_both(cls, start: list[torch.Tensor], grads: list[list[torch.Tensor]]):
    """(stacked parameters after VmappedOptimizer, the same seeds each with its own plug-in
    instance, the optimizer, the warnings it gave)."""
    params = [t.clone().requires_grad_(True) for t in start]
    opt = VmappedOptimizer(cls, params, {"lr": 0.1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = g.clone()
            opt.step()
    alone = []
    for s in range(start[0].shape[0]):
        own = [t[s].clone().requires_grad_(True) for t in start]
        single = cls(own, lr=0.1)
        for step in grads:
            for p, g in zip(own, step, strict=True):
                p.grad = g[s].clone()
            single.step()
        alone.append([p.detach() for p in own])
    stacked = [torch.stack([a[i] for a in alone]) for i in range(len(start))]
    return [p.detach() for p in params], stacked, opt, caught


def toy_problem(seeds: int = 8, steps: int = 5):
    g = torch.Generator().manual_seed(1)
    shapes = [(seeds, 3), (seeds, 2, 2)]
    # spreads chosen so each branch is taken by some seeds at some steps
    start = [torch.randn(s, generator=g, dtype=torch.float64) * 0.6 for s in shapes]
    grads = [
        [torch.randn(s, generator=g, dtype=torch.float64) * 0.8 for s in shapes]
        for _ in range(steps)
    ]
    return start, grads


def test_two_branches_split_and_equal_each_seed_alone_bitwise():
    """Elementwise arithmetic under vmap is the one-seed arithmetic: bitwise equal."""
    start, grads = toy_problem()
    got, alone, opt, caught = run_both(TwoBranches, start, grads)
    assert not [w for w in caught if VMAP_FAILED in str(w.message)]
    assert opt.fallback == "" and opt.splits > 0
    for a, b in zip(got, alone, strict=True):
        assert torch.equal(a, b)
    # the counter only some seeds moved is a tensor with the seed dimension
    counts = [opt.state[p]["big"] for p in opt.flat]
    assert all(c.shape == (8,) for c in counts)
    assert any(len(set(c.tolist())) > 1 for c in counts)


def test_seeds_that_agree_are_not_split():
    start, grads = toy_problem()
    grads = [[g * 10.0 for g in step] for step in grads]  # every seed takes the first branch
    got, alone, opt, _ = run_both(TwoBranches, start, grads)
    assert opt.splits == 0
    for a, b in zip(got, alone, strict=True):
        assert torch.equal(a, b)


def test_item_used_as_a_number_falls_back_seed_by_seed():
    start, grads = toy_problem(steps=3)
    got, alone, opt, caught = run_both(NumericItem, start, grads)
    assert opt.fallback != ""
    assert len([w for w in caught if VMAP_FAILED in str(w.message)]) == 1
    for a, b in zip(got, alone, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "values,groups",
    [
        ([True, False, True], [[1], [0, 2]]),
        ([False, False, True, True], [[0, 1], [2, 3]]),
    ],
)
def test_disagreeing_seeds_group_by_value(values, groups):
    split = SeedsDisagree(torch.tensor(values))
    assert [g.tolist() for g in split.groups()] == groups


def test_run_split_puts_every_group_back_in_seed_order():
    """A function with a branch per row, split recursively: row s gets its own branch."""
    x = torch.tensor([[3.0, 1.0], [-2.0, 0.5], [0.0, -4.0], [5.0, 5.0]])

    def one_row(row):
        if row.sum() > 3.0:
            return row * 10.0
        if row.sum() > 0.0:
            return row + 100.0
        return -row

    def run(index):
        return torch.func.vmap(one_row)(x[index])

    def scatter(parts, n):
        out = torch.empty(n, 2)
        for where, part in parts:
            out[where] = part
        return out

    expected = torch.stack([one_row(r) for r in x])
    assert torch.equal(run_split(run, 4, scatter), expected)
