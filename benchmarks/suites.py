"""Suites (TOML files) and their expansion into cells.

A suite names problems, optimizers (with hyperparameters, optionally an ``lr_grid``), the seed
count and step budget. Each (problem, optimizer, learning rate) is a cell; seeds are shared by
index across cells, so every comparison between optimizers is paired.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomllib

from benchmarks import schedules, stopping
from optimizers.registry import BUILTINS
from optimizers.resolve import OptimizerError, check, resolve, split_spec
from problems.registry import ProblemError, canonical

SUITES_DIR = Path(__file__).parent / "suites"
DTYPES = ("float32", "float64")
# every key a suite may have: anything else (a typo such as ``seed = 64``) is an error
SUITE_KEYS = (
    "name",
    "description",
    "problems",
    "optimizers",
    "seeds",
    "seed_start",
    "steps",
    "dtype",
    "checkpoints",
    "hessian",
    "stop",
    "schedule",
    "end_points",
)
# Memory per seed and cell, in bytes, for the memory estimate: the parent keeps every cell's
# per-seed records as Python lists (about 32 bytes a value: a float object and its pointer);
# a worker holds its cell's records as float64 arrays and their copies while assembling.
PARENT_BYTES_PER_VALUE = 32
WORKER_BYTES_PER_VALUE = 8 * 4
RECORD_FIELDS = 24  # per-seed record fields besides the checkpoint curve (results.py)


class SuiteError(ValueError):
    """A suite that cannot be run; the message names the fix."""


# Cell fields that say how a cell is executed, not what a seed computes: --resume may change
# them for finished cells (cli._resumable) and for kept seed chunks (partial.key).
EXECUTION_FIELDS = ("device", "chunk", "verify", "compile")


@dataclass(frozen=True)
class Cell:
    problem: str
    optimizer: str
    hp: dict = field(default_factory=dict)
    steps: int = 1000
    seed_start: int = 0
    seeds: int = 256
    dtype: str = "float32"
    device: str = "cpu"
    chunk: int = 0
    checkpoints: int = 24
    hessian: int = 64  # critical seeds per cell given a Hessian verdict (0: none)
    verify: int = 0  # seeds per cell rerun alone to confirm the batched results
    compile: bool = False  # torch.compile closed-form gradients (not part of the cell's id)
    stop: dict = field(default_factory=dict)  # stopping rules (benchmarks/stopping.py)
    schedule: str = ""  # learning-rate schedule, canonical spec ("" = constant)
    end_points: bool = False  # keep every seed's final parameters in the results (not in the id)

    @property
    def id(self) -> str:
        hp = ",".join(f"{k}={v}" for k, v in sorted(self.hp.items()))
        out = f"{self.problem}|{self.optimizer}|{hp}|s{self.seed_start}+{self.seeds}|t{self.steps}"
        if self.schedule:
            out += f"|lr~{self.schedule}"
        if self.stop:
            out += f"|stop:{stopping.parse(self.stop).text()}"
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def builtin_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}


def load(name_or_path: str) -> dict:
    """A suite dict from a built-in name or a TOML file path."""
    known = builtin_suites()
    path = known.get(name_or_path, Path(name_or_path))
    if not path.is_file():
        raise SuiteError(
            f"unknown suite {name_or_path!r}: give a built-in ({', '.join(known)}) or a path "
            "to a .toml suite file"
        )
    try:
        suite = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SuiteError(f"suite file {str(path)!r} is not valid TOML: {err}") from None
    suite.setdefault("name", path.stem)
    return suite


def _int_field(suite: dict, key: str, default: int, low: int = 1) -> int:
    value = suite.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SuiteError(f"suite field {key!r} must be an integer >= {low}, got {value!r}")
    return value


def _schedule(spec, where: str, steps: int) -> str:
    if not isinstance(spec, str):
        raise SuiteError(f"{where} schedule must be a string like 'power:exponent=0.5'")
    try:
        return schedules.validate(spec, steps)
    except schedules.ScheduleError as err:
        raise SuiteError(f"{where}: {err}") from None


def stop_rules(suite: dict) -> dict:
    """The suite's stopping rules, validated, as the canonical dict cells carry."""
    try:
        return stopping.parse(suite.get("stop")).to_dict()
    except stopping.StopError as err:
        raise SuiteError(str(err)) from None


OPTIMIZER_TABLE_KEYS = ("name", "lr_grid", "schedule", "steps")  # the rest: hyperparameters


def _optimizer_items(suite: dict) -> list[tuple[str, dict, list | None, object, object]]:
    """(name, hyperparameters, lr grid, schedule, steps) per entry; None: the suite's."""
    items = suite.get("optimizers")
    if not isinstance(items, list) or not items:
        raise SuiteError("suite needs a non-empty list 'optimizers' (names or tables with 'name')")
    out = []
    for item in items:
        if isinstance(item, str):
            name, hp = split_spec(item)
            out.append((name, hp, None, None, None))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            hp = {k: v for k, v in item.items() if k not in OPTIMIZER_TABLE_KEYS}
            grid = item.get("lr_grid")
            if grid is True:
                grid = list(resolve(item["name"]).lr_grid)
            if grid is not None and (not isinstance(grid, list) or not grid):
                raise SuiteError(f"lr_grid of optimizer {item['name']!r} must be a list or true")
            steps = item.get("steps")  # an optimizer that needs another budget than the suite's
            if steps is not None and (
                isinstance(steps, bool) or not isinstance(steps, int) or steps < 0
            ):
                raise SuiteError(
                    f"steps of optimizer {item['name']!r} must be an integer >= 0, got {steps!r}"
                )
            out.append((item["name"], hp, grid, item.get("schedule"), steps))
        else:
            raise SuiteError(f"optimizer entry {item!r} must be a name or a table with 'name'")
    return out


def check_keys(suite: dict) -> None:
    """Unknown top-level keys are errors: a misspelt key would silently run the default."""
    unknown = sorted(set(suite) - set(SUITE_KEYS))
    if unknown:
        raise SuiteError(
            f"unknown suite key(s) {', '.join(map(repr, unknown))}; a suite may have: "
            f"{', '.join(SUITE_KEYS)}"
        )


def memory_estimate(cells: list[Cell]) -> int:
    """Bytes a run of ``cells`` needs at least: every cell's per-seed records (final values
    and the checkpoint curve) kept by the parent, plus the largest cell's arrays in a worker.
    The training state itself is not counted, so this is a floor, used to refuse absurd seed
    counts before anything runs."""
    if not cells:
        return 0

    def values(cell: Cell) -> int:
        return cell.seeds * (cell.checkpoints + RECORD_FIELDS)

    parent = sum(values(c) for c in cells) * PARENT_BYTES_PER_VALUE
    worker = max(values(c) for c in cells) * WORKER_BYTES_PER_VALUE
    return parent + worker


def expand(
    suite: dict, device: str = "cpu", chunk: int = 0, verify: int = 0, compile: bool = False
) -> list[Cell]:
    """All cells of a suite, validated before anything runs (bad names fail here, fast)."""
    check_keys(suite)
    problems = suite.get("problems")
    if (
        not isinstance(problems, list)
        or not problems
        or not all(isinstance(p, str) for p in problems)
    ):
        raise SuiteError("suite needs a non-empty list 'problems' of problem names")
    seeds = _int_field(suite, "seeds", 256)
    steps = _int_field(suite, "steps", 1000, low=0)
    checkpoints = _int_field(suite, "checkpoints", 24, low=2)
    hessian = _int_field(suite, "hessian", 64, low=0)
    stop = stop_rules(suite)
    end_points = suite.get("end_points", False)
    if not isinstance(end_points, bool):
        raise SuiteError(f"suite field 'end_points' must be true or false, got {end_points!r}")
    default_schedule = _schedule(suite.get("schedule", ""), "suite", steps)
    seed_start = suite.get("seed_start", 0)
    if isinstance(seed_start, bool) or not isinstance(seed_start, int) or seed_start < 0:
        raise SuiteError(f"suite field 'seed_start' must be an integer >= 0, got {seed_start!r}")
    dtype = suite.get("dtype", "float32")
    if dtype not in DTYPES:
        raise SuiteError(f"suite field 'dtype' must be one of {DTYPES}, got {dtype!r}")
    cells = []
    for spec in problems:
        try:
            name, _ = canonical(spec)
        except ProblemError as err:
            raise SuiteError(str(err)) from None
        for opt_name, hp, grid, schedule, own_steps in _optimizer_items(suite):
            budget = steps if own_steps is None else own_steps
            if schedule is not None or own_steps is not None:  # checked against its budget
                own = suite.get("schedule", "") if schedule is None else schedule
                schedule = _schedule(own, f"optimizer {opt_name!r}", budget)
            try:
                entry = resolve(opt_name)
                for lr in grid or [None]:
                    cell_hp = {**hp, "lr": lr} if lr is not None else dict(hp)
                    check(entry, cell_hp)
                    cells.append(
                        Cell(
                            name,
                            opt_name,
                            cell_hp,
                            budget,
                            seed_start,
                            seeds,
                            dtype,
                            device,
                            chunk,
                            checkpoints,
                            hessian,
                            verify,
                            compile,
                            stop,
                            default_schedule if schedule is None else schedule,
                            end_points,
                        )
                    )
            except OptimizerError as err:
                raise SuiteError(str(err)) from None
    seen: set[str] = set()
    for cell in cells:
        if cell.id in seen:
            raise SuiteError(f"the suite lists cell {cell.id} twice; remove the duplicate")
        seen.add(cell.id)
    return cells


def adhoc(
    problems: list[str],
    optimizers: list[str],
    seeds: int,
    steps: int,
    dtype: str,
    lr_grid: bool = False,
) -> dict:
    """A suite from command-line names (stop rules and schedule: see cli._overridden)."""
    opts = []
    for spec in optimizers:
        name, hp = split_spec(spec)
        item = {"name": name, **hp}
        if lr_grid:
            item["lr_grid"] = True
        opts.append(item)
    return {
        "name": "adhoc",
        "problems": problems,
        "optimizers": opts,
        "seeds": seeds,
        "steps": steps,
        "dtype": dtype,
    }


__all__ = [
    "BUILTINS",
    "Cell",
    "SuiteError",
    "adhoc",
    "builtin_suites",
    "check_keys",
    "expand",
    "load",
    "memory_estimate",
]
