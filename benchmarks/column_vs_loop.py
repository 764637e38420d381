"""Sum one field of every record: this package's vectorized ``column()`` vs a ``for p in arr`` loop.

Issue 4 compares ``arr.column('id').sum()`` with sharedbuffers 1.2.3's ``sum(p.id for p in arr)``
over the same file.  Run it under both interpreters on one file (built once, by whichever runs
first; 1.2.3 reads files this package writes):

    .venv/bin/python benchmarks/column_vs_loop.py /tmp/records.sba column
    (cd / && PYTHONPATH= $SB_BENCH_DIR/ref/bin/python /work/main/benchmarks/column_vs_loop.py /tmp/records.sba loop)

Records are ``../shared/bench/benchdata.py``'s (``--bench-dir`` if it is elsewhere).
"""
import argparse
import os
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('path')
    parser.add_argument('mode', choices=['column', 'loop'])
    parser.add_argument('--n', type=int, default=200000)
    parser.add_argument('--bench-dir', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            '..', '..', 'shared', 'bench'))
    args = parser.parse_args()
    sys.path.insert(0, args.bench_dir)
    from benchdata import Rec, Sub, gen_records
    from sharedbuffers import mapped_struct as ms
    Sub.__schema__ = ms.Schema.from_typed_slots(Sub)
    ms.mapped_object.register_schema(Sub, Sub.__schema__, 'P')

    class RecArray(ms.MappedArrayProxyBase):
        schema = ms.Schema.from_typed_slots(Rec)

    if not os.path.exists(args.path):
        with open(args.path, 'w+b') as f:
            RecArray.build(gen_records(args.n), destfile=f, return_mapper=False)
    with open(args.path, 'rb') as f:
        array = RecArray.map_file(f)
    best = None
    for _ in range(3):
        started = time.perf_counter()
        total = int(array.column('id').sum()) if args.mode == 'column' else sum(p.id for p in array)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    print('%s: %d records, sum %d, best of 3: %.1f ms' % (args.mode, len(array), total, best * 1e3))


if __name__ == '__main__':
    main()
