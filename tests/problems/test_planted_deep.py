import pytest
import torch

from problems.planted_deep import (
    b_matrix,
    construct,
    d_condition,
    flat,
    half_sse,
    hessian,
    split,
    teacher_data,
    unflat,
)
from problems.registry import make

SMALL = (24, 20, 3, 3)  # data, samples, h1, h2: the default draw, split to 2-3-3-1


def random_point(h1: int, h2: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "w1": torch.randn(1, h1, 2, generator=g, dtype=torch.float64),
        "w2": torch.randn(1, h2, h1, generator=g, dtype=torch.float64),
        "v": torch.randn(1, h2, generator=g, dtype=torch.float64),
        "c": torch.randn(1, generator=g, dtype=torch.float64),
    }


@pytest.fixture(scope="module")
def small_case():
    return construct(*SMALL)


@pytest.mark.parametrize("layer,r,lam", [(1, 0, 0.3), (1, 1, 1.7), (2, 1, -0.5), (2, 0, 0.5)])
def test_split_leaves_the_function_unchanged(layer, r, lam):
    x, y = teacher_data(3, 20)
    point = random_point(2, 2)
    wide = split(point, layer, r, lam)
    assert wide[f"w{layer}"].shape[1] == 3
    torch.testing.assert_close(half_sse(wide, x, y), half_sse(point, x, y), rtol=1e-14, atol=0)


@pytest.mark.parametrize("layer,r", [(1, 0), (1, 1), (2, 1)])
def test_b_and_d_are_the_hessian_blocks_in_split_coordinates(layer, r):
    """At any point (a 2-2-2-1 network, where D is not zero), moving the copies' incoming
    weights by (1 - lam) d and -lam d and their outgoing weights by +e and -e changes L to
    second order by 1/2 lam (1 - lam) d^T B d + e^T D d: autograd's Hessian in (d, e)
    equals the closed forms."""
    x, y = teacher_data(5, 20)
    point, lam = random_point(2, 2, seed=layer + r), 0.3
    wide = split(point, layer, r, lam)
    new = wide[f"w{layer}"].shape[1] - 1
    n_in = wide[f"w{layer}"].shape[2]
    out_key = "w2" if layer == 1 else "v"

    def loss(z):
        d, e = z[:n_in], z[n_in:]
        p = {k: t.clone() for k, t in wide.items()}
        w = p[f"w{layer}"]
        w = torch.cat([w[:, :r], w[:, r : r + 1] + (1 - lam) * d, w[:, r + 1 :]], dim=1)
        w = torch.cat([w[:, :new], w[:, new:] - lam * d], dim=1)
        p[f"w{layer}"] = w
        o = p[out_key]
        if layer == 1:
            o = torch.cat([o[..., :r], o[..., r : r + 1] + e[:, None], o[..., r + 1 :]], -1)
            o = torch.cat([o[..., :new], o[..., new:] - e[:, None]], -1)
        else:
            o = torch.cat([o[..., :r], o[..., r : r + 1] + e, o[..., r + 1 :]], -1)
            o = torch.cat([o[..., :new], o[..., new:] - e], -1)
        p[out_key] = o
        return half_sse(p, x, y)[0]

    n_out = 2 if layer == 1 else 1
    h = torch.autograd.functional.hessian(loss, torch.zeros(n_in + n_out, dtype=torch.float64))
    b = b_matrix(point, x, y, layer, r)
    d, _ = d_condition(point, x, y, layer, r)
    torch.testing.assert_close(h[:n_in, :n_in], lam * (1 - lam) * b, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(h[n_in:, :n_in], d, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(h[n_in:, n_in:], torch.zeros(n_out, n_out, dtype=torch.float64))
    if layer == 1:
        assert d.abs().max() > 1e-3  # a generic point: D is not zero, the test has teeth


def test_construction_records_a_local_minimum_with_zero_d(small_case):
    info = small_case
    assert info["kind"] == "local-min"
    assert len(info["splits"]) == 4
    assert all(s["d_relative"] < 1e-6 for s in info["splits"])
    assert min(info["b1_eigenvalues"]) > 0  # positive definite, as the paper's
    x, y = info["x"], info["y"]
    torch.testing.assert_close(
        half_sse(info["planted"], x, y)[0],
        torch.tensor(info["small_loss"], dtype=torch.float64),
        rtol=1e-12,
        atol=0,
    )


def test_hessian_at_the_planted_point_has_no_negative_curvature(small_case):
    """Independent of the theorem: the Hessian's smallest eigenvalue is zero to rounding
    (the flat split directions) and never clearly negative; the small minimum is strict."""
    x, y, planted = small_case["x"], small_case["y"], small_case["planted"]
    eig = torch.linalg.eigvalsh(hessian(planted, x, y))
    scale = float(eig.abs().max())
    assert float(eig[0]) >= -1e-8 * scale
    assert int((eig.abs() <= 1e-8 * scale).sum()) >= 4  # one flat direction per split at least
    assert small_case["small_hessian_min"] > 0


def test_small_perturbations_do_not_lower_the_loss(small_case):
    """64 random directions u, step t = 1e-3: L(theta + t u) >= L(theta), and the increase
    matches 1/2 t^2 u^T H u along the non-flat ones."""
    x, y, planted = small_case["x"], small_case["y"], small_case["planted"]
    theta = flat(planted)
    h = hessian(planted, x, y)
    base = float(half_sse(planted, x, y)[0])
    g = torch.Generator().manual_seed(0)
    t = 1e-3
    for _ in range(64):
        u = torch.randn(theta.shape, generator=g, dtype=torch.float64)
        u /= u.norm()
        rise = float(half_sse(unflat(theta + t * u, planted), x, y)[0]) - base
        quad = 0.5 * t * t * float(u @ h @ u)
        assert rise >= -1e-15
        assert rise == pytest.approx(quad, rel=0.05, abs=1e-12)


def test_a_split_on_the_wrong_side_is_a_saddle(small_case):
    """B of the first-layer neuron is positive definite: lambda outside [0, 1] turns the split
    into a saddle, and the Hessian shows the negative curvature."""
    info = small_case
    x, y = info["x"], info["y"]
    wrong = split(info["small"], 1, 0, 1.5)
    eig = torch.linalg.eigvalsh(hessian(wrong, x, y))
    scale = float(eig.abs().max())
    assert float(eig[0]) < -1e-5 * scale
    assert int((eig < -1e-8 * scale).sum()) == 2  # one per dimension of B (2 x 2, definite)


def test_problem_starts_next_to_the_planted_level():
    problem = make("planted-deep:h1=3,h2=3")
    assert problem.optimum == 0.0 and problem.provenance == "best_known"  # 3 < 5 teacher
    ((label, level),) = problem.levels
    start = problem.init(torch.arange(8), torch.float64, torch.device("cpu"))
    assert label == "planted"
    ratio = problem.risk(start) / level
    # a local minimum: noise of 1e-3 never lowers the risk, and only raises it to second order
    assert bool((ratio >= 1 - 1e-9).all()) and bool((ratio <= 1.25).all()), ratio
