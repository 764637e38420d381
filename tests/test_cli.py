"""The ``sharedbuffers`` command line: demo and inspect."""
import subprocess
import sys

import pytest

from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericIdMapper, Schema, StringIdMapper)


def run(*arguments):
    return subprocess.run([sys.executable, '-m', 'sharedbuffers', *arguments], capture_output=True, text=True)


class Row:
    __slot_types__ = {'a': int, 'b': str}

    def __init__(self, a, b):
        self.a, self.b = a, b


class Rows(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Row)


class RowsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Rows


def test_demo_builds_queries_and_compares_with_pickle(tmp_path):
    result = run('demo', '--size', '3000', '--keep', str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'building [' in result.stderr and '3000/3000' in result.stderr
    for line in ('file size (bytes)', 'build (s)', 'open (ms)', 'lookup by name + one field (ns)'):
        assert line in result.stdout
    assert (tmp_path / 'records.sbm').exists()


def test_inspect_describes_a_typed_array(tmp_path):
    path = tmp_path / 'rows.bin'
    Rows.build((Row(i, str(i)) for i in range(7)), str(path), return_mapper=False)
    result = run('inspect', str(path))
    assert result.returncode == 0
    assert 'typed array' in result.stdout and 'items:' in result.stdout and ' 7' in result.stdout
    assert 'a: int' in result.stdout and 'b: mapped_unicode' in result.stdout


def test_inspect_describes_a_mapping_and_an_id_mapper(tmp_path):
    mapping = tmp_path / 'map.bin'
    RowsByName.build({'x': Row(1, 'x'), 'y': Row(2, 'y')}, str(mapping), return_mapper=False)
    assert 'typed mapping' in run('inspect', str(mapping)).stdout
    mapper = tmp_path / 'ids.bin'
    NumericIdMapper.build({1: 2, 3: 4}, str(mapper), return_mapper=False)
    result = run('inspect', str(mapper))
    assert 'id mapper' in result.stdout and 'rows:' in result.stdout


def test_inspect_at_an_offset(tmp_path):
    path = tmp_path / 'two.bin'
    with open(path, 'w+b') as f:
        f.write(b'\x00' * 24)
        Rows.build([Row(1, 'one')], f, return_mapper=False)
    result = run('inspect', str(path), '--offset', '24')
    assert result.returncode == 0 and 'typed array' in result.stdout


def test_inspect_says_when_it_does_not_recognise_a_file(tmp_path):
    path = tmp_path / 'junk.bin'
    path.write_bytes(b'\xff' * 100)
    result = run('inspect', str(path))
    assert result.returncode == 1 and 'not a sharedbuffers' in result.stdout


@pytest.mark.parametrize('arguments', [[], ['demo', '--size', '0'], ['nonsense']])
def test_bad_arguments_exit_with_usage(arguments):
    assert run(*arguments).returncode == 2
