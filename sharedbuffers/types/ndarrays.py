"""numpy arrays (FORMAT.md §4.9).

    u64 dtype offset, u64 data offset        both relative to this header
    [shape]                                  a sequence of ints at +16, when ndim != 1
    dtype descriptor                         RTTI: a small int for the 10 standard dtypes,
                                             ``dtype.str`` for others, [(name, sub), ...] for
                                             structured dtypes
    raw data                                 a §4.3 buffer of the array's bytes, C order

Reading gives a zero-copy array over the buffer, writable only when the buffer is.
Arrays of any layout are stored in C order; object arrays cannot be stored (their bytes
are pointers) and raise TypeError.

numpy is imported by the functions that read and write arrays, not with this module: a
process that never meets an array never pays for numpy (see ``numpy_in_use``).
"""
import struct

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec, rtti
from .raw_buffers import append_buffer
from .sequences import read_sequence, write_sequence

__all__ = ['proxied_ndarray', 'write_ndarray', 'read_ndarray',
           'NDARRAY_STANDARD_CODES_TO_DTYPE', 'NDARRAY_STANDARD_DTYPES_TO_CODE']

NDARRAY_STANDARD_CODES_TO_DTYPE = ('<u8', '<i8', '<u4', '<i4', '<u2', '<i2', '|u1', '|i1', '<f8', '<f4')
NDARRAY_STANDARD_DTYPES_TO_CODE = {name: code for code, name in enumerate(NDARRAY_STANDARD_CODES_TO_DTYPE)}
_HEADER = struct.Struct('=qq')
_u64 = struct.Struct('=Q')
_NO_SHAPE = 16


def _descriptor(dtype, nested=False):
    """The value 1.x stores for a dtype (nested standard names stay strings)."""
    if dtype.fields is not None and dtype.names:
        return [(name, _descriptor(dtype.fields[name][0], nested=True)) for name in dtype.names]
    if dtype.subdtype is not None:
        return dtype.str if not nested else [dtype.descr[0][1], list(dtype.shape)]
    name = dtype.str
    if not nested and name in NDARRAY_STANDARD_DTYPES_TO_CODE:
        return NDARRAY_STANDARD_DTYPES_TO_CODE[name]
    return name


def _dtype_from(descriptor, offset):
    import numpy
    try:
        if isinstance(descriptor, int) and not isinstance(descriptor, bool):
            return numpy.dtype(NDARRAY_STANDARD_CODES_TO_DTYPE[descriptor])
        if isinstance(descriptor, (list, tuple)):
            return numpy.dtype([(str(name), _dtype_from(sub, offset)) for name, sub in descriptor])
        if isinstance(descriptor, str):
            dtype = numpy.dtype(descriptor)
            if dtype.hasobject:
                raise TypeError
            return dtype
    except (IndexError, TypeError, ValueError):
        pass
    raise ValueError('array at offset %d has an invalid dtype descriptor %r' % (offset, descriptor))


def write_ndarray(value, context):
    """Append a numpy array; return its logical position."""
    import numpy
    write_object = rtti().write_object
    if not isinstance(value, numpy.ndarray):
        raise TypeError('expected numpy.ndarray, got %s' % type(value).__name__)
    if value.dtype.hasobject:
        raise TypeError('arrays of Python objects cannot be stored (their bytes are pointers)')
    out = context.out
    start = len(out)
    position = context.origin + start
    out += bytes(16)
    if value.ndim != 1:
        write_sequence(list(value.shape), context)
    dtype_position = write_object(_descriptor(value.dtype), context.with_fresh_idmap())
    data_position = append_buffer(numpy.ascontiguousarray(value), context)
    _HEADER.pack_into(out, start, dtype_position - position, data_position - position)
    return position


def read_ndarray(buffer, offset):
    """A zero-copy array over the data stored at ``offset``."""
    import numpy
    read_object = rtti().read_object
    if offset < 0 or offset + 16 > len(buffer):
        raise out_of_bounds('array header', offset, 16, len(buffer))
    dtype_offset, data_offset = _HEADER.unpack_from(buffer, offset)
    shape = None
    if dtype_offset != _NO_SHAPE and data_offset != _NO_SHAPE:
        shape = tuple(read_sequence(buffer, offset + _NO_SHAPE))
        if any(type(size) is not int or size < 0 for size in shape):
            raise ValueError('array at offset %d has an invalid shape %r' % (offset, shape))
    dtype = _dtype_from(read_object(buffer, offset + dtype_offset), offset)
    start = offset + data_offset
    if start < 0 or start + 8 > len(buffer):
        raise out_of_bounds('array data length', start, 8, len(buffer))
    length = _u64.unpack_from(buffer, start)[0]
    if start + 8 + length > len(buffer):
        raise out_of_bounds('array data', start + 8, length, len(buffer))
    count = length // dtype.itemsize if dtype.itemsize else 0
    expected = dtype.itemsize
    for size in shape or (count,):
        expected *= size
    if expected != length:
        raise ValueError('array at offset %d holds %d bytes, but its shape and dtype need %d'
                         % (offset, length, expected))
    array = numpy.frombuffer(buffer, dtype=dtype, count=count, offset=start + 8)
    return array.reshape(shape) if shape is not None else array


@public
class proxied_ndarray(VariableCodec):
    """Packer of numpy arrays (RTTI code ``n``); reads back a zero-copy array.

    Its Python type, ``numpy.ndarray``, joins the RTTI and slot-type tables when numpy is
    imported (``numpy_in_use.ndarray_class``), so it has no ``python_types`` of its own.
    """
    typecode = b'n'
    write = staticmethod(write_ndarray)
    read = staticmethod(read_ndarray)
