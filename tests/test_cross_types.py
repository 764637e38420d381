"""Types with identical bytes read through each other, and nested values of every type."""
import datetime
import decimal

import numpy
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import (
    Schema, mapped_dict, mapped_frozenset, mapped_list, mapped_object, mapped_tuple, proxied_dict,
    proxied_frozenset, proxied_list, proxied_tuple)

SEQUENCE_PACKERS = [mapped_list, mapped_tuple, proxied_list, proxied_tuple]


class Leaf:
    __slot_types__ = {'number': int, 'label': str, 'tags': frozenset}

    def __init__(self, number=0, label='', tags=frozenset()):
        self.number, self.label, self.tags = number, label, tags

    def __eq__(self, other):
        return (self.number, self.label, self.tags) == (other.number, other.label, other.tags)


Leaf.schema = Schema.from_typed_slots(Leaf)
mapped_object.register_schema(Leaf, Leaf.schema, 0xC9)


def _packed(packer, value):
    buffer = bytearray(1 << 16)
    end = packer.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-1000, 70000) | st.text(max_size=5) | st.none(), max_size=10))
def test_list_tuple_and_proxied_bytes_are_identical_and_read_through_each_other(items):
    encodings = {_packed(packer, items) for packer in SEQUENCE_PACKERS}
    assert len(encodings) == 1
    data = encodings.pop()
    for reader in SEQUENCE_PACKERS:
        assert list(reader.unpack_from(data)) == items


@settings(max_examples=100, deadline=None)
@given(st.frozensets(st.integers(-5, 500) | st.text(max_size=4), max_size=10))
def test_frozenset_and_proxied_frozenset_share_bytes(value):
    data = _packed(mapped_frozenset, value)
    assert data == _packed(proxied_frozenset, value)
    assert proxied_frozenset.unpack_from(data) == mapped_frozenset.unpack_from(data) == value


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=4) | st.integers(0, 99), st.integers(-2 ** 63, 2 ** 64 - 1) | st.text(max_size=4),
                       max_size=8))
def test_dict_and_proxied_dict_share_bytes(value):
    data = _packed(mapped_dict, value)
    assert data == _packed(proxied_dict, value)
    assert proxied_dict.unpack_from(data) == mapped_dict.unpack_from(data) == value


scalars = (st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.binary(max_size=12)
           | st.datetimes(min_value=datetime.datetime(1901, 1, 1), max_value=datetime.datetime(2200, 1, 1))
           | st.dates() | st.decimals(allow_nan=False, allow_infinity=False, places=3)
           | st.builds(Leaf, st.integers(-99, 99), st.text(max_size=6), st.frozensets(st.integers(0, 200), max_size=4)))
hashable = st.none() | st.integers(-1000, 1000) | st.text(max_size=6) | st.tuples(st.integers(0, 9), st.text(max_size=3))
nested = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4) | st.lists(children, max_size=4).map(tuple)
                      | st.dictionaries(hashable, children, max_size=4)
                      | st.frozensets(hashable, max_size=4)),
    max_leaves=25)


def _plain(value):
    """Proxies of Leaf -> Leaf, so decoded values compare with the originals."""
    if hasattr(type(value), '_proxy_schema'):
        return Leaf(value.number, value.label, value.tags)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@settings(max_examples=150, deadline=None)
@given(nested.filter(lambda value: value is not None))     # None alone has no RTTI form (a none bit)
def test_nested_values_of_every_type_round_trip(value):
    buffer = bytearray(1 << 18)
    mapped_object.pack_into(value, buffer, 5)
    decoded = _plain(mapped_object.unpack_from(buffer, 5))
    if isinstance(value, decimal.Decimal):
        assert decoded.as_tuple() == value.as_tuple()
    else:
        assert decoded == value


def test_a_struct_holding_every_type_round_trips():
    Everything = type('Everything', (), {'__init__': lambda self, **kw: self.__dict__.update(kw)})
    Everything.__slot_types__ = {
        'l': list, 't': tuple, 's': set, 'f': frozenset, 'd': dict, 'when': datetime.datetime, 'day': datetime.date,
        'amount': decimal.Decimal, 'array': numpy.ndarray, 'raw': memoryview, 'pl': proxied_list, 'pt': proxied_tuple,
        'pf': proxied_frozenset, 'pd': proxied_dict, 'leaf': Leaf, 'anything': object}
    schema = Schema.from_typed_slots(Everything)
    obj = Everything(l=[1, 'a', [2]], t=(3, None), s={4, 5}, f=frozenset({'x'}), d={'k': [Leaf(1, 'one')]},
                     when=datetime.datetime(2001, 1, 1, 1, 1, 1, 1), day=datetime.date(1999, 12, 31),
                     amount=decimal.Decimal('-12.50'), array=numpy.arange(6).reshape(2, 3), raw=b'raw',
                     pl=[1, 2], pt=(3,), pf={6}, pd={'p': 7}, leaf=Leaf(2, 'two', frozenset({1})),
                     anything={'nested': ({1, 2}, [Leaf(3, 'three')])})
    proxy = schema.unpack_from(schema.pack(obj))
    assert proxy.l == obj.l and proxy.t == obj.t and proxy.s == frozenset(obj.s) and proxy.f == obj.f
    assert _plain(proxy.d) == obj.d and proxy.when == obj.when and proxy.day == obj.day
    assert proxy.amount.as_tuple() == obj.amount.as_tuple() and numpy.array_equal(proxy.array, obj.array)
    assert bytes(proxy.raw) == b'raw' and proxy.pl == [1, 2] and proxy.pt == (3,) and proxy.pf == {6}
    assert proxy.pd == {'p': 7} and _plain(proxy.leaf) == obj.leaf and _plain(proxy.anything) == obj.anything
