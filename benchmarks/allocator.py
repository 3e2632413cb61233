"""Keep freed tensor memory in the process, so each training step reuses warm pages.

Why: torch's CPU tensors come from glibc's malloc, which serves a block above its mmap
threshold (128 KB at start, raised as large blocks are freed, up to 32 MB) with a fresh
mmap() and returns it to the kernel on free. A step of a deep network allocates a dozen
intermediates of a few MB (8-32x4-1 on a 32-seed chunk: 4 MB per layer), and which of them
glibc maps afresh changes from run to run: measured at steady state, 1500-1600 page faults
and 4 ms of kernel time in a 22 ms step in some processes, under 20 faults in others. With the
thresholds pinned below, freed blocks stay in the heap and are reused at the same (cached)
addresses: 16-19 ms against 18-22 ms per step on that case, 5% on seed 000's sampled 1-50-50-1
network (benchmarks/perf.py prints the ratio). Only where memory lives changes, no
arithmetic: the numbers are bit-identical (tested).

The price is resident memory: a process keeps its peak heap (plus up to TRIM_BYTES of free
space at the top) until it exits. Other C libraries (macOS, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt(3) parameters, glibc's malloc.h
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_BYTES = 32 << 20  # glibc's largest allowed threshold on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_BYTES = 1 << 30  # free space at the heap's top kept before returning it to the kernel
PAD_BYTES = 64 << 20  # extra space requested per heap growth, so steps rarely grow it


@functools.cache
def keep_freed_memory() -> bool:
    """Pin glibc's thresholds once per process (setting any of them also stops glibc's dynamic
    threshold adjustment). True if this process's C library took them; False elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_BYTES),
        (M_TRIM_THRESHOLD, TRIM_BYTES),
        (M_TOP_PAD, PAD_BYTES),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)
