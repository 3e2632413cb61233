"""Reference solver for the optimal risk R*_h of a width-h scalar ReLU network.

Variable projection (Golub & Pereyra 1973): for fixed kinks t and orientations s, the best
output layer is an exact linear least-squares problem on span{1, (s_j (x - t_j))_+}, with the
Gram matrix integrated exactly by piecewise Gauss–Legendre quadrature. What is left is a
minimization over t in [a, b]^h, done by global search (random kinks for every count of
positively oriented neurons, plus insertion of one kink into the width-(h-1) optimum on a grid)
followed by bounded local refinement (scipy L-BFGS-B with the exact variable-projection
gradient). Kinks at the ends of [a, b] cover affine (kink at a, facing right) and dead
neurons. Each width's optimum is cached on its own (``optimal_levels``). docs/problems.md
section 1.

The full search is reliable and affordable up to ``full_search_width``. Beyond it,
``best_known_level`` gives an upper bound on R*_H in seconds even at H = 1000: the best
continuous piecewise-linear fit with H - 1 free knots (``cpwl_fit``), which a width-H network
realizes.

The same machinery with basis {1, x, (x - t_j)_+} gives the free-knot linear-spline error,
which brackets R*_h: spline(h knots) <= R*_h <= spline(h - 1 knots).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import torch

from problems.cache import cached_json
from problems.quadrature import piecewise_nodes
from problems.targets import Target

SOLVER_VERSION = 4  # 4: refinement by the exact variable-projection gradient; cached per width
DEFAULT_SETTINGS = {
    "n_random": 2048,
    "n_grid": 65,
    "n_refine": 6,
    "quad_nodes": 8,
    "seed": 0,
    "full_search_width": 8,
}
# Beyond the full search a width's optimum is a best-known upper bound from one continuous
# piecewise-linear fit (``cpwl_fit``: O(H) per evaluation, seconds at H = 1000); wider
# problems are refused up front.
MAX_WIDTH = 1024


def check_width(width: int) -> None:
    """Refuse a width whose levels cannot be had in seconds (ValueError, one line)."""
    if width > MAX_WIDTH:
        raise ValueError(
            f"width={width} is beyond what the reference solver's levels support (at most "
            f"{MAX_WIDTH}, unless the target's levels have a closed form)"
        )


@contextmanager
def _one_thread():
    """The solver's problems are tiny: extra threads only add synchronisation (torch's
    least squares 5x slower per call, scipy's L-BFGS-B 2-3x slower per iteration through its
    BLAS on a loaded 2-core machine), so it runs on one thread and restores the caller's
    settings."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def residuals(
    target: Target,
    knots: torch.Tensor,
    signs: torch.Tensor,
    basis: str = "relu",
    quad_nodes: int = 8,
    with_grad: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Least-squares risk of the best fit for each row of kinks: knots [C, h] -> [C]; with
    ``with_grad`` also its gradient in the kinks [C, h].

    basis "relu": span{1, (s_j (x - t_j))_+}; basis "spline": span{1, x, (x - t_j)_+}.
    The gradient is the variable-projection one (Golub & Pereyra 1973, envelope theorem: the
    optimal coefficients c need no differentiating): with e = fit - f,
    dR/dt_j = -(2 / (b - a)) c_j s_j integral of e over {s_j (x - t_j) > 0}. The integrand's
    jump at a moving break point contributes nothing because the fit is continuous.
    """
    a, b = target.a, target.b
    c = knots.shape[0]
    fixed = torch.tensor((a, b, *target.breakpoints), dtype=torch.float64).expand(c, -1)
    points = torch.cat([fixed, knots], dim=1).sort(dim=1).values
    x, w = piecewise_nodes(points, quad_nodes)
    orient = torch.ones(knots.shape[1], dtype=torch.float64) if basis == "spline" else signs
    hinges = [torch.relu(orient[j] * (x - knots[:, j : j + 1])) for j in range(knots.shape[1])]
    cols = [torch.ones_like(x), *([x] if basis == "spline" else []), *hinges]
    phi = torch.stack(cols, dim=2)  # [C, P, k]
    sw = torch.sqrt(w)
    f = target.fn(x)
    design = sw[..., None] * phi
    rhs = (sw * f)[..., None]
    coef = torch.linalg.lstsq(design, rhs, driver="gelsd").solution
    res = (design @ coef - rhs)[..., 0]  # sqrt(w) e at the nodes
    risk = (res**2).sum(dim=1) / (b - a)
    if not with_grad:
        return risk
    active = torch.stack([h > 0 for h in hinges], dim=2).to(x.dtype)  # [C, P, h]
    err_on = ((sw * res)[..., None] * active).sum(dim=1)  # integral of e over each active set
    hinge_coef = coef[:, len(cols) - len(hinges) :, 0]
    return risk, -(2.0 / (b - a)) * hinge_coef * orient * err_on


def _solve_width(
    target: Target, h: int, previous: np.ndarray | None, basis: str, settings: dict
) -> tuple[float, list[float], list[float]]:
    """Global search then refinement for width h; returns (risk, kinks, signs)."""
    a, b = target.a, target.b
    q = settings["quad_nodes"]
    if h == 0:
        empty = torch.zeros((1, 0), dtype=torch.float64)
        return float(residuals(target, empty, torch.zeros(0), basis, q)[0]), [], []
    rng = np.random.default_rng(settings["seed"] + h)
    patterns = range(h + 1) if basis == "relu" else [h]
    best = []
    for m in patterns:
        signs = torch.tensor([1.0] * m + [-1.0] * (h - m), dtype=torch.float64)
        cands = [rng.uniform(a, b, size=(settings["n_random"], h))]
        if previous is not None:
            grid = np.linspace(a, b, settings["n_grid"])
            for pos in range(h):  # insert the new kink with orientation signs[pos]
                rest = np.delete(np.arange(h), pos)
                block = np.empty((len(grid), h))
                block[:, pos] = grid
                block[:, rest] = previous[None, : h - 1] if len(rest) == len(previous) else 0.5
                cands.append(block)
        cand = torch.tensor(np.concatenate(cands), dtype=torch.float64)
        r = residuals(target, cand, signs, basis, q)
        order = torch.argsort(r)[: settings["n_refine"]]
        best += [(float(r[i]), cand[i].numpy(), signs) for i in order]
    best.sort(key=lambda item: item[0])
    from scipy.optimize import minimize  # slow to import; only the solver needs it

    results = []
    for start_risk, start, signs in best[: settings["n_refine"]]:

        def objective(t, signs=signs):
            risk, grad = residuals(target, torch.tensor(t[None, :]), signs, basis, q, True)
            return float(risk[0]), grad[0].numpy()

        opt = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(a, b)] * h,
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 500},
        )
        results.append((opt.fun, opt.x) if opt.fun < start_risk else (start_risk, start))
        results[-1] += (signs,)
    risk, knots, signs = min(results, key=lambda item: item[0])
    order = np.argsort(knots)
    return risk, knots[order].tolist(), signs.numpy()[order].tolist()


def _settings(settings: dict | None) -> dict:
    return {**DEFAULT_SETTINGS, **(settings or {})}


def _check_full_search(width: int, settings: dict) -> None:
    if width > settings["full_search_width"]:
        raise ValueError(
            f"the full search covers widths up to {settings['full_search_width']}, not {width}: "
            "wider optima are best-known bounds (best_known_level)"
        )


def solve(target: Target, width: int, basis: str = "relu", settings: dict | None = None) -> dict:
    """R*_h for h = 0..width (and the optimal kinks) by the full search, without any cache.

    Width h starts its search from the width-(h-1) optimum, so the widths are solved in
    order; ``width`` may not exceed ``full_search_width`` (beyond it the search is neither
    reliable nor affordable: see best_known_level)."""
    settings = _settings(settings)
    _check_full_search(width, settings)
    levels, solutions, previous = [], [], None
    with _one_thread():
        for h in range(width + 1):
            risk, knots, signs = _solve_width(target, h, previous, basis, settings)
            if levels:  # a wider class contains the narrower one: keep the levels monotone
                risk = min(risk, levels[-1])
            levels.append(risk)
            solutions.append({"kinks": knots, "signs": signs})
            previous = np.array(knots)
    return _result(target, levels, solutions, basis, settings)


def _result(target: Target, levels: list, solutions: list, basis: str, settings: dict) -> dict:
    return {
        "levels": levels,
        "solutions": solutions,
        "basis": basis,
        "full_search_up_to": len(levels) - 1,
        "settings": {**settings, "version": SOLVER_VERSION},
        "target": {
            "name": target.name,
            "formula": target.formula,
            "interval": [target.a, target.b],
        },
    }


def _fingerprint(target: Target) -> str:
    """A target's identity for the cache: its name, formula, interval and sampled values."""
    grid = torch.linspace(target.a, target.b, 257, dtype=torch.float64)
    values = target.fn(grid).numpy().round(12).tobytes()
    head = f"{target.name}|{target.formula}|{target.a}|{target.b}|{target.breakpoints}".encode()
    return hashlib.sha256(head + values).hexdigest()[:16]


def _cached_width(target: Target, h: int, basis: str, settings: dict) -> dict:
    """One width's full-search optimum {"risk", "kinks", "signs"}, cached on its own: a
    problem of width H then costs only the widths no earlier problem solved, and width h
    reads width h-1 (its search's starting points) from the cache too."""
    tag = {"t": _fingerprint(target), "h": h, "basis": basis, "s": settings, "v": SOLVER_VERSION}

    def compute() -> dict:
        previous = None
        if h > 0:
            previous = np.array(_cached_width(target, h - 1, basis, settings)["kinks"])
        with _one_thread():
            risk, knots, signs = _solve_width(target, h, previous, basis, settings)
        return {"risk": risk, "kinks": knots, "signs": signs}

    return cached_json(tag, compute, prefix="width-")


def optimal_levels(
    target: Target, width: int, basis: str = "relu", settings: dict | None = None
) -> dict:
    """R*_0..R*_width by the full search, each width read from the on-disk cache or solved
    and cached with its settings (same values as ``solve``). Widths beyond the full search
    are refused (ValueError): their optima are best-known bounds (best_known_level)."""
    settings = _settings(settings)
    _check_full_search(width, settings)
    levels, solutions = [], []
    for h in range(width + 1):
        one = _cached_width(target, h, basis, settings)
        levels.append(min(one["risk"], levels[-1]) if levels else one["risk"])
        solutions.append({"kinks": one["kinks"], "signs": one["signs"]})
    return _result(target, levels, solutions, basis, settings)


def equidistributed(target: Target, knots: int, grid: int = 4097) -> np.ndarray:
    """Knots at equal shares of the integral of |f''|^(2/5): the asymptotically optimal knot
    density of the L2 best piecewise-linear approximation (de Boor, A Practical Guide to
    Splines, ch. III; the error per piece scales as d^5 f''^2, equal shares balance it).
    f'' by central differences on a grid; a floor of 1e-3 max|f''| keeps a share of knots
    where f is straight."""
    x = torch.linspace(target.a, target.b, grid, dtype=torch.float64)
    f = target.fn(x).numpy()
    step = (target.b - target.a) / (grid - 1)
    curv = np.abs(np.gradient(np.gradient(f, step), step))
    density = (curv + 1e-3 * curv.max() + 1e-300) ** 0.4
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    shares = mass[-1] * np.arange(1, knots + 1) / (knots + 1)
    return np.interp(shares, mass, x.numpy())


def cpwl_fit(
    target: Target, knots: int, quad_nodes: int = 8, max_iter: int = 300
) -> tuple[float, list[float]]:
    """The least-squares risk of a continuous piecewise-linear fit with ``knots`` free interior
    knots, optimised from the better of equispaced and equidistributed knots, and the knots:
    an achieved value, so an upper bound on the free-knot spline error (and, with
    knots = H - 1, on R*_H: one neuron with its kink at a makes the affine part, H - 1 hinges
    the rest).

    In the hat-function basis at nodes z = (a, t, b) the Gram (mass) matrix is tridiagonal,
    M_ii = (d_{i-1} + d_i)/3, M_i,i+1 = d_i/6 with d_i = z_{i+1} - z_i, so one evaluation costs
    O(knots) (scipy.linalg.solve_banded). The gradient is the variable-projection one: with
    the nodal values c fixed, moving z_j changes the fit by -s'(x) hat_j(x), so
    dR/dz_j = -(2/(b-a)) integral of e s' hat_j (e = fit - f). L-BFGS-B refines all knots."""
    from scipy.linalg import solve_banded
    from scipy.optimize import minimize

    a, b = target.a, target.b
    fixed = np.array([a, b, *target.breakpoints], dtype=np.float64)
    xi, wi = np.polynomial.legendre.leggauss(quad_nodes)

    def fit(t: np.ndarray, with_grad: bool):
        z = np.concatenate([[a], np.sort(t), [b]])
        d = np.maximum(np.diff(z), 1e-15 * (b - a))  # coincident knots: no division by zero
        edges = np.unique(np.concatenate([z, fixed]))
        half, mid = 0.5 * np.diff(edges), 0.5 * (edges[1:] + edges[:-1])
        x = (mid[:, None] + half[:, None] * xi).ravel()
        w = (half[:, None] * wi).ravel()
        piece = np.clip(np.searchsorted(z, x, side="right") - 1, 0, len(d) - 1)
        right = (x - z[piece]) / d[piece]  # hat of node piece+1; 1 - right: hat of node piece
        f = target.fn(torch.from_numpy(x)).numpy()
        n = len(z)
        rhs = np.bincount(piece, w * f * (1 - right), n) + np.bincount(piece + 1, w * f * right, n)
        bands = np.zeros((3, n))
        bands[0, 1:] = d / 6
        bands[1, :-1] += d / 3
        bands[1, 1:] += d / 3
        bands[2, :-1] = d / 6
        c = solve_banded((1, 1), bands, rhs)
        err = c[piece] * (1 - right) + c[piece + 1] * right - f
        risk = float(w @ (err * err)) / (b - a)
        if not with_grad:
            return risk
        slope = np.diff(c) / d
        g = w * err * slope[piece]
        grad_z = np.bincount(piece, g * (1 - right), n) + np.bincount(piece + 1, g * right, n)
        grad_sorted = -(2.0 / (b - a)) * grad_z[1:-1]
        grad = np.empty_like(grad_sorted)
        grad[np.argsort(t, kind="stable")] = grad_sorted
        return risk, grad

    if knots == 0:
        return fit(np.zeros(0), False), []
    equispaced = a + (b - a) * np.arange(1, knots + 1) / (knots + 1)
    start = min((equispaced, equidistributed(target, knots)), key=lambda t: fit(t, False))
    scale = fit(start, False) or 1.0  # tolerances relative to the starting risk

    def objective(t: np.ndarray) -> tuple[float, np.ndarray]:
        risk, grad = fit(t, True)
        return risk / scale, grad / scale

    with _one_thread():
        opt = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(a, b)] * knots,
            options={"ftol": 1e-13, "gtol": 1e-10, "maxiter": max_iter},
        )
    risk, t = min((fit(start, False), start), (fit(opt.x, False), opt.x), key=lambda p: p[0])
    return risk, np.sort(t).tolist()


def best_known_level(target: Target, width: int, settings: dict | None = None) -> dict:
    """A best-known upper bound on R*_width beyond the full search, cached:
    {"risk", "detail", "kinks"}. The smaller of the CPWL fit with width - 1 free knots
    (cpwl_fit) and the full search's widest optimum (a narrower net is a wider one with dead
    neurons); both are achieved, so runs may beat the value (a negative gap)."""
    settings = _settings(settings)
    check_width(width)
    full = settings["full_search_width"]
    tag = {"t": _fingerprint(target), "bound": width, "s": settings, "v": SOLVER_VERSION}

    def compute() -> dict:
        risk, knots = cpwl_fit(target, width - 1, settings["quad_nodes"])
        narrower = optimal_levels(target, min(width, full), settings=settings)["levels"][-1]
        how = (
            f"continuous piecewise-linear least-squares fit with {width - 1} free knots "
            "(equispaced or equidistributed start, L-BFGS-B with the variable-projection "
            f"gradient), realized by a width-{width} network"
        )
        if narrower < risk:
            risk, knots = narrower, None
            how = f"the full search's width-{full} optimum (reference solver)"
        return {"risk": risk, "detail": f"upper bound: {how}", "kinks": knots}

    return cached_json(tag, compute, prefix="bound-")
