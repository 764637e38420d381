"""Single-key lookups through the C KeyLookup/KeyedMethod (``_native/lookups.c``) and the searches
inside stored values (``_native/searches.c``), against the Python methods.

A mapper or mapping opened while the C module is switched off has no ``_keys`` and runs the
Python methods; both must answer every key alike (found, missing, keys of other types, values
beyond 63 bits, compressed stored keys, corrupt rows), errors included.
"""
import struct
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import _native
from sharedbuffers.mapped_struct import (
    ApproxStringId32MultiMapper, ApproxStringIdMultiMapper, MappedArrayProxyBase, MappedMappingProxyBase,
    MappedMultiMappingProxyBase, NumericId32Mapper, NumericId32MultiMapper, NumericIdMapper, NumericIdMultiMapper,
    ObjectIdMapper, Schema, StringId32Mapper, StringId32MultiMapper, StringIdMapper, StringIdMultiMapper,
    proxied_dict, proxied_frozenset)

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


object_keys = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(st.integers(-5, 200) | st.text(max_size=3),
                                                                        max_size=3), max_leaves=6)


class Text(str):
    pass


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(object_keys, st.integers(0, 2**64 - 1)), max_size=25), st.lists(object_keys, max_size=10))
def test_object_mappers_answer_as_the_python_methods(pairs, extra):
    buffer = ObjectIdMapper.build(pairs).buf
    native, pure = open_twins(ObjectIdMapper, buffer)
    assert '_keys' in vars(native)
    keys = [key for key, _ in pairs] + extra + OTHER_KEYS + [Text('x'), [1], ('t', [1]), 1j]
    assert_same_answers(native, pure, keys)


def test_object_mapper_keys_of_one_stable_hash_match_by_python_equality():
    # 0, False, 0.0, None, 1, True and 1.0 all have stable hash 1; the first equal stored key wins
    pairs = [(1, 10), (0.0, 20), (None, 30), (True, 40), (False, 50), (0, 60), (1.0, 70)]
    native, pure = open_twins(ObjectIdMapper, ObjectIdMapper.build(pairs).buf)
    assert_same_answers(native, pure, [0, 1, True, False, 0.0, 1.0, -0.0, None, 2, ()])
    assert native.get(True) == pure.get(True) and native.get(None) == pure.get(None) == 30


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupt_object_mapper_rows_and_keys_give_the_same_answers(damage):
    pairs = [(('k', number), number) for number in range(40)] + [('s%d' % number, number) for number in range(10)]
    buffer = bytearray(ObjectIdMapper.build(pairs).buf)
    for position, byte in damage:
        buffer[16 + position % (len(buffer) - 16)] = byte
    try:
        native, pure = open_twins(ObjectIdMapper, bytes(buffer))
    except (ValueError, IndexError):
        return
    assert_same_answers(native, pure, [key for key, _ in pairs] + ['other', ('k', 99)])


@pytest.mark.parametrize('count, directed', [(12, False), (200, True)], ids=['small', 'with a directory'])
@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupt_rows_give_the_same_answers(count, directed, damage):
    # With a directory: rows made unsorted get none; rows still sorted have one lower bound per key.
    entries = {'key%d' % number: number for number in range(count)}
    buffer = bytearray(StringIdMapper.build(entries).buf)
    for position, byte in damage:
        buffer[64 + position % (len(buffer) - 64)] = byte      # past the header: mapping still opens
    kind = with_directory(StringIdMapper) if directed else StringIdMapper
    try:
        native, pure = open_twins(kind, bytes(buffer))
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


class PointsByAnything(MappedMappingProxyBase):
    IdMapper = ObjectIdMapper
    ValueArray = PointArray


@pytest.mark.parametrize('mapping, keys', [
    (PointsByName, ['a', 'b', 'c']), (PointsById, [1, 2, 3]), (PointsByNameMulti, ['a', 'b', 'c']),
    (PointsByAnything, [('a', 1), 'b', 3, None, b'e'])])
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


MULTI_CASES = [
    (NumericIdMultiMapper, [(1, 10), (1, 11), (2, 12), (2**64 - 1, 2**64 - 1), (2**64 - 1, 0), (7, 1)],
     [1, 2, 3, 7, 2**64 - 1, 2**64, -1, True, 1.0, '1', None]),
    (NumericId32MultiMapper, [(1, 10), (1, 11), (2**32 - 1, 2**32 - 1)], [1, 2, 2**32 - 1, 2**32, -1, 'x']),
    (StringIdMultiMapper, [('a', 1), ('a', 2), ('b', 3), ('é', 4), ('', 5)],
     ['a', 'b', 'é', '', 'c', b'a', 1, None]),
    (StringId32MultiMapper, [('a', 1), ('a', 2), ('b', 3)], ['a', 'b', 'c', b'b']),
    (ApproxStringIdMultiMapper, [('a', 1), ('a', 2), ('b', 3), (99, 4)], ['a', 'b', 'c', 99, 98, b'a', -1, 2.5]),
    (ApproxStringId32MultiMapper, [('a', 1), ('a', 2), ('b', 3)], ['a', 'b', 'c', 2**40, b'b']),
]


@pytest.mark.parametrize('kind, pairs, probes', MULTI_CASES, ids=[case[0].__name__ for case in MULTI_CASES])
def test_multi_mappers_answer_in_c_with_every_value(kind, pairs, probes):
    """get, [] and `in` of a multi mapper: one C call for a key of its own type, giving every value
    in row order, as the Python methods do for every key."""
    mapper = kind.map_buffer(kind.build(pairs).buf)
    assert '_keys' in vars(mapper)
    python_get, python_getitem = kind.get.fallback, kind.__getitem__.fallback
    for key in probes:
        expected = python_get(mapper, key, 'missing')
        assert mapper.get(key, 'missing') == expected and (key in mapper) == (expected != 'missing')
        if expected == 'missing':
            with pytest.raises(KeyError):
                mapper[key]
        else:
            assert mapper[key] == python_getitem(mapper, key) == expected
    first = pairs[0][0]
    assert mapper.get(first) == [value for key, value in pairs if key == first]


def test_the_methods_keep_their_documentation():
    assert StringIdMapper.get.__doc__ == StringIdMapper.get.fallback.__doc__
    assert NumericIdMapper.__getitem__.__wrapped__ is NumericIdMapper.__getitem__.fallback


# -- directories (lookups.c: KeyLookup builds one after enough lookups) -------------------------

def with_directory(kind):
    """``kind`` whose instances build their directory at the first lookup."""
    return type('Directed' + kind.__name__, (kind,), {'lookup_directory_after': 0})


sorted_key_sets = st.one_of(
    st.sets(st.integers(0, 2**64 - 1), min_size=64, max_size=400),                   # spread out
    st.sets(st.integers(0, 5000), min_size=64, max_size=400),                          # dense
    st.tuples(st.sets(st.integers(0, 1000), min_size=64, max_size=300),                # a cluster and
              st.sets(st.integers(2**63, 2**64 - 1), max_size=3)).map(lambda t: t[0] | t[1]),  # outliers
)


@settings(max_examples=60, deadline=None)
@given(sorted_key_sets, st.lists(st.integers(0, 2**64 - 1), max_size=20), st.sampled_from([NumericIdMapper,
                                                                                          NumericId32Mapper]))
def test_numeric_lookups_through_the_directory_answer_as_the_python_methods(keys, extra, kind):
    if kind is NumericId32Mapper:
        keys = {key % 2**32 for key in keys}
    entries = {key: number for number, key in enumerate(sorted(keys))}
    buffer = kind.build(entries).buf
    native, pure = open_twins(with_directory(kind), buffer)
    probes = list(entries) + [key + 1 for key in entries] + [key - 1 for key in entries if key] + extra
    assert_same_answers(native, pure, probes + OTHER_KEYS)
    if len(entries) >= 64:
        assert native._keys.directory_bytes > 0


@settings(max_examples=30, deadline=None)
@given(st.sets(st.text(max_size=10), min_size=64, max_size=300), st.lists(st.text(max_size=8), max_size=20),
       st.sampled_from([StringIdMapper, StringId32Mapper]))
def test_string_lookups_through_the_directory_answer_as_the_python_methods(keys, extra, kind):
    entries = {key: number for number, key in enumerate(sorted(keys))}
    buffer = kind.build(entries).buf
    native, pure = open_twins(with_directory(kind), buffer)
    assert_same_answers(native, pure, list(entries) + extra + OTHER_KEYS)
    assert native._keys.directory_bytes > 0


MULTI_KINDS = [NumericIdMultiMapper, NumericId32MultiMapper, StringIdMultiMapper, StringId32MultiMapper,
               ApproxStringIdMultiMapper, ApproxStringId32MultiMapper]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2**64 - 1)), min_size=1, max_size=400),
       st.lists(st.integers(0, 400), max_size=10), st.sampled_from(MULTI_KINDS), st.booleans())
def test_multi_lookups_answer_as_the_python_methods(pairs, extra, kind, directed):
    """Every value of a key, with and without the directory, runs of equal keys across its buckets."""
    as_key = (lambda number: 'key-%d' % number) if kind.__name__.startswith(('String', 'Approx')) else int
    width = 32 if '32' in kind.__name__ else 64
    rows = [(as_key(key), value % 2**width) for key, value in pairs]
    buffer = kind.build(rows).buf
    native, pure = open_twins(with_directory(kind) if directed else kind, buffer)
    assert_same_answers(native, pure, [as_key(key) for key in range(0, 401, 7)] + [as_key(key) for key in extra]
                        + OTHER_KEYS)
    key = rows[0][0]
    assert sorted(native[key]) == sorted(value for other, value in rows if other == key)


def test_the_directory_comes_after_enough_lookups_and_stays_small():
    entries = {number * 7919: number for number in range(5000)}
    mapper = NumericIdMapper.map_buffer(NumericIdMapper.build(entries).buf)
    keys = list(entries)
    for key in keys[:1024]:
        assert mapper[key] == entries[key]
    assert mapper._keys.directory_bytes == 0            # count / 32 < 1024: after 1024 lookups
    assert mapper.get(keys[1024]) == 1024
    assert 0 < mapper._keys.directory_bytes <= 2 * len(entries) + 8
    assert [mapper.get(key) for key in keys] == list(range(5000))
    never = type('Undirected', (NumericIdMapper,), {'lookup_directory_after': 2**64 - 1})
    mapper = never.map_buffer(mapper.buf)
    assert [mapper.get(key) for key in keys] == list(range(5000)) and mapper._keys.directory_bytes == 0


def test_a_directory_is_not_made_for_unsorted_rows():
    mapper = NumericIdMapper.build({number: number for number in range(100)})
    buffer = bytearray(mapper.buf)
    rows = mapper.rows
    # swap the keys of rows 10 and 90 in the copy
    start = mapper._index_start
    width = mapper._row_bytes
    buffer[start + 10 * width:start + 10 * width + 8], buffer[start + 90 * width:start + 90 * width + 8] = (
        bytes(buffer[start + 90 * width:start + 90 * width + 8]), bytes(buffer[start + 10 * width:start + 10 * width + 8]))
    assert rows[10, 0] == 10
    native, pure = open_twins(with_directory(NumericIdMapper), bytes(buffer))
    assert native._keys.make_directory() is False and native._keys.directory_bytes == 0
    assert_same_answers(native, pure, list(range(100)))


# -- bound methods (lookups.c: BoundKeyed) ----------------------------------------------------

def test_bound_methods_behave_as_bound_methods():
    mapper = NumericIdMapper.build({1: 10, 2: 20})
    get = mapper.get
    assert type(get).__name__ == 'BoundKeyed'
    assert get.__self__ is mapper and get.__func__ is NumericIdMapper.get
    assert get.__name__ == 'get' and get.__doc__ == NumericIdMapper.get.fallback.__doc__
    assert get == mapper.get and hash(get) == hash(mapper.get) and get != mapper.__getitem__
    assert get != NumericIdMapper.build({1: 10}).get
    assert repr(get).startswith('<bound method ') and 'get of ' in repr(get)
    assert get(1) == 10 and get(3) is None and get(3, 'no') == 'no' and get(key=2) == 20
    assert mapper.__getitem__(2) == 20 and mapper.__contains__(1) and not mapper.__contains__(5)
    with pytest.raises(KeyError):
        mapper.__getitem__(3)
    with pytest.raises(TypeError):
        get()


def test_a_bound_get_does_not_keep_a_mapper_from_closing(tmp_path):
    path = tmp_path / 'm.idm'
    with open(path, 'w+b') as f:
        StringIdMapper.build({'a': 1, 'b': 2}, destfile=f, return_mapper=False)
    mapper = StringIdMapper.map_file(str(path))
    get, contains = mapper.get, mapper.__contains__
    assert get('a') == 1 and contains('b')
    mapper.close()
    with pytest.raises(ValueError) as closed:
        get('a')
    with pytest.raises(ValueError) as closed_too:
        mapper.get('a')
    assert str(closed.value) == str(closed_too.value)


def test_a_bound_mapping_get_does_not_keep_a_mapping_from_closing(tmp_path):
    path = tmp_path / 'points.map'
    with open(path, 'w+b') as f:
        PointsByName.build([('a', Point(1)), ('b', Point(2))], destfile=f)
    mapping = PointsByName.map_file(str(path))
    get = mapping.get
    assert type(get).__name__ == 'BoundKeyed'
    assert get('a').x == 1 and get('zz', 5) == 5
    mapping.close()
    with pytest.raises(ValueError):
        get('a')


def test_lookups_alternate_between_mappers_and_mappings_of_one_class():
    # KeyedMethod remembers the last instance's _keys/_values (objects.h: PartsCache).
    mappers = [NumericIdMapper.build({key: key * 10 + number for key in range(50)}) for number in range(3)]
    mappings = [PointsByName.build([('k%d' % key, Point(key * 10 + number)) for key in range(20)])
                for number in range(3)]
    for key in range(20):
        for number in range(3):
            assert mappers[number][key] == key * 10 + number and mappers[number].get(key) == key * 10 + number
            assert mappings[number]['k%d' % key].x == key * 10 + number
            assert mappings[number].get('k%d' % key).x == key * 10 + number
    for round_number in range(20):
        mapper = NumericIdMapper.build({1: round_number})
        assert mapper[1] == round_number and mapper.get(1) == round_number
        del mapper


def test_a_closed_mapping_refuses_lookups_while_another_answers(tmp_path):
    opened = []
    for number in range(2):
        path = tmp_path / ('points%d.map' % number)
        with open(path, 'w+b') as f:
            PointsByName.build([('a', Point(number))], destfile=f)
        opened.append(PointsByName.map_file(str(path)))
    closing, staying = opened
    assert closing['a'].x == 0 and staying['a'].x == 1
    closing.close()
    with pytest.raises(ValueError):
        closing['a']
    with pytest.raises(ValueError):
        closing.get('a')
    assert staying['a'].x == 1 and staying.get('a').x == 1


def test_the_directory_of_a_big_mapper_stays_within_4_mb():
    numpy = pytest.importorskip('numpy')
    count = 5_000_000                               # count / 4 buckets would take 5 MB
    rows = numpy.empty((count, 2), numpy.uint64)
    rows[:, 0] = numpy.arange(count, dtype=numpy.uint64) * 3
    rows[:, 1] = numpy.arange(count, dtype=numpy.uint64)
    keys = _native.objects.KeyLookup(rows, 0, 0, count, 2, 8, False, directory_after=0)
    assert keys.make_directory() is True
    assert 0 < keys.directory_bytes <= 4 * 2**20 + 8
    mapper_type = type('Rows', (NumericIdMapper,), {'lookup_directory_after': 0})
    header = numpy.array([count, 16], numpy.uint64).tobytes()
    mapper = mapper_type.map_buffer(header + rows.tobytes())
    probes = [0, 3, 4, 3 * 1234567, 3 * 1234567 + 1, 3 * (count - 1), 3 * count]
    assert [mapper.get(key) for key in probes] == [0, 1, None, 1234567, None, count - 1, None]
    assert 0 < mapper._keys.directory_bytes <= 4 * 2**20 + 8


def test_a_bound_get_pickles_as_its_mapper_does():
    import pickle
    mapper = NumericIdMapper.build_shared({1: 10, 2: 20})
    try:
        get = pickle.loads(pickle.dumps(mapper.get))
        assert type(get).__name__ == 'BoundKeyed' and get(1) == 10 and get(3, 'x') == 'x'
    finally:
        mapper.shared_segment.unlink()
    with pytest.raises(TypeError, match='shared memory'):
        pickle.dumps(NumericIdMapper.build({1: 10}).get)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.binary(max_size=12), st.just('ab' * 3000)), min_size=1,
                max_size=40, unique=True),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.sampled_from([StringIdMapper, StringIdMultiMapper]))
def test_string_keys_iterate_as_the_python_methods_read_them(keys, damage, kind):
    """keys()/items() decode stored keys in C (KeyLookup.stored_keys) a chunk at a time, and
    iteritems()/iterkeys() in stored order a list of rows at a time; what they give, and the error
    for a damaged key, are the pure-Python iteration's."""
    buffer = bytearray(kind.build([(key, number) for number, key in enumerate(keys)]).buf)
    for position, byte in damage:
        buffer[position % len(buffer)] = byte
    try:
        native, pure = open_twins(kind, bytes(buffer))
    except (ValueError, IndexError):
        return                  # a damaged header: nothing to iterate
    assert outcome(lambda: list(native.items())) == outcome(lambda: list(pure.items()))
    assert outcome(lambda: list(native.keys())) == outcome(lambda: list(pure.keys()))
    # in stored order (KeyLookup.stored_items / stored_keys of a list of rows)
    assert outcome(lambda: list(native.iteritems())) == outcome(lambda: list(pure.iteritems()))
    assert outcome(lambda: list(native.iterkeys())) == outcome(lambda: list(pure.iterkeys()))


def test_stored_rows_are_read_by_range_or_by_list():
    mapper = StringIdMapper.build([('a', 1), ('bb', 2), ('ccc', 3)])
    lookup = vars(mapper)['_keys']
    rows = [row for row in range(3)]
    assert lookup.stored_keys(0, 3) == lookup.stored_keys(rows) == ([mapper._key_of_row(row) for row in rows], 0)
    items, deferred = lookup.stored_items([2, 0])
    assert deferred == 0 and items == [mapper._item_of_row(2), mapper._item_of_row(0)]
    assert lookup.stored_items(1, 99)[0] == [mapper._item_of_row(1), mapper._item_of_row(2)]   # clamped
    with pytest.raises(IndexError, match='row 3 of a mapper of 3 rows'):
        lookup.stored_items([0, 3])
    import numpy
    assert lookup.stored_items(numpy.array([2, 0], numpy.int64)) == (items, 0)
    assert lookup.stored_keys(numpy.array([1, 2], numpy.uint64)[::-1])[0] == [mapper._key_of_row(2),
                                                                              mapper._key_of_row(1)]
    for rows in ((0, 1, 2), numpy.array([0, 1], numpy.int32), numpy.zeros((1, 1), numpy.int64), 'ab'):
        with pytest.raises(TypeError, match='64-bit row numbers'):
            lookup.stored_keys(rows)
    with pytest.raises(IndexError, match='row -1'):
        lookup.stored_keys(numpy.array([0, -1], numpy.int64))
    with pytest.raises(OverflowError):
        lookup.stored_keys([-1])
    with pytest.raises(TypeError, match='not a string mapper'):
        vars(NumericIdMapper.build({1: 2}))['_keys'].stored_items(0, 1)


# -- a dict's key index (searches.c: object_index_find, under proxied_dict and ObjectIndexView) ----

class Holder:
    __slot_types__ = {'table': proxied_dict}
    __slots__ = ('table',)


HOLDER_SCHEMA = Schema.from_typed_slots(Holder)


def packed_table(entries):
    holder = Holder()
    holder.table = entries
    return bytes(HOLDER_SCHEMA.pack(holder))


def table_answers(buffer, keys, pure):
    def run():
        try:
            table = HOLDER_SCHEMA.unpack_from(buffer, 0).table
        except Exception as error:
            return [('error', type(error), str(error))]
        return [outcome(lambda: call(table)) for key in keys
                for call in (lambda t: t.get(key), lambda t: t.get(key, 'absent'), lambda t: t[key],
                             lambda t: key in t)]
    if not pure:
        return run()
    with mock.patch.object(_native, 'objects', None):
        return run()


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(object_keys, st.integers(-2**63, 2**63 - 1) | st.text(max_size=4), max_size=20),
       st.lists(object_keys, max_size=8))
def test_dict_key_indexes_answer_as_the_python_methods(entries, extra):
    buffer = packed_table(entries)
    keys = list(entries) + extra + OTHER_KEYS + [Text('x'), [1], 1j]
    assert table_answers(buffer, keys, False) == table_answers(buffer, keys, True)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_damaged_dict_key_indexes_give_the_same_answers(damage):
    entries = {('k', number): number for number in range(30)}
    entries.update({'s%d' % number: -number for number in range(10)})
    buffer = bytearray(packed_table(entries))
    for position, byte in damage:
        buffer[position % len(buffer)] = byte
    keys = list(entries) + ['other', ('k', 99), None]
    assert table_answers(bytes(buffer), keys, False) == table_answers(bytes(buffer), keys, True)


def test_object_index_find_validates_and_defers():
    find = _native.objects.object_index_find
    with pytest.raises(TypeError):
        find(b'', 0)
    assert find(bytes(8), 0, 'key') is NotImplemented         # header outside the buffer
    assert find(packed_table({'a': 1}), -1, 'a') is NotImplemented
    assert find(packed_table({'a': 1}), 0, [1]) is NotImplemented    # not hashed in C


# -- membership in a proxied frozenset of numbers (searches.c: numbers_contain) -------------------

class Members:
    __slot_types__ = {'members': proxied_frozenset}
    __slots__ = ('members',)


MEMBERS_SCHEMA = Schema.from_typed_slots(Members)

number_sets = (st.frozensets(st.integers(120, 255), max_size=40) | st.frozensets(st.integers(-128, 127), max_size=40)
               | st.frozensets(st.integers(0, 65535), max_size=40) | st.frozensets(st.integers(-2**15, 2**15), max_size=40)
               | st.frozensets(st.integers(-2**31, 2**31), max_size=40) | st.frozensets(st.integers(0, 2**32 - 1), max_size=40)
               | st.frozensets(st.integers(-2**63, 2**63 - 1), max_size=40)
               | st.frozensets(st.integers(2**63, 2**64 - 1), min_size=1, max_size=40)
               | st.frozensets(st.floats(allow_nan=False), max_size=40))
probes = st.integers(-2**70, 2**70) | st.floats() | st.booleans() | st.sampled_from([0, -1, 255, 256, 2**63, 2**64, 3.0])


def membership(buffer, items, pure):
    def run():
        members = MEMBERS_SCHEMA.unpack_from(buffer, 0).members
        return [outcome(lambda: item in members) for item in items]
    if not pure:
        return run()
    with mock.patch.object(_native, 'objects', None):
        return run()


@settings(max_examples=150, deadline=None)
@given(number_sets, st.lists(probes, max_size=10))
def test_number_set_membership_answers_as_the_python_bisect(members, extra):
    holder = Members()
    holder.members = members
    buffer = bytes(MEMBERS_SCHEMA.pack(holder))
    items = list(members) + [member + 1 for member in members] + extra
    assert membership(buffer, items, False) == membership(buffer, items, True)


def test_float32_arrays_and_damaged_headers_answer_as_the_python_bisect():
    numbers = sorted({0.5, -2.25, 3.0, 1e30})
    body = b'f' + len(numbers).to_bytes(7, 'little') + struct.pack('=%df' % len(numbers), *numbers)
    find = _native.objects.numbers_contain
    assert [find(body, 0, item) for item in (0.5, 3.0, 3, 2.0)] == [True, True, NotImplemented, False]
    for cut in range(len(body)):        # the numbers no longer fit: the Python code raises its error
        assert find(body[:cut], 0, 0.5) is NotImplemented
    assert find(body, -1, 0.5) is NotImplemented and find(body, 2**70, 0.5) is NotImplemented
