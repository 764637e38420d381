"""``_stable_hash``: 1.x's values, and the same value in every process (FORMAT.md §7)."""
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import _stable_hash

M64 = (1 << 64) - 1


@pytest.mark.parametrize('value, expected', [
    (None, 0x1), ('a', 0xd24ec4f1a98c6e5b), (b'a', 0xd24ec4f1a98c6e5b), (1, 0x1), (0, 0x1), (True, 0x1),
    (False, 0x1), (-1, 0xffffffffffffffff), (1.5, 0xbfffffffffdf), (('a', 35), 0x027fd0cbb50e1b03),
    (frozenset({1, 2}), 0xe1acbbd5b3f5dde5), (2.0 ** 64, 0x7ffffffff7df), (float('nan'), 0x1fffffffffffe),
    (1.0, 0x1), (-0.0, 0x1), (1 << 100, 0x1), (102, 0x66),
])
def test_values_match_1x(value, expected):
    assert _stable_hash(value) == expected


def test_an_integral_float_hashes_like_the_int():
    assert _stable_hash(12345.0) == _stable_hash(12345)
    assert _stable_hash(-7.0) == _stable_hash(-7)


def test_the_hash_is_never_zero():
    assert _stable_hash(1 << 64) == 1


@pytest.mark.parametrize('value', [[1], {'a': 1}, object(), 1j])
def test_unsupported_types_raise_type_error(value):
    with pytest.raises(TypeError):
        _stable_hash(value)


def _hash_in_a_fresh_process(expression, seed):
    code = 'from sharedbuffers.mapped_struct import _stable_hash; print(_stable_hash(%s))' % expression
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    return int(subprocess.run([sys.executable, '-c', code], env=env, check=True, capture_output=True,
                              text=True).stdout)


def test_a_frozenset_of_strings_hashes_the_same_in_every_process():
    # 1.x folded elements in iteration order, which depends on the string hash seed, so a
    # frozenset key written by one process was usually not found by another.
    expression = "frozenset({'alpha', 'beta', 'gamma', 'delta', ('t', 1)})"
    values = {_hash_in_a_fresh_process(expression, seed) for seed in (1, 2, 3, 4)}
    assert len(values) == 1
    assert values == {_stable_hash(frozenset({'alpha', 'beta', 'gamma', 'delta', ('t', 1)}))}


def test_a_frozenset_hash_does_not_depend_on_construction_order():
    words = ['w%d' % i for i in range(50)]
    assert _stable_hash(frozenset(words)) == _stable_hash(frozenset(reversed(words)))


def test_small_int_frozensets_keep_their_1x_values():
    assert _stable_hash(frozenset({1, 2})) == 0xe1acbbd5b3f5dde5
    assert _stable_hash(frozenset({3, 1, 2})) == _stable_hash(frozenset({1, 2, 3}))


# -- the C function (_native/stable_hash.c) against the Python one -------------------------

class Text(str):
    pass


class Number(int):
    pass


def hash_outcome(function, key):
    try:
        return ('value', function(key))
    except Exception as error:
        return ('error', type(error), str(error))


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


keys = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
              st.sampled_from(['\ud800', 'a\udfff', Text('sub'), Number(5), 1j, -0.0, 2.0 ** 63, -2.0 ** 63])),
    lambda inner: st.lists(inner, max_size=4).map(tuple) | st.frozensets(inner.filter(_hashable), max_size=3)
    | st.lists(inner, max_size=2),
    max_leaves=12)


@pytest.mark.native_only
@settings(max_examples=500, deadline=None)
@given(keys)
def test_the_c_hash_gives_the_python_value_or_error(key):
    from sharedbuffers import stable_hash as module
    assert module.stable_hash is not module.stable_hash_in_python      # the C function is in use
    assert hash_outcome(module.stable_hash, key) == hash_outcome(module.stable_hash_in_python, key)


@pytest.mark.native_only
def test_tuples_nested_deeper_than_the_c_limit_hash_through_python():
    from sharedbuffers import stable_hash as module
    key = 'leaf'
    for depth in range(100):
        key = (key, depth)
    assert module.stable_hash(key) == module.stable_hash_in_python(key)
