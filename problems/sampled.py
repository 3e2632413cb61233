"""Closed-form gradients of sampled (online SGD) risks: the fast path of ``train_risk_grad``.

A sampled problem trains on a fresh uniform mini-batch per step and seed (seed 000's online
SGD: batches of 1024, up to 10^4-5x10^4 steps, 300 starts). Autograd through the mini-batch
risk records every [S, N, H] intermediate and walks them back; here the risk and its gradient
are written out per sample, so torch.compile fuses the forward and the backward sums into a
few reduction kernels that never store an [S, N, H] tensor. The batch is drawn from the
counter-based stream (problems/rng.py) inside the same function, with the step passed as a
0-d tensor: one compiled kernel serves every step, and the batch values are bit-identical to
the ones ``relu1d.sampled_risk`` draws (tests/problems/test_sampled.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from problems.base import Params
from problems.deepfc import risk_and_grad as deep_backprop
from problems.rng import STREAMS, uniform
from problems.sorted_sums import sort_rows, sorted_risk_grad

ACTS = ("relu", "clip")


@torch.library.custom_op("trapbench::realize", mutates_args=())
def realize(x: torch.Tensor) -> torch.Tensor:
    """A copy that torch.compile cannot see through. Why: inductor inlines a cheap
    pointwise producer into every consumer, so without it the counter-based hash of each
    sample was recomputed for every neuron inside the reduction kernels (measured 7x slower
    at H = 16); an opaque op makes the batch one stored [S, N] buffer that the kernels read."""
    return x.clone()


@realize.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def batch_inputs(
    key: int,
    seeds: torch.Tensor,
    step: int | torch.Tensor,
    batch: int,
    interval: tuple[float, float],
    dtype: torch.dtype,
) -> torch.Tensor:
    """The mini-batch of every seed at ``step``: [S, batch], uniform on the interval.

    Same arithmetic as ``relu1d.sampled_risk`` (stream ``batch`` + step, then a + (b - a) u),
    so the values are bit-identical; ``step`` may be a 0-d int64 tensor, so a compiled caller
    sees one graph for all steps instead of a constant to specialize on."""
    a, b = interval
    u = uniform(key, seeds, STREAMS["batch"].first + step, batch, dtype)
    return a + (b - a) * u


def activation(z: torch.Tensor, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(act(z), where act'(z) = 1) with the derivative autograd uses at the kinks: relu'(0) = 0
    (torch.relu), and clip(z) = min(max(z, 0), 1) = torch.clamp(z, 0, 1), whose backward
    passes the gradient on the closed interval 0 <= z <= 1. The slope is a boolean mask, so a
    gradient term is torch.where(mask, term, 0) rather than term * slope: inductor then fuses
    the sums that share it instead of storing the [S, H, N] product (see _slice_sums)."""
    if act == "relu":
        return torch.relu(z), z > 0
    if act == "clip":
        return z.clamp(0.0, 1.0), (z >= 0) & (z <= 1)
    raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTS)}")


# Widths up to which hidden_sum writes its sum out neuron by neuron (see there).
UNROLLED_MAX_WIDTH = 16


def hidden_sum(params: Params, x: torch.Tensor, act: str) -> torch.Tensor:
    """sum_j v_j act(w_j x_n + b_j) on samples x [S, N]: [S, N].

    Up to UNROLLED_MAX_WIDTH neurons the sum is written out neuron by neuron on [S, N]
    tensors, so torch.compile makes it one pointwise loop vectorized along the samples;
    as a sum over the neuron axis of an [S, H, N] broadcast it became a horizontal
    reduction of H lanes per sample (measured, S = 256, N = 1024, float32, one thread, whole
    gradient: H = 8 0.99 -> 0.64 ms, H = 16 1.7 -> 1.4 ms; H = 24 and 32 equal, and a wide
    unrolled graph only costs compile time). The choice depends on the width only, and
    either way each sample's sum runs in a fixed order, so a seed's value never depends on
    its batch."""
    w, b, v = params["w"], params["b"], params["v"]
    width = w.shape[1]
    if width > UNROLLED_MAX_WIDTH:
        out, _ = activation(w[:, :, None] * x[:, None, :] + b[:, :, None], act)
        return (out * v[:, :, None]).sum(dim=1)
    total = activation(w[:, 0, None] * x + b[:, 0, None], act)[0] * v[:, 0, None]
    for j in range(1, width):
        total = total + activation(w[:, j, None] * x + b[:, j, None], act)[0] * v[:, j, None]
    return total


# Samples per slice of the shallow gradient: about 64K (neuron, sample) terms per seed, so a
# chunk of 32 seeds keeps its [S, H, slice] buffers near 8 MB. Measured (H = 256, S = 32, one
# thread): slices of 256 samples ran 3.9x faster than the whole batch of 1024 at once.
SLICE_TERMS = 65536


def sample_slice(width: int) -> int:
    """Samples per slice for ``width`` neurons: a multiple of 8 (whole vector registers).
    It depends on the width only, never on the seeds, so a seed's sums are grouped alike in
    every batch (bitwise batch invariance)."""
    return max(8, SLICE_TERMS // width // 8 * 8)


def shallow_risk_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, act: str = "relu"
) -> tuple[torch.Tensor, Params]:
    """Mean squared error of N(x) = c + sum_j v_j act(w_j x + b_j) on per-seed samples
    x, y [S, N], and its gradient in closed form: [S] and {w, b, v: [S, H], c: [S]}.

    With e_n = N(x_n) - y_n, z_nj = w_j x_n + b_j and d_n = 2 e_n / N (the derivative of the
    mean of e^2): dR/dw_j = v_j sum_n d_n act'(z_nj) x_n, dR/db_j = v_j sum_n d_n act'(z_nj),
    dR/dv_j = sum_n d_n act(z_nj), dR/dc = sum_n d_n. A neuron inactive on every sample gets
    exactly zero, as through autograd. Written as broadcasts and sums over n (no batched
    matrix product), so torch.compile recomputes z inside its reduction kernels and stores
    nothing of size [S, H, N] (_slice_sums); the samples are taken in slices (sample_slice)
    so the eager path's [S, H, slice] temporaries stay in cache. Tests compare with autograd
    through relu1d.sampled_risk."""
    n = x.shape[1]
    width = sample_slice(params["w"].shape[1])
    parts = [
        _slice_sums(params, x[:, i : i + width], y[:, i : i + width], act, 2.0 / n)
        for i in range(0, n, width)
    ]
    square = parts[0][0]
    grads = parts[0][1]
    for more, g in parts[1:]:
        square = square + more
        grads = {k: grads[k] + g[k] for k in grads}
    return square / n, grads


def _slice_sums(
    params: Params, x: torch.Tensor, y: torch.Tensor, act: str, scale: float
) -> tuple[torch.Tensor, Params]:
    """sum_n e_n^2 and the gradient terms of shallow_risk_grad over one slice of samples,
    with d_n = scale e_n. The layout is [S, H, N] (samples innermost), so every sum over
    samples runs along contiguous memory (measured 1.1-3x faster than [S, N, H]). The w and
    b sums take the active samples with torch.where on the slope mask, not through a shared
    product d * slope: inductor stored that product as an [S, H, N] buffer and summed it in
    a second pass; with where, the three sums over samples fuse into one loop per seed and
    neuron and nothing [S, H, N] is stored (measured, S = 256, N = 1024, float32, one
    thread: H = 16 3.1 -> 1.4 ms, H = 32 27 -> 3.2 ms, H = 256 240-340 -> 20-26 ms)."""
    err = params["c"][:, None] + hidden_sum(params, x, act) - y  # [S, N]
    w, b = params["w"][:, :, None], params["b"][:, :, None]
    xs = x[:, None, :]
    out, on = activation(w * xs + b, act)  # [S, H, N]
    d = (scale * err)[:, None, :]
    grads = {
        "w": params["v"] * torch.where(on, d * xs, 0.0).sum(dim=2),
        "b": params["v"] * torch.where(on, d, 0.0).sum(dim=2),
        "v": (d * out).sum(dim=2),
        "c": d[:, 0, :].sum(dim=1),
    }
    return (err * err).sum(dim=1), grads


# The sorted path (problems/sorted_sums.py) from this width on, for act = relu. Measured
# (S = 256, N = 1024, float32, one thread, compiled, the sort included; per step):
# H = 8: dense 2.7 ms, sorted 4.9; H = 16: 3.6 / 4.5; H = 32: 30 / 4.9; H = 256: 254 / 7.7;
# H = 1000: 1046 / 17.6; a second run (machine busier): H = 16: 8.1 / 8.5, H = 24:
# 14.8 / 8.8, H = 32: 63 / 13.6. The dense path keeps the narrow networks, where its N H terms
# cost about what the sort and the H log N search do. Chosen by the width only, never the seeds.
# Those dense figures predate _slice_sums's where-form (no stored [S, H, N] product). Since
# (same setting, the batch draw included, CPU time, two runs on the busy machine): H = 24:
# dense 2.9-4.3 ms, sorted 5.7-6.9; H = 32: 3.7-4.1 / 7.0-7.4; H = 40: 4.5 / 11.4; H = 48:
# 5.4-7.5 / 6.0-7.3; H = 64: 6.4 / 6.2. So this threshold could move to 48; it stays at 24
# until the sorted path's tests and benchmarks/perf.py (which name 24) move with it.
SORTED_MIN_WIDTH = 24


def uses_sorted(width: int, act: str) -> bool:
    """Whether shallow_train_risk_grad takes the sorted path for this width and activation.
    A clip network runs there as its 2H-unit ReLU expansion (relu1d.clip_as_relu), so it
    switches at twice the width."""
    return width >= SORTED_MIN_WIDTH * (2 if act == "clip" else 1)


def shallow_train_risk_grad(
    key: int,
    batch: int,
    interval: tuple[float, float],
    fn: Callable[[torch.Tensor], torch.Tensor],
    act: str = "relu",
) -> Callable[[Params, torch.Tensor, torch.Tensor | int], tuple[torch.Tensor, Params]]:
    """``Problem.train_risk_grad`` of a sampled 1-D problem: draw the seeds' batch at the
    step (batch_inputs), label it with the target ``fn``, return shallow_risk_grad, or
    sorted_risk_grad on the sorted batch for wide networks (uses_sorted): the risk is a
    mean over the batch, so the order of its samples changes nothing but rounding. A clip
    network goes there as its ReLU expansion, clip(z) = relu(z) - relu(z - 1), with the
    gradient summed back (relu1d.clip_grad), as the exact risk does; its kinks then follow the
    expansion's tests (z > 0 and z - 1 > 0) where the dense path follows clamp's (0 <= z <= 1):
    they differ on samples at a kink to within rounding, a set of measure zero."""
    from problems.relu1d import clip_as_relu, clip_grad  # relu1d imports this module

    def train_risk_grad(params: Params, seeds: torch.Tensor, step) -> tuple[torch.Tensor, Params]:
        x = realize(batch_inputs(key, seeds, step, batch, interval, params["w"].dtype))
        if uses_sorted(params["w"].shape[1], act):
            xs = sort_rows(x)
            if act == "clip":
                risk, grads = sorted_risk_grad(clip_as_relu(params), xs, fn(xs))
                return risk, clip_grad(grads)
            return sorted_risk_grad(params, xs, fn(xs))
        return shallow_risk_grad(params, x, fn(x), act)

    return train_risk_grad


def deep_risk_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, act: str
) -> tuple[torch.Tensor, Params]:
    """Mean squared error of a deep 1-...-1 network on per-seed samples x, y [S, N] and its
    gradient by explicit backpropagation: deepfc.risk_and_grad with inputs [S, N, 1] (one
    input column per seed) instead of shared [N, 1] ones."""
    return deep_backprop(params, x[:, :, None], y, act)


def deep_train_risk_grad(
    key: int,
    batch: int,
    fn: Callable[[torch.Tensor], torch.Tensor],
    act: str,
) -> Callable[[Params, torch.Tensor, torch.Tensor | int], tuple[torch.Tensor, Params]]:
    """``Problem.train_risk_grad`` of a sampled deep-target problem: inputs U[0, 1] fresh
    per step and seed (batch_inputs), labels ``fn``, then deep_risk_grad."""

    def train_risk_grad(params: Params, seeds: torch.Tensor, step) -> tuple[torch.Tensor, Params]:
        x = realize(batch_inputs(key, seeds, step, batch, (0.0, 1.0), params["W0"].dtype))
        return deep_risk_grad(params, x, fn(x), act)

    return train_risk_grad
