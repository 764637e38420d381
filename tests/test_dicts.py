"""dict values and the in-buffer object id mapper (FORMAT.md §4.6, §8.4)."""
import collections

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import Schema, mapped_dict, mapped_object
from sharedbuffers.types.dicts import DictView


def pack_bare(value):
    buffer = bytearray(1 << 16)
    end = mapped_dict.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


def test_the_empty_dict_encoding():
    assert pack_bare({}).hex(' ') == ('28 00 00 00 00 00 00 00 ' + '00 ' * 8 + '10 00 00 00 00 00 00 00 '
                                      + '00 ' * 16 + '42 00 00 00 00 00 00 00').strip()


def test_the_documented_example_round_trips_in_hash_order():
    value = {'a': 35, 102: 'one-oh-two', ('a', 35): ('a', 'one-oh-two')}
    decoded = mapped_dict.unpack_from(pack_bare(value))
    assert decoded == value
    assert list(decoded) == [102, ('a', 35), 'a']       # rows sorted by stable hash


def test_lookups_binary_search_the_stable_hash():
    value = {i: str(i) for i in range(200)}
    value.update({'key %d' % i: i for i in range(100)})
    data = pack_bare(value)
    view = DictView(data, 0)
    assert view.index.get('key 42') is not None
    assert view.index.get('missing') is None
    assert mapped_dict.unpack_from(data) == value


def test_none_and_colliding_keys_are_told_apart():
    value = {None: 'none', 0: 'zero', 1: 'one', 'a': 'str', b'a': 'bytes'}
    assert mapped_dict.unpack_from(pack_bare(value)) == value


def test_defaultdicts_are_stored_as_dicts():
    value = collections.defaultdict(list, {'x': [1]})
    buffer = bytearray(512)
    mapped_object.pack_into(value, buffer, 0)
    assert buffer[:1] == b'm' and mapped_object.unpack_from(buffer, 0) == {'x': [1]}


def test_unhashable_keys_are_a_type_error():
    with pytest.raises(TypeError):
        pack_bare({(1, [2]): 3})


def test_a_slot_dict_reads_back_a_fresh_dict_each_time():
    schema = Schema({'mapping': dict})
    holder = type('Holder', (), {})()
    holder.mapping = {'a': 1}
    proxy = schema.unpack_from(schema.pack(holder))
    proxy.mapping['b'] = 2
    assert proxy.mapping == {'a': 1}


keys = st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.text(max_size=8) | st.binary(max_size=8) \
    | st.tuples(st.integers(0, 9), st.text(max_size=3))
values = st.recursive(st.none() | st.integers(-1000, 1000) | st.text(max_size=8) | st.floats(allow_nan=False),
                      lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children,
                                                                                          max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=12))
def test_any_dict_round_trips(value):
    decoded = mapped_dict.unpack_from(pack_bare(value))
    assert decoded == value
