"""Target functions f on an interval [a, b] for the scalar-input problems.

Each target knows its own breakpoints (where f is not smooth) and whether it is a polynomial of
low degree on each piece, so integrals of (N - f)^2 can be done exactly by Gauss–Legendre
quadrature piece by piece (docs/problems.md section 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Target:
    name: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    a: float = 0.0
    b: float = 1.0
    breakpoints: tuple[float, ...] = ()
    # Degree of f on each piece, or None when f is not piecewise polynomial (then quadrature
    # with many nodes is accurate to rounding but not exact).
    degree: int | None = 2
    # R*_h in closed form where one is derived (docs/problems.md section 1); tests check it
    # against the reference solver, and it stands in for the solver beyond FULL_SEARCH_WIDTH.
    closed_form: Callable[[int], float] | None = None
    # the free-knot linear-spline error with K knots (the cpwl-K levels) in closed form, where
    # derived; tests check it against the reference solver's spline basis
    spline_closed_form: Callable[[int], float] | None = None
    # f is a ReLU network of this many neurons: a student at least this wide reaches R* = 0.
    neurons: int | None = None
    # Known non-global critical levels of every width-H network on f, as (label, risk).
    levels: tuple[tuple[str, float], ...] = ()


def affine(alpha: float = 1.0, beta: float = 0.0, a: float = 0.0, b: float = 1.0) -> Target:
    """f(x) = alpha x + beta (Cheridito, Jentzen & Rossmannek 2022, seed 002): one neuron
    represents it; the constant network c = mean(f), risk alpha^2 (b-a)^2 / 12, is its only
    non-global critical level (docs/problems.md section 1)."""
    return Target(
        "affine",
        f"{alpha:g} x + {beta:g}",
        lambda x: alpha * x + beta,
        a,
        b,
        (),
        degree=1,
        neurons=1,
        levels=(("constant", alpha**2 * (b - a) ** 2 / 12),),
    )


def square() -> Target:
    """x^2 on [0, 1]: R*_h = 4 / (45 (2h+1)^4), kinks at (2j-1)/(2h+1); the best continuous
    piecewise-linear fit with K free knots has equispaced knots and error 1 / (180 (K+1)^4):
    the interpolant minus h^2/6 leaves (x - x_i)(x_{i+1} - x) - h^2/6 on each piece of length
    h = 1/(K+1), orthogonal to every hat function, with mean square h^4/180 (derived)."""
    return Target(
        "x2",
        "x^2",
        lambda x: x * x,
        closed_form=lambda h: 4.0 / (45.0 * (2 * h + 1) ** 4),
        spline_closed_form=lambda k: 1.0 / (180.0 * (k + 1) ** 4),
    )


def square_plus_linear() -> Target:
    return Target("x2+2x", "x^2 + 2x", lambda x: x * x + 2 * x)


def sine3() -> Target:
    return Target("sin3x", "sin(3x)", lambda x: torch.sin(3 * x), degree=None)


def zigzag(kinks: int, a: float = 0.0, b: float = 1.0, height: float = 1.0) -> Target:
    """A realizable teacher: a ReLU network of ``kinks`` neurons whose kinks are evenly spaced.

    f(x) = sum_j a_j relu(x - t_j), t_j = a + j (b-a)/(kinks+1), with slopes alternating so f
    zigzags between 0 and ``height``. A student of width >= kinks represents f exactly, so the
    optimal risk is exactly 0, while narrower students have distinct optimal levels R*_h > 0.
    """
    if kinks < 1:
        raise ValueError("zigzag needs kinks >= 1")
    step = (b - a) / (kinks + 1)
    knots = tuple(a + (j + 1) * step for j in range(kinks))
    slope = height / step
    # slope changes: 0 -> +s at t_1, then +s -> -s -> +s ... (change of magnitude 2s).
    coeffs = [slope] + [(-2 * slope) * (-1) ** j for j in range(kinks - 1)]

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        for t, c in zip(knots, coeffs, strict=True):
            out = out + c * torch.relu(x - t)
        return out

    return Target(
        f"zigzag{kinks}", f"zigzag with {kinks} kinks", fn, a, b, knots, degree=1, neurons=kinks
    )


def fourth_root() -> Target:
    """x^(1/4) on [0, 1], setting 1 of Ibragimov, Jentzen & Riekert (2022, arXiv:2212.13111,
    Section 4). Its derivative is unbounded at 0, so no piece is polynomial: the quadrature is
    accurate, not exact (8 nodes per piece; fixed break points from 1e-8 to 1e-1 shorten the
    pieces where f bends most)."""
    return Target(
        "root4",
        "x^(1/4)",
        lambda x: x.clamp_min(0).pow(0.25),
        breakpoints=(1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1),
        degree=None,
    )


def quartic_sine() -> Target:
    """x^4 sin(x) on [0, 1], setting 2 of Ibragimov, Jentzen & Riekert (2022, Section 4)."""
    return Target("x4sin", "x^4 sin(x)", lambda x: x.pow(4) * torch.sin(x), degree=None)


TARGETS: dict[str, Callable[[], Target]] = {
    "x2": square,
    "x2+2x": square_plus_linear,
    "sin3x": sine3,
    "root4": fourth_root,
    "x4sin": quartic_sine,
}
