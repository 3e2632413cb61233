"""The best-known search (benchmarks/best_known.py): its value is attained by a network it
found, L-BFGS never makes it worse, and recording only ever lowers a landscape's value."""

import json

import numpy as np
import torch

from benchmarks import best_known

SPEC = "deep-target:arch=1-3-3-1,points=16,init=xavier,sampled=true"
LANDSCAPE = "deep-target:arch=1-3-3-1,points=16"


def test_search_keeps_the_lowest_risk_and_says_how_it_was_found():
    result = best_known.multi_start(SPEC, seeds=4, steps=40, lrs=[0.01], polish_best=2)
    assert result.adam.shape == (4,) and result.polished.shape == (2,)
    assert result.best == min(np.nanmin(result.adam), result.polished.min())
    assert result.polished.min() <= np.sort(result.adam)[0]  # L-BFGS starts at the best
    assert np.isfinite(result.fine) and "finer grid" in result.spread()


def test_polish_returns_a_network_with_the_risk_it_reports():
    from problems.registry import make

    problem = make(LANDSCAPE)
    start = problem.init(torch.arange(1), torch.float64, torch.device("cpu"))
    value, params = best_known.polish(problem, start, iterations=50)
    assert value == float(problem.risk(params)[0]) <= float(problem.risk(start)[0])


def test_record_keys_by_landscape_and_only_lowers(tmp_path, monkeypatch):
    path = tmp_path / "best_known.json"
    monkeypatch.setattr(best_known, "BEST_KNOWN", path)
    assert best_known.record(SPEC, 0.5, "first")
    assert not best_known.record(LANDSCAPE, 0.7, "worse")
    assert best_known.record(LANDSCAPE + ",init=normal", 0.2, "better")
    assert json.loads(path.read_text()) == {LANDSCAPE: {"value": 0.2, "provenance": "better"}}
