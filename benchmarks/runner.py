"""Run cells (in worker processes) and collect their results into the results file.

Each finished cell is written to the results file at once (atomically), so an interrupted run
loses nothing finished and ``--resume`` recomputes nothing already done. A cell that fails is
recorded under ``errors`` and the others go on.

Faults: Ctrl-C (SIGINT) stops the run at once: pending cells are cancelled, workers are
terminated, every finished cell is saved and KeyboardInterrupt goes on to the caller. Workers
die with their parent (PR_SET_PDEATHSIG on Linux, a watchdog thread elsewhere), so a
``kill -9`` of the parent leaves no worker behind. Temp files a killed write left are removed
on the next run. A dask run whose workers are all gone fails after ``worker_timeout`` seconds.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing as mp
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks import partial, results, stopping
from benchmarks.allocator import keep_freed_memory
from benchmarks.engine import RunConfig, checkpoint_steps, train_cell
from benchmarks.fates import classify
from benchmarks.hessian import extreme_eigenvalues, verdict
from benchmarks.metrics import (
    QUANTILES,
    fates_changing,
    summarize,
    unconverged_motion,
)
from benchmarks.probe import checked_entry
from benchmarks.suites import Cell
from optimizers.record import describe_hyperparameters, plugin_origin
from problems.registry import make

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_TIMEOUT_S = 60.0  # a dask run with no worker for this long fails
CONNECT_TIMEOUT_S = 5.0  # to reach a dask scheduler
SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class RunError(RuntimeError):
    """A run that cannot go on (no dask scheduler, no workers left); the message names the fix."""


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


def verify_batched(
    problem, entry, cell: Cell, seeds: torch.Tensor, cfg: RunConfig, records: dict
) -> dict:
    """Rerun ``cell.verify`` seeds (spread over the cell) alone: their final risks and stop
    steps must be bitwise those of the batched run (the engine's BLOCK padding makes a seed's
    arithmetic independent of its batch, in float32 and float64, eager and compiled)."""
    picks = np.unique(np.linspace(0, len(seeds) - 1, cell.verify).round().astype(int))
    worst = 0.0
    same = True
    for i in picks:
        alone, _ = train_cell(problem, entry, cell.hp, seeds[i : i + 1], cfg)
        a, b = records["final_risk"][i], alone["final_risk"][0]
        same &= bool(alone["stop_step"][0] == records["stop_step"][i])
        if np.isnan(a) and np.isnan(b):
            continue
        same &= bool(a == b)
        worst = max(worst, abs(a - b) / max(abs(a), abs(b), 1e-30))
    return {
        "seeds": seeds[picks].tolist(),
        "max_rel_diff": worst,
        "tol": 0.0,
        "ok": same,
    }


def run_task(cell: Cell, progress: bool = False) -> dict:
    """Train one cell, or one seed chunk of a cell, and return its per-seed part: records with
    fates, Hessian verdicts and verification, everything that depends on a seed alone."""
    problem = make(cell.problem)
    entry = checked_entry(cell.optimizer, cell.hp, DTYPES[cell.dtype])
    seeds = torch.arange(cell.seed_start, cell.seed_start + cell.seeds)
    cfg = RunConfig(
        cell.steps,
        DTYPES[cell.dtype],
        cell.device,
        cell.checkpoints,
        cell.chunk,
        compile=cell.compile,
        stop=stopping.parse(cell.stop),
        schedule=cell.schedule,
    )
    records, wall = train_cell(
        problem,
        entry,
        cell.hp,
        seeds,
        cfg,
        progress,
        keep_params=cell.hessian > 0 or cell.end_points,
    )
    fates, labels, nearest = classify(
        records["final_risk"],
        records["stationarity"],
        np.isin(records["stop_reason"], stopping.CONVERGED),
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
    verified = (
        verify_batched(problem, entry, cell, seeds, cfg, records) if cell.verify > 0 else None
    )
    return {
        "id": cell.id,
        "seed_start": cell.seed_start,
        "end_points": params if cell.end_points else {},
        "records": {**records, "fate": fates, "level": labels, "nearest_level": nearest},
        "wall_s": wall,
        "verify": verified,
        "problem_info": problem.info(),
        "optimizer": {
            "name": cell.optimizer,
            "entry": entry.name,
            "source": entry.source,
            "hyperparameters": {**entry.defaults, **cell.hp},
            "resolved_hyperparameters": describe_hyperparameters(entry, cell.hp),
            "origin": plugin_origin(entry),  # package and version of its code
            "schedule": cell.schedule or "constant",
            "batched": entry.batch_safe,
            "path": entry.path,
            "closure": entry.closure,
            "hessian_vector_products": entry.hessian,
            "full_batch": entry.full_batch,
        },
    }


def _merge_verify(parts: list[dict]) -> dict | None:
    checks = [p["verify"] for p in parts if p["verify"]]
    if not checks:
        return None
    return {
        "seeds": [s for c in checks for s in c["seeds"]],
        "max_rel_diff": max(c["max_rel_diff"] for c in checks),
        "tol": checks[0]["tol"],
        "ok": all(c["ok"] for c in checks),
    }


def assemble(cell: Cell, parts: list[dict]) -> dict:
    """The JSON-ready result of a cell from its parts (one per seed chunk), in seed order:
    metrics and checkpoint quantiles need every seed, so they are computed here."""
    parts = sorted(parts, key=lambda p: p["seed_start"])
    records = {k: np.concatenate([p["records"][k] for p in parts]) for k in parts[0]["records"]}
    info = parts[0]["problem_info"]
    optimum, wall = info["optimum"], sum(p["wall_s"] for p in parts)
    fates, labels = records.pop("fate"), records.pop("level")
    curve = records.pop("checkpoint_risk")
    per_seed = dict(records)
    per_seed["gap"] = records["final_risk"] - optimum
    per_seed["fate"] = fates.tolist()
    per_seed["level"] = labels.tolist()
    marks = checkpoint_steps(cell.steps, cell.checkpoints)
    motion = unconverged_motion(curve, marks, fates)
    metrics = summarize(records, fates, labels, optimum, cell.steps, wall, motion)
    metrics["fates_changing"] = fates_changing(curve, marks, optimum, info["tol"], info["levels"])
    return {
        "id": cell.id,
        "problem": cell.problem,
        "problem_info": info,
        "optimizer": parts[0]["optimizer"],
        "config": cell.to_dict(),
        "metrics": metrics,
        "records": per_seed,
        "checkpoints": {
            "steps": marks,
            "gap_quantiles": _curve_quantiles(curve, optimum),
            "success_fraction": np.mean(curve - optimum <= info["tol"], axis=0).tolist(),
            "fates": _unconverged_by_budget(records, fates, marks) if cell.stop else {},
        },
        "wall_s": wall,
        # final parameters per seed, in seed order, when the suite asks (end_points = true)
        "end_points": {
            k: np.concatenate([p["end_points"][k] for p in parts]) for k in parts[0]["end_points"]
        },
        "tasks": len(parts),
        "verify": _merge_verify(parts),
    }


def _unconverged_by_budget(records: dict, fates: np.ndarray, marks: list[int]) -> dict:
    """With stopping rules on, the share of seeds that had not met a rule by each checkpoint
    (about the unconverged share the cell would have had with that step budget), ending at
    the cell's unconverged share."""
    step = records["stop_step"]
    still = [float(np.mean(step > m)) for m in marks[:-1]]
    return {"unconverged": [*still, float(np.mean(fates == "unconverged"))]}


def run_cell(cell: Cell, progress: bool = False) -> dict:
    """Train one cell in this process and return its JSON-ready result."""
    return assemble(cell, [run_task(cell, progress)])


def split_cell(cell: Cell, task_seeds: int) -> list[Cell]:
    """Seed chunks of a cell as independent tasks (identical results: a seed's numbers
    depend only on its index)."""
    if task_seeds <= 0 or cell.seeds <= task_seeds:
        return [cell]
    return [
        dataclasses.replace(
            cell, seed_start=start, seeds=min(task_seeds, cell.seed_start + cell.seeds - start)
        )
        for start in range(cell.seed_start, cell.seed_start + cell.seeds, task_seeds)
    ]


def _safe_run(cell: Cell, progress: bool = False) -> dict:
    try:
        return run_task(cell, progress)
    except Exception as err:  # reported per cell; the rest of the run goes on
        return {
            "id": cell.id,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=4),
        }


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when ``parent`` does: the kernel sends SIGKILL on Linux
    (PR_SET_PDEATHSIG); elsewhere a daemon thread polls the parent pid. The check after prctl
    closes the race of a parent that died before it was set."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="trapbench-parent-watch").start()


def _init_worker(threads: int, parent: int | None = None) -> None:
    """Worker set-up: torch threads; in pool workers (``parent`` given), processes of
    trapbench's own, the allocator's thresholds pinned (benchmarks/allocator.py), SIGINT
    ignored (the parent alone decides what an interrupt does) and death with the parent."""
    torch.set_num_threads(threads)
    if parent is not None:
        keep_freed_memory()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent(parent)


def default_workers(cells: list[Cell]) -> int:
    """One process per core (each with one torch thread), never more than there are cells."""
    if any(c.device.startswith("cuda") for c in cells):
        return 1
    return max(1, min(len(cells), os.cpu_count() or 1))


def _failed(cell: Cell, err: BaseException) -> dict:
    return {"id": cell.id, "error": f"worker lost: {type(err).__name__}: {err}"}


def _new_pool(workers: int, threads: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads, os.getpid()),
    )


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started, kill the running workers, do not wait for
    them to finish their cells (a graceful shutdown would wait minutes)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:  # SIGKILL: a worker holds nothing worth saving, only a partial cell
        if proc.is_alive():
            proc.kill()
    deadline = time.monotonic() + 1.0
    for proc in processes:
        proc.join(max(0.0, deadline - time.monotonic()))


def _finished(pending: dict) -> Iterator[dict]:
    """Results of the futures that completed but were not yet handed on."""
    for fut in list(pending):
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            yield fut.result()


def _local_pool(todo: list[Cell], workers: int, threads: int) -> Iterator[dict]:
    """Cells on a pool of spawned processes. A killed worker breaks the whole pool, so the
    cells caught in it are retried one at a time in fresh pools: the culprit fails again and
    is reported, the others complete. An interrupt kills the pool at once and still hands on
    every cell that had finished."""
    broken: list[Cell] = []
    pool = _new_pool(workers, threads)
    pending = {}
    try:
        pending = {pool.submit(_safe_run, cell): cell for cell in todo}
        while pending:
            finished, _ = wait(set(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                cell = pending.pop(fut)
                try:
                    yield fut.result()
                except Exception:  # BrokenProcessPool: some worker was killed
                    broken.append(cell)
    except KeyboardInterrupt:
        done = list(_finished(pending))
        _terminate(pool)
        yield from done
        raise
    except BaseException:  # the consumer closed the stream (it was interrupted itself)
        _terminate(pool)
        raise
    pool.shutdown()
    for cell in broken:
        solo = _new_pool(1, threads)
        try:
            yield solo.submit(_safe_run, cell).result()
        except Exception as err:
            yield _failed(cell, err)
        except BaseException:
            _terminate(solo)
            raise
        solo.shutdown()


def check_scheduler(address: str) -> str:
    """'local' or a dask address (tcp://host:port); anything else is a one-line RunError."""
    if address == "local" or SCHEDULER_ADDRESS.match(address):
        return address
    raise RunError(
        f"--scheduler {address!r} is neither 'local' nor a dask address like tcp://host:8786"
    )


def _connect(address: str, timeout: float):
    """A dask Client for a running scheduler, or a one-line RunError within ``timeout``."""
    from distributed import Client

    check_scheduler(address)
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as err:
        raise RunError(
            f"cannot reach the dask scheduler at {address} within {timeout:g} s "
            f"({type(err).__name__}); start it or fix --scheduler"
        ) from None


def _dask(
    todo: list[Cell],
    workers: int,
    threads: int,
    scheduler: str,
    worker_timeout: float = WORKER_TIMEOUT_S,
) -> Iterator[dict]:
    """Cells as independent dask.distributed tasks: ``local`` starts a LocalCluster of
    single-threaded worker processes, an address (tcp://host:port) uses a running cluster
    whose workers have trapbench installed. Results are identical to a local run, since a
    seed's numbers depend only on (problem, seed index). When no worker is left for
    ``worker_timeout`` seconds the run fails (dask would wait for one forever)."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        client = Client(cluster)
        client.run(keep_freed_memory)  # its workers are trapbench's own; a cluster's are not
    else:
        client = _connect(scheduler, CONNECT_TIMEOUT_S)
    futures = {}
    try:
        try:
            client.run(_init_worker, threads)
        except OSError:  # a worker died meanwhile: its tasks go elsewhere, or time out below
            pass
        futures = {client.submit(_safe_run, cell, pure=False): cell for cell in todo}
        stream = as_completed(list(futures))
        alone_since = None
        while not stream.is_empty():
            if stream.has_ready():
                for fut in stream.next_batch(block=False):
                    try:
                        yield fut.result()
                    except Exception as err:  # a worker died or the task could not run
                        yield _failed(futures[fut], err)
                continue
            if client.nthreads():
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > worker_timeout:
                raise RunError(
                    f"every dask worker of {scheduler} is gone and none came back within "
                    f"{worker_timeout:g} s; {sum(not f.done() for f in futures)} task(s) "
                    "unfinished: restart the workers, then rerun with --resume"
                )
            time.sleep(0.2)
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
        try:  # a slow shutdown of a busy machine must not fail a finished run
            client.close()
            if cluster is not None:
                cluster.close()
        except (TimeoutError, OSError):
            pass


def clean_stale_temps(out: str | Path) -> list[Path]:
    """Remove the ``.NAME.*.tmp`` files a killed write of ``out`` left behind; returns them."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    stale = sorted(out.parent.glob(f".{out.name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def run(
    cells: list[Cell],
    doc: dict,
    out: str | Path,
    workers: int = 0,
    threads: int = 1,
    progress: bool = True,
    scheduler: str | None = None,
    task_seeds: int = 0,
    worker_timeout: float = WORKER_TIMEOUT_S,
    resume: bool = False,
) -> dict:
    """Run the cells not already in ``doc`` and write ``doc`` to ``out`` after each one.

    scheduler: None (in this process, or a local process pool when workers > 1), "local"
    (a dask LocalCluster) or a dask scheduler address. task_seeds > 0 splits large cells into
    seed chunks of that size, each an independent task; a finished chunk of an unfinished cell
    is kept in ``OUT.parts/`` (benchmarks/partial.py) and reused when ``resume`` is set. On
    KeyboardInterrupt every finished cell and chunk is written before the interrupt goes on."""
    clean_stale_temps(out)
    if not resume:
        partial.clear(out)
    done = {c["id"] for c in doc["cells"]}
    todo = [c for c in cells if c.id not in done]
    rerun = {c.id for c in todo}
    doc["errors"] = [e for e in doc.get("errors", []) if e["id"] not in rerun]
    tasks, parent, chunks_of = [], {}, {}
    parts: dict[str, list[dict]] = {c.id: [] for c in todo}
    reuse = resume and bool(partial.kept_files(out))
    for cell in todo:
        chunks_of[cell.id] = split_cell(cell, task_seeds)
        expect = partial.identity(cell) if reuse and len(chunks_of[cell.id]) > 1 else None
        for task in chunks_of[cell.id]:
            kept = partial.load(out, task, expect) if expect is not None else None
            if kept is not None:
                parts[cell.id].append(kept)
                continue
            tasks.append(task)
            parent[task.id] = cell
    # Longest budget first (stable: the suite's order among equals), so a pool does not end
    # on one long cell while its other workers idle; the results file keeps the suite's order.
    tasks.sort(key=lambda t: t.steps * t.seeds, reverse=True)
    failed: set[str] = set()
    workers = workers or default_workers(tasks)
    order = {c.id: i for i, c in enumerate(cells)}
    # chunked cells can take hours each: the bar then counts seed chunks, kept ones done
    chunked = any(len(c) > 1 for c in chunks_of.values())
    bar = tqdm(
        total=sum(map(len, chunks_of.values())) if chunked else len(todo),
        initial=sum(map(len, parts.values())) if chunked else 0,
        desc="seed chunks" if chunked else "cells",
        unit="chunk" if chunked else "cell",
        disable=not progress,
    )

    def gather(part: dict) -> None:
        cell = parent[part["id"]]
        if chunked:
            bar.update(1)
        if "error" not in part and len(chunks_of[cell.id]) > 1:
            # kept even when another chunk of the cell failed: --resume then retrains only it
            task = next(t for t in chunks_of[cell.id] if t.seed_start == part["seed_start"])
            partial.save(out, task, part, task_seeds)
        if cell.id in failed:
            return
        if "error" in part:
            failed.add(cell.id)
            collect({**part, "id": cell.id})
            return
        parts[cell.id].append(part)
        assemble_if_complete(cell)

    def assemble_if_complete(cell: Cell) -> None:
        if len(parts[cell.id]) == len(chunks_of[cell.id]):
            collect(assemble(cell, parts.pop(cell.id)))
            partial.drop(out, chunks_of[cell.id])

    def collect(result: dict) -> None:
        if "error" in result:
            doc["errors"].append(result)
            tqdm.write(f"trapbench: cell {result['id']} failed: {result['error']}")
        else:
            doc["cells"].append(result)
            doc["cells"].sort(key=lambda c: order.get(c["id"], len(order)))
        results.write(doc, out)
        if not chunked:
            bar.update(1)

    for cell in todo:  # cells whose every chunk an earlier run kept: nothing left to train
        assemble_if_complete(cell)
    if not tasks:
        stream: Iterator[dict] = iter(())
    elif scheduler:
        stream = _dask(tasks, workers, threads, scheduler, worker_timeout)
    elif workers == 1 or len(tasks) <= 1:
        _init_worker(threads)
        stream = (_safe_run(task, progress) for task in tasks)
    else:
        stream = _local_pool(tasks, workers, threads)
    try:
        for result in stream:
            gather(result)
    finally:  # also on Ctrl-C: the finished cells are on disk before the interrupt goes on
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the workers now if the interrupt came while a cell was saved
        bar.close()
        results.write(doc, out)
    if not parts:  # every cell assembled
        partial.clear(out)
    partial.tidy(out)  # a failed cell's finished chunks stay for --resume
    return doc
