"""Conformance table: real optimizers nobody here wrote, through the engine, in float64.

For each row: the probe's step contract and path, that it runs, that the engine's result for a
few seeds equals the textbook loop (one model, its own parameter tensors, autograd, the
optimizer's step with a closure where it takes one, train()/eval() where it has them), and for
deterministic optimizers that the chosen path equals the one-seed path. Needs the test
dependencies pytorch-optimizer, torch-optimizer and schedulefree (pyproject's dev extra).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmarks.engine import RunConfig, has_modes, train_cell
from benchmarks.probe import checked_entry
from optimizers.registry import THIRD_PARTY
from optimizers.resolve import build, resolve
from problems.registry import make

PROBLEM = "relu1d-x2:width=3"
SEEDS = [20, 21, 22]
STEPS = 8
TOL = 1e-9

PO, F = "pytorch_optimizer", "optimizers.factories"
# spec -> expected path, closure, hessian-vector products (the specs and learning rates are
# optimizers.registry.THIRD_PARTY's)
EXPECTED = {
    f"{PO}:Lion": ("stacked", False, False),
    f"{PO}:Lamb": ("vmapped", False, False),
    f"{PO}:AdaBelief": ("stacked", False, False),
    f"{PO}:Prodigy": ("one-seed", False, False),
    f"{PO}:MADGRAD": ("stacked", False, False),
    f"{PO}:Ranger": ("vmapped", False, False),
    f"{PO}:SophiaH": ("per-seed", False, True),
    f"{F}:sam_adam": ("one-seed", True, False),
    f"{F}:gsam_adam": ("one-seed", True, False),
    f"{PO}:ScheduleFreeAdamW": ("stacked", False, False),
    "schedulefree:AdamWScheduleFree": ("stacked", False, False),
    f"{PO}:Shampoo": ("vmapped", False, False),
    f"{PO}:SOAP": ("vmapped", False, False),
    f"{F}:muon_adamw": ("vmapped", False, False),
    f"{PO}:Adan": ("stacked", False, False),
    f"{PO}:LARS": ("vmapped", False, False),
    f"{PO}:AdaHessian": ("per-seed", False, True),
    "torch_optimizer:Yogi": ("stacked", False, False),
    "torch_optimizer:DiffGrad": ("stacked", False, False),
    "Rprop": ("stacked", False, False),
    "LBFGS": ("one-seed", True, False),
}
TABLE = [(spec, {"lr": lr}, *EXPECTED[spec]) for spec, lr in THIRD_PARTY]


def test_every_third_party_optimizer_has_an_expectation():
    assert set(EXPECTED) == {spec for spec, _ in THIRD_PARTY}


def engine_params(entry, hp: dict, seeds: list[int]) -> dict[str, np.ndarray]:
    cfg = RunConfig(steps=STEPS, dtype=torch.float64)
    records, _ = train_cell(make(PROBLEM), entry, hp, torch.tensor(seeds), cfg, keep_params=True)
    assert np.isfinite(records["final_risk"]).all()
    return {k.removeprefix("param."): v for k, v in records.items() if k.startswith("param.")}


def textbook_params(entry, hp: dict, seed: int) -> dict[str, np.ndarray]:
    """One model trained the way the optimizer's documentation says: its own parameter tensors,
    autograd, step(closure) when it takes one, train() before and eval() after training."""
    problem = make(PROBLEM)
    init = problem.init(torch.tensor([seed]), torch.float64, torch.device("cpu"))
    params = {k: v[0].clone().requires_grad_(True) for k, v in init.items()}
    # the plug-in itself on this model's tensors, whatever path the engine batches it by
    opt = build(dataclasses.replace(entry, path="one-seed"), list(params.values()), hp)
    if has_modes(opt):
        opt.train()

    @torch.enable_grad()  # GSAM calls its closure under no_grad
    def closure():
        opt.zero_grad()
        loss = problem.risk({k: v.unsqueeze(0) for k, v in params.items()}).sum()
        if entry.hessian:  # as SophiaH's documentation: backward(create_graph=True)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            for p, g in zip(params.values(), grads, strict=True):
                p.grad = g
        else:
            loss.backward()
        return loss

    torch.manual_seed(seed)  # the engine's generator for a chunk starting at this seed
    for _ in range(STEPS):
        closure()  # SAM's documentation: the gradient first, then step(closure)
        opt.step(closure) if entry.closure else opt.step()
    if has_modes(opt):
        opt.eval()
    return {k: v.detach().numpy() for k, v in params.items()}


@pytest.mark.parametrize(("spec", "hp", "path", "closure", "hessian"), TABLE, ids=lambda x: x)
def test_real_optimizer_conforms(spec, hp, path, closure, hessian):
    entry = checked_entry(spec, hp, torch.float64)
    assert (entry.path, entry.closure, entry.hessian) == (path, closure, hessian)
    got = engine_params(entry, hp, SEEDS)
    for i, seed in enumerate(SEEDS):
        # one seed alone on the engine's one-seed path draws what the textbook loop draws
        alone = engine_params(dataclasses.replace(entry, path="one-seed"), hp, [seed])
        book = textbook_params(entry, hp, seed)
        for k in book:
            np.testing.assert_allclose(alone[k][0], book[k], rtol=0, atol=TOL, err_msg=k)
            if not hessian:  # Hutchinson draws depend on the batch: compared on the probe
                np.testing.assert_allclose(got[k][i], book[k], rtol=0, atol=TOL, err_msg=k)


def test_schedule_free_is_scored_at_its_evaluation_point():
    """The records hold the eval() point: training the same seeds without switching modes
    leaves the parameters elsewhere."""
    entry = checked_entry(f"{PO}:ScheduleFreeAdamW", {"lr": 1e-2}, torch.float64)
    scored = engine_params(entry, {"lr": 1e-2}, SEEDS)
    book = textbook_params(entry, {"lr": 1e-2}, SEEDS[0])
    problem = make(PROBLEM)
    init = problem.init(torch.tensor(SEEDS[:1]), torch.float64, torch.device("cpu"))
    params = {k: v[0].clone().requires_grad_(True) for k, v in init.items()}
    opt = build(resolve(f"{PO}:ScheduleFreeAdamW"), list(params.values()), {"lr": 1e-2})
    opt.train()
    for _ in range(STEPS):
        opt.zero_grad()
        problem.risk({k: v.unsqueeze(0) for k, v in params.items()}).sum().backward()
        opt.step()
    train_point = {k: v.detach().numpy() for k, v in params.items()}
    assert max(abs(scored[k][0] - train_point[k]).max() for k in book) > 1e-6
    for k in book:
        np.testing.assert_allclose(scored[k][0], book[k], rtol=0, atol=TOL)
