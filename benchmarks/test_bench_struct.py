"""Struct codec hot paths beside pickle and msgpack on the same record.

    .venv/bin/python -m pytest benchmarks/test_bench_struct.py --benchmark-only --benchmark-group-by=group
"""
import pickle

import msgpack
import pytest

from sharedbuffers.mapped_struct import Schema, mapped_object


class Sub:
    __slot_types__ = {'x': int, 'y': float}

    def __init__(self, x, y):
        self.x, self.y = x, y


class Record:
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'blob': bytes, 'flag': bool, 'sub': Sub}

    def __init__(self, id, score, name, blob, flag, sub):
        self.id, self.score, self.name, self.blob, self.flag, self.sub = id, score, name, blob, flag, sub


Sub.schema = Schema.from_typed_slots(Sub)
mapped_object.register_schema(Sub, Sub.schema, 0xE0)
SCHEMA = Schema.from_typed_slots(Record)
RECORD = Record(1234567890123, 512.25, 'user-0012345', b'\x01\x02\x03\x04\x05\x06', True, Sub(99, 0.5))
PACKED = SCHEMA.pack(RECORD)
AS_DICT = {'id': RECORD.id, 'score': RECORD.score, 'name': RECORD.name, 'blob': RECORD.blob,
           'flag': RECORD.flag, 'sub': {'x': 99, 'y': 0.5}}
PICKLED = pickle.dumps(AS_DICT, 5)
MSGPACKED = msgpack.packb(AS_DICT)
PROXY = SCHEMA.unpack_from(PACKED)
LIVE_PROXY = SCHEMA.unpack_from(bytearray(PACKED))


@pytest.mark.benchmark(group='pack')
def test_pack(benchmark):
    assert benchmark(SCHEMA.pack, RECORD) == PACKED


@pytest.mark.benchmark(group='pack')
def test_pack_baseline_pickle(benchmark):
    benchmark(pickle.dumps, AS_DICT, 5)


@pytest.mark.benchmark(group='pack')
def test_pack_baseline_msgpack(benchmark):
    benchmark(msgpack.packb, AS_DICT)


@pytest.mark.benchmark(group='unpack + one field')
def test_unpack_from_and_one_field(benchmark):
    unpack_from = SCHEMA.unpack_from
    assert benchmark(lambda: unpack_from(PACKED, 0).id) == RECORD.id


@pytest.mark.benchmark(group='unpack + one field')
def test_unpack_one_field_baseline_pickle(benchmark):
    benchmark(lambda: pickle.loads(PICKLED)['id'])


@pytest.mark.benchmark(group='unpack + one field')
def test_unpack_one_field_baseline_msgpack(benchmark):
    benchmark(lambda: msgpack.unpackb(MSGPACKED)['id'])


def _read_all(proxy):
    sub = proxy.sub
    return (proxy.id, proxy.score, proxy.name, proxy.blob, proxy.flag, sub.x, sub.y)


@pytest.mark.benchmark(group='unpack + all fields')
def test_unpack_from_and_all_fields(benchmark):
    unpack_from = SCHEMA.unpack_from
    assert benchmark(lambda: _read_all(unpack_from(PACKED, 0)))[0] == RECORD.id


@pytest.mark.benchmark(group='unpack + all fields')
def test_all_fields_baseline_pickle(benchmark):
    benchmark(lambda: pickle.loads(PICKLED))


@pytest.mark.benchmark(group='unpack + all fields')
def test_all_fields_baseline_msgpack(benchmark):
    benchmark(lambda: msgpack.unpackb(MSGPACKED))


@pytest.mark.benchmark(group='attribute read')
def test_attribute_read_on_a_proxy(benchmark):
    proxy = PROXY
    assert benchmark(lambda: proxy.id) == RECORD.id


@pytest.mark.benchmark(group='attribute read')
def test_attribute_read_on_a_live_proxy(benchmark):
    proxy = LIVE_PROXY
    assert benchmark(lambda: proxy.id) == RECORD.id


@pytest.mark.benchmark(group='attribute read')
def test_attribute_read_baseline_dict(benchmark):
    record = AS_DICT
    benchmark(lambda: record['id'])
