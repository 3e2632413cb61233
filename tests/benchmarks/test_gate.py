import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from benchmarks import gate, results, runner, suites
from benchmarks.cli import main
from benchmarks.gate import GateError, GateSettings
from optimizers import registry

TOL = 1e-5
LEVEL = 0.08


def make_cell(fates, gaps, *, problem="toy", opt="adam", lr=0.01, seeds=None, steps=300):
    """A results cell as the runner writes it (only the fields the gate reads)."""
    seeds = list(range(len(fates))) if seeds is None else seeds
    hp = {"lr": lr}
    return {
        "id": f"{problem}|{opt}|lr={lr}|s{seeds[0]}+{len(seeds)}|t{steps}",
        "problem": problem,
        "problem_info": {"optimum": 0.0, "tol": TOL, "grad_tol": 1e-4, "levels": [["L0", LEVEL]]},
        "optimizer": {"name": opt, "hyperparameters": {**hp, "betas": [0.9, 0.999]}},
        "config": {"problem": problem, "optimizer": opt, "hp": hp, "steps": steps,
                   "seed_start": seeds[0], "seeds": len(seeds), "dtype": "float32",
                   "device": "cpu", "chunk": 0, "compile": True, "verify": 0},
        "records": {
            "seed": list(seeds),
            "fate": list(fates),
            "level": ["L0" if f == "level" else "" for f in fates],
            "gap": list(gaps),
        },
    }  # fmt: skip


def doc(*cells, errors=()):
    return {"cells": list(cells), "errors": list(errors)}


RNG = np.random.default_rng(0)
N = 64
# Half the seeds at the global minimum, a quarter unconverged, a quarter at the level.
FATES = ["global"] * 32 + ["unconverged"] * 16 + ["level"] * 16
GAPS = np.concatenate(
    [10 ** RNG.uniform(-12, -6, 32), 10 ** RNG.uniform(-4, -2, 16), LEVEL + RNG.normal(0, 1e-4, 16)]
).tolist()
BASE = doc(make_cell(FATES, GAPS))


def with_records(d, **records):
    out = copy.deepcopy(d)
    out["cells"][0]["records"].update(records)
    return out


def kinds(findings):
    return [f.kind for f in findings]


# --- thresholds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("alpha", float("nan")),
        ("alpha", -1.0),
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("alpha", 1.5),
        ("min_drop", float("nan")),
        ("min_drop", -0.1),
        ("min_drop", 1.01),
        ("gap_factor", float("nan")),
        ("gap_factor", 0.9),
        ("gap_factor", float("inf")),
        ("rtol", float("nan")),
        ("rtol", -1e-4),
        ("rtol", 1.0),
    ],
)
def test_invalid_thresholds_are_refused(field, value):
    with pytest.raises(GateError, match=field.replace("_", "-")):
        GateSettings(**{field: value})


@pytest.mark.parametrize(
    "flags", [["--alpha", "nan"], ["--alpha", "-1"], ["--min-drop", "nan"], ["--gap-factor", "nan"]]
)
def test_cli_rejects_invalid_thresholds_in_one_line_before_reading(flags, tmp_path, capsys):
    missing = tmp_path / "does-not-exist.json"  # never read: the flags fail first
    assert main(["check", "--baseline", str(missing), str(missing), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trapbench: error: " + flags[0])


# --- identical and float-noise runs pass -------------------------------------------------


def test_identical_and_reordered_seeds_pass():
    assert gate.evaluate(BASE, copy.deepcopy(BASE)) == []
    order = RNG.permutation(N)
    rec = BASE["cells"][0]["records"]
    shuffled = with_records(BASE, **{k: [v[i] for i in order] for k, v in rec.items()})
    assert gate.evaluate(BASE, shuffled) == []  # paired by the seed record, not position


@pytest.mark.parametrize("rel", [1e-7, 1e-6, 5e-5])
def test_rounding_level_differences_never_alarm(rel):
    """Every gap moved by a relative `rel` in one direction (a systematic rounding bias),
    plus fate flips on seeds whose risk moved that little: all below --rtol, so no finding
    in either direction, even in strict mode."""
    gaps = [g * (1 + rel) for g in GAPS]
    fates = [
        "unconverged" if f == "global" and g > 1e-7 else f for f, g in zip(FATES, GAPS, strict=True)
    ]
    noisy = with_records(BASE, gap=gaps, fate=fates)
    assert gate.evaluate(BASE, noisy, GateSettings(strict=True)) == []


def test_practical_threshold_ignores_tiny_systematic_shifts():
    slower = [g * 1.01 for g in GAPS]  # above rtol, significant, but below --gap-factor 1.02
    assert gate.check(BASE, with_records(BASE, gap=slower)) == []
    assert gate.check(BASE, with_records(BASE, gap=slower), GateSettings(gap_factor=1.005))


# --- regressions, in cells of any success rate ------------------------------------------


def test_gap_regression_is_caught_and_improvement_is_a_note():
    worse = with_records(BASE, gap=[g * 1.2 for g in GAPS])
    (finding,) = gate.evaluate(BASE, worse)
    assert finding.kind == "REGRESSION" and finding.fails and "gaps rose" in finding.detail
    better = with_records(BASE, gap=[g / 1.2 for g in GAPS])
    (note,) = gate.evaluate(BASE, better)
    assert note.kind == "IMPROVED" and not note.fails
    assert gate.check(BASE, better) == []
    assert gate.check(BASE, better, GateSettings(strict=True))  # strict: numbers must reproduce


def test_zero_success_cell_fates_are_ordered():
    """12 seeds of a 0%-success cell stop on the level instead of still moving: by fate a
    better outcome (FATE_SEVERITY: level < unconverged), by gap a worse one; the gate reports
    both and fails on the gap."""
    fates = ["level"] * 32 + ["unconverged"] * 32
    gaps = [LEVEL] * 32 + [1e-3] * 32
    base = doc(make_cell(fates, gaps))
    new = with_records(
        base,
        fate=fates[:32] + ["level"] * 12 + fates[44:],
        gap=gaps[:32] + [LEVEL] * 12 + gaps[44:],
    )
    by_fate = gate.evaluate(base, new, GateSettings(gap_factor=1e9))  # gap test out of the way
    assert kinds(by_fate) == ["IMPROVED"] and "unconverged->level 12" in by_fate[0].detail
    found = gate.evaluate(base, new)
    assert ("REGRESSION", True) in [(f.kind, f.fails) for f in found]
    assert any("gaps rose" in f.detail for f in found)


def test_zero_success_cell_moving_to_worse_fates_fails():
    fates = ["level"] * 32 + ["unconverged"] * 32
    gaps = [LEVEL] * 32 + [1e-3] * 32
    base = doc(make_cell(fates, gaps))
    new = with_records(base, fate=["unconverged"] * 12 + fates[12:], gap=[0.2] * 12 + gaps[12:])
    found = gate.evaluate(base, new, GateSettings(gap_factor=1e9))
    assert kinds(found) == ["REGRESSION"] and "level->unconverged 12" in found[0].detail


def test_full_success_cell_is_guarded_by_gaps():
    gaps = (10 ** RNG.uniform(-12, -7, N)).tolist()
    base = doc(make_cell(["global"] * N, gaps))
    nearer_tol = with_records(base, gap=[0.8 * TOL] * N)  # still 100% success
    found = gate.evaluate(base, nearer_tol)
    assert kinds(found) == ["REGRESSION"] and "gaps rose" in found[0].detail


def test_success_drop_and_divergence():
    lost = [i for i, f in enumerate(FATES) if f == "global"][:12]
    fates = ["unconverged" if i in lost else f for i, f in enumerate(FATES)]
    gaps = [1e-3 if i in lost else g for i, g in enumerate(GAPS)]
    details = [f.detail for f in gate.evaluate(BASE, with_records(BASE, fate=fates, gap=gaps))]
    assert any(d.startswith("success rate fell 18.8% (32 -> 20 of 64") for d in details)
    diverged = ["diverged" if i < 8 else f for i, f in enumerate(FATES)]
    dgaps = [None if i < 8 else g for i, g in enumerate(GAPS)]
    details = [f.detail for f in gate.evaluate(BASE, with_records(BASE, fate=diverged, gap=dgaps))]
    assert "8 seeds newly diverged" in details


def test_single_seed_noise_passes():
    fates, gaps = list(FATES), list(GAPS)
    fates[0], gaps[0] = "unconverged", 1e-3  # one seed lost: below min_drop, not significant
    assert gate.check(BASE, with_records(BASE, fate=fates, gap=gaps)) == []


# --- changed, missing, new and failed cells ----------------------------------------------


def test_changed_hyperparameters_fail_unless_allowed():
    new = doc(make_cell(FATES, GAPS, lr=0.009))
    (finding,) = gate.evaluate(BASE, new)
    assert finding.kind == "CHANGED" and finding.fails
    assert finding.detail.startswith("lr 0.01 -> 0.009 (now toy|adam|lr=0.009|")
    allowed = gate.evaluate(BASE, new, GateSettings(allow_changed=True))
    assert kinds(allowed) == ["CHANGED"] and not allowed[0].fails  # same numbers: no regression


@pytest.mark.parametrize(
    "change,expected",
    [
        (dict(steps=200), "steps 300 -> 200"),
        (dict(seeds=list(range(32))), "seeds 64 -> 32"),
    ],
)
def test_changed_budget_is_named(change, expected):
    n = len(change.get("seeds", FATES))
    new = doc(make_cell(FATES[:n], GAPS[:n], **change))
    (finding,) = gate.evaluate(BASE, new)
    assert finding.kind == "CHANGED" and expected in finding.detail


def test_changed_default_under_the_same_id_is_caught():
    new = copy.deepcopy(BASE)
    new["cells"][0]["optimizer"]["hyperparameters"]["betas"] = [0.9, 0.99]
    (finding,) = gate.evaluate(BASE, new)
    assert finding.kind == "CHANGED" and "betas [0.9, 0.999] -> [0.9, 0.99]" in finding.detail


def test_problem_facts_are_compared_to_the_float_tolerance():
    new = copy.deepcopy(BASE)
    new["cells"][0]["problem_info"]["levels"] = [["L0", LEVEL * (1 + 1e-12)]]
    assert gate.evaluate(BASE, new) == []
    new["cells"][0]["problem_info"]["levels"] = [["L0", LEVEL * 1.01]]
    (finding,) = gate.evaluate(BASE, new)
    assert finding.kind == "CHANGED" and finding.detail.startswith("problem levels")


def test_execution_settings_are_not_changes():
    new = copy.deepcopy(BASE)
    new["cells"][0]["config"].update(chunk=16, compile=False, device="cuda", verify=4)
    assert gate.evaluate(BASE, new) == []


def test_renamed_optimizer_is_missing_and_new_errors_fail():
    new = doc(make_cell(FATES, GAPS, opt="adam2"), errors=[{"id": "x", "error": "boom"}])
    found = gate.evaluate(BASE, new)
    assert kinds(found) == ["MISSING", "NEW", "FAILED"]
    assert [f.fails for f in found] == [True, False, True]


def test_records_without_gap_fall_back_to_final_risk():
    base = copy.deepcopy(BASE)
    rec = base["cells"][0]["records"]
    rec["final_risk"] = rec.pop("gap")
    del rec["level"]
    assert gate.evaluate(base, copy.deepcopy(base)) == []
    worse = copy.deepcopy(base)
    worse["cells"][0]["records"]["final_risk"] = [g * 1.5 for g in GAPS]
    assert kinds(gate.evaluate(base, worse)) == ["REGRESSION"]


# --- real runs ------------------------------------------------------------------------------


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
    assert gate.check(baseline, run_suite(tmp_path / "again.json"), GateSettings(strict=True)) == []


def test_planted_regression_fails(baseline, tmp_path, monkeypatch):
    broken = dataclasses.replace(registry.BUILTINS["adam"], factory=BrokenAdam)
    monkeypatch.setitem(registry.BUILTINS, "adam", broken)
    new = run_suite(tmp_path / "broken.json")
    lines = gate.check(baseline, new)
    assert lines and all(line.startswith("REGRESSION relu1d-affine:width=2|adam") for line in lines)
    assert any("success rate fell" in line for line in lines)
    results.write(baseline, tmp_path / "base.json")
    code = main(["check", "--baseline", str(tmp_path / "base.json"), str(tmp_path / "broken.json")])
    assert code == 1


EXECUTIONS = {
    "threads": ["--threads", "2"],
    "workers": ["--workers", "2"],
    "chunk": ["--chunk", "16"],
    "tasks": ["--task-seeds", "16"],
    "dask": ["--scheduler", "local", "--workers", "2"],
    "compiled": [],
}


SMOKE = ["run", "--suite", "smoke", "--seeds", "32", "--steps", "200", "--no-progress"]


@pytest.fixture(scope="module")
def eager_reference(tmp_path_factory):
    """The reduced smoke suite, eager in one process (once per test worker)."""
    ref = tmp_path_factory.mktemp("executions") / "ref.json"
    assert main([*SMOKE, "--workers", "1", "--no-compile", "-o", str(ref)]) == 0
    return ref


@pytest.mark.parametrize("name", sorted(EXECUTIONS))
def test_identical_code_passes_under_every_execution_setting(eager_reference, tmp_path, name):
    """The reduced smoke suite, eager in one process, against the same suite run with more
    threads, two worker processes, seed chunks, seed tasks, a dask LocalCluster and
    torch.compile'd gradients: the gate (strict, so improvements would fail too) finds
    nothing. One case per setting, so test workers share them out."""
    flags = EXECUTIONS[name]
    out = tmp_path / f"{name}.json"
    workers = [] if "--workers" in flags else ["--workers", "1"]
    eager = ["--no-compile"] if name != "compiled" else []
    assert main([*SMOKE, *workers, *eager, *flags, "-o", str(out)]) == 0
    assert main(["check", "--strict", "--baseline", str(eager_reference), str(out)]) == 0
    compiled = json.loads(out.read_text())["cells"][0]["config"]["compile"]
    assert compiled is (name == "compiled")
