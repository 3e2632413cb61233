import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binomtest, norm, wilcoxon

from benchmarks.metrics import (
    budget_warning,
    expected_running_time,
    summarize,
    unconverged_motion,
    wilson_interval,
)
from benchmarks.stats import holm, mcnemar, paired_wilcoxon


@pytest.mark.parametrize(
    "k,n,low,high",
    [
        (0, 10, 0.0, 0.27753),
        (5, 10, 0.23659, 0.76341),
        (10, 10, 0.72247, 1.0),
    ],
)
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize("k,n", [(81, 263), (3, 1000), (999, 1000)])
def test_wilson_interval_solves_the_score_equation(k, n):
    """The bounds are the roots of |k/n - p| = z sqrt(p (1 - p) / n)."""
    z = norm.ppf(0.975)
    phat = k / n

    def score(p):
        return abs(phat - p) - z * math.sqrt(p * (1 - p) / n)

    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(brentq(score, 1e-12, phat), abs=1e-10)
    assert hi == pytest.approx(brentq(score, phat, 1 - 1e-12), abs=1e-10)


def test_ert_is_total_steps_over_successes():
    hits = np.array([10, -1, 30, -1])
    assert expected_running_time(hits, 100) == pytest.approx((10 + 30 + 200) / 2)
    assert math.isinf(expected_running_time(np.array([-1, -1]), 100))


def test_mcnemar_is_binomial_on_discordant_pairs():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 1, 1, 0, 1, 0, 0], dtype=bool)
    res = mcnemar(a, b)
    assert (res["only_a"], res["only_b"]) == (5, 1)
    assert res["p_value"] == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert mcnemar(a, a)["p_value"] == 1.0


def test_paired_wilcoxon_matches_scipy_and_drops_diverged():
    rng = np.random.default_rng(0)
    a = rng.exponential(size=40)
    b = a * 1.5 + rng.normal(scale=0.01, size=40)
    b[3] = np.nan
    res = paired_wilcoxon(a, b)
    keep = np.isfinite(b)
    assert res["n"] == 39
    assert res["p_value"] == pytest.approx(wilcoxon(a[keep], b[keep]).pvalue)
    assert res["median_diff"] > 0


def test_holm_known_values():
    # Holm (1979): sorted p 0.01, 0.02, 0.03, 0.04 with m=4 -> 0.04, 0.06, 0.06, 0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_summarize_counts():
    rec = {
        "final_risk": np.array([0.0, 1.0, np.nan]),
        "hit_step": np.array([5, -1, -1]),
        "dead_neurons": np.array([0, 2, 1]),
    }
    fates = np.array(["global", "level", "diverged"], dtype=object)
    labels = np.array(["", "R*_0", ""], dtype=object)
    m = summarize(rec, fates, labels, optimum=0.0, steps=10, wall_s=2.0)
    assert m["success_rate"] == pytest.approx(1 / 3)
    assert m["fates"] == {"global": 1, "level": 1, "diverged": 1}
    assert m["levels"] == {"R*_0": 1}
    assert m["ert_steps"] == pytest.approx(25.0)
    assert m["median_gap"] == pytest.approx(0.5)
    assert m["seed_steps_per_s"] == pytest.approx(15.0)
    assert m["dead_neurons_mean"] == pytest.approx(1.0)


MARKS = [0, 10, 100, 1000, 2000, 2500, 3000, 4000]
MOTION = [
    # second-half checkpoints (steps 2000 to 4000), fate, expected motion
    ([0.50, 0.40, 0.30, 0.20], "unconverged", "descending"),
    ([0.50, 0.40, 0.41, 0.40], "unconverged", "hovering"),  # a 2-cycle seen at checkpoints
    ([0.50, 0.40, 0.40, 0.40], "unconverged", "hovering"),  # stuck without settling
    ([0.50, 0.40, 0.30, 0.20], "level", None),  # converged runs are not counted
]


def test_unconverged_motion_tells_descending_from_hovering():
    curve = np.array([[1.0, 0.9, 0.8, 0.7, *tail] for tail, _, _ in MOTION])
    fates = np.array([f for _, f, _ in MOTION])
    motion = unconverged_motion(curve, MARKS, fates)
    assert motion == {"descending": 1, "hovering": 2}
    line = budget_warning(0.75, 4000, motion)
    assert "1 still descending (rerun with --steps 8000" in line and "2 hovering" in line
    assert budget_warning(0.01, 4000, motion) is None
    assert unconverged_motion(curve, MARKS, np.array(["level"] * 4)) == {}
