"""The README's table of third-party optimizers: the path the probe picks and the cell time
against Adam, measured in one run (``python -m benchmarks.plugin_table``).

Why a script: the table is a claim about speed and about which path each plug-in takes, and
both change whenever the probe or a batched path improves; regenerated, it cannot go stale
the way a hand-typed table does. Times are for ``relu1d-x2``, 256 seeds, 300 steps, float32,
default hyperparameters but the learning rate, one thread; plug-ins on the one-seed path are
timed on 32 seeds and scaled to 256 (their cost is linear in seeds). Read the ratios to within
~30% on a shared machine: Adam's cell is timed before and after the table and the mean taken.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.engine import RunConfig, train_cell
from benchmarks.probe import checked_entry
from problems.registry import make

PROBLEM = "relu1d-x2"
SEEDS, STEPS, ONE_SEED_SEEDS = 256, 300, 32
PO, F = "pytorch_optimizer", "optimizers.factories"
# (spec, learning rate, what its step needs): the conformance table's optimizers
PLUGINS = [
    (f"{PO}:Lion", 1e-3, "plain step"),
    (f"{PO}:Lamb", 1e-2, "plain step"),
    (f"{PO}:AdaBelief", 1e-2, "plain step"),
    (f"{PO}:Prodigy", 1.0, "plain step"),
    (f"{PO}:MADGRAD", 1e-2, "plain step"),
    (f"{PO}:Ranger", 1e-2, "plain step"),
    (f"{PO}:SophiaH", 1e-2, "Hessian-vector products"),
    (f"{F}:sam_adam", 1e-2, "closure"),
    (f"{F}:gsam_adam", 1e-2, "closure"),
    (f"{PO}:ScheduleFreeAdamW", 1e-2, "train/eval"),
    ("schedulefree:AdamWScheduleFree", 1e-2, "train/eval"),
    (f"{PO}:Shampoo", 1e-2, "plain step"),
    (f"{PO}:SOAP", 1e-2, "plain step"),
    (f"{F}:muon_adamw", 1e-2, "plain step"),
    (f"{PO}:Adan", 1e-2, "plain step"),
    (f"{PO}:LARS", 1e-2, "plain step"),
    (f"{PO}:AdaHessian", 1e-2, "Hessian-vector products"),
    ("torch_optimizer:Yogi", 1e-2, "plain step"),
    ("torch_optimizer:DiffGrad", 1e-2, "plain step"),
    ("Rprop", 1e-2, "plain step"),
    ("LBFGS", 0.5, "closure"),
]


def cell_seconds(spec: str, lr: float) -> tuple[str, float]:
    """(path, seconds for a 256-seed cell) of one optimizer, its probe outside the timing."""
    entry = checked_entry(spec, {"lr": lr}, torch.float32)
    seeds = ONE_SEED_SEEDS if entry.path == "one-seed" else SEEDS
    cfg = RunConfig(steps=STEPS, compile=True)
    _, wall = train_cell(make(PROBLEM), entry, {"lr": lr}, torch.arange(seeds), cfg)
    return entry.path, wall * SEEDS / seeds


def table(plugins: list[tuple[str, float, str]] = PLUGINS) -> list[tuple[str, str, str, float]]:
    """(spec, path, contract, cell time / Adam) per plug-in."""
    torch.set_num_threads(1)
    cell_seconds("adam", 1e-2)  # compile and warm up outside the timing
    before = cell_seconds("adam", 1e-2)[1]
    rows = [(spec, contract, *cell_seconds(spec, lr)) for spec, lr, contract in plugins]
    adam = (before + cell_seconds("adam", 1e-2)[1]) / 2
    return [(spec, path, contract, seconds / adam) for spec, contract, path, seconds in rows]


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
    plugins = [p for p in PLUGINS if not args.only or p[0] in args.only]
    print(markdown(table(plugins)))


if __name__ == "__main__":
    main()
