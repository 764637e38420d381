"""bytes and str values (FORMAT.md §4.1, §4.2).

Layout::

    u16 header = length | C                 when length < 0x7FFF
    u16 0x7FFF | C, u64 length              otherwise (10-byte header)
    length bytes of data                    no terminator, no padding

``C`` (0x8000) marks LZ4-block-compressed data, 4-byte size prefix included.  A value is
compressed only when it is longer than 512 bytes and compression saves at least a third;
python-lz4's default block compressor is liblz4's, so 1.x files are reproduced byte for byte.
str is the same encoding of its UTF-8 bytes.
"""
import struct

import lz4.block

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec

__all__ = ['mapped_bytes', 'mapped_unicode', 'encode_payload', 'read_bytes', 'read_str',
           'write_bytes', 'write_str']

COMPRESSION_THRESHOLD = 512
COMPRESSED_FLAG = 0x8000
LONG_LENGTH = 0x7FFF
# LZ4 cannot expand data by more than 255:1; a size prefix claiming more is corrupt, and
# trusting it would let a 10-byte value allocate gigabytes.
_LZ4_MAX_RATIO = 255
# Strings shorter than this are deduplicated by value, longer ones by identity (1.x's rule).
SHORT_VALUE = 16

_unpack_u16 = struct.Struct('=H').unpack_from
_unpack_u64 = struct.Struct('=Q').unpack_from
_pack_u16 = struct.Struct('=H').pack
_pack_long_header = struct.Struct('=HQ').pack
_compress = lz4.block.compress
_decompress = lz4.block.decompress


def encode_payload(data):
    """Header plus (possibly compressed) data for ``data`` (a bytes object)."""
    length = len(data)
    flag = 0
    if length > COMPRESSION_THRESHOLD:
        compressed = _compress(data)
        if len(compressed) < length - length // 3:
            data = compressed
            length = len(compressed)
            flag = COMPRESSED_FLAG
    if length < LONG_LENGTH:
        return _pack_u16(length | flag) + data
    return _pack_long_header(LONG_LENGTH | flag, length) + data


def write_bytes(value, context):
    """Append a bytes value (deduplicated) and return its logical position."""
    if type(value) is not bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError('expected bytes, got %s' % type(value).__name__)
        value = bytes(value)
    idmap = context.idmap
    if len(value) < SHORT_VALUE:
        position = idmap.get(value)
        if position is None:
            position = idmap[value] = context.origin + len(context.out)
            context.out += encode_payload(value)
        return position
    entry = idmap.get(id(value))
    if entry is not None:
        return entry[0]
    position = context.origin + len(context.out)
    idmap[id(value)] = (position, value)
    context.out += encode_payload(value)
    return position


def write_str(value, context):
    """Append a str value as UTF-8 (deduplicated) and return its logical position."""
    if type(value) is not str:
        if not isinstance(value, str):
            raise TypeError('expected str, got %s' % type(value).__name__)
        value = str(value)
    idmap = context.idmap
    short = len(value) < SHORT_VALUE
    if short:
        position = idmap.get(value)
        if position is not None:
            return position
    else:
        entry = idmap.get(id(value))
        if entry is not None:
            return entry[0]
    try:
        data = value.encode('utf-8')
    except UnicodeEncodeError as error:
        raise ValueError('str value cannot be stored as UTF-8 (%s)' % (error.reason,)) from None
    position = context.origin + len(context.out)
    if short:
        idmap[value] = position
    else:
        idmap[id(value)] = (position, value)
    context.out += encode_payload(data)
    return position


def read_bytes(buffer, offset):
    """Decode the bytes value at ``offset`` (absolute) of ``buffer``."""
    size = len(buffer)
    if offset < 0 or offset + 2 > size:
        raise out_of_bounds('bytes header', offset, 2, size)
    header = _unpack_u16(buffer, offset)[0]
    start = offset + 2
    length = header & LONG_LENGTH
    if length == LONG_LENGTH:
        if start + 8 > size:
            raise out_of_bounds('bytes length', start, 8, size)
        length = _unpack_u64(buffer, start)[0]
        start += 8
    end = start + length
    if end > size:
        raise out_of_bounds('bytes data', start, length, size)
    data = bytes(buffer[start:end])
    if header & COMPRESSED_FLAG:
        data = _inflate(data, offset)
    return data


def _inflate(data, offset):
    if len(data) < 4:
        raise ValueError('compressed bytes value at offset %d is too short (%d bytes)' % (offset, len(data)))
    claimed = int.from_bytes(data[:4], 'little')
    if claimed > _LZ4_MAX_RATIO * len(data) + 64:
        raise ValueError('compressed bytes value at offset %d claims %d bytes from %d: corrupt'
                         % (offset, claimed, len(data)))
    try:
        return _decompress(data)
    except Exception as error:  # lz4.block.LZ4BlockError and friends
        raise ValueError('compressed bytes value at offset %d is corrupt: %s' % (offset, error)) from None


def read_str(buffer, offset):
    """Decode the str value at ``offset`` (absolute) of ``buffer``."""
    data = read_bytes(buffer, offset)
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as error:
        raise ValueError('str value at offset %d is not valid UTF-8 (%s)' % (offset, error.reason)) from None


@public
class mapped_bytes(VariableCodec):
    """Packer of ``bytes`` values (RTTI code ``s``)."""
    typecode = b's'
    python_types = (bytes,)
    write = staticmethod(write_bytes)
    read = staticmethod(read_bytes)


@public
class mapped_unicode(VariableCodec):
    """Packer of ``str`` values, stored as UTF-8 (RTTI code ``u``)."""
    typecode = b'u'
    python_types = (str,)
    write = staticmethod(write_str)
    read = staticmethod(read_str)
