"""Buffer records: how a storage keeps a buffer-typed attribute's format and shape.

The ``proxied_buffer`` codec keeps only the bytes of a buffer.  A storage attribute declared
``memoryview`` (or ``proxied_buffer``) must read back with the format, item size and shape it
was assigned with, so the storage writes this record instead::

    +0   u64  data offset, from the record start (a multiple of 16)
    +8   u64  data length in bytes
    +16  u64  item size
    +24  u32  number of dimensions (at most 64)
    +28  u16  format length
    +30  u16  dtype descriptor length: 0 when ``memoryview.cast`` reads the format
    +32  shape: one u64 per dimension
    ...  format (ASCII, PEP 3118), then the dtype descriptor (ASCII: a Python literal of
         ``numpy.lib.format.dtype_to_descr``, as in ``.npy`` headers, read with
         ``ast.literal_eval``)
    ...  zeros up to the data offset, then the data in C order

Reading gives a memoryview over the data (zero-copy): ``memoryview.cast(format, shape)``
for the native single-character formats, and numpy's view of the descriptor's dtype for
the others (structured, explicit byte order...), whose format is numpy's rendering.
"""
import ast
import struct

import numpy
import numpy.lib.format

from .buffers import out_of_bounds

__all__ = ['write_buffer_record', 'read_buffer_record', 'MAX_DIMENSIONS']

MAX_DIMENSIONS = 64
_HEADER = struct.Struct('=QQQIHH')
_CASTABLE = frozenset('cbB?hHiIlLqQnNfdP')      # what memoryview.cast accepts (3.10+)


def _native_format(format):
    """The single character of a native format memoryview.cast reads, or None."""
    if format.startswith('@'):
        format = format[1:]
    return format if len(format) == 1 and format in _CASTABLE else None


def _dtype_descriptor(value, view):
    try:
        dtype = value.dtype if isinstance(value, numpy.ndarray) else numpy.asarray(view).dtype
    except (ValueError, TypeError, RuntimeError, NotImplementedError):
        dtype = None
    if dtype is None or dtype.hasobject or dtype.itemsize != view.itemsize:
        raise TypeError('a buffer of format %r cannot be stored: neither memoryview nor numpy reads it'
                        % (view.format,))
    return repr(numpy.lib.format.dtype_to_descr(dtype)).encode('ascii')


def write_buffer_record(value, context):
    """Append the buffer record of ``value`` (any buffer-protocol object); return its position."""
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError('%s does not support the buffer protocol' % (type(value).__name__,)) from None
    with view:
        format = view.format
        descriptor = b''
        if _native_format(format) is None or 0 in view.shape:
            descriptor = _dtype_descriptor(value, view)
        if isinstance(value, numpy.ndarray):
            data = numpy.ascontiguousarray(value).tobytes()
        else:
            data = view.tobytes()
        shape = view.shape
        itemsize = view.itemsize
    format_bytes = format.encode('ascii', 'replace')
    if len(format_bytes) > 0xFFFF or len(descriptor) > 0xFFFF:
        raise TypeError('the format of this buffer is too long to be stored (%d characters)' % len(format_bytes))
    out = context.out
    position = context.origin + len(out)
    head = _HEADER.size + 8 * len(shape) + len(format_bytes) + len(descriptor)
    data_offset = (head + 15) // 16 * 16
    out += _HEADER.pack(data_offset, len(data), itemsize, len(shape), len(format_bytes), len(descriptor))
    out += struct.pack('=%dQ' % len(shape), *shape)
    out += format_bytes
    out += descriptor
    out += bytes(data_offset - head)
    out += data
    return position


def _ascii(view, start, length, what, offset):
    try:
        return bytes(view[start:start + length]).decode('ascii')
    except UnicodeDecodeError:
        raise ValueError('buffer record at offset %d: its %s is not ASCII' % (offset, what)) from None


def read_buffer_record(view, offset):
    """A memoryview of the buffer stored at ``offset`` of ``view`` (a byte memoryview)."""
    size = len(view)
    if offset < 0 or offset + _HEADER.size > size:
        raise out_of_bounds('buffer record', offset, _HEADER.size, size)
    data_offset, length, itemsize, ndim, format_length, descriptor_length = _HEADER.unpack_from(view, offset)
    if ndim > MAX_DIMENSIONS:
        raise ValueError('buffer record at offset %d claims %d dimensions (at most %d)'
                         % (offset, ndim, MAX_DIMENSIONS))
    position = offset + _HEADER.size
    head = position + 8 * ndim + format_length + descriptor_length
    if head > size:
        raise out_of_bounds('buffer record header', offset, head - offset, size)
    shape = struct.unpack_from('=%dQ' % ndim, view, position)
    position += 8 * ndim
    format = _ascii(view, position, format_length, 'format', offset)
    descriptor = _ascii(view, position + format_length, descriptor_length, 'dtype descriptor', offset)
    start = offset + data_offset
    if start < head or start + length > size:
        raise out_of_bounds('buffer data', start, length, size)
    count = 1
    for extent in shape:
        count *= extent
    if count * itemsize != length:
        raise ValueError('buffer record at offset %d holds %d bytes, but shape %r of %d-byte items needs %d'
                         % (offset, length, shape, itemsize, count * itemsize))
    region = view[start:start + length]
    if not descriptor:
        native = _native_format(format)
        if native is None or struct.calcsize(native) != itemsize:
            raise ValueError('buffer record at offset %d: format %r with %d-byte items needs a dtype descriptor'
                             % (offset, format, itemsize))
        return region.cast(native, shape)
    try:
        dtype = numpy.lib.format.descr_to_dtype(ast.literal_eval(descriptor))
    except (ValueError, TypeError, SyntaxError, KeyError, IndexError, MemoryError, RecursionError):
        raise ValueError('buffer record at offset %d has an invalid dtype descriptor %r'
                         % (offset, descriptor)) from None
    if dtype.itemsize != itemsize or dtype.hasobject:
        raise ValueError('buffer record at offset %d: dtype %s does not match its %d-byte items'
                         % (offset, dtype, itemsize))
    return memoryview(numpy.frombuffer(region, dtype).reshape(shape))
