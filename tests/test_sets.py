"""frozenset and set values: bitmaps, sorted arrays, hash-ordered tables (FORMAT.md §4.5)."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import Schema, _stable_hash, mapped_frozenset, mapped_list, mapped_object


def pack_bare(value):
    buffer = bytearray(4096)
    end = mapped_frozenset.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


@pytest.mark.parametrize('value, encoded', [
    (frozenset(), '6d 00 00 00 00 00 00 00'),
    ({1, 7, 20}, '6d 82 00 10 00 00 00 00'),
    ({0, 55}, '6d 01 00 00 00 00 00 80'),
    ({56}, '4d 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00'),
    ({119}, '4d 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80'),
    ({120}, '42 01 00 00 78 00 00 00'),
    ({1, 1875, 7, 20, 66}, '48 05 00 00 01 00 07 00 14 00 42 00 53 07 00 00'),
    ({-1, 5}, '62 02 00 00 ff 05 00 00'),
])
def test_the_documented_encodings(value, encoded):
    assert pack_bare(value).hex(' ') == encoded
    assert mapped_frozenset.unpack_from(pack_bare(value)) == frozenset(value)


def test_mixed_values_are_ordered_by_stable_hash():
    value = {'foobar', None, 'barbaz', 7, (1, 2)}
    data = pack_bare(value)
    assert data[:1] == b'T'
    decoded = mapped_frozenset.unpack_from(data)
    assert decoded == frozenset(value)


def test_sets_read_back_as_frozensets():
    schema = Schema({'tags': set})
    holder = type('Holder', (), {})()
    holder.tags = {3, 1}
    assert schema.unpack_from(schema.pack(holder)).tags == frozenset({1, 3})


def test_numpy_arrays_are_stored_as_their_unique_values():
    assert mapped_frozenset.unpack_from(pack_bare(numpy.array([5, 3, 5, 1]))) == frozenset({1, 3, 5})
    assert mapped_frozenset.unpack_from(pack_bare(numpy.array([500, 3, 500]))) == frozenset({3, 500})


def test_sets_in_object_slots_are_rtti_z():
    buffer = bytearray(64)
    mapped_object.pack_into(frozenset({2}), buffer, 0)
    assert buffer[:1] == b'Z' and mapped_object.unpack_from(buffer, 0) == frozenset({2})


elements = st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.text(max_size=10) | \
    st.binary(max_size=10) | st.floats(allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.frozensets(elements, max_size=15))
def test_any_set_of_hashable_values_round_trips(value):
    assert mapped_frozenset.unpack_from(pack_bare(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.frozensets(st.text(max_size=8) | st.integers(-1000, 1000), min_size=2, max_size=15))
def test_pointer_tables_are_sorted_by_stable_hash(value):
    data = pack_bare(value)
    if data[:1] in (b'm', b'M'):                       # small ints: a bitmap, no order to check
        assert mapped_frozenset.unpack_from(data) == value
        return
    stored_order = mapped_list.unpack_from(data)       # the same bytes, read as a sequence
    assert frozenset(stored_order) == value
    if data[:1] == b'T':
        hashes = [_stable_hash(item) for item in stored_order]
        assert hashes == sorted(hashes)
    else:
        assert stored_order == sorted(stored_order)
