"""Optimizer registry: the classics with defaults and learning-rate grids, one screen.

Any other ``torch.optim`` class can be named by its class name (``ASGD``, ``Rprop``, ``LBFGS``),
and any user optimizer by ``path/to/file.py:Class`` or ``package.module:Class`` (see
optimizers/resolve.py). ``full_batch`` entries train on the exact risk even on sampled problems.

How the engine hands parameters to an optimizer (``path``), decided for plug-ins by the probe
(benchmarks/probe.py) because only running it shows what an optimizer couples:

* ``stacked``: one tensor per model parameter with a leading seed dimension. Exact for
  elementwise updates (SGD, Adam, Lion, ...): the fastest path.
* ``vmapped``: stacked tensors, and the optimizer's step for ONE seed's tensors runs under
  torch.func.vmap over the seeds, its state stacked the same way (optimizers/vmapped.py).
  Exact for updates that couple entries within a tensor or a seed's tensors (a global
  gradient-norm clip) and that vmap can run (no
  ``.item()``, no branch on a tensor's value, no random draws): Shampoo, LARS, ...; the
  per-seed path's result in one batched program.
* ``per-seed``: every seed gets its own parameter tensors (views into the stacked ones), all in
  one optimizer. Exact for updates that couple entries WITHIN a tensor (LAMB/LARS trust ratios,
  Shampoo/SOAP preconditioners, Muon's orthogonalization).
* ``one-seed``: seeds train one at a time. Needed only when an update couples ACROSS tensors
  (a global gradient-norm clip, SAM's perturbation radius, L-BFGS's flat gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from optimizers.fused import FusedAdagrad, FusedAdam, FusedAdamW, FusedRMSprop, FusedSGD

PATHS = ("stacked", "vmapped", "per-seed", "one-seed")
STACKED_PATHS = ("stacked", "vmapped")  # one tensor per parameter with a seed dimension
LR_GRID_SGD = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
LR_GRID_ADAPTIVE = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


@dataclass(frozen=True)
class OptimizerEntry:
    name: str
    factory: Callable[..., torch.optim.Optimizer]
    defaults: dict = field(default_factory=dict)
    lr_grid: tuple[float, ...] = ()
    description: str = ""
    full_batch: bool = False
    # Set by the probe for plug-ins; the built-ins are elementwise (per-parameter entry
    # updates), so stacking seeds never couples them.
    path: str = "stacked"
    closure: bool = False  # step(closure) re-evaluates the risk and gradients (SAM, L-BFGS)
    hessian: bool = False  # p.grad carries a graph: the optimizer differentiates it (SophiaH)
    source: str = "builtin"

    @property
    def batch_safe(self) -> bool:
        """Whether seeds share one stacked tensor per parameter (and BLOCK padding)."""
        return self.path in STACKED_PATHS


def _entry(name, cls, defaults, grid, description, **kw) -> OptimizerEntry:
    return OptimizerEntry(name, cls, defaults, grid, description, **kw)


optim = torch.optim
BUILTINS: dict[str, OptimizerEntry] = {
    e.name: e
    for e in [
        _entry(
            "gd",
            FusedSGD,
            {"lr": 0.1},
            LR_GRID_SGD,
            "full-batch gradient descent (exact risk even on sampled problems)",
            full_batch=True,
        ),
        _entry("sgd", FusedSGD, {"lr": 0.01}, LR_GRID_SGD, "plain SGD"),
        _entry(
            "momentum",
            FusedSGD,
            {"lr": 0.01, "momentum": 0.9},
            LR_GRID_SGD,
            "heavy-ball momentum SGD",
        ),
        _entry(
            "nesterov",
            FusedSGD,
            {"lr": 0.01, "momentum": 0.9, "nesterov": True},
            LR_GRID_SGD,
            "Nesterov momentum SGD",
        ),
        _entry("adagrad", FusedAdagrad, {"lr": 0.01}, LR_GRID_ADAPTIVE, "AdaGrad"),
        _entry("rmsprop", FusedRMSprop, {"lr": 1e-3}, LR_GRID_ADAPTIVE, "RMSprop"),
        _entry("adam", FusedAdam, {"lr": 1e-3}, LR_GRID_ADAPTIVE, "Adam"),
        _entry(
            "adamw",
            FusedAdamW,
            {"lr": 1e-3},
            LR_GRID_ADAPTIVE,
            "AdamW (decoupled weight decay 0.01 moves dead neurons)",
        ),
        _entry("nadam", optim.NAdam, {"lr": 1e-3}, LR_GRID_ADAPTIVE, "NAdam"),
        _entry("radam", optim.RAdam, {"lr": 1e-3}, LR_GRID_ADAPTIVE, "RAdam"),
        _entry("adamax", optim.Adamax, {"lr": 2e-3}, LR_GRID_ADAPTIVE, "Adamax"),
    ]
}

# Third-party optimizers as their libraries ship them, with a learning rate each: the ones
# tests/optimizers/test_conformance.py holds to the textbook loop (each with its expected path)
# and benchmarks/plugin_table.py times for the README. Needs the dev extra's plug-in packages.
PO, FACTORIES = "pytorch_optimizer", "optimizers.factories"
THIRD_PARTY: tuple[tuple[str, float], ...] = (
    (f"{PO}:Lion", 1e-3),
    (f"{PO}:Lamb", 1e-2),
    (f"{PO}:AdaBelief", 1e-2),
    (f"{PO}:Prodigy", 1.0),
    (f"{PO}:MADGRAD", 1e-2),
    (f"{PO}:Ranger", 1e-2),
    (f"{PO}:SophiaH", 1e-2),
    (f"{FACTORIES}:sam_adam", 1e-2),
    (f"{FACTORIES}:gsam_adam", 1e-2),
    (f"{PO}:ScheduleFreeAdamW", 1e-2),
    ("schedulefree:AdamWScheduleFree", 1e-2),
    (f"{PO}:Shampoo", 1e-2),
    (f"{PO}:SOAP", 1e-2),
    (f"{FACTORIES}:muon_adamw", 1e-2),
    (f"{PO}:Adan", 1e-2),
    (f"{PO}:LARS", 1e-2),
    (f"{PO}:AdaHessian", 1e-2),
    ("torch_optimizer:Yogi", 1e-2),
    ("torch_optimizer:DiffGrad", 1e-2),
    ("Rprop", 1e-2),
    ("LBFGS", 0.5),
)
