import os

# Inductor compiles in a pool of worker processes by default; pytest-xdist already runs one
# test worker per core, and many tests start runs in subprocesses, each of which would start
# its own pool. One compile thread per process: test_engine.py and test_sampled.py on 2
# workers with an empty compile cache took 451 s against 518 s (one run each).
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _cache_and_threads(tmp_path_factory):
    """Tests use their own reference-solver cache and one torch thread (like the workers)."""
    os.environ.setdefault("TRAPBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)
    yield
