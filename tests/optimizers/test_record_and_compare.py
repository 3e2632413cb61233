"""What a run records about a plug-in optimizer, and `compare` failing loudly."""

import importlib.metadata

import torch

from benchmarks.cli import main
from benchmarks.runner import run_cell
from benchmarks.suites import Cell
from optimizers.record import describe_hyperparameters, plugin_origin, resolved_hyperparameters
from optimizers.resolve import resolve

FAILING = '''
import torch

class Broken(torch.optim.SGD):
    """Raises on every step (stands for an optimizer that cannot run here)."""

    def step(self, closure=None):
        raise RuntimeError("this optimizer cannot step")
'''


def test_resolved_hyperparameters_include_the_optimizers_own_defaults():
    hp = describe_hyperparameters(resolve("pytorch_optimizer:Lamb"), {"lr": 0.05})
    assert hp["lr"] == 0.05 and hp["betas"] == [0.9, 0.999] and hp["eps"] == 1e-6
    sam = describe_hyperparameters(resolve("optimizers.factories:sam_adam"), {"rho": 0.1})
    assert sam["rho"] == 0.1 and sam["base_optimizer"]["class"] == "torch.optim.adam.Adam"
    opt = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.1)
    assert resolved_hyperparameters(opt)["betas"] == [0.9, 0.999]


def test_plugin_package_and_version(tmp_path):
    origin = plugin_origin(resolve("pytorch_optimizer:Lion"))
    assert origin == {
        "package": "pytorch_optimizer",
        "version": importlib.metadata.version("pytorch_optimizer"),
    }
    assert plugin_origin(resolve("adam"))["package"] == "torch"
    path = tmp_path / "mine.py"
    path.write_text("import torch\nMine = torch.optim.SGD\n")
    before = plugin_origin(resolve(f"{path}:Mine"))["version"]
    path.write_text("import torch\nMine = torch.optim.Adam\n")
    assert (
        before.startswith("sha256:") and plugin_origin(resolve(f"{path}:Mine"))["version"] != before
    )


def test_cell_records_path_contract_and_resolved_defaults():
    cell = Cell("relu1d-x2:width=3", "pytorch_optimizer:Lamb", {"lr": 0.01}, steps=5, seeds=3)
    record = run_cell(cell)["optimizer"]
    assert record["path"] == "vmapped"
    assert record["resolved_hyperparameters"]["weight_decouple"] is True
    assert record["origin"]["package"] == "pytorch_optimizer" and record["origin"]["version"]


def test_compare_exits_nonzero_and_lists_candidate_failures_first(tmp_path, capsys):
    plugin = tmp_path / "broken.py"
    plugin.write_text(FAILING)
    out = tmp_path / "c.json"
    argv = ["compare", "--optimizer", f"{plugin}:Broken@lr=0.01", "--baselines", "sgd"]
    argv += ["--suite", "smoke", "--seeds", "2", "--steps", "3", "--workers", "1"]
    code = main([*argv, "--no-progress", "--no-report", "-o", str(out)])
    assert code == 1
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert f"{plugin}:Broken" in lines[0] and "this optimizer cannot step" in lines[0]
    summary = [i for i, line in enumerate(lines) if line.startswith("trapbench: candidate")]
    assert len(summary) == 2 and "cannot step" in lines[summary[0]]
    assert all(f"{plugin}:Broken" in line for line in lines[: summary[-1] + 1] if line)
    assert "failed in 2 of 2 cell(s)" in printed.err
