"""``NumericIdMapper.get`` and ``StringIdMapper.get`` here and in sharedbuffers 1.2.3, same data.

    python benchmarks/mapper_get_vs_reference.py [--reference PYTHON] [--rounds 5] [--keys 200000]

Each round runs one worker process per implementation (alternating which goes first); a
worker builds both mappers from the same deterministic keys into a temporary file, maps it,
and times ``get`` over 50,000 random present keys (best of 5 passes, gc off).  Printed: the
median of the rounds in ns per lookup, and the ratio new/1.2.3 (lower is better).
"""
import json
import os

import reference_rounds

HERE = os.path.abspath(__file__)


def worker(count):
    import gc
    import random
    import tempfile
    import time
    from sharedbuffers.mapped_struct import NumericIdMapper, StringIdMapper

    rng = random.Random(11)
    numbers = rng.sample(range(1 << 40), count)
    names = ['user-%08d' % number for number in rng.sample(range(10 ** 8), count)]
    numeric_keys = [numbers[rng.randrange(count)] for _ in range(50000)]
    string_keys = [names[rng.randrange(count)] for _ in range(50000)]
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for label, kind, items, keys in (
                ('NumericIdMapper.get_ns', NumericIdMapper, [(key, i) for i, key in enumerate(numbers)], numeric_keys),
                ('StringIdMapper.get_ns', StringIdMapper, [(key, i) for i, key in enumerate(names)], string_keys)):
            path = os.path.join(directory, label)
            with open(path, 'w+b') as f:
                kind.build(items, destfile=f)
            with open(path, 'rb') as f:
                mapper = kind.map_file(f)
                get = mapper.get
                gc.disable()
                best = float('inf')
                for _ in range(5):
                    start = time.perf_counter()
                    for key in keys:
                        get(key)
                    best = min(best, time.perf_counter() - start)
                gc.enable()
                assert get(keys[0]) is not None
                results[label] = best / len(keys) * 1e9
                del get, mapper
    print(json.dumps(results))


if __name__ == '__main__':
    reference_rounds.main(HERE, worker, 'lookup (ns, median)', [('keys', int, 200000)])
