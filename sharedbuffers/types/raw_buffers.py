"""Raw buffers: memoryview values (FORMAT.md §4.3).

    u64 length, then the bytes (never compressed, no padding)

Reading gives a zero-copy ``memoryview`` of the underlying buffer, writable only when that
buffer is.  Any object with the buffer protocol can be stored (its raw bytes, C order).
"""
import struct

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec

__all__ = ['proxied_buffer', 'write_buffer', 'append_buffer', 'read_buffer']

_u64 = struct.Struct('=Q')


def append_buffer(value, context):
    """Append the raw bytes of any buffer-protocol object; return the logical position."""
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError('%s does not support the buffer protocol' % (type(value).__name__,)) from None
    with view:
        if not view.c_contiguous:
            raise ValueError('a non-contiguous buffer cannot be stored; copy it first')
        data = view.tobytes()
    position = context.origin + len(context.out)
    context.out += _u64.pack(len(data))
    context.out += data
    return position


# Buffers are never shared (1.x keys only values that cannot change under it).
write_buffer = append_buffer


def read_buffer(buffer, offset):
    """A memoryview of the raw bytes stored at ``offset`` (zero-copy)."""
    if offset < 0 or offset + 8 > len(buffer):
        raise out_of_bounds('buffer length', offset, 8, len(buffer))
    length = _u64.unpack_from(buffer, offset)[0]
    start = offset + 8
    if start + length > len(buffer):
        raise out_of_bounds('buffer data', start, length, len(buffer))
    return memoryview(buffer)[start:start + length]


@public
class proxied_buffer(VariableCodec):
    """Packer of raw buffers (RTTI code ``r``); reads back a zero-copy memoryview."""
    typecode = b'r'
    python_types = (memoryview,)
    write = staticmethod(write_buffer)
    read = staticmethod(read_buffer)
