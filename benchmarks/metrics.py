"""Per-cell statistics: success rate with a Wilson interval, gap quantiles, fates, ERT."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from scipy.stats import norm

from benchmarks.fates import level_of

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927): unlike the normal
    approximation it stays inside [0, 1] and behaves at 0 and n successes."""
    if n == 0:
        return (0.0, 1.0)
    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def expected_running_time(
    hit_step: np.ndarray, steps: int, spent: np.ndarray | None = None
) -> float:
    """ERT (Hansen et al., COCO): total steps spent over all seeds / number of successes.

    A successful seed costs its hitting step, a failed one the steps it ran (``spent``: its
    stop step; the whole budget when not given); inf if none hit.
    """
    hits = hit_step >= 0
    if not hits.any():
        return math.inf
    failed = np.full(len(hit_step), steps) if spent is None else np.asarray(spent)
    total = hit_step[hits].sum() + failed[~hits].sum()
    return float(total / hits.sum())


BUDGET_LIMIT = 0.05  # unconverged share above which a cell's fates are not end points


def budget_warning(
    unconverged_share: float, steps: int, motion: dict[str, int] | None = None
) -> str | None:
    """One line of advice when too many runs had not converged when the budget ran out; with
    the runs' motion (unconverged_motion) it says which remedy fits which runs."""
    if unconverged_share <= BUDGET_LIMIT:
        return None
    head = f"budget too small: {unconverged_share:.0%} of runs unconverged after {steps} steps"
    more = f"--steps {2 * steps} (with --stop grad_tol=problem the budget is only a maximum)"
    if not motion:
        return f"{head}; rerun with {more}, or a decaying --schedule where an optimizer hovers"
    down, hover = motion.get("descending", 0), motion.get("hovering", 0)
    return (
        f"{head}: {down} still descending (rerun with {more}), {hover} hovering (its risk did not "
        "fall at every checkpoint: a decaying --schedule lets it settle)"
    )


def unconverged_motion(curve: np.ndarray, marks: list[int], fates: np.ndarray) -> dict[str, int]:
    """How the unconverged runs moved over the second half of the budget, read from their
    exact-risk checkpoints (curve [S, len(marks)]): 'descending' when the risk fell at every
    checkpoint (more steps help, if slowly), 'hovering' when it rose or stood still at least
    once (the step is too large to settle, e.g. a 2-cycle across a kink: a decaying schedule
    helps)."""
    unconverged = np.asarray(fates) == "unconverged"
    if not unconverged.any() or len(marks) < 2:
        return {}
    half = max(i for i, m in enumerate(marks) if m <= marks[-1] / 2)
    tail = curve[unconverged][:, half:]
    falling = (np.diff(tail, axis=1) < 0).all(axis=1)
    return {"descending": int(falling.sum()), "hovering": int((~falling).sum())}


def fates_changing(
    curve: np.ndarray, marks: list[int], optimum: float, tol: float, levels: list
) -> float:
    """Share of seeds whose risk-based place (global, a level's window, elsewhere) at the last
    checkpoint of the first half of the budget differs from their place at the end: how much
    the picture still moved over the second half of the run."""
    if curve.shape[0] == 0 or len(marks) < 2:
        return 0.0
    half = max(i for i, m in enumerate(marks) if m <= marks[-1] / 2)

    def place(risk: np.ndarray) -> np.ndarray:
        where = level_of(risk, levels, optimum, tol)
        where[np.isfinite(risk) & (risk - optimum <= tol)] = "global"
        where[~np.isfinite(risk)] = "nan"
        return where

    return float(np.mean(place(curve[:, half]) != place(curve[:, -1])))


def distinct_values(values: np.ndarray, rtol: float = 1e-4, top: int = 8) -> list[list]:
    """Cluster final risks that agree to ``rtol`` (relative): [[mean value, count], ...],
    most frequent first. Spurious minima with equal risk are one landscape fact (Safran &
    Shamir list them), so the report shows the distinct values rather than a histogram."""
    v = np.sort(values[np.isfinite(values)])
    if v.size == 0:
        return []
    groups, start = [], 0
    for i in range(1, v.size + 1):
        if i == v.size or v[i] - v[start] > rtol * max(abs(v[start]), 1e-300):
            groups.append([float(v[start:i].mean()), i - start])
            start = i
    groups.sort(key=lambda g: (-g[1], g[0]))
    return groups[:top]


def summarize(
    records: dict[str, np.ndarray],
    fates: np.ndarray,
    labels: np.ndarray,
    optimum: float,
    steps: int,
    wall_s: float,
    motion: dict[str, int] | None = None,
) -> dict:
    """JSON-ready metrics of one cell; ``motion`` is unconverged_motion of its checkpoint
    curve, which the budget warning splits its advice by."""
    n = len(fates)
    success = int((fates == "global").sum())
    gap = records["final_risk"] - optimum
    finite_gap = gap[np.isfinite(gap)]
    low, high = wilson_interval(success, n)
    quantiles = (
        {f"q{int(q * 100)}": float(np.quantile(finite_gap, q)) for q in QUANTILES}
        if finite_gap.size
        else {f"q{int(q * 100)}": None for q in QUANTILES}
    )
    spent = records.get("stop_step")
    ert = expected_running_time(records["hit_step"], steps, spent)
    seed_steps = int(np.sum(spent)) if spent is not None else n * steps
    seconds_per_step = wall_s * n / max(seed_steps, 1)
    unconverged = int((fates == "unconverged").sum())
    out = {
        "seeds": n,
        "successes": success,
        "success_rate": success / n if n else 0.0,
        "success_ci95": [low, high],
        "gap_quantiles": quantiles,
        "median_gap": quantiles["q50"],
        "fates": {f: int(c) for f, c in Counter(fates.tolist()).items()},
        "levels": {lab: int(c) for lab, c in Counter(labels[fates == "level"].tolist()).items()},
        "critical_kinds": {
            k: int(c) for k, c in Counter(labels[(fates == "critical") & (labels != "")]).items()
        },
        "ert_steps": ert,
        "ert_seconds": ert * seconds_per_step if math.isfinite(ert) else math.inf,
        "wall_s": wall_s,
        "seed_steps": seed_steps,
        "seed_steps_per_s": seed_steps / wall_s if wall_s > 0 else None,
        "unconverged_share": unconverged / n if n else 0.0,
        "budget_warning": budget_warning(unconverged / n if n else 0.0, steps, motion),
    }
    if motion is not None:
        out["unconverged_motion"] = motion
    if "nearest_level" in records:
        near = records["nearest_level"][fates == "unconverged"]
        out["unconverged_near"] = {k: int(c) for k, c in Counter(near[near != ""]).items()}
    if "stop_reason" in records:
        out["stop_reasons"] = {k: int(c) for k, c in Counter(records["stop_reason"]).items()}
        out["steps_run_mean"] = float(np.mean(spent))
    out["distinct_nonglobal"] = distinct_values(records["final_risk"][fates != "global"])
    for key in ("dead_neurons", "dead_neurons_init"):
        if key in records:
            out[f"{key}_mean"] = float(np.mean(records[key]))
    return out
