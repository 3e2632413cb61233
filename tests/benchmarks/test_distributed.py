"""Scale-out: dask.distributed and process pools give the same per-seed results as a local
run, and a killed worker fails only its own cells."""

import os

import numpy as np

from benchmarks import results, runner, suites
from benchmarks.suites import Cell

SUITE = {
    "name": "dist",
    "problems": ["relu1d-x2:width=3", "relu1d-affine:width=2"],
    "optimizers": [{"name": "adam", "lr": 0.01}, {"name": "sgd", "lr": 0.05}],
    "seeds": 16,
    "steps": 40,
    "dtype": "float64",
}


def run(tmp_path, name, **kw):
    out = tmp_path / f"{name}.json"
    runner.run(suites.expand(SUITE), results.new_document(SUITE), out, progress=False, **kw)
    return results.read(out)


def finals(doc):
    return {c["id"]: np.array(c["records"]["final_risk"]) for c in doc["cells"]}


def test_dask_local_cluster_and_process_pool_match_in_process(tmp_path):
    local = finals(run(tmp_path, "local", workers=1))
    dask = finals(run(tmp_path, "dask", workers=2, scheduler="local"))
    pool = finals(run(tmp_path, "pool", workers=2))
    chunked_doc = run(tmp_path, "chunked", workers=2, scheduler="local", task_seeds=5)
    chunked = finals(chunked_doc)
    assert all(c["tasks"] == 4 for c in chunked_doc["cells"])  # 16 seeds in chunks of 5
    assert local.keys() == dask.keys() == pool.keys() == chunked.keys() and len(local) == 4
    for key in local:
        assert np.array_equal(local[key], dask[key])  # bit for bit
        assert np.array_equal(local[key], pool[key])
        assert np.array_equal(local[key], chunked[key])


def crash(cell, progress=False):
    if cell.optimizer == "sgd":
        os._exit(1)  # a worker killed mid-cell
    return runner.run_task(cell, progress)


def test_killed_worker_fails_its_cell_and_the_rest_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_safe_run", crash)
    cells = [
        Cell("relu1d-affine:width=2", "adam", {"lr": 0.01}, steps=20, seeds=4),
        Cell("relu1d-affine:width=2", "sgd", {"lr": 0.01}, steps=20, seeds=4),
    ]
    out = tmp_path / "r.json"
    doc = runner.run(cells, results.new_document({}), out, workers=2, progress=False)
    assert [e["id"] for e in doc["errors"]] == [cells[1].id]
    assert "worker lost" in doc["errors"][0]["error"]
    saved = results.read(out)
    assert [c["id"] for c in saved["cells"]] == [cells[0].id]


def test_longest_budgets_are_dispatched_first_and_saved_in_suite_order(tmp_path, monkeypatch):
    """A pool that starts the long cells last ends on them alone (in `make bench`, a
    40000-step cell started last); the results file still lists cells as the suite does."""
    suite = {
        **SUITE,
        "optimizers": [
            {"name": "adam", "lr": 0.01},
            {"name": "sgd", "lr": 0.05, "steps": 60},
            {"name": "adagrad", "lr": 0.1, "steps": 50},
        ],
    }
    dispatched = []
    real = runner._safe_run

    def spy(cell, progress=False):
        dispatched.append(cell.id)
        return real(cell, progress)

    monkeypatch.setattr(runner, "_safe_run", spy)
    cells = suites.expand(suite)
    out = tmp_path / "order.json"
    runner.run(cells, results.new_document(suite), out, workers=1, progress=False)
    budget = {c.id: c.steps for c in cells}
    assert [budget[i] for i in dispatched] == [60, 60, 50, 50, 40, 40]
    assert [c["id"] for c in results.read(out)["cells"]] == [c.id for c in cells]
