import dataclasses

import pytest
import torch

from benchmarks import reproduce, suites
from benchmarks.results import ResultsError
from benchmarks.runner import run_cell
from problems.registry import make


def test_quick_suite_builds_five_optimizers_on_the_planted_point():
    rep = reproduce.REPRODUCTIONS["petzka-2021"]
    cells = suites.expand(rep.suite(True))
    assert {c.optimizer for c in cells} == {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    assert {c.problem for c in cells} == {"planted-deep"}
    assert all(c.dtype == "float64" for c in cells)
    assert len(suites.expand(rep.suite(False))) == 5


def test_compare_runs_on_a_tiny_real_result():
    """A real cell (2-3-3-1 planted point, 32 seeds, 200 Adam steps) through the comparison:
    the construction's rows, then the escape row, whose counts add up."""
    rep = reproduce.REPRODUCTIONS["petzka-2021"]
    cell = suites.expand(rep.suite(True))[-1]
    cell = dataclasses.replace(cell, problem="planted-deep:h1=3,h2=3", seeds=32, steps=200)
    result = rep.compare({"cells": [run_cell(cell)]})
    fixed, (escape,) = result["rows"][:3], result["rows"][3:]
    assert [r["published"] for r in fixed] == [4.817, [0.0182, 0.0004], "local-min"]
    assert fixed[1]["verdict"] == "agrees" and fixed[2]["verdict"] == "agrees"
    assert escape["runs"] == 32 and 0 <= escape["measured"] <= 32
    low, high = escape["interval"]
    assert low <= escape["rate"] <= high
    assert escape["stayed"] + escape["measured"] / 32 <= 1
    text = reproduce.table(result)
    assert "escaped" in text and "wall time" in text


def test_sgd_rate_is_stable_at_the_planted_minimum():
    """GD is stable at a minimum only below 2 / (the Hessian's largest eigenvalue); above it
    (lr 0.1 here) every run was thrown out of the basin it is meant to test."""
    problem = make("planted-deep")
    start = problem.init(torch.tensor([0]), torch.float64, torch.device("cpu"))
    keys = [k for k in start if k not in problem.frozen]
    flat = torch.cat([start[k].reshape(-1) for k in keys])

    def risk(x):
        params, at = dict(start), 0
        for k in keys:
            params[k] = x[at : at + start[k].numel()].reshape(start[k].shape)
            at += start[k].numel()
        return problem.risk(params).sum()

    x = flat.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(risk(x), x, create_graph=True)
    v = torch.ones_like(flat)
    for _ in range(30):  # power iteration: the top eigenvalue is 100x the next one
        (hv,) = torch.autograd.grad(grad @ v, x, retain_graph=True)
        top, v = (v @ hv).item(), hv / hv.norm()
    rates = {
        c.optimizer: c.hp["lr"]
        for c in suites.expand(reproduce.REPRODUCTIONS["petzka-2021"].suite(False))
    }
    assert 20 < top < 35  # about 27.5
    assert rates["sgd"] < 2 / top < 0.1


def test_a_cell_without_the_planted_level_is_an_error_not_zero_escapes():
    info = {
        "options": {
            "small_loss": 4.8,
            "b1_eigenvalues": [0.02, 0.001],
            "splits": 40,
            "kind": "local-min",
            "max_d_relative": 1e-8,
        },
        "levels": [["global", 0.0]],
        "tol": 1e-7,
    }
    cell = {"problem": "planted-deep", "problem_info": info, "records": {"final_risk": [0.1]}}
    with pytest.raises(ResultsError, match="no 'planted' level"):
        reproduce.REPRODUCTIONS["petzka-2021"].compare({"cells": [cell]})
