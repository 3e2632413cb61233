"""Run cells (in worker processes) and collect their results into the results file.

Each finished cell is written to the results file at once (atomically), so an interrupted run
loses nothing finished and ``--resume`` recomputes nothing already done. A cell that fails is
recorded under ``errors`` and the others go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks import results
from benchmarks.engine import RunConfig, checkpoint_steps, train_cell
from benchmarks.fates import classify
from benchmarks.hessian import extreme_eigenvalues, verdict
from benchmarks.metrics import QUANTILES, summarize
from benchmarks.probe import checked_entry
from benchmarks.suites import Cell
from problems.registry import make

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _curve_quantiles(curve: np.ndarray, optimum: float) -> dict:
    """Quantiles of the gap over seeds at each checkpoint (diverged seeds excluded)."""
    gap = curve - optimum
    out = {}
    for q in QUANTILES:
        with np.errstate(all="ignore"):
            col = [float(np.nanquantile(g, q)) if np.isfinite(g).any() else None for g in gap.T]
        out[f"q{int(q * 100)}"] = col
    return out


def diagnose_critical(
    problem, params: dict, fates: np.ndarray, labels: np.ndarray, limit: int
) -> np.ndarray:
    """Hessian verdicts for up to ``limit`` critical seeds: fate "saddle" on negative
    curvature, else label "min" or "degenerate". Returns the smallest eigenvalues (NaN where
    not computed). Fates and labels are updated in place."""
    smallest = np.full(len(fates), np.nan)
    for i in np.flatnonzero(fates == "critical")[:limit]:
        low, scale = extreme_eigenvalues(problem, params, int(i))
        smallest[i] = low
        kind = verdict(low, scale)
        if kind == "saddle":
            fates[i] = "saddle"
        else:
            labels[i] = kind
    return smallest


def run_cell(cell: Cell, progress: bool = False) -> dict:
    """Train one cell and return its JSON-ready result."""
    problem = make(cell.problem)
    entry = checked_entry(cell.optimizer, cell.hp)
    seeds = torch.arange(cell.seed_start, cell.seed_start + cell.seeds)
    cfg = RunConfig(cell.steps, DTYPES[cell.dtype], cell.device, cell.checkpoints, cell.chunk)
    records, wall = train_cell(
        problem, entry, cell.hp, seeds, cfg, progress, keep_params=cell.hessian > 0
    )
    fates, labels = classify(
        records["final_risk"],
        records["grad_norm"],
        problem.optimum,
        problem.tol,
        list(problem.levels),
        problem.grad_tol,
    )
    params = {
        k.removeprefix("param."): records.pop(k) for k in list(records) if k.startswith("param.")
    }
    if cell.hessian > 0:
        records["hessian_min"] = diagnose_critical(problem, params, fates, labels, cell.hessian)
    curve = records.pop("checkpoint_risk")
    per_seed = {k: v for k, v in records.items()}
    per_seed["gap"] = records["final_risk"] - problem.optimum
    per_seed["fate"] = fates.tolist()
    per_seed["level"] = labels.tolist()
    return {
        "id": cell.id,
        "problem": cell.problem,
        "problem_info": problem.info(),
        "optimizer": {
            "name": cell.optimizer,
            "entry": entry.name,
            "source": entry.source,
            "hyperparameters": {**entry.defaults, **cell.hp},
            "batched": entry.batch_safe,
            "full_batch": entry.full_batch,
        },
        "config": cell.to_dict(),
        "metrics": summarize(records, fates, labels, problem.optimum, cell.steps, wall),
        "records": per_seed,
        "checkpoints": {
            "steps": checkpoint_steps(cell.steps, cell.checkpoints),
            "gap_quantiles": _curve_quantiles(curve, problem.optimum),
            "success_fraction": np.mean(curve - problem.optimum <= problem.tol, axis=0).tolist(),
        },
        "wall_s": wall,
    }


def _safe_run(cell: Cell, progress: bool = False) -> dict:
    try:
        return run_cell(cell, progress)
    except Exception as err:  # reported per cell; the rest of the run goes on
        return {
            "id": cell.id,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=4),
        }


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def default_workers(cells: list[Cell]) -> int:
    """One process per core (each with one torch thread), never more than there are cells."""
    if any(c.device.startswith("cuda") for c in cells):
        return 1
    return max(1, min(len(cells), os.cpu_count() or 1))


def run(
    cells: list[Cell],
    doc: dict,
    out: str | Path,
    workers: int = 0,
    threads: int = 1,
    progress: bool = True,
    on_result: Callable[[dict], None] | None = None,
) -> dict:
    """Run the cells not already in ``doc`` and write ``doc`` to ``out`` after each one."""
    done = {c["id"] for c in doc["cells"]}
    todo = [c for c in cells if c.id not in done]
    doc["errors"] = [e for e in doc.get("errors", []) if e["id"] not in {c.id for c in todo}]
    workers = workers or default_workers(todo)
    order = {c.id: i for i, c in enumerate(cells)}
    bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not progress)

    def collect(result: dict) -> None:
        if "error" in result:
            doc["errors"].append(result)
            tqdm.write(f"trapbench: cell {result['id']} failed: {result['error']}")
        else:
            doc["cells"].append(result)
            doc["cells"].sort(key=lambda c: order.get(c["id"], len(order)))
        results.write(doc, out)
        bar.update(1)
        if on_result:
            on_result(result)

    if workers == 1 or len(todo) <= 1:
        _init_worker(threads)
        for cell in todo:
            collect(_safe_run(cell, progress))
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            pending = {pool.submit(_safe_run, cell) for cell in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    collect(fut.result())
    bar.close()
    results.write(doc, out)
    return doc
