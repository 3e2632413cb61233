"""What the engine records while seeds train: small objects, one job each.

The contract (benchmarks/engine.py calls it): every step, after the gradient at the current
parameters is known and before the optimizer moves them, the engine hands each recorder a
``StepState`` in this order: Divergence, Checkpoints, FirstHit, Stopping.
``observe`` returns the seeds that must stop NOW (a bool [S] tensor) or None; the engine then
freezes them (their parameters and risk are held exactly as they are at this step) and marks
them inactive before the next recorder runs. ``records`` returns the recorder's per-seed
tensors (leading dimension S) once training ends; ``finish`` sees the final state first.
A new per-step measurement is one more class here and one line in the engine's list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmarks.stopping import PLATEAU_MIN_LR_SCALE, REASONS, StopRules


@dataclass
class StepState:
    """The training state at one step, with the expensive facts computed on first use."""

    step: int
    risk: torch.Tensor  # [S] the training objective at the current parameters
    active: torch.Tensor  # [S] seeds still training (not stopped, not diverged, not padding)
    held_risk: torch.Tensor  # [S] exact risk at which inactive seeds stopped (NaN: diverged)
    exact: bool  # the training objective IS the exact risk (full-batch problems)
    lr_scale: float = 1.0  # the schedule's learning rate now over its initial value
    _exact_risk: Callable[[], torch.Tensor] = field(repr=False, default=None)
    _measure: Callable[[], torch.Tensor] = field(repr=False, default=None)
    _cache: dict = field(default_factory=dict, repr=False)

    def exact_risk(self) -> torch.Tensor:
        """[S] exact risk at the current parameters (computed once per step, if asked)."""
        if self.exact:
            return self.risk
        if "risk" not in self._cache:
            self._cache["risk"] = self._exact_risk()
        return self._cache["risk"]

    @property
    def knows_exact_risk(self) -> bool:
        return self.exact or "risk" in self._cache

    def measure(self) -> torch.Tensor:
        """[S] the problem's stationarity measure of the exact gradient here."""
        if "measure" not in self._cache:
            self._cache["measure"] = self._measure()
        return self._cache["measure"]


class Divergence:
    """Seeds whose risk stops being finite: stopped at once (their gradient is masked, so no
    NaN reaches anyone else) and recorded as diverged."""

    def __init__(self, s: int, device: torch.device) -> None:
        self.at = torch.full((s,), -1, dtype=torch.int64, device=device)

    def observe(self, state: StepState) -> torch.Tensor | None:
        finite = torch.isfinite(state.risk)
        if bool(finite.all()):  # the usual step: one reduction instead of four small ops
            return None
        newly = state.active & ~finite
        self.at.masked_fill_(newly, state.step)
        return newly

    def finish(self, step: int, bad: torch.Tensor) -> None:
        """Seeds whose final risk, gradient or parameters are not finite."""
        self.at.masked_fill_((self.at < 0) & bad, step)

    def records(self) -> dict[str, torch.Tensor]:
        return {"diverged_step": self.at}


class Checkpoints:
    """Exact risk at log-spaced steps (a stopped seed keeps the risk it stopped at)."""

    def __init__(self, marks: list[int], s: int, device: torch.device) -> None:
        self.marks = marks
        self.index = {m: i for i, m in enumerate(marks)}
        self.curve = torch.full((len(marks), s), torch.nan, dtype=torch.float64, device=device)
        self.filled = 0

    def observe(self, state: StepState) -> None:
        i = self.index.get(state.step)
        if i is not None:
            exact = state.exact_risk().detach().to(torch.float64)
            self.curve[i] = torch.where(state.active, exact, state.held_risk.to(torch.float64))
            self.filled = i + 1

    def finish(self, final_risk: torch.Tensor) -> None:
        """Marks the loop did not reach (the last one, or all after an early end) hold the
        final risk: every seed has stopped by then."""
        self.curve[self.filled :] = final_risk.to(torch.float64)

    def records(self) -> dict[str, torch.Tensor]:
        return {"checkpoint_risk": self.curve.T}


class FirstHit:
    """The first step at which a seed's exact risk is within tolerance of the optimum (on
    sampled problems: the first step at which the exact risk was evaluated and was)."""

    def __init__(self, target: float, s: int, device: torch.device) -> None:
        self.target = target
        self.at = torch.full((s,), -1, dtype=torch.int64, device=device)

    def observe(self, state: StepState) -> None:
        if state.knows_exact_risk:
            self.note(state.exact_risk().detach(), state.active, state.step)

    def note(self, risk: torch.Tensor, active: torch.Tensor, step: int | torch.Tensor) -> None:
        """Seeds among ``active`` at ``risk`` <= target that had not hit yet hit at ``step``
        (a number, or one step per seed)."""
        hit = (self.at < 0) & active & (risk <= self.target)
        if isinstance(step, torch.Tensor):
            self.at.copy_(torch.where(hit, step, self.at))
            return
        self.at.masked_fill_(hit, step)

    def records(self) -> dict[str, torch.Tensor]:
        return {"hit_step": self.at}


class Stopping:
    """The per-seed stopping rules (benchmarks/stopping.py): stationarity, target, plateau.
    Records why each seed stopped; seeds that never stop end with reason "budget"."""

    def __init__(
        self,
        rules: StopRules,
        grad_tol: float,
        target: float,
        exact: bool,
        s: int,
        device: torch.device,
    ) -> None:
        self.rules = rules
        self.grad_tol = rules.grad_threshold(grad_tol)
        self.target = target
        self.every = rules.interval(exact)
        self.reason = torch.zeros(s, dtype=torch.int8, device=device)  # 0: still running
        self.last = None  # exact risk at the previous plateau check
        self.before = None  # exact risk one step before the coming plateau check

    def observe(self, state: StepState) -> torch.Tensor | None:
        window = self.rules.plateau_window
        if window and state.step % window == window - 1:
            self.before = state.exact_risk().detach().clone()
        if not self.rules.enabled or state.step % self.every:
            return None
        stop = torch.zeros_like(state.active)
        for code, fired in self._fired(state):
            newly = fired & state.active & ~stop
            self.reason.masked_fill_(newly, code)
            stop |= newly
        return stop

    def _fired(self, state: StepState):
        if self.grad_tol is not None:
            yield REASONS.index("grad") + 1, state.measure() <= self.grad_tol
        if self.rules.target:
            yield REASONS.index("target") + 1, state.exact_risk() <= self.target
        window = self.rules.plateau_window
        if window and state.step % window == 0:
            risk = state.exact_risk().detach()
            if self.last is not None:
                # Flat over the window AND over the last step. Why the last step: a run caught
                # in a period-2 orbit (SGD at a step size past 2/sharpness) has the same risk
                # every other step, so with an even window its risk looks flat while its
                # gradient stays large (measured on relu1d-trap, SGD lr 0.15: plateau stops
                # with gradient norm 0.27 labelled `level`); one step apart, the two points of
                # the orbit differ.
                # And only while the schedule still takes real steps: a risk that stopped
                # moving because the learning rate went to 0 (the end of a cosine) is frozen,
                # not converged (measured: RMSprop with cosine on relu1d-trap:width=3, 171 of
                # 512 runs "plateaued" in the last 5% of the budget, stationarity up to 0.013).
                bound = self.rules.plateau_rtol * risk.abs()
                flat = (risk - self.last).abs() <= bound
                if self.before is not None:
                    flat &= (risk - self.before).abs() <= bound
                if state.lr_scale < PLATEAU_MIN_LR_SCALE * (1 - 1e-9):  # a floor of 0.1 passes
                    flat = torch.zeros_like(flat)
                yield REASONS.index("plateau") + 1, flat
            self.last = risk

    def mark(self, seeds: torch.Tensor, reason: str) -> None:
        self.reason.masked_fill_(seeds & (self.reason == 0), REASONS.index(reason) + 1)

    def records(self) -> dict[str, torch.Tensor]:
        return {"stop_code": self.reason}


def reason_names(codes) -> list[str]:
    """Stop codes (1-based indices into REASONS) as names."""
    return [REASONS[int(c) - 1] for c in codes]
