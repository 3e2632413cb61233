"""Planted minimum of a DEEP sigmoid network by repeated neuron splitting (Petzka &
Sminchisescu, JMLR 2021, Section 5 and Theorem 9; seed 003).

The network 2-h1-h2-1: a1 = s(W1 x), a2 = s(W2 a1), f = v . a2 + c (s the sigmoid; hidden
layers without biases, so B^r of a first-layer neuron is 2 x 2 and has the two eigenvalues
the paper reports), batched over seeds like every family. Copy neuron r of hidden layer l
(its incoming weights) and split its outgoing weights (column r of W2 for l = 1, v_r for
l = 2) into lambda and 1 - lambda times: the network function is unchanged. With the loss
L = 1/2 sum_a (f(x_a) - y_a)^2, the signals delta(l, s) = dL/dn(l, s) and a = a_{l-1} (the
layer's inputs, x for l = 1),

    B^r     = sum_a [sum_s delta(l+1, s) W_{l+1}[s, r]] s''(n_r) a a^T,
    D^{r,s} = sum_a delta(l+1, s) s'(n_r) a,                  (Theorem 9's D-condition)

the split of a local minimum is again a local minimum if D^{r,s} = 0 for every s and B^r is
positive definite with 0 < lambda < 1 (negative definite with lambda outside [0, 1]); a
definite B^r of the wrong sign, an indefinite B^r or a non-zero D makes it a saddle. Why: in
the split coordinates (incoming weights moved by (1 - lambda) d and -lambda d, outgoing
weights by +e and -e) the loss changes to second order by

    1/2 lambda (1 - lambda) d^T B^r d + sum_s e_s d^T D^{r,s},

and a quadratic form [[lambda (1 - lambda) B, D], [D^T, 0]] is semidefinite only if D = 0
(docs/problems.md section 3; the test suite checks both blocks against autograd).

Their Section 5.4 experiment: a 2-5-5-1 sigmoid teacher labels 20 samples, a 2-1-1-1 local
minimum (loss 4.817, B eigenvalues 0.0182 and 0.0004) is split up to 2-21-21-1. When layer
l + 1 consists of copies of ONE neuron (as everywhere in this construction, which starts from
one neuron per layer), their signals are proportional to the small network's, whose D is its
gradient divided by an outgoing weight: D = 0 exactly, so every split needs only B's sign.
"""

from __future__ import annotations

import torch

from problems.base import Params, Problem
from problems.cache import cached_json
from problems.options import Option
from problems.planted import perturbed_starts, polish
from problems.registry import register
from problems.rng import normal, problem_key, stream

CITE = (
    "Petzka & Sminchisescu (2021), Non-attracting regions of local minima in deep and wide "
    "neural networks, JMLR 22(143), Section 5 and Theorem 9 [seed 003]"
)
KEYS = ("w1", "w2", "v", "c")
OUT_OF = {1: "w2", 2: "v"}  # the weights leaving hidden layer l
LAM_INSIDE, LAM_OUTSIDE = 0.5, 1.5  # split proportions for a positive / negative definite B
ZERO = 1e-6  # D counts as zero below this share of the sum of its terms' magnitudes


def teacher_data(data: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs N(0, I_2) and labels of a 2-5-5-1 sigmoid teacher without hidden biases
    (weights 2 N(0, 1), output weights N(0, 1)): the same inputs and weights as
    ``planted.teacher_data`` of the same draw, minus its biases, so a 2-h1-h2-1 student with
    h1, h2 >= 5 contains the teacher and the optimal risk is exactly 0."""
    key, one = data, torch.zeros(1, dtype=torch.int64)
    x = normal(key, one, stream("inputs"), samples * 2)[0].reshape(samples, 2)
    w1 = 2 * normal(key, one, stream("planted_teacher", 0), 10)[0].reshape(5, 2)
    w2 = 2 * normal(key, one, stream("planted_teacher", 1), 25)[0].reshape(5, 5)
    w3 = normal(key, one, stream("planted_teacher", 4), 5)[0]
    return x, torch.sigmoid(torch.sigmoid(x @ w1.T) @ w2.T) @ w3


def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """[S, N] outputs of the 2-h1-h2-1 sigmoid network; x [N, d] shared by the seeds."""
    a1 = torch.sigmoid(torch.matmul(x, params["w1"].transpose(1, 2)))
    a2 = torch.sigmoid(torch.matmul(a1, params["w2"].transpose(1, 2)))
    return (a2 * params["v"][:, None]).sum(-1) + params["c"][:, None]


def mse(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[S] mean squared error, the risk the engine trains (= 2 L / N)."""
    err = forward(params, x) - y
    return (err * err).mean(dim=1)


def half_sse(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[S] L = 1/2 sum_a (f(x_a) - y_a)^2: the loss whose Hessian blocks B and D are."""
    err = forward(params, x) - y
    return 0.5 * (err * err).sum(dim=1)


def signals(params: Params, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Seed 0's forward and backward pass of L in closed form: pre-activations n1, n2,
    activations a0 = x, a1, a2 and signals d1 = dL/dn1, d2 = dL/dn2, d3 = dL/df ([N, width])."""
    w1, w2, v, c = (params[k][0] for k in KEYS)
    n1 = x @ w1.T
    a1 = torch.sigmoid(n1)
    n2 = a1 @ w2.T
    a2 = torch.sigmoid(n2)
    d3 = (a2 @ v + c - y)[:, None]
    d2 = d3 * v * a2 * (1 - a2)
    d1 = (d2 @ w2) * a1 * (1 - a1)
    return {"a0": x, "n1": n1, "a1": a1, "n2": n2, "a2": a2, "d1": d1, "d2": d2, "d3": d3}


def _out_weights(params: Params, layer: int) -> torch.Tensor:
    """[h_{l+1}, h_l]: the weights leaving hidden layer l (the output weights as one row)."""
    return params["w2"][0] if layer == 1 else params["v"][0][None, :]


def b_matrix(params: Params, x: torch.Tensor, y: torch.Tensor, layer: int, r: int) -> torch.Tensor:
    """B^r of neuron r of hidden layer ``layer`` (Theorem 9): sum_a dL/da_r s''(n_r) a a^T
    with a the layer's inputs, [h_{l-1}, h_{l-1}]."""
    sig = signals(params, x, y)
    dl_da = sig[f"d{layer + 1}"] @ _out_weights(params, layer)[:, r]
    s = torch.sigmoid(sig[f"n{layer}"][:, r])
    a = sig[f"a{layer - 1}"]
    return (a * (dl_da * s * (1 - s) * (1 - 2 * s))[:, None]).T @ a


def d_condition(
    params: Params, x: torch.Tensor, y: torch.Tensor, layer: int, r: int
) -> tuple[torch.Tensor, float]:
    """(D, scale): D^{r,s}_i = sum_a delta(l+1, s) s'(n_r) a_i for every neuron s of layer
    l + 1 ([h_{l+1}, h_{l-1}]; Theorem 9 needs D = 0), and the largest sum of its terms'
    magnitudes, against which "zero" is judged."""
    sig = signals(params, x, y)
    s = torch.sigmoid(sig[f"n{layer}"][:, r])
    a = sig[f"a{layer - 1}"] * (s * (1 - s))[:, None]
    delta = sig[f"d{layer + 1}"]
    return delta.T @ a, float((delta.abs().T @ a.abs()).max())


def split(params: Params, layer: int, r: int, lam: float) -> Params:
    """Copy neuron r of hidden layer ``layer`` (appended last); its outgoing weights become
    lam and (1 - lam) times the old ones: the network function is unchanged."""
    w_in, w_out = f"w{layer}", OUT_OF[layer]
    out = {k: v.clone() for k, v in params.items()}
    out[w_in] = torch.cat([params[w_in], params[w_in][:, r : r + 1]], dim=1)
    column = params[w_out][..., r : r + 1]  # [S, h2, 1] of W2, or [S, 1] of v
    kept = params[w_out].clone()
    kept[..., r : r + 1] = lam * column
    out[w_out] = torch.cat([kept, (1 - lam) * column], dim=-1)
    return out


def sign(eigenvalues: torch.Tensor) -> str:
    """'+' / '-' for a definite matrix, 'i' indefinite, '0' zero to rounding (eigenvalues
    below 1e-9 of the largest magnitude count as zero)."""
    top = float(eigenvalues.abs().max())
    eps = 1e-9 * top
    if top == 0 or top < 1e-14:
        return "0"
    if float(eigenvalues.min()) > eps:
        return "+"
    if float(eigenvalues.max()) < -eps:
        return "-"
    return "i"


def verdict(b_sign: str, lam: float, d_zero: bool) -> str:
    """Theorem 9's verdict for a split of a local minimum."""
    inside = 0 < lam < 1
    if d_zero and ((b_sign == "+" and inside) or (b_sign == "-" and not inside)):
        return "local-min"
    return "saddle" if b_sign in "+-i" or not d_zero else "degenerate"


def flat(params: Params) -> torch.Tensor:
    return torch.cat([params[k][0].reshape(-1) for k in KEYS])


def unflat(theta: torch.Tensor, like: Params) -> Params:
    out, at = {}, 0
    for k in KEYS:
        n = like[k][0].numel()
        out[k] = theta[at : at + n].reshape(like[k].shape)
        at += n
    return out


def hessian(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Dense Hessian of L (half_sse) at seed 0 of ``params``, float64."""
    theta = flat(params).to(torch.float64)
    return torch.autograd.functional.hessian(lambda t: half_sse(unflat(t, params), x, y)[0], theta)


def small_minima(x: torch.Tensor, y: torch.Tensor, key: int, starts: int = 16) -> list[dict]:
    """Strict local minima of the 2-1-1-1 network (gradient norm of L < 1e-8, smallest Hessian
    eigenvalue > 0) from ``starts`` L-BFGS runs (float64, strong Wolfe), lowest loss first,
    duplicates (same loss to 1e-9) dropped."""
    found: list[dict] = []
    for start in range(starts):
        z = normal(key, torch.tensor([start]), stream("init"), 5)[0]
        p = {
            "w1": z[:2].reshape(1, 1, 2).clone(),
            "w2": z[2:3].reshape(1, 1, 1).clone(),
            "v": z[3:4].reshape(1, 1).clone(),
            "c": z[4:].clone(),
        }
        grads = polish(
            p, lambda q: half_sse(q, x, y).sum(), max_iter=400, tolerance_grad=1e-12, rounds=2
        )
        point = {k: v.detach() for k, v in p.items()}
        loss = float(half_sse(point, x, y)[0])
        if float(torch.sqrt(sum((g * g).sum() for g in grads))) > 1e-8:
            continue
        if any(abs(loss - q["loss"]) < 1e-9 for q in found):
            continue
        low = float(torch.linalg.eigvalsh(hessian(point, x, y))[0])
        if low > 0:
            found.append({"params": point, "loss": loss, "hessian_min": low})
    return sorted(found, key=lambda q: q["loss"])


def plant(small: Params, x: torch.Tensor, y: torch.Tensor, h1: int, h2: int):
    """Split the 2-1-1-1 minimum up to 2-h1-h2-1, each split
    keeping Theorem 9's verdict 'local-min': split the neuron with the largest outgoing
    weights among those whose B is positive definite, with lambda = 1/2; if there is none,
    the largest with B negative definite, with lambda = 3/2 (its copy then carries -1/2 of
    the weights and a positive definite B, so later splits halve it). Layer 2 first: its
    B-matrix is then 1 x 1 (after layer 1 is split, layer 2's inputs are copies of one
    activation and its B is singular). Returns the planted point and one record per split."""
    params, steps = small, []
    for layer, width in ((2, h2), (1, h1)):
        while params[f"w{layer}"].shape[1] < width:
            out = _out_weights(params, layer)
            signs = [
                sign(torch.linalg.eigvalsh(b_matrix(params, x, y, layer, r)))
                for r in range(out.shape[1])
            ]
            size = out.abs().sum(dim=0)
            best = {
                s: max((r for r in range(len(signs)) if signs[r] == s), key=lambda r: size[r])
                for s in "+-"
                if s in signs
            }
            if not best:
                raise ValueError(f"no neuron of layer {layer} has a definite B-matrix")
            r, lam = (best["+"], LAM_INSIDE) if "+" in best else (best["-"], LAM_OUTSIDE)
            d, scale = d_condition(params, x, y, layer, r)
            d_rel = float(d.abs().max()) / max(scale, 1e-300)
            eig = torch.linalg.eigvalsh(b_matrix(params, x, y, layer, r))
            steps.append(
                {
                    "layer": layer,
                    "neuron": r,
                    "lam": lam,
                    "b_eigenvalues": eig.tolist(),
                    "d_relative": d_rel,
                    "verdict": verdict(signs[r], lam, d_rel <= ZERO),
                }
            )
            params = split(params, layer, r, lam)
    return params, steps


def construct(data: int, samples: int, h1: int, h2: int) -> dict:
    """The planted point, the small minimum and every split's verdict, cached on disk (the
    multi-start search takes tens of seconds)."""
    tag = {"planted_deep": 1, "data": data, "samples": samples, "h1": h1, "h2": h2}
    x, y = teacher_data(data, samples)

    def build() -> dict:
        return _construct(x, y, cached_small_minima(x, y, data, samples), data, h1, h2)

    stored = cached_json(tag, build, prefix="planted-deep-")
    planted = {k: torch.tensor(v, dtype=torch.float64) for k, v in stored["planted"].items()}
    small = {k: torch.tensor(v, dtype=torch.float64) for k, v in stored["small"].items()}
    return {**stored, "x": x, "y": y, "planted": planted, "small": small}


def cached_small_minima(x: torch.Tensor, y: torch.Tensor, data: int, samples: int) -> list[dict]:
    """small_minima of one data draw, cached on disk on their own: every width planted on
    that draw starts from them, and the multi-start search is the slow part."""
    tag = {"planted_deep_small": 1, "data": data, "samples": samples}

    def search() -> list[dict]:
        return [
            {**m, "params": {k: v.tolist() for k, v in m["params"].items()}}
            for m in small_minima(x, y, data)
        ]

    return [
        {**m, "params": {k: torch.tensor(v, dtype=torch.float64) for k, v in m["params"].items()}}
        for m in cached_json(tag, search, prefix="planted-deep-small-")
    ]


def _construct(
    x: torch.Tensor, y: torch.Tensor, minima: list[dict], data: int, h1: int, h2: int
) -> dict:
    for found in minima:
        small = found["params"]
        b1 = torch.linalg.eigvalsh(b_matrix(small, x, y, 1, 0))
        b2 = torch.linalg.eigvalsh(b_matrix(small, x, y, 2, 0))
        if sign(b1) in "+-" and sign(b2) in "+-":
            break
    else:
        raise ValueError(
            f"data={data}: no strict 2-1-1-1 local minimum with definite B-matrices; "
            "try another data draw (data=24 has one)"
        )
    planted, steps = plant(small, x, y, h1, h2)
    return {
        "small": {k: v.tolist() for k, v in small.items()},
        "small_loss": found["loss"],
        "small_hessian_min": found["hessian_min"],
        "b1_eigenvalues": b1.tolist(),
        "b2_eigenvalues": b2.tolist(),
        "splits": steps,
        "kind": "local-min" if all(s["verdict"] == "local-min" for s in steps) else "saddle",
        "planted": {k: v.tolist() for k, v in planted.items()},
        "level": float(mse(planted, x, y)[0]),
    }


def check_options(options: dict) -> None:
    """The construction starts from one neuron per layer and the teacher has five."""
    for key in ("h1", "h2"):
        if options[key] < 1:
            raise ValueError(f"{key}={options[key]} must be >= 1")


@register(
    "planted-deep",
    "2-h1-h2-1 sigmoid net started next to a planted non-global local minimum made by "
    "repeated neuron splitting (B-matrix and D-condition checked): escape rate",
    CITE,
    "exact",
    (
        Option("h1", int, 21, "first hidden layer width after splitting"),
        Option("h2", int, 21, "second hidden layer width after splitting"),
        Option("samples", int, 20, "training samples of the 2-5-5-1 teacher"),
        Option("data", int, 24, "which draw of teacher and samples (24: definite B-matrices)"),
        Option("noise", float, 1e-3, "standard deviation of the start's perturbation"),
        Option("tol", float, 1e-7, "success tolerance on the gap"),
        Option("grad_tol", float, 1e-9, "stationarity tolerance (gradient norm of the risk)"),
    ),
    check=check_options,
)
def planted_deep(
    _name: str,
    h1: int,
    h2: int,
    samples: int,
    data: int,
    noise: float,
    tol: float,
    grad_tol: float,
) -> Problem:
    """Starts: the planted point plus N(0, noise^2) on every weight. The student contains the
    teacher once h1, h2 >= 5, so the optimum is exactly 0; the planted risk is the level
    'planted' (a run that stays is fate 'level'; one that ends below it escaped)."""
    info = construct(data, samples, h1, h2)
    x, y, planted = info["x"], info["y"], info["planted"]
    key = problem_key(_name)
    contains = h1 >= 5 and h2 >= 5
    level = info["level"]

    def init(seeds, dtype, device):
        return perturbed_starts(planted, key, seeds, noise, dtype, device)

    def risk(params):
        w = params["w1"]
        return mse(params, x.to(w.device, w.dtype), y.to(w.device, w.dtype))

    lams = sorted({s["lam"] for s in info["splits"]})
    return Problem(
        name=_name,
        family="planted",
        description=f"2-1-1-1 sigmoid local minimum (loss L = {info['small_loss']:.4g}) split "
        f"into a 2-{h1}-{h2}-1 network (lambdas {lams}) on {samples} samples of a 2-5-5-1 "
        f"teacher; every split's B/D verdict: {info['kind']}. Starts: planted point + "
        f"N(0, {noise:g}^2).",
        citation=CITE,
        init=init,
        risk=risk,
        train_risk=lambda p, s, t: risk(p),
        optimum=0.0,
        provenance="exact" if contains else "best_known",
        provenance_detail="the student contains the bias-free 2-5-5-1 teacher: risk 0"
        if contains
        else "0 is a lower bound: the student is narrower than the teacher",
        tol=tol,
        levels=(("planted", level),) if level > tol else (),
        grad_tol=grad_tol,
        options={
            "h1": h1,
            "h2": h2,
            "samples": samples,
            "data": data,
            "noise": noise,
            "kind": info["kind"],
            "small_loss": info["small_loss"],
            "small_hessian_min": info["small_hessian_min"],
            "b1_eigenvalues": info["b1_eigenvalues"],
            "b2_eigenvalues": info["b2_eigenvalues"],
            "splits": len(info["splits"]),
            "max_d_relative": max((s["d_relative"] for s in info["splits"]), default=0.0),
        },
    )
