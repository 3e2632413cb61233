"""Keep freed tensor memory in the process, so each training step reuses warm pages.

Why: torch's CPU tensors come from glibc's malloc, which serves a block above its mmap
threshold (128 KB at start, raised as large blocks are freed, up to 32 MB) with a fresh
mmap() and returns it to the kernel on free. A step of a deep network allocates a dozen
intermediates of a few MB (8-32x4-1 on a 32-seed chunk: 4 MB per layer), and which of them
glibc maps afresh changes from process to process: measured at steady state, 1500-1600 page
faults and 4 ms of kernel time in a 22 ms step in some processes, under 20 faults in others.
With the thresholds pinned below, freed blocks stay in the heap and are reused at the same
(cached) addresses. `make perf` prints the ratio per case (medians of process pairs): 1.18-1.21x
on seed 000's sampled 1-50-50-1 network, 0.95-1.11x on 8-32x4-1, where glibc's default
process faults or not by chance; relu1d-x2 and gauss-relu measured equal by hand. Only where
memory lives changes, no arithmetic: the numbers are bit-identical (tested).

Who pins: trapbench's own processes only (the `trapbench` command, its pool workers, a local
dask cluster's workers, `make perf`), never a library caller's process, because the price is
resident memory: a pinned process keeps its peak heap (plus up to TRIM_BYTES free at the top)
until it exits. Other C libraries (macOS, musl) are left alone; under a preloaded jemalloc or
tcmalloc the settings reach glibc's allocator, which then serves nothing.
"""

from __future__ import annotations

import ctypes
import functools
import platform

# mallopt(3) parameters, glibc's malloc.h
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_BYTES = 32 << 20  # glibc's largest allowed threshold on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_BYTES = 1 << 30  # free space at the heap's top kept before returning it to the kernel
PAD_BYTES = 64 << 20  # extra space requested per heap growth, so steps rarely grow it


def glibc() -> bool:
    """Whether this process runs on glibc, whose thresholds these are."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@functools.cache
def keep_freed_memory() -> bool:
    """Pin glibc's thresholds, once per process (setting any of them also stops glibc's
    dynamic threshold adjustment). True if glibc took all three; False elsewhere."""
    if not glibc():
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_BYTES),
        (M_TRIM_THRESHOLD, TRIM_BYTES),
        (M_TOP_PAD, PAD_BYTES),
    )
    taken = [mallopt(param, value) == 1 for param, value in settings]  # each one tried
    return all(taken)
