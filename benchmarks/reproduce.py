"""Reproductions: a paper's experiment as one command, measured next to the published numbers.

A reproduction is a plain record (the contract): ``suite(quick)`` returns the suite that runs
the paper's protocol exactly (``quick``: a subset that finishes in minutes, for CI), and
``compare(doc)`` turns the finished results document into ``{"rows": [...], "notes": [...],
...}``: one row per published number with the measured value, its interval, the published
value, the test used and a verdict. `trapbench reproduce NAME` runs the suite through the usual
runner (results file, report) and stores the comparison under ``doc["reproduction"]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks import published
from benchmarks.results import ResultsError

SAFRAN_SHAMIR_STOP = 1e-9 / (2 * math.pi)  # max_i ||2 pi grad_{w_i} F|| <= 1e-9


@dataclass(frozen=True)
class Reproduction:
    name: str
    citation: str
    description: str
    suite: Callable[[bool], dict]
    compare: Callable[[dict], dict]


def _safran_shamir_suite(quick: bool) -> dict:
    """Table 1's protocol: W entries N(0, 1/d), gradient descent with step 0.1 on the exact
    population risk in float64, stopped when max_i ||2 pi grad_{w_i} F|| <= 1e-9."""
    ks = range(6, 9) if quick else range(6, 13)
    problems = [f"gauss-relu:k={k}" for k in ks]
    if not quick:
        problems += [f"gauss-relu:k={k},n={k + 1}" for k in ks]
    return {
        "name": "safran-shamir-2018" + ("-quick" if quick else ""),
        "description": "Safran & Shamir (2018) Table 1: spurious-minimum rates of GD",
        "seeds": 200 if quick else published.RUNS,
        "steps": 30000,
        "dtype": "float64",
        "hessian": 0,  # the families' representatives get the Hessian check instead
        "end_points": True,  # the final W of every run, to group the spurious ones
        "stop": {"grad_tol": SAFRAN_SHAMIR_STOP},
        "problems": problems,
        "optimizers": [{"name": "gd", "lr": 0.1}],
    }


def final_risks(cell: dict) -> np.ndarray:
    """A cell's per-seed final risks as floats (JSON null, a diverged run, is NaN)."""
    values = cell["records"]["final_risk"]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def spurious_families(cell: dict, k: int) -> tuple[list[dict], int]:
    """Every spurious end point (F >= the paper's 1e-3; the cell's stored final W) grouped into
    families up to the problem's symmetry, each representative checked to be a strict local
    minimum; a family's ``members`` are seed indices. Also the number of comparisons the
    search left undecided (benchmarks/families.py: each such point starts a family of its
    own, so a family may be split in two, never merged). All of them: grouping the 570
    spurious runs of k = n = 12 takes about a second."""
    from benchmarks.families import describe, group

    risk = final_risks(cell)
    spurious = np.flatnonzero(risk >= published.SPURIOUS_THRESHOLD)
    if not len(spurious):
        return [], 0
    points = np.asarray(cell["end_points"]["w"], dtype=np.float64)[spurious]
    grouping = group(points, risk[spurious])
    seeds = np.asarray(cell["records"]["seed"])[spurious]
    rows = [
        {**row, "members": [int(seeds[m]) for m in row["members"]]} for row in describe(grouping, k)
    ]
    return rows, grouping.undecided


def _safran_shamir_compare(doc: dict) -> dict:
    rows, families, notes = [], {}, []
    for cell in doc["cells"]:
        options = cell["problem_info"]["options"]
        k, n = options["k"], options["n"]
        name = f"gauss-relu:k={k},n={n}"  # in full: the canonical spec drops defaults
        r = cell["records"]
        risk = final_risks(cell)
        finite = np.isfinite(risk)
        spurious = int((risk[finite] >= published.SPURIOUS_THRESHOLD).sum())
        runs = int(finite.sum())
        unconverged = int(sum(reason == "budget" for reason in r["stop_reason"]))
        ref = published.published_rate(k, n)
        v = published.verdict(spurious, runs, ref) if ref is not None and runs else None
        rows.append(
            {
                "problem": name,
                "k": k,
                "n": n,
                "measured": spurious,
                "runs": runs,
                "rate": spurious / runs if runs else math.nan,
                "interval": list(v.wilson) if v else None,
                "published_percent": ref.percent if ref else None,
                "test": f"two-sided {v.test} exact test vs the paper's {ref.runs} runs"
                if v and v.label != "not stated"
                else "",
                "p_value": v.p_value if v else None,
                "verdict": v.label if v else "not published",
                "diverged": int((~finite).sum()),
                "unconverged": unconverged,
            }
        )
        if (~finite).any():
            notes.append(
                f"{name}: {int((~finite).sum())} run(s) diverged; the paper halves the "
                "step and restarts such runs, which trapbench does not: they are left out"
            )
        if unconverged:
            notes.append(_cut_off_gauss_note(name, cell, risk))
        families[name], undecided = spurious_families(cell, k)
        if undecided:
            notes.append(
                f"{name}: {undecided} comparison(s) reached the search's node limit; each such "
                "end point was kept apart, so a family may be listed more than once"
            )
    return {"rows": rows, "families": families, "notes": notes}


def _cut_off_gauss_note(name: str, cell: dict, risk: np.ndarray) -> str:
    """Runs the step budget cut off count by their final risk. Those below the threshold are
    not spurious for good (GD at this step does not raise F); those above it are counted
    spurious but may still descend, so the rate is an upper bound by that many."""
    cut = (np.array(cell["records"]["stop_reason"]) == "budget") & np.isfinite(risk)
    high = int((risk[cut] >= published.SPURIOUS_THRESHOLD).sum())
    return (
        f"{name}: {int(cut.sum())} run(s) had not met the stopping rule after "
        f"{cell['config']['steps']} steps; by final risk, {int(cut.sum()) - high} are below "
        f"{published.SPURIOUS_THRESHOLD:g} (not spurious for good) and {high} at or above it "
        f"(counted spurious: the rate is an upper bound by {high})"
    )


def _cheridito_suite(quick: bool) -> dict:
    """Gradient descent on the affine target f(x) = x on [0, 1] (exact integral risk, N(0, 1)
    initialization, float64) for widths 1..6 and shrinking steps, each run to its end point:
    stationary, or at the optimum."""
    widths = range(2, 5) if quick else range(1, 7)
    return {
        "name": "cheridito-2024" + ("-quick" if quick else ""),
        "description": "Cheridito, Jentzen & Rossmannek (2024): runs ending at the constant",
        "seeds": 256 if quick else 1000,
        "steps": 20000 if quick else 60000,
        "dtype": "float64",
        "hessian": 0,
        "stop": {"grad_tol": "problem", "target": True},
        "problems": [f"relu1d-affine:width={h}" for h in widths],
        "optimizers": [{"name": "gd", "lr_grid": [0.03, 0.01] if quick else [0.03, 0.01, 0.003]}],
    }


def _cheridito_compare(doc: dict) -> dict:
    """The share of runs that end at the constant network (risk alpha^2/12), split into runs
    whose every neuron was dead at initialization (probability p^H, p = 3/8 for N(0, 1)
    weights and biases on [0, 1]: their gradient is zero, so GD never moves them) and runs
    whose neurons died during training (GD drives a kink to an end of the interval).
    Verdict: consistent when the all-dead share matches p^H (two-sided exact binomial test at
    5%) and every all-dead run ended at the constant network; the constant share then can
    only exceed p^H, by the runs whose neurons died in training."""
    from scipy.stats import binomtest

    from benchmarks.metrics import wilson_interval
    from problems.relu1d import dead_probability

    p = dead_probability(0.0, 1.0)
    rows, notes = [], []
    for cell in doc["cells"]:
        width = cell["problem_info"]["options"]["width"]
        r = cell["records"]
        runs = len(r["seed"])
        at_constant, dead_at_init = _constant_ends(cell)
        constant = int(at_constant.sum())
        from_init = int((at_constant & dead_at_init).sum())
        bound = p**width
        test = binomtest(int(dead_at_init.sum()), runs, bound)
        unconverged = sum(f == "unconverged" for f in r["fate"])
        rows.append(
            {
                "problem": cell["problem"],
                "width": width,
                "lr": cell["config"]["hp"]["lr"],
                "measured": constant,
                "runs": runs,
                "rate": constant / runs,
                "interval": list(wilson_interval(constant, runs)),
                "dead_at_init": from_init / runs,
                "died_in_training": (constant - from_init) / runs,
                "published_percent": 100 * bound,
                "test": "exact binomial test: all neurons dead at init vs (3/8)^H",
                "p_value": test.pvalue,
                # the theory: every all-dead run stays at the constant network, and the share
                # of all-dead initializations is p^H
                "verdict": "consistent"
                if test.pvalue >= 0.05 and from_init == int(dead_at_init.sum())
                else "not consistent",
                "unconverged": unconverged,
            }
        )
        if unconverged:
            notes.append(_cheridito_unconverged_note(cell, unconverged))
    return {"rows": rows, "families": {}, "notes": notes + _cheridito_step_notes(doc)}


def _constant_ends(cell: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: whether the run ended at the constant network, and whether every neuron was
    dead at initialization."""
    r = cell["records"]
    width = cell["problem_info"]["options"]["width"]
    at_constant = np.array(
        [f == "level" and "constant" in lv for f, lv in zip(r["fate"], r["level"], strict=True)],
        dtype=bool,
    )
    return at_constant, np.asarray(r["dead_neurons_init"]) == width


def _cheridito_step_notes(doc: dict) -> list[str]:
    """Per width, whether the excess over p^H (runs at the constant network whose neurons died
    in training) shrinks from the largest step to the smallest: the lr grid shares its seeds,
    so the two are paired and compared by the exact McNemar test, one-sided toward shrinking."""
    from benchmarks.stats import mcnemar, pair_seeds

    by_width: dict[int, list[dict]] = {}
    for cell in doc["cells"]:
        by_width.setdefault(cell["problem_info"]["options"]["width"], []).append(cell)
    notes = []
    for width, cells in sorted(by_width.items()):
        if len(cells) < 2:
            continue
        cells = sorted(cells, key=lambda c: c["config"]["hp"]["lr"], reverse=True)
        large, small = cells[0], cells[-1]
        ia, ib = pair_seeds(large["records"]["seed"], small["records"]["seed"])
        died = []
        for cell in (large, small):
            at_constant, dead_at_init = _constant_ends(cell)
            died.append(at_constant & ~dead_at_init)
        a, b = died[0][ia], died[1][ib]
        test = mcnemar(a, b, alternative="greater")
        lr = (large["config"]["hp"]["lr"], small["config"]["hp"]["lr"])
        verdict = "shrinks" if test["p_value"] < 0.05 else "does not shrink significantly"
        notes.append(
            f"width {width}: died in training {100 * a.mean():.1f}% at step {lr[0]:g} against "
            f"{100 * b.mean():.1f}% at step {lr[1]:g} ({len(a)} paired seeds; exact McNemar, "
            f"one-sided toward shrinking: {test['only_a']} vs {test['only_b']} discordant, "
            f"p = {test['p_value']:.3g}): the excess {verdict} as the step goes to 0"
        )
    return notes


def _cheridito_unconverged_note(cell: dict, count: int) -> str:
    """Whether the runs cut off by the budget could still change the constant share: a run
    whose risk is already far below the constant network's cannot end there (GD at these small
    steps decreases the risk), so then the share counts end points only."""
    levels = dict(cell["problem_info"]["levels"])
    constant = min(v for name, v in levels.items() if "constant" in name)
    risk = final_risks(cell)[np.array(cell["records"]["fate"]) == "unconverged"]
    head = (
        f"{cell['problem']} lr {cell['config']['hp']['lr']}: {count} run(s) had not converged "
        f"when the budget ran out, at risk <= {np.nanmax(risk):.3g}"
    )
    if np.nanmax(risk) < constant / 10:
        return (
            f"{head}, below a tenth of the constant network's {constant:.3g}: they cannot end "
            "there, so the constant share is final"
        )
    return f"{head}: some could still end at the constant network ({constant:.3g})"


def _jentzen_riekert_suite(quick: bool) -> dict:
    """SGD, momentum, AdaGrad, RMSprop and Adam on a realizable teacher that needs every
    student neuron: a zigzag of H kinks learned by H neurons, so a run with a dead neuron
    cannot reach the global minimum. The optimizers are the default suite's table (learning
    rates, schedules and per-optimizer budgets), which was sized so that runs end at their end
    points: with one constant-rate 8000-step budget, up to 22% of a cell's runs were still
    unconverged here, and a failure that is only a cut-off run says nothing about the bound."""
    from benchmarks import suites

    widths = range(1, 4) if quick else range(1, 6)
    return {
        "name": "jentzen-riekert-2024" + ("-quick" if quick else ""),
        "description": "Jentzen & Riekert (2024): global rate against width and (1 - p)^H",
        "seeds": 256 if quick else 1000,
        "steps": 8000,
        "dtype": "float32",
        "hessian": 0,
        "stop": {"grad_tol": "problem", "plateau_window": 1000, "plateau_rtol": 1e-6, "every": 10},
        "problems": [f"relu1d-teacher:kinks={h},width={h}" for h in widths],
        "optimizers": suites.load("default")["optimizers"],
    }


def _jentzen_riekert_compare(doc: dict) -> dict:
    """Global rate against the bound P(no neuron dead at init) = (1 - p)^H (p = 3/8 for
    N(0, 1) weights and biases on [0, 1]): every student neuron is needed, and a neuron dead
    at initialization never moves. Each failed run is split: a neuron dead at init, a neuron
    died during training (all alive at init, some dead at the end), or all neurons alive but
    misplaced. Verdict: the rate must not exceed the bound (one-sided exact binomial test).
    The bound is loose on this teacher: a live neuron facing away from its kink (w < 0) cannot
    make a right-facing kink either, so "misplaced" includes the wrongly oriented."""
    from scipy.stats import binomtest

    from benchmarks.metrics import wilson_interval
    from problems.relu1d import dead_probability

    p = dead_probability(0.0, 1.0)
    rows, cut_off = [], []
    for cell in doc["cells"]:
        width = cell["problem_info"]["options"]["width"]
        r = cell["records"]
        runs = len(r["seed"])
        won = [f == "global" for f in r["fate"]]
        dead0 = [d > 0 for d in r["dead_neurons_init"]]
        dead1 = [d > 0 for d in r["dead_neurons"]]
        lost = [not w for w in won]
        share = {
            "dead_at_init": sum(x and d for x, d in zip(lost, dead0, strict=True)) / runs,
            "died_in_training": sum(
                x and not d and e for x, d, e in zip(lost, dead0, dead1, strict=True)
            )
            / runs,
            "misplaced": sum(
                x and not e and not d for x, d, e in zip(lost, dead0, dead1, strict=True)
            )
            / runs,
        }
        bound = (1 - p) ** width
        test = binomtest(sum(won), runs, bound, alternative="greater")
        # a run cut off by the budget with every neuron alive might still reach the optimum
        # (a dead neuron never moves again: a run with one has failed for good)
        still_open = sum(
            f == "unconverged" and not d and not e
            for f, d, e in zip(r["fate"], dead0, dead1, strict=True)
        )
        if still_open:
            cut_off.append(_if_cut_off_runs_won(cell, still_open, sum(won), runs, bound))
        rows.append(
            {
                "problem": f"relu1d-teacher:kinks={width},width={width}",  # as the suite set it
                "optimizer": cell["optimizer"]["name"],
                "width": width,
                "measured": sum(won),
                "runs": runs,
                "rate": sum(won) / runs,
                "interval": list(wilson_interval(sum(won), runs)),
                "published_percent": 100 * bound,
                "test": "one-sided exact binomial test: global rate > (1 - p)^H",
                "p_value": test.pvalue,
                "verdict": "consistent" if test.pvalue >= 0.05 else "not consistent",
                "unconverged": cell["metrics"].get("unconverged_share", 0.0),
                "open": still_open / runs,
                **share,
            }
        )
    return {"rows": rows, "families": {}, "notes": _cut_off_notes(cut_off)}


def _if_cut_off_runs_won(cell: dict, still_open: int, won: int, runs: int, bound: float) -> dict:
    """The most the runs cut off by the budget could change: counted as global minima, is the
    rate still not above the bound (the same one-sided test)?"""
    from scipy.stats import binomtest

    best = binomtest(won + still_open, runs, bound, alternative="greater").pvalue
    return {
        "cell": f"{cell['problem']} {cell['optimizer']['name']}",
        "runs": still_open,
        "rate": (won + still_open) / runs,
        "bound": bound,
        "final": bool(best >= 0.05),
    }


def _cut_off_notes(cut_off: list[dict]) -> list[str]:
    """One line for the cells whose verdict the cut-off runs cannot change, one per cell whose
    verdict they could."""
    notes = []
    final = [c for c in cut_off if c["final"]]
    if final:
        notes.append(
            f"{len(final)} cell(s) had runs cut off by the budget with every neuron alive "
            f"({min(c['runs'] for c in final)}-{max(c['runs'] for c in final)} per cell); "
            f"counted as global minima they would raise no rate above its bound (highest "
            f"{max(c['rate'] for c in final):.1%}): those verdicts are final"
        )
    notes += [
        f"{c['cell']}: {c['runs']} run(s) cut off by the budget with every neuron alive; "
        f"counted as global the rate would be {c['rate']:.1%}, significantly above the bound "
        f"{c['bound']:.1%}: the verdict needs a longer budget"
        for c in cut_off
        if not c["final"]
    ]
    return notes


PETZKA_LOSS = 4.817  # their 2-1-1-1 local minimum's loss (Section 5.4)
PETZKA_B = (0.0182, 0.0004)  # its B-matrix eigenvalues: positive definite


def _petzka_suite(quick: bool) -> dict:
    """Start every run next to the planted 2-21-21-1 local minimum (problem ``planted-deep``)
    and train it with the five classic optimizers (float64, full batch) until it is
    stationary, its risk stops moving, or the budget runs out; quick: 32 seeds, the same
    budgets (a 6000-step cosine ended before any RMSprop or Adam run escaped, while the full
    budget sees all of them escape: a shorter quick run would tell the opposite story).

    The rates respect the minimum's curvature: the Hessian's largest eigenvalue there is
    about 27.5, so GD is stable below 2/27.5 = 0.073. At lr 0.1 every SGD run was thrown out
    of the basin within 15 steps and was still sliding back towards the planted level after
    20000 (all 512 unconverged); at 0.05 all end at the level (measured, 64 seeds). AdaGrad's
    shrinking steps need 40000 steps to settle there (20000: 30 of 64 runs cut off; lr 0.1:
    47 of 64). RMSprop and Adam escape, and are still descending below the level when their
    cosine ends: an escape is their end point here (the row says how many were cut off)."""
    return {
        "name": "petzka-2021" + ("-quick" if quick else ""),
        "description": "Petzka & Sminchisescu (2021): escapes from a planted deep local minimum",
        "seeds": 32 if quick else 512,
        "steps": 20000,
        "dtype": "float64",
        "hessian": 0,
        # the plateau rule certifies runs that settle in the planted basin (its split
        # directions are flat, so the gradient there decays too slowly for grad_tol alone)
        "stop": {"grad_tol": "problem", "plateau_window": 1000, "plateau_rtol": 1e-6, "every": 10},
        "problems": ["planted-deep"],
        "optimizers": [
            {"name": "sgd", "lr": 0.05},
            {"name": "momentum", "lr": 0.05},
            {"name": "adagrad", "lr": 0.05, "steps": 40000},
            # at a constant rate they hover around the minimum (RMSprop's normalized steps
            # doubled the risk in a trial): decayed, they end where the cosine leaves them
            {"name": "rmsprop", "lr": 0.001, "schedule": "cosine"},
            {"name": "adam", "lr": 0.01, "schedule": "cosine"},
        ],
    }


def _petzka_compare(doc: dict) -> dict:
    """The construction's numbers next to the paper's (the small minimum's loss, its B
    eigenvalues and the verdict), then per optimizer the escape rate: the share of runs
    ending below the planted level by more than the tolerance, with its Wilson interval.
    The paper publishes no rate; Theorem 9 predicts a local minimum, so runs started close
    enough should not descend from it (an escape needs a drift along the flat directions of
    the set of minima to where it turns into saddles: "non-attracting")."""
    from benchmarks.metrics import wilson_interval

    rows, notes, first = [], [], doc["cells"][0]["problem_info"]
    options = first["options"]
    loss, b1 = options["small_loss"], options["b1_eigenvalues"]
    paper_sign = "positive definite"
    b_sign = (
        "positive definite" if min(b1) > 0 else "negative definite" if max(b1) < 0 else "indefinite"
    )
    rows.append(_fixed("2-1-1-1 minimum loss L", loss, PETZKA_LOSS, "not comparable (other data)"))
    rows.append(
        _fixed(
            "B eigenvalues (layer 1)",
            [round(e, 6) for e in b1],
            list(PETZKA_B),
            "agrees" if b_sign == paper_sign else "differs",
            test=f"definiteness: measured {b_sign}, paper {paper_sign}",
        )
    )
    rows.append(
        _fixed(
            f"verdict of {options['splits']} splits",
            options["kind"],
            "local-min",
            "agrees" if options["kind"] == "local-min" else "differs",
            test=f"Theorem 9 (max relative |D| {options['max_d_relative']:.1e})",
        )
    )
    for cell in doc["cells"]:
        info = cell["problem_info"]
        level = dict(info["levels"]).get("planted")
        if level is None:  # every planted problem records it: not a silent 0 escapes
            raise ResultsError(
                f"cell {cell['problem']} has no 'planted' level in the results file; rerun "
                "the reproduction with --force"
            )
        risk = final_risks(cell)
        finite = np.isfinite(risk)
        escaped = int((risk[finite] < level - info["tol"]).sum())
        runs = len(risk)
        rows.append(
            {
                "problem": cell["problem"],
                "optimizer": cell["optimizer"]["name"],
                "measured": escaped,
                "runs": runs,
                "rate": escaped / runs if runs else math.nan,
                "interval": list(wilson_interval(escaped, runs)),
                "published_percent": None,
                "test": "escape: final risk < planted level - tol",
                "p_value": None,
                "verdict": "not published",
                "stayed": sum(f == "level" for f in cell["records"]["fate"]) / runs,
                # unconverged, but inside the planted level's window and still descending to it
                "approaching": sum(n == "planted" for n in cell["records"]["nearest_level"]) / runs,
                "unconverged": cell["metrics"].get("unconverged_share", 0.0),
                "diverged": int((~finite).sum()),
            }
        )
    wall = sum(cell.get("wall_s", 0.0) for cell in doc["cells"])
    notes += [
        f"training wall time {wall:.1f} s over {len(doc['cells'])} cell(s)",
        "the paper's teacher weights and samples are not published: trapbench draws its own "
        "(problem option data), so the loss and B eigenvalues are compared by sign and "
        "definiteness, not value; its loss is L = 1/2 sum of squared errors",
        "hidden layers have no biases (so B of a first-layer neuron is 2 x 2, matching the "
        "paper's two eigenvalues); the planted splits are listed in the problem's options",
        "no published escape rate: the prediction tested is that a local minimum (Theorem 9) "
        "holds runs started next to it, so escapes need a drift along its flat directions",
    ]
    return {"rows": rows, "families": {}, "notes": notes}


def _fixed(
    name: str, measured, published_value, verdict: str, test: str = "value (data differ)"
) -> dict:
    """A row comparing one number of the construction with the paper's."""
    return {
        "problem": name,
        "measured": measured,
        "published": published_value,
        "test": test,
        "verdict": verdict,
    }


@dataclass(frozen=True)
class IJRSetting:
    """One simulation setting of Ibragimov, Jentzen & Riekert (2022, arXiv:2212.13111,
    Section 4), as read from the authors' code: the problem spec of width H, the widths, the
    optimizer (a suite entry), its learning-rate schedule and the step count."""

    number: int
    spec: Callable[[int], str]
    widths: tuple[int, ...]
    quick_widths: tuple[int, ...]
    optimizer: dict
    schedule: str
    steps: int
    dtype: str = "float32"


def _online(spec: str) -> str:
    """Online batches of 1024 fresh uniform samples per step (the paper's protocol)."""
    return f"{spec},sampled=true,batch=1024"


def _deep(target: str, arch: str, init: str, bias: str = "zero") -> str:
    """A deep-target spec: online batches where this tree's deep-target has them, else its
    fixed midpoint grid (the report notes which)."""
    from problems.registry import declared

    spec = f"deep-target:target={target},arch={arch},init={init},bias={bias}"
    return _online(spec) if "sampled" in declared("deep-target") else f"{spec},points=1024"


_ADAM = {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}

IJR_SETTINGS = (
    # clip needs float64: b - 1 rounds to b in float32 once |b| > 2^24 (b = H^3 N)
    IJRSetting(
        1,
        lambda h: _online(f"relu1d-root4:width={h},act=clip,init=ijr1,train=biases"),
        (10, 100, 1000),
        (2, 4),
        {"name": "sgd", "lr": 0.01},
        "step:factor=0.5,every=150",
        10000,
        "float64",
    ),
    IJRSetting(
        2,
        lambda h: _online(f"relu1d-x4sin:width={h},init=ijr2,train=inner_biases"),
        (5, 20, 100),
        (3, 5),
        {"name": "sgd", "lr": 0.1},
        "step:factor=0.5,every=500",
        10000,
    ),
    IJRSetting(
        3,
        lambda h: _online(f"relu1d-sin3x:width={h}"),
        (10, 100, 1000),
        (4, 8),
        {"name": "sgd", "lr": 0.001},
        "power:exponent=0.1",
        10000,
    ),
    IJRSetting(
        4,
        lambda h: _online(f"relu1d-x2+2x:width={h},init=ijr4"),
        (5, 20, 150),
        (3, 5),
        {"name": "sgd", "lr": 0.01},
        "",
        10000,
    ),
    IJRSetting(
        5,
        lambda h: _online(f"relu1d-x2+2x:width={h},init=he,zero_bias=true"),
        (32,),
        (8,),
        {"name": "sgd", "lr": 0.01},
        "",
        10000,
    ),
    IJRSetting(
        6,
        lambda h: _deep("sin3x", f"1-{h}-{h}-1", "normal", "normal"),  # all N(0, 1)
        (8, 15, 50),
        (8,),
        {"name": "sgd", "lr": 0.0005},
        "power:exponent=0.1",
        50000,
    ),
    *(
        IJRSetting(
            n,
            lambda h, arch=arch, init=init: _deep("x2+2x", arch.format(h=h), init),
            (width,),
            (width,),
            optimizer,
            schedule,
            10000,
        )
        for n, arch, width, init, optimizer, schedule in (
            (7, "1-{h}-{h}-1", 50, "he", {"name": "sgd", "lr": 0.01}, ""),
            (8, "1-{h}-{h}-1", 50, "xavier", {"name": "sgd", "lr": 0.01}, ""),
            (9, "1-{h}-{h}-{h}-1", 32, "he", {"name": "sgd", "lr": 0.01}, ""),
            (10, "1-{h}-{h}-{h}-1", 32, "xavier", {"name": "sgd", "lr": 0.01}, ""),
            (11, "1-{h}-{h}-1", 50, "he", _ADAM, "step:factor=0.5,every=500"),
            (12, "1-{h}-{h}-1", 50, "xavier", _ADAM, "step:factor=0.5,every=500"),
        )
    ),
)
IJR_RUNS = 300
# optima known to be global (problems/base.py): exact, or the reference solver's full search
CERTAIN_OPTIMA = ("exact", "computed")
IJR_QUICK = {"seeds": 32, "steps": 600}  # --quick: seeds, and steps (x5 for setting 6)


def _ijr_part(setting: IJRSetting, quick: bool) -> dict:
    widths = setting.quick_widths if quick else setting.widths
    steps = setting.steps
    if quick:
        steps = IJR_QUICK["steps"] * (5 if setting.steps > 10000 else 1)
    return {
        "setting": setting.number,
        "name": f"jentzen-2022-setting-{setting.number}",
        "seeds": IJR_QUICK["seeds"] if quick else IJR_RUNS,
        "steps": steps,
        "dtype": setting.dtype,
        "hessian": 0,
        "checkpoints": 12,
        "problems": [setting.spec(h) for h in widths],
        "optimizers": [{**setting.optimizer, "schedule": setting.schedule or "constant"}],
    }


def _ijr_suite(quick: bool) -> dict:
    """The twelve settings, each a part with its own optimizer, schedule, steps and dtype
    (a suite is one grid of problems x optimizers; ``expand`` runs the parts in order). No
    stopping rule: every run takes the paper's full step count. The full run's cells take up
    to hours each (setting 6 at width 50: 300 runs of 50,000 steps), so its seeds run in
    chunks that an interrupt does not lose (``--resume``; benchmarks/partial.py). Why 60: a
    chunk is padded to whole blocks of 32 seeds (engine.BLOCK), and 5 x 60 = 300 pads to
    5 x 64 (6% spare work) where chunks of 50 pad to 64 (28%)."""
    suite = {
        "name": "jentzen-2022" + ("-quick" if quick else ""),
        "description": "Ibragimov, Jentzen & Riekert (2022) Section 4: final risks of the "
        "twelve settings",
        "parts": [_ijr_part(s, quick) for s in IJR_SETTINGS],
    }
    return suite if quick else {**suite, "task_seeds": 60}


def expand(suite: dict, **kw) -> list:
    """The cells of a reproduction's suite: a plain suite, or one made of ``parts`` (each a
    suite with a ``setting`` number), expanded in order."""
    from benchmarks import suites

    if "parts" not in suite:
        return suites.expand(suite, **kw)
    return [
        cell
        for part in suite["parts"]
        for cell in suites.expand({k: v for k, v in part.items() if k != "setting"}, **kw)
    ]


def _settings_by_cell(suite: dict) -> dict[str, int]:
    """Cell id -> setting number, from the parts of the suite as run."""
    from benchmarks import suites

    return {
        cell.id: part["setting"]
        for part in suite["parts"]
        for cell in suites.expand({k: v for k, v in part.items() if k != "setting"})
    }


def width_of(info: dict) -> int:
    """H of a cell's network: relu1d's width, a deep network's first hidden width."""
    options = info["options"]
    return int(options["width"]) if "width" in options else int(options["arch"].split("-")[1])


def _ijr_compare(doc: dict) -> dict:
    """Per setting and width: the global rate with its Wilson interval against the paper's
    message (GD-type methods end at good NON-optimal points: predicted rate 0; verdict
    consistent when no run is within tol of the optimum), the median final risk against the
    best known or optimal width-H risk R*, and the share of runs within 1% and 10% of R*.
    Final risks are the exact integral risk (relu1d) or the risk on the problem's grid
    (deep-target), not the paper's Monte Carlo estimate."""
    from benchmarks.metrics import wilson_interval

    setting_of = _settings_by_cell(doc["suite"])
    rows, notes = [], []
    for cell in doc["cells"]:
        info = cell["problem_info"]
        risk = final_risks(cell)
        finite = risk[np.isfinite(risk)]
        runs = len(finite)
        optimum, tol = info["optimum"], info["tol"]
        won = int((finite - optimum <= tol).sum())
        # a best-known R* is only an upper bound on the optimum: a run at it is not shown to
        # be global, so it cannot refute the prediction (nor can it confirm it)
        certain = info["provenance"] in CERTAIN_OPTIMA
        ratio = finite / optimum if optimum > 0 else None
        rows.append(
            {
                "problem": cell["problem"],
                "cell": cell["id"],
                "setting": setting_of.get(cell["id"]),
                "width": width_of(info),
                "optimizer": cell["optimizer"]["name"],
                "measured": won,
                "runs": runs,
                "rate": won / runs if runs else math.nan,
                "interval": list(wilson_interval(won, runs)) if runs else None,
                "published_percent": 0.0,
                "test": "predicted 0: no run within tol of R* (the paper's message)"
                + ("" if certain else "; R* best known, an upper bound"),
                "p_value": None,
                "verdict": "consistent"
                if won == 0
                else ("not consistent" if certain else "undetermined"),
                "optimum": optimum,
                "provenance": info["provenance"],
                "lower_bound": info["options"].get("optimum_lower_bound"),
                "median_risk": float(np.median(finite)) if runs else math.nan,
                "within_1pct": float((ratio <= 1.01).mean()) if ratio is not None else None,
                "within_10pct": float((ratio <= 1.10).mean()) if ratio is not None else None,
                "below_optimum": int((finite < optimum - tol).sum()),
                "diverged": int(len(risk) - runs),
            }
        )
        if optimum <= 0:
            notes.append(
                f"{cell['problem']}: no best-known risk recorded, R* = 0 is only a lower "
                "bound; the within-1%/10% shares are not defined"
            )
        if won and not certain:
            notes.append(
                f"{cell['problem']}: {won} run(s) reached the best known R* = {optimum:.4g} "
                f"({info['provenance']}) within tol; whether that is the global optimum is not "
                "known, so the row is undetermined rather than not consistent"
            )
        if rows[-1]["below_optimum"]:
            notes.append(
                f"{cell['problem']}: {rows[-1]['below_optimum']} run(s) beat the best known "
                f"R* = {optimum:.4g} ({info['provenance']}): the reference is an upper bound"
            )
        if runs < len(risk):
            notes.append(f"{cell['problem']}: {len(risk) - runs} run(s) diverged (left out)")
    notes.append(
        "final risks are the exact integral risk (relu1d) or the risk on the deep problem's "
        "grid, not a Monte Carlo estimate; training uses the paper's online batches"
        + (
            ""
            if any("sampled=true" in r["problem"].lower() for r in rows if "deep" in r["problem"])
            else " (deep-target here trains on its fixed 1024-point grid: no sampled option)"
        )
    )
    return {"rows": rows, "families": {}, "notes": notes}


REPRODUCTIONS: dict[str, Reproduction] = {
    r.name: r
    for r in [
        Reproduction(
            "safran-shamir-2018",
            published.CITATION,
            "Table 1: share of GD runs ending at a spurious local minimum, k = n = 6..12 and "
            "n = k + 1; spurious families up to symmetry with their Hessian check",
            _safran_shamir_suite,
            _safran_shamir_compare,
        ),
        Reproduction(
            "cheridito-2024",
            "Cheridito, Jentzen & Rossmannek (2024), Gradient descent provably escapes saddle "
            "points in the training of shallow ReLU networks [seed 002]",
            "affine target, widths 1..6, GD with shrinking steps: runs ending at the constant "
            "network against P(all neurons dead at init) = (3/8)^H, split into dead at init "
            "and died during training",
            _cheridito_suite,
            _cheridito_compare,
        ),
        Reproduction(
            "jentzen-riekert-2024",
            "Jentzen & Riekert (2024), Non-convergence to global minimizers for Adam and "
            "stochastic gradient optimization [seed 001]",
            "global rate against width for SGD, momentum, AdaGrad, RMSprop and Adam on a teacher "
            "needing every neuron, against the bound (1 - p)^H; failures split into dead at "
            "init, died in training, alive but misplaced",
            _jentzen_riekert_suite,
            _jentzen_riekert_compare,
        ),
        Reproduction(
            "petzka-2021",
            "Petzka & Sminchisescu (2021), Non-attracting regions of local minima in deep and "
            "wide neural networks, JMLR [seed 003]",
            "Section 5.4: a 2-1-1-1 sigmoid local minimum split up to 2-21-21-1 (B-matrix and "
            "D-condition of Theorem 9 checked); escape rate of five optimizers from small "
            "perturbations of it",
            _petzka_suite,
            _petzka_compare,
        ),
        Reproduction(
            "jentzen-2022",
            "Ibragimov, Jentzen & Riekert (2022), Convergence to good non-optimal critical "
            "points in the training of neural networks (arXiv:2212.13111) [seed 000]",
            "Section 4's twelve settings (clip and ReLU, 1-3 hidden layers, SGD and Adam with "
            "their schedules, 300 runs, online batches of 1024): histograms of final risks "
            "beside the best known width-H risk, global rate against the predicted 0",
            _ijr_suite,
            _ijr_compare,
        ),
    ]
}


def _construction_text(row: dict) -> str:
    return (
        f"{row['problem']:28s} measured {row['measured']} vs paper {row['published']}: "
        f"{row['verdict']} ({row['test']})"
    )


def _escape_text(row: dict) -> str:
    low, high = row["interval"]
    return (
        f"{row['problem']:16s} {row['optimizer']:9s} escaped {row['measured']}/"
        f"{row['runs']} [{low:.1%}, {high:.1%}], stayed at the level {row['stayed']:.1%}"
        f", unconverged {row['unconverged']:.1%} of which in the level's window "
        f"{row.get('approaching', 0.0):.1%} ({row['verdict']})"
    )


def _setting_text(row: dict) -> str:
    near = row["within_10pct"]
    return (
        f"setting {row['setting']!s:>2} H={row['width']:<5d} global "
        f"{row['measured']}/{row['runs']} (predicted 0: {row['verdict']}); median risk "
        f"{row['median_risk']:.3g} vs R* {row['optimum']:.3g} ({row['provenance']}); "
        + ("within 10% of R*: -" if near is None else f"within 10% of R*: {near:.0%}")
    )


def _failure_split_text(row: dict) -> str:
    return (
        f"{row['problem']:28s} {row['optimizer']:9s} global {row['rate']:6.1%} vs bound "
        f"{row['published_percent']:5.1f}% (p={row['p_value']:.3g} {row['verdict']}); "
        f"failed: dead at init {row['dead_at_init']:.1%}, died in training "
        f"{row['died_in_training']:.1%}, misplaced {row['misplaced']:.1%}"
    )


def _constant_share_text(row: dict) -> str:
    return (
        f"{row['problem']:24s} lr {row['lr']:<6g} at the constant network "
        f"{row['rate']:6.1%} (dead at init {row['dead_at_init']:.1%}, died in training "
        f"{row['died_in_training']:.1%}) vs (3/8)^H {row['published_percent']:.1f}%: "
        f"p={row['p_value']:.3g} {row['verdict']}"
    )


def _rate_text(row: dict) -> str:
    low, high = row["interval"] or (math.nan, math.nan)
    pub = "-" if row["published_percent"] is None else f"{row['published_percent']:.1f}%"
    p = "-" if row["p_value"] is None else f"{row['p_value']:.3g}"
    return (
        f"{row['problem']:24s} {row['measured']:5d}/{row['runs']:<6d} "
        f"[{low:6.1%}, {high:6.1%}] {pub:>9s} {p:>7s}  {row['verdict']}"
    )


# A row of its own shape, by the first of these keys it has (a construction's value, an
# escape rate, a setting's risks, a failure split, a constant-network share); any other row
# is a rate against a published rate, the only shape the table's column header describes.
_SHAPED_ROWS = {
    "published": _construction_text,
    "stayed": _escape_text,
    "setting": _setting_text,
    "misplaced": _failure_split_text,
    "lr": _constant_share_text,
}


def _row_format(row: dict) -> Callable[[dict], str]:
    return next((fmt for key, fmt in _SHAPED_ROWS.items() if key in row), _rate_text)


def row_text(row: dict) -> str:
    """One row of a comparison as a line of text. The rows differ by reproduction (a rate
    against a published rate, a construction's value, an escape rate, a setting's risks), so
    the terminal table and the HTML report both print this line rather than each knowing
    every shape."""
    return _row_format(row)(row)


def table(result: dict) -> str:
    """The measured-versus-published table for the terminal."""
    rate_rows = any(_row_format(row) is _rate_text for row in result["rows"])
    lines = (
        [
            f"{'problem':24s} {'measured':>12s} {'95% interval':>16s} {'published':>9s} "
            f"{'p':>7s}  verdict"
        ]
        if rate_rows
        else []
    )
    lines += [row_text(row) for row in result["rows"]]
    for problem, fams in result.get("families", {}).items():
        for f in fams:
            eig = f["eig_min"]  # None for a degenerate point: no eigenvalues
            lines.append(
                f"  {problem}: family F = {f['risk_mean']:.6f} x {f['count']} ({f['verdict']}"
                + (")" if eig is None else f", smallest Hessian eigenvalue {eig:.3g})")
            )
    lines += [f"note: {note}" for note in result.get("notes", [])]
    return "\n".join(lines)
