"""Decimal values (FORMAT.md §4.8).

    int64 (exponent << 1) | sign, then the digits as a sequence of small ints (a ``B`` array)

int, float and str inputs are converted (a float gives its exact binary expansion, as in
1.x).  NaN and infinities have no exponent, so they cannot be stored: ValueError (1.x raised
an obscure TypeError).
"""
import decimal
import struct

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec
from .sequences import read_sequence, write_sequence

__all__ = ['mapped_decimal', 'write_decimal', 'read_decimal', 'append_decimal']

_int64 = struct.Struct('=q')


def write_decimal(value, context):
    """Append a Decimal (shared by identity); return its logical position."""
    entry = context.idmap.get(id(value))
    if entry is not None:
        return entry[0]
    return append_decimal(value, context)


def append_decimal(value, context):
    """Append a Decimal's payload unconditionally (it is remembered for later slots)."""
    if not isinstance(value, decimal.Decimal):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError('expected Decimal, got %s' % type(value).__name__)
        try:
            value = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError('%r is not a decimal number' % (value,)) from None
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError('Decimal %s cannot be stored: NaN and infinities have no digits and exponent' % (value,))
    position = context.origin + len(context.out)
    context.idmap[id(value)] = (position, value)
    try:
        context.out += _int64.pack((exponent << 1) | sign)
    except struct.error:
        raise ValueError('Decimal %s has an exponent out of the storable range' % (value,)) from None
    write_sequence(list(digits), context)
    return position


def read_decimal(buffer, offset):
    """The Decimal stored at ``offset``."""
    if offset < 0 or offset + 8 > len(buffer):
        raise out_of_bounds('Decimal', offset, 8, len(buffer))
    header = _int64.unpack_from(buffer, offset)[0]
    digits = read_sequence(buffer, offset + 8)
    try:
        return decimal.Decimal((header & 1, tuple(digits), header >> 1))
    except (ValueError, TypeError, ArithmeticError):      # InvalidOperation: an absurd exponent
        raise ValueError('Decimal at offset %d has invalid digits or exponent: corrupt' % (offset,)) from None


@public
class mapped_decimal(VariableCodec):
    """Packer of ``Decimal`` values (RTTI code ``F``)."""
    typecode = b'F'
    python_types = (decimal.Decimal,)
    write = staticmethod(write_decimal)
    read = staticmethod(read_decimal)
