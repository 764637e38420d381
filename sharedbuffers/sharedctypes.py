"""Typed values and arrays in shared memory, as in ``multiprocessing.sharedctypes``.

The same names and signatures: ``RawValue``, ``RawArray``, ``Value``, ``Array``,
``synchronized``, ``copy``.  A type is an ``array``-module typecode (``'d'``, ``'i'``, ``'c'``
...), a ctypes type (including ``Structure`` subclasses), or, beyond the stdlib, a
sharedbuffers schema (a :class:`~sharedbuffers.mapped_struct.Schema` or a class with
``__slot_types__``): a structured value is then a live proxy whose numeric fields are read and
written in shared memory (``type(p).field.add``/``cas`` update them atomically), and an
``Array`` of records is a typed array built in shared memory.

What differs from the stdlib, and why:

* The memory comes from :mod:`sharedbuffers.shared_memory` (named segments), so a raw value
  or array (a plain ctypes object, as in the stdlib) pickles as *(segment name, offset)* at
  any time (through a queue, a pipe, a
  manager), not only while spawning a child; the receiver maps the same memory, nothing is
  copied.  Under ``fork`` the child simply inherits the mapping.
* Filling from a buffer (a numpy array, an ``array.array``, bytes) is one ``memmove``; any
  other iterable is converted by ``array.array`` in C before the copy.  The stdlib unpacks
  the initializer into ``__init__(*values)``.
* Synchronized wrappers call the lock's ``acquire``/``release`` directly (bound once, called
  from a local) rather than through a ``with`` block: the same semantics, less interpreter
  work per access (see benchmarks/test_bench_sharedctypes.py).
"""
import array
import copyreg
import ctypes
import multiprocessing

from . import shared_memory
from .codegen import compile_function

__all__ = ['RawValue', 'RawArray', 'Value', 'Array', 'synchronized', 'copy',
           'Synchronized', 'SynchronizedArray', 'SynchronizedString', 'SynchronizedBase', 'typecode_to_type']

typecode_to_type = {
    'c': ctypes.c_char, 'u': ctypes.c_wchar,
    'b': ctypes.c_byte, 'B': ctypes.c_ubyte,
    'h': ctypes.c_short, 'H': ctypes.c_ushort,
    'i': ctypes.c_int, 'I': ctypes.c_uint,
    'l': ctypes.c_long, 'L': ctypes.c_ulong,
    'q': ctypes.c_longlong, 'Q': ctypes.c_ulonglong,
    'f': ctypes.c_float, 'd': ctypes.c_double,
}
_ARRAY_CODES = {ctype: code for code, ctype in typecode_to_type.items() if code not in 'cu'}
_CTYPES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)


# -- ctypes types that pickle as a reference to their shared memory -----------------------

def _describe(ctype):
    """A picklable description of a ctypes type (array types are made on the fly, not importable)."""
    if issubclass(ctype, ctypes.Array):
        return ('array', _describe(ctype._type_), ctype._length_)
    return ('type', ctype)


def _rebuild_type(description):
    if description[0] == 'array':
        return _rebuild_type(description[1]) * description[2]
    return description[1]


def _shared_instance(block, description):
    return _instance_at(block, _rebuild_type(description))


def _instance_at(block, ctype):
    """The ctypes object of type ``ctype`` over ``block`` (kept alive by the object).

    The object is an instance of the plain ctypes type, as the stdlib's are: a subclass,
    even an empty one, makes every ``.value`` read or item access 1-2% slower, and those are
    what users time against ``multiprocessing.sharedctypes``.  It pickles by reference
    through a ``copyreg`` reducer registered for the type, which hands every other instance
    of the type to ctypes' own reduction, unchanged.
    """
    if ctype not in _reduced_by_reference:
        copyreg.pickle(ctype, _reduce_shared_value)
        _reduced_by_reference.add(ctype)
    obj = ctype.from_buffer(block.segment.buffer, block.offset)
    obj._sb_block = block
    return obj


_reduced_by_reference = set()


def _reduce_shared_value(obj):
    block = obj.__dict__.get('_sb_block')
    if block is None:
        return obj.__reduce__()         # not ours: ctypes pickles a copy of the bytes
    return (_shared_instance, (block, _describe(type(obj))))


def _ctype_of(typecode_or_type):
    if isinstance(typecode_or_type, str):
        try:
            return typecode_to_type[typecode_or_type]
        except KeyError:
            raise TypeError('unknown typecode %r; use one of %s or a ctypes type'
                            % (typecode_or_type, ''.join(typecode_to_type))) from None
    if isinstance(typecode_or_type, type) and issubclass(typecode_or_type, _CTYPES):
        return typecode_or_type
    return None


def _schema_of(typecode_or_type):
    from .schema import Schema
    if isinstance(typecode_or_type, Schema):
        return typecode_or_type
    if isinstance(typecode_or_type, type) and hasattr(typecode_or_type, '__slot_types__'):
        return Schema.from_typed_slots(typecode_or_type)
    raise TypeError('expected an array typecode, a ctypes type or a sharedbuffers schema, not %r'
                    % (typecode_or_type,))


def _new(ctype):
    return _instance_at(shared_memory.heap.allocate(ctypes.sizeof(ctype)), ctype)


# -- raw values and arrays ----------------------------------------------------------------

def RawValue(typecode_or_type, *args):
    """A ctypes object (or, for a schema, a live struct proxy) in shared memory, no lock."""
    ctype = _ctype_of(typecode_or_type)
    if ctype is None:
        return _struct_value(_schema_of(typecode_or_type), *args)
    obj = _new(ctype)
    if args:
        obj.__init__(*args)
    return obj


def RawArray(typecode_or_type, size_or_initializer):
    """A ctypes array in shared memory (or, for a schema, a typed array of records), no lock."""
    ctype = _ctype_of(typecode_or_type)
    if ctype is None:
        return _record_array(_schema_of(typecode_or_type), size_or_initializer)
    if isinstance(size_or_initializer, int):
        if size_or_initializer < 0:
            raise ValueError('array size must be non-negative, not %d' % size_or_initializer)
        return _new(ctype * size_or_initializer)
    source = _initializer_bytes(ctype, size_or_initializer)
    if source is not None:
        result = _new(ctype * (source.nbytes // ctypes.sizeof(ctype)))
        if source.nbytes:
            ctypes.memmove(result, _address_of(source), source.nbytes)
        return result
    values = size_or_initializer
    if not hasattr(values, '__len__'):
        values = list(values)
    result = _new(ctype * len(values))
    result[:] = values
    return result


def _initializer_bytes(ctype, initializer):
    """``initializer`` as contiguous bytes of ``ctype`` values, or None to let ctypes convert it.

    Numbers go through ``array.array`` (a C loop, with range checks) and numpy arrays are
    cast only when no value can change (``casting='safe'``).
    """
    if ctype is ctypes.c_char and isinstance(initializer, (bytes, bytearray)):
        return memoryview(initializer)
    code = _ARRAY_CODES.get(ctype)
    if code is None:
        return None
    if type(initializer).__module__ == 'numpy' and hasattr(initializer, 'dtype'):
        import numpy
        wanted = numpy.dtype(ctype)
        values = numpy.asarray(initializer).reshape(-1)
        if values.dtype != wanted:
            if not numpy.can_cast(values.dtype, wanted, 'safe'):
                raise TypeError('cannot store %s values in a %r array without changing them'
                                % (values.dtype, code))
            values = values.astype(wanted)
        return memoryview(numpy.ascontiguousarray(values)).cast('B')
    if isinstance(initializer, (str, bytes, bytearray)):
        return None
    try:
        return memoryview(array.array(code, initializer)).cast('B')
    except TypeError:
        return None     # not numbers (ctypes explains, or converts what it accepts)


def _address_of(view):
    import numpy
    return numpy.frombuffer(view, numpy.uint8).__array_interface__['data'][0]


# -- structured values (sharedbuffers schemas) --------------------------------------------

def _struct_value(schema, obj=None):
    """``obj`` packed into shared memory; the result is a live proxy over it."""
    if obj is None:
        raise TypeError('a structured shared value needs the object to store')
    size = len(schema.pack(obj))
    block = shared_memory.heap.allocate(size + 16)      # + room to align inside the block
    buffer = block.segment.buffer
    start = block.offset
    schema.pack_into(obj, buffer, start)
    proxy = schema.unpack_from(buffer, start)
    proxy.__dict__['_sb_block'] = block
    return proxy


def _record_array(schema, items):
    from .containers.arrays import MappedArrayProxyBase
    if isinstance(items, int):
        raise TypeError('an Array of records is built from the records, not from a size')
    array_class = type('SharedRecordArray', (MappedArrayProxyBase,), {'schema': schema})
    return array_class.build_shared(items)


# -- synchronized wrappers ----------------------------------------------------------------

def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A value in shared memory behind a process-shared lock (``lock=False``: the raw value)."""
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx))


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """An array in shared memory behind a process-shared lock (``lock=False``: the raw array)."""
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    return synchronized(obj, _lock_for(lock, ctx))


def _lock_for(lock, ctx):
    if lock is True or lock is None:
        return (ctx or multiprocessing).RLock()
    if not hasattr(lock, 'acquire'):
        raise AttributeError("%r has no method 'acquire'" % (lock,))
    return lock


def synchronized(obj, lock=None, ctx=None):
    """``obj`` wrapped so that every access holds ``lock`` (a new RLock when None)."""
    if isinstance(obj, SynchronizedBase):
        raise TypeError('object is already synchronized')
    lock = lock or (ctx or multiprocessing).RLock()
    if isinstance(obj, ctypes._SimpleCData):
        return Synchronized(obj, lock)
    if isinstance(obj, ctypes.Array):
        if obj._type_ is ctypes.c_char:
            return SynchronizedString(obj, lock)
        return SynchronizedArray(obj, lock)
    if isinstance(obj, (ctypes.Structure, ctypes.Union)):
        return _synchronized_structure_class(type(obj))(obj, lock)
    return SynchronizedBase(obj, lock)


_structure_wrappers = {}


def _synchronized_structure_class(ctype):
    """A wrapper class with one locked property per field of a ctypes structure."""
    wrapper = _structure_wrappers.get(ctype)
    if wrapper is None:
        names = [field[0] for klass in reversed(ctype.__mro__) for field in vars(klass).get('_fields_', ())]
        wrapper = type('Synchronized' + ctype.__name__, (SynchronizedBase,),
                       dict({name: _locked_property(name) for name in names}, __slots__=()))
        _structure_wrappers[ctype] = wrapper
    return wrapper


_LOCKED_PROPERTY = """
def get(self):
    acquire = self.acquire      # a local call is faster than a slot-method call
    acquire()
    try:
        return self._obj.{name}
    finally:
        self.release()

def set(self, value):
    acquire = self.acquire
    acquire()
    try:
        self._obj.{name} = value
    finally:
        self.release()
"""


def _locked_property(name):
    """A property reading and writing ``self._obj.<name>`` under the lock.

    Generated with the attribute name written into the code (``getattr`` with a name would
    add a call to every access: this is the hot path the stdlib is measured against).
    """
    if not name.isidentifier():
        raise ValueError('%r is not an attribute name' % (name,))
    namespace = {}
    get = compile_function(_LOCKED_PROPERTY.format(name=name), 'get', namespace, 'synchronized .%s' % name)
    return property(get, namespace['set'], doc='%s, read and written under the lock' % name)


class SynchronizedBase:
    """A shared object and the lock that guards it; a context manager holding the lock."""
    __slots__ = ('_obj', '_lock', 'acquire', 'release')

    def __init__(self, obj, lock):
        self._obj = obj
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)

    def __reduce__(self):
        # The lock decides when it may travel (multiprocessing locks: only to a starting child).
        return (synchronized, (self._obj, self._lock))

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __repr__(self):
        return '<%s wrapper for %r>' % (type(self).__name__, self._obj)


class Synchronized(SynchronizedBase):
    """A synchronized simple value: ``.value`` reads and writes under the lock."""
    __slots__ = ()


class SynchronizedArray(SynchronizedBase):
    """A synchronized array: indexing and slicing under the lock."""
    __slots__ = ()

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, index):
        acquire = self.acquire      # a local call is faster than a slot-method call
        acquire()
        try:
            return self._obj[index]
        finally:
            self.release()

    def __setitem__(self, index, value):
        acquire = self.acquire      # a local call is faster than a slot-method call
        acquire()
        try:
            self._obj[index] = value
        finally:
            self.release()


class SynchronizedString(SynchronizedArray):
    """A synchronized ``c_char`` array: ``.value`` and ``.raw`` under the lock."""
    __slots__ = ()


Synchronized.value = _locked_property('value')
SynchronizedString.value = _locked_property('value')
SynchronizedString.raw = _locked_property('raw')


def copy(obj):
    """A new shared object with the same type and contents as ``obj`` (a raw ctypes object)."""
    if isinstance(obj, SynchronizedBase):
        obj = obj.get_obj()
    ctype = type(obj)
    result = _new(ctype)
    ctypes.memmove(ctypes.addressof(result), ctypes.addressof(obj), ctypes.sizeof(ctype))
    return result
