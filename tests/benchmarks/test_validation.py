"""Validation before the first cell (issue 15, items 4-5): every bad input is one line on
stderr and exit code 2, no traceback, and nothing runs; malformed results files name the
field in check, report, export and --resume; --resume accepts a suite fixed after an error."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import results, suites
from benchmarks.cli import main
from problems.registry import ProblemError, canonical

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "baselines" / "ci.json"
QUICK = ["--problem", "relu1d-affine:width=2", "--optimizer", "sgd:lr=0.05"]
BUDGET = ["--seeds", "4", "--steps", "10", "--no-progress"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("trapbench: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


BAD_RUNS = [
    (["--problem", "relu1d-x2:width=0", "--optimizer", "sgd"], "width=0"),
    (["--problem", "relu1d-x2:width=-3", "--optimizer", "sgd"], "width=-3"),
    (["--problem", "gauss-relu:k=0", "--optimizer", "sgd"], "k=0"),
    (["--problem", "gauss-relu:k=4,n=2", "--optimizer", "sgd"], "n=2 < k=4"),
    (["--problem", "deep-teacher:act=swish", "--optimizer", "sgd"], "unknown act 'swish'"),
    (["--problem", "deep-target:arch=1-x-1", "--optimizer", "sgd"], "architecture"),
    (["--problem", "relu1d-x2:actv=swish", "--optimizer", "sgd"], "has no option 'actv'"),
    (["--problem", "relu1d-x2:tol=-1", "--optimizer", "sgd"], "tol=-1.0"),
    (["--problem", "relu1d-x2:noise=nan", "--optimizer", "sgd"], "must be finite"),
    (["--problem", "relu1d-affine:init=foo", "--optimizer", "sgd"], "unknown init 'foo'"),
    (["--problem", "planted-sigmoid:neuron=2", "--optimizer", "sgd"], "neuron=2"),
    (["--problem", "relu1d-sin3x:width=100000", "--optimizer", "sgd"], "reference solver"),
    (["--problem", "relu1d-x2", "--optimizer", "sgdx"], "unknown optimizer 'sgdx'"),
    (["--problem", "relu1d-x2", "--optimizer", "sgd:lr=-1"], "lr must be a positive"),
    (["--problem", "relu1d-x2", "--optimizer", "adam:betas=3"], "rejected hyperparameters"),
    (["--problem", "relu1d-x2", "--optimizer", "sgd:momentum=-1"], "rejected hyperparameters"),
    ([*QUICK, "--device", "gpu"], "--device 'gpu'"),
    ([*QUICK, "--threads", "0"], "--threads must be"),
    ([*QUICK, "--workers", "-1"], "--workers must be"),
    ([*QUICK, "--chunk", "-1"], "--chunk must be"),
    ([*QUICK, "--verify", "-1"], "--verify must be"),
    ([*QUICK, "--task-seeds", "-2"], "--task-seeds must be"),
    ([*QUICK, "--scheduler", "localhost"], "neither 'local' nor a dask address"),
    ([*QUICK, "--seeds", "0"], "--seeds must be >= 1"),
    ([*QUICK, "--seeds", "1000000000"], "GiB of memory"),
    (["--problem", "relu1d-x2", "--problem", "relu1d-x2:width=4", "--optimizer", "sgd"], "twice"),
]


@pytest.mark.parametrize(("argv", "says"), BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_input_is_one_line_before_anything_runs(tmp_path, capsys, argv, says):
    out = tmp_path / "r.json"
    budget = [] if "--seeds" in argv else ["--seeds", "4"]
    code = main(["run", *argv, *budget, "--steps", "10", "--no-progress", "-o", str(out)])
    line = one_error_line(capsys)
    assert code == 2 and says in line, line
    assert not out.exists()  # refused before the first cell


def write_suite(path: Path, text: str) -> Path:
    path.write_text('name = "t"\nseeds = 4\nsteps = 10\n' + text)
    return path


def test_unknown_suite_key_and_unwritable_output_are_one_line(tmp_path, capsys):
    suite = write_suite(
        tmp_path / "s.toml", 'seed = 8\nproblems = ["relu1d-affine"]\noptimizers = ["sgd"]\n'
    )
    assert main(["run", "--suite", str(suite), "-o", str(tmp_path / "r.json")]) == 2
    assert "unknown suite key(s) 'seed'" in one_error_line(capsys)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out, says in ((blocker / "r.json", "cannot write results"), (tmp_path, "is a directory")):
        assert main(["run", *QUICK, *BUDGET, "-o", str(out)]) == 2
        assert says in one_error_line(capsys)


def test_every_builtin_suite_has_only_known_keys():
    for name in suites.builtin_suites():
        suites.check_keys(suites.load(name))


@pytest.mark.parametrize(
    "spec", ["relu1d-x2:width=100000", "relu1d-x2:width=65", "relu1d-trap:width=64"]
)
def test_closed_form_or_affordable_widths_are_accepted(spec):
    assert canonical(spec)[1]["width"] in (100000, 65, 64)


def test_a_width_beyond_the_solver_without_closed_form_is_refused():
    with pytest.raises(ProblemError, match="at most 1024"):
        canonical("relu1d-trap:width=1025")


# --- malformed results files: one line naming the field --------------------------------


def damaged(tmp_path: Path, change) -> Path:
    doc = json.loads(BASELINE.read_text())
    change(doc)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(doc))
    return path


def drop_rate(doc):
    del doc["cells"][1]["metrics"]["success_rate"]


def text_risk(doc):
    doc["cells"][0]["records"]["final_risk"][3] = "0.1"


def bad_fate(doc):
    doc["cells"][2]["records"]["fate"][0] = "lost"


def cells_object(doc):
    doc["cells"] = {}


DAMAGE = [
    (drop_rate, "cells[1].metrics.success_rate: missing"),
    (text_risk, "cells[0].records.final_risk[3]: must be number or null, got string"),
    (bad_fate, "cells[2].records.fate[0]: must be one of"),
    (cells_object, "cells: must be array, got object"),
]


@pytest.mark.parametrize(("change", "says"), DAMAGE, ids=[c.__name__ for c, _ in DAMAGE])
@pytest.mark.parametrize("command", ["check", "report", "export", "resume"])
def test_malformed_results_file_is_one_line_naming_the_field(
    tmp_path, capsys, command, change, says
):
    bad = damaged(tmp_path, change)
    argv = {
        "check": ["check", "--baseline", str(BASELINE), str(bad)],
        "report": ["report", str(bad), "-o", str(tmp_path / "r.html")],
        "export": ["export", str(bad), "--csv", str(tmp_path / "r.csv")],
        "resume": ["run", "--suite", "smoke", "--resume", "--no-progress", "-o", str(bad)],
    }[command]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert says in line and "damaged.json" in line, line


def test_schema_uses_only_keywords_the_validator_knows():
    def walk(node):
        if isinstance(node, dict):
            yield from node
            for key, value in node.items():
                if key in ("properties",):
                    for sub in value.values():
                        yield from walk(sub)
                elif isinstance(value, dict):
                    yield from walk(value)

    assert set(walk(results.load_schema())) <= results.KEYWORDS


def test_committed_baseline_follows_the_schema_and_a_fresh_document_too():
    results.validate(json.loads(BASELINE.read_text()))
    results.validate(results.new_document({"name": "x"}))


def test_readme_field_table_is_the_schema_s_table():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Results file") :]
    assert results.field_table() in section, "rerun python -m benchmarks.results into README.md"


def test_report_into_an_unwritable_place_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["report", str(BASELINE), "-o", str(blocker / "r.html")]) == 2
    assert "cannot write the report" in one_error_line(capsys)


# --- resume after a fixed suite -------------------------------------------------------------


def test_resume_accepts_a_suite_fixed_after_an_error_and_refuses_a_changed_cell(tmp_path, capsys):
    out = tmp_path / "r.json"
    base = '[[optimizers]]\nname = "sgd"\nlr = 0.05\n'
    broken = write_suite(
        tmp_path / "a.toml",
        'problems = ["relu1d-affine:width=2", ' + '"relu1d-x2:width=0"]\n' + base,
    )
    assert main(["run", "--suite", str(broken), "--no-progress", "-o", str(out)]) == 2
    assert "width=0" in one_error_line(capsys) and not out.exists()
    first = write_suite(tmp_path / "b.toml", 'problems = ["relu1d-affine:width=2"]\n' + base)
    assert main(["run", "--suite", str(first), "--no-progress", "-o", str(out)]) == 0
    done = results.read(out)["cells"][0]
    fixed = write_suite(
        tmp_path / "c.toml", 'problems = ["relu1d-affine:width=2", "relu1d-x2:width=2"]\n' + base
    )
    assert main(["run", "--suite", str(fixed), "--resume", "--no-progress", "-o", str(out)]) == 0
    doc = results.read(out)
    assert [c["id"] for c in doc["cells"]][0] == done["id"] and len(doc["cells"]) == 2
    assert doc["cells"][0]["records"] == done["records"]  # kept, not recomputed
    assert doc["suite"]["problems"][1] == "relu1d-x2:width=2"
    capsys.readouterr()
    changed = write_suite(
        tmp_path / "d.toml",
        'checkpoints = 5\nproblems = ["relu1d-affine:width=2", "relu1d-x2:width=2"]\n' + base,
    )
    assert main(["run", "--suite", str(changed), "--resume", "-o", str(out)]) == 2
    assert "ran with other checkpoints" in one_error_line(capsys)
    assert main(["run", "--suite", str(first), "--resume", "-o", str(out)]) == 2
    assert "no longer lists" in one_error_line(capsys)


def test_resume_drops_errors_of_cells_the_fixed_suite_no_longer_has(tmp_path, capsys):
    out = tmp_path / "r.json"
    suite = {"name": "t", "problems": ["relu1d-affine:width=2"], "optimizers": ["sgd"]}
    doc = results.new_document(copy.deepcopy(suite))
    doc["errors"] = [{"id": "gone|sgd||s0+4|t10", "error": "ProblemError: width must be >= 1"}]
    results.write(doc, out)
    path = write_suite(
        tmp_path / "s.toml", 'problems = ["relu1d-affine:width=2"]\noptimizers = ["sgd"]\n'
    )
    assert main(["run", "--suite", str(path), "--resume", "--no-progress", "-o", str(out)]) == 0
    assert results.read(out)["errors"] == []
