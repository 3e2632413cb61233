"""Installable as a package (issue 15, item 6): the wheel carries the built-in suites, the
results schema and best_known.json, and an installed trapbench runs the smoke suite from a
directory outside the repository.

The wheel is built from a copy of the source tree (a build leaves build/ behind) without
build isolation (no network), installed without dependencies into a fresh virtual environment
that sees this interpreter's packages (torch is not reinstalled), and run from a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = {
    "benchmarks/suites/smoke.toml",
    "benchmarks/suites/default.toml",
    "benchmarks/results_schema.json",
    "problems/best_known.json",
    "reports/templates/report.html",
}
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "results",
    "*.egg-info",
    "__pycache__",
    ".*cache*",
    "tests",
    ".hypothesis",  # written by another pytest-xdist worker while this copies
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-q", "-w", str(work / "dist")], check=True, cwd=work)
    (built,) = (work / "dist").glob("trapbench-*.whl")
    return built


def test_wheel_carries_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert DATA <= names, DATA - names
    assert not any(n.startswith(("tests/", "baselines/")) for n in names)


def test_installed_wheel_runs_the_smoke_suite_outside_the_repository(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    # the fresh environment sees this interpreter's packages (torch, numpy, ...) through a .pth
    # line; editable installs listed there are not processed, so only the wheel's trapbench
    # can be imported
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*install, "--no-deps", "--no-index", str(wheel)], check=True)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import benchmarks; print(benchmarks.__file__)"],
        cwd=outside,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(site) in where  # the installed copy, not the repository
    run = subprocess.run(
        [str(env_dir / "bin" / "trapbench"), "run", "--suite", "smoke", "-o", "smoke.json"]
        + ["--no-progress", "--workers", "1"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads((outside / "smoke.json").read_text())
    assert len(doc["cells"]) == 4 and not doc["errors"]
    report = subprocess.run(
        [str(env_dir / "bin" / "trapbench"), "report", "smoke.json", "-o", "smoke.html"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert (outside / "smoke.html").stat().st_size > 0
