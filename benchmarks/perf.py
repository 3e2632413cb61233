"""Engine throughput as ratios measured in one run (`make perf`).

Machines here are shared and noisy, so only ratios between implementations timed in the same
process are reported, never absolute times in tests. Cases (issue 8): shallow 1-D ReLU
(H = 32, S = 1024, Adam, float32), Gaussian teacher–student (k = n = 10), deep FC
(8-32-32-32-32-1, N = 1024, S = 256). "naive" is a per-seed loop: the same problem and
optimizer, one seed at a time, with autograd.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import BUILTINS
from problems.registry import make
from problems.relu1d import exact_risk_and_grad
from problems.targets import square

ADAM = BUILTINS["adam"]


def rate(problem, seeds: int, steps: int, **cfg) -> float:
    """Seed-steps per second of the engine."""
    start = time.perf_counter()
    train_cell(problem, ADAM, {}, torch.arange(seeds), RunConfig(steps=steps, **cfg))
    return seeds * steps / (time.perf_counter() - start)


def handwritten_rate(seeds: int, steps: int, width: int = 32) -> float:
    """The best hand-written loop for relu1d-x2: closed-form gradient and the Adam update
    fused in one compiled function, no torch.optim, no bookkeeping."""
    problem = make(f"relu1d-x2:width={width}")
    params = problem.init(torch.arange(seeds), torch.float32, torch.device("cpu"))
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v2 = {k: torch.zeros_like(v) for k, v in params.items()}
    target = square()

    @torch.compile(dynamic=False)
    def step(p, m, v2, t):
        risk, g = exact_risk_and_grad(p, target)
        out = {}
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v2[k] = 0.999 * v2[k] + 0.001 * g[k] * g[k]
            mhat = m[k] / (1 - 0.9**t)
            vhat = v2[k] / (1 - 0.999**t)
            out[k] = p[k] - 1e-3 * mhat / (vhat.sqrt() + 1e-8)
        return out, m, v2, risk

    with torch.no_grad():
        step(dict(params), dict(m), dict(v2), torch.tensor(1.0))  # compile
        start = time.perf_counter()
        for t in range(1, steps + 1):
            params, m, v2, _ = step(params, m, v2, torch.tensor(float(t)))
    return seeds * steps / (time.perf_counter() - start)


def measure() -> list[dict]:
    torch.set_num_threads(1)
    rows = []
    relu = make("relu1d-x2:width=32")
    rate(relu, 1024, 2, compile=True)  # warm-up: compile outside the timing
    naive = rate(relu, 8, 30, chunk=1, analytic=False)
    engine = rate(relu, 1024, 60, compile=True)
    autograd = rate(relu, 1024, 30, analytic=False)
    hand = handwritten_rate(1024, 60)
    rows += [
        {
            "case": "relu1d H=32 S=1024",
            "measure": "engine / naive per-seed loop",
            "ratio": engine / naive,
            "goal": 300,
        },
        {
            "case": "relu1d H=32 S=1024",
            "measure": "engine / best hand-written (fused)",
            "ratio": engine / hand,
            "goal": 0.5,
        },
        {
            "case": "relu1d H=32 S=1024",
            "measure": "engine autograd path / naive",
            "ratio": autograd / naive,
            "goal": None,
        },
    ]
    gauss = make("gauss-relu:k=10")
    rows.append(
        {
            "case": "gauss k=n=10 S=1024",
            "measure": "engine / naive per-seed loop",
            "ratio": rate(gauss, 1024, 30) / rate(gauss, 8, 30, chunk=1),
            "goal": 100,
        }
    )
    deep = make("deep-teacher:arch=8-32-32-32-32-1,points=1024")
    rows.append(
        {
            "case": "deep 8-32x4-1 N=1024 S=256",
            "measure": "engine / naive per-seed loop",
            "ratio": rate(deep, 256, 3) / rate(deep, 4, 5, chunk=1),
            "goal": 4,
        }
    )
    rows.append(
        {
            "case": "(absolute, this machine)",
            "measure": "relu1d engine seed-steps/s",
            "ratio": engine,
            "goal": None,
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("results/perf.json"))
    args = parser.parse_args()
    rows = measure()
    for r in rows:
        goal = (
            ""
            if r["goal"] is None
            else f"  (goal >= {r['goal']}: " + ("met)" if r["ratio"] >= r["goal"] else "NOT met)")
        )
        print(f"{r['case']:28s} {r['measure']:38s} {r['ratio']:10.3g}{goal}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
