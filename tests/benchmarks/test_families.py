import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from benchmarks import families
from benchmarks.published import MEASURED_DOMINANT_VALUE
from problems.gaussian import population_risk_and_grad

DATA = Path(__file__).parent / "data"


def load_minima(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Spurious GD end points written by data/make_gauss_minima.py."""
    data = json.loads((DATA / f"gauss_minima_k{k}.json").read_text())
    points = np.array([p["w"] for p in data["points"]])
    return points, np.array([p["risk"] for p in data["points"]])


@pytest.fixture(scope="module")
def minima7():
    return load_minima(7)


def shuffled(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P W Q^T for random permutations P (neurons) and Q (coordinates)."""
    return w[rng.permutation(w.shape[0])][:, rng.permutation(w.shape[1])]


def brute_force_distance(a: np.ndarray, b: np.ndarray) -> float:
    """min over column orders (all k!) and row orders (assignment) of ||a[r][:, c] - b||_F."""
    best = np.inf
    for cols in itertools.permutations(range(a.shape[1])):
        cost = ((b[:, None, :] - a[None, :, list(cols)]) ** 2).sum(axis=2)
        r, c = linear_sum_assignment(cost)
        best = min(best, float(cost[r, c].sum()))
    return float(np.sqrt(best))


@pytest.mark.parametrize("k", [7, 8])
def test_fixture_points_are_critical_spurious_points(k):
    points, risks = load_minima(k)
    w = torch.as_tensor(points)
    risk, grad = population_risk_and_grad(w, k)
    np.testing.assert_allclose(risk.numpy(), risks, rtol=1e-12)
    assert (risks >= 1e-3).all() and float(grad.norm(dim=(1, 2)).max()) < 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_permuted_copies_of_a_minimum_are_one_family(minima7, seed):
    rng = np.random.default_rng(seed)
    base = minima7[0][seed % len(minima7[0])]
    copies = np.stack([base] + [shuffled(base, rng) for _ in range(5)])
    grouping = families.group(copies)
    assert [f.count for f in grouping.families] == [6]
    m = families.match(base, copies[3])
    assert m.status == "same"
    np.testing.assert_allclose(base[m.rows][:, m.cols], copies[3], atol=1e-12)


@pytest.mark.parametrize("k,eig_low,eig_high", [(7, 0.0140, 0.0141), (8, 0.0213, 0.0214)])
def test_gd_minima_form_one_strict_minimum_family_at_the_dominant_value(k, eig_low, eig_high):
    points, risks = load_minima(k)
    grouping = families.group(points, risks, tol=1e-6)
    [row] = families.describe(grouping)
    assert row["count"] == len(points) and row["verdict"] == "strict minimum"
    assert row["risk_mean"] == pytest.approx(MEASURED_DOMINANT_VALUE[k], abs=1e-6)
    assert eig_low < row["eig_min"] < eig_high  # measured: 0.014059 (k = 7), 0.021347 (k = 8)
    assert grouping.families[0].max_distance < 1e-8  # converged far below the tolerance


def test_different_minima_are_different_families(minima7):
    rng = np.random.default_rng(1)
    spurious = minima7[0][0]
    teacher = np.eye(7)  # the global minimum, F = 0
    points = np.stack([shuffled(spurious, rng) for _ in range(3)] + [shuffled(teacher, rng)] * 2)
    grouping = families.group(points)
    assert sorted((f.count, round(f.risk_mean, 6)) for f in grouping.families) == [
        (2, 0.0),
        (3, round(MEASURED_DOMINANT_VALUE[7], 6)),
    ]
    assert families.match(spurious, teacher).status == "different"


@pytest.mark.parametrize("scale,same", [(0.5, True), (0.99, True), (1.01, False), (2.0, False)])
def test_noise_below_tol_groups_and_above_does_not(minima7, scale, same):
    tol = 1e-4
    rng = np.random.default_rng(3)
    base = minima7[0][0]
    noise = rng.normal(size=base.shape)
    noisy = shuffled(base + scale * tol * noise / np.linalg.norm(noise), rng)
    assert (families.match(base, noisy, tol).status == "same") is same
    assert len(families.group(np.stack([base, noisy]), tol=tol).families) == (1 if same else 2)


def safran_shamir_pattern(k: int) -> np.ndarray:
    """The shape of Safran & Shamir's Example 1: k - 1 neurons near their own axis, one
    shared axis, one stray neuron (values rounded from our k = 7 minimum)."""
    w = np.full((k, k), -0.0351)
    np.fill_diagonal(w, 0.9969)
    w[:, -1], w[-1, :], w[-1, -1] = 0.2617, 0.186, -0.6327
    return w


@pytest.mark.parametrize("kind", ["random", "symmetric"])
def test_k20_hundred_points_group_without_backtracking(kind):
    k, rng = 20, np.random.default_rng(7)
    if kind == "random":
        bases = rng.normal(size=(5, k, k))
    else:  # large stabilisers: many equivalent column choices at every step
        bases = np.stack([safran_shamir_pattern(k) * (1 + 0.1 * b) for b in range(5)])
    labels = np.arange(100) % 5
    points = np.stack([shuffled(bases[b], rng) for b in labels])
    grouping = families.group(points, np.zeros(100))
    assert sorted(f.count for f in grouping.families) == [20] * 5
    for fam in grouping.families:
        assert len(set(labels[list(fam.members)])) == 1
    # work: one search node per column plus the root in every comparison, no backtracking
    assert grouping.nodes == grouping.comparisons * (k + 1) and grouping.undecided == 0


@pytest.mark.parametrize("seed", range(6))
def test_match_is_exact_against_brute_force_on_tied_matrices(seed):
    """0/1 matrices have many equal entries and columns, the case where a first column
    choice can be wrong and the search must backtrack."""
    rng = np.random.default_rng(seed)
    backtracked = 0
    for _ in range(25):
        a = (rng.random((5, 5)) < 0.4).astype(float)
        b = shuffled(a, rng) if rng.random() < 0.5 else (rng.random((5, 5)) < 0.4).astype(float)
        m = families.match(a, b, tol=1e-9)
        assert (m.status == "same") == (brute_force_distance(a, b) <= 1e-9)
        backtracked += m.nodes > a.shape[1] + 1
    assert seed > 0 or backtracked > 0  # the cases do exercise backtracking


def test_node_limit_reports_undecided_and_keeps_points_apart(minima7):
    rng = np.random.default_rng(0)
    base = minima7[0][0]
    copy = shuffled(base, rng)
    assert families.match(base, copy, max_nodes=1).status == "undecided"
    grouping = families.group(np.stack([base, copy]), max_nodes=1)
    assert len(grouping.families) == 2 and grouping.undecided == 1


def test_invariants_are_invariant_and_lipschitz():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(8, 6))
    noise = 1e-3 * rng.normal(size=w.shape)
    for x, y in zip(families.invariants(w), families.invariants(shuffled(w, rng)), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-12)
    for x, y in zip(families.invariants(w), families.invariants(w + noise), strict=True):
        assert np.linalg.norm(x - y) <= np.linalg.norm(noise) + 1e-12


def test_confirm_minimum_verdicts(minima7):
    check = families.confirm_minimum(minima7[0][0])
    assert check.verdict == "strict minimum" and 0.01 < check.eig_min < 0.02
    assert check.eig_max > check.eig_min and check.grad_norm < 1e-9
    # the global minimum puts every neuron on a teacher axis: F is not smooth there
    degenerate = families.confirm_minimum(np.eye(7))
    assert degenerate.verdict == "degenerate" and degenerate.eig_min is None
    zero_neuron = minima7[0][0].copy()
    zero_neuron[0] = 0.0
    assert families.confirm_minimum(zero_neuron).verdict == "degenerate"
    random = np.random.default_rng(0).normal(size=(7, 7)) / np.sqrt(7)
    assert families.confirm_minimum(random).verdict == "not critical"


def test_display_form_is_in_the_family_and_reads_like_the_paper(minima7):
    base = minima7[0][0]
    shown = families.display_form(shuffled(base, np.random.default_rng(2)))
    assert families.match(base, shown).status == "same"
    diagonal = np.diag(shown)
    assert (np.diff(diagonal) <= 1e-12).all()
    assert diagonal[-1] < 0  # the stray neuron on the shared axis, as in Example 1


def test_describe_reports_each_family_with_its_hessian_check(minima7):
    rng = np.random.default_rng(4)
    points = np.stack([minima7[0][0], shuffled(minima7[0][0], rng), shuffled(np.eye(7), rng)])
    rows = families.describe(families.group(points))
    assert [(r["count"], r["spurious"], r["verdict"]) for r in rows] == [
        (2, True, "strict minimum"),
        (1, False, "degenerate"),
    ]
    assert 0 < rows[0]["eig_min"] < rows[0]["eig_max"] and rows[0]["members"] == [0, 1]


@pytest.mark.parametrize("n,k", [(8, 7), (13, 12)])
def test_student_wider_than_teacher(n, k):
    """n = k + 1, the paper's mildly over-parameterised case: rows and columns differ."""
    rng = np.random.default_rng(n)
    w = rng.normal(size=(n, k)) / np.sqrt(k)
    grouping = families.group(np.stack([w, shuffled(w, rng), shuffled(w + 0.1, rng)]))
    assert sorted(f.count for f in grouping.families) == [1, 2]
    check = families.confirm_minimum(w)
    assert check.verdict == "not critical" and np.isfinite(check.eig_min)
    assert check.risk == pytest.approx(float(families.point_risk(torch.as_tensor(w), k)))
