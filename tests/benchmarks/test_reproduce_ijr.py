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


@pytest.mark.parametrize(
    "provenance,verdict",
    # a run at a best-known R* is not shown to be global: it neither refutes nor confirms
    [("exact", "not consistent"), ("computed", "not consistent"), ("best_known", "undetermined")],
)
def test_a_run_at_the_optimum_refutes_the_prediction_only_when_the_optimum_is_known(
    provenance, verdict
):
    doc = fake_doc([[0.1005, 0.3], [0.3, 0.3]])
    for cell in doc["cells"]:
        cell["problem_info"]["provenance"] = provenance
    result = REP.compare(doc)
    first, second = result["rows"]
    assert first["measured"] == 1 and first["verdict"] == verdict
    assert second["verdict"] == "consistent"
    assert any("undetermined" in n for n in result["notes"]) is (verdict == "undetermined")


def test_compare_counts_global_runs_and_the_shares_near_the_optimum():
    doc = fake_doc([[0.1005, 0.105, 0.2, 0.5, None, 0.09], [0.3, 0.3, 0.3, 0.2]])
    result = REP.compare(doc)
    first, second = result["rows"]
    assert (first["setting"], first["width"], first["measured"], first["runs"]) == (1, 2, 2, 5)
    assert first["verdict"] == "undetermined" and first["diverged"] == 1
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
    assert "95% interval" not in text  # the rate table's header describes none of these rows


def test_histogram_figure_draws_for_the_reproduction_only():
    doc = fake_doc([[0.1005, 0.105, 0.2, 0.5], [0.3, 0.3, 0.3, 0.09]])
    doc["reproduction"] = {"name": "jentzen-2022", **REP.compare(doc)}
    panel = ijr_histograms(Context(SimpleNamespace(doc=doc)))
    assert isinstance(panel, Panel) and {"H=2", "H=4"} <= set(panel.colours)
    assert panel.colours["H=2"] != panel.colours["H=4"]
    other = ijr_histograms(Context(SimpleNamespace(doc={"cells": []})))
    assert isinstance(other, Empty)
    assert not math.isnan(doc["reproduction"]["rows"][0]["rate"])


def test_deep_settings_get_the_recorded_best_known_risk_and_defined_shares():
    """Every deep setting's problem (quick widths) finds its landscape's value in
    problems/best_known.json, so its rows have R* > 0 and within-1%/10% shares."""
    from problems.registry import make

    suite = REP.suite(True)
    setting_of = reproduce._settings_by_cell(suite)
    cells = [c for c in reproduce.expand(suite) if setting_of[c.id] >= 6]
    assert {setting_of[c.id] for c in cells} == set(range(6, 13))
    doc_cells = []
    for cell in cells:
        info = make(cell.problem).info()
        assert info["optimum"] > 0 and info["provenance"] == "best_known", cell.problem
        assert "Adam" in info["provenance_detail"]  # the recorded search, not the fallback
        r_star = info["optimum"]
        doc_cells.append(
            {
                "id": cell.id,
                "problem": cell.problem,
                "optimizer": {"name": cell.optimizer},
                "problem_info": info,
                "records": {"final_risk": [1.005 * r_star, 1.05 * r_star, 3 * r_star, 10.0]},
            }
        )
    result = REP.compare({"suite": suite, "cells": doc_cells})
    assert len(result["rows"]) == len(cells)
    for row in result["rows"]:
        assert (row["within_1pct"], row["within_10pct"]) == (0.25, 0.5)
    assert not any("no best-known risk recorded" in n for n in result["notes"])


def test_setting_6_draws_every_weight_and_bias_from_a_standard_normal():
    parts = {p["setting"]: p for p in REP.suite(False)["parts"]}
    assert all("init=normal" in p and "bias=normal" in p for p in parts[6]["problems"])
    assert not any("bias=normal" in p for n in range(7, 13) for p in parts[n]["problems"])
