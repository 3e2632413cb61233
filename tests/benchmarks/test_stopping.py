import numpy as np
import pytest
import torch
from toys import cycle_problem, quadratic_problem, with_closed_form

from benchmarks.engine import RunConfig, train_cell
from benchmarks.stopping import StopError, StopRules, parse
from optimizers.registry import BUILTINS
from problems.registry import make

SEEDS = torch.arange(12)  # curvatures 0.5 .. 1.6


@pytest.mark.parametrize("path", ["autograd", "closed form"])
@pytest.mark.parametrize("name,hp", [("momentum", {"lr": 0.1}), ("adam", {"lr": 0.05})])
def test_a_stopped_seed_keeps_its_exact_parameters(path, name, hp):
    """Momentum and Adam would keep moving a seed whose gradient is zeroed; the engine holds
    a stopped seed exactly where it stopped: the parameters a run of exactly that many steps
    ends with, bit for bit."""
    problem = quadratic_problem()
    if path == "closed form":
        problem = with_closed_form(problem)
    cfg = RunConfig(steps=3000, dtype=torch.float64, stop=StopRules(grad_tol=1e-3))
    rec, _ = train_cell(problem, BUILTINS[name], hp, SEEDS, cfg, keep_params=True)
    assert set(rec["stop_reason"]) == {"grad"}
    assert np.all(rec["stationarity"] <= 1e-3)
    assert len(set(rec["stop_step"].tolist())) > 1  # seeds stop at their own steps
    for i in (0, 5, 11):
        steps = int(rec["stop_step"][i])
        plain = RunConfig(steps=steps, dtype=torch.float64)
        alone, _ = train_cell(
            problem, BUILTINS[name], hp, SEEDS[i : i + 1], plain, keep_params=True
        )
        assert alone["param.x"][0, 0] == rec["param.x"][i, 0]
        assert alone["final_risk"][0] == rec["final_risk"][i]


def test_target_rule_stops_at_the_first_hit():
    problem = quadratic_problem()
    cfg = RunConfig(steps=500, dtype=torch.float64, stop=StopRules(target=True))
    rec, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 0.5}, SEEDS, cfg)
    assert set(rec["stop_reason"]) == {"target"}
    assert np.array_equal(rec["stop_step"], rec["hit_step"])
    assert np.all(rec["final_risk"] <= problem.optimum + problem.tol)


def test_plateau_rule_fires_on_a_flat_run_only():
    problem = quadratic_problem()
    rules = StopRules(plateau_window=50, plateau_rtol=1e-6)
    cfg = RunConfig(steps=400, dtype=torch.float64, stop=rules)
    flat, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 1e-12}, SEEDS, cfg)
    assert set(flat["stop_reason"]) == {"plateau"}
    assert set(flat["stop_step"].tolist()) == {50}  # first comparison: step 50 vs step 0
    moving, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 1e-3}, SEEDS, cfg)
    assert set(moving["stop_reason"]) == {"budget"}
    assert set(moving["stop_step"].tolist()) == {400}


def test_plateau_rule_does_not_certify_a_period_two_orbit():
    """GD at lr 3 on cycle_problem ends on a 2-cycle: the risk every other step is the same,
    so the window comparison alone (an even window) fires; the one-step comparison must not."""
    rules = StopRules(plateau_window=50, plateau_rtol=1e-6)
    cfg = RunConfig(steps=400, dtype=torch.float64, stop=rules)
    rec, _ = train_cell(cycle_problem(), BUILTINS["sgd"], {"lr": 3.0}, SEEDS, cfg)
    assert set(rec["stop_reason"]) == {"budget"}
    assert np.all(rec["stationarity"] > 0.8)  # still on the orbit, far from stationary


@pytest.mark.parametrize("min_scale,reasons", [(0.0, {"plateau"}), (None, {"budget"})])
def test_plateau_rule_does_not_certify_a_run_frozen_by_its_schedule(
    monkeypatch, min_scale, reasons
):
    """SGD on the quadratics with a cosine schedule: the risk falls by 5-16% per window at the
    full rate and stops moving only as the rate nears 0, with the gradient still large. A
    plateau there is the schedule's doing; without the learning-rate guard (min_scale 0) the
    rule certifies it (at steps 850-900 of 1000)."""
    if min_scale is not None:
        monkeypatch.setattr("benchmarks.recorders.PLATEAU_MIN_LR_SCALE", min_scale)
    rules = StopRules(plateau_window=50, plateau_rtol=5e-3)
    cfg = RunConfig(steps=1000, dtype=torch.float64, stop=rules, schedule="cosine")
    rec, _ = train_cell(quadratic_problem(), BUILTINS["sgd"], {"lr": 1e-3}, SEEDS, cfg)
    assert set(rec["stop_reason"]) == reasons
    assert np.all(rec["stationarity"] > 0.3)  # nowhere near stationary either way


def test_a_chunk_ends_when_all_its_seeds_have_stopped():
    problem = quadratic_problem()
    cfg = RunConfig(steps=10**6, dtype=torch.float64, stop=StopRules(grad_tol=1e-8))
    rec, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 0.5}, SEEDS, cfg)
    assert rec["stop_step"].max() < 200  # the budget is a maximum, not a duration


def test_sampled_problems_check_the_exact_gradient_every_k_steps():
    problem = make("relu1d-affine:width=2,sampled=true,batch=64")
    rules = StopRules(grad_tol=1e-3, every=25)
    cfg = RunConfig(steps=2000, dtype=torch.float64, stop=rules)
    rec, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 0.05}, torch.arange(16), cfg)
    stopped = rec["stop_reason"] == "grad"
    assert stopped.any()
    assert np.all(rec["stop_step"][stopped] % 25 == 0)
    assert np.all(rec["stationarity"][stopped] <= 1e-3)


def test_diverged_seeds_are_stopped_with_their_reason():
    problem = quadratic_problem()  # SGD with lr 1 diverges iff k > 2: seeds 16+
    cfg = RunConfig(steps=300, dtype=torch.float64, stop=StopRules(grad_tol=1e-6))
    rec, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 1.0}, torch.arange(40), cfg)
    diverged = rec["diverged_step"] >= 0
    assert np.all(rec["stop_reason"][diverged] == "diverged")
    assert np.array_equal(rec["stop_step"][diverged], rec["diverged_step"][diverged])
    assert not set(rec["stop_reason"][~diverged]) - {"grad", "budget"}


@pytest.mark.parametrize(
    "spec,expected",
    [
        (None, StopRules()),
        ("grad_tol=problem", StopRules(grad_tol="problem")),
        ("grad_tol=1e-6,target=true", StopRules(grad_tol=1e-6, target=True)),
        ({"plateau_window": 500, "plateau_rtol": 1e-7}, StopRules(None, False, 500, 1e-7)),
        ({"grad_tol": 1.59e-10, "every": 10}, StopRules(grad_tol=1.59e-10, every=10)),
    ],
)
def test_parse_stop_rules(spec, expected):
    assert parse(spec) == expected


@pytest.mark.parametrize(
    "spec,match",
    [
        ("grad_tol=-1", "grad_tol must be a number >= 0"),
        ("grad_tol=nan", "grad_tol must be a number"),
        ("patience=3", "unknown stop rule"),
        ("plateau_window=2.5", "must be an integer"),
        ("target=maybe", "target must be true or false"),
        ("grad_tol", "key=value"),
    ],
)
def test_bad_stop_rules_are_one_line_errors(spec, match):
    with pytest.raises(StopError, match=match) as err:
        parse(spec)
    assert "\n" not in str(err.value)


def test_cells_report_the_unconverged_share_against_the_budget():
    from benchmarks.runner import run_cell
    from benchmarks.suites import Cell

    cell = Cell(
        "relu1d-affine:width=2",
        "momentum",
        {"lr": 0.05},
        steps=1500,
        seeds=64,
        hessian=0,
        stop={"grad_tol": "problem"},
    )
    result = run_cell(cell)
    curve = result["checkpoints"]["fates"]["unconverged"]
    assert curve[0] == 1.0  # nobody has converged before the first step
    assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))
    assert curve[-1] == pytest.approx(result["metrics"]["unconverged_share"])
    assert (
        run_cell(Cell("relu1d-affine:width=2", "sgd", steps=5, seeds=4, hessian=0))["checkpoints"][
            "fates"
        ]
        == {}
    )  # without rules a run cannot be called converged before its end
