"""The C encoders of numeric lists, tuples and sets (``_native/encoders.c``) against the Python writers.

Every value is packed twice, by a schema whose generated writer uses the C encoders and by a
twin generated with them switched off (which runs types/sequences.py and types/sets.py), and
the bytes must be identical; values the encoders do not take must come back as None.
"""
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers.mapped_struct import Schema

pytestmark = pytest.mark.native_only


class Holder:
    __slot_types__ = {'items': list, 'pair': tuple, 'members': frozenset, 'anything': object, 'label': str}
    __slots__ = tuple(__slot_types__)


def twins():
    native = Schema.from_typed_slots(Holder)
    native.writer()
    with mock.patch.object(_native, 'objects', None):
        pure = Schema.from_typed_slots(Holder)
        pure.writer()
    return native, pure


NATIVE, PURE = twins()


def holder(**attributes):
    obj = Holder.__new__(Holder)
    for name, value in attributes.items():
        setattr(obj, name, value)
    return obj


def outcome(call):
    """The packed bytes, or the error (type and message) packing raised."""
    try:
        return call()
    except Exception as error:
        return (type(error), str(error))


def pack_both(obj):
    native = outcome(lambda: NATIVE.pack(obj))
    with mock.patch.object(_native, 'objects', None):
        pure = outcome(lambda: PURE.pack(obj))
    return native, pure


ints = st.one_of(st.integers(0, 255), st.integers(-128, 127), st.integers(0, 70000), st.integers(-2**31, 2**32),
                 st.integers(-2**63, 2**64 - 1), st.integers(-2**70, 2**70))
floats = st.floats(allow_nan=True, allow_infinity=True)
int_lists = st.lists(ints, max_size=12) | st.lists(st.integers(0, 2**64 - 1), max_size=5)
mixed = st.lists(st.one_of(ints, floats, st.booleans(), st.none(), st.text(max_size=3)), max_size=5)
sequences = st.one_of(int_lists, st.lists(floats, max_size=6), mixed)
sets = st.one_of(st.frozensets(st.integers(0, 55)), st.frozensets(st.integers(0, 119)), st.frozensets(ints, max_size=8),
                 st.frozensets(floats, max_size=4), st.frozensets(st.one_of(ints, st.booleans(), st.text(max_size=2)), max_size=4))


@settings(max_examples=300, deadline=None)
@given(sequences, sets, st.text(max_size=3))
def test_struct_slots_pack_to_the_same_bytes(items, members, label):
    obj = holder(items=items, pair=tuple(items), members=members, label=label)
    native, pure = pack_both(obj)
    assert native == pure


@settings(max_examples=200, deadline=None)
@given(st.one_of(sequences, sequences.map(tuple), sets, sets.map(set)))
def test_dynamic_values_pack_to_the_same_bytes(value):
    native, pure = pack_both(holder(anything=value, label='x' * 3))
    assert native == pure


@settings(max_examples=200, deadline=None)
@given(st.one_of(sequences, sets, st.integers(), st.text()))
def test_values_outside_the_fast_cases_are_left_to_python(value):
    encoded_sequence = _native.objects.encode_sequence(value)
    encoded_set = _native.objects.encode_set(value)
    if not isinstance(value, (list, tuple)) or any(type(item) not in (int, float) for item in value):
        assert encoded_sequence is None
    if not isinstance(value, (set, frozenset)) or any(type(item) is not int for item in value):
        assert encoded_set is None


def test_long_narrow_lists_use_the_wide_header():
    value = [1] * 0xFFFFFF
    encoded = _native.objects.encode_sequence(value)
    assert encoded[:1] == b'q' and int.from_bytes(encoded[1:8], 'little') == 0xFFFFFF
    native, pure = pack_both(holder(items=value))
    assert native == pure


def test_subclasses_and_numpy_arrays_go_to_the_python_writer():
    import numpy

    class MyList(list):
        pass
    assert _native.objects.encode_sequence(MyList([1, 2])) is None
    assert _native.objects.encode_sequence(numpy.arange(3)) is None
    assert _native.objects.encode_set(numpy.arange(3)) is None
    native, pure = pack_both(holder(items=numpy.arange(5), members=numpy.array([3, 1, 3])))
    assert native == pure


def test_the_native_writers_really_call_the_c_encoders():
    """Otherwise the comparisons above would compare the Python writers with themselves."""
    native = _native.objects
    calls = []

    def counting(function):
        def wrapper(value):
            calls.append(function.__name__)
            return function(value)
        return wrapper
    with mock.patch.object(native, 'encode_sequence', counting(native.encode_sequence)), \
            mock.patch.object(native, 'encode_set', counting(native.encode_set)):
        fresh = Schema.from_typed_slots(Holder)      # generated while the counters are in place
        packed = fresh.pack(holder(items=[1, 2], members=frozenset({3}), anything=[4.5], label='x'))
    assert sorted(set(calls)) == ['encode_sequence', 'encode_set'] and calls.count('encode_sequence') >= 2
    assert packed == PURE.pack(holder(items=[1, 2], members=frozenset({3}), anything=[4.5], label='x'))
