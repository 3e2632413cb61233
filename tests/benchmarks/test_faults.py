"""Faults (issue 15, item 3): interrupts and crashes lose nothing and leave nothing behind.

Real subprocesses get real signals: Ctrl-C (SIGINT) to a `trapbench run --workers 2` parent
saves every finished cell and exits 130 long before the running cell could finish; `kill -9`
of the parent takes its workers with it; a killed write's temp file is removed by the next
run; a dask run whose every worker died fails with one line instead of hanging."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import results, runner, suites
from benchmarks.cli import main

ROOT = Path(__file__).resolve().parents[2]
# the first cell finishes in seconds, the second takes minutes: an interrupt always finds one
# cell finished and one running
SLOW_SUITE = """
name = "faults"
seeds = 16
steps = 4000
problems = ["relu1d-affine:width=2", "deep-teacher:points=2048"]
optimizers = [{ name = "sgd", lr = 0.01 }]
"""
QUICK = {
    "name": "quick",
    "problems": ["relu1d-affine:width=2"],
    "optimizers": [{"name": "sgd", "lr": 0.01}],
    "seeds": 4,
    "steps": 10,
}


def children(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, limit: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def finished_cells(path: Path) -> list[str]:
    try:
        return [c["id"] for c in json.loads(path.read_text())["cells"]]
    except (OSError, ValueError, KeyError):
        return []


def start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    suite = tmp_path / "faults.toml"
    suite.write_text(SLOW_SUITE)
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "benchmarks.cli", "run", "--suite", str(suite), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, out


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_sigint_stops_at_once_saves_finished_cells_and_exits_130(tmp_path):
    start = time.monotonic()
    proc, out = start_run(tmp_path)
    try:
        assert wait_for(lambda: finished_cells(out), 600), proc.stderr.read()
        first_cell = time.monotonic() - start  # spawning workers, importing torch, one cell
        workers = children(proc.pid)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = proc.wait(timeout=120)
        stopped = time.monotonic() - sent
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    # stopping takes a small fraction of what one worker start and one cell took
    assert stopped < 0.25 * first_cell, (stopped, first_cell)
    assert finished_cells(out) == ["relu1d-affine:width=2|sgd|lr=0.01|s0+16|t4000"]
    assert results.read(out)["cells"][0]["metrics"]  # a complete, readable results file
    assert wait_for(lambda: not any(alive(p) for p in workers), 30)


def test_kill9_of_the_parent_takes_its_workers_with_it(tmp_path):
    proc, out = start_run(tmp_path)
    try:
        assert wait_for(lambda: finished_cells(out), 600), proc.stderr.read()
        workers = children(proc.pid)
        assert len(workers) >= 2  # two pool workers (and the resource tracker)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert wait_for(lambda: not any(alive(p) for p in workers), 30), [
        p for p in workers if alive(p)
    ]


def test_stale_temp_files_of_a_killed_write_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "r.json"
    stale = [tmp_path / ".r.json.k1l9xq.tmp", tmp_path / ".r.json.abcdef.tmp"]
    for path in stale:
        path.write_text('{"half a fi')
    other = tmp_path / ".other.json.abcdef.tmp"  # another results file's: not ours to remove
    other.write_text("")
    runner.run(suites.expand(QUICK), results.new_document(QUICK), out, workers=1, progress=False)
    assert not any(p.exists() for p in stale)
    assert other.exists()
    assert len(results.read(out)["cells"]) == 1


def dask_process(tmp_path: Path, *args: str) -> subprocess.Popen:
    log = (tmp_path / f"dask-{len(list(tmp_path.glob('dask-*')))}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )


def test_dask_run_whose_workers_all_died_fails_with_one_line(tmp_path):
    """A real cluster on 127.0.0.1: a scheduler and two workers without nannies (a nanny would
    restart its worker), all separate processes; both workers get SIGKILL mid-cell."""
    distributed = pytest.importorskip("distributed")
    info = tmp_path / "scheduler.json"
    scheduler = dask_process(
        tmp_path, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
        "--dashboard-address", ":0", "--scheduler-file", str(info),
    )  # fmt: skip
    workers = []
    try:
        assert wait_for(info.exists, 120)
        address = json.loads(info.read_text())["address"]
        worker_args = ["distributed.cli.dask_worker", address, "--no-nanny", "--nthreads", "1"]
        workers = [dask_process(tmp_path, *worker_args, "--host", "127.0.0.1") for _ in "ab"]
        suite = {**QUICK, "problems": ["deep-teacher:points=2048"], "steps": 4000, "seeds": 16}
        cells = suites.expand({**suite, "optimizers": [{"name": "sgd", "lr": 0.01}, "adam"]})

        watcher = distributed.Client(address, timeout="30s")
        # both workers must have joined before the run: one still starting up (importing
        # torch takes seconds on a loaded machine) would look like a worker already gone
        watcher.wait_for_workers(2, timeout=300)

        def kill_every_worker() -> None:  # once both run a cell (each takes minutes)
            wait_for(lambda: sum(map(bool, watcher.processing().values())) == 2, 300, 0.2)
            for proc in workers:
                proc.kill()

        threading.Thread(target=kill_every_worker, daemon=True).start()
        with pytest.raises(runner.RunError, match="every dask worker .* is gone"):
            runner.run(
                cells,
                results.new_document(suite),
                tmp_path / "r.json",
                progress=False,
                scheduler=address,
                worker_timeout=3,
            )
        assert all(proc.poll() is not None for proc in workers)
        watcher.close()
    finally:
        for proc in [*workers, scheduler]:
            proc.kill()
            proc.wait(30)


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("tcp://127.0.0.1:1", "cannot reach the dask scheduler at tcp://127.0.0.1:1"),
        ("not an address", "is neither 'local' nor a dask address"),
        ("tcp://127.0.0.1", "is neither 'local' nor a dask address"),
    ],
)
def test_bad_scheduler_address_is_one_line(tmp_path, capsys, address, says):
    argv = ["run", "--problem", "relu1d-affine:width=2", "--optimizer", "sgd", "--seeds", "2"]
    argv += ["--steps", "5", "--no-progress", "-o", str(tmp_path / "r.json")]
    code = main([*argv, "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in err
