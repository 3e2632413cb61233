from pathlib import Path

import pytest
import torch

from benchmarks.probe import batched_matches_single, checked_entry
from benchmarks.runner import run_cell
from benchmarks.suites import Cell
from optimizers.resolve import OptimizerError, resolve

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COUPLED = '''
import pytest
import torch

class ClippedSGD(torch.optim.SGD):
    """SGD with global-norm clipping: the norm runs over every seed when seeds are stacked."""

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, max_norm=0.05)
        return super().step(closure)


def make_sgd(params, lr=0.01):
    """A factory rather than a class."""
    return torch.optim.SGD(params, lr=lr)
'''


def write_plugin(tmp_path):
    path = tmp_path / "plugin.py"
    path.write_text(COUPLED)
    return path


def test_probe_accepts_elementwise_and_rejects_coupled(tmp_path):
    path = write_plugin(tmp_path)
    safe, diff = batched_matches_single(resolve(f"{EXAMPLES}/signum.py:Signum"), {"lr": 1e-3})
    assert safe and diff <= 1e-10
    safe, diff = batched_matches_single(resolve(f"{path}:ClippedSGD"), {"lr": 0.1})
    assert not safe and diff > 1e-6
    assert checked_entry(f"{path}:make_sgd", {"lr": 0.01}).batch_safe
    assert not checked_entry("LBFGS", {"lr": 0.5}).batch_safe
    assert checked_entry("Rprop", {}).batch_safe


def test_coupled_optimizer_runs_per_seed_and_matches_single_runs(tmp_path):
    path = write_plugin(tmp_path)
    spec = f"{path}:ClippedSGD"
    cell = Cell("relu1d-x2:width=3", spec, {"lr": 0.1}, steps=30, seeds=5, dtype="float64")
    result = run_cell(cell)
    # a global clip couples a seed's tensors: exact when vmap runs one seed's whole step
    assert result["optimizer"]["path"] == "vmapped"
    alone = run_cell(
        Cell(
            "relu1d-x2:width=3", spec, {"lr": 0.1}, steps=30, seed_start=3, seeds=1, dtype="float64"
        )
    )
    assert result["records"]["final_risk"][3] == alone["records"]["final_risk"][0]


def test_lbfgs_runs_per_seed_with_closure():
    cell = Cell("relu1d-x2:width=2", "LBFGS", {"lr": 0.5}, steps=5, seeds=3, dtype="float64")
    result = run_cell(cell)
    assert result["optimizer"]["batched"] is False
    assert all(r is not None and r < 0.1 for r in result["records"]["final_risk"])
    assert torch.isfinite(torch.tensor(result["records"]["grad_norm"])).all()


PATHS = '''
import pytest
import torch

class TrustSGD(torch.optim.SGD):
    """A per-tensor trust ratio, as in LARS: couples the entries of one tensor."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad.mul_(p.norm() / (p.grad.norm() + 1e-12))
        return super().step(closure)


class Float32Only(torch.optim.SGD):
    """Stands for a plug-in that compiles for float32 and fails with a long dump otherwise."""

    def step(self, closure=None):
        if self.param_groups[0]["params"][0].dtype == torch.float64:
            raise TypeError("kernel compiled for float32 only\\n" + "dump line\\n" * 90)
        return super().step(closure)
'''


def test_probe_picks_the_fastest_exact_path(tmp_path):
    coupled, paths = write_plugin(tmp_path), tmp_path / "paths.py"
    paths.write_text(PATHS)
    assert checked_entry(f"{paths}:TrustSGD", {"lr": 0.01}).path == "vmapped"
    assert checked_entry(f"{coupled}:ClippedSGD", {"lr": 0.1}).path == "vmapped"
    assert checked_entry(f"{coupled}:make_sgd", {"lr": 0.01}).path == "stacked"


def test_probe_runs_in_the_runs_dtype_and_fails_in_one_line(tmp_path):
    paths = tmp_path / "paths.py"
    paths.write_text(PATHS)
    spec = f"{paths}:Float32Only"
    assert checked_entry(spec, {"lr": 0.01}, torch.float32).path == "stacked"
    with pytest.raises(OptimizerError) as err:
        checked_entry(spec, {"lr": 0.01}, torch.float64)
    message = str(err.value)
    assert "\n" not in message
    assert "cannot run on relu1d-x2:width=3 in float64" in message
    assert "TypeError: kernel compiled for float32 only" in message
