import pytest
import torch

from problems.rng import mix, normal, problem_key, uniform


def test_rows_depend_only_on_seed_index():
    full = uniform(5, torch.arange(100), stream=3, n=7)
    part = uniform(5, torch.tensor([42, 7]), stream=3, n=7)
    assert torch.equal(full[42], part[0]) and torch.equal(full[7], part[1])


def test_streams_keys_and_seeds_differ():
    a = uniform(5, torch.arange(4), 0, 16)
    assert not torch.equal(a, uniform(5, torch.arange(4), 1, 16))
    assert not torch.equal(a, uniform(6, torch.arange(4), 0, 16))
    assert len(set(a.flatten().tolist())) == a.numel()


def test_uniform_range_and_moments():
    u = uniform(1, torch.arange(1000), 0, 1000)
    assert 0 < u.min() and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 3e-3
    assert abs(float(u.var()) - 1 / 12) < 2e-3


def test_normal_moments():
    z = normal(2, torch.arange(500), 0, 1001)
    assert z.shape == (500, 1001)
    assert abs(float(z.mean())) < 5e-3 and abs(float(z.std()) - 1) < 5e-3
    assert abs(float((z**4).mean()) - 3) < 0.05


def test_float32_uniform_stays_open():
    u = uniform(1, torch.arange(2000), 0, 500, torch.float32)
    assert 0 < u.min() and u.max() < 1


def test_mix_is_deterministic_and_key_stable():
    x = torch.arange(10, dtype=torch.int64)
    assert torch.equal(mix(x), mix(x.clone()))
    assert problem_key("relu1d-x2") == problem_key("relu1d-x2") != problem_key("relu1d-affine")


def test_named_streams_never_overlap():
    """Two uses of one problem key must not draw the same numbers: the stream ranges in the
    table are disjoint (the open-ended per-step range comes last)."""
    from problems.rng import STREAMS

    ranges = sorted((s.first, s.span, name) for name, s in STREAMS.items())
    for (first, span, name), (nxt, _, other) in zip(ranges, ranges[1:], strict=False):
        assert span is not None and first + span <= nxt, (name, other)
    assert ranges[-1][1] is None


def test_stream_offsets_stay_inside_their_use():
    from problems.rng import STREAMS, stream

    assert stream("batch", 12345) == STREAMS["batch"].first + 12345
    assert stream("teacher", 3) == STREAMS["teacher"].first + 3
    with pytest.raises(ValueError, match="slots"):
        stream("init", STREAMS["init"].span)


def test_unsigned_mix_gives_the_int64_bits():
    """rng._mix_unsigned (uint64, compiled) against mix (int64, eager) on values using all
    64 bits, negative ones included: the same wrapping arithmetic and logical shifts."""
    from problems import rng

    g = torch.Generator().manual_seed(0)
    x = torch.randint(-(2**63), 2**63 - 1, (4096,), generator=g, dtype=torch.int64)
    x[:4] = torch.tensor([0, -1, -(2**63), 2**63 - 1])
    unsigned = torch.compile(lambda t: rng._mix_unsigned(t.view(torch.uint64)).view(torch.int64))
    assert torch.equal(unsigned(x), mix(x))


def test_compiled_cpu_uniform_takes_the_unsigned_hash():
    from problems import rng

    probe = torch.compile(lambda t: t + float(rng._unsigned(t.device)))
    assert float(probe(torch.zeros(()))) == 1.0
    assert not rng._unsigned(torch.device("cpu"))  # eager


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_uniform_is_bit_identical_to_eager(dtype):
    """Compiled on the CPU, uniform hashes on uint64; every number must be the eager int64
    one, for the largest key, seeds and streams whose states wrap around 2^64, the stream
    given as an int or a 0-d tensor (as the engine passes the step)."""
    key, seeds = 0xFFFFFFFF, torch.tensor([0, 1, 977, 2**40 + 3, 2**62 + 5])
    compiled = torch.compile(uniform, dynamic=True)
    for stream in (0, 1000, 10**9 + 7):
        eager = uniform(key, seeds, stream, 4096, dtype)
        assert torch.equal(compiled(key, seeds, stream, 4096, dtype), eager)
        assert torch.equal(compiled(key, seeds, torch.tensor(stream), 4096, dtype), eager)
