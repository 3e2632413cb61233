import pytest
import torch

from problems.deepfc import ACTIVATIONS, forward, make_teacher, parse_widths
from problems.registry import ProblemError, make


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_batched_forward_matches_torch_sequential(act):
    p = make(f"deep-teacher:arch=3-5-4-1,act={act},points=32")
    params = p.init(torch.arange(3), torch.float64, torch.device("cpu"))
    for name in params:
        if name.startswith("b"):
            params[name] = torch.randn_like(params[name])
    x = torch.randn(10, 3, dtype=torch.float64)
    out = forward(params, x, act)
    for s in range(3):
        layers = []
        for i in range(3):
            lin = torch.nn.Linear(*params[f"W{i}"].shape[2:0:-1]).double()
            lin.weight.data = params[f"W{i}"][s]
            lin.bias.data = params[f"b{i}"][s]
            layers += [
                lin,
                torch.nn.ReLU()
                if act == "relu"
                else torch.nn.Tanh()
                if act == "tanh"
                else torch.nn.Sigmoid(),
            ]
        ref = torch.nn.Sequential(*layers[:-1])(x)[:, 0]
        torch.testing.assert_close(out[s], ref)


def test_student_containing_teacher_has_zero_risk_at_the_padded_teacher():
    name = "deep-teacher:arch=2-6-5-1,teacher=2-3-2-1,points=64"
    p = make(name)
    assert p.provenance == "exact" and p.optimum == 0.0
    canonical = "deep-teacher:arch=2-6-5-1,points=64,teacher=2-3-2-1"
    x, tp = make_teacher(canonical, 2, [2, 3, 2, 1], "relu", 64)
    student = p.init(torch.arange(1), torch.float64, torch.device("cpu"))
    for k in student:  # embed the teacher, zero elsewhere
        student[k] = torch.zeros_like(student[k])
        t = tp[k]
        student[k][(slice(None), *(slice(0, n) for n in t.shape[1:]))] = t
    assert float(p.risk(student)[0]) < 1e-28
    assert p.risk(p.init(torch.arange(4), torch.float64, torch.device("cpu"))).min() > 1e-3


def test_labels_have_unit_variance_and_dead_units_are_counted():
    p = make("deep-teacher:arch=1-16-16-1,points=128")
    params = p.init(torch.arange(8), torch.float64, torch.device("cpu"))
    params["b0"][:] = -100.0  # every first-layer unit dead on [-1, 1]
    assert (p.diagnostics(params)["dead_neurons"] >= 16).all()


def test_deep_target_and_bad_architectures():
    p = make("deep-target:arch=1-8-8-1,target=x2+2x,points=32")
    assert p.provenance == "best_known"
    with pytest.raises(ProblemError, match="1-32-32-1"):
        make("deep-teacher:arch=1-x-1")
    with pytest.raises(ProblemError, match="one input"):
        make("deep-target:arch=2-8-1")
    with pytest.raises(ProblemError, match="one output"):
        make("deep-teacher:arch=2-8-2")
    assert parse_widths("8-32-1") == [8, 32, 1]


@pytest.mark.parametrize(
    "spec",
    [
        "deep-teacher:arch=3-5-4-1,act=relu,points=40",
        "deep-teacher:arch=3-5-4-1,act=tanh,points=40",
        "deep-teacher:arch=3-5-4-1,act=sigmoid,points=40",
        "deep-teacher:arch=2-6-1,points=40",
        "deep-teacher:arch=4-1,points=40",
        "deep-target:arch=1-8-8-1,points=32",
    ],
)
def test_backpropagation_equals_autograd(spec):
    p = make(spec)
    params = p.init(torch.arange(3), torch.float64, torch.device("cpu"))
    for name in params:  # non-zero biases exercise every term
        params[name] = params[name] + 0.1 * torch.randn_like(params[name])
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    risk = p.risk(leaves)
    auto = torch.autograd.grad(risk.sum(), list(leaves.values()))
    value, grads = p.risk_grad(params)
    torch.testing.assert_close(value, risk.detach(), rtol=1e-12, atol=1e-14)
    assert list(grads) == list(params)
    for key, g in zip(leaves, auto, strict=True):
        torch.testing.assert_close(grads[key], g, rtol=1e-10, atol=1e-13)
