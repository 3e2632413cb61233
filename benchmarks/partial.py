"""Finished seed chunks of unfinished cells, kept beside the results file.

Why: a cell is written to the results file only when all its seeds are done, and a cell of a
paper's protocol can take hours (jentzen-2022's 1-50-50-1 network, 300 runs of 50,000 steps).
Split into seed chunks (``--task-seeds``), each chunk that finishes is pickled into
``OUT.parts/`` at once, so an interrupted run resumed with ``--resume`` recomputes only the
chunks that had not finished. A seed's numbers depend only on (problem, seed index,
protocol), so a cell assembled from chunks of several sessions has the records of one run in
one go. (Two per-cell budgets apply per chunk, as they always did for split cells: the
Hessian verdicts, ``hessian`` seeds per task, and ``--verify``'s reruns.)

Contract:
  * A chunk is found by a digest of its task: every ``Cell`` field that shapes a seed's
    numbers (``EXECUTION_FIELDS`` may change, as ``--resume`` allows for finished cells) and
    its seed range. It is reused only if the code that made it is the code running now, as
    far as the results can tell: the problem's facts (``Problem.info``), the optimizer's
    origin (package and version, or a file plug-in's sha256) and torch's version. An
    engine change within one trapbench version is not detected: after upgrading, --force.
  * The CLI refuses a run that would silently drop kept chunks: without --resume, or with
    another --task-seeds than the one they were made with (``chunk_size``).
  * The files are this tool's own (pickle); one that cannot be used is named in one line
    and recomputed. Chunks that cannot be written cost one line, never the run. The folder
    goes when its run has assembled every cell.
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

import torch

from benchmarks import results
from benchmarks.suites import EXECUTION_FIELDS, Cell

FORMAT = 2  # bump when a kept file's layout changes: older files are then recomputed


class PartialError(ValueError):
    """Kept chunks that the asked run would drop: the message names the fix."""


class _Unusable(ValueError):
    """A kept file that is readable but not a chunk this version can use."""


def directory(out: str | Path) -> Path:
    """Where the chunks of the results file ``out`` are kept."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


def key(task: Cell) -> str:
    """The file name of a task's chunk: a digest of everything that shapes its numbers."""
    fields = {k: v for k, v in task.to_dict().items() if k not in EXECUTION_FIELDS}
    blob = json.dumps({"format": FORMAT, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32] + ".pkl"


def identity(task: Cell) -> dict:
    """What a kept chunk must have been made with to be reused now (see the contract)."""
    from optimizers.record import plugin_origin
    from optimizers.resolve import resolve
    from problems.registry import make

    return {
        "problem_info": make(task.problem).info(),
        "origin": plugin_origin(resolve(task.optimizer)),
        "torch": torch.__version__,
    }


def _made_with(part: dict, torch_version: str) -> dict:
    return {
        "problem_info": part["problem_info"],
        "origin": part["optimizer"]["origin"],
        "torch": torch_version,
    }


def save(out: str | Path, task: Cell, part: dict, task_seeds: int) -> None:
    """Keep a finished chunk (atomically: temp file + rename, so a kill leaves no half file).
    A chunk that cannot be written is still in this run's memory: one line, and the run goes
    on."""
    folder = directory(out)
    kept = {"format": FORMAT, "task_seeds": task_seeds, "torch": torch.__version__, "part": part}
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=folder, delete=False, suffix=".tmp") as fh:
            tmp = fh.name
            pickle.dump(kept, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, results.file_mode())  # as the results file (a temp file is 0600)
        os.replace(tmp, folder / key(task))
    except Exception as err:  # a full disk, an unpicklable plug-in value: never the run
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        print(
            f"trapbench: cannot keep a finished chunk in {folder} ({type(err).__name__}: "
            f"{getattr(err, 'strerror', None) or err}); an interrupt now would lose it",
            file=sys.stderr,
        )


def _read(path: Path) -> dict:
    with path.open("rb") as fh:
        kept = pickle.load(fh)
    if not isinstance(kept, dict) or kept.get("format") != FORMAT:
        raise _Unusable("written by another trapbench version")
    return kept


def load(out: str | Path, task: Cell, expect: dict) -> dict | None:
    """A chunk kept by an earlier run of the same task with the same code (``expect``, from
    ``identity``), or None: then it is recomputed, with one line saying why."""
    path = directory(out) / key(task)
    if not path.is_file():
        return None
    try:
        kept = _read(path)
        part = kept["part"]
        if part["id"] != task.id or part["seed_start"] != task.seed_start:
            why = "it holds another task's seeds"
        elif len(part["records"]["final_risk"]) != task.seeds:
            why = "it holds another number of seeds"
        else:
            made = _made_with(part, kept["torch"])
            changed = [k for k in expect if made[k] != expect[k]]
            if not changed:
                return part
            why = f"made with another {', '.join(changed)}"
    except Exception as err:  # any unreadable file: recompute, never stop the run
        why = str(err) if isinstance(err, _Unusable) else f"{type(err).__name__}: {err}"
    print(f"trapbench: ignoring kept chunk {path} ({why}); recomputing it", file=sys.stderr)
    return None


def kept_files(out: str | Path) -> list[Path]:
    folder = directory(out)
    return sorted(folder.glob("*.pkl")) if folder.is_dir() else []


def chunk_size(out: str | Path, asked: int | None, default: int, resume: bool) -> int:
    """The seeds per chunk of a run writing ``out``: the one asked (else ``default``), or on
    --resume the one the kept chunks were made with. Raises PartialError where the run would
    otherwise drop kept chunks without a word."""
    files = kept_files(out)
    if not files:
        return default if asked is None else asked
    folder = directory(out)
    if not resume:
        raise PartialError(
            f"{folder} holds {len(files)} finished seed chunk(s) of an interrupted run; pass "
            "--resume to use them or --force to discard them"
        )
    made = None
    for path in files:
        try:
            made = _read(path)["task_seeds"]
            break
        except Exception:
            continue
    if made is None or asked in (None, made):
        return made if made is not None else (default if asked is None else asked)
    raise PartialError(
        f"{folder} holds chunks of {made} seeds; resume with --task-seeds {made} (or without "
        "the flag), or pass --force to discard them"
    )


def drop(out: str | Path, tasks: list[Cell]) -> None:
    """Forget the chunks of a cell that has been assembled into the results file."""
    for task in tasks:
        try:
            (directory(out) / key(task)).unlink(missing_ok=True)
        except OSError:  # never kept (see save): nothing to forget
            pass


def tidy(out: str | Path) -> None:
    """Remove temp files a killed write left, and the folder once it holds nothing."""
    folder = directory(out)
    if not folder.is_dir():
        return
    for tmp in folder.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:  # chunks of a failed or unfinished cell stay for --resume
        pass


def clear(out: str | Path) -> None:
    """Remove every kept chunk: a fresh run (not --resume), or a run that has finished."""
    shutil.rmtree(directory(out), ignore_errors=True)
