"""Results documents -> tidy pandas tables the figures and tables are drawn from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.analysis import best_cells
from benchmarks.summary import hp_text


def cells_frame(doc: dict, run: str = "") -> pd.DataFrame:
    """One row per cell, with a flag for the grid point reported (best learning rate)."""
    best = {id(c) for c in best_cells(doc).values()}
    rows = []
    for c in doc["cells"]:
        m = c["metrics"]
        rows.append(
            {
                "run": run,
                "problem": c["problem"],
                "optimizer": c["optimizer"]["name"],
                "hp": hp_text(c["config"]["hp"]),
                "lr": c["optimizer"]["hyperparameters"].get("lr"),
                "batched": c["optimizer"]["batched"],
                "success_rate": m["success_rate"],
                "ci_low": m["success_ci95"][0],
                "ci_high": m["success_ci95"][1],
                "median_gap": m["median_gap"],
                "ert_steps": m["ert_steps"],
                "wall_s": m["wall_s"],
                "seed_steps_per_s": m["seed_steps_per_s"],
                "seeds": m["seeds"],
                "steps": c["config"]["steps"],
                "fates": m["fates"],
                "levels": m["levels"],
                "best": id(c) in best,
            }
        )
    return pd.DataFrame(rows)


def seeds_frame(doc: dict, run: str = "", all_cells: bool = False) -> pd.DataFrame:
    """One row per seed (every record column) of the reported (best) cells, or of every cell."""
    frames = []
    chosen = doc["cells"] if all_cells else best_cells(doc).values()
    for c in chosen:
        columns = {k: pd.Series(v) for k, v in c["records"].items()}
        for k in ("final_risk", "gap", "grad_norm"):  # null (diverged) -> NaN
            columns[k] = pd.to_numeric(columns[k], errors="coerce")
        frame = pd.DataFrame(columns)
        frame.insert(0, "hp", hp_text(c["config"]["hp"]))
        frame.insert(0, "optimizer", c["optimizer"]["name"])
        frame.insert(0, "problem", c["problem"])
        frame.insert(0, "run", run)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def curves_frame(doc: dict, run: str = "") -> pd.DataFrame:
    """Gap quantiles at each checkpoint for the reported cells."""
    rows = []
    for (problem, opt), c in best_cells(doc).items():
        cp = c["checkpoints"]
        q = cp["gap_quantiles"]
        for i, step in enumerate(cp["steps"]):
            rows.append(
                {
                    "run": run,
                    "problem": problem,
                    "optimizer": opt,
                    "step": step,
                    **{k: (np.nan if v[i] is None else v[i]) for k, v in q.items()},
                }
            )
    return pd.DataFrame(rows)
