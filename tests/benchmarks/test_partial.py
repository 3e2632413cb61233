"""Finished seed chunks of an unfinished cell survive an interrupt and are reused by a resume
(benchmarks/partial.py): the assembled cell has the records of one run in one go, bit for bit
in float64; chunks are reused only by the same task made by the same code, and the CLI never
drops them without a word."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import partial, reproduce, results, runner, suites
from benchmarks.cli import main

ROOT = Path(__file__).resolve().parents[2]
SUITE = {
    "name": "chunks",
    "problems": ["relu1d-x2:width=3"],
    "optimizers": [{"name": "adam", "lr": 0.01}],
    "seeds": 12,
    "steps": 300,
    "dtype": "float64",
    "hessian": 0,  # a Hessian budget applies per chunk (see partial.py); records do not
}
SUITE_TOML = """
name = "chunks"
problems = ["relu1d-x2:width=3"]
optimizers = [{ name = "adam", lr = 0.01 }]
seeds = 12
steps = 300
dtype = "float64"
hessian = 0
"""
TASK_SEEDS = 4  # three chunks: seeds 0-3, 4-7, 8-11


def run(out, resume=False, task_seeds=TASK_SEEDS, suite=SUITE, **execution):
    doc = results.read(out) if resume and out.exists() else results.new_document(suite)
    return runner.run(
        suites.expand(suite, **execution),
        doc,
        out,
        workers=1,
        progress=False,
        task_seeds=task_seeds,
        resume=resume,
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The cell run in one go, unchunked, as written: what every resumed run must equal."""
    out = tmp_path_factory.mktemp("whole") / "r.json"
    run(out, task_seeds=0)
    return results.read(out)["cells"][0]


@pytest.fixture
def trained(monkeypatch):
    """Seed starts of the chunks this test trains; an interrupt after ``stop_after`` chunks,
    a failure of the chunks in ``fail``."""
    calls: list[int] = []
    real = runner.run_task

    def counting(cell, progress=False):
        if len(calls) == counting.stop_after:
            raise KeyboardInterrupt
        calls.append(cell.seed_start)
        if cell.seed_start in counting.fail:
            raise RuntimeError("a chunk that fails")
        return real(cell, progress)

    counting.stop_after, counting.fail = -1, ()
    monkeypatch.setattr(runner, "run_task", counting)
    return counting, calls


def interrupted(out, counting, calls, after: int) -> None:
    """A chunked run of SUITE stopped by Ctrl-C after ``after`` chunks."""
    counting.stop_after = after
    with pytest.raises(KeyboardInterrupt):
        run(out)
    calls.clear()
    counting.stop_after = -1


def same_cell(a: dict, b: dict) -> None:
    """Every per-seed record, checkpoint and metric but the timing, bit for bit (both as
    written to the results file)."""
    assert a["id"] == b["id"]
    assert a["records"].keys() == b["records"].keys()
    for k in a["records"]:
        x, y = np.asarray(a["records"][k]), np.asarray(b["records"][k])
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), k
    assert a["checkpoints"] == b["checkpoints"]
    untimed = {"wall_s", "seed_steps_per_s", "ert_seconds"}
    assert {k: v for k, v in a["metrics"].items() if k not in untimed} == {
        k: v for k, v in b["metrics"].items() if k not in untimed
    }


def test_an_interrupt_keeps_finished_chunks_and_resume_trains_only_the_rest(
    tmp_path, whole, trained
):
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=2)
    assert results.read(out)["cells"] == []  # the cell is not finished
    kept = partial.kept_files(out)
    assert len(kept) == 2  # but two chunks are, readable as the results file is
    assert {p.stat().st_mode & 0o777 for p in kept} == {results.file_mode()}
    run(out, resume=True)
    assert calls == [8]  # only the chunk that had not finished
    same_cell(results.read(out)["cells"][0], whole)
    assert not partial.directory(out).exists()  # gone once the cell is assembled


def test_the_progress_bar_counts_seed_chunks_kept_ones_done(tmp_path, trained, capsys):
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=2)
    capsys.readouterr()
    runner.run(suites.expand(SUITE), results.new_document(SUITE), out, workers=1,
               task_seeds=TASK_SEEDS, resume=True)  # fmt: skip
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.startswith("seed chunks:  67%") and "2/3" in line for line in bar), bar
    assert "3/3" in bar[-1]


def test_a_cell_whose_every_chunk_was_kept_is_assembled_without_training(tmp_path, whole, trained):
    _, calls = trained
    out = tmp_path / "r.json"
    for task in runner.split_cell(suites.expand(SUITE)[0], TASK_SEEDS):
        partial.save(out, task, runner.run_task(task), TASK_SEEDS)
    calls.clear()
    run(out, resume=True)
    assert calls == []
    same_cell(results.read(out)["cells"][0], whole)


def test_the_chunks_that_finish_after_another_chunk_failed_are_kept(tmp_path, whole, trained):
    counting, calls = trained
    out = tmp_path / "r.json"
    counting.fail = (0,)
    doc = run(out)
    assert doc["cells"] == [] and len(doc["errors"]) == 1
    assert len(partial.kept_files(out)) == 2
    calls.clear()
    counting.fail = ()
    run(out, resume=True)
    assert calls == [0]
    same_cell(results.read(out)["cells"][0], whole)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"resume": False}, "a fresh run (no --resume) starts over"),
        ({"task_seeds": 6}, "another chunk size is another task"),
        ({"suite": {**SUITE, "steps": 301}}, "another budget is another task"),
        ({"suite": {**SUITE, "dtype": "float32"}}, "another dtype is another task"),
        ({"suite": {**SUITE, "checkpoints": 5}}, "other checkpoints are another task"),
        ({"suite": {**SUITE, "optimizers": [{"name": "adam", "lr": 0.02}]}}, "another lr"),
    ],
    ids=["no-resume", "other-chunk-size", "other-steps", "other-dtype", "other-marks", "other-lr"],
)
def test_kept_chunks_are_reused_only_by_the_same_task(tmp_path, trained, change, why):
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=2)
    kw = {"resume": True, **change}
    run(out, **kw)
    cell = suites.expand(kw.get("suite", SUITE))[0]
    assert len(calls) == len(runner.split_cell(cell, kw.get("task_seeds", TASK_SEEDS))), why


def test_execution_settings_may_change_on_resume(tmp_path, whole, trained):
    """As for finished cells (cli._resumable): chunking and verification change no number."""
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=2)
    run(out, resume=True, chunk=2, verify=1)
    assert calls == [8]
    same_cell(results.read(out)["cells"][0], whole)


def edit_kept(path, edit) -> None:
    with path.open("rb") as fh:
        kept = pickle.load(fh)
    edit(kept)
    with path.open("wb") as fh:
        pickle.dump(kept, fh)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda k: k.update(torch="1.0.0"), "made with another torch"),
        (
            lambda k: k["part"]["optimizer"]["origin"].update(version="0.0"),
            "made with another origin",
        ),
        (lambda k: k["part"]["problem_info"].update(optimum=1.0), "made with another problem"),
        (lambda k: k.update(format=0), "written by another trapbench version"),
        (lambda k: k["part"].update(seed_start=4), "it holds another task's seeds"),
    ],
    ids=["torch", "optimizer-origin", "problem-facts", "format", "seeds"],
)
def test_a_chunk_made_by_other_code_is_named_and_recomputed(
    tmp_path, whole, trained, capsys, edit, message
):
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=1)
    (kept,) = partial.kept_files(out)
    edit_kept(kept, edit)
    run(out, resume=True)
    assert len(calls) == 3
    err = capsys.readouterr().err
    assert f"ignoring kept chunk {kept} ({message}" in err and "recomputing it" in err
    same_cell(results.read(out)["cells"][0], whole)


def test_a_damaged_chunk_is_reported_and_recomputed(tmp_path, whole, trained, capsys):
    counting, calls = trained
    out = tmp_path / "r.json"
    interrupted(out, counting, calls, after=1)
    (kept,) = partial.kept_files(out)
    kept.write_bytes(b"not a pickle")
    run(out, resume=True)
    assert len(calls) == 3
    err = capsys.readouterr().err
    assert f"ignoring kept chunk {kept}" in err and "recomputing it" in err
    same_cell(results.read(out)["cells"][0], whole)


def unpicklable(monkeypatch, out) -> None:
    """Parts that carry a value pickle cannot write (as a plug-in's could)."""
    real = runner.run_task
    monkeypatch.setattr(runner, "run_task", lambda cell, progress=False: {
        **real(cell, progress), "plug-in value": lambda: None
    })  # fmt: skip


@pytest.mark.parametrize(
    "spoil",
    [
        lambda monkeypatch, out: partial.directory(out).write_text("a file, not a folder"),
        unpicklable,
    ],
    ids=["unwritable", "unpicklable"],
)
def test_a_chunk_that_cannot_be_kept_costs_one_line_not_the_run(
    tmp_path, whole, capsys, monkeypatch, spoil
):
    out = tmp_path / "r.json"
    spoil(monkeypatch, out)
    run(out)
    assert "cannot keep a finished chunk" in capsys.readouterr().err
    same_cell(results.read(out)["cells"][0], whole)
    assert not list(tmp_path.glob("r.json.parts/*.tmp"))  # no half-written file is left


def cli_run(tmp_path, *flags) -> int:
    suite = tmp_path / "chunks.toml"
    suite.write_text(SUITE_TOML)
    argv = ["run", "--suite", str(suite), "-o", str(tmp_path / "r.json"), "--workers", "1"]
    return main([*argv, "--no-progress", "--no-compile", *flags])  # eager, as `whole`


def test_the_cli_resumes_with_the_chunk_size_the_kept_chunks_were_made_with(
    tmp_path, whole, trained, capsys
):
    counting, calls = trained
    counting.stop_after = 2
    assert cli_run(tmp_path, "--task-seeds", str(TASK_SEEDS)) == 130
    calls.clear()
    counting.stop_after = -1
    (tmp_path / "r.json").unlink()  # as after a kill -9: only the chunks are on disk
    assert cli_run(tmp_path) == 2  # a plain rerun would discard two finished chunks
    assert "holds 2 finished seed chunk(s)" in capsys.readouterr().err
    assert cli_run(tmp_path, "--resume", "--task-seeds", "6") == 2
    assert "resume with --task-seeds 4 (or without the flag)" in capsys.readouterr().err
    assert calls == []  # both refused before any work
    assert cli_run(tmp_path, "--resume") == 0
    assert calls == [8]
    same_cell(results.read(tmp_path / "r.json")["cells"][0], whole)


def test_force_discards_kept_chunks(tmp_path, trained):
    counting, calls = trained
    counting.stop_after = 2
    assert cli_run(tmp_path, "--task-seeds", str(TASK_SEEDS)) == 130
    calls.clear()
    counting.stop_after = -1
    assert cli_run(tmp_path, "--force", "--task-seeds", str(TASK_SEEDS)) == 0
    assert calls == [0, 4, 8]


class Captured(Exception):
    pass


@pytest.mark.parametrize(
    "argv, chunk, resume",
    [
        (["jentzen-2022"], 60, False),  # hour-long cells: chunked unless told otherwise
        (["jentzen-2022", "--resume"], 60, True),
        (["jentzen-2022", "--quick"], 0, False),
        (["jentzen-2022", "--task-seeds", "0"], 0, False),
        (["cheridito-2024"], 0, False),
        (["cheridito-2024", "--task-seeds", "20"], 20, False),
    ],
)
def test_reproduce_chunks_the_reproductions_that_need_it(
    monkeypatch, tmp_path, argv, chunk, resume
):
    def capture(cells, doc, out, **kw):
        raise Captured(kw["task_seeds"], kw["resume"])

    monkeypatch.setattr(reproduce, "expand", lambda suite, **kw: [])
    monkeypatch.setattr(runner, "run", capture)
    with pytest.raises(Captured) as got:
        main(["reproduce", *argv, "--no-progress", "-o", str(tmp_path / "r.json")])
    assert got.value.args == (chunk, resume)


def test_reproduce_rejects_a_negative_chunk_size_before_any_work(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["reproduce", "cheridito-2024", "--quick", "--task-seeds", "-1", "-o", str(out)])
    assert "--task-seeds must be an integer >= 0, got -1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process pool, as on Linux")
def test_ctrl_c_to_a_process_pool_keeps_finished_chunks_for_resume(tmp_path):
    """The real thing: `trapbench run --workers 2` in a subprocess, SIGINT once a chunk is
    kept, then --resume: the cell equals one run in one go."""
    steps = 3000  # a chunk takes seconds: the third is still running when the first is kept
    suite = tmp_path / "slow.toml"
    suite.write_text(SUITE_TOML.replace("steps = 300", f"steps = {steps}"))
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "benchmarks.cli", "run", "--suite", str(suite), "-o", str(out)]
    cmd += ["--workers", "2", "--task-seeds", str(TASK_SEEDS), "--no-compile", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not partial.kept_files(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 130, proc.stderr.read()
    assert results.read(out)["cells"] == [] and 1 <= len(partial.kept_files(out)) < 3
    resumed = subprocess.run(
        [*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    alone = tmp_path / "alone.json"
    run(alone, task_seeds=0, suite={**SUITE, "steps": steps})
    same_cell(results.read(out)["cells"][0], results.read(alone)["cells"][0])
    assert not partial.directory(out).exists()
