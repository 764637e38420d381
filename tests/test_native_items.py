"""Typed array items through the C ItemSequence/ItemAccess (``_native/items.c``) and without it.

An array mapped while the C module is switched off has no ``_items`` and runs the Python
methods; both must give the same proxies and the same errors, corrupt index entries included.
"""
import struct
from unittest import mock

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema

pytestmark = pytest.mark.native_only


class Point:
    __slot_types__ = {'x': int, 'label': str}
    __slots__ = ('x', 'label')

    def __init__(self, x, label):
        self.x = x
        self.label = label


class PointArray(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


def built(count):
    return PointArray.build([Point(i * 3, 'p%d' % i) for i in range(count)]).buf


def twins(buffer):
    native = PointArray.map_buffer(buffer)
    with mock.patch.object(_native, 'objects', None):
        pure = PointArray.map_buffer(buffer)
    assert '_items' in vars(native) and '_items' not in vars(pure)
    return native, pure


def outcome(call):
    """The items' (x, label), or the error (type and message) reading them raised."""
    try:
        value = call()
        if isinstance(value, list):
            return ('list', [(p.x, p.label) for p in value])
        return ('value', (value.x, value.label))
    except Exception as error:
        return ('error', type(error), str(error))


KEYS = [0, 1, -1, -5, 4, 5, 6, -6, -7, 2**70, -2**70, True, numpy.int64(2), slice(1, 4), slice(None, None, -2),
        '1', 1.0, None]


@pytest.mark.parametrize('key', KEYS, ids=repr)
def test_indexing_gives_what_the_python_method_gives(key):
    native, pure = twins(built(5))
    assert outcome(lambda: native[key]) == outcome(lambda: pure[key])


def test_iteration_and_getter_give_the_same_proxies():
    native, pure = twins(built(7))
    assert [(p.x, p.label) for p in native] == [(p.x, p.label) for p in pure] == [(i * 3, 'p%d' % i) for i in range(7)]
    native_get, pure_get = native.getter(), pure.getter()
    for number in range(-7, 7):
        assert outcome(lambda: native_get(number)) == outcome(lambda: pure_get(number))
    assert len(native.getter()) == 7


def test_an_empty_array_raises_index_error_both_ways():
    native, pure = twins(built(0))
    assert outcome(lambda: native[0]) == outcome(lambda: pure[0])
    assert list(native) == list(pure) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 2**64 - 1)), min_size=1, max_size=3))
def test_corrupt_index_entries_give_the_same_errors(damage):
    buffer = bytearray(built(6))
    array = PointArray.map_buffer(bytes(buffer))
    for number, position in damage:
        struct.pack_into('=Q', buffer, array.index_offset + 8 * number, position)
    native, pure = twins(bytes(buffer))
    for number in range(-6, 6):
        assert outcome(lambda: native[number]) == outcome(lambda: pure[number])
    assert outcome(lambda: list(native)) == outcome(lambda: list(pure))


def test_the_class_method_still_works_when_called_explicitly():
    native, pure = twins(built(3))
    assert PointArray.__getitem__(native, 1).x == 3
    assert native.__getitem__(-1).label == 'p2'
    assert PointArray.__getitem__(pure, 2).label == 'p2'


def test_array_classes_get_the_c_subscript_from_their_base():
    assert issubclass(PointArray, _native.objects.ItemAccess)
    assert "__getitem__" not in vars(MappedArrayProxyBase)
    assert type(PointArray.__getitem__).__name__ == 'wrapper_descriptor'
    native, _ = twins(built(4))
    assert [p.x for p in native[1:3]] == [3, 6] and native[::-2][0].label == 'p3'   # slices: Python
    with pytest.raises(TypeError):
        native['one']


def test_a_subclass_may_override_item_access_and_call_the_base():
    class Labelled(PointArray):
        def __getitem__(self, number):
            return 'item ' + super().__getitem__(number).label
    array = Labelled.map_buffer(built(3))
    assert array[2] == 'item p2' and [p.x for p in array] == [0, 3, 6]


def test_an_array_without_c_items_indexes_through_python():
    native, _ = twins(built(3))
    del native.__dict__['_items']
    assert native[1].x == 3 and native[-1].label == 'p2'
    with pytest.raises(IndexError):
        native[3]


def test_a_closed_array_refuses_indexing(tmp_path):
    path = tmp_path / 'points.bin'
    with open(path, 'wb') as f:
        PointArray.build([Point(1, 'a')], destfile=f)
    array = PointArray.map_file(str(path))
    assert array[0].x == 1
    array.close()
    with pytest.raises(ValueError, match='closed'):
        array[0]


def test_item_sequence_validates_its_geometry():
    with pytest.raises(ValueError):
        _native.objects.ItemSequence(b'', 0, 56, 8, 0, len)
    with pytest.raises(ValueError):
        _native.objects.ItemSequence(b'', -1, 56, 64, 0, len)
    with pytest.raises(TypeError):
        _native.objects.ItemSequence(b'', 0, 56, 64, 0, None)


def test_building_into_a_write_only_file_maps_it_through_its_path(tmp_path):
    path = tmp_path / 'points.bin'
    with open(path, 'wb') as f:
        f.write(b'x' * 8)
        array = PointArray.build([Point(1, 'a'), Point(2, 'b')], destfile=f)
    assert [p.x for p in array] == [1, 2]
    array.close()


def test_indexing_alternates_between_arrays_of_one_class():
    # ItemAccess remembers the last array's _items (objects.h: PartsCache); each array must still
    # read its own items, whichever was indexed before.
    first = PointArray.map_buffer(built(5))
    second = PointArray.map_buffer(PointArray.build([Point(100 + i, 'q%d' % i) for i in range(7)]).buf)
    for number in range(5):
        assert (first[number].x, second[number].x, first[-1 - number].x) == (number * 3, 100 + number,
                                                                            (4 - number) * 3)
    assert second[6].label == 'q6' and first[4].label == 'p4'
    with pytest.raises(IndexError):
        first[5]


def test_a_new_array_is_never_answered_from_a_dead_one():
    for round_number in range(20):
        array = PointArray.map_buffer(PointArray.build([Point(round_number, 'r')]).buf)
        assert array[0].x == round_number       # often at the address of the last round's array
        del array


def test_closing_one_array_leaves_the_other_readable(tmp_path):
    paths = []
    for number in range(2):
        paths.append(tmp_path / ('points%d.bin' % number))
        with open(paths[-1], 'wb') as f:
            PointArray.build([Point(number, 'a')], destfile=f)
    closing, staying = (PointArray.map_file(str(path)) for path in paths)
    assert closing[0].x == 0 and staying[0].x == 1
    closing.close()
    assert staying[0].x == 1
    with pytest.raises(ValueError, match='closed'):
        closing[0]
    assert staying[0].x == 1
