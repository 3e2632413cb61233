"""The CI regression gate: is a new run worse than a baseline run of the same cells?

Baseline and new run share seed indices, so every cell is a PAIRED experiment: seed i starts
from the same initialization on both sides, and identical code gives identical numbers. The
gate therefore compares seed by seed (paired on the ``seed`` record) instead of comparing
summary statistics, which is what lets it see small regressions on a 64-seed smoke run.

A cell REGRESSES when any of these holds (each a one-sided test toward "worse" at ``alpha``,
together with a practical-effect threshold, since significance alone flags tiny effects):
  * success: the success rate fell by more than ``min_drop`` and an exact one-sided McNemar
    test on the seeds that changed success is significant;
  * fates: more seeds moved to a worse fate than to a better one, net share above
    ``min_drop``, and an exact sign test on the seeds whose fate changed is significant. Fates
    are ordered by FATE_SEVERITY (global < level < critical = saddle < unconverged <
    diverged); between two levels, the higher-risk level is worse. This guards cells at 0%
    or 100% success, where the success test can never fire;
  * gaps: the per-seed log gaps log(gap + tol) rose, the Hodges-Lehmann shift of the
    changed seeds exceeds log(``gap_factor``) and a one-sided Wilcoxon signed-rank test is
    significant;
  * divergence: more than ``min_drop`` of the seeds newly diverged.
The mirror-image tests report IMPROVED cells: a note by default, a failure with ``strict``
(for a benchmark's own CI, where any change of the numbers means the training path changed).

Float tolerance: a seed whose log gap moved by at most ``rtol`` (relative change of gap+tol;
1e-4 leaves room for float noise such as compiled against eager) counts as unchanged, in every
test: its gap difference is a tie and its fate is taken as unchanged. Threads, workers, seed
chunks, tasks and a dask cluster give bit-identical numbers; torch.compile against eager
differs by up to 4e-6 relative in the final risk of a few seeds (measured on the smoke suite),
well inside.

A baseline cell without a new cell of the same id, but with one of the same problem and
optimizer, is CHANGED (its hyperparameters, seeds, steps or another config field differ; the
line names them), as is a cell whose id matches but whose effective hyperparameters or
problem facts differ. CHANGED fails unless ``allow_changed``, which then compares the two
cells on their common seeds. Wall-clock regressions are not judged here (see
benchmarks/bench_*.py and pytest-benchmark's --benchmark-compare-fail).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from benchmarks.stats import log_gap_differences, pair_seeds, shift_test, sign_test

# Higher is worse. Critical points and saddles rank together: both are stalls at an unlisted
# critical point, told apart only by a Hessian verdict given to a limited number of seeds.
FATE_SEVERITY = {
    "global": 0,
    "level": 1,
    "critical": 2,
    "saddle": 2,
    "unconverged": 3,
    "diverged": 4,
}
# Config fields that say how a cell was executed or what it kept, not what was computed.
EXECUTION_FIELDS = frozenset(
    {
        "device",
        "chunk",
        "compile",
        "verify",
        "workers",
        "threads",
        "task_seeds",
        "scheduler",
        "end_points",
    }
)
PROBLEM_FACTS = ("optimum", "tol", "grad_tol", "levels", "options")


class GateError(ValueError):
    """Gate thresholds that cannot be used; the message names the flag and its range."""


def _require(ok: bool, flag: str, rule: str, value: float) -> None:
    if not ok:
        raise GateError(f"{flag} must be {rule}, got {value!r}")


@dataclass(frozen=True)
class GateSettings:
    alpha: float = 0.01
    min_drop: float = 0.05
    gap_factor: float = 1.02
    rtol: float = 1e-4
    allow_changed: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        """Refuse thresholds that would silently disable a test (NaN compares false with
        everything, so ``--alpha nan`` used to pass every run)."""
        a, m, g, r = self.alpha, self.min_drop, self.gap_factor, self.rtol
        _require(_finite(a) and 0 < a < 1, "--alpha", "a probability in (0, 1)", a)
        _require(_finite(m) and 0 <= m <= 1, "--min-drop", "a share in [0, 1]", m)
        _require(_finite(g) and g >= 1, "--gap-factor", "a finite factor >= 1", g)
        _require(_finite(r) and 0 <= r < 1, "--rtol", "a relative tolerance in [0, 1)", r)


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Finding:
    kind: str  # REGRESSION, IMPROVED, CHANGED, MISSING, FAILED or NEW
    cell: str
    detail: str
    fails: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.cell}: {self.detail}"


def _gaps(cell: dict) -> list:
    """Per-seed gaps; computed from the final risk when a results file has no ``gap``."""
    r = cell["records"]
    if "gap" in r:
        return r["gap"]
    optimum = cell["problem_info"]["optimum"]
    return [None if v is None else v - optimum for v in r["final_risk"]]


def _severities(cell: dict, idx: np.ndarray) -> list[tuple[int, float]]:
    """(fate rank, level risk) per seed: a run stuck at a higher-risk level is worse."""
    r = cell["records"]
    level_risk = {label: risk for label, risk in cell["problem_info"].get("levels", [])}
    labels = r.get("level") or [""] * len(r["fate"])
    out = []
    for i in idx:
        fate = r["fate"][i]
        rank = FATE_SEVERITY.get(fate, FATE_SEVERITY["unconverged"])
        out.append((rank, level_risk.get(labels[i], 0.0) if fate == "level" else 0.0))
    return out


@dataclass(frozen=True)
class PairedCell:
    """Two runs of one cell, seed by seed; ``moved`` marks seeds beyond the float tolerance."""

    n: int
    success_a: np.ndarray
    success_b: np.ndarray
    severity_a: list
    severity_b: list
    fate_a: list
    fate_b: list
    diverged_a: np.ndarray
    diverged_b: np.ndarray
    log_gap_diff: np.ndarray
    moved: np.ndarray


def pair_cell(base: dict, new: dict, rtol: float) -> PairedCell:
    ia, ib = pair_seeds(base["records"]["seed"], new["records"]["seed"])
    floor = base["problem_info"].get("tol") or 1e-12
    ga, gb = _gaps(base), _gaps(new)
    diff = log_gap_differences([ga[i] for i in ia], [gb[i] for i in ib], floor)
    fa = [base["records"]["fate"][i] for i in ia]
    fb = [new["records"]["fate"][i] for i in ib]
    return PairedCell(
        n=len(ia),
        success_a=np.array([f == "global" for f in fa], dtype=bool),
        success_b=np.array([f == "global" for f in fb], dtype=bool),
        severity_a=_severities(base, ia),
        severity_b=_severities(new, ib),
        fate_a=fa,
        fate_b=fb,
        diverged_a=np.array([f == "diverged" for f in fa], dtype=bool),
        diverged_b=np.array([f == "diverged" for f in fb], dtype=bool),
        log_gap_diff=diff,
        moved=np.abs(diff) > rtol,
    )


def _success_test(p: PairedCell, s: GateSettings, worse_way: bool) -> str | None:
    lost = int((p.success_a & ~p.success_b & p.moved).sum())
    won = int((~p.success_a & p.success_b & p.moved).sum())
    worse, better = (lost, won) if worse_way else (won, lost)
    if (worse - better) / max(p.n, 1) <= s.min_drop:
        return None
    pv = sign_test(worse, better, "greater")
    if pv >= s.alpha:
        return None
    verb = "fell" if worse_way else "rose"
    return (
        f"success rate {verb} {abs(lost - won) / p.n:.1%} ({int(p.success_a.sum())} -> "
        f"{int(p.success_b.sum())} of {p.n} seeds; {lost} lost, {won} gained; "
        f"McNemar p={pv:.2g})"
    )


def _fate_test(p: PairedCell, s: GateSettings, worse_way: bool) -> str | None:
    up = [i for i in range(p.n) if p.moved[i] and p.severity_b[i] > p.severity_a[i]]
    down = [i for i in range(p.n) if p.moved[i] and p.severity_b[i] < p.severity_a[i]]
    worse, better = (up, down) if worse_way else (down, up)
    if (len(worse) - len(better)) / max(p.n, 1) <= s.min_drop:
        return None
    pv = sign_test(len(worse), len(better), "greater")
    if pv >= s.alpha:
        return None
    moves = Counter(f"{p.fate_a[i]}->{p.fate_b[i]}" for i in worse)
    top = ", ".join(f"{k} {v}" for k, v in moves.most_common(3))
    verb = "worse" if worse_way else "better"
    return (
        f"{len(worse)} seeds moved to a {verb} fate, {len(better)} the other way ({top}; "
        f"sign test p={pv:.2g})"
    )


def _gap_test(p: PairedCell, s: GateSettings, worse_way: bool) -> str | None:
    res = shift_test(p.log_gap_diff, tie=s.rtol, alternative="greater" if worse_way else "less")
    shift = res["shift"] if worse_way else -res["shift"]
    if res["p_value"] >= s.alpha or shift <= math.log(s.gap_factor):
        return None
    verb = "rose" if worse_way else "fell"
    factor = math.exp(abs(res["shift"]))
    return (
        f"per-seed gaps {verb} by a factor {factor:.3g} (Hodges-Lehmann, over "
        f"{res['changed']} of {p.n} seeds that changed; Wilcoxon p={res['p_value']:.2g})"
    )


def _divergence_test(p: PairedCell, s: GateSettings, worse_way: bool) -> str | None:
    newly = int((p.diverged_b & ~p.diverged_a).sum())
    healed = int((p.diverged_a & ~p.diverged_b).sum())
    count = newly if worse_way else healed
    if count <= s.min_drop * max(p.n, 1):
        return None
    return f"{count} seeds newly diverged" if worse_way else f"{count} seeds no longer diverge"


TESTS = (_success_test, _fate_test, _gap_test, _divergence_test)


def check_cell(base: dict, new: dict, settings: GateSettings) -> list[Finding]:
    """REGRESSION and IMPROVED findings of one cell pair (empty when nothing changed)."""
    paired = pair_cell(base, new, settings.rtol)
    out = []
    for worse_way, kind in ((True, "REGRESSION"), (False, "IMPROVED")):
        for test in TESTS:
            reason = test(paired, settings, worse_way)
            if reason:
                fails = worse_way or settings.strict
                out.append(Finding(kind, base["id"], reason, fails))
    return out


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def close(a: object, b: object, rtol: float) -> bool:
    """Equal, with numbers (also inside lists and dicts) equal to a relative ``rtol``."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol) for k in a)
    return a == b


def config_differences(base: dict, new: dict, rtol: float = 1e-4) -> list[str]:
    """What differs between two cells, execution settings aside: config fields, effective
    hyperparameters (defaults included, so a changed default shows) and problem facts. The
    facts come from reference solvers, so they are compared to ``rtol``: a level computed
    one rounding step differently on another machine is the same level."""
    out = []
    ca, cb = base.get("config", {}), new.get("config", {})
    for key in sorted((set(ca) | set(cb)) - EXECUTION_FIELDS - {"hp"}):
        if ca.get(key) != cb.get(key):
            out.append(f"{key} {_fmt(ca.get(key))} -> {_fmt(cb.get(key))}")
    ha = base.get("optimizer", {}).get("hyperparameters", ca.get("hp", {}))
    hb = new.get("optimizer", {}).get("hyperparameters", cb.get("hp", {}))
    for key in sorted(set(ha) | set(hb)):
        if ha.get(key) != hb.get(key):
            out.append(f"{key} {_fmt(ha.get(key))} -> {_fmt(hb.get(key))}")
    pa, pb = base.get("problem_info", {}), new.get("problem_info", {})
    for key in PROBLEM_FACTS:
        if not close(pa.get(key), pb.get(key), rtol):
            out.append(f"problem {key} {_fmt(pa.get(key))} -> {_fmt(pb.get(key))}")
    return out


def _same_kind(a: dict, b: dict) -> bool:
    return a["problem"] == b["problem"] and a["optimizer"]["name"] == b["optimizer"]["name"]


def evaluate(baseline: dict, new: dict, settings: GateSettings | None = None) -> list[Finding]:
    """Every finding, failing or not, in baseline order; then new cells and failed cells."""
    settings = settings or GateSettings()
    base_ids = {c["id"] for c in baseline["cells"]}
    by_id = {c["id"]: c for c in new["cells"]}
    spare = [c for c in new["cells"] if c["id"] not in base_ids]
    findings = []
    for base in baseline["cells"]:
        cell = by_id.get(base["id"])
        if cell is None:
            kin = [c for c in spare if _same_kind(base, c)]
            if not kin:
                findings.append(
                    Finding("MISSING", base["id"], "not in the new results (rerun the suite)", True)
                )
                continue
            cell = min(kin, key=lambda c: len(config_differences(base, c, settings.rtol)))
            spare.remove(cell)
        diffs = config_differences(base, cell, settings.rtol)
        if diffs:
            detail = ", ".join(diffs)
            if cell["id"] != base["id"]:
                detail += f" (now {cell['id']})"
            if not settings.allow_changed:
                detail += "; pass --allow-changed to compare anyway, or refresh the baseline"
            findings.append(Finding("CHANGED", base["id"], detail, not settings.allow_changed))
            if not settings.allow_changed:
                continue
        findings.extend(check_cell(base, cell, settings))
    for cell in spare:
        findings.append(Finding("NEW", cell["id"], "not in the baseline", False))
    for err in new.get("errors", []):
        findings.append(Finding("FAILED", err["id"], err["error"], True))
    return findings


def check(baseline: dict, new: dict, settings: GateSettings | None = None) -> list[str]:
    """One line per failing finding; an empty list means the gate passes."""
    return [str(f) for f in evaluate(baseline, new, settings) if f.fails]
