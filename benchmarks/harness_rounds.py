"""Median and best-round ratios from the shared harness's result files (``compare.py --out DIR``).

    python benchmarks/harness_rounds.py RESULT.json [RESULT.json ...] [--base ref] [--system new]
        [--only e_rand_ns,g_lookup_ns,...]

``compare.py`` reports, for each workload, the median of a system's per-round medians.  On a
shared, noisy machine a burst of load in one round moves that median, and it moves the two
systems differently because their rounds run at different times.  This prints, per workload and
file, the median ratio the harness reports and the ratio of the two systems' best rounds (the
least disturbed measurement each system got), so a note can quote both with their source.
Only the standard library is used.
"""
import argparse
import json
import statistics

# Workloads where lower is better and a round's value is a number (sizes are left out: they do
# not vary between rounds).
DEFAULT_WORKLOADS = (
    'a_pack_ns', 'b_unpack1_ns', 'c_readall_ns', 'd_build_s', 'e_rand_ns', 'f_scan_ns', 'g_build_s',
    'g_lookup_ns', 'h_open_array_ms', 'h_open_map_ms', 'i_pss_mb_total')


def round_values(result, system, workload):
    """The workload's value in each round of ``system`` (rounds that did not measure it are left out)."""
    values = []
    for round_result in result['rounds'].get(system, ()):
        value = round_result.get('results', {}).get(workload)
        if isinstance(value, (int, float)):
            values.append(value)
    return values


def ratios(result, workload, system, base):
    """(median ratio, best-round ratio, rounds of system, rounds of base), or None if unmeasured."""
    mine, theirs = round_values(result, system, workload), round_values(result, base, workload)
    if not mine or not theirs:
        return None
    return statistics.median(mine) / statistics.median(theirs), min(mine) / min(theirs), mine, theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', nargs='+', help='JSON files written by compare.py')
    parser.add_argument('--system', default='new', help='label of the system measured (default: new)')
    parser.add_argument('--base', default='ref', help='label of the baseline (default: ref)')
    parser.add_argument('--only', help='comma-separated workloads (default: the main ones)')
    args = parser.parse_args()
    workloads = args.only.split(',') if args.only else DEFAULT_WORKLOADS
    print('%-18s %-28s %8s %8s   %s' % ('workload', 'file', 'median', 'best', 'best rounds (%s vs %s)'
                                        % (args.system, args.base)))
    for workload in workloads:
        for path in args.results:
            with open(path) as f:
                found = ratios(json.load(f), workload, args.system, args.base)
            if found is None:
                continue
            median_ratio, best_ratio, mine, theirs = found
            print('%-18s %-28s %7.2fx %7.2fx   %.4g vs %.4g' % (
                workload, path.rsplit('/', 1)[-1], median_ratio, best_ratio, min(mine), min(theirs)))


if __name__ == '__main__':
    main()
