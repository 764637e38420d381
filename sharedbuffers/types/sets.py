"""frozenset and set values (FORMAT.md §4.5).

Forms, by content:

* plain ints in 0..55 (the empty set included): ``m`` + a 7-byte bitmap;
* plain ints in 0..119: ``M`` + a 15-byte bitmap (element x is bit x % 8 of byte x // 8);
* other plain ints: the sorted values as a numeric sequence (§4.4); all floats likewise;
* anything else: a pointer table sorted by stable hash (ties keep the set's order), so that
  membership can be tested by binary search on the hash without decoding everything.

Sets read back as ``frozenset``.
"""
import collections.abc

from .. import _native
from .._facade import public
from ..buffers import out_of_bounds
from ..stable_hash import stable_hash
from .base import VariableCodec
from .sequences import append_encoded, read_sequence, write_sequence

__all__ = ['mapped_frozenset', 'write_set', 'read_set']

_INT_ONLY = {int}
_FLOAT_ONLY = {float}
_BITS_OF_BYTE = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))
_BITMAP_CODES = b'mM'
_SMALL_BITMAP = 56
_LARGE_BITMAP = 120


def _bitmap(items, length):
    bits = 0
    for item in items:
        bits |= 1 << item
    return bits.to_bytes(length, 'little')


def write_set(value, context):
    """Append a set (or a 1-d numpy array, as its unique values); return its logical position."""
    native = _native.objects
    if native is not None:
        encoded = native.encode_set(value)          # the int cases below, in one call
        if encoded is not None:     # bitmaps are not padded, sequences are
            return append_encoded(encoded, context, padded=encoded[0] not in _BITMAP_CODES)
    kind = type(value)
    if kind is frozenset or kind is set:
        items = list(value)
    elif hasattr(value, 'dtype'):
        import numpy
        items = numpy.unique(value)
        if items.dtype.kind in 'iu' and (not len(items) or (items[0] >= 0 and items[-1] < _LARGE_BITMAP)):
            items = items.tolist()
        else:
            return write_sequence(items, context)
    elif isinstance(value, (set, frozenset, collections.abc.Set)):
        items = list(value)
    else:
        raise TypeError('expected a set or frozenset, got %s' % type(value).__name__)
    position = context.origin + len(context.out)
    kinds = set(map(type, items))
    if not items or kinds == _INT_ONLY:
        if not items or (min(items) >= 0 and max(items) < _LARGE_BITMAP):
            if not items or max(items) < _SMALL_BITMAP:
                context.out += b'm' + _bitmap(items, 7)
            else:
                context.out += b'M' + _bitmap(items, 15)
            return position
        return write_sequence(sorted(items), context)
    if kinds == _FLOAT_ONLY:
        return write_sequence(sorted(items), context)
    return write_sequence(sorted(items, key=stable_hash), context)


def read_set(buffer, offset):
    """The frozenset stored at ``offset``."""
    if offset < 0 or offset >= len(buffer):
        raise out_of_bounds('set', offset, 1, len(buffer))
    code = buffer[offset]
    if type(code) is not int:
        code = code[0]
    if code == ord('m') or code == ord('M'):
        length = 7 if code == ord('m') else 15
        if offset + 1 + length > len(buffer):
            raise out_of_bounds('set bitmap', offset, 1 + length, len(buffer))
        members = []
        for byte_index, byte in enumerate(bytes(buffer[offset + 1:offset + 1 + length])):
            if byte:
                base = byte_index * 8
                members.extend(base + bit for bit in _BITS_OF_BYTE[byte])
        return frozenset(members)
    return frozenset(read_sequence(buffer, offset))


@public
class mapped_frozenset(VariableCodec):
    """Packer of ``frozenset``/``set`` values (RTTI code ``Z``); reads back a frozenset."""
    typecode = b'Z'
    python_types = (frozenset, set)
    write = staticmethod(write_set)
    read = staticmethod(read_set)
