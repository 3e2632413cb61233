"""Planted minimum by neuron splitting (Petzka & Sminchisescu, JMLR 2021; seed 003).

Take a critical point of a small shallow sigmoid network f(x) = c + sum_j v_j s(w_j.x + b_j),
copy neuron r and split its outgoing weight into lambda v_r and (1 - lambda) v_r: the function,
and so the risk, is unchanged. With
    B^r = sum_a (f(x_a) - y_a) v_r s''(n_r(x_a)) x~_a x~_a^T,   x~ = (x, 1)
positive definite and 0 < lambda < 1 (or negative definite and lambda outside [0, 1]) the split
point is a local minimum of the wider network, otherwise a saddle (docs/problems.md section 3,
shallow case). Their experiment: data from a 2-5-5-1 sigmoid teacher, 20 samples. Optimizers
start at the split point plus small noise; the escape rate is the share of runs that end below
the planted level.
"""

from __future__ import annotations

import math

import torch

from problems.base import Params, Problem
from problems.cache import cached_json
from problems.options import Option
from problems.registry import register
from problems.rng import normal, problem_key, stream

CITE = (
    "Petzka & Sminchisescu (2021), Non-attracting regions of local minima in deep and wide "
    "neural networks, JMLR [seed 003]"
)


def shallow(params: Params, x: torch.Tensor) -> torch.Tensor:
    """[S, N] outputs of c + sum_j v_j sigmoid(w_j . x + b_j); x [N, d] shared."""
    pre = torch.matmul(x, params["w"].transpose(1, 2)) + params["b"][:, None, :]
    return params["c"][:, None] + (torch.sigmoid(pre) * params["v"][:, None, :]).sum(-1)


def mse(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    err = shallow(params, x) - y
    return (err * err).mean(dim=1)


def teacher_data(data: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs N(0, I_2) and labels of a random 2-5-5-1 sigmoid teacher (their setting)."""
    key, one = data, torch.zeros(1, dtype=torch.int64)
    x = normal(key, one, stream("inputs"), samples * 2)[0].reshape(samples, 2)
    w1 = 2 * normal(key, one, stream("planted_teacher", 0), 10)[0].reshape(5, 2)
    w2 = 2 * normal(key, one, stream("planted_teacher", 1), 25)[0].reshape(5, 5)
    b1, b2, w3 = (normal(key, one, stream("planted_teacher", i), 5)[0] for i in (2, 3, 4))
    h = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)
    return x, h @ w3


def critical_points(x: torch.Tensor, y: torch.Tensor, width: int, key: int) -> list[Params]:
    """Critical points of the small network (gradient norm < 1e-8) from 16 L-BFGS starts
    (float64), lowest risk first."""
    found = []
    for start in range(16):
        z = normal(key, torch.tensor([start]), stream("init"), 4 * width + 1)[0]
        p = {
            "w": z[: 2 * width].reshape(1, width, 2).clone(),
            "b": z[2 * width : 3 * width].reshape(1, width).clone(),
            "v": z[3 * width : 4 * width].reshape(1, width).clone(),
            "c": z[-1:].clone(),
        }
        grads = polish(p, lambda q: mse(q, x, y).sum(), max_iter=1000, tolerance_grad=1e-13)
        if torch.sqrt(sum((g * g).sum() for g in grads)) < 1e-8:
            found.append({k: v.detach() for k, v in p.items()})
    return sorted(found, key=lambda q: float(mse(q, x, y)[0]))


def polish(
    params: Params,
    loss,
    max_iter: int,
    tolerance_grad: float,
    rounds: int = 1,
    *,
    loss_and_grad=None,
    tolerance_change: float = 1e-16,
    history_size: int = 100,
) -> tuple[torch.Tensor, ...]:
    """Minimize ``loss(params)`` in place with strong-Wolfe L-BFGS (float64), to the tight
    gradient a planted minimum needs: the construction's conditions (B definite, D = 0) only
    hold at a critical point. ``loss_and_grad(params) -> (loss, {name: grad})``, where a
    problem has its gradient in closed form, spares L-BFGS an autograd graph per evaluation
    (the best-known search, benchmarks/best_known.py). Returns the gradients at the end."""
    leaves = [t.requires_grad_(True) for t in params.values()]
    opt = torch.optim.LBFGS(
        leaves,
        lr=1,
        max_iter=max_iter,
        history_size=history_size,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        if loss_and_grad is None:
            value = loss(params)
            value.backward()
            return value
        with torch.no_grad():
            value, grads = loss_and_grad(params)
        for name, leaf in params.items():
            leaf.grad = grads[name]
        return value

    for _ in range(rounds):
        opt.step(closure)
    return torch.autograd.grad(loss(params), leaves)


def perturbed_starts(
    planted: Params,
    key: int,
    seeds: torch.Tensor,
    noise: float,
    dtype: torch.dtype,
    device: torch.device,
) -> Params:
    """The planted point plus N(0, noise^2) on every weight, a seed's noise drawn from its own
    index (stream ``planted_noise``): the starts of the planted families."""
    out = {}
    for i, (k, v) in enumerate(planted.items()):
        z = normal(key, seeds.cpu(), stream("planted_noise", i), v[0].numel(), torch.float64)
        out[k] = (v + noise * z.reshape(-1, *v.shape[1:])).to(device, dtype).contiguous()
    return out


def b_matrix(params: Params, x: torch.Tensor, y: torch.Tensor, r: int) -> torch.Tensor:
    """B^r of the shallow case (3 x 3 with the bias input)."""
    residual = (shallow(params, x) - y)[0]
    n_r = x @ params["w"][0, r] + params["b"][0, r]
    s = torch.sigmoid(n_r)
    s2 = s * (1 - s) * (1 - 2 * s)  # sigmoid''
    xt = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    coef = residual * params["v"][0, r] * s2
    return (xt * coef[:, None]).T @ xt


def definiteness(params: Params, x: torch.Tensor, y: torch.Tensor, r: int) -> str:
    """'+' or '-' when B^r is definite, 'i' when indefinite, '0' when B^r is zero to rounding:
    eigenvalues count only above 1e-8 of the scale of B built from |residual| terms."""
    eig = torch.linalg.eigvalsh(b_matrix(params, x, y, r))
    scale = float(torch.linalg.matrix_norm(_abs_b(params, x, y, r), ord=2))
    # the largest B could be, with sigmoid'' at its maximum 1/(6 sqrt 3) for every sample:
    residual = (shallow(params, x) - y)[0].abs()
    xt2 = (x * x).sum(dim=1) + 1
    ceiling = float((residual * xt2).sum() * params["v"][0, r].abs()) / (6 * math.sqrt(3))
    eps = 1e-8 * max(scale, 1e-300)
    if eig.abs().max() <= max(eps, 1e-6 * ceiling):
        return "0"  # saturated neuron or vanishing residual: B is zero to working precision
    if eig.min() > eps:
        return "+"
    if eig.max() < -eps:
        return "-"
    return "i"


def _abs_b(params: Params, x: torch.Tensor, y: torch.Tensor, r: int) -> torch.Tensor:
    residual = (shallow(params, x) - y)[0].abs()
    n_r = x @ params["w"][0, r] + params["b"][0, r]
    s = torch.sigmoid(n_r)
    s2 = (s * (1 - s) * (1 - 2 * s)).abs()
    xt = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    return (xt * (residual * params["v"][0, r].abs() * s2)[:, None]).T @ xt


def split(params: Params, r: int, lam: float) -> Params:
    """Copy neuron r; outgoing weights lam v_r and (1 - lam) v_r: the function is unchanged."""
    w = torch.cat([params["w"], params["w"][:, r : r + 1]], dim=1)
    b = torch.cat([params["b"], params["b"][:, r : r + 1]], dim=1)
    v = params["v"].clone()
    v_r = v[:, r].clone()
    v[:, r] = lam * v_r
    v = torch.cat([v, (1 - lam) * v_r[:, None]], dim=1)
    return {"w": w, "b": b, "v": v, "c": params["c"].clone()}


def construct(data: int, width: int, samples: int, neuron: int, lam: float) -> dict:
    """The planted point and its B-matrix verdict, cached on disk (the search for critical
    points takes tens of seconds)."""
    tag = {
        "planted": 2,
        "data": data,
        "width": width,
        "samples": samples,
        "neuron": neuron,
        "lam": None if lam != lam else lam,
    }
    x, y = teacher_data(data, samples)
    stored = cached_json(
        tag, lambda: _construct(x, y, data, width, neuron, lam), prefix="planted-", digits=20
    )
    planted = {k: torch.tensor(v, dtype=torch.float64) for k, v in stored["planted"].items()}
    return {**stored, "x": x, "y": y, "planted": planted}


def _construct(
    x: torch.Tensor, y: torch.Tensor, data: int, width: int, neuron: int, lam: float
) -> dict:
    points = critical_points(x, y, width, data)
    if not points:
        raise ValueError("no critical point of the small network found; try other samples")

    # the lowest critical point whose B-matrix is definite plants a local minimum
    small = next((q for q in points if definiteness(q, x, y, neuron) in "+-"), points[0])
    eig = torch.linalg.eigvalsh(b_matrix(small, x, y, neuron))
    sign = definiteness(small, x, y, neuron)
    if lam != lam:  # NaN: choose lambda so the split point is a local minimum when possible
        lam = 1.5 if sign == "-" else 0.5
    inside = 0 < lam < 1
    if sign == "0":
        kind = "degenerate"  # B vanishes to rounding: the test is inconclusive
    elif (sign == "+" and inside) or (sign == "-" and not inside):
        kind = "local-min"
    else:
        kind = "saddle"
    planted = split(small, neuron, lam)
    level = float(mse(planted, x, y)[0])
    return {
        "planted": {k: v.tolist() for k, v in planted.items()},
        "b_eigenvalues": eig.tolist(),
        "lam": lam,
        "kind": kind,
        "level": level,
        "optimum": min(best_wide(x, y, width + 1, data), level),
    }


def best_wide(x: torch.Tensor, y: torch.Tensor, width: int, key: int) -> float:
    """Best risk of 128 random starts of the wide network (Adam then L-BFGS polish)."""
    seeds = torch.arange(128)
    z = normal(key, seeds, stream("wide_starts"), 4 * width + 1)
    p = {
        "w": z[:, : 2 * width].reshape(-1, width, 2).clone(),
        "b": z[:, 2 * width : 3 * width].clone(),
        "v": z[:, 3 * width : 4 * width].clone(),
        "c": z[:, -1].clone(),
    }
    leaves = [t.requires_grad_(True) for t in p.values()]
    opt = torch.optim.Adam(leaves, lr=0.02)
    for _ in range(3000):
        opt.zero_grad()
        mse(p, x, y).sum().backward()
        opt.step()
    return float(mse(p, x, y).detach().min())


def check_options(options: dict) -> None:
    """The split neuron must be one of the small network's ``width`` neurons."""
    if not options["neuron"] < options["width"]:
        raise ValueError(f"neuron={options['neuron']} needs 0 <= neuron < width={options['width']}")


@register(
    "planted-sigmoid",
    "shallow sigmoid net started at a planted non-global minimum "
    "made by neuron splitting (B-matrix condition checked): escape rate",
    CITE,
    "best_known",
    (
        Option("width", int, 1, "neurons of the small network that is split"),
        Option("samples", int, 20, "training samples of the 2-5-5-1 teacher"),
        Option("data", int, 0, "which draw of teacher and samples"),
        Option("neuron", int, 0, "the neuron r that is copied"),
        Option("lam", float, float("nan"), "split proportion lambda (nan: a local minimum if any)"),
        Option("noise", float, 1e-3, "standard deviation of the start's perturbation"),
        Option("tol", float, 1e-6, "success tolerance on the gap"),
    ),
    check=check_options,
)
def planted_sigmoid(
    _name: str,
    width: int,
    samples: int,
    data: int,
    neuron: int,
    lam: float,
    noise: float,
    tol: float,
) -> Problem:
    """``data`` picks the draw of teacher and samples. A definite B-matrix is rare in this
    small setting (none among draws 0..11 with width 1, beyond rounding), so the planted point
    is usually a saddle; the problem says which (options.kind) and the escape rate is then
    a saddle-escape rate."""
    if width < 1 or not 0 <= neuron < width:
        raise ValueError("need width >= 1 and 0 <= neuron < width")
    if samples < 2:
        raise ValueError("samples must be >= 2")
    info = construct(data, width, samples, neuron, lam)
    x, y, planted = info["x"], info["y"], info["planted"]
    key = problem_key(_name)
    optimum = info["optimum"]

    def init(seeds, dtype, device):
        return perturbed_starts(planted, key, seeds, noise, dtype, device)

    def risk(params):
        w = params["w"]
        return mse(params, x.to(w.device, w.dtype), y.to(w.device, w.dtype))

    eig = ", ".join(f"{e:.3g}" for e in info["b_eigenvalues"])
    return Problem(
        name=_name,
        family="planted",
        description=f"2-{width}-1 sigmoid critical point split at neuron {neuron} with lambda "
        f"= {info['lam']:g} into a 2-{width + 1}-1 network on {samples} samples of a 2-5-5-1 "
        f"teacher; B-matrix eigenvalues [{eig}]: the planted point is a {info['kind']}. "
        f"Starts: planted point + N(0, {noise:g}^2).",
        citation=CITE,
        init=init,
        risk=risk,
        train_risk=lambda p, s, t: risk(p),
        optimum=optimum,
        provenance="best_known",
        provenance_detail="best of 128 random starts x 3000 Adam steps of the wide network",
        tol=tol,
        levels=(("planted", info["level"]),) if info["level"] > optimum + tol else (),
        options={
            "width": width,
            "samples": samples,
            "neuron": neuron,
            "lam": info["lam"],
            "kind": info["kind"],
            "b_eigenvalues": info["b_eigenvalues"],
            "noise": noise,
        },
    )
