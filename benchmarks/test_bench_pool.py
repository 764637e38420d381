"""Object pools beside the schema packing the same record into a bytearray.

    .venv/bin/python -m pytest benchmarks/test_bench_pool.py --benchmark-only --benchmark-group-by=group

``pool.pack`` packs into the section's mapping and returns a proxy, so its baseline is
``Schema.pack_into`` alone and ``Schema.pack_into`` followed by ``unpack_from``.
"""
import pytest

from sharedbuffers.mapped_struct import Schema
from sharedbuffers.pool import TemporaryObjectPool


class Item:
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'tags': list}

    def __init__(self, id, score, name, tags):
        self.id, self.score, self.name, self.tags = id, score, name, tags


SCHEMA = Schema.from_typed_slots(Item)
ITEM = Item(1234567890123, 512.25, 'user-0012345', [3, 5, 8])
SCRATCH = bytearray(1 << 16)
READ_ONLY = memoryview(SCHEMA.pack(ITEM)).toreadonly()     # what pool proxies read: a read-only view


@pytest.fixture
def pool():
    with TemporaryObjectPool() as pool:
        pool.pack(SCHEMA, ITEM)     # opens the first section: not part of what is timed
        yield pool


@pytest.mark.benchmark(group='pack one record')
def test_pool_pack(benchmark, pool):
    benchmark(pool.pack, SCHEMA, ITEM)


@pytest.mark.benchmark(group='pack one record')
def test_pack_baseline_schema_pack_into_bytearray(benchmark):
    benchmark(SCHEMA.pack_into, ITEM, SCRATCH, 0)


@pytest.mark.benchmark(group='pack one record')
def test_pack_baseline_schema_pack_into_and_proxy(benchmark):
    def pack_and_proxy():
        SCHEMA.pack_into(ITEM, SCRATCH, 0)
        return SCHEMA.unpack_from(READ_ONLY, 0)
    benchmark(pack_and_proxy)


@pytest.mark.benchmark(group='read one record back')
def test_pool_unpack(benchmark, pool):
    position, _ = pool.pack(SCHEMA, ITEM)
    assert benchmark(pool.unpack, SCHEMA, position).name == ITEM.name


@pytest.mark.benchmark(group='read one record back')
def test_unpack_baseline_schema_unpack_from(benchmark):
    assert benchmark(SCHEMA.unpack_from, READ_ONLY, 0).name == ITEM.name
