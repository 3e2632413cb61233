"""Finished seed chunks of an unfinished cell survive an interrupt and are reused by a resume
(benchmarks/partial.py): the assembled cell equals one run in one go, bit for bit in float64."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import partial, reproduce, results, runner, suites
from benchmarks.cli import main

SUITE = {
    "name": "chunks",
    "problems": ["relu1d-x2:width=3"],
    "optimizers": [{"name": "adam", "lr": 0.01}],
    "seeds": 12,
    "steps": 300,
    "dtype": "float64",
}
TASK_SEEDS = 4  # three chunks: seeds 0-3, 4-7, 8-11


def run(out, resume=False, task_seeds=TASK_SEEDS, suite=SUITE):
    doc = results.read(out) if resume and out.exists() else results.new_document(suite)
    return runner.run(
        suites.expand(suite),
        doc,
        out,
        workers=1,
        progress=False,
        task_seeds=task_seeds,
        resume=resume,
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The cell run in one go, unchunked: what every resumed run must equal."""
    return run(tmp_path_factory.mktemp("whole") / "r.json", task_seeds=0)["cells"][0]


@pytest.fixture
def trained(monkeypatch):
    """Seed starts of the chunks this test trains; an interrupt after ``stop_after`` chunks."""
    calls: list[int] = []
    real = runner.run_task

    def counting(cell, progress=False):
        if len(calls) == counting.stop_after:
            raise KeyboardInterrupt
        calls.append(cell.seed_start)
        return real(cell, progress)

    counting.stop_after = -1
    monkeypatch.setattr(runner, "run_task", counting)
    return counting, calls


def same_cell(a: dict, b: dict) -> None:
    assert a["id"] == b["id"]
    for k in ("final_risk", "stop_step", "fate"):
        assert np.array_equal(np.asarray(a["records"][k]), np.asarray(b["records"][k])), k
    assert a["metrics"]["success_rate"] == b["metrics"]["success_rate"]


def test_an_interrupt_keeps_finished_chunks_and_resume_trains_only_the_rest(
    tmp_path, whole, trained
):
    counting, calls = trained
    out = tmp_path / "r.json"
    counting.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        run(out)
    assert results.read(out)["cells"] == []  # the cell is not finished
    kept = list(partial.directory(out).glob("*.pkl"))
    assert len(kept) == 2  # but two chunks are, readable as the results file is
    assert {p.stat().st_mode & 0o777 for p in kept} == {results.file_mode()}
    calls.clear()
    counting.stop_after = -1
    doc = run(out, resume=True)
    assert len(calls) == 1  # only the chunk that had not finished
    same_cell(doc["cells"][0], whole)
    assert not partial.directory(out).exists()  # gone once the cell is assembled


def test_a_cell_whose_every_chunk_was_kept_is_assembled_without_training(tmp_path, whole, trained):
    _, calls = trained
    out = tmp_path / "r.json"
    for task in runner.split_cell(suites.expand(SUITE)[0], TASK_SEEDS):
        partial.save(out, task, runner.run_task(task))
    calls.clear()
    doc = run(out, resume=True)
    assert calls == []
    same_cell(doc["cells"][0], whole)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"resume": False}, "a fresh run (no --resume) starts over"),
        ({"task_seeds": 6}, "another chunk size is another task"),
        ({"suite": {**SUITE, "steps": 301}}, "another budget is another task"),
    ],
    ids=["no-resume", "other-chunk-size", "other-steps"],
)
def test_kept_chunks_are_reused_only_by_the_same_task(tmp_path, trained, change, why):
    counting, calls = trained
    out = tmp_path / "r.json"
    counting.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        run(out)
    calls.clear()
    counting.stop_after = -1
    kw = {"resume": True, **change}
    run(out, **kw)
    cell = suites.expand(kw.get("suite", SUITE))[0]
    assert len(calls) == len(runner.split_cell(cell, kw.get("task_seeds", TASK_SEEDS))), why


def test_a_damaged_chunk_is_reported_and_recomputed(tmp_path, whole, trained, capsys):
    counting, calls = trained
    out = tmp_path / "r.json"
    counting.stop_after = 1
    with pytest.raises(KeyboardInterrupt):
        run(out)
    (kept,) = partial.directory(out).glob("*.pkl")
    kept.write_bytes(b"not a pickle")
    calls.clear()
    counting.stop_after = -1
    doc = run(out, resume=True)
    assert len(calls) == 3
    err = capsys.readouterr().err
    assert f"ignoring kept chunk {kept}" in err and "recomputing it" in err
    same_cell(doc["cells"][0], whole)


def test_reproduce_rejects_a_negative_chunk_size_before_any_work(capsys):
    assert main(["reproduce", "cheridito-2024", "--quick", "--task-seeds", "-1"]) != 0
    assert "--task-seeds must be an integer >= 0, got -1" in capsys.readouterr().err


def test_a_chunk_that_cannot_be_kept_costs_one_line_not_the_run(tmp_path, whole, capsys):
    out = tmp_path / "r.json"
    partial.directory(out).write_text("a file where the chunk folder would go")
    doc = run(out)
    assert "cannot keep a finished chunk" in capsys.readouterr().err
    same_cell(doc["cells"][0], whole)


class Captured(Exception):
    pass


@pytest.mark.parametrize(
    "argv, chunk",
    [
        (["jentzen-2022"], 60),  # hour-long cells: chunked unless told otherwise
        (["jentzen-2022", "--quick"], 0),
        (["jentzen-2022", "--task-seeds", "0"], 0),
        (["cheridito-2024"], 0),
        (["cheridito-2024", "--task-seeds", "20"], 20),
    ],
)
def test_reproduce_chunks_the_reproductions_that_need_it(monkeypatch, tmp_path, argv, chunk):
    def capture(cells, doc, out, **kw):
        raise Captured(kw["task_seeds"], kw["resume"])

    monkeypatch.setattr(reproduce, "expand", lambda suite, **kw: [])
    monkeypatch.setattr(runner, "run", capture)
    with pytest.raises(Captured) as got:
        main(["reproduce", *argv, "--no-progress", "-o", str(tmp_path / "r.json")])
    assert got.value.args == (chunk, False)
