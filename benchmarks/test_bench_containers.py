"""Typed arrays, id mappers and mappings beside an in-memory dict/list doing the same job.

    .venv/bin/python -m pytest benchmarks/test_bench_containers.py --benchmark-only --benchmark-group-by=group

The big ``get_many`` groups compare one thread with two (the ratio is the point: the lookup
kernels run without the GIL); they build a 1M-row and a 200k-row mapper first.
"""
import pickle
import random
import tempfile

import numpy
import pytest

from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericIdMapper, ObjectIdMapper, Schema, StringIdMapper)

COUNT = 20000


class Item:
    __slot_types__ = {'id': int, 'score': float, 'name': str}

    def __init__(self, id, score, name):
        self.id, self.score, self.name = id, score, name


class Items(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Item)


class ItemsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Items


ITEMS = [Item(i, i / 3, 'name-%06d' % i) for i in range(COUNT)]
ARRAY = Items.build(ITEMS)
MAPPING = ItemsByName.build((item.name, item) for item in ITEMS)
NUMERIC = NumericIdMapper.build({i * 7: i for i in range(COUNT)})
OBJECTS = ObjectIdMapper.build({('name', i): i for i in range(COUNT)})
AS_DICT = {item.name: item for item in ITEMS}
PROBES = random.Random(1).sample(range(COUNT), 1000)
NAMES = ['name-%06d' % i for i in PROBES]


def _fresh_items_class():
    """An array class with a schema of its own, equal to Items's: its first open makes the proxy
    class and the unpacker, as the first open of a file in a process does."""
    class FreshItems(MappedArrayProxyBase):
        schema = Schema.from_typed_slots(Item)
    return (FreshItems,), {}


@pytest.mark.benchmark(group='opening an array in process')
def test_array_first_open_of_a_schema(benchmark):
    # stored-schema check, proxy class, unpacker, header checks, then one record
    def open_and_read(cls):
        return cls.map_buffer(ARRAY.buf)[1234].id
    assert benchmark.pedantic(open_and_read, setup=_fresh_items_class, rounds=200) == 1234


@pytest.mark.benchmark(group='opening an array in process')
def test_array_reopen(benchmark):
    # the schema's unpacker exists: stored-schema check and header checks only
    assert benchmark(lambda: Items.map_buffer(ARRAY.buf)[1234].id) == 1234


@pytest.mark.benchmark(group='opening an array in process')
def test_array_open_baseline_unpickle_schema(benchmark):
    # what 1.x did on every open: unpickle the stored schema
    stored = pickle.dumps(Items.schema, 2)
    benchmark(pickle.loads, stored)


@pytest.mark.benchmark(group='random item + one field')
def test_array_random_access(benchmark):
    benchmark(lambda: sum(ARRAY[i].id for i in PROBES))


@pytest.mark.benchmark(group='random item + one field')
def test_random_access_baseline_list(benchmark):
    benchmark(lambda: sum(ITEMS[i].id for i in PROBES))


@pytest.mark.benchmark(group='random item + one field')
def test_writable_array_random_access(benchmark):
    # over a bytearray the items are live proxies (ctypes structures over the buffer)
    writable = Items.map_buffer(bytearray(ARRAY.buf))
    benchmark(lambda: sum(writable[i].id for i in PROBES))


@pytest.mark.benchmark(group='random item + one field')
def test_mmap_array_random_access(benchmark):
    # a caller's read-only mmap through map_buffer: snapshots, as over map_file's memoryview
    import mmap
    with tempfile.TemporaryFile() as f:
        f.write(ARRAY.buf)
        f.flush()
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    over_mmap = Items.map_buffer(mapping)
    benchmark(lambda: sum(over_mmap[i].id for i in PROBES))


@pytest.fixture(scope='module')
def big_array_files(tmp_path_factory):
    """A 200k-record array (about 20 MB) in two files with the same bytes: one written by build
    (2 MB pieces at 2 MB boundaries: huge folios in the page cache, where the kernel has them),
    one copied in 1 MB writes starting 64 bytes off, as builds wrote before AlignedWriter."""
    directory = tmp_path_factory.mktemp('aligned')
    aligned = directory / 'aligned.bin'
    Items.build((Item(i, i / 3, 'name-%06d' % i) for i in range(200_000)), str(aligned), return_mapper=False)
    data = aligned.read_bytes()
    unaligned = directory / 'unaligned.bin'
    with open(unaligned, 'wb') as f:
        f.write(data[:64])
        for start in range(64, len(data), 1 << 20):
            f.write(data[start:start + (1 << 20)])
    probes = random.Random(4).sample(range(200_000), 20_000)
    return {'aligned': str(aligned), 'unaligned': str(unaligned)}, probes


@pytest.mark.benchmark(group='random item + one field: 200k items, file written aligned or not')
@pytest.mark.parametrize('written', ['aligned', 'unaligned'])
def test_big_array_random_access(benchmark, big_array_files, written):
    paths, probes = big_array_files
    array = Items.map_file(paths[written])
    benchmark(lambda: sum(array[i].id for i in probes))
    array.close()


@pytest.mark.benchmark(group='sum one field of every item')
def test_array_column_sum(benchmark):
    assert benchmark(lambda: int(ARRAY.column('id').sum())) == sum(range(COUNT))


@pytest.mark.benchmark(group='sum one field of every item')
def test_array_scan_sum(benchmark):
    benchmark(lambda: sum(p.id for p in ARRAY))


@pytest.mark.benchmark(group='key lookup + one field')
def test_mapping_lookup(benchmark):
    benchmark(lambda: sum(MAPPING[name].id for name in NAMES))


@pytest.mark.benchmark(group='key lookup + one field')
def test_lookup_baseline_dict(benchmark):
    benchmark(lambda: sum(AS_DICT[name].id for name in NAMES))


@pytest.mark.benchmark(group='id mapper get')
def test_string_mapper_get(benchmark):
    get = MAPPING.id_mapper.get
    benchmark(lambda: [get(name) for name in NAMES])


@pytest.mark.benchmark(group='id mapper get')
def test_numeric_mapper_get_many(benchmark):
    keys = [i * 7 for i in PROBES]
    assert benchmark(NUMERIC.get_many, keys) == PROBES


@pytest.mark.benchmark(group='id mapper get')
def test_numeric_mapper_get(benchmark):
    get = NUMERIC.get
    keys = [i * 7 for i in PROBES]
    assert benchmark(lambda: [get(key) for key in keys]) == PROBES


@pytest.mark.benchmark(group='id mapper get')
def test_object_mapper_get(benchmark):
    get = OBJECTS.get
    keys = [('name', i) for i in PROBES]
    assert benchmark(lambda: [get(key) for key in keys]) == PROBES


@pytest.mark.benchmark(group='id mapper get')
def test_mapper_get_baseline_dict(benchmark):
    positions = {name: i for i, name in enumerate(AS_DICT)}
    get = positions.get
    benchmark(lambda: [get(name) for name in NAMES])


BIG_NUMERIC = 1_000_000
BIG_STRING = 200_000


@pytest.fixture(scope='module')
def big_numeric_mapper():
    """A mapper of 1M random 40-bit keys (value = rank) and the keys in random order, as uint64."""
    generator = numpy.random.default_rng(2)
    keys = numpy.unique(generator.integers(0, 1 << 40, BIG_NUMERIC + BIG_NUMERIC // 50, dtype=numpy.uint64))
    keys = keys[:BIG_NUMERIC]
    return NumericIdMapper.build(zip(keys.tolist(), range(BIG_NUMERIC))), generator.permutation(keys)


@pytest.fixture(scope='module')
def big_string_mapper():
    names = ['user-%08d@example.org' % i for i in range(BIG_STRING)]
    probes = names[:]
    random.Random(3).shuffle(probes)
    return StringIdMapper.build(zip(names, range(BIG_STRING))), probes


@pytest.mark.benchmark(group='id mapper get_many: 1M numeric keys')
@pytest.mark.parametrize('threads', [1, 2])
def test_numeric_mapper_get_many_1m(benchmark, big_numeric_mapper, threads):
    mapper, probes = big_numeric_mapper
    values = benchmark.pedantic(mapper.get_many, (probes,), {'threads': threads}, rounds=5, warmup_rounds=1)
    assert len(values) == BIG_NUMERIC and None not in values[:1000]


@pytest.mark.benchmark(group='id mapper get_many: 200k string keys')
@pytest.mark.parametrize('threads', [1, 2])
def test_string_mapper_get_many_200k(benchmark, big_string_mapper, threads):
    mapper, probes = big_string_mapper
    values = benchmark.pedantic(mapper.get_many, (probes,), {'threads': threads}, rounds=5, warmup_rounds=1)
    assert values[:100] == [int(name[5:13]) for name in probes[:100]]


class _UndirectedNumericIdMapper(NumericIdMapper):
    lookup_directory_after = 2**64 - 1      # never builds its directory


@pytest.mark.benchmark(group='id mapper get: 1M numeric keys, directory or not')
@pytest.mark.parametrize('directory', [True, False])
def test_numeric_mapper_get_1m(benchmark, big_numeric_mapper, directory):
    # Single lookups with the directory a mapper builds after count/32 lookups, and without it.
    mapper, probes = big_numeric_mapper
    kind = NumericIdMapper if directory else _UndirectedNumericIdMapper
    mapper = kind.map_buffer(mapper.buf)
    keys = probes[:50000].tolist()
    get = mapper.get
    values = benchmark.pedantic(lambda: [get(key) for key in keys], rounds=5, warmup_rounds=1)
    keys_lookup = vars(mapper).get('_keys')        # None without the C module: no directory either
    assert None not in values
    assert keys_lookup is None or (keys_lookup.directory_bytes > 0) == directory


BUILD_RECORDS = [(item.name, item) for item in ITEMS]
BUILD_PAIRS = [(random.Random(2).getrandbits(64) ^ i, i) for i in range(COUNT * 10)]


def _benchmark_writing(benchmark, write):
    """Time ``write(output)`` into a fresh temporary file."""
    def run():
        with tempfile.TemporaryFile() as output:
            write(output)
    benchmark(run)


@pytest.mark.benchmark(group='build a mapping of 20k records')
def test_mapping_build(benchmark):
    _benchmark_writing(benchmark, lambda output: ItemsByName.build(BUILD_RECORDS, output, return_mapper=False))


@pytest.mark.benchmark(group='build a mapping of 20k records')
def test_mapping_build_baseline_pickle(benchmark):
    _benchmark_writing(benchmark, lambda output: pickle.dump(dict(BUILD_RECORDS), output, pickle.HIGHEST_PROTOCOL))


@pytest.mark.benchmark(group='build a numeric id mapper of 200k pairs')
def test_numeric_mapper_build(benchmark):
    _benchmark_writing(benchmark, lambda output: NumericIdMapper.build(BUILD_PAIRS, output, return_mapper=False))


@pytest.mark.benchmark(group='build a numeric id mapper of 200k pairs')
def test_numeric_mapper_build_baseline_numpy(benchmark):
    def sort_and_write(output):
        rows = numpy.array(BUILD_PAIRS, numpy.uint64)
        output.write(rows[numpy.lexsort((rows[:, 1], rows[:, 0]))].tobytes())
    _benchmark_writing(benchmark, sort_and_write)
