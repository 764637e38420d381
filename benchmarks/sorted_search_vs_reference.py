"""``bsearch``, ``hinted_bsearch``, ``sorted_contains`` and ``index_merge`` here and in sharedbuffers
1.2.3, same data.

    python benchmarks/sorted_search_vs_reference.py [--reference PYTHON] [--rounds 5]

Each round runs one worker process per implementation (alternating which goes first).  The
worker searches a sorted uint64 array of a million elements (best of 7 ``timeit`` passes) and
merges two 500,000-row (key, value) indexes.  Printed: the median of the rounds in ns per call
(µs for the merge), and the ratio new/1.2.3 (lower is better).
"""
import json
import os

import reference_rounds

HERE = os.path.abspath(__file__)


def worker():
    import timeit
    import numpy
    from sharedbuffers.mapped_struct import bsearch, hinted_bsearch, index_merge, sorted_contains

    array = numpy.arange(0, 3_000_000, 3, dtype='uint64')
    keys = numpy.arange(0, 2_000_000, 2, dtype='uint64')
    first = numpy.stack([keys[0::2], keys[0::2]], axis=1)
    second = numpy.stack([keys[1::2], keys[1::2]], axis=1)
    dest = numpy.empty((len(first) + len(second), 2), 'uint64')

    def best(call, number):
        return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e9

    results = {
        'bsearch_ns': best(lambda: bsearch(array, 1_500_001), 20000),
        'hinted_bsearch_near_ns': best(lambda: hinted_bsearch(array, 1_500_001, 499_990), 20000),
        'sorted_contains_ns': best(lambda: sorted_contains(array, 1_500_000), 20000),
        'index_merge_1M_us': best(lambda: index_merge(first, second, dest), 3) / 1e3,
    }
    assert bsearch(array, 1_500_001) == 500_001 and sorted_contains(array, 1_500_000)
    print(json.dumps(results))


if __name__ == '__main__':
    reference_rounds.main(HERE, worker, 'operation (median)')
