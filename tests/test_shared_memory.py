"""Named shared-memory segments, the block heap, and containers built into shared memory."""
import multiprocessing
import os
import pickle

import pytest

import shared_children as children
from sharedbuffers import shared_memory
from sharedbuffers.mapped_struct import MappedArrayProxyBase, NumericIdMapper
from sharedbuffers.shared_memory import SharedHeap, SharedSegment, attach, locate

START_METHODS = [method for method in ('fork', 'spawn', 'forkserver')
                 if method in multiprocessing.get_all_start_methods()]


def test_a_new_segment_is_zeroed_and_writable():
    segment = SharedSegment(4096)
    assert bytes(segment.buffer[:16]) == bytes(16) and len(segment) == 4096
    segment.buffer[0] = 7
    segment.unlink()


def test_attaching_by_name_in_this_process_gives_the_same_segment():
    segment = SharedSegment(100)
    assert attach(segment.name) is segment
    segment.unlink()


def test_a_pickled_segment_is_the_same_memory():
    segment = SharedSegment(100)
    assert pickle.loads(pickle.dumps(segment)) is segment
    segment.unlink()


def test_locate_finds_the_segment_and_offset_of_an_address():
    segment = SharedSegment(8192)
    assert locate(segment.address + 100) == (segment, 100)
    assert locate(segment.address + 8192) is None or locate(segment.address + 8192)[0] is not segment
    segment.unlink()


def test_an_unlinked_name_can_no_longer_be_attached_but_the_mapping_stays():
    segment = SharedSegment(100)
    name = segment.name
    segment.unlink()
    segment.buffer[0] = 1                     # our mapping is still there
    del segment
    shared_memory._attached.pop(name, None)
    with pytest.raises(FileNotFoundError, match=name):
        attach(name)


def test_a_segment_cannot_be_empty():
    with pytest.raises(ValueError, match='positive size'):
        SharedSegment(0)


def test_close_is_refused_while_values_live_in_the_segment():
    segment = SharedSegment(64)
    view = segment.buffer[0:8]
    with pytest.raises(BufferError):
        segment.close()
    view.release()
    segment.close()
    segment.unlink()


def _exit_child():
    os._exit(0)


def _attach_and_report(name, queue):
    queue.put(bytes(attach(name).buffer[:4]))


def test_a_forked_child_does_not_unlink_its_parents_segments():
    segment = SharedSegment(64)
    process = multiprocessing.get_context('fork').Process(target=shared_memory._unlink_owned_segments)
    process.start()
    process.join()
    assert attach(segment.name) is segment
    queue = multiprocessing.get_context('spawn').Queue()
    segment.buffer[:4] = b'live'
    child = multiprocessing.get_context('spawn').Process(target=_attach_and_report, args=(segment.name, queue))
    child.start()
    assert queue.get(timeout=60) == b'live'
    child.join()
    segment.unlink()


def test_heap_blocks_do_not_overlap_and_are_zeroed():
    heap = SharedHeap(arena_size=4096)
    blocks = [heap.allocate(size) for size in (1, 15, 16, 17, 100, 1000)]
    spans = sorted((block.segment.address + block.offset, block.size) for block in blocks)
    for (start, size), (next_start, _) in zip(spans, spans[1:]):
        assert start + size <= next_start
    assert all(bytes(block.buffer) == bytes(block.size) for block in blocks)


def test_a_freed_heap_block_is_reused_and_cleared():
    heap = SharedHeap(arena_size=4096)
    block = heap.allocate(40)
    block.buffer[:] = b'x' * 40
    where = (block.segment.name, block.offset)
    del block
    again = heap.allocate(40)
    assert (again.segment.name, again.offset) == where
    assert bytes(again.buffer) == bytes(40)


def test_a_big_block_gets_a_segment_of_its_own_and_unlinks_it_when_freed():
    block = shared_memory.heap.allocate(1 << 20)
    name = block.segment.name
    assert block.offset == 0 and block.segment.size >= 1 << 20
    del block
    shared_memory._attached.pop(name, None)
    with pytest.raises(FileNotFoundError):
        attach(name)


def test_a_block_pickles_as_a_reference():
    block = shared_memory.heap.allocate(8)
    block.buffer[:3] = b'abc'
    again = pickle.loads(pickle.dumps(block))
    assert bytes(again.buffer[:3]) == b'abc' and again.offset == block.offset


# -- containers in shared memory ----------------------------------------------------------

def _records(count):
    return [children.Counter(i, i / 4, 'item%d' % i) for i in range(count)]


@pytest.mark.parametrize('method', START_METHODS)
def test_an_array_built_in_shared_memory_is_opened_by_name_in_another_process(method):
    array = children.CounterArray.build_shared(_records(20))
    queue = multiprocessing.get_context(method).Queue()
    process = multiprocessing.get_context(method).Process(
        target=children.read_shared_array, args=(array.shared_segment.name, queue))
    process.start()
    assert queue.get(timeout=60) == [(i, 'item%d' % i) for i in range(20)]
    process.join(60)
    array.shared_segment.unlink()


@pytest.mark.parametrize('method', START_METHODS)
def test_an_id_mapper_built_in_shared_memory_is_opened_by_name(method):
    mapper = NumericIdMapper.build_shared({key: key * 3 for key in range(1, 500)})
    queue = multiprocessing.get_context(method).Queue()
    process = multiprocessing.get_context(method).Process(
        target=children.read_shared_mapper, args=(mapper.shared_segment.name, [1, 250, 499, 1000], queue))
    process.start()
    assert queue.get(timeout=60) == [3, 750, 1497, None]
    process.join(60)


def test_build_shared_with_a_chosen_name():
    name = 'sb_test_%d' % os.getpid()
    array = children.CounterArray.build_shared(_records(3), name=name)
    assert children.CounterArray.map_shared(name)[2].label == 'item2'
    array.shared_segment.unlink()


def test_a_shared_container_pickles_as_a_reference():
    array = children.CounterArray.build_shared(_records(50))
    data = pickle.dumps(array)
    assert len(data) < 300
    again = pickle.loads(data)
    type(again[7]).hits.add(again[7], 1000)
    assert array[7].hits == 1007


def test_a_shared_array_of_an_unimportable_class_pickles_through_the_base_class():
    local_class = type('LocalArray', (MappedArrayProxyBase,), {'schema': children.COUNTER_SCHEMA})
    array = local_class.build_shared(_records(4))
    again = pickle.loads(pickle.dumps(array))
    assert type(again) is MappedArrayProxyBase and again[3].label == 'item3'


def test_a_container_outside_shared_memory_refuses_to_pickle(tmp_path):
    array = children.CounterArray.build(_records(2), destfile=str(tmp_path / 'a.sba'))
    with pytest.raises(TypeError, match='not in shared memory'):
        pickle.dumps(array)
    array.close()


def test_map_shared_checks_the_region_against_the_segment():
    array = children.CounterArray.build_shared(_records(2))
    with pytest.raises(ValueError, match='outside shared segment'):
        children.CounterArray.map_shared(array.shared_segment.name, 0, array.shared_segment.size + 1)


def test_a_proxy_outside_shared_memory_still_pickles_as_a_plain_copy():
    packed = bytearray(children.COUNTER_SCHEMA.pack(children.Counter(5, 1.0, 'copy')))
    proxy = children.COUNTER_SCHEMA.unpack_from(packed, 0)
    again = pickle.loads(pickle.dumps(proxy))
    assert isinstance(again, children.Counter) and again.label == 'copy'


@pytest.mark.parametrize('method', START_METHODS)
def test_a_mapping_built_in_shared_memory_is_opened_by_name(method):
    mapping = children.CountersByName.build_shared({'k%d' % i: children.Counter(i, 0.0, 'v') for i in range(300)})
    queue = multiprocessing.get_context(method).Queue()
    process = multiprocessing.get_context(method).Process(
        target=children.read_shared_mapping, args=(mapping.shared_segment.name, ['k0', 'k299', 'nope'], queue))
    process.start()
    assert queue.get(timeout=60) == [0, 299, None]
    process.join(60)
    mapping.shared_segment.unlink()
