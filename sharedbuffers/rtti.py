"""Run-time type information: the typecode table and ``mapped_object`` (FORMAT.md §3).

A dynamically typed value (an ``object`` slot, and later sequence elements and dict keys)
is stored as one typecode byte followed by

* a fixed-size value right after the code, the whole padded to 8 bytes, or
* 7 zero bytes and the value's ordinary encoding (no trailing padding).

``TYPECODES`` below is the one place that lists every code: its byte, the Python types
written with it, and the codec that reads and writes it.  Codes whose families are not
implemented yet are listed too, so that reading one gives a precise error instead of
"unknown typecode".  User schemas register their own codes (0x80-0xFF by convention)
through :meth:`mapped_object.register_schema`.
"""
import collections
import datetime
import decimal
import struct
import threading

from . import _native
from ._facade import public
from .buffers import as_byte_buffer, out_of_bounds
from .packing import WRAPPED
from .types.base import pack_value_into
from .types.numbers import (
    byte, float32, float64, int32, int64, short, ubyte, uint32, uint64, ushort, INTEGER_RANGES)
from .types.sequences import mapped_list, mapped_tuple, read_sequence, write_sequence
from .types.dicts import mapped_dict, read_dict, write_dict
from .types.ndarrays import proxied_ndarray, read_ndarray, write_ndarray
from .numpy_in_use import ndarray_class
from .types.proxied import proxied_dict, proxied_frozenset, proxied_list, proxied_tuple
from .types.raw_buffers import append_buffer, proxied_buffer, read_buffer
from .types.sets import mapped_frozenset, read_set, write_set
from .types.decimals import append_decimal, mapped_decimal, read_decimal
from .types.times import append_date, append_datetime, mapped_date, mapped_datetime, read_date, read_datetime
from .types.strings import SHORT_VALUE, encode_payload, mapped_bytes, mapped_unicode, read_bytes, read_str

__all__ = ['mapped_object', 'TYPECODES', 'read_object', 'write_object', 'registered_codec_for']

_HEADER_PADDING = bytes(7)


class FixedTypecode:
    """A numeric RTTI code: the value follows the code byte; the record is padded to 8 bytes."""
    __slots__ = ('code', 'struct_format', 'python_type', 'value_size', 'record_size', '_pack', '_unpack')

    def __init__(self, code, struct_format, python_type):
        self.code = code
        self.struct_format = struct_format
        self.python_type = python_type
        self.value_size = struct.calcsize('=' + struct_format)
        self.record_size = (1 + self.value_size + 7) // 8 * 8
        padding = self.record_size - 1 - self.value_size
        self._pack = struct.Struct('=%s%dx' % (struct_format, padding)).pack
        self._unpack = struct.Struct('=' + struct_format).unpack_from

    def encode(self, value):
        return self.code + self._pack(value)

    def read(self, buffer, offset):
        end = offset + 1 + self.value_size
        if end > len(buffer):
            raise out_of_bounds('%r value' % self.code.decode(), offset, end - offset, len(buffer))
        return self._unpack(buffer, offset + 1)[0]


#: Every built-in typecode: code -> FixedTypecode or codec class.
TYPECODES = {
    b'B': FixedTypecode(b'B', 'B', int), b'b': FixedTypecode(b'b', 'b', int),
    b'H': FixedTypecode(b'H', 'H', int), b'h': FixedTypecode(b'h', 'h', int),
    b'I': FixedTypecode(b'I', 'I', int), b'i': FixedTypecode(b'i', 'i', int),
    b'Q': FixedTypecode(b'Q', 'Q', int), b'q': FixedTypecode(b'q', 'q', int),
    b'd': FixedTypecode(b'd', 'd', float), b'f': FixedTypecode(b'f', 'f', float),
    b'T': FixedTypecode(b'T', '?', bool),
    b's': mapped_bytes, b'u': mapped_unicode, b'e': mapped_list, b't': mapped_tuple,
    b'Z': mapped_frozenset, b'v': mapped_datetime, b'V': mapped_date, b'F': mapped_decimal,
    b'r': proxied_buffer, b'n': proxied_ndarray, b'm': mapped_dict,
    b'E': proxied_list, b'W': proxied_tuple, b'z': proxied_frozenset, b'M': proxied_dict,
}
BUILTIN_CODES = frozenset(code[0] for code in TYPECODES) | {ord('o')}

# Marker instances keep their width: uint16(5) is written with code H (FORMAT.md §3.3).
_MARKER_CODES = {marker: TYPECODES[marker.typecode] for marker in
                 (ubyte, byte, ushort, short, uint32, int32, uint64, int64, float32, float64)}
_BOOL = TYPECODES[b'T']
_FLOAT = TYPECODES[b'd']
_INT_CODES = [(TYPECODES[code.encode()], INTEGER_RANGES[code]) for code in 'bBhHiIqQ']

# Registered user schemas: filled by mapped_object.register_schema.
_CODECS_BY_TYPE = {}        # python class -> mapped_object_with_schema
_CODECS_BY_CODE = {}        # typecode int -> mapped_object_with_schema
_CODECS_BY_SCHEMA = {}      # id(schema) -> (schema, mapped_object_with_schema)


def _int_typecode(value):
    for typecode, (low, high) in _INT_CODES:
        if low <= value <= high:
            return typecode
    raise OverflowError('int %d cannot be stored: the range is -2**63 .. 2**64-1' % (value,))


#: Python type -> (RTTI code, payload writer) of the values written whole after their header.
_CONTAINERS = {
    list: (b'e', write_sequence), tuple: (b't', write_sequence),
    frozenset: (b'Z', write_set), set: (b'Z', write_set),
    dict: (b'm', write_dict), collections.defaultdict: (b'm', write_dict),
    memoryview: (b'r', append_buffer),
}      # and numpy.ndarray, from the first array written: see _adds_ndarray
_CONTAINERS.update({cls: (cls.typecode, cls.write) for cls in (proxied_list, proxied_tuple, proxied_frozenset,
                                                              proxied_dict)})
_APPENDERS = {
    datetime.datetime: (b'v', append_datetime),
    datetime.date: (b'V', append_date),
    decimal.Decimal: (b'F', append_decimal),
}


def write_object(value, context):
    """Append ``value`` RTTI-wrapped (deduplicated); return the logical position of its code byte."""
    kind = type(value)
    idmap = context.idmap
    out = context.out
    if kind is str or kind is bytes:
        short = len(value) < SHORT_VALUE
        key = (WRAPPED, kind, value) if short else (WRAPPED, id(value))
        entry = idmap.get(key)
        if entry is not None:
            return entry if short else entry[0]
        if kind is str:
            try:
                data = value.encode('utf-8')
            except UnicodeEncodeError as error:
                raise ValueError('str value cannot be stored as UTF-8 (%s)' % (error.reason,)) from None
            code = b'u'
        else:
            data = value
            code = b's'
        position = context.origin + len(out)
        out += code
        out += _HEADER_PADDING
        out += encode_payload(data)
        # 1.x records the bare payload too: a later str slot with an equal value points into
        # this copy (FORMAT.md §5.5, the cross-namespace case).
        if short:
            idmap[key] = position
            idmap[value] = position + 8
        else:
            idmap[key] = (position, value)
            idmap[id(value)] = (position + 8, value)
        return position
    if kind is int:
        typecode = _int_typecode(value)
        key = (WRAPPED, int, value)
    elif kind is bool:
        typecode = _BOOL
        key = (WRAPPED, bool, value)
    elif kind is float:
        typecode = _FLOAT
        key = (WRAPPED, id(value))
    elif kind in _MARKER_CODES:
        typecode = _MARKER_CODES[kind]
        key = (WRAPPED, kind, value)
    elif kind in _APPENDERS:
        # Shared by identity; the payload is remembered for later typed slots too (§5.5).
        key = (WRAPPED, id(value))
        entry = idmap.get(key)
        if entry is not None:
            return entry[0]
        position = context.origin + len(out)
        idmap[key] = (position, value)
        out += _APPENDERS[kind][0]
        out += _HEADER_PADDING
        _APPENDERS[kind][1](value, context)
        return position
    elif kind in _CONTAINERS:
        # Containers are never shared as a whole (1.x keys only their elements).
        code, write = _CONTAINERS[kind]
        position = context.origin + len(out)
        out += code
        out += _HEADER_PADDING
        write(value, context)
        return position
    else:
        return _write_registered(value, context)
    entry = idmap.get(key)
    if entry is not None:
        return entry if kind is not float else entry[0]
    position = context.origin + len(out)
    try:
        out += typecode.encode(value)
    except struct.error:
        raise OverflowError('%s value %r is out of range' % (kind.__name__, value)) from None
    idmap[key] = position if kind is not float else (position, value)
    return position


def _adds_ndarray(kind):
    """True when ``kind`` is numpy.ndarray, which this call adds to ``_CONTAINERS``.

    numpy is not imported with sharedbuffers (see numpy_in_use), so its array class cannot be
    a key of the table from the start; whoever made the first array imported numpy.  Asked
    only for a type no table knows, so registered structs do not pay for the question.
    """
    if kind is ndarray_class() and kind is not None:
        _CONTAINERS[kind] = (proxied_ndarray.typecode, write_ndarray)
        return True
    return False


def _write_registered(value, context):
    codec = registered_codec_for(value)
    if codec is None:
        kind = type(value)
        if _adds_ndarray(kind):
            return write_object(value, context)
        raise TypeError('cannot store a value of type %s.%s: it has no typecode (register its class '
                        'with mapped_object.register_schema)' % (kind.__module__, kind.__qualname__))
    if codec.typecode is None:
        raise TypeError('%s is registered without a typecode, so it can only be stored in slots typed '
                        'with its class, not dynamically' % (type(value).__name__,))
    key = (WRAPPED, id(value))
    idmap = context.idmap
    entry = idmap.get(key)
    if entry is not None:
        return entry[0]
    out = context.out
    position = context.origin + len(out)
    idmap[key] = (position, value)
    out.append(codec.typecode)
    out += _HEADER_PADDING
    codec.schema._write(value, context)     # the struct must follow its header: no bare dedup here
    return position


def known_position(value, context):
    """Logical position of an RTTI copy of ``value`` already written in this pack, or None."""
    kind = type(value)
    if kind is str or kind is bytes:
        if len(value) < SHORT_VALUE:
            return context.idmap.get((WRAPPED, kind, value))
        entry = context.idmap.get((WRAPPED, id(value)))
    elif kind is int or kind is bool or kind in _MARKER_CODES:
        return context.idmap.get((WRAPPED, kind, value))
    else:
        entry = context.idmap.get((WRAPPED, id(value)))
    return entry[0] if entry is not None else None


def registered_codec_for(value):
    """The registered struct codec that writes ``value``, or None."""
    codec = _CODECS_BY_TYPE.get(type(value))
    if codec is None:
        schema = getattr(type(value), '_proxy_schema', None)
        if schema is not None:
            found = _CODECS_BY_SCHEMA.get(id(schema))
            codec = found[1] if found is not None else None
    return codec


_reading = threading.local()


def _read_sequence_once(read):
    """A sequence reader that refuses to enter a sequence it is already reading.

    Pointers can point backwards, so corrupt data can make a sequence contain itself; that
    must be a ValueError, not a RecursionError.
    """
    def read_guarded(buffer, offset):
        active = getattr(_reading, 'offsets', None)
        if active is None:
            active = _reading.offsets = set()
        key = (id(buffer), offset)
        if key in active:
            raise ValueError('sequence at offset %d contains itself: cyclic or corrupt data' % (offset,))
        active.add(key)
        try:
            return read(buffer, offset + 8)
        finally:
            active.discard(key)
    return read_guarded


def read_object(buffer, offset):
    """Decode the RTTI-wrapped value at absolute ``offset`` of ``buffer``.

    With the C module, ``_native/values.c`` decodes numbers, short strings and the lists,
    tuples, sets and dicts of them, and hands everything else to read_object_in_python.
    """
    native = _native.objects
    if native is not None:
        return native.read_object(buffer, offset)
    return read_object_in_python(buffer, offset)


def read_object_in_python(buffer, offset):
    """read_object without the C module: also what it calls for the values it does not decode."""
    if offset < 0 or offset >= len(buffer):
        raise out_of_bounds('typecode', offset, 1, len(buffer))
    code = buffer[offset]
    if type(code) is not int:       # mmap indexing gives ints, some buffers give bytes
        code = code[0]
    entry = _READERS.get(code)
    if entry is not None:
        return entry(buffer, offset)
    codec = _CODECS_BY_CODE.get(code)
    if codec is not None:
        return codec.read(buffer, offset + 8)
    raise ValueError('unknown typecode 0x%02x at offset %d: corrupt data, or a schema that was '
                     'not registered' % (code, offset))


def _payload_reader(read):
    def read_after_header(buffer, offset):
        return read(buffer, offset + 8)
    return read_after_header


_READERS = {code[0]: entry.read for code, entry in TYPECODES.items() if isinstance(entry, FixedTypecode)}
_READERS[ord('s')] = _payload_reader(read_bytes)
_READERS[ord('u')] = _payload_reader(read_str)
_READERS[ord('e')] = _read_sequence_once(read_sequence)
_READERS[ord('t')] = _read_sequence_once(lambda buffer, offset: tuple(read_sequence(buffer, offset)))
_READERS[ord('Z')] = _read_sequence_once(read_set)
_READERS[ord('r')] = _payload_reader(read_buffer)
_READERS[ord('n')] = _payload_reader(read_ndarray)
_READERS[ord('m')] = _read_sequence_once(read_dict)
for _proxied in (proxied_list, proxied_tuple, proxied_frozenset, proxied_dict):
    _READERS[_proxied.typecode[0]] = _payload_reader(_proxied.read)
_READERS[ord('v')] = _payload_reader(read_datetime)
_READERS[ord('V')] = _payload_reader(read_date)
_READERS[ord('F')] = _payload_reader(read_decimal)
if _native.objects is not None:
    _native.objects.set_object_reader(read_object_in_python)


def normalize_typecode(typecode):
    """A registration typecode as an int 0..255 (or None); accepts bytes, str or int."""
    if typecode is None:
        return None
    if isinstance(typecode, (bytes, bytearray)) and len(typecode) == 1:
        code = typecode[0]
    elif isinstance(typecode, str) and len(typecode) == 1 and ord(typecode) < 256:
        code = ord(typecode)
    elif isinstance(typecode, int) and not isinstance(typecode, bool) and 0 <= typecode < 256:
        code = typecode
    else:
        raise ValueError('a typecode is one byte: bytes or str of length 1, or an int 0..255; got %r'
                         % (typecode,))
    if code in BUILTIN_CODES:
        raise ValueError('typecode %r is a built-in code; user schemas use 0x80..0xff' % (chr(code),))
    return code


def register(cls, schema, typecode, make_codec):
    """Register ``cls`` (with ``schema``) under ``typecode``; see mapped_object.register_schema."""
    code = normalize_typecode(typecode)
    existing = _CODECS_BY_TYPE.get(cls)
    if code is not None:
        owner = _CODECS_BY_CODE.get(code)
        if owner is not None and not (existing is owner and owner.schema.compatible(schema)):
            raise ValueError('typecode 0x%02x is already registered for another schema' % (code,))
    if existing is not None:
        if existing.typecode == code and existing.schema.compatible(schema):
            return existing
        raise ValueError('%s is already registered with typecode %r' % (cls.__name__, existing.typecode))
    codec = make_codec(schema)
    codec.typecode = code
    _CODECS_BY_TYPE[cls] = codec
    if code is not None:
        _CODECS_BY_CODE[code] = codec
    _CODECS_BY_SCHEMA[id(schema)] = (schema, codec)
    return codec


def register_subclass(cls, supercls):
    """Pack instances of ``cls`` exactly like those of the registered ``supercls``."""
    codec = _CODECS_BY_TYPE.get(supercls)
    if codec is None:
        raise ValueError('%s is not registered' % (supercls.__name__,))
    _CODECS_BY_TYPE[cls] = codec
    return codec


def codec_for_class(cls):
    """The registered codec of a class used as a slot type, or None."""
    return _CODECS_BY_TYPE.get(cls)


@public
class mapped_object:
    """Packer of dynamically typed (RTTI-wrapped) values: ``object`` slots."""
    typecode = None
    fixed_size = None
    write = staticmethod(write_object)
    read = staticmethod(read_object)

    def __init__(self, value=None, typ=None):
        self.value = value
        self.typecode = typ

    @classmethod
    def pack_into(cls, obj, buf, offs, idmap=None, implicit_offs=0):
        """Write ``obj`` RTTI-wrapped at ``offs`` of ``buf``; return the end offset."""
        if obj is None:
            raise TypeError('None has no RTTI form (it is stored as a none bit or a null pointer)')
        return pack_value_into(write_object, obj, buf, offs, idmap, implicit_offs)

    @classmethod
    def unpack_from(cls, buf, offs=0, idmap=None, proxy_into=None):
        """Decode the RTTI-wrapped value at ``offs`` of ``buf``."""
        return read_object(as_byte_buffer(buf), offs)

    @staticmethod
    def register_schema(typ, schema, typecode):
        """Register class ``typ`` packed with ``schema`` under ``typecode`` (bytes, str or int).

        Returns the ``mapped_object_with_schema`` packer.  Re-registering the same class, a
        compatible schema and the same code returns the existing packer; a code or class
        already taken by something else raises ``ValueError``.  ``typecode=None`` makes the
        class usable as a slot type only.
        """
        from .schema import mapped_object_with_schema
        return register(typ, schema, typecode, mapped_object_with_schema)

    @staticmethod
    def register_subclass(typ, supertyp):
        """Pack instances of ``typ`` as its registered parent ``supertyp``."""
        return register_subclass(typ, supertyp)
