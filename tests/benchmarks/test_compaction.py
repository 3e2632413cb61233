"""Compaction: as seeds stop, the stacked path shrinks its tensors and optimizer state to the
seeds still training (whole BLOCKs). It must change nothing a seed computes (bitwise) and must
actually happen."""

import numpy as np
import pytest
import torch
from toys import quadratic_problem, with_closed_form

import benchmarks.engine as engine
from benchmarks.engine import BLOCK, RunConfig, compaction, train_cell
from benchmarks.probe import checked_entry
from benchmarks.stopping import StopRules
from optimizers.registry import BUILTINS
from problems.registry import make

RULES = StopRules(grad_tol=1e-4, plateau_window=200, plateau_rtol=1e-6, every=10)
CASES = [
    # problem, optimizer, hyperparameters, schedule, steps (enough for whole blocks to stop)
    ("relu1d-x2:width=4", "momentum", {"lr": 0.05}, "", 600),
    ("relu1d-x2:width=4", "adam", {"lr": 0.02}, "cosine", 600),
    ("relu1d-x2:width=4", "rmsprop", {"lr": 3e-3}, "step:factor=0.5,every=300", 1200),
    ("relu1d-x2:width=3,sampled=true,batch=64", "adam", {"lr": 0.02}, "", 1200),
    # Lion at a constant lr oscillates (sign steps): its risk repeats, but not one step apart, so
    # the plateau rule rightly waits; a decaying lr lets a block stop, with a floor (a rate
    # decayed below 0.1 of its start freezes runs, and the plateau rule ignores frozen runs)
    ("relu1d-x2:width=4", "pytorch_optimizer:Lion", {"lr": 1e-3}, "cosine:floor=0.1", 1200),
    ("relu1d-x2:width=4", "pytorch_optimizer:LARS", {"lr": 0.05}, "", 250),  # vmapped
]


def run(spec, name, hp, schedule, steps):
    problem = make(spec)
    stop = RULES if "sampled" not in spec else StopRules(grad_tol=1e-3, every=20)
    cfg = RunConfig(steps=steps, dtype=torch.float64, stop=stop, schedule=schedule)
    entry = checked_entry(name, hp) if name not in BUILTINS else BUILTINS[name]
    records, _ = train_cell(problem, entry, hp, torch.arange(200), cfg, keep_params=True)
    return records


@pytest.mark.parametrize(
    "spec,name,hp,schedule,steps", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_compaction_changes_no_bit(spec, name, hp, schedule, steps, monkeypatch):
    shrinks = []
    real_compact = engine.compact

    def spy(opt, params, keep):
        shrinks.append(len(keep))
        real_compact(opt, params, keep)

    monkeypatch.setattr(engine, "compact", spy)
    compacted = run(spec, name, hp, schedule, steps)
    assert shrinks, "no seed stopped early enough to compact: the case tests nothing"
    assert all(n % BLOCK == 0 for n in shrinks)
    monkeypatch.setattr(engine, "compaction", lambda active: None)
    whole = run(spec, name, hp, schedule, steps)
    assert set(compacted) == set(whole)
    for key, value in whole.items():
        if value.dtype == object:
            assert list(value) == list(compacted[key]), key
        else:
            assert np.array_equal(value, compacted[key], equal_nan=True), key


def test_compaction_keeps_active_seeds_in_whole_blocks():
    active = torch.zeros(128, dtype=torch.bool)
    active[[3, 40, 41, 99]] = True
    keep = compaction(active)
    assert len(keep) == BLOCK
    assert set(keep.tolist()) >= {3, 40, 41, 99}
    assert keep.tolist() == sorted(keep.tolist())
    assert compaction(torch.ones(64, dtype=torch.bool)) is None
    active = torch.zeros(64, dtype=torch.bool)
    active[:33] = True  # 33 active seeds need 64 rows: nothing to gain
    assert compaction(active) is None


def test_diverged_and_stopped_seeds_survive_compaction(monkeypatch):
    """Seeds that diverge (lr 1 on curvature k > 2) or converge (k < 2) leave the working set
    in whole blocks; their records are those of the uncompacted run."""
    problem = with_closed_form(quadratic_problem())
    cfg = RunConfig(steps=3000, dtype=torch.float64, stop=StopRules(grad_tol=1e-8, every=1))

    def records():
        rec, _ = train_cell(problem, BUILTINS["sgd"], {"lr": 1.0}, torch.arange(96), cfg)
        return rec

    compacted = records()
    monkeypatch.setattr(engine, "compaction", lambda active: None)
    whole = records()
    k = 0.5 + 0.1 * np.arange(96)
    assert set(compacted["stop_reason"][k > 3]) == {"diverged"}
    assert set(compacted["stop_reason"][k < 1.9]) == {"grad"}
    for key in ("final_risk", "stop_step", "stationarity", "diverged_step"):
        assert np.array_equal(whole[key], compacted[key], equal_nan=True), key
