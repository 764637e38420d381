"""numpy arrays: dtype descriptors, shapes, zero-copy reads (FORMAT.md §4.9)."""
import numpy
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as numpy_strategies

from sharedbuffers.mapped_struct import Schema, mapped_object, proxied_ndarray


def pack_bare(array):
    buffer = bytearray(1 << 16)
    end = proxied_ndarray.pack_into(array, buffer, 0)
    return bytes(buffer[:end])


def test_the_documented_int64_encoding():
    data = pack_bare(numpy.arange(10))
    assert data[:24].hex(' ') == '10 00 00 00 00 00 00 00 18 00 00 00 00 00 00 00 62 01 00 00 00 00 00 00'
    assert data[24:32].hex(' ') == '50 00 00 00 00 00 00 00'


def test_a_two_dimensional_array_stores_its_shape():
    data = pack_bare(numpy.array([[1, 2, 3], [5, 4, 3]], numpy.int16))
    assert data[:32].hex(' ') == ('18 00 00 00 00 00 00 00 20 00 00 00 00 00 00 00 '
                                  '42 02 00 00 02 03 00 00 62 05 00 00 00 00 00 00')


def test_a_non_standard_dtype_is_stored_by_name():
    data = pack_bare(numpy.array([1.5, 2.5], '>f8'))
    assert data[16:29].hex(' ') == '75 00 00 00 00 00 00 00 03 00 3e 66 38'


@pytest.mark.parametrize('array', [
    numpy.array(5.0), numpy.zeros((0, 3), 'i4'), numpy.array([], 'f8'), numpy.arange(24).reshape(2, 3, 4),
    numpy.array([True, False]), numpy.array([1 + 2j]), numpy.array([(1, 2.5)], dtype=[('a', 'i4'), ('b', 'f8')]),
    numpy.array(['ab', 'c'], 'U2'), numpy.arange(10)[::3],
], ids=['0-d', 'empty-2d', 'empty', '3-d', 'bool', 'complex', 'structured', 'unicode', 'strided'])
def test_arrays_round_trip(array):
    decoded = proxied_ndarray.unpack_from(pack_bare(array))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    assert numpy.array_equal(decoded, array)


def test_reads_are_zero_copy_and_writable_only_over_a_writable_buffer():
    schema = Schema({'values': numpy.ndarray})
    holder = type('Holder', (), {})()
    holder.values = numpy.arange(4, dtype='i8')
    data = schema.pack(holder)
    assert not schema.unpack_from(data).values.flags.writeable
    buffer = bytearray(data)
    view = schema.unpack_from(buffer).values
    view[0] = 99
    assert schema.unpack_from(bytes(buffer)).values[0] == 99


def test_object_arrays_are_refused():
    with pytest.raises(TypeError, match='Python objects'):
        pack_bare(numpy.array([object()]))


def test_data_that_does_not_match_the_shape_is_a_value_error():
    data = bytearray(pack_bare(numpy.arange(6).reshape(2, 3)))
    length_at = 32      # header 16, shape sequence 8, dtype RTTI 8
    assert data[length_at] == 48
    data[length_at] = 40
    with pytest.raises(ValueError, match='need 48'):
        proxied_ndarray.unpack_from(bytes(data))


def test_data_that_is_not_a_whole_number_of_items_is_a_value_error():
    data = bytearray(pack_bare(numpy.arange(4)))
    data[24] = 31       # 31 bytes of int64 values
    with pytest.raises(ValueError, match='need 24'):
        proxied_ndarray.unpack_from(bytes(data))


def test_arrays_in_object_slots_are_rtti_n():
    buffer = bytearray(256)
    mapped_object.pack_into(numpy.arange(3, dtype='u2'), buffer, 0)
    assert buffer[:1] == b'n'
    assert mapped_object.unpack_from(buffer, 0).tolist() == [0, 1, 2]


@settings(max_examples=100, deadline=None)
@given(numpy_strategies.arrays(
    dtype=st.sampled_from(['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8', '>i4', '?', 'c16']),
    shape=numpy_strategies.array_shapes(min_dims=0, max_dims=3, max_side=5)))
def test_any_numeric_array_round_trips(array):
    decoded = proxied_ndarray.unpack_from(pack_bare(array))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    assert decoded.tobytes() == array.tobytes()
