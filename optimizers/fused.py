"""The built-in optimizers with one compiled update per step (issue 19 item 2).

torch.optim's CPU updates run one small kernel per operation and tensor (Adam: about ten per
parameter), which made the optimizer step, not the gradient, the larger part of a relu1d step.
torch's own ``fused=True`` kernels are fast but not batch-invariant (their vector and tail loops
round differently, so a seed's update would depend on its position in the batch).

Here each class is its torch.optim parent with ``step`` replaced, when compiling is on, by ONE
torch.compile'd functional update of all tensors of a parameter group:

* dynamic sizes (every tensor is handed over flattened, sizes symbolic), so one kernel serves
  every batch size: the same arithmetic for a seed alone or in a batch of 1000 (BLOCK padding
  in benchmarks/engine.py leaves no tail loop), i.e. bitwise batch invariance is kept;
* hyperparameters (lr, betas, eps, weight decay, bias corrections) go in as a tensor, so a
  learning-rate grid or a schedule that changes ``group['lr']`` never recompiles;
* the state is torch.optim's own (same keys, created by the parent's ``_init_group``), so
  ``state_dict()``, schedulers, and an engine that rebuilds the optimizer for fewer seeds see
  a normal torch.optim optimizer whose state tensors carry the leading seed dimension.

The scalar arithmetic (bias corrections, step sizes) is done in Python doubles exactly as
torch.optim's single-tensor path does it, and the tensor arithmetic is the same sequence of
operations, so the result equals torch.optim's to rounding (tests/optimizers/test_fused.py).
Without compiling (the default, and what the engine does without ``--compile``) ``step`` is
torch.optim's own. Options the compiled update does not cover (maximize, complex or sparse
tensors, capturable, differentiable, foreach/fused) also take torch.optim's step.
"""

from __future__ import annotations

import logging
import types
import warnings
from collections.abc import Callable

import torch

# One compiled function per (update, flags, dtype, device, number of tensors): each is its
# own code object, so Dynamo's per-function recompile limit is never shared between them.
_COMPILED: dict[tuple, Callable] = {}
_EAGER = "eager"  # marks a key whose compilation failed: torch.optim's step from then on
_LOG = logging.getLogger(__name__)


def _fresh(fn: Callable) -> Callable:
    """A copy of ``fn`` with its own code object (Dynamo keeps its cache on the code)."""
    return types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )


# The functional updates. Each takes flat tensors (parameters, gradients, state) and a
# [n, k] tensor of per-tensor scalars in the parameters' dtype, and updates in place. The
# operations follow torch.optim's _single_tensor_* functions one for one.


def _sgd(params, grads, bufs, scalars, weight_decay: bool, momentum: bool, nesterov: bool):
    for i in range(len(params)):
        neg_lr, wd, mom, damp = scalars[i, 0], scalars[i, 1], scalars[i, 2], scalars[i, 3]
        g = grads[i]
        if weight_decay:
            g = g + wd * params[i]
        if momentum:
            buf = bufs[i] * mom + damp * g
            bufs[i].copy_(buf)
            g = g + mom * buf if nesterov else buf
        params[i].copy_(params[i] + neg_lr * g)


def _adam(params, grads, avgs, sqs, maxs, scalars, weight_decay: bool, decoupled: bool):
    amsgrad = len(maxs) > 0
    for i in range(len(params)):
        s = scalars[i]
        shrink, wd, one_minus_b1, b2, one_minus_b2 = s[0], s[1], s[2], s[3], s[4]
        neg_step_size, bc2_sqrt, eps = s[5], s[6], s[7]
        p, g = params[i], grads[i]
        if weight_decay and decoupled:
            p = p * shrink
        elif weight_decay:
            g = g + wd * p
        avg = torch.lerp(avgs[i], g, one_minus_b1)
        sq = sqs[i] * b2 + one_minus_b2 * g * g
        avgs[i].copy_(avg)
        sqs[i].copy_(sq)
        if amsgrad:
            sq = torch.maximum(maxs[i], sq)
            maxs[i].copy_(sq)
        denom = sq.sqrt() / bc2_sqrt + eps
        params[i].copy_(p + neg_step_size * avg / denom)


def _rmsprop(params, grads, sqs, grad_avgs, bufs, scalars, weight_decay: bool, centered: bool):
    momentum = len(bufs) > 0
    for i in range(len(params)):
        s = scalars[i]
        neg_lr, wd, alpha, one_minus_alpha, eps, mom = s[0], s[1], s[2], s[3], s[4], s[5]
        g = grads[i]
        if weight_decay:
            g = g + wd * params[i]
        sq = sqs[i] * alpha + one_minus_alpha * g * g
        sqs[i].copy_(sq)
        if centered:
            mean = torch.lerp(grad_avgs[i], g, one_minus_alpha)
            grad_avgs[i].copy_(mean)
            avg = (sq - mean * mean).sqrt() + eps
        else:
            avg = sq.sqrt() + eps
        if momentum:
            buf = bufs[i] * mom + g / avg
            bufs[i].copy_(buf)
            params[i].copy_(params[i] + neg_lr * buf)
        else:
            params[i].copy_(params[i] + neg_lr * g / avg)


def _adagrad(params, grads, sums, scalars, weight_decay: bool):
    for i in range(len(params)):
        neg_clr, wd, eps = scalars[i, 0], scalars[i, 1], scalars[i, 2]
        g = grads[i]
        if weight_decay:
            g = g + wd * params[i]
        total = sums[i] + g * g
        sums[i].copy_(total)
        params[i].copy_(params[i] + neg_clr * g / (total.sqrt() + eps))


class FusedStep:
    """Mixin: ``step`` runs ``self._compiled_step(group)`` for every parameter group when
    compiling is on and the group's options are covered, else the torch.optim parent's."""

    compiled = False  # set by ``compile_step``; the engine does this under ``--compile``
    _UNSUPPORTED = ("maximize", "capturable", "differentiable", "foreach", "fused")
    _then: tuple | None = None  # (key, fn, extra) of the step running under ``step_then``
    _then_out = None

    def step_then(self, key: object, fn: Callable, extra: tuple):
        """One ``step()`` and then ``fn(updated parameters, *extra)`` in the SAME compiled call:
        the parameters of the (single) group as the update left them, in group order.

        Why: the engine's next gradient is a function of the parameters this step writes;
        one compiled call per training step instead of two saves Dynamo's per-call wrapper
        (about 0.2 ms, a tenth of a relu1d step at 1024 seeds). ``key`` names ``fn`` in the
        compile cache (fn's arguments are otherwise unguarded). Returns fn's result, or None
        when the step was not one compiled update (several groups, an option the compiled
        update does not cover, a compiler failure): then fn did not run."""
        self._then, self._then_out = (key, fn, extra), None
        try:
            FusedStep.step(self)
        finally:
            self._then = None
        out, self._then_out = self._then_out, None
        return out

    def compile_step(self, on: bool = True) -> FusedStep:
        self.compiled = on
        return self

    def _covered(self, group: dict) -> bool:
        """Whether the compiled update computes what torch.optim's step would for this group."""
        if any(group.get(k) for k in self._UNSUPPORTED):
            return False
        return all(
            not p.grad.is_sparse and not torch.is_complex(p)
            for p in group["params"]
            if p.grad is not None
        )

    def step(self, closure=None):
        if not self.compiled or not all(self._covered(g) for g in self.param_groups):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for i, group in enumerate(self.param_groups):
                if not self._compiled_step(group):  # nothing of this group was touched
                    self._parent_step(self.param_groups[i:])
                    break
        return loss

    def _parent_step(self, groups: list[dict]) -> None:
        """torch.optim's step for these groups only."""
        every = self.param_groups
        self.param_groups = groups
        try:
            super().step()
        finally:
            self.param_groups = every

    def _run(self, name: str, fn: Callable, flags: tuple, tensors: list[list], rows) -> bool:
        """Call the compiled update for this layout (compiling it on first use), followed by
        ``step_then``'s function when one is pending. False, with nothing changed, when the
        tensors do not fit it (not contiguous, mixed dtypes or devices, fewer than two seeds)
        or the compiler fails (after one warning; that layout then stays on torch.optim's
        step). A followed-by graph that fails to compile leaves the update alone compiled."""
        if not tensors[0]:
            return True
        key = _layout(name, flags, tensors)
        if key is None or _COMPILED.get(key) is _EAGER:
            return False
        then = self._then if len(self.param_groups) == 1 else None
        if then is not None:  # the followed-by graph, unless it failed to compile before
            followed = (*key, "then", then[0])
            then, key = (None, key) if _COMPILED.get(followed) is _EAGER else (then, followed)
        compiled = _COMPILED.get(key)
        if compiled is None:
            mark_seed_dim_dynamic([tensors, then[2] if then else ()])
            # Dynamo's guards would re-check per call what the key already pins down (flags,
            # dtype, device, every tensor's shape but the seed dimension, contiguity); with
            # 17 tensors they cost more than Adam's arithmetic, so they are dropped.
            # fullgraph for the followed-by graph: whatever cannot be compiled then fails
            # while tracing, before any tensor is written, so the fallback (the update alone)
            # never updates twice; a graph break would run part of it eagerly first
            body = _fresh(fn) if then is None else _followed_by(fn, then[1])
            compiled = torch.compile(
                body,
                fullgraph=then is not None,
                options={"guard_filter_fn": torch.compiler.skip_all_guards_unsafe},
            )
            _COMPILED[key] = compiled
        # Python doubles rounded once, on the parameters' device: a CPU tensor handed to a
        # CUDA kernel fails at launch ("invalid argument"; seen on an H100)
        first = tensors[0][0]
        scalars = torch.tensor(rows, dtype=first.dtype, device=first.device)
        try:
            if then is None:
                compiled(*tensors, scalars, *flags)
            else:
                self._then_out = compiled(tensors, scalars, flags, then[2])
        except Exception as err:
            line = (str(err).strip().splitlines() or [""])[0][:160]
            _COMPILED[key] = _EAGER
            if then is not None:  # fullgraph: it failed before writing any tensor
                # Not a warning: the numbers are the same either way, only one call per
                # step is lost. Seen: Inductor's "KeyError: 'bufNN'" for plain SGD followed
                # by the relu1d gradient at widths 3-32 (torch 2.13).
                _LOG.info(
                    "torch.compile failed for the %s update followed by the next gradient "
                    "(%s: %s); running them one by one",
                    name,
                    type(err).__name__,
                    line,
                )
                return self._run(name, fn, flags, tensors, rows)
            warnings.warn(
                f"torch.compile failed for the {name} update ({type(err).__name__}: {line});"
                " running torch.optim's step",
                stacklevel=4,
            )
            return False
        return True


def mark_seed_dim_dynamic(items: list | tuple) -> None:
    """Mark dimension 0 (the seeds) of every tensor in ``items``, nested lists and tuples
    included, dynamic for the compilation that follows: one graph then serves every chunk and
    compaction's shrinking working set. Every seed-sized input must be marked (a problem's
    frozen parameters reach the gradient in a list): one left static is specialized to its
    size, which contradicts the marks, and the compile fails (torch's ConstraintViolationError,
    logged at ERROR)."""
    for item in items:
        if isinstance(item, (list, tuple)):
            mark_seed_dim_dynamic(item)
        elif isinstance(item, torch.Tensor) and item.dim() > 0:
            torch._dynamo.mark_dynamic(item, 0)


def _followed_by(update: Callable, then: Callable) -> Callable:
    """``update`` (in place), then ``then`` on the updated parameters: one graph to compile.
    The flags are Python bools, constant in the graph (they are part of its cache key)."""

    def both(tensors: list, scalars: torch.Tensor, flags: tuple, extra: tuple):
        update(*tensors, scalars, *flags)
        return then(tensors[0], *extra)

    # its own code object: Dynamo caches on the code, and with the guards dropped a shared
    # one would serve one key's graph to another
    return _fresh(both)


def _layout(name: str, flags: tuple, tensors: list[list[torch.Tensor]]) -> tuple | None:
    """What a compiled update is specialized to: the update and its flags, dtype, device, and
    per tensor its shape after the leading seed dimension (which is dynamic and must be the
    same for all). None when the tensors do not fit one compiled update.

    Runs every step on about 17 tensors (Adam), so each tensor's attributes are read once
    (each read of ``shape`` or ``device`` builds a Python object): that took this check from
    about 45 to 16 us per step at 32 seeds, of a compiled Adam step's 160-220 us."""
    first = tensors[0][0]
    if first.dim() == 0 or first.shape[0] < 2:
        return None
    seeds, dtype, device = first.shape[0], first.dtype, first.device
    shapes = []
    for group in tensors:
        sizes = []
        for t in group:
            shape = t.shape
            if (
                not shape
                or shape[0] != seeds
                or t.dtype != dtype
                or not t.is_contiguous()
                or t.device != device
            ):
                return None
            sizes.append(tuple(shape[1:]))
        shapes.append(tuple(sizes))
    return (name, flags, dtype, str(device), tuple(shapes))


def _next_steps(state_steps: list[torch.Tensor]) -> list[float]:
    """The values torch.optim's per-parameter step counters take at this step."""
    return [float(t) + 1 for t in state_steps]


def _advance(state_steps: list[torch.Tensor]) -> None:
    if state_steps:
        torch._foreach_add_(state_steps, 1)


class FusedSGD(FusedStep, torch.optim.SGD):
    """torch.optim.SGD (plain, momentum, Nesterov) with a compiled step."""

    def _covered(self, group: dict) -> bool:
        """torch.optim starts a momentum buffer as a copy of the first gradient: that first
        step is torch.optim's."""
        fresh = group["momentum"] != 0 and any(
            "momentum_buffer" not in self.state[p] for p in group["params"] if p.grad is not None
        )
        return not fresh and super()._covered(group)

    def _compiled_step(self, group: dict) -> bool:
        params, grads, bufs = [], [], []
        self._init_group(group, params, grads, bufs)
        momentum = group["momentum"] != 0
        wd = group["weight_decay"]
        row = [-float(group["lr"]), wd, group["momentum"], 1 - group["dampening"]]
        flags = (wd != 0, momentum, bool(group["nesterov"]))
        tensors = [params, grads, bufs if momentum else []]
        return self._run("sgd", _sgd, flags, tensors, [row] * len(params))


class FusedAdam(FusedStep, torch.optim.Adam):
    """torch.optim.Adam (and AdamW, its decoupled-weight-decay group option) with a compiled
    step."""

    def _compiled_step(self, group: dict) -> bool:
        params, grads, avgs, sqs, maxs, steps = [], [], [], [], [], []
        self._init_group(group, params, grads, avgs, sqs, maxs, steps)
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, wd = float(group["lr"]), group["weight_decay"]
        rows = []
        for step in _next_steps(steps):
            bc1 = 1 - beta1**step
            bc2 = 1 - beta2**step
            shrink = 1 - lr * wd
            eps = group["eps"]
            rows.append([shrink, wd, 1 - beta1, beta2, 1 - beta2, -lr / bc1, bc2**0.5, eps])
        flags = (wd != 0, bool(group["decoupled_weight_decay"]))
        tensors = [params, grads, avgs, sqs, maxs if group["amsgrad"] else []]
        done = self._run("adam", _adam, flags, tensors, rows)
        if done:
            _advance(steps)
        return done


class FusedAdamW(FusedAdam, torch.optim.AdamW):
    """torch.optim.AdamW with a compiled step."""


class FusedRMSprop(FusedStep, torch.optim.RMSprop):
    """torch.optim.RMSprop (plain, centered, momentum) with a compiled step."""

    def _compiled_step(self, group: dict) -> bool:
        params, grads, sqs, bufs, grad_avgs, steps = [], [], [], [], [], []
        self._init_group(group, params, grads, sqs, bufs, grad_avgs, steps)
        alpha, wd = group["alpha"], group["weight_decay"]
        row = [-float(group["lr"]), wd, alpha, 1 - alpha, group["eps"], group["momentum"]]
        flags = (wd != 0, bool(group["centered"]))
        tensors = [
            params,
            grads,
            sqs,
            grad_avgs if group["centered"] else [],
            bufs if group["momentum"] > 0 else [],
        ]
        done = self._run("rmsprop", _rmsprop, flags, tensors, [row] * len(params))
        if done:
            _advance(steps)
        return done


class FusedAdagrad(FusedStep, torch.optim.Adagrad):
    """torch.optim.Adagrad with a compiled step."""

    def _compiled_step(self, group: dict) -> bool:
        params, grads, sums, steps = [], [], [], []
        self._init_group(group, params, grads, sums, steps)
        lr, decay, wd = float(group["lr"]), group["lr_decay"], group["weight_decay"]
        rows = [[-lr / (1 + (s - 1) * decay), wd, group["eps"]] for s in _next_steps(steps)]
        done = self._run("adagrad", _adagrad, (wd != 0,), [params, grads, sums], rows)
        if done:
            _advance(steps)
        return done


def compile_step(opt: torch.optim.Optimizer, on: bool) -> torch.optim.Optimizer:
    """Turn the compiled step on for a fused built-in; any other optimizer is returned as is."""
    if isinstance(opt, FusedStep):
        opt.compile_step(on)
    return opt


def direct_step(opt: torch.optim.Optimizer) -> Callable[[], object]:
    """``opt.step`` without torch.optim's per-call wrapper, where that wrapper has nothing to
    do: a fused built-in with its compiled step on and no step hooks (its own or global).

    Why: the wrapper (a profiler ``record_function``, the hook loops) cost about 50-65 us of
    a compiled Adam step's 220 us at 32 seeds, paid every step. What it does besides matters
    for the FIRST step only: a learning-rate scheduler wraps ``opt.step`` to note that the
    optimizer stepped before it, and checks that on its first ``step()``. So a caller takes
    ``opt.step()`` for the first step and this from the second on; parameter groups, state,
    ``state_dict()`` and schedulers see the same optimizer either way (it IS the same step
    function). Hooks are looked for when this is called: one registered later is not run by
    the returned step."""
    from torch.optim import optimizer as torch_optimizer

    hooks = (
        opt._optimizer_step_pre_hooks,
        opt._optimizer_step_post_hooks,
        torch_optimizer._global_optimizer_pre_hooks,
        torch_optimizer._global_optimizer_post_hooks,
    )
    if not (isinstance(opt, FusedStep) and opt.compiled) or any(hooks):
        return opt.step
    return types.MethodType(FusedStep.step, opt)
