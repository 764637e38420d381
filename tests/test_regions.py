"""Resizable regions of one mapped file (sharedbuffers.regions): layout, moves, views, crashes."""
import io
import multiprocessing
import os
import shutil
import struct
import tempfile
import zlib

import numpy
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sharedbuffers import regions
from sharedbuffers.mapped_files import ViewsAliveError
from sharedbuffers.mapped_struct import (
    MappedArrayProxyBase, MappedMappingProxyBase, NumericIdMapper, Schema, StringIdMapper)
from sharedbuffers.regions import Memmap, Region, RegionFile


class Point:
    __slot_types__ = {'x': int, 'y': float, 'label': str}

    def __init__(self, x=0, y=0.0, label=''):
        self.x, self.y, self.label = x, y, label


class Points(MappedArrayProxyBase):
    schema = Schema.from_typed_slots(Point)


class PointsByLabel(MappedMappingProxyBase):
    IdMapper = StringIdMapper
    ValueArray = Points


def contents(region_file):
    return [(region.name, region.read()) for region in region_file]


def filled(region_file, sizes, names=None):
    """Append regions of ``sizes``, region i filled with byte i + 1."""
    for index, size in enumerate(sizes):
        region_file.append(size, None if names is None else names[index]).write(bytes([index + 1]) * size)
    return region_file


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'regions.bin')


@pytest.fixture
def three(path):
    """A file with regions 'a', 'b', 'c' of 100, 200 and 50 bytes, packed, filled with 1, 2, 3."""
    with RegionFile(path, 'w+') as region_file:
        filled(region_file, [100, 200, 50], ['a', 'b', 'c'])
    return path


def write_table(path, entries, capacity=8, active=0, magic=b'\x93REGIONS', version=1, size=None):
    """A region file written straight from the module docstring's layout (not through RegionFile)."""
    table = b''.join(struct.pack('<QQH46s', offset, length, len(name), name) for offset, length, name in entries)
    body = struct.pack('<8sIIQQQQI', magic, version, active, 64, capacity, len(entries), 0, zlib.crc32(table))
    area = bytearray(2 * capacity * 64)
    area[active * capacity * 64:active * capacity * 64 + len(table)] = table
    data = body + struct.pack('<I8x', zlib.crc32(body)) + area
    end = max([len(data)] + [offset + length for offset, length, _ in entries]) if size is None else size
    with open(path, 'wb') as output:
        output.write(data.ljust(end, b'\x00')[:end])


# -- creating, resizing, reopening -----------------------------------------------------------

def test_a_new_file_has_no_regions_and_reopens_empty(path):
    RegionFile(path, 'w+').close()
    with RegionFile(path) as region_file:
        assert len(region_file) == 0 and list(region_file) == []


def test_w_plus_empties_an_existing_region_file(three):
    with RegionFile(three, 'w+') as region_file:
        assert len(region_file) == 0


def test_appended_regions_are_zero_filled_aligned_and_in_order(path):
    with RegionFile(path, 'w+') as region_file:
        first, second = region_file.append(10), region_file.append(7, 'second')
        assert isinstance(first, Region)
        assert (first.read(), second.read()) == (bytes(10), bytes(7))
        assert (first.index, second.index, second.name) == (0, 1, 'second')
        assert first.offset % 64 == 0 and second.offset % 64 == 0 and second.offset >= first.offset + 10


def test_regions_and_their_bytes_survive_insert_resize_delete_and_reopening(three):
    with RegionFile(three, 'r+') as region_file:
        region_file.insert(1, 30, 'x').write(b'x' * 30)
        region_file.resize('c', 80)
        region_file.delete('a')
    with RegionFile(three) as region_file:
        assert contents(region_file) == [('x', b'x' * 30), ('b', b'\x02' * 200), ('c', b'\x03' * 50 + bytes(30))]


def test_growing_a_middle_region_moves_the_following_ones_and_keeps_their_bytes(three):
    with RegionFile(three, 'r+') as region_file:
        before = [region.offset for region in region_file]
        region_file.resize('b', 5000)
        assert region_file['a'].offset == before[0]
        assert region_file['c'].offset >= region_file['b'].offset + 5000 > before[2]
        assert contents(region_file) == [('a', b'\x01' * 100), ('b', b'\x02' * 200 + bytes(4800)),
                                         ('c', b'\x03' * 50)]
        assert os.path.getsize(three) == region_file['c'].offset + 50


def test_inserting_in_the_middle_moves_the_following_regions(three):
    with RegionFile(three, 'r+') as region_file:
        old_c = region_file['c'].offset
        region_file.insert(1, 500, 'new')
        assert [region.name for region in region_file] == ['a', 'new', 'b', 'c']
        assert region_file['c'].offset > old_c and region_file['c'].read() == b'\x03' * 50


def test_insert_at_a_negative_index_behaves_like_list_insert(three):
    with RegionFile(three, 'r+') as region_file:
        region_file.insert(-1, 8, 'before-c')
        assert [region.name for region in region_file] == ['a', 'b', 'before-c', 'c']


def test_shrinking_leaves_free_space_that_growing_back_reuses_without_moving(three):
    with RegionFile(three, 'r+') as region_file:
        offsets = [region.offset for region in region_file]
        region_file.resize('a', 10)
        region_file.resize('a', 100)
        assert [region.offset for region in region_file] == offsets
        assert region_file['a'].read() == b'\x01' * 10 + bytes(90)


def test_deleting_a_middle_region_moves_nothing(three):
    with RegionFile(three, 'r+') as region_file:
        offset_c = region_file['c'].offset
        del region_file[1]
        assert region_file['c'].offset == offset_c and region_file['c'].index == 1


def test_deleting_the_last_region_truncates_the_file(three):
    with RegionFile(three, 'r+') as region_file:
        end_of_b = region_file['b'].offset + 200
        del region_file['c']
    assert os.path.getsize(three) == end_of_b


def test_compact_moves_regions_back_and_truncates_the_file(three):
    with RegionFile(three, 'r+') as region_file:
        del region_file['a']
        region_file.compact()
        first_offset = 64 + 2 * 8 * 64
        assert region_file['b'].offset == first_offset and region_file['c'].offset == first_offset + 256
        assert contents(region_file) == [('b', b'\x02' * 200), ('c', b'\x03' * 50)]
    assert os.path.getsize(three) == first_offset + 256 + 50


def test_the_table_grows_past_its_capacity_and_keeps_every_region(path):
    sizes = [(index * 37) % 300 for index in range(40)]
    with RegionFile(path, 'w+') as region_file:
        filled(region_file, sizes[:5])
        region_file.resize(2, 1000)
        for index, size in enumerate(sizes[5:], 5):
            region_file.append(size).write(bytes([index + 1]) * size)
        expected = contents(region_file)
    with RegionFile(path) as region_file:
        assert len(region_file) == 40 and contents(region_file) == expected


def test_empty_regions_are_kept(path):
    with RegionFile(path, 'w+') as region_file:
        filled(region_file, [0, 64, 0])
        region_file.resize(1, 0)
    with RegionFile(path) as region_file:
        assert [region.size for region in region_file] == [0, 0, 0]


def test_region_handles_follow_their_region_when_it_moves(three):
    with RegionFile(three, 'r+') as region_file:
        handle = region_file['c']
        region_file.resize('a', 4000)
        region_file.insert(0, 10)
        assert handle is region_file[3] and handle.index == 3 and handle.offset == region_file[3].offset
        assert handle.read() == b'\x03' * 50


def test_a_deleted_region_handle_refuses_access(three):
    with RegionFile(three, 'r+') as region_file:
        handle = region_file['b']
        del region_file['b']
        with pytest.raises(ValueError, match='deleted'):
            handle.buffer
        assert handle not in region_file and 'b' not in region_file


def test_unknown_names_and_indices_raise_key_and_index_errors(three):
    with RegionFile(three) as region_file:
        with pytest.raises(KeyError, match='zzz'):
            region_file['zzz']
        with pytest.raises(IndexError):
            region_file[3]
        assert region_file[-1].name == 'c'


@pytest.mark.parametrize('name, error', [('b', ValueError), ('x' * 47, ValueError), ('', ValueError),
                                         (b'bytes', TypeError)])
def test_bad_or_duplicate_names_are_refused_before_anything_changes(three, name, error):
    with RegionFile(three, 'r+') as region_file:
        with pytest.raises(error):
            region_file.append(10, name)
        assert len(region_file) == 3


def test_negative_sizes_are_refused(three):
    with RegionFile(three, 'r+') as region_file:
        with pytest.raises(ValueError, match='negative'):
            region_file.resize(0, -1)


def test_memmap_is_numarrays_name_for_region_file():
    assert Memmap is RegionFile


# -- what regions hold ----------------------------------------------------------------------

def test_numpy_arrays_over_regions_share_memory_with_the_file(three):
    with RegionFile(three, 'r+') as region_file:
        array = region_file['b'].asarray('<i8', shape=(5, 5))
        array[:] = numpy.arange(25).reshape(5, 5)
        assert region_file['b'].read(0, 8) == struct.pack('<q', 0) and region_file['b'].read(8, 8)[0] == 1
        del array
    with RegionFile(three) as region_file:
        reread = region_file['b'].asarray('<i8', 25)
        assert reread.tolist() == list(range(25)) and not reread.flags.writeable
        del reread


def test_region_asarray_defaults_to_whole_items_from_an_offset(three):
    with RegionFile(three) as region_file:
        array = region_file['c'].asarray('u4', offset=8)
        assert array.shape == (10,) and int(array[0]) == 0x03030303
        del array


def test_a_schema_record_packed_into_a_region_reads_back_after_reopening(path):
    schema = Points.schema
    with RegionFile(path, 'w+') as region_file:
        region = region_file.append(256, 'record')
        end = schema.pack_into(Point(7, 2.5, 'seven'), region.buffer, 0)
        assert 0 < end <= 256
    with RegionFile(path) as region_file:
        proxy = schema.unpack_from(region_file['record'].buffer, 0)
        assert (proxy.x, proxy.y, proxy.label) == (7, 2.5, 'seven')
        del proxy


def test_a_typed_array_built_into_a_region_maps_back_after_reopening(three):
    items = [Point(index, index / 4, 'p%d' % index) for index in range(500)]
    with RegionFile(three, 'r+') as region_file:
        built = region_file['b'].build(Points, items)
        assert len(built) == 500 and built[499].label == 'p499'
        assert region_file['b'].size == built.total_size
        del built
    with RegionFile(three) as region_file:
        mapped = Points.map_buffer(region_file['b'].buffer)
        assert [point.x for point in mapped] == list(range(500)) and region_file['c'].read() == b'\x03' * 50
        del mapped


def test_a_mapping_built_into_a_region_is_sized_exactly_and_maps_back(three):
    with RegionFile(three, 'r+') as region_file:
        region_file['a'].build(PointsByLabel, {'p%d' % index: Point(index) for index in range(50)})
    with RegionFile(three) as region_file:
        mapping = PointsByLabel.map_buffer(region_file['a'].buffer)
        assert len(mapping) == 50 and mapping['p42'].x == 42
        del mapping


def test_an_id_mapper_built_into_a_region_maps_back(three):
    with RegionFile(three, 'r+') as region_file:
        mapper = region_file['c'].build(NumericIdMapper, {index * 3: index for index in range(100)})
        assert mapper.get(297) == 99
        del mapper


def test_region_write_grows_the_region_to_fit(three):
    with RegionFile(three, 'r+') as region_file:
        region_file['a'].write(b'tail', 200)
        assert region_file['a'].size == 204 and region_file['a'].read(196) == bytes(4) + b'tail'
        assert region_file['b'].read() == b'\x02' * 200


# -- refusals ------------------------------------------------------------------------------

STRUCTURAL = {
    'insert': lambda region_file: region_file.insert(0, 10),
    'append': lambda region_file: region_file.append(10),
    'resize': lambda region_file: region_file.resize(0, 500),
    'delete': lambda region_file: region_file.delete(1),
    'compact': lambda region_file: region_file.compact(),
}


@pytest.mark.parametrize('mode', ['r', 'c'])
@pytest.mark.parametrize('change', STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_modes_r_and_c_refuse_structural_changes_naming_the_mode(three, mode, change):
    before = open(three, 'rb').read()
    with RegionFile(three, mode) as region_file:
        with pytest.raises(io.UnsupportedOperation, match="mode '%s'" % mode):
            change(region_file)
    assert open(three, 'rb').read() == before


def test_mode_r_buffers_are_read_only(three):
    with RegionFile(three, 'r') as region_file:
        view = region_file[0].buffer
        assert view.readonly
        with pytest.raises(io.UnsupportedOperation):
            region_file[0].write(b'x')
        view.release()


def test_mode_c_writes_stay_in_memory(three):
    before = open(three, 'rb').read()
    with RegionFile(three, 'c') as region_file:
        region_file['a'].write(b'private')
        assert region_file['a'].read(0, 7) == b'private'
    assert open(three, 'rb').read() == before


@pytest.mark.parametrize('change', STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_structural_changes_with_views_alive_are_refused_with_the_count_and_change_nothing(three, change):
    before = open(three, 'rb').read()
    with RegionFile(three, 'r+') as region_file:
        view, array = region_file['a'].buffer, region_file['c'].asarray()
        with pytest.raises(ViewsAliveError, match='2 views'):
            change(region_file)
        assert open(three, 'rb').read() == before and array[0] == 3
        del view, array
        change(region_file)


def test_close_with_views_alive_is_refused_until_they_are_released(three):
    region_file = RegionFile(three, 'r+')
    array = region_file[0].asarray()
    with pytest.raises(ViewsAliveError, match='1 view'):
        region_file.close()
    assert array[0] == 1 and not region_file.closed
    del array
    region_file.close()
    assert region_file.closed


def test_a_container_over_a_region_blocks_changes_until_dropped(three):
    with RegionFile(three, 'r+') as region_file:
        built = region_file['a'].build(Points, [Point(1)])
        with pytest.raises(ViewsAliveError):
            region_file.append(1)
        del built
        region_file.append(1)


def test_a_slice_that_outlives_its_buffer_still_blocks_changes(three):
    with RegionFile(three, 'r+') as region_file:
        piece = region_file['b'].buffer[10:20]
        with pytest.raises(ViewsAliveError):
            region_file.resize('a', 5000)
        assert bytes(piece) == b'\x02' * 10
        piece.release()
        region_file.resize('a', 5000)


# -- corrupt files -------------------------------------------------------------------------

def test_a_file_written_from_the_documented_layout_opens(path):
    write_table(path, [(1088, 10, b'first'), (1152, 0, b''), (1152, 100, b'')])
    with RegionFile(path) as region_file:
        assert [(region.offset, region.size, region.name) for region in region_file] == [
            (1088, 10, 'first'), (1152, 0, None), (1152, 100, None)]


def test_a_file_truncated_at_any_length_gives_value_error(three):
    for length in reversed(range(os.path.getsize(three))):
        os.truncate(three, length)
        with pytest.raises(ValueError):
            RegionFile(three)


@pytest.mark.parametrize('offset, value, message', [
    (0, b'\x00', 'not a region file'), (8, b'\x02', 'version 2'), (30, b'\x01', 'header .* checksum')])
def test_damaged_headers_name_what_is_wrong(three, offset, value, message):
    with open(three, 'r+b') as output:
        output.seek(offset)
        output.write(value)
    with pytest.raises(ValueError, match=message):
        RegionFile(three)


def test_a_damaged_table_fails_its_checksum(three):
    with open(three, 'r+b') as output:
        active, _, capacity = struct.unpack_from('<IQQ', output.read(32), 12)
        slot = 64 + active * capacity * 64
        output.seek(slot + 3)
        output.write(b'\xff')
    with pytest.raises(ValueError, match='table at offset %d fails its checksum' % slot):
        RegionFile(three)


def test_overlapping_regions_give_value_error_naming_the_entry(path):
    write_table(path, [(1088, 100, b''), (1152, 100, b'')])
    with pytest.raises(ValueError, match=r'region 1 \(table entry at offset 128\) at offset 1152 overlaps region 0'):
        RegionFile(path)


def test_a_region_past_the_end_of_the_file_gives_value_error(path):
    write_table(path, [(1088, 100, b'')], size=1100)
    with pytest.raises(ValueError, match='region 0 .* past the end of the file'):
        RegionFile(path)


@pytest.mark.parametrize('offset', [0, 32, 64, 1000, 1087])
def test_a_region_in_the_header_or_table_area_gives_value_error(path, offset):
    write_table(path, [(1088, 8, b''), (offset, 0, b'')], size=2000)
    with pytest.raises(ValueError, match='region 1 .* at offset %d lies in the header or the table area' % offset):
        RegionFile(path)


def test_a_name_used_twice_gives_value_error(path):
    write_table(path, [(1088, 1, b'same'), (1152, 1, b'same')])
    with pytest.raises(ValueError, match="region 1 .* 'same' is used twice"):
        RegionFile(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=st.lists(st.tuples(st.integers(0, 64 + 2 * 8 * 64 - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_damage_to_the_header_or_table_gives_value_error_or_an_unchanged_table(three, damage):
    pristine = open(three, 'rb').read()
    with RegionFile(three) as region_file:
        expected = contents(region_file)
    data = bytearray(pristine)
    for offset, value in damage:
        data[offset] = value
    with open(three, 'wb') as output:
        output.write(data)
    try:
        with RegionFile(three) as region_file:
            assert contents(region_file) == expected     # only free bytes of the table area were hit
    except ValueError:
        pass
    finally:
        with open(three, 'wb') as output:
            output.write(pristine)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 400), st.sampled_from([b'', b'a', b'b'])),
                        max_size=6),
       size=st.integers(0, 3500))
def test_any_checksummed_table_opens_only_when_its_regions_are_sound(path, entries, size):
    write_table(path, entries, size=size)
    claims = sorted((offset, offset + length) for offset, length, _ in entries)
    names = [name for _, _, name in entries if name]
    sound = (size >= 1088 and all(1088 <= start and end <= size for start, end in claims) and
             len(names) == len(set(names)) and
             all(later[0] >= max(end for _, end in claims[:index + 1]) for index, later in enumerate(claims[1:])))
    try:
        with RegionFile(path) as region_file:
            assert sound and [(region.offset, region.size) for region in region_file] == [
                (offset, length) for offset, length, _ in entries]
    except ValueError:
        assert not sound


# -- crash safety ------------------------------------------------------------------------------

class Crash(Exception):
    """Stands for the process dying just before one write reaches the file."""


CHANGES = {
    'grow a middle region': lambda region_file: region_file.resize(1, 500),
    'grow a middle region past all the rest': lambda region_file: region_file.resize(1, 20000),
    'insert in the middle': lambda region_file: region_file.insert(2, 300, 'new'),
    'append past the table capacity': lambda region_file: region_file.append(100, 'ninth'),
    'shrink the last region': lambda region_file: region_file.resize(-1, 3),
    'delete a middle region': lambda region_file: region_file.delete(3),
    'compact': lambda region_file: region_file.compact(),
}


def crash_at(monkeypatch, limit):
    """Make the write numbered ``limit`` (from 0) raise Crash; returns the count of writes made."""
    real = regions._write_at
    made = [0]

    def write_at(descriptor, data, offset):
        if made[0] == limit:
            raise Crash
        made[0] += 1
        real(descriptor, data, offset)
    monkeypatch.setattr(regions, '_write_at', write_at)
    return made


@pytest.mark.parametrize('change', CHANGES.values(), ids=CHANGES.keys())
def test_a_crash_at_any_write_leaves_the_old_or_the_new_regions(path, monkeypatch, change):
    with RegionFile(path, 'w+') as region_file:
        filled(region_file, [100 + 37 * index for index in range(8)])
        region_file.resize(0, 10)
    pristine = open(path, 'rb').read()
    with RegionFile(path, 'r+') as region_file:
        old = contents(region_file)
        made = crash_at(monkeypatch, None)
        change(region_file)
        new = contents(region_file)
    monkeypatch.undo()
    writes = made[0]
    assert writes > 0
    for limit in range(writes):
        with open(path, 'wb') as output:
            output.write(pristine)
        crash_at(monkeypatch, limit)
        with RegionFile(path, 'r+') as region_file:
            with pytest.raises(Crash):
                change(region_file)
            in_memory = contents(region_file)
        monkeypatch.undo()
        with RegionFile(path) as region_file:
            assert contents(region_file) == in_memory and in_memory in (old, new), 'crash at write %d' % limit


def test_a_file_left_by_a_crash_between_commits_takes_further_changes(path, monkeypatch):
    with RegionFile(path, 'w+') as region_file:
        filled(region_file, [100 + 37 * index for index in range(8)])
        expected = contents(region_file)
    real_commit = RegionFile._commit

    def commit_then_crash(self, layout, capacity):
        real_commit(self, layout, capacity)
        raise Crash
    monkeypatch.setattr(RegionFile, '_commit', commit_then_crash)
    with RegionFile(path, 'r+') as region_file:
        with pytest.raises(Crash):
            region_file.insert(2, 300)        # some regions now sit in scratch space, out of order
    monkeypatch.undo()
    with RegionFile(path, 'r+') as region_file:
        assert contents(region_file) == expected
        assert sorted(region.offset for region in region_file) != [region.offset for region in region_file]
        region_file.append(10, 'after')
        region_file.compact()
        offsets = [region.offset for region in region_file]
        assert offsets == sorted(offsets) and contents(region_file) == expected + [('after', bytes(10))]


def test_durable_files_sync_before_and_after_every_header_write(three, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, 'fsync', lambda descriptor: (synced.append(descriptor), real_fsync(descriptor)))
    with RegionFile(three, 'r+', durable=True) as region_file:
        region_file.resize('a', 400)        # moves b and c: one commit for the moves, one for the sizes
        assert len(synced) == 4
        assert contents(region_file)[1:] == [('b', b'\x02' * 200), ('c', b'\x03' * 50)]


# -- other processes -----------------------------------------------------------------------

def _child_writes_region(path):
    with RegionFile(path, 'r+') as region_file:
        region_file['b'].write(b'from the child')


def test_a_child_process_writing_a_region_opened_r_plus_is_seen_by_the_parent(three):
    with RegionFile(three, 'r+') as region_file:
        array = region_file['b'].asarray()
        child = multiprocessing.get_context('fork').Process(target=_child_writes_region, args=(three,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert array[:14].tobytes() == b'from the child'
        del array


def _child_writes_inherited(region_file):
    region_file['c'].buffer[:5] = b'fork!'


def test_a_forked_child_writes_through_the_inherited_mapping(three):
    with RegionFile(three, 'r+') as region_file:
        child = multiprocessing.get_context('fork').Process(target=_child_writes_inherited, args=(region_file,))
        child.start()
        child.join(60)
        assert child.exitcode == 0 and region_file['c'].read(0, 5) == b'fork!'


# -- against a model ---------------------------------------------------------------------------

SIZES = st.integers(0, 300)


class RegionFileAgainstAList(RuleBasedStateMachine):
    """Random inserts, resizes, deletes, writes, compactions and reopenings against a list of bytearrays."""

    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp()
        self.path = os.path.join(self.directory, 'regions.bin')
        self.region_file = RegionFile(self.path, 'w+')
        self.model = []

    def teardown(self):
        self.region_file.close()
        shutil.rmtree(self.directory)

    @rule(data=st.data(), size=SIZES, fill=st.integers(0, 255))
    def insert(self, data, size, fill):
        index = data.draw(st.integers(0, len(self.model)))
        self.region_file.insert(index, size).write(bytes([fill]) * size)
        self.model.insert(index, bytearray([fill]) * size)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), size=SIZES)
    def resize(self, data, size):
        index = data.draw(st.integers(0, len(self.model) - 1))
        self.region_file.resize(index, size)
        kept = self.model[index][:size]
        self.model[index] = kept + bytearray(size - len(kept))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data):
        index = data.draw(st.integers(0, len(self.model) - 1))
        del self.region_file[index]
        del self.model[index]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), payload=st.binary(max_size=80))
    def write(self, data, payload):
        index = data.draw(st.integers(0, len(self.model) - 1))
        offset = data.draw(st.integers(0, len(self.model[index]) + 20))
        self.region_file[index].write(payload, offset)
        region = self.model[index]
        region.extend(bytes(max(0, offset + len(payload) - len(region))))
        region[offset:offset + len(payload)] = payload

    @rule()
    def compact(self):
        self.region_file.compact()

    @rule()
    def reopen(self):
        self.region_file.close()
        self.region_file = RegionFile(self.path, 'r+')

    @invariant()
    def regions_hold_the_models_bytes(self):
        assert [region.read() for region in self.region_file] == [bytes(region) for region in self.model]

    @invariant()
    def the_file_ends_where_its_last_region_or_table_ends(self):
        with open(self.path, 'rb') as stored:
            capacity, = struct.unpack_from('<Q', stored.read(32), 24)
        ends = [region.offset + region.size for region in self.region_file]
        assert os.path.getsize(self.path) == max([64 + 2 * capacity * 64] + ends)


TestRegionFileAgainstAList = RegionFileAgainstAList.TestCase
TestRegionFileAgainstAList.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
