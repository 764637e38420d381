"""Rounds of worker processes, this project against sharedbuffers 1.2.3: what the
``*_vs_reference.py`` scripts share.

A script runs itself with ``--worker`` (plus its own arguments) under each interpreter; the
worker prints one JSON object of timings.  Rounds alternate which implementation goes first,
and the reference runs outside the checkout, so that it imports its own sharedbuffers.
Only the standard library is used: the worker side imports this module under 1.2.3's Python too.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

DEFAULT_REFERENCE = os.path.join(os.environ.get('SB_BENCH_DIR', '/tmp/sb-bench'), 'ref', 'bin', 'python')


def main(script, worker, heading, options=()):
    """A comparison script's command line: with ``--worker``, run ``worker`` (it prints its JSON);
    else run the rounds and print the table under ``heading``.

    ``options`` are the script's own (name, type, default); their values are given to the
    worker, positionally, in both processes."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for name, kind, default in options:
        parser.add_argument('--' + name, type=kind, default=default)
    args = parser.parse_args()
    values = [getattr(args, name) for name, _, _ in options]
    if args.worker:
        return worker(*values)
    forwarded = [part for (name, _, _), value in zip(options, values) for part in ('--' + name, str(value))]
    compare(script, forwarded, args.reference, args.new, args.rounds, heading)


def add_arguments(parser):
    """The options every comparison takes: --reference, --new, --rounds, --worker."""
    parser.add_argument('--reference', default=DEFAULT_REFERENCE, help="1.2.3's interpreter")
    parser.add_argument('--new', default=sys.executable, help="this project's interpreter")
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)


def run_worker(script, python, arguments, extra_env=None, cwd=None):
    env = dict(os.environ, **(extra_env or {}))
    output = subprocess.run([python, script, '--worker'] + list(arguments), env=env, cwd=cwd, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output)


def compare(script, arguments, reference, new, rounds, heading):
    """Run the rounds and print, for each timing, the medians and the ratio new/1.2.3."""
    runs = {'1.2.3': [], 'new': []}
    for round_number in range(rounds):
        order = [('1.2.3', reference, {'PYTHONPATH': ''}, '/'), ('new', new, None, None)]
        if round_number % 2:
            order.reverse()
        for label, python, env, cwd in order:
            runs[label].append(run_worker(script, python, arguments, env, cwd))
    print('%-28s %12s %12s %9s' % (heading, '1.2.3', 'new', 'new/ref'))
    for key in runs['1.2.3'][0]:
        ref = statistics.median(r[key] for r in runs['1.2.3'])
        now = statistics.median(r[key] for r in runs['new'])
        print('%-28s %12.0f %12.0f %8.2fx' % (key, ref, now, now / ref))
