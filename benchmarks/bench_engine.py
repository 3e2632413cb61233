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

# issue 8's three cases: (problem, seeds, steps)
CASES = {
    "relu1d-H32-S1024": ("relu1d-x2:width=32", 1024, 50),
    "gauss-k10-S1024": ("gauss-relu:k=10", 1024, 30),
    "deep-8-32x4-1-N1024-S256": ("deep-teacher:arch=8-32-32-32-32-1,points=1024", 256, 4),
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_adam_float32(benchmark, case):
    spec, seeds, steps = CASES[case]
    problem = make(spec)
    cfg = RunConfig(steps=steps, dtype=torch.float32, compile=True)  # as `trapbench run`
    seed_ids = torch.arange(seeds)

    def run():
        return train_cell(problem, BUILTINS["adam"], {}, seed_ids, cfg)

    records, _ = benchmark.pedantic(run, rounds=3, warmup_rounds=1)  # warm-up compiles
    benchmark.extra_info["seed_steps"] = seeds * steps
    assert records["final_risk"].shape == (seeds,)
