"""`trapbench` command line: list, run, report (and the commands later issues add).

Every user error ends in one line on stderr naming the fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from benchmarks import results, suites
from benchmarks.summary import comparison_table, table

EXIT_USAGE = 2


class CliError(Exception):
    pass


def _list(args) -> None:
    from optimizers.registry import BUILTINS
    from problems.registry import REGISTRY, _load_families, defaults

    what = args.what
    if what in ("problems", "all"):
        _load_families()
        print("Problems (name: summary; options; optimum provenance; citation)")
        for name, entry in REGISTRY.items():
            opts = ", ".join(f"{k}={v}" for k, v in defaults(name).items())
            print(
                f"  {name}: {entry.summary}\n      options: {opts}\n"
                f"      optimum: {entry.provenance}\n      cite: {entry.citation}"
            )
    if what in ("optimizers", "all"):
        print("Optimizers (name: description; defaults; lr grid)")
        for name, e in BUILTINS.items():
            print(f"  {name}: {e.description}; defaults {e.defaults}; lr grid {list(e.lr_grid)}")
        print("  ...and any torch.optim class by name, or path/file.py:Class / module:Class")
    if what in ("reproductions", "all"):
        from benchmarks.reproduce import REPRODUCTIONS

        print("Reproductions (trapbench reproduce NAME [--quick])")
        for name, r in REPRODUCTIONS.items():
            print(f"  {name}: {r.description}\n      cite: {r.citation}")
    if what in ("suites", "all"):
        print("Suites")
        for name in suites.builtin_suites():
            s = suites.load(name)
            print(
                f"  {name}: {s.get('description', '')} ({s.get('seeds')} seeds x "
                f"{s.get('steps')} steps)"
            )


def _overridden(suite: dict, args) -> dict:
    """The suite with the budget flags the command line gave (--seeds, --steps, --dtype,
    --stop, --schedule)."""
    from benchmarks import stopping

    for key in ("seeds", "steps", "dtype", "schedule"):
        if getattr(args, key, None) is not None:
            suite[key] = getattr(args, key)
    if getattr(args, "stop", None) is not None:
        try:
            suite["stop"] = stopping.parse(args.stop).to_dict()
        except stopping.StopError as err:
            raise CliError(str(err)) from None
    return suite


def _suite_from_args(args) -> dict:
    if args.problem or args.optimizer:
        if not (args.problem and args.optimizer):
            raise CliError("give both --problem and --optimizer, or a --suite")
        suite = suites.adhoc(
            args.problem,
            args.optimizer,
            256 if args.seeds is None else args.seeds,
            1000 if args.steps is None else args.steps,
            args.dtype or "float32",
            args.lr_grid,
        )
        return _overridden(suite, args)
    return _overridden(suites.load(args.suite), args)


DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")
# (flag, attribute, lowest allowed value): counts checked before anything runs
COUNTS = (
    ("--workers", "workers", 0),
    ("--threads", "threads", 1),
    ("--chunk", "chunk", 0),
    ("--verify", "verify", 0),
    ("--task-seeds", "task_seeds", 0),
)


def _check_run_flags(args) -> None:
    """Execution flags, checked before the suite is read: one line per mistake."""
    for flag, attr, low in COUNTS:
        value = getattr(args, attr, None)
        if value is not None and value < low:
            raise CliError(f"{flag} must be an integer >= {low}, got {value}")
    if not DEVICE.match(args.device):
        raise CliError(f"--device {args.device!r} is not cpu, cuda or cuda:N")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda given but torch sees no CUDA device; use --device cpu")
        index = int(args.device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise CliError(
                f"--device {args.device}: torch sees {torch.cuda.device_count()} CUDA device(s)"
            )
    if getattr(args, "scheduler", None):
        from benchmarks.runner import RunError, check_scheduler

        try:
            check_scheduler(args.scheduler)
        except RunError as err:
            raise CliError(str(err)) from None


def _check_writable(out: Path) -> None:
    """-o must be a file we can create or replace: found now, not after the first cell."""
    if out.is_dir():
        raise CliError(f"-o {out} is a directory; give a file path such as {out}/results.json")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{out.name}.", suffix=".tmp"):
            pass
    except OSError as err:
        raise CliError(
            f"cannot write results to {str(out)!r} ({err.strerror}); pass a writable path with -o"
        ) from None


def available_memory() -> int:
    """Bytes of memory available now (Linux MemAvailable), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return 0


def _check_memory(cells: list, available: int) -> None:
    need = suites.memory_estimate(cells)
    if available and need > available:
        seeds = max(c.seeds for c in cells)
        raise CliError(
            f"this run needs at least {need / 2**30:.1f} GiB of memory ({len(cells)} cell(s) x "
            f"up to {seeds} seeds), more than the {available / 2**30:.1f} GiB available; "
            "use fewer --seeds"
        )


def _resumable(doc: dict, cells: list, out: Path) -> dict:
    """Resume is safe when every finished cell is still in the suite with the same
    configuration (the fields that shape its numbers): then the suite may have been fixed or
    extended since. Errors of cells no longer in the suite are dropped."""
    wanted = {c.id: c.to_dict() for c in cells}
    for cell in doc["cells"]:
        if cell["id"] not in wanted:
            raise CliError(
                f"{out} has finished cell {cell['id']}, which the suite no longer lists; "
                "drop --resume or pick another -o"
            )
        config = cell.get("config") or {}
        differ = sorted(
            k
            for k, v in wanted[cell["id"]].items()
            if k not in suites.EXECUTION_FIELDS and config.get(k, v) != v
        )
        if differ:
            raise CliError(
                f"{out}: cell {cell['id']} ran with other {', '.join(differ)}; "
                "drop --resume or pick another -o"
            )
    doc["errors"] = [e for e in doc.get("errors", []) if e["id"] in wanted]
    return doc


def _interruptible() -> None:
    """A run started in the background of a script inherits an ignored SIGINT; `kill -INT`
    must still stop it and save the finished cells and chunks."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


def _chunking(args, out: Path, default: int) -> int:
    """Seeds per task (--task-seeds), refusing to drop kept chunks of an interrupted run
    silently (benchmarks/partial.py); --force discards them, as it overwrites the file."""
    from benchmarks import partial

    if args.force and not args.resume:
        partial.clear(out)
    try:
        return partial.chunk_size(out, args.task_seeds, default, args.resume)
    except partial.PartialError as err:
        raise CliError(str(err)) from None


def _run(args) -> int:
    from benchmarks import runner

    _interruptible()
    _check_run_flags(args)
    suite = _suite_from_args(args)
    cells = suites.expand(
        suite, device=args.device, chunk=args.chunk, verify=args.verify, compile=not args.no_compile
    )
    _check_memory(cells, available_memory())
    out = Path(args.output)
    _check_writable(out)
    if args.resume and out.exists():
        doc = _resumable(results.read(out), cells, out)
        doc["suite"] = suite
    else:
        if out.exists() and not args.force and not args.resume:
            raise CliError(
                f"{out} exists; pass --resume to continue it, --force to overwrite, or another -o"
            )
        doc = results.new_document(suite)
    task_seeds = _chunking(args, out, default=0)
    print(
        f"trapbench: {len(cells)} cell(s), {suite.get('seeds')} seeds each -> {out}",
        file=sys.stderr,
    )
    try:
        doc = runner.run(
            cells,
            doc,
            out,
            workers=args.workers,
            threads=args.threads,
            progress=not args.no_progress,
            scheduler=args.scheduler,
            task_seeds=task_seeds,
            resume=args.resume,
        )
    except runner.RunError as err:
        raise CliError(f"{err} (finished cells are kept in {out})") from None
    print(table(doc))
    bad = [c for c in doc["cells"] if c.get("verify") and not c["verify"]["ok"]]
    for c in bad:
        print(
            f"VERIFY FAILED {c['id']}: batched and single-seed results differ by "
            f"{c['verify']['max_rel_diff']:.2e} (relative)"
        )
    if any(c.get("verify") for c in doc["cells"]) and not bad:
        print("verify: batched results match single-seed reruns in every cell")
    print(f"\nresults: {out}")
    for err in doc["errors"]:
        print(
            f"trapbench: error: cell {err['id']} failed ({err['error']}); fix the cause, "
            f"then rerun with --resume (finished cells are kept in {out})",
            file=sys.stderr,
        )
    if doc["errors"]:
        return EXIT_USAGE
    return 1 if bad else 0


def _compare(args) -> int:
    from benchmarks import runner
    from benchmarks.analysis import compare_optimizer
    from optimizers.resolve import split_spec

    suite = suites.load(args.suite)
    suite = _overridden(suite, args)
    candidate, hp = split_spec(args.optimizer)
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    if not baselines:
        raise CliError("--baselines needs at least one optimizer name, e.g. adam,sgd")
    in_suite = {
        o["name"] if isinstance(o, dict) else split_spec(o)[0]: o
        for o in suite.get("optimizers", [])
    }
    suite["optimizers"] = [in_suite.get(b, {"name": b}) for b in baselines]
    suite["optimizers"].append({"name": candidate, **hp})
    if args.lr_grid:
        for item in suite["optimizers"]:
            if isinstance(item, dict) and suites.resolve(item["name"]).lr_grid:
                item["lr_grid"] = True
    suite["name"] = f"compare-{suite.get('name', 'suite')}"
    cells = suites.expand(suite, device=args.device, compile=not args.no_compile)
    out = Path(args.output)
    doc = runner.run(
        cells, results.new_document(suite), out, workers=args.workers, progress=not args.no_progress
    )
    doc["comparison"] = compare_optimizer(doc, candidate, baselines)
    results.write(doc, out)
    failed = [e for e in doc["errors"] if e["id"].split("|")[1:2] == [candidate]]
    for err in failed:  # the candidate's failures come first: they decide the exit status
        print(f"trapbench: candidate {candidate} failed in cell {err['id']}: {err['error']}")
    if failed:
        print()
    print(table(doc))
    print()
    print(comparison_table(doc["comparison"]))
    print(f"\nresults: {out}")
    if not args.no_report:
        from reports.html import write_report

        report = write_report(
            [doc], args.report, names=[str(out)], comparison=doc["comparison"], candidate=candidate
        )
        print(f"report: {report}")
    if failed:
        print(
            f"trapbench: error: candidate {candidate} failed in {len(failed)} of "
            f"{len(failed) + sum(c['optimizer']['name'] == candidate for c in doc['cells'])} "
            "cell(s) (listed first above)",
            file=sys.stderr,
        )
        return 1
    return 0


def _reproduce(args) -> int:
    from benchmarks import reproduce, runner

    if args.name not in reproduce.REPRODUCTIONS:
        known = ", ".join(reproduce.REPRODUCTIONS)
        raise CliError(f"unknown reproduction {args.name!r}; known: {known} (trapbench list)")
    _interruptible()
    _check_run_flags(args)
    rep = reproduce.REPRODUCTIONS[args.name]
    suite = rep.suite(args.quick)
    cells = reproduce.expand(suite, device=args.device, compile=not args.no_compile)
    out = Path(args.output or f"results/{suite['name']}.json")
    if args.resume and out.exists():
        doc = results.read(out)
    elif out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --resume to continue it, --force to overwrite")
    else:
        doc = results.new_document(suite)
    task_seeds = _chunking(args, out, default=suite.get("task_seeds", 0))
    print(f"trapbench: reproducing {rep.name} ({len(cells)} cells) -> {out}", file=sys.stderr)
    doc = runner.run(
        cells,
        doc,
        out,
        workers=args.workers,
        progress=not args.no_progress,
        task_seeds=task_seeds,
        resume=args.resume,
    )
    print(table(doc))
    if doc["errors"]:
        raise CliError(
            f"{len(doc['errors'])} cell(s) failed; fix the cause and rerun with --resume"
        )
    doc["reproduction"] = {"name": rep.name, "citation": rep.citation, **rep.compare(doc)}
    results.write(doc, out)
    print()
    print(reproduce.table(doc["reproduction"]))
    print(f"\nresults: {out}")
    if args.report:
        from reports.html import write_report

        print(f"report: {write_report([doc], args.report, names=[str(out)])}")
    return 0


def _check(args) -> int:
    from benchmarks.gate import GateError, GateSettings, evaluate

    try:  # thresholds first: a bad flag is one line, before any file is read
        settings = GateSettings(
            args.alpha, args.min_drop, args.gap_factor, args.rtol, args.allow_changed, args.strict
        )
    except GateError as err:
        raise CliError(str(err)) from None
    findings = evaluate(results.read(args.baseline), results.read(args.results), settings)
    for finding in findings:
        print(finding if finding.fails else f"note: {finding}")
    failing = [f for f in findings if f.fails]
    if failing:
        print(f"check failed: {len(failing)} finding(s) against {args.baseline}", file=sys.stderr)
        return 1
    improved = sorted({f.cell for f in findings if f.kind == "IMPROVED"})
    hint = (
        f" ({len(improved)} cell(s) improved: refresh the baseline to keep the gate sharp)"
        if improved
        else ""
    )
    print(f"check passed: {args.results} is not worse than {args.baseline}{hint}")
    return 0


def _export(args) -> None:
    from benchmarks.fates import FATES
    from reports.frames import cells_frame, seeds_frame

    doc = results.read(args.results)
    frame = seeds_frame(doc, all_cells=True) if args.per_seed else cells_frame(doc)
    frame = frame.drop(columns=["run", "fates", "levels"], errors="ignore")
    if not args.per_seed:
        fates = cells_frame(doc)["fates"].apply(lambda d: d or {})
        for fate in FATES:
            frame[f"n_{fate}"] = fates.apply(lambda d, f=fate: d.get(f, 0))
    try:
        frame.to_csv(args.csv, index=False)
    except OSError as err:
        reason = err.strerror or err
        raise CliError(f"cannot write {args.csv} ({reason}); pass a writable path") from None
    print(f"csv: {args.csv} ({len(frame)} rows)")


def _best_known(args) -> int:
    from benchmarks.best_known import record, search

    lrs = [float(v) for v in args.lrs.split(",")]
    value, provenance = search(args.problem, args.seeds, args.steps, lrs)
    changed = record(args.problem, value, provenance)
    print(f"{args.problem}: best risk {value:.6g} ({'recorded' if changed else 'not better'})")
    return 0


def _report(args) -> None:
    from reports.html import write_report

    docs = [results.read(p) for p in args.results]
    try:
        path = write_report(docs, args.output, names=[str(p) for p in args.results])
    except OSError as err:
        raise CliError(
            f"cannot write the report to {str(args.output)!r} ({err.strerror or err}); "
            "pass a writable path with -o"
        ) from None
    print(f"report: {path}")


def _end_point_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stop",
        help="per-seed stopping rules, e.g. grad_tol=problem,plateau_window=1000 "
        "(grad_tol, target, plateau_window, plateau_rtol, every; see README)",
    )
    parser.add_argument(
        "--schedule",
        help="learning-rate schedule: constant, step:factor=0.5,every=150, power:exponent=0.1, "
        "cosine, any torch.optim.lr_scheduler class (StepLR:step_size=100,gamma=0.5)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trapbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list problems, optimizers or suites")
    ls.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["problems", "optimizers", "suites", "reproductions", "all"],
    )
    ls.set_defaults(func=_list)

    run = sub.add_parser("run", help="train every cell of a suite and write results JSON")
    run.add_argument("--suite", default="default", help="built-in suite name or .toml path")
    run.add_argument("--problem", action="append", help="problem spec (repeatable)")
    run.add_argument(
        "--optimizer", action="append", help="optimizer spec, e.g. adam:lr=0.01 (repeatable)"
    )
    run.add_argument("--seeds", type=int, help="seeds per cell (overrides the suite)")
    run.add_argument(
        "--steps", type=int, help="step budget per run (overrides the suite; 0: classify the init)"
    )
    run.add_argument("--dtype", choices=suites.DTYPES)
    _end_point_flags(run)
    run.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    run.add_argument("--lr-grid", action="store_true", help="sweep each optimizer's lr grid")
    run.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    run.add_argument("--threads", type=int, default=1, help="torch threads per process")
    run.add_argument("--chunk", type=int, default=0, help="seeds per tensor program (0: all)")
    run.add_argument(
        "--verify",
        type=int,
        nargs="?",
        const=4,
        default=0,
        help="rerun N seeds per cell alone and check they match (default 4)",
    )
    run.add_argument(
        "--task-seeds",
        type=int,
        help="split cells into seed chunks of this size, one task each; a finished chunk "
        "survives an interrupt and --resume reuses it (on --resume: the size it was made with)",
    )
    run.add_argument("--scheduler", help="dask: 'local' (LocalCluster) or tcp://host:port")
    run.add_argument(
        "--no-compile",
        action="store_true",
        help="do not torch.compile closed-form gradients (eager fallback)",
    )
    run.add_argument("-o", "--output", default="results/results.json")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    run.add_argument("--force", action="store_true", help="overwrite an existing results file")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=_run)

    cmp = sub.add_parser("compare", help="a new optimizer against baselines, paired by seed")
    cmp.add_argument(
        "--optimizer",
        required=True,
        help="the candidate: file.py:Class@lr=0.01, module:Class or a name",
    )
    cmp.add_argument("--baselines", default="adam,sgd", help="comma-separated names")
    cmp.add_argument("--suite", default="default", help="problems and budget to compare on")
    cmp.add_argument("--seeds", type=int)
    cmp.add_argument("--steps", type=int)
    _end_point_flags(cmp)
    cmp.add_argument(
        "--lr-grid",
        action="store_true",
        help="sweep the baselines' learning-rate grids (best point reported)",
    )
    cmp.add_argument("--device", default="cpu")
    cmp.add_argument("--workers", type=int, default=0)
    cmp.add_argument("-o", "--output", default="results/compare.json")
    cmp.add_argument("--report", default="results/compare.html")
    cmp.add_argument(
        "--no-report", action="store_true", help="print the tables only, write no HTML report"
    )
    cmp.add_argument("--no-progress", action="store_true")
    cmp.add_argument("--no-compile", action="store_true")
    cmp.set_defaults(func=_compare)

    chk = sub.add_parser("check", help="fail (exit 1) when results regress against a baseline")
    chk.add_argument("--baseline", required=True, type=Path)
    chk.add_argument("results", type=Path)
    chk.add_argument(
        "--alpha", type=float, default=0.01, help="significance level of each test, in (0, 1)"
    )
    chk.add_argument(
        "--min-drop",
        type=float,
        default=0.05,
        help="net share of seeds that must lose success or move to a worse fate, in [0, 1]",
    )
    chk.add_argument(
        "--gap-factor",
        type=float,
        default=1.02,
        help="paired per-seed gaps must grow by more than this factor (>= 1) to count",
    )
    chk.add_argument(
        "--rtol",
        type=float,
        default=1e-4,
        help="relative change of a seed's gap that counts as float noise (default 1e-4)",
    )
    chk.add_argument(
        "--allow-changed",
        action="store_true",
        help="cells whose hyperparameters, seeds or steps changed do not fail; compare them",
    )
    chk.add_argument(
        "--strict",
        action="store_true",
        help="significant improvements fail too (the numbers must reproduce)",
    )
    chk.set_defaults(func=_check)

    exp = sub.add_parser("export", help="results as CSV (one row per cell, or per seed)")
    exp.add_argument("results", type=Path)
    exp.add_argument("--csv", required=True, type=Path, help="output CSV path")
    exp.add_argument("--per-seed", action="store_true")
    exp.set_defaults(func=_export)

    bk = sub.add_parser("best-known", help="search and record a best-known optimum")
    bk.add_argument("problem")
    bk.add_argument("--seeds", type=int, default=64)
    bk.add_argument("--steps", type=int, default=5000)
    bk.add_argument("--lrs", default="0.001,0.003", help="Adam learning rates to try")
    bk.set_defaults(func=_best_known)

    rpr = sub.add_parser(
        "reproduce", help="run a paper's experiment and compare with its published numbers"
    )
    rpr.add_argument("name", help="a reproduction (trapbench list reproductions)")
    rpr.add_argument("--quick", action="store_true", help="a subset that runs in minutes")
    rpr.add_argument("-o", "--output", help="results file (default results/NAME.json)")
    rpr.add_argument("--report", help="also write an HTML report here")
    rpr.add_argument("--device", default="cpu")
    rpr.add_argument("--workers", type=int, default=0)
    rpr.add_argument(
        "--task-seeds",
        type=int,
        help="split cells into seed chunks of this size; a finished chunk survives an "
        "interrupt and --resume reuses it (default: the reproduction's own, 60 for "
        "jentzen-2022's hour-long cells, else none; 0: none)",
    )
    rpr.add_argument("--resume", action="store_true")
    rpr.add_argument("--force", action="store_true")
    rpr.add_argument("--no-progress", action="store_true")
    rpr.add_argument("--no-compile", action="store_true")
    rpr.set_defaults(func=_reproduce)

    rep = sub.add_parser("report", help="write one self-contained HTML report")
    rep.add_argument("results", nargs="+", type=Path)
    rep.add_argument("-o", "--output", default="results/report.html")
    rep.set_defaults(func=_report)
    return p


def main(argv: list[str] | None = None) -> int:
    from optimizers.resolve import OptimizerError
    from problems.registry import ProblemError

    args = build_parser().parse_args(argv)
    if getattr(args, "seeds", None) is not None and args.seeds < 1:
        print("trapbench: error: --seeds must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "steps", None) is not None and args.steps < 0:
        print("trapbench: error: --steps must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args) or 0
    except (CliError, suites.SuiteError, results.ResultsError, ProblemError, OptimizerError) as err:
        print(f"trapbench: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "trapbench: interrupted; finished cells are saved, rerun with --resume", file=sys.stderr
        )
        return 130


def entry() -> int:
    """The `trapbench` command: main() in a process of trapbench's own, whose allocator may
    keep freed memory (benchmarks/allocator.py; main() itself also serves library callers and
    tests, whose processes it leaves alone)."""
    from benchmarks.allocator import keep_freed_memory

    keep_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(entry())
