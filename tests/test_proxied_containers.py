"""proxied_list / proxied_tuple / proxied_frozenset / proxied_dict are real containers."""
import collections.abc
import pickle

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import (
    Schema, mapped_object, proxied_dict, proxied_frozenset, proxied_list, proxied_tuple)


def view(packer, value):
    buffer = bytearray(1 << 16)
    packer.pack_into(value, buffer, 0)
    return packer.unpack_from(bytes(buffer), 0)


ITEMS = [1, 'a', None, 2.5, (1, 2), [3], b'x']


def test_proxied_lists_and_tuples_are_sequences():
    assert isinstance(view(proxied_list, ITEMS), collections.abc.Sequence)
    assert isinstance(view(proxied_tuple, ITEMS), collections.abc.Sequence)


def test_index_count_reversed_and_contains():
    items = view(proxied_list, ITEMS + ['a'])
    assert items.index('a') == 1 and items.count('a') == 2
    assert list(reversed(items)) == list(reversed(ITEMS + ['a']))
    assert (1, 2) in items and 'zz' not in items


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 300), max_size=30), st.integers(-40, 40) | st.none(),
       st.integers(-40, 40) | st.none(), st.sampled_from([None, 1, 2, 3, -1, -2, -7]))
def test_slicing_with_every_step_matches_lists(items, start, stop, step):
    proxied = view(proxied_list, items)
    assert list(proxied[start:stop:step]) == items[start:stop:step]
    assert list(proxied[start:stop][::step]) == items[start:stop][::step]     # nested slices compose


def test_out_of_range_indexes_raise_index_error():
    items = view(proxied_list, [1, 2])
    with pytest.raises(IndexError):
        items[2]
    assert items[-2] == 1


def test_comparisons_with_lists_and_tuples():
    items = view(proxied_list, [1, 2, 3])
    assert items == [1, 2, 3] and items == (1, 2, 3) and items != [1, 2]
    assert items < [1, 2, 4] and items >= (1, 2, 3) and items > [1, 2]


def test_a_proxied_tuple_hashes_like_the_tuple():
    value = (1, 'a', None, 2.5, (1, 2))
    assert hash(view(proxied_tuple, value)) == hash(value)
    assert {view(proxied_tuple, value): 'found'}[value] == 'found'


def test_str_and_repr_forms():
    assert str(view(proxied_list, [1, 2.0, None])) == '[1,2.0,None]'
    assert repr(view(proxied_list, [1, 2])) == 'proxied_list([1, 2])'
    assert str(view(proxied_tuple, (1, 2.0))) == '(1,2.0)'
    assert repr(view(proxied_tuple, (1,))) == 'proxied_tuple((1))'


def test_reading_a_mutable_element_twice_gives_two_objects():
    items = view(proxied_list, [[1]])
    first = items[0]
    first.append(99)
    assert items[0] == [1]


def test_iter_with_a_mask_yields_the_selected_elements():
    items = view(proxied_list, [10, 20, 30])
    assert list(items.iter(mask=[1, 0, 1])) == [10, 30]
    assert items.getter()(1) == 20


def test_pickling_gives_plain_containers():
    assert pickle.loads(pickle.dumps(view(proxied_list, [1, 2]))) == [1, 2]
    assert type(pickle.loads(pickle.dumps(view(proxied_tuple, (1,))))) is tuple


@pytest.mark.parametrize('value', [frozenset(), frozenset({1, 5, 55}), frozenset({3, 100}), frozenset({1000, 7}),
                                   frozenset({0.5, 1.5}), frozenset({'a', b'a', None, True, 2, (1, 'x')})])
def test_proxied_frozensets_are_hashable_sets(value):
    proxied = view(proxied_frozenset, value)
    assert isinstance(proxied, collections.abc.Set)
    assert proxied == value and hash(proxied) == hash(value) and len(proxied) == len(value)
    for item in value:
        assert item in proxied


def test_membership_finds_every_element_of_a_colliding_hash_run():
    # None, True, 1 and 1.0 share stable hash 1, 'a' and b'a' share another: 1.2.3 missed some
    value = frozenset({None, True, 'a', b'a', frozenset({1, 2})})
    proxied = view(proxied_frozenset, value)
    assert all(item in proxied for item in value)
    assert 1 in proxied and 2 not in proxied and 'b' not in proxied


def test_set_operations_and_predicates():
    proxied = view(proxied_frozenset, {1, 2, 3})
    assert proxied.issubset({1, 2, 3, 4}) and proxied.isdisjoint({9}) and proxied.issuperset([1])
    assert proxied | {4} == {1, 2, 3, 4} and proxied & {2, 9} == {2} and proxied - {1} == {2, 3}
    assert proxied ^ {3, 4} == {1, 2, 4}


def test_proxied_dicts_are_mappings():
    value = {'a': 1, 2: [3], None: 'none', (1, 'x'): 2.5}
    proxied = view(proxied_dict, value)
    assert isinstance(proxied, collections.abc.Mapping)
    assert proxied == value and len(proxied) == 4 and proxied['a'] == 1 and proxied.get('zz', 7) == 7
    assert set(proxied.keys()) == set(value) and sorted(map(repr, proxied.values())) == sorted(map(repr, value.values()))
    assert dict(proxied.items()) == value and proxied.has_key(None) and proxied.copy() == value
    with pytest.raises(KeyError):
        proxied['missing']


def test_proxied_containers_in_slots_and_object_values():
    schema = Schema({'pl': proxied_list, 'pt': proxied_tuple, 'pf': proxied_frozenset, 'pd': proxied_dict})
    holder = type('Holder', (), {})()
    holder.pl, holder.pt, holder.pf, holder.pd = [1, 2], (3,), {4}, {'k': 5}
    proxy = schema.unpack_from(schema.pack(holder))
    assert (type(proxy.pl), type(proxy.pt), type(proxy.pf), type(proxy.pd)) == (
        proxied_list, proxied_tuple, proxied_frozenset, proxied_dict)
    buffer = bytearray(256)
    mapped_object.pack_into(proxy.pd, buffer, 0)
    assert buffer[:1] == b'M' and mapped_object.unpack_from(buffer, 0) == {'k': 5}


def test_repacking_a_proxied_dict_reproduces_its_bytes():
    value = {'z': 1, 'a': 2, 5: 3}
    buffer = bytearray(1024)
    end = proxied_dict.pack_into(value, buffer, 0)
    again = bytearray(1024)
    proxied_dict.pack_into(proxied_dict.unpack_from(bytes(buffer[:end])), again, 0)
    assert again == buffer
