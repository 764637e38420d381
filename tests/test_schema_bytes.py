"""The stored-schema check: ``_native/schema_pickle.c`` writes what ``pickle.dumps(x, 2)`` writes.

Opening a typed array compares the schema the file stores with the declared one's pickle
(``schema_bytes.stores_schema``).  The native writer is only trusted because it gives
pickle's bytes exactly, or None for what it leaves to pickle: these tests hold it to that
over generated schemas and generated values.
"""
import copyreg
import pickle
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native, schema_bytes
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema, mapped_object
from sharedbuffers.types import numbers

pytestmark = pytest.mark.native_only


def native_pickle(value):
    return _native.objects.schema_pickle(value, *schema_bytes._PICKLE_CONTEXT)


def agrees_with_pickle(value):
    """The native bytes are pickle's, or None (left to pickle); returns the native answer."""
    written = native_pickle(value)
    if written is not None:
        assert written == pickle.dumps(value, 2)
    return written


class Point:
    __slot_types__ = {'x': int, 'y': float, 'label': str}


class Segment:
    __slot_types__ = {'start': Point, 'end': Point, 'weight': numbers.uint16, 'tags': list}


Point.__schema__ = Schema.from_typed_slots(Point)
mapped_object.register_schema(Point, Point.__schema__, 0xD1)
Segment.__schema__ = Schema.from_typed_slots(Segment)


SLOT_TYPES = [int, float, bool, str, bytes, list, tuple, frozenset, dict, object, numbers.int8, numbers.uint8,
              numbers.int16, numbers.uint32, numbers.int64, numbers.uint64, numbers.float32, numbers.float64, Point]

plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 40, max_value=2 ** 40) | st.text(max_size=12),
    lambda inner: (st.lists(inner, max_size=5) | st.tuples(inner) | st.tuples(inner, inner, inner, inner)
                   | st.dictionaries(st.text(max_size=6), inner, max_size=5)),
    max_leaves=25)


@st.composite
def schemas(draw):
    names = draw(st.lists(st.from_regex(r'[a-z][a-z0-9_]{0,8}', fullmatch=True), min_size=1, max_size=12,
                          unique=True))
    slot_types = {name: draw(st.sampled_from(SLOT_TYPES)) for name in names}
    schema = Schema(slot_types, alignment=draw(st.sampled_from([1, 2, 4, 8, 16])))
    if draw(st.booleans()):
        schema.set_user_data(draw(plain_values))
    return schema


def test_the_bench_shaped_schema_is_written_natively_and_matches():
    assert agrees_with_pickle(Segment.__schema__) is not None


@settings(max_examples=300, deadline=None)
@given(schemas())
def test_generated_schemas_pickle_to_the_same_bytes(schema):
    written = agrees_with_pickle(schema)
    user_data = schema.user_data
    if user_data is None or not _holds_ints_beyond_32_bits(user_data):
        assert written is not None, 'a schema of slot types and plain user data is written natively'


def _holds_ints_beyond_32_bits(value):
    if type(value) is int:
        return not -2 ** 31 <= value < 2 ** 31
    if isinstance(value, (list, tuple)):
        return any(_holds_ints_beyond_32_bits(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_ints_beyond_32_bits(item) for item in value.values())
    return False


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_generated_values_pickle_to_the_same_bytes(value):
    agrees_with_pickle(value)


def test_shared_objects_are_written_once_then_referenced_from_the_memo():
    shared = ['a', 'b']
    value = {'one': shared, 'two': shared, 'three': (shared, shared)}
    written = agrees_with_pickle(value)
    assert written is not None and written.count(b'h') >= 2


def test_more_than_256_memoized_objects_use_long_memo_numbers():
    value = [str(number) for number in range(300)] * 2
    written = agrees_with_pickle(value)
    assert written is not None and b'r' in written and b'j' in written


def test_batch_boundaries_and_sizes_of_ints():
    for value in ([], [1], [1, 2], {}, {1: 2}, {1: 2, 3: 4}, (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
                  [0, 255, 256, 65535, 65536, -1, -2 ** 31, 2 ** 31 - 1], [True, False, None]):
        assert agrees_with_pickle(value) is not None


def test_python_2_names_are_written_as_pickle_maps_them():
    written = agrees_with_pickle([int, str, bytes, dict, list, tuple, frozenset, object])
    assert written is not None and b'__builtin__' in written


@pytest.mark.parametrize('value', [
    2 ** 40, 1.5, 'lone \udc80 surrogate', list(range(1000)), {number: number for number in range(1000)},
    type(None), type(NotImplemented), type(Ellipsis), type('Unreachable', (), {'__module__': __name__}),
    Point.__init__, {1, 2}, b'bytes'],
    ids=['big int', 'float', 'surrogate', 'long list', 'long dict', 'NoneType', 'NotImplementedType', 'ellipsis',
         'class not importable by name', 'function', 'set', 'bytes'])
def test_what_the_native_writer_leaves_to_pickle(value):
    assert native_pickle(value) is None


def test_a_nested_class_is_left_to_pickle():
    assert native_pickle(Nesting.Inside) is None


class Nesting:
    class Inside:
        pass


def test_a_class_with_a_copyreg_reducer_for_its_metaclass_is_left_to_pickle():
    class Meta(type):
        pass

    Registered = Meta('Registered', (), {'__module__': __name__})
    globals()['Registered'] = Registered
    try:
        assert native_pickle(Registered) is not None
        with mock.patch.dict(copyreg.dispatch_table, {Meta: lambda cls: (Meta, ('Registered', (), {}))}):
            assert native_pickle(Registered) is None
    finally:
        del globals()['Registered']


def test_a_class_in_the_extension_registry_is_left_to_pickle():
    globals()['Extended'] = Extended = type('Extended', (), {'__module__': __name__})
    try:
        copyreg.add_extension(__name__, 'Extended', 0x7FFF0001)
        try:
            assert native_pickle(Extended) is None
        finally:
            copyreg.remove_extension(__name__, 'Extended', 0x7FFF0001)
        assert native_pickle(Extended) is not None
    finally:
        del globals()['Extended']


class Node:
    pass


Node.__slot_types__ = {'value': int, 'next': Node}


def test_a_self_referencing_schema_is_left_to_pickle():
    schema = Schema.from_typed_slots(Node)
    mapped_object.register_schema(Node, schema, 0xD2)
    schema.reinitialize()
    assert schema.slot_types['next'].schema is schema
    assert native_pickle(schema) is None            # pickle writes the cycle with POP and a memo reference
    assert schema_bytes.stores_schema(pickle.dumps(schema, 2), schema)


class Records(MappedArrayProxyBase):
    schema = Segment.__schema__


class OtherRecords(MappedArrayProxyBase):
    schema = Point.__schema__


def test_stores_schema_tells_the_declared_schema_from_another():
    stored = schema_bytes.stored_schema_bytes(Segment.__schema__)
    assert stored == pickle.dumps(Segment.__schema__, 2)
    assert schema_bytes.stores_schema(stored, Segment.__schema__)
    assert not schema_bytes.stores_schema(stored, Point.__schema__)
    with mock.patch.object(_native, 'objects', None):
        assert schema_bytes.stores_schema(stored, Segment.__schema__)
        assert not schema_bytes.stores_schema(stored, Point.__schema__)


def test_an_unpicklable_schema_is_never_taken_for_the_stored_one():
    schema = Schema(dict(Point.__slot_types__))
    schema.set_user_data(lambda: None)             # neither writer can write a lambda
    assert not schema_bytes.stores_schema(pickle.dumps(Point.__schema__, 2), schema)


def test_an_array_opened_with_another_declared_schema_reads_with_the_stored_one(tmp_path):
    start, end = Point(), Point()
    start.x, start.y, start.label = 1, 2.5, 'a'
    end.x, end.y, end.label = 3, 4.5, 'b'
    segment = Segment()
    segment.start, segment.end, segment.weight, segment.tags = start, end, 7, [1, 2]
    path = str(tmp_path / 'segments')
    Records.build([segment], destfile=path)
    with open(path, 'rb') as stored:
        data = stored.read()
    opened = Records.map_buffer(data)
    assert opened.schema is Segment.__schema__ and opened[0].end.label == 'b'
    foreign = OtherRecords.map_buffer(data)
    assert foreign.schema is not Point.__schema__ and foreign.schema.compatible(Segment.__schema__)
    assert foreign[0].end.label == 'b' and foreign[0].weight == 7
