import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _cache_and_threads(tmp_path_factory):
    """Tests use their own reference-solver cache and one torch thread (like the workers)."""
    os.environ.setdefault("TRAPBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)
    yield
