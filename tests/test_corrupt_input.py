"""Corrupt and truncated buffers give ValueError or IndexError, never another exception.

Every reader validates the sizes and offsets it takes from the data before it uses them
(STYLE.md), and says which offset was bad.  Those checks must be real code, not ``assert``
statements: run-tests.sh also runs this file under ``python -O``, and
``test_bounds_checks_still_hold_under_python_dash_o`` runs corrupt reads in an ``-O``
subprocess itself.  For the same reason the key checks below are ``pytest.raises`` and
explicit ``pytest.fail`` calls rather than bare asserts.
"""
import gc
import mmap
import os
import random
import re
import struct
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

import sharedbuffers
from sharedbuffers.mapped_struct import (
    BufferProxyObject, Schema, float32, float64, int8, int16, int32, int64, mapped_bytes,
    mapped_object, mapped_unicode, uint8, uint16, uint32, uint64)

CLEAN_ERRORS = (ValueError, IndexError)
FUZZ = settings(max_examples=200, deadline=None)
HEADER_SIZE = 8             # two uint32 bitmaps: binary version 2, alignment 8, <= 32 slots
MAX_DEPTH = 6               # nested structs may point at each other: read only this deep


class Record:
    """A plain object holding the attributes it was given."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


class Part(Record):
    """Registered (process-wide) under 0xA1, for nested and dynamic structs."""
    __slot_types__ = {'number': int32, 'name': str, 'anything': object}


PART_TYPECODE = 0xA1
PART_SCHEMA = Schema.from_typed_slots(Part)
mapped_object.register_schema(Part, PART_SCHEMA, PART_TYPECODE)


class Everything(Record):
    __slot_types__ = {
        'u8': uint8, 'i8': int8, 'u16': uint16, 'i16': int16, 'u32': uint32, 'i32': int32,
        'u64': uint64, 'i64': int64, 'integer': int, 'f32': float32, 'f64': float64, 'real': float,
        'flag': bool, 'none': int, 'text': str, 'compressed_text': str, 'data': bytes, 'long_data': bytes,
        'anything': object, 'dynamic_text': object, 'part': Part,
    }


EVERYTHING = Schema.from_typed_slots(Everything)
TEXT_SCHEMA = Schema({'value': str})
BYTES_SCHEMA = Schema({'value': bytes})
OBJECT_SCHEMA = Schema({'value': object})
PART_SLOT_SCHEMA = Schema({'value': Part})


def everything(long_data=b'', none=None):
    """An instance with every slot type filled; ``long_data`` can make it big."""
    return Everything(
        u8=255, i8=-128, u16=65535, i16=-32768, u32=2 ** 32 - 1, i32=-2 ** 31, u64=2 ** 64 - 1,
        i64=-2 ** 63, integer=12345, f32=1.5, f64=-0.25, real=1e300, flag=True, none=none,
        text='hé \U0001F600', compressed_text='compressible ' * 60, data=b'\x00\xff\x7f',
        long_data=long_data, anything=Part(number=-7, name='dynamic part', anything=2 ** 40),
        dynamic_text='x' * 20, part=Part(number=42, name='nested', anything=float32(0.5)))


LONG_DATA = random.Random(1).randbytes(0x7FFF + 5)     # incompressible: the 10-byte length header
#: Packed samples.  Structs with every attribute present and not None are read by a fast path
#: of their own, so each sample comes with one None attribute and without.
COMPLETE = {
    'one None': EVERYTHING.pack(everything(long_data=LONG_DATA)),
    'all present': EVERYTHING.pack(everything(long_data=LONG_DATA, none=7)),
}
#: no long value, so that random damage lands in headers and pointers often
COMPACT = {'one None': EVERYTHING.pack(everything()), 'all present': EVERYTHING.pack(everything(none=7))}


def read_all(value, depth=0):
    """Decode ``value`` completely: every attribute of a proxy, recursively; returns plain data."""
    if not isinstance(value, BufferProxyObject):
        return value
    if depth >= MAX_DEPTH:
        return '...'
    return {name: read_all(getattr(value, name, '<absent>'), depth + 1)
            for name in type(value)._proxy_schema.slot_keys}


def outcome(read, *args):
    """The clean error ``read(*args)`` raised, or None; any other exception fails the test.

    An IndexError must say at which offset the read went out of the buffer.
    """
    try:
        read(*args)
    except CLEAN_ERRORS as error:
        if isinstance(error, IndexError) and not re.search(r'offset -?\d+', str(error)):
            pytest.fail('IndexError without the offending offset: %s' % (error,))
        return error
    except Exception as error:
        pytest.fail('%s raised %s instead of ValueError/IndexError: %s'
                    % (getattr(read, '__name__', read), type(error).__name__, error))
    return None


def expect_clean_error(expected, read, *args):
    """Run ``read(*args)``: it must raise ``expected`` (a clean error type); return the error."""
    error = outcome(read, *args)
    if not isinstance(error, expected):
        pytest.fail('expected %s, got %r' % (expected.__name__, error))
    return error


def read_struct(schema, buffer, offset=0):
    return read_all(schema.unpack_from(buffer, offset))


def read_everything(buffer, offset=0):
    return read_struct(EVERYTHING, buffer, offset)


def read_object(buffer, offset=0):
    return read_all(mapped_object.unpack_from(buffer, offset))


def read_bytes(buffer, offset=0):
    return mapped_bytes.unpack_from(buffer, offset)


def read_text(buffer, offset=0):
    return mapped_unicode.unpack_from(buffer, offset)


READERS = [read_everything, read_object, read_bytes, read_text]


def packed_at(schema, value, offset, size=256):
    """A zero buffer of ``size`` bytes with a ``Record(value=value)`` struct at ``offset``."""
    buffer = bytearray(size)
    schema.pack_into(Record(value=value), buffer, offset)
    return buffer


def packed_value(codec, value):
    """The bytes ``codec.pack_into`` writes for ``value`` at offset 0."""
    buffer = bytearray(len(value) + 64)
    end = codec.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


def with_bytes_at(buffer, offset, data):
    damaged = bytearray(buffer)
    damaged[offset:offset + len(data)] = data
    return bytes(damaged)


# -- truncation -------------------------------------------------------------------------

BUFFER_KINDS = {'bytes': bytes, 'bytearray': bytearray, 'memoryview': memoryview}


@pytest.mark.parametrize('sample', COMPLETE)
@pytest.mark.parametrize('make_buffer', BUFFER_KINDS.values(), ids=BUFFER_KINDS.keys())
def test_every_truncation_of_a_struct_raises_cleanly_or_reads_the_original_values(make_buffer, sample):
    packed = COMPLETE[sample]
    expected = read_everything(packed)
    last_padding = EVERYTHING.alignment - 1
    for length in range(len(packed)):
        buffer = make_buffer(packed[:length])
        if outcome(read_everything, buffer) is not None:
            continue
        if length < len(packed) - last_padding:
            pytest.fail('truncated to %d of %d bytes, the struct still read without error'
                        % (length, len(packed)))
        if read_everything(buffer) != expected:
            pytest.fail('truncated to %d bytes, the struct read different values' % (length,))


def test_every_truncation_of_an_rtti_struct_raises_cleanly():
    buffer = bytearray(256)
    end = mapped_object.pack_into(Part(number=1, name='part', anything='text'), buffer, 0)
    for length in range(end - PART_SCHEMA.alignment):
        if outcome(read_object, bytes(buffer[:length])) is None:
            pytest.fail('truncated to %d of %d bytes, the value still read without error' % (length, end))


# -- generated damage -------------------------------------------------------------------

@st.composite
def damaged(draw, data):
    """``data`` with a few bytes xor-ed with non-zero masks."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(buffer) - 1))
        buffer[position] ^= draw(st.integers(1, 255))
    return bytes(buffer)


@st.composite
def valid_everything_headers(draw):
    """Bitmaps that pass the header check (no stray bits), followed by anything."""
    slot_mask = (1 << len(EVERYTHING.slot_keys)) - 1
    has = draw(st.integers(0, slot_mask))
    none = draw(st.integers(0, slot_mask)) & has
    return struct.pack('=II', has, none) + draw(st.binary(max_size=300))


@st.composite
def typecode_then_garbage(draw):
    """A known RTTI typecode (or the registered Part code), 7 padding bytes, anything."""
    code = draw(st.sampled_from(b'BbHhIiQqdfTsu' + bytes([PART_TYPECODE])))
    return bytes([code]) + bytes(7) + draw(st.binary(max_size=200))


@pytest.mark.parametrize('sample', COMPACT)
@FUZZ
@given(data=st.data())
def test_flipped_bytes_in_a_packed_struct_give_only_clean_errors(sample, data):
    outcome(read_everything, data.draw(damaged(COMPACT[sample]), label='buffer'))


@pytest.mark.parametrize('sample', COMPLETE)
@FUZZ
@given(data=st.data())
def test_flipped_bytes_in_the_first_bytes_of_a_large_struct_give_only_clean_errors(sample, data):
    packed = COMPLETE[sample]
    start = data.draw(damaged(packed[:256]), label='first 256 bytes')
    outcome(read_everything, start + packed[256:])


@FUZZ
@given(buffer=valid_everything_headers())
def test_garbage_behind_a_valid_struct_header_gives_only_clean_errors(buffer):
    outcome(read_everything, buffer)


@FUZZ
@given(buffer=typecode_then_garbage())
def test_garbage_behind_a_valid_typecode_gives_only_clean_errors(buffer):
    outcome(read_object, buffer)


@pytest.mark.parametrize('read', READERS, ids=lambda read: read.__name__)
@FUZZ
@given(data=st.data())
def test_random_garbage_at_any_offset_gives_only_clean_errors(read, data):
    buffer = data.draw(st.binary(max_size=300), label='buffer')
    offset = data.draw(st.integers(-8, len(buffer) + 8), label='offset')
    outcome(read, buffer, offset)


COMPRESSED_VALUE = packed_value(mapped_bytes, b'abcdefgh' * 200 + bytes(range(256)))


@pytest.mark.parametrize('read', [read_bytes, read_text], ids=lambda read: read.__name__)
@FUZZ
@given(buffer=damaged(COMPRESSED_VALUE))
def test_damaged_compressed_values_give_only_clean_errors(read, buffer):
    outcome(read, buffer)


# -- specific damage --------------------------------------------------------------------

@pytest.mark.parametrize('read', [read_bytes, read_text], ids=lambda read: read.__name__)
@pytest.mark.parametrize('encoded', [
    b'\x10\x00abc',                                                  # short form claims 16 bytes
    b'\xff\x7f' + struct.pack('=Q', 2 ** 40) + b'abc',                # long form claims 1 TiB
    b'\xff\x7f' + struct.pack('=Q', 2 ** 64 - 1) + b'abc',            # long form claims 2**64-1
    b'\xff\x7f\x01\x00',                                              # long form, length cut short
    b'\x05',                                                          # header cut short
], ids=['short form', 'long form', 'long form 2**64-1', 'cut length', 'cut header'])
def test_a_length_header_claiming_more_than_the_buffer_holds_raises_index_error(read, encoded):
    expect_clean_error(IndexError, read, encoded)


def test_a_str_slot_whose_header_claims_more_than_the_buffer_holds_raises_index_error():
    buffer = packed_at(TEXT_SCHEMA, 'abc', 0, size=24)
    value_offset = struct.unpack_from('=q', buffer, HEADER_SIZE)[0]    # the struct is at 0
    damaged_buffer = with_bytes_at(buffer, value_offset, struct.pack('=H', 100))
    expect_clean_error(IndexError, read_struct, TEXT_SCHEMA, damaged_buffer)


SLOT_SCHEMAS = {'str': (TEXT_SCHEMA, 'text'), 'bytes': (BYTES_SCHEMA, b'data'),
                'object': (OBJECT_SCHEMA, 'dynamic'), 'registered class': (PART_SLOT_SCHEMA, Part(number=1))}
STRUCT_OFFSET = 16


@pytest.mark.parametrize('slot', SLOT_SCHEMAS, ids=str)
@pytest.mark.parametrize('pointer', [
    -STRUCT_OFFSET - 8, -STRUCT_OFFSET - 1, 256 - STRUCT_OFFSET, 10 ** 6, 2 ** 63 - 1, -2 ** 63,
], ids=['8 before the buffer', '1 before the buffer', 'at the end', 'far past the end',
        'int64 max', 'int64 min'])
def test_a_pointer_outside_the_buffer_raises_index_error_naming_the_offset(slot, pointer):
    schema, value = SLOT_SCHEMAS[slot]
    buffer = packed_at(schema, value, STRUCT_OFFSET, size=256)
    pointer_offset = STRUCT_OFFSET + HEADER_SIZE
    if struct.unpack_from('=q', buffer, pointer_offset)[0] != HEADER_SIZE + 8:
        pytest.fail('layout changed: the value no longer follows the one-slot struct')
    damaged_buffer = with_bytes_at(buffer, pointer_offset, struct.pack('=q', pointer))
    error = expect_clean_error(IndexError, read_struct, schema, damaged_buffer, STRUCT_OFFSET)
    target = STRUCT_OFFSET + pointer
    if str(target) not in str(error) and str(target + 8) not in str(error):   # +8: past an RTTI header
        pytest.fail('the message does not name offset %d: %s' % (target, error))


@pytest.mark.parametrize('version', [1, 2])
@pytest.mark.parametrize('stray_bit', [1, 7])
def test_a_has_bit_beyond_the_slot_count_raises_value_error(version, stray_bit):
    schema = Schema({'value': int8}, version=version)
    header_format = '=' + schema.bitmap_format * 2
    buffer = struct.pack(header_format, 1 | 1 << stray_bit, 0) + bytes(8)
    expect_clean_error(ValueError, read_struct, schema, buffer)


def test_a_has_bit_beyond_the_slot_count_raises_value_error_in_wide_bitmaps():
    buffer = struct.pack('=II', 1 << 31, 0) + bytes(64)
    expect_clean_error(ValueError, read_everything, buffer)


@pytest.mark.parametrize('has, none', [(0, 1), (1, 3), (0b01, 0b10)])
def test_a_none_bit_without_its_has_bit_raises_value_error(has, none):
    schema = Schema({'first': int8, 'second': int8})
    expect_clean_error(ValueError, read_struct, schema, struct.pack('=II', has, none) + bytes(8))


def compressed_claiming(claimed_size, stored=b'\x00' * 8):
    """A compressed bytes value whose LZ4 size prefix claims ``claimed_size`` bytes."""
    payload = claimed_size.to_bytes(4, 'little') + stored
    return struct.pack('=H', len(payload) | 0x8000) + payload


@pytest.mark.parametrize('read', [read_bytes, read_text], ids=lambda read: read.__name__)
@pytest.mark.parametrize('claimed_size', [2 ** 31, 2 ** 32 - 1], ids=['2 GiB', '4 GiB'])
def test_a_compressed_value_claiming_gigabytes_fails_fast_without_allocating_them(read, claimed_size):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        expect_clean_error(ValueError, read, compressed_claiming(claimed_size))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if elapsed > 0.5 or peak > 16 * 2 ** 20:
        pytest.fail('refusing the value took %.2f s and %d bytes' % (elapsed, peak))


def test_a_compressed_value_claiming_gigabytes_in_a_str_slot_fails_fast():
    buffer = packed_at(TEXT_SCHEMA, 'abc', 0, size=64)
    damaged_buffer = with_bytes_at(buffer, HEADER_SIZE + 8, compressed_claiming(2 ** 31))
    started = time.perf_counter()
    expect_clean_error(ValueError, read_struct, TEXT_SCHEMA, damaged_buffer)
    if time.perf_counter() - started > 0.5:
        pytest.fail('refusing the value took too long')


@pytest.mark.parametrize('read', [read_bytes, read_text], ids=lambda read: read.__name__)
def test_compressed_data_that_does_not_decompress_to_its_claimed_size_raises_value_error(read):
    expect_clean_error(ValueError, read, compressed_claiming(1000, stored=b'\xff' * 16))


@pytest.mark.parametrize('invalid', [b'\xff\xfe', b'\xed\xa0\x80', b'ab\xe2\x82', b'\xc0\xaf'],
                         ids=['not utf-8', 'encoded surrogate', 'cut sequence', 'overlong'])
def test_invalid_utf8_in_a_str_slot_raises_value_error(invalid):
    buffer = packed_at(TEXT_SCHEMA, 'x' * len(invalid), 0, size=64)
    damaged_buffer = with_bytes_at(buffer, HEADER_SIZE + 8 + 2, invalid)
    expect_clean_error(ValueError, read_struct, TEXT_SCHEMA, damaged_buffer)


def test_invalid_utf8_in_a_compressed_str_value_raises_value_error():
    buffer = bytearray(4096)
    end = mapped_bytes.pack_into(b'\xff' * 2000, buffer, 0)
    if not struct.unpack_from('=H', buffer, 0)[0] & 0x8000:
        pytest.fail('the value was expected to be compressed')
    expect_clean_error(ValueError, read_text, bytes(buffer[:end]))


@pytest.mark.parametrize('code', [0x00, 0x01, 0x7F, ord('o'), ord('e'), ord('m')],
                         ids=['0x00', '0x01', '0x7f', "'o'", "'e' (list of typecode 0)", "'m' (dict, index in header)"])
def test_an_unknown_typecode_or_an_inconsistent_header_raises_value_error(code):
    buffer = bytes([code]) + bytes(31)
    expect_clean_error(ValueError, read_object, buffer)


def test_an_unknown_typecode_in_an_object_slot_raises_value_error():
    buffer = packed_at(OBJECT_SCHEMA, 5, 0, size=32)
    damaged_buffer = with_bytes_at(buffer, HEADER_SIZE + 8, b'\x00')
    expect_clean_error(ValueError, read_struct, OBJECT_SCHEMA, damaged_buffer)


@pytest.mark.parametrize('encoded', [b'q\x01\x02\x03', b'd', b'T', bytes([PART_TYPECODE]) + bytes(7)],
                         ids=['cut int64', 'no float64', 'no bool', 'no struct'])
def test_a_cut_dynamic_value_raises_index_error(encoded):
    expect_clean_error(IndexError, read_object, encoded)


def read_one_slot_struct(buffer, offset=0):
    return read_struct(TEXT_SCHEMA, buffer, offset)


def read_part(buffer, offset=0):
    return read_struct(PART_SCHEMA, buffer, offset)


ALL_READERS = READERS + [read_one_slot_struct, read_part]


@pytest.mark.parametrize('read', ALL_READERS, ids=lambda read: read.__name__)
@pytest.mark.parametrize('offset', [-1, -8, -len(COMPACT['one None'])], ids=['-1', '-8', '-len'])
def test_a_negative_offset_raises_index_error_naming_it(read, offset):
    error = expect_clean_error(IndexError, read, COMPACT['one None'], offset)
    if str(offset) not in str(error):
        pytest.fail('the message does not name offset %d: %s' % (offset, error))


@pytest.mark.parametrize('read', ALL_READERS, ids=lambda read: read.__name__)
@pytest.mark.parametrize('past_end', [0, 1, 1000, 2 ** 63], ids=['at the end', '1 past', '1000 past', '2**63 past'])
def test_an_offset_beyond_the_end_raises_index_error_naming_it(read, past_end):
    buffer = COMPACT['all present']
    offset = len(buffer) + past_end
    error = expect_clean_error(IndexError, read, buffer, offset)
    if str(offset) not in str(error):
        pytest.fail('the message does not name offset %d: %s' % (offset, error))


def test_a_pointer_past_the_end_of_an_mmap_raises_index_error():
    packed = packed_at(TEXT_SCHEMA, 'text', 0, size=32)
    with mmap.mmap(-1, len(packed)) as mapped:
        mapped[:] = with_bytes_at(packed, HEADER_SIZE, struct.pack('=q', 10 ** 6))
        expect_clean_error(IndexError, read_struct, TEXT_SCHEMA, mapped)
        # A proxy over a writable mmap exports its buffer (so mmap.close() refuses while it
        # lives); the returned error's traceback cycle still holds one until collected.
        gc.collect()


# -- the checks are code, not asserts ---------------------------------------------------

OPTIMIZED_SCRIPT = r'''
import struct, sys
if __debug__:
    sys.exit('not running under -O')
from sharedbuffers.mapped_struct import Schema, mapped_object, mapped_unicode

schema = Schema({'text': str})
cases = {
    'length beyond the buffer': lambda: mapped_unicode.unpack_from(b'\x10\x00abc', 0),
    'pointer before the buffer': lambda: schema.unpack_from(struct.pack('=IIq', 1, 0, -64), 0).text,
    'pointer past the end': lambda: schema.unpack_from(struct.pack('=IIq', 1, 0, 4096), 0).text,
    'stray has bit': lambda: schema.unpack_from(struct.pack('=II', 2, 0), 0),
    'none without has': lambda: schema.unpack_from(struct.pack('=II', 0, 1), 0),
    'empty buffer': lambda: schema.unpack_from(b'', 0),
    'negative offset': lambda: schema.unpack_from(bytes(16), -1),
    'unknown typecode': lambda: mapped_object.unpack_from(bytes(8), 0),
    'cut dynamic value': lambda: mapped_object.unpack_from(b'q\x01', 0),
    'LZ4 claims 2 GiB': lambda: mapped_unicode.unpack_from(
        struct.pack('=H', 0x800c) + (2 ** 31).to_bytes(4, 'little') + bytes(8), 0),
}
for name, case in cases.items():
    try:
        case()
    except (ValueError, IndexError):
        continue
    except Exception as error:
        sys.exit('%s: %s raised: %s' % (name, type(error).__name__, error))
    sys.exit('%s: nothing raised' % (name,))
print('%d corrupt reads refused' % len(cases))
'''


def test_bounds_checks_still_hold_under_python_dash_o():
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sharedbuffers.__file__)))
    environment = dict(os.environ)
    environment['PYTHONPATH'] = os.pathsep.join(filter(None, [package_root, environment.get('PYTHONPATH')]))
    result = subprocess.run([sys.executable, '-O', '-c', OPTIMIZED_SCRIPT], env=environment,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or 'corrupt reads refused' not in result.stdout:
        pytest.fail('python -O run failed (exit %d):\n%s%s' % (result.returncode, result.stdout, result.stderr))
