"""A 30-line optimizer to compare against the classics: signSGD with momentum (Bernstein et
al. 2018, "signSGD: compressed optimisation for non-convex problems").

    trapbench compare --optimizer examples/signum.py:Signum@lr=0.003 --suite smoke
"""

import torch


class Signum(torch.optim.Optimizer):
    """Momentum SGD that steps by the sign of the momentum buffer."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad, alpha=1 - group["momentum"])
                p.add_(torch.sign(buf), alpha=-group["lr"])
        return loss
