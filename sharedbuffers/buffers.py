"""What every reader needs to know about the buffer it was given.

Readers accept ``bytes``, ``bytearray``, ``memoryview`` (of any byte format) and ``mmap``
objects, read-only or writable.  Every offset taken from the data is checked against the
buffer's size before use: Python slicing clamps silently and ``struct`` counts negative
offsets from the end, so neither is a bounds check on its own.
"""
import struct

__all__ = ['as_byte_buffer', 'is_writable', 'out_of_bounds']


def as_byte_buffer(buffer):
    """``buffer`` itself when it can be sliced and sized in bytes, else a byte memoryview of it."""
    kind = type(buffer)
    if kind is bytes or kind is bytearray:
        return buffer
    if kind is memoryview:
        if buffer.ndim == 1 and buffer.itemsize == 1 and buffer.format in ('B', 'b', 'c'):
            return buffer
        if not buffer.c_contiguous:
            raise TypeError('a non-contiguous buffer cannot hold packed data')
        return buffer.cast('B')
    try:
        len(buffer)
        buffer[0:0]
        struct.unpack_from('=B', buffer, 0) if len(buffer) else None
        return buffer          # mmap and friends
    except (TypeError, struct.error):
        view = memoryview(buffer)
        return view if view.ndim == 1 and view.itemsize == 1 else view.cast('B')


def is_writable(buffer):
    """True when values can be written into ``buffer`` in place."""
    kind = type(buffer)
    if kind is bytes:
        return False
    if kind is bytearray:
        return True
    if kind is memoryview:
        return not buffer.readonly
    try:
        with memoryview(buffer) as view:
            return not view.readonly
    except TypeError:
        return False


def out_of_bounds(what, offset, size, buffer_size):
    """The IndexError for ``size`` bytes of ``what`` at ``offset`` outside a buffer of ``buffer_size``."""
    return IndexError('%s at offset %d (%d bytes) is outside the buffer (%d bytes): truncated or corrupt data'
                      % (what, offset, size, buffer_size))

