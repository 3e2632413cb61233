"""Turn an optimizer spec string into a registry entry and hyperparameters.

One grammar, the problems' one: ``NAME[:key=value,...]``. NAME is a registry name (``adam``), a
torch.optim class (``Rprop``), or a plug-in ``package.module:Class`` / ``path/to/file.py:Class``
(a torch.optim.Optimizer subclass, or a factory ``f(params, **hyperparameters) -> Optimizer``
that builds parameter groups or wraps a base optimizer). Hyperparameters follow the last colon
(``pytorch_optimizer:Lamb:lr=0.01``) or an ``@`` (``pytorch_optimizer:Lamb@lr=0.01``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch

from optimizers.fused import compile_step
from optimizers.registry import BUILTINS, OptimizerEntry
from optimizers.vmapped import VmappedOptimizer
from problems.names import did_you_mean


class OptimizerError(ValueError):
    """An optimizer name, plug-in or hyperparameter that cannot be used; names the fix."""


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets: 'lr=1,b=(0.9,0.99)' -> ['lr=1', 'b=(0.9,0.99)']."""
    parts, depth, cur = [], 0, []
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_hyperparameters(text: str) -> dict:
    out = {}
    for item in split_top_level(text):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise OptimizerError(f"hyperparameter {item!r} needs the form key=value, e.g. lr=0.01")
        out[key.strip()] = parse_value(value.strip())
    return out


ACCEPTED_FORMS = (
    "NAME[:key=value,...] where NAME is a name from `trapbench list optimizers`, a torch.optim "
    "class (Rprop), package.module:Class or path/file.py:Class; e.g. adam:lr=0.01, "
    "pytorch_optimizer:Lamb:lr=0.01 or pytorch_optimizer:Lamb@lr=0.01"
)


def split_spec(spec: str) -> tuple[str, dict]:
    """'adam:lr=0.1' -> ('adam', {'lr': 0.1}); 'pkg.mod:Cls:lr=0.1' and 'pkg.mod:Cls@lr=0.1'
    -> ('pkg.mod:Cls', {'lr': 0.1}): hyperparameters are what follows an '@' or the last colon
    when that part holds a '='."""
    spec = spec.strip()
    if "@" in spec:
        name, _, hp = spec.partition("@")
        return name.strip(), parse_hyperparameters(hp)
    name, colon, rest = spec.rpartition(":")
    if colon and "=" in rest and "=" not in name:
        return name.strip(), parse_hyperparameters(rest)
    if "=" in spec:
        raise OptimizerError(f"cannot read optimizer spec {spec!r}; the form is {ACCEPTED_FORMS}")
    return spec, {}


def _torch_classes() -> dict[str, type]:
    return {
        n: c
        for n, c in vars(torch.optim).items()
        if inspect.isclass(c)
        and issubclass(c, torch.optim.Optimizer)
        and c is not torch.optim.Optimizer
    }


def _load_module(target: str):
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise OptimizerError(f"plug-in file {target!r} not found; give a path to a .py file")
        mod_name = f"trapbench_plugin_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise OptimizerError(f"plug-in file {target!r} failed to import: {err!r}") from None
        return module
    try:
        return importlib.import_module(target)
    except Exception as err:
        raise OptimizerError(
            f"cannot import module {target!r} ({err!r}); check the name and that it is installed "
            "or on PYTHONPATH"
        ) from None


def resolve(name: str) -> OptimizerEntry:
    """The registry entry for a name, torch.optim class name or plug-in reference."""
    if name in BUILTINS:
        return BUILTINS[name]
    torch_classes = _torch_classes()
    short = name.removeprefix("torch.optim.")
    if short in torch_classes:
        lbfgs = short == "LBFGS"
        return OptimizerEntry(
            short,
            torch_classes[short],
            {"lr": 1.0 if lbfgs else 1e-3},
            (),
            f"torch.optim.{short}",
            path="one-seed" if lbfgs else "stacked",
            closure=lbfgs,
            source="torch.optim",
        )
    if ":" in name:
        target, _, attr = name.rpartition(":")
        module = _load_module(target)
        obj = getattr(module, attr, None)
        if obj is None:
            raise OptimizerError(f"{target!r} has no attribute {attr!r}; check the class name")
        if not callable(obj):
            raise OptimizerError(f"{name!r} is not a class or factory")
        if inspect.isclass(obj) and not issubclass(obj, torch.optim.Optimizer):
            raise OptimizerError(f"{name!r} is a class but not a torch.optim.Optimizer subclass")
        return OptimizerEntry(
            attr,
            obj,
            {},
            (),
            (inspect.getdoc(obj) or "").split("\n")[0],
            path="one-seed",  # until the probe shows more is exact
            source=name,
        )
    choices = list(BUILTINS) + list(torch_classes)
    hint = did_you_mean(name, choices)
    raise OptimizerError(f"unknown optimizer {name!r}.{hint} The form is {ACCEPTED_FORMS}")


def build(
    entry: OptimizerEntry, params: list[torch.Tensor], hp: dict, compiled: bool = False
) -> torch.optim.Optimizer:
    """Instantiate with defaults overridden by ``hp``; bad values raise one-line errors.
    ``compiled`` turns on the built-ins' compiled step (optimizers/fused.py)."""
    merged = {**entry.defaults, **hp}
    lr = merged.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
        raise OptimizerError(f"optimizer {entry.name}: lr must be a positive number, got {lr!r}")
    try:
        if entry.path == "vmapped":
            return VmappedOptimizer(entry.factory, params, merged)
        return compile_step(entry.factory(params, **merged), compiled)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        hint = ""
        if entry.source not in ("builtin", "torch.optim"):
            hint = (
                "; if it needs parameter groups or a base optimizer, name a factory "
                "module:function(params, **hyperparameters) that builds it (e.g. "
                "optimizers.factories:sam_adam, optimizers.factories:muon_adamw)"
            )
        raise OptimizerError(
            f"optimizer {entry.name} rejected hyperparameters {merged}: {first}{hint}"
        ) from None


def check(entry: OptimizerEntry, hp: dict) -> None:
    """Fail early (before any training) when hyperparameters are bad."""
    build(entry, [torch.zeros(2, requires_grad=True)], hp)
