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

import torch

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

    def step(self, closure=None):
        if closure is not None:
            raise RuntimeError("the vmapped path takes no closure (the probe never picks it)")
        params = [p.detach() for p in self.flat]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in self.flat]
        tensors = [{k: v for k, v in self.state[p].items() if _is_tensor(v)} for p in self.flat]
        shared = [{k: v for k, v in self.state[p].items() if not _is_tensor(v)} for p in self.flat]
        options = [_options(g) for g in self.param_groups]
        side: dict = {}

        def one_seed(p1, g1, s1):
            return self._one_seed(p1, g1, s1, shared, options, side)

        # The first step creates the state, some of it not shaped like a parameter (Shampoo's
        # identity preconditioners), which vmap cannot update in place with a seed's values:
        # that step runs seed by seed; from then on the state enters vmap batched.
        fresh = not any(tensors)
        with torch.no_grad():
            if not self.fallback and not fresh:
                try:
                    new, state = _vmap(one_seed)(params, grads, tensors)
                except Exception as err:  # vmap cannot run this plug-in's step
                    self.fallback = f"{type(err).__name__}: {str(err).strip()[:160]}"
                    warnings.warn(
                        f"{VMAP_FAILED} ({self.fallback}); running it one seed at a time",
                        stacklevel=2,
                    )
            if self.fallback or fresh:
                new, state = _loop(one_seed, params, grads, tensors)
            for p, q in zip(params, new, strict=True):
                p.copy_(q)
        for i, p in enumerate(self.flat):
            self.state[p] = {**side["shared"][i], **state[i]}
        for group, opts in zip(self.param_groups, side["options"], strict=True):
            group.update(opts)
        return None

    def _one_seed(self, p1, g1, s1, shared, options, side):
        """One seed's step: the plug-in built on its tensors, its state and the groups'
        hyperparameters loaded, stepped; returns (new parameters, tensor state)."""
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
                q.grad = g1[i]
                # copies: a step that fails half-way must leave the stacked state as it was
                inner.state[q] = {**shared[i], **{k: v.clone() for k, v in s1[i].items()}}
        inner.step()
        state = [dict(inner.state[q]) for q in leaves]
        side["shared"] = [{k: v for k, v in s.items() if not _is_tensor(v)} for s in state]
        side["options"] = [_options(g) for g in inner.param_groups]
        return leaves, [{k: v for k, v in s.items() if _is_tensor(v)} for s in state]


def _vmap(fn: Callable) -> Callable:
    """vmap over the seed dimension of ``fn`` made functional first: plug-ins write with
    ``out=`` (LAMB's ``torch.div(..., out=update)``), which has no batching rule, and
    functionalization rewrites those writes as pure operations."""
    batched = torch.func.vmap(torch.func.functionalize(fn))

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


def _loop(fn, params, grads, tensors):
    """``fn`` seed by seed and the results stacked: what vmap computes, without it."""
    outs = []
    for s in range(params[0].shape[0]):
        outs.append(
            fn(
                [p[s] for p in params],
                [g[s] for g in grads],
                [{k: v[s] for k, v in st.items()} for st in tensors],
            )
        )
    new = [torch.stack([o[0][i] for o in outs]) for i in range(len(params))]
    state = [
        {k: torch.stack([o[1][i][k] for o in outs]) for k in outs[0][1][i]}
        for i in range(len(params))
    ]
    return new, state
