import math

import numpy as np
import pytest

from benchmarks import published, reproduce, suites
from benchmarks.runner import run_cell
from benchmarks.suites import Cell


@pytest.mark.parametrize("quick,cells", [(True, 3), (False, 14)])
def test_safran_shamir_suite_is_the_papers_protocol(quick, cells):
    suite = reproduce.REPRODUCTIONS["safran-shamir-2018"].suite(quick)
    expanded = suites.expand(suite)
    assert len(expanded) == cells
    for cell in expanded:
        assert (cell.optimizer, cell.hp, cell.dtype) == ("gd", {"lr": 0.1}, "float64")
        # max_i ||2 pi grad_{w_i} F|| <= 1e-9
        assert cell.stop == {"grad_tol": pytest.approx(1e-9 / (2 * math.pi))}
    assert expanded[0].seeds == (200 if quick else published.RUNS)


def test_compare_counts_spurious_runs_and_groups_their_families():
    """Seeds 160..191 of k = n = 7 hold three spurious end points (tests/benchmarks/data):
    the comparison counts them and groups their stored final W into one family of strict
    local minima."""
    cell = Cell(
        "gauss-relu:k=7",
        "gd",
        {"lr": 0.1},
        steps=30000,
        seed_start=160,
        seeds=32,
        dtype="float64",
        hessian=0,
        stop={"grad_tol": reproduce.SAFRAN_SHAMIR_STOP},
        end_points=True,
    )
    doc = {"cells": [run_cell(cell)]}
    result = reproduce.REPRODUCTIONS["safran-shamir-2018"].compare(doc)
    (row,) = result["rows"]
    assert (row["k"], row["n"], row["measured"], row["runs"]) == (7, 7, 3, 32)
    # 3/32 against the paper's 55/1000: two-sided Fisher p = 0.419
    assert row["published_percent"] == 5.5 and row["verdict"] == "consistent"
    assert row["p_value"] == pytest.approx(0.419, abs=1e-3)
    assert row["problem"] == "gauss-relu:k=7,n=7"
    (family,) = result["families"]["gauss-relu:k=7,n=7"]
    assert family["count"] == 3 and family["verdict"] == "strict minimum"
    seeds, risks = doc["cells"][0]["records"]["seed"], reproduce.final_risks(doc["cells"][0])
    risk = dict(zip(seeds, risks, strict=True))
    assert all(160 <= s < 192 and risk[s] >= 1e-3 for s in family["members"])  # seed indices
    assert family["risk_mean"] == pytest.approx(0.0232027, abs=1e-6)
    text = reproduce.table(result)
    assert "gauss-relu:k=7,n=7" in text and text.startswith("problem")  # rate rows: a header


def test_families_group_every_spurious_run():
    """No cap on the runs grouped: 450 spurious end points, copies of two minima under random
    neuron and coordinate permutations (W -> P W Q^T), make two families of 300 and 150."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2, 3, 3))
    points, risks = [], []
    for i in range(450):
        w = base[int(i % 3 == 2)]
        points.append(w[rng.permutation(3)][:, rng.permutation(3)])
        risks.append(0.02 if i % 3 == 2 else 0.01)
    cell = {
        "records": {"seed": list(range(1000, 1450)), "final_risk": risks},
        "end_points": {"w": np.array(points).tolist()},
    }
    families, undecided = reproduce.spurious_families(cell, 3)
    assert sorted(f["count"] for f in families) == [150, 300] and undecided == 0
    assert sorted(m for f in families for m in f["members"]) == list(range(1000, 1450))


def test_an_entry_the_paper_does_not_state_names_no_test():
    cell = {
        "problem_info": {"options": {"k": 12, "n": 13}},
        "records": {"seed": [0, 1], "final_risk": [0.0, 0.0], "stop_reason": ["grad", "grad"]},
        "config": {"steps": 30000},
    }
    (row,) = reproduce._safran_shamir_compare({"cells": [cell]})["rows"]
    assert (row["verdict"], row["test"]) == ("not stated", "")


def test_safran_shamir_says_how_cut_off_runs_bound_the_rate():
    """Cut-off runs below the threshold are not spurious for good; those above it are counted
    spurious but may still descend, so they bound the rate from above."""
    cell = {
        "config": {"steps": 30000},
        "records": {"stop_reason": ["budget", "budget", "budget", "grad_tol", "budget"]},
    }
    risk = np.array([1e-6, 0.0251, 1e-4, 0.0251, np.nan])
    note = reproduce._cut_off_gauss_note("gauss-relu:k=6,n=7", cell, risk)
    assert "3 run(s) had not met the stopping rule after 30000 steps" in note  # NaN: diverged
    assert "2 are below 0.001 (not spurious for good) and 1 at or above" in note


def test_cheridito_runs_dead_at_init_all_end_at_the_constant_network():
    cell = Cell(
        "relu1d-affine:width=2",
        "gd",
        {"lr": 0.03},
        steps=3000,
        seeds=64,
        dtype="float64",
        hessian=0,
        stop={"grad_tol": "problem", "target": True},
    )
    result = reproduce.REPRODUCTIONS["cheridito-2024"].compare({"cells": [run_cell(cell)]})
    (row,) = result["rows"]
    assert row["published_percent"] == pytest.approx(100 * (3 / 8) ** 2)
    assert row["dead_at_init"] > 0  # (3/8)^2 of 64 seeds: about 9
    assert row["rate"] == pytest.approx(row["dead_at_init"] + row["died_in_training"])
    assert row["rate"] >= row["dead_at_init"]
    assert row["verdict"] == "consistent"  # every all-dead run stayed at the constant
    assert "at the constant network" in reproduce.table(result)


def _affine_cell(lr: float, died: list[bool]) -> dict:
    """A width-1 cheridito cell whose runs end at the constant network when ``died``, their
    neuron alive at initialization (so they died in training)."""
    return {
        "config": {"hp": {"lr": lr}},
        "problem_info": {"options": {"width": 1}},
        "records": {
            "seed": list(range(len(died))),
            "fate": ["level" if d else "global" for d in died],
            "level": ["R*_0=constant" if d else None for d in died],
            "dead_neurons_init": [0] * len(died),
        },
    }


@pytest.mark.parametrize(
    "small_step_died,says",
    [(10, "the excess shrinks as the step goes to 0"), (40, "does not shrink significantly")],
)
def test_cheridito_tests_whether_the_excess_shrinks_with_the_step(small_step_died, says):
    """The step grid shares its seeds: 40 of 200 runs died in training at the large step and
    ``small_step_died`` of those same runs at the small one (paired exact McNemar test)."""
    large = _affine_cell(0.03, [i < 40 for i in range(200)])
    small = _affine_cell(0.003, [i < small_step_died for i in range(200)])
    middle = _affine_cell(0.01, [False] * 200)  # only the extremes are compared
    (note,) = reproduce._cheridito_step_notes({"cells": [small, middle, large]})
    assert says in note and "20.0% at step 0.03" in note
    assert f"{100 * small_step_died / 200:.1f}% at step 0.003" in note


@pytest.mark.parametrize(
    "unconverged_risk,says",
    [(0.0003, "the constant share is final"), (0.05, "could still end at the constant network")],
)
def test_cheridito_says_whether_cut_off_runs_could_still_reach_the_constant(unconverged_risk, says):
    """A run cut off far below the constant network's risk (alpha^2/12) cannot end there; one
    still near it could, and the note must not call the share final then."""
    cell = {
        "problem": "relu1d-affine:width=2",
        "config": {"hp": {"lr": 0.003}},
        "problem_info": {"levels": [["global", 0.0], ["R*_0=constant", 1 / 12]]},
        "records": {
            "fate": ["level", "unconverged", "global"],
            "final_risk": [1 / 12, unconverged_risk, 0.0],
        },
    }
    note = reproduce._cheridito_unconverged_note(cell, 1)
    assert says in note and f"{unconverged_risk:.3g}" in note


@pytest.mark.parametrize(
    "won,cut_off,final",
    [(0, 30, True), (370, 40, True), (380, 100, False)],  # of 1000 runs; bound (5/8)^2 = 39.1%
)
def test_jentzen_riekert_says_whether_cut_off_runs_could_change_the_verdict(won, cut_off, final):
    """Runs cut off with every neuron alive might still reach the optimum: the verdict is
    final only if it holds with all of them counted as global."""
    cell = {"problem": "relu1d-teacher:width=2", "optimizer": {"name": "sgd"}}
    outcome = reproduce._if_cut_off_runs_won(cell, cut_off, won, 1000, (5 / 8) ** 2)
    assert outcome["final"] is final
    assert outcome["rate"] == pytest.approx((won + cut_off) / 1000)
    (note,) = reproduce._cut_off_notes([outcome])
    assert ("verdicts are final" in note) is final
    assert ("needs a longer budget" in note) is not final


@pytest.mark.parametrize("quick,widths", [(True, 3), (False, 5)])
def test_jentzen_riekert_trains_with_the_default_suites_end_point_budgets(quick, widths):
    """A failure must be an end point, not a cut-off run: each optimizer gets the default
    suite's learning rate, schedule and own budget (SGD's step decay over 24000 steps,
    RMSprop's 40000-step cosine), on every width."""
    cells = suites.expand(reproduce.REPRODUCTIONS["jentzen-riekert-2024"].suite(quick))
    default = suites.expand(suites.load("default"))
    budgets = {(c.optimizer, c.steps, c.schedule, c.hp["lr"]) for c in default}
    assert {(c.optimizer, c.steps, c.schedule, c.hp["lr"]) for c in cells} == budgets
    assert len(cells) == 5 * widths
    assert {c.steps for c in cells if c.optimizer == "sgd"} == {24000}


def test_jentzen_riekert_splits_every_failed_run_once():
    cell = Cell(
        "relu1d-teacher:kinks=2,width=2",
        "momentum",
        {"lr": 0.05},
        steps=2000,
        seeds=64,
        hessian=0,
        stop={"grad_tol": "problem"},
    )
    result = reproduce.REPRODUCTIONS["jentzen-riekert-2024"].compare({"cells": [run_cell(cell)]})
    (row,) = result["rows"]
    assert row["published_percent"] == pytest.approx(100 * (5 / 8) ** 2)  # (1 - 3/8)^H
    parts = row["rate"] + row["dead_at_init"] + row["died_in_training"] + row["misplaced"]
    assert parts == pytest.approx(1.0)
    assert row["dead_at_init"] > 0  # 1 - (5/8)^2 of the seeds start with a dead neuron
    assert row["rate"] <= 1 - row["dead_at_init"]  # a dead neuron never reaches the optimum
    assert "misplaced" in reproduce.table(result)


@pytest.mark.parametrize("source", ["file", "in process"])
def test_a_degenerate_family_prints_without_eigenvalues(source):
    from benchmarks import families

    if source == "file":  # as read back from a results file
        family = {"risk_mean": 0.05, "count": 1, "verdict": "degenerate", "eig_min": None}
    else:  # every neuron on a teacher axis: F is not smooth there
        (family,) = families.describe(families.group(np.eye(7)[None], np.array([0.05])), 7)
    text = reproduce.table({"rows": [], "families": {"gauss-relu:k=9,n=9": [family]}})
    assert "family F = 0.050000 x 1 (degenerate)" in text
