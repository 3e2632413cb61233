"""Batch-safety probe: may an optimizer train many seeds stacked in one tensor?

Stacking is exact only for optimizers whose update of an entry depends on that entry's own
history (SGD, Adam, ...). Anything that couples entries — global-norm clipping, LAMB/LARS
trust ratios, line searches as in L-BFGS — would let seeds influence each other. Before a
plug-in runs batched, train a few seeds of a tiny problem both ways in float64 and compare.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import torch

from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import OptimizerEntry
from optimizers.resolve import resolve
from problems.registry import make

PROBE_PROBLEM = "relu1d-x2:width=3"
PROBE_SEEDS = 6
PROBE_STEPS = 12
PROBE_TOL = 1e-10


def batched_matches_single(entry: OptimizerEntry, hp: dict) -> tuple[bool, float]:
    """(safe, max parameter difference) between batched and per-seed training."""
    problem = make(PROBE_PROBLEM)
    cfg = RunConfig(steps=PROBE_STEPS, dtype=torch.float64)
    seeds = torch.arange(PROBE_SEEDS)
    batched = dataclasses.replace(entry, batch_safe=True)
    single = dataclasses.replace(entry, batch_safe=False)
    a, _ = train_cell(problem, batched, hp, seeds, cfg, keep_params=True)
    b, _ = train_cell(problem, single, hp, seeds, cfg, keep_params=True)
    diff = 0.0
    for key in a:
        if key.startswith("param."):
            d = np.abs(a[key] - b[key])
            if np.isnan(d).any() and not np.array_equal(np.isnan(a[key]), np.isnan(b[key])):
                return False, float("inf")
            diff = max(diff, float(np.nanmax(d)) if d.size else 0.0)
    return diff <= PROBE_TOL, diff


@functools.lru_cache(maxsize=64)
def _probe_cached(name: str, hp_json: str) -> tuple[bool, float]:
    return batched_matches_single(resolve(name), json.loads(hp_json))


def checked_entry(name: str, hp: dict) -> OptimizerEntry:
    """The registry entry, with batch_safe set by the probe for everything but the built-ins
    (whose elementwise updates are covered by the test suite)."""
    entry = resolve(name)
    if entry.source == "builtin":
        return entry
    safe, _ = _probe_cached(name, json.dumps(hp, sort_keys=True, default=str))
    return dataclasses.replace(entry, batch_safe=safe)
