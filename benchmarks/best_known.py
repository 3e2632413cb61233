"""Record the best risk found for problems without a known optimum (``best_known``).

A multi-start search is the reference: full-batch Adam in float64 from many starts and several
learning rates (all starts batched), then L-BFGS (strong Wolfe line search) from the best few
end points, on the problem's own evaluation risk (for deep-target: its midpoint grid). Its
minimum, how it was obtained, the spread over the starts and the command that regenerates it
go into problems/best_known.json, which the problem reads as its optimum with that provenance.
The value is an upper bound on the optimum (a risk some network attains), never a proof of
optimality, so runs may beat it; a value is only ever lowered.

Values are keyed by the problem's landscape (problems.deepfc.landscape): options that change
only how runs start or what they train on (init, biases, online batches) share one value.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.engine import RunConfig, train_cell
from benchmarks.results import git_commit
from optimizers.registry import BUILTINS
from problems.base import Params, Problem
from problems.deepfc import BEST_KNOWN, landscape
from problems.planted import polish as lbfgs
from problems.registry import canonical, make

FIRST_SEED = 10_000  # search starts: seed indices no suite uses by default (suites start at 0)
POLISH_ITERATIONS = 2000


@dataclass(frozen=True)
class Search:
    """A finished search: the best risk, every start's risk after Adam, the L-BFGS results
    from the best few, and the best network's risk on a grid ``FINE`` times finer (how far the
    value rests on the evaluation grid's points rather than on the target)."""

    best: float
    adam: np.ndarray  # per start and learning rate
    polished: np.ndarray
    fine: float

    def spread(self) -> str:
        """The distribution over starts, so a reader can judge how settled the minimum is."""
        q = np.nanquantile(self.adam, [0.0, 0.5, 0.9])
        return (
            f"Adam end risks over {self.adam.size} starts: min {q[0]:.4g}, median {q[1]:.4g}, "
            f"90% {q[2]:.4g}; after L-BFGS: "
            + ", ".join(f"{v:.4g}" for v in np.sort(self.polished))
            + f"; the best network on a {FINE}x finer grid: {self.fine:.4g}"
        )


FINE = 16


def polish(
    problem: Problem, params: Params, iterations: int = POLISH_ITERATIONS
) -> tuple[float, Params]:
    """L-BFGS with a strong-Wolfe line search (problems.planted.polish) from one end point
    (one seed row) on the problem's evaluation risk, float64, with its closed-form gradient
    where it has one: the end risk and parameters (the start's when L-BFGS ends higher or
    non-finite)."""
    leaves = {k: v.detach().clone().to(torch.float64) for k, v in params.items()}

    def risk(q: Params) -> torch.Tensor:
        return problem.risk(q)[0]

    def risk_and_grad(q: Params) -> tuple[torch.Tensor, Params]:
        value, grads = problem.risk_grad(q)
        return value[0], grads

    with torch.no_grad():
        start = float(risk(leaves))
    lbfgs(
        leaves,
        risk,
        max_iter=iterations,
        tolerance_grad=1e-14,
        loss_and_grad=risk_and_grad if problem.risk_grad is not None else None,
        tolerance_change=1e-18,
        history_size=20,
    )
    with torch.no_grad():
        end = float(risk(leaves))
    if not end < start:
        return start, params
    return end, {k: v.detach() for k, v in leaves.items()}


def search(
    spec: str, seeds: int, steps: int, lrs: list[float], polish_best: int = 8
) -> tuple[float, str]:
    """Minimum risk over seeds x learning rates of full-batch Adam (float64) on the
    problem's landscape, then L-BFGS from the ``polish_best`` best end points; the value and
    its provenance text (method, spread, upper-bound caveat, command to regenerate)."""
    result = multi_start(spec, seeds, steps, lrs, polish_best)
    commit, _ = git_commit()
    name = landscape(canonical(spec)[0])
    text = (
        f"upper bound on the optimum: best of full-batch Adam (lr in {lrs}) from seeds "
        f"{FIRST_SEED}..{FIRST_SEED + seeds - 1} x {steps} steps, float64, then L-BFGS "
        f"(strong Wolfe, <= {POLISH_ITERATIONS} iterations) from the {polish_best} best; "
        f"{result.spread()}; trapbench {(commit or 'unknown')[:10]}, "
        f"{dt.date.today().isoformat()}; regenerate: trapbench best-known {name} "
        f"--seeds {seeds} --steps {steps} --lrs {','.join(map(str, lrs))}"
    )
    return result.best, text


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the search on one torch thread. Why: its tensors are tiny (one seed in L-BFGS), and
    on a shared machine a second thread made each batched product 50x slower (measured: 48 ms
    against 0.9 ms per risk-and-gradient of a 1-8-8-1 network)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def multi_start(spec: str, seeds: int, steps: int, lrs: list[float], polish_best: int) -> Search:
    """The search itself (see ``search``); the problem is the spec's landscape, trained full
    batch on its evaluation risk whatever the spec's init or batches."""
    with one_thread():
        return _multi_start(spec, seeds, steps, lrs, polish_best)


def _multi_start(spec: str, seeds: int, steps: int, lrs: list[float], polish_best: int) -> Search:
    name = landscape(canonical(spec)[0])
    problem = make(name)
    ids = torch.arange(FIRST_SEED, FIRST_SEED + seeds)
    risks, ends = [], []
    for lr in lrs:
        rec, _ = train_cell(
            problem,
            BUILTINS["adam"],
            {"lr": lr},
            ids,
            RunConfig(steps=steps, dtype=torch.float64, checkpoints=2),
            keep_params=True,
        )
        risks.append(np.asarray(rec["final_risk"], dtype=np.float64))
        keys = [k for k in rec if k.startswith("param.")]
        ends += [{k[6:]: torch.as_tensor(rec[k][i : i + 1]) for k in keys} for i in range(seeds)]
    adam = np.concatenate(risks)
    order = np.argsort(np.where(np.isfinite(adam), adam, np.inf))[:polish_best]
    polished = [polish(problem, ends[i]) for i in order]
    values = np.array([v for v, _ in polished])
    best_value, best_params = min(polished, key=lambda vp: vp[0])
    fine = make(name, points=FINE * problem.options["points"])
    with torch.no_grad():
        fine_risk = float(fine.risk(best_params)[0])
    return Search(min(best_value, float(np.nanmin(adam))), adam, values, fine_risk)


def record(spec: str, value: float, provenance: str) -> bool:
    """Store value under the spec's landscape if it beats the recorded one; True when the
    file changed."""
    name = landscape(canonical(spec)[0])
    with open(BEST_KNOWN.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent searches must not lose each other's rows
        table = json.loads(BEST_KNOWN.read_text()) if BEST_KNOWN.exists() else {}
        if name in table and table[name]["value"] <= value:
            return False
        table[name] = {"value": value, "provenance": provenance}
        BEST_KNOWN.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return True
