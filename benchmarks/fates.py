"""The fate of each run (problem-specs.md section 4).

global: gap <= tol. level: final risk within a known non-global level's window. critical:
gradient norm <= grad_tol with a large gap (another critical point). unconverged: none of
these. diverged: non-finite risk, gradient or parameters. saddle: a critical run whose Hessian
has clearly negative curvature (benchmarks/hessian.py); the other critical runs are labelled
"min" or "degenerate".
"""

from __future__ import annotations

import numpy as np

FATES = ("global", "level", "critical", "saddle", "unconverged", "diverged")


def level_windows(levels: list[tuple[str, float]], optimum: float, tol: float) -> list[float]:
    """Half-width of each level's window: a quarter of the distance to its nearest neighbour
    level (the optimum counts as one), never less than tol, so windows never overlap."""
    values = [v for _, v in levels] + [optimum]
    out = []
    for i, (_, v) in enumerate(levels):
        gaps = [abs(v - w) for j, w in enumerate(values) if j != i]
        out.append(max(0.25 * min(gaps), tol))
    return out


def classify(
    final_risk: np.ndarray,
    grad_norm: np.ndarray,
    optimum: float,
    tol: float,
    levels: list[tuple[str, float]],
    grad_tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed fate and level label ('' unless the fate is 'level')."""
    n = len(final_risk)
    fate = np.full(n, "unconverged", dtype=object)
    label = np.full(n, "", dtype=object)
    finite = np.isfinite(final_risk) & np.isfinite(grad_norm)
    gap = np.where(finite, final_risk - optimum, np.inf)
    fate[finite & (grad_norm <= grad_tol)] = "critical"
    for (name, value), width in zip(levels, level_windows(levels, optimum, tol), strict=True):
        at = finite & (np.abs(final_risk - value) <= width)
        fate[at] = "level"
        label[at] = name
    fate[finite & (gap <= tol)] = "global"
    label[fate == "global"] = ""
    fate[~finite] = "diverged"
    return fate, label
