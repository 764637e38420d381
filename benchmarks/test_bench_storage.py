"""A storage root's attributes beside a plain Python object and a numpy.memmap element.

    .venv/bin/python -m pytest benchmarks/test_bench_storage.py --benchmark-only --benchmark-group-by=group

Each group does one job three ways: ``storage.root.count`` (a number in a mapped file,
checked and read with one ``struct.unpack_from``), ``obj.count`` (a slot of an ordinary
object: the floor, nothing persists), and ``memmap[0]`` (numpy's element of a mapped file,
the usual way to keep a number in a file).  Strings and arrays are timed too: assigning one
packs it and allocates heap space, reading one decodes it or makes a zero-copy view.
Each timed call does the job 100 times, so the call overhead of the harness counts little.
"""
import atexit
import os
import shutil
import tempfile

import numpy
import pytest

from sharedbuffers.storage import Storage

REPEAT = 100
DIRECTORY = tempfile.mkdtemp(prefix='sharedbuffers-bench-storage-')
atexit.register(shutil.rmtree, DIRECTORY, True)


class Counters:
    __slot_types__ = {'count': int, 'ratio': float, 'name': str, 'samples': numpy.ndarray}


class Plain:
    __slots__ = ('count', 'ratio', 'name', 'samples')


STORAGE = Storage(os.path.join(DIRECTORY, 'counters.sbs'), size=1 << 20, root=Counters)
atexit.register(STORAGE.close)
ROOT = STORAGE.root
ROOT.count, ROOT.ratio, ROOT.name, ROOT.samples = 1, 0.5, 'counter name', numpy.arange(100.0)
PLAIN = Plain()
PLAIN.count, PLAIN.ratio, PLAIN.name, PLAIN.samples = 1, 0.5, 'counter name', numpy.arange(100.0)
MEMMAP = numpy.memmap(os.path.join(DIRECTORY, 'counters.npy'), dtype=numpy.int64, mode='w+', shape=(16,))
ROUNDS = range(REPEAT)
NAMES = ['name %04d' % number for number in ROUNDS]
TARGETS = {'storage root': ROOT, 'baseline object': PLAIN}
BOTH = pytest.mark.parametrize('target', list(TARGETS))


def read_count(obj):
    for _ in ROUNDS:
        obj.count


def assign_count(obj):
    for number in ROUNDS:
        obj.count = number


def read_name(obj):
    for _ in ROUNDS:
        obj.name


def assign_name(obj):
    for name in NAMES:
        obj.name = name


def sum_samples(obj):
    for _ in ROUNDS:
        obj.samples.sum()


@pytest.mark.benchmark(group='read a number x100')
@BOTH
def test_read_number(benchmark, target):
    benchmark(read_count, TARGETS[target])


@pytest.mark.benchmark(group='read a number x100')
def test_read_number_baseline_memmap(benchmark):
    def read():
        for _ in ROUNDS:
            MEMMAP[0]
    benchmark(read)


@pytest.mark.benchmark(group='assign a number x100')
@BOTH
def test_assign_number(benchmark, target):
    benchmark(assign_count, TARGETS[target])
    assert TARGETS[target].count == REPEAT - 1


@pytest.mark.benchmark(group='assign a number x100')
def test_assign_number_baseline_memmap(benchmark):
    def assign():
        for number in ROUNDS:
            MEMMAP[0] = number
    benchmark(assign)


@pytest.mark.benchmark(group='read a str x100')
@BOTH
def test_read_str(benchmark, target):
    benchmark(read_name, TARGETS[target])


@pytest.mark.benchmark(group='assign a str x100 (heap space reused)')
@BOTH
def test_assign_str(benchmark, target):
    benchmark(assign_name, TARGETS[target])
    assert TARGETS[target].name == NAMES[-1]


@pytest.mark.benchmark(group='sum an array of 100 floats x100')
@BOTH
def test_sum_array(benchmark, target):
    benchmark(sum_samples, TARGETS[target])
