"""sharedbuffers.sharedctypes beside multiprocessing.sharedctypes, same operations, same run.

    .venv/bin/python -m pytest benchmarks/test_bench_sharedctypes.py --benchmark-only --benchmark-group-by=group

For one table of ratios (interleaved rounds), run ``benchmarks/sharedctypes_vs_stdlib.py``.
"""
import multiprocessing.sharedctypes as stdlib

import numpy
import pytest

from sharedbuffers import sharedctypes as ours

IMPLEMENTATIONS = [pytest.param(stdlib, id='multiprocessing'), pytest.param(ours, id='sharedbuffers')]
SIZE = 1_000_000
DATA = [float(i) for i in range(SIZE)]
DATA_ARRAY = numpy.arange(SIZE, dtype=numpy.float64)


@pytest.mark.benchmark(group='Value.value read, locked')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_value_read_locked(benchmark, module):
    value = module.Value('d', 1.0)
    benchmark(lambda: value.value)


@pytest.mark.benchmark(group='Value.value write, locked')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_value_write_locked(benchmark, module):
    value = module.Value('d', 1.0)

    def write():
        value.value = 2.0
    benchmark(write)


@pytest.mark.benchmark(group='Value.value read, lock=False')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_value_read_unlocked(benchmark, module):
    value = module.Value('d', 1.0, lock=False)
    benchmark(lambda: value.value)


@pytest.mark.benchmark(group='Array[i] read, locked')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_array_item_locked(benchmark, module):
    shared = module.Array('d', 100)
    benchmark(lambda: shared[5])


@pytest.mark.benchmark(group='Array[i] write, locked')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_array_item_write_locked(benchmark, module):
    shared = module.Array('d', 100)

    def write():
        shared[5] = 1.0
    benchmark(write)


@pytest.mark.benchmark(group='Array[i] read, lock=False')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_array_item_unlocked(benchmark, module):
    shared = module.Array('d', 100, lock=False)
    benchmark(lambda: shared[5])


@pytest.mark.benchmark(group='RawArray of 1M doubles from a list')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_allocate_and_fill_from_a_list(benchmark, module):
    benchmark.pedantic(module.RawArray, ('d', DATA), rounds=5)


@pytest.mark.benchmark(group='RawArray of 1M doubles, zeroed, then slice-filled')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_allocate_then_slice_fill(benchmark, module):
    def allocate_and_fill():
        shared = module.RawArray('d', SIZE)
        shared[:] = DATA
        return shared
    benchmark.pedantic(allocate_and_fill, rounds=5)


@pytest.mark.benchmark(group='RawArray of 1M doubles from numpy')
@pytest.mark.parametrize('module', IMPLEMENTATIONS)
def test_allocate_and_fill_from_numpy(benchmark, module):
    benchmark.pedantic(module.RawArray, ('d', DATA_ARRAY), rounds=5)
