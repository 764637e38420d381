"""Typed mappings: keys to struct values in one file (FORMAT.md §11)."""
import io
import os
import struct
import subprocess
import tempfile
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from conftest import reference_python
from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, MappedMultiMappingProxyBase, NumericIdMapper, ObjectIdMapper,
    Schema, StringIdMapper, StringIdMultiMapper)


class Item:
    __slot_types__ = {'number': int, 'flag': object, 'name': str}

    def __init__(self, number=0, flag=None, name=''):
        self.number, self.flag, self.name = number, flag, name


class Items(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Item)


class ByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Items


class ById(MappedMappingProxyBase):
    IdMapper = NumericIdMapper
    ValueArray = Items


class ByAnything(MappedMappingProxyBase):
    IdMapper = ObjectIdMapper
    ValueArray = Items


class ManyByName(MappedMultiMappingProxyBase):
    IdMapper = StringIdMultiMapper
    ValueArray = Items


def test_a_mapping_built_from_a_generator_reads_back(tmp_path):
    path = str(tmp_path / 'by_name.bin')
    mapped = ByName.build((('k%d' % i, Item(i, None, 'n%d' % i)) for i in range(500)), path)
    assert len(mapped) == 500 and mapped['k42'].number == 42 and mapped.get('missing') is None
    assert 'k499' in mapped and sorted(mapped.keys())[:2] == ['k0', 'k1']
    assert sum(value.number for value in mapped.values()) == sum(range(500))
    with pytest.raises(KeyError):
        mapped['missing']


def test_len_counts_keys_even_when_values_are_shared():
    mapped = ById.build({i: Item(i % 3) for i in range(30)})
    assert len(mapped) == 30 and len(mapped.value_array) == 3


def test_values_that_only_compare_equal_are_never_merged():
    mapped = ByAnything.build([('one', Item(1, 1)), ('true', Item(1, True))])
    assert mapped['one'].flag == 1 and type(mapped['one'].flag) is int
    assert mapped['true'].flag is True          # 1.x's value cache returned the int for both


def test_multi_mappings_return_every_value():
    mapped = ManyByName.build([('a', Item(1)), ('b', Item(2)), ('a', Item(3))])
    assert sorted(value.number for value in mapped['a']) == [1, 3]
    assert [value.number for value in mapped.get('b')] == [2]


def test_several_mappings_at_any_offsets_of_one_file(tmp_path):
    path = tmp_path / 'bundle.bin'
    with open(path, 'w+b') as f:
        f.write(b'prefix')
        start_first = f.tell()
        ByName.build({'a': Item(1)}, f, return_mapper=False)
        start_second = f.tell()
        ByName.build({'b': Item(2), 'c': Item(3)}, f, return_mapper=False)
        end = f.tell()
    first = ByName.map_file(str(path), start_first, start_second - start_first)
    second = ByName.map_file(str(path), start_second, end - start_second)
    assert first['a'].number == 1 and second['c'].number == 3 and 'a' not in second
    data = path.read_bytes()
    assert ByName.map_buffer(data, start_second)['b'].number == 2      # 1.x: struct.error past offset 0


def test_a_corrupt_footer_is_a_clean_error():
    data = bytearray(bytes(ByName.build({'a': Item(1)}).buf))
    struct.pack_into('=Q', data, len(data) - 8, 1 << 40)
    with pytest.raises(ValueError, match='footer'):
        ByName.map_buffer(bytes(data))
    with pytest.raises(ValueError):
        ByName.map_buffer(b'short')


REFERENCE = reference_python()


@pytest.mark.skipif(REFERENCE is None, reason='the sharedbuffers 1.2.3 reference venv is not built')
def test_sharedbuffers_1_2_3_reads_a_mapping_we_build(tmp_path):
    path = str(tmp_path / 'by_name.bin')
    ByName.build({'k%d' % i: Item(i, None, 'n%d' % i) for i in range(50)}, path, return_mapper=False)
    script = '''
import sys
from sharedbuffers.mapped_struct import *
class Item(object):
    __slot_types__ = {'number': int, 'flag': object, 'name': str}
class Items(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Item)
class ByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Items
m = ByName.map_file(open(sys.argv[1], 'rb'))
print(m['k7'].number, m['k49'].name, m.get('zz'))
'''
    result = subprocess.run([REFERENCE, '-c', script, path], capture_output=True, text=True, cwd='/',
                            env=dict(os.environ, PYTHONPATH=''))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['7', 'n49', 'None']


# -- builds in bounded memory ------------------------------------------------------------------

def _mapping_bytes(cls, pairs, **options):
    output = io.BytesIO()
    cls.build(pairs, output, return_mapper=False, **options)
    return output.getvalue()


@pytest.mark.parametrize('cls', [ByName, ById, ManyByName], ids=lambda cls: cls.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_mapping_built_in_many_runs_has_the_bytes_of_the_in_memory_build(cls, data):
    keys = st.integers(0, 9) if cls is ById else st.sampled_from(['a', 'b', 'ñ']) | st.text(max_size=4)
    pairs = data.draw(st.lists(st.tuples(keys, st.integers(0, 4)), max_size=50))
    records = [(key, Item(number, None, 'n%d' % number)) for key, number in pairs]
    budget = data.draw(st.integers(1, 400))
    assert _mapping_bytes(cls, records, memory_budget=budget, value_cache_size=3) == \
        _mapping_bytes(cls, records, value_cache_size=3)


def test_a_mapping_build_bigger_than_its_budget_stays_in_bounded_memory(tmp_path):
    count = 300_000             # the keys alone, held as str, take about 20 MiB
    records = (('key-%09d' % ((number * 7919) % count), Item(number % 1000)) for number in range(count))
    path = str(tmp_path / 'by_name.bin')
    tracemalloc.start()
    try:
        ByName.build(records, path, tempdir=str(tmp_path), return_mapper=False, memory_budget=4 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, 'peak %.1f MiB' % (peak / 2 ** 20)
    mapped = ByName.map_file(path)
    assert len(mapped) == count and mapped['key-%09d' % ((1234 * 7919) % count)].number == 234


def test_a_mapping_build_that_raises_midway_leaves_no_temporary_file_open(tmp_path, monkeypatch):
    made = []
    original = tempfile.TemporaryFile

    def recorded(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    def failing_records():
        for number in range(1000):
            yield 'k%d' % number, Item(number)
        raise RuntimeError('the input failed')

    monkeypatch.setattr(tempfile, 'TemporaryFile', recorded)
    with pytest.raises(RuntimeError, match='the input failed'):
        ByName.build(failing_records(), str(tmp_path / 'by_name.bin'), tempdir=str(tmp_path), memory_budget=1000)
    assert len(made) > 2 and all(made_file.closed for made_file in made)
    assert os.listdir(tmp_path) == []
