import pytest

from benchmarks import suites


def test_builtin_suites_expand():
    for name in suites.builtin_suites():
        cells = suites.expand(suites.load(name))
        assert cells and len({c.id for c in cells}) == len(cells)


def test_lr_grid_expands_cells():
    suite = {
        "problems": ["relu1d-x2"],
        "optimizers": [{"name": "adam", "lr_grid": True}],
        "seeds": 4,
        "steps": 5,
    }
    cells = suites.expand(suite)
    assert sorted(c.hp["lr"] for c in cells) == sorted(suites.BUILTINS["adam"].lr_grid)


def test_an_optimizer_can_have_its_own_budget():
    """An optimizer that needs longer to reach its end points (AdaGrad's shrinking steps) gets
    its own `steps`; the others keep the suite's, and a budget-relative schedule (cosine)
    spans the optimizer's own budget."""
    suite = {
        "problems": ["relu1d-x2"],
        "optimizers": [
            {"name": "adagrad", "lr": 0.3, "steps": 300},
            {"name": "adam", "schedule": "cosine"},
            {"name": "sgd", "lr": 0.1, "steps": 40, "schedule": "cosine"},
        ],
        "steps": 100,
        "schedule": "power:exponent=0.1",
    }
    cells = {c.optimizer: c for c in suites.expand(suite)}
    assert {k: c.steps for k, c in cells.items()} == {"adagrad": 300, "adam": 100, "sgd": 40}
    assert "t300" in cells["adagrad"].id and "t40" in cells["sgd"].id
    assert cells["adagrad"].schedule.startswith("power")  # the suite's, on its own budget
    assert cells["adam"].schedule == "cosine"
    assert "steps" not in cells["adagrad"].hp  # a budget, not a hyperparameter


@pytest.mark.parametrize(
    "suite,message",
    [
        ({"problems": [], "optimizers": ["adam"]}, "non-empty list 'problems'"),
        ({"problems": ["relu1d-x2"], "optimizers": []}, "non-empty list 'optimizers'"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "seeds": -3}, "integer >= 1"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "steps": -1}, "integer >= 0"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "checkpoints": "x"}, "checkpoints"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "hessian": 1.5}, "hessian"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "stop": {"wait": 3}}, "unknown stop"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "schedule": "exp"}, "unknown sched"),
        (
            {
                "problems": ["relu1d-x2"],
                "optimizers": [{"name": "adam", "schedule": "step:factor=3"}],
            },
            "optimizer 'adam': step schedule",
        ),
        (
            {"problems": ["relu1d-x2"], "optimizers": [{"name": "adam", "steps": 2.5}]},
            "steps of optimizer 'adam' must be an integer",
        ),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam", "adam"]}, "twice"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adam"], "dtype": "half"}, "dtype"),
        ({"problems": ["nope"], "optimizers": ["adam"]}, "unknown problem 'nope'"),
        ({"problems": ["relu1d-x2"], "optimizers": ["adma"]}, "Did you mean .*'adam'"),
        ({"problems": ["relu1d-x2"], "optimizers": [{"name": "adam", "lr": -1}]}, "positive"),
        ({"problems": ["relu1d-x2"], "optimizers": [{"name": "adam", "betas": 3}]}, "rejected"),
    ],
)
def test_bad_suites_fail_before_running(suite, message):
    with pytest.raises(suites.SuiteError, match=message):
        suites.expand(suite)


def test_malformed_suite_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("problems = [\n")
    with pytest.raises(suites.SuiteError, match="not valid TOML"):
        suites.load(str(bad))
    with pytest.raises(suites.SuiteError, match="unknown suite"):
        suites.load("no-such-suite")
