"""Every registered family meets the contract written in problems/base.py (one table of
cheap instances; a new family adds its row here)."""

import json

import pytest
import torch

from problems.base import PROVENANCES
from problems.registry import REGISTRY, _load_families, canonical, make

INSTANCES = [
    "relu1d-affine:width=2",
    "relu1d-x2:width=3",
    "relu1d-x2+2x:width=2",
    "relu1d-sin3x:width=2",
    "relu1d-root4:width=2",
    "relu1d-x4sin:width=2,train=inner_biases,init=ijr2",
    "relu1d-teacher:width=3",
    "relu1d-trap:width=3,sampled=true,batch=64",
    "gauss-relu:k=3,n=4",
    "deep-teacher:arch=2-6-5-1,points=16",
    "deep-target:arch=1-6-1,points=16,act=tanh",
    "planted-sigmoid",
    "planted-deep:h1=3,h2=2",
]
CPU = torch.device("cpu")


def test_every_family_has_an_instance_here():
    _load_families()
    assert {spec.split(":")[0] for spec in INSTANCES} == set(REGISTRY)


@pytest.fixture(scope="module", params=INSTANCES)
def problem(request):
    return make(request.param)


def test_name_is_the_canonical_spelling_and_facts_are_consistent(problem):
    assert problem.name == canonical(problem.name)[0]
    assert problem.provenance in PROVENANCES and problem.provenance_detail
    assert problem.tol > 0 and problem.grad_tol > 0
    values = [value for _, value in problem.levels]
    assert values == sorted(values, reverse=True)
    assert all(value > problem.optimum + problem.tol for value in values)
    assert len({label for label, _ in problem.levels}) == len(problem.levels)
    json.dumps(problem.info(), allow_nan=True)  # stored with every result


def test_a_seed_is_a_function_of_its_index_only(problem):
    seeds = torch.arange(40, 50)
    alone = problem.init(seeds[3:4], torch.float64, CPU)
    batch = problem.init(seeds, torch.float64, CPU)
    for key, tensor in alone.items():
        assert tensor.shape[0] == 1 and torch.equal(tensor[0], batch[key][3])
    risk = problem.risk(batch)
    assert risk.shape == (10,) and torch.isfinite(risk).all()
    assert torch.equal(problem.risk(alone), risk[3:4])
    train = problem.train_risk(batch, seeds, 7)
    assert torch.equal(problem.train_risk(alone, seeds[3:4], 7), train[3:4])
    if problem.exact:
        assert torch.equal(train, risk)


def test_fast_gradient_equals_autograd_of_the_risk(problem):
    if problem.risk_grad is None:
        pytest.skip("no closed-form gradient")
    params = problem.init(torch.arange(6), torch.float64, CPU)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    expected = torch.autograd.grad(problem.risk(leaves).sum(), list(leaves.values()))
    value, grads = problem.risk_grad(params)
    torch.testing.assert_close(value, problem.risk(params), rtol=1e-12, atol=1e-14)
    assert list(grads) == list(params)
    for got, want in zip(grads.values(), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_stationarity_diagnostics_and_hessian_risk_are_per_seed(problem):
    params = problem.init(torch.arange(5), torch.float64, CPU)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    grads = dict(
        zip(
            leaves,
            torch.autograd.grad(problem.risk(leaves).sum(), list(leaves.values())),
            strict=True,
        )
    )
    assert problem.stationarity_of(grads).shape == (5,)
    assert isinstance(problem.info()["stationarity"], str)
    for name, value in problem.diagnostics(params).items():
        assert value.shape == (5,), name
    if problem.hessian_risk is not None:
        torch.testing.assert_close(
            problem.hessian_risk(params), problem.risk(params), rtol=1e-12, atol=1e-15
        )
