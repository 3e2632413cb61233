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

ACTS = ("relu", "clip")


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
    """(act(z), act'(z)) with the derivative autograd uses at the kinks: relu'(0) = 0
    (torch.relu), and clip(z) = min(max(z, 0), 1) = torch.clamp(z, 0, 1), whose backward
    passes the gradient on the closed interval 0 <= z <= 1."""
    if act == "relu":
        return torch.relu(z), (z > 0).to(z.dtype)
    if act == "clip":
        return z.clamp(0.0, 1.0), ((z >= 0) & (z <= 1)).to(z.dtype)
    raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTS)}")


def shallow_risk_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, act: str = "relu"
) -> tuple[torch.Tensor, Params]:
    """Mean squared error of N(x) = c + sum_j v_j act(w_j x + b_j) on per-seed samples
    x, y [S, N], and its gradient in closed form: [S] and {w, b, v: [S, H], c: [S]}.

    With e_n = N(x_n) - y_n, z_nj = w_j x_n + b_j and d_n = 2 e_n / N (the derivative of the
    mean of e^2): dR/dw_j = v_j sum_n d_n act'(z_nj) x_n, dR/db_j = v_j sum_n d_n act'(z_nj),
    dR/dv_j = sum_n d_n act(z_nj), dR/dc = sum_n d_n. A neuron inactive on every sample gets
    exactly zero, as through autograd. Written as broadcasts and sums over n (no batched
    matrix product), so torch.compile recomputes z inside each reduction kernel rather than
    storing it; tests compare with autograd through relu1d.sampled_risk."""
    w, b, v, c = params["w"], params["b"], params["v"], params["c"]
    xs = x[:, :, None]
    z = xs * w[:, None, :] + b[:, None, :]  # [S, N, H]
    out, slope = activation(z, act)
    err = c[:, None] + (out * v[:, None, :]).sum(dim=2) - y  # [S, N]
    risk = (err * err).mean(dim=1)
    d = ((2.0 / x.shape[1]) * err)[:, :, None]
    active = d * slope
    grads = {
        "w": v * (active * xs).sum(dim=1),
        "b": v * active.sum(dim=1),
        "v": (d * out).sum(dim=1),
        "c": d[:, :, 0].sum(dim=1),
    }
    return risk, grads


def shallow_train_risk_grad(
    key: int,
    batch: int,
    interval: tuple[float, float],
    fn: Callable[[torch.Tensor], torch.Tensor],
    act: str = "relu",
) -> Callable[[Params, torch.Tensor, torch.Tensor | int], tuple[torch.Tensor, Params]]:
    """``Problem.train_risk_grad`` of a sampled 1-D problem: draw the seeds' batch at the
    step (batch_inputs), label it with the target ``fn``, return shallow_risk_grad."""

    def train_risk_grad(params: Params, seeds: torch.Tensor, step) -> tuple[torch.Tensor, Params]:
        x = batch_inputs(key, seeds, step, batch, interval, params["w"].dtype)
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
        x = batch_inputs(key, seeds, step, batch, (0.0, 1.0), params["W0"].dtype)
        return deep_risk_grad(params, x, fn(x), act)

    return train_risk_grad
