import dataclasses
import json

import pytest
import torch

from benchmarks import gate, results, runner, suites
from benchmarks.cli import main
from optimizers import registry


class BrokenAdam(torch.optim.Adam):
    """A planted regression: Adam whose update is 100 times too small."""

    def __init__(self, params, lr=1e-3, **kw):
        super().__init__(params, lr=lr / 100, **kw)


SUITE = {
    "name": "gate",
    "problems": ["relu1d-affine:width=2"],
    "optimizers": [{"name": "adam", "lr": 0.02}],
    "seeds": 64,
    "steps": 600,
}


def run_suite(path):
    runner.run(suites.expand(SUITE), results.new_document(SUITE), path, workers=1, progress=False)
    return results.read(path)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return run_suite(tmp_path_factory.mktemp("gate") / "base.json")


def test_unchanged_code_passes(baseline, tmp_path):
    assert baseline["cells"][0]["metrics"]["success_rate"] > 0.3
    assert gate.check(baseline, run_suite(tmp_path / "again.json")) == []


def test_planted_regression_fails(baseline, tmp_path, monkeypatch):
    broken = dataclasses.replace(registry.BUILTINS["adam"], factory=BrokenAdam)
    monkeypatch.setitem(registry.BUILTINS, "adam", broken)
    new = run_suite(tmp_path / "broken.json")
    lines = gate.check(baseline, new)
    assert all(line.startswith("REGRESSION relu1d-affine:width=2|adam") for line in lines)
    assert any("success rate fell" in line for line in lines)
    results.write(baseline, tmp_path / "base.json")
    code = main(["check", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "broken.json")])
    assert code == 1


def test_small_noise_passes_and_missing_cells_fail(baseline):
    noisy = json.loads(json.dumps(baseline))
    rec = noisy["cells"][0]["records"]
    flip = rec["fate"].index("global")
    rec["fate"][flip] = "unconverged"  # one seed lost: below min_drop, not significant
    assert gate.check(baseline, noisy) == []
    empty = {**noisy, "cells": []}
    assert gate.check(baseline, empty)[0].startswith("MISSING")


def test_gap_regression_is_caught(baseline):
    worse = json.loads(json.dumps(baseline))
    rec = worse["cells"][0]["records"]
    rec["gap"] = [None if g is None else g * 10 + 1e-3 for g in rec["gap"]]
    lines = gate.check(baseline, worse)
    assert any("median gap rose" in line for line in lines)
