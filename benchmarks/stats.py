"""Paired statistics. Seeds are shared by index across optimizers (same index, same
initialization and data stream), so two cells on one problem are paired samples."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest, wilcoxon


def mcnemar(success_a: np.ndarray, success_b: np.ndarray) -> dict:
    """Exact McNemar test (McNemar 1947) on paired successes: a two-sided binomial test on the
    discordant pairs. Returns counts and the p-value (1.0 when there are no discordant pairs)."""
    a = np.asarray(success_a, dtype=bool)
    b = np.asarray(success_b, dtype=bool)
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    n = only_a + only_b
    p = binomtest(only_a, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p)}


def paired_wilcoxon(gap_a: np.ndarray, gap_b: np.ndarray) -> dict:
    """Wilcoxon signed-rank test (two-sided) on paired final gaps; pairs where either run
    diverged are dropped. The median difference is b - a."""
    a = np.asarray(gap_a, dtype=float)
    b = np.asarray(gap_b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff = b - a
    if diff.size == 0 or np.all(diff == 0):
        return {"n": int(diff.size), "median_diff": 0.0 if diff.size else None, "p_value": 1.0}
    res = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return {
        "n": int(diff.size),
        "median_diff": float(np.median(diff)),
        "p_value": float(res.pvalue),
    }


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (Holm 1979), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def finite_or_none(x: float) -> float | None:
    return x if x is not None and math.isfinite(x) else None
