"""Iterating id mappers here and in sharedbuffers 1.2.3, same data: ``items()``, ``iteritems()``
(1.x's default: in stored-key order for string mappers), ``keys()`` and ``values()``.

    python benchmarks/mapper_iteration_vs_reference.py [--reference PYTHON] [--rounds 5]

Each round runs one worker process per implementation (alternating which goes first); a
worker builds a string and a numeric mapper of 20,000 keys into a temporary file, maps them,
and times each way of iterating to the end (``list(...)``, best of 7 passes of 5).  Printed: the
median of the rounds in µs, and the ratio new/1.2.3 (lower is better).
"""
import json
import os

import reference_rounds

HERE = os.path.abspath(__file__)


def worker():
    import random
    import tempfile
    import timeit
    from sharedbuffers.mapped_struct import NumericIdMapper, StringIdMapper

    rng = random.Random(3)
    names = ['user-%08d' % number for number in rng.sample(range(10 ** 8), 20000)]
    numbers = rng.sample(range(1 << 40), 20000)
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for label, kind, keys in (('string', StringIdMapper, names), ('numeric', NumericIdMapper, numbers)):
            path = os.path.join(directory, label)
            with open(path, 'w+b') as output:
                kind.build([(key, number) for number, key in enumerate(keys)], destfile=output)
            with open(path, 'rb') as opened:
                mapper = kind.map_file(opened)
                for name in ('items', 'iteritems', 'keys', 'values'):
                    method = getattr(mapper, name)
                    assert len(list(method())) == len(keys)
                    best = min(timeit.repeat(lambda: list(method()), number=5, repeat=7)) / 5
                    results['%s.%s_us' % (label, name)] = best * 1e6
                del method, mapper
    print(json.dumps(results))


if __name__ == '__main__':
    reference_rounds.main(HERE, worker, 'iteration (µs, median)')
