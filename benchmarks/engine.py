"""The batched training engine: all seeds of a cell in one tensor program.

Parameters carry a leading seed dimension; the optimizer minimizes the SUM of per-seed risks,
so each seed's gradient is exactly its own independent gradient, and an elementwise optimizer
(SGD, momentum, AdaGrad, RMSprop, Adam, ...) updates each seed exactly as if it ran alone.
Non-finite seeds are masked (zero gradient) and marked diverged; the others carry on.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from optimizers.registry import OptimizerEntry
from optimizers.resolve import build as build_optimizer
from problems.base import Params, Problem


@dataclass(frozen=True)
class RunConfig:
    steps: int
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    checkpoints: int = 24
    chunk: int = 0  # seeds per tensor program; 0 = all at once
    analytic: bool = True  # use a problem's closed-form gradient when it has one
    compile: bool = False  # torch.compile that gradient (the CLI turns this on)


_COMPILED: dict[tuple, object] = {}


def per_seed(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-seed mask [S] shaped to broadcast against a parameter or gradient [S, ...]."""
    return mask.view((-1,) + (1,) * (like.dim() - 1))


def masked_gradient(risk_grad):
    """The closed-form gradient with the divergence bookkeeping folded in: seeds whose risk
    is not finite leave ``alive`` and get a zero gradient. One function, so torch.compile
    fuses the masking into the gradient's kernels instead of separate passes per step."""

    def step(params: Params, alive: torch.Tensor):
        risk, grads = risk_grad(params)
        alive = alive & torch.isfinite(risk)
        masked = {
            k: torch.where(per_seed(alive, g), g, torch.zeros_like(g)) for k, g in grads.items()
        }
        return risk, masked, alive

    return step


def fast_gradient(problem: Problem, cfg: RunConfig):
    """masked_gradient of the problem's closed form, compiled once per process and problem
    (torch.compile's own on-disk cache then spares later processes most of the work).

    torch.compile only compiles at the first call, so that is where a machine without a
    working compiler fails: the call then warns once and the problem runs eager from there
    on (same values; `--no-compile` skips the attempt)."""
    eager = masked_gradient(problem.risk_grad)
    if not cfg.compile:
        return eager
    key = (problem.name, cfg.dtype, cfg.device)
    if key not in _COMPILED:
        compiled = torch.compile(eager, dynamic=False)

        def guarded(params: Params, alive: torch.Tensor):
            if _COMPILED[key] is eager:
                return eager(params, alive)
            try:
                return compiled(params, alive)
            except Exception as err:  # a real error in the problem re-raises from eager
                first = (str(err).strip().splitlines() or [""])[0][:160]
                warnings.warn(
                    f"torch.compile failed for {problem.name} ({type(err).__name__}: {first});"
                    " running eager (--no-compile skips compiling)",
                    stacklevel=2,
                )
                _COMPILED[key] = eager
                return eager(params, alive)

        _COMPILED[key] = guarded
    return _COMPILED[key]


def checkpoint_steps(steps: int, n: int) -> list[int]:
    """0, then about n log-spaced steps up to ``steps`` (inclusive)."""
    if steps <= 0:
        return [0]
    grid = np.unique(np.round(np.logspace(0, np.log10(steps), max(n - 1, 1))).astype(int))
    return sorted({0, *grid.tolist(), steps})


def _per_seed_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum(g.reshape(g.shape[0], -1).pow(2).sum(dim=1) for g in grads))


def uses_fast_gradient(problem: Problem, entry: OptimizerEntry, cfg: RunConfig) -> bool:
    """Whether training takes the problem's closed-form gradient: it must have one, the run
    must be full batch, the caller must not have turned it off, and the optimizer must not
    re-evaluate the risk in a closure (L-BFGS; a factory returning one is caught again from
    the instance in train_chunk)."""
    closure = isinstance(entry.factory, type) and issubclass(entry.factory, torch.optim.LBFGS)
    return (
        cfg.analytic
        and problem.risk_grad is not None
        and (entry.full_batch or problem.exact)
        and not closure
    )


def train_chunk(
    problem: Problem,
    entry: OptimizerEntry,
    hp: dict,
    seeds: torch.Tensor,
    cfg: RunConfig,
    progress: bool = False,
    keep_params: bool = False,
) -> dict[str, np.ndarray]:
    """Train the given seeds together; return per-seed records (numpy arrays, leading dim S).

    With keep_params the final parameters are included as ``param.<name>``."""
    device = torch.device(cfg.device)
    seeds = seeds.to(device)
    params: Params = {
        k: v.to(device=device, dtype=cfg.dtype).requires_grad_(True)
        for k, v in problem.init(seeds, cfg.dtype, device).items()
    }
    leaves = list(params.values())
    opt = build_optimizer(entry, leaves, hp)
    needs_closure = isinstance(opt, torch.optim.LBFGS)
    full_batch = entry.full_batch or problem.exact
    s = seeds.shape[0]
    marks = checkpoint_steps(cfg.steps, cfg.checkpoints)
    mark_set = set(marks)
    curve = torch.empty((len(marks), s), dtype=torch.float64, device=device)
    alive = torch.ones(s, dtype=torch.bool, device=device)
    diverged_at = torch.full((s,), -1, dtype=torch.int64, device=device)
    hit_at = torch.full((s,), -1, dtype=torch.int64, device=device)
    target = problem.optimum + problem.tol

    fast = (
        fast_gradient(problem, cfg)
        if uses_fast_gradient(problem, entry, cfg) and not needs_closure
        else None
    )

    def objective(step: int) -> torch.Tensor:
        if full_batch:
            return problem.risk(params)
        return problem.train_risk(params, seeds, step)

    def fast_step(alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form gradient (zero for diverged seeds) straight into .grad; any
        torch.optim optimizer then steps."""
        with torch.no_grad():
            risk, grads, alive = fast({k: v.detach() for k, v in params.items()}, alive)
            for k, p in params.items():
                p.grad = grads[k]
        return risk, alive

    def mask_diverged_grads() -> None:
        """Zero the gradient of diverged seeds so they stay frozen (no NaN reaches others)."""
        for p in leaves:
            if p.grad is not None:
                p.grad.masked_fill_(~per_seed(alive, p.grad), 0.0)

    def note_hits(risk: torch.Tensor, step: int) -> None:
        hit = (hit_at < 0) & alive & (risk <= target)
        hit_at.masked_fill_(hit, step)

    steps_iter = range(cfg.steps)
    if progress:
        steps_iter = tqdm(
            steps_iter,
            desc=f"{problem.name} / {entry.name}",
            leave=False,
            unit="step",
            mininterval=0.5,
        )
    mark_index = 0
    for step in steps_iter:
        at_mark = step in mark_set
        if fast is not None:
            risk, still = fast_step(alive)
        else:
            opt.zero_grad(set_to_none=False)
            risk = objective(step)
            still = alive & torch.isfinite(risk)
        diverged_at.masked_fill_(alive & ~still, step)
        alive = still
        if full_batch:
            note_hits(risk.detach(), step)
        if at_mark:
            with torch.no_grad():
                exact = risk.detach() if full_batch and problem.exact else problem.risk(params)
            curve[mark_index] = exact.to(torch.float64)
            mark_index += 1
            if not full_batch:
                note_hits(exact, step)
        if fast is not None:
            opt.step()
            continue
        if needs_closure:

            def closure(step=step, alive=alive):
                opt.zero_grad()
                r = objective(step)
                total = torch.where(alive, r, torch.zeros_like(r)).sum()
                total.backward()
                return total

            opt.step(closure)
        else:
            torch.where(alive, risk, torch.zeros_like(risk)).sum().backward()
            mask_diverged_grads()
            opt.step()

    final = problem.risk(params)
    grads = torch.autograd.grad(final.sum(), leaves, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, leaves, strict=True)]
    final = final.detach()
    grad_norm = _per_seed_norm(grads)
    finite = torch.isfinite(final) & torch.isfinite(grad_norm)
    params_finite = torch.stack(
        [torch.isfinite(p.detach().reshape(s, -1)).all(dim=1) for p in leaves]
    ).all(dim=0)
    newly = alive & ~(finite & params_finite)
    diverged_at.masked_fill_(newly, cfg.steps)
    alive &= finite & params_finite
    curve[mark_index] = final.to(torch.float64)
    note_hits(final, cfg.steps)
    with torch.no_grad():
        diag = problem.diagnostics({k: v.detach() for k, v in params.items()})
    records = {
        "seed": seeds,
        "final_risk": torch.where(alive, final.to(torch.float64), torch.nan),
        "grad_norm": torch.where(alive, grad_norm.to(torch.float64), torch.nan),
        "hit_step": hit_at,
        "diverged_step": diverged_at,
        "checkpoint_risk": curve.T,
        **diag,
    }
    if keep_params:
        records.update({f"param.{k}": v for k, v in params.items()})
    return {k: v.detach().cpu().numpy() for k, v in records.items()}


_WARM: set[tuple] = set()


def warm_up(problem: Problem, entry: OptimizerEntry, cfg: RunConfig, seeds: torch.Tensor) -> None:
    """Compile the fast gradient for this chunk shape before the clock starts, so a cell's
    wall time measures training, not the one-time compilation."""
    if not (cfg.compile and uses_fast_gradient(problem, entry, cfg)):
        return
    key = (problem.name, cfg.dtype, cfg.device, len(seeds))
    if key in _WARM:
        return
    device = torch.device(cfg.device)
    params = problem.init(seeds.to(device), cfg.dtype, device)
    alive = torch.ones(len(seeds), dtype=torch.bool, device=device)
    with torch.no_grad():
        fast_gradient(problem, cfg)(params, alive)
    _WARM.add(key)


CACHE_BYTES = 2 * 1024 * 1024


def auto_chunk(problem: Problem, cfg: RunConfig, seeds: int) -> int:
    """Seeds per tensor program so the largest intermediate stays near 2 MB (in cache).

    Measured on deep-teacher 8-32-32-32-32-1 with 1024 points: chunks of 16 seeds ran 2.4x
    faster than all 256 at once (activations of 33 MB per layer). Problems without a
    footprint, and GPUs, run all seeds at once."""
    if problem.footprint <= 0 or cfg.device.startswith("cuda"):
        return seeds
    itemsize = torch.tensor([], dtype=cfg.dtype).element_size()
    return max(1, min(seeds, CACHE_BYTES // (problem.footprint * itemsize)))


def train_cell(
    problem: Problem,
    entry: OptimizerEntry,
    hp: dict,
    seeds: torch.Tensor,
    cfg: RunConfig,
    progress: bool = False,
    keep_params: bool = False,
) -> tuple[dict[str, np.ndarray], float]:
    """Train every seed, in chunks (one seed at a time for optimizers that are not batch-safe);
    returns (records, wall-clock seconds)."""
    chunk = cfg.chunk if cfg.chunk > 0 else auto_chunk(problem, cfg, len(seeds))
    if not entry.batch_safe:
        chunk = 1
    warm_up(problem, entry, cfg, seeds[:chunk])
    start = time.perf_counter()
    parts = [
        train_chunk(
            problem,
            entry,
            hp,
            seeds[i : i + chunk],
            cfg,
            progress and chunk == len(seeds),
            keep_params,
        )
        for i in range(0, len(seeds), chunk)
    ]
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    records = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return records, wall
