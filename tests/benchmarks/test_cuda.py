"""The CUDA path (`--device cuda`). Skipped where torch sees no GPU (CI has none); run on a GPU
machine with `pytest tests/benchmarks/test_cuda.py`. What must hold there: results agree with
the CPU to rounding (kernels differ in the last bits of transcendental functions), a seed's
trajectory on the GPU does not depend on its batch, and the CLI runs end to end."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from benchmarks.cli import main
from benchmarks.engine import RunConfig, train_cell
from benchmarks.stopping import StopRules
from optimizers.registry import BUILTINS
from problems.registry import make
from problems.rng import stream, uniform

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

CASES = [
    # problem, optimizer, hyperparameters, steps
    ("relu1d-x2:width=8", "adam", {"lr": 0.01}, 300),
    ("gauss-relu:k=6", "gd", {"lr": 0.1}, 300),
    ("deep-teacher:arch=2-6-5-1,act=tanh,points=32", "momentum", {"lr": 0.02}, 200),
    ("relu1d-x2:width=3,sampled=true,batch=64", "sgd", {"lr": 0.05}, 200),
]
SEEDS = torch.tensor([*range(300, 360), 81, *range(1000, 1037), 609, 259])


@pytest.mark.parametrize("spec,name,hp,steps", CASES, ids=[c[0] for c in CASES])
def test_cuda_agrees_with_cpu_float64(spec, name, hp, steps):
    problem = make(spec)
    cfg = RunConfig(steps=steps, dtype=torch.float64)
    cpu, _ = train_cell(problem, BUILTINS[name], hp, SEEDS, cfg, keep_params=True)
    gpu, _ = train_cell(
        problem,
        BUILTINS[name],
        hp,
        SEEDS,
        dataclasses.replace(cfg, device="cuda"),
        keep_params=True,
    )
    np.testing.assert_allclose(gpu["final_risk"], cpu["final_risk"], rtol=1e-7, atol=1e-12)
    for key in [k for k in cpu if k.startswith("param.")]:
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-6, atol=1e-9)


# cuBLAS picks its batched-GEMM kernel by batch size, so deep networks on CUDA agree across
# batchings to rounding only (as in float32 on the CPU); the other families are elementwise
# and reductions along a seed's own row: bitwise.
BITWISE = [c for c in CASES if not c[0].startswith("deep")]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("spec,name,hp,steps", BITWISE, ids=[c[0] for c in BITWISE])
def test_cuda_bitwise_batch_invariance(spec, name, hp, steps, compiled):
    """Alone, in a batch of 99 and with stopping rules compacting the batch: the same bits."""
    problem = make(spec)
    rules = StopRules(grad_tol=1e-6, every=10)
    cfg = RunConfig(steps=steps, dtype=torch.float64, device="cuda", compile=compiled, stop=rules)
    batch, _ = train_cell(problem, BUILTINS[name], hp, SEEDS, cfg, keep_params=True)
    keys = [k for k in batch if k.startswith("param.")] + ["final_risk", "stop_step"]
    for seed in (81, 609, 1036):
        alone, _ = train_cell(
            problem, BUILTINS[name], hp, torch.tensor([seed]), cfg, keep_params=True
        )
        i = SEEDS.tolist().index(seed)
        for key in keys:
            assert np.array_equal(batch[key][i], alone[key][0], equal_nan=True), (seed, key)


def test_cuda_deep_batchings_agree_to_rounding():
    spec, name, hp, steps = next(c for c in CASES if c[0].startswith("deep"))
    problem = make(spec)
    cfg = RunConfig(steps=steps, dtype=torch.float64, device="cuda")
    batch, _ = train_cell(problem, BUILTINS[name], hp, SEEDS, cfg, keep_params=True)
    alone, _ = train_cell(problem, BUILTINS[name], hp, torch.tensor([81]), cfg, keep_params=True)
    i = SEEDS.tolist().index(81)
    np.testing.assert_allclose(batch["final_risk"][i], alone["final_risk"][0], rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "rmsprop", "adagrad"])
def test_compiled_steps_run_on_cuda(name):
    """The built-ins' compiled update (optimizers/fused.py) runs on the GPU, no fallback."""
    cfg = RunConfig(steps=30, device="cuda", compile=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_cell(make("relu1d-x2:width=8"), BUILTINS[name], {}, torch.arange(64), cfg)
    assert not [w for w in caught if "torch.compile failed" in str(w.message)]


def test_sample_stream_is_the_same_on_cuda():
    seeds = torch.arange(40)
    cpu = uniform(123, seeds, stream("batch", 7), 256, torch.float64)
    gpu = uniform(123, seeds.cuda(), stream("batch", 7), 256, torch.float64)
    assert torch.equal(cpu, gpu.cpu())


def test_cli_runs_on_cuda(tmp_path):
    out = tmp_path / "gpu.json"
    code = main(
        [
            "run",
            "--problem",
            "relu1d-x2",
            "--optimizer",
            "adam",
            "--seeds",
            "64",
            "--steps",
            "200",
            "--device",
            "cuda",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code in (0, None)
    doc = json.loads(out.read_text())
    cell = doc["cells"][0]
    assert cell["config"]["device"] == "cuda"
    assert np.isfinite(np.array(cell["records"]["final_risk"], dtype=float)).all()
    assert main(["report", str(out), "-o", str(tmp_path / "gpu.html")]) in (0, None)
