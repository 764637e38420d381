"""The C proxies (``_native/proxies.c``) against the pure-Python proxies it replaces.

The C unpacker and field readers must give what the generated Python code gives: the same
values of the same types, the same caching, and the same exception (type and message) for
every corrupt buffer.  Each test reads the same bytes twice, through a schema built while the
C module is in use and through a twin schema built with it switched off, and compares.
"""
import gc
import pickle
import struct
import sys
import types
import weakref
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native, struct_proxy
from sharedbuffers.mapped_struct import Schema, mapped_object
from sharedbuffers.types import numbers as number_types
from sharedbuffers.types.sequences import mapped_list

pytestmark = pytest.mark.native_only

SLOT_TYPES = {
    'number': int, 'ratio': float, 'flag': bool, 'name': str, 'blob': bytes, 'items': list,
    'pair': tuple, 'members': frozenset, 'table': dict, 'anything': object,
}


class Record:
    __slot_types__ = SLOT_TYPES
    __slots__ = tuple(SLOT_TYPES)


class Inner:
    __slot_types__ = {'x': int, 'label': str}
    __slots__ = ('x', 'label')


class Outer:
    __slot_types__ = {'id': int, 'inner': Inner, 'tags': list}
    __slots__ = ('id', 'inner', 'tags')


Inner.__schema__ = Schema.from_typed_slots(Inner)
mapped_object.register_schema(Inner, Inner.__schema__, 'j')


def build(cls, attributes):
    obj = cls.__new__(cls)
    for name, value in attributes.items():
        setattr(obj, name, value)
    return obj


def twin_schemas(cls):
    """(schema using the C module, schema made and used with the pure-Python proxies)."""
    native = Schema.from_typed_slots(cls)
    native.unpacker()
    with mock.patch.object(_native, 'objects', None):
        pure = Schema.from_typed_slots(cls)
        pure.unpacker()
        pure.writer()
    return native, pure


def outcome(call, keep=False):
    """What a call gives: ('value', type name, repr) or ('error', type, message).

    repr, so that NaN compares equal to NaN; ``keep`` returns the value itself instead.
    """
    try:
        value = call()
        # repr inside the try: a nested struct's repr reads its attributes, which corrupt
        # data makes fail too, and that error must match as well
        return ('value', type(value).__name__, value if keep else repr(value))
    except Exception as error:                      # every error must match, whatever it is
        return ('error', type(error), str(error))


def read_everything(schema, buffer, offset, names, pure):
    """Outcome of unpack_from and of each attribute (read twice: the cached path too)."""
    def run():
        result = [outcome(lambda: schema.unpack_from(buffer, offset), keep=True)]
        if result[0][0] == 'value':
            proxy = result[0][2]
            result[0] = ('value', 'proxy', None)
            for name in names:
                result.append(outcome(lambda: getattr(proxy, name)))
                result.append(outcome(lambda: getattr(proxy, name)))
        return result
    if not pure:
        return run()
    with mock.patch.object(_native, 'objects', None):
        return run()


NATIVE_SCHEMA, PURE_SCHEMA = twin_schemas(Record)
NATIVE_OUTER, PURE_OUTER = twin_schemas(Outer)

numbers = st.one_of(st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=False))
texts = st.one_of(st.text(max_size=20), st.text(min_size=600, max_size=700))
values = st.one_of(
    st.none(), st.booleans(), numbers, texts, st.binary(max_size=40),
    st.lists(st.integers(-2**63, 2**64 - 1), max_size=8), st.lists(st.floats(allow_nan=False), max_size=5),
)
# Containers of mixed values: read by _native/values.c (the C field readers hand them over).
nested = st.recursive(values, lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
                      | st.dictionaries(st.text(max_size=3) | st.integers(-5, 5), inner, max_size=3), max_leaves=10)
records = st.fixed_dictionaries({}, optional={
    'number': st.integers(-2**63, 2**63 - 1),
    'ratio': st.floats(allow_nan=False),
    'flag': st.booleans(),
    'name': st.one_of(st.none(), texts),
    'blob': st.one_of(st.binary(max_size=30), st.binary(min_size=600, max_size=700).map(lambda b: b[:1] * len(b))),
    'items': st.lists(st.one_of(st.integers(-2**63, 2**64 - 1), st.integers(0, 255)), max_size=10)
    | st.lists(st.floats(allow_nan=False), max_size=6) | st.lists(values, max_size=5),
    'pair': st.lists(st.integers(-1000, 1000), max_size=6).map(tuple) | st.lists(texts, max_size=3).map(tuple)
    | st.lists(nested, max_size=3).map(tuple),
    'members': st.frozensets(st.integers(0, 55), max_size=10) | st.frozensets(st.integers(0, 119), max_size=10)
    | st.frozensets(st.integers(-2**40, 2**40), max_size=6) | st.frozensets(st.text(max_size=5), max_size=4),
    'table': st.dictionaries(st.text(max_size=4), st.integers(-2**63, 2**63 - 1), max_size=3)
    | st.dictionaries(st.text(max_size=4) | st.integers(-2**63, 2**63 - 1), nested, max_size=3),
    'anything': nested,
})


def assert_same_reads(native, pure, buffer, offset, names):
    assert read_everything(native, buffer, offset, names, False) == read_everything(pure, buffer, offset, names, True)


@settings(max_examples=150, deadline=None)
@given(records)
def test_every_value_reads_as_the_pure_proxies_read_it(attributes):
    packed = NATIVE_SCHEMA.pack(build(Record, attributes))
    assert packed == PURE_SCHEMA.pack(build(Record, attributes))
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, packed, 0, SLOT_TYPES)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(0, 40))
def test_read_only_memoryview_at_an_offset_reads_the_same(attributes, offset):
    packed = NATIVE_SCHEMA.pack(build(Record, attributes))
    view = memoryview(bytes(offset) + packed + bytes(8))
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, view, offset, SLOT_TYPES)


@settings(max_examples=300, deadline=None)
@given(records, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupt_bytes_give_the_same_value_or_the_same_error(attributes, damage):
    packed = bytearray(NATIVE_SCHEMA.pack(build(Record, attributes)))
    for position, byte in damage:
        packed[position % len(packed)] = byte
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, bytes(packed), 0, SLOT_TYPES)


@settings(max_examples=100, deadline=None)
@given(records, st.integers(0, 200))
def test_truncated_buffers_give_the_same_error(attributes, cut):
    packed = NATIVE_SCHEMA.pack(build(Record, attributes))
    truncated = packed[:cut % (len(packed) + 1)]
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, truncated, 0, SLOT_TYPES)


@settings(max_examples=100, deadline=None)
@given(st.integers(-2**63, 2**63 - 1), st.integers(-2**63, 2**63 - 1))
def test_any_stored_pointer_gives_the_same_value_or_error(name_pointer, items_pointer):
    packed = bytearray(NATIVE_SCHEMA.pack(build(Record, {'name': 'abc', 'items': [1, 2]})))
    proxy = NATIVE_SCHEMA.unpack_from(bytes(packed), 0)
    for name, pointer in (('name', name_pointer), ('items', items_pointer)):
        struct.pack_into('=q', packed, type(proxy).__dict__[name].pointer_offset, pointer)
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, bytes(packed), 0, ('name', 'items'))


@settings(max_examples=60, deadline=None)
@given(st.integers(-2**63, 2**63 - 1), st.text(max_size=10), st.lists(st.integers(0, 300), max_size=5))
def test_nested_structs_read_through_the_nested_schema(number, label, tags):
    obj = build(Outer, {'id': number, 'inner': build(Inner, {'x': number // 2, 'label': label}), 'tags': tags})
    packed = NATIVE_OUTER.pack(obj)
    assert_same_reads(NATIVE_OUTER, PURE_OUTER, packed, 0, ('id', 'inner', 'tags'))
    proxy = NATIVE_OUTER.unpack_from(packed, 0)
    assert (proxy.inner.x, proxy.inner.label) == (number // 2, label)


def test_the_c_types_are_in_use_for_snapshot_proxies():
    packed = NATIVE_SCHEMA.pack(build(Record, {'name': 'x', 'items': [1]}))
    assert type(NATIVE_SCHEMA.unpack_from).__name__ == 'SnapshotUnpacker'
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)
    assert type(type(proxy).__dict__['name']) is _native.objects.FieldReader
    assert type(type(PURE_SCHEMA.unpack_from(packed, 0)).__dict__['name']) is struct_proxy.LazyStrField


def test_immutable_values_are_cached_and_lists_are_fresh():
    packed = NATIVE_SCHEMA.pack(build(Record, {'name': 'abc', 'items': [1, 2], 'members': frozenset({3})}))
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)
    assert proxy.name is proxy.name and proxy.members is proxy.members
    first = proxy.items
    first.append(99)
    assert proxy.items == [1, 2] and proxy.items is not first
    assert set(proxy.__dict__) == {'name', 'members'}


def test_writable_buffers_still_get_live_proxies():
    packed = bytearray(NATIVE_SCHEMA.pack(build(Record, {'number': 5, 'name': 'abc'})))
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)
    assert isinstance(proxy, struct_proxy.LiveStructProxy)
    proxy.number = 6
    assert proxy.number == 6 and proxy.name == 'abc'


FULL_RECORD = {'number': 5, 'ratio': 0.5, 'flag': True, 'name': 'abc', 'blob': b'xy', 'items': [1, 2],
               'pair': (3,), 'members': frozenset({4}), 'table': {'k': 1}, 'anything': [None]}


def writable_buffers(data, offset=0):
    """The writable buffers a proxy is made over, each holding `data` at `offset`."""
    import mmap
    padded = bytes(offset) + data + bytes(8)
    mapping = mmap.mmap(-1, len(padded))
    mapping[:] = padded
    return {'bytearray': bytearray(padded), 'memoryview': memoryview(bytearray(padded)), 'mmap': mapping}


@settings(max_examples=60, deadline=None)
@given(records, st.integers(0, 40), st.sampled_from(['bytearray', 'memoryview', 'mmap']))
def test_live_proxies_read_as_the_pure_live_proxies_read(attributes, offset, kind):
    packed = NATIVE_SCHEMA.pack(build(Record, attributes))
    native_buffer = writable_buffers(packed, offset)[kind]
    pure_buffer = writable_buffers(packed, offset)[kind]
    assert (read_everything(NATIVE_SCHEMA, native_buffer, offset, SLOT_TYPES, False)
            == read_everything(PURE_SCHEMA, pure_buffer, offset, SLOT_TYPES, True))


@pytest.mark.parametrize('kind', ['bytearray', 'memoryview', 'mmap'])
def test_full_shape_live_proxies_are_made_in_c_with_the_class_python_makes(kind):
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    buffer = writable_buffers(packed, 16)[kind]
    maker = NATIVE_SCHEMA.unpack_from.fallback      # the generated function: the shape cache
    proxy = NATIVE_SCHEMA.unpack_from(buffer, 16)
    made_by_python = maker(buffer, 16)
    assert type(proxy) is type(made_by_python)
    assert isinstance(proxy, struct_proxy.LiveStructProxy)
    assert proxy.__dict__['_proxy_buffer'] is buffer and proxy.__dict__['_proxy_offset'] == 16
    assert [getattr(proxy, name) for name in SLOT_TYPES] == [getattr(made_by_python, name) for name in SLOT_TYPES]
    proxy.number = 77                              # live both ways
    assert made_by_python.number == 77
    assert type(proxy).number.add(made_by_python, 3) == 80 and proxy.number == 80


def test_the_live_maker_is_the_c_one_and_wraps_the_python_maker():
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    full = (1 << len(NATIVE_SCHEMA.slot_keys)) - 1
    cls, maker = NATIVE_SCHEMA._make_shape_reader(full, 0, True)
    assert type(maker) is _native.objects.LiveMaker
    python_made = maker.fallback(bytearray(packed), 0)
    assert type(python_made) is cls and type(python_made.__dict__['_proxy_anchor']).__name__ == 'c_char'
    c_made = maker(bytearray(packed), 0)
    assert type(c_made) is cls and type(c_made.__dict__['_proxy_anchor']) is memoryview


def test_proxies_made_together_share_one_anchor_which_pins_the_buffer_while_any_lives():
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    buffer = bytearray(packed * 3)
    first, second = NATIVE_SCHEMA.unpack_from(buffer, 0), NATIVE_SCHEMA.unpack_from(buffer, len(packed))
    assert first.__dict__['_proxy_anchor'] is second.__dict__['_proxy_anchor']
    del first
    with pytest.raises(BufferError):
        buffer.extend(b'more')
    del second
    gc.collect()
    buffer.extend(b'more')
    assert NATIVE_SCHEMA.unpack_from(buffer, 2 * len(packed)).number == 5


def test_an_anchor_is_not_shared_between_buffers_or_regions():
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    data = bytearray(packed * 2)
    other = bytearray(packed * 2)
    whole, tail = memoryview(data), memoryview(data)[len(packed):]
    proxies = [NATIVE_SCHEMA.unpack_from(data, 0), NATIVE_SCHEMA.unpack_from(other, 0),
               NATIVE_SCHEMA.unpack_from(whole, len(packed)), NATIVE_SCHEMA.unpack_from(tail, 0)]
    anchors = [proxy.__dict__['_proxy_anchor'] for proxy in proxies]
    assert len({id(anchor) for anchor in anchors}) == 4
    assert [bytes(anchor) for anchor in anchors] == [bytes(data), bytes(other), bytes(data), bytes(tail)]
    proxies[2].number = 9                          # the same struct through two views
    assert proxies[3].number == 9 and proxies[0].number == 5


@pytest.mark.parametrize('offset', [-1, 10**6, 2**70, True, 3.0])
def test_live_proxies_at_bad_offsets_fail_as_the_pure_path_fails(offset):
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    for kind in ('bytearray', 'memoryview', 'mmap'):
        native = outcome(lambda: NATIVE_SCHEMA.unpack_from(writable_buffers(packed)[kind], offset))
        with mock.patch.object(_native, 'objects', None):
            pure = outcome(lambda: PURE_SCHEMA.unpack_from(writable_buffers(packed)[kind], offset))
        assert native == pure


def test_the_live_maker_leaves_read_only_and_short_buffers_to_python():
    full = (1 << len(NATIVE_SCHEMA.slot_keys)) - 1
    cls, maker = NATIVE_SCHEMA._make_shape_reader(full, 0, True)
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    with pytest.raises(TypeError):
        maker(packed, 0)                            # ctypes refuses a read-only buffer
    short = bytearray(packed[:8])
    expected = outcome(lambda: maker.fallback(short, 0))
    assert expected[0] == 'error' and outcome(lambda: maker(short, 0)) == expected
    released = memoryview(bytearray(packed))
    released.release()
    assert outcome(lambda: maker(released, 0)) == outcome(lambda: maker.fallback(released, 0))


def test_read_only_and_closed_mmaps_read_as_the_pure_path_reads(tmp_path):
    import mmap
    packed = NATIVE_SCHEMA.pack(build(Record, FULL_RECORD))
    path = tmp_path / 'record'
    path.write_bytes(packed)
    with open(path, 'rb') as f:
        read_only = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    proxy = NATIVE_SCHEMA.unpack_from(read_only, 0)
    assert type(proxy) is type(NATIVE_SCHEMA.unpack_from(packed, 0))     # a snapshot, made in C
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, read_only, 0, SLOT_TYPES)
    del proxy
    gc.collect()
    read_only.close()                       # the C path held no export after the call
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, read_only, 0, SLOT_TYPES)
    writable = writable_buffers(packed)['mmap']
    writable.close()
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, writable, 0, SLOT_TYPES)


def test_the_early_unpack_from_is_a_c_stand_in_that_follows_the_schema():
    schema = Schema.from_typed_slots(Record)
    early = schema.unpack_from
    assert type(early) is _native.objects.Deferred and early.target is None
    packed = schema.pack(build(Record, FULL_RECORD))
    assert early(packed).number == 5
    assert early.target is schema.unpack_from and type(early.target).__name__ == 'SnapshotUnpacker'
    schema.reinitialize()
    assert early.target is None and schema.unpack_from is early
    assert early(schema.pack(build(Record, FULL_RECORD)), 0).name == 'abc'


def test_deferred_makes_its_target_once_and_passes_calls_and_errors_through():
    made = []

    def make():
        made.append(len(made))
        if len(made) == 1:
            raise RuntimeError('not yet')
        return lambda *args, **kwargs: (args, kwargs)
    deferred = _native.objects.Deferred(make)
    with pytest.raises(RuntimeError, match='not yet'):
        deferred(1)
    assert deferred(1, 2, key=3) == ((1, 2), {'key': 3}) and deferred() == ((), {})
    assert made == [0, 1]
    deferred.reset()
    assert deferred.target is None and deferred(4) == ((4,), {}) and made == [0, 1, 2]
    with pytest.raises(TypeError):
        _native.objects.Deferred(42)


def test_a_released_memoryview_raises_as_the_pure_path_does():
    packed = NATIVE_SCHEMA.pack(build(Record, {'number': 5}))
    view = memoryview(packed)
    view.release()
    assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, view, 0, ('number',))


def test_field_reader_refuses_what_is_not_a_snapshot_proxy():
    descriptor = type(NATIVE_SCHEMA.unpack_from(NATIVE_SCHEMA.pack(build(Record, {'name': 'a'})), 0)).__dict__['name']
    with pytest.raises(TypeError, match='snapshot proxies'):
        descriptor.__get__(object(), object)
    with pytest.raises(IndexError, match="pointer of attribute 'name'"):
        descriptor.__get__((b'', 0), tuple)


def test_constructors_validate_their_arguments():
    proxies = _native.objects
    with pytest.raises(ValueError):
        proxies.SnapshotUnpacker(tuple, len, 1, 3, 8, [])
    with pytest.raises(ValueError):
        proxies.SnapshotUnpacker(tuple, len, 1, 4, 8, [('q', 4)])
    with pytest.raises(ValueError):
        proxies.SnapshotUnpacker(tuple, len, 1, 4, 16, [('x', 8)])
    with pytest.raises(TypeError):
        proxies.SnapshotUnpacker(int, len, 1, 4, 8, [])
    with pytest.raises(ValueError):
        proxies.FieldReader('a', -1, proxies.KIND_STR, len, frozenset(), object)
    with pytest.raises(ValueError):
        proxies.FieldReader('a', 8, 99, len, frozenset(), object)


def test_fixed_values_are_member_descriptors_over_the_tuple_items():
    # The interpreter specializes reads of member descriptors; behaviour is _tuplegetter's.
    packed = NATIVE_SCHEMA.pack(build(Record, {'number': 5, 'ratio': 0.5, 'flag': True, 'name': 'a'}))
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)
    pure = PURE_SCHEMA.unpack_from(packed, 0)
    cls = type(proxy)
    for name in ('number', 'ratio', 'flag'):
        assert type(cls.__dict__[name]).__name__ == 'member_descriptor'
        value = getattr(proxy, name)
        assert (type(value), value) == (type(getattr(pure, name)), getattr(pure, name))
        with pytest.raises(TypeError, match='read-only buffer'):
            setattr(proxy, name, 1)
        with pytest.raises(TypeError, match='cannot be deleted'):
            delattr(proxy, name)
        assert isinstance(getattr(cls, name), struct_proxy.LiveField)     # type(p).x: the accessor
    assert proxy._proxy_buffer is packed and proxy._proxy_offset == 0
    assert [proxy.number, proxy.ratio, proxy.flag] == [5, 0.5, True]
    with pytest.raises(TypeError):
        cls.__dict__['number'].__get__(('not', 'a', 'proxy', 0, 1), tuple)


def test_item_fields_validates_its_arguments():
    item_fields = _native.objects.item_fields

    class Pair(tuple):
        pass

    fields = item_fields(Pair, [('first', 0), ('second', 1)])
    assert set(fields) == {'first', 'second', '_proxy_item_fields'}
    for name, descriptor in fields.items():
        type.__setattr__(Pair, name, descriptor)
    pair = Pair((10, 20))
    assert (pair.first, pair.second) == (10, 20)
    with pytest.raises(AttributeError):
        pair.first = 1
    with pytest.raises(TypeError, match='tuple subclass'):
        item_fields(object, [])
    with pytest.raises(TypeError, match='pairs'):
        item_fields(Pair, [('first',)])
    with pytest.raises(TypeError, match='pairs'):
        item_fields(Pair, [(1, 0)])
    with pytest.raises(ValueError, match='out of range'):
        item_fields(Pair, [('first', -1)])


SAMPLE_FULL = {'number': 7, 'ratio': 1.5, 'flag': False, 'name': 'n', 'blob': b'b', 'items': [1], 'pair': (2, 3),
               'members': frozenset({4}), 'table': {'k': 5}, 'anything': 6}


class BareProxy(struct_proxy.StructProxy):
    __slots__ = ()          # no __dict__ slot after the items


def test_short_instances_made_by_tuple_new_cannot_read_past_their_items():
    # Member descriptors read a fixed offset without checking the tuple's length; classes with
    # item fields allocate room for every item they read, so a short instance gives
    # AttributeError (or its own __dict__), never another object's memory.
    proxy_class = type(NATIVE_SCHEMA.unpack_from(NATIVE_SCHEMA.pack(build(Record, {'number': 1})), 0))
    names = ('_proxy_buffer', '_proxy_offset', 'number', 'ratio', 'flag')
    full = NATIVE_SCHEMA.unpack_from(NATIVE_SCHEMA.pack(build(Record, SAMPLE_FULL)), 0)
    assert type(NATIVE_SCHEMA.unpack_from).__name__ == 'SnapshotUnpacker' and full.anything == 6
    for cls in (proxy_class, type(full), BareProxy):
        for length in range(8):
            short = tuple.__new__(cls, tuple(range(100, 100 + length)))
            assert tuple.__len__(short) == length
            for name in names:
                try:
                    value = getattr(short, name)
                except AttributeError:
                    continue
                assert value in range(100, 100 + length) or isinstance(value, dict)


def test_every_single_byte_damage_of_a_nested_struct_reads_the_same():
    """A struct inside an object slot: its proxy's repr reads its own attributes, so damage
    behind them fails in repr, which must fail alike (found by the damage test above)."""
    inner = build(Inner, {'x': 7, 'label': 'a label long enough to be its own value'})
    packed = NATIVE_SCHEMA.pack(build(Record, {'number': 3, 'anything': inner, 'name': 'outer'}))
    for position in range(len(packed)):
        for byte in (0x00, 0x7F, 0xFF):
            damaged = bytearray(packed)
            damaged[position] = byte
            assert_same_reads(NATIVE_SCHEMA, PURE_SCHEMA, bytes(damaged), 0, SLOT_TYPES)


def _class_statement_twin(schema, has, none):
    """The shape class the class statement makes (snapshot_class switched off)."""
    native = _native.objects
    without = types.SimpleNamespace(**{name: getattr(native, name) for name in dir(native)
                                       if name != 'snapshot_class' and not name.startswith('__')})
    with mock.patch.object(_native, 'objects', without):
        return struct_proxy.build_shape_class(schema, has, none, False)


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
@pytest.mark.parametrize('shape', ['full', 'partial'])
def test_snapshot_class_makes_the_class_the_class_statement_makes(shape):
    schema = NATIVE_SCHEMA
    everything = (1 << len(schema.slot_keys)) - 1
    has, none = (everything, 0) if shape == 'full' else (everything & ~0b101, 0b10)
    made = struct_proxy.build_shape_class(schema, has, none, False)
    twin = _class_statement_twin(schema, has, none)
    assert made is not twin
    for attribute in ('__name__', '__qualname__', '__module__', '__itemsize__', '__doc__'):
        assert getattr(made, attribute) == getattr(twin, attribute), attribute
    # Instances keep their __dict__ pointer right after their items.  A class statement lays a
    # tuple subclass out so too before 3.12; from 3.12 it keeps the pointer before the object
    # (Py_TPFLAGS_MANAGED_DICT), which both work with.
    assert (made.__basicsize__, made.__dictoffset__) == (struct_proxy.StructProxy.__basicsize__ + 8, -8)
    managed_dict = 1 << 4
    assert made.__flags__ | managed_dict == twin.__flags__ | managed_dict
    if not twin.__flags__ & managed_dict:
        assert (made.__basicsize__, made.__dictoffset__, made.__flags__) == (
            twin.__basicsize__, twin.__dictoffset__, twin.__flags__)
    assert type(made) is type(twin) is struct_proxy.ProxyType
    assert made.__mro__[1:] == twin.__mro__[1:]
    assert set(made.__dict__) == set(twin.__dict__) and '__dictoffset__' not in made.__dict__
    assert repr(made) == repr(twin)
    for name, value in made.__dict__.items():
        assert type(value) is type(twin.__dict__[name]), name


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
def test_snapshot_class_instances_behave_as_the_class_statement_ones():
    packed = NATIVE_SCHEMA.pack(build(Record, SAMPLE_FULL))
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)
    cls = type(proxy)
    assert cls.__dict__['_proxy_item_fields'] is not None and isinstance(proxy, struct_proxy.StructProxy)
    assert [getattr(proxy, name) for name in SAMPLE_FULL] == list(SAMPLE_FULL.values())
    assert proxy.__dict__['name'] == 'n' and 'items' not in proxy.__dict__     # immutable values are kept
    proxy.extra = 'attribute'
    assert proxy.__dict__['extra'] == 'attribute' and proxy.extra == 'attribute'
    proxy.__dict__ = {'replaced': True}
    assert proxy.replaced and proxy.number == 7
    assert isinstance(cls.number, struct_proxy.LiveField)                     # through the metaclass
    with pytest.raises(TypeError, match='read-only'):
        proxy.number = 8
    with pytest.raises(TypeError):
        hash(proxy)
    assert proxy == build(Record, SAMPLE_FULL) and pickle.loads(pickle.dumps(proxy)).number == 7


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
def test_snapshot_classes_are_collected_with_their_schema():
    schema = Schema.from_typed_slots(Record)
    proxy = schema.unpack_from(schema.pack(build(Record, SAMPLE_FULL)), 0)
    assert proxy.name == 'n'
    reference = weakref.ref(type(proxy))
    del schema, proxy
    gc.collect()
    assert reference() is None


def test_snapshot_class_refuses_what_it_cannot_make():
    make = getattr(_native.objects, 'snapshot_class', None)
    if make is None:
        pytest.skip('Python 3.10 makes shape classes with type()')

    class WithDict(tuple):
        pass

    class Meta(type):
        def __new__(cls, *args):
            return super().__new__(cls, *args)

    base, meta = struct_proxy.StructProxy, struct_proxy.ProxyType
    with pytest.raises(TypeError, match='tuple subclass'):
        make('m.C', WithDict, meta, {}, [])
    with pytest.raises(TypeError, match='tuple subclass'):
        make('m.C', object, meta, {}, [])
    with pytest.raises(TypeError, match='metaclass'):
        make('m.C', base, Meta, {}, [])
    with pytest.raises(TypeError, match='metaclass'):
        make('m.C', base, type, {}, [])        # not a subclass of the base's metaclass
    with pytest.raises(TypeError, match='pairs'):
        make('m.C', base, meta, {}, [('x',)])
    with pytest.raises(ValueError, match='out of range'):
        make('m.C', base, meta, {}, [('x', 5000)])
    made = make('some.module.Made', base, meta, {'answer': 42}, [('first', 4)])
    assert (made.__module__, made.__qualname__, made.answer) == ('some.module', 'Made', 42)
    assert tuple.__new__(made, (0, 1, 2, 3, 'item')).first == 'item'


class _Generic:
    """A codec that is an instance (not a class): read through its own ``read``."""
    def __init__(self):
        self.read = mapped_list.read
        self.write = mapped_list.write


class _Odd:
    __slot_types__ = {'a': int, 'b': str, 'c': float, 'nested': Inner, 'code': frozenset, 'any': object,
                      'bytes_': bytes, 'flag': bool, 'small': number_types.byte, 'half': number_types.float32,
                      'word': number_types.ushort, 'big': number_types.uint64, 'table': dict, 'pair': tuple}
    __slots__ = tuple(__slot_types__)


def _python_full_layout(schema):
    """What build_unpacker made for the full shape before snapshot_layout: the class, the Shape."""
    everything = (1 << len(schema.slot_keys)) - 1
    shape = schema.shape(everything, 0)
    unpacker_fields = [(field.struct_code, field.offset) for field in shape.fields if field.codec is None]
    return struct_proxy.build_shape_class(schema, everything, 0, False), shape, unpacker_fields


@pytest.mark.parametrize('cls', [Record, Outer, Inner, _Odd])
@pytest.mark.parametrize('alignment', [1, 8])
def test_snapshot_layout_is_the_shape_and_class_python_makes(cls, alignment):
    schema = Schema(cls.__slot_types__, alignment=alignment, declared_class=cls)
    made, snapshot_format, fixed_size, unpacker_fields = struct_proxy._full_snapshot_layout(schema)
    twin, shape, twin_unpacker_fields = _python_full_layout(schema)
    assert (snapshot_format, fixed_size, unpacker_fields) == (shape.snapshot_format, shape.fixed_size,
                                                              twin_unpacker_fields)
    assert list(made.__dict__) == list(twin.__dict__)           # same attributes, same order
    for name, value in made.__dict__.items():
        other = twin.__dict__[name]
        assert type(value) is type(other), name
        if isinstance(value, _native.objects.FieldReader):
            assert (value.name, value.pointer_offset, value.kind, value.read) == (
                other.name, other.pointer_offset, other.kind, other.read), name
        elif name == '_proxy_accessors':
            assert (value.owner, value.fields) == (other.owner, other.fields)
        elif name in ('_proxy_item_indexes', '_proxy_schema', '_proxy_setters'):
            assert value == other, name
    assert (made.__name__, made.__qualname__, made.__module__, type(made), made.__mro__[1:]) == (
        twin.__name__, twin.__qualname__, twin.__module__, type(twin), twin.__mro__[1:])


def test_snapshot_layout_reads_instance_codecs_and_leaves_the_rest_to_python():
    layout = _native.objects.snapshot_layout
    kinds, immutable, base = struct_proxy._C_FIELD_KIND_NUMBERS, struct_proxy._IMMUTABLE, struct_proxy.ProxyBehaviour
    formats = struct_proxy.FIXED_FORMATS
    generic = _Generic()
    readers, item_fields, fixed, unpacker_fields, snapshot_format, size = layout(
        ('n', 'g'), {'n': int, 'g': generic}, formats, 'B', kinds, immutable, base)
    assert (item_fields, fixed, unpacker_fields, snapshot_format, size) == (
        [('n', 4)], [('n', 'q', 2)], [('q', 2)], '=BBq8x', 18)
    assert (readers['g'].kind, readers['g'].read, readers['g'].pointer_offset) == (
        _native.objects.KIND_GENERIC, generic.read, 10)

    class Unregistered:
        pass
    # a class that is not a codec yet, an unhashable slot type: the Python path words the error
    assert layout(('u',), {'u': Unregistered}, formats, 'B', kinds, immutable, base) is None
    assert layout(('u',), {'u': []}, formats, 'B', kinds, immutable, base) is None
    assert layout(('u',), {'u': int}, {int: 'z'}, 'B', kinds, immutable, base) is None
    with pytest.raises(KeyError):
        layout(('missing',), {}, formats, 'B', kinds, immutable, base)
    with pytest.raises(TypeError, match='snapshot_layout'):
        layout(['n'], {'n': int}, formats, 'B', kinds, immutable, base)

    class NotCallable:
        read = 5
    with pytest.raises(TypeError, match='callable'):
        layout(('g',), {'g': NotCallable()}, formats, 'B', kinds, immutable, base)


def test_a_schema_with_an_unregistered_class_still_opens_through_python():
    class Later:
        __slot_types__ = {'x': int}
        __slots__ = ('x',)

    class Holder:
        __slot_types__ = {'id': int, 'later': Later}
        __slots__ = ('id', 'later')
    schema = Schema.from_typed_slots(Holder)
    assert struct_proxy._full_snapshot_layout(schema) is None
    schema.unpacker()           # no fast path yet, and no error until a Later is read or written


_SLOT_TYPE_POOL = [int, float, bool, str, bytes, list, tuple, frozenset, dict, object, Inner,
                   number_types.byte, number_types.ubyte, number_types.short, number_types.ushort,
                   number_types.int32, number_types.uint32, number_types.int64, number_types.uint64,
                   number_types.float32, number_types.float64]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r'[a-z][a-z0-9_]{0,6}', fullmatch=True), st.sampled_from(_SLOT_TYPE_POOL),
                       min_size=0, max_size=40),
       st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2]))
def test_generated_schemas_lay_out_in_c_as_in_python(slot_types, alignment, version):
    schema = Schema(slot_types, alignment=alignment, version=version)
    made, snapshot_format, fixed_size, unpacker_fields = struct_proxy._full_snapshot_layout(schema)
    twin, shape, twin_unpacker_fields = _python_full_layout(schema)
    assert (snapshot_format, fixed_size, unpacker_fields) == (shape.snapshot_format, shape.fixed_size,
                                                              twin_unpacker_fields)
    assert list(made.__dict__) == list(twin.__dict__)
    assert made._proxy_item_indexes == twin._proxy_item_indexes
    assert made.__dict__['_proxy_accessors'].fields == twin.__dict__['_proxy_accessors'].fields
    for name in slot_types:
        mine, theirs = made.__dict__.get(name), twin.__dict__.get(name)
        if isinstance(mine, _native.objects.FieldReader):
            assert (mine.pointer_offset, mine.kind, mine.read) == (theirs.pointer_offset, theirs.kind, theirs.read)
        else:
            assert type(mine) is type(theirs)


def test_snapshot_layout_passes_on_errors_raised_by_codecs():
    layout = _native.objects.snapshot_layout
    kinds, immutable, base = struct_proxy._C_FIELD_KIND_NUMBERS, struct_proxy._IMMUTABLE, struct_proxy.ProxyBehaviour
    formats = struct_proxy.FIXED_FORMATS

    class Exploding:
        @property
        def nested_schema(self):
            raise RuntimeError('nested_schema exploded')

    class Meta(type):
        def __getattribute__(cls, name):
            if name == 'write':
                raise RuntimeError('write exploded')
            return super().__getattribute__(name)

    class ExplodingClass(metaclass=Meta):
        pass

    class Unhashable:
        __hash__ = None
        read = staticmethod(lambda buffer, position: None)

    slots = ('n', 'x')
    with pytest.raises(RuntimeError, match='nested_schema exploded'):
        layout(slots, {'n': int, 'x': Exploding()}, formats, 'B', kinds, immutable, base)
    with pytest.raises(RuntimeError, match='write exploded'):
        layout(slots, {'n': int, 'x': ExplodingClass}, formats, 'B', kinds, immutable, base)
    assert layout(slots, {'n': int, 'x': Unhashable()}, formats, 'B', kinds, immutable, base) is None
    with pytest.raises(TypeError):
        layout(slots, {'n': int, 'x': int}, formats, 5, kinds, immutable, base)
    assert layout(tuple('s%d' % n for n in range(65)), {}, formats, 'Q', kinds, immutable, base) is None


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
def test_snapshot_proxies_free_their_items_and_dict():
    packed = NATIVE_SCHEMA.pack(build(Record, SAMPLE_FULL))
    proxy = NATIVE_SCHEMA.unpack_from(packed, 0)

    class Marker:
        pass
    marker = Marker()
    proxy.extra = marker                    # in the proxy's __dict__
    assert proxy.name == 'n'                # a cached decoded value too
    watch = weakref.ref(marker)
    buffer_references = sys.getrefcount(packed)
    del marker, proxy
    assert watch() is None and sys.getrefcount(packed) == buffer_references - 1


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
def test_a_finalizer_added_to_a_snapshot_class_runs_and_may_resurrect():
    schema = Schema.from_typed_slots(Record)
    packed = schema.pack(build(Record, SAMPLE_FULL))
    cls = type(schema.unpack_from(packed, 0))
    seen = []
    type.__setattr__(cls, '__del__', lambda self: seen.append(self.number))
    proxy = schema.unpack_from(packed, 0)
    del proxy
    assert seen == [7]
    kept = []
    type.__setattr__(cls, '__del__', lambda self: kept.append(self))
    proxy = schema.unpack_from(packed, 0)
    del proxy
    assert len(kept) == 1 and kept[0].number == 7 and kept[0].name == 'n'   # resurrected, still whole
    type.__delattr__(cls, '__del__')
    kept.clear()


@pytest.mark.skipif(not hasattr(_native.objects, 'snapshot_class'), reason='Python 3.10 makes shape classes with type()')
def test_python_subclasses_of_snapshot_classes_and_long_chains_are_freed():
    schema = Schema.from_typed_slots(Record)
    packed = schema.pack(build(Record, SAMPLE_FULL))
    cls = type(schema.unpack_from(packed, 0))

    class Sub(cls):
        pass

    class Marker:
        pass
    original = schema.unpack_from(packed, 0)
    sub = tuple.__new__(Sub, [tuple.__getitem__(original, i) for i in range(tuple.__len__(original))])
    sub.note = Marker()
    watch, sub_class = weakref.ref(sub.note), weakref.ref(Sub)
    assert sub.number == 7
    del sub, Sub
    gc.collect()
    assert watch() is None and sub_class() is None     # the instance, then its class, were freed
    # a chain far deeper than the C stack allows recursion for: freed through the trashcan
    head = schema.unpack_from(packed, 0)
    for _ in range(200000):
        following = schema.unpack_from(packed, 0)
        following.next = head
        head = following
    del head, following
