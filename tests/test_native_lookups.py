"""Single-key lookups through the C KeyLookup/KeyedMethod (``_native/lookups.c``) and without.

A mapper or mapping opened while the C module is switched off has no ``_keys`` and runs the
Python methods; both must answer every key alike (found, missing, keys of other types, values
beyond 63 bits, compressed stored keys, corrupt rows), errors included.
"""
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, MappedMultiMappingProxyBase, NumericId32Mapper,
    NumericIdMapper, NumericIdMultiMapper, Schema, StringId32Mapper, StringIdMapper, StringIdMultiMapper)

pytestmark = pytest.mark.native_only


def open_twins(kind, buffer):
    native = kind.map_buffer(buffer)
    with mock.patch.object(_native, 'objects', None):
        pure = kind.map_buffer(buffer)
    assert '_keys' not in vars(pure)
    return native, pure


def outcome(call):
    try:
        value = call()
        if hasattr(value, 'x'):
            value = ('proxy', value.x)
        return ('value', type(value).__name__, value)
    except Exception as error:
        return ('error', type(error), str(error))


def assert_same_answers(native, pure, keys):
    for key in keys:
        for call in (lambda m: m.get(key), lambda m: m.get(key, 'absent'), lambda m: m.get(key, default=7),
                     lambda m: m[key], lambda m: key in m):
            assert outcome(lambda: call(native)) == outcome(lambda: call(pure)), key


OTHER_KEYS = [None, 1.5, b'abc', -1, 2**64, 2**70, 'x', '\udc80', 'ü', (), True]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), max_size=30),
       st.lists(st.integers(0, 2**64 - 1), max_size=10), st.sampled_from([NumericIdMapper, NumericId32Mapper]))
def test_numeric_mappers_answer_as_the_python_methods(entries, extra, kind):
    if kind is NumericId32Mapper:
        entries = {key % 2**32: value % 2**32 for key, value in entries.items()}
    buffer = kind.build(entries).buf
    native, pure = open_twins(kind, buffer)
    assert '_keys' in vars(native)
    assert_same_answers(native, pure, list(entries) + extra + OTHER_KEYS)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=12) | st.text(min_size=600, max_size=650).map(lambda t: t[:1] * len(t)),
                       st.integers(0, 2**64 - 1), max_size=20),
       st.lists(st.text(max_size=8), max_size=10), st.sampled_from([StringIdMapper, StringId32Mapper]))
def test_string_mappers_answer_as_the_python_methods(entries, extra, kind):
    if kind is StringId32Mapper:
        entries = {key: value % 2**32 for key, value in entries.items()}
    buffer = kind.build(entries).buf
    native, pure = open_twins(kind, buffer)
    assert '_keys' in vars(native)
    assert_same_answers(native, pure, list(entries) + extra + OTHER_KEYS)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupt_rows_give_the_same_answers(damage):
    entries = {'key%d' % number: number for number in range(12)}
    buffer = bytearray(StringIdMapper.build(entries).buf)
    for position, byte in damage:
        buffer[64 + position % (len(buffer) - 64)] = byte      # past the header: mapping still opens
    try:
        native, pure = open_twins(StringIdMapper, bytes(buffer))
    except (ValueError, IndexError):
        return
    assert_same_answers(native, pure, list(entries) + ['other'])


class Point:
    __slot_types__ = {'x': int}
    __slots__ = ('x',)

    def __init__(self, x):
        self.x = x


class PointArray(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


class PointsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = PointArray


class PointsById(MappedMappingProxyBase):
    IdMapper = NumericIdMapper
    ValueArray = PointArray


class PointsByNameMulti(MappedMultiMappingProxyBase):
    IdMapper = StringIdMultiMapper
    ValueArray = PointArray


@pytest.mark.parametrize('mapping, keys', [
    (PointsByName, ['a', 'b', 'c']), (PointsById, [1, 2, 3]), (PointsByNameMulti, ['a', 'b', 'c'])])
def test_mappings_answer_as_the_python_methods(mapping, keys):
    buffer = mapping.build([(key, Point(number)) for number, key in enumerate(keys)]).buf
    native, pure = open_twins(mapping, buffer)
    assert ('_keys' in vars(native)) == (not mapping.multi)
    assert_same_answers(native, pure, keys + OTHER_KEYS)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_mappings_give_the_same_answers(damage):
    # String lookups of a mapping prefetch the value array's index entry named by the row they
    # found (lookups.c): rows whose values point anywhere, keys and index entries damaged.
    keys = ['key%d' % number for number in range(12)]
    buffer = bytearray(PointsByName.build([(key, Point(number)) for number, key in enumerate(keys)]).buf)
    for position, byte in damage:
        buffer[position % len(buffer)] = byte
    try:
        native, pure = open_twins(PointsByName, bytes(buffer))
    except Exception:
        return
    assert_same_answers(native, pure, keys + ['other'])


def test_a_subclass_that_overrides_get_keeps_its_override():
    class Logged(PointsByName):
        def get(self, key, default=None):
            return ('logged', key)

    native = Logged.map_buffer(PointsByName.build([('a', Point(1))]).buf)
    assert '_keys' not in vars(native)
    assert native['a'] == ('logged', 'a')


def test_multi_mappers_keep_their_lists():
    buffer = NumericIdMultiMapper.build([(1, 10), (1, 11), (2, 12)]).buf
    mapper = NumericIdMultiMapper.map_buffer(buffer)
    assert sorted(mapper[1]) == [10, 11] and mapper.get(3) is None
    assert '_keys' not in vars(mapper)


def test_the_methods_keep_their_documentation():
    assert StringIdMapper.get.__doc__ == StringIdMapper.get.fallback.__doc__
    assert NumericIdMapper.__getitem__.__wrapped__ is NumericIdMapper.__getitem__.fallback
