"""Property-based tests: any suite or spec either works or fails with the project's own
one-line error, never with a stray exception."""

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import suites
from optimizers.resolve import OptimizerError, split_spec
from problems.registry import ProblemError, canonical

names = st.sampled_from(["relu1d-x2", "relu1d-affine", "gauss-relu", "nope", "", "adam"])
scalars = st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6), st.booleans(), st.none()
)
optimizer_items = st.one_of(
    st.sampled_from(["adam", "sgd", "adma", "adam:lr=0.1", "adam:lr=-1", "Rprop", "x:y"]),
    st.fixed_dictionaries(
        {"name": st.sampled_from(["adam", "sgd", "bogus"])},
        optional={"lr": scalars, "momentum": scalars, "lr_grid": scalars},
    ),
    scalars,
)
suite_dicts = st.fixed_dictionaries(
    {},
    optional={
        "problems": st.one_of(st.lists(names, max_size=3), scalars),
        "optimizers": st.one_of(st.lists(optimizer_items, max_size=3), scalars),
        "seeds": scalars,
        "steps": scalars,
        "dtype": st.sampled_from(["float32", "float64", "half", 3]),
        "seed_start": scalars,
    },
)


@settings(max_examples=150, deadline=None)
@given(suite_dicts)
def test_suites_expand_or_fail_cleanly(suite):
    try:
        cells = suites.expand(suite)
    except suites.SuiteError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert cells and all(c.seeds >= 1 and c.steps >= 1 for c in cells)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="relu1dx2-:=,whtabcgs0123456789.", max_size=30))
def test_problem_specs_parse_or_fail_cleanly(spec):
    try:
        canonical(spec)
    except ProblemError as err:
        assert "\n" not in str(err)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_optimizer_specs_split_or_fail_cleanly(spec):
    try:
        split_spec(spec)
    except OptimizerError as err:
        assert "\n" not in str(err)
