"""numpy is imported by the features that use it, not by importing or reading sharedbuffers.

Every check of "no numpy" runs in a fresh interpreter: this test process imported numpy long
ago.  The children inherit SHAREDBUFFERS_PURE, so both implementations are covered.
"""
import os
import subprocess
import sys
import textwrap

import numpy
import pytest

from sharedbuffers.mapped_struct import (
    ApproxStringIdMultiMapper, MappedArrayProxyBase, MappedMappingProxyBase, MappedMultiMappingProxyBase,
    NumericId32Mapper, NumericIdMapper, NumericIdMultiMapper, ObjectIdMapper, Schema, StringId32Mapper,
    StringIdMapper, StringIdMultiMapper, mapped_object)
from sharedbuffers.numpy_in_use import is_numpy_integer, ndarray_class

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_child(code, *arguments):
    """The last line the child prints (it runs with this checkout on its path)."""
    finished = subprocess.run([sys.executable, '-c', textwrap.dedent(code), *arguments], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip().splitlines()[-1]


class Part:
    __slot_types__ = {'x': float, 'y': int}

    def __init__(self, x, y):
        self.x, self.y = x, y


# No typecode: Part is only stored in slots typed with it, and the RTTI table is shared by every test.
mapped_object.register_schema(Part, Schema.from_typed_slots(Part), None)


class Record:
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'blob': bytes, 'tags': list, 'extra': dict,
                      'kinds': frozenset, 'part': Part, 'anything': object, 'flag': bool}

    def __init__(self, number):
        self.id = number
        self.score = number / 4
        self.name = 'record-%d' % number
        self.blob = b'\x00\x01' * number
        self.tags = ['t%d' % (number % 3), number]
        self.extra = {'n': number, 'half': number // 2}
        self.kinds = frozenset({number % 2, 'k'})
        self.part = Part(number * 1.5, -number)
        self.anything = ('a', number) if number % 2 else None
        self.flag = number % 3 == 0


class Records(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Record)


class RecordsByName(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Records


class RecordsByKind(MappedMultiMappingProxyBase):
    IdMapper = StringIdMultiMapper
    ValueArray = Records


def test_importing_sharedbuffers_imports_no_numpy():
    assert run_child('import sys, sharedbuffers, sharedbuffers.pool; print("numpy" in sys.modules)') == 'False'


@pytest.fixture(scope='module')
def written_files(tmp_path_factory):
    """One file of each container kind, written by this process (which has numpy)."""
    directory = tmp_path_factory.mktemp('no-numpy')
    records = [Record(number) for number in range(40)]
    paths = {}

    def build(name, kind, initializer):
        paths[name] = str(directory / name)
        kind.build(initializer, destfile=paths[name])

    build('array', Records, records)
    build('by-name', RecordsByName, [(record.name, record) for record in records])
    build('by-kind', RecordsByKind, [('kind-%d' % (record.id % 4), record) for record in records])
    build('numeric', NumericIdMapper, {number * 977: number for number in range(200)})
    build('numeric32', NumericId32Mapper, {number * 977: number for number in range(200)})
    build('numeric-multi', NumericIdMultiMapper, [(number % 7, number) for number in range(200)])
    build('string', StringIdMapper, {'key-%d' % number: number for number in range(200)})
    build('string32', StringId32Mapper, {'key-%d' % number: number for number in range(200)})
    build('approx', ApproxStringIdMultiMapper, [('key-%d' % (number % 9), number) for number in range(200)])
    build('object', ObjectIdMapper, {('key', number): number for number in range(200)})
    return paths


READ_EVERYTHING = textwrap.dedent('''
    from sharedbuffers.mapped_struct import (
        ApproxStringIdMultiMapper, MappedArrayProxyBase, MappedMappingProxyBase, MappedMultiMappingProxyBase,
        NumericId32Mapper, NumericIdMapper, NumericIdMultiMapper, ObjectIdMapper, StringId32Mapper,
        StringIdMapper, StringIdMultiMapper)


    def read_everything(paths):
        """Every record of every file through every way of reading it, as plain values."""
        class Records(MappedArrayProxyBase):
            pass                    # the schema stored in the file

        class RecordsByName(MappedMappingProxyBase):
            IdMapper = StringIdMapper
            ValueArray = Records

        class RecordsByKind(MappedMultiMappingProxyBase):
            IdMapper = StringIdMultiMapper
            ValueArray = Records

        seen = []

        def read_record(record):
            part = record.part
            seen.append((record.id, record.score, record.name, len(record.blob), list(record.tags),
                         dict(record.extra), sorted(map(str, record.kinds)), part.x, part.y, record.anything,
                         record.flag))

        array = Records.map_file(paths['array'])
        for record in array:
            read_record(record)
        read_record(array[-1])
        read_record(array.getter()(3))
        for record in array.iter_fast():
            read_record(record)
        by_name = RecordsByName.map_file(paths['by-name'])
        read_record(by_name['record-7'])
        seen.append(('record-8' in by_name, by_name.get('nothing'), len(by_name)))
        for key, record in by_name.items():
            read_record(record)
        by_kind = RecordsByKind.map_file(paths['by-kind'])
        for record in by_kind['kind-1']:
            read_record(record)
        for name, kind, key in (('numeric', NumericIdMapper, 977 * 5), ('numeric32', NumericId32Mapper, 977 * 5),
                                ('numeric-multi', NumericIdMultiMapper, 3), ('string', StringIdMapper, 'key-5'),
                                ('string32', StringId32Mapper, 'key-5'), ('approx', ApproxStringIdMultiMapper, 'key-5'),
                                ('object', ObjectIdMapper, ('key', 5))):
            mapper = kind.map_file(paths[name])
            seen.append((mapper.get(key), mapper[key], key in mapper, sorted(mapper.keys(), key=repr)[:3],
                         sorted(mapper.values())[:3], len(list(mapper.items()))))
        return seen
''')


def test_reading_every_container_kind_imports_no_numpy(written_files):
    """A fresh process reads everything (and the same as this one) without importing numpy."""
    namespace = {}
    exec(READ_EVERYTHING, namespace)
    expected = namespace['read_everything'](written_files)
    assert len(expected) == 141
    code = READ_EVERYTHING + textwrap.dedent('''
        import sys
        seen = read_everything(dict(zip(sys.argv[1::2], sys.argv[2::2])))
        print(repr((repr(seen), 'numpy' in sys.modules)))
    ''')
    arguments = [part for item in written_files.items() for part in item]
    assert run_child(code, *arguments) == repr((repr(expected), False))


def test_numpy_features_import_numpy_when_used(written_files):
    code = '''
        import sys
        from sharedbuffers.mapped_struct import MappedArrayProxyBase, NumericIdMapper
        array = MappedArrayProxyBase.map_file(sys.argv[1])
        before = 'numpy' in sys.modules
        ids = array.column('id')
        found = NumericIdMapper.map_file(sys.argv[2]).get_many([977 * 5, 1])
        print(before, type(ids).__module__, int(ids.sum()), found)
    '''
    assert run_child(code, written_files['array'], written_files['numeric']) == 'False numpy 780 [5, None]'


def test_arrays_are_stored_when_numpy_is_imported_after_sharedbuffers():
    """numpy.ndarray joins the RTTI table and the slot types once numpy is imported."""
    code = '''
        import sharedbuffers.mapped_struct as ms
        import numpy
        typed = ms.Schema({'values': numpy.ndarray, 'any': object, 'inside': list})

        class Holder:
            def __init__(self):
                self.values = numpy.arange(6, dtype='i2').reshape(2, 3)
                self.any = numpy.array([7, 8], 'u8')
                self.inside = [numpy.array([1.5, 2.5]), 'text']
        proxy = typed.unpack_from(typed.pack(Holder()))
        print(proxy.values.tolist(), proxy.any.tolist(), proxy.any.dtype, proxy.inside[0].tolist(),
              proxy.inside[1], typed.slot_types['values'] is ms.proxied_ndarray)
    '''
    assert run_child(code) == "[[0, 1, 2], [3, 4, 5]] [7, 8] uint64 [1.5, 2.5] text True"


def test_recognising_numpy_objects():
    assert ndarray_class() is numpy.ndarray
    assert is_numpy_integer(numpy.uint64(5)) and is_numpy_integer(numpy.int8(-1))
    assert not is_numpy_integer(5) and not is_numpy_integer(numpy.float64(5)) and not is_numpy_integer('5')


def test_recognising_numpy_objects_in_a_process_without_numpy():
    code = '''
        import sys
        from sharedbuffers.numpy_in_use import is_numpy_integer, ndarray_class
        print(ndarray_class(), is_numpy_integer(5), 'numpy' in sys.modules)
    '''
    assert run_child(code) == 'None False False'
