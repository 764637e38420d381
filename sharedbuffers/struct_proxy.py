"""Proxies: objects whose attributes are read from a packed struct in a buffer.

Design, and why
---------------
A proxy is an immutable ``tuple`` subclass ``(buffer, offset, has, none, value0, ...)`` of a class
generated per schema and bitmap shape.  Attribute reads then cost what a namedtuple read costs:

* fixed-size attributes are read by ``collections._tuplegetter`` (the C descriptor behind
  namedtuple fields), so ``p.x`` never runs Python code; the values were unpacked from the
  buffer by one ``struct.unpack_from`` when the proxy was made.  With the C module they are
  member descriptors over the tuple's items instead, whose reads the interpreter specializes
  (:func:`_install_item_fields`);
* variable-size attributes are decoded on first read (:class:`LazyField`) and, when the value
  is immutable, kept in the instance ``__dict__`` so later reads are dictionary hits;
* attributes stored as None are the class attribute ``None``; absent ones are an
  :class:`AbsentField` that raises ``AttributeError``, so ``hasattr`` and
  ``getattr(p, name, default)`` behave as for the original object.

Over a *writable* buffer numbers can change under the proxy (in-place writes, atomic ``add``
from another process), so the shape classes made for writable buffers are ``ctypes``
structures laid over the buffer (:class:`LiveStructProxy`): their fields are read live by
ctypes' C descriptors, and written through :class:`LiveField`, range-checked.  Like any
exporter of a buffer, a live proxy keeps a ``bytearray`` from being resized and an ``mmap``
from being closed while it exists.

``type(p).x`` is a :class:`LiveField` in both cases (the metaclasses hand it out), so
``type(p).x.cas(p, old, new)`` and ``type(p).x.add(p, delta)`` always work on a writable
buffer and raise ``TypeError`` on a read-only one.
"""
import ctypes
import struct
import threading
import types
import weakref

try:
    from collections import _tuplegetter
except ImportError:  # other Pythons: same semantics, slower
    from operator import itemgetter as _itemgetter

    def _tuplegetter(index, doc):
        return property(_itemgetter(index), doc=doc)

from . import _native
from .buffers import as_byte_buffer, is_writable, out_of_bounds
from .codegen import compile_function
from .rtti import mapped_object
from .types.dicts import mapped_dict
from .types.numbers import FIXED_FORMATS, check_fixed_value
from .types.proxied import proxied_dict, proxied_frozenset, proxied_list, proxied_tuple
from .types.sequences import mapped_list, mapped_tuple
from .types.sets import mapped_frozenset
from .types.strings import mapped_bytes, mapped_unicode

__all__ = ['StructProxy', 'LiveField', 'LazyField', 'build_shape_class', 'build_unpacker',
           'restore_object', 'VALUES_START']

VALUES_START = 4                    # items 0-3 of a proxy: buffer, offset, has and none bitmaps
_new_tuple = tuple.__new__
_read_pointer = struct.Struct('=q').unpack_from
_read_u16 = struct.Struct('=H').unpack_from

# Decoded values of these types can be cached on the proxy: nobody can mutate them (the
# proxied containers are read-only views that decode their elements afresh).
_IMMUTABLE = frozenset((str, bytes, int, float, bool, complex, type(None), frozenset,
                        proxied_list, proxied_tuple, proxied_frozenset, proxied_dict))


_CField = type(type('_Probe', (ctypes.Structure,), {'_fields_': [('x', ctypes.c_int)]}).x)
_FIELD_DESCRIPTORS = (_tuplegetter, _CField, types.MemberDescriptorType)


def _field_accessor(cls, name, value):
    """``type(p).x``: the field's LiveField instead of the C descriptor that reads it."""
    if type(value) in _FIELD_DESCRIPTORS:
        return type.__getattribute__(cls, '_proxy_accessors').get(name, value)
    return value


class ProxyType(type):
    """Metaclass of snapshot proxy classes: ``type(p).x`` is the field's :class:`LiveField`."""

    def __getattribute__(cls, name):
        return _field_accessor(cls, name, type.__getattribute__(cls, name))


class LiveProxyType(type(ctypes.Structure)):
    """Metaclass of live (ctypes) proxy classes: ``type(p).x`` is the field's :class:`LiveField`."""

    def __getattribute__(cls, name):
        return _field_accessor(cls, name, type.__getattribute__(cls, name))


class ProxyBehaviour:
    """What every proxy does, whatever holds its values (a tuple snapshot or a ctypes view)."""
    __slots__ = ()

    _proxy_schema = None

    def __setattr__(self, name, value):
        setter = self._proxy_setters.get(name)
        if setter is not None:
            setter(self, value)
        elif name in self._proxy_schema.slot_types:
            if self._proxy_setters is _READ_ONLY_MARK:
                raise TypeError('cannot set attribute %r: the proxy reads a read-only buffer' % (name,))
            raise TypeError('attribute %r of a %s proxy cannot be changed in place (only present '
                            'numeric attributes can)' % (name, self._proxy_schema.display_name))
        else:
            object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if name in self._proxy_schema.slot_types:
            raise TypeError('attributes of a proxy cannot be deleted')
        object.__delattr__(self, name)

    # A proxy stands for an object, not for the tuple that implements it.
    def __len__(self):
        raise TypeError('%s proxy has no len()' % (self._proxy_schema.display_name,))

    def __iter__(self):
        raise TypeError('%s proxy is not iterable' % (self._proxy_schema.display_name,))

    def __getitem__(self, key):
        raise TypeError('%s proxy is not subscriptable' % (self._proxy_schema.display_name,))

    def __bool__(self):
        return True

    def __contains__(self, item):
        raise TypeError('%s proxy is not a container' % (self._proxy_schema.display_name,))

    def _proxy_values(self):
        """{attribute: value} of every attribute the struct holds (None included)."""
        values = {}
        for name in self._proxy_schema.slot_types:      # declaration order
            value = getattr(self, name, _ABSENT)
            if value is not _ABSENT:
                values[name] = value
        return values

    def __eq__(self, other):
        if self is other:
            return True
        names = self._proxy_schema.slot_keys
        if not isinstance(other, ProxyBehaviour) and not any(hasattr(other, name) for name in names):
            return NotImplemented
        # Structs can contain themselves (n.next = n packs and reads fine): a pair already
        # being compared further up is taken as equal, so cycles compare instead of recursing.
        pair = (_location(self), _location(other))
        in_progress = _in_progress('comparisons')
        if pair in in_progress:
            return True
        in_progress.add(pair)
        try:
            for name in names:
                if getattr(self, name, _ABSENT) != getattr(other, name, _ABSENT):
                    return False
            return True
        finally:
            in_progress.discard(pair)

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None     # equal to plain objects by value, so not hashable like them

    def __repr__(self):
        location = _location(self)
        in_progress = _in_progress('reprs')
        if location in in_progress:
            return '...'
        in_progress.add(location)
        try:
            fields = ', '.join('%s=%r' % item for item in self._proxy_values().items())
        finally:
            in_progress.discard(location)
        return '%s(%s)' % (self._proxy_schema.display_name, fields)

    def __reduce__(self):
        """A proxy in shared memory pickles as (schema, segment name, offset): the receiver
        reads the same bytes.  Any other proxy pickles as a plain copy of its object."""
        from .shared_memory import locate_buffer      # loaded by the first pickling
        located = locate_buffer(self._proxy_buffer, self._proxy_offset)
        if located is not None:
            segment, offset = located
            return (proxy_in_segment, (self._proxy_schema, segment.name, offset))
        return (restore_object, (self._proxy_schema.declared_class, self._proxy_values()))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


_BASE_ITEM_FIELDS = [('_proxy_buffer', 0), ('_proxy_offset', 1)]


def _install_item_fields(cls, fields):
    """Read these (name, tuple index) attributes of ``cls`` through member descriptors.

    The interpreter specializes reads of member descriptors, not those of ``_tuplegetter``
    (``item_fields`` in ``_native/proxies.c`` says why and how instances stay big enough).
    Without the C module the ``_tuplegetter`` descriptors stay, with the same results.
    """
    native = _native.objects
    if native is not None:
        for attribute, descriptor in native.item_fields(cls, _BASE_ITEM_FIELDS + fields).items():
            type.__setattr__(cls, attribute, descriptor)


class StructProxy(ProxyBehaviour, tuple, metaclass=ProxyType):
    """Base of snapshot proxies: a tuple ``(buffer, offset, has, none, fixed values...)``."""
    __slots__ = ()     # shape classes add the __dict__ that caches decoded values

    _proxy_buffer = _tuplegetter(0, 'the buffer holding the packed struct')
    _proxy_offset = _tuplegetter(1, 'the offset of the struct in the buffer')

    def __init_subclass__(cls, **kwargs):
        # Every subclass, so that its instances are checked for size; shape classes name their
        # fixed-size values in _proxy_item_indexes.
        super().__init_subclass__(**kwargs)
        _install_item_fields(cls, cls.__dict__.get('_proxy_item_indexes', []))


_install_item_fields(StructProxy, [])


class LiveStructProxy(ProxyBehaviour, ctypes.Structure, metaclass=LiveProxyType):
    """Base of live proxies: a ctypes structure over the struct's fixed part in the buffer.

    ``_proxy_buffer`` and ``_proxy_offset`` are set in the instance ``__dict__`` when made.
    """


_ABSENT = object()
_recursion_guards = threading.local()


def _in_progress(kind):
    """This thread's set of struct locations being compared or printed (cycle detection)."""
    guard = getattr(_recursion_guards, kind, None)
    if guard is None:
        guard = set()
        setattr(_recursion_guards, kind, guard)
    return guard


def _location(value):
    """Where a struct lives: proxies decoded twice from one place are the same struct."""
    if isinstance(value, ProxyBehaviour):
        return (id(value._proxy_buffer), value._proxy_offset)
    return id(value)
_READ_ONLY_MARK = types.MappingProxyType({})
ProxyBehaviour._proxy_setters = _READ_ONLY_MARK
ProxyBehaviour._proxy_accessors = {}


def proxy_in_segment(schema, name, offset):
    """The proxy of the struct at ``offset`` of shared segment ``name`` (see ``__reduce__``)."""
    from .shared_memory import attach
    segment = attach(name)
    proxy = schema.unpack_from(segment.buffer, offset)
    try:
        proxy.__dict__['_proxy_segment'] = segment      # the segment stays mapped and locatable
    except AttributeError:
        pass
    return proxy


def restore_object(cls, attributes):
    """Rebuild the plain object a pickled proxy stood for (an instance of ``cls`` when known)."""
    if cls is None:
        return types.SimpleNamespace(**attributes)
    obj = cls.__new__(cls)
    for name, value in attributes.items():
        setattr(obj, name, value)
    return obj


class LiveField:
    """A fixed-size field read from and written to the buffer on every access.

    Also the atomic accessor ``type(p).x``: ``cas`` and ``add`` run in the native kernels
    (a compare-and-swap loop on the field's bytes), so several processes sharing the
    buffer can update one counter without a lock.
    """
    __slots__ = ('name', 'owner', 'code', 'field_offset', 'size', '_unpack', '_pack')

    def __init__(self, owner, name, code, field_offset):
        self.owner = owner
        self.name = name
        self.code = code
        self.field_offset = field_offset
        layout = struct.Struct('=' + code)
        self.size = layout.size
        self._unpack = layout.unpack_from
        self._pack = layout.pack

    def __get__(self, proxy, cls=None):
        if proxy is None:
            return self
        return self._unpack(proxy._proxy_buffer, proxy._proxy_offset + self.field_offset)[0]

    def __set__(self, proxy, value):
        # Encode first: struct.pack_into zeroes the target before it validates the value.
        try:
            encoded = self._pack(value)
        except (struct.error, TypeError, OverflowError):
            check_fixed_value(self.code, value, '%s.%s' % (self.owner, self.name))
            raise
        start = proxy._proxy_offset + self.field_offset
        proxy._proxy_buffer[start:start + self.size] = encoded

    def _writable_buffer(self, proxy):
        buffer = proxy._proxy_buffer
        if not is_writable(buffer):
            raise TypeError('cannot modify %s.%s: the proxy reads a read-only buffer' % (self.owner, self.name))
        return buffer

    def cas(self, proxy, expected, new):
        """Atomically replace ``expected`` by ``new``; True if the swap happened."""
        buffer = self._writable_buffer(proxy)
        check_fixed_value(self.code, new, '%s.%s' % (self.owner, self.name))
        return _native.atomic_cas(buffer, proxy._proxy_offset + self.field_offset, self.code, expected, new)

    def add(self, proxy, delta):
        """Atomically add ``delta``; returns the new value (OverflowError if it would not fit)."""
        buffer = self._writable_buffer(proxy)
        if self.code == '?':
            raise TypeError('%s.%s is a bool: add() does not apply' % (self.owner, self.name))
        return _native.atomic_add(buffer, proxy._proxy_offset + self.field_offset, self.code, delta)

    def load(self, proxy):
        """Atomic (sequentially consistent) read of the field."""
        return _native.atomic_load(proxy._proxy_buffer, proxy._proxy_offset + self.field_offset, self.code)

    def __repr__(self):
        return '<field %s.%s %r at +%d>' % (self.owner, self.name, self.code, self.field_offset)


class LazyField:
    """A variable-size field decoded from the buffer on first read.

    Immutable results are stored in the instance ``__dict__``; being a non-data descriptor,
    this one is not consulted again for that proxy.
    """
    __slots__ = ('name', 'pointer_offset', 'read')

    def __init__(self, name, pointer_offset, read):
        self.name = name
        self.pointer_offset = pointer_offset      # of the field's 8-byte pointer, from the struct start
        self.read = read

    def __get__(self, proxy, cls=None):
        if proxy is None:
            return self
        buffer = proxy._proxy_buffer
        start = proxy._proxy_offset
        value = self.read(buffer, start + _read_pointer(buffer, start + self.pointer_offset)[0])
        if type(value) in _IMMUTABLE or isinstance(value, ProxyBehaviour):
            proxy.__dict__[self.name] = value
        return value


class LazyBytesField(LazyField):
    """A bytes field: short uncompressed values are read in this one frame (the common case)."""
    __slots__ = ()
    decode = None

    def __get__(self, proxy, cls=None):
        if proxy is None:
            return self
        buffer = proxy._proxy_buffer
        start = proxy._proxy_offset
        position = start + _read_pointer(buffer, start + self.pointer_offset)[0]
        if 0 <= position and position + 2 <= len(buffer):
            header = _read_u16(buffer, position)[0]
            if header < 0x7FFF and position + 2 + header <= len(buffer):
                data = bytes(buffer[position + 2:position + 2 + header])
                value = data if self.decode is None else self.decode(data, position)
                proxy.__dict__[self.name] = value
                return value
        value = self.read(buffer, position)       # long, compressed or corrupt: the codec decides
        proxy.__dict__[self.name] = value
        return value


def _utf8(data, position):
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as error:
        raise ValueError('str value at offset %d is not valid UTF-8 (%s)' % (position, error.reason)) from None


class LazyStrField(LazyBytesField):
    """A str field: short uncompressed values are read and decoded in this one frame."""
    __slots__ = ()
    decode = staticmethod(_utf8)


class AbsentField:
    """A slot the struct does not hold: reading it raises AttributeError, as on the object.

    Needed so that a missing slot never falls through to an attribute of the proxy's own
    classes (``tuple.count``, a method of a proxy base...).
    """
    __slots__ = ('name', 'owner')

    def __init__(self, owner, name):
        self.owner = owner
        self.name = name

    def __get__(self, proxy, cls=None):
        if proxy is None:
            return self
        raise AttributeError('%s proxy has no attribute %r (it was missing when packed)' % (self.owner, self.name))


_LAZY_FIELDS = {mapped_bytes: LazyBytesField, mapped_unicode: LazyStrField}
_C_FIELD_KINDS = {mapped_bytes: 'KIND_BYTES', mapped_unicode: 'KIND_STR', mapped_list: 'KIND_LIST',
                  mapped_tuple: 'KIND_TUPLE', mapped_frozenset: 'KIND_FROZENSET', mapped_dict: 'KIND_DICT',
                  mapped_object: 'KIND_OBJECT'}
# the same, as the numbers snapshot_layout takes
_C_FIELD_KIND_NUMBERS = ({codec: getattr(_native.objects, kind) for codec, kind in _C_FIELD_KINDS.items()}
                         if _native.objects is not None else {})


def _lazy_field(name, pointer_offset, codec, writable):
    """The descriptor of a variable-size attribute: in C for snapshot proxies when compiled.

    The C reader decodes the common encodings itself and hands every other case to
    ``codec.read``, so both give the same values and errors.  A nested struct is read by its
    schema's ``unpack_from`` (``codec.nested_schema``), as ``codec.read`` does.
    """
    native = _native.objects        # None in pure mode: the Python descriptors above
    if native is None or writable:
        return _LAZY_FIELDS.get(codec, LazyField)(name, pointer_offset, codec.read)
    kind = _C_FIELD_KINDS.get(codec) if isinstance(codec, type) else None
    if kind is not None:            # the common codecs (classes), known before asking for nested_schema
        return native.FieldReader(name, pointer_offset, getattr(native, kind), codec.read, _IMMUTABLE, ProxyBehaviour)
    nested = getattr(codec, 'nested_schema', None)
    if nested is not None:
        kind, read = native.KIND_STRUCT, nested
    else:
        kind, read = native.KIND_GENERIC, codec.read
    return native.FieldReader(name, pointer_offset, kind, read, _IMMUTABLE, ProxyBehaviour)


def _metaclass_for(bases, own):
    """``own``, or a combination of it with the metaclasses of user-supplied bases."""
    if len(bases) == 1:             # no proxy bases: the proxy's own base has metaclass ``own``
        return own
    metas = [type(base) for base in bases if type(base) is not type and not issubclass(own, type(base))]
    if not metas:
        return own
    return type(own)('%sWithBases' % own.__name__, (own,) + tuple(dict.fromkeys(metas)), {})


_CTYPES = {
    'b': ctypes.c_int8, 'B': ctypes.c_uint8, 'h': ctypes.c_int16, 'H': ctypes.c_uint16,
    'i': ctypes.c_int32, 'I': ctypes.c_uint32, 'q': ctypes.c_int64, 'Q': ctypes.c_uint64,
    'f': ctypes.c_float, 'd': ctypes.c_double, '?': ctypes.c_bool,
}


class _SnapshotAccessors:
    """``_proxy_accessors`` of a snapshot class: the LiveFields, made when ``type(p).x`` first asks.

    Opening a file makes the full shape's class; its accessors serve only ``cas``/``add`` on
    writable buffers and introspection, so they are not made on that path.
    """
    __slots__ = ('owner', 'fields', 'made')

    def __init__(self, owner, fields):
        self.owner = owner
        self.fields = fields        # (name, struct code, offset) of each fixed-size value
        self.made = None

    def get(self, name, default=None):
        if self.made is None:
            self.made = {name: LiveField(self.owner, name, code, offset) for name, code, offset in self.fields}
        return self.made.get(name, default)


def build_shape_class(schema, has, none, writable):
    """The proxy class of structs of ``schema`` with these bitmaps, over a (non-)writable buffer."""
    layout = schema.shape(has, none)
    native = _native.objects
    owner = schema.display_name
    namespace = {}
    accessors = {}
    setters = {}
    fixed = []              # (name, struct code, offset) of the fixed-size values
    item_fields = []        # (name, tuple index) of the fixed-size values of a snapshot
    if writable:
        ctypes_fields = [('_proxy_has', _CTYPES[schema.bitmap_format]), ('_proxy_none', _CTYPES[schema.bitmap_format])]
    index = VALUES_START
    for field in layout.fields:
        if field.codec is not None:
            namespace[field.name] = _lazy_field(field.name, field.offset, field.codec, writable)
            if writable:
                ctypes_fields.append(('_proxy_pointer_' + field.name, ctypes.c_int64))
            continue
        if writable:
            live = accessors[field.name] = LiveField(owner, field.name, field.struct_code, field.offset)
            ctypes_fields.append((field.name, _CTYPES[field.struct_code]))
            setters[field.name] = live.__set__
        else:
            fixed.append((field.name, field.struct_code, field.offset))
            if native is None:      # with the C module, member descriptors (_install_item_fields)
                namespace[field.name] = _tuplegetter(index, field.name)
            item_fields.append((field.name, index))
            index += 1
    if not writable:
        accessors = _SnapshotAccessors(owner, fixed)
    if none or has != (1 << len(schema.slot_keys)) - 1:      # some slots are None or absent
        for bit, name in enumerate(schema.slot_keys):
            if none >> bit & 1:
                namespace[name] = None
            elif not has >> bit & 1:
                namespace[name] = AbsentField(owner, name)
    if writable:
        namespace['_pack_'] = 1
        namespace['_fields_'] = ctypes_fields
    return _shape_class(schema, owner, namespace, item_fields, accessors, setters if writable else None)


def _shape_class(schema, owner, namespace, item_fields, accessors, setters):
    """The shape class with this namespace (its attributes) and the proxy machinery's entries;
    ``setters`` is None for a snapshot class (read-only)."""
    namespace['_proxy_schema'] = schema
    namespace['_proxy_item_indexes'] = item_fields
    namespace['_proxy_accessors'] = accessors
    namespace['_proxy_setters'] = _READ_ONLY_MARK if setters is None else setters
    if setters is None:
        base, metaclass = StructProxy, ProxyType
    else:
        base, metaclass = LiveStructProxy, LiveProxyType
    bases = tuple(schema.proxy_bases) + (base,)
    name = '%sProxy' % (owner,)
    native = _native.objects
    if setters is None and len(bases) == 1 and hasattr(native, 'snapshot_class'):
        # The same class as the class statement below makes, without type()'s cost (see
        # snapshot_class in _native/proxies.c): __init_subclass__'s item fields included.
        return native.snapshot_class('%s.%s' % (__name__, name), base, metaclass, namespace,
                                     _BASE_ITEM_FIELDS + item_fields)
    namespace['__module__'] = __name__
    cls = _metaclass_for(bases, metaclass)(name, bases, namespace)
    cls.__qualname__ = name
    return cls


def _full_snapshot_layout(schema):
    """(class, snapshot format, fixed size, SnapshotUnpacker fields) of the full shape's
    read-only proxies, laid out in C (``snapshot_layout`` in ``_native/proxies.c``), or None.

    Why: this is what opening a file in a fresh process waits on.  Laid out in Python (a
    :class:`~sharedbuffers.schema.Shape`, then :func:`build_shape_class`'s loop and one
    :func:`_lazy_field` per pointer) it ran about a thousand bytecodes, each touching code and
    objects for the first time.  The class is the same either way (a test compares them).
    None when the C module is missing, or for a layout it leaves to Python.
    """
    native = _native.objects
    if native is None:
        return None
    layout = native.snapshot_layout(schema.slot_keys, schema.slot_types, FIXED_FORMATS, schema.bitmap_format,
                                    _C_FIELD_KIND_NUMBERS, _IMMUTABLE, ProxyBehaviour)
    if layout is None:
        return None
    readers, item_fields, fixed, unpacker_fields, snapshot_format, fixed_size = layout
    owner = schema.display_name
    cls = _shape_class(schema, owner, readers, item_fields, _SnapshotAccessors(owner, fixed), None)
    return cls, snapshot_format, fixed_size, unpacker_fields


# One ctypes view ("anchor") per writable buffer holds a buffer export, which pins the memory:
# a bytearray cannot be resized, nor an mmap closed, while the anchor lives.  Proxies are laid
# at anchor address + offset (cheaper than a new export each) and keep the anchor alive.  The
# anchor is one c_char at the buffer's start: an array type as long as the buffer would cost
# a type lookup (a new type for each length) every time the last proxy of a buffer dies.
_anchors = {}       # id(buffer) -> weakref to its anchor (the anchor keeps the buffer alive)
_addressof = ctypes.addressof
_char_over = ctypes.c_char.from_buffer


def _anchor_of(buffer):
    reference = _anchors.get(id(buffer))
    anchor = reference() if reference is not None else None
    if anchor is None:
        anchor = _char_over(buffer)
        key = id(buffer)
        _anchors[key] = weakref.ref(anchor, lambda dead, key=key: _forget_anchor(key, dead))
    return anchor


def _forget_anchor(key, dead):
    if _anchors.get(key) is dead:
        del _anchors[key]


def live_proxy_maker(cls):
    """``make(buffer, offset) -> live proxy`` for class ``cls``.

    Class attributes are looked up here, once: on proxy classes they go through the
    metaclass's ``__getattribute__``, which is Python code.  With the C module the maker is a
    ``LiveMaker`` (``_native/live_proxies.c``), which runs the function below only for the
    cases it leaves to Python (its errors among them).
    """
    size = ctypes.sizeof(cls)
    from_address = type.__getattribute__(cls, 'from_address')
    owner = type.__getattribute__(cls, '_proxy_schema').display_name

    def make(buffer, offset):
        if offset + size > len(buffer):     # offset >= 0 was checked by the caller
            raise out_of_bounds('%s struct' % owner, offset, size, len(buffer))
        anchor = _anchor_of(buffer)
        proxy = from_address(_addressof(anchor) + offset)
        attributes = proxy.__dict__
        attributes['_proxy_buffer'] = buffer
        attributes['_proxy_offset'] = offset
        attributes['_proxy_anchor'] = anchor
        return proxy
    if _native.objects is not None:
        return _native.objects.LiveMaker(from_address, size, make)
    return make


def build_unpacker(schema):
    """The function ``unpack_from(buf, offs=0, ...) -> proxy`` of ``schema`` (``offset=`` too).

    The fast path guesses the shape where every attribute is present and not None: one
    ``struct.unpack_from`` reads header and fixed-size fields, and the header confirms the
    guess.  Any other shape is looked up by its bitmaps (its class made on first use).
    """
    shapes = {}
    full = _full_snapshot_layout(schema)
    full_format = full[1] if full is not None else schema.full_snapshot_format()
    namespace = {
        'shapes': shapes,
        'FULL_READ_ONLY': None,
        'make': schema._make_shape_reader,
        'new': _new_tuple,
        'as_byte_buffer': as_byte_buffer,
        'is_writable': is_writable,
        'struct_error': (struct.error, OverflowError),     # OverflowError: offset beyond ssize_t
        'bad_offset': _bad_offset,
        'bad_header': _bad_header,
        'schema': schema,
    }
    slot_mask = (1 << len(schema.slot_keys)) - 1
    name = 'unpack %s' % schema.display_name
    if full is None:
        if full_format:
            # The class only: the struct reader _make_shape_reader would add is read_full below.
            namespace['FULL_READ_ONLY'] = build_shape_class(schema, slot_mask, 0, False)
        _add_struct_readers(namespace, schema, full_format)
        return compile_function(_unpacker_source(full_format, slot_mask), 'unpack_from', namespace, name), shapes
    # The fast path, in C; every other case runs the generated function, which is written and
    # compiled when first needed: opening a file of full-shape records never pays for it, nor
    # for its struct readers (compiling a struct format is a cost of a cold open too).
    namespace['FULL_READ_ONLY'], _, fixed_size, fixed = full

    def live_full():
        # The full shape's live maker, from the cache the generated function uses, so that a
        # live proxy has the same class whichever of the two made it.
        key = slot_mask << 65 | 1
        entry = shapes.get(key)
        if entry is None:
            entry = shapes[key] = schema._make_shape_reader(slot_mask, 0, 1)
        return entry[1]
    unpack_from = _native.objects.SnapshotUnpacker(
        namespace['FULL_READ_ONLY'], _compiled_on_first_call(full_format, slot_mask, namespace, name), slot_mask,
        schema.bitmap_size // 8, fixed_size, fixed, live_full)
    return unpack_from, shapes


def _add_struct_readers(namespace, schema, full_format):
    """``read_header`` and ``read_full``: the struct readers only the generated function uses."""
    namespace['read_header'] = struct.Struct('=' + schema.bitmap_format * 2).unpack_from
    namespace['read_full'] = struct.Struct(full_format).unpack_from if full_format else None


def _compiled_on_first_call(full_format, slot_mask, namespace, name):
    """A stand-in for the generated ``unpack_from`` that writes and compiles it when first called."""
    compiled = []

    def unpack_from(buf, offs=0, idmap=None, factory_class_new=None, proxy_into=None, *, offset=None):
        if not compiled:
            _add_struct_readers(namespace, namespace['schema'], full_format)
            source = _unpacker_source(full_format, slot_mask)
            compiled.append(compile_function(source, 'unpack_from', namespace, name))
        return compiled[0](buf, offs if offset is None else offset, idmap, factory_class_new, proxy_into)
    return unpack_from


def _unpacker_source(full_format, slot_mask):
    """Source of the generated ``unpack_from`` (names from build_unpacker's namespace)."""
    def fast_path(indent, cls):
        if not full_format:
            return []
        return [indent + line for line in (
            'try:',
            '    values = read_full(buf, offset)',
            'except struct_error:',
            '    pass',
            'else:',
            '    if values[0] == %#x and not values[1] and offset >= 0:' % slot_mask,
            '        return new(%s, (buf, offset) + values)' % cls)]
    return '\n'.join([
        # `offs` is 1.x's name for the offset (callers pass it by keyword); `offset` is taken too.
        'def unpack_from(buf, offs=0, idmap=None, factory_class_new=None, proxy_into=None, *, offset=None):',
        '    if offset is None:',
        '        offset = offs',
        '    if type(buf) is bytes:',
        '        writable = 0',
    ] + fast_path('        ', 'FULL_READ_ONLY') + [
        '    elif type(buf) is bytearray:',
        '        writable = 1',
        # A read-only byte memoryview (files mapped read-only) is the common case of arrays
        # and mappings: recognised here without the generic buffer inspection below.
        '    elif type(buf) is memoryview and buf.readonly and buf.format == "B" and buf.ndim == 1:',
        '        writable = 0',
    ] + (fast_path('        ', 'FULL_READ_ONLY') or []) + [
        '    else:',
        '        buf = as_byte_buffer(buf)',
        '        writable = 1 if is_writable(buf) else 0',
        '        if not writable:',
    ] + (fast_path('            ', 'FULL_READ_ONLY') or ['            pass']) + [
        '    if offset < 0:',
        '        raise bad_offset(schema, buf, offset)',
        '    try:',
        '        has, none = read_header(buf, offset)',
        '    except struct_error:',
        '        raise bad_offset(schema, buf, offset) from None',
        '    key = has << 65 | none << 1 | writable',
        '    entry = shapes.get(key)',
        '    if entry is None:',
        '        if has & ~%#x or none & ~has:' % slot_mask,
        '            raise bad_header(schema, offset, has, none)',
        '        entry = shapes[key] = make(has, none, writable)',
        '    if writable:',
        '        return entry[1](buf, offset)',
        '    try:',
        '        return new(entry[0], (buf, offset) + entry[1](buf, offset))',
        '    except struct_error:',
        '        raise bad_offset(schema, buf, offset, schema.shape(has, none).fixed_size) from None',
    ]) + '\n'


def _bad_offset(schema, buffer, offset, size=None):
    if size is None:
        size = struct.calcsize('=' + schema.bitmap_format * 2)
    if offset < 0:
        return IndexError('%s struct offset %d is negative' % (schema.display_name, offset))
    return out_of_bounds('%s struct' % schema.display_name, offset, size, len(buffer))


def _bad_header(schema, offset, has, none):
    return ValueError('corrupt %s struct header at offset %d: has=%#x none=%#x for %d attributes'
                      % (schema.display_name, offset, has, none, len(schema.slot_keys)))


def empty_proxy(cls):
    """An instance of ``cls`` pointing at nothing (every attribute absent)."""
    return _new_tuple(cls, (None, 0, 0, 0))
