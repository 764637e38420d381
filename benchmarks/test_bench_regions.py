"""Regions of one file beside numpy.memmap and mmap doing the same job by hand.

    .venv/bin/python -m pytest benchmarks/test_bench_regions.py --benchmark-only --benchmark-group-by=group

The file holds four 1 MiB regions.  The baselines work on the same bytes at the same offsets
with no table: what a region file costs on top of them (a table lookup, counted views, a
crash-safe table and moves that may go through scratch space) is the ratio.  Each structural
change starts from a fresh copy of the file, synced so that no earlier write is flushed
inside the timed part.
"""
import atexit
import mmap
import os
import shutil
import tempfile

import numpy
import pytest

from sharedbuffers.regions import RegionFile

REGION_SIZE = 1 << 20
GROWTH = 4096
ROUNDS = 30
DIRECTORY = tempfile.mkdtemp(prefix='sharedbuffers-bench-regions-')
TEMPLATE = os.path.join(DIRECTORY, 'template.bin')
atexit.register(shutil.rmtree, DIRECTORY, True)

with RegionFile(TEMPLATE, 'w+') as _template:
    for _name in 'abcd':
        _template.append(REGION_SIZE, _name).write(bytes([ord(_name)]) * REGION_SIZE)
    START, END = _template['b'].offset, _template['b'].offset + REGION_SIZE
    TOTAL = _template['d'].offset + REGION_SIZE

REGIONS = RegionFile(TEMPLATE, 'r')
MEMMAP = numpy.memmap(TEMPLATE, mode='r')
with open(TEMPLATE, 'rb') as _raw:
    MMAP = mmap.mmap(_raw.fileno(), 0, access=mmap.ACCESS_READ)


def fresh_copy():
    path = os.path.join(DIRECTORY, 'work.bin')
    shutil.copyfile(TEMPLATE, path)
    with open(path, 'r+b') as copied:
        os.fsync(copied.fileno())
    return path


def open_regions():
    return (RegionFile(fresh_copy(), 'r+'),), {}


def open_mmap():
    raw = open(fresh_copy(), 'r+b')
    return (raw, mmap.mmap(raw.fileno(), 0)), {}


def close_mmap(raw, mapped):
    mapped.close()
    raw.close()


# -- views ---------------------------------------------------------------------------------

@pytest.mark.benchmark(group='1 MiB region as a numpy array')
def test_region_asarray(benchmark):
    assert benchmark(lambda: REGIONS['b'].asarray()[0]) == ord('b')


@pytest.mark.benchmark(group='1 MiB region as a numpy array')
def test_asarray_baseline_numpy_memmap_slice(benchmark):
    assert benchmark(lambda: MEMMAP[START:END][0]) == ord('b')


@pytest.mark.benchmark(group='1 MiB region as a memoryview')
def test_region_buffer(benchmark):
    assert benchmark(lambda: REGIONS['b'].buffer[0]) == ord('b')


@pytest.mark.benchmark(group='1 MiB region as a memoryview')
def test_buffer_baseline_mmap_memoryview_slice(benchmark):
    assert benchmark(lambda: memoryview(MMAP)[START:END][0]) == ord('b')


# -- structural changes --------------------------------------------------------------------

@pytest.mark.benchmark(group='grow the 2nd region by 4 KiB (2 MiB after it move)')
def test_region_grow_middle(benchmark):
    benchmark.pedantic(lambda regions: regions.resize('b', REGION_SIZE + GROWTH), setup=open_regions,
                       teardown=lambda regions: regions.close(), rounds=ROUNDS)


@pytest.mark.benchmark(group='grow the 2nd region by 4 KiB (2 MiB after it move)')
def test_grow_middle_baseline_mmap_resize_and_move(benchmark):
    def grow(raw, mapped):
        mapped.resize(TOTAL + GROWTH)
        mapped.move(END + GROWTH, END, TOTAL - END)
        mapped[END:END + GROWTH] = bytes(GROWTH)
    benchmark.pedantic(grow, setup=open_mmap, teardown=close_mmap, rounds=ROUNDS)


@pytest.mark.benchmark(group='grow the 2nd region by 4 KiB (2 MiB after it move)')
def test_grow_middle_baseline_numpy_memmap_remap_and_shift(benchmark):
    def grow():
        grown = numpy.memmap(path, mode='r+', shape=(TOTAL + GROWTH,))
        grown[END + GROWTH:] = grown[END:TOTAL]
        grown[END:END + GROWTH] = 0
        del grown
    path = None

    def setup():
        nonlocal path
        path = fresh_copy()
    benchmark.pedantic(grow, setup=setup, rounds=ROUNDS)


@pytest.mark.benchmark(group='append a 4 KiB region')
def test_region_append(benchmark):
    benchmark.pedantic(lambda regions: regions.append(GROWTH), setup=open_regions,
                       teardown=lambda regions: regions.close(), rounds=ROUNDS)


@pytest.mark.benchmark(group='append a 4 KiB region')
def test_append_baseline_mmap_resize(benchmark):
    benchmark.pedantic(lambda raw, mapped: mapped.resize(TOTAL + GROWTH), setup=open_mmap, teardown=close_mmap,
                       rounds=ROUNDS)


@pytest.mark.benchmark(group='delete the 2nd region')
def test_region_delete_middle(benchmark):
    benchmark.pedantic(lambda regions: regions.delete('b'), setup=open_regions,
                       teardown=lambda regions: regions.close(), rounds=ROUNDS)


@pytest.mark.benchmark(group='delete the 2nd region')
def test_delete_middle_baseline_mmap_move_and_resize(benchmark):
    def delete(raw, mapped):
        mapped.move(START, END, TOTAL - END)
        mapped.resize(TOTAL - (END - START))
    benchmark.pedantic(delete, setup=open_mmap, teardown=close_mmap, rounds=ROUNDS)
