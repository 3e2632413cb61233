"""The CI regression gate: is a new run significantly worse than a baseline run?

Cells are matched by id (problem, optimizer, hyperparameters, seeds, steps), so the same seed
indices appear on both sides and the tests are paired. A cell fails when
  * its success rate dropped by more than ``min_drop`` AND a one-sided exact McNemar test says
    the drop is significant at ``alpha``; or
  * its median gap grew by more than a factor ``gap_factor`` (plus ``gap_floor``, so gaps at
    rounding level never trip it) AND a one-sided Wilcoxon signed-rank test is significant.
Both conditions are needed: significance alone flags tiny effects on large runs, a threshold
alone flags noise on small ones. Wall-clock regressions are not judged here (see
benchmarks/bench_*.py and pytest-benchmark's --benchmark-compare-fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, wilcoxon


@dataclass(frozen=True)
class GateSettings:
    alpha: float = 0.01
    min_drop: float = 0.05
    gap_factor: float = 2.0
    gap_floor: float = 1e-9


def _gaps(cell: dict) -> dict[int, float]:
    r = cell["records"]
    return {s: (np.nan if g is None else g) for s, g in zip(r["seed"], r["gap"], strict=True)}


def _successes(cell: dict) -> dict[int, bool]:
    r = cell["records"]
    return {s: f == "global" for s, f in zip(r["seed"], r["fate"], strict=True)}


def check_cell(base: dict, new: dict, settings: GateSettings) -> list[str]:
    """Reasons this cell regressed (empty when it passes)."""
    reasons = []
    sb, sn = _successes(base), _successes(new)
    seeds = sorted(set(sb) & set(sn))
    worse = sum(sb[s] and not sn[s] for s in seeds)
    better = sum(sn[s] and not sb[s] for s in seeds)
    drop = (worse - better) / max(len(seeds), 1)
    if drop > settings.min_drop and worse + better:
        p = binomtest(worse, worse + better, 0.5, alternative="greater").pvalue
        if p < settings.alpha:
            reasons.append(
                f"success rate fell {drop:.1%} ({sum(sb[s] for s in seeds)} -> "
                f"{sum(sn[s] for s in seeds)} of {len(seeds)} seeds, McNemar p={p:.2g})"
            )
    gb, gn = _gaps(base), _gaps(new)
    both = [s for s in seeds if np.isfinite(gb[s]) and np.isfinite(gn[s])]
    diverged_new = sum(np.isfinite(gb[s]) and not np.isfinite(gn[s]) for s in seeds)
    if diverged_new > settings.min_drop * max(len(seeds), 1):
        reasons.append(f"{diverged_new} seeds newly diverged")
    if both:
        a = np.array([gb[s] for s in both])
        b = np.array([gn[s] for s in both])
        med_a, med_b = float(np.median(a)), float(np.median(b))
        if med_b > settings.gap_factor * med_a + settings.gap_floor and np.any(a != b):
            p = wilcoxon(b, a, alternative="greater").pvalue
            if p < settings.alpha:
                reasons.append(f"median gap rose {med_a:.3g} -> {med_b:.3g} (Wilcoxon p={p:.2g})")
    return reasons


def check(baseline: dict, new: dict, settings: GateSettings | None = None) -> list[str]:
    """One line per failing or missing cell; an empty list means the gate passes."""
    settings = settings or GateSettings()
    new_cells = {c["id"]: c for c in new["cells"]}
    lines = []
    for base in baseline["cells"]:
        cell = new_cells.get(base["id"])
        if cell is None:
            lines.append(f"MISSING {base['id']}: not in the new results (rerun the suite)")
            continue
        for reason in check_cell(base, cell, settings):
            lines.append(f"REGRESSION {base['id']}: {reason}")
    for err in new.get("errors", []):
        lines.append(f"FAILED {err['id']}: {err['error']}")
    return lines
