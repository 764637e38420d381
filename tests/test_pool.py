"""Object pools (``sharedbuffers.pool``, REFERENCE-API §1.12, FORMAT.md §12).

The first group ports the 1.x tests (REFERENCE-API §2.2); the rest pin down what this
version does differently: oversized objects, small sections, positions in the dumped file,
no pointers across sections, lifetimes after ``close``.
"""
import io
import mmap
import os
import random
import struct

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers import pool
from sharedbuffers.containers import pools
from sharedbuffers.mapped_struct import Schema, mapped_object, proxied_list, proxied_tuple


class Struct:
    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


class ContainerStruct(Struct):
    __slot_types__ = {
        'a': int, 'b': float, 'fset': frozenset, 't': tuple, 'l': list,
        'pt': proxied_tuple, 'pl': proxied_list, 'o': object,
    }


CONTAINER_VALUES = {
    'a': 20, 'b': 3.24, 'fset': frozenset([1, 3, 7]), 't': (3, 6, 7), 'l': [1, 2, 3],
    'pt': (3, 6, 7), 'pl': [1, 2, 3],
    'o': [{'a': (3, 4, 5), 'b': frozenset([1000, 3444, 525])}],
}
CONTAINER_SCHEMA = Schema.from_typed_slots(ContainerStruct)


class PoolRecord(Struct):
    """Registered under its own code, so ``mapped_object`` can be the pool's schema."""
    __slot_types__ = dict(ContainerStruct.__slot_types__)


POOL_RECORD_SCHEMA = Schema.from_typed_slots(PoolRecord)
mapped_object.register_schema(PoolRecord, POOL_RECORD_SCHEMA, 0xE5)


class Labelled(Struct):
    __slot_types__ = {'label': str, 'n': int}


LABELLED_SCHEMA = Schema.from_typed_slots(Labelled)
LABEL_POINTER_OFFSET = 8    # after two uint32 bitmaps; 'label' sorts before 'n' (FORMAT.md §5)


class Note(Struct):
    __slot_types__ = {'label': str, 'note': str}


NOTE_SCHEMA = Schema.from_typed_slots(Note)
SHARED = 'a label long enough to be shared by identity'


def incompressible(size, seed=0):
    """A str of ``size`` random ASCII letters that LZ4 cannot shrink much."""
    generator = random.Random(seed)
    return ''.join(generator.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')
                   for _ in range(size))


def assert_matches(proxy, values):
    for name, value in values.items():
        assert getattr(proxy, name) == value, name


def container_record():
    return ContainerStruct(**CONTAINER_VALUES)


@pytest.fixture
def temporary_pool():
    made = []

    def make(**kwargs):
        made.append(pool.TemporaryObjectPool(**kwargs))
        return made[-1]
    yield make
    for each in made:
        each.close(True)


def dumped(object_pool):
    out = io.BytesIO()
    object_pool.dump(out)
    return out.getvalue()


def pointer_target(buffer, position):
    """Logical position the 'label' pointer of the Labelled struct at ``position`` points at."""
    return position + struct.unpack_from('=q', buffer, position + LABEL_POINTER_OFFSET)[0]


# -- the 1.x tests ------------------------------------------------------------------------

def test_pack_reads_back_through_the_returned_proxy(temporary_pool):
    _, proxy = temporary_pool().pack(CONTAINER_SCHEMA, container_record())
    assert_matches(proxy, CONTAINER_VALUES)


def test_pack_accepts_mapped_object_as_the_schema(temporary_pool):
    _, proxy = temporary_pool().pack(mapped_object, PoolRecord(**CONTAINER_VALUES))
    assert_matches(proxy, CONTAINER_VALUES)


def test_pack_after_add_preload_reads_back(temporary_pool):
    object_pool = temporary_pool()
    record = container_record()
    object_pool.add_preload(CONTAINER_SCHEMA, record)
    _, proxy = object_pool.pack(CONTAINER_SCHEMA, record)
    assert_matches(proxy, CONTAINER_VALUES)


def test_objects_overflow_into_more_sections(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    proxies = [object_pool.pack(CONTAINER_SCHEMA, container_record())[1] for _ in range(300)]
    assert len(object_pool.sections) > 1
    for proxy in proxies:
        assert_matches(proxy, CONTAINER_VALUES)


def test_object_bigger_than_the_default_pack_buffer(temporary_pool):
    values = dict(CONTAINER_VALUES, l=list(range(200000)))
    position, proxy = temporary_pool().pack(CONTAINER_SCHEMA, ContainerStruct(**values))
    assert_matches(proxy, values)


def test_object_bigger_than_an_explicit_pack_buffer(temporary_pool):
    values = dict(CONTAINER_VALUES, o=[bytes(range(256)) * 4096] * 2, l=list(range(800000)))
    _, proxy = temporary_pool().pack(mapped_object, PoolRecord(**values), pack_buffer=bytearray(5 << 20))
    assert_matches(proxy, values)


def test_stable_set_taken_from_a_prior_pack(temporary_pool):
    prior_idmap = {}
    CONTAINER_SCHEMA.pack(container_record(), idmap=prior_idmap)
    object_pool = temporary_pool(section_size=1 << 20, idmap_kwargs=dict(stable_set=set(prior_idmap)))
    for _ in range(300):
        assert_matches(object_pool.pack(CONTAINER_SCHEMA, container_record())[1], CONTAINER_VALUES)


def test_unpack_reads_the_position_returned_by_pack(temporary_pool):
    object_pool = temporary_pool()
    position, _ = object_pool.pack(CONTAINER_SCHEMA, container_record())
    assert_matches(object_pool.unpack(CONTAINER_SCHEMA, position), CONTAINER_VALUES)


# -- sections ---------------------------------------------------------------------------------

def test_sections_are_mapped_temporary_files(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.pack(CONTAINER_SCHEMA, container_record())
    section, = object_pool.sections
    assert isinstance(section.buf, mmap.mmap)
    assert os.fstat(section.fileobj.fileno()).st_size == len(section.buf) == 4096


def test_temp_kwargs_are_passed_to_temporary_file(tmp_path, temporary_pool):
    object_pool = temporary_pool(temp_kwargs={'dir': str(tmp_path / 'missing')})
    with pytest.raises(FileNotFoundError):
        object_pool.pack(CONTAINER_SCHEMA, container_record())


def test_base_pool_leaves_mktemp_to_subclasses():
    with pytest.raises(NotImplementedError):
        pool.BaseObjectPool().pack(CONTAINER_SCHEMA, container_record())


def test_object_bigger_than_a_section_gets_a_section_of_its_own(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    small = {'label': 'small', 'note': 'x'}
    big = {'label': 'big', 'note': incompressible(100000)}
    before = object_pool.pack(NOTE_SCHEMA, Note(**small))
    oversized = object_pool.pack(NOTE_SCHEMA, Note(**big))
    after = object_pool.pack(NOTE_SCHEMA, Note(**small))
    assert [len(section.buf) >= 100000 for section in object_pool.sections] == [False, True, False]
    data = dumped(object_pool)
    for (position, proxy), values in ((before, small), (oversized, big), (after, small)):
        assert_matches(proxy, values)
        assert_matches(NOTE_SCHEMA.unpack_from(data, position), values)


def test_small_sections_fill_up_before_a_new_one_opens(temporary_pool):
    object_pool = temporary_pool(section_size=65536)      # == the default min_pack_buffer
    for n in range(2000):
        object_pool.pack(LABELLED_SCHEMA, Labelled(label='tiny', n=n))
    assert len(object_pool.sections) <= object_pool.size // object_pool.section_size + 1


def test_sections_smaller_than_min_pack_buffer_fill_up_too(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    for n in range(2000):
        object_pool.pack(LABELLED_SCHEMA, Labelled(label='tiny', n=n), min_pack_buffer=1 << 20)
    assert len(object_pool.sections) <= object_pool.size // object_pool.section_size + 1


def test_an_object_that_misses_the_current_section_fills_an_older_one(temporary_pool):
    object_pool = temporary_pool(section_size=65536)
    object_pool.pack(NOTE_SCHEMA, Note(note=incompressible(40000, 1)))
    object_pool.pack(NOTE_SCHEMA, Note(note=incompressible(50000, 2)))
    position, proxy = object_pool.pack(NOTE_SCHEMA, Note(note=incompressible(20000, 3)), min_pack_buffer=16384)
    assert len(object_pool.sections) == 2
    assert object_pool.find_section(position) is object_pool.sections[0]
    assert proxy.note == incompressible(20000, 3)


def test_find_section_returns_the_section_holding_a_position(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    positions = [object_pool.pack(CONTAINER_SCHEMA, container_record())[0] for _ in range(40)]
    for position in positions:
        section = object_pool.find_section(position)
        assert section.implicit_offs <= position < section.implicit_offs + len(section.buf)
    assert object_pool.find_section(-1) is None
    assert object_pool.find_section(object_pool.sections[-1].implicit_offs + 4096) is None


def test_unpack_outside_the_written_part_raises_index_error(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.pack(CONTAINER_SCHEMA, container_record())
    with pytest.raises(IndexError, match='outside the written part'):
        object_pool.unpack(CONTAINER_SCHEMA, object_pool.size)


def test_section_append_refuses_an_unexpected_position():
    section = pool.Section(bytearray(64))
    section.append(b'abc')
    with pytest.raises(RuntimeError, match='concurrent modification'):
        section.append(b'def', verify_pos=0)


def test_section_allocate_keeps_the_write_position_aligned():
    section = pool.Section(bytearray(64))
    assert section.allocate(3) == 0
    assert section.append(b'xyz') == 8
    assert (section.write_pos, section.free_space) == (16, 48)


def test_section_allocate_beyond_the_free_space_raises_index_error():
    section = pool.Section(bytearray(64))
    section.allocate(60)
    with pytest.raises(IndexError, match='has 0 free'):
        section.allocate(8)


# -- adding pre-packed bytes ------------------------------------------------------------

def test_add_appends_prepacked_bytes(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.pack(CONTAINER_SCHEMA, container_record())
    position, proxy = object_pool.add(CONTAINER_SCHEMA, CONTAINER_SCHEMA.pack(container_record()))
    assert_matches(proxy, CONTAINER_VALUES)
    assert_matches(CONTAINER_SCHEMA.unpack_from(dumped(object_pool), position), CONTAINER_VALUES)


def test_add_of_bytes_bigger_than_a_section_gets_a_section_of_its_own(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    values = {'label': 'big', 'note': incompressible(10000)}
    position, proxy = object_pool.add(NOTE_SCHEMA, NOTE_SCHEMA.pack(Note(**values)))
    assert_matches(proxy, values)
    assert len(object_pool.find_section(position).buf) >= 10000


# -- the dumped file ------------------------------------------------------------------------

def test_positions_stay_valid_in_the_dumped_file(tmp_path, temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.add_preload(NOTE_SCHEMA, Note(label=SHARED, note='preloaded'))
    records = [{'label': SHARED if n % 3 else 'own %d' % n, 'note': incompressible(n * 97 % 6000, n)}
               for n in range(120)]
    positions = [object_pool.pack(NOTE_SCHEMA, Note(**values))[0] for values in records]
    path = tmp_path / 'pool.bin'
    with open(path, 'wb') as output:
        object_pool.dump(output)
    with open(path, 'rb') as source, mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        for position, values in zip(positions, records):
            assert_matches(NOTE_SCHEMA.unpack_from(mapped, position), values)


def test_dump_writes_size_bytes_in_a_multiple_of_8(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    for n in range(100):
        object_pool.pack(mapped_object, 'x' * n)
    data = dumped(object_pool)
    assert len(data) == object_pool.size == object_pool.dump(io.BytesIO())
    assert len(data) % 8 == 0


def test_value_packed_twice_with_mapped_object_gets_a_position_of_its_own(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    value = b'\xff' * 500
    (first, _), (second, proxy) = (object_pool.pack(mapped_object, value) for _ in range(2))
    assert second > first and proxy == value
    assert mapped_object.unpack_from(dumped(object_pool), second) == value


def test_dump_of_an_empty_pool_writes_nothing(temporary_pool):
    assert temporary_pool().dump(io.BytesIO()) == 0


@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs os.fork (not on Windows)')
def test_child_process_reads_a_dumped_pool(tmp_path, temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    records = [{'label': 'record %d' % n, 'note': SHARED * (n % 5)} for n in range(200)]
    positions = [object_pool.pack(NOTE_SCHEMA, Note(**values))[0] for values in records]
    path = tmp_path / 'pool.bin'
    with open(path, 'wb') as output:
        object_pool.dump(output)
    child = os.fork()
    if child == 0:      # the child: exit status 0 if every record reads back
        status = 1
        try:
            with open(path, 'rb') as source, mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if all(NOTE_SCHEMA.unpack_from(mapped, position).note == values['note']
                       and NOTE_SCHEMA.unpack_from(mapped, position).label == values['label']
                       for position, values in zip(positions, records)):
                    status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- idmaps ---------------------------------------------------------------------------------

@pytest.mark.parametrize('clear_idmaps', [True, False])
def test_values_shared_in_one_section_are_written_again_in_the_next(temporary_pool, clear_idmaps):
    object_pool = temporary_pool(section_size=512)
    positions = []
    while len(object_pool.sections) < 2:
        positions.append(object_pool.pack(LABELLED_SCHEMA, Labelled(label=SHARED, n=len(positions)),
                                          clear_idmaps_on_new_section=clear_idmaps)[0])
    data = dumped(object_pool)
    first, second = positions[0], positions[-1]
    assert pointer_target(data, positions[1]) == pointer_target(data, first)     # shared in section 0
    assert object_pool.find_section(pointer_target(data, second)) is object_pool.sections[1]
    assert object_pool.unpack(LABELLED_SCHEMA, second).label == SHARED


def test_preloaded_values_are_shared_by_later_objects(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.add_preload(LABELLED_SCHEMA, Labelled(label=SHARED, n=0))
    position, proxy = object_pool.pack(LABELLED_SCHEMA, Labelled(label=SHARED, n=1))
    assert pointer_target(dumped(object_pool), position) < position
    assert proxy.label == SHARED


def test_preloaded_values_are_shared_after_clear_idmaps(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.add_preload(LABELLED_SCHEMA, Labelled(label=SHARED, n=0))
    first, _ = object_pool.pack(LABELLED_SCHEMA, Labelled(label=SHARED, n=1))
    object_pool.clear_idmaps()
    second, _ = object_pool.pack(LABELLED_SCHEMA, Labelled(label=SHARED, n=2))
    data = dumped(object_pool)
    assert pointer_target(data, second) == pointer_target(data, first) < first


def test_every_new_section_starts_with_the_preloaded_objects(temporary_pool):
    object_pool = temporary_pool(section_size=512)
    object_pool.add_preload(LABELLED_SCHEMA, Labelled(label=SHARED, n=-1))
    while len(object_pool.sections) < 3:
        object_pool.pack(LABELLED_SCHEMA, Labelled(label='x', n=0))
    for section in object_pool.sections:
        assert LABELLED_SCHEMA.unpack_from(section.readonly_buf, 0).label == SHARED


def test_idmap_is_reset_when_it_reaches_strong_limit(temporary_pool):
    object_pool = temporary_pool(idmap_kwargs={'strong_limit': 8})
    sizes = []
    for n in range(50):
        object_pool.pack(NOTE_SCHEMA, Note(label='label %d of many' % n + '.' * 16, note='note %d' % n + '.' * 16))
        sizes.append(len(object_pool.sections[0].idmap))
    assert max(sizes) <= 8


def test_stable_keys_survive_idmap_resets(temporary_pool):
    object_pool = temporary_pool(idmap_kwargs={'strong_limit': 2, 'stable_set': {id(SHARED)}})
    for n in range(20):
        object_pool.pack(NOTE_SCHEMA, Note(label=SHARED, note='note %d' % n + '.' * 16))
    assert dumped(object_pool).count(SHARED.encode()) == 1


def test_unknown_idmap_option_raises_type_error():
    with pytest.raises(TypeError, match='weak_limit'):
        pool.TemporaryObjectPool(idmap_kwargs={'weak_limit': 3})


def test_failed_pack_takes_back_its_idmap_entries(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    object_pool.pack(mapped_object, 'first')
    with pytest.raises(TypeError):
        object_pool.pack(mapped_object, [SHARED, object()])
    section, = object_pool.sections
    limit = section.implicit_offs + section.write_pos
    assert all((entry[0] if type(entry) is tuple else entry) < limit
               for key, entry in section.idmap.items() if type(entry) in (int, tuple))
    assert object_pool.pack(mapped_object, ['after', SHARED])[1] == ['after', SHARED]


def test_object_that_cannot_be_packed_opens_no_section(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    with pytest.raises(TypeError):
        object_pool.pack(mapped_object, [SHARED, object()])
    assert object_pool.sections == []


def test_schema_with_only_pack_is_accepted(temporary_pool):
    class PackOnly:
        def pack(self, obj, idmap=None, implicit_offs=0):
            return NOTE_SCHEMA.pack(obj, idmap, implicit_offs=implicit_offs)

        def unpack_from(self, buf, offs=0):
            return NOTE_SCHEMA.unpack_from(buf, offs)

    object_pool = temporary_pool(section_size=1024)
    records = [{'label': SHARED, 'note': 'n' * (n * 37 % 900)} for n in range(60)]
    positions = [object_pool.pack(PackOnly(), Note(**values))[0] for values in records]
    data = dumped(object_pool)
    for position, values in zip(positions, records):
        assert_matches(NOTE_SCHEMA.unpack_from(data, position), values)


# -- lifetimes -------------------------------------------------------------------------------

def test_proxies_keep_working_after_close(temporary_pool):
    object_pool = temporary_pool(section_size=4096)
    proxies = [object_pool.pack(CONTAINER_SCHEMA, container_record())[1] for _ in range(40)]
    object_pool.close()
    for proxy in proxies:
        assert_matches(proxy, CONTAINER_VALUES)


def test_unpack_after_close_raises_index_error(temporary_pool):
    object_pool = temporary_pool()
    position, _ = object_pool.pack(CONTAINER_SCHEMA, container_record())
    object_pool.close()
    with pytest.raises(IndexError):
        object_pool.unpack(CONTAINER_SCHEMA, position)


def test_context_manager_closes_the_pool():
    with pool.TemporaryObjectPool(section_size=4096) as object_pool:
        object_pool.pack(CONTAINER_SCHEMA, container_record())
        fileobj = object_pool.sections[0].fileobj
    assert object_pool.sections == [] and fileobj.closed


def test_close_recycles_sections_into_the_freelist(temporary_pool):
    freelist = []
    first = temporary_pool(section_size=4096, section_freelist=freelist)
    first.pack(CONTAINER_SCHEMA, container_record())
    recycled, = first.sections
    first.close()
    second = temporary_pool(section_size=4096, section_freelist=freelist)
    _, proxy = second.pack(CONTAINER_SCHEMA, container_record())
    assert freelist == [] and second.sections == [recycled]
    assert_matches(proxy, CONTAINER_VALUES)


def test_close_keeps_sections_that_proxies_read_out_of_the_freelist(temporary_pool):
    freelist = []
    object_pool = temporary_pool(section_size=4096, section_freelist=freelist)
    _, proxy = object_pool.pack(CONTAINER_SCHEMA, container_record())
    object_pool.close()
    assert freelist == []
    assert_matches(proxy, CONTAINER_VALUES)


def test_recycled_section_holds_no_bytes_of_the_previous_pool(temporary_pool):
    freelist = []
    first = temporary_pool(section_size=4096, section_freelist=freelist)
    for _ in range(5):
        first.pack(mapped_object, b'\xff' * 500)
    first.close()
    second = temporary_pool(section_size=4096, section_freelist=freelist)
    second.pack(mapped_object, b'')
    section, = second.sections
    assert bytes(section.real_buf[section.write_pos:]) == bytes(len(section.buf) - section.write_pos)


def test_close_with_discard_empties_the_freelist(temporary_pool):
    freelist = []
    first = temporary_pool(section_size=4096, section_freelist=freelist)
    first.pack(CONTAINER_SCHEMA, container_record())
    first.close()
    recycled, = freelist
    temporary_pool(section_size=4096, section_freelist=freelist).close(discard=True)
    assert freelist == [] and recycled.fileobj.closed


def test_facade_exports_the_1x_names():
    assert (pool.Section, pool.BaseObjectPool, pool.TemporaryObjectPool) == (
        pools.Section, pools.BaseObjectPool, pools.TemporaryObjectPool)
    assert pool.DEFAULT_SECTION_SIZE == 128 << 20


# -- property: anything packed reads back, from the pool and from the dump -------------------

class Record(Struct):
    __slot_types__ = {'id': int, 'score': float, 'name': str, 'blob': bytes, 'tags': list, 'extra': object}


RECORD_SCHEMA = Schema.from_typed_slots(Record)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
records = st.fixed_dictionaries({
    'id': INT64,
    'score': st.floats(allow_nan=False),
    'name': st.one_of(st.none(), st.text(max_size=40), st.sampled_from([SHARED, 'short'])),
    'blob': st.binary(max_size=3000),
    'tags': st.lists(INT64, max_size=30),
    'extra': st.one_of(st.none(), INT64, st.text(max_size=20), st.tuples(INT64, st.text(max_size=5))),
})


@settings(max_examples=60, deadline=None)
@given(values=st.lists(records, max_size=40), section_size=st.sampled_from([64, 512, 4096]),
       min_pack_buffer=st.sampled_from([0, 1024, 65536]), clear_idmaps=st.booleans())
def test_packed_records_read_back_from_pool_and_dump(values, section_size, min_pack_buffer, clear_idmaps):
    with pool.TemporaryObjectPool(section_size=section_size) as object_pool:
        positions = [object_pool.pack(RECORD_SCHEMA, Record(**record), min_pack_buffer=min_pack_buffer,
                                      clear_idmaps_on_new_section=clear_idmaps)[0] for record in values]
        data = dumped(object_pool)
        for position, record in zip(positions, values):
            for proxy in (object_pool.unpack(RECORD_SCHEMA, position), RECORD_SCHEMA.unpack_from(data, position)):
                assert (proxy.id, proxy.score, proxy.name, proxy.blob, list(proxy.tags), proxy.extra) == (
                    record['id'], record['score'], record['name'], record['blob'], record['tags'], record['extra'])
