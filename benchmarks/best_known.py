"""Record the best risk found for problems without a known optimum (``best_known``).

A long multi-start run (several learning rates of Adam, full batch, float64) is the reference;
its minimum and a description of how it was obtained go into problems/best_known.json, which
the problem reads as its optimum with that provenance. A value is only ever lowered.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json

import numpy as np
import torch

from benchmarks.engine import RunConfig, train_cell
from benchmarks.results import git_commit
from optimizers.registry import BUILTINS
from problems.deepfc import BEST_KNOWN
from problems.registry import canonical, make


def search(spec: str, seeds: int, steps: int, lrs: list[float]) -> tuple[float, str]:
    """Minimum final risk over seeds x learning rates, and its provenance text."""
    name, _ = canonical(spec)
    problem = make(name)
    best = np.inf
    for lr in lrs:
        rec, _ = train_cell(
            problem,
            BUILTINS["adam"],
            {"lr": lr},
            torch.arange(10_000, 10_000 + seeds),
            RunConfig(steps=steps, dtype=torch.float64),
        )
        best = min(best, float(np.nanmin(rec["final_risk"])))
    commit, _ = git_commit()
    text = (
        f"min final risk of Adam (lr in {lrs}) over seeds 10000..{10_000 + seeds - 1}, "
        f"{steps} full-batch steps, float64; trapbench {(commit or 'unknown')[:10]}, "
        f"{dt.date.today().isoformat()}"
    )
    return best, text


def record(spec: str, value: float, provenance: str) -> bool:
    """Store value if it beats the recorded one; True when the file changed."""
    name, _ = canonical(spec)
    with open(BEST_KNOWN.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent searches must not lose each other's rows
        table = json.loads(BEST_KNOWN.read_text()) if BEST_KNOWN.exists() else {}
        if name in table and table[name]["value"] <= value:
            return False
        table[name] = {"value": value, "provenance": provenance}
        BEST_KNOWN.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return True
