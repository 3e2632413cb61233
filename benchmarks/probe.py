"""The probe: how may an optimizer be handed many seeds at once, exactly?

Stacking seeds in one tensor per parameter is exact only for updates that treat every entry on
its own (SGD, Adam, Lion, ...). Updates that couple entries within a tensor (LAMB/LARS trust
ratios, Shampoo/SOAP preconditioners, Muon) are exact when each seed has its own tensors;
updates that couple tensors (a global gradient-norm clip, SAM's radius, L-BFGS) only one seed
at a time. What an optimizer couples is not written anywhere, so the probe trains a few seeds
of a tiny problem each way, in the run's dtype, and takes the fastest path that reproduces the
one-seed result (stacked, then vmapped: the plug-in's one-seed step under torch.func.vmap,
then per-seed, then one-seed). It also finds the step contract: a closure (SAM, L-BFGS) or
gradients that carry a graph (SophiaH, AdaHessian), each tried only when the plain step says it
needs it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings

import numpy as np
import torch

from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import OptimizerEntry
from optimizers.resolve import OptimizerError, resolve
from optimizers.vmapped import VMAP_FAILED
from problems.registry import make

PROBE_PROBLEM = "relu1d-x2:width=3"
PROBE_SEEDS = 6
PROBE_STEPS = 12
PROBE_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
# What a failing plain step says when it needs a closure / a gradient with a graph.
NEEDS_CLOSURE = ("closure",)
NEEDS_GRAPH = ("create_graph", "does not require grad", "does not have a grad_fn", "graph")


def _train(entry: OptimizerEntry, hp: dict, seeds: list[int], dtype, rng: int = 0) -> dict:
    cfg = RunConfig(steps=PROBE_STEPS, dtype=dtype, rng=rng)
    records, _ = train_cell(
        make(PROBE_PROBLEM), entry, hp, torch.tensor(seeds), cfg, keep_params=True
    )
    return {k: v for k, v in records.items() if k.startswith("param.")}


def max_difference(a: dict, b: dict, rows: slice = slice(None)) -> float:
    """Largest parameter difference between two runs (inf where only one is NaN)."""
    diff = 0.0
    for key in a:
        x, y = a[key][rows], b[key][rows]
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return float("inf")
        d = np.abs(x - y)
        diff = max(diff, float(np.nanmax(d)) if d.size and not np.isnan(d).all() else 0.0)
    return diff


def _one_line(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return f"{type(err).__name__}: {first}"


def step_contract(entry: OptimizerEntry, hp: dict, dtype) -> OptimizerEntry:
    """The entry with ``closure`` / ``hessian`` set as the optimizer's step needs them: the
    plain step first, then what its error asks for. One line says why when none works."""
    one = dataclasses.replace(entry, path="one-seed")
    tried, err = set(), None
    todo = [(entry.closure, entry.hessian)]
    while todo:
        closure, hessian = todo.pop(0)
        if (closure, hessian) in tried:
            continue
        tried.add((closure, hessian))
        candidate = dataclasses.replace(one, closure=closure, hessian=hessian)
        try:
            _train(candidate, hp, [0], dtype)
            return dataclasses.replace(entry, closure=closure, hessian=hessian)
        except OptimizerError:
            raise
        except Exception as caught:  # what the optimizer's own step raised
            err = caught
        text = str(err).lower()
        if any(w in text for w in NEEDS_CLOSURE):
            todo.append((True, hessian))
        if any(w in text for w in NEEDS_GRAPH):
            todo.append((closure, True))
    name = str(dtype).removeprefix("torch.")
    raise OptimizerError(
        f"optimizer {entry.source} cannot run on {PROBE_PROBLEM} in {name}: {_one_line(err)}"
    )


def _attempt(entry: OptimizerEntry, hp: dict, seeds: list[int], dtype, rng: int = 0):
    """The path's parameters, or None when the optimizer cannot take it: it raises, or on the
    vmapped path its step fell back to one seed at a time (vmap could not run it)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = _train(entry, hp, seeds, dtype, rng)
    except Exception:  # a path the optimizer cannot take is a path not taken
        return None
    if any(VMAP_FAILED in str(w.message) for w in caught):
        return None
    return got


def choose_path(entry: OptimizerEntry, hp: dict, dtype) -> tuple[str, float]:
    """(path, max parameter difference of that path against the one-seed path).

    Deterministic optimizers: the first of stacked, vmapped, per-seed whose result equals
    training each seed alone (vmapped only where vmap ran every step). Randomized ones
    (Hessian-vector optimizers, and any whose one-seed result changes with the generator)
    cannot be compared with a one-seed run; for them per-seed tensors are taken when a seed's result
    does not change as another seed's initialization is replaced (same draws, same shapes as
    a one-seed run), else one seed at a time."""
    tol = PROBE_TOL.get(dtype, 1e-5)
    seeds = list(range(PROBE_SEEDS))
    alone = _train(dataclasses.replace(entry, path="one-seed"), hp, seeds, dtype)
    again = _train(dataclasses.replace(entry, path="one-seed"), hp, seeds, dtype, rng=1)
    # Hessian-vector optimizers estimate with random probes (Hutchinson) even where a short
    # probe run does not show it (SophiaH's clipped update hides its estimate for a while).
    random = entry.hessian or max_difference(alone, again) > 0.0
    if not random:
        for path in ("stacked", "vmapped", "per-seed"):
            got = _attempt(dataclasses.replace(entry, path=path), hp, seeds, dtype)
            if got is not None and (diff := max_difference(got, alone)) <= tol:
                return path, diff
        return "one-seed", 0.0
    per_seed = dataclasses.replace(entry, path="per-seed")
    base = _attempt(per_seed, hp, seeds, dtype)
    swapped = _attempt(per_seed, hp, seeds[:-1] + [PROBE_SEEDS + 93], dtype)
    if base is not None and swapped is not None:
        diff = max_difference(base, swapped, slice(0, PROBE_SEEDS - 1))
        if diff <= tol:
            return "per-seed", diff
    return "one-seed", 0.0


def batched_matches_single(entry: OptimizerEntry, hp: dict, dtype=torch.float64):
    """(stacked training is exact, max difference to one-seed training) in ``dtype``."""
    seeds = list(range(PROBE_SEEDS))
    alone = _train(dataclasses.replace(entry, path="one-seed"), hp, seeds, dtype)
    got = _attempt(dataclasses.replace(entry, path="stacked"), hp, seeds, dtype)
    if got is None:
        return False, float("inf")
    diff = max_difference(got, alone)
    return diff <= PROBE_TOL.get(dtype, 1e-5), diff


@functools.lru_cache(maxsize=64)
def _probe_cached(name: str, hp_json: str, dtype_name: str) -> OptimizerEntry:
    dtype = getattr(torch, dtype_name)
    hp = json.loads(hp_json)
    entry = step_contract(resolve(name), hp, dtype)
    path, _ = choose_path(entry, hp, dtype)
    return dataclasses.replace(entry, path=path)


def checked_entry(name: str, hp: dict, dtype: torch.dtype = torch.float64) -> OptimizerEntry:
    """The registry entry, with its step contract and path set by the probe (in the run's
    dtype) for everything but the built-ins, whose elementwise updates the test suite covers."""
    entry = resolve(name)
    if entry.source == "builtin":
        return entry
    dtype_name = str(dtype).removeprefix("torch.")
    return _probe_cached(name, json.dumps(hp, sort_keys=True, default=str), dtype_name)
