"""The jentzen-2022 reproduction (Ibragimov, Jentzen & Riekert 2022, arXiv:2212.13111,
Section 4): its suite is the paper's protocol, its comparison counts what it claims."""

import math
from types import SimpleNamespace

import pytest

from benchmarks import reproduce
from reports.figures import Context, Empty, Panel, ijr_histograms

REP = reproduce.REPRODUCTIONS["jentzen-2022"]


def test_quick_suite_expands_to_every_setting_with_its_protocol():
    suite = REP.suite(True)
    cells = reproduce.expand(suite)
    setting_of = reproduce._settings_by_cell(suite)
    assert sorted(set(setting_of.values())) == list(range(1, 13))
    assert len(cells) == len(setting_of) == sum(len(s.quick_widths) for s in reproduce.IJR_SETTINGS)
    by_setting = {}
    for cell in cells:
        by_setting.setdefault(setting_of[cell.id], []).append(cell)
        assert cell.stop == {} and cell.seeds == reproduce.IJR_QUICK["seeds"]
    first = by_setting[1][0]
    assert "act=clip" in first.problem and "train=biases" in first.problem
    assert "init=ijr1" in first.problem and first.dtype == "float64"
    assert first.schedule.startswith("step") and first.hp == {"lr": 0.01}
    assert "train=inner_biases" in by_setting[2][0].problem
    assert by_setting[3][0].schedule.startswith("power") and by_setting[3][0].hp == {"lr": 0.001}
    assert by_setting[6][0].steps == 5 * by_setting[7][0].steps
    for n in (11, 12):
        (cell,) = by_setting[n]
        assert cell.optimizer == "adam" and cell.hp["lr"] == 0.01


def test_full_suite_is_the_papers_protocol():
    """The full suite's parts, without expanding (widths up to 1000 need the wide reference
    levels): 300 runs, the paper's steps, widths and batches."""
    parts = {p["setting"]: p for p in REP.suite(False)["parts"]}
    assert all(p["seeds"] == 300 for p in parts.values())
    assert parts[6]["steps"] == 50000 and parts[1]["steps"] == 10000
    assert [p.split(",")[0] for p in parts[1]["problems"]] == [
        f"relu1d-root4:width={h}" for h in (10, 100, 1000)
    ]
    assert all("sampled=true,batch=1024" in p for p in parts[4]["problems"])
    assert "arch=1-32-32-32-1" in parts[9]["problems"][0]


def fake_doc(risks: list[list[float | None]]) -> dict:
    """A finished-looking document: the quick suite's first two cells (setting 1) with
    given final risks, R* = 0.1 and tol = 1e-3."""
    suite = REP.suite(True)
    cells = reproduce.expand(suite)[:2]
    return {
        "suite": suite,
        "cells": [
            {
                "id": cell.id,
                "problem": cell.problem,
                "optimizer": {"name": cell.optimizer},
                "problem_info": {
                    "optimum": 0.1,
                    "tol": 1e-3,
                    "provenance": "best_known",
                    "options": {"width": w, "optimum_lower_bound": 0.05},
                },
                "records": {"final_risk": r},
            }
            for cell, w, r in zip(cells, (2, 4), risks, strict=True)
        ],
    }


def test_compare_counts_global_runs_and_the_shares_near_the_optimum():
    doc = fake_doc([[0.1005, 0.105, 0.2, 0.5, None, 0.09], [0.3, 0.3, 0.3, 0.2]])
    result = REP.compare(doc)
    first, second = result["rows"]
    assert (first["setting"], first["width"], first["measured"], first["runs"]) == (1, 2, 2, 5)
    assert first["verdict"] == "not consistent" and first["diverged"] == 1
    assert (first["within_1pct"], first["within_10pct"]) == (0.4, 0.6)
    assert first["median_risk"] == pytest.approx(0.105)
    assert first["interval"][0] < 0.4 < first["interval"][1]
    assert first["below_optimum"] == 1 and first["lower_bound"] == 0.05
    assert second["measured"] == 0 and second["verdict"] == "consistent"
    assert (second["width"], second["within_10pct"], second["below_optimum"]) == (4, 0.0, 0)
    assert any("beat the best known" in n for n in result["notes"])
    assert any("diverged" in n for n in result["notes"])
    text = reproduce.table(result)
    assert "setting  1 H=2" in text and "within 10% of R*: 60%" in text


def test_histogram_figure_draws_for_the_reproduction_only():
    doc = fake_doc([[0.1005, 0.105, 0.2, 0.5], [0.3, 0.3, 0.3, 0.09]])
    doc["reproduction"] = {"name": "jentzen-2022", **REP.compare(doc)}
    panel = ijr_histograms(Context(SimpleNamespace(doc=doc)))
    assert isinstance(panel, Panel) and {"H=2", "H=4"} <= set(panel.colours)
    assert panel.colours["H=2"] != panel.colours["H=4"]
    other = ijr_histograms(Context(SimpleNamespace(doc={"cells": []})))
    assert isinstance(other, Empty)
    assert not math.isnan(doc["reproduction"]["rows"][0]["rate"])
