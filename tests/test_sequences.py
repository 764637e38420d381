"""list and tuple values: representation choice, round trips, sharing (FORMAT.md §4.4)."""
import struct

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import Schema, mapped_list, mapped_object, mapped_tuple


def pack_bare(value, packer=mapped_list, size=4096):
    buffer = bytearray(size)
    end = packer.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


@pytest.mark.parametrize('items, code', [
    ([], 'B'), ([0, 255], 'B'), ([-128, 127], 'b'), ([0, 65535], 'H'), ([-1, 200], 'h'),
    ([1, 40000, -5], 'i'), ([0, 2 ** 31], 'I'), ([0, 2 ** 32], 'q'), ([-1, 2 ** 63 - 1], 'q'),
    ([0, 2 ** 64 - 1], 'Q'), ([1.5, -2.0], 'd'), ([1, 'a'], 'T'), ([True, False], 'T'), ([1, 2.5], 'T'),
])
def test_the_array_typecode_is_the_first_that_fits(items, code):
    assert pack_bare(items)[:1] == code.encode()
    assert mapped_list.unpack_from(pack_bare(items)) == items


def test_ints_that_fit_no_single_code_go_through_pointers_instead_of_failing():
    items = [-1, 2 ** 63]
    data = pack_bare(items)
    assert data[:1] == b'T'
    assert mapped_list.unpack_from(data) == items


def test_bools_stay_bools():
    value = mapped_list.unpack_from(pack_bare([True, 1, False, 0]))
    assert value == [True, 1, False, 0] and [type(x) for x in value] == [bool, int, bool, int]


def test_none_elements_are_pointer_one():
    data = pack_bare((1, None), mapped_tuple)
    assert struct.unpack_from('=ii', data, 8) == (16, 1)
    assert mapped_tuple.unpack_from(data) == (1, None)


def test_equal_elements_are_stored_once():
    data = pack_bare(['shared', 'shared', 'shared'])
    assert data.count(b'shared') == 1


@pytest.mark.parametrize('dtype, code', [
    ('int64', 'q'), ('q', 'q'), ('uint64', 'Q'), ('Q', 'Q'), ('int32', 'i'), ('uint8', 'B'), ('int16', 'h'),
    ('float64', 'd'), ('float32', 'f'),
])
def test_numpy_arrays_keep_their_dtype(dtype, code):
    array = numpy.arange(5).astype(dtype)
    data = pack_bare(array)
    assert data[:1] == code.encode()
    assert mapped_list.unpack_from(data) == array.tolist()


def test_numpy_bool_arrays_are_stored_as_bools():
    assert mapped_list.unpack_from(pack_bare(numpy.array([True, False]))) == [True, False]


def test_lists_of_sixteen_million_small_ints_use_the_wide_header():
    items = [1] * 0xFFFFFF
    buffer = bytearray(8 * 0xFFFFFF + 64)
    end = mapped_list.pack_into(items, buffer, 0)
    assert buffer[:1] == b'q' and end == 8 + 8 * 0xFFFFFF
    assert mapped_list.unpack_from(buffer, 0) == items


def test_the_long_narrow_form_is_read():
    # [B][ff ff ff][u64 length][data]: 1.x's proxied_list reader's view of the long form
    data = b'B\xff\xff\xff' + struct.pack('=Q', 3) + b'\x01\x02\x03'
    assert mapped_list.unpack_from(data) == [1, 2, 3]


def test_a_struct_slot_list_reads_back_a_fresh_list_each_time():
    schema = Schema({'items': list})
    holder = type('Holder', (), {})()
    holder.items = [1, 2]
    proxy = schema.unpack_from(schema.pack(holder))
    first = proxy.items
    first.append(99)
    assert proxy.items == [1, 2]        # 1.x's cache leaked the append into later reads


def test_lists_in_object_slots_are_rtti_e_and_tuples_t():
    buffer = bytearray(64)
    mapped_object.pack_into([1], buffer, 0)
    assert buffer[:1] == b'e' and mapped_object.unpack_from(buffer, 0) == [1]
    mapped_object.pack_into((1,), buffer, 0)
    assert buffer[:1] == b't' and mapped_object.unpack_from(buffer, 0) == (1,)


def test_a_sequence_that_contains_itself_is_a_value_error():
    # 'e' RTTI at 0 whose only element points back at its own header
    data = b'e' + bytes(7) + b'T\x01' + bytes(6) + struct.pack('=i', -8) + bytes(4)
    with pytest.raises(ValueError, match='contains itself'):
        mapped_object.unpack_from(data, 0)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.lists(children, max_size=6).map(tuple),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(values, max_size=12))
def test_nested_lists_and_tuples_round_trip(items):
    buffer = bytearray(1 << 16)
    mapped_list.pack_into(items, buffer, 3)
    assert mapped_list.unpack_from(buffer, 3) == items
