"""One self-contained HTML report from one or more results files (jinja2 + seaborn)."""

from __future__ import annotations

import math
from pathlib import Path

import jinja2

from benchmarks.analysis import best_cells, compare_docs
from benchmarks.summary import hp_text
from reports import figures
from reports.frames import cells_frame, curves_frame, seeds_frame

TEMPLATES = Path(__file__).parent / "templates"


def _num(x, spec=".2e"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def _problem_sections(doc: dict, cells, seeds, curves) -> list[dict]:
    sections = []
    infos = {c["problem"]: c["problem_info"] for c in doc["cells"]}
    for problem, info in infos.items():
        steps = int(cells[cells.problem == problem].steps.max())
        section = {
            "name": problem,
            "info": info,
            "histogram": figures.risk_histogram(seeds, problem, info["levels"], info["optimum"]),
            "gap_ecdf": figures.gap_ecdf(seeds, problem, info["tol"]),
            "runtime_ecdf": figures.runtime_ecdf(seeds, problem, steps),
            "trajectories": figures.trajectories(curves, problem),
            "sensitivity": None,
            "distinct": [
                (opt, c["metrics"].get("distinct_nonglobal", [])[:5])
                for (prob, opt), c in sorted(best_cells(doc).items())
                if prob == problem and c["metrics"].get("distinct_nonglobal")
            ],
        }
        lrs = cells[(cells.problem == problem)].groupby("optimizer").lr.nunique()
        if (lrs > 1).any():
            section["sensitivity"] = figures.lr_sensitivity(cells, problem)
        sections.append(section)
    return sections


def render(
    docs: list[dict],
    names: list[str] | None = None,
    comparison: list[dict] | None = None,
    title: str = "trapbench report",
) -> str:
    """The report's HTML text. The first document is the main one; with two documents a
    comparison of the second against the first is added (or pass ``comparison`` rows)."""
    names = names or [f"run {i + 1}" for i in range(len(docs))]
    doc = docs[0]
    if not doc["cells"]:
        raise ValueError("the results file has no finished cells to report")
    cells = cells_frame(doc)
    seeds = seeds_frame(doc)
    curves = curves_frame(doc)
    if comparison is None and len(docs) > 1:
        comparison = compare_docs(docs[0], docs[1])
    summary = []
    for (problem, opt), c in sorted(best_cells(doc).items()):
        m = c["metrics"]
        summary.append(
            {
                "problem": problem,
                "optimizer": opt,
                "metrics": m,
                "hp": hp_text(c["optimizer"]["hyperparameters"]),
                "batched": c["optimizer"]["batched"],
            }
        )
    best_rate = {}
    for row in summary:
        best_rate[row["problem"]] = max(
            best_rate.get(row["problem"], -1), row["metrics"]["success_rate"]
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"])
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda x: "–" if x is None else f"{x:.1%}"
    return env.get_template("report.html").render(
        title=title,
        names=names,
        doc=doc,
        docs=docs,
        summary=summary,
        best_rate=best_rate,
        heatmap=figures.success_heatmap(cells),
        fates=figures.fate_bars(cells),
        problems=_problem_sections(doc, cells, seeds, curves),
        comparison=comparison,
        comparison_figure=figures.comparison_bars(comparison) if comparison else None,
        all_cells=cells.to_dict("records"),
    )


def write_report(
    docs: list[dict],
    output: str | Path,
    names: list[str] | None = None,
    comparison: list[dict] | None = None,
) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(docs, names, comparison))
    return path
