"""The vmapped path (optimizers/vmapped.py): per-tensor-coupled plug-ins on every seed at once,
equal to training each seed alone; a step vmap cannot run falls back, seed by seed, and says so.
Needs pytorch-optimizer (a test dependency)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from benchmarks.engine import RunConfig, train_cell
from benchmarks.probe import checked_entry
from optimizers.vmapped import VMAP_FAILED, VmappedOptimizer
from problems.registry import make

pytest.importorskip("pytorch_optimizer")
from pytorch_optimizer import Lamb, Shampoo  # noqa: E402

PROBLEM = "relu1d-x2:width=3"
SEEDS = torch.tensor([4, 9, 17, 33, 40])


def engine_params(entry, seeds) -> dict:
    cfg = RunConfig(steps=15, dtype=torch.float64)
    records, _ = train_cell(make(PROBLEM), entry, {"lr": 1e-2}, seeds, cfg, keep_params=True)
    return {k: v for k, v in records.items() if k.startswith("param.")}


@pytest.mark.parametrize(
    "spec,path",
    [
        ("pytorch_optimizer:Shampoo", "vmapped"),
        ("pytorch_optimizer:LARS", "vmapped"),
        # LAMB branches on a tensor's value (weight_norm == 0): run split where seeds disagree
        ("pytorch_optimizer:Lamb", "vmapped"),
    ],
)
def test_probe_path_and_it_equals_the_one_seed_path(spec, path):
    entry = checked_entry(spec, {"lr": 1e-2})
    assert entry.path == path
    got = engine_params(entry, SEEDS)
    alone = engine_params(dataclasses.replace(entry, path="one-seed"), SEEDS)
    for key, value in alone.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-12, atol=1e-13)


def stacked_problem(seeds: int = 5, steps: int = 6):
    g = torch.Generator().manual_seed(0)
    shapes = [(seeds, 4), (seeds, 4, 3), (seeds,)]
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    grads = [
        [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes] for _ in range(steps)
    ]
    return start, grads


@pytest.mark.parametrize("cls", [Shampoo, Lamb])
def test_vmapped_optimizer_equals_one_optimizer_per_seed(cls):
    """Stacked [S, ...] parameters stepped by VmappedOptimizer equal S separate instances of
    the plug-in, vmap running every step (LAMB's branch on a norm included: one seed's
    matrix starts at zero, so the seeds disagree on it and are split); its tensor state
    carries the seed dimension."""
    start, grads = stacked_problem()
    start[1][2] = 0.0  # LAMB: weight_norm == 0 for this seed only
    params = [t.clone().requires_grad_(True) for t in start]
    opt = VmappedOptimizer(cls, params, {"lr": 1e-2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in grads:
            for p, grad in zip(params, step, strict=True):
                p.grad = grad.clone()
            opt.step()
    failed = [w for w in caught if VMAP_FAILED in str(w.message)]
    assert (len(failed), opt.fallback) == (0, "")
    assert (opt.splits > 0) == (cls is Lamb)
    for s in range(start[0].shape[0]):
        own = [t[s].clone().requires_grad_(True) for t in start]
        alone = cls(own, lr=1e-2)
        for step in grads:
            for p, grad in zip(own, step, strict=True):
                p.grad = grad[s].clone()
            alone.step()
        for p, q in zip(params, own, strict=True):
            torch.testing.assert_close(p.detach()[s], q.detach(), rtol=1e-12, atol=1e-13)
    for p in params:
        for value in opt.state[p].values():
            if isinstance(value, torch.Tensor):
                assert value.shape[0] == p.shape[0]


def test_a_scheduler_changes_the_learning_rate_the_plugin_sees():
    start, grads = stacked_problem(steps=3)
    runs = []
    for lr_after_first in (1e-2, 0.0):
        params = [t.clone().requires_grad_(True) for t in start]
        opt = VmappedOptimizer(Shampoo, params, {"lr": 1e-2})
        for i, step in enumerate(grads):
            for p, grad in zip(params, step, strict=True):
                p.grad = grad.clone()
            opt.step()
            if i == 0:
                opt.param_groups[0]["lr"] = lr_after_first
                after_first = [p.detach().clone() for p in params]
        runs.append((after_first, [p.detach().clone() for p in params]))
    (_, moved), (frozen_at, frozen) = runs
    assert all(torch.equal(a, b) for a, b in zip(frozen_at, frozen, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(frozen, moved, strict=True))
