"""A fresh process that imports sharedbuffers, opens a file and reads one record.

    .venv/bin/python -m pytest benchmarks/test_bench_startup.py --benchmark-only --benchmark-group-by=group

Short-lived readers (command-line tools, spawned workers) pay this on every start.  Each
group has its baseline in the same run: the bare interpreter, and the same process
importing numpy as well, which sharedbuffers does not do unless a feature needs it
(``numpy_in_use``).  Every round starts a new interpreter, so the figures include its
start-up and are noisy; the ratios are the point.
"""
import os
import subprocess
import sys

import pytest

from sharedbuffers.mapped_struct import MappedArrayProxyBase, MappedMappingProxyBase, Schema, StringIdMapper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Entry:
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'tags': list}

    def __init__(self, number):
        self.id, self.score, self.name, self.tags = number, number / 4, 'entry-%d' % number, [number % 5]


class Entries(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Entry)


class EntriesByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Entries


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp('startup')
    entries = [Entry(number) for number in range(20000)]
    array, mapping = str(directory / 'entries.sba'), str(directory / 'by-name.sbm')
    Entries.build(entries, destfile=array)
    EntriesByName.build(((entry.name, entry) for entry in entries), destfile=mapping)
    return array, mapping


def run(code, *arguments):
    subprocess.run([sys.executable, '-c', code, *arguments], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                   check=True, capture_output=True)


def in_fresh_processes(benchmark, code, *arguments):
    benchmark.pedantic(run, args=(code,) + arguments, rounds=15, warmup_rounds=1)


OPEN_ARRAY = ('import sys; from sharedbuffers.mapped_struct import MappedArrayProxyBase\n'
              'assert MappedArrayProxyBase.map_file(sys.argv[1])[1234].name == "entry-1234"')
OPEN_MAPPING = ('import sys; from sharedbuffers.mapped_struct import MappedArrayProxyBase, MappedMappingProxyBase, '
                'StringIdMapper\n'
                'class Entries(MappedArrayProxyBase): pass\n'
                'class ByName(MappedMappingProxyBase):\n'
                '    IdMapper = StringIdMapper\n'
                '    ValueArray = Entries\n'
                'assert ByName.map_file(sys.argv[1])["entry-1234"].id == 1234')


@pytest.mark.benchmark(group='import')
def test_bare_interpreter(benchmark):
    in_fresh_processes(benchmark, 'pass')


@pytest.mark.benchmark(group='import')
def test_import_sharedbuffers(benchmark):
    in_fresh_processes(benchmark, 'import sharedbuffers.mapped_struct')


@pytest.mark.benchmark(group='import')
def test_import_sharedbuffers_and_numpy(benchmark):
    in_fresh_processes(benchmark, 'import sharedbuffers.mapped_struct, numpy')


@pytest.mark.benchmark(group='process: import, open, read one record')
def test_open_array_in_a_fresh_process(benchmark, files):
    in_fresh_processes(benchmark, OPEN_ARRAY, files[0])


@pytest.mark.benchmark(group='process: import, open, read one record')
def test_open_mapping_in_a_fresh_process(benchmark, files):
    in_fresh_processes(benchmark, OPEN_MAPPING, files[1])


@pytest.mark.benchmark(group='process: import, open, read one record')
def test_open_array_in_a_fresh_process_that_imports_numpy(benchmark, files):
    in_fresh_processes(benchmark, 'import numpy\n' + OPEN_ARRAY, files[0])
