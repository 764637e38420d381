"""Indexing a proxied list of numbers through the C NumberRun (``_native/number_runs.c``) against
the Python ``__getitem__`` it stands in for.

Both must give the same number of the same type for every integer key, the same IndexError for
keys out of range, and, for a buffer that no longer holds the numbers, the Python method's error.
"""
import mmap

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers.mapped_struct import Schema, proxied_list, proxied_tuple

pytestmark = pytest.mark.native_only


class Holder:
    __slot_types__ = {'numbers': proxied_list, 'frozen': proxied_tuple}
    __slots__ = ('numbers', 'frozen')


HOLDER_SCHEMA = Schema.from_typed_slots(Holder)


def packed(numbers):
    holder = Holder()
    holder.numbers = numbers
    holder.frozen = tuple(numbers) if not isinstance(numbers, numpy.ndarray) else numbers
    return bytearray(HOLDER_SCHEMA.pack(holder))


def outcome(call):
    try:
        value = call()
        return ('value', type(value), value)
    except Exception as error:
        return ('error', type(error), str(error))


def python_getitem(items, key):
    return proxied_list.__getitem__.fallback(items, key)


def assert_indexes_alike(items, keys):
    assert type(items._numbers).__name__ == 'NumberRun'
    for key in keys:
        assert outcome(lambda: items[key]) == outcome(lambda: python_getitem(items, key)), key


# Each range of values makes the writer pick another struct code (B b H h i I q Q d).
number_lists = (st.lists(st.integers(0, 255), max_size=40) | st.lists(st.integers(-128, 127), max_size=40)
                | st.lists(st.integers(0, 65535), max_size=40) | st.lists(st.integers(-2**15, 2**15 - 1), max_size=40)
                | st.lists(st.integers(-2**31, 2**31 - 1), max_size=40)
                | st.lists(st.integers(0, 2**32 - 1), max_size=40)
                | st.lists(st.integers(-2**63, 2**63 - 1), max_size=40)
                | st.lists(st.integers(2**63, 2**64 - 1), min_size=1, max_size=40)
                | st.lists(st.floats(allow_nan=False), max_size=40))
slices = st.tuples(st.integers(-50, 50) | st.none(), st.integers(-50, 50) | st.none(),
                   st.sampled_from([None, 1, 2, 3, -1, -2, -5]))
keys = st.integers(-60, 60) | st.sampled_from([True, False, 2**63, -2**63, 2**63 - 1, 2**100, -2**100])


@settings(max_examples=200, deadline=None)
@given(number_lists, st.lists(slices, max_size=2), st.lists(keys, max_size=12))
def test_integer_keys_answer_as_the_python_method(numbers, cuts, extra):
    record = HOLDER_SCHEMA.unpack_from(packed(numbers), 0)
    for items, model in ((record.numbers, numbers), (record.frozen, tuple(numbers))):
        for start, stop, step in cuts:          # slices of slices index the same stored numbers
            items, model = items[start:stop:step], model[start:stop:step]
            assert list(items) == list(model)
        assert_indexes_alike(items, list(range(-len(model) - 2, len(model) + 2)) + extra)
        assert [items[key] for key in range(len(model))] == list(model)


def test_float32_and_every_integer_width_of_numpy_arrays():
    for dtype in ('uint8', 'int8', 'uint16', 'int16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'):
        numbers = numpy.arange(0, 40, 3).astype(dtype)
        items = HOLDER_SCHEMA.unpack_from(packed(numbers), 0).numbers
        assert_indexes_alike(items, range(-16, 16))
        assert [items[key] for key in range(len(numbers))] == numbers.tolist()


def test_lists_of_pointers_and_other_keys_run_the_python_method():
    record = HOLDER_SCHEMA.unpack_from(packed([1, 2, 3]), 0)
    mixed = proxied_list.unpack_from(bytes(_packed_mixed()), 0)
    assert mixed._numbers is None and mixed[1] == 'two' and mixed[-1] is None
    assert record.numbers[numpy.int64(1)] == 2          # not an int: the Python method
    assert list(record.numbers[1:]) == [2, 3]
    with pytest.raises(TypeError, match='range indices must be integers or slices, not str'):
        record.numbers['1']


def _packed_mixed():
    buffer = bytearray(256)
    proxied_list.pack_into([1, 'two', None], buffer, 0)
    return buffer


def test_a_shrunk_buffer_gets_the_python_methods_error():
    buffer = packed(list(range(1000)))
    items = HOLDER_SCHEMA.unpack_from(buffer, 0).numbers
    assert items[999] == 999
    del buffer[100:]
    assert_indexes_alike(items, [0, 5, 500, 999, -1])
    assert outcome(lambda: items[500])[0] == 'error'


def test_a_closed_mmap_raises_as_the_python_method():
    data = packed(list(range(300)))
    region = mmap.mmap(-1, len(data))
    region[:] = data
    items = HOLDER_SCHEMA.unpack_from(region, 0).numbers
    assert items[299] == 299
    region.close()
    assert_indexes_alike(items, [0, 299])
    assert outcome(lambda: items[0])[1] is ValueError


def test_number_runs_check_what_they_are_given():
    NumberRun = _native.objects.NumberRun
    data = bytes(range(16))
    run = NumberRun(data, 0, 'H', 0, 1, 8)
    assert len(run) == 8 and run[0] == 0x0100 and run[-1] == 0x0f0e
    with pytest.raises(IndexError):
        run[8]
    for start, step, key in ((2**62, 1, 0), (0, 2**62, 1), (0, -2**62, 2), (-1, 1, 0), (7, 1, 1), (2, -1, 3)):
        with pytest.raises(IndexError, match='outside the buffer'):   # overflowing or outside: no read
            NumberRun(data, 0, 'H', start, step, 8)[key]
    for code in ('x', '?', 's', '\u20ac'):
        with pytest.raises(ValueError, match='numeric struct code'):
            NumberRun(data, 0, code, 0, 1, 1)
    with pytest.raises(ValueError):
        NumberRun(data, 0, 'H', 0, 0, 1)
    with pytest.raises(ValueError):
        NumberRun(data, -1, 'H', 0, 1, 1)
    with pytest.raises(TypeError):
        run['a']


def test_the_lookup_takes_only_a_slot_descriptor():
    NumberRunLookup = _native.objects.NumberRunLookup
    with pytest.raises(TypeError, match='slots'):
        NumberRunLookup(len, proxied_list.__len__)
    with pytest.raises(TypeError, match='callable'):
        NumberRunLookup(None, proxied_list._numbers)
    lookup = NumberRunLookup(lambda instance, key: ('python', key), proxied_list._numbers)
    assert lookup(object(), 1) == ('python', 1)         # not a proxied list: the fallback
    assert lookup.__wrapped__(None, 2) == ('python', 2)
