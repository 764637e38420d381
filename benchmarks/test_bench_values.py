"""Dynamically typed values (RTTI: `object` slots, dicts, lists and tuples of mixed items).

    .venv/bin/python -m pytest benchmarks/test_bench_values.py --benchmark-only --benchmark-group-by=group

Each group reads one value three ways: the C decoder (``_native/values.c``), the Python readers
it stands in for (the C module switched off), and ``pickle.loads`` of the same value.
"""
import pickle
from unittest import mock

import pytest

from sharedbuffers import _native, rtti
from sharedbuffers.mapped_struct import Schema, mapped_object, proxied_dict, proxied_frozenset, proxied_list


class Holder:
    __slot_types__ = {'table': dict, 'anything': object, 'pair': tuple}
    __slots__ = tuple(__slot_types__)


VALUES = {
    'dict': {'a': 12345, 'b': 2, 'name': 'user-0012345', 'tags': [1, 2, 3]},
    'mixed_list': [1, 'two', 3.0, None, b'five', (6, 'seven')],
    'tuple': ('a', 12345),
}


def packed(value):
    buffer = bytearray(4096)
    return bytes(buffer[:mapped_object.pack_into(value, buffer, 0)])


PACKED = {name: packed(value) for name, value in VALUES.items()}
PICKLED = {name: pickle.dumps(value, 5) for name, value in VALUES.items()}

SCHEMA = Schema.from_typed_slots(Holder)
HOLDER = Holder()
HOLDER.table, HOLDER.anything, HOLDER.pair = VALUES['dict'], VALUES['mixed_list'], VALUES['tuple']
RECORD = bytes(SCHEMA.pack(HOLDER))


@pytest.mark.benchmark(group='read_object')
@pytest.mark.parametrize('name', sorted(VALUES))
def test_read_object(benchmark, name):
    assert benchmark(rtti.read_object, PACKED[name], 0) == VALUES[name]


@pytest.mark.benchmark(group='read_object')
@pytest.mark.parametrize('name', sorted(VALUES))
def test_read_object_baseline_python_readers(benchmark, name):
    with mock.patch.object(_native, 'objects', None):
        assert benchmark(rtti.read_object, PACKED[name], 0) == VALUES[name]


@pytest.mark.benchmark(group='read_object')
@pytest.mark.parametrize('name', sorted(VALUES))
def test_read_object_baseline_pickle(benchmark, name):
    assert benchmark(pickle.loads, PICKLED[name]) == VALUES[name]


def read_fields():
    proxy = SCHEMA.unpack_from(RECORD, 0)
    return proxy.table, proxy.anything, proxy.pair


@pytest.mark.benchmark(group='fields')
def test_dict_object_and_tuple_fields_of_a_fresh_proxy(benchmark):
    assert benchmark(read_fields) == (HOLDER.table, HOLDER.anything, HOLDER.pair)


# -- proxied containers: lookups inside a value without decoding it ----------------------------

class Lazy:
    __slot_types__ = {'attrs': proxied_dict, 'members': proxied_frozenset, 'numbers': proxied_list}
    __slots__ = tuple(__slot_types__)


LAZY_SCHEMA = Schema.from_typed_slots(Lazy)
LAZY = Lazy()
LAZY.attrs = {'key%d' % number: number for number in range(10000)}
LAZY.members = frozenset(range(0, 999999, 3))
LAZY.numbers = list(range(1000))
LAZY_PROXY = LAZY_SCHEMA.unpack_from(bytes(LAZY_SCHEMA.pack(LAZY)), 0)
AS_SET = frozenset(LAZY.members)


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_dict_get(benchmark):
    attrs = LAZY_PROXY.attrs
    assert benchmark(attrs.get, 'key777') == 777


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_frozenset_membership(benchmark):
    members = LAZY_PROXY.members
    assert benchmark(members.__contains__, 300003)


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_frozenset_membership_baseline_frozenset(benchmark):
    assert benchmark(AS_SET.__contains__, 300003)


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_list_iteration(benchmark):
    numbers = LAZY_PROXY.numbers
    assert benchmark(list, numbers) == LAZY.numbers


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_list_index(benchmark):
    numbers = LAZY_PROXY.numbers
    assert benchmark(numbers.__getitem__, 500) == 500


@pytest.mark.benchmark(group='proxied containers')
def test_proxied_list_index_baseline_list(benchmark):
    assert benchmark(LAZY.numbers.__getitem__, 500) == 500
