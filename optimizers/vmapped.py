"""Per-tensor-coupled plug-ins, batched: the plug-in's step for ONE seed under torch.func.vmap.

Optimizers that couple the entries of a parameter tensor (LAMB/LARS trust ratios, Shampoo/SOAP
preconditioners, Muon's orthogonalization) are exact when every seed has its own tensors. The
per-seed path gives them S x P separate tensors, so their Python loop runs S x P times a step.
Here the loop runs P times: ``VmappedOptimizer`` holds the stacked [S, ...] parameters and
their state stacked the same way, and each step builds the plug-in on one seed's tensors,
loads that seed's state and hyperparameters into it, steps it, and reads the new parameters
and state back, all inside ``torch.func.vmap`` over the seed dimension (issue 14 item 5).

Exactness: vmap runs the plug-in's own operations with a batch dimension, so each seed's update
is the one it gets alone up to the rounding of batched kernels; the probe (benchmarks/probe.py)
takes this path only when a short run equals the one-seed path within its tolerance. A plug-in
whose step vmap cannot run (``.item()``, data-dependent control flow, random draws) fails the
probe and takes the per-seed path; should vmap fail later in a run, the step warns once and
runs the same per-seed function in a Python loop over seeds (exact, slower).

Contract with the engine: a normal torch.optim.Optimizer over the stacked parameters. Per
parameter, the tensor state carries the leading seed dimension and the rest is shared, so
``state_dict()`` restricted to kept seeds rebuilds it for fewer seeds; schedulers change
``group['lr']`` on its groups, which are passed to the plug-in every step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial

import torch

from optimizers.branches import run_split

VMAP_FAILED = "vmapped optimizer step failed"  # the warning's start (the probe looks for it)


class VmappedOptimizer(torch.optim.Optimizer):
    """A plug-in optimizer (class or factory) run on every seed at once under vmap."""

    def __init__(self, factory: Callable, params, hp: dict) -> None:
        params = list(params)
        self.factory, self.hp = factory, dict(hp)
        self.fallback = ""  # why vmap was given up at run time ("" while it runs)
        # The plug-in built on one seed's shapes says how it groups parameters (Muon puts
        # matrices and vectors in different groups): the same grouping for the stacked ones.
        one = [p.detach()[0].clone().requires_grad_(True) for p in params]
        template = factory(one, **self.hp)
        where = {id(t): i for i, t in enumerate(one)}
        self.order = [[where[id(q)] for q in g["params"]] for g in template.param_groups]
        groups = [
            {**_options(g), "params": [params[i] for i in idx]}
            for g, idx in zip(template.param_groups, self.order, strict=True)
        ]
        super().__init__(groups, dict(template.defaults))
        self.flat = params
        self.level = 0  # the first of FUNCTIONALIZE that ran a step (steps start there)
        self.splits = 0  # how often seeds were split (a branch they disagreed on)

    def step(self, closure=None):
        if closure is not None:
            raise RuntimeError("the vmapped path takes no closure (the probe never picks it)")
        params = [p.detach() for p in self.flat]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in self.flat]
        tensors = [{k: v for k, v in self.state[p].items() if _is_tensor(v)} for p in self.flat]
        shared = [{k: v for k, v in self.state[p].items() if not _is_tensor(v)} for p in self.flat]
        options = [_options(g) for g in self.param_groups]
        step = _Step(self._one_seed, params, grads, tensors, shared, options)
        # The first step creates the state, some of it not shaped like a parameter (Shampoo's
        # identity preconditioners), which vmap cannot update in place with a seed's values:
        # where vmap fails there, that step runs seed by seed; from then on the state enters
        # vmap batched.
        # (a plug-in without tensor state is fresh every step: run seed by seed where vmap
        # cannot run it, silently, as before; ClippedSGD's foreach norm in tests/benchmarks)
        fresh = not any(tensors)
        result = None
        with torch.no_grad():
            if not self.fallback:
                try:
                    result = self._batched(step, fresh)
                except Exception as err:  # vmap cannot run this plug-in's step
                    if not fresh:
                        self.fallback = f"{type(err).__name__}: {str(err).strip()[:160]}"
                        warnings.warn(
                            f"{VMAP_FAILED} ({self.fallback}); running it one seed at a time",
                            stacklevel=2,
                        )
            if result is None:
                result = step.looped()
            new, state, opts = result
            for p, q in zip(params, new, strict=True):
                p.copy_(q)
        for p, s in zip(self.flat, state, strict=True):
            self.state[p] = s
        for group, o in zip(self.param_groups, opts, strict=True):
            group.update(o)
        return None

    def _batched(self, step: _Step, fresh: bool) -> StepResult:
        """The step under vmap (optimizers/branches.py: the seeds split where they disagree on
        a branch), plain or else functionalized: from the way the last step took on (one that
        fails on the first step, whose state is made inside it, may run the later ones).
        The last way's error is raised when none runs."""
        err: Exception | None = None
        for level in range(self.level, len(FUNCTIONALIZE)):
            run = partial(step.on, functional=FUNCTIONALIZE[level])
            try:
                result = run_split(run, step.seeds, self._scatter)
            except Exception as caught:  # this way cannot run it: the next one may
                err = caught
                continue
            if not fresh:
                self.level = level
            return result
        assert err is not None
        raise err

    def _scatter(self, parts: list, seeds: int) -> StepResult:
        self.splits += 1
        return _scatter(parts, seeds)

    def _one_seed(self, p1, g1, s1, shared, options, side):
        """One seed's step: the plug-in built on its tensors, its state and the groups'
        hyperparameters loaded, stepped; returns (new parameters, tensor state), and leaves
        the non-tensor state and the groups' options in ``side`` (vmap returns tensors only)."""
        leaves = [p.clone() for p in p1]
        inner = self.factory(leaves, **self.hp)
        where = {id(t): i for i, t in enumerate(leaves)}
        for group, opts in zip(inner.param_groups, options, strict=True):
            group.update(opts)
            if "foreach" in group and group["foreach"] is None:
                # torch._foreach_* ops have no batching rule; the per-tensor loop does the
                # same arithmetic (pytorch-optimizer's foreach=None means 'either')
                group["foreach"] = False
            for q in group["params"]:
                i = where[id(q)]
                q.grad = g1[i].clone()  # a step may write it; a failed way must not
                # copies: a step that fails half-way must leave the stacked state as it was
                inner.state[q] = {**shared[i], **{k: v.clone() for k, v in s1[i].items()}}
        inner.step()
        state = [dict(inner.state[q]) for q in leaves]
        side["shared"] = [{k: v for k, v in s.items() if not _is_tensor(v)} for s in state]
        side["options"] = [_options(g) for g in inner.param_groups]
        return leaves, [{k: v for k, v in s.items() if _is_tensor(v)} for s in state]


# new parameters, state (tensors with the seed dimension and shared values), groups' options
StepResult = tuple[list[torch.Tensor], list[dict], list[dict]]


class _Step:
    """One optimizer step's inputs, and the plug-in's one-seed step over any subset of the
    seeds: under vmap (``on``) or seed by seed (``looped``)."""

    def __init__(self, one_seed, params, grads, tensors, shared, options) -> None:
        self.one_seed, self.shared, self.options = one_seed, shared, options
        self.params, self.grads, self.tensors = params, grads, tensors
        self.seeds = params[0].shape[0]

    def _inputs(self, index: torch.Tensor | None) -> tuple:
        if index is None or index.numel() == self.seeds:  # groups are always fewer seeds
            return self.params, self.grads, self.tensors
        return (
            [p[index] for p in self.params],
            [g[index] for g in self.grads],
            [{k: v[index] for k, v in st.items()} for st in self.tensors],
        )

    def on(self, index: torch.Tensor | None, functional: bool) -> StepResult:
        """The step of the seeds ``index`` (None: all) under vmap, functionalized or not."""
        side: dict = {}

        def fn(p1, g1, s1):
            return self.one_seed(p1, g1, s1, self.shared, self.options, side)

        new, tensors = _vmap(fn, functional)(*self._inputs(index))
        state = [{**sh, **t} for sh, t in zip(side["shared"], tensors, strict=True)]
        return new, state, side["options"]

    def alone(self, seed: int) -> StepResult:
        """One seed's step without vmap, its results with a seed dimension of one."""
        side: dict = {}
        new, tensors = self.one_seed(
            [p[seed] for p in self.params],
            [g[seed] for g in self.grads],
            [{k: v[seed] for k, v in st.items()} for st in self.tensors],
            self.shared,
            self.options,
            side,
        )
        state = [
            {**sh, **{k: v.unsqueeze(0) for k, v in t.items()}}
            for sh, t in zip(side["shared"], tensors, strict=True)
        ]
        return [q.unsqueeze(0) for q in new], state, side["options"]

    def looped(self) -> StepResult:
        """Every seed's step on its own, merged: what vmap computes, without it."""
        parts = [(torch.tensor([s]), self.alone(s)) for s in range(self.seeds)]
        return _scatter(parts, self.seeds)


def _scatter(parts: list[tuple[torch.Tensor, StepResult]], seeds: int) -> StepResult:
    """Groups' step results (each for the seeds at its positions) as one for ``seeds`` seeds.
    A state value the groups share stays as it is; one that differs (LAMB's trust ratio: the
    number 1.0 where a seed's norm is zero, a tensor elsewhere) becomes a tensor with the seed
    dimension. The groups' options must agree (they are the same hyperparameters and
    counters for every seed)."""
    first_new, first_state, options = parts[0][1]
    if any(part[2] != options for _, part in parts):
        raise ValueError("seed groups changed the optimizer's options differently")
    new = []
    for i, q in enumerate(first_new):
        out = q.new_empty((seeds, *q.shape[1:]))
        for where, part in parts:
            out[where] = part[0][i]
        new.append(out)
    state = []
    for i, keys in enumerate(first_state):
        merged = {}
        for key in keys:
            values = [(where, part[1][i][key]) for where, part in parts]
            if not any(_is_tensor(v) for _, v in values) and all(
                v == values[0][1] for _, v in values
            ):
                merged[key] = values[0][1]
                continue
            like = next((v for _, v in values if _is_tensor(v)), None)
            tail = like.shape[1:] if like is not None else ()
            dtype = like.dtype if like is not None else new[i].dtype
            out = torch.empty((seeds, *tail), dtype=dtype, device=new[i].device)
            for where, v in values:
                out[where] = v if _is_tensor(v) else torch.as_tensor(v, dtype=dtype)
            merged[key] = out
        state.append(merged)
    if any(
        part[1][i].keys() != first.keys()
        for _, part in parts
        for i, first in enumerate(first_state)
    ):
        raise ValueError("seed groups left different optimizer state")
    return new, state, options


# How to run a plug-in's one-seed step under vmap, cheapest first: plain (in-place updates run
# as they are, the ones vmap batches only example by example rewritten by SeedBranches), then
# functionalized (every write rewritten as a pure operation; it costs more, and its copy_
# takes vmap's per-example fallback) for what plain vmap refuses.
FUNCTIONALIZE = (False, True)


def _vmap(fn: Callable, functional: bool) -> Callable:
    """vmap over the seed dimension of ``fn``, made functional first if asked (in-place and
    ``out=`` writes rewritten as pure operations)."""
    batched = torch.func.vmap(torch.func.functionalize(fn) if functional else fn)

    def run(*args):
        with warnings.catch_warnings():
            # torch's per-example fallback for a missing batching rule: still exact
            warnings.filterwarnings("ignore", message="There is a performance drop")
            return batched(*args)

    return run


def _is_tensor(value) -> bool:
    return isinstance(value, torch.Tensor)


def _options(group: dict) -> dict:
    return {k: v for k, v in group.items() if k != "params"}
