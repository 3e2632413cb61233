"""Seaborn figures, each returned as a base64 PNG so the report is one self-contained file."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmarks.fates import FATES  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
# Okabe–Ito colours (distinguishable with colour-vision deficiencies), grey for "unconverged".
FATE_COLOURS = dict(
    zip(FATES, ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#999999", "#CC79A7"], strict=True)
)


def to_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def success_heatmap(cells: pd.DataFrame) -> str:
    best = cells[cells.best]
    table = best.pivot_table(index="problem", columns="optimizer", values="success_rate")
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * table.shape[1], 1.2 + 0.6 * table.shape[0]))
    sns.heatmap(
        table,
        annot=True,
        fmt=".0%",
        vmin=0,
        vmax=1,
        cmap="viridis",
        ax=ax,
        cbar_kws={"label": "global-minimum rate"},
    )
    ax.set_title("Share of seeds reaching the global minimum (best learning rate)")
    ax.set_xlabel("optimizer")
    ax.set_ylabel("problem")
    return to_png(fig)


def fate_bars(cells: pd.DataFrame) -> str:
    best = cells[cells.best].copy()
    labels = best.problem + "  /  " + best.optimizer
    shares = pd.DataFrame(
        [{f: c.get(f, 0) / max(sum(c.values()), 1) for f in FATES} for c in best.fates],
        index=labels,
    )
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.45 * len(shares)))
    left = np.zeros(len(shares))
    for fate in FATES:
        ax.barh(shares.index, shares[fate], left=left, color=FATE_COLOURS[fate], label=fate)
        left += shares[fate].to_numpy()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of seeds")
    ax.set_title("Fate of each run")
    ax.invert_yaxis()
    ax.legend(ncol=len(FATES), loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(shares)))
    return to_png(fig)


def risk_histogram(seeds: pd.DataFrame, problem: str, levels: list, optimum: float) -> str:
    data = seeds[(seeds.problem == problem) & (seeds.final_risk > 0)]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    if not data.empty:
        sns.histplot(
            data=data,
            x="final_risk",
            hue="optimizer",
            log_scale=True,
            element="step",
            fill=False,
            bins=60,
            ax=ax,
        )
    for label, value in levels:
        if value > 0:
            ax.axvline(value, color="0.35", ls="--", lw=1)
            ax.text(
                value,
                ax.get_ylim()[1] * 0.95,
                f" {label}",
                rotation=90,
                va="top",
                fontsize=8,
                color="0.25",
            )
    if optimum > 0:
        ax.axvline(optimum, color="black", lw=1.5)
        ax.text(optimum, ax.get_ylim()[1] * 0.95, " R* (global)", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("final risk (log scale); dashed lines: known non-global levels")
    ax.set_ylabel("seeds")
    ax.set_title(f"{problem}: final risk of every seed")
    return to_png(fig)


def gap_ecdf(seeds: pd.DataFrame, problem: str, tol: float) -> str:
    data = seeds[seeds.problem == problem].copy()
    floor = max(tol * 1e-3, 1e-16)
    data["gap_plot"] = data.gap.clip(lower=floor)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.ecdfplot(
        data=data.dropna(subset=["gap_plot"]), x="gap_plot", hue="optimizer", log_scale=True, ax=ax
    )
    ax.axvline(tol, color="black", ls=":", lw=1)
    ax.text(tol, 0.02, " tolerance", fontsize=8)
    ax.set_xlabel(f"final gap risk - R* (log; values below {floor:.0e} drawn at it)")
    ax.set_ylabel("share of seeds with gap <= x")
    ax.set_title(f"{problem}: ECDF of final gaps")
    return to_png(fig)


def runtime_ecdf(seeds: pd.DataFrame, problem: str, steps: int) -> str:
    data = seeds[seeds.problem == problem]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for opt, grp in data.groupby("optimizer"):
        hits = np.sort(grp.hit_step[grp.hit_step >= 0].to_numpy()) + 1
        n = len(grp)
        if len(hits):
            ax.step(
                np.r_[1, hits, steps + 1],
                np.r_[0, np.arange(1, len(hits) + 1), len(hits)] / n,
                where="post",
                label=opt,
            )
        else:
            ax.plot([1, steps + 1], [0, 0], label=f"{opt} (none)")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("steps (log scale)")
    ax.set_ylabel("share of seeds at the global minimum")
    ax.set_title(f"{problem}: time to target (runtime ECDF)")
    ax.legend()
    return to_png(fig)


def trajectories(curves: pd.DataFrame, problem: str) -> str:
    data = curves[curves.problem == problem]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    palette = sns.color_palette("colorblind")
    for i, (opt, grp) in enumerate(data.groupby("optimizer")):
        x = grp.step.to_numpy() + 1
        colour = palette[i % len(palette)]
        ax.plot(x, grp.q50.clip(lower=1e-16), color=colour, label=f"{opt} median")
        ax.fill_between(
            x, grp.q25.clip(lower=1e-16), grp.q75.clip(lower=1e-16), color=colour, alpha=0.2, lw=0
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step + 1 (log scale)")
    ax.set_ylabel("gap risk - R* (log scale)")
    ax.set_title(f"{problem}: gap over training (median, band: quartiles)")
    ax.legend()
    return to_png(fig)


def lr_sensitivity(cells: pd.DataFrame, problem: str) -> str:
    data = cells[(cells.problem == problem) & cells.lr.notna()]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.lineplot(data=data, x="lr", y="success_rate", hue="optimizer", marker="o", ax=ax)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("global-minimum rate")
    ax.set_title(f"{problem}: learning-rate sensitivity")
    return to_png(fig)


def comparison_bars(rows: list[dict]) -> str:
    data = pd.DataFrame(
        [
            {
                "cell": f"{r['problem']} / {r['optimizer']} vs {r['baseline']}",
                "diff": r["success_diff"],
                "p": r["mcnemar"]["p_holm"],
            }
            for r in rows
        ]
    )
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.45 * len(data)))
    colours = ["#0072B2" if d >= 0 else "#D55E00" for d in data["diff"]]
    ax.barh(data.cell, data["diff"], color=colours)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel("difference in global-minimum rate (new - baseline)")
    ax.set_title("Paired success-rate differences (Holm-corrected McNemar p in the table)")
    ax.invert_yaxis()
    return to_png(fig)
