"""Engine throughput as ratios measured in one run (`make perf`).

Machines here are shared and noisy, so only ratios between implementations timed in the same
process are reported, never absolute times in tests. Cases (issue 8): shallow 1-D ReLU
(H = 32, S = 1024, Adam, float32), Gaussian teacher–student (k = n = 10), deep FC
(8-32-32-32-32-1, N = 1024, S = 256). "naive" is the textbook per-seed loop: the same
problem's risk and torch.optim.Adam, one seed at a time, with autograd.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.allocator import keep_freed_memory
from benchmarks.engine import RunConfig, train_cell
from benchmarks.stopping import StopRules
from optimizers.registry import BUILTINS
from problems.deepfc import parse_widths
from problems.registry import make
from problems.relu1d import exact_risk_and_grad
from problems.targets import square

ADAM = BUILTINS["adam"]
DEEP = "deep-teacher:arch=8-32-32-32-32-1,points=1024"


def rate(problem, seeds: int, steps: int, **cfg) -> float:
    """Seed-steps per second of the engine."""
    start = time.perf_counter()
    train_cell(problem, ADAM, {}, torch.arange(seeds), RunConfig(steps=steps, **cfg))
    return seeds * steps / (time.perf_counter() - start)


def naive_rate(problem, seeds: int, steps: int, lr: float = 1e-3) -> float:
    """Seed-steps per second of the textbook loop: one seed at a time, its parameters as leaf
    tensors, the problem's risk, backward(), torch.optim.Adam."""
    cpu = torch.device("cpu")
    start = time.perf_counter()
    for seed in range(seeds):
        init = problem.init(torch.tensor([seed]), torch.float32, cpu)
        params = {k: v.requires_grad_(True) for k, v in init.items()}
        opt = torch.optim.Adam(params.values(), lr=lr)
        for _ in range(steps):
            opt.zero_grad()
            problem.risk(params).sum().backward()
            opt.step()
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


def gemm_ceiling(problem, seeds: int = 16, repeats: int = 20) -> float:
    """Seed-steps/s if a training step were only its matrix products (forward, weight
    gradients, deltas; batched over 16 seeds): a bound for any implementation doing the same
    arithmetic on this machine, so the deep goal can be read against it."""
    widths = parse_widths(problem.options["arch"])
    n = problem.options["points"]
    shapes = []
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        shapes.append(((n, fan_in), (fan_in, fan_out)))  # forward
        shapes.append(((fan_out, n), (n, fan_in)))  # weight gradient
        if layer:
            shapes.append(((n, fan_out), (fan_out, fan_in)))  # delta to the layer below
    pairs = [(torch.randn(seeds, *a), torch.randn(seeds, *b)) for a, b in shapes]

    def once() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            for a, b in pairs:
                torch.bmm(a, b)
        return seeds * repeats / (time.perf_counter() - start)

    return median(once)


def _timed_share(spec: str, seeds: int, steps: int, barrier, results) -> None:
    """One worker's share of a cell, as the runner runs it: one thread, compiled before the
    clock starts, then timed from a common start."""
    torch.set_num_threads(1)
    keep_freed_memory()
    problem = make(spec)
    rate(problem, min(seeds, 16), 1, compile=True)
    barrier.wait()
    results.put(seeds * steps / rate(problem, seeds, steps, compile=True))


SPAWN_TIMEOUT_S = 1800.0  # a measuring process that has said nothing for this long is stuck


def spawned(target, arg_sets: list[tuple], timeout: float = SPAWN_TIMEOUT_S) -> list:
    """Run ``target(*args, results)`` in one fresh (spawned, daemon) process per args tuple
    and return what each put on ``results``, in the order they arrived. Why processes: a
    measurement that needs a clean interpreter (its own threads, its own allocator state).
    A process that dies before answering raises at once instead of leaving the caller waiting
    on the queue forever; daemons do not outlive an interrupted `make perf`."""
    import queue

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, results), daemon=True) for args in arg_sets]
    for proc in procs:
        proc.start()
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < len(procs):
            try:
                out.append(results.get(timeout=1.0))
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    why = f"exit codes {dead}" if dead else f"no answer within {timeout:g} s"
                    raise RuntimeError(f"a measuring process failed ({why})") from None
    finally:
        for proc in procs:
            if proc.is_alive() and len(out) < len(procs):
                proc.kill()
            proc.join()
    return out


def machine_rate(spec: str, seeds: int, steps: int, workers: int) -> float:
    """Seed-steps/s of one cell split over ``workers`` processes of one thread each, as
    `trapbench run --workers W --task-seeds S/W` runs it (compilation excluded)."""
    barrier = mp.get_context("spawn").Barrier(workers)
    share = seeds // workers
    seconds = spawned(_timed_share, [(spec, share, steps, barrier)] * workers)
    return share * workers * steps / max(seconds)


def adam_step_rate(fused: bool, dead: float = 0.0) -> float:
    """Steps/s of torch.optim.Adam on relu1d-shaped parameters (S = 1024, H = 32) whose
    gradients are zero for a share ``dead`` of the entries, as dead neurons' are."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(1024, 32, generator=g, requires_grad=True) for _ in range(3)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * (torch.rand(p.shape, generator=g) >= dead)
    opt = torch.optim.Adam(params, lr=1e-3, fused=fused)
    opt.step()
    start = time.perf_counter()
    for _ in range(200):
        opt.step()
    return 200 / (time.perf_counter() - start)


def stopping_saving(spec: str = "gauss-relu:k=6", seeds: int = 256, steps: int = 20000) -> dict:
    """What per-seed stopping saves on Safran & Shamir's protocol (GD 0.1, float64): wall
    time of the fixed budget over wall time with their stopping rule, and the share of
    seed-steps the rule spares. A chunk ends when its last seed stops."""
    problem = make(spec)
    gd, hp = BUILTINS["gd"], {"lr": 0.1}
    ids = torch.arange(seeds)
    fixed = RunConfig(steps=steps, dtype=torch.float64, compile=True)
    rule = dataclasses.replace(fixed, stop=StopRules(grad_tol=1e-9 / (2 * math.pi)))
    train_cell(problem, gd, hp, ids[:32], dataclasses.replace(fixed, steps=2))  # compile
    rec, with_rule = train_cell(problem, gd, hp, ids, rule)
    _, without = train_cell(problem, gd, hp, ids, fixed)
    return {
        "wall": without / with_rule,
        "seed_steps": 1 - rec["stop_step"].sum() / (seeds * steps),
        "last_stop": int(rec["stop_step"].max()),
    }


PATH_PROBLEM = "relu1d-x2"
COUPLED_PLUGINS = ("pytorch_optimizer:Lamb", "pytorch_optimizer:Shampoo")


def path_rate(spec: str, path: str, seeds: int, steps: int) -> float:
    """Seed-steps per second of a plug-in optimizer on one engine path (float32)."""
    from benchmarks.probe import checked_entry

    entry = dataclasses.replace(checked_entry(spec, {}, torch.float32), path=path)
    problem = make(PATH_PROBLEM)
    start = time.perf_counter()
    train_cell(problem, entry, {}, torch.arange(seeds), RunConfig(steps=steps))
    return seeds * steps / (time.perf_counter() - start)


def coupled_rows(seeds: int = 1024, steps: int = 40) -> list[dict]:
    """Optimizers that couple entries within a tensor (LAMB's trust ratio, Shampoo's
    preconditioner): the path the probe picks (vmapped where vmap runs the step, else every
    seed's own tensors in one optimizer) against one seed at a time."""
    from benchmarks.probe import checked_entry

    rows = []
    for spec in COUPLED_PLUGINS:
        path = checked_entry(spec, {}, torch.float32).path
        batched = median(lambda spec=spec, path=path: path_rate(spec, path, seeds, steps), 1)
        one_seed = median(lambda spec=spec: path_rate(spec, "one-seed", 16, steps), 1)
        case = f"{spec.rpartition(':')[2]} {PATH_PROBLEM} S={seeds}"
        rows.append(row(case, f"{path} (probe's path) / one-seed path", batched / one_seed, 20))
    return rows


def levels_rows() -> list[dict]:
    """Issue 19 item 4. Cold set-up seconds of wide 1-D problems (a fresh reference
    cache; they are figures, not tests): relu1d-x2 takes its levels from closed forms,
    relu1d-sin3x runs the full search to width 8 and bounds R*_64 by a CPWL fit."""
    import tempfile

    from problems.relu1d import reference_levels
    from problems.targets import TARGETS

    rows = []
    before = os.environ.get("TRAPBENCH_CACHE")
    for key in ("sin3x", "x2"):
        spec = f"relu1d-{key}:width=64"
        with tempfile.TemporaryDirectory() as cache:
            os.environ["TRAPBENCH_CACHE"] = cache
            start = time.perf_counter()
            reference_levels(TARGETS[key](), 64)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            reference_levels(TARGETS[key](), 64)
            warm = time.perf_counter() - start
        rows.append(row(spec, "levels: cold, seconds", cold))
        rows.append(row(spec, "levels: cached, seconds", warm))
    if before is None:
        os.environ.pop("TRAPBENCH_CACHE", None)
    else:
        os.environ["TRAPBENCH_CACHE"] = before
    return rows


def deep_bound_rows() -> list[dict]:
    """Issue 19 item 3: the deep case's engine against the GEMM-only bound on one core, as
    back-to-back pairs (the machine's load drifts between separate medians), on 300-step and
    on 30-step cells."""
    torch.set_num_threads(1)
    deep = make(DEEP)
    rate(deep, 16, 2, compile=True)
    # The goal is read on 300-step cells (the deep suite's are 3000 steps): a step against the
    # bound's step. At 30 steps a 32-seed chunk's set-up and final evaluation (about 0.1 s:
    # initialization, autograd's final gradient, dead-unit counts, none of them a training
    # step) are 10-15% of the time; that row stays for comparison with earlier runs.
    steady = median(lambda: rate(deep, 64, 300, compile=True) / gemm_ceiling(deep), 5)
    short = median(lambda: rate(deep, 256, 30, compile=True) / gemm_ceiling(deep), 5)
    what = "engine / GEMM-only bound, one core"
    return [
        row("deep 8-32x4-1 N=1024 S=64, 300 steps", what, steady, 0.9),
        row("deep 8-32x4-1 N=1024 S=256, 30 steps", what, short),
    ]


def median(fn, repeats: int = 3) -> float:
    """Median of repeated measurements: single runs on a shared machine jump by 30%."""
    return statistics.median(fn() for _ in range(repeats))


def row(case: str, measure: str, ratio: float, goal: float | None = None) -> dict:
    return {"case": case, "measure": measure, "ratio": ratio, "goal": goal}


def measure() -> list[dict]:
    """The issue's three cases. The engine runs as `trapbench run` does (compiled closed-form
    gradient, auto-chunked seeds, the allocator's thresholds pinned); compilation happens
    before the clock starts."""
    torch.set_num_threads(1)
    keep_freed_memory()
    rows = []

    relu = make("relu1d-x2:width=32")
    case = "relu1d-x2 H=32 S=1024"
    rate(relu, 1024, 2, compile=True)  # compile outside the timing
    naive_rate(relu, 1, 3)
    naive = median(lambda: naive_rate(relu, 8, 40))
    engine = median(lambda: rate(relu, 1024, 200, compile=True))
    # what one compiled call per step saves (FusedStep.step_then: the update and the next
    # gradient in one call; the same numbers)
    two_calls = median(lambda: rate(relu, 1024, 200, compile=True, fuse_steps=False))
    autograd = median(lambda: rate(relu, 1024, 40, analytic=False))
    hand = median(lambda: handwritten_rate(1024, 200))
    # why the engine trails the hand-written loop: torch.optim's (unfused) Adam step
    unfused = median(lambda: adam_step_rate(fused=False))
    rows += [
        row(
            "Adam step, [1024, 32] x 3",
            "fused / unfused (not batch-invariant)",
            median(lambda: adam_step_rate(fused=True)) / unfused,
        ),
        row(
            "Adam step, [1024, 32] x 3",
            "37% zero gradients / none: slowdown",
            unfused / median(lambda: adam_step_rate(fused=False, dead=0.37)),
        ),
    ]
    rows += [
        row(case, "engine / naive per-seed loop", engine / naive, 300),
        row(case, "engine / best hand-written (fused)", engine / hand, 0.85),
        row(case, "one compiled call per step / two", engine / two_calls),
        row(case, "engine autograd path / naive", autograd / naive),
        row(case, "engine seed-steps/s", engine),
    ]

    gauss = make("gauss-relu:k=10")
    case = "gauss-relu k=n=10 S=1024"
    rate(gauss, 1024, 2, compile=True)
    naive = median(lambda: naive_rate(gauss, 8, 40))
    engine = median(lambda: rate(gauss, 1024, 100, compile=True))
    autograd = median(lambda: rate(gauss, 1024, 40, analytic=False))
    rows += [
        row(case, "engine / naive per-seed loop", engine / naive, 100),
        row(case, "engine autograd path / naive", autograd / naive),
        row(case, "engine seed-steps/s", engine),
    ]

    deep = make(DEEP)
    case = "deep 8-32x4-1 N=1024 S=256"
    rate(deep, 16, 2, compile=True)
    naive = median(lambda: naive_rate(deep, 4, 10))
    engine = median(lambda: rate(deep, 256, 30, compile=True))
    autograd = median(lambda: rate(deep, 256, 10, analytic=False), 1)
    rows += [
        row(case, "engine / naive, one core each", engine / naive, 4),
        row(case, "GEMM-only bound / naive, one core", gemm_ceiling(deep) / naive),
        row(case, "engine autograd path / naive", autograd / naive),
        row(case, "engine seed-steps/s, one core", engine),
    ]
    # The whole machine: the engine as `trapbench run --workers W --task-seeds S/W` splits a
    # cell over one single-threaded worker per core, against the per-seed loop at the
    # better of one thread and torch's default of one per core (its small products gain
    # little from more threads, and often lose).
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    naive_threaded = median(lambda: naive_rate(deep, 4, 10))
    torch.set_num_threads(1)
    workers = median(lambda: machine_rate(DEEP, 256, 30, cores))
    best_naive = max(naive, naive_threaded)
    rows.append(row(case, f"{cores} workers / best naive, machine", workers / best_naive))

    rows += coupled_rows()

    saving = stopping_saving()
    case = "gauss-relu k=6 S=256 GD"
    rows += [
        row(case, "20000 steps / paper's stop rule: wall", saving["wall"]),
        row(case, "seed-steps spared by stopping", saving["seed_steps"]),
        row(case, "last seed's stop step", saving["last_stop"]),
    ]
    rows += optstep_rows()
    rows += levels_rows()
    rows += deep_bound_rows()
    rows += sampled_rows()
    rows += overhead_rows()
    rows += allocator_rows()
    return rows


# a 32-seed chunk of the deep case and of seed 000's setting 6 at width 50 (online batches)
ALLOCATOR_CASES = (
    ("deep 8-32x4-1 N=1024 S=32", DEEP),
    (
        "sampled deep 1-50-50-1 S=32 N=1024",
        "deep-target:target=sin3x,arch=1-50-50-1,init=normal,bias=normal,sampled=true,batch=1024",
    ),
)


def _allocator_rates(pinned: bool, steps: int, results: mp.Queue) -> None:
    """One process's seed-steps/s on ALLOCATOR_CASES (one thread, compiled outside the
    timing), with glibc's thresholds pinned (benchmarks/allocator.py) or as glibc sets them:
    mallopt cannot be undone, so each setting needs a process of its own."""
    torch.set_num_threads(1)
    if pinned:
        keep_freed_memory()
    out = []
    for _, spec in ALLOCATOR_CASES:
        problem = make(spec)
        rate(problem, 32, 3, compile=True)
        out.append(rate(problem, 32, steps, compile=True))
    results.put(out)


def allocator_rows(steps: int = 150, pairs: int = 3) -> list[dict]:
    """What pinning the allocator's thresholds saves: pairs of processes back to back, the
    order alternating (default first, then pinned first) so the machine's drift does not lean
    one way, and the median ratio per case: glibc's dynamic threshold maps a different share
    of the step's buffers afresh in each default process, so one pair says little. The six
    processes each start an interpreter and compile both cases: about 3 minutes in all."""

    def rates(pinned: bool) -> list[float]:
        return spawned(_allocator_rates, [(pinned, steps)])[0]

    measured = []
    for i in range(pairs):
        first = bool(i % 2)
        one, two = rates(first), rates(not first)
        measured.append((two, one) if first else (one, two))  # (default, pinned)
    return [
        row(
            case,
            "allocator thresholds pinned / glibc default",
            statistics.median(pinned[i] / default[i] for default, pinned in measured),
        )
        for i, (case, _) in enumerate(ALLOCATOR_CASES)
    ]


def sampled_rows(widest: tuple[int, int] = (10, 40)) -> list[dict]:
    """Issue 19 item 1: online SGD on fresh batches of 1024 (S = 256, one thread, float32),
    in seed-steps/s: the engine's compiled closed-form train_risk_grad against its autograd
    path (today's sampled path) and against a hand-written compiled loop. Then seed 000's
    widest setting, 1-1000-1 ReLU, 300 seeds, 10^4 steps, EXTRAPOLATED: the engine is timed
    for widest[0] and widest[1] steps, the difference gives the cost of a step and the rest
    the fixed cost (set-up, final evaluation); a step costs the same throughout (no stopping
    rules, so no seed stops). The engine keeps two checkpoints: a real run's 24 exact-risk
    checkpoints spread over 10^4 steps cost nothing, over the few steps timed here they
    would be most of the time. From H = 24 on the engine's train_risk_grad sorts the batch
    (problems/sorted_sums.py; H = 16 keeps the dense closed form); the widest setting was
    also timed for real once (train_cell, 300 seeds, 10^4 steps, SGD lr 0.01, compiled, one
    thread, not niced, on the shared 2-core machine): see README performance."""
    spec_of = "relu1d-x2:width={},sampled=true,batch=1024".format

    def engine_seconds(spec: str, seeds: int, steps: int, **cfg) -> float:
        config = RunConfig(steps=steps, checkpoints=2, **cfg)
        start = time.perf_counter()
        train_cell(make(spec), BUILTINS["sgd"], {}, torch.arange(seeds), config)
        return time.perf_counter() - start

    def handwritten_rate(width: int, seeds: int, steps: int, batch: int = 1024) -> float:
        """A fresh batch from torch.rand each step and one compiled function with the
        closed-form per-sample gradient and the SGD update (lr 0.01): all seeds and the
        whole batch at once, no bookkeeping."""
        p = make(spec_of(width)).init(torch.arange(seeds), torch.float32, "cpu")

        @torch.compile(dynamic=False)
        def step(p: dict, x: torch.Tensor) -> dict:
            w, b, v = p["w"][:, :, None], p["b"][:, :, None], p["v"][:, :, None]
            z = w * x[:, None, :] + b  # [S, H, N]: sums over samples run along memory
            err = p["c"][:, None] + (torch.relu(z) * v).sum(dim=1) - x * x
            d = (2.0 / batch) * err[:, None, :]
            active = torch.where(z > 0, d, 0.0)
            grads = {
                "w": p["v"] * (active * x[:, None, :]).sum(dim=2),
                "b": p["v"] * active.sum(dim=2),
                "v": (d * torch.relu(z)).sum(dim=2),
                "c": d[:, 0].sum(dim=1),
            }
            return {k: p[k] - 0.01 * grads[k] for k in p}

        with torch.no_grad():
            step(dict(p), torch.rand(seeds, batch))  # compile
            start = time.perf_counter()
            for _ in range(steps):
                p = step(p, torch.rand(seeds, batch))
        return seeds * steps / (time.perf_counter() - start)

    rows = []
    for width, steps in ((16, 200), (256, 20)):
        spec, case = spec_of(width), f"sampled relu1d H={width} S=256 N=1024"
        engine_seconds(spec, 32, 2, compile=True)  # compile outside the timing
        few = max(steps // 10, 2)  # the autograd path is about 10x slower
        fast = median(
            lambda spec=spec, n=steps: 256 * n / engine_seconds(spec, 256, n, compile=True)
        )
        slow = median(
            lambda spec=spec, n=few: 256 * n / engine_seconds(spec, 256, n, analytic=False), 1
        )
        hand = median(lambda width=width, n=steps: handwritten_rate(width, 256, n))
        rows += [
            row(case, "engine / autograd path (today)", fast / slow, 10),
            row(case, "engine / hand-written compiled", fast / hand, 1.0),
            row(case, "engine seed-steps/s", fast),
        ]
    spec, seeds = spec_of(1000), 300
    engine_seconds(spec, 32, 2, compile=True)
    short, long = (engine_seconds(spec, seeds, n, compile=True) for n in widest)
    per_step = (long - short) / (widest[1] - widest[0])
    minutes = (short + (10_000 - widest[0]) * per_step) / 60
    case = "sampled relu1d H=1000 S=300"
    rows += [
        row(case, f"min for 10^4 steps, 1 core (extrap. {widest[0]}/{widest[1]})", minutes),
        row(case, "60 min / that (goal: under an hour)", 60 / minutes, 1.0),
    ]
    return rows


def optstep_rows() -> list[dict]:
    """The built-ins' compiled step (optimizers/fused.py) against torch.optim's, on relu1d's
    parameter shapes (S = 1024, H = 32): what the optimizer step costs inside a training step."""
    from optimizers.fused import FusedAdam

    def step_rate(compiled: bool) -> float:
        g = torch.Generator().manual_seed(0)
        shapes = [(1024, 32)] * 3 + [(1024,)]
        params = [torch.randn(s, generator=g, requires_grad=True) for s in shapes]
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt = FusedAdam(params, lr=1e-3).compile_step(compiled)
        opt.step()  # compiles (once per process)
        start = time.perf_counter()
        for _ in range(200):
            opt.step()
        return 200 / (time.perf_counter() - start)

    case = "Adam step, [1024, 32] x 3 + [1024]"
    ratio = median(lambda: step_rate(True)) / median(lambda: step_rate(False))
    return [row(case, "compiled (batch-invariant) / torch.optim", ratio)]


def overhead_rows() -> list[dict]:
    """Issue 19 item 2 and issue 13's long budgets: the engine's fixed cost per step on
    relu1d-x2 (H = 32, Adam, float32, one thread, compiled). A step at 32 seeds over a step at
    1024: per-seed work alone would give 32 / 1024 = 0.031; the rest is per-step overhead
    (compiled-call entries, the optimizer's and recorders' bookkeeping), which is also what
    each step of a run's tail costs once compaction has shrunk it to a block of seeds."""
    relu = make("relu1d-x2:width=32")
    rate(relu, 1024, 2, compile=True)  # compile outside the timing
    small = median(lambda: 32 / rate(relu, 32, 1000, compile=True))
    large = median(lambda: 1024 / rate(relu, 1024, 200, compile=True))
    case = "relu1d-x2 H=32 Adam"
    return [row(case, "engine step S=32 / step S=1024", small / large)]


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
        print(f"{r['case']:36s} {r['measure']:44s} {r['ratio']:10.3g}{goal}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
