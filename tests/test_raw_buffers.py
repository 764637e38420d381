"""memoryview values: raw bytes, read back as zero-copy views (FORMAT.md §4.3)."""
import array

import numpy
import pytest

from sharedbuffers.mapped_struct import Schema, mapped_object, proxied_buffer


class Holder:
    def __init__(self, **attributes):
        self.__dict__.update(attributes)


SCHEMA = Schema({'raw': memoryview})


def test_the_documented_encoding():
    buffer = bytearray(32)
    end = proxied_buffer.pack_into(memoryview(b'barfoo'), buffer, 0)
    assert bytes(buffer[:end]).hex(' ') == '06 00 00 00 00 00 00 00 62 61 72 66 6f 6f'


def test_a_view_over_bytes_is_read_only_and_shares_memory():
    data = SCHEMA.pack(Holder(raw=b'\x01\x02\x03'))
    view = SCHEMA.unpack_from(data).raw
    assert view.readonly and bytes(view) == b'\x01\x02\x03'
    assert view.obj is data


def test_a_view_over_a_bytearray_writes_into_it():
    buffer = bytearray(SCHEMA.pack(Holder(raw=b'\x01\x02\x03')))
    view = SCHEMA.unpack_from(buffer).raw
    view[0] = 0xFF
    del view
    assert bytes(SCHEMA.unpack_from(bytes(buffer)).raw) == b'\xff\x02\x03'


@pytest.mark.parametrize('value', [bytearray(b'xy'), array.array('h', [1, 2]), numpy.arange(3, dtype='u1')],
                         ids=['bytearray', 'array', 'ndarray'])
def test_any_buffer_protocol_object_is_stored_as_its_bytes(value):
    data = SCHEMA.pack(Holder(raw=value))
    assert bytes(SCHEMA.unpack_from(data).raw) == bytes(memoryview(value))


def test_an_object_without_the_buffer_protocol_is_a_type_error_naming_the_attribute():
    with pytest.raises(TypeError, match='Struct.raw: .*does not support the buffer protocol'):
        SCHEMA.pack(Holder(raw=[1, 2]))


def test_memoryviews_in_object_slots_are_rtti_r():
    buffer = bytearray(64)
    mapped_object.pack_into(memoryview(b'ab'), buffer, 0)
    assert buffer[:1] == b'r' and bytes(mapped_object.unpack_from(buffer, 0)) == b'ab'
