"""Per-seed stopping rules: when has a run reached its END, so its fate means something?

A seed stops at the first step where any enabled rule fires; its parameters then stay exactly
as they were at that step (the engine restores them, so momentum or Adam state cannot drift
them), and the step budget becomes a maximum. Rules, as a suite table or a CLI list:

  grad_tol = "problem" | x   stationary: the problem's stationarity measure of the exact
                             gradient <= x ("problem": its own grad_tol). The measure is the
                             Frobenius norm unless the problem names another (gauss-relu: the
                             largest per-neuron norm, so Safran & Shamir's rule
                             max_i ||2 pi grad_{w_i} F|| <= 1e-9 is grad_tol = 1.59e-10).
  target = true              the gap to the optimal risk is within the problem's tolerance.
  plateau_window = W         the exact risk changed by at most plateau_rtol * |risk| over the
  plateau_rtol = r           last W steps and over the last step (checked every W steps; the
                             one-step test keeps a period-2 orbit, whose risk repeats every
                             other step, from passing as converged), while the schedule's
                             learning rate is at least PLATEAU_MIN_LR_SCALE of its initial
                             value (a run frozen by a rate decayed to ~0 has not converged:
                             give such a schedule a floor, e.g. cosine:floor=0.1).
  every = k                  check interval; sampled problems evaluate the exact risk and its
                             gradient only at these steps (default 1 for exact problems, 100
                             for sampled ones).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

REASONS = ("grad", "target", "plateau", "budget", "diverged")
CONVERGED = ("grad", "target", "plateau")
SAMPLED_EVERY = 100
PLATEAU_MIN_LR_SCALE = 0.1  # below it a flat risk says the schedule froze the run, no more


class StopError(ValueError):
    """Stopping rules that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class StopRules:
    grad_tol: float | str | None = None
    target: bool = False
    plateau_window: int = 0
    plateau_rtol: float = 1e-6
    every: int = 0  # 0: 1 for exact problems, SAMPLED_EVERY for sampled ones

    @property
    def enabled(self) -> bool:
        return self.grad_tol is not None or self.target or self.plateau_window > 0

    def grad_threshold(self, problem_grad_tol: float) -> float | None:
        return problem_grad_tol if self.grad_tol == "problem" else self.grad_tol

    def interval(self, exact: bool) -> int:
        return self.every or (1 if exact else SAMPLED_EVERY)

    def to_dict(self) -> dict:
        """Only the fields that differ from the defaults (what suites and ids show)."""
        base = asdict(StopRules())
        return {k: v for k, v in asdict(self).items() if v != base[k]}

    def text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.to_dict().items()))


def _number(key: str, value, low: float, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or not math.isfinite(value) or value < low:
        kind = "an integer" if integer else "a number"
        raise StopError(f"stop rule {key} must be {kind} >= {low:g}, got {value!r}")
    return int(value) if integer else float(value)


def parse(spec: dict | str | None) -> StopRules:
    """StopRules from a suite table, a CLI string ``grad_tol=problem,plateau_window=500`` or
    None (no rule: every seed runs the whole budget)."""
    if spec is None or spec == "" or spec == {}:
        return StopRules()
    if isinstance(spec, str):
        items = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise StopError(f"stop rule {item!r} needs the form key=value, e.g. grad_tol=1e-6")
            items[key.strip()] = _literal(value.strip())
        spec = items
    if not isinstance(spec, dict):
        raise StopError(f"stop rules must be a table of key = value, got {spec!r}")
    known = set(asdict(StopRules()))
    unknown = sorted(set(spec) - known)
    if unknown:
        raise StopError(
            f"unknown stop rule(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    grad_tol = spec.get("grad_tol")
    if grad_tol is not None and grad_tol is not False and grad_tol != "problem":
        grad_tol = _number("grad_tol", grad_tol, 0.0)
    target = spec.get("target", False)
    if not isinstance(target, bool):
        raise StopError(f"stop rule target must be true or false, got {target!r}")
    window = _number("plateau_window", spec.get("plateau_window", 0), 0, integer=True)
    rtol = _number("plateau_rtol", spec.get("plateau_rtol", 1e-6), 0.0)
    every = _number("every", spec.get("every", 0), 0, integer=True)
    return StopRules(None if grad_tol is False else grad_tol, target, window, rtol, every)


def _literal(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in low else number
