"""The engine's recorders (benchmarks/recorders.py)."""

import math

import pytest
import torch

from benchmarks.recorders import Divergence, StepState


def state(risk: list[float], active: list[bool], step: int = 7) -> StepState:
    risk_t = torch.tensor(risk)
    return StepState(step, risk_t, torch.tensor(active), torch.full_like(risk_t, math.nan), True)


@pytest.mark.parametrize(
    "risk,active,newly",
    [
        ([1.0, 2.0, 3.0], [True, True, True], None),  # all finite: nothing to stop
        ([1.0, math.nan, math.inf], [True, True, True], [False, True, True]),
        ([1.0, math.nan, -math.inf], [True, False, True], [False, False, True]),  # held seed
        ([math.nan, 1.0, 2.0], [False, True, True], [False, False, False]),
    ],
)
def test_divergence_stops_exactly_the_active_seeds_whose_risk_is_not_finite(risk, active, newly):
    divergence = Divergence(3, torch.device("cpu"))
    stopped = divergence.observe(state(risk, active))
    if newly is None:
        assert stopped is None
        assert divergence.records()["diverged_step"].tolist() == [-1, -1, -1]
        return
    assert stopped.tolist() == newly
    assert divergence.records()["diverged_step"].tolist() == [7 if n else -1 for n in newly]
