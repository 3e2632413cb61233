"""Throughput on a GPU (`make perf-gpu`, on a machine where torch sees CUDA).

Seed-steps per second of the engine on CUDA next to the same cell on one CPU core of the same
machine, for the cases the papers' experiments live in: the exact 1-D risk at growing seed
counts (up to 65,536), online SGD on a 1-1000-1 network (seed 000's widest setting), the
Gaussian teacher-student and the deep FC network; then the largest seed count that fits in
GPU memory for the 1-D case. Absolute rates are facts about one machine: they are printed and
saved, never asserted in a test.
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

CASES = [
    # label, problem, optimizer, seed counts on the GPU, steps, seeds on the CPU
    ("relu1d-x2 H=32 exact, Adam", "relu1d-x2:width=32", "adam", (1024, 8192, 65536), 100, 1024),
    (
        "relu1d-x2 H=1000 sampled b=1024, SGD",
        "relu1d-x2:width=1000,sampled=true,batch=1024",
        "sgd",
        (300,),
        20,
        32,
    ),
    ("gauss-relu k=n=10, GD", "gauss-relu:k=10", "gd", (1024, 16384), 50, 1024),
    (
        "deep 8-32x4-1 N=1024, Adam",
        "deep-teacher:arch=8-32-32-32-32-1,points=1024",
        "adam",
        (256, 4096),
        20,
        64,
    ),
]


def rate(problem, name: str, seeds: int, steps: int, device: str) -> float:
    """Seed-steps per second of one cell (compiled closed-form gradient where the problem has
    one, as `trapbench run` does); compilation and the first step happen before the clock."""
    cfg = RunConfig(steps=steps, device=device, compile=True)
    ids = torch.arange(seeds)
    train_cell(problem, BUILTINS[name], {}, ids, RunConfig(steps=2, device=device, compile=True))
    start = time.perf_counter()
    train_cell(problem, BUILTINS[name], {}, ids, cfg)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return seeds * steps / (time.perf_counter() - start)


def largest_seed_count(spec: str, device: str, start: int = 65536, limit: int = 1 << 22) -> int:
    """Double the seed count of a 5-step Adam cell until GPU memory runs out."""
    problem, fits = make(spec), 0
    seeds = start
    while seeds <= limit:
        try:
            train_cell(
                problem, BUILTINS["adam"], {}, torch.arange(seeds), RunConfig(5, device=device)
            )
            torch.cuda.synchronize()
            fits = seeds
            seeds *= 2
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return fits


def measure(device: str) -> list[dict]:
    torch.set_num_threads(1)
    rows = []
    for label, spec, name, gpu_seeds, steps, cpu_seeds in CASES:
        problem = make(spec)
        cpu = rate(problem, name, cpu_seeds, max(2, steps // 4), "cpu")
        for seeds in gpu_seeds:
            gpu = rate(problem, name, seeds, steps, device)
            rows.append(
                {
                    "case": label,
                    "seeds": seeds,
                    "gpu_seed_steps_per_s": gpu,
                    "cpu_core_seed_steps_per_s": cpu,
                    "cpu_seeds": cpu_seeds,
                    "gpu_over_cpu_core": gpu / cpu,
                }
            )
            print(
                f"{label:40s} S={seeds:6d}  GPU {gpu:12.4g}/s  one CPU core (S={cpu_seeds}) "
                f"{cpu:10.4g}/s  ratio {gpu / cpu:8.3g}",
                flush=True,
            )
    fits = largest_seed_count("relu1d-x2:width=32", device)
    print(f"largest seed count that fits, relu1d-x2 H=32 Adam float32: {fits}", flush=True)
    rows.append({"case": "largest seed count, relu1d-x2 H=32 Adam float32", "seeds": fits})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--output", type=Path, default=Path("results/perf-gpu.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("perf-gpu: torch sees no CUDA device; run it on a GPU machine")
    rows = measure(args.device)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    info = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    args.output.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
