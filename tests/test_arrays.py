"""Typed arrays: streaming builds, safe files, validated reads, vectorized columns (FORMAT.md §10)."""
import gc
import mmap
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys

import numpy
import pytest

from conftest import reference_python
from sharedbuffers.containers import arrays
from sharedbuffers.mapped_struct import MappedArrayProxyBase, Schema, uint16


class Point:
    __slot_types__ = {'x': int, 'y': float, 'label': str, 'code': uint16}

    def __init__(self, x=None, y=None, label=None, code=None):
        for name, value in (('x', x), ('y', y), ('label', label), ('code', code)):
            if value is not None:
                setattr(self, name, value)


class Points(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


def points(count):
    return (Point(i, i / 2, 'p%d' % i, i % 65536) for i in range(count))


def test_build_streams_a_generator_into_a_path_and_maps_it(tmp_path):
    path = tmp_path / 'points.bin'
    mapped = Points.build(points(1000), str(path))
    assert len(mapped) == 1000 and path.exists()
    assert (mapped[0].x, mapped[-1].label, mapped[500].y) == (0, 'p999', 250.0)
    assert [p.x for p in mapped[10:13]] == [10, 11, 12] and [p.x for p in mapped[::400]] == [0, 400, 800]
    assert sum(p.x for p in mapped) == sum(range(1000))


def test_a_failed_build_leaves_the_previous_file_untouched(tmp_path):
    path = tmp_path / 'points.bin'
    Points.build(points(10), str(path), return_mapper=False)
    before = path.read_bytes()

    def failing():
        yield Point(1, 1.0, 'ok', 1)
        raise RuntimeError('source failed')
    with pytest.raises(RuntimeError):
        Points.build(failing(), str(path))
    assert path.read_bytes() == before
    assert [name for name in os.listdir(tmp_path) if name.endswith('.tmp')] == []


def test_a_build_into_an_open_file_appends_at_its_position(tmp_path):
    path = tmp_path / 'two.bin'
    with open(path, 'w+b') as f:
        f.write(b'HEADER--')
        first = Points.build(points(3), f)
        second_start = f.tell()
        second = Points.build(points(5), f)
    assert len(first) == 3 and len(second) == 5
    assert Points.map_file(str(path), 8, second_start - 8)[2].x == 2
    assert Points.map_file(str(path), second_start)[4].label == 'p4'


def test_the_base_class_reads_the_stored_schema():
    mapped = Points.build(points(4))
    data = bytes(mapped.buf)
    plain = MappedArrayProxyBase.map_buffer(data)
    assert plain.schema.compatible(Points.schema) and plain[3].label == 'p3'


def test_a_stored_schema_with_a_foreign_global_is_refused():
    data = bytearray(Points.build(points(2)).buf)
    total, index_offset, count, _, _, schema_offset, schema_size = struct.unpack_from('=7Q', data)
    evil = b'\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.'
    data = data[:schema_offset] + evil
    struct.pack_into('=Q', data, 0, len(data))
    struct.pack_into('=Q', data, 48, len(evil))
    with pytest.raises(pickle.UnpicklingError, match='os.system'):
        MappedArrayProxyBase.map_buffer(bytes(data))


def with_stored_schema(data, stored):
    """``data`` (a typed array's bytes) with ``stored`` in place of its pickled schema."""
    schema_offset = struct.unpack_from('=Q', data, 40)[0]
    data = bytearray(data[:schema_offset] + stored)
    struct.pack_into('=Q', data, 0, len(data))
    struct.pack_into('=Q', data, 48, len(stored))
    return bytes(data)


@pytest.mark.parametrize('reader', [MappedArrayProxyBase, Points])
@pytest.mark.parametrize('stored', [b'\x80\x02\x01', b'\x80\x02K\x05.', b'\x80\x02c__builtin__\nlIng\n.'])
def test_a_corrupt_stored_schema_is_a_value_error_naming_its_offset(reader, stored):
    data = bytes(Points.build(points(2)).buf)
    schema_offset = struct.unpack_from('=Q', data, 40)[0]
    with pytest.raises(ValueError, match=r'offset 0: the schema at \+%d \(%d bytes\) cannot be read'
                                         % (schema_offset, len(stored))):
        reader.map_buffer(with_stored_schema(data, stored))


def test_a_higher_minimum_reader_version_is_refused():
    data = bytearray(Points.build(points(2)).buf)
    struct.pack_into('=Q', data, 32, 3)
    with pytest.raises(ValueError, match='reader version 3'):
        Points.map_buffer(bytes(data))


def test_version_0_buffers_are_refused():
    data = bytearray(Points.build(points(2)).buf)
    index_offset = struct.unpack_from('=Q', data, 8)[0]
    struct.pack_into('=Q', data, index_offset, 8)
    with pytest.raises(ValueError, match='version-0'):
        Points.map_buffer(bytes(data))


@pytest.mark.parametrize('field, value', [(0, 1 << 40), (8, 1 << 40)], ids=['total size', 'index offset'])
def test_header_sizes_are_validated_against_the_buffer(field, value):
    data = bytearray(Points.build(points(2)).buf)
    struct.pack_into('=Q', data, field, value)
    with pytest.raises(ValueError):
        Points.map_buffer(bytes(data))


def test_a_truncated_array_is_refused():
    data = bytes(Points.build(points(20)).buf)
    for length in (0, 10, 55, len(data) // 2, len(data) - 1):
        with pytest.raises((ValueError, IndexError)):
            Points.map_buffer(data[:length])


def test_indexing_out_of_range_raises_index_error():
    mapped = Points.build(points(3))
    with pytest.raises(IndexError):
        mapped[3]
    assert mapped[-3].x == 0


def test_getter_and_masked_iter_fast():
    mapped = Points.build(points(10))
    assert mapped.getter()(7).label == 'p7'
    assert [p.x for p in mapped.iter_fast(numpy.array([1, 0] * 5, numpy.uint8))] == [0, 2, 4, 6, 8]


def test_column_reads_a_fixed_field_of_every_item_vectorized():
    mapped = Points.build(points(5000))
    xs = mapped.column('x')
    assert xs.dtype == numpy.int64 and xs.sum() == sum(range(5000))
    assert numpy.array_equal(mapped.column('code', indices=[3, 70000 % 5000]), [3, 70000 % 5000])
    assert numpy.allclose(mapped.column('y'), numpy.arange(5000) / 2)


def test_column_handles_items_of_different_shapes():
    items = [Point(1, 1.5, 'a', 7), Point(x=2, code=8), Point(y=3.5, code=9), Point(4)]
    mapped = Points.build(items)
    assert mapped.column('code', default=0).tolist() == [7, 8, 9, 0]
    assert mapped.column('x', default=-1).tolist() == [1, 2, -1, 4]
    with pytest.raises(ValueError, match='1 items have no value'):
        mapped.column('x')
    with pytest.raises(TypeError, match='variable-size'):
        mapped.column('label')


def test_1x_attributes_index_and_wr_buf_and_constructor_arguments(tmp_path):
    path = tmp_path / 'points.bin'
    Points.build(points(50), str(path), return_mapper=False)
    mapped = Points.map_file(str(path))
    index = mapped.index
    assert index.dtype == numpy.uint64 and len(index) == 50 and not index.flags.writeable
    assert index[0] == arrays.HEADER_SIZE and (numpy.diff(index.astype(numpy.int64)) > 0).all()
    assert mapped.wr_buf is None
    with pytest.raises(BufferError):        # the numpy view pins the mapping, as in numpy.memmap
        mapped.close()
    assert mapped[49].x == 49               # still open and readable after the refusal
    del index
    vars(mapped).pop('index', None)
    mapped.close()
    with pytest.raises(ValueError, match='closed'):
        mapped.index
    writable = Points.map_file(str(path), read_only=False)
    assert writable.wr_buf is writable.buf

    data = bytes(Points.build(points(5)).buf)
    again = Points(data, 0, None, 16)       # 1.x's positional (buf, offset, idmap, idmap_size)
    assert [p.x for p in again] == list(range(5)) and again.wr_buf is None
    assert Points(data, idmap={}, idmap_size=0)[4].label == 'p4'
    with pytest.raises(TypeError, match='idmap must be'):
        Points(data, 0, [1, 2])
    for size in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match='idmap_size'):
            Points(data, 0, None, size)
    assert len(Points.build([]).index) == 0


def test_a_writable_mapping_changes_the_file(tmp_path):
    path = tmp_path / 'points.bin'
    Points.build(points(3), str(path), return_mapper=False)
    mapped = Points.map_file(str(path), read_only=False)
    item = mapped[1]
    item.x = 99
    type(item).x.add(item, 1)
    del item
    assert Points.map_file(str(path))[1].x == 100


def test_a_writable_mapping_refuses_to_close_while_a_live_proxy_lives(tmp_path):
    path = tmp_path / 'points.bin'
    Points.build(points(3), str(path), return_mapper=False)
    mapped = Points.map_file(str(path), read_only=False)
    items = list(mapped)
    assert [p.x for p in items] == [0, 1, 2] and [mapped[i].label for i in range(3)] == ['p0', 'p1', 'p2']
    kept = items[2]
    del items
    with pytest.raises(BufferError):
        mapped.close()
    kept.x = 7
    del kept
    gc.collect()
    mapped.close()
    assert Points.map_file(str(path))[2].x == 7


@pytest.mark.parametrize('access', ['read', 'write'])
def test_an_array_over_an_mmap_reads_it_and_lets_it_close_once_gone(tmp_path, access):
    path = tmp_path / 'points.bin'
    Points.build(points(4), str(path), return_mapper=False)
    with open(path, 'r+b') as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ if access == 'read' else mmap.ACCESS_WRITE)
    mapped = Points.map_buffer(mapping)
    assert [(p.x, p.label) for p in mapped] == [(i, 'p%d' % i) for i in range(4)]
    assert mapped[-1].x == 3 and mapped.getter()(1).label == 'p1'
    if access == 'write':
        mapped[0].x = 40
        assert mapped[0].x == 40
    del mapped
    gc.collect()
    mapping.close()


def test_positions_spill_to_disk_past_the_memory_budget(monkeypatch, tmp_path):
    monkeypatch.setattr(arrays, '_POSITIONS_IN_MEMORY', 100)
    mapped = Points.build(points(1050), tempdir=str(tmp_path))
    assert len(mapped) == 1050 and mapped[1049].x == 1049 and mapped[101].label == 'p101'


def _child_sum(path, queue):
    queue.put(sum(p.x for p in Points.map_file(path)))


def test_readers_in_other_processes_share_the_file(tmp_path):
    path = str(tmp_path / 'points.bin')
    Points.build(points(2000), path, return_mapper=False)
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    children = [context.Process(target=_child_sum, args=(path, queue)) for _ in range(3)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(60)
    assert results == [sum(range(2000))] * 3


def test_zip_stored_members_are_mapped(tmp_path):
    import zipfile
    data = bytes(Points.build(points(5)).buf)
    path = tmp_path / 'bundle.zip'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('points', data)
    assert Points.map_zipfile(str(path), 'points')[4].label == 'p4'


REFERENCE = reference_python()


@pytest.mark.skipif(REFERENCE is None, reason='the sharedbuffers 1.2.3 reference venv is not built')
def test_sharedbuffers_1_2_3_reads_an_array_we_build(tmp_path):
    path = str(tmp_path / 'points.bin')
    Points.build(points(300), path, return_mapper=False)
    script = '''
import sys
from sharedbuffers.mapped_struct import MappedArrayProxyBase
arr = MappedArrayProxyBase.map_file(open(sys.argv[1], 'rb'))
print(len(arr), sum(p.x for p in arr), arr[299].label, arr[7].code)
'''
    result = subprocess.run([REFERENCE, '-c', script, path], capture_output=True, text=True, cwd='/',
                            env=dict(os.environ, PYTHONPATH=''))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['300', str(sum(range(300))), 'p299', '7']


def test_a_file_holding_the_declared_schema_opens_without_unpickling(monkeypatch):
    from sharedbuffers.containers import arrays as arrays_module

    class Cell:
        __slot_types__ = {'x': int, 'tag': str}
        __slots__ = ('x', 'tag')

        def __init__(self, x, tag):
            self.x = x
            self.tag = tag

    class Cells(MappedArrayProxyBase):
        schema = Schema.from_typed_slots(Cell)

    buffer = Cells.build([Cell(1, 'a'), Cell(2, 'b')]).buf

    def refuse(data):
        raise AssertionError('the stored schema was unpickled')
    monkeypatch.setattr(arrays_module, 'load_schema', refuse)
    cells = Cells.map_buffer(buffer)
    assert cells.schema is Cells.schema and [c.tag for c in cells] == ['a', 'b']


def test_reading_files_loads_no_build_time_modules():
    """A reader process imports neither tempfile, the thread pool nor the build writers."""
    code = ('import sys; from sharedbuffers import mapped_struct; '
            'print(sorted(m for m in ("tempfile", "concurrent.futures", "logging", '
            '"sharedbuffers.containers.idmapper_writers", "sharedbuffers.shared_memory") if m in sys.modules))')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    output = subprocess.run([sys.executable, '-c', code], cwd=root, env=dict(os.environ, PYTHONPATH=root),
                            capture_output=True, text=True, check=True).stdout
    assert output.strip() == '[]'
