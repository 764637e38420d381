"""Sequences: list and tuple values (FORMAT.md §4.4).

Layout: one typecode byte, the length, then either a packed numeric array or a table of
relative pointers to RTTI-wrapped elements::

    [B b H h i I][length: 3 bytes]          narrow ints, 4-byte header (length < 0xFFFFFF)
    [B b H h i I][ff ff ff][pad][u64 length] long form: only read (1.x could not write it)
    [q Q d f][length: 7 bytes]              wide numbers, 8-byte header
    [T|t][length: 7 bytes][int32|int64 pointer per element][pad][elements...]

Pointers are relative to the sequence header; ``1`` stands for None.  A numeric array is
followed by padding to a multiple of 8 counted on absolute buffer positions.

Writer's choice (what 1.x writes, so files stay byte-identical): all plain ints take the
first fitting code of ``B b H h i I q Q`` (``i`` before ``I``); all floats take ``d``;
anything else, ints that fit no single code included (1.x raised there), becomes a pointer
table, narrow (``T``) unless a pointer needs 64 bits or the destination is bigger than
2 GiB.  Lists of 16,777,215 or more narrow ints use the 8-byte-header codes instead of the
long form, which 1.x could not write and whose readers disagreed.
"""
import struct
import sys

from .. import _native
from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec, rtti

__all__ = ['mapped_list', 'mapped_tuple', 'write_sequence', 'read_sequence', 'sequence_layout']

_SHORT_CODES = frozenset(b'BbHhiI')
_ITEM_SIZES = {ord(code): struct.calcsize('=' + code) for code in 'BbHhiIqQdf'}
_INT_RANGES = [  # first match wins (FORMAT.md §4.4)
    (b'B', 0, 0xFF), (b'b', -0x80, 0x7F), (b'H', 0, 0xFFFF), (b'h', -0x8000, 0x7FFF),
    (b'i', -0x80000000, 0x7FFFFFFF), (b'I', 0, 0xFFFFFFFF),
    (b'q', -0x8000000000000000, 0x7FFFFFFFFFFFFFFF), (b'Q', 0, 0xFFFFFFFFFFFFFFFF),
]
_WIDENED = {b'B': b'q', b'b': b'q', b'H': b'q', b'h': b'q', b'i': b'q', b'I': b'q'}
_INT_ONLY = {int}
_FLOAT_ONLY = {float}
_UINT8 = ord('B')
_LONG_LENGTH = 0xFFFFFF
_NONE_POINTER = 1
_NARROW_LIMIT = 0x7FFFFFFF
_NUMPY_CODES = {'l': b'q', 'q': b'q', 'L': b'Q', 'Q': b'Q', 'I': b'I', 'i': b'i', 'H': b'H', 'h': b'h',
                'B': b'B', 'b': b'b', 'd': b'd', 'f': b'f'}
_NATIVE_ORDER = '<' if sys.byteorder == 'little' else '>'
_unpack_u32 = struct.Struct('=I').unpack_from
_unpack_u64 = struct.Struct('=Q').unpack_from


def _numeric_code(items):
    """The array typecode for ``items`` (a list), or None when they need a pointer table."""
    kinds = set(map(type, items))
    if not items or kinds == _INT_ONLY:
        low, high = (min(items), max(items)) if items else (0, 0)
        for code, code_low, code_high in _INT_RANGES:
            if code_low <= low and high <= code_high:
                return code
        return None
    if kinds == _FLOAT_ONLY:
        return b'd'
    return None


def _header(code, length):
    if code[0] in _SHORT_CODES:
        return code + length.to_bytes(3, 'little')
    return code + length.to_bytes(7, 'little')


def pad_to_8(context):
    """Zero bytes up to the next multiple of 8 of the absolute position."""
    gap = (context.base + len(context.out)) % 8
    if gap:
        context.out += bytes(8 - gap)




def append_encoded(encoded, context, padded):
    """Append bytes a C encoder made (padded to 8 after, when ``padded``); their position."""
    position = context.origin + len(context.out)
    context.out += encoded
    if padded:
        pad_to_8(context)
    return position


def write_sequence(value, context):
    """Append a list/tuple (or a 1-d numpy array); return its logical position."""
    native = _native.objects
    if native is not None:
        encoded = native.encode_sequence(value)     # the numeric cases below, in one call
        if encoded is not None:
            return append_encoded(encoded, context, padded=True)
    numpy_code = None
    if not isinstance(value, (list, tuple)):
        numpy_code = _numpy_array_code(value)
        if numpy_code is None:
            value = _as_items(value)
    out = context.out
    position = context.origin + len(out)
    if numpy_code is not None:
        code, data = numpy_code
        if code[0] in _SHORT_CODES and len(value) >= _LONG_LENGTH:
            raise ValueError('numpy arrays of %d or more %r items need a wide dtype (int64)' % (_LONG_LENGTH, code))
        out += _header(code, len(value))
        out += data
        pad_to_8(context)
        return position
    items = value if isinstance(value, list) else list(value)
    code = _numeric_code(items)
    if code is not None:
        if code == b'B' and len(items) < _LONG_LENGTH:
            out += b'B' + len(items).to_bytes(3, 'little')
            out += bytes(items)             # every item is in 0..255: packed in C
        else:
            if code[0] in _SHORT_CODES and len(items) >= _LONG_LENGTH:
                code = _WIDENED[code]
            out += _header(code, len(items))
            out += struct.pack('=%d%s' % (len(items), code.decode()), *items)
        pad_to_8(context)
        return position
    return _write_pointer_table(items, context)


def _write_pointer_table(items, context):
    write_object = rtti().write_object
    out = context.out
    start = len(out)
    header_position = context.origin + start
    count = len(items)
    known = _known_pointers(items, context, header_position)
    capacity = context.capacity
    narrow = (all(-0x80000000 <= pointer <= _NARROW_LIMIT for pointer in known if pointer is not None)
              and (capacity is None or capacity - (context.base + start) <= _NARROW_LIMIT))
    if narrow:
        out += _header(b'T', count)
        out += bytes(4 * count)
        pad_to_8(context)
    else:
        out += _header(b't', count)
        out += bytes(8 * count)
    data_start = len(out)
    pointers = []
    for item in items:
        if item is None:
            pointers.append(_NONE_POINTER)
        else:
            pointers.append(write_object(item, context) - header_position)
    if narrow and not all(-0x80000000 <= pointer <= _NARROW_LIMIT for pointer in pointers):
        raise OverflowError('a sequence element lies more than 2 GiB away from its sequence')
    if not narrow and len(out) == data_start and all(-0x80000000 <= p <= _NARROW_LIMIT for p in pointers):
        del out[start:]                          # nothing written: 1.x shrinks to the narrow form
        out += _header(b'T', count)
        out += bytes(4 * count)
        pad_to_8(context)
        narrow = True
    index_format = '=%di' % count if narrow else '=%dq' % count
    struct.pack_into(index_format, out, start + 8, *pointers)
    return header_position


def _known_pointers(items, context, header_position):
    """Pointers of elements already written (1.x's pre-scan decides the table width on them)."""
    known_position = rtti().known_position
    pointers = []
    for item in items:
        position = known_position(item, context) if item is not None else None
        pointers.append(None if position is None else position - header_position)
    return pointers


def _numpy_array_code(value):
    """(typecode, raw bytes) of a numpy array stored as a numeric array, or None."""
    dtype = getattr(value, 'dtype', None)
    if dtype is None or getattr(value, 'ndim', None) != 1:
        return None
    code = _NUMPY_CODES.get(dtype.char)
    if code is None or dtype.byteorder not in ('=', '|', _NATIVE_ORDER):
        return None
    return code, value.tobytes()


def _as_items(value):
    """The elements of any other iterable, as Python objects (numpy arrays through tolist)."""
    tolist = getattr(value, 'tolist', None)
    items = tolist() if tolist is not None else list(value)
    if not isinstance(items, list):
        raise TypeError('expected a sequence, got %s' % type(value).__name__)
    return items


def sequence_layout(buffer, offset):
    """(typecode byte, length, data offset) of the sequence at ``offset``; bounds checked."""
    size = len(buffer)
    if offset < 0 or offset + 4 > size:
        raise out_of_bounds('sequence header', offset, 4, size)
    code = buffer[offset]
    if type(code) is not int:
        code = code[0]
    if code in _SHORT_CODES:
        length = _unpack_u32(buffer, offset)[0] >> 8
        data = offset + 4
        if length == _LONG_LENGTH:                      # the long form (read only)
            if offset + 12 > size:
                raise out_of_bounds('sequence length', offset + 4, 8, size)
            length = _unpack_u64(buffer, offset + 4)[0]
            data = offset + 12
    elif code in b'qQdfTt':
        if offset + 8 > size:
            raise out_of_bounds('sequence header', offset, 8, size)
        length = _unpack_u64(buffer, offset)[0] >> 8
        data = offset + 8
    else:
        raise ValueError('unknown sequence typecode 0x%02x at offset %d' % (code, offset))
    item_size = 4 if code == ord('T') else 8 if code == ord('t') else _ITEM_SIZES[code]
    if data + length * item_size > size:
        raise out_of_bounds('sequence of %d items' % length, data, length * item_size, size)
    return code, length, data


def read_sequence(buffer, offset):
    """The elements of the sequence at ``offset`` as a list."""
    code, length, data = sequence_layout(buffer, offset)
    if code == ord('T') or code == ord('t'):
        read_object = rtti().read_object
        pointers = struct.unpack_from('=%d%s' % (length, 'i' if code == ord('T') else 'q'), buffer, data)
        items = []
        seen = {}
        for pointer in pointers:
            if pointer == _NONE_POINTER:
                items.append(None)
                continue
            target = offset + pointer
            item = seen.get(target, seen)
            if item is seen:
                item = seen[target] = read_object(buffer, target)
            items.append(item)
        return items
    if code == _UINT8:
        return list(bytes(buffer[data:data + length]))     # the common small-int list, in C
    if length == 0:
        return []
    return list(struct.unpack_from('=%d%s' % (length, chr(code)), buffer, data))


@public
class mapped_list(VariableCodec):
    """Packer of ``list`` values (RTTI code ``e``); reads back a new list."""
    typecode = b'e'
    python_types = (list,)
    write = staticmethod(write_sequence)
    read = staticmethod(read_sequence)


def _read_tuple(buffer, offset):
    return tuple(read_sequence(buffer, offset))


@public
class mapped_tuple(VariableCodec):
    """Packer of ``tuple`` values (RTTI code ``t``); reads back a tuple."""
    typecode = b't'
    python_types = (tuple,)
    write = staticmethod(write_sequence)
    read = staticmethod(_read_tuple)
