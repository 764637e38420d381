"""Storage: a file with a typed root whose attributes persist, grow, and survive crashes."""
import array
import datetime
import decimal
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy
import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import Schema, float32, int8, int16, mapped_object, uint8, uint32, uint64
from sharedbuffers.storage import Storage, StorageFullError, ViewsAliveError
from sharedbuffers.storage_header import HEADER_SIZE
from sharedbuffers.storage_allocator import BlockHeap

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Point:
    __slot_types__ = {'x': int, 'y': float}

    def __init__(self, x, y):
        self.x, self.y = x, y


Point.schema = Schema.from_typed_slots(Point)
mapped_object.register_schema(Point, Point.schema, None)      # a slot type, without an RTTI code


class Everything:
    __slot_types__ = {
        'count': int, 'ratio': float, 'flag': bool, 'tiny': int8, 'level': uint8, 'short': int16,
        'word': uint32, 'big': uint64, 'single': float32,
        'name': str, 'blob': bytes, 'items': list, 'pair': tuple, 'tags': frozenset, 'mapping': dict,
        'origin': Point, 'array': numpy.ndarray, 'data': memoryview, 'when': datetime.datetime,
        'amount': decimal.Decimal, 'anything': object,
    }


# attribute -> (first value, second value of another size or type)
CASES = {
    'count': (3, -2 ** 63), 'ratio': (1.5, float('inf')), 'flag': (True, False), 'tiny': (-128, 127),
    'level': (0, 255), 'short': (-300, 300), 'word': (2 ** 32 - 1, 7), 'big': (2 ** 64 - 1, 0),
    'single': (0.25, -1.5),
    'name': ('hello', 'ünïcode ' * 100), 'blob': (b'\x00\x01', bytes(range(256)) * 10),
    'items': ([1, 'two', 3.0], list(range(500))), 'pair': ((1, 2), ('a',)),
    'tags': (frozenset({1, 2}), frozenset()), 'mapping': ({'a': 1}, {'b': [1, 2], 'c': None}),
    'origin': (Point(1, 2.5), Point(-5, 0.0)),
    'array': (numpy.arange(6, dtype=numpy.int32).reshape(2, 3), numpy.linspace(0, 1, 1000)),
    'data': (b'raw bytes', numpy.ones((3, 4))),
    'when': (datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.datetime(1999, 12, 31, 23, 59, 59, 999)),
    'amount': (decimal.Decimal('1.25'), decimal.Decimal('-99999999999999999999.5')),
    'anything': ('text', [1, {'x': (2, 3)}]),
}


def same(actual, expected):
    """Equal value, and for buffers and arrays equal layout too."""
    if isinstance(expected, numpy.ndarray) and not isinstance(actual, memoryview):
        return (isinstance(actual, numpy.ndarray) and actual.dtype == expected.dtype
                and actual.shape == expected.shape and numpy.array_equal(actual, expected))
    if isinstance(actual, memoryview):
        wanted = memoryview(expected)
        return (actual.format, actual.shape, actual.tobytes()) == (wanted.format, wanted.shape, wanted.tobytes())
    if isinstance(expected, Point):
        return (actual.x, actual.y) == (expected.x, expected.y)
    return actual == expected and type(actual) is type(expected)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'root.sbs')


def make(path, size=4096, **options):
    return Storage(path, size=size, root=Everything, **options)


# -- creating and reopening --------------------------------------------------------------------

def test_new_storage_has_every_attribute_absent(path):
    with make(path) as storage:
        for name in Everything.__slot_types__:
            assert not hasattr(storage.root, name)


def test_size_creates_a_file_of_that_size(path):
    make(path, size=10000).close()
    assert os.path.getsize(path) == 10000


def test_existing_file_is_reopened_not_recreated(path):
    with make(path, size=8192) as storage:
        storage.root.count = 7
    with Storage(path, size=8192, root=Everything) as storage:
        assert storage.root.count == 7


def test_reopening_without_root_uses_the_stored_schema(path):
    with make(path) as storage:
        storage.root.name = 'kept'
    with Storage(path) as storage:
        assert storage.root.name == 'kept'
        assert type(storage.root).__name__ == 'EverythingRoot'


def test_creating_without_root_raises_type_error(path):
    with pytest.raises(TypeError, match='root='):
        Storage(path, size=4096)
    assert not os.path.exists(path)


def test_reopening_with_another_root_raises_value_error(path):
    make(path).close()
    with pytest.raises(ValueError, match='does not match'):
        Storage(path, root=Point)


def test_size_grows_a_smaller_existing_file(path):
    make(path, size=4096).close()
    with Storage(path, size=20000) as storage:
        assert storage.size == 20000
        storage.root.blob = os.urandom(15000)
        assert storage.size == 20000


def test_size_too_small_for_the_root_raises_value_error(path):
    with pytest.raises(ValueError, match='at least'):
        make(path, size=256)


def test_mode_w_plus_replaces_the_file(path):
    with make(path) as storage:
        storage.root.count = 1
    with make(path, mode='w+') as storage:
        assert not hasattr(storage.root, 'count')


def test_a_second_writer_is_refused(path):
    with make(path):
        with pytest.raises(BlockingIOError, match='already open for writing'):
            Storage(path)
        with Storage(path, mode='r'):
            pass


# -- assigning and reading ---------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(CASES))
def test_assign_reassign_and_reopen(path, name):
    first, second = CASES[name]
    with make(path) as storage:
        setattr(storage.root, name, first)
        assert same(getattr(storage.root, name), first)
        setattr(storage.root, name, second)
        assert same(getattr(storage.root, name), second)
    with Storage(path) as storage:
        assert same(getattr(storage.root, name), second)
        storage.check()


def test_every_attribute_survives_reopening_in_a_new_process(path):
    with make(path) as storage:
        storage.root.count = 41
        storage.root.name = 'from the parent'
        storage.root.array = numpy.arange(10.0)
        storage.root.origin = Point(3, 4.5)
    script = ('import json, sys; from sharedbuffers.storage import Storage\n'
              'with Storage(sys.argv[1], mode="r") as s:\n'
              '    r = s.root\n'
              '    print(json.dumps([r.count, r.name, float(r.array.sum()), r.origin.x, r.origin.y]))\n')
    output = subprocess.run([sys.executable, '-c', script, path], capture_output=True, text=True, check=True,
                            cwd=ROOT_DIR, env=dict(os.environ, PYTHONPATH=ROOT_DIR)).stdout
    assert json.loads(output) == [41, 'from the parent', 45.0, 3, 4.5]


def test_none_reads_as_none_and_reopens_as_none(path):
    with make(path) as storage:
        storage.root.count = 5
        storage.root.name = 'x'
        storage.root.count = None
        storage.root.name = None
        assert storage.root.count is None and storage.root.name is None
    with Storage(path) as storage:
        assert storage.root.count is None and storage.root.name is None


def test_none_then_a_value_again(path):
    with make(path) as storage:
        storage.root.flag = None
        storage.root.flag = False
        assert storage.root.flag is False


def test_deleted_attribute_raises_attribute_error(path):
    with make(path) as storage:
        storage.root.name = 'gone soon'
        del storage.root.name
        assert not hasattr(storage.root, 'name')
        with pytest.raises(AttributeError):
            del storage.root.name


def test_unknown_attribute_cannot_be_assigned(path):
    with make(path) as storage, pytest.raises(AttributeError):
        storage.root.undeclared = 1


def test_numbers_are_written_in_place(path):
    with make(path) as storage:
        storage.root.count = 1
        free = storage.free_bytes
        for value in range(100):
            storage.root.count = value
        assert storage.free_bytes == free
        assert storage.root.count == 99


def test_nested_struct_numbers_can_be_changed_in_place(path):
    with make(path) as storage:
        storage.root.origin = Point(1, 2.0)
        origin = storage.root.origin
        origin.x = 10
        del origin
    with Storage(path) as storage:
        assert storage.root.origin.x == 10


def test_repr_shows_the_values(path):
    with make(path) as storage:
        storage.root.count = 3
        storage.root.name = 'n'
        assert repr(storage.root) == "Everything(count=3, name='n')"


# -- wrong values --------------------------------------------------------------------------------

@pytest.mark.parametrize('name, value, error', [
    ('count', 'three', TypeError), ('count', 1.5, TypeError), ('ratio', 'x', TypeError),
    ('flag', 'yes', TypeError), ('tiny', 128, OverflowError), ('level', -1, OverflowError),
    ('big', 2 ** 64, OverflowError), ('single', 1e300, OverflowError), ('count', 2 ** 63, OverflowError),
    ('name', 5, TypeError), ('blob', 'text', TypeError), ('origin', 'not a point', TypeError),
    ('array', [1, 2], TypeError), ('anything', object(), TypeError),
])
def test_wrong_value_raises_naming_the_attribute_and_keeps_the_old_value(path, name, value, error):
    first = CASES[name][0]
    with make(path) as storage:
        setattr(storage.root, name, first)
        free = storage.free_bytes
        with pytest.raises(error, match='Everything.%s' % name):
            setattr(storage.root, name, value)
        assert same(getattr(storage.root, name), first)
        assert storage.free_bytes == free


def test_wrong_value_into_an_absent_attribute_leaves_it_absent(path):
    with make(path) as storage:
        with pytest.raises(TypeError):
            storage.root.count = 'x'
        with pytest.raises(TypeError):
            storage.root.name = 3
        assert not hasattr(storage.root, 'count') and not hasattr(storage.root, 'name')


def test_non_buffer_object_raises_type_error_naming_the_buffer_protocol(path):
    with make(path) as storage:
        with pytest.raises(TypeError, match='does not support the buffer protocol'):
            storage.root.data = 12345
        assert not hasattr(storage.root, 'data')


# -- space ---------------------------------------------------------------------------------------

def test_reassigning_a_same_size_value_reuses_its_space(path):
    with make(path) as storage:
        storage.root.name = 'value 0000'
        free = storage.free_bytes
        for number in range(2000):
            storage.root.name = 'value %04d' % number
        assert storage.free_bytes == free
    assert os.path.getsize(path) == 4096


def test_freed_blocks_merge_with_their_neighbours(path):
    with make(path) as storage:
        initial = storage.free_bytes
        for name in ('name', 'blob', 'items', 'mapping'):
            setattr(storage.root, name, CASES[name][0])
        for name in ('blob', 'mapping', 'name', 'items'):
            setattr(storage.root, name, None)
        assert storage.free_bytes == initial
        assert [in_use for _, _, in_use in storage._heap.blocks()] == [False]


def test_file_grows_when_a_value_does_not_fit(path):
    big = numpy.arange(100000, dtype=numpy.int64)
    with make(path) as storage:
        storage.root.name = 'before'
        storage.root.array = big
        assert storage.size > 800000
        assert same(storage.root.array, big)
    assert os.path.getsize(path) > 800000
    with Storage(path) as storage:
        assert same(storage.root.array, big) and storage.root.name == 'before'


def test_growing_is_refused_while_views_are_alive_and_says_how_many(path):
    with make(path) as storage:
        storage.root.data = b'small'
        storage.root.array = numpy.zeros(3)
        views = [memoryview(storage.root.data), storage.root.array]
        large = os.urandom(100000)
        with pytest.raises(ViewsAliveError, match='2 views'):
            storage.root.blob = large
        assert not hasattr(storage.root, 'blob')
        del views
        storage.root.blob = large
        assert storage.root.blob == large


def test_max_size_stops_growth_and_keeps_the_old_value(path):
    with make(path, max_size=8192) as storage:
        storage.root.blob = b'old'
        with pytest.raises(StorageFullError, match='max_size=8192'):
            storage.root.blob = os.urandom(10000)
        assert storage.root.blob == b'old'
        storage.root.blob = os.urandom(3000)          # grows, up to the limit
        assert storage.size <= 8192
    with Storage(path) as storage:
        assert storage.max_size == 8192


def test_old_value_keeps_its_block_while_a_view_reads_it(path):
    with make(path) as storage:
        storage.root.array = numpy.full(100, 7)
        old = storage.root.array
        storage.root.array = numpy.full(100, 8)
        storage.root.items = list(range(100))      # would reuse the old block if it were free
        assert (old == 7).all()
        del old
        storage.root.items = list(range(101))
        assert storage.live_views == 0


# -- buffers and arrays --------------------------------------------------------------------------

def test_buffer_protocol_attributes_are_exact(path):
    with make(path) as storage:
        storage.root.data = numpy.arange(12, dtype=numpy.float64).reshape(3, 4)
        view = memoryview(storage.root.data)
        assert (view.format, view.itemsize, view.ndim, view.shape, view.strides) == ('d', 8, 2, (3, 4), (32, 8))
        assert not view.readonly
        assert view[2, 3] == 11.0
        del view


def test_buffer_keeps_a_native_format_that_numpy_would_rename(path):
    with make(path) as storage:
        storage.root.data = array.array('q', [1, -2, 3])
        view = memoryview(storage.root.data)
        assert (view.format, view.shape, view.tolist()) == ('q', (3,), [1, -2, 3])
        del view


def test_buffer_of_a_structured_dtype_reads_back_through_numpy(path):
    points = numpy.array([(1.5, 2), (3.5, 4)], dtype=[('x', '<f8'), ('y', '<i4')])
    with make(path) as storage:
        storage.root.data = points
        stored = numpy.asarray(storage.root.data)
        assert stored.dtype == points.dtype and stored.tolist() == points.tolist()
        del stored


def test_non_contiguous_buffer_is_stored_in_c_order(path):
    with make(path) as storage:
        storage.root.data = numpy.arange(12.0).reshape(3, 4)[:, ::2]
        assert numpy.asarray(storage.root.data).tolist() == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]


def test_numpy_asarray_shares_memory_with_the_file(path):
    with make(path) as storage:
        storage.root.data = numpy.zeros((3, 4))
        data = numpy.asarray(storage.root.data)
        assert numpy.shares_memory(data, numpy.asarray(storage.root.data))
        data[1, 2] = 42.0
        del data
        storage.flush()
    with Storage(path, mode='r') as storage:
        assert numpy.asarray(storage.root.data)[1, 2] == 42.0


def test_array_attribute_is_a_writable_view_of_the_file(path):
    with make(path) as storage:
        storage.root.array = numpy.zeros(5, dtype=numpy.int16)
        storage.root.array[3] = 9
    with Storage(path) as storage:
        assert storage.root.array.tolist() == [0, 0, 0, 9, 0]


def test_buffers_and_arrays_are_read_only_in_mode_r(path):
    with make(path) as storage:
        storage.root.data = numpy.zeros(4)
        storage.root.array = numpy.zeros(4)
    with Storage(path, mode='r') as storage:
        assert memoryview(storage.root.data).readonly
        assert not storage.root.array.flags.writeable


# -- lifetimes -----------------------------------------------------------------------------------

def test_close_is_refused_while_views_are_alive_then_allowed(path):
    storage = make(path)
    storage.root.data = numpy.zeros(4)
    storage.root.array = numpy.zeros(4)
    storage.root.origin = Point(1, 2.0)
    view, array_view, proxy = memoryview(storage.root.data)[1:], storage.root.array[::2], storage.root.origin
    assert storage.live_views == 3
    with pytest.raises(ValueError, match='3 views'):
        storage.close()
    del view, array_view
    with pytest.raises(ValueError, match='1 view '):
        storage.close()
    del proxy
    storage.close()
    assert storage.closed


def test_holding_the_root_does_not_block_close(path):
    storage = make(path)
    root = storage.root
    root.count = 1
    storage.close()
    with pytest.raises(ValueError, match='closed'):
        root.count
    with pytest.raises(ValueError, match='closed'):
        root.count = 2
    with pytest.raises(ValueError, match='closed'):
        root.name = 'x'


def test_plain_values_are_not_views(path):
    with make(path) as storage:
        storage.root.name = 'text'
        storage.root.items = [1, 2]
        kept = storage.root.name, storage.root.items
        assert storage.live_views == 0
    assert kept == ('text', [1, 2])


def test_context_manager_closes(path):
    with make(path) as storage:
        pass
    assert storage.closed


def test_mode_r_refuses_assignment(path):
    make(path).close()
    with Storage(path, mode='r') as storage:
        for name, value in (('count', 1), ('name', 'x'), ('flag', None)):
            with pytest.raises(TypeError, match="read-only .mode 'r'"):
                setattr(storage.root, name, value)
        with pytest.raises(TypeError, match='read-only'):
            del storage.root.count


def test_copy_on_write_changes_stay_in_memory(path):
    with make(path) as storage:
        storage.root.count = 1
        storage.root.name = 'on disk'
    with Storage(path, mode='c') as storage:
        storage.root.count = 2
        storage.root.name = 'in memory only'
        assert (storage.root.count, storage.root.name) == (2, 'in memory only')
    with Storage(path, mode='r') as storage:
        assert (storage.root.count, storage.root.name) == (1, 'on disk')


def test_copy_on_write_cannot_grow_the_file(path):
    make(path).close()
    with Storage(path, mode='c') as storage, pytest.raises(StorageFullError, match='copy-on-write'):
        storage.root.blob = os.urandom(100000)


# -- corrupt and truncated files -----------------------------------------------------------------

def _filled(path):
    with make(path) as storage:
        for name, (first, _) in CASES.items():
            setattr(storage.root, name, first)


def _open_and_read(path, mode='r'):
    with Storage(path, mode=mode) as storage:
        storage.check()


def test_truncated_file_at_every_header_length_raises_value_error(path):
    _filled(path)
    with open(path, 'rb') as file:
        data = file.read()
    for length in range(HEADER_SIZE + 1):
        with open(path, 'wb') as file:
            file.write(data[:length])
        with pytest.raises(ValueError, match='offset'):
            _open_and_read(path)


def test_truncated_heap_raises_value_error_naming_the_heap_end(path):
    _filled(path)
    os.truncate(path, os.path.getsize(path) - 16)
    for mode in ('r', 'r+'):
        with pytest.raises(ValueError, match='truncated storage file.*offset 72'):
            _open_and_read(path, mode)


@pytest.mark.parametrize('offset, size, pattern', [
    (0, 8, 'magic'), (8, 2, 'offset 8'), (12, 4, 'offset 12'), (16, 8, 'offset 16'), (24, 8, 'offset 24'),
    (32, 8, 'offset 32'), (40, 8, 'offset 40'), (48, 8, 'offset 48'), (56, 4, 'checksum'), (64, 8, 'offset 64'),
    (72, 8, 'offset 72'), (80, 8, 'offset 80'), (88, 8, 'offset 88'),
])
def test_corrupt_header_field_raises_value_error_naming_its_offset(path, offset, size, pattern):
    _filled(path)
    with open(path, 'r+b') as file:
        file.seek(offset)
        file.write((16 if offset == 80 else 0x137FFF7FFF).to_bytes(8, sys.byteorder)[:size])
    with pytest.raises(ValueError, match=pattern):
        _open_and_read(path)


def test_corrupt_attribute_state_raises_value_error(path):
    _filled(path)
    with open(path, 'r+b') as file:
        file.seek(HEADER_SIZE)
        file.write(b'\x03')
    with pytest.raises(ValueError, match='invalid state 3 .*offset 128'):
        _open_and_read(path)


def _block_payload(storage, name):
    slot = storage.layout.by_name[name]
    pointer = int.from_bytes(storage._memory[slot.offset:slot.offset + 8], sys.byteorder)
    return storage._heap.used_block(pointer, slot.index)[0]


def test_corrupt_pointer_raises_value_error_naming_the_offset(path):
    _filled(path)
    with Storage(path, mode='r') as storage:
        offset = storage.layout.by_name['name'].offset
    with open(path, 'r+b') as file:
        file.seek(offset)
        file.write((12345).to_bytes(8, sys.byteorder))
    with pytest.raises(ValueError, match="'name' .pointer at offset %d.*offset 12345" % offset):
        _open_and_read(path)


def test_corrupt_value_raises_value_error_when_read(path):
    with make(path) as storage:
        storage.root.items = [1, 2, 3]
        start = _block_payload(storage, 'items')
    with open(path, 'r+b') as file:
        file.seek(start)
        file.write(b'\xff' * 4)
    with Storage(path, mode='r') as storage, pytest.raises(ValueError, match='Everything.items: .*corrupt'):
        storage.root.items


@settings(max_examples=150, deadline=None)
@given(damage=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8))
def test_damaged_bytes_anywhere_give_value_error_or_readable_values(damage):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'damaged.sbs')
        _filled(path)
        with open(path, 'r+b') as file:
            for offset, value in damage:
                file.seek(offset)
                file.write(bytes([value]))
        for mode in ('r', 'r+'):
            try:
                _open_and_read(path, mode)
            except ValueError:
                pass


# -- crashes and other processes -----------------------------------------------------------------

def _text(number):
    return ('%d:' % number) * (number % 40 + 1)


def _run_in_child(body):
    """Fork; the child runs ``body()`` and exits without cleanup; return the child's pid."""
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    return pid


def test_killed_writer_leaves_every_value_readable(path):
    make(path).close()
    for _ in range(4):
        ready_read, ready_write = os.pipe()

        def write_forever():
            root = Storage(path).root
            signalled = False
            for number in itertools.count(int(time.time() * 1000) % 1000):
                root.count = number
                root.name = _text(number)
                root.items = list(range(number % 30))
                root.array = numpy.full(number % 50 + 1, number)
                if not signalled:           # every attribute has a value: kill at will
                    os.write(ready_write, b'x')
                    signalled = True

        pid = _run_in_child(write_forever)
        os.close(ready_write)
        started = os.read(ready_read, 1)          # b'' if the child died instead
        os.close(ready_read)
        time.sleep(random.uniform(0.02, 0.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert started == b'x'

        with Storage(path) as storage:
            root = storage.root
            count = root.count
            number = int(root.name.split(':')[0])
            assert number in (count, count - 1) and root.name == _text(number)
            assert len(root.items) in (count % 30, (count - 1) % 30) and root.items == list(range(len(root.items)))
            assert root.array.size in (count % 50 + 1, (count - 1) % 50 + 1)
            used = [offset for offset, _, in_use in storage._heap.blocks() if in_use]
            assert len(used) == 3       # leaked blocks were reclaimed on opening


@pytest.mark.parametrize('crash_point', ['before the pointer switch', 'before the old block is freed'])
def test_crash_in_the_middle_of_an_assignment_keeps_a_whole_value(path, crash_point, monkeypatch):
    with make(path) as storage:
        storage.root.name = 'old value'
        free = storage.free_bytes

    def crash_during_assignment():
        if crash_point == 'before the pointer switch':
            monkeypatch.setattr(Storage, '_switch_pointer', lambda storage, slot, block: os._exit(7))
        else:
            monkeypatch.setattr(BlockHeap, 'free', lambda heap, offset: os._exit(7))
        Storage(path).root.name = 'new value, longer than the old one'

    _, status = os.waitpid(_run_in_child(crash_during_assignment), 0)
    assert os.waitstatus_to_exitcode(status) == 7       # it did stop there
    with Storage(path) as storage:
        expected = 'old value' if crash_point == 'before the pointer switch' else 'new value, longer than the old one'
        assert storage.root.name == expected
        assert [in_use for _, _, in_use in storage._heap.blocks()].count(True) == 1
        if crash_point == 'before the pointer switch':
            assert storage.free_bytes == free


def test_forked_child_updates_a_number_the_parent_sees(path):
    with make(path) as storage:
        storage.root.count = 1

        def update():
            storage.root.count = 42
        os.waitpid(_run_in_child(update), 0)
        assert storage.root.count == 42


# -- random sequences against a model ------------------------------------------------------------

MODEL_FIELDS = {
    'count': st.integers(-2 ** 63, 2 ** 63 - 1),
    'ratio': st.floats(allow_nan=False),
    'flag': st.booleans(),
    'tiny': st.integers(-128, 127),
    'name': st.text(max_size=300),
    'blob': st.binary(max_size=3000),
    'items': st.lists(st.one_of(st.integers(-1000, 1000), st.text(max_size=5)), max_size=60),
    'mapping': st.dictionaries(st.text(max_size=5), st.integers(-1000, 1000), max_size=10),
    'array': st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=500).map(
        lambda values: numpy.array(values, dtype=numpy.int32)),
    'data': st.binary(max_size=2000),
}
OPERATIONS = st.one_of(
    st.sampled_from(sorted(MODEL_FIELDS)).flatmap(
        lambda name: MODEL_FIELDS[name].map(lambda value: ('set', name, value))),
    st.tuples(st.just('none'), st.sampled_from(sorted(MODEL_FIELDS))),
    st.tuples(st.just('delete'), st.sampled_from(sorted(MODEL_FIELDS))),
    st.just(('reopen',)),
)


def _check_model(root, model):
    for name in MODEL_FIELDS:
        if name not in model:
            assert not hasattr(root, name)
        elif model[name] is None:
            assert getattr(root, name) is None
        else:
            assert same(getattr(root, name), model[name]), name


@settings(max_examples=60, deadline=None)
@given(operations=st.lists(OPERATIONS, max_size=40))
def test_random_assignments_match_a_dict_model_across_reopens(operations):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'model.sbs')
        model = {}
        storage = make(path, size=2048)
        try:
            for operation in operations:
                if operation[0] == 'reopen':
                    storage.close()
                    storage = Storage(path)
                elif operation[0] == 'set':
                    setattr(storage.root, operation[1], operation[2])
                    model[operation[1]] = operation[2]
                elif operation[0] == 'none':
                    setattr(storage.root, operation[1], None)
                    model[operation[1]] = None
                elif operation[1] in model:
                    delattr(storage.root, operation[1])
                    del model[operation[1]]
                else:
                    with pytest.raises(AttributeError):
                        delattr(storage.root, operation[1])
                _check_model(storage.root, model)
            storage.close()
            with Storage(path) as storage:
                _check_model(storage.root, model)
                used = sum(1 for _, _, in_use in storage._heap.blocks() if in_use)
                assert used == sum(1 for name, value in model.items()
                                   if value is not None and Everything.__slot_types__[name] in (
                                       str, bytes, list, dict, numpy.ndarray, memoryview))
        finally:
            storage.close()
