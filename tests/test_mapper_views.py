"""keys(), values() and items() of id mappers and mappings are views (containers/mapper_views.py)."""
import collections.abc

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import mapped_struct as ms

PAIRS = {
    'numeric': (ms.NumericIdMapper, [(7, 1), (3, 2), (1000, 3), (2 ** 63 + 5, 4)]),
    'numeric32': (ms.NumericId32Mapper, [(7, 1), (3, 2), (1000, 3)]),
    'numeric-multi': (ms.NumericIdMultiMapper, [(7, 1), (7, 2), (3, 5), (9, 9), (9, 10), (9, 11)]),
    'string': (ms.StringIdMapper, [('a', 1), ('bb', 2), ('ñ', 3)]),
    'string-multi': (ms.StringIdMultiMapper, [('a', 1), ('a', 2), ('c', 3)]),
    'object': (ms.ObjectIdMapper, [(('k', 1), 1), (('k', 2), 2), (5, 3)]),
}
ABSENT = {'numeric': 8, 'numeric32': 8, 'numeric-multi': 8, 'string': 'zz', 'string-multi': 'zz', 'object': ('k', 9)}


def _model(pairs):
    model = collections.defaultdict(list)
    for key, value in pairs:
        model[key].append(value)
    return model


@pytest.fixture(params=sorted(PAIRS))
def built(request, tmp_path):
    kind, pairs = PAIRS[request.param]
    path = tmp_path / 'mapper.bin'
    kind.build(pairs, destfile=str(path))
    mapper = kind.map_file(str(path))
    yield request.param, mapper, pairs
    del mapper


def test_keys_are_a_set_like_view_walked_any_number_of_times(built):
    name, mapper, pairs = built
    model = _model(pairs)
    keys = mapper.keys()
    assert isinstance(keys, collections.abc.KeysView)
    assert len(keys) == len(model) and sorted(keys, key=repr) == sorted(model, key=repr)
    assert list(keys) == list(keys) == list(mapper) == list(mapper.iterkeys(False))
    first = pairs[0][0]
    assert first in keys and ABSENT[name] not in keys and [] not in keys
    assert keys & {first, ABSENT[name]} == {first} and (keys - {first}) == set(model) - {first}
    assert not keys.isdisjoint([first]) and keys.isdisjoint([ABSENT[name]])
    assert repr(len(keys)) in repr(keys)


def test_values_and_items_count_every_row(built):
    name, mapper, pairs = built
    values, items = mapper.values(), mapper.items()
    assert isinstance(values, collections.abc.ValuesView) and isinstance(items, collections.abc.ItemsView)
    assert len(values) == len(items) == len(pairs) == len(mapper)
    assert sorted(values) == sorted(value for _, value in pairs) and list(values) == list(values)
    assert sorted(items, key=repr) == sorted(pairs, key=repr) and list(items) == list(items)
    assert list(zip(mapper.keys() if not mapper.multi else [key for key, _ in items], values)) == list(items)
    key, value = pairs[-1]
    assert (key, value) in items and (key, value + 100) not in items and (ABSENT[name], value) not in items
    assert 'not a pair' not in items and (key,) not in items and ([], 1) not in items
    assert value in values and -1 not in values
    assert list(mapper.itervalues()) == list(values) and sorted(mapper.iteritems(), key=repr) == sorted(items, key=repr)


def test_numeric_columns_convert_to_numpy_without_a_copy(built):
    name, mapper, pairs = built
    values = numpy.asarray(mapper.values())
    assert values.tolist() == list(mapper.values())
    assert numpy.shares_memory(values, mapper.rows) and not values.flags.writeable
    assert numpy.asarray(mapper.values(), dtype=float).tolist() == [float(value) for value in mapper.values()]
    if name.startswith('numeric'):
        keys = numpy.asarray(mapper.keys())
        assert keys.tolist() == list(mapper.keys()) == sorted(_model(pairs))
        assert numpy.shares_memory(keys, mapper.rows) != mapper.multi     # distinct keys of a multi mapper: a copy
        with pytest.raises(ValueError, match='needs a copy'):
            numpy.asarray(mapper.keys(), dtype=numpy.int8, copy=False) if numpy.__version__ >= '2' else \
                mapper.keys().__array__(numpy.int8, copy=False)
    else:
        assert not hasattr(mapper.keys(), '__array__')


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 64 - 1), st.integers(0, 2 ** 63 - 1)), max_size=60),
       st.booleans())
def test_views_agree_with_a_dict_model(pairs, multi):
    kind = ms.NumericIdMultiMapper if multi else ms.NumericIdMapper
    if not multi:
        pairs = list(dict(pairs).items())
    mapper = kind.build(pairs)
    model = _model(pairs)
    assert set(mapper.keys()) == set(model) and len(mapper.keys()) == len(model)
    assert sorted(mapper.items()) == sorted(pairs) and len(mapper.items()) == len(pairs)
    assert sorted(mapper.values()) == sorted(value for _, value in pairs)
    assert all((key, value) in mapper.items() for key, value in pairs)


class Point:
    __slot_types__ = {'x': int, 'label': str}

    def __init__(self, x, label):
        self.x, self.label = x, label


class Points(ms.MappedArrayProxyBase):
    schema = ms.Schema.from_typed_slots(Point)


class PointsByName(ms.MappedMappingProxyBase):
    IdMapper = ms.StringIdMapper
    ValueArray = Points


class PointsByNumber(ms.MappedMultiMappingProxyBase):
    IdMapper = ms.NumericIdMultiMapper
    ValueArray = Points


def test_mapping_views():
    mapping = PointsByName.build({'p%d' % n: Point(n, 'l%d' % (n % 2)) for n in range(5)})
    keys, values, items = mapping.keys(), mapping.values(), mapping.items()
    assert len(keys) == len(values) == len(items) == len(mapping) == 5
    assert sorted(keys) == ['p%d' % n for n in range(5)] and 'p3' in keys and 'p9' not in keys
    assert sorted(value.x for value in values) == list(range(5)) and list(values) == list(values)
    assert ('p3', Point(3, 'l1')) in items and ('p3', Point(4, 'l0')) not in items and ('p9', Point(3, 'l1')) not in items
    assert {key: value.x for key, value in items} == {'p%d' % n: n for n in range(5)}
    # iteritems() defaults to the string mapper's stored-key order (1.x's make_sequential=True)
    assert sorted(key for key, _ in mapping.iteritems()) == sorted(mapping.iterkeys()) == sorted(mapping)
    assert list(mapping.iterkeys()) == list(mapping) == list(keys)
    assert [value.x for value in mapping.itervalues()] == [value.x for value in values]


def test_multi_mapping_views_count_every_value():
    mapping = PointsByNumber.build([(1, Point(1, 'a')), (1, Point(2, 'b')), (5, Point(3, 'c'))])
    assert len(mapping.keys()) == 2 and sorted(mapping.keys()) == [1, 5]
    assert numpy.asarray(mapping.keys()).tolist() == [1, 5]
    assert len(mapping.values()) == len(mapping.items()) == 3
    assert sorted((key, value.x) for key, value in mapping.items()) == [(1, 1), (1, 2), (5, 3)]
    assert (1, Point(2, 'b')) in mapping.items() and (5, Point(2, 'b')) not in mapping.items()
