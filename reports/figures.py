"""The report's figures, in a registry: a new figure is one function and one ``@figure``
registration; the template loops over the registry.

Each function returns a ``Panel`` (a base64 PNG plus the colour it drew each optimizer in,
read back from the drawn artists, so a test can check that every figure uses the report's one
colour per optimizer) or an ``Empty`` (one line saying why there is nothing to show).
Matplotlib only (no seaborn, no pandas): importing those cost most of the render time.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from benchmarks.analysis import optimizer_label  # noqa: E402
from benchmarks.summary import FATE_ORDER  # noqa: E402
from reports.palette import FATE_COLOURS, level_colours  # noqa: E402
from reports.view import View, floats  # noqa: E402

plt.style.use("seaborn-v0_8-whitegrid")
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8})
DPI = 100


@dataclass(frozen=True)
class Panel:
    png: str
    colours: dict[str, str]
    alt: str


@dataclass(frozen=True)
class Empty:
    reason: str


@dataclass(frozen=True)
class Context:
    view: View
    problem: str | None = None
    comparison: list[dict] | None = None


@dataclass(frozen=True)
class FigureSpec:
    key: str
    title: str
    scope: str  # "overview" (once), "problem" (once per problem) or "comparison"
    how: str
    draw: Callable[[Context], Panel | Empty]
    wide: bool = field(default=False)


REGISTRY: list[FigureSpec] = []


def figure(key: str, title: str, scope: str, how: str, wide: bool = False):
    """Register a figure function under ``key`` (shown in registration order)."""

    def wrap(draw: Callable[[Context], Panel | Empty]) -> Callable[[Context], Panel | Empty]:
        REGISTRY.append(FigureSpec(key, title, scope, how, draw, wide))
        return draw

    return wrap


def figures_for(scope: str) -> list[FigureSpec]:
    return [f for f in REGISTRY if f.scope == scope]


def _drawn_colours(fig) -> dict[str, str]:
    """Label -> colour of every legend entry and coloured tick label the figure shows."""
    out = {}
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=False):
                colour = (
                    handle.get_color() if isinstance(handle, Line2D) else handle.get_facecolor()
                )
                out[text.get_text()] = to_hex(colour).upper()
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            if tick.get_text() and to_hex(tick.get_color()).upper() != "#000000":
                out.setdefault(tick.get_text(), to_hex(tick.get_color()).upper())
    return out


def to_panel(fig, alt: str) -> Panel:
    colours = _drawn_colours(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Panel(base64.b64encode(buf.getvalue()).decode(), colours, alt)


def _short(value: float, _pos=None) -> str:
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e") if value else "0"


def _log(ax, axis: str = "x") -> None:
    """A log axis with plain '1e-3' labels on the decades only: matplotlib's default labels
    are mathtext, and laying them out was most of the report's render time."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, numticks=8))
    target.set_major_formatter(FuncFormatter(_short))
    target.set_minor_formatter(NullFormatter())


def _colour_ticks(labels, colours: dict[str, str]) -> None:
    for tick in labels:
        if tick.get_text() in colours:
            tick.set_color(colours[tick.get_text()])


def _legend(ax, handles, **kw):
    ax.legend(handles=handles, frameon=True, **kw)


def _opt_handles(view: View, names: list[str]) -> list[Line2D]:
    return [Line2D([], [], color=view.colours[n], lw=2, label=n) for n in names]


# ---------------------------------------------------------------- overview figures


def _segments(view: View, problem: str) -> list[tuple[str, str]]:
    """(segment, colour) in risk order: global, the levels lowest risk first, then the other
    fates from critical to diverged."""
    levels = view.levels_by_risk[problem]
    lc = level_colours(levels)
    out = [("global", FATE_COLOURS["global"])]
    out += [(f"level {lab}", lc[lab]) for lab in levels]
    out += [(f, FATE_COLOURS[f]) for f in FATE_ORDER if f not in ("global", "level")]
    return out


def occupancy_shares(cell: dict) -> dict[str, float]:
    """Share of seeds per segment: levels split out of the 'level' fate."""
    m = cell["metrics"]
    seeds = max(m["seeds"], 1)
    shares = {f: n / seeds for f, n in (m.get("fates") or {}).items() if f != "level"}
    counted = 0
    for label, n in (m.get("levels") or {}).items():
        shares[f"level {label}"] = n / seeds
        counted += n
    rest = (m.get("fates") or {}).get("level", 0) - counted
    if rest > 0:  # level runs without a label (older files): one segment
        shares["level (unlabelled)"] = rest / seeds
    return shares


@figure(
    "occupancy",
    "Where runs end",
    "overview",
    "One bar per optimizer (best learning rate), split by where each seed ended. Segments go "
    "from the global minimum (green) through the known non-global levels, lowest risk first "
    "(light to dark orange: the darker, the worse the trap), to critical points, saddles, "
    "unconverged and diverged runs. The theory predicts that a sizeable share of runs piles up "
    "on the levels.",
    wide=True,
)
def occupancy(ctx: Context) -> Panel | Empty:
    view = ctx.view
    problems = view.problems
    heights = [0.7 + 0.32 * len(view.cells_of(p)) for p in problems]
    fig, axes = plt.subplots(
        len(problems),
        1,
        figsize=(10.5, sum(heights) + 0.4),
        gridspec_kw={"height_ratios": heights, "hspace": 0.5},
        squeeze=False,
        sharex=True,
    )
    for ax, problem in zip(axes[:, 0], problems, strict=True):
        cells = view.cells_of(problem)
        names = [o for o, _ in cells]
        segments = _segments(view, problem)
        left = np.zeros(len(cells))
        used = []
        shares = [occupancy_shares(c) for _, c in cells]
        if any("level (unlabelled)" in s for s in shares):
            segments.insert(1, ("level (unlabelled)", FATE_COLOURS["level"]))
        for seg, colour in segments:
            widths = np.array([s.get(seg, 0.0) for s in shares])
            if widths.any():
                ax.barh(names, widths, left=left, color=colour, edgecolor="white", lw=0.5)
                used.append(Patch(facecolor=colour, label=seg))
            left += widths
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_title(view.spec[problem], loc="left", fontsize=9)
        _colour_ticks(ax.get_yticklabels(), view.colours)
        ncol = max(1, math.ceil(len(used) / 8))
        _legend(ax, used, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=ncol, fontsize=7)
    axes[-1, 0].set_xlabel("share of seeds")
    return to_panel(fig, "Stacked bars: share of seeds per end state, per problem and optimizer")


@figure(
    "heatmap",
    "Global-minimum rate",
    "overview",
    "Each square is the share of seeds that reached the global minimum, one optimizer (column) "
    "on one problem (row), at its best learning rate. Dark squares mean most runs missed it.",
)
def success_heatmap(ctx: Context) -> Panel | Empty:
    view = ctx.view
    table = np.full((len(view.problems), len(view.optimizers)), np.nan)
    for i, p in enumerate(view.problems):
        for j, o in enumerate(view.optimizers):
            if (p, o) in view.best:
                table[i, j] = view.best[(p, o)]["metrics"]["success_rate"]
    fig, ax = plt.subplots(
        figsize=(2.5 + 1.1 * len(view.optimizers), 1.0 + 0.45 * len(view.problems))
    )
    image = ax.imshow(table, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(table):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", color="white" if v < 0.6 else "k")
    ax.set_xticks(range(len(view.optimizers)), view.optimizers, rotation=30, ha="right")
    ax.set_yticks(range(len(view.problems)), [view.spec[p] for p in view.problems])
    ax.grid(False)
    _colour_ticks(ax.get_xticklabels(), view.colours)
    fig.colorbar(image, ax=ax, label="global-minimum rate")
    return to_panel(fig, "Heatmap of global-minimum rates, problems by optimizers")


COCO_X = np.logspace(-4, 10, 400)


def aggregated_ecdf(view: View, optimizer: str, x: np.ndarray = COCO_X) -> np.ndarray | None:
    """Share of (problem, seed) pairs with gap / tol <= x, each problem weighted equally
    (COCO's runtime-ECDF aggregation, Hansen et al. 2021, applied to final gaps)."""
    curves = []
    for problem in view.problems:
        cell = view.best.get((problem, optimizer))
        if cell is None:
            continue
        tol = view.info[problem]["tol"]
        ratio = np.sort(floats(cell["records"]["gap"]) / tol)
        ratio = ratio[np.isfinite(ratio)]
        n = len(cell["records"]["gap"])
        curves.append(np.searchsorted(ratio, x, side="right") / max(n, 1))
    return np.mean(curves, axis=0) if curves else None


@figure(
    "coco-ecdf",
    "Final gaps over all problems (COCO-style ECDF)",
    "overview",
    "For each optimizer, the share of (problem, seed) pairs whose final gap is at most x times "
    "the problem's tolerance, every problem weighted equally. The value at x = 1 (dotted line) "
    "is the mean global-minimum rate; curves further left and higher are better.",
)
def coco_ecdf(ctx: Context) -> Panel | Empty:
    view = ctx.view
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for o in view.optimizers:
        y = aggregated_ecdf(view, o)
        if y is not None:
            ax.step(COCO_X, y, where="post", color=view.colours[o], lw=1.8)
    _log(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.axvline(1, color="k", ls=":", lw=1)
    ax.set_xlabel("final gap / tolerance (log scale)")
    ax.set_ylabel("share of (problem, seed) pairs")
    _legend(ax, _opt_handles(view, view.optimizers), loc="lower right")
    return to_panel(fig, "Aggregated ECDF of final gaps over all problems")


def _grid_cells(view: View) -> dict[str, dict[str, list[tuple[float, float]]]]:
    grid: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for c in view.all_cells:
        lr = c["optimizer"]["hyperparameters"].get("lr")
        if lr is not None:
            grid.setdefault(c["problem"], {}).setdefault(optimizer_label(c), []).append(
                (lr, c["metrics"]["success_rate"])
            )
    return grid


@figure(
    "lr-sensitivity",
    "Learning-rate sensitivity",
    "overview",
    "Global-minimum rate at every learning rate of the grid, one panel per problem. A flat "
    "curve means the rate is a property of the landscape, not of tuning.",
)
def lr_sensitivity(ctx: Context) -> Panel | Empty:
    view = ctx.view
    grid = _grid_cells(view)
    swept = [p for p in view.problems if any(len(v) > 1 for v in grid.get(p, {}).values())]
    if not swept:
        return Empty("Each optimizer ran at one learning rate; rerun with --lr-grid to see this.")
    cols = min(3, len(swept))
    rows = math.ceil(len(swept) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols + 1.5, 2.8 * rows), squeeze=False, sharey=True
    )
    for ax, problem in zip(axes.flat, swept, strict=False):
        for o in view.optimizers:
            points = sorted(grid[problem].get(o, []))
            if points:
                lr, rate = zip(*points, strict=True)
                ax.plot(lr, rate, "o-", color=view.colours[o], ms=4)
        _log(ax)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(view.spec[problem], fontsize=9)
        ax.set_xlabel("learning rate")
    for ax in list(axes.flat)[len(swept) :]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("global-minimum rate")
    _legend(
        axes[0, -1], _opt_handles(view, view.optimizers), loc="upper left", bbox_to_anchor=(1.02, 1)
    )
    return to_panel(fig, "Global-minimum rate against learning rate")


def dead_neuron_bound(interval: list[float], width: int) -> float:
    """(1 - p)^H: the chance that none of H neurons starts dead on [a, b], with
    p = 1/4 + arcsin(rho)/(2 pi), rho = (ab + 1)/sqrt((a^2 + 1)(b^2 + 1)) for w, b ~ N(0, 1)
    (problems/relu1d.py, dead_probability). A dead neuron never moves under SGD, momentum,
    AdaGrad, RMSprop or Adam, so when the target needs every neuron (a realizable teacher of
    width H) the global-minimum rate cannot exceed it."""
    a, b = interval
    rho = (a * b + 1) / math.sqrt((a * a + 1) * (b * b + 1))
    p = 0.25 + math.asin(rho) / (2 * math.pi)
    return (1 - p) ** width


def _width_families(view: View) -> dict[str, list[tuple[int, str]]]:
    families: dict[str, list[tuple[int, str]]] = {}
    for p in view.problems:
        width = (view.info[p].get("options") or {}).get("width")
        if isinstance(width, int) and not isinstance(width, bool):
            rest = ",".join(
                part
                for part in view.spec[p].partition(":")[2].split(",")
                if not part.startswith("width=")
            )
            families.setdefault(f"{p.partition(':')[0]}:{rest}".rstrip(":"), []).append((width, p))
    return {k: sorted(v) for k, v in families.items() if len({w for w, _ in v}) > 1}


@figure(
    "rate-vs-width",
    "Global-minimum rate against width",
    "overview",
    "The same problem at several widths H. The dashed black curve is the dead-neuron bound "
    "(1 - p)^H: the chance that no neuron starts dead (Jentzen & Riekert; a dead neuron never "
    "moves), drawn for N(0, 1) initializations. Rates for targets that need every neuron stay "
    "below it.",
)
def rate_vs_width(ctx: Context) -> Panel | Empty:
    view = ctx.view
    families = _width_families(view)
    if not families:
        return Empty("Every problem ran at one width; run one at several widths to see this.")
    fig, axes = plt.subplots(
        1, len(families), figsize=(4.2 * len(families) + 1.5, 3.2), squeeze=False, sharey=True
    )
    for ax, (family, members) in zip(axes[0], families.items(), strict=True):
        widths = [w for w, _ in members]
        for o in view.optimizers:
            pts = [
                (w, view.best[(p, o)]["metrics"]["success_rate"])
                for w, p in members
                if (p, o) in view.best
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", color=view.colours[o], ms=4)
        options = view.info[members[0][1]].get("options") or {}
        if options.get("init") == "normal" and options.get("interval"):
            h = np.arange(min(widths), max(widths) + 1)
            ax.plot(h, [dead_neuron_bound(options["interval"], int(k)) for k in h], "k--", lw=1)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("width H")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("global-minimum rate")
    handles = _opt_handles(view, view.optimizers)
    handles.append(Line2D([], [], color="k", ls="--", label="(1 - p)^H"))
    _legend(axes[0, -1], handles, loc="upper left", bbox_to_anchor=(1.02, 1))
    return to_panel(fig, "Global-minimum rate against network width with the dead-neuron bound")


# ---------------------------------------------------------------- per-problem figures


def _merge_close(levels: list[tuple[str, float]], span: float) -> list[tuple[str, float]]:
    """Join labels of levels closer than 3% of the log axis, so tick labels cannot overlap."""
    out: list[tuple[str, float]] = []
    for label, value in sorted(levels, key=lambda lv: lv[1]):
        if out and math.log10(value) - math.log10(out[-1][1]) < 0.03 * span:
            out[-1] = (f"{out[-1][0]}, {label}", out[-1][1])
        else:
            out.append((label, value))
    return out


@figure(
    "histogram",
    "Final risk of every seed",
    "problem",
    "Each seed's final risk on a log axis, one outline per optimizer; dashed lines mark the "
    "known non-global levels (named on top), the solid line the optimal risk R*. Runs pile up "
    "on the levels.",
    wide=True,
)
def risk_histogram(ctx: Context) -> Panel | Empty:
    view, problem = ctx.view, ctx.problem
    info = view.info[problem]
    risks = {o: floats(c["records"]["final_risk"]) for o, c in view.cells_of(problem)}
    positive = np.concatenate([r[np.isfinite(r) & (r > 0)] for r in risks.values()])
    if not len(positive):
        return Empty("No seed ended with a finite positive risk, so there is nothing to bin.")
    levels = [(lab, v) for lab, v in info["levels"] if v > 0]
    lo = min(
        [positive.min()]
        + [v for _, v in levels]
        + ([info["optimum"]] if info["optimum"] > 0 else [])
    )
    hi = max([positive.max()] + [v for _, v in levels])
    lo, hi = lo / 1.5, hi * 1.5
    bins = np.logspace(math.log10(lo), math.log10(hi), 61)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for o, r in risks.items():
        counts, _ = np.histogram(r[np.isfinite(r) & (r > 0)], bins=bins)
        ax.stairs(counts, bins, color=view.colours[o], lw=1.5)
    _log(ax)
    ax.set_xlim(lo, hi)
    for _, v in levels:
        ax.axvline(v, color="0.35", ls="--", lw=0.8)
    if info["optimum"] > 0:
        ax.axvline(info["optimum"], color="k", lw=1.5)
        levels = [*levels, ("R*", info["optimum"])]
    if levels:
        top = ax.secondary_xaxis("top")
        merged = _merge_close(levels, math.log10(hi) - math.log10(lo))
        top.set_xticks([v for _, v in merged], [lab for lab, _ in merged], rotation=90, fontsize=7)
        top.tick_params(length=0)
    ax.set_xlabel("final risk (log scale)")
    ax.set_ylabel("seeds")
    _legend(ax, _opt_handles(view, list(risks)), loc="upper left", bbox_to_anchor=(1.01, 1))
    return to_panel(fig, f"Histogram of final risks for {problem}")


@figure(
    "gap-ecdf",
    "Final gap ECDF",
    "problem",
    "Share of seeds whose final gap (risk - R*) is at most x; the dotted line is the success "
    "tolerance, so each curve's height there is the global-minimum rate. Diverged seeds never "
    "count, so a curve may end below 1.",
)
def gap_ecdf(ctx: Context) -> Panel | Empty:
    view, problem = ctx.view, ctx.problem
    tol = view.info[problem]["tol"]
    floor = max(tol * 1e-3, 1e-16)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    names = []
    for o, c in view.cells_of(problem):
        gaps = floats(c["records"]["gap"])
        n = len(gaps)
        gaps = np.sort(np.clip(gaps[np.isfinite(gaps)], floor, None))
        if n:
            ax.step(
                np.r_[floor, gaps],
                np.r_[0, np.arange(1, len(gaps) + 1)] / n,
                where="post",
                color=view.colours[o],
            )
            names.append(o)
    _log(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.axvline(tol, color="k", ls=":", lw=1)
    ax.set_xlabel(f"final gap (log; below {floor:.0e} drawn at it)")
    ax.set_ylabel("share of seeds")
    _legend(ax, _opt_handles(view, names), loc="lower right")
    return to_panel(fig, f"ECDF of final gaps for {problem}")


@figure(
    "runtime-ecdf",
    "Time to the global minimum",
    "problem",
    "Share of seeds that have reached the global minimum by each step (COCO's runtime ECDF): "
    "how fast, not only how often.",
)
def runtime_ecdf(ctx: Context) -> Panel | Empty:
    view, problem = ctx.view, ctx.problem
    cells = view.cells_of(problem)
    hits = {o: np.sort(np.asarray(c["records"]["hit_step"])) for o, c in cells}
    if not any((h >= 0).any() for h in hits.values()):
        return Empty("No seed of any optimizer reached the global minimum: no time to target.")
    steps = max(c["config"]["steps"] for _, c in cells)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for o, h in hits.items():
        ok = h[h >= 0] + 1
        n = len(h)
        ax.step(
            np.r_[1, ok, steps + 1],
            np.r_[0, np.arange(1, len(ok) + 1), len(ok)] / n,
            where="post",
            color=view.colours[o],
        )
    _log(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("steps (log scale)")
    ax.set_ylabel("share at the global minimum")
    _legend(ax, _opt_handles(view, list(hits)), loc="upper left")
    return to_panel(fig, f"Runtime ECDF for {problem}")


@figure(
    "trajectories",
    "Gap over training",
    "problem",
    "Median final gap at each checkpoint, with the band between the quartiles: where a curve "
    "flattens above zero, the runs have settled on a non-global point.",
)
def trajectories(ctx: Context) -> Panel | Empty:
    view, problem = ctx.view, ctx.problem
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    names = []
    for o, c in view.cells_of(problem):
        cp = c.get("checkpoints") or {}
        q = cp.get("gap_quantiles") or {}
        if not cp.get("steps") or "q50" not in q:
            continue
        x = np.asarray(cp["steps"]) + 1
        mid = np.clip(floats(q["q50"]), 1e-16, None)
        ax.plot(x, mid, color=view.colours[o])
        if "q25" in q and "q75" in q:
            ax.fill_between(
                x,
                np.clip(floats(q["q25"]), 1e-16, None),
                np.clip(floats(q["q75"]), 1e-16, None),
                color=view.colours[o],
                alpha=0.18,
                lw=0,
            )
        names.append(o)
    if not names:
        plt.close(fig)
        return Empty("The results file holds no checkpoints for this problem.")
    _log(ax)
    _log(ax, "y")
    ax.set_xlabel("step + 1 (log scale)")
    ax.set_ylabel("gap (log scale)")
    _legend(ax, _opt_handles(view, names), loc="lower left")
    return to_panel(fig, f"Gap trajectories for {problem}")


@figure(
    "budget",
    "Fates against the training budget",
    "problem",
    "Share of seeds at the global minimum at each checkpoint (solid) and, where the results "
    "hold per-checkpoint fates, the share still unconverged (dashed): how the picture would "
    "change with a smaller or larger step budget. A curve still rising at the end says the "
    "budget was too small.",
)
def budget(ctx: Context) -> Panel | Empty:
    view, problem = ctx.view, ctx.problem
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    names, dashed = [], False
    for o, c in view.cells_of(problem):
        cp = c.get("checkpoints") or {}
        if not cp.get("steps") or "success_fraction" not in cp:
            continue
        x = np.asarray(cp["steps"]) + 1
        ax.plot(x, floats(cp["success_fraction"]), color=view.colours[o])
        fates = cp.get("fates") or {}
        if "unconverged" in fates:
            ax.plot(x, floats(fates["unconverged"]), color=view.colours[o], ls="--")
            dashed = True
        names.append(o)
    if not names:
        plt.close(fig)
        return Empty("The results file holds no checkpoints for this problem.")
    if (
        not any(
            np.nanmax(floats(c["checkpoints"]["success_fraction"])) > 0
            for _, c in view.cells_of(problem)
            if (c.get("checkpoints") or {}).get("success_fraction")
        )
        and not dashed
    ):
        plt.close(fig)
        return Empty("No seed reached the global minimum at any checkpoint; the share stays 0.")
    _log(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step budget (log scale)")
    ax.set_ylabel("share of seeds")
    _legend(ax, _opt_handles(view, names), loc="upper left")
    return to_panel(fig, f"Share at the global minimum against steps for {problem}")


# ---------------------------------------------------------------- comparison


@figure(
    "comparison",
    "Candidate against each baseline",
    "comparison",
    "Paired difference in global-minimum rate (candidate - baseline) per problem, one bar per "
    "baseline in the baseline's colour; a star marks Holm-corrected McNemar p < 0.05.",
)
def comparison_bars(ctx: Context) -> Panel | Empty:
    view, rows = ctx.view, ctx.comparison or []
    if not rows:
        return Empty("The candidate shares no problem with a baseline: nothing to compare.")
    fig, ax = plt.subplots(figsize=(8.5, 0.9 + 0.38 * len(rows)))
    labels = [f"{view.spec.get(r['problem'], r['problem'])} vs {r['baseline']}" for r in rows]
    diffs = [r["success_diff"] or 0.0 for r in rows]
    colours = [view.colours.get(r["baseline"], "#888888") for r in rows]
    ax.barh(labels, diffs, color=colours)
    for y, (d, r) in enumerate(zip(diffs, rows, strict=True)):
        if r["mcnemar"]["p_holm"] < 0.05:
            ax.text(d, y, " *" if d >= 0 else "* ", va="center", ha="left" if d >= 0 else "right")
    ax.axvline(0, color="k", lw=1)
    lim = max(0.05, max(abs(d) for d in diffs) * 1.15)
    ax.set_xlim(-lim, lim)
    ax.invert_yaxis()
    ax.set_xlabel("difference in global-minimum rate (candidate - baseline)")
    bases = list(dict.fromkeys(r["baseline"] for r in rows))
    _legend(
        ax,
        [Patch(facecolor=view.colours.get(b, "#888888"), label=b) for b in bases],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    return to_panel(fig, "Bar chart of paired success-rate differences")


@figure(
    "ijr-histograms",
    "Final risks per setting (jentzen-2022)",
    "overview",
    "One panel per setting of Ibragimov, Jentzen & Riekert (2022, Section 4): the histogram of "
    "final risks on a log x-axis as in the paper, one colour per width H, the vertical line "
    "in the same colour the best known / optimal risk R* of width H.",
    wide=True,
)
def ijr_histograms(ctx: Context) -> Panel | Empty:
    rep = ctx.view.doc.get("reproduction") or {}
    if rep.get("name") != "jentzen-2022":
        return Empty("Drawn for the jentzen-2022 reproduction only.")
    cells = {c["id"]: c for c in ctx.view.doc["cells"]}
    by_setting: dict[int, list[dict]] = {}
    for row in rep["rows"]:
        if row["cell"] in cells:
            by_setting.setdefault(row["setting"], []).append(row)
    if not by_setting:
        return Empty("The reproduction has no finished cells.")
    columns = min(4, len(by_setting))
    rows_n = -(-len(by_setting) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(3.2 * columns, 2.6 * rows_n), squeeze=False)
    widths = sorted({r["width"] for rows in by_setting.values() for r in rows})
    palette = dict(
        zip(widths, plt.get_cmap("viridis")(np.linspace(0, 0.85, len(widths))), strict=True)
    )
    for ax, (setting, rows) in zip(axes.flat, sorted(by_setting.items()), strict=False):
        risks = {r["width"]: floats(cells[r["cell"]]["records"]["final_risk"]) for r in rows}
        values = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in risks.values()])
        refs = [r["optimum"] for r in rows if r["optimum"] > 0]
        if not len(values):
            ax.set_title(f"setting {setting}: no positive risk")
            continue
        lo, hi = min([values.min(), *refs]) / 1.5, max([values.max(), *refs]) * 1.5
        bins = np.logspace(math.log10(lo), math.log10(hi), 41)
        for r in rows:
            colour = palette[r["width"]]
            counts, _ = np.histogram(risks[r["width"]], bins=bins)
            ax.stairs(counts, bins, color=colour, lw=1.4, label=f"H={r['width']}")
            if r["optimum"] > 0:
                ax.axvline(r["optimum"], color=colour, lw=1.2, ls="--")
        _log(ax)
        ax.set_title(f"setting {setting}")
        ax.legend(frameon=True, fontsize=7)
    for ax in list(axes.flat)[len(by_setting) :]:
        ax.set_visible(False)
    fig.supxlabel("final risk (log scale); dashed: R* of width H")
    fig.supylabel("runs")
    fig.tight_layout()
    return to_panel(fig, "Histograms of final risks per setting of jentzen-2022")
