"""Round-trip properties of structs and of the bare codecs (FORMAT.md §2-§5), with hypothesis.

Each test states one property over generated values of every supported type: what is packed
reads back (floats bit for bit), whatever the buffer, the offset, the alignment or the binary
version, and packing touches nothing outside the bytes it reports.  The expected encodings
(struct codes, value ranges, RTTI typecodes) are written out here from FORMAT.md rather than
imported from the library, so that a test never agrees with a bug by construction.
"""
import datetime
import decimal
import functools
import math
import mmap
import random
import string
import struct

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import (
    BufferProxyObject, Schema, float32, float64, int8, int16, int32, int64, mapped_bytes,
    mapped_object, mapped_unicode, uint8, uint16, uint32, uint64)

PROPERTY = settings(max_examples=100, deadline=None)
FEW = settings(max_examples=30, deadline=None)          # parametrized tests and large values

# -- the format, as FORMAT.md states it -----------------------------------------------------

#: struct code of every fixed-size slot type (§2.1): ``int`` is int64, ``float`` is float64
SLOT_CODES = {uint8: 'B', int8: 'b', uint16: 'H', int16: 'h', uint32: 'I', int32: 'i',
              uint64: 'Q', int64: 'q', int: 'q', float32: 'f', float64: 'd', float: 'd', bool: '?'}
INTEGER_MARKERS = (uint8, int8, uint16, int16, uint32, int32, uint64, int64)
#: plain ints stored dynamically take the first code whose range holds them (§3.3)
INT_TYPECODE_ORDER = 'bBhHiIqQ'
HEADER_SIZE = 8             # two uint32 bitmaps: binary version 2, alignment 8, <= 32 slots (§5.2)
COMPRESSED_FLAG = 0x8000    # bit 15 of a bytes/str length header (§4.1)
LONG_FORM = 0x7FFF          # a length header of 0x7FFF (| flag) is followed by a uint64 length


def integer_range(code):
    """Inclusive (low, high) of a struct integer code."""
    bits = 8 * struct.calcsize('=' + code)
    if code.islower():
        return -(1 << bits - 1), (1 << bits - 1) - 1
    return 0, (1 << bits) - 1


def expected_int_typecode(number):
    for code in INT_TYPECODE_ORDER:
        low, high = integer_range(code)
        if low <= number <= high:
            return code
    raise AssertionError('%d has no RTTI typecode' % number)


def rtti_record_size(code):
    """A fixed-size RTTI value is the code byte and the value, padded to 8 bytes (§3.1)."""
    return (1 + struct.calcsize('=' + code) + 7) // 8 * 8


def float_bits(number):
    return struct.pack('=d', number)


def as_float32(number):
    return struct.unpack('=f', struct.pack('=f', number))[0]


def length_header(buffer, offset=0):
    """(u16 header, stored length) of the bytes/str value at ``offset``."""
    header = struct.unpack_from('=H', buffer, offset)[0]
    if header & LONG_FORM == LONG_FORM:
        return header, struct.unpack_from('=Q', buffer, offset + 2)[0]
    return header, header & LONG_FORM


# -- classes and schemas ------------------------------------------------------------------

class Record:
    """A plain object holding the attributes it was given; the others stay absent."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join('%s=%r' % item for item in vars(self).items()))


class Inner(Record):
    """Registered (process-wide) under 0xA0: a slot type and a dynamic value."""
    __slot_types__ = {'number': int16, 'label': str, 'ratio': float}


INNER_TYPECODE = 0xA0
INNER_SCHEMA = Schema.from_typed_slots(Inner)
mapped_object.register_schema(Inner, INNER_SCHEMA, INNER_TYPECODE)
SCHEMAS_OF_REGISTERED = {Inner: INNER_SCHEMA}


class Everything(Record):
    """Every supported slot type once (17 slots: 32-bit bitmaps in both binary versions)."""
    __slot_types__ = {
        'u8': uint8, 'i8': int8, 'u16': uint16, 'i16': int16, 'u32': uint32, 'i32': int32,
        'u64': uint64, 'i64': int64, 'integer': int, 'f32': float32, 'f64': float64, 'real': float,
        'flag': bool, 'text': str, 'data': bytes, 'anything': object, 'inner': Inner,
    }


class Small(Record):
    """At most 8 slots, so version 1 and small alignments get 8- and 16-bit bitmaps."""
    __slot_types__ = {'tiny': int8, 'short': int16, 'real': float, 'flag': bool, 'text': str,
                      'anything': object, 'inner': Inner}


class Outer(Record):
    __slot_types__ = {'inner': Inner, 'anything': object, 'count': uint32}


EVERYTHING = Schema.from_typed_slots(Everything)
OUTER = Schema.from_typed_slots(Outer)


@functools.lru_cache(maxsize=None)
def single_slot_schema(slot_type):
    return Schema({'value': slot_type})


@functools.lru_cache(maxsize=None)
def schema_with(cls, alignment, version):
    return Schema(cls.__slot_types__, alignment=alignment, version=version)


# -- comparing what was packed with what reads back -----------------------------------------

class _Absent:
    def __repr__(self):
        return '<absent>'


ABSENT = _Absent()


def canonical(value):
    """A type-strict, comparable form of a value or a proxy: floats by their bits (all NaNs alike)."""
    if value is None or value is ABSENT:
        return value
    if isinstance(value, bool):
        return ('bool', value)
    if isinstance(value, int):
        return ('int', int(value))
    if isinstance(value, float):
        return ('nan',) if math.isnan(value) else ('float', float_bits(value))
    if isinstance(value, (str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, BufferProxyObject):
        return ('struct', snapshot(value, type(value)._proxy_schema))
    return ('struct', snapshot(value, SCHEMAS_OF_REGISTERED[type(value)]))


def snapshot(obj, schema):
    """Every slot of ``obj`` in canonical form, ``ABSENT`` for the missing ones."""
    return tuple((name, canonical(getattr(obj, name, ABSENT))) for name in schema.slot_keys)


def room_for(value):
    """More bytes than any encoding of ``value`` takes, headers and padding included."""
    if isinstance(value, str):
        return 64 + 4 * len(value)
    if isinstance(value, bytes):
        return 64 + len(value)
    if isinstance(value, Record):
        return 64 + sum(room_for(attribute) for attribute in vars(value).values())
    return 64


def round_trip(slot_type, value):
    """The proxy of a one-slot struct holding ``value``."""
    schema = single_slot_schema(slot_type)
    return schema.unpack_from(schema.pack(Record(value=value)), 0)


# -- strategies ---------------------------------------------------------------------------

def integers_in(low, high):
    """Any int of [low, high]; the bounds, their neighbours and -1/0/1 come up often."""
    edges = sorted({low, low + 1, high - 1, high} | {n for n in (-1, 0, 1) if low <= n <= high})
    return st.sampled_from(edges) | st.integers(low, high)


ALL_RTTI_INTS = (-(1 << 63), (1 << 64) - 1)
INT_TYPECODE_EDGES = sorted(
    {edge + delta for code in INT_TYPECODE_ORDER for edge in integer_range(code) for delta in (-1, 0, 1)
     if ALL_RTTI_INTS[0] <= edge + delta <= ALL_RTTI_INTS[1]})
SPECIAL_FLOATS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1.7976931348623157e308,
                  struct.unpack('=d', struct.pack('=Q', 0x7FF8000000000001))[0],    # NaN with a payload
                  struct.unpack('=d', struct.pack('=Q', 0xFFF8000000000000))[0]]    # negative NaN
SPECIAL_FLOAT32S = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.401298464324817e-45,   # smallest subnormal
                    1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38]

texts = st.text(st.characters(codec='utf-8'))        # any code point except lone surrogates
non_bmp_texts = st.text(st.characters(min_codepoint=0x10000, codec='utf-8')
                        | st.characters(codec='utf-8'), min_size=1)
float32_values = st.floats(width=32) | st.sampled_from(SPECIAL_FLOAT32S)
float64_values = st.floats() | st.sampled_from(SPECIAL_FLOATS)


def fixed_values(slot_type):
    if slot_type is bool:
        return st.booleans()
    code = SLOT_CODES[slot_type]
    if code == 'f':
        return float32_values
    if code == 'd':
        return float64_values
    return integers_in(*integer_range(code))


def instances(cls, values_of_slot):
    """Instances of ``cls`` whose every slot is, at random, absent, None or a value."""
    return st.fixed_dictionaries({
        name: st.just(ABSENT) | st.none() | values_of_slot(slot_type)
        for name, slot_type in cls.__slot_types__.items()
    }).map(lambda attributes: cls(**{name: value for name, value in attributes.items() if value is not ABSENT}))


def inner_slot_values(slot_type):
    return texts if slot_type is str else fixed_values(slot_type)


inner_instances = instances(Inner, inner_slot_values)
#: the dynamic values whose decoded form has the type they had when packed
plain_dynamic_values = st.one_of(
    st.sampled_from(INT_TYPECODE_EDGES) | st.integers(*ALL_RTTI_INTS),
    float64_values, st.booleans(), texts, st.binary(), inner_instances)
#: instances of the markers keep their width as RTTI code, and read back as plain int/float
marker_values = st.one_of(
    *[integers_in(*integer_range(SLOT_CODES[marker])).map(marker) for marker in INTEGER_MARKERS],
    float32_values.map(float32), float64_values.map(float64))
dynamic_values = plain_dynamic_values | marker_values


def slot_values(slot_type, dynamic=dynamic_values):
    if slot_type is str:
        return texts
    if slot_type is bytes:
        return st.binary()
    if slot_type is object:
        return dynamic
    if slot_type is Inner:
        return inner_instances
    return fixed_values(slot_type)


everything_instances = instances(Everything, slot_values)


def unshared(value):
    """``value`` with every str/bytes a distinct object, as the attributes of a proxy are.

    Strings of 16 or more characters are deduplicated by identity (FORMAT.md §5.5), so an
    object holding one string object in two slots packs differently from its proxy.
    """
    if isinstance(value, str):
        return value.encode('utf-8').decode('utf-8')
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    if isinstance(value, Record):
        return type(value)(**{name: unshared(attribute) for name, attribute in vars(value).items()})
    return value


#: instances whose proxies pack exactly like them: no marker instances in the object slot
#: (they read back as plain numbers), no string object shared by two slots
repackable_instances = instances(
    Everything, functools.partial(slot_values, dynamic=plain_dynamic_values)).map(unshared)
outer_instances = instances(Outer, slot_values)


def random_bytes(seed, size):
    return random.Random(seed).randbytes(size)


def random_ascii(seed, size):
    """Text that LZ4 cannot shrink by a third (few repeated 4-grams)."""
    return ''.join(random.Random(seed).choices(string.ascii_letters + string.digits, k=size))


@st.composite
def repetitive_texts(draw):
    """Text longer than 512 UTF-8 bytes made of one short unit repeated: LZ4 compresses it."""
    unit = draw(st.text(st.characters(codec='utf-8'), min_size=1, max_size=8))
    at_least = 512 // len(unit.encode('utf-8')) + 1
    return unit * draw(st.integers(at_least, at_least + 5000))


seeds = st.integers(0, 2 ** 32)


# -- fixed-size slots ---------------------------------------------------------------------

@pytest.mark.parametrize('slot_type', INTEGER_MARKERS + (int,), ids=lambda slot_type: slot_type.__name__)
@FEW
@given(data=st.data())
def test_every_integer_in_range_round_trips_through_a_slot_of_its_type(slot_type, data):
    code = SLOT_CODES[slot_type]
    number = data.draw(integers_in(*integer_range(code)), label='number')
    packed = single_slot_schema(slot_type).pack(Record(value=number))
    assert struct.unpack_from('=' + code, packed, HEADER_SIZE)[0] == number
    read = single_slot_schema(slot_type).unpack_from(packed, 0).value
    assert type(read) is int and read == number


@PROPERTY
@given(number=integers_in(-(1 << 63), (1 << 63) - 1))
def test_every_int64_round_trips_through_an_int_slot(number):
    read = round_trip(int, number).value
    assert type(read) is int and read == number


@pytest.mark.parametrize('slot_type', [float, float64], ids=['float', 'float64'])
@PROPERTY
@given(number=float64_values)
def test_every_float64_round_trips_bit_exactly_nan_payloads_included(slot_type, number):
    read = round_trip(slot_type, number).value
    assert type(read) is float
    assert float_bits(read) == float_bits(number)


@PROPERTY
@given(number=float32_values)
def test_every_float32_value_round_trips_bit_exactly_through_a_float32_slot(number):
    assert math.isnan(number) or as_float32(number) == number, 'the strategy makes float32 values'
    read = round_trip(float32, number).value
    assert type(read) is float
    if math.isnan(number):
        assert math.isnan(read)
    else:
        assert float_bits(read) == float_bits(number)


@given(flag=st.booleans())
def test_bool_slots_read_back_as_bool(flag):
    assert round_trip(bool, flag).value is flag


# -- str and bytes ------------------------------------------------------------------------

@PROPERTY
@given(text=texts)
def test_any_text_round_trips_through_a_str_slot(text):
    read = round_trip(str, text).value
    assert type(read) is str and read == text


@PROPERTY
@given(text=non_bmp_texts)
def test_text_beyond_the_basic_multilingual_plane_round_trips(text):
    assert round_trip(str, text).value == text


@FEW
@given(text=repetitive_texts())
def test_repetitive_text_longer_than_512_bytes_is_stored_compressed_and_round_trips(text):
    buffer = bytearray(room_for(text))
    mapped_unicode.pack_into(text, buffer, 0)
    header, _ = length_header(buffer)
    assert header & COMPRESSED_FLAG
    assert mapped_unicode.unpack_from(buffer, 0) == text
    assert round_trip(str, text).value == text


@FEW
@given(size=st.integers(LONG_FORM - 8, LONG_FORM + 8), seed=seeds)
def test_text_of_about_0x7fff_bytes_round_trips_with_the_long_header_from_0x7fff_on(size, seed):
    text = random_ascii(seed, size)
    buffer = bytearray(room_for(text))
    mapped_unicode.pack_into(text, buffer, 0)
    header, stored_length = length_header(buffer)
    assert not header & COMPRESSED_FLAG
    assert stored_length == size
    assert (header == LONG_FORM) == (size >= LONG_FORM)
    assert round_trip(str, text).value == text


@PROPERTY
@given(data=st.binary())
def test_any_bytes_round_trip_through_a_bytes_slot(data):
    read = round_trip(bytes, data).value
    assert type(read) is bytes and read == data


@FEW
@given(size=st.integers(LONG_FORM, LONG_FORM + 0x4000), seed=seeds)
def test_incompressible_bytes_longer_than_32767_round_trip_in_the_long_form(size, seed):
    data = random_bytes(seed, size)
    buffer = bytearray(room_for(data))
    mapped_bytes.pack_into(data, buffer, 0)
    assert length_header(buffer) == (LONG_FORM, size)
    assert round_trip(bytes, data).value == data


@FEW
@given(half=st.integers(LONG_FORM, 0xA000), seed=seeds)
def test_large_compressible_bytes_round_trip_compressed_in_the_long_form(half, seed):
    data = random_bytes(seed, half) * 2      # compresses to a little more than half: still > 0x7FFF
    buffer = bytearray(room_for(data))
    mapped_bytes.pack_into(data, buffer, 0)
    header, stored_length = length_header(buffer)
    assert header == LONG_FORM | COMPRESSED_FLAG
    assert stored_length < len(data)
    assert round_trip(bytes, data).value == data


@PROPERTY
@given(value=texts | st.binary(), offset=st.integers(0, 40))
def test_bare_str_and_bytes_round_trip_at_any_offset(value, offset):
    codec = mapped_unicode if isinstance(value, str) else mapped_bytes
    buffer = bytearray(offset + room_for(value))
    end = codec.pack_into(value, buffer, offset)
    assert not any(buffer[:offset]) and not any(buffer[end:])
    assert codec.unpack_from(buffer, offset) == value


# -- present, None and absent attributes -------------------------------------------------

@PROPERTY
@given(obj=everything_instances)
def test_any_mix_of_present_none_and_absent_attributes_round_trips(obj):
    proxy = EVERYTHING.unpack_from(EVERYTHING.pack(obj), 0)
    assert snapshot(proxy, EVERYTHING) == snapshot(obj, EVERYTHING)


@PROPERTY
@given(obj=everything_instances)
def test_absent_attributes_raise_attribute_error_and_none_reads_as_none(obj):
    proxy = EVERYTHING.unpack_from(EVERYTHING.pack(obj), 0)
    for name in EVERYTHING.slot_keys:
        if not hasattr(obj, name):
            assert not hasattr(proxy, name)
            with pytest.raises(AttributeError):
                getattr(proxy, name)
        elif getattr(obj, name) is None:
            assert getattr(proxy, name) is None


# -- object slots and RTTI ----------------------------------------------------------------

@PROPERTY
@given(value=dynamic_values)
def test_every_supported_dynamic_value_round_trips_through_an_object_slot(value):
    assert canonical(round_trip(object, value).value) == canonical(value)


@PROPERTY
@given(number=st.sampled_from(INT_TYPECODE_EDGES) | st.integers(*ALL_RTTI_INTS))
def test_plain_ints_are_wrapped_with_the_first_typecode_whose_range_holds_them(number):
    code = expected_int_typecode(number)
    buffer = bytearray(16)
    end = mapped_object.pack_into(number, buffer, 0)
    assert chr(buffer[0]) == code
    assert struct.unpack_from('=' + code, buffer, 1)[0] == number
    assert end == rtti_record_size(code)
    read = mapped_object.unpack_from(buffer, 0)
    assert type(read) is int and read == number


@PROPERTY
@given(value=marker_values)
def test_marker_instances_are_wrapped_with_their_own_typecode(value):
    code = SLOT_CODES[type(value)]
    buffer = bytearray(16)
    end = mapped_object.pack_into(value, buffer, 0)
    assert chr(buffer[0]) == code
    assert end == rtti_record_size(code)
    read = mapped_object.unpack_from(buffer, 0)
    if code in 'fd':
        assert type(read) is float
        assert math.isnan(read) if math.isnan(value) else float_bits(read) == float_bits(value)
    else:
        assert type(read) is int and read == value


@PROPERTY
@given(value=st.booleans() | float64_values | texts | st.binary())
def test_bools_floats_str_and_bytes_are_wrapped_with_their_typecodes(value):
    code = {bool: 'T', float: 'd', str: 'u', bytes: 's'}[type(value)]
    buffer = bytearray(room_for(value))
    end = mapped_object.pack_into(value, buffer, 0)
    assert chr(buffer[0]) == code
    if code in 'us':
        assert buffer[1:8] == bytes(7)
        bare = mapped_unicode if code == 'u' else mapped_bytes
        assert bare.unpack_from(buffer, 8) == value
    else:
        assert end == rtti_record_size('?' if code == 'T' else code)
    read = mapped_object.unpack_from(buffer, 0)
    assert canonical(read) == canonical(value)
    if code == 'd':
        assert float_bits(read) == float_bits(value)


@PROPERTY
@given(inner=inner_instances)
def test_registered_struct_values_are_wrapped_with_their_registered_typecode(inner):
    buffer = bytearray(room_for(inner))
    mapped_object.pack_into(inner, buffer, 0)
    assert buffer[0] == INNER_TYPECODE and buffer[1:8] == bytes(7)
    assert snapshot(INNER_SCHEMA.unpack_from(buffer, 8), INNER_SCHEMA) == snapshot(inner, INNER_SCHEMA)
    assert canonical(mapped_object.unpack_from(buffer, 0)) == canonical(inner)


# -- nested registered structs ----------------------------------------------------------

@PROPERTY
@given(outer=outer_instances)
def test_nested_registered_structs_round_trip_through_class_and_object_slots(outer):
    proxy = OUTER.unpack_from(OUTER.pack(outer), 0)
    assert snapshot(proxy, OUTER) == snapshot(outer, OUTER)
    if isinstance(getattr(outer, 'inner', None), Inner):
        assert isinstance(proxy.inner, BufferProxyObject)


# -- where and into what the bytes go -----------------------------------------------------

@PROPERTY
@given(obj=everything_instances,
       offset=st.integers(0, 64) | st.integers(0, 8).map(lambda words: 8 * words),
       tail=st.integers(0, 32), fill=st.sampled_from([0x00, 0xA5]))
def test_pack_into_at_any_offset_reads_back_and_leaves_the_rest_of_the_buffer_untouched(obj, offset, tail, fill):
    buffer = bytearray([fill]) * (offset + room_for(obj) + tail)
    end = EVERYTHING.pack_into(obj, buffer, offset)
    assert offset < end <= len(buffer)
    assert buffer[:offset] == bytes([fill]) * offset
    assert buffer[end:] == bytes([fill]) * (len(buffer) - end)
    assert snapshot(EVERYTHING.unpack_from(buffer, offset), EVERYTHING) == snapshot(obj, EVERYTHING)


@PROPERTY
@given(obj=everything_instances)
def test_bytes_bytearray_memoryviews_and_mmap_give_equal_proxies(obj):
    data = EVERYTHING.pack(obj)
    expected = snapshot(obj, EVERYTHING)
    with mmap.mmap(-1, len(data)) as mapped:
        mapped[:] = data
        buffers = {
            'bytes': data,
            'bytearray': bytearray(data),
            'read-only memoryview': memoryview(data),
            'writable memoryview': memoryview(bytearray(data)),
            'anonymous mmap': mapped,
        }
        for kind, buffer in buffers.items():
            assert snapshot(EVERYTHING.unpack_from(buffer, 0), EVERYTHING) == expected, kind


@PROPERTY
@given(obj=everything_instances)
def test_pack_returns_the_bytes_pack_into_writes_into_a_zero_buffer_at_offset_zero(obj):
    buffer = bytearray(room_for(obj))
    end = EVERYTHING.pack_into(obj, buffer, 0)
    assert EVERYTHING.pack(obj) == bytes(buffer[:end])


@PROPERTY
@given(obj=repackable_instances)
def test_packing_a_proxy_gives_the_bytes_of_packing_the_original(obj):
    data = EVERYTHING.pack(obj)
    assert EVERYTHING.pack(EVERYTHING.unpack_from(data, 0)) == data


@pytest.mark.parametrize('cls', [Small, Everything], ids=['8 slots', '17 slots'])
@pytest.mark.parametrize('version', [1, 2], ids=['v1', 'v2'])
@pytest.mark.parametrize('alignment', [1, 2, 4, 8, 16], ids='alignment={}'.format)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_every_alignment_and_binary_version_round_trips_to_a_multiple_of_the_alignment(
        cls, version, alignment, data):
    schema = schema_with(cls, alignment, version)
    obj = data.draw(instances(cls, slot_values), label='obj')
    packed = schema.pack(obj)
    assert len(packed) % alignment == 0
    assert snapshot(schema.unpack_from(packed, 0), schema) == snapshot(obj, schema)


# -- what this version cannot store yet ---------------------------------------------------

@pytest.mark.parametrize('value', [
    bytearray(b'ab'), complex(1, 2), object(),
], ids=lambda value: type(value).__name__)
def test_values_of_unsupported_types_in_an_object_slot_raise_type_error(value):
    with pytest.raises(TypeError):
        single_slot_schema(object).pack(Record(value=value))
