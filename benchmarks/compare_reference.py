"""Run ``struct_ops.py`` under sharedbuffers 1.2.3 and under this package, interleaved; print ratios.

    python benchmarks/compare_reference.py [--reference PYTHON] [--rounds 3]

The reference interpreter defaults to the venv built by ``../shared/bench/reference-venv.sh``
(``$SB_BENCH_DIR/ref/bin/python``).  Each round runs both implementations once, in alternating
order; the median of the rounds is reported, and the ratio new/reference (lower is better).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REFERENCE = os.path.join(os.environ.get('SB_BENCH_DIR', '/tmp/sb-bench'), 'ref', 'bin', 'python')


def run(python, extra_env=None, cwd=None):
    env = dict(os.environ, **(extra_env or {}))
    output = subprocess.run([python, os.path.join(HERE, 'struct_ops.py')], env=env, cwd=cwd,
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--reference', default=DEFAULT_REFERENCE)
    parser.add_argument('--new', default=sys.executable)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    # Run the reference outside the checkout so it imports its own sharedbuffers.
    runs = {'1.2.3': [], 'new': [], 'new-pure': []}
    for round_number in range(args.rounds):
        order = [('1.2.3', args.reference, {'PYTHONPATH': ''}, '/'), ('new', args.new, None, None),
                 ('new-pure', args.new, {'SHAREDBUFFERS_PURE': '1'}, None)]
        if round_number % 2:
            order.reverse()
        for label, python, env, cwd in order:
            runs[label].append(run(python, env, cwd))
    keys = [key for key in runs['1.2.3'][0] if key.endswith('_ns')]
    print('%-28s %12s %12s %12s %9s %9s' % ('operation (ns, median)', '1.2.3', 'new', 'new-pure', 'new/ref', 'pure/ref'))
    for key in keys:
        ref = statistics.median(r[key] for r in runs['1.2.3'])
        new = statistics.median(r[key] for r in runs['new'])
        pure = statistics.median(r[key] for r in runs['new-pure'])
        print('%-28s %12.0f %12.0f %12.0f %8.2fx %8.2fx' % (key, ref, new, pure, new / ref, pure / ref))


if __name__ == '__main__':
    main()
