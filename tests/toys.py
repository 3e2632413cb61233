"""Tiny problems with known answers, shared by the engine tests (tests/conftest.py puts this
folder on sys.path)."""

import dataclasses

import torch

from problems.base import Problem


def quadratic_problem() -> Problem:
    """Risk k_s x^2 / 2 with curvature k_s = 0.5 + 0.1 s: SGD with lr 1 diverges iff k_s > 2."""

    def init(seeds, dtype, device):
        return {
            "x": torch.ones(len(seeds), 1, dtype=dtype, device=device),
            "k": (0.5 + 0.1 * seeds.to(dtype))[:, None].clone(),
        }

    def risk(p):
        return 0.5 * p["k"].detach()[:, 0] * p["x"][:, 0] ** 2

    return Problem(
        "quadratic",
        "test",
        "per-seed quadratic",
        "",
        init,
        risk,
        lambda p, s, t: risk(p),
        0.0,
        "exact",
        "",
        1e-12,
    )


def with_closed_form(problem: Problem) -> Problem:
    """The quadratic with its gradient k x given in closed form (the engine's fast path)."""

    def risk_grad(p):
        k = p["k"][:, 0]
        return 0.5 * k * p["x"][:, 0] ** 2, {"x": p["k"] * p["x"], "k": torch.zeros_like(p["k"])}

    return dataclasses.replace(problem, risk_grad=risk_grad)


def cycle_problem() -> Problem:
    """Risk log cosh(x) + 0.1 sin(x), x starting at 0.5: gradient descent with lr 3 settles on a
    stable period-2 orbit (x = 1.2046 <-> -1.4080, risks 0.6909 and 0.6743, gradient 0.871 at
    both points) instead of the minimum near x = -0.1. Every other step the risk repeats
    exactly, so a plateau test over an even window alone would call the run converged."""

    def init(seeds, dtype, device):
        return {"x": torch.full((len(seeds), 1), 0.5, dtype=dtype, device=device)}

    def risk(p):
        x = p["x"][:, 0]
        return torch.log(torch.cosh(x)) + 0.1 * torch.sin(x)

    return Problem(
        "cycle",
        "test",
        "a period-2 orbit of GD",
        "",
        init,
        risk,
        lambda p, s, t: risk(p),
        0.0,
        "exact",
        "",
        1e-12,
    )
