"""Id mappers: every kind against a dict model, 1.x's files and bugs (FORMAT.md §8)."""
import collections
import io
import os
import tempfile
import tracemalloc

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


# -- lookups in one native call, get_many in pieces on threads ----------------------------------

def _padded(mapper, padding):
    """The same mapper, mapped at ``padding`` bytes into a bigger buffer."""
    return type(mapper).map_buffer(b'\xee' * padding + bytes(mapper.buf), padding)


@pytest.mark.parametrize('cls', SINGLE, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_lookups_at_a_non_zero_offset_behave_like_a_dict(cls, data):
    model = data.draw(st.dictionaries(keys_for(cls), values_for(cls), max_size=30))
    mapper = _padded(build(cls, model), data.draw(st.integers(1, 40)))
    probes = list(model) + data.draw(st.lists(keys_for(cls), max_size=5))
    assert [mapper.get(probe) for probe in probes] == [model.get(probe) for probe in probes]
    assert mapper.get_many(probes) == [model.get(probe) for probe in probes]
    assert [probe in mapper for probe in probes] == [probe in model for probe in probes]


@pytest.mark.parametrize('cls', [ms.NumericIdMapper, ms.NumericId32Mapper, ms.StringIdMapper, ms.StringId32Mapper],
                         ids=lambda cls: cls.__name__)
def test_get_many_on_threads_gives_what_one_thread_gives(cls):
    count = 60_000                      # past the size from which get_many uses the pool
    numeric = cls.__name__.startswith('Numeric')
    key = (lambda i: i * 3) if numeric else (lambda i: 'k%d' % i)
    mapper = build(cls, [(key(i), i) for i in range(0, count, 2)])
    probes = [key(i) for i in range(count)]         # every other one absent
    one = mapper.get_many(probes, -1, threads=1)
    assert mapper.get_many(probes, -1, threads=2) == mapper.get_many(probes, -1, threads=3) == one
    assert one == [i if i % 2 == 0 else -1 for i in range(count)]


def test_numeric_get_many_takes_uint64_arrays():
    import numpy
    mapper = build(ms.NumericIdMapper, {5: 50, 2 ** 64 - 2: 60})
    assert mapper.get_many(numpy.array([5, 6, 2 ** 64 - 2], numpy.uint64)) == [50, None, 60]


def test_numeric_get_many_of_ints_a_mapper_cannot_hold_gives_the_default():
    mapper = build(ms.NumericId32Mapper, {5: 50})
    assert mapper.get_many([5, -1, 2 ** 32 + 5, 2 ** 70], 0) == [50, 0, 0, 0]


@pytest.mark.parametrize('cls', [ms.StringIdMapper, ms.StringId32Mapper], ids=lambda cls: cls.__name__)
def test_string_get_many_gives_what_get_gives_for_every_kind_of_key(cls):
    mapper = build(cls, {'a': 1, 'ñandú': 2, '': 3, 'nul\x00inside': 4, '日本': 5})
    probes = ['a', 'ñandú', '', 'nul\x00inside', '日本', 'absent', b'a', bytearray(b'\xc3\xb1and\xc3\xba'), 7, None]
    assert mapper.get_many(probes, 'default') == [mapper.get(probe, 'default') for probe in probes]
    assert mapper.get_many(probes, 'default') == [1, 2, 3, 4, 5, 'default', 1, 2, 'default', 'default']
    assert mapper.get_many(iter(['a', '日本'])) == [1, 5]


def test_string_get_many_raises_what_get_raises_for_a_str_without_utf8():
    mapper = build(ms.StringIdMapper, {'a': 1})
    with pytest.raises(UnicodeEncodeError):
        mapper.get('\ud800')
    with pytest.raises(UnicodeEncodeError):
        mapper.get_many(['a', '\ud800'])


@pytest.mark.parametrize('cls', MULTI, ids=lambda cls: cls.__name__)
def test_multi_mappers_get_many_returns_lists(cls):
    key = (lambda i: i) if cls.__name__.startswith('Numeric') else (lambda i: 'k%d' % i)
    mapper = build(cls, [(key(1), 1), (key(1), 2), (key(2), 3)])
    assert [sorted(values) if values else values for values in mapper.get_many([key(1), key(2), key(3)])] == \
        [[1, 2], [3], None]


@pytest.mark.parametrize('cls', [ms.StringIdMapper, ms.StringIdMultiMapper], ids=lambda cls: cls.__name__)
def test_keys_stored_compressed_are_found(cls):
    long_key = 'compressible ' * 100            # stored LZ4-compressed: compared in Python
    mapper = build(cls, [(long_key, 7), ('short', 8)])
    expected = [7] if mapper.multi else 7
    assert mapper.get(long_key) == expected and mapper[long_key] == expected and long_key in mapper
    assert mapper.get_many([long_key, 'short', long_key[:-1]]) == [expected, [8] if mapper.multi else 8, None]


@pytest.mark.parametrize('cls', [ms.NumericIdMapper, ms.StringIdMapper], ids=lambda cls: cls.__name__)
def test_values_beyond_63_bits_come_back_whole(cls):
    key = 5 if cls is ms.NumericIdMapper else 'five'
    mapper = build(cls, {key: 2 ** 64 - 1})
    assert mapper.get(key) == mapper[key] == mapper.get_many([key])[0] == 2 ** 64 - 1 and key in mapper


def test_numeric_lookups_keep_their_key_rules():
    import numpy
    mapper = build(ms.NumericIdMapper, {1: 10, 2 ** 64 - 1: 20})
    assert (mapper.get(True), mapper.get(1.0), mapper.get(-1), mapper.get(2 ** 64)) == (None, None, None, None)
    assert (mapper.get(numpy.uint64(2 ** 64 - 1)), mapper.get(numpy.int8(1))) == (20, 10)
    assert True not in mapper and -1 not in mapper and 2 ** 64 not in mapper
    with pytest.raises(KeyError):
        mapper[2 ** 64]


def _mapper_with_a_bad_key_offset():
    import struct
    data = bytearray(build(ms.StringIdMapper, {'a': 1}).buf)
    index_position = struct.unpack_from('=Q', data, 8)[0]
    struct.pack_into('=Q', data, index_position + 8, 10 ** 6)
    return ms.StringIdMapper.map_buffer(bytes(data))


@pytest.mark.parametrize('lookup', [lambda m: m.get('a'), lambda m: m['a'], lambda m: 'a' in m,
                                    lambda m: m.get_many(['a']), lambda m: m.get_many(['a'] * 60_000, threads=2)],
                         ids=['get', 'getitem', 'contains', 'get_many', 'get_many on threads'])
def test_a_corrupt_key_offset_raises_index_error_naming_it(lookup):
    with pytest.raises(IndexError, match='1000000'):
        lookup(_mapper_with_a_bad_key_offset())


def test_corrupt_lookups_still_raise_under_python_dash_o():
    import subprocess
    import sys
    script = (
        'import struct, sys\n'
        'if __debug__: sys.exit("not running under -O")\n'
        'from sharedbuffers.mapped_struct import StringIdMapper\n'
        'data = bytearray(StringIdMapper.build({"a": 1}).buf)\n'
        'struct.pack_into("=Q", data, struct.unpack_from("=Q", data, 8)[0] + 8, 2 ** 64 - 1)\n'
        'mapper = StringIdMapper.map_buffer(bytes(data))\n'
        'for lookup in (lambda: mapper.get("a"), lambda: mapper.get_many(["a"])):\n'
        '    try:\n'
        '        lookup()\n'
        '    except IndexError:\n'
        '        continue\n'
        '    sys.exit("a corrupt lookup did not raise IndexError")\n'
        'print("refused")\n')
    root = os.path.dirname(os.path.dirname(os.path.abspath(ms.__file__)))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable, '-O', '-c', script], env=environment, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and 'refused' in result.stdout, result.stdout + result.stderr


# -- builds in bounded memory: external sort of the rows (containers/external_sort.py) ----------

# Two keys whose xxh32 is equal (0x688b3920): rows of one hash but different keys in 32-bit mappers.
XXH32_COLLISION = ('c6060', 'c820911')


def _keys_with_duplicates_for(cls):
    if cls.__name__.startswith('Numeric'):
        return st.integers(0, 6) | st.sampled_from([(1 << cls.width) - 1, 1 << 20])
    if cls.__name__.startswith('Approx'):
        return st.sampled_from(['a', 'b', 'c']) | st.integers(0, 3) | st.text(max_size=4)
    if cls is ms.ObjectIdMapper:
        return st.none() | st.integers(0, 3) | st.sampled_from(['a', 'b']) | st.tuples(st.integers(0, 1))
    return st.sampled_from(['a', 'b', '', 'é' * 300, 'x' * 600] + list(XXH32_COLLISION)) | st.text(max_size=5)


def _built_bytes(cls, pairs, prefix, **options):
    output = io.BytesIO()
    output.write(b'\xee' * prefix)
    cls.build(pairs, output, return_mapper=False, **options)
    return output.getvalue()


def test_the_collision_keys_share_their_xxh32():
    from sharedbuffers import _native
    assert _native.xxh32(XXH32_COLLISION[0].encode()) == _native.xxh32(XXH32_COLLISION[1].encode())


@pytest.mark.parametrize('cls', SINGLE + MULTI, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_build_spilling_many_runs_writes_the_bytes_of_the_in_memory_build(cls, data):
    pairs = data.draw(st.lists(st.tuples(_keys_with_duplicates_for(cls), st.integers(0, 3)), max_size=60))
    options = data.draw(st.sampled_from([{}, {'discard_duplicates': True}, {'discard_duplicate_keys': True}]))
    prefix = data.draw(st.integers(0, 40))
    budget = data.draw(st.integers(1, 400))         # 2 to 9 rows a run: many runs, merges in several passes
    assert _built_bytes(cls, pairs, prefix, memory_budget=budget, **options) == _built_bytes(cls, pairs, prefix, **options)


@pytest.mark.parametrize('cls', [ms.StringIdMultiMapper, ms.StringId32MultiMapper], ids=lambda cls: cls.__name__)
def test_string_mappers_keep_equal_hashes_in_input_order(cls):
    pairs = [(key, number) for number, key in enumerate(['b', 'a', 'b', 'a'] * 10 + list(XXH32_COLLISION) * 3)]
    mapper = build(cls, pairs, memory_budget=200)
    expected = collections.defaultdict(list)
    for key, value in pairs:
        expected[key].append(value)
    assert all(mapper.get(key) == values for key, values in expected.items())


def test_discard_options_hold_across_run_boundaries():
    pairs = [(key % 7, value % 3) for key, value in zip(range(500), range(500, 0, -1))]
    for cls in (ms.NumericIdMultiMapper, ms.StringIdMultiMapper):
        convert = (lambda key: key) if cls is ms.NumericIdMultiMapper else str
        pairs_of_kind = [(convert(key), value) for key, value in pairs]
        by_keys = build(cls, pairs_of_kind, discard_duplicate_keys=True, memory_budget=300)
        by_pairs = build(cls, pairs_of_kind, discard_duplicates=True, memory_budget=300)
        assert len(by_keys) == 7 and len(by_pairs) == len(set(pairs))


def test_string_mapper_discard_options_work_on_a_write_only_file(tmp_path):
    path = tmp_path / 'mapper.bin'
    pairs = [('k%d' % (number % 5), number % 2) for number in range(100)]
    with open(path, 'wb') as output:
        ms.StringIdMultiMapper.build(pairs, output, return_mapper=False, discard_duplicates=True, memory_budget=300)
    assert path.read_bytes() == _built_bytes(ms.StringIdMultiMapper, pairs, 0, discard_duplicates=True)


def _peak_traced_memory(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_build_bigger_than_its_budget_stays_in_bounded_memory(tmp_path):
    count = 2_000_000           # the rows alone take 32 MiB; pairs held in lists, about 400 MiB
    pairs = (((number * 2654435761) % (1 << 64), number) for number in range(count))
    path = str(tmp_path / 'numeric.bin')
    peak = _peak_traced_memory(lambda: ms.NumericIdMapper.build(pairs, path, tempdir=str(tmp_path),
                                                                return_mapper=False, memory_budget=4 << 20))
    assert peak < 16 << 20, 'peak %.1f MiB' % (peak / 2 ** 20)
    mapper = ms.NumericIdMapper.map_file(path)
    assert len(mapper) == count and mapper[(12345 * 2654435761) % (1 << 64)] == 12345


class _RecordedTemporaryFiles:
    """tempfile.TemporaryFile, remembering every file it made."""

    def __init__(self, monkeypatch):
        self.files = []
        self.original = tempfile.TemporaryFile
        monkeypatch.setattr(tempfile, 'TemporaryFile', self)

    def __call__(self, *args, **kwargs):
        made = self.original(*args, **kwargs)
        self.files.append(made)
        return made


def test_a_build_that_fits_its_budget_makes_no_temporary_file(tmp_path, monkeypatch):
    made = _RecordedTemporaryFiles(monkeypatch)
    ms.StringIdMapper.build({'k%d' % number: number for number in range(1000)}, str(tmp_path / 'small.bin'),
                            return_mapper=False)
    assert made.files == []


def test_run_files_are_closed_after_a_build(tmp_path, monkeypatch):
    made = _RecordedTemporaryFiles(monkeypatch)
    ms.StringIdMapper.build({'k%d' % number: number for number in range(1000)}, str(tmp_path / 'mapper.bin'),
                            tempdir=str(tmp_path), return_mapper=False, memory_budget=1000)
    assert len(made.files) > 2 and all(run.closed for run in made.files)
    assert os.listdir(tmp_path) == ['mapper.bin']


@pytest.mark.parametrize('cls', [ms.NumericIdMapper, ms.StringIdMapper], ids=lambda cls: cls.__name__)
def test_run_files_are_closed_when_the_input_raises_midway(cls, tmp_path, monkeypatch):
    def failing_pairs():
        for number in range(1000):
            yield (number if cls is ms.NumericIdMapper else 'k%d' % number), number
        raise RuntimeError('the input failed')

    made = _RecordedTemporaryFiles(monkeypatch)
    with pytest.raises(RuntimeError, match='the input failed'):
        cls.build(failing_pairs(), str(tmp_path / 'mapper.bin'), tempdir=str(tmp_path), memory_budget=1000)
    assert len(made.files) > 2 and all(run.closed for run in made.files)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kind', [ms.StringIdMapper, ms.StringIdMultiMapper])
def test_string_keys_come_back_from_iteration_as_stored(kind):
    """items()/keys() read short stored keys straight from the buffer; long, compressed and
    non-UTF-8 ones go through read_bytes: both give what each row's own read gives."""
    keys = ['a', 'é', '', b'\xff\xfe', 'x' * 40000, 'ab' * 5000, 'k' * 32766, 'k' * 32767]
    mapper = kind.build([(key, number) for number, key in enumerate(keys)])
    rows = [mapper._key_of_row(row) for row in range(len(mapper))]
    assert list(mapper.keys()) == rows
    assert sorted(map(repr, rows)) == sorted(map(repr, keys))
    assert dict(mapper.items()) == {key: number for number, key in enumerate(keys)}
