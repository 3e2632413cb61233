"""Deep fully connected networks on a fixed finite data set (docs/problems.md section 3).

Teacher–student: a fixed random deep teacher labels N inputs; a student whose architecture
contains the teacher's (same depth, widths at least as large) reaches empirical risk exactly 0.
Function targets (seed 000's deep runs: sin(3x), x^2 + 2x on [0, 1]) have no closed-form
optimum; they use the best value recorded in problems/best_known.json with its provenance.
All seeds are trained at once with batched matrix products (torch.baddbmm).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

from problems.base import Params, Problem
from problems.options import Option
from problems.registry import parse_spec, register
from problems.rng import normal, problem_key, stream, uniform
from problems.targets import TARGETS

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
DEEP_TARGETS = ("sin3x", "x2+2x")  # seed 000's deep runs; the functions are problems.targets'
BEST_KNOWN = Path(__file__).with_name("best_known.json")
BIASES = ("zero", "normal")  # deep-target's bias option: how the biases start
CITE_TS = "Teacher-student deep networks; realizable, so the optimal empirical risk is 0"
CITE_000 = (
    "Jentzen, Riekert et al. (2022), Convergence to good non-optimal critical points "
    "[seed 000], deep ANN experiments"
)


def parse_widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split("-")]
    except ValueError:
        raise ValueError(f"architecture {text!r} must look like 1-32-32-1") from None
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"architecture {text!r} needs >= 2 positive layer widths")
    if widths[-1] != 1:
        raise ValueError(f"architecture {text!r} must end in one output (...-1)")
    return widths


def init_scale(fan_in: int, fan_out: int, scheme: str, act: str) -> float:
    if scheme == "normal":
        return 1.0
    if scheme == "he":
        return math.sqrt(2.0 / fan_in)
    if scheme == "xavier":
        gain = 4.0 if act == "sigmoid" else 1.0
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    raise ValueError(f"unknown init {scheme!r}; choose normal, he or xavier")


def draw_params(
    key: int,
    seeds: torch.Tensor,
    widths: list[int],
    scheme: str,
    act: str,
    use: str,
    dtype: torch.dtype,
    bias: str = "zero",
) -> Params:
    """Layer weights W<l> [S, out, in] and biases b<l> [S, out]; layer l draws from random
    stream ``use`` + l (problems/rng.py STREAMS). Biases start at 0 (``bias="zero"``) or are
    N(0, 1) (``bias="normal"``: Ibragimov, Jentzen & Riekert 2022, Section 4, setting 6 draws
    every weight and bias from N(0, 1)); normal biases are the same stream's numbers after the
    layer's weights, so a seed's draw depends on (problem, seed, layer) only."""
    if bias not in BIASES:
        raise ValueError(f"unknown bias {bias!r}; choose {', '.join(BIASES)}")
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        count = fan_in * fan_out + (fan_out if bias == "normal" else 0)
        z = normal(key, seeds.cpu(), stream(use, layer), count, dtype)
        scale = init_scale(fan_in, fan_out, scheme, act)
        weights = z[:, : fan_in * fan_out]
        params[f"W{layer}"] = (scale * weights).reshape(-1, fan_out, fan_in).contiguous()
        params[f"b{layer}"] = (
            z[:, fan_in * fan_out :].contiguous()
            if bias == "normal"
            else torch.zeros(len(seeds), fan_out, dtype=dtype)
        )
    return params


def per_seed_inputs(x: torch.Tensor, s: int) -> torch.Tensor:
    """The shared inputs [N, d] as a batch [S, N, d] (a view); per-seed inputs [S, N, d]
    (sampled problems) pass through. Why not one big matmul: a GEMM over all seeds at once
    blocks its sums differently for different seed counts, so a seed's rounding would depend
    on its batch; a batched product computes every seed alike."""
    return x if x.dim() == 3 else x.expand(s, *x.shape)


def _affine(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a W^T + b for every seed: the product alone, the bias added after it. Why not
    baddbmm: it needs the bias broadcast into its output first (one more full pass over
    [S, N, width] per layer, 10% of a compiled step), while the separate addition fuses with
    the activation that reads the product anyway. The rounding is the same: sgemm adds C
    once, after the whole (single-block, K <= 32) accumulation."""
    return torch.bmm(a, w.transpose(1, 2)) + b[:, None, :]


def hidden_layers(
    params: Params, x: torch.Tensor, act: str
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The forward pass of the explicit gradient (compiled: inductor fuses each bias addition
    with its activation; eager code uses activations): pre-activations h_l [S, N, width_l]
    and activations a_l = act(h_l) of every hidden layer, for x [N, d] shared by the seeds.
    Each layer is one batched product per seed (see per_seed_inputs)."""
    last = len(params) // 2 - 1
    w0 = params["W0"]
    h = _affine(per_seed_inputs(x, len(w0)), w0, params["b0"])
    pre, post = [], []
    for layer in range(1, last + 1):
        a = ACTIVATIONS[act](h)
        pre.append(h)
        post.append(a)
        if layer < last:
            h = _affine(a, params[f"W{layer}"], params[f"b{layer}"])
    if last == 0:
        pre.append(h)  # no hidden layer: the input layer's output is the network's
    return pre, post


# the same activations applied in place (eager code only: torch.compile handles its own)
IN_PLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}


def activations(params: Params, x: torch.Tensor, act: str) -> list[torch.Tensor]:
    """The hidden layers' activations a_l [S, N, width_l], eager: each layer's product, bias
    and activation share ONE fresh tensor (bias and activation applied in place). Why: outside
    the compiled step (a cell's final evaluation with autograd, the dead-unit count before
    and after training, the autograd path) every fresh [S, N, width] tensor costs its first
    touch of new memory, about 1000 page faults for 32 seeds x 1024 inputs x 32 units. With
    three tensors per layer a 32-seed 8-32x4-1 chunk's fixed cost, mostly these evaluations,
    was 120-155 ms (13% of a 30-step chunk); with one, 70-95 ms (thread CPU time). The
    arithmetic is hidden_layers' (product, then bias): the same bits. In place is safe under
    autograd: bmm keeps its inputs, not its output, and the activations keep their output."""
    w0 = params["W0"]
    a = per_seed_inputs(x, len(w0))
    post = []
    for layer in range(len(params) // 2 - 1):
        h = torch.bmm(a, params[f"W{layer}"].transpose(1, 2))
        a = IN_PLACE[act](h.add_(params[f"b{layer}"][:, None, :]))
        post.append(a)
    return post


def forward(params: Params, x: torch.Tensor, act: str) -> torch.Tensor:
    """Network outputs for every seed: x [N, d] (shared) -> [S, N]."""
    last = len(params) // 2 - 1
    if last == 0:
        return _affine(per_seed_inputs(x, len(params["W0"])), params["W0"], params["b0"])[..., 0]
    w, b = params[f"W{last}"], params[f"b{last}"]
    return torch.baddbmm(b[:, None, :], activations(params, x, act)[-1], w.transpose(1, 2))[..., 0]


# derivative of each activation from its output a alone (relu: a > 0 exactly where h > 0), so
# the compiled step never keeps the pre-activations: the bias addition and the activation are
# one pass that writes only a
DERIVATIVES = {
    "relu": lambda a: (a > 0).to(a.dtype),
    "tanh": lambda a: 1 - a * a,
    "sigmoid": lambda a: a * (1 - a),
}


@torch.library.custom_op("trapbench::column_sums", mutates_args=())
def column_sums(delta: torch.Tensor) -> torch.Tensor:
    """Sums over the inputs of delta [S, N, width] (a bias gradient), in an op torch.compile
    cannot see through. Why: inductor schedules every such reduction of the step in one final
    kernel that reads each layer's delta back and sums along its middle dimension at a few
    GB/s (13% of a compiled 8-32x4-1 step); opaque, the sum runs as torch's own reduction
    (about 2 us per seed here) where it stands, right after delta is formed."""
    return delta.sum(dim=1)


@column_sums.register_fake
def _(delta: torch.Tensor) -> torch.Tensor:
    return delta.new_empty(delta.shape[0], delta.shape[2])


def risk_and_grad(
    params: Params, x: torch.Tensor, y: torch.Tensor, act: str
) -> tuple[torch.Tensor, Params]:
    """Mean squared error [S] and its gradient by explicit backpropagation (the fast path).

    Written out so torch.compile sees one graph: batched matrix products with the
    activation and its derivative fused around them, the bias sums as opaque reductions
    (column_sums) that run while each delta is in cache. The single-output last
    layer is a fused multiply-and-sum rather than a batched matrix-vector product (which runs
    at a few GFLOP/s here), the input layer's delta is never formed, and every product is one
    per seed (per_seed_inputs: batch invariance). Tests compare with autograd;
    benchmarks/perf.py times it against autograd's generic backward and the GEMM-only bound."""
    last = len(params) // 2 - 1
    w0 = params["W0"]
    x, y = x.to(w0.device, w0.dtype), y.to(w0.device, w0.dtype)
    xs = per_seed_inputs(x, len(w0))
    pre, post = hidden_layers(params, x, act)
    if last == 0:
        out = pre[0][..., 0]
    else:
        w_out = params[f"W{last}"][:, 0, :]  # [S, width]
        out = (post[-1] * w_out[:, None, :]).sum(dim=-1) + params[f"b{last}"]
    err = out - y
    risk = (err * err).mean(dim=1)
    d_out = (2.0 / y.shape[-1]) * err  # dR/d(output): [S, N]
    delta = d_out[..., None]  # dR/dh of the current layer, from the output layer down
    grads = {}
    if last > 0:
        a = post[-1]
        grads[f"W{last}"] = (delta * a).sum(dim=1)[:, None, :]
        grads[f"b{last}"] = d_out.sum(dim=1, keepdim=True)
        delta = delta * w_out[:, None, :] * DERIVATIVES[act](a)
    for layer in range(last - 1, 0, -1):
        a = post[layer - 1]
        grads[f"W{layer}"] = torch.bmm(delta.transpose(1, 2), a)
        grads[f"b{layer}"] = column_sums(delta)
        delta = torch.bmm(delta, params[f"W{layer}"]) * DERIVATIVES[act](a)
    # x^T delta, transposed: [S, d, N] @ [S, N, width] runs 3-4x faster than the [S, width, N]
    # @ [S, N, d] product (the long dimension N = 1024 is the reduction either way, so d = 8
    # is the skinny side; MKL blocks the wide output better)
    grads["W0"] = torch.bmm(xs.transpose(1, 2), delta).transpose(1, 2).contiguous()
    grads["b0"] = column_sums(delta)
    return risk, {k: grads[k] for k in params}


def dead_units(params: Params, x: torch.Tensor) -> torch.Tensor:
    """Hidden ReLU units inactive on every training input, per seed. The largest activation
    over the inputs decides: relu(h) <= 0 everywhere iff h <= 0 everywhere, and relu keeps a
    NaN, which is then not dead, as with all(h <= 0). A max over the inputs vectorizes along
    the units, where all() over a boolean tensor's middle dimension ran 30x slower (5% of a
    short deep cell's time); the activations come from the eager path (see activations)."""
    dead = torch.zeros(len(params["W0"]), dtype=torch.int64, device=params["W0"].device)
    for a in activations(params, x, "relu"):
        dead += (a.amax(dim=1) <= 0).sum(dim=1)
    return dead


# deep-target options that change how runs start or what they train on, not the evaluation
# risk they are measured by
NOT_THE_LANDSCAPE = ("init", "bias", "sampled", "batch", "tol")


def landscape(name: str) -> str:
    """A canonical problem name without the options that leave its evaluation risk alone: the
    key of its best-known value. Why: R* belongs to the risk function (target, architecture,
    activation, grid), so the He, Xavier, SGD and Adam settings of one architecture
    (Ibragimov, Jentzen & Riekert 2022, settings 7, 8, 11, 12) share one value."""
    family, options = parse_spec(name)
    kept = ",".join(f"{k}={v}" for k, v in options.items() if k not in NOT_THE_LANDSCAPE)
    return f"{family}:{kept}" if kept else family


def best_known(name: str) -> tuple[float, str] | None:
    """The recorded best risk of a problem's landscape and how it was found, if any."""
    if not BEST_KNOWN.exists():
        return None
    entry = json.loads(BEST_KNOWN.read_text()).get(landscape(name))
    return (entry["value"], entry["provenance"]) if entry else None


def _problem(
    name: str,
    options: dict,
    data: tuple[torch.Tensor, torch.Tensor],
    known: tuple[float, str, str, float],
    description: str,
    citation: str,
) -> Problem:
    """A deep problem from its options (arch, act, init: the student), its training data
    (x, y) and what is known of its optimum (optimum, provenance, detail, tol)."""
    widths, act, init = parse_widths(options["arch"]), options["act"], options["init"]
    bias = options.get("bias", "zero")
    x, y = data
    optimum, provenance, detail, tol = known
    key = problem_key(name)

    def init_fn(seeds, dtype, device):
        p = draw_params(key, seeds, widths, init, act, "init", dtype, bias)
        return {k: v.to(device) for k, v in p.items()}

    def risk(params: Params) -> torch.Tensor:
        w = params["W0"]
        xs, ys = x.to(w.device, w.dtype), y.to(w.device, w.dtype)
        err = forward(params, xs, act) - ys
        return (err * err).mean(dim=1)

    diagnostics = (
        (lambda p: {"dead_neurons": dead_units(p, x.to(p["W0"].device, p["W0"].dtype))})
        if act == "relu"
        else (lambda p: {})
    )
    return Problem(
        name=name,
        family="deepfc",
        description=description,
        citation=citation,
        init=init_fn,
        risk=risk,
        train_risk=lambda p, s, t: risk(p),
        optimum=optimum,
        provenance=provenance,
        provenance_detail=detail,
        tol=tol,
        diagnostics=diagnostics,
        options=options,
        footprint=len(x) * max(widths),
        risk_grad=lambda params: risk_and_grad(params, x, y, act),
    )


def make_teacher(
    name: str, d: int, widths: list[int], act: str, points: int
) -> tuple[torch.Tensor, Params]:
    """Inputs uniform on [-1, 1]^d and the teacher's parameters (one seed row), drawn from
    the problem's key; the last layer is scaled so the labels have unit variance (the
    tolerance then means the same for every architecture)."""
    key = problem_key(name)
    one = torch.zeros(1, dtype=torch.int64)
    x = 2 * uniform(key, one, stream("inputs"), points * d).reshape(points, d) - 1
    tp = draw_params(
        key, one, widths, "he" if act == "relu" else "xavier", act, "teacher", torch.float64
    )
    for layer in range(len(widths) - 1):  # teachers get non-zero biases
        tp[f"b{layer}"] = 0.3 * normal(key, one, stream("teacher_bias", layer), widths[layer + 1])
    last = len(widths) - 2
    with torch.no_grad():
        scale = forward(tp, x, act)[0].std().clamp_min(1e-12) if points > 1 else 1.0
    tp[f"W{last}"] = tp[f"W{last}"] / scale
    tp[f"b{last}"] = tp[f"b{last}"] / scale
    return x, tp


INITS = ("normal", "he", "xavier")


def check_options(options: dict) -> None:
    """Architecture strings, activation, init and (deep-target) target name, checked before
    any network is built."""
    widths = parse_widths(options["arch"])
    if options.get("teacher"):
        parse_widths(options["teacher"])
    if "act" in options and options["act"] not in ACTIVATIONS:
        raise ValueError(f"unknown act {options['act']!r}; choose {', '.join(ACTIVATIONS)}")
    if options["init"] not in INITS:
        raise ValueError(f"unknown init {options['init']!r}; choose {', '.join(INITS)}")
    if options.get("bias", "zero") not in BIASES:
        raise ValueError(f"unknown bias {options['bias']!r}; choose {', '.join(BIASES)}")
    if "target" in options:
        if options["target"] not in TARGETS:
            raise ValueError(f"unknown target {options['target']!r}; choose {', '.join(TARGETS)}")
        if widths[0] != 1:
            raise ValueError("deep-target networks map one input to one output (1-...-1)")


@register(
    "deep-teacher",
    "deep fully connected student of a random deep teacher on N fixed "
    "inputs (ReLU, tanh or sigmoid): optimal empirical risk exactly 0",
    CITE_TS,
    "exact",
    (
        Option("arch", str, "8-32-32-32-32-1", "student layer widths, input first"),
        Option("teacher", str, "", "teacher layer widths (empty: the student's)"),
        Option("act", str, "relu", f"activation: {', '.join(ACTIVATIONS)}"),
        Option("init", str, "he", "initialization: normal, he, xavier"),
        Option("points", int, 1024, "training inputs N"),
        Option("tol", float, 1e-6, "success tolerance on the gap"),
    ),
    check=check_options,
)
def deep_teacher(
    _name: str, arch: str, teacher: str, act: str, init: str, points: int, tol: float
) -> Problem:
    widths = parse_widths(arch)
    t_widths = parse_widths(teacher) if teacher else widths
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown act {act!r}; choose relu, tanh or sigmoid")
    if points < 1:
        raise ValueError("points must be >= 1")
    x, tp = make_teacher(_name, widths[0], t_widths, act, points)
    with torch.no_grad():
        y = forward(tp, x, act)[0]
    contains = len(t_widths) == len(widths) and all(
        s >= t for s, t in zip(widths, t_widths, strict=True)
    )
    if contains:
        optimum, prov = 0.0, "exact"
        detail = f"student {arch} contains teacher {'-'.join(map(str, t_widths))}: R* = 0"
    else:
        optimum, prov = 0.0, "best_known"
        detail = "student does not contain the teacher: 0 is only a lower bound"
    options = {
        "arch": arch,
        "teacher": "-".join(map(str, t_widths)),
        "act": act,
        "points": points,
        "init": init,
    }
    description = (
        f"Student {arch}, teacher {options['teacher']}, {act}, {points} inputs uniform on "
        f"[-1, 1]^{widths[0]}, labels scaled to unit variance, init {init}."
    )
    return _problem(_name, options, (x, y), (optimum, prov, detail, tol), description, CITE_TS)


@register(
    "deep-target",
    "deep fully connected network fitting sin(3x) or x^2 + 2x on [0, 1] "
    "(seed 000's deep runs): best-known optimum with provenance",
    CITE_000,
    "best_known",
    (
        Option("target", str, "sin3x", f"target function: {', '.join(DEEP_TARGETS)}"),
        Option("arch", str, "1-32-32-32-1", "layer widths, 1-...-1"),
        Option("act", str, "relu", f"activation: {', '.join(ACTIVATIONS)}"),
        Option("init", str, "he", "initialization: normal, he, xavier"),
        Option("bias", str, "zero", "initial biases: zero, or normal: N(0, 1)"),
        Option("points", int, 256, "midpoint-grid inputs in [0, 1]"),
        Option("tol", float, 0.0, "success tolerance on the gap (0: half the best known)"),
        Option("sampled", bool, False, "train on fresh U[0, 1] inputs per step and seed"),
        Option("batch", int, 1024, "mini-batch size when sampled"),
    ),
    check=check_options,
)
def deep_target(
    _name: str,
    target: str,
    arch: str,
    act: str,
    init: str,
    bias: str,
    points: int,
    tol: float,
    sampled: bool,
    batch: int,
) -> Problem:
    widths = parse_widths(arch)
    if widths[0] != 1 or widths[-1] != 1:
        raise ValueError("deep-target networks map one input to one output (1-...-1)")
    if target not in DEEP_TARGETS:
        raise ValueError(f"unknown target {target!r}; choose {', '.join(DEEP_TARGETS)}")
    x = ((torch.arange(points, dtype=torch.float64) + 0.5) / points)[:, None]  # midpoint grid
    y = TARGETS[target]().fn(x[:, 0])
    known = best_known(_name)
    if known:
        optimum, detail = known
        tol = tol if tol > 0 else max(1e-7, 0.5 * optimum)
    else:
        optimum = 0.0
        detail = f"no best-known run recorded: 0 is a lower bound (`trapbench best-known {_name}`)"
        tol = tol if tol > 0 else 1e-6
    options = {
        "target": target,
        "arch": arch,
        "act": act,
        "points": points,
        "init": init,
        "bias": bias,
    }
    description = (
        f"Network {arch} ({act}, init {init}, {bias} biases) fitting {target} on a midpoint "
        f"grid of {points} points in [0, 1]; success = within tol of the best risk known."
    )
    known = (optimum, "best_known", detail, tol)
    problem = _problem(_name, options, (x, y), known, description, CITE_000)
    return with_sampling(problem, target, act, batch, widths) if sampled else problem


def with_sampling(problem: Problem, target: str, act: str, batch: int, widths) -> Problem:
    """The online-SGD variant of a deep-target problem: the optimizer sees the mean squared
    error on ``batch`` fresh U[0, 1] inputs per step and seed (seed 000's deep runs), while
    the midpoint-grid risk stays the evaluation risk (fates, stopping, final risk)."""
    from problems.sampled import batch_inputs, deep_train_risk_grad  # sampled.py imports this

    if batch < 1:
        raise ValueError("batch must be >= 1")
    key, fn = problem_key(problem.name), TARGETS[target]().fn

    def train_risk(params: Params, seeds: torch.Tensor, step: int) -> torch.Tensor:
        x = batch_inputs(key, seeds, step, batch, (0.0, 1.0), params["W0"].dtype)
        err = forward(params, x[:, :, None], act) - fn(x)
        return (err * err).mean(dim=1)

    return dataclasses.replace(
        problem,
        description=f"{problem.description} Trained on fresh batches of {batch} U[0, 1] inputs.",
        train_risk=train_risk,
        exact=False,
        train_risk_grad=deep_train_risk_grad(key, batch, fn, act),
        footprint=batch * max(widths),
        options={**problem.options, "sampled": True, "batch": batch},
    )
