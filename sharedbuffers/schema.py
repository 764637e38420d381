"""``Schema``: the slot layout of a class, and the packer and proxies generated from it.

Layout rules (FORMAT.md §5)
---------------------------
* Slot order: descending storage size, then name.  Variable-size slots are 8-byte pointers.
* Header: two bitmaps, ``has`` (attribute exists) and ``none`` (it is None).  Their width
  depends on the slot count, the alignment and the binary version (§5.2): version 2 (the
  default) never uses bitmaps narrower than the alignment allows; version 1 (what
  ``reinitialize()`` produces, as in 1.x) uses the narrowest that holds the slots.
* Fixed part: the present, non-None values in slot order, packed with no gaps, then padded
  to ``alignment`` counted from the struct start; then each new variable-size value, padded
  to ``alignment`` counted on absolute buffer positions.
"""
import collections
import datetime
import decimal
import struct

from . import _native
from ._facade import public
from .buffers import as_byte_buffer
from .packing import PackContext, check_idmap_position, finish_idmap, forget_from
from . import rtti
from .rtti import mapped_object
from .struct_proxy import build_shape_class, build_unpacker, empty_proxy, live_proxy_maker
from .struct_writer import build_dispatcher, build_shape_writer
from .types.numbers import FIXED_FORMATS
from .types.sequences import mapped_list, mapped_tuple
from .types.dicts import mapped_dict
from .types.ndarrays import proxied_ndarray
from .numpy_in_use import ndarray_class
from .types.proxied import proxied_dict, proxied_frozenset, proxied_list, proxied_tuple
from .types.raw_buffers import proxied_buffer
from .types.sets import mapped_frozenset
from .types.decimals import mapped_decimal
from .types.times import (
    mapped_date, mapped_datetime, mapped_datetime_local, mapped_datetime_tz, mapped_datetime_tz_local,
    mapped_datetime_utc)
from .types.strings import mapped_bytes, mapped_unicode

__all__ = ['Schema', 'mapped_object_with_schema', 'MAX_SLOTS']

MAX_SLOTS = 64
VERSION = 2

# Declared types that name a variable-size codec directly.
_VARIABLE_TYPES = {
    bytes: mapped_bytes, mapped_bytes: mapped_bytes,
    str: mapped_unicode, mapped_unicode: mapped_unicode,
    object: mapped_object, mapped_object: mapped_object,
    list: mapped_list, mapped_list: mapped_list,
    tuple: mapped_tuple, mapped_tuple: mapped_tuple,
    frozenset: mapped_frozenset, set: mapped_frozenset, mapped_frozenset: mapped_frozenset,
    datetime.datetime: mapped_datetime, mapped_datetime: mapped_datetime,
    datetime.date: mapped_date, mapped_date: mapped_date,
    decimal.Decimal: mapped_decimal, mapped_decimal: mapped_decimal,
    memoryview: proxied_buffer, proxied_buffer: proxied_buffer,
    proxied_ndarray: proxied_ndarray,     # numpy.ndarray too: see _resolve
    dict: mapped_dict, collections.defaultdict: mapped_dict, mapped_dict: mapped_dict,
    proxied_list: proxied_list, proxied_tuple: proxied_tuple, proxied_frozenset: proxied_frozenset,
    proxied_dict: proxied_dict,
    mapped_datetime_utc: mapped_datetime_utc, mapped_datetime_local: mapped_datetime_local,
    mapped_datetime_tz: mapped_datetime_tz, mapped_datetime_tz_local: mapped_datetime_tz_local,
}

# Bytes of one value of each struct code in '=' (standard size) mode: what struct.calcsize('=' + code)
# gives.  Every size in a layout (slot order, bitmaps, shapes) comes from here, so declaring a
# schema or opening a file compiles no struct format just to measure one code.
_CODE_SIZES = {'b': 1, 'B': 1, '?': 1, 'h': 2, 'H': 2, 'i': 4, 'I': 4, 'f': 4, 'q': 8, 'Q': 8, 'd': 8}


def _pad(size, alignment):
    return (size + alignment - 1) // alignment * alignment


class Field:
    """One present, non-None slot of a shape: where it sits and how it is stored."""
    __slots__ = ('name', 'struct_code', 'codec', 'offset')

    def __init__(self, name, struct_code, codec, offset):
        self.name = name
        self.struct_code = struct_code    # struct character of the fixed part ('q' for pointers)
        self.codec = codec                # variable-size codec, or None for a fixed-size value
        self.offset = offset              # relative to the struct start


class Shape:
    """The layout of structs of one schema with one (has, none) bitmap pair.

    ``struct_format`` covers header and fields (the writer's view); ``snapshot_format`` reads
    the header and the fixed-size values only, skipping pointers, which proxies read when a
    variable-size attribute is first used (the reader's view: fewer objects per proxy).
    """
    __slots__ = ('fields', 'struct_format', 'snapshot_format', 'fixed_size', 'fixed_padded_size')

    def __init__(self, schema, has, none):
        # One pass over the slots: this runs when a file is first read in a process, where
        # every line executed for the first time counts (a cold open is ~0.3 ms in all).
        present = has & ~none
        slot_types = schema.slot_types
        header = schema.bitmap_format * 2
        struct_codes = ['=', header]
        snapshot_codes = ['=', header]
        fields = []
        offset = 2 * _CODE_SIZES[schema.bitmap_format]
        bit = 1
        for name in schema.slot_keys:
            if present & bit:
                code = FIXED_FORMATS.get(slot_types[name])
                if code is None:        # variable-size: an 8-byte pointer the snapshot skips
                    fields.append(Field(name, 'q', schema._codec_of(name), offset))
                    struct_codes.append('q')
                    snapshot_codes.append('8x')
                    offset += 8
                else:
                    fields.append(Field(name, code, None, offset))
                    struct_codes.append(code)
                    snapshot_codes.append(code)
                    offset += _CODE_SIZES[code]
            bit <<= 1
        self.fields = tuple(fields)
        self.struct_format = ''.join(struct_codes)
        self.snapshot_format = ''.join(snapshot_codes)
        self.fixed_size = offset
        self.fixed_padded_size = _pad(offset, schema.alignment)


def _bitmap_format(count, alignment, version):
    if count > MAX_SLOTS:
        raise TypeError('Too many attributes: %d (a schema holds at most %d)' % (count, MAX_SLOTS))
    if version >= 2:
        rules = ((2, 8, 'B'), (4, 16, 'H'), (8, 32, 'I'))
        for max_alignment, max_count, code in rules:
            if alignment <= max_alignment and count <= max_count:
                return code
        return 'Q'
    for max_count, code in ((8, 'B'), (16, 'H'), (32, 'I')):
        if count <= max_count:
            return code
    return 'Q'


def _storage_size(slot_type):
    code = FIXED_FORMATS.get(slot_type)
    return _CODE_SIZES[code] if code is not None else 8


def _resolve(declared):
    """The canonical slot type for a declared one (see FORMAT.md §2.1)."""
    if declared in FIXED_FORMATS:
        return declared
    try:
        variable = _VARIABLE_TYPES.get(declared)
    except TypeError:       # unhashable declaration
        variable = None
    if variable is not None:
        return variable
    if declared is ndarray_class() and declared is not None:     # numpy is not imported with us
        return proxied_ndarray
    if isinstance(declared, mapped_object_with_schema):
        return declared
    if isinstance(declared, type):
        codec = rtti.codec_for_class(declared)
        return codec if codec is not None else declared     # unresolved until registered (1.x)
    raise TypeError('%r is not a slot type' % (declared,))


@public
class Schema:
    """The typed layout of a class's attributes; packs objects and unpacks proxies.

    ``Schema.from_typed_slots(cls)`` reads ``cls.__slot_types__`` (a dict of attribute name
    to type).  ``pack``/``pack_into`` write objects (anything with those attributes: missing
    ones are recorded as missing), ``unpack_from`` returns a proxy that reads the buffer.
    """
    VERSION = VERSION

    def __init__(self, slot_types, alignment=8, pack_buffer_size=65536, packer_cache=None,
                 unpacker_cache=None, max_pack_buffer_size=None, version=None, user_data=None,
                 declared_class=None):
        self.user_data = user_data
        self.declared_class = declared_class     # the class proxies stand for (names, pickling)
        self.proxy_bases = ()
        self.prewrite_hook = None
        self.postwrite_hook = None
        self.init(slot_types, alignment=alignment, pack_buffer_size=pack_buffer_size,
                  max_pack_buffer_size=max_pack_buffer_size,
                  version=VERSION if version is None else version)

    @classmethod
    def from_typed_slots(cls, cls_or_dict, *args, **kwargs):
        """A schema for a class with ``__slot_types__``, or for the dict of slot types itself."""
        if isinstance(cls_or_dict, dict):
            return cls(cls_or_dict, *args, **kwargs)
        slot_types = getattr(cls_or_dict, '__slot_types__', None)
        if not isinstance(slot_types, dict):
            raise ValueError('%r has no __slot_types__ dict' % (cls_or_dict,))
        return cls(slot_types, *args, declared_class=cls_or_dict, **kwargs)

    def init(self, slot_types=None, slot_keys=None, alignment=8, pack_buffer_size=65536,
             max_pack_buffer_size=None, packer_cache=None, unpacker_cache=None,
             autoregister=False, version=1):
        """(Re)compute the layout.  Like 1.x, the default binary version here is 1."""
        if slot_types is None:
            slot_types = self.slot_types
        if not isinstance(alignment, int) or alignment < 1:
            raise ValueError('alignment must be a positive int, got %r' % (alignment,))
        if version not in (1, 2):
            raise ValueError('binary version must be 1 or 2, got %r' % (version,))
        resolved = {}
        for name, declared in slot_types.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise TypeError('slot name %r is not a valid attribute name' % (name,))
            if isinstance(declared, mapped_object_with_schema) and autoregister:
                declared = declared.registered_equivalent()
            try:
                resolved[name] = _resolve(declared)
            except TypeError as error:
                raise TypeError('slot %r: %s' % (name, error)) from None
        if slot_keys is None:
            slot_keys = tuple(sorted(resolved, key=lambda key: (-_storage_size(resolved[key]), key)))
        else:
            slot_keys = tuple(slot_keys)
            if sorted(slot_keys) != sorted(resolved):
                raise ValueError('slot_keys %r do not match the slot types' % (slot_keys,))
        self.bitmap_format = _bitmap_format(len(slot_keys), alignment, version)
        self.slot_types = resolved
        self.slot_keys = slot_keys
        self.alignment = alignment
        self.version = version
        self.pack_buffer_size = pack_buffer_size
        self.max_pack_buffer_size = max_pack_buffer_size
        self.bitmap_size = _CODE_SIZES[self.bitmap_format] * 8
        self._reset_generated()

    def _reset_generated(self):
        """Forget generated code; it is generated again on first use.

        Generating (and compiling) the packer and the unpacker costs milliseconds, so it is
        deferred: opening a file with a stored schema must not pay for a packer it never uses.
        The first use replaces ``_write`` / ``unpack_from`` with the generated functions, so
        later calls go straight to them; a reference taken earlier just forwards.
        """
        self._shapes = {}
        self._shape_writers = {}
        self._shape_readers = {}
        self._generated_writer = None
        self._generated_unpacker = None
        self._write = self._generate_writer
        if _native.objects is None:
            self.unpack_from = self._generate_unpacker
            return
        # The stand-in in C (deferred.c): a reference taken now forwards at the cost of a
        # vectorcall, and the same stand-in follows a reinitialize().
        deferred = self.__dict__.get('_deferred_unpacker')
        if deferred is None:
            deferred = self._deferred_unpacker = _native.objects.Deferred(self.unpacker)
        deferred.reset()
        self.unpack_from = deferred

    def writer(self):
        """The generated ``write(obj, context)`` function (made on first use)."""
        if self._generated_writer is None:
            self._generated_writer = self._write = build_dispatcher(self)
        return self._generated_writer

    def unpacker(self):
        """The generated ``unpack_from(buf, offset)`` function (made on first use)."""
        if self._generated_unpacker is None:
            self._generated_unpacker, self._shape_readers = build_unpacker(self)
            self.unpack_from = self._generated_unpacker
        return self._generated_unpacker

    def _generate_writer(self, obj, context):
        return self.writer()(obj, context)

    def _generate_unpacker(self, buf, offs=0, *args, **kwargs):
        # What a caller holds if it took `schema.unpack_from` before the first unpack.  Only the
        # arguments given are passed on: the C unpacker answers (buf, offs) itself, and sends
        # every call with more arguments to the generated Python function (800 against 200 ns).
        return self.unpacker()(buf, offs, *args, **kwargs)

    def reinitialize(self):
        """Re-resolve slot types after late registrations (self-referencing classes).

        As in 1.x this also makes the schema binary version 1 (narrowest bitmaps), which is
        what files written after ``register_schema`` + ``reinitialize()`` contain.
        """
        self.init(self.slot_types, self.slot_keys, self.alignment, self.pack_buffer_size,
                  self.max_pack_buffer_size, version=1)

    # -- layout ---------------------------------------------------------------------------

    @property
    def display_name(self):
        cls = self.declared_class
        return cls.__name__ if cls is not None else 'Struct'

    def shape(self, has, none):
        """The :class:`Shape` of structs with these bitmaps (cached)."""
        key = has << 64 | none
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = Shape(self, has, none)
        return shape

    def _codec_of(self, name):
        slot_type = self.slot_types[name]
        if isinstance(slot_type, type) and not hasattr(slot_type, 'write'):
            raise TypeError('%s.%s: class %s is not registered: call mapped_object.register_schema(%s, ...) '
                            'and then reinitialize() this schema'
                            % (self.display_name, name, slot_type.__name__, slot_type.__name__))
        return slot_type

    def _make_shape_writer(self, has, none):
        writer = build_shape_writer(self, has, none)
        self._shape_writers[has | none << len(self.slot_keys)] = writer
        return writer

    def _make_shape_reader(self, has, none, writable):
        """(proxy class, reader): the reader unpacks a snapshot, or makes a live proxy."""
        cls = build_shape_class(self, has, none, writable)
        if writable:
            return cls, live_proxy_maker(cls)
        return cls, struct.Struct(self.shape(has, none).snapshot_format).unpack_from

    def full_snapshot_format(self):
        """Snapshot format of the shape where every attribute is present, or None if unknown yet."""
        try:
            return self.shape((1 << len(self.slot_keys)) - 1, 0).snapshot_format
        except TypeError:       # a slot's class is not registered yet: no reader until reinitialize()
            return None

    # -- packing --------------------------------------------------------------------------

    def pack(self, obj, idmap=None, packer=None, padding=None, implicit_offs=0):
        """Pack ``obj`` into a new ``bytes`` object."""
        if idmap is None:
            context = PackContext(0, implicit_offs, {})
            self._write(obj, context)
        else:
            check_idmap_position(idmap, implicit_offs)
            context = PackContext(0, implicit_offs, idmap)
            self._write_with_user_idmap(obj, context)
        out = context.out
        gap = len(out) % self.alignment
        if gap:
            out += bytes(self.alignment - gap)
        if self.max_pack_buffer_size is not None:
            self._check_size(len(out))
        if idmap is not None:
            finish_idmap(idmap, implicit_offs + len(out))
        return bytes(out)

    def pack_into(self, obj, buf, offs, idmap=None, packer=None, padding=None, implicit_offs=0):
        """Pack ``obj`` at ``offs`` of the writable buffer ``buf``; return the end offset."""
        user_idmap = idmap is not None
        if user_idmap:
            check_idmap_position(idmap, offs + implicit_offs)
        else:
            idmap = {}
        if self.prewrite_hook is not None:
            self.prewrite_hook(obj, buf, offs)
        context = PackContext(offs, implicit_offs, idmap, len(buf))
        if user_idmap:
            self._write_with_user_idmap(obj, context)
        else:
            self._write(obj, context)
        context.pad(self.alignment)
        if self.max_pack_buffer_size is not None:
            self._check_size(len(context.out))
        end = offs + len(context.out)
        if offs < 0 or end > len(buf):
            if user_idmap:
                forget_from(idmap, context.origin)
            raise IndexError('%s needs %d bytes at offset %d, but the buffer holds %d'
                             % (self.display_name, len(context.out), offs, len(buf)))
        buf[offs:end] = context.out
        if user_idmap:
            finish_idmap(idmap, context.origin + len(context.out))
        if self.postwrite_hook is not None:
            self.postwrite_hook(obj, buf, offs, end)
        return end

    def _write_with_user_idmap(self, obj, context):
        """Write with a caller's idmap: if the write fails, its new entries are taken back."""
        try:
            self._write(obj, context)
        except BaseException:
            forget_from(context.idmap, context.origin)
            raise

    def _check_size(self, size):
        if size > self.max_pack_buffer_size:
            raise ValueError('%s packs to %d bytes, more than max_pack_buffer_size=%d'
                             % (self.display_name, size, self.max_pack_buffer_size))

    # -- unpacking ------------------------------------------------------------------------

    def unpack(self, buf, idmap=None, factory_class_new=None, proxy_into=None):
        """``unpack_from(buf, 0)``."""
        return self.unpack_from(buf, 0)

    @property
    def ProxyClass(self):
        """The proxy class of a struct with no attribute present."""
        self.unpacker()
        key = 0     # has=0, none=0, read-only: the same key the unpacker uses
        entry = self._shape_readers.get(key)
        if entry is None:
            entry = self._shape_readers[key] = self._make_shape_reader(0, 0, False)
        return entry[0]

    @property
    def Proxy(self):
        """A factory of empty proxies (every attribute absent), for ``proxy_into``."""
        cls = self.ProxyClass
        return lambda: empty_proxy(cls)

    def set_proxy_bases(self, bases):
        """Make proxies also instances of ``bases`` (so they get their methods)."""
        bases = tuple(bases)
        for base in bases:
            if not isinstance(base, type):
                raise TypeError('proxy bases must be classes, got %r' % (base,))
            if getattr(base, '__slots__', None):
                raise TypeError('%s defines __slots__, so proxies (tuple-based) cannot inherit from it'
                                % (base.__name__,))
        self.proxy_bases = bases
        self._reset_generated()

    def set_user_data(self, user_data):
        self.user_data = user_data

    def set_pack_buffer_size(self, size):
        """Kept for 1.x compatibility: packing here grows its output as needed."""
        self.pack_buffer_size = size

    def set_prewrite_hook(self, hook):
        """``hook(obj, buf, offset)`` runs before each ``pack_into``."""
        self.prewrite_hook = hook

    def set_postwrite_hook(self, hook):
        """``hook(obj, buf, start, end)`` runs after each ``pack_into``."""
        self.postwrite_hook = hook

    def compatible(self, other):
        """True when buffers of ``other`` read correctly with this schema (and back)."""
        return _compatible(self, other, set())

    # -- pickling (1.x state keys, FORMAT.md §10.2) -----------------------------------------

    def __getstate__(self):
        state = {
            'slot_types': dict(self.slot_types),
            'slot_keys': self.slot_keys,
            'alignment': self.alignment,
            'bases': self.proxy_bases or None,
            'version': self.version,
        }
        if self.user_data is not None:
            state['user_data'] = self.user_data
        return state

    def __setstate__(self, state):
        self.user_data = state.get('user_data')
        self.declared_class = None
        self.prewrite_hook = None
        self.postwrite_hook = None
        self.proxy_bases = tuple(state.get('bases') or ())
        self.init(state['slot_types'], state.get('slot_keys'), state.get('alignment', 8),
                  autoregister=True, version=state.get('version', 1))

    def __reduce__(self):
        return (Schema, (dict(self.slot_types),), self.__getstate__())

    def __repr__(self):
        return '<Schema %s %s v%d align=%d>' % (self.display_name, self.slot_keys, self.version, self.alignment)


def _compatible(left, right, seen):
    if left is right:
        return True
    if not isinstance(right, Schema):
        return False
    if (id(left), id(right)) in seen:
        return True
    seen.add((id(left), id(right)))
    if (left.version, left.slot_keys, left.alignment) != (right.version, right.slot_keys, right.alignment):
        return False
    for name in left.slot_keys:
        mine, theirs = left.slot_types[name], right.slot_types[name]
        if mine is theirs:
            continue
        if isinstance(mine, mapped_object_with_schema) and isinstance(theirs, mapped_object_with_schema):
            if _compatible(mine.schema, theirs.schema, seen):
                continue
        return False
    return True


@public
class mapped_object_with_schema:
    """Packer of a registered class: a bare struct of its schema (RTTI code when registered)."""
    fixed_size = None

    def __init__(self, schema):
        self.schema = schema
        self.typecode = None

    def write(self, value, context):
        """Append ``value`` as a struct; return its logical position (shared by identity)."""
        idmap = context.idmap
        key = id(value)
        entry = idmap.get(key)
        if entry is not None:
            return entry[0]
        position = self.schema._write(value, context)
        idmap[key] = (position, value)
        return position

    def read(self, buffer, offset):
        return self.schema.unpack_from(buffer, offset)

    @property
    def nested_schema(self):
        """The schema whose ``unpack_from`` reads values of this codec (C field readers call it)."""
        return self.schema

    def pack_into(self, obj, buf, offs, idmap=None, implicit_offs=0):
        return self.schema.pack_into(obj, buf, offs, idmap, implicit_offs=implicit_offs)

    def unpack_from(self, buf, offs=0, idmap=None, proxy_into=None):
        return self.schema.unpack_from(as_byte_buffer(buf), offs)

    def registered_equivalent(self):
        """The registered packer of a compatible schema, else this one registered without a code."""
        for schema, codec in list(rtti._CODECS_BY_SCHEMA.values()):
            if codec is not self and schema.compatible(self.schema):
                return codec
        rtti._CODECS_BY_SCHEMA.setdefault(id(self.schema), (self.schema, self))
        return self

    def __reduce__(self):
        return (mapped_object_with_schema, (None,), (self.schema,))

    def __setstate__(self, state):
        if isinstance(state, dict):
            state = (state['schema'],)
        self.schema = state[0]
        self.typecode = None

    def __repr__(self):
        return '<mapped_object_with_schema %s code=%r>' % (self.schema.display_name, self.typecode)
