"""Piecewise Gauss–Legendre quadrature on batched partitions of an interval."""

from __future__ import annotations

import numpy as np
import torch

from problems.targets import Target


def nodes_for(target: Target) -> int:
    """Nodes per piece that make the integral of (affine - f)^2 exact.

    n Gauss–Legendre nodes integrate degree 2n-1 exactly; (N - f)^2 has degree 2 max(1, deg f).
    Non-polynomial targets get 8 nodes (error below float64 rounding on the short pieces here).
    """
    if target.degree is None:
        return 8
    return max(1, target.degree) + 1


# (node, weight) pairs of n-point Gauss–Legendre on [-1, 1] as Python floats, tabulated at
# import so a torch.compile'd caller reads constants instead of calling numpy (a graph break)
GAUSS_LEGENDRE: dict[int, tuple[tuple[float, float], ...]] = {
    n: tuple(zip(*(a.tolist() for a in np.polynomial.legendre.leggauss(n)), strict=True))
    for n in range(1, 17)
}


def piecewise_nodes(points: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights for sorted break points ``points`` [..., M+1], n nodes per piece.

    Returns x and w of shape [..., M*n] with sum(w * g(x)) = integral of g when g is a
    polynomial of degree <= 2n-1 on every piece.
    """
    xi, wi = np.polynomial.legendre.leggauss(n)
    xi = torch.as_tensor(xi, dtype=points.dtype, device=points.device)
    wi = torch.as_tensor(wi, dtype=points.dtype, device=points.device)
    left, right = points[..., :-1], points[..., 1:]
    half = 0.5 * (right - left)
    mid = 0.5 * (right + left)
    x = mid[..., None] + half[..., None] * xi
    w = half[..., None] * wi
    return x.flatten(-2), w.flatten(-2)
