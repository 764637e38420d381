"""``arr.column(name)``: the gather kernel (kernels.c ``sb_gather_field``) and its numpy twin.

column() must equal reading the attribute item by item, for every selection of items, and the
compiled kernel must return what the fallback returns for any bytes, corrupt ones included.
"""
import struct

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers._native import fallback
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema, int16, uint8


class Reading:
    __slot_types__ = {'sensor': uint8, 'value': float, 'delta': int16, 'note': str}
    __slots__ = tuple(__slot_types__)

    def __init__(self, sensor, value, delta, note):
        self.sensor = sensor
        self.value = value
        self.delta = delta
        self.note = note


class Readings(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Reading)


def readings(count):
    return [Reading(number % 256, number * 0.5, number - 100, 'n%d' % number) for number in range(count)]


SELECTIONS = [None, slice(None, None, -3), [0, -1, 2], numpy.array([True, False] * 10), numpy.array([], numpy.int64)]


@pytest.mark.parametrize('indices', SELECTIONS, ids=repr)
@pytest.mark.parametrize('name', ['sensor', 'value', 'delta'])
def test_column_equals_the_attribute_item_by_item(name, indices):
    array = Readings.map_buffer(Readings.build(readings(20)).buf)
    numbers = numpy.arange(20)[indices] if indices is not None else numpy.arange(20)
    expected = [getattr(array[int(number)], name) for number in numbers]
    assert array.column(name, indices).tolist() == expected


def test_items_of_other_shapes_take_the_general_path():
    items = readings(6)
    items[3].value = None
    del items[4].delta
    array = Readings.map_buffer(Readings.build(items).buf)
    assert array.column('sensor').tolist() == [0, 1, 2, 3, 4, 5]
    assert array.column('value', default=-1.0).tolist() == [0.0, 0.5, 1.0, -1.0, 2.0, 2.5]
    with pytest.raises(ValueError, match='have no value'):
        array.column('delta')


def test_an_out_of_range_selection_raises_index_error():
    array = Readings.map_buffer(Readings.build(readings(5)).buf)
    with pytest.raises(IndexError):
        array.column('sensor', [7])


def kernel_outcome(function, buffer, array, numbers, field, dtype):
    out = numpy.zeros(array.index_elements if numbers is None else len(numbers), dtype)
    try:
        taken = function(buffer, 0, 56, array.index_offset, array.index_elements, numbers,
                         struct.calcsize('=' + array.schema.bitmap_format), 0xF, field, out)
    except Exception as error:
        return ('error', type(error))
    return ('taken', taken, out[:taken].tobytes())


@pytest.mark.native_only
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**5), st.integers(0, 255)), max_size=6),
       st.none() | st.lists(st.integers(0, 7), max_size=10), st.sampled_from([(8, 'u1'), (16, 'f8'), (32, 'i2'), (500, 'i8')]))
def test_the_kernel_returns_what_the_fallback_returns(damage, selection, field):
    buffer = bytearray(Readings.build(readings(8)).buf)
    array = Readings.map_buffer(bytes(buffer))
    for position, byte in damage:
        buffer[position % len(buffer)] = byte
    numbers = None if selection is None else numpy.array(selection, numpy.int64)
    field_offset, dtype = field
    native = kernel_outcome(_native.gather_field, bytes(buffer), array, numbers, field_offset, numpy.dtype(dtype))
    pure = kernel_outcome(fallback.gather_field, bytes(buffer), array, numbers, field_offset, numpy.dtype(dtype))
    assert native == pure


def test_a_geometry_outside_the_buffer_raises():
    out = numpy.zeros(1, numpy.int64)
    with pytest.raises(IndexError):
        _native.gather_field(bytes(64), 0, 56, 60, 10, numpy.zeros(1, numpy.int64), 4, 1, 8, out)
    with pytest.raises(ValueError):
        _native.gather_field(bytes(64), 0, 56, 56, 1, numpy.zeros(1, numpy.int64), 3, 1, 8, out)


@pytest.mark.parametrize('impl', [_native, fallback], ids=['active', 'fallback'])
def test_an_output_array_too_small_is_refused(impl):
    array = Readings.map_buffer(Readings.build(readings(8)).buf)
    for out in (numpy.zeros(7, numpy.uint8), numpy.zeros(16, numpy.uint8)[::2], numpy.zeros(8, numpy.uint8)[None]):
        with pytest.raises(ValueError, match='at least 8 values'):
            impl.gather_field(array.buf, 0, 56, array.index_offset, 8, None, 4, 0xF, 8, out)
