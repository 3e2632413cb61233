import dataclasses

from benchmarks import reproduce, suites
from benchmarks.runner import run_cell


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
