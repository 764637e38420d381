"""pack / pack_into / unpack_from / unpack over every kind of buffer."""
import mmap

import pytest

from sharedbuffers.mapped_struct import Schema, float32, int8, uint16


class Record:
    __slot_types__ = {'id': int, 'score': float, 'ratio': float32, 'code': uint16, 'small': int8,
                      'name': str, 'blob': bytes, 'flag': bool, 'anything': object}

    def __init__(self, **attributes):
        for name, value in attributes.items():
            setattr(self, name, value)


SCHEMA = Schema.from_typed_slots(Record)
VALUES = dict(id=-(2 ** 40), score=2.75, ratio=0.5, code=65535, small=-128, name='héllo wörld',
              blob=b'\x00\xff' * 10, flag=True, anything='dynamic')


def _check(proxy):
    for name, value in VALUES.items():
        assert getattr(proxy, name) == value


def test_pack_returns_bytes_that_unpack_to_the_same_values():
    data = SCHEMA.pack(Record(**VALUES))
    assert type(data) is bytes
    _check(SCHEMA.unpack_from(data))
    _check(SCHEMA.unpack(data))


def test_pack_into_at_an_offset_returns_the_end_offset():
    buffer = bytearray(500)
    end = SCHEMA.pack_into(Record(**VALUES), buffer, 40)
    assert end == 40 + len(SCHEMA.pack(Record(**VALUES)))
    assert buffer[:40] == bytes(40) and buffer[end:] == bytes(500 - end)
    _check(SCHEMA.unpack_from(buffer, 40))


def test_pack_into_a_too_small_buffer_raises_and_writes_nothing():
    buffer = bytearray(20)
    with pytest.raises(IndexError, match='needs'):
        SCHEMA.pack_into(Record(**VALUES), buffer, 0)
    assert buffer == bytearray(20)


@pytest.mark.parametrize('make', [
    bytes, bytearray, memoryview, lambda data: memoryview(bytearray(data)),
    lambda data: memoryview(data).cast('c'),
], ids=['bytes', 'bytearray', 'memoryview', 'writable-memoryview', 'char-memoryview'])
def test_unpack_from_reads_every_buffer_kind(make):
    data = SCHEMA.pack(Record(**VALUES))
    _check(SCHEMA.unpack_from(make(b'\x00' * 8 + data), 8))


@pytest.mark.parametrize('access', [mmap.ACCESS_READ, mmap.ACCESS_WRITE])
def test_unpack_from_reads_mmaps(tmp_path, access):
    data = SCHEMA.pack(Record(**VALUES))
    path = tmp_path / 'record.bin'
    path.write_bytes(data)
    with open(path, 'r+b') as f:
        mapping = mmap.mmap(f.fileno(), 0, access=access)
        proxy = SCHEMA.unpack_from(mapping, 0)
        _check(proxy)
        del proxy


def test_pack_into_an_mmap(tmp_path):
    mapping = mmap.mmap(-1, 4096)
    end = SCHEMA.pack_into(Record(**VALUES), mapping, 16)
    assert end > 16
    _check(SCHEMA.unpack_from(mapping, 16))


def test_padding_is_written_as_zeros():
    buffer = bytearray(b'\xee' * 200)
    end = SCHEMA.pack_into(Record(id=1, name='a'), buffer, 0)
    assert bytes(buffer[:end]) == SCHEMA.pack(Record(id=1, name='a'))
    assert b'\xee' not in buffer[:end]


def test_missing_and_none_attributes_take_no_space():
    full = SCHEMA.pack(Record(**VALUES))
    sparse = SCHEMA.pack(Record(id=None, name='x'))
    assert len(sparse) < len(full)
    proxy = SCHEMA.unpack_from(sparse)
    assert proxy.id is None and proxy.name == 'x'
    assert not hasattr(proxy, 'blob')


def test_an_object_with_no_attributes_packs_to_a_bare_header():
    assert SCHEMA.pack(Record()) == bytes(8)


@pytest.mark.parametrize('name, value, error, message', [
    ('id', 'seven', TypeError, 'Record.id: expected int, got str'),
    ('id', 2 ** 63, OverflowError, 'Record.id'),
    ('code', -1, OverflowError, 'Record.code: -1 is out of range for uint16'),
    ('small', 128, OverflowError, 'Record.small'),
    ('score', 'x', TypeError, 'Record.score: expected float'),
    ('ratio', 1e300, OverflowError, 'Record.ratio'),
    ('name', b'bytes', TypeError, 'Record.name: expected str, got bytes'),
    ('blob', 'text', TypeError, 'Record.blob: expected bytes, got str'),
    ('name', '\ud800', ValueError, 'Record.name: str value cannot be stored as UTF-8'),
    ('anything', bytearray(b'x'), TypeError, 'Record.anything: cannot store a value of type builtins.bytearray'),
    ('anything', object(), TypeError, 'Record.anything: cannot store a value of type builtins.object'),
])
def test_bad_values_raise_errors_naming_the_attribute(name, value, error, message):
    with pytest.raises(error, match=message.replace('.', r'\.').replace('(', r'\(')):
        SCHEMA.pack(Record(**{name: value}))


def test_a_failed_pack_into_leaves_the_buffer_untouched():
    buffer = bytearray(300)
    with pytest.raises(TypeError):
        SCHEMA.pack_into(Record(id=1, name='ok', blob='not bytes'), buffer, 0)
    assert buffer == bytearray(300)


def test_bytes_slots_accept_bytearray_and_memoryview_and_read_back_bytes():
    proxy = SCHEMA.unpack_from(SCHEMA.pack(Record(blob=bytearray(b'ab'))))
    assert proxy.blob == b'ab' and type(proxy.blob) is bytes
    assert SCHEMA.unpack_from(SCHEMA.pack(Record(blob=memoryview(b'cd')))).blob == b'cd'


def test_max_pack_buffer_size_is_enforced():
    schema = Schema({'blob': bytes}, max_pack_buffer_size=64)

    class Big:
        blob = bytes(range(256)) * 4
    with pytest.raises(ValueError, match='max_pack_buffer_size=64'):
        schema.pack(Big())


def test_pack_accepts_any_object_with_the_attributes():
    class Duck:
        id = 5

        @property
        def name(self):
            return 'computed'
    proxy = SCHEMA.unpack_from(SCHEMA.pack(Duck()))
    assert proxy.id == 5 and proxy.name == 'computed'


def test_write_hooks_run_around_pack_into():
    calls = []
    schema = Schema({'a': int})
    schema.set_prewrite_hook(lambda obj, buf, offset: calls.append(('pre', offset)))
    schema.set_postwrite_hook(lambda obj, buf, start, end: calls.append(('post', start, end)))
    schema.pack_into(Record(a=1), bytearray(64), 8)
    assert calls == [('pre', 8), ('post', 8, 24)]
