"""Spurious-minimum families of the Gaussian teacher-student problem, up to its symmetry.

Safran & Shamir (2018) report spurious minima by value; a minimum is really an orbit. The
risk F(W) = 1/2 E (sum_i relu(w_i.x) - sum_j relu(e_j.x))^2 (problems/gaussian.py) is
unchanged by any permutation P of the student neurons (rows of W [n, k]) and by any
permutation Q of the input coordinates applied to the columns (it permutes the teacher
e_1..e_k among itself), so W and P W Q^T are the same point of the landscape. ``group``
collects GD end points into families: orbits of S_n x S_k, to a tolerance.

Method (``match``): two points a, b are the same up to symmetry when some row order r and
column order c give ||a[r][:, c] - b||_F <= tol.
1. Invariants prune (``invariants``): sorted entries, singular values, sorted row and column
   norms. Each block moves by at most ||a - b||_F under a perturbation (sorting is a
   contraction in l2; Mirsky's theorem for the singular values), so a block differing by more
   than tol proves the points differ; the filter never rejects a true match.
2. Depth-first search over the column order, columns with the fewest candidates first; a
   candidate column must have the same sorted entries to tol. For a partial column order the
   squared row distances over the assigned columns, D[i', i], bound the final error from
   below by the optimal row assignment (scipy linear_sum_assignment on D), so a branch whose
   bound exceeds tol^2 is cut. At a full column order that assignment IS the best row order,
   so the search is exact: it finds a match whenever one exists within tol.
3. Symmetric points (the minima themselves have large stabilisers: k - 1 columns alike)
   make many column choices equivalent, so the first choice usually extends: on permuted
   copies of the Example-1 pattern at k = 20, and of random points, every comparison takes
   k + 1 nodes (tested). Tied 0/1 matrices do backtrack (tested against brute force). The
   search stops after ``max_nodes`` nodes and then reports "undecided" (never "same"):
   grouping then opens a new family and counts it in ``Grouping.undecided``.

Limits: the tolerance is absolute on the Frobenius norm, so end points must be converged to
well below it (GD at a spurious minimum with gradient norm g sits about g / lambda_min away);
families are built greedily against each family's first member, not by transitive closure,
so a tol comparable to the distance between distinct minima would make membership
order-dependent. No canonical form is computed (that is graph canonisation); ``display_form``
only orders a representative for reading.

Confirmation (``confirm_minimum``): gradient ~ 0 and smallest Hessian eigenvalue > 0 in
float64. The Hessian is autograd's, twice through problems.gaussian.population_risk (tested
against finite differences of the closed-form gradient in tests/problems/test_gaussian.py).
At a point with a zero-norm neuron,
two parallel neurons, or a neuron on a teacher axis the risk is not twice differentiable
there, and the verdict says "degenerate" instead of claiming a minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from benchmarks.hessian import verdict as curvature_verdict
from problems.gaussian import population_risk, population_risk_and_grad

DEFAULT_TOL = 1e-4
MAX_NODES = 20000


def invariants(w: np.ndarray) -> list[np.ndarray]:
    """Blocks unchanged by W -> P W Q^T, each 1-Lipschitz in the Frobenius norm: sorted
    entries, singular values, sorted row norms, sorted column norms."""
    w = np.asarray(w, dtype=np.float64)
    return [
        np.sort(w, axis=None),
        np.linalg.svd(w, compute_uv=False),
        np.sort(np.linalg.norm(w, axis=1)),
        np.sort(np.linalg.norm(w, axis=0)),
    ]


def invariants_close(a: list[np.ndarray], b: list[np.ndarray], tol: float) -> bool:
    """False only when the points provably differ by more than tol up to symmetry."""
    return all(np.linalg.norm(x - y) <= tol for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Match:
    """b[i, j] ~ a[rows[i], cols[j]] when status is "same"; distance is that Frobenius error."""

    status: str  # "same", "different" or "undecided" (node limit reached)
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    distance: float = math.inf
    nodes: int = 0


def match(
    a: np.ndarray,
    b: np.ndarray,
    tol: float = DEFAULT_TOL,
    max_nodes: int = MAX_NODES,
    prefiltered: bool = False,
) -> Match:
    """Find row and column orders with ||a[rows][:, cols] - b||_F <= tol (method: module
    docstring). Exact up to ``max_nodes`` search nodes. ``prefiltered``: the caller has
    already compared the invariants (group does, once per point)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return Match("different")
    if not prefiltered and not invariants_close(invariants(a), invariants(b), tol):
        return Match("different")
    n, k = a.shape
    tol2 = tol * tol
    # column j' of b can come from column j of a only if their sorted entries agree to tol
    col_cost = np.linalg.norm(
        np.sort(b, axis=0).T[:, None, :] - np.sort(a, axis=0).T[None, :, :], axis=2
    )
    row_cost = np.linalg.norm(
        np.sort(b, axis=1)[:, None, :] - np.sort(a, axis=1)[None, :, :], axis=2
    )
    # a barrier above tol^2 forbids row pairs whose sorted entries differ by more than tol
    row_barrier = np.where(row_cost <= tol, 0.0, 1.0 + tol2)
    ranked = np.argsort(col_cost, axis=1)
    counts = (col_cost <= tol).sum(axis=1)
    candidates = [ranked[j, : counts[j]] for j in range(k)]
    if any(len(c) == 0 for c in candidates):
        return Match("different")
    order = sorted(range(k), key=lambda j: len(candidates[j]))
    cols = np.full(k, -1)
    used = np.zeros(k, dtype=bool)
    nodes = 0

    def bound(dist: np.ndarray) -> tuple[float, np.ndarray]:
        """Least squared error over row orders given the columns so far, and that order."""
        cost = dist + row_barrier
        _, rows = linear_sum_assignment(cost)
        return float(cost[np.arange(n), rows].sum()), rows

    def search(depth: int, dist: np.ndarray) -> Match | None:
        nonlocal nodes
        nodes += 1
        if nodes > max_nodes:
            return Match("undecided", nodes=nodes)
        total, rows = bound(dist)
        if total > tol2:
            return None
        if depth == k:
            return Match("same", rows, cols.copy(), math.sqrt(total), nodes)
        jb = order[depth]
        for ja in candidates[jb]:
            if used[ja]:
                continue
            used[ja], cols[jb] = True, ja
            found = search(depth + 1, dist + (b[:, jb][:, None] - a[:, ja][None, :]) ** 2)
            used[ja], cols[jb] = False, -1
            if found is not None:
                return found
        return None

    found = search(0, np.zeros((n, n)))
    if found is None:
        return Match("different", nodes=nodes)
    return Match(found.status, found.rows, found.cols, found.distance, nodes)


@dataclass(frozen=True)
class Family:
    """One orbit of end points: ``members`` index the input; ``representative`` is the first
    member as given; ``risk_mean`` and ``risk_spread`` (max - min) summarise the members'
    risks; ``max_distance`` is the largest matched Frobenius distance to the representative."""

    representative: np.ndarray
    members: tuple[int, ...]
    risk_mean: float
    risk_spread: float
    max_distance: float

    @property
    def count(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Grouping:
    families: list[Family]
    undecided: int = 0  # comparisons stopped at the node limit (each kept apart)
    nodes: int = 0  # search nodes over all comparisons: the work done, for scaling checks
    comparisons: int = 0  # pairs that reached the search (passed the invariant filter)
    tol: float = DEFAULT_TOL
    notes: list[str] = field(default_factory=list)


def group(
    points: np.ndarray,
    risks: np.ndarray | None = None,
    tol: float = DEFAULT_TOL,
    max_nodes: int = MAX_NODES,
) -> Grouping:
    """Group end points [S, n, k] into families up to W -> P W Q^T (module docstring).

    Each point joins the first family (closest invariants first) whose representative it
    matches within tol, else founds a new one. Families come most common first, then by
    mean risk. ``risks`` [S] (the points' F) only feed the summaries; pass None to compute
    them with problems.gaussian (k = number of columns)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3:
        raise ValueError(f"points must be [S, n, k], got shape {points.shape}")
    if risks is None:
        risks = gauss_risks(points)
    risks = np.asarray(risks, dtype=np.float64)
    inv = [np.concatenate(invariants(w)) for w in points]
    blocks = [len(x) for x in invariants(points[0])] if len(points) else []
    cuts = np.cumsum(blocks)[:-1]
    reps: list[int] = []
    members: list[list[int]] = []
    farthest: list[float] = []
    undecided = nodes = comparisons = 0
    for s in range(len(points)):
        home = -1
        if reps:
            gaps = np.stack([inv[r] - inv[s] for r in reps])
            block_gaps = np.stack(
                [np.linalg.norm(part, axis=1) for part in np.split(gaps, cuts, axis=1)], axis=1
            )
            for f in np.argsort(block_gaps.sum(axis=1)):
                if (block_gaps[f] > tol).any():
                    continue
                comparisons += 1
                m = match(points[reps[f]], points[s], tol, max_nodes, prefiltered=True)
                nodes += m.nodes
                undecided += m.status == "undecided"
                if m.status == "same":
                    home = int(f)
                    farthest[home] = max(farthest[home], m.distance)
                    break
        if home < 0:
            reps.append(s)
            members.append([s])
            farthest.append(0.0)
        else:
            members[home].append(s)
    families = [
        Family(
            representative=points[reps[f]].copy(),
            members=tuple(members[f]),
            risk_mean=float(risks[members[f]].mean()),
            risk_spread=float(np.ptp(risks[members[f]])),
            max_distance=farthest[f],
        )
        for f in range(len(reps))
    ]
    families.sort(key=lambda fam: (-fam.count, fam.risk_mean))
    return Grouping(families, undecided, nodes, comparisons, tol)


def gauss_risks(points: np.ndarray) -> np.ndarray:
    """F of each point [S, n, k] against the teacher I_k (k = number of columns)."""
    w = torch.as_tensor(np.asarray(points), dtype=torch.float64)
    return population_risk_and_grad(w, w.shape[2])[0].numpy()


def display_form(w: np.ndarray) -> np.ndarray:
    """A readable ordering of one point, NOT a canonical form: repeatedly the largest entry
    left pairs its neuron with its teacher axis (greedy), so the diagonal shows each axis's
    best-aligned neuron in descending order and leftover neurons follow. The order among
    equal entries is arbitrary, so two members of a family may display differently."""
    w = np.asarray(w, dtype=np.float64)
    n, k = w.shape
    free = np.ones((n, k), dtype=bool)
    rows, cols = [], []
    for _ in range(k):
        i, j = np.unravel_index(np.argmax(np.where(free, w, -np.inf)), w.shape)
        rows.append(int(i))
        cols.append(int(j))
        free[i, :] = False
        free[:, j] = False
    rows += [i for i in range(n) if i not in rows]
    return w[np.array(rows)][:, np.array(cols)]


def point_risk(w: torch.Tensor, k: int) -> torch.Tensor:
    """F(W) of one point W [n, k] (population_risk of a batch of one)."""
    return population_risk(w[None], k)[0]


@dataclass(frozen=True)
class MinimumCheck:
    risk: float
    grad_norm: float
    # smallest and largest Hessian eigenvalue; None when the geometry is degenerate (as the
    # results file stores it, so a family reads the same in process and from the file)
    eig_min: float | None
    eig_max: float | None
    min_neuron_norm: float
    max_cosine: float  # largest |cos| between two neurons, or a neuron and a teacher axis
    verdict: str  # "strict minimum", "saddle", "degenerate", "not critical"


GEOMETRY_TOL = 1e-7


def confirm_minimum(w: np.ndarray, k: int | None = None, grad_tol: float = 1e-8) -> MinimumCheck:
    """Is W [n, k] a strict local minimum of F? Gradient norm (closed form) <= grad_tol and
    the smallest eigenvalue of the float64 Hessian of smooth_risk positive relative to the
    largest (benchmarks.hessian.verdict's tolerance). A zero-norm neuron or a parallel pair
    makes F non-smooth there: verdict "degenerate", no eigenvalues claimed."""
    t = torch.as_tensor(np.asarray(w), dtype=torch.float64)
    n, d = t.shape
    k = d if k is None else k
    risk, grad = population_risk_and_grad(t[None], k)
    norms = t.norm(dim=1)
    unit = t / norms.clamp_min(1e-300)[:, None]
    cos = unit @ unit.T
    off = cos[~torch.eye(n, dtype=torch.bool)].abs()
    max_cos = float(torch.cat([off, unit[:, :k].abs().reshape(-1)]).max())
    base = dict(
        risk=float(risk[0]),
        grad_norm=float(grad.norm()),
        min_neuron_norm=float(norms.min()),
        max_cosine=max_cos,
    )
    if base["min_neuron_norm"] < GEOMETRY_TOL or max_cos > 1 - GEOMETRY_TOL:
        return MinimumCheck(eig_min=None, eig_max=None, verdict="degenerate", **base)
    hess = torch.autograd.functional.hessian(lambda f: point_risk(f.reshape(n, d), k), t.flatten())
    eig = torch.linalg.eigvalsh(hess)
    low, high = float(eig[0]), float(eig[-1])
    kind = {"min": "strict minimum", "saddle": "saddle", "degenerate": "degenerate"}[
        curvature_verdict(low, float(eig.abs().max()))
    ]
    if base["grad_norm"] > grad_tol:
        kind = "not critical"
    return MinimumCheck(eig_min=low, eig_max=high, verdict=kind, **base)


def describe(grouping: Grouping, k: int | None = None, spurious: float = 1e-3) -> list[dict]:
    """One row per family: size, risk, whether it is spurious (mean F >= ``spurious``, the
    paper's threshold) and the Hessian check of its representative (confirm_minimum)."""
    rows = []
    for fam in grouping.families:
        check = confirm_minimum(fam.representative, k)
        rows.append(
            {
                "count": fam.count,
                "risk_mean": fam.risk_mean,
                "risk_spread": fam.risk_spread,
                "spurious": fam.risk_mean >= spurious,
                "verdict": check.verdict,
                "eig_min": check.eig_min,
                "eig_max": check.eig_max,
                "grad_norm": check.grad_norm,
                "members": list(fam.members),
            }
        )
    return rows
