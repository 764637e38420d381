"""Proxied containers: lazy, read-only views of sequences, sets and dicts in a buffer.

The bytes are those of list/tuple (§4.4), frozenset (§4.5) and dict (§4.6); only the Python
type returned differs.  Each view is a real ``collections.abc`` container (Sequence, Set,
Mapping) that decodes an element when it is asked for, never caching a mutable value, so
reading twice can never hand out a shared, mutated object.
"""
import bisect
import collections.abc
import itertools
import struct

from .. import _native
from .._facade import public
from ..buffers import as_byte_buffer
from ..stable_hash import stable_hash
from .base import VariableCodec, rtti
from .dicts import DictView, write_dict
from .sequences import sequence_layout, write_sequence
from .sets import read_set, write_set

__all__ = ['proxied_list', 'proxied_tuple', 'proxied_frozenset', 'proxied_dict']

_NONE_POINTER = 1
_ELEMENT_READERS = {code: struct.Struct('=' + chr(code)).unpack_from for code in b'BbHhiIqQdf'}
_ELEMENT_READERS[ord('T')] = struct.Struct('=i').unpack_from
_ELEMENT_READERS[ord('t')] = struct.Struct('=q').unpack_from
_ELEMENT_SIZES = {code: struct.calcsize('=' + chr(code)) for code in b'BbHhiIqQdf'}
_ELEMENT_SIZES[ord('T')] = 4
_ELEMENT_SIZES[ord('t')] = 8


_POINTER_CODES = frozenset(b'Tt')
_NUMBERS_PER_CALL = 4096


class _SequenceView:
    """Element access to the sequence at an offset, by underlying index."""
    __slots__ = ('buffer', 'offset', 'code', 'data', 'length', 'numeric', '_read', '_size')

    def __init__(self, buffer, offset):
        self.buffer = buffer
        self.offset = offset
        self.code, self.length, self.data = sequence_layout(buffer, offset)
        self.numeric = self.code not in _POINTER_CODES
        self._read = _ELEMENT_READERS[self.code]
        self._size = _ELEMENT_SIZES[self.code]

    def element(self, index):
        raw = self._read(self.buffer, self.data + index * self._size)[0]
        if self.numeric:
            return raw
        if raw == _NONE_POINTER:
            return None
        return rtti().read_object(self.buffer, self.offset + raw)

    def read_number(self, index):
        """Element ``index`` of a numeric array."""
        return self._read(self.buffer, self.data + index * self._size)[0]

    def numbers(self, start, stop):
        """Elements start..stop-1 of a numeric array, as a tuple made by one struct call."""
        return struct.unpack_from('=%d%s' % (stop - start, chr(self.code)), self.buffer,
                                  self.data + start * self._size)

    def number_items(self):
        """A numeric array as a memoryview of its numbers: indexing, and bisect over it, run in C.

        A temporary: kept, it would hold an export of the buffer (an mmap could not close)."""
        end = self.data + self.length * self._size
        return memoryview(self.buffer)[self.data:end].cast(chr(self.code))


def _number_run(view, indices):
    """The C run of numbers ``indices`` selects (see number_runs.c), or None (Python indexes)."""
    native = _native.objects
    if native is None or not view.numeric:
        return None
    return native.NumberRun(view.buffer, view.data, chr(view.code), indices.start, indices.step, len(indices))


@public
class proxied_list(VariableCodec, collections.abc.Sequence):
    """A lazy, read-only list over a sequence in a buffer (RTTI code ``E``)."""
    __slots__ = ('_view', '_range', '_numbers')
    typecode = b'E'
    _opening, _closing = '[', ']'

    @classmethod
    def _over(cls, buffer, offset, indices=None):
        proxy = object.__new__(cls)
        proxy._view = view = _SequenceView(buffer, offset)
        proxy._range = indices = range(view.length) if indices is None else indices
        proxy._numbers = _number_run(view, indices)
        return proxy

    @staticmethod
    def write(value, context):
        return write_sequence(value, context)

    @classmethod
    def read(cls, buffer, offset):
        return cls._over(buffer, offset)

    @classmethod
    def unpack_from(cls, buf, offs=0, idmap=None):
        return cls._over(as_byte_buffer(buf), offs)

    def __len__(self):
        return len(self._range)

    def __getitem__(self, index):
        view = self._view
        if view.numeric and type(index) is int:     # a number: read in place, no element() call
            return view.read_number(self._range[index])
        if isinstance(index, slice):
            sliced = object.__new__(type(self))
            sliced._view = view
            sliced._range = indices = self._range[index]
            sliced._numbers = _number_run(view, indices)
            return sliced
        return view.element(self._range[index])

    def __iter__(self):
        view, indexes = self._view, self._range
        if view.numeric and indexes.step == 1:      # numbers: a chunk per struct call, chained in C
            stop = indexes.stop
            return itertools.chain.from_iterable(
                view.numbers(start, min(start + _NUMBERS_PER_CALL, stop))
                for start in range(indexes.start, stop, _NUMBERS_PER_CALL))
        return map(view.element, indexes)

    def iter(self, proxy_into=None, mask=None):
        """The elements, or those whose ``mask`` entry is true."""
        if mask is None:
            return iter(self)
        element = self._view.element
        return (element(index) for index, keep in zip(self._range, mask) if keep)

    iter_fast = iter

    def getter(self, proxy_into=None, fast=False):
        """A callable returning the element at an index."""
        return self.__getitem__

    @property
    def buffer(self):
        return self._view.buffer

    @property
    def offset(self):
        return self._view.offset

    def _compare(self, other):
        if isinstance(other, (list, tuple, proxied_list)):
            return tuple(self), tuple(other)
        return None

    def __eq__(self, other):
        pair = self._compare(other)
        if pair is None:
            return NotImplemented
        return len(pair[0]) == len(pair[1]) and pair[0] == pair[1]

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __lt__(self, other):
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other):
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other):
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other):
        pair = self._compare(other)
        return NotImplemented if pair is None else pair[0] >= pair[1]

    __hash__ = None

    def __str__(self):
        return self._opening + ','.join(map(repr, self)) + self._closing

    def __repr__(self):
        return '%s(%s%s%s)' % (type(self).__name__, self._opening, ', '.join(map(repr, self)), self._closing)

    def __reduce__(self):
        return (list, (list(self),))


if _native.objects is not None:
    # An integer index of a list of numbers is read by the instance's C NumberRun without a
    # Python frame; everything else runs the method above.
    proxied_list.__getitem__ = _native.objects.NumberRunLookup(proxied_list.__getitem__, proxied_list._numbers)


@public
class proxied_tuple(proxied_list):
    """A lazy, read-only, hashable tuple over a sequence in a buffer (RTTI code ``W``)."""
    __slots__ = ()
    typecode = b'W'
    _opening, _closing = '(', ')'

    def __hash__(self):
        return hash(tuple(self))

    def __reduce__(self):
        return (tuple, (tuple(self),))


@public
class proxied_frozenset(VariableCodec, collections.abc.Set):
    """A lazy, hashable frozenset over a set in a buffer (RTTI code ``z``).

    Membership is a bit test for small-int bitmaps, a binary search by value for numeric
    arrays, and a binary search by stable hash (then a scan of the equal-hash run) for
    pointer tables.
    """
    __slots__ = ('_buffer', '_offset', '_bitmap', '_view')
    typecode = b'z'

    @classmethod
    def read(cls, buffer, offset):
        proxy = object.__new__(cls)
        proxy._buffer = buffer
        proxy._offset = offset
        code = buffer[offset] if offset < len(buffer) else None
        if code in (ord('m'), ord('M')):
            proxy._bitmap = read_set(buffer, offset)
            proxy._view = None
        else:
            proxy._bitmap = None
            proxy._view = _SequenceView(buffer, offset)
        return proxy

    @staticmethod
    def write(value, context):
        return write_set(value, context)

    @classmethod
    def unpack_from(cls, buf, offs=0, idmap=None):
        return cls.read(as_byte_buffer(buf), offs)

    def __len__(self):
        return len(self._bitmap) if self._bitmap is not None else self._view.length

    def __iter__(self):
        if self._bitmap is not None:
            return iter(self._bitmap)
        element = self._view.element
        return (element(index) for index in range(self._view.length))

    def __contains__(self, item):
        if self._bitmap is not None:
            return item in self._bitmap
        view = self._view
        if not view.numeric:
            return self._contains_by_hash(item)
        native = _native.objects
        if native is not None:      # the bisect below, in C, for an exact int or float of the array's kind
            found = native.numbers_contain(view.buffer, view.offset, item)
            if found is not NotImplemented:
                return found
        if isinstance(item, (bool, int, float)) and item == item:
            numbers = view.number_items()
            position = bisect.bisect_left(numbers, item)
            return position < view.length and numbers[position] == item
        return False

    def _contains_by_hash(self, item):
        try:
            wanted = stable_hash(item)
        except TypeError:
            return False
        hashes = _ElementHashes(self._view)
        position = bisect.bisect_left(hashes, wanted)
        while position < self._view.length and hashes[position] == wanted:
            if self._view.element(position) == item:
                return True
            position += 1
        return False

    @classmethod
    def _from_iterable(cls, iterable):
        return frozenset(iterable)

    def __hash__(self):
        return hash(frozenset(self))

    def issubset(self, other):
        return self <= frozenset(other)

    def issuperset(self, other):
        return self >= frozenset(other)

    def union(self, *others):
        return frozenset(self).union(*others)

    def intersection(self, *others):
        return frozenset(self).intersection(*others)

    def difference(self, *others):
        return frozenset(self).difference(*others)

    def symmetric_difference(self, other):
        return frozenset(self).symmetric_difference(other)

    def copy(self):
        return self

    def __repr__(self):
        return 'proxied_frozenset(%r)' % (sorted(self, key=repr),)

    def __reduce__(self):
        return (frozenset, (frozenset(self),))


class _ElementHashes:
    """Sequence adapter for bisect: the stable hash of element i of a hash-ordered table."""
    __slots__ = ('view',)

    def __init__(self, view):
        self.view = view

    def __len__(self):
        return self.view.length

    def __getitem__(self, index):
        return stable_hash(self.view.element(index))


@public
class proxied_dict(VariableCodec, collections.abc.Mapping):
    """A lazy, read-only mapping over a dict in a buffer (RTTI code ``M``)."""
    __slots__ = ('_dict', '_values', '_dict_offset')
    typecode = b'M'

    @classmethod
    def read(cls, buffer, offset):
        proxy = object.__new__(cls)
        proxy._dict_offset = offset
        proxy._dict = DictView(buffer, offset)
        proxy._values = proxied_list._over(buffer, proxy._dict.values_offset)
        return proxy

    @staticmethod
    def write(value, context):
        if isinstance(value, dict):
            return write_dict(value, context)
        converted = dict(value.stored_items()) if isinstance(value, proxied_dict) else dict(value.items())
        if context.isolated is value:       # the top-level value of the pack, whatever its type
            context.isolated = converted
        return write_dict(converted, context)

    @classmethod
    def unpack_from(cls, buf, offs=0, idmap=None):
        return cls.read(as_byte_buffer(buf), offs)

    def __getitem__(self, key):
        missing = _MISSING
        number = self._dict.index.get(key, missing)
        if number is missing:
            raise KeyError(key)
        return self._values[number]

    # get and `in` without Mapping's try/except around __getitem__ (a lookup is one C call)
    def get(self, key, default=None):
        number = self._dict.index.get(key, _MISSING)
        return default if number is _MISSING else self._values[number]

    def __contains__(self, key):
        return self._dict.index.get(key, _MISSING) is not _MISSING

    def __len__(self):
        return self._dict.index.count

    def __iter__(self):
        for key, _ in self._dict.index.items():
            yield key

    def iteritems(self):
        for key, number in self._dict.index.items():
            yield key, self._values[number]

    def stored_items(self):
        """(key, value) pairs in the order of the original dict (its values are stored in it),
        so that re-packing a view reproduces the bytes it was read from."""
        rows = sorted(self._dict.index.items(), key=lambda row: row[1])
        return [(key, self._values[number]) for key, number in rows]

    def iterkeys(self):
        return iter(self)

    def itervalues(self):
        for _, number in self._dict.index.items():
            yield self._values[number]

    def has_key(self, key):
        return key in self

    # 1.x's Python 2 names for the views
    def viewkeys(self):
        return self.keys()

    def viewvalues(self):
        return self.values()

    def viewitems(self):
        return self.items()

    @property
    def buffer(self):
        """The buffer holding the dict (as 1.x's ``.buffer``)."""
        return self._values.buffer

    @property
    def offset(self):
        """Where the dict starts in :attr:`buffer`."""
        return self._dict_offset

    def copy(self):
        return dict(self.iteritems())

    def __repr__(self):
        return 'proxied_dict(%r)' % (self.copy(),)

    def __reduce__(self):
        return (dict, (self.copy(),))


_MISSING = object()
