"""RTTI-wrapped values decoded in C (``_native/values.c``) against the Python readers.

Every value is packed once and read twice: through ``rtti.read_object`` with the C module in
use, and with it switched off (``_native.objects`` None, so every nested read is Python too).
The two must give the same value, with the same types and the same sharing of repeated
elements, or the same exception with the same message, whatever the bytes are.
"""
import datetime
import decimal
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native, rtti
from sharedbuffers.mapped_struct import Schema, mapped_object

pytestmark = pytest.mark.native_only


class Point:
    __slot_types__ = {'x': int, 'label': str}
    __slots__ = ('x', 'label')

    def __init__(self, x, label):
        self.x = x
        self.label = label


Point.__schema__ = Schema.from_typed_slots(Point)
mapped_object.register_schema(Point, Point.__schema__, 'k')


def shape_of(value, seen=None):
    """type, repr and the sharing of containers: what both readers must agree on."""
    if seen is None:
        seen = {}
    if isinstance(value, memoryview):           # raw buffer values: compared by content
        return ('memoryview', value.tobytes())
    if hasattr(value, '_proxy_schema'):         # before tuples: snapshot proxies are tuples
        return ('proxy', value.x, value.label)
    if isinstance(value, (list, tuple)):
        if id(value) in seen:
            return ('again', seen[id(value)])
        seen[id(value)] = len(seen)
        return (type(value).__name__, [shape_of(item, seen) for item in value])
    if isinstance(value, dict):
        return ('dict', [(shape_of(key, seen), shape_of(item, seen)) for key, item in value.items()])
    if isinstance(value, frozenset):
        return ('frozenset', sorted(repr(shape_of(item, seen)) for item in value))
    return (type(value).__name__, repr(value))


def outcome(read, buffer, offset):
    try:
        return ('value', shape_of(read(buffer, offset)))
    except Exception as error:
        return ('error', type(error), str(error))


def read_pure(buffer, offset):
    with mock.patch.object(_native, 'objects', None):
        return rtti.read_object(buffer, offset)


def assert_same(buffer, offset=0):
    native = outcome(rtti.read_object, buffer, offset)
    assert native == outcome(read_pure, buffer, offset)
    return native


def packed(value, size=None):
    buffer = bytearray(size or 64 + 64 * len(repr(value)))
    end = mapped_object.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(), st.text(max_size=12),
    st.binary(max_size=12), st.text(min_size=300, max_size=400).map(lambda text: text * 120),
    st.datetimes(), st.decimals(allow_nan=False, allow_infinity=False, places=3), st.builds(Point, st.integers(-9, 9), st.text(max_size=4)),
)
hashable = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(max_size=6), st.binary(max_size=6)),
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3), max_leaves=6)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.lists(inner, max_size=4).map(tuple),
        st.frozensets(hashable, max_size=5), st.dictionaries(hashable, inner, max_size=4)),
    max_leaves=24)
containers = values.filter(lambda value: isinstance(value, (list, tuple, dict, frozenset)))


@settings(max_examples=400, deadline=None)
@given(values.filter(lambda value: value is not None))    # None has no RTTI form of its own
def test_every_value_reads_as_the_python_readers_read_it(value):
    result = assert_same(packed(value))
    assert result[0] == 'value'


@settings(max_examples=300, deadline=None)
@given(containers, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupt_bytes_give_the_same_value_or_the_same_error(value, damage):
    buffer = bytearray(packed(value))
    for position, byte in damage:
        buffer[position % len(buffer)] = byte
    assert_same(bytes(buffer))


@settings(max_examples=150, deadline=None)
@given(containers, st.integers(0, 10**6))
def test_truncated_values_give_the_same_error(value, cut):
    buffer = packed(value)
    assert_same(buffer[:cut % (len(buffer) + 1)])


@settings(max_examples=100, deadline=None)
@given(containers, st.integers(0, 64))
def test_any_offset_of_a_read_only_memoryview_reads_the_same(value, offset):
    buffer = packed(value)
    view = memoryview(bytes(offset) + buffer + bytes(8))
    assert_same(view, offset)
    for start in range(0, len(view), max(1, len(view) // 200)):     # positions inside it too
        assert_same(view, start)


def test_every_single_byte_damage_of_a_mixed_value_reads_the_same():
    value = {'a': [1, 'two', 3.5, None, (b'x', frozenset({'y', 2}))], 7: {'nested': [True, -1]}}
    buffer = packed(value)
    assert_same(buffer)
    for position in range(len(buffer)):
        for byte in (0, 1, 0x7F, 0xFF, buffer[position] ^ 0x10):
            damaged = bytearray(buffer)
            damaged[position] = byte
            assert_same(bytes(damaged))


def list_of_repeated_pointers(count, width, interleaved=False):
    """An 'e' value of ``count`` pointers to one list ['shared', 1] and ``count`` to one tuple
    (all of the list's first, or taking turns, the tuple's first: pointers that go down too)."""
    code, size = (b'T', 4) if width == 4 else (b't', 8)
    table_end = 16 + (2 * count * size + 7) // 8 * 8
    shared_list = packed(['shared', 1])
    shared_tuple_at = table_end + len(shared_list)
    if interleaved:
        pointers = [shared_tuple_at - 8, table_end - 8] * count
    else:
        pointers = [table_end - 8] * count + [shared_tuple_at - 8] * count
    table = code + (2 * count).to_bytes(7, 'little') + b''.join(
        pointer.to_bytes(size, 'little', signed=True) for pointer in pointers)
    head = b'e' + bytes(7) + table
    return head + bytes(table_end - len(head)) + shared_list + packed(('t', 2))


@pytest.mark.parametrize('width', [4, 8])
@pytest.mark.parametrize('count', [3, 100])     # found by scanning, and through values.c's PointerIndex
def test_repeated_pointers_give_one_object_as_the_python_reader_does(count, width):
    buffer = list_of_repeated_pointers(count, width)
    for read in (rtti.read_object, read_pure):
        result = read(buffer, 0)
        assert result == [['shared', 1]] * count + [('t', 2)] * count
        assert all(item is result[0] for item in result[:count])
        assert all(item is result[count] for item in result[count:])
    assert_same(buffer)


@pytest.mark.parametrize('count', [3, 100])
def test_repeated_pointers_that_go_down_give_one_object_too(count):
    buffer = list_of_repeated_pointers(count, 8, interleaved=True)
    for read in (rtti.read_object, read_pure):
        result = read(buffer, 0)
        assert result == [('t', 2), ['shared', 1]] * count
        assert all(item is result[0] for item in result[::2])
        assert all(item is result[1] for item in result[1::2])
    assert_same(buffer)


def test_long_sets_and_sequences_of_mixed_values_read_the_same():
    # set members are stored in hash order: their pointers go up and down
    value = [frozenset(('tag%d' % number, number) for number in range(300)),
             ['text %d' % number for number in range(300)], tuple(range(-150, 150)) + ('end',)]
    result = assert_same(packed(value, size=1 << 17))
    assert result[0] == 'value'
    assert rtti.read_object(packed(value, size=1 << 17), 0) == value


def list_containing_itself(width):
    """An 'e' value whose pointer table (code 'T' or 't') points back at the list's own header."""
    code, size = (b'T', 4) if width == 4 else (b't', 8)
    table = code + (1).to_bytes(7, 'little') + (-8).to_bytes(size, 'little', signed=True)
    return b'e' + bytes(7) + table + bytes(8)


@pytest.mark.parametrize('width', [4, 8])
def test_a_list_that_contains_itself_is_the_python_readers_error(width):
    buffer = list_containing_itself(width)
    result = assert_same(buffer)
    assert result[:2] == ('error', ValueError)
    assert 'contains itself' in result[2]


def test_nesting_deeper_than_the_c_limit_reads_through_python_with_the_same_value():
    value = 'bottom'
    for depth in range(150):
        value = [value, depth] if depth % 3 else {'level': value}
    result = assert_same(packed(value, size=1 << 16))
    assert result[0] == 'value'
    assert rtti.read_object(packed(value, size=1 << 16), 0) == value


def test_leaf_values_inside_containers_come_from_their_own_readers():
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    value = [when, decimal.Decimal('1.25'), Point(3, 'p'), 'x' * 40000, b'y' * 70000]
    result = rtti.read_object(packed(value, size=1 << 18), 0)
    assert result[:2] == [when, decimal.Decimal('1.25')]
    assert (result[2].x, result[2].label) == (3, 'p')
    assert result[3] == 'x' * 40000 and result[4] == b'y' * 70000
    assert_same(packed(value, size=1 << 18))


def test_the_buffer_export_is_released_after_values_and_errors():
    buffer = bytearray(packed({'k': [1, 'v', (2, None)]}))
    assert rtti.read_object(buffer, 0) == {'k': [1, 'v', (2, None)]}
    buffer.extend(bytes(8))          # no export left behind: a bytearray can grow
    broken = bytearray(list_containing_itself(8))
    with pytest.raises(ValueError):
        rtti.read_object(broken, 0)
    broken.extend(bytes(8))


def test_offsets_that_are_not_positions_are_the_python_readers_errors():
    buffer = packed([1, 'a'])
    for offset in (-1, len(buffer), 2**63, -2**63 - 1, 2**70):
        assert_same(buffer, offset)


def test_a_buffer_without_the_buffer_protocol_is_read_by_python():
    class Indexable:
        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

        def __getitem__(self, key):
            return self.data[key]

    buffer = packed((1, 2.5))
    assert outcome(rtti.read_object, Indexable(buffer), 0) == outcome(read_pure, Indexable(buffer), 0)


def test_object_and_dict_slots_read_through_the_c_field_readers():
    class Holder:
        __slot_types__ = {'table': dict, 'anything': object, 'pair': tuple, 'items': list}
        __slots__ = tuple(__slot_types__)

    schema = Schema.from_typed_slots(Holder)
    holder = Holder()
    holder.table = {'a': 1, (2, 'b'): [None, 'c']}
    holder.anything = [1, 'two', {'three': 3.0}]
    holder.pair = ('x', 1, b'y')
    holder.items = [1, 'mixed', 2.5]
    proxy = schema.unpack_from(bytes(schema.pack(holder)), 0)
    kinds = {name: type(type(proxy).__dict__[name]).__name__ for name in Holder.__slot_types__}
    assert set(kinds.values()) == {'FieldReader'}
    assert (proxy.table, proxy.anything, proxy.pair, proxy.items) == (
        holder.table, holder.anything, holder.pair, holder.items)


def test_read_object_validates_its_arguments():
    with pytest.raises(TypeError):
        _native.objects.read_object(b'')
    with pytest.raises(TypeError):
        _native.objects.set_object_reader(42)
    with pytest.raises(TypeError):
        _native.objects.read_object(b'q' + bytes(8), 0, 1)
