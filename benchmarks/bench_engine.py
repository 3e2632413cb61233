"""pytest-benchmark timing benches of the engine (run with `make timing`).

Saved runs land in .benchmarks/; compare commits with
    make timing BENCH_ARGS="--benchmark-compare --benchmark-compare-fail=mean:25%"
Wall-clock is never asserted in the test suite: machines are shared and noisy.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import BUILTINS
from problems.registry import make

CASES = {
    "relu1d-H32-S1024": ("relu1d-x2:width=32", 1024, 20),
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_adam_float32(benchmark, case):
    spec, seeds, steps = CASES[case]
    problem = make(spec)
    cfg = RunConfig(steps=steps, dtype=torch.float32)
    seed_ids = torch.arange(seeds)

    def run():
        return train_cell(problem, BUILTINS["adam"], {}, seed_ids, cfg)

    records, _ = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["seed_steps"] = seeds * steps
    assert records["final_risk"].shape == (seeds,)
