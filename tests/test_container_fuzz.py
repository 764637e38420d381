"""Damaged arrays, id mappers and mappings fail cleanly, checked out of process (container_fuzz.py).

Each seed is a batch of damaged containers of every kind in a child interpreter: a crash in a
reader would be a signal in the child's exit status instead of the end of the test run.
The suite runs twice (native and SHAREDBUFFERS_PURE=1); the children inherit the mode.
"""
import pytest

from container_fuzz import run_child


@pytest.mark.parametrize('seed', [1, 2, 3, 4])
def test_damaged_containers_give_only_clean_errors(seed):
    status, lines = run_child(seed)
    assert status == 0, 'seed %d failed:\n%s' % (seed, '\n'.join(lines))


def test_damaged_containers_give_only_clean_errors_under_python_dash_o():
    # The bounds checks are not asserts: -O must not remove any of them.
    status, lines = run_child(5, optimize=True)
    assert status == 0, 'seed 5 under -O failed:\n%s' % '\n'.join(lines)
