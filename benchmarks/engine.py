"""The batched training engine: all seeds of a cell in one tensor program.

Parameters carry a leading seed dimension; the optimizer minimizes the SUM of per-seed risks,
so each seed's gradient is exactly its own independent gradient, and an elementwise optimizer
(SGD, momentum, AdaGrad, RMSprop, Adam, ...) updates each seed exactly as if it ran alone.
Non-finite seeds are masked (zero gradient) and marked diverged; the others carry on.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.recorders import (
    Checkpoints,
    Divergence,
    FirstHit,
    StepState,
    Stopping,
    reason_names,
)
from benchmarks.schedules import make_scheduler
from benchmarks.stopping import StopRules
from optimizers.fused import FusedStep, direct_step, mark_seed_dim_dynamic
from optimizers.registry import STACKED_PATHS, OptimizerEntry
from optimizers.resolve import build as build_optimizer
from problems.base import Params, Problem, frobenius


@dataclass(frozen=True)
class RunConfig:
    steps: int  # the step budget: a maximum once stopping rules are on
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    checkpoints: int = 24
    chunk: int = 0  # seeds per tensor program; 0 = automatic (all, or a cache-sized chunk)
    analytic: bool = True  # use a problem's closed-form gradient when it has one
    compile: bool = False  # torch.compile that gradient (the CLI turns this on)
    stop: StopRules = field(default_factory=StopRules)
    schedule: str = ""  # learning-rate schedule spec (benchmarks/schedules.py); "" = constant
    rng: int = 0  # stream of the generator randomized optimizers draw from (Hutchinson probes)
    # one compiled call per step where it can (FusedStep.step_then; the same numbers): off
    # only to measure what it saves (make perf)
    fuse_steps: bool = True


# Every batched tensor program runs on a multiple of BLOCK seeds (the chunk padded with copies
# of its first seed, which never count). Why: CPU kernels (eager and compiled) compute the
# bulk of a flat loop with vector instructions and its remainder with scalar ones, and the two
# round transcendental functions (arccos, exp, ...) differently; which elements fall in the
# remainder depends on the tensor's size. With a multiple of 32 seeds no flat loop has a
# remainder (32 covers two AVX-512 float32 vectors), so a seed's arithmetic is the same alone,
# in a batch of 1000 or at any position: bitwise batch invariance (tests/benchmarks/test_engine).
BLOCK = 32

_COMPILED: dict[tuple, object] = {}
# Every problem of a family shares its gradient's code object, and dynamo keeps 8 compiled
# variants per code object by default: a suite of many widths (a sampled gradient
# specializes on its sample slice, which follows the width) would fall back to eager
# after the eighth. One variant per problem is what the cache keys above intend.
torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)


def padded_size(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def per_seed(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-seed mask [S] shaped to broadcast against a parameter or gradient [S, ...]."""
    return mask.view((-1,) + (1,) * (like.dim() - 1))


def masked_gradient(risk_grad):
    """The closed-form gradient with the bookkeeping folded in: inactive seeds (stopped,
    diverged, padding) and seeds whose risk is not finite get a zero gradient. One function,
    so torch.compile fuses the masking into the gradient's kernels."""

    def step(params: Params, active: torch.Tensor, *data: torch.Tensor):
        risk, grads = risk_grad(params, *data)  # data: (seeds, step) for train_risk_grad
        keep = active & torch.isfinite(risk)
        masked = {
            k: torch.where(per_seed(keep, g), g, torch.zeros_like(g)) for k, g in grads.items()
        }
        return risk, masked

    return step


def closed_form(problem: Problem, sampled: bool):
    """The problem's closed-form gradient of what a run trains on: the mini-batch risk's
    (train_risk_grad) when sampled, else the exact risk's (risk_grad); None without one."""
    return problem.train_risk_grad if sampled else problem.risk_grad


def fast_gradient(problem: Problem, cfg: RunConfig, sampled: bool = False):
    """masked_gradient of the problem's closed form, compiled once per process and problem
    (keyed by the problem's gradient function itself, so two problems never share one) with a
    dynamic seed dimension: one kernel for every batch size, hence the same arithmetic for a
    seed whatever its batch (see BLOCK).

    torch.compile only compiles at the first call, so that is where a machine without a
    working compiler fails: the call then warns once and the problem runs eager from there
    on (same values up to rounding; `--no-compile` skips the attempt).

    sampled: the problem's train_risk_grad, called with (seeds, step as a 0-d tensor), so
    one graph serves every step (a Python int would be specialized on)."""
    gradient = closed_form(problem, sampled)
    eager = masked_gradient(gradient)
    if not cfg.compile:
        return eager
    key = (gradient, cfg.dtype, cfg.device)
    if key not in _COMPILED:
        compiled = torch.compile(eager)
        built = []  # non-empty once a compiled call has returned

        def guarded(params: Params, active: torch.Tensor, *data: torch.Tensor):
            if _COMPILED[key] is eager:
                return eager(params, active, *data)
            # The seed dimension is marked dynamic for the call that compiles; the graph
            # then serves every size without the marks (its guards hold the size symbolic),
            # and marking 5 tensors every step cost about 10 us at any seed count.
            if not built:
                mark_seed_dim_dynamic([*params.values(), active, *data])
            try:
                out = compiled(params, active, *data)
                built.append(True)
                return out
            except Exception as err:  # a real error in the problem re-raises from eager
                first = (str(err).strip().splitlines() or [""])[0][:160]
                warnings.warn(
                    f"torch.compile failed for {problem.name} ({type(err).__name__}: {first});"
                    " running eager (--no-compile skips compiling)",
                    stacklevel=2,
                )
                _COMPILED[key] = eager
                return eager(params, active, *data)

        _COMPILED[key] = guarded
    return _COMPILED[key]


def checkpoint_steps(steps: int, n: int) -> list[int]:
    """0, then about n log-spaced steps up to ``steps`` (inclusive)."""
    if steps <= 0:
        return [0]
    grid = np.unique(np.round(np.logspace(0, np.log10(steps), max(n - 1, 1))).astype(int))
    return sorted({0, *grid.tolist(), steps})


def uses_fast_gradient(problem: Problem, entry: OptimizerEntry, cfg: RunConfig) -> bool:
    """Whether training takes the problem's closed-form gradient: it must have one for the
    objective it trains on (risk_grad full batch, train_risk_grad sampled), the caller must
    not have turned it off, and the optimizer must not differentiate the gradient again
    (SophiaH, AdaHessian need autograd's graph). Closures (SAM, L-BFGS) re-evaluate the
    closed form too."""
    sampled = not (entry.full_batch or problem.exact)
    return cfg.analytic and closed_form(problem, sampled) is not None and not entry.hessian


def _autograd(
    risk_fn, params: Params, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, Params]:
    """(risk [S], per-seed gradient dict) by autograd at detached copies of ``params``; with
    ``mask``, seeds outside it contribute nothing to the summed risk (zero gradient)."""
    with torch.enable_grad():
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        risk = risk_fn(leaves)
        total = (
            risk.sum() if mask is None else torch.where(mask, risk, torch.zeros_like(risk)).sum()
        )
        grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
    grads = {
        k: torch.zeros_like(p) if g is None else g
        for (k, p), g in zip(leaves.items(), grads, strict=True)
    }
    return risk.detach(), grads


def compaction(active: torch.Tensor) -> torch.Tensor | None:
    """Positions (in the working set) to keep once seeds have stopped: every active seed,
    padded with inactive ones to whole BLOCKs; None when that would not shrink the set.

    Why: a chunk runs until its slowest seed stops, and without this every step of that
    tail still pays for the whole chunk. Kept seeds stay in their order, and every tensor
    stays a multiple of BLOCK seeds, so a seed's arithmetic is unchanged (bitwise)."""
    n = int(active.sum())
    if padded_size(n) >= active.numel():
        return None
    on = torch.nonzero(active).flatten()
    off = torch.nonzero(~active).flatten()[: padded_size(n) - n]
    return torch.cat([on, off]).sort().values


def compact(opt: torch.optim.Optimizer, params: Params, keep: torch.Tensor) -> None:
    """Shrink the stacked parameters, in place, to the rows ``keep``, and with them every
    optimizer state tensor that has the seed dimension (Adam's moments, momentum buffers;
    scalar step counters stay). The tensors stay the same objects, so the optimizer's
    parameter groups and a learning-rate scheduler need no rebuilding. Only for the stacked
    paths: there the probe has shown the update is elementwise (stacked) or one seed's own
    step under vmap (vmapped), so a state tensor whose leading dimension is the seed count
    holds one row per seed."""
    with torch.no_grad():
        for p in params.values():
            old = p.shape[0]
            state = opt.state.get(p, {})
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == old:
                    state[name] = value[keep]
            p.grad = None
            p.data = p.data[keep]


def seed_views(params: Params, real: int) -> list[tuple[str, int, torch.Tensor]]:
    """(name, seed, tensor) for every real seed's own parameter tensors, seed-major: views into
    the stacked tensors (an optimizer's in-place update lands there), each a leaf that may
    require grad, with the shape the parameter has in ONE model (a bias is a vector, an output
    offset a scalar). The per-seed and one-seed paths hand these to the optimizer."""
    return [
        (k, s, v.detach()[s].requires_grad_(True)) for s in range(real) for k, v in params.items()
    ]


def lr_scale(opt: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate now over its initial one (every
    torch.optim.lr_scheduler records "initial_lr"): what the plateau rule reads to tell a
    converged run from one a decaying schedule has frozen."""
    group = opt.param_groups[0]
    initial = float(group.get("initial_lr", group["lr"]))
    return float(group["lr"]) / initial if initial else 1.0


def has_modes(opt: torch.optim.Optimizer) -> bool:
    """Schedule-free optimizers (Defazio et al. 2024) train at one point and are evaluated at
    another: they switch with ``train()`` / ``eval()``."""
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


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

    The loop: gradient at the current parameters, the recorders (benchmarks/recorders.py)
    look at it and may stop seeds, the optimizer steps, the schedule steps. A stopped seed's
    parameters are held as they were at its stop and restored at the end, so momentum or
    Adam state cannot move them. With keep_params the final parameters are included as
    ``param.<name>``. Randomized optimizers (Hutchinson probes) draw from a generator seeded
    by the chunk's first seed, so a run reproduces."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.rng * 1_000_003 + int(seeds[0]))
        return _train_chunk(problem, entry, hp, seeds, cfg, progress, keep_params)


def _train_chunk(problem, entry, hp, seeds, cfg, progress, keep_params):
    device = torch.device(cfg.device)
    real = len(seeds)
    stacked = entry.path in STACKED_PATHS
    # The stacked and per-seed paths pad to BLOCK, so a seed's gradient arithmetic does not
    # depend on its batch (padding copies never reach a per-seed optimizer: they have no
    # views). The one-seed path does not pad: 31 copies would multiply its gradient work.
    size = real if entry.path == "one-seed" else padded_size(real)
    ids = torch.cat([seeds, seeds[:1].expand(size - real)]).to(device)
    params: Params = {
        k: v.to(device=device, dtype=cfg.dtype).requires_grad_(stacked)
        for k, v in problem.init(ids, cfg.dtype, device).items()
    }
    with torch.no_grad():
        diag_init = problem.diagnostics({k: v.detach() for k, v in params.items()})
    # frozen parameters (Problem.frozen) never reach the optimizer, and their gradients never
    # reach the stationarity measure or the stopping rules
    frozen = set(problem.frozen)
    if frozen and entry.hessian:
        raise ValueError(f"{problem.name} freezes parameters; {entry.name} needs them all")

    def trainable(grads: Params) -> Params:
        return {k: g for k, g in grads.items() if k not in frozen}

    views = [] if stacked else [x for x in seed_views(params, real) if x[0] not in frozen]
    leaves = (
        [p for k, p in params.items() if k not in frozen] if stacked else [v for *_, v in views]
    )
    opt = build_optimizer(entry, leaves, hp, compiled=cfg.compile)
    scheduler = make_scheduler(cfg.schedule, opt, cfg.steps)
    modes = has_modes(opt)
    full_batch = entry.full_batch or problem.exact
    target = problem.optimum + problem.tol
    fast = (
        fast_gradient(problem, cfg, sampled=not full_batch)
        if uses_fast_gradient(problem, entry, cfg)
        else None
    )

    active = torch.arange(size, device=device) < real
    # The working set: the rows of the chunk the parameters (and optimizer state) hold now.
    # None while that is the whole chunk; the stacked path compacts it as seeds stop.
    rows: torch.Tensor | None = None
    work_ids = ids
    held = {k: v.detach().clone() for k, v in params.items()}
    held_risk = torch.full((size,), torch.nan, dtype=cfg.dtype, device=device)
    stop_step = torch.full((size,), cfg.steps, dtype=torch.int64, device=device)
    divergence = Divergence(size, device)
    checkpoints = Checkpoints(checkpoint_steps(cfg.steps, cfg.checkpoints), size, device)
    stopping = Stopping(cfg.stop, problem.grad_tol, target, full_batch, size, device)
    first_hit = FirstHit(target, size, device)
    recorders = (divergence, checkpoints, first_hit, stopping)

    def detached() -> Params:
        return {k: v.detach() for k, v in params.items()}

    def working(full: torch.Tensor) -> torch.Tensor:
        """The working set's rows of a per-seed tensor of the whole chunk."""
        return full if rows is None else full[rows]

    def widen(part: torch.Tensor) -> torch.Tensor:
        """A per-seed tensor of the working set as one of the whole chunk (NaN elsewhere:
        the rows outside the working set are inactive, and recorders ignore those)."""
        if rows is None:
            return part
        full = torch.full((size,), torch.nan, dtype=part.dtype, device=part.device)
        return full.index_copy_(0, rows, part)

    def objective(x: Params, step: int) -> torch.Tensor:
        if full_batch:
            return problem.risk(x)
        return problem.train_risk(x, work_ids, step)

    def at_eval(measure):
        """Measure where the optimizer means its iterate to be evaluated (eval mode)."""
        if not modes:
            return measure()
        opt.eval()
        try:
            return measure()
        finally:
            opt.train()

    def exact_gradient() -> tuple[torch.Tensor, Params]:
        if problem.risk_grad is not None and cfg.analytic:
            return problem.risk_grad(detached())
        return _autograd(problem.risk, detached())

    def write_grads(grads: Params) -> None:
        if stacked:
            for k, p in params.items():
                p.grad = grads[k]
            return
        split = {k: g.unbind(0) for k, g in grads.items()}
        for k, s, v in views:
            v.grad = split[k][s]

    def graph_gradient(step: int, mask: torch.Tensor) -> tuple[torch.Tensor, Params]:
        """Gradients that carry autograd's graph to the optimizer's own tensors, so it can
        take Hessian-vector products (SophiaH, AdaHessian); the risk is a sum over seeds, so
        a seed's Hessian block is its own. Masked seeds get a zero (graph-carrying) gradient."""
        with torch.enable_grad():
            if stacked:
                x = params
            else:
                x = {}
                for k, p in params.items():
                    own = torch.stack([v for name, _, v in views if name == k])
                    x[k] = torch.cat([own, p.detach()[real:]]) if size > real else own
            risk = objective(x, step)
            total = torch.where(mask, risk, torch.zeros_like(risk)).sum()
            grads = torch.autograd.grad(total, leaves, create_graph=True, allow_unused=True)
        keep = mask.tolist()
        for i, (p, g) in enumerate(zip(leaves, grads, strict=True)):
            if g is None:
                g = torch.zeros_like(p)
            else:
                cond = per_seed(mask, g) if stacked else torch.tensor(keep[views[i][1]])
                g = torch.where(cond, g, torch.zeros((), dtype=g.dtype, device=g.device))
            p.grad = g
        if stacked:
            batched = {k: p.grad.detach() for k, p in params.items()}
        else:
            batched = {k: torch.zeros_like(p) for k, p in params.items()}
            for (k, s, _), p in zip(views, leaves, strict=True):
                batched[k][s] = p.grad.detach()
        return risk.detach(), batched

    def gradient(step: int, mask: torch.Tensor) -> tuple[torch.Tensor, Params]:
        """Risk [size] and the gradient of the masked risk sum (batched), written into the
        optimizer's tensors."""
        if entry.hessian:
            return graph_gradient(step, mask)
        if fast is not None:
            data = () if full_batch else (work_ids, torch.tensor(step, device=device))
            with torch.no_grad():
                risk, grads = fast(detached(), mask, *data)
        else:
            risk, grads = _autograd(lambda x: objective(x, step), params, mask)
        write_grads(grads)
        return risk, grads

    def freeze(seeds_now: torch.Tensor, step: int, state: StepState) -> None:
        """Hold these seeds exactly as they are at this step and stop training them."""

        def hold() -> None:
            with torch.no_grad():
                now = working(seeds_now)
                for k, p in params.items():
                    kept = torch.where(per_seed(now, p), p.detach(), working(held[k]))
                    held[k] = kept if rows is None else held[k].index_copy_(0, rows, kept)

        at_eval(hold)
        with torch.no_grad():
            risk = state.exact_risk().detach() if state.knows_exact_risk else state.risk
            held_risk.copy_(torch.where(seeds_now, risk.to(cfg.dtype), held_risk))
        stop_step.masked_fill_(seeds_now, step)
        active.logical_and_(~seeds_now)

    # The next step's gradient in the update's compiled call (FusedStep.step_then): where the
    # gradient is the compiled closed form and the update a compiled built-in, one compiled
    # call per step instead of two. The same arithmetic per seed as the two calls.
    then = None
    fusable = fast is not None and cfg.compile and cfg.fuse_steps and stacked
    if fusable and not entry.closure and not modes:
        order = list(params)
        names = [k for k in order if k not in frozen]  # the optimizer's tensors, in its order
        fixed_names = [k for k in order if k in frozen]
        gradient_fn = closed_form(problem, sampled=not full_batch)
        eager_gradient = masked_gradient(gradient_fn)
        then_key = ("gradient", gradient_fn, tuple(order), tuple(fixed_names))

        def then(updated: list, fixed: list, mask: torch.Tensor, *data: torch.Tensor):
            given = dict(zip(names, updated, strict=True))
            given.update(zip(fixed_names, fixed, strict=True))
            return eager_gradient({k: given[k] for k in order}, mask, *data)

    ahead = None  # (risk, grads) of this step, computed by the last step's update call
    steps_iter = range(cfg.steps)
    if progress:
        steps_iter = tqdm(
            steps_iter,
            desc=f"{problem.name} / {entry.name}",
            leave=False,
            unit="step",
            mininterval=0.5,
        )
    if modes:
        opt.train()
    for step in steps_iter:
        if ahead is not None:
            (risk, grads), ahead = ahead, None
            write_grads(grads)
        else:
            risk, grads = gradient(step, working(active))
        state = StepState(
            step,
            widen(risk),
            active,
            held_risk,
            full_batch and not modes,  # schedule-free: the training point is not evaluated
            lr_scale(opt) if scheduler is not None else 1.0,
            _exact_risk=lambda: widen(at_eval(lambda: problem.risk(detached()))),
            _measure=(
                (lambda grads=grads: widen(problem.stationarity_of(trainable(grads))))
                if full_batch and not modes
                else (
                    lambda: widen(
                        at_eval(lambda: problem.stationarity_of(trainable(exact_gradient()[1])))
                    )
                )
            ),
        )
        stopped_any = False
        for recorder in recorders:
            stopped = recorder.observe(state)
            if stopped is not None and bool(stopped.any()):  # eval()/train() only if needed
                if recorder is divergence:
                    stopping.mark(stopped, "diverged")
                freeze(stopped, step, state)
                stopped_any = True
        if stopped_any and not bool(active.any()):  # only a freeze clears seeds
            break
        keep = compaction(working(active)) if stopped_any and stacked else None
        if keep is not None:  # whole BLOCKs of seeds have stopped: stop paying for them
            compact(opt, params, keep)
            rows = keep if rows is None else rows[keep]
            work_ids = ids[rows]
            grads = {k: g[keep] for k, g in grads.items()}
            write_grads(grads)
        if fast is None and not entry.hessian:
            for g in grads.values():  # no NaN of a diverged seed reaches the optimizer's state
                g.masked_fill_(~per_seed(working(active), g), 0.0)
        if entry.closure:
            mask = working(active).clone()

            def closure(step=step, mask=mask):
                risk, _ = gradient(step, mask)
                return torch.where(mask, risk, torch.zeros_like(risk)).sum()

            opt.step(closure)
        elif step == 0:
            opt.step()  # torch.optim's wrapper: a scheduler checks it ran before its own step
            optimizer_step = direct_step(opt)
            if getattr(optimizer_step, "__func__", None) is not FusedStep.step:
                then = None  # hooks, or not a compiled built-in: two calls per step
        elif then is not None and step + 1 < cfg.steps:
            data = () if full_batch else (work_ids, torch.tensor(step + 1, device=device))
            fixed = [params[k].detach() for k in fixed_names]
            ahead = opt.step_then(then_key, then, (fixed, working(active), *data))
        else:
            optimizer_step()
        if scheduler is not None:
            scheduler.step()

    if modes:
        opt.eval()
    for p in leaves:
        p.grad = None  # graph-carrying gradients hold a reference cycle
    with torch.no_grad():
        moved = stop_step < cfg.steps
        ended = {}
        for k, p in params.items():
            now = torch.where(per_seed(working(moved), p), working(held[k]), p.detach())
            ended[k] = now if rows is None else held[k].clone().index_copy_(0, rows, now)
    params = ended  # the whole chunk again, every seed where it ended
    final, grads = _autograd(problem.risk, params)
    grads = trainable(grads)
    grad_norm = frobenius(grads)
    measure = problem.stationarity_of(grads)
    params_finite = torch.stack(
        [torch.isfinite(p.detach().reshape(size, -1)).all(dim=1) for p in params.values()]
    ).all(dim=0)
    ok = torch.isfinite(final) & torch.isfinite(grad_norm) & params_finite
    divergence.finish(cfg.steps, ~ok)
    stopping.mark(~ok, "diverged")
    stopping.mark(torch.ones_like(ok), "budget")
    alive = divergence.at < 0
    checkpoints.finish(torch.where(alive, final, torch.nan))
    first_hit.note(final, alive, stop_step)  # a stopped seed's final risk is its risk at stop
    with torch.no_grad():
        diag = problem.diagnostics(detached())
    records = {
        "seed": ids,
        "final_risk": torch.where(alive, final.to(torch.float64), torch.nan),
        "grad_norm": torch.where(alive, grad_norm.to(torch.float64), torch.nan),
        "stationarity": torch.where(alive, measure.to(torch.float64), torch.nan),
        "stop_step": torch.where(alive, stop_step, divergence.at),
        **{k: v for r in recorders for k, v in r.records().items()},
        **diag,
        **{f"{k}_init": v for k, v in diag_init.items()},
    }
    if keep_params:
        records.update({f"param.{k}": v for k, v in params.items()})
    out = {k: v.detach()[:real].cpu().numpy() for k, v in records.items()}
    out["stop_reason"] = np.array(reason_names(out.pop("stop_code")), dtype=object)
    return out


_WARM: set[tuple] = set()


def warm_up(
    problem: Problem, entry: OptimizerEntry, cfg: RunConfig, seeds: torch.Tensor, hp: dict
) -> None:
    """Compile the fast gradient and the optimizer's step (alone and followed by the next
    gradient) before the clock starts, so a cell's wall time measures training, not the
    one-time compilation (one dynamic-size kernel serves every chunk)."""
    if not (cfg.compile and uses_fast_gradient(problem, entry, cfg)):
        return
    sampled = not (entry.full_batch or problem.exact)
    gradient = closed_form(problem, sampled)
    if entry.path == "stacked" and not entry.closure:
        # Three steps of one block, as a run takes them: they compile the gradient, the
        # update and, from the second step on, the update followed by the next gradient
        # (FusedStep.step_then). Stopping rules off, so no seed stops before the third; no
        # schedule (the learning rate enters the update as a tensor: the same graphs).
        # Once per problem, optimizer and hyperparameters (whose flags shape the update).
        key = (gradient, cfg.dtype, cfg.device, entry.name, repr(sorted(hp.items())))
        if key not in _WARM:
            brief = replace(cfg, steps=3, checkpoints=1, stop=StopRules(), schedule="")
            _train_chunk(problem, entry, hp, seeds[:1], brief, False, False)
            _WARM.add(key)
        return
    device = torch.device(cfg.device)
    ids = seeds[:1].expand(BLOCK).to(device)
    key = (gradient, cfg.dtype, cfg.device)
    if key in _WARM:
        return
    params = problem.init(ids, cfg.dtype, device)
    active = torch.ones(BLOCK, dtype=torch.bool, device=device)
    data = (ids.clone(), torch.tensor(0, device=device)) if sampled else ()
    with torch.no_grad():
        fast_gradient(problem, cfg, sampled)(params, active, *data)
    _WARM.add(key)


CACHE_BYTES = 2 * 1024 * 1024


def auto_chunk(problem: Problem, cfg: RunConfig, seeds: int) -> int:
    """Seeds per tensor program so the largest intermediate stays near 2 MB (in cache).

    Measured on deep-teacher 8-32-32-32-32-1 with 1024 points: chunks of 16 seeds ran 2.4x
    faster than all 256 at once (activations of 33 MB per layer). Problems without a
    footprint, and GPUs, run all seeds at once. Chunks are whole BLOCKs (padding is waste)."""
    if problem.footprint <= 0 or cfg.device.startswith("cuda"):
        return seeds
    itemsize = torch.tensor([], dtype=cfg.dtype).element_size()
    fit = CACHE_BYTES // (problem.footprint * itemsize)
    return min(seeds, max(BLOCK, fit // BLOCK * BLOCK))


def train_cell(
    problem: Problem,
    entry: OptimizerEntry,
    hp: dict,
    seeds: torch.Tensor,
    cfg: RunConfig,
    progress: bool = False,
    keep_params: bool = False,
) -> tuple[dict[str, np.ndarray], float]:
    """Train every seed, in chunks (one seed at a time on the one-seed path);
    returns (records, wall-clock seconds). A seed's records do not depend on the chunking."""
    chunk = cfg.chunk if cfg.chunk > 0 else auto_chunk(problem, cfg, len(seeds))
    if entry.path == "one-seed":
        chunk = 1
    warm_up(problem, entry, cfg, seeds[:chunk], hp)
    start = time.perf_counter()
    starts = range(0, len(seeds), chunk)
    if progress and chunk < len(seeds):  # the one-seed path: progress in seeds
        starts = tqdm(
            starts,
            desc=f"{problem.name} / {entry.name} ({entry.path})",
            leave=False,
            unit="seed" if chunk == 1 else f"x{chunk} seeds",
            mininterval=0.5,
        )
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
        for i in starts
    ]
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    records = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return records, wall
