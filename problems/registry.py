"""Problem registry: a name maps to a factory taking keyword options.

A problem is named on the command line or in a suite as ``name`` or ``name:key=value,...``
(e.g. ``relu1d-x2:width=4,init=he``); the canonical spelling (sorted non-default options) is
the problem's identity and its random-number key. Each family declares its options with their
types (problems/options.py); what a factory must return is the contract in problems/base.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from problems.base import Problem
from problems.names import did_you_mean
from problems.options import Option, by_name


@dataclass(frozen=True)
class ProblemEntry:
    name: str
    factory: Callable[..., Problem]
    summary: str
    citation: str
    provenance: str
    options: tuple[Option, ...] = ()
    check: Callable[[dict], None] | None = None  # raises ValueError on bad options (cheap)


REGISTRY: dict[str, ProblemEntry] = {}


def register(
    name: str,
    summary: str,
    citation: str,
    provenance: str,
    options: tuple[Option, ...],
    check: Callable[[dict], None] | None = None,
):
    """Decorator adding a problem factory to the registry under ``name``.

    The factory is called as ``factory(_name=canonical spelling, **typed options)`` with every
    declared option, and returns a Problem (the contract in problems/base.py). ``check``
    validates the family's options (all of them, defaults filled in) without building the
    problem, so a suite is refused before its first cell runs."""

    def wrap(factory: Callable[..., Problem]) -> Callable[..., Problem]:
        if name in REGISTRY:
            raise ValueError(f"problem {name!r} registered twice")
        by_name(options)  # a name declared twice fails here, at import
        REGISTRY[name] = ProblemEntry(name, factory, summary, citation, provenance, options, check)
        return factory

    return wrap


class ProblemError(ValueError):
    """A problem name or option that cannot be used; the message names the fix."""


# Options shared by several families, by name: (lowest allowed value, what it means). Family
# specific rules (choices, relations between options) are each family's ``check``.
MINIMUM = {
    "width": (1, "neurons"),
    "k": (1, "teacher neurons"),
    "batch": (1, "samples per step"),
    "points": (1, "inputs"),
    "kinks": (1, "teacher kinks"),
    "samples": (2, "samples"),
    "n": (0, "student neurons (0: n = k)"),
    "data": (0, "data draw"),
    "neuron": (0, "neuron index"),
    "tol": (0.0, "success tolerance"),
    "noise": (0.0, "init noise"),
    "spurious": (0.0, "spurious-minimum margin"),
    "grad_tol": (0.0, "stationarity tolerance"),
}
NAN_ALLOWED = {"lam"}  # nan means "choose it automatically"


def check_options(name: str, options: dict) -> None:
    """Refuse bad option values of problem ``name`` (all options, defaults filled in) with one
    ProblemError naming the option; cheap, nothing is built."""
    for key, value in options.items():
        if isinstance(value, float) and not math.isfinite(value) and key not in NAN_ALLOWED:
            raise ProblemError(f"option {key}={value} of problem {name!r} must be finite")
        if key in MINIMUM and not isinstance(value, bool) and isinstance(value, (int, float)):
            low, meaning = MINIMUM[key]
            if value < low:
                raise ProblemError(
                    f"problem {name!r}: {key} must be >= {low} ({meaning}), got {key}={value}"
                )
    check = lookup(name).check
    if check is not None:
        try:
            check(options)
        except ValueError as err:
            raise ProblemError(f"problem {name!r}: {err}") from None


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``name:key=value,...`` into the name and raw string options."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ProblemError(f"problem option {item!r} in {spec!r} needs the form key=value")
        options[key.strip()] = value.strip()
    return name.strip(), options


def declared(name: str) -> dict[str, Option]:
    """The typed options a problem family declares, in declaration order."""
    return by_name(lookup(name).options)


def defaults(name: str) -> dict:
    """The family's options and their defaults, in declaration order."""
    return {key: option.default for key, option in declared(name).items()}


def lookup(name: str) -> ProblemEntry:
    _load_families()
    if name not in REGISTRY:
        hint = did_you_mean(name, REGISTRY)
        raise ProblemError(
            f"unknown problem {name!r}.{hint} Run `trapbench list problems` to see them all."
        )
    return REGISTRY[name]


def canonical(spec: str, **overrides) -> tuple[str, dict]:
    """Canonical name and typed options of a spec (defaults dropped, keys sorted)."""
    name, raw = parse_spec(spec)
    known = declared(name)
    options = {}
    for key, value in {**raw, **overrides}.items():
        if key not in known:
            raise ProblemError(
                f"problem {name!r} has no option {key!r}; its options are: {', '.join(known)}"
            )
        try:
            options[key] = known[key].accept(value)
        except ValueError as err:
            raise ProblemError(f"option {key}={value!r} of problem {name!r}: {err}") from None
    check_options(name, {**{k: o.default for k, o in known.items()}, **options})
    kept = {k: v for k, v in sorted(options.items()) if not known[k].is_default(v)}
    text = ",".join(f"{k}={v}" for k, v in kept.items())
    return (f"{name}:{text}" if text else name), options


_MADE: dict[str, Problem] = {}


def make(spec: str, **overrides) -> Problem:
    """Build the problem a spec names; a bad name or option raises ProblemError.

    Problems are immutable, so one object serves every cell of a process that names the same
    canonical spec: its compiled gradient (keyed by the gradient function) is then reused."""
    full, options = canonical(spec, **overrides)
    if full in _MADE:
        return _MADE[full]
    name = parse_spec(spec)[0]
    try:
        typed = {**defaults(name), **options}
        _MADE[full] = REGISTRY[name].factory(_name=full, **typed)
        return _MADE[full]
    except (TypeError, ValueError) as err:
        if isinstance(err, ProblemError):
            raise
        raise ProblemError(f"problem {full!r}: {err}") from None


def _load_families() -> None:
    """Import the modules that register problems (kept lazy to avoid import cycles)."""
    import problems.deepfc  # noqa: F401
    import problems.gaussian  # noqa: F401
    import problems.planted  # noqa: F401
    import problems.planted_deep  # noqa: F401
    import problems.relu1d  # noqa: F401
