"""The plain-text summary table printed after a run."""

from __future__ import annotations


def _fmt(x, spec: str = ".2e") -> str:
    return "-" if x is None else format(x, spec)


def hp_text(hp: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(hp.items()))


def table(doc: dict) -> str:
    """One line per cell: success rate [95% CI], median gap, fate counts, wall time."""
    header = ("problem", "optimizer", "success [95% CI]", "median gap", "fates", "wall")
    rows = []
    for cell in doc["cells"]:
        m = cell["metrics"]
        low, high = m["success_ci95"]
        fates = " ".join(f"{k}={v}" for k, v in sorted(m["fates"].items()))
        if m["levels"]:
            fates += " (" + " ".join(f"{k}:{v}" for k, v in m["levels"].items()) + ")"
        opt = cell["optimizer"]
        rows.append(
            (
                cell["problem"],
                f"{opt['name']}({hp_text(cell['config']['hp'])})",
                f"{m['success_rate']:6.1%} [{low:.1%}, {high:.1%}]",
                _fmt(m["median_gap"]),
                fates,
                f"{m['wall_s']:.1f}s",
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for err in doc.get("errors", []):
        lines.append(f"FAILED {err['id']}: {err['error']}")
    return "\n".join(lines)


def comparison_table(rows: list[dict]) -> str:
    """One line per (problem, baseline): success of both, paired tests (Holm-corrected)."""
    lines = []
    for r in rows:
        m, w = r["mcnemar"], r["wilcoxon_gap"]
        lines.append(
            f"{r['problem']}: {r['optimizer']} vs {r['baseline']}: success "
            f"{r['success_b']:.1%} vs {r['success_a']:.1%} (diff {r['success_diff']:+.1%}, "
            f"McNemar p={m['p_holm']:.3g}); median gap diff {_fmt(w['median_diff'])} "
            f"(Wilcoxon p={w['p_holm']:.3g}); {r['paired_seeds']} paired seeds"
        )
    return "\n".join(lines) if lines else "no cells in common to compare"
