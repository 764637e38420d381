"""Native kernels beside their pure-Python fallback: xxh64 and the stable hash."""
import pytest

from sharedbuffers import _native
from sharedbuffers._native import fallback
from sharedbuffers.stable_hash import stable_hash

SHORT = b'user-0012345'
LONG = bytes(range(256)) * 4096


@pytest.mark.benchmark(group='xxh64 12 bytes')
def test_xxh64_short(benchmark):
    benchmark(_native.xxh64, SHORT)


@pytest.mark.benchmark(group='xxh64 12 bytes')
def test_xxh64_short_fallback(benchmark):
    benchmark(fallback.xxh64, SHORT)


@pytest.mark.benchmark(group='xxh64 1 MiB')
def test_xxh64_long(benchmark):
    benchmark(_native.xxh64, LONG)


@pytest.mark.benchmark(group='stable hash of a tuple')
def test_stable_hash_tuple(benchmark):
    benchmark(stable_hash, ('a', 35, 1.5, None))
