"""One table: sharedbuffers.sharedctypes / multiprocessing.sharedctypes, interleaved rounds.

    PYTHONPATH=. .venv/bin/python benchmarks/sharedctypes_vs_stdlib.py --rounds 5

Each operation is timed for both modules in alternation, ``rounds`` times; the ratio of the
medians is printed (below 1.0: sharedbuffers is faster).  Timings on a shared machine move
by tens of percent between runs; ratios from one run do not.
"""
import argparse
import multiprocessing.sharedctypes as stdlib
import statistics
import timeit

import numpy

from sharedbuffers import sharedctypes as ours

SIZE = 1_000_000


def cases(module):
    data = [float(i) for i in range(SIZE)]
    locked, unlocked = module.Value('d', 1.0), module.Value('d', 1.0, lock=False)
    array, raw_array = module.Array('d', 100), module.Array('d', 100, lock=False)
    numbers = numpy.arange(SIZE, dtype=numpy.float64)

    def write_locked():
        locked.value = 2.0

    def write_unlocked():
        unlocked.value = 2.0

    def set_item_locked():
        array[5] = 1.0

    def set_item_unlocked():
        raw_array[5] = 1.0

    def slice_fill():
        shared = module.RawArray('d', SIZE)
        shared[:] = data
    return [
        ('Value.value read, locked', lambda: locked.value, 200000),
        ('Value.value write, locked', write_locked, 200000),
        ('Value.value read, lock=False', lambda: unlocked.value, 200000),
        ('Value.value write, lock=False', write_unlocked, 200000),
        ('Array[i] read, locked', lambda: array[5], 200000),
        ('Array[i] write, locked', set_item_locked, 200000),
        ('Array[i] read, lock=False', lambda: raw_array[5], 200000),
        ('Array[i] write, lock=False', set_item_unlocked, 200000),
        ('RawArray("d", 1M-element list)', lambda: module.RawArray('d', data), 1),
        ('RawArray("d", 1M) then a[:] = list', slice_fill, 1),
        ('RawArray("d", 1M-element numpy array)', lambda: module.RawArray('d', numbers), 1),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    rounds = parser.parse_args().rounds
    pairs = list(zip(cases(stdlib), cases(ours)))
    print('%-42s %12s %12s %8s' % ('operation', 'stdlib ns', 'ours ns', 'ratio'))
    for (name, theirs, number), (_, mine, _) in pairs:
        times = {'theirs': [], 'mine': []}
        for _ in range(rounds):
            for key, function in (('theirs', theirs), ('mine', mine)):
                times[key].append(min(timeit.repeat(function, number=number, repeat=3)) / number * 1e9)
        theirs_ns, mine_ns = statistics.median(times['theirs']), statistics.median(times['mine'])
        print('%-42s %12.1f %12.1f %7.2fx' % (name, theirs_ns, mine_ns, mine_ns / theirs_ns))


if __name__ == '__main__':
    main()
