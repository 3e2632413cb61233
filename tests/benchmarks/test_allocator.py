"""benchmarks/allocator.py: glibc's thresholds pinned, freed blocks reused, numbers unchanged.

mallopt cannot be undone, so each case runs in a fresh interpreter of its own."""

import json
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
pytestmark = pytest.mark.skipif(not GLIBC, reason="the thresholds are glibc's")

# Three buffers of about 4 MB written and freed, each round's a page larger than the last:
# under glibc's default a block larger than its (dynamic) mmap threshold is mapped afresh,
# so every round faults all its pages in anew; pinned, the heap's freed pages serve the next
# round once the heap has grown to the working set (a few rounds).
CHURN = """
import json, resource, sys, torch
from benchmarks.allocator import keep_freed_memory
pinned = sys.argv[1] == "pinned" and keep_freed_memory()
faults = []
for size in range(1 << 20, (1 << 20) + 10 * 1024, 1024):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    bufs = [torch.ones(size) for _ in range(3)]
    del bufs
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"pinned": pinned, "faults": faults[6:]}))
"""

# A deep float32 cell's end points (compiled off: the same arithmetic either way)
CELL = """
import json, sys, torch
from benchmarks.allocator import keep_freed_memory
from benchmarks.engine import RunConfig, train_cell
from optimizers.registry import BUILTINS
from problems.registry import make
if sys.argv[1] == "pinned":
    keep_freed_memory()
torch.set_num_threads(1)
rec, _ = train_cell(
    make("deep-teacher:arch=4-32-32-1,points=256"), BUILTINS["adam"], {"lr": 1e-2},
    torch.arange(40), RunConfig(steps=25), keep_params=True,
)
print(json.dumps({k: v.tobytes().hex() for k, v in rec.items() if k != "stop_reason"}))
"""


def child(code: str, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pinned_thresholds_keep_freed_pages_for_the_next_allocation():
    default, pinned = child(CHURN, "default"), child(CHURN, "pinned")
    assert pinned["pinned"] is True
    assert max(pinned["faults"]) < 100, pinned  # 3 x 1024 pages are written each round
    assert min(default["faults"]) > 3000, default  # what pinning saves: every page, again


def test_a_cell_gives_the_same_bits_with_the_thresholds_pinned():
    default, pinned = child(CELL, "default"), child(CELL, "pinned")
    assert default.keys() == pinned.keys()
    assert default == pinned
