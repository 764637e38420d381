"""Typed arrays, id mappers and mappings beside an in-memory dict/list doing the same job.

    .venv/bin/python -m pytest benchmarks/test_bench_containers.py --benchmark-only --benchmark-group-by=group
"""
import random

import pytest

from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericIdMapper, Schema, StringIdMapper)

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
AS_DICT = {item.name: item for item in ITEMS}
PROBES = random.Random(1).sample(range(COUNT), 1000)
NAMES = ['name-%06d' % i for i in PROBES]


@pytest.mark.benchmark(group='random item + one field')
def test_array_random_access(benchmark):
    benchmark(lambda: sum(ARRAY[i].id for i in PROBES))


@pytest.mark.benchmark(group='random item + one field')
def test_random_access_baseline_list(benchmark):
    benchmark(lambda: sum(ITEMS[i].id for i in PROBES))


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
