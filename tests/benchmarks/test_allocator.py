"""benchmarks/allocator.py: glibc's thresholds pinned in trapbench's own processes, freed
blocks reused, numbers unchanged.

mallopt cannot be undone, so each case runs in a fresh interpreter of its own."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks.allocator import glibc

pytestmark = pytest.mark.skipif(not glibc(), reason="the thresholds are glibc's")

# Three buffers of about 4 MB written and freed, each round's a page larger than the last:
# under glibc's default a block larger than its (dynamic) mmap threshold is mapped afresh,
# so every round faults all its pages in anew; pinned, the heap's freed pages serve the next
# round once the heap has grown to the working set (a few rounds). Transparent huge pages
# are turned off for the process, so a fault is one 4 KB page on any kernel setting.
CHURN = """
import ctypes, json, resource, sys, torch
from benchmarks.allocator import keep_freed_memory
PR_SET_THP_DISABLE = 41
ctypes.CDLL("libc.so.6").prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)
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
pinned = sys.argv[1] == "pinned" and keep_freed_memory()
torch.set_num_threads(1)
rec, _ = train_cell(
    make("deep-teacher:arch=4-32-32-1,points=256"), BUILTINS["adam"], {"lr": 1e-2},
    torch.arange(40), RunConfig(steps=25), keep_params=True,
)
out = {k: v.tobytes().hex() for k, v in rec.items() if k != "stop_reason"}
print(json.dumps({"pinned": pinned, "records": out}))
"""

# Who pins: the `trapbench` command's entry does, main() called as a library does not
ENTRY = """
import contextlib, io, json, sys
from benchmarks import cli
from benchmarks.allocator import keep_freed_memory
with contextlib.redirect_stdout(io.StringIO()):
    if sys.argv[1] == "entry":
        sys.argv[1:] = ["list", "problems"]
        cli.entry()
    else:
        cli.main(["list", "problems"])
print(json.dumps({"pinned": keep_freed_memory.cache_info().currsize == 1}))
"""


def child(code: str, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run(
        [sys.executable, "-c", code, mode], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pinned_thresholds_keep_freed_pages_for_the_next_allocation():
    default, pinned = child(CHURN, "default"), child(CHURN, "pinned")
    assert pinned["pinned"] is True
    assert max(pinned["faults"]) < 100, pinned  # 3 x 1024 pages are written each round
    # what pinning saves: under the default every round faults its pages in again
    assert min(default["faults"]) > 10 * max(pinned["faults"]) + 1000, default


def test_a_cell_gives_the_same_bits_with_the_thresholds_pinned():
    default, pinned = child(CELL, "default"), child(CELL, "pinned")
    assert (default["pinned"], pinned["pinned"]) == (False, True)
    assert default["records"].keys() == pinned["records"].keys()
    assert default["records"] == pinned["records"]


@pytest.mark.parametrize("mode, pins", [("entry", True), ("main", False)])
def test_only_the_trapbench_command_pins_its_process(mode, pins):
    assert child(ENTRY, mode)["pinned"] is pins
