"""``NumericIdMapper.get`` and ``StringIdMapper.get`` here and in sharedbuffers 1.2.3, same data.

    python benchmarks/mapper_get_vs_reference.py [--reference PYTHON] [--rounds 5] [--keys 200000]

Each round runs one worker process per implementation (alternating which goes first); a
worker builds both mappers from the same deterministic keys into a temporary file, maps it,
and times ``get`` over 50,000 random present keys (best of 5 passes, gc off).  Printed: the
median of the rounds in ns per lookup, and the ratio new/1.2.3 (lower is better).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.abspath(__file__)
DEFAULT_REFERENCE = os.path.join(os.environ.get('SB_BENCH_DIR', '/tmp/sb-bench'), 'ref', 'bin', 'python')


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


def run(python, count, extra_env=None, cwd=None):
    env = dict(os.environ, **(extra_env or {}))
    output = subprocess.run([python, HERE, '--worker', '--keys', str(count)], env=env, cwd=cwd, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--reference', default=DEFAULT_REFERENCE)
    parser.add_argument('--new', default=sys.executable)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--keys', type=int, default=200000)
    parser.add_argument('--worker', action='store_true')
    args = parser.parse_args()
    if args.worker:
        return worker(args.keys)
    runs = {'1.2.3': [], 'new': []}
    for round_number in range(args.rounds):
        # The reference runs outside the checkout so that it imports its own sharedbuffers.
        order = [('1.2.3', args.reference, {'PYTHONPATH': ''}, '/'), ('new', args.new, None, None)]
        if round_number % 2:
            order.reverse()
        for label, python, env, cwd in order:
            runs[label].append(run(python, args.keys, env, cwd))
    print('%-26s %10s %10s %9s' % ('lookup (ns, median)', '1.2.3', 'new', 'new/ref'))
    for key in runs['1.2.3'][0]:
        ref = statistics.median(r[key] for r in runs['1.2.3'])
        new = statistics.median(r[key] for r in runs['new'])
        print('%-26s %10.0f %10.0f %8.2fx' % (key, ref, new, new / ref))


if __name__ == '__main__':
    main()
