"""Scalar-input shallow ReLU networks on [a, b] with uniform input (docs/problems.md section 1).

N(x) = c + sum_j v_j relu(w_j x + b_j); risk R = 1/(b-a) * integral_a^b (N(x) - f(x))^2 dx.
Seeds 000 (Jentzen & Riekert / Adam experiments), 001 (non-convergence and the hierarchy of
local minima), 002 (Cheridito, Jentzen & Rossmannek, affine targets and saddles), 004 (targets
with many non-global minima; substituted here by targets whose levels are known).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from problems import reference
from problems.base import Params, Problem
from problems.options import Option
from problems.quadrature import GAUSS_LEGENDRE, nodes_for
from problems.registry import register
from problems.rng import normal, problem_key, stream, uniform
from problems.sampled import shallow_train_risk_grad
from problems.targets import TARGETS, Target, affine, zigzag

INIT_SCHEMES = ("normal", "he", "xavier", "saddle", "ijr1", "ijr2", "ijr4")
ACTIVATIONS = ("relu", "clip")
# train=... -> the parameters held fixed (Problem.frozen): Ibragimov, Jentzen & Riekert (2022,
# arXiv:2212.13111, Section 4) train only b and c (setting 1) or only b (setting 2)
FROZEN = {"all": (), "biases": ("w", "v"), "inner_biases": ("w", "v", "c")}

CITE_NONCONV = (
    "Jentzen & Riekert (2024), Non-convergence to global minimizers for Adam and SGD "
    "[seed 001]; Jentzen & Riekert et al. (2022), Convergence to good non-optimal critical "
    "points [seed 000]"
)
CITE_SADDLE = (
    "Cheridito, Jentzen & Rossmannek (2024), Gradient descent provably escapes saddle points "
    "in the training of shallow ReLU networks [seed 002]"
)
CITE_LEVELS = (
    "Jentzen & Riekert (2022), infinitely many realization functions of non-global local "
    "minima [seed 004]; substitute targets with known levels (docs/problems.md section 1)"
)


def network(params: Params, x: torch.Tensor, act: str = "relu") -> torch.Tensor:
    """N(x) for every seed: x [S, P] -> [S, P]; act "clip" is min(max(z, 0), 1)."""
    pre = torch.baddbmm(params["b"][:, None, :], x[:, :, None], params["w"][:, None, :])
    hidden = torch.relu(pre) if act == "relu" else pre.clamp(0.0, 1.0)
    return params["c"][:, None] + torch.bmm(hidden, params["v"][:, :, None])[..., 0]


def clip_as_relu(params: Params) -> Params:
    """A width-H clip network as the width-2H ReLU network that equals it everywhere.

    clip(z) = min(max(z, 0), 1) = relu(z) - relu(z - 1), so neuron (w, b, v) becomes
    (w, b, v) and (w, b - 1, -v). Differentiable: autograd through it sums the two halves'
    gradients back (clip_grad does the same for the closed form). In float32 b - 1 rounds to
    b once |b| > 2^24 (setting 1's b = H^3 N at H = 1000): such runs need float64."""
    w, b, v = params["w"], params["b"], params["v"]
    return {
        "w": torch.cat([w, w], dim=1),
        "b": torch.cat([b, b - 1.0], dim=1),
        "v": torch.cat([v, -v], dim=1),
        "c": params["c"],
    }


def clip_grad(grads: Params) -> Params:
    """The gradient of R(clip_as_relu(params)) from the width-2H gradient: chain rule through
    the expansion (w and b appear in both halves, v with sign +1 and -1)."""
    half = grads["w"].shape[1] // 2
    return {
        "w": grads["w"][:, :half] + grads["w"][:, half:],
        "b": grads["b"][:, :half] + grads["b"][:, half:],
        "v": grads["v"][:, :half] - grads["v"][:, half:],
        "c": grads["c"],
    }


def exact_risk_act(params: Params, target: Target, act: str) -> torch.Tensor:
    """exact_risk for either activation (a clip network through its ReLU expansion)."""
    return exact_risk(clip_as_relu(params) if act == "clip" else params, target)


def exact_risk_and_grad_act(
    params: Params, target: Target, act: str
) -> tuple[torch.Tensor, Params]:
    """exact_risk_and_grad for either activation (clip: the expansion's, summed back)."""
    if act == "relu":
        return exact_risk_and_grad(params, target)
    risk, grads = exact_risk_and_grad(clip_as_relu(params), target)
    return risk, clip_grad(grads)


def kinks(w: torch.Tensor, b: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Kink positions -b/w clipped to [lo, hi] (w = 0 gives a constant neuron: kink at lo)."""
    safe = torch.where(w == 0, torch.ones_like(w), w)
    return torch.where(w == 0, torch.full_like(w, lo), -b / safe).clamp(lo, hi)


class Pieces(NamedTuple):
    """N on [a, b] as affine pieces: N(x) = alpha_k x + beta_k between edges k and k+1."""

    edges: torch.Tensor  # [S, M+2]: a, the sorted break points, b (no gradient)
    order: torch.Tensor  # [S, M]: sort permutation of the break points (H kinks, then f's)
    alpha: torch.Tensor  # [S, M+1] slope on each piece
    beta: torch.Tensor  # [S, M+1] intercept on each piece


def pieces(params: Params, target: Target) -> Pieces:
    """Sort the kinks once, then read N's slope and intercept on every piece off cumulative
    sums: O(H log H) per seed, where evaluating all H neurons at nodes on all H+1 pieces costs
    O(H^2). A neuron with w > 0 is active right of its kink (a prefix sum in sorted order),
    one with w < 0 left of it (a suffix sum), one with w = 0 everywhere or nowhere (relu(b)).
    Each neuron's terms are summed over exactly its active pieces, never added and then
    subtracted, so a dead neuron (only zero-width pieces) gets exactly zero gradient through
    autograd too. The edges carry no gradient (see exact_risk)."""
    a, b = target.a, target.b
    w, bias, v, c = params["w"], params["b"], params["v"], params["c"]
    with torch.no_grad():
        points = kinks(w, bias, a, b)
        if target.breakpoints:
            fixed = torch.tensor(target.breakpoints, dtype=w.dtype, device=w.device)
            points = torch.cat([points, fixed.expand(w.shape[0], -1)], dim=1)
        sorted_points, order = points.sort(dim=1)
        end = torch.ones_like(sorted_points[:, :1])
        edges = torch.cat([a * end, sorted_points, b * end], dim=1)
    zero = torch.zeros_like(w)
    # w = 0 with b > 0: the slope term is 0 but keeps dN/dw = x, as autograd through relu
    everywhere = (w == 0) & (bias > 0)
    pad = points.shape[1] - w.shape[1]

    def on_pieces(term: torch.Tensor) -> torch.Tensor:
        """sum_j term_j 1[neuron j active on piece k]: [S, M+1]."""
        rising, falling = (
            torch.nn.functional.pad(torch.where(side, term, zero), (0, pad)).gather(1, order)
            for side in (w > 0, w < 0)
        )
        none = torch.zeros_like(term[:, :1])
        right_of = torch.cat([none, rising.cumsum(dim=1)], dim=1)
        left_of = torch.cat([falling.flip(1).cumsum(dim=1).flip(1), none], dim=1)
        flat = torch.where(everywhere, term, zero).sum(dim=1, keepdim=True)
        return right_of + left_of + flat

    return Pieces(edges, order, on_pieces(v * w), c[:, None] + on_pieces(v * bias))


def _piece_sums(p: Pieces, target: Target) -> tuple[torch.Tensor, ...]:
    """Per piece [S, M+1]: integral of (N - f)^2, and of e and e x with e = N - f, by
    Gauss–Legendre with nodes_for(target) nodes, exact because N is affine on a piece. The
    node loop is unrolled so every tensor is [S, M+1] (vectorizes after torch.compile)."""
    half = 0.5 * (p.edges[:, 1:] - p.edges[:, :-1])
    mid = 0.5 * (p.edges[:, 1:] + p.edges[:, :-1])
    square = err_sum = err_x = 0.0
    for node, weight in GAUSS_LEGENDRE[nodes_for(target)]:
        x = mid + node * half
        err = p.alpha * x + p.beta - target.fn(x)
        weighted = (weight * half) * err
        square = square + weighted * err
        err_sum = err_sum + weighted
        err_x = err_x + weighted * x
    return square, err_sum, err_x


def exact_risk(params: Params, target: Target) -> torch.Tensor:
    """The integral risk, exactly, for all seeds at once: [S] (differentiable).

    On each piece between consecutive kinks (of the network and of f) N is affine, so
    Gauss–Legendre with nodes_for(target) nodes per piece is exact. The partition is computed
    without gradient on purpose: moving a break point changes the integral by the integrand's
    jump across it, which is zero because N - f is continuous, so the gradient through the
    slopes and intercepts alone is the exact gradient (and no sort needs differentiating).
    """
    square, _, _ = _piece_sums(pieces(params, target), target)
    return square.sum(dim=1) / (target.b - target.a)


def exact_risk_and_grad(params: Params, target: Target) -> tuple[torch.Tensor, Params]:
    """The exact risk and its gradient in closed form, without autograd (the fast path).

    With g_k = dR/dalpha_k = 2/(b-a) integral_k e x and h_k = dR/dbeta_k = 2/(b-a)
    integral_k e over piece k, and A_j, B_j the sums of g and h over the pieces where neuron
    j is active (right of its kink for w_j > 0, left of it for w_j < 0):
    dR/dw_j = v_j A_j, dR/db_j = v_j B_j, dR/dv_j = w_j A_j + b_j B_j, dR/dc = sum_k h_k.
    Same pieces and nodes as exact_risk, so the value is identical; tests compare the
    gradient with autograd."""
    w, bias, v = params["w"], params["b"], params["v"]
    p = pieces(params, target)
    square, err_sum, err_x = _piece_sums(p, target)
    scale = 2.0 / (target.b - target.a)
    risk = square.sum(dim=1) / (target.b - target.a)
    on_everywhere = (w == 0) & (bias > 0)

    def unsort(by_point: torch.Tensor) -> torch.Tensor:
        """Values per sorted break point back to neuron order: [S, H]."""
        return torch.empty_like(by_point).scatter_(1, p.order, by_point)[:, : w.shape[1]]

    active = []
    for per_piece in (scale * err_x, scale * err_sum):
        # the break point at sorted position i has pieces 0..i on its left and i+1..M on its
        # right; both sides are summed directly (not as total minus the other side) so a dead
        # neuron, whose side holds only zero-width pieces, gets exactly zero gradient
        left = unsort(per_piece.cumsum(dim=1)[:, :-1])
        right = unsort(per_piece.flip(1).cumsum(dim=1).flip(1)[:, 1:])
        total = per_piece.sum(dim=1, keepdim=True).expand_as(left)
        flat = torch.where(on_everywhere, total, torch.zeros_like(total))
        active.append(torch.where(w > 0, right, torch.where(w < 0, left, flat)))
    sum_x, sum_1 = active
    grads = {
        "w": v * sum_x,
        "b": v * sum_1,
        "v": w * sum_x + bias * sum_1,
        "c": scale * err_sum.sum(dim=1),
    }
    return risk, grads


def kink_curvature(params: Params, target: Target) -> torch.Tensor:
    """Zero in value and in gradient, with the Hessian autograd misses: [S].

    dN/db_j = v_j 1[w_j x + b_j > 0] jumps at the kink t_j = -b_j/w_j, so differentiating
    the gradient (2/L) integral e dN/d(w_j, b_j) once more gives, besides what autograd
    sees, the delta term (2/L) e(t_j) v_j / |w_j| [t_j, 1][t_j, 1]^T on the (w_j, b_j)
    block, for kinks inside (a, b) (e = N - f, L = b - a; derived). This function is
    c_j ((w_j - w'_j) t_j + (b_j - b'_j))^2 summed over neurons, with c_j = e(t_j) v_j /
    (L |w_j|) and w', b' detached copies, whose Hessian is exactly that term."""
    a, b = target.a, target.b
    w, bias, v = params["w"], params["b"], params["v"]
    with torch.no_grad():
        t = kinks(w, bias, a, b)  # clipped, so kinks outside (a, b) fail the test below
        inside = (w != 0) & (t > a) & (t < b)
        err = network(params, t) - target.fn(t)
        coef = torch.where(inside, err * v / w.abs(), torch.zeros_like(w)) / (b - a)
    shift = (w - w.detach()) * t + (bias - bias.detach())
    return (coef * shift * shift).sum(dim=1)


def sampled_risk(
    params: Params,
    target: Target,
    key: int,
    seeds: torch.Tensor,
    step: int,
    batch: int,
    act: str = "relu",
) -> torch.Tensor:
    """Mini-batch risk with a fresh uniform batch per step and per seed: [S].

    The batch of seed i at step t depends only on (problem, i, t).
    """
    u = uniform(key, seeds, stream("batch", step), batch, params["w"].dtype)
    x = target.a + (target.b - target.a) * u.to(params["w"].device)
    err = network(params, x, act) - target.fn(x)
    return (err * err).mean(dim=1)


# (exponent e, |Z|?) for w, b, v, c: the entry is H^e |Z| or H^e Z (initial_params)
IJR_SCALES = {
    "ijr1": ((3.0, True), (3.0, False), (-7 / 8, True), (0.0, False)),
    "ijr2": ((-4 / 15, True), (-9 / 10, False), (-4 / 15, True), (-9 / 10, False)),
    "ijr4": ((-1 / 7, True), (-1 / 2, False), (-1 / 7, True), (-1 / 2, False)),
}


def initial_params(
    key: int,
    seeds: torch.Tensor,
    width: int,
    scheme: str,
    zero_bias: bool,
    target: Target,
    noise: float,
    dtype: torch.dtype,
    device: torch.device,
) -> Params:
    """Initial (w, b, v, c) for the seeds; a seed's draw depends only on (problem, seed index).

    normal: all N(0, 1), the papers' default. he: w, b ~ N(0, 2/fan_in) with fan_in = 1 and
    v, c ~ N(0, 2/H). xavier: N(0, 2/(fan_in + fan_out)) per layer. saddle: the constant
    network c = mean(f) with degenerate neurons (w = 0, b = 1, v = 0), every entry perturbed
    by N(0, noise^2): a neighbourhood of the saddle of seed 002. zero_bias sets b = c = 0.

    ijr1, ijr2, ijr4: settings 1, 2 and 4 of Ibragimov, Jentzen & Riekert (2022,
    arXiv:2212.13111, Section 4), with Z ~ N(0, 1) drawn independently per entry:
    ijr1 w = H^3 |Z|, b = H^3 Z, v = H^(-7/8) |Z|, c = Z (the clip network of setting 1);
    ijr2 w = v = H^(-4/15) |Z|, b = c = H^(-9/10) Z; ijr4 w = v = H^(-1/7) |Z|,
    b = c = H^(-1/2) Z.
    """
    z = normal(key, seeds.cpu(), stream("init"), 3 * width + 1, dtype).to(device)
    zw, zb, zv, zc = z[:, :width], z[:, width : 2 * width], z[:, 2 * width : 3 * width], z[:, -1]
    if scheme == "normal":
        sw = sb = sv = sc = 1.0
    elif scheme == "he":
        sw = sb = math.sqrt(2.0)
        sv = sc = math.sqrt(2.0 / width)
    elif scheme == "xavier":
        sw = sb = math.sqrt(2.0 / (1 + width))
        sv = sc = math.sqrt(2.0 / (width + 1))
    elif scheme in IJR_SCALES:
        (sw, pw), (sb, pb), (sv, pv), (sc, pc) = IJR_SCALES[scheme]
        h = float(width)
        params = {
            "w": h**sw * (zw.abs() if pw else zw),
            "b": h**sb * (zb.abs() if pb else zb),
            "v": h**sv * (zv.abs() if pv else zv),
            "c": h**sc * (zc.abs() if pc else zc),
        }
        if zero_bias:
            params["b"], params["c"] = torch.zeros_like(zb), torch.zeros_like(zc)
        return {k: t.contiguous() for k, t in params.items()}
    elif scheme == "saddle":
        grid = torch.linspace(target.a, target.b, 2001, dtype=torch.float64)
        mean_f = float(target.fn(grid).mean())
        params = {"w": noise * zw, "b": 1.0 + noise * zb, "v": noise * zv, "c": mean_f + noise * zc}
        return {k: t.contiguous() for k, t in params.items()}
    else:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    params = {"w": sw * zw, "b": sb * zb, "v": sv * zv, "c": sc * zc}
    if zero_bias:
        params["b"] = torch.zeros_like(zb)
        params["c"] = torch.zeros_like(zc)
    return {k: t.contiguous() for k, t in params.items()}


DEAD_MEASURE = 1e-6  # active sets shorter than this share of [a, b] count as dead


def active_measure(params: Params, a: float, b: float) -> torch.Tensor:
    """[S, H] length of {x in [a, b] : w x + bias > 0} for each neuron."""
    w, bias = params["w"], params["b"]
    kink = kinks(w, bias, a, b)
    right = torch.where(w > 0, b - kink, kink - a)  # active right of the kink if w > 0
    flat = torch.where(bias > 0, torch.full_like(w, b - a), torch.zeros_like(w))
    return torch.where(w == 0, flat, right)


def dead_neurons(params: Params, a: float, b: float) -> torch.Tensor:
    """Neurons whose active set on [a, b] is empty or of vanishing measure (below DEAD_MEASURE
    of the interval): their gradient is zero, or vanishes with the sliver, so SGD, momentum,
    AdaGrad, RMSprop and Adam never bring them back (seed 001). Counted at initialization and
    at the end: gradient descent also kills neurons DURING training by driving their kink to
    an end of the interval (Cheridito, Jentzen & Rossmannek, seed 002)."""
    return (active_measure(params, a, b) <= DEAD_MEASURE * (b - a)).sum(dim=1)


def dead_clip_neurons(params: Params, a: float, b: float) -> torch.Tensor:
    """Clip neurons constant on all of [a, b]: the ramp between the kinks -b/w and (1-b)/w
    misses the interval (or w = 0), so the neuron's gradient in w and b is zero there."""
    w, bias = params["w"], params["b"]
    return (kinks(w, bias, a, b) == kinks(w, bias - 1.0, a, b)).sum(dim=1)


def dead_probability(a: float, b: float) -> float:
    """P(a neuron with w, b ~ N(0, 1) starts dead on [a, b]) = 1/4 + arcsin(rho)/(2 pi),
    rho = (ab + 1)/sqrt((a^2 + 1)(b^2 + 1)) (docs/problems.md section 1, derived)."""
    rho = (a * b + 1) / math.sqrt((a * a + 1) * (b * b + 1))
    return 0.25 + math.asin(rho) / (2 * math.pi)


def default_tol(levels: list[float], optimum: float) -> float:
    """Success tolerance: 1e-4 of the trivial risk R*_0, but never more than a tenth of the
    distance to the nearest non-global level, so a level-h run is never counted as global."""
    trivial = levels[0] - optimum
    nearest = min((lv - optimum for lv in levels if lv - optimum > 1e-15), default=trivial)
    return min(1e-4 * trivial, 0.1 * nearest) if trivial > 0 else 1e-8


def _distinct(levels) -> list[tuple[str, float]]:
    """Sort levels highest first and merge labels of numerically equal levels."""
    out: list[tuple[str, float]] = []
    for label, value in sorted(levels, key=lambda item: -item[1]):
        if out and abs(out[-1][1] - value) <= 1e-9 * max(value, 1e-300):
            out[-1] = (f"{out[-1][0]}={label}", out[-1][1])
        else:
            out.append((label, value))
    return out


def check_options(options: dict, closed_form: bool = False) -> None:
    """The 1-D family's option rules, checked before anything is built: the init scheme, and
    a width whose reference levels come in seconds (at most reference.MAX_WIDTH; any width
    when the levels have a closed form)."""
    if options["init"] not in INIT_SCHEMES:
        raise ValueError(
            f"unknown init {options['init']!r}; choose one of {', '.join(INIT_SCHEMES)}"
        )
    if options["act"] not in ACTIVATIONS:
        raise ValueError(f"unknown act {options['act']!r}; choose one of {', '.join(ACTIVATIONS)}")
    if options["train"] not in FROZEN:
        raise ValueError(f"unknown train {options['train']!r}; choose one of {', '.join(FROZEN)}")
    if not closed_form:
        reference.check_width(options["width"])


# The options every 1-D problem takes (a target's own come first, from its table row).
OPTIONS = (
    Option("width", int, 4, "hidden neurons H of the student"),
    Option("init", str, "normal", f"initialization: {', '.join(INIT_SCHEMES)}"),
    Option("zero_bias", bool, False, "start with b = c = 0 (He/Xavier papers' setting)"),
    Option("sampled", bool, False, "train on a fresh uniform mini-batch per step and seed"),
    Option("batch", int, 1024, "mini-batch size when sampled"),
    Option("noise", float, 1e-3, "standard deviation of the perturbation of init=saddle"),
    Option("tol", float, 0.0, "success tolerance on the gap (0: default_tol)"),
    Option("act", str, "relu", "hidden activation: relu, or clip = min(max(z, 0), 1)"),
    Option("train", str, "all", "parameters trained: all, biases (b and c), inner_biases (b)"),
)


def clip_optimum(
    target: Target, width: int, relu_optimum: float, relu_detail: str
) -> tuple[float, str, str, float | None]:
    """(optimum, provenance, detail, lower bound) of a width-H clip network, bracketed by ReLU
    optima: R*_relu(2H) <= R*_clip(H) <= R*_relu(H). Upper: on a bounded interval a ReLU
    neuron is a clip neuron scaled by M (relu(z) = M clip(z / M) while z <= M), so every
    width-H ReLU network is a width-H clip network. Lower: clip(z) = relu(z) - relu(z - 1),
    so every width-H clip network is a width-2H ReLU network. The optimum reported is the
    upper bound (best_known: runs may beat it); the lower bound only where the reference
    solver's full search covers 2H (beyond it the solver's values are upper bounds too)."""
    full = reference.DEFAULT_SETTINGS["full_search_width"]
    lower = None
    if 2 * width <= full:
        lower = reference.optimal_levels(target, 2 * width)["levels"][2 * width]
    detail = (
        f"upper bound: the width-{width} ReLU optimum ({relu_detail}), which a clip network "
        "realizes; "
        + (
            f"lower bound {lower:.6g}: the width-{2 * width} ReLU optimum (full search)"
            if lower is not None
            else f"no lower bound computed (width {2 * width} > full search width {full})"
        )
    )
    return relu_optimum, "best_known", detail, lower


def reference_levels(
    target: Target, width: int
) -> tuple[list[float], tuple[float, str, str], tuple[tuple[str, float], ...]]:
    """What a width-H problem needs of the reference levels, each from its cheapest honest
    source: (the exactly known R*_0, R*_1, ..., up to R*_H where known; (optimum,
    provenance, detail); the other labelled levels).

    A closed form needs no solver at all. Otherwise the full search runs for the widths
    0..min(H, full_search_width) only (each cached on its own): R*_h for h < H are the
    hierarchy's non-global levels and must be exact to classify runs. Beyond the full search
    R*_H is a best-known upper bound (reference.best_known_level), never a level; a target
    that is a ReLU network of at most H neurons has R*_H = 0 exactly."""
    full = reference.DEFAULT_SETTINGS["full_search_width"]
    if target.closed_form is not None:
        levels = [target.closed_form(h) for h in range(width + 1)]
    else:
        levels = reference.optimal_levels(target, min(width, full))["levels"]
    if target.neurons is not None and width >= target.neurons:
        detail = f"target is a ReLU network of {target.neurons} neuron(s): realizable, R* = 0"
        known = (0.0, "exact", detail)
    elif target.closed_form is not None:
        detail = (
            "closed form (docs/problems.md section 1, derived); tests check it against the "
            "reference solver"
        )
        known = (levels[width], "exact", detail)
    elif width <= full:
        settings = {**reference.DEFAULT_SETTINGS, "version": reference.SOLVER_VERSION}
        known = (levels[width], "computed", f"variable-projection reference solver ({settings})")
    else:
        bound = reference.best_known_level(target, width)
        known = (bound["risk"], "best_known", f"{bound['detail']}; runs may beat it (negative gap)")
    # best continuous piecewise-linear fits with K < H - 1 free knots: an affine neuron plus K
    # hinges is a critical configuration of the width-H net (K = 0: the best affine fit)
    spline_width = max(min(width - 2, full), 0)
    if target.spline_closed_form is not None:
        splines = [target.spline_closed_form(k) for k in range(spline_width + 1)]
    else:
        splines = reference.optimal_levels(target, spline_width, basis="spline")["levels"]
    extra = (
        *target.levels,
        ("affine-fit", splines[0]),
        *((f"cpwl-{k}", v) for k, v in enumerate(splines[1 : width - 1], 1)),
    )
    return levels, known, extra


def build(name: str, row: Row, options: dict) -> Problem:
    """Assemble a 1-D problem from a table row and its typed options; the optimum and levels
    come from ``reference_levels``."""
    width, init, sampled = options["width"], options["init"], options["sampled"]
    if width < 1:
        raise ValueError("width must be >= 1")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if options["batch"] < 1:
        raise ValueError("batch must be >= 1")
    act, train = options["act"], options["train"]
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown act {act!r}; choose one of {', '.join(ACTIVATIONS)}")
    if train not in FROZEN:
        raise ValueError(f"unknown train {train!r}; choose one of {', '.join(FROZEN)}")
    target = row.target(options)
    levels, (optimum, provenance, detail), extra_levels = reference_levels(target, width)
    # only levels known exactly (closed form or full search) classify runs; best-known ones
    # are upper bounds and would mislabel fates
    labelled = [(f"R*_{h}", lv) for h, lv in enumerate(levels[:width])]
    labelled += list(extra_levels)
    nonglobal = _distinct(item for item in labelled if item[1] > optimum + 1e-12)
    lower_bound = None
    if act == "clip":
        optimum, provenance, detail, lower_bound = clip_optimum(target, width, optimum, detail)
        nonglobal = []  # the ReLU levels are not known critical levels of a clip network
    key = problem_key(name)
    a, b = target.a, target.b
    tol = options["tol"]
    tol = tol if tol > 0 else default_tol([levels[0], *(lv for _, lv in nonglobal)], optimum)
    zero_bias, batch, noise = options["zero_bias"], options["batch"], options["noise"]

    def init_fn(seeds, dtype, device):
        return initial_params(key, seeds, width, init, zero_bias, target, noise, dtype, device)

    def risk(params):
        return exact_risk_act(params, target, act)

    def train_risk(params, seeds, step):
        if sampled:
            return sampled_risk(params, target, key, seeds, step, batch, act)
        return exact_risk_act(params, target, act)

    def hessian_risk(params):
        relu = clip_as_relu(params) if act == "clip" else params
        return exact_risk(relu, target) + kink_curvature(relu, target)

    def diagnostics(params):
        dead = dead_clip_neurons if act == "clip" else dead_neurons
        return {"dead_neurons": dead(params, a, b)}

    return Problem(
        name=name,
        family="relu1d",
        description=f"{row.description} Target f(x) = {target.formula} on [{a:g}, {b:g}], "
        f"width H = {width}, init {init}{' (zero bias)' if zero_bias else ''}, "
        + ("clip activation min(max(z, 0), 1), " if act == "clip" else "")
        + (f"trained: {train.replace('_', ' ')} only, " if train != "all" else "")
        + (f"online SGD batches of {batch}." if sampled else "exact integral risk."),
        citation=row.citation,
        init=init_fn,
        risk=risk,
        train_risk=train_risk,
        optimum=optimum,
        provenance=provenance,
        provenance_detail=detail,
        tol=tol,
        levels=tuple(nonglobal),
        exact=not sampled,
        diagnostics=diagnostics,
        risk_grad=None if sampled else (lambda p: exact_risk_and_grad_act(p, target, act)),
        train_risk_grad=(
            shallow_train_risk_grad(key, batch, (a, b), target.fn, act) if sampled else None
        ),
        # sampled: the compiled gradient stores [S, batch] buffers (the batch, the errors);
        # its [S, H, slice] terms are bounded by sample slices (problems/sampled.py).
        # Measured, H = 16, S = 256: chunks of 256 seeds 1.6x faster than chunks of 32.
        footprint=batch if sampled else 0,
        hessian_risk=hessian_risk,
        frozen=FROZEN[train],
        options={
            "width": width,
            "init": init,
            "zero_bias": zero_bias,
            "sampled": sampled,
            "batch": batch,
            "target": target.formula,
            "interval": [a, b],
            "act": act,
            "train": train,
            "optimum_lower_bound": lower_bound,
        },
    )


class Row(NamedTuple):
    """One registered 1-D problem: ``relu1d-<key>`` fits ``target(options)``.

    ``options`` are the target's own (declared before the shared OPTIONS); ``target`` receives
    all typed options, so a target may depend on the width (relu1d-trap)."""

    key: str
    target: Callable[[dict], Target]
    summary: str
    description: str
    citation: str
    provenance: str
    options: tuple[Option, ...] = ()


def _smooth(key: str) -> Row:
    formula = TARGETS[key]().formula
    return Row(
        key,
        lambda options: TARGETS[key](),
        f"shallow ReLU, target {formula} on [0,1]: R*_H by the reference solver, hierarchy "
        "of levels R*_h",
        f"Target {formula} from seed 000's simulations; a width-h optimum padded with dead "
        "neurons is a local minimum at level R*_h.",
        CITE_NONCONV,
        "computed",
    )


# The 1-D problems: a new target is one row here (and its test); see docs/new-problem.md.
TABLE = (
    Row(
        "affine",
        lambda o: affine(o["alpha"], o["beta"]),
        "shallow ReLU, affine target f = alpha x + beta: R* = 0, every non-global critical "
        "point is the constant network",
        "Affine target; the constant network c = mean(f) with risk alpha^2 (b-a)^2/12 is the "
        "only non-global critical level (a local minimum when all neurons are dead, a saddle "
        "otherwise).",
        CITE_SADDLE,
        "exact",
        (Option("alpha", float, 1.0, "slope"), Option("beta", float, 0.0, "intercept")),
    ),
    _smooth("x2"),
    _smooth("x2+2x"),
    _smooth("sin3x"),
    _smooth("root4"),  # settings 1 (clip, biases trained) and 2 of arXiv:2212.13111, Section 4
    _smooth("x4sin"),
    Row(
        "teacher",
        lambda o: zigzag(o["kinks"]),
        "shallow ReLU student of a ReLU teacher with K evenly spaced kinks (realizable: R* = 0 "
        "when width >= kinks)",
        "Realizable teacher-student: a zigzag ReLU teacher with well-separated kinks.",
        CITE_LEVELS,
        "exact",
        (Option("kinks", int, 2, "teacher neurons K (evenly spaced kinks)"),),
    ),
    Row(
        "trap",
        lambda o: zigzag(o["width"]),
        "zigzag teacher with as many kinks as student neurons: every dead or misplaced neuron "
        "drops the run to a known level R*_h",
        "Substitute for seed 004's Lipschitz target with many bad minima: the global minimum "
        "needs every neuron, and the levels R*_0 > ... > R*_{H-1} of the narrower optima are "
        "all non-global local minima.",
        CITE_LEVELS,
        "exact",
    ),
)


def _register(row: Row) -> None:
    def check(options: dict) -> None:
        check_options(options, closed_form=row.target(options).closed_form is not None)

    @register(
        f"relu1d-{row.key}",
        row.summary,
        row.citation,
        row.provenance,
        row.options + OPTIONS,
        check=check,
    )
    def factory(_name: str, **options) -> Problem:
        return build(_name, row, options)


for _row in TABLE:
    _register(_row)
