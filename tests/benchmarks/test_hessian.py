import numpy as np
import pytest
import torch

from benchmarks import hessian
from benchmarks.runner import run_cell
from benchmarks.suites import Cell
from problems.base import Problem
from problems.registry import make


def quadratic(eigs):
    d = torch.tensor(eigs, dtype=torch.float64)

    def risk(p):
        return 0.5 * (d * p["x"] ** 2).sum(dim=1)

    return Problem("q", "test", "", "", None, risk, None, 0.0, "exact", "", 1e-9)


@pytest.mark.parametrize(
    "eigs,kind",
    [([1.0, 2.0, 3.0], "min"), ([1.0, -0.5, 3.0], "saddle"), ([1.0, 0.0, 3.0], "degenerate")],
)
def test_dense_eigenvalues_and_verdicts(eigs, kind):
    low, scale = hessian.extreme_eigenvalues(quadratic(eigs), {"x": np.zeros((1, 3))}, 0)
    assert low == pytest.approx(min(eigs)) and scale == pytest.approx(3.0)
    assert hessian.verdict(low, scale) == kind


def test_lanczos_agrees_with_dense(monkeypatch):
    p = make("relu1d-x2:width=6")
    params = {
        k: v.numpy() for k, v in p.init(torch.arange(2), torch.float64, torch.device("cpu")).items()
    }
    dense = hessian.extreme_eigenvalues(p, params, 1)
    monkeypatch.setattr(hessian, "DENSE_LIMIT", 0)
    lanczos = hessian.extreme_eigenvalues(p, params, 1)
    assert lanczos[0] == pytest.approx(dense[0], rel=1e-4, abs=1e-8)
    assert lanczos[1] == pytest.approx(dense[1], rel=1e-4)


def test_runner_labels_critical_runs():
    r = run_cell(
        Cell("relu1d-x2:width=4", "adam", {"lr": 0.01}, steps=1500, seeds=64, dtype="float64")
    )
    fates, labels = r["records"]["fate"], r["records"]["level"]
    crit = [lab for f, lab in zip(fates, labels, strict=True) if f == "critical"]
    assert all(lab in ("min", "degenerate") for lab in crit)
    computed = np.isfinite(r["records"]["hessian_min"])
    assert computed.tolist() == [f in ("critical", "saddle") for f in fates]
