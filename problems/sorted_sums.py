"""The mini-batch risk of a wide scalar-input ReLU network and its gradient by sorting the
samples once: O(N log N + H log N) per seed and step instead of the dense O(N H).

For N(x) = c + sum_j v_j relu(w_j x + b_j) and scalar x, neuron j is active (w_j x + b_j > 0)
on a contiguous run of the sorted samples: the top of the batch when w_j > 0, the bottom when
w_j < 0, all or nothing when w_j = 0. So with the samples sorted,
- forward: N(x_i) = c + A_i x_i + B_i, A_i and B_i the sums of v_j w_j and v_j b_j over the
  neurons active at x_i: one running sum over the sorted samples of each neuron's term
  placed where its activity flips;
- backward: with d_i = 2 e_i / N, every gradient entry is a sum over one run,
  dR/dw_j = v_j sum d_i x_i, dR/db_j = v_j sum d_i, dR/dv_j = w_j sum d_i x_i + b_j sum d_i,
  gathered from prefix sums of d and d x.
Exact, not an approximation: where each run starts is found by a binary search on the very
test the dense path makes, w_j x + b_j > 0 in the working precision (monotone in x, as
rounding is monotone), so a sample on a kink, or within rounding of one, is inactive exactly
when autograd through relu1d.sampled_risk says so (relu'(0) = 0). A threshold -b_j/w_j
rounds differently and misplaces samples at kinks (tests/problems/test_sampled.py).

Sums run in float64 for float32 parameters: the scans add up to N (or H) terms, a run's sum is
a difference of two of them, and A_i x_i + B_i cancels where a kink sits near x_i. Measured
against the float64 dense result (S = 64, N = 1024, H = 3..1000, float32 inputs): the largest
gradient error, relative to the largest entry, is 2-5e-8 here against 4-13e-8 for the float32
dense path. The float64 accumulation's own cost was not timed apart from the whole step.
"""

from __future__ import annotations

import numpy as np
import torch

from problems.base import Params


def run_starts(xs: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For sorted samples xs [S, N] and neurons w, b [S, H]: [S, H] int64, the index where
    each neuron's activity flips. Rising neurons (w >= 0) are active on [pos, N), falling
    ones (w < 0) on [0, pos); w = 0 gives 0 (active everywhere) when b > 0, else N.

    A branchless binary search over powers of two (ceil(log2(N + 1)) gathers of [S, H]):
    pos counts the samples where flag = (z > 0 if rising else z <= 0) is false, flag being
    false...false true...true along the sorted samples."""
    n = xs.shape[1]
    rising = w >= 0
    pos = torch.zeros(w.shape, dtype=torch.int64, device=w.device)
    step = 1 << (n.bit_length() - 1)  # the largest power of two <= N
    while step:
        probe = pos + (step - 1)
        z = w * torch.gather(xs, 1, probe.clamp(max=n - 1)) + b
        flag = torch.where(rising, z > 0, z <= 0)
        pos = pos + torch.where((probe < n) & ~flag, step, 0)
        step >>= 1
    return pos


def sorted_risk_grad(
    params: Params, xs: torch.Tensor, ys: torch.Tensor
) -> tuple[torch.Tensor, Params]:
    """Mean squared error of the ReLU network on per-seed samples xs, ys [S, N], xs sorted
    along each row (sort_rows), and its gradient: [S] and {w, b, v: [S, H], c: [S]}; the
    dense closed form's values (problems/sampled.py shallow_risk_grad) up to rounding. Every
    sum runs along one seed's own contiguous row, so a seed's result does not depend on the
    other seeds of the batch (bitwise batch invariance).

    Forward: neuron j's (v_j w_j, v_j b_j) is added into bucket pos_j, positive for a rising
    neuron (active from pos_j on), negative for a falling one (active before pos_j, so
    counted in a base of all falling neurons and taken out from pos_j on); one running sum
    over the buckets then gives A_i, B_i. Backward: prefix sums P of d and d x; a falling
    neuron's run sum is P[pos], a rising one's P[N] - P[pos]. Both are differences of
    running sums, accumulated in float64 for float32 parameters (the error is then the
    float64 rounding of the largest running sum, far below the float32 result's own; in
    float64 runs it is that of the dense path's sums over samples and neurons). Measured
    against running sums from each run's own end (no differences): same float32 results,
    and 1.2-2.5x faster compiled (one scan instead of two plus flips)."""
    n = xs.shape[1]
    w, b = params["w"], params["b"]
    pos = run_starts(xs, w, b)
    acc = torch.float64 if xs.dtype in (torch.float32, torch.float16, torch.bfloat16) else xs.dtype
    rising = (w >= 0)[:, None, :]
    xa, ya = xs.to(acc), ys.to(acc)
    wa, ba, va, ca = (params[k].to(acc) for k in "wbvc")

    terms = torch.stack((va * wa, va * ba), dim=1)  # [S, 2, H]
    signed = torch.where(rising, terms, -terms)
    index = pos[:, None, :].expand_as(terms)
    buckets = terms.new_zeros(xs.shape[0], 2, n + 1).scatter_add(2, index, signed)
    base = torch.where(rising, 0.0, terms).sum(dim=2, keepdim=True)
    slope_icpt = buckets[:, :, :n].cumsum(dim=2) + base  # [S, 2, N]: A_i, B_i
    err = ca[:, None] + slope_icpt[:, 0] * xa + slope_icpt[:, 1] - ya  # [S, N]

    d = (2.0 / n) * err
    prefix = torch.nn.functional.pad(torch.stack((d, d * xa), dim=1).cumsum(dim=2), (1, 0))
    below = prefix.gather(2, index)  # [S, 2, H]: sums of d and d x over samples < pos
    run = torch.where(rising, prefix[:, :, n:] - below, below)
    sum_d, sum_dx = run[:, 0], run[:, 1]
    grads = {
        "w": va * sum_dx,
        "b": va * sum_d,
        "v": wa * sum_dx + ba * sum_d,
        "c": d.sum(dim=1),
    }
    risk = (err * err).sum(dim=1) / n
    return risk.to(xs.dtype), {k: g.to(params[k].dtype) for k, g in grads.items()}


@torch.library.custom_op("trapbench::sort_rows", mutates_args=())
def sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row of x [S, N] in ascending order (values only: equal values are
    indistinguishable, so the result depends on the row alone, whatever the sort's
    stability or the batch). On the CPU numpy's vectorized quicksort: measured (S = 256,
    N = 1024 float32, one thread) 3.0 ms against torch.sort's 34 ms, which always sorts
    (value, index) pairs. An opaque op, so torch.compile calls it as it is."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.detach().numpy(), axis=1))
    return torch.sort(x, dim=1).values


@sort_rows.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)
