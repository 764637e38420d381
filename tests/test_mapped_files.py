"""MappedFile: numpy.memmap's modes, any offset, flush/close, and views that outlive nothing."""
import mmap
import multiprocessing
import os

import numpy
import pytest

from sharedbuffers.mapped_files import MappedFile, ViewsAliveError, normalize_mode
from sharedbuffers.mapped_struct import MappedArrayProxyBase, NumericIdMapper, Schema


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / 'data.bin'
    path.write_bytes(bytes(range(256)) * 64)
    return path


def test_mode_r_reads_the_file_and_refuses_writes(data_file):
    with MappedFile(data_file, 'r') as mapped:
        view = mapped.buffer
        assert view.readonly and view[10] == 10
        with pytest.raises(TypeError):
            view[0] = 1
        view.release()


def test_mode_r_plus_changes_reach_the_file(data_file):
    with MappedFile(data_file, 'r+', offset=100, size=10) as mapped:
        view = mapped.buffer
        view[0:3] = b'abc'
        view.release()
    assert data_file.read_bytes()[100:103] == b'abc'


def test_mode_c_changes_stay_in_memory(data_file):
    before = data_file.read_bytes()
    with MappedFile(data_file, 'c') as mapped:
        view = mapped.buffer
        view[0:4] = b'copy'
        assert bytes(view[0:4]) == b'copy'
        view.release()
    assert data_file.read_bytes() == before


def test_mode_w_plus_creates_a_zeroed_file_of_the_given_size(tmp_path):
    path = tmp_path / 'new.bin'
    with MappedFile(path, 'w+', size=5000) as mapped:
        array = mapped.asarray('u1')
        assert array.shape == (5000,) and not array.any()
        array[:] = 7
        del array
    assert path.read_bytes() == b'\x07' * 5000


def test_mode_w_plus_overwrites_an_existing_file(data_file):
    with MappedFile(data_file, 'w+', size=10):
        pass
    assert data_file.read_bytes() == bytes(10)


def test_mode_w_plus_without_a_size_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="needs a size"):
        MappedFile(tmp_path / 'x.bin', 'w+')


def test_numpy_long_mode_names_are_accepted():
    assert [normalize_mode(m) for m in ('readonly', 'readwrite', 'write', 'copyonwrite')] == ['r', 'r+', 'w+', 'c']
    with pytest.raises(ValueError, match='mode must be one of'):
        normalize_mode('rw')


@pytest.mark.parametrize('offset', [0, 1, 4095, 4096, 4097, mmap.ALLOCATIONGRANULARITY + 3, 16383])
def test_any_offset_maps_the_right_bytes(data_file, offset):
    expected = data_file.read_bytes()[offset:offset + 17]
    with MappedFile(data_file, 'r', offset=offset, size=len(expected)) as mapped:
        assert mapped.size == len(expected)
        view = mapped.buffer
        assert bytes(view) == expected
        view.release()


def test_size_none_maps_to_the_end(data_file):
    with MappedFile(data_file, 'r', offset=16000) as mapped:
        assert mapped.size == 16384 - 16000


def test_mode_r_plus_grows_the_file_for_a_region_past_its_end(data_file):
    with MappedFile(data_file, 'r+', offset=16380, size=100):
        pass
    assert os.path.getsize(data_file) == 16480


@pytest.mark.parametrize('mode', ['r', 'c'])
def test_read_modes_refuse_a_region_past_the_end(data_file, mode):
    with pytest.raises(ValueError, match='past the end'):
        MappedFile(data_file, mode, offset=16380, size=100)


def test_negative_offset_is_refused(data_file):
    with pytest.raises(ValueError, match='offset'):
        MappedFile(data_file, 'r', offset=-1)


def test_an_open_file_object_is_mapped_at_its_contents(tmp_path):
    path = tmp_path / 'f.bin'
    with open(path, 'w+b') as handle:
        handle.write(b'hello world')
        with MappedFile(handle, 'r', offset=6) as mapped:
            view = mapped.buffer
            assert bytes(view) == b'world'
            view.release()


def test_typed_views_have_the_format_and_shape_asked_for(tmp_path):
    with MappedFile(tmp_path / 'v.bin', 'w+', size=96) as mapped:
        view = mapped.view(0, 96, 'd', (3, 4))
        assert (view.format, view.itemsize, view.ndim, view.shape, view.strides) == ('d', 8, 2, (3, 4), (32, 8))
        array = numpy.asarray(view)
        array[1, 2] = 2.5
        assert numpy.shares_memory(array, mapped.asarray('d'))
        assert mapped.asarray('d', (3, 4))[1, 2] == 2.5
        del view, array


def test_view_outside_the_region_raises_index_error(tmp_path):
    with MappedFile(tmp_path / 'v.bin', 'w+', size=16) as mapped:
        with pytest.raises(IndexError, match='outside'):
            mapped.view(8, 9)


def test_close_with_live_views_names_how_many_and_keeps_the_mapping(tmp_path):
    mapped = MappedFile(tmp_path / 'v.bin', 'w+', size=64)
    first, second = mapped.buffer, mapped.asarray('u8')
    with pytest.raises(ValueError, match='2 views of it are still alive'):
        mapped.close()
    assert not mapped.closed
    second[0] = 5                        # still mapped: no crash, the write lands
    assert first[0] == 5
    del first, second
    mapped.close()
    assert mapped.closed


def test_close_is_refused_while_a_derived_slice_is_alive(tmp_path):
    mapped = MappedFile(tmp_path / 'v.bin', 'w+', size=64)
    derived = mapped.buffer[8:16]         # the tracked view dies, its slice lives on
    with pytest.raises(ViewsAliveError):
        mapped.close()
    assert derived[0] == 0
    derived.release()
    mapped.close()


def test_released_views_do_not_block_close(tmp_path):
    mapped = MappedFile(tmp_path / 'v.bin', 'w+', size=64)
    view = mapped.buffer
    view.release()
    mapped.close()


def test_views_alive_error_is_a_value_error_and_a_buffer_error():
    assert issubclass(ViewsAliveError, ValueError) and issubclass(ViewsAliveError, BufferError)


def test_operations_on_a_closed_mapping_raise(tmp_path):
    mapped = MappedFile(tmp_path / 'v.bin', 'w+', size=8)
    mapped.close()
    mapped.close()                        # closing twice is harmless
    with pytest.raises(ValueError, match='closed'):
        mapped.buffer


def test_empty_region_is_refused(tmp_path):
    path = tmp_path / 'empty.bin'
    path.write_bytes(b'')
    with pytest.raises(ValueError, match='empty'):
        MappedFile(path, 'r')


def _child_writes(path):
    with MappedFile(path, 'r+') as mapped:
        array = mapped.asarray('i8')
        array[3] = 42
        del array


def test_r_plus_writes_of_another_process_are_seen(tmp_path):
    path = tmp_path / 'shared.bin'
    with MappedFile(path, 'w+', size=64) as mapped:
        array = mapped.asarray('i8')
        process = multiprocessing.get_context('fork').Process(target=_child_writes, args=(str(path),))
        process.start()
        process.join()
        assert process.exitcode == 0
        assert array[3] == 42
        del array


# -- containers opened with modes ---------------------------------------------------------

class Point:
    __slot_types__ = {'x': int, 'y': float}

    def __init__(self, x, y):
        self.x, self.y = x, y


class PointArray(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


@pytest.fixture
def point_file(tmp_path):
    path = str(tmp_path / 'points.sba')
    PointArray.build([Point(i, i / 2) for i in range(10)], destfile=path, return_mapper=False)
    return path


def test_array_mode_c_writes_do_not_reach_the_file(point_file):
    before = open(point_file, 'rb').read()
    with PointArray.map_file(point_file, mode='c') as points:
        points[3].x = 99
        assert points[3].x == 99
    assert open(point_file, 'rb').read() == before


def test_array_mode_r_plus_writes_reach_the_file(point_file):
    with PointArray.map_file(point_file, mode='r+') as points:
        points[3].x = 99
        points.flush()
    with PointArray.map_file(point_file) as points:
        assert points[3].x == 99


def test_container_refuses_mode_w_plus(point_file):
    with pytest.raises(ValueError, match='build'):
        PointArray.map_file(point_file, mode='w+')


def test_container_close_with_a_live_proxy_is_refused_then_allowed(point_file):
    points = PointArray.map_file(point_file)
    proxy = points[2]
    with pytest.raises(ValueError, match='still alive'):
        points.close()
    assert points[4].x == 4 and proxy.x == 2     # the container still works after the refusal
    del proxy
    points.close()
    assert points.closed
    with pytest.raises(ValueError, match='closed'):
        points[0]


def test_id_mapper_is_a_context_manager(tmp_path):
    path = str(tmp_path / 'ids.map')
    NumericIdMapper.build({1: 10, 2: 20}, destfile=path, return_mapper=False)
    with NumericIdMapper.map_file(path, mode='r') as mapper:
        assert mapper[2] == 20
    assert mapper.closed


@pytest.mark.parametrize('mode', ['r', 'r+', 'c'])
def test_mapping_to_the_end_words_what_is_not_there(data_file, tmp_path, mode):
    # size=None maps to the end of the file (sized by mmap itself): nothing there is an error
    # that names the offset, as with an explicit size
    with pytest.raises(ValueError, match='offset 20000 is past the end of the file'):
        MappedFile(data_file, mode, offset=20000)
    with pytest.raises(ValueError, match='offset 70000 is past the end of the file'):
        MappedFile(data_file, mode, offset=70000)          # in a later allocation granule
    with pytest.raises(ValueError, match=r'empty region \(offset 16384'):
        MappedFile(data_file, mode, offset=16384)
    empty = tmp_path / 'empty.bin'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty region \(offset 0'):
        MappedFile(empty, mode)
    with MappedFile(data_file, mode, offset=16383) as mapped:
        assert (mapped.size, bytes(mapped.view())) == (1, open(data_file, 'rb').read()[-1:])


def test_views_handed_out_and_dropped_are_forgotten(data_file):
    with MappedFile(data_file, 'r') as mapped:
        kept = [mapped.view(index, 4) for index in range(5)]
        for index in range(1000):
            mapped.view(index, 8)           # dropped at once
        assert mapped.live_views == 5
        assert len(mapped._views) < 64      # the dead references do not pile up
        del kept
        assert mapped.live_views == 0
