import json

import pytest
import torch

from problems import reference, registry
from problems.registry import make
from problems.targets import affine, sine3, square, square_plus_linear, zigzag


def test_square_target_matches_closed_form():
    """R*_h = 4 / (45 (2h+1)^4) for f = x^2 on [0, 1] (docs/problems.md section 1, derived)."""
    solved = reference.solve(square(), 6)
    for h, value in enumerate(solved["levels"]):
        assert value == pytest.approx(4 / (45 * (2 * h + 1) ** 4), rel=1e-7)
    kinks = solved["solutions"][3]["kinks"]
    assert kinks == pytest.approx([(2 * j - 1) / 7 for j in range(1, 4)], abs=1e-5)


def test_affine_fit_level_of_square_is_one_over_180():
    spline0 = reference.solve(square(), 0, basis="spline")["levels"][0]
    assert spline0 == pytest.approx(1 / 180, rel=1e-10)


@pytest.mark.parametrize(
    "target", [square(), square_plus_linear(), zigzag(3)], ids=lambda t: t.name
)
def test_free_knot_spline_bounds(target):
    """spline(h knots) <= R*_h <= spline(h-1 knots): a width-h net is CPWL with h knots, and
    CPWL with h-1 knots is a width-h net (one neuron makes the affine part)."""
    relu = reference.solve(target, 4)["levels"]
    spline = reference.solve(target, 4, basis="spline")["levels"]
    for h in range(1, 5):
        assert spline[h] <= relu[h] * (1 + 1e-9) + 1e-15
        assert relu[h] <= spline[h - 1] * (1 + 1e-9) + 1e-15


def test_realizable_targets_reach_zero():
    assert reference.solve(affine(2.0, 1.0), 1)["levels"][1] < 1e-20
    zz = reference.solve(zigzag(3), 3)["levels"]
    assert zz[3] < 1e-12 and all(zz[h] > zz[h + 1] + 1e-4 for h in range(3))


def test_levels_are_monotone_and_start_at_the_variance():
    levels = reference.solve(square_plus_linear(), 3)["levels"]
    x = torch.linspace(0, 1, 200001, dtype=torch.float64)
    assert levels[0] == pytest.approx(float((x**2 + 2 * x).var()), rel=1e-4)
    assert all(a >= b for a, b in zip(levels, levels[1:], strict=False))


def test_cache_is_written_per_width_with_settings_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAPBENCH_CACHE", str(tmp_path))
    first = reference.optimal_levels(square_plus_linear(), 2)
    assert first["levels"] == reference.solve(square_plus_linear(), 2)["levels"]
    assert first["settings"]["version"] == reference.SOLVER_VERSION
    files = sorted((tmp_path / "reference").glob("width-*.json"))
    assert len(files) == 3  # widths 0, 1, 2, one file each
    stored = {json.loads(f.read_text())["risk"] for f in files}
    assert stored == set(first["levels"])
    calls = []
    solve_width = reference._solve_width

    def counting(target, h, *args):
        calls.append(h)
        return solve_width(target, h, *args)

    monkeypatch.setattr(reference, "_solve_width", counting)
    assert reference.optimal_levels(square_plus_linear(), 2)["levels"] == first["levels"]
    assert not calls  # a cache hit
    wider = reference.optimal_levels(square_plus_linear(), 3)["levels"]
    assert calls == [3]  # only the width no earlier call solved
    assert wider[:3] == first["levels"]


def test_solver_refuses_widths_beyond_the_full_search():
    with pytest.raises(ValueError, match="best_known_level"):
        reference.solve(square(), 3, settings={"full_search_width": 2})
    with pytest.raises(ValueError, match="at most 1024"):
        reference.check_width(1025)


@pytest.mark.parametrize("basis", ["relu", "spline"])
def test_residual_gradient_matches_finite_differences(basis):
    """The refinement's variable-projection gradient (envelope theorem) is the derivative of
    the risk in the kinks."""
    knots = torch.tensor([[0.2, 0.5, 0.7]], dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    target = sine3()
    _, grad = reference.residuals(target, knots, signs, basis, with_grad=True)
    for j in range(3):
        step = torch.zeros_like(knots)
        step[0, j] = 1e-6
        up = reference.residuals(target, knots + step, signs, basis)
        down = reference.residuals(target, knots - step, signs, basis)
        assert float(grad[0, j]) == pytest.approx(float(up - down) / 2e-6, rel=1e-6)


def test_square_spline_closed_form_matches_solver_and_fit():
    """1 / (180 (K+1)^4), equispaced knots (docs/problems.md section 1, derived): the spline
    basis of the full search and the fast fit agree with it."""
    spline = reference.solve(square(), 3, basis="spline")["levels"]
    closed = square().spline_closed_form
    for k, value in enumerate(spline):
        assert value == pytest.approx(closed(k), rel=1e-7)
    for k in (0, 3, 50):
        risk, knots = reference.cpwl_fit(square(), k)
        assert risk == pytest.approx(closed(k), rel=1e-7)
        assert knots == pytest.approx([(j + 1) / (k + 1) for j in range(k)], abs=1e-4)


@pytest.mark.parametrize("target", [sine3(), square_plus_linear()], ids=lambda t: t.name)
def test_cpwl_fit_is_an_achieved_upper_bound(target):
    """cpwl_fit(K) is achieved, so it lies above the full search's free-knot spline error with
    K knots and above R*_{K+1} (a width-(K+1) net realizes a K-knot CPWL), within the search's
    rounding; and close to the former (the fit finds the optimum at small K)."""
    relu = reference.solve(target, 4)["levels"]
    spline = reference.solve(target, 3, basis="spline")["levels"]
    for k in range(4):
        risk, knots = reference.cpwl_fit(target, k)
        assert len(knots) == k
        assert risk >= spline[k] * (1 - 1e-9)
        assert risk >= relu[k + 1] * (1 - 1e-9)
        assert risk <= spline[k] * (1 + 1e-6)


def test_best_known_level_is_cached_and_never_above_the_narrower_optimum(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAPBENCH_CACHE", str(tmp_path))
    settings = {"full_search_width": 2, "n_random": 256}
    bound = reference.best_known_level(sine3(), 40, settings)
    narrow = reference.optimal_levels(sine3(), 2, settings=settings)["levels"][-1]
    assert 0 < bound["risk"] < narrow
    assert bound["detail"].startswith("upper bound: continuous piecewise-linear")
    assert "39 free knots" in bound["detail"]
    monkeypatch.setattr(reference, "cpwl_fit", lambda *a, **k: pytest.fail("not cached"))
    assert reference.best_known_level(sine3(), 40, settings) == bound


def test_problem_optimum_provenance():
    x2 = make("relu1d-x2:width=3")
    assert x2.provenance == "exact" and "closed form" in x2.provenance_detail
    assert x2.optimum == 4 / (45 * 7**4)
    computed = make("relu1d-x2+2x:width=2")
    assert computed.provenance == "computed" and "reference solver" in computed.provenance_detail
    assert computed.optimum == reference.solve(square_plus_linear(), 2)["levels"][2]
    assert make("relu1d-affine").provenance == "exact"
    trap = make("relu1d-trap:width=3")
    assert trap.optimum == 0.0 and trap.provenance == "exact"
    assert [label for label, _ in trap.levels][:1] == ["R*_0"]
    assert trap.tol < min(v for _, v in trap.levels)


def test_closed_form_targets_never_run_the_solver(monkeypatch):
    monkeypatch.setattr(registry, "_MADE", {})  # build afresh, and forget it afterwards
    monkeypatch.setattr(reference, "_solve_width", lambda *a: pytest.fail("solver ran"))
    monkeypatch.setattr(reference, "cpwl_fit", lambda *a, **k: pytest.fail("fit ran"))
    wide = make("relu1d-x2:width=1000")
    assert wide.provenance == "exact"
    assert wide.optimum == pytest.approx(4 / (45 * 2001**4))
    labels = dict(wide.levels)
    assert labels["R*_100"] == pytest.approx(4 / (45 * 201**4))
    assert labels["cpwl-8"] == pytest.approx(1 / (180 * 9**4))


def test_wide_widths_build_with_best_known_provenance(monkeypatch):
    """Beyond the full search: the optimum is a best-known bound with its provenance, and
    only exactly known levels (the full search's) classify runs."""
    monkeypatch.setattr(registry, "_MADE", {})  # the problem is built with test settings
    monkeypatch.setitem(reference.DEFAULT_SETTINGS, "full_search_width", 2)
    monkeypatch.setitem(reference.DEFAULT_SETTINGS, "n_random", 256)
    wide = make("relu1d-sin3x:width=1000")
    assert wide.provenance == "best_known"
    assert "999 free knots" in wide.provenance_detail
    assert "negative gap" in wide.provenance_detail
    exact = reference.optimal_levels(sine3(), 2)["levels"]
    assert 0 < wide.optimum < exact[2]
    labels = [label for label, _ in wide.levels]
    assert {"R*_0", "R*_1", "R*_2"} <= set(labels)
    assert not any(label.startswith("R*_3") for label in labels)
    assert "cpwl-2" in labels and "cpwl-3" not in labels
    with pytest.raises(ValueError, match="at most 1024"):
        make("relu1d-sin3x:width=2000")
