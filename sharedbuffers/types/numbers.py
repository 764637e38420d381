"""Fixed-size number types: the 1.x type markers and their in-struct formats.

The markers (``uint8``, ``int16``, ``float32`` ...) are ``int``/``float`` subclasses that only
name a storage width in ``__slot_types__``; an *instance* of one, stored dynamically, keeps its
width as RTTI code (``uint16(5)`` is written with code ``H``, FORMAT.md §3.3).

``FIXED_FORMATS`` maps every declared fixed-size type to its ``struct`` character; the slot
order of a schema (FORMAT.md §5.1) and the proxy field readers are derived from it.
"""
import struct

from .._facade import public

__all__ = [
    'ubyte', 'byte', 'ushort', 'short', 'uint32', 'int32', 'uint64', 'int64', 'float32', 'float64',
    'uint8', 'int8', 'uint16', 'int16', 'double', 'FIXED_FORMATS', 'INTEGER_RANGES',
    'check_fixed_value', 'smallest_int_code',
]


def _marker(name, base, code):
    cls = type(name, (base,), {
        '__slots__': (),
        '__doc__': 'Slot type marker: stored as struct code %r (also its RTTI typecode).' % code,
        'struct_format': code,
        'typecode': code.encode('ascii'),
        'fixed_size': struct.calcsize('=' + code),
    })
    cls.__qualname__ = name
    return public(cls)


ubyte = _marker('ubyte', int, 'B')
byte = _marker('byte', int, 'b')
ushort = _marker('ushort', int, 'H')
short = _marker('short', int, 'h')
uint32 = _marker('uint32', int, 'I')
int32 = _marker('int32', int, 'i')
uint64 = _marker('uint64', int, 'Q')
int64 = _marker('int64', int, 'q')
float32 = _marker('float32', float, 'f')
float64 = _marker('float64', float, 'd')

# 1.x aliases: the same class objects, so pickles name the canonical one.
uint8 = ubyte
int8 = byte
uint16 = ushort
int16 = short
double = float64

MARKERS = (ubyte, byte, ushort, short, uint32, int32, uint64, int64, float32, float64)

#: declared slot type -> struct character (FORMAT.md §2.1). ``int`` is int64, ``float`` float64.
FIXED_FORMATS = {marker: marker.struct_format for marker in MARKERS}
FIXED_FORMATS.update({int: 'q', float: 'd', bool: '?'})

#: inclusive value range of every integer struct character
INTEGER_RANGES = {
    'b': (-0x80, 0x7F), 'B': (0, 0xFF),
    'h': (-0x8000, 0x7FFF), 'H': (0, 0xFFFF),
    'i': (-0x80000000, 0x7FFFFFFF), 'I': (0, 0xFFFFFFFF),
    'q': (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF), 'Q': (0, 0xFFFFFFFFFFFFFFFF),
}

# Plain ints stored dynamically take the first code whose range holds them (FORMAT.md §3.3):
# note 'i' is tested before 'I' and 'q' before 'Q'.
_INT_CODE_ORDER = ('b', 'B', 'h', 'H', 'i', 'I', 'q', 'Q')


def smallest_int_code(value):
    """The RTTI struct code 1.x picks for a plain ``int``; OverflowError outside [-2**63, 2**64)."""
    for code in _INT_CODE_ORDER:
        low, high = INTEGER_RANGES[code]
        if low <= value <= high:
            return code
    raise OverflowError('int %d does not fit in 64 bits (the range is -2**63 .. 2**64-1)' % (value,))


def check_fixed_value(code, value, what):
    """Explain why ``value`` cannot be stored with struct ``code``; ``what`` names the attribute.

    Called only after ``struct`` refused a value, to turn its terse ``struct.error`` into the
    exception a user expects: ``TypeError`` for a wrong type, ``OverflowError`` for a number out
    of range.  Returns normally if the value is in fact storable.
    """
    if code == '?':
        if not isinstance(value, int) and not hasattr(value, '__index__') and type(value).__name__ != 'bool_':
            raise TypeError('%s: expected bool, got %s' % (what, type(value).__name__))
        return
    if code in 'fd':
        if isinstance(value, (str, bytes)) or not hasattr(value, '__float__'):
            raise TypeError('%s: expected float, got %s' % (what, type(value).__name__))
        try:
            struct.pack('=' + code, value)
        except OverflowError:
            raise OverflowError('%s: %r is out of range for float32' % (what, value)) from None
        return
    if isinstance(value, bool) or not hasattr(value, '__index__'):
        raise TypeError('%s: expected int, got %s' % (what, type(value).__name__))
    low, high = INTEGER_RANGES[code]
    number = value.__index__()
    if not low <= number <= high:
        raise OverflowError('%s: %d is out of range for %s (%d .. %d)' % (
            what, number, _FORMAT_NAMES[code], low, high))


_FORMAT_NAMES = {'b': 'int8', 'B': 'uint8', 'h': 'int16', 'H': 'uint16', 'i': 'int32', 'I': 'uint32',
                 'q': 'int64', 'Q': 'uint64'}
