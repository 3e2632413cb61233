"""deep-target's bias option (N(0, 1) biases: Ibragimov, Jentzen & Riekert 2022, setting 6)
and the landscape key its best-known value is stored under."""

import pytest
import torch

from problems.deepfc import landscape
from problems.registry import ProblemError, make

CPU = torch.device("cpu")
SPEC = "deep-target:arch=1-6-5-1,init=normal,bias=normal,points=16"


def test_normal_biases_are_standard_normal_and_zero_stays_zero():
    params = make(SPEC).init(torch.arange(2000), torch.float64, CPU)
    biases = torch.cat([params[f"b{layer}"].flatten() for layer in range(3)])
    assert abs(float(biases.mean())) < 0.05 and abs(float(biases.std()) - 1) < 0.05
    zero = make(SPEC.replace("bias=normal", "bias=zero")).init(torch.arange(4), torch.float64, CPU)
    assert all(not zero[f"b{layer}"].any() for layer in range(3))


def test_normal_bias_draws_are_per_seed_and_batch_invariant():
    problem = make(SPEC)
    seeds = torch.arange(40, 50)
    batch = problem.init(seeds, torch.float64, CPU)
    for i in (0, 3, 9):
        alone = problem.init(seeds[i : i + 1], torch.float64, CPU)
        for key, tensor in alone.items():
            assert torch.equal(tensor[0], batch[key][i]), (i, key)
    assert not torch.equal(batch["b0"][0], batch["b0"][1])  # seeds differ


def test_unknown_bias_is_refused():
    with pytest.raises(ProblemError, match="bias"):
        make("deep-target:bias=uniform")


@pytest.mark.parametrize(
    "name, key",
    [
        ("deep-target", "deep-target"),
        (
            "deep-target:arch=1-8-8-1,bias=normal,init=normal,sampled=True",
            "deep-target:arch=1-8-8-1",
        ),
        (
            "deep-target:arch=1-50-50-1,init=xavier,sampled=True,target=x2+2x",
            "deep-target:arch=1-50-50-1,target=x2+2x",
        ),
        ("deep-target:points=1024,tol=0.01", "deep-target:points=1024"),
    ],
)
def test_landscape_drops_only_what_leaves_the_evaluation_risk_alone(name, key):
    assert landscape(name) == key


def test_settings_sharing_a_landscape_share_its_best_known_value():
    """He and Xavier, online and grid-trained: one recorded value (problems/best_known.json)."""
    grid = make("deep-target:arch=1-50-50-1,target=x2+2x")
    online = make("deep-target:arch=1-50-50-1,target=x2+2x,init=xavier,sampled=true")
    assert grid.optimum > 0 and online.optimum == grid.optimum
    assert online.provenance_detail == grid.provenance_detail
