"""Counter-based random numbers keyed by (problem, seed index, stream, counter).

Why not ``torch.Generator``: one generator per seed would cost a Python call per seed per step,
and a shared generator makes a seed's numbers depend on which other seeds share its batch.
A counter-based generator (here the SplitMix64 finalizer, Steele, Lea & Flood 2014) maps an
integer tuple to a uniform number with pure integer tensor ops, so a seed's initialization and
data stream are a function of (problem key, seed index, stream, counter) only: identical whether
the seed runs alone, in a batch of 1024, in another chunk, on another worker, or on CUDA.

Streams separate the uses of one problem key; every use is named in STREAMS below, so two uses
can never draw the same numbers by accident (a test checks the ranges are disjoint). A new
use gets a new row here, never a literal stream number in a problem module.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch

_MASK64 = (1 << 64) - 1


def _signed(c: int) -> int:
    """Express an unsigned 64-bit constant as the int64 value torch stores."""
    c &= _MASK64
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)


def _shr(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finalizer: a bijection of int64 with good avalanche (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def _mix_unsigned(x: torch.Tensor) -> torch.Tensor:
    """mix on uint64 tensors: the same bits, since wrapping addition and multiplication agree
    modulo 2^64 signed or not, and uint64's >> is the logical shift _shr builds from int64's
    arithmetic one. Why a second spelling: on AVX2 CPUs ATen's vectorized int64 has neither
    a multiply (it is emulated element by element) nor an arithmetic shift (emulated with
    six vector ops), while inductor writes uint64 as a plain C++ loop where each is one
    instruction (measured, a [256, 1024] float32 batch, one thread, compiled: 1.10 -> 0.67
    ms). Eager CPU kernels lack uint64 addition, hence only under torch.compile (_unsigned)."""
    x = x + (_GOLDEN & _MASK64)
    x = (x ^ (x >> 30)) * (_M1 & _MASK64)
    x = (x ^ (x >> 27)) * (_M2 & _MASK64)
    return x ^ (x >> 31)


def _unsigned(device: torch.device) -> bool:
    """Whether uniform takes _mix_unsigned: inside torch.compile on the CPU (the GPU code
    generator and eager kernels keep the int64 spelling; the bits are the same either way)."""
    return torch.compiler.is_compiling() and device.type == "cpu"


def problem_key(name: str) -> int:
    """A stable 32-bit key for a problem's canonical name (same on every machine and run)."""
    return zlib.crc32(name.encode())


def uniform(
    key: int,
    seeds: torch.Tensor,
    stream: int,
    n: int,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform numbers in the open interval (0, 1), shape [len(seeds), n].

    Row i depends only on (key, seeds[i], stream): streams separate uses (initialization, the
    data of step t, ...), the counter runs along the row.
    """
    seeds = seeds.to(torch.int64)
    base = mix(mix(torch.full_like(seeds, key) ^ (stream * 0x2545F491)) + seeds)
    counter = torch.arange(n, dtype=torch.int64, device=seeds.device)
    state = base[:, None] * 0x632BE5AB + counter[None, :]
    if _unsigned(seeds.device):
        top53 = (_mix_unsigned(state.view(torch.uint64)) >> 11).view(torch.int64)
    else:
        top53 = _shr(mix(state), 11)
    top53 = top53.to(torch.float64)
    return ((top53 + 0.5) * 2.0**-53).to(dtype)


def normal(
    key: int,
    seeds: torch.Tensor,
    stream: int,
    n: int,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Standard normal numbers, shape [len(seeds), n], by the Box–Muller transform."""
    half = (n + 1) // 2
    u = uniform(key, seeds, stream, 2 * half, torch.float64)
    radius = torch.sqrt(-2.0 * torch.log(u[:, :half]))
    angle = 2.0 * math.pi * u[:, half:]
    z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return z[:, :n].to(dtype)


@dataclass(frozen=True)
class Stream:
    """Streams first, first + 1, ..., first + span - 1 belong to one use (span None: all
    streams from first on, for per-step data)."""

    first: int
    span: int | None
    use: str


STREAMS: dict[str, Stream] = {
    "init": Stream(0, 10, "a seed's initial parameters (deep networks: init + layer)"),
    "planted_noise": Stream(10, 10, "planted-sigmoid: perturbation of the planted point, + i"),
    "teacher": Stream(500, 100, "deep-teacher: teacher weights, teacher + layer"),
    "teacher_bias": Stream(600, 100, "deep-teacher: teacher biases, teacher_bias + layer"),
    "wide_starts": Stream(700, 1, "planted-sigmoid: multi-start search of the wide optimum"),
    "inputs": Stream(900, 1, "fixed training inputs (deep-teacher, planted-sigmoid)"),
    "planted_teacher": Stream(901, 5, "planted-sigmoid: the 2-5-5-1 teacher's weights, + i"),
    "batch": Stream(1000, None, "sampled problems: the mini-batch of step t is batch + t"),
}


def stream(name: str, offset: int = 0) -> int:
    """The stream number of a named use (plus an offset within its span)."""
    entry = STREAMS[name]
    if offset < 0 or (entry.span is not None and offset >= entry.span):
        raise ValueError(f"random stream {name!r} has {entry.span} slots, asked for {offset}")
    return entry.first + offset
