"""Data-dependent Python branches under vmap, exactly: split the seeds where they disagree.

A plug-in's step may branch on a tensor's value (LAMB: ``1.0 if weight_norm == 0 or p_norm == 0
else ...``). Under ``torch.func.vmap`` that tensor holds one value per seed and has no single
truth value, so vmap refuses it. ``SeedBranches`` (a TorchFunctionMode) answers
``Tensor.__bool__`` for a batched tensor itself: where every seed gives the same value it
returns that value and the step goes on batched; where they disagree it raises
``SeedsDisagree`` with each seed's value. ``run_split`` then re-runs the step on each group of
seeds that agree (recursively, so several branches work) and puts the groups' results back in
seed order. That is exact because the step it re-runs is a pure function of its inputs (the
vmapped step returns new parameters and state; it writes nothing outside), so each seed gets
the branch it takes alone.

The same mode lets a per-seed 0-dim tensor be the scalar factor of an update: LAMB steps with
``p.add_(update, alpha=-step_size * trust_ratio)``, where the one-seed path turns the tensor
into a number. Under vmap that tensor holds one number per seed, so ``add_/sub_(other,
alpha=a)`` runs as ``add_/sub_(other * a)`` and ``addcmul_/addcdiv_(t1, t2, value=a)`` as
``addcmul_/addcdiv_(t1 * a, t2)``: the same arithmetic, rounded in two steps where the CPU
kernel may fuse the multiply and add (a difference of about one unit in the last place of
the update, which the probe's tolerance judges). And an ``out=`` write into a batched tensor
(LAMB's ``torch.div(exp_avg, update, out=update)``), which vmap cannot batch, runs as the op
and a ``copy_`` of its result (the same values). Nothing else is answered: ``.item()`` /
``float()`` of a batched tensor (a per-seed number used as a number elsewhere) still fails,
and the caller falls back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch._C._functorch as functorch
from torch.overrides import TorchFunctionMode

Result = TypeVar("Result")


class SeedsDisagree(Exception):
    """A branch's condition differs between seeds: ``values[s]`` is seed ``s``'s truth value."""

    def __init__(self, values: torch.Tensor) -> None:
        super().__init__(f"seeds disagree on a branch: {values.tolist()}")
        self.values = values

    def groups(self) -> list[torch.Tensor]:
        """Positions of the seeds that agree, one index tensor per distinct value, in order."""
        return [torch.nonzero(self.values == v).flatten() for v in self.values.unique()]


def _batched_values(tensor: torch.Tensor) -> torch.Tensor | None:
    """The values of a tensor batched by vmap (functionalized or not), seeds first, or None
    when it is not batched (then it has one value for all seeds and answers as usual)."""
    t = tensor
    while functorch.is_functorch_wrapped_tensor(t):
        if functorch.is_functionaltensor(t):
            torch._sync(t)  # pending in-place updates, applied before reading
            t = torch._from_functional_tensor(t)
        elif functorch.is_batchedtensor(t):
            return functorch.get_unwrapped(t).movedim(functorch.maybe_get_bdim(t), 0)
        else:
            return None
    return None


def seed_values(tensor: torch.Tensor) -> torch.Tensor | None:
    """One truth value per seed of a tensor batched by vmap, or None when it is not batched."""
    values = _batched_values(tensor)
    if values is None:
        return None
    # one element per seed, as a truth value needs (a larger tensor raises, as it does alone)
    return values.reshape(values.shape[0], -1).squeeze(1).to(torch.bool)


def _is_batched(value) -> bool:
    return isinstance(value, torch.Tensor) and _batched_values(value) is not None


_T = torch.Tensor
# ops whose scalar factor may be a per-seed tensor, and the keyword that carries it
SCALE_BY_SECOND = {f: "alpha" for f in (_T.add, _T.add_, _T.sub, _T.sub_, torch.add, torch.sub)} | {
    f: "value" for f in (_T.addcmul, _T.addcmul_, _T.addcdiv, _T.addcdiv_)
}
SCALE_BY_SECOND |= {torch.addcmul: "value", torch.addcdiv: "value"}
# in-place arithmetic run as its out-of-place twin and a copy (same values, same dtype rules)
OUT_OF_PLACE = {
    f"{op}_"
    for op in (
        "add sub mul div addcmul addcdiv clamp clamp_min clamp_max lerp sqrt rsqrt pow neg abs"
        " sign exp log reciprocal maximum minimum addmm addmv addbmm baddbmm addr"
    ).split()
}


class SeedBranches(TorchFunctionMode):
    """``bool(t)`` of a vmapped tensor: the seeds' common value, or ``SeedsDisagree``; a
    per-seed scalar factor of add/sub/addcmul/addcdiv multiplied into their second tensor;
    ``out=`` a batched tensor as the op and a copy."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.__bool__:
            values = seed_values(args[0])
            if values is not None:
                if bool((values == values[0]).all()):
                    return bool(values[0])
                raise SeedsDisagree(values.clone())
        key = SCALE_BY_SECOND.get(func)
        if key is not None and _is_batched(kwargs.get(key)):
            # the factor multiplies the op's second tensor: (self, other * a) with factor one
            kwargs = dict(kwargs)
            factor = kwargs.pop(key)
            args = (args[0], args[1] * factor, *args[2:])
        name = getattr(func, "__name__", "")
        if (
            name in OUT_OF_PLACE
            and func is getattr(torch.Tensor, name, None)
            and _is_batched(args[0])
        ):
            # vmap batches many in-place methods only example by example (addcmul_ with a
            # value, clamp_ with bounds): the out-of-place op, written back, is batched
            return args[0].copy_(getattr(torch.Tensor, name[:-1])(*args, **kwargs))
        out = kwargs.get("out")
        if isinstance(out, torch.Tensor) and _is_batched(out):
            # vmap has no batching rule for out= variants: the op, then its result written
            kwargs = {k: v for k, v in kwargs.items() if k != "out"}
            return out.copy_(func(*args, **kwargs))
        return func(*args, **kwargs)


def run_split(
    run: Callable[[torch.Tensor], Result],
    seeds: int,
    scatter: Callable[[list[tuple[torch.Tensor, Result]], int], Result],
) -> Result:
    """``run(index)`` (the vmapped step on the seeds ``index``) under ``SeedBranches``, for all
    ``seeds``; where seeds disagree on a branch, each agreeing group is run on its own and
    ``scatter([(positions, result), ...], n)`` merges the groups' results into one result for
    ``n`` seeds, each group's rows at ``positions``. Every split makes the groups smaller, so
    it ends (at worst one seed per group, which always agrees with itself)."""

    def attempt(index: torch.Tensor) -> Result:
        try:
            with SeedBranches():
                return run(index)
        except SeedsDisagree as split:
            parts = [(where, attempt(index[where])) for where in split.groups()]
            return scatter(parts, index.numel())

    return attempt(torch.arange(seeds))
