"""bsearch, sorted_contains, their hinted forms and index_merge (``sorted_search.py``).

Each answer is checked against a model that counts, with exact Python comparisons, the elements
that sort before the value in numpy's order (NaN last); 1.2.3, where it is exact, must agree.
"""
import json
import math
import os
import subprocess

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from conftest import reference_python
from sharedbuffers.mapped_struct import bsearch, hinted_bsearch, hinted_sorted_contains, index_merge, sorted_contains

INTEGER_DTYPES = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']
FLOAT_DTYPES = ['float32', 'float64']


def as_python(element):
    return float(element) if isinstance(element, numpy.floating) else int(element)


def model_position(array, x):
    """bisect_left in numpy's order, with exact comparisons of the Python values."""
    x = float(x) if isinstance(x, (float, numpy.floating)) else int(x)
    count = 0
    for element in map(as_python, array):
        if isinstance(element, float) and math.isnan(element):
            continue                                    # NaN sorts after everything
        if (isinstance(x, float) and math.isnan(x)) or element < x:
            count += 1
    return count


def model_contains(array, x):
    return any(as_python(element) == x for element in array)


@st.composite
def sorted_arrays(draw):
    dtype = numpy.dtype(draw(st.sampled_from(INTEGER_DTYPES + FLOAT_DTYPES)))
    if dtype.kind == 'f':
        width = 32 if dtype.itemsize == 4 else 64
        elements = st.floats(width=width, allow_nan=False)
        values = draw(st.lists(elements, max_size=40)) + [math.nan] * draw(st.integers(0, 2))
    else:
        info = numpy.iinfo(dtype)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), max_size=40))
    array = numpy.sort(numpy.array(values, dtype))
    view = draw(st.sampled_from(['plain', 'swapped', 'strided', 'reversed']))   # every view searches alike
    if view == 'swapped':
        array = array.astype(array.dtype.newbyteorder())
    elif view == 'strided':
        array = numpy.repeat(array, 2)[::2]
    elif view == 'reversed':                            # a negative stride
        array = array[::-1].copy()[::-1]
    return array


def probes(array):
    near = [as_python(element) for element in array[:10]]
    nearby = [value + delta for value in near if not (isinstance(value, float) and not math.isfinite(value))
              for delta in (-1, 1, 0.5, -0.5)]
    return st.sampled_from(near + nearby + [0, -1, 2**63, 2**64, -2**63 - 1, 10**30, math.nan, math.inf, -math.inf,
                                            0.1, 1e300, -1e300, 3.5]) | st.integers(-2**70, 2**70) | st.floats()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_positions_and_membership_match_the_model(data):
    array = data.draw(sorted_arrays())
    for _ in range(5):
        x = data.draw(probes(array))
        hint = data.draw(st.integers(0, len(array) + 3))
        expected = model_position(array, x)
        assert bsearch(array, x) == expected, (array, x)
        assert hinted_bsearch(array, x, hint) == expected, (array, x, hint)
        contains = model_contains(array, x)
        assert sorted_contains(array, x) == contains
        assert hinted_sorted_contains(array, x, hint) == contains


@pytest.mark.native_only
@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_c_search_answers_as_the_python_code(data):
    from unittest import mock
    from sharedbuffers import _native
    array = data.draw(sorted_arrays())
    items = [data.draw(probes(array)) for _ in range(4)]
    hints = [data.draw(st.integers(0, len(array) + 3)) for _ in items]

    def answers():
        return [(bsearch(array, x), hinted_bsearch(array, x, hint), sorted_contains(array, x),
                 hinted_sorted_contains(array, x, hint)) for x, hint in zip(items, hints)]
    native = answers()
    with mock.patch.object(_native, 'objects', None):
        assert answers() == native


def test_numpy_scalars_and_bools_are_numbers():
    array = numpy.array([1, 3, 3, 3, 7, 9], 'int64')
    assert [bsearch(array, x) for x in (numpy.int32(3), numpy.uint64(3), numpy.float32(3.5), True)] == [1, 1, 4, 0]
    assert bsearch(array, 3.5) == 4                     # 1.x truncated 3.5 to 3 and answered 1
    floats = numpy.array([1.0, numpy.inf], 'float32')
    assert not sorted_contains(floats, 1e300) and not hinted_sorted_contains(floats, 10**40, 0)
    assert sorted_contains(floats, math.inf) and sorted_contains(floats, 1)


def test_long_gallops_from_a_far_hint_find_the_answer():
    array = numpy.arange(0, 3_000_000, 3, dtype='uint32')
    for x, hint in ((5, 999_999), (2_999_998, 0), (1_500_000, 400_000), (1_500_001, 500_001)):
        assert hinted_bsearch(array, x, hint) == bsearch(array, x) == (x + 2) // 3     # multiples of 3 below x


def test_what_cannot_be_searched_is_refused():
    for dtype in ('complex64', 'complex128', 'bool', 'object', 'float16'):
        with pytest.raises(NotImplementedError, match='Unsupported array type'):
            bsearch(numpy.zeros(3, dtype), 0)
    with pytest.raises(TypeError, match='bisect'):
        bsearch([1, 2, 3], 2)
    with pytest.raises(ValueError, match='1-D'):
        bsearch(numpy.zeros((2, 2)), 0)
    for key in ('a', None, 1j, b'1'):
        with pytest.raises(TypeError, match='an int or a float'):
            sorted_contains(numpy.arange(3), key)
    for hint in (-1, -2**70, numpy.int64(-3)):
        with pytest.raises(OverflowError, match='negative'):
            hinted_bsearch(numpy.arange(3), 1, hint)
        with pytest.raises(OverflowError, match='negative'):
            hinted_sorted_contains(numpy.arange(3), 1, hint)
    for hint in (2**70, numpy.uint64(2**63), True, 10**3):     # past the end counts as the end
        assert hinted_bsearch(numpy.arange(0, 30, 3), 7, hint) == 3 and hinted_sorted_contains(numpy.arange(5), 4, hint)
    with pytest.raises(TypeError):
        hinted_bsearch(numpy.arange(3), 1, 1.5)
    assert bsearch(memoryview(numpy.arange(5, dtype='int16')), 3) == 3     # buffers are viewed, not copied
    assert bsearch(numpy.array([], 'uint64'), 5) == 0 == hinted_bsearch(numpy.array([], 'uint64'), 5, 3)


# -- index_merge ------------------------------------------------------------------------------

@st.composite
def index_pairs(draw):
    dtype = draw(st.sampled_from(['uint64', 'uint32', 'int64', 'int32', 'uint16', 'float64']))
    rows = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 5)), max_size=30)
    first, second = sorted(draw(rows)), sorted(draw(rows))
    return (numpy.array(first, dtype).reshape(-1, 2), numpy.array(second, dtype).reshape(-1, 2))


@settings(max_examples=200, deadline=None)
@given(index_pairs(), st.integers(0, 3))
def test_index_merge_gives_the_rows_of_both_in_order(pair, spare):
    first, second = pair
    dest = numpy.full((len(first) + len(second) + spare, 2), 99, first.dtype)
    assert index_merge(first, second, dest) == len(first) + len(second)
    expected = sorted(first.tolist() + second.tolist())
    assert dest[:len(expected)].tolist() == expected
    assert (dest[len(expected):] == 99).all()


@pytest.mark.native_only
@settings(max_examples=100, deadline=None)
@given(index_pairs(), st.sampled_from(['C', 'F', 'swapped']), st.booleans())
def test_the_c_merge_answers_as_the_python_code(pair, layout, shuffle):
    from unittest import mock
    from sharedbuffers import _native
    first, second = pair
    if shuffle and len(first) > 1:                     # unsorted input: the same ValueError
        first = first[::-1].copy()
    if layout == 'F':
        first, second = numpy.asfortranarray(first), numpy.asfortranarray(second)
    elif layout == 'swapped':
        first, second = (index.astype(index.dtype.newbyteorder()) for index in (first, second))

    def merged():
        dest = numpy.zeros((len(first) + len(second), 2), first.dtype)
        try:
            return index_merge(first, second, dest), dest.tolist()
        except ValueError as error:
            return str(error)
    native = merged()
    with mock.patch.object(_native, 'objects', None):
        assert merged() == native


def test_float_indexes_merge_in_numpys_order_with_nan_last():
    first = numpy.array([[0.0, 1.0], [2.5, numpy.nan], [numpy.nan, 0.0]])
    second = numpy.array([[-1.0, 0.0], [2.5, 3.0], [numpy.nan, numpy.nan]])
    dest = numpy.zeros((6, 2))
    assert index_merge(first, second, dest) == 6
    assert numpy.array_equal(dest, [[-1, 0], [0, 1], [2.5, 3], [2.5, numpy.nan], [numpy.nan, 0],
                                    [numpy.nan, numpy.nan]], equal_nan=True)


def test_unsorted_indexes_are_refused_naming_the_row():
    good = numpy.array([[1, 1], [2, 0]], 'uint64')
    with pytest.raises(ValueError, match='index2 is not sorted: row 2 sorts before row 1'):
        index_merge(good, numpy.array([[0, 0], [3, 5], [3, 4]], 'uint64'), numpy.zeros((5, 2), 'uint64'))
    with pytest.raises(ValueError, match='index1 is not sorted: row 1 sorts before row 0'):
        index_merge(good[::-1].copy(), good, numpy.zeros((4, 2), 'uint64'))


def test_index_merge_refuses_what_1x_refused_and_a_short_dest():
    first = numpy.array([[1, 10], [5, 50]], 'uint64')
    second = numpy.array([[2, 20]], 'uint64')
    with pytest.raises(NotImplementedError, match='overlap'):
        index_merge(first, second, first)
    room = numpy.zeros((6, 2), 'uint64')
    with pytest.raises(NotImplementedError, match='overlap'):
        index_merge(room[:2], second, room[1:])
    with pytest.raises(ValueError, match='Incompatible'):
        index_merge(first, second.astype('uint32'), numpy.zeros((3, 2), 'uint64'))
    with pytest.raises(ValueError, match='N x 2'):
        index_merge(numpy.zeros((2, 3), 'uint64'), numpy.zeros((2, 3), 'uint64'), numpy.zeros((4, 3), 'uint64'))
    with pytest.raises(ValueError, match='two-dimensional'):
        index_merge(numpy.zeros(4, 'uint64'), numpy.zeros(4, 'uint64'), numpy.zeros(8, 'uint64'))
    with pytest.raises(ValueError, match='merging needs 3'):     # 1.x wrote 2 rows and said so
        index_merge(first, second, numpy.zeros((2, 2), 'uint64'))
    with pytest.raises(TypeError, match='numpy arrays'):
        index_merge([[1, 2]], [[3, 4]], numpy.zeros((2, 2), 'uint64'))


REFERENCE = reference_python()


@pytest.mark.skipif(REFERENCE is None, reason='the sharedbuffers 1.2.3 reference venv is not built')
def test_sharedbuffers_1_2_3_gives_the_same_positions_for_integer_keys():
    rng = numpy.random.default_rng(5)
    cases = []
    for dtype in INTEGER_DTYPES + FLOAT_DTYPES:
        info = numpy.iinfo(dtype) if dtype in INTEGER_DTYPES else None
        low, high = (int(info.min), int(info.max)) if info else (-1000, 1000)
        values = numpy.sort(rng.integers(max(low, -10**6), min(high, 10**6), 50, endpoint=True)).astype(dtype)
        keys = [int(v) for v in values[::7]] + [int(v) + 1 for v in values[::5]] + [low, high]
        if info is None or info.min < 0:
            keys.append(-5)
        cases.append((dtype, values.tolist(), keys, [k % 50 for k in range(len(keys))]))
    script = '''
import json, sys
import numpy
from sharedbuffers.mapped_struct import bsearch, hinted_bsearch, sorted_contains
out = []
for dtype, values, keys, hints in json.load(sys.stdin):
    array = numpy.array(values, dtype)
    out.append([[bsearch(array, k), hinted_bsearch(array, k, h), bool(sorted_contains(array, k))]
                for k, h in zip(keys, hints)])
print(json.dumps(out))
'''
    result = subprocess.run([REFERENCE, '-c', script], input=json.dumps(cases), capture_output=True, text=True,
                            cwd='/', env=dict(os.environ, PYTHONPATH=''))
    assert result.returncode == 0, result.stderr
    theirs = json.loads(result.stdout)
    ours = [[[bsearch(numpy.array(values, dtype), k), hinted_bsearch(numpy.array(values, dtype), k, h),
              sorted_contains(numpy.array(values, dtype), k)] for k, h in zip(keys, hints)]
            for dtype, values, keys, hints in cases]
    assert ours == theirs
