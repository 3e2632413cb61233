"""Finished seed chunks of unfinished cells, kept beside the results file.

Why: a cell is written to the results file only when all its seeds are done, and a cell of a
paper's protocol can take hours (jentzen-2022's 1-50-50-1 network, 300 runs of 50,000 steps).
Split into seed chunks (``--task-seeds``), each chunk that finishes is pickled into
``OUT.parts/`` at once, so an interrupted run resumed with ``--resume`` recomputes only the
chunks that had not finished. A seed's numbers depend only on (problem, seed index,
protocol), so a cell assembled from chunks of several sessions equals one run in one go.

Contract: a chunk file is found by a digest of its whole task (every ``Cell`` field, seed
range included): a resume with any other setting, or another chunk size, recomputes rather
than mixes. The files are this tool's own (pickle); one that cannot be read is reported in
one line and recomputed. The directory goes when its run has assembled every cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import results
from benchmarks.suites import Cell

FORMAT = 1  # bump when a part's layout changes: older files are then recomputed, not misread


def directory(out: str | Path) -> Path:
    """Where the chunks of the results file ``out`` are kept."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def key(task: Cell) -> str:
    """The file name of a task's chunk: a digest of everything that shapes its numbers."""
    blob = json.dumps({"format": FORMAT, **task.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32] + ".pkl"


def save(out: str | Path, task: Cell, part: dict) -> None:
    """Keep a finished chunk (atomically: temp file + rename, so a kill leaves no half file).
    A chunk that cannot be written is still in this run's memory: one line, and the run goes on.
    """
    folder = directory(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False, suffix=".tmp") as fh:
            pickle.dump(part, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(fh.name, results.file_mode())  # as the results file (a temp file is 0600)
        os.replace(fh.name, folder / key(task))
    except OSError as err:
        print(
            f"trapbench: cannot keep a finished chunk in {folder} ({err.strerror}); "
            "an interrupt now would lose it",
            file=sys.stderr,
        )


def load(out: str | Path, task: Cell) -> dict | None:
    """A chunk kept by an earlier run of the same task, or None (also when the file is
    damaged or belongs to another task: it is then recomputed)."""
    path = directory(out) / key(task)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            part = pickle.load(fh)
        ok = (
            part["id"] == task.id
            and part["seed_start"] == task.seed_start
            and len(part["records"]["final_risk"]) == task.seeds
        )
    except Exception as err:  # any unreadable file: recompute, never stop the run
        ok = False
        why = f"{type(err).__name__}: {err}"
    else:
        why = "it holds another task's seeds"
    if ok:
        return part
    print(f"trapbench: ignoring kept chunk {path} ({why}); recomputing it", file=sys.stderr)
    return None


def drop(out: str | Path, tasks: list[Cell]) -> None:
    """Forget the chunks of a cell that has been assembled into the results file."""
    for task in tasks:
        try:
            (directory(out) / key(task)).unlink(missing_ok=True)
        except OSError:  # never kept (see save): nothing to forget
            pass


def clear(out: str | Path) -> None:
    """Remove every kept chunk: a fresh run (not --resume), or a run that has finished."""
    shutil.rmtree(directory(out), ignore_errors=True)
