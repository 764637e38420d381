"""Id mappers: every kind against a dict model, 1.x's files and bugs (FORMAT.md §8)."""
import collections
import os

import pytest
from hypothesis import given, settings, strategies as st

from conftest import FIXTURES_DIR, load_fixture_checker, load_manifest
from sharedbuffers import mapped_struct as ms

CHECKER = load_fixture_checker()
MANIFEST = load_manifest()

SINGLE = [ms.NumericIdMapper, ms.NumericId32Mapper, ms.StringIdMapper, ms.StringId32Mapper, ms.ObjectIdMapper]
MULTI = [ms.NumericIdMultiMapper, ms.NumericId32MultiMapper, ms.StringIdMultiMapper, ms.StringId32MultiMapper,
         ms.ApproxStringIdMultiMapper, ms.ApproxStringId32MultiMapper]


def build(cls, pairs, **options):
    return cls.build(pairs, **options)


def keys_for(cls):
    if cls.__name__.startswith('Numeric'):
        return st.integers(0, (1 << cls.width) - 1)
    if cls.__name__.startswith(('String', 'Approx')):
        return st.text(max_size=12)
    return st.none() | st.integers(-1000, 1000) | st.text(max_size=6) | st.binary(max_size=6) | \
        st.tuples(st.integers(0, 5), st.text(max_size=3))


def values_for(cls):
    return st.integers(0, (1 << cls.width) - 1)


@pytest.mark.parametrize('cls', SINGLE, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_single_valued_mappers_behave_like_a_dict(cls, data):
    model = data.draw(st.dictionaries(keys_for(cls), values_for(cls), max_size=40))
    mapper = build(cls, model)
    assert len(mapper) == len(model)
    for key, value in model.items():
        assert mapper.get(key) == value and mapper[key] == value and key in mapper
    assert dict(mapper.items()) == model
    probe = data.draw(keys_for(cls))
    if probe not in model:
        assert mapper.get(probe) is None and probe not in mapper
        with pytest.raises(KeyError):
            mapper[probe]


@pytest.mark.parametrize('cls', MULTI, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_multi_mappers_return_every_value_of_a_key(cls, data):
    pairs = data.draw(st.lists(st.tuples(keys_for(cls) if not cls.__name__.startswith('Approx') else st.text(max_size=8),
                                         values_for(cls)), max_size=40))
    model = collections.defaultdict(list)
    for key, value in pairs:
        model[key].append(value)
    mapper = build(cls, pairs)
    assert len(mapper) == len(pairs)
    for key, values in model.items():
        assert sorted(mapper.get(key)) == sorted(values) and key in mapper


@pytest.mark.parametrize('cls', [ms.NumericId32Mapper, ms.NumericId32MultiMapper], ids=lambda cls: cls.__name__)
def test_32_bit_mappers_refuse_keys_they_cannot_hold(cls):
    with pytest.raises(OverflowError):
        build(cls, [(2 ** 32 + 5, 1)])          # 1.x truncated it silently to 5


@pytest.mark.parametrize('cls', SINGLE + MULTI, ids=lambda cls: cls.__name__)
def test_values_must_fit_the_width(cls):
    key = 1 if cls.__name__.startswith('Numeric') else 'k'
    with pytest.raises(OverflowError):
        build(cls, [(key, 1 << cls.width)])


@pytest.mark.parametrize('cls', [ms.NumericIdMapper, ms.StringIdMapper, ms.ObjectIdMapper], ids=lambda cls: cls.__name__)
def test_build_takes_a_dict(cls):
    key = 7 if cls is ms.NumericIdMapper else 'seven'
    assert build(cls, {key: 7})[key] == 7      # 1.x: AttributeError 'iteritems'


def test_string_mappers_at_non_zero_offsets_of_one_file_are_readable(tmp_path):
    path = tmp_path / 'two.bin'
    with open(path, 'w+b') as f:
        f.write(b'x' * 100)
        first = ms.StringIdMapper.build({'a': 1, 'b': 2}, f)
        second_start = f.tell()
        second = ms.StringIdMapper.build({'c': 3}, f)
    assert first['b'] == 2 and second['c'] == 3
    assert ms.StringIdMapper.map_file(str(path), second_start)['c'] == 3     # 1.x: KeyError


def test_string_keys_come_back_as_str():
    mapper = build(ms.StringIdMapper, {'ñ': 1, 'a': 2})
    assert sorted(mapper.keys()) == ['a', 'ñ']
    assert mapper.get('ñ'.encode()) == 1        # bytes and str of the same UTF-8 are one key


def test_object_mappers_keep_str_and_bytes_apart_and_use_python_equality():
    mapper = build(ms.ObjectIdMapper, [('a', 1), (b'a', 2), (1, 3)])
    assert (mapper['a'], mapper[b'a'], mapper[True], mapper[1.0]) == (1, 2, 3, 3)


def test_map_buffer_accepts_bytes():
    data = bytes(build(ms.ObjectIdMapper, {'k': 1}).buf)
    assert ms.ObjectIdMapper.map_buffer(data)['k'] == 1


@pytest.mark.parametrize('cls', [ms.NumericIdMapper, ms.StringIdMapper, ms.ObjectIdMapper], ids=lambda cls: cls.__name__)
def test_get_many_matches_get(cls):
    keys = list(range(0, 200, 3)) if cls is ms.NumericIdMapper else ['k%d' % i for i in range(0, 200, 3)]
    mapper = build(cls, {key: number for number, key in enumerate(keys)})
    probes = keys[::2] + ([1, 2, 10 ** 6] if cls is ms.NumericIdMapper else ['missing', 'k1'])
    assert mapper.get_many(probes) == [mapper.get(probe) for probe in probes]


@pytest.mark.parametrize('cls', SINGLE + MULTI, ids=lambda cls: cls.__name__)
def test_merge_works_for_every_kind(cls):
    key = (lambda i: i) if cls.__name__.startswith('Numeric') else (lambda i: 'k%d' % i)
    merged = cls.merge([build(cls, [(key(1), 1), (key(2), 2)]), build(cls, [(key(3), 3)])])
    assert len(merged) == 3
    assert merged.get(key(3)) in (3, [3])


def test_discard_options():
    pairs = [(1, 5), (1, 5), (1, 6), (2, 7)]
    assert len(build(ms.NumericIdMultiMapper, pairs)) == 4
    assert sorted(build(ms.NumericIdMultiMapper, pairs, discard_duplicates=True).get(1)) == [5, 6]
    assert build(ms.NumericIdMultiMapper, pairs, discard_duplicate_keys=True).get(1) == [5]


def test_a_corrupt_header_is_a_clean_error():
    data = bytearray(build(ms.StringIdMapper, {'a': 1}).buf)
    data[0] = 200       # 200 rows
    with pytest.raises(ValueError):
        ms.StringIdMapper.map_buffer(bytes(data))
    with pytest.raises((ValueError, IndexError)):
        ms.StringIdMapper.map_buffer(bytes(data[:10]))


# Mappers whose bytes do not depend on unrecorded input order: the manifest lists their keys in
# build order, and numeric multi mappers sort rows by (key, value).
BYTE_EXACT = ['idmap_string', 'idmap_string32', 'idmap_approx', 'idmap_approx32', 'idmap_numeric', 'idmap_numeric32',
              'idmap_numeric_multi', 'idmap_numeric32_multi', 'idmap_string_empty', 'idmap_numeric_empty',
              'idmap_object_empty']


@pytest.mark.parametrize('name', BYTE_EXACT)
def test_we_write_the_mapper_files_1_2_3_wrote(name, tmp_path):
    fixture = next(fixture for fixture in MANIFEST['fixtures'] if fixture['name'] == name)
    pairs = []
    for key, value in fixture['expected']['lookups']:
        if isinstance(key, dict) and '$bytes' in key:
            continue                            # a second lookup of a str key, not a row
        for one in (value if fixture.get('multi') else [value]):
            pairs.append((CHECKER.decode(key), one))
    path = tmp_path / 'mapper.bin'
    getattr(ms, fixture['mapper']).build(pairs, str(path), return_mapper=False)
    with open(os.path.join(FIXTURES_DIR, fixture['file']), 'rb') as f:
        assert path.read_bytes() == f.read()
