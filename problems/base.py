"""The problem contract: what every landscape gives the engine, in one place.

A problem is a plain record of functions (``Problem`` below). Parameters are a dict of tensors
whose leading dimension is the seed: the engine trains all seeds of a cell at once by summing
per-seed risks, so each seed's gradient is exactly its own independent gradient. How a family
is added step by step: docs/new-problem.md; the mathematics of each family: docs/problems.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Params = dict[str, torch.Tensor]

PROVENANCES = ("exact", "computed", "best_known")


def frobenius(grads: Params) -> torch.Tensor:
    """Per-seed Frobenius norm of a gradient dict of [S, ...] tensors -> [S]."""
    return torch.sqrt(sum(g.reshape(g.shape[0], -1).pow(2).sum(dim=1) for g in grads.values()))


@dataclass(frozen=True)
class Problem:
    """One landscape with a known optimal risk: the whole contract a family must meet.

    Construction. A family registers a factory with ``problems.registry.register(name,
    summary, citation, provenance, options)``, declaring every option with its type
    (``problems.options.Option``: bool, int, float or str, with a default and a help line).
    The registry parses ``name:key=value,...`` by those types and calls
    ``factory(_name=canonical spelling, **every option, typed)``. The factory validates the
    values (a ValueError with a one-line message becomes the user's error) and returns a
    Problem whose ``name`` is ``_name``: the canonical spelling is the problem's identity, its
    results key and, through ``rng.problem_key(name)``, its random-number key. Problems are
    immutable and built once per process and canonical spelling.

    Randomness. Everything random is drawn with ``problems.rng`` (``uniform``/``normal``)
    from the problem key, the seed index and a stream named in ``rng.STREAMS``; never from
    torch's global generator. So a seed's initialization and data are a function of
    (problem, seed index) only: the same alone, in any batch, chunk, worker or device.

    Functions (S seeds; every tensor's leading dimension is the seed):
    init(seeds [S] int64, dtype, device) -> Params: the seeds' starting parameters, row i a
        function of (name, seeds[i]) only.
    risk(params) -> [S]: the exact (population or integral) risk R, used for evaluation,
        fates and stopping. Differentiable by autograd; seed i's value depends on row i only
        (no reduction across seeds), and it is finite wherever the parameters are.
    train_risk(params, seeds, step) -> [S]: the objective the optimizer sees at a step; equal
        to ``risk`` for full-batch problems (``exact = True``), a fresh mini-batch estimate
        for sampled ones (``exact = False``), the batch of seed i at step t a function of
        (name, i, t) only.
    risk_grad(params) -> (risk [S], gradient dict), optional: the same value as ``risk`` and
        its exact gradient without autograd (a fast path the engine compiles and uses for
        full-batch runs). Tests must compare it with autograd through ``risk``. It must not
        mix seeds either: the engine pads batches to multiples of 32 seeds and relies on each
        row being computed alike wherever it sits.
    train_risk_grad(params, seeds, step) -> (risk [S], gradient dict), optional: the same
        value as ``train_risk`` (up to rounding) and its gradient without autograd, for
        sampled problems (``exact = False``): the engine compiles it and uses it for every
        step, as it uses ``risk_grad`` for full-batch runs. ``step`` may be a 0-d int64
        tensor (so one compiled graph serves every step); the batch must be the one
        ``train_risk`` draws, bit for bit. Tests compare it with autograd through
        ``train_risk``; it must not mix seeds either (problems/sampled.py).
    stationarity(grads) -> [S], optional: the measure that ``grad_tol`` bounds (default the
        Frobenius norm, ``frobenius``); a paper's own stopping rule may use another
        (gauss-relu: the largest per-neuron norm, Safran & Shamir 2018). Named functions
        only: its ``__name__`` is stored in the results.
    hessian_risk(params) -> [S], optional: ``risk`` plus terms that are zero in value and
        gradient but carry curvature autograd cannot see (an integral over ReLU kinks has
        delta terms in its Hessian); the Hessian diagnostics differentiate it twice.
    diagnostics(params) -> dict of [S] tensors: extra per-seed facts recorded at the start
        and the end (``dead_neurons`` for ReLU families; the engine records it as
        ``dead_neurons_init`` and ``dead_neurons``).

    Facts:
    optimum: the optimal risk R*; provenance says how it is known: ``exact`` (closed form or
        realizable), ``computed`` (an independent reference solver) or ``best_known`` (the
        lowest value found, recorded with how; runs may beat it and show a negative gap).
        ``provenance_detail`` says which in one line.
    tol: a run reached the global minimum when risk - optimum <= tol; smaller than the gap
        to the lowest non-global level, so a level is never counted as global.
    levels: known non-global critical levels as (label, risk) pairs, highest risk first, all
        above optimum + tol, distinct labels (e.g. ("R*_0", ...), ..., ("R*_{H-1}", ...));
        a stationary run whose risk lies in a level's window gets the fate ``level``.
    grad_tol: a run counts as stationary (its fate an end point) when its stationarity
        measure is at most this.
    footprint: elements per seed of the largest intermediate tensor of a risk evaluation;
        the engine then trains seeds in chunks whose intermediates stay in cache
        (0: no automatic chunking).
    options: JSON-ready facts about the options (stored in the results with ``info()``).
    frozen: names of parameters that are not trained (a paper that trains only some of them,
        e.g. only the biases): the engine gives the optimizer the other tensors only, and the
        stationarity measure and stopping rules see the trainable gradients only.
    """

    name: str
    family: str
    description: str
    citation: str
    init: Callable[[torch.Tensor, torch.dtype, torch.device], Params]
    risk: Callable[[Params], torch.Tensor]
    train_risk: Callable[[Params, torch.Tensor, int], torch.Tensor]
    optimum: float
    provenance: str
    provenance_detail: str
    tol: float
    levels: tuple[tuple[str, float], ...] = ()
    grad_tol: float = 1e-4
    exact: bool = True
    diagnostics: Callable[[Params], dict[str, torch.Tensor]] = field(default=lambda p: {})
    footprint: int = 0
    risk_grad: Callable[[Params], tuple[torch.Tensor, Params]] | None = None
    train_risk_grad: (
        Callable[[Params, torch.Tensor, torch.Tensor | int], tuple[torch.Tensor, Params]] | None
    ) = None
    hessian_risk: Callable[[Params], torch.Tensor] | None = None
    stationarity: Callable[[Params], torch.Tensor] | None = None
    options: dict = field(default_factory=dict)
    frozen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES}, got {self.provenance!r}")

    def stationarity_of(self, grads: Params) -> torch.Tensor:
        return (self.stationarity or frobenius)(grads)

    def info(self) -> dict:
        """JSON-ready facts about the problem, stored with every result."""
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "citation": self.citation,
            "optimum": self.optimum,
            "provenance": self.provenance,
            "provenance_detail": self.provenance_detail,
            "tol": self.tol,
            "grad_tol": self.grad_tol,
            "stationarity": getattr(self.stationarity, "__name__", "frobenius"),
            "levels": [[label, value] for label, value in self.levels],
            "exact_risk": self.exact,
            "options": self.options,
        }
