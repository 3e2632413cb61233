"""benchmarks/perf.py's process helper: a measuring process that dies is reported, not
waited for."""

import os

import pytest

from benchmarks.perf import spawned


def test_a_measuring_process_that_dies_raises_instead_of_hanging():
    # os._exit(3, results) raises TypeError in the child, which then exits with code 1
    # before putting anything on the queue
    with pytest.raises(RuntimeError, match="measuring process failed"):
        spawned(os._exit, [(3,)], timeout=60)
