"""The README's table of third-party optimizers: the path the probe picks and the cell time
against Adam, measured in one run (``python -m benchmarks.plugin_table``).

Why a script: the table is a claim about speed and about which path each plug-in takes, and
both change whenever the probe or a batched path improves; regenerated, it cannot go stale
the way a hand-typed table does. The optimizers and their learning rates are
optimizers.registry.THIRD_PARTY's (the conformance test's). Times are for ``relu1d-x2``, 256
seeds, 300 steps, float32, default hyperparameters but the learning rate, one thread; plug-ins
on the one-seed path are timed on 32 seeds and scaled to 256 (their cost is linear in seeds).
Read the ratios to within ~30% on a shared machine: Adam's cell is timed before and after the
table and the mean taken.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.engine import RunConfig, has_modes, train_cell
from benchmarks.probe import checked_entry
from optimizers.registry import THIRD_PARTY, OptimizerEntry
from optimizers.resolve import build
from problems.registry import make

PROBLEM = "relu1d-x2"
SEEDS, STEPS, ONE_SEED_SEEDS = 256, 300, 32


def contract(entry: OptimizerEntry, lr: float) -> str:
    """What the optimizer's step needs from the engine, as the probe and the built optimizer
    say (never typed by hand, so the table cannot drift from the code)."""
    if entry.closure:
        return "closure"
    if entry.hessian:
        return "Hessian-vector products"
    params = make(PROBLEM).init(torch.arange(1), torch.float32, torch.device("cpu"))
    leaves = [v[0].clone().requires_grad_(True) for v in params.values()]
    opt = build(dataclasses.replace(entry, path="one-seed"), leaves, {"lr": lr})
    return "train/eval" if has_modes(opt) else "plain step"


def cell_seconds(spec: str, lr: float) -> tuple[str, str, float]:
    """(path, contract, seconds for a 256-seed cell) of one optimizer, its probe outside the
    timing."""
    entry = checked_entry(spec, {"lr": lr}, torch.float32)
    seeds = ONE_SEED_SEEDS if entry.path == "one-seed" else SEEDS
    cfg = RunConfig(steps=STEPS, compile=True)
    _, wall = train_cell(make(PROBLEM), entry, {"lr": lr}, torch.arange(seeds), cfg)
    return entry.path, contract(entry, lr), wall * SEEDS / seeds


def table(plugins=THIRD_PARTY) -> list[tuple[str, str, str, float]]:
    """(spec, path, contract, cell time / Adam) per plug-in."""
    torch.set_num_threads(1)
    cell_seconds("adam", 1e-2)  # compile and warm up outside the timing
    before = cell_seconds("adam", 1e-2)[2]
    rows = [(spec, *cell_seconds(spec, lr)) for spec, lr in plugins]
    adam = (before + cell_seconds("adam", 1e-2)[2]) / 2
    return [(spec, path, kind, seconds / adam) for spec, path, kind, seconds in rows]


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}"


def markdown(rows: list[tuple[str, str, str, float]]) -> str:
    lines = ["| optimizer | path | contract | cell time / Adam |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{spec}` | {path} | {contract} | {ratio_text(ratio)} |"
        for spec, path, contract, ratio in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="a spec from the table (repeatable)")
    args = parser.parse_args()
    plugins = [p for p in THIRD_PARTY if not args.only or p[0] in args.only]
    print(markdown(table(plugins)))


if __name__ == "__main__":
    main()
