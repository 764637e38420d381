"""The root record of a storage file, and the generated class of ``storage.root``.

Layout of the root record (at a fixed file offset, ``RECORD_OFFSET``)
-----------------------------------------------------------------------
::

    +0   one state byte per attribute, in the order of ``schema.slot_keys``,
         zero padding to a multiple of 16
    +S   the attributes, by decreasing size, then by their index in ``schema.slot_keys``:
         a fixed-size number in its struct format ('q', 'd', 'B', '?', ...), or
         a u64 pointer: the file offset of the heap block that holds the packed value
    zero padding to a multiple of 16

States: 0 absent (reading raises AttributeError), 1 None, 2 present; any other byte is
corruption.  Every state, number and pointer is naturally aligned and is written with one
store of its size (through a ``ctypes`` structure over the record: ``struct.pack_into``
zeroes its target before it writes, which a crash or a reader in another process could
see).  Assigning writes the number, or the pointer of a block already filled, before the
state, so a reader, or a crash, sees the old value or the new one, never a mixture; and no
write touches another attribute's bytes.

Why a generated class
---------------------
``storage.root`` is one object for the life of the storage.  It holds no view a user could
keep, only the storage's current memoryview and record, which the storage replaces when
the file grows, so holding the root never blocks growing or closing.  Each attribute is a
property generated as Python source (and registered in ``linecache``): reading a number is
one ``struct.unpack_from`` at a constant offset that returns the state and the number
together; assigning one is a state check and one store.  Variable-size values go through
the storage, which packs them into the heap.
"""
import ctypes
import reprlib
import struct

from .codegen import compile_function, identifier
from .struct_proxy import _CTYPES
from .types.numbers import FIXED_FORMATS, INTEGER_RANGES, check_fixed_value
from .types.raw_buffers import proxied_buffer

__all__ = ['RootLayout', 'RootBase', 'RECORD_OFFSET', 'ABSENT', 'NONE', 'PRESENT']

RECORD_OFFSET = 128
ABSENT, NONE, PRESENT = 0, 1, 2
_CLOSED_ERRORS = (TypeError, ValueError)     # struct on None (closed) or a released memoryview
_FLOAT32_MAX = 3.4028234663852886e38


class RootSlot:
    """One attribute of the root: where it sits in the record and how its value is stored."""
    __slots__ = ('index', 'name', 'code', 'codec', 'is_buffer', 'offset', 'size')

    def __init__(self, index, name, code, codec):
        self.index = index             # its state byte; the slot number in its heap block
        self.name = name
        self.code = code               # struct format of a fixed-size number, or None
        self.codec = codec             # codec of a variable-size value, or None
        self.is_buffer = codec is proxied_buffer
        self.size = struct.calcsize('=' + code) if code else 8
        self.offset = None             # file offset of the number or pointer, set by RootLayout

    @property
    def state_offset(self):
        return RECORD_OFFSET + self.index

    @property
    def state_field(self):
        """Name of the state byte in the ctypes record."""
        return 's%d' % self.index

    @property
    def value_field(self):
        """Name of the number or pointer in the ctypes record."""
        return 'v%d' % self.index


class RootLayout:
    """The root record of a schema: its slots, their offsets, its size."""

    def __init__(self, schema, display_name=None):
        self.schema = schema
        self.display_name = display_name or schema.display_name
        slots = []
        for index, name in enumerate(schema.slot_keys):
            if name in _RESERVED_NAMES:
                raise TypeError('root attribute %r: the name is taken by the root object itself' % (name,))
            code = FIXED_FORMATS.get(schema.slot_types[name])
            try:
                codec = None if code else schema._codec_of(name)
            except TypeError as error:
                raise TypeError('root attribute %r cannot be stored: %s' % (name, error)) from None
            slots.append(RootSlot(index, name, code, codec))
        self.slots = tuple(slots)
        self.by_name = {slot.name: slot for slot in slots}
        position = RECORD_OFFSET + _pad16(len(slots))
        for slot in sorted(slots, key=lambda slot: (-slot.size, slot.index)):
            slot.offset = position
            position += slot.size
        self.size = _pad16(position - RECORD_OFFSET)

    def signature(self):
        """What the generated classes depend on: equal signatures share them."""
        return (self.display_name,) + tuple((slot.name, slot.index, slot.code, slot.offset) for slot in self.slots)

    def classes(self):
        """``(root class, record class)`` of this layout, made once per signature."""
        key = self.signature()
        classes = _CLASSES.get(key)
        if classes is None:
            classes = _CLASSES[key] = (_build_root_class(self), _build_record_class(self))
        return classes


def _pad16(size):
    return (size + 15) // 16 * 16


class RootBase:
    """Base of the generated root classes.

    ``_memory`` is the storage's byte view of the whole file (read by the getters),
    ``_record`` its ctypes structure over the root record (written by the setters; None
    when the storage is read-only or closed), ``_storage`` does everything else.
    """
    __slots__ = ('_storage', '_memory', '_record')

    def __init__(self, storage):
        self._storage = storage
        self._memory = None
        self._record = None

    def __repr__(self):
        storage = self._storage
        if storage.closed:
            return '<%s root of a closed storage>' % storage.layout.display_name
        values = []
        for slot in storage.layout.slots:
            try:
                values.append('%s=%s' % (slot.name, reprlib.repr(getattr(self, slot.name))))
            except AttributeError:
                continue
        return '%s(%s)' % (storage.layout.display_name, ', '.join(values))

    def __reduce__(self):
        raise TypeError('the root of a storage cannot be pickled: it is a window on a file')


_CLASSES = {}
_RESERVED_NAMES = frozenset(dir(RootBase))


def fixed_value_error(code, value, what):
    """The TypeError or OverflowError explaining why ``value`` does not fit struct ``code``."""
    try:
        check_fixed_value(code, value, what)
    except (TypeError, OverflowError) as error:
        return error
    return TypeError('%s: cannot store %r' % (what, value))


def _raise_if_not_bool(value, what):
    check_fixed_value('?', value, what)


def _accessor_source(layout, slot, namespace):
    """Source of ``get_<i>``, ``set_<i>`` and ``delete_<i>``, the property of attribute ``i``."""
    index = slot.index
    gap = slot.offset - slot.state_offset - 1
    namespace['read_%d' % index] = struct.Struct('=B%dx%s' % (gap, slot.code or 'Q')).unpack_from
    lines = [
        'def get_%d(self):' % index,
        '    try:',
        '        state, value = read_%d(self._memory, %d)' % (index, slot.state_offset),
        '    except closed_errors:',
        '        raise self._storage._closed_error() from None',
        '    if state == 2:',
        '        return value' if slot.code else '        return self._storage._read_value(%d, value)' % index,
        '    return self._storage._not_present(%d, state)' % index,
        '',
        'def set_%d(self, value):' % index,
    ]
    if slot.code:
        lines += _fixed_setter_source(layout, slot, namespace)
    else:
        lines.append('    self._storage._assign_value(%d, value)' % index)
    return lines + [
        '',
        'def delete_%d(self):' % index,
        '    self._storage._delete(%d)' % index,
        '',
    ]


def _fixed_setter_source(layout, slot, namespace):
    """The body of a number's setter.

    The fast path stores values the ctypes field takes exactly (ctypes would wrap an int
    that does not fit) into a present attribute.  Anything else is encoded by ``struct``
    first, so that a refused value raises before anything is written.
    """
    index = slot.index
    namespace['pack_%d' % index] = struct.Struct('=' + slot.code).pack
    what = '%s.%s' % (layout.display_name, slot.name)
    if slot.code in INTEGER_RANGES:
        low, high = INTEGER_RANGES[slot.code]
        exact = 'value.__class__ is int and %d <= value <= %d' % (low, high)
    elif slot.code == 'f':
        exact = 'value.__class__ is float and -%r <= value <= %r' % (_FLOAT32_MAX, _FLOAT32_MAX)
    else:
        exact = 'value.__class__ is %s' % ('bool' if slot.code == '?' else 'float')
    lines = [
        '    if %s:' % exact,
        '        record = self._record',
        '        if record is not None and record.%s == 2:' % slot.state_field,
        '            record.%s = value' % slot.value_field,
        '            return',
        '    if value is None:',
        '        return self._storage._assign_none(%d)' % index,
    ]
    if slot.code == '?':
        lines.append('    raise_if_not_bool(value, %r)' % what)
    return lines + [
        '    try:',
        '        encoded = pack_%d(value)' % index,
        '    except pack_errors:',
        '        raise fixed_value_error(%r, value, %r) from None' % (slot.code, what),
        '    self._storage._assign_fixed(%d, encoded)' % index,
    ]


def _build_root_class(layout):
    namespace = {
        'closed_errors': _CLOSED_ERRORS,
        'pack_errors': (struct.error, TypeError, OverflowError),
        'fixed_value_error': fixed_value_error,
        'raise_if_not_bool': _raise_if_not_bool,
    }
    lines = []
    for slot in layout.slots:
        lines += _accessor_source(layout, slot, namespace)
    if lines:
        compile_function('\n'.join(lines) + '\n', 'get_0', namespace, 'storage root %s' % layout.display_name)
    attributes = {'__slots__': (), '__module__': __name__,
                  '__doc__': 'The root of a storage of %s: attributes read and written in the file.'
                             % layout.display_name}
    for slot in layout.slots:
        index = slot.index
        attributes[slot.name] = property(namespace['get_%d' % index], namespace['set_%d' % index],
                                         namespace['delete_%d' % index], doc='root attribute %r' % slot.name)
    name = identifier(layout.display_name) + 'Root'
    cls = type(name, (RootBase,), attributes)
    cls.__qualname__ = name
    return cls


def _build_record_class(layout):
    """A ctypes structure whose fields are the record's state bytes, numbers and pointers."""
    fields = [(slot.state_field, ctypes.c_uint8) for slot in layout.slots]
    position = RECORD_OFFSET + len(fields)
    for slot in sorted(layout.slots, key=lambda slot: slot.offset):
        if slot.offset > position:
            fields.append(('_gap%d' % position, ctypes.c_char * (slot.offset - position)))
        fields.append((slot.value_field, _CTYPES[slot.code] if slot.code else ctypes.c_uint64))
        position = slot.offset + slot.size
    end = RECORD_OFFSET + layout.size
    if end > position:
        fields.append(('_gap%d' % position, ctypes.c_char * (end - position)))
    record = type('%sRecord' % identifier(layout.display_name), (ctypes.Structure,),
                  {'_pack_': 1, '_fields_': fields, '__module__': __name__})
    return record
