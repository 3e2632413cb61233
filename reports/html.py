"""One self-contained HTML report from one or more results files (jinja2 + matplotlib).

The page answers first (a headline per problem, and for a comparison the candidate against
each baseline and its failures), then the summary table, then the figures of
``reports.figures.REGISTRY``. Tables sort and filter with a few lines of inline JavaScript; no
file is fetched at view time.
"""

from __future__ import annotations

import math
from pathlib import Path

import jinja2

from benchmarks.analysis import optimizer_label
from benchmarks.reproduce import row_text
from benchmarks.summary import fate_counts, hp_text, level_counts, settings_text
from reports import figures
from reports.headline import candidate_failures, candidate_rows, problem_headline
from reports.view import build_view

TEMPLATES = Path(__file__).parent / "templates"


def _num(x, spec=".2e"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def _sort_key(x) -> str:
    """A value tables sort by (data-sort): numbers as numbers, missing values last."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "Infinity"
    return repr(float(x))


def _draw(spec: figures.FigureSpec, ctx: figures.Context) -> dict:
    result = spec.draw(ctx)
    return {
        "spec": spec,
        "panel": result if isinstance(result, figures.Panel) else None,
        "empty": result.reason if isinstance(result, figures.Empty) else None,
    }


def _summary_rows(view) -> list[dict]:
    rows = []
    for problem in view.problems:
        for opt, c in view.cells_of(problem):
            rows.append(
                {
                    "problem": problem,
                    "spec": view.spec[problem],
                    "anchor": view.anchor("p", problem),
                    "optimizer": opt,
                    "colour": view.colours[opt],
                    "metrics": c["metrics"],
                    "hp": hp_text(c["optimizer"]["hyperparameters"]),
                    "batched": c["optimizer"].get("batched", True),
                    "fates": fate_counts(c["metrics"]),
                    "levels": level_counts(c),
                }
            )
    return rows


def render(
    docs: list[dict],
    names: list[str] | None = None,
    comparison: list[dict] | None = None,
    title: str = "trapbench report",
    candidate: str | None = None,
) -> str:
    """The report's HTML text. The first document is the main one; with two documents a
    comparison of the second against the first is added (or pass ``comparison`` rows and the
    ``candidate`` optimizer's name)."""
    names = names or [f"run {i + 1}" for i in range(len(docs))]
    doc = docs[0]
    if not doc["cells"]:
        raise ValueError("the results file has no finished cells to report")
    if comparison is None and len(docs) > 1:
        from benchmarks.analysis import compare_docs

        comparison = compare_docs(docs[0], docs[1])
    if comparison and candidate is None:
        candidate = comparison[0]["optimizer"]
    view = build_view(doc)
    summary = _summary_rows(view)
    best_rate: dict[str, float] = {}
    for row in summary:
        best_rate[row["problem"]] = max(
            best_rate.get(row["problem"], -1), row["metrics"]["success_rate"]
        )
    overview = [_draw(s, figures.Context(view)) for s in figures.figures_for("overview")]
    per_problem = [
        {
            "name": p,
            "spec": view.spec[p],
            "anchor": view.anchor("p", p),
            "info": view.info[p],
            "figures": [_draw(s, figures.Context(view, p)) for s in figures.figures_for("problem")],
            "distinct": [
                (opt, c["metrics"].get("distinct_nonglobal", [])[:5])
                for opt, c in view.cells_of(p)
                if c["metrics"].get("distinct_nonglobal")
            ],
        }
        for p in view.problems
    ]
    compared = None
    if comparison is not None:
        compared = {
            "candidate": candidate,
            "colour": view.colours.get(candidate or "", "#888888"),
            "rows": candidate_rows(comparison),
            "failures": candidate_failures(doc, candidate, view.problems) if candidate else [],
            "figures": [
                _draw(s, figures.Context(view, comparison=comparison))
                for s in figures.figures_for("comparison")
            ],
        }
    warnings = [
        (view.spec[c["problem"]], optimizer_label(c), c["metrics"]["budget_warning"])
        for c in doc["cells"]
        if c["metrics"].get("budget_warning")
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"])
    )
    env.filters["num"] = _num
    env.filters["key"] = _sort_key
    env.filters["pct"] = lambda x: "–" if x is None else f"{x:.1%}"
    return env.get_template("report.html").render(
        title=title,
        names=names,
        doc=doc,
        docs=docs,
        view=view,
        headlines=[problem_headline(view, p) for p in view.problems],
        warnings=warnings,
        errors=doc.get("errors", []),
        summary=summary,
        best_rate=best_rate,
        overview=overview,
        problems=per_problem,
        optimizers=[
            {
                "name": o,
                "anchor": view.anchor("o", o),
                "colour": view.colours[o],
                "rows": [r for r in summary if r["optimizer"] == o],
            }
            for o in view.optimizers
        ],
        compared=compared,
        reproduction=doc.get("reproduction"),
        reproduction_rows=[
            {"text": row_text(r), "verdict": r["verdict"]}
            for r in (doc.get("reproduction") or {}).get("rows", [])
        ],
        all_cells=[
            {
                "problem": view.spec[c["problem"]],
                "optimizer": optimizer_label(c),
                "colour": view.colours[optimizer_label(c)],
                "hp": settings_text(c),
                "m": c["metrics"],
            }
            for c in doc["cells"]
        ],
    )


def write_report(
    docs: list[dict],
    output: str | Path,
    names: list[str] | None = None,
    comparison: list[dict] | None = None,
    candidate: str | None = None,
) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(docs, names, comparison, candidate=candidate))
    return path
