"""Id mappers: compact, sorted hash indexes from keys to integers (FORMAT.md §8).

Layout shared by every kind::

    u64 row count, u64 index position (relative to the mapper)
    key data        (string and object mappers only)
    rows            count x (2 or 3) unsigned ints of the mapper's width, sorted by column 0
    zero padding    up to a multiple of 32 bytes of the *file* position

Kinds (column 0 is what rows are sorted and searched by):

===============================  ==========================  ===================  =========
class                            rows                        column 0             width
===============================  ==========================  ===================  =========
NumericIdMapper (+32, +Multi)    (key, value)                the key              64 / 32
StringIdMapper (+32, +Multi)     (hash, key offset, value)   xxh64 / xxh32 (UTF-8) 64 / 32
ApproxStringIdMultiMapper (+32)  (hash, value)               xxh64 / xxh32        64 / 32
ObjectIdMapper                   (hash, key offset, value)   the stable hash      64
===============================  ==========================  ===================  =========

Key offsets are relative to the mapper (1.x wrote absolute file positions in string mappers,
so a mapper built at a non-zero offset could not be read back).  Lookups binary-search
column 0 with numpy (``get_many`` looks up a whole batch at once) and, for string and
object mappers, compare the stored keys of equal-hash rows.  Keys come back with their
Python type: str keys as ``str``.
"""
import struct

import numpy

from .. import _native
from ..buffers import as_byte_buffer, out_of_bounds
from ..packing import PackContext
from ..types.object_index import ObjectIndexView, write_object_index
from ..types.strings import encode_payload, read_bytes
from .filemaps import MappedLifetime, map_file_region, write_destination

__all__ = ['NumericIdMapper', 'NumericId32Mapper', 'NumericIdMultiMapper', 'NumericId32MultiMapper',
           'StringIdMapper', 'StringId32Mapper', 'StringIdMultiMapper', 'StringId32MultiMapper',
           'ApproxStringIdMultiMapper', 'ApproxStringId32MultiMapper', 'ObjectIdMapper']

_HEADER = struct.Struct('=QQ')
_MISSING = object()


def _utf8(key):
    if isinstance(key, str):
        return key.encode('utf-8')
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError('string mapper keys are str or bytes, got %s' % type(key).__name__)


class _IdMapper(MappedLifetime):
    """What every kind shares: building into files, mapping, row access and lookups."""
    width = 64
    columns = 2
    multi = False

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, initializer, destfile=None, tempdir=None, return_mapper=True, read_only=True,
              discard_duplicates=False, discard_duplicate_keys=False):
        """Write a mapper of ``initializer`` (a dict or an iterable of (key, value) pairs).

        ``discard_duplicate_keys`` keeps one row per key (the smallest value);
        ``discard_duplicates`` drops repeated (key, value) pairs.
        """
        pairs = list(initializer.items() if isinstance(initializer, dict) else initializer)

        def write(output):
            output.write(cls._encode(pairs, output.tell(), discard_duplicates, discard_duplicate_keys))
        return write_destination(destfile, tempdir, write, cls.map_file, return_mapper, read_only)

    @classmethod
    def _check_value(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)):
            raise TypeError('mapper values are ints, got %s' % type(value).__name__)
        if not 0 <= value < 1 << cls.width:
            raise OverflowError('value %d does not fit a %d-bit mapper' % (value, cls.width))
        return int(value)

    @classmethod
    def _finish(cls, head, rows, start):
        """Header + key data (``head``) + sorted rows, padded to 32 on the file position."""
        dtype = numpy.dtype('=u%d' % (cls.width // 8))
        body = head + numpy.asarray(rows, dtype=dtype).tobytes()
        gap = (start + len(body)) % 32
        return body + bytes(32 - gap if gap else 0)

    @staticmethod
    def _deduplicate(keys, values, discard_duplicates, discard_duplicate_keys):
        """Row selection for the discard options, on rows already sorted by (key, value)."""
        if not len(keys):
            return numpy.ones(0, bool)
        keep = numpy.ones(len(keys), bool)
        if discard_duplicate_keys:
            keep[1:] = keys[1:] != keys[:-1]
        elif discard_duplicates:
            keep[1:] = (keys[1:] != keys[:-1]) | (values[1:] != values[:-1])
        return keep

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def map_buffer(cls, buf, offset=0):
        return cls(as_byte_buffer(buf), offset)

    @classmethod
    def map_file(cls, fileobj, offset=0, size=None, read_only=True, mode=None):
        view, mapping = map_file_region(fileobj, offset, size, read_only, mode)
        mapper = cls(view, 0)
        mapper._mmap = mapping
        return mapper

    def __init__(self, buffer, offset=0):
        size = len(buffer)
        if offset < 0 or offset + 16 > size:
            raise out_of_bounds('id mapper header', offset, 16, size)
        count, index_position = _HEADER.unpack_from(buffer, offset)
        dtype = numpy.dtype('=u%d' % (self.width // 8))
        row_bytes = self.columns * dtype.itemsize
        if index_position < 16 or offset + index_position + count * row_bytes > size:
            raise ValueError('id mapper at offset %d: %d rows at +%d do not fit in the buffer (%d bytes)'
                             % (offset, count, index_position, size - offset))
        self.buf = buffer
        self.offset = offset
        self.count = count
        self.index_position = index_position
        self.rows = numpy.frombuffer(buffer, dtype, count * self.columns, offset + index_position).reshape(
            count, self.columns)
        self.hashes = self.rows[:, 0]
        start = offset + index_position
        # Row reads on the lookup path go through a memoryview (a numpy scalar costs more than
        # the whole search), and the search itself through the native kernel.
        self._cells = memoryview(buffer)[start:start + count * row_bytes].cast('Q' if self.width == 64 else 'I')
        self._search = _native.search_handle(buffer)
        self._index_start = start
        self._mmap = None

    # -- reading ----------------------------------------------------------------------------

    def __len__(self):
        return self.count

    def _row_range(self, column0):
        """(first, end) rows whose column 0 equals ``column0``."""
        columns = self.columns
        cells = self._cells
        first = _native.lower_bound(self._search, self._index_start, self.count, columns, self.width // 8, column0)
        end = first
        while end < self.count and cells[end * columns] == column0:
            end += 1
        return first, end

    def _matching_values(self, key):
        """Values of the rows whose key equals ``key``, in row order."""
        column0 = self._column0(key)
        if column0 is None:
            return []
        first, end = self._row_range(column0)
        cells = self._cells
        last_column = self.columns - 1
        return [cells[row * self.columns + last_column] for row in range(first, end) if self._row_matches(row, key)]

    def _row_matches(self, row, key):
        return True

    def get(self, key, default=None):
        values = self._matching_values(key)
        if not values:
            return default
        return values if self.multi else values[0]

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return bool(self._matching_values(key))

    has_key = __contains__

    def get_iter(self, key):
        return iter(self._matching_values(key))

    def get_many(self, keys, default=None):
        """Look up a batch of keys; returns a list (of lists for multi mappers)."""
        return [self.get(key, default) for key in keys]

    def items(self):
        """(key, value) for every row, in row order."""
        for row in range(self.count):
            yield self._key_of_row(row), int(self.rows[row, -1])

    iteritems = items

    def keys(self):
        seen = set() if self.multi else None
        for key, _ in self.items():
            if seen is None:
                yield key
            elif key not in seen:
                seen.add(key)
                yield key

    iterkeys = keys

    def values(self):
        return (int(value) for value in self.rows[:, -1])

    itervalues = values

    def __iter__(self):
        return self.keys()

    @classmethod
    def merge(cls, parts, destfile=None, tempdir=None, discard_duplicates=False, discard_duplicate_keys=False):
        """One mapper holding the rows of every mapper in ``parts``."""
        pairs = [pair for part in parts for pair in part.items()]
        return cls.build(pairs, destfile, tempdir, discard_duplicates=discard_duplicates,
                         discard_duplicate_keys=discard_duplicate_keys)


class NumericIdMapper(_IdMapper):
    """Unsigned int keys to ints; rows (key, value) sorted by key then value."""

    @classmethod
    def _column0(cls, key):
        if isinstance(key, bool) or not isinstance(key, (int, numpy.integer)) or not 0 <= key < 1 << cls.width:
            return None
        return int(key)

    @classmethod
    def _key_for_build(cls, key):
        if isinstance(key, bool) or not isinstance(key, (int, numpy.integer)):
            raise TypeError('numeric mapper keys are ints, got %s' % type(key).__name__)
        if not 0 <= key < 1 << cls.width:
            raise OverflowError('key %d does not fit a %d-bit mapper' % (key, cls.width))
        return int(key)

    @classmethod
    def _encode(cls, pairs, start, discard_duplicates, discard_duplicate_keys):
        dtype = numpy.dtype('=u%d' % (cls.width // 8))
        keys = numpy.array([cls._key_for_build(key) for key, _ in pairs], dtype=dtype)
        values = numpy.array([cls._check_value(value) for _, value in pairs], dtype=dtype)
        order = numpy.lexsort((values, keys))
        keys, values = keys[order], values[order]
        keep = cls._deduplicate(keys, values, discard_duplicates, discard_duplicate_keys)
        keys, values = keys[keep], values[keep]
        rows = numpy.stack([keys, values], axis=1) if len(keys) else numpy.zeros((0, 2), dtype)
        return cls._finish(_HEADER.pack(len(keys), 16), rows, start)

    def _key_of_row(self, row):
        return int(self.rows[row, 0])

    def get_many(self, keys, default=None):
        """Vectorized lookup of many int keys (one searchsorted over the whole batch)."""
        if self.multi:
            return super().get_many(keys, default)
        wanted = numpy.asarray(keys)
        if wanted.dtype.kind not in 'iu' or (len(wanted) and (wanted.min() < 0 or int(wanted.max()) >= 1 << self.width)):
            return super().get_many(keys, default)
        wanted = wanted.astype(self.hashes.dtype)
        found = numpy.searchsorted(self.hashes, wanted, 'left')
        inside = found < self.count
        hit = numpy.zeros(len(wanted), bool)
        hit[inside] = self.hashes[found[inside]] == wanted[inside]
        values = self.rows[numpy.minimum(found, max(self.count - 1, 0)), -1] if self.count else numpy.zeros(0)
        return [int(value) if ok else default for value, ok in zip(values, hit)]


class NumericId32Mapper(NumericIdMapper):
    width = 32


class NumericIdMultiMapper(NumericIdMapper):
    multi = True


class NumericId32MultiMapper(NumericIdMultiMapper):
    width = 32


class StringIdMapper(_IdMapper):
    """str/bytes keys (as UTF-8) to ints; rows (xxh hash, key offset, value) sorted by hash."""
    columns = 3

    @classmethod
    def _hash(cls, data):
        return _native.xxh64(data) if cls.width == 64 else _native.xxh32(data)

    @classmethod
    def _column0(cls, key):
        try:
            return cls._hash(_utf8(key))
        except TypeError:
            return None

    @classmethod
    def _encode(cls, pairs, start, discard_duplicates, discard_duplicate_keys):
        head = bytearray(16)
        hashes, offsets, values = [], [], []
        for key, value in pairs:
            data = _utf8(key)
            hashes.append(cls._hash(data))
            offsets.append(len(head))
            values.append(cls._check_value(value))
            head += encode_payload(data)
        if cls.width == 32 and len(head) >= 1 << 32:
            raise OverflowError('a 32-bit string mapper holds at most 4 GiB of keys')
        dtype = numpy.dtype('=u%d' % (cls.width // 8))
        rows = numpy.array([hashes, offsets, values], dtype=dtype).T.reshape(len(pairs), 3)
        rows = rows[numpy.argsort(rows[:, 0])] if len(pairs) else rows
        rows = cls._discard(rows, pairs, discard_duplicates, discard_duplicate_keys, head)
        _HEADER.pack_into(head, 0, len(rows), len(head))
        return cls._finish(bytes(head), rows, start)

    @classmethod
    def _discard(cls, rows, pairs, discard_duplicates, discard_duplicate_keys, head):
        if not (discard_duplicates or discard_duplicate_keys) or not len(rows):
            return rows
        seen = set()
        keep = []
        for number, (_, key_offset, value) in enumerate(rows):
            key = bytes(read_bytes(head, int(key_offset)))
            identity = key if discard_duplicate_keys else (key, int(value))
            if identity not in seen:
                seen.add(identity)
                keep.append(number)
        return rows[keep]

    def _stored_key(self, row):
        return read_bytes(self.buf, self.offset + self._cells[row * 3 + 1])

    def _row_matches(self, row, key):
        return self._stored_key(row) == _utf8(key)

    def _key_of_row(self, row):
        data = self._stored_key(row)
        try:
            return data.decode('utf-8')
        except UnicodeDecodeError:
            return data


class StringId32Mapper(StringIdMapper):
    width = 32


class StringIdMultiMapper(StringIdMapper):
    multi = True


class StringId32MultiMapper(StringIdMultiMapper):
    width = 32


class ApproxStringIdMultiMapper(NumericIdMultiMapper):
    """str keys reduced to their xxh hash (ints are taken as hashes): may give false positives."""

    @classmethod
    def _hash_key(cls, key):
        if isinstance(key, (int, numpy.integer)) and not isinstance(key, bool):
            return int(key)
        data = _utf8(key)
        return _native.xxh64(data) if cls.width == 64 else _native.xxh32(data)

    @classmethod
    def _column0(cls, key):
        try:
            return super()._column0(cls._hash_key(key))
        except TypeError:
            return None

    @classmethod
    def _key_for_build(cls, key):
        return super()._key_for_build(cls._hash_key(key))


class ApproxStringId32MultiMapper(ApproxStringIdMultiMapper):
    width = 32


class ObjectIdMapper(_IdMapper):
    """Keys of any stable-hashable type (None, ints, floats, str, bytes, tuples, frozensets)."""
    columns = 3

    @classmethod
    def _encode(cls, pairs, start, discard_duplicates, discard_duplicate_keys):
        if discard_duplicate_keys or discard_duplicates:
            seen = {}
            unique = []
            for key, value in pairs:
                identity = (type(key), key) if discard_duplicate_keys else (type(key), key, value)
                if identity not in seen:
                    seen[identity] = True
                    unique.append((key, value))
            pairs = unique
        context = PackContext(start, 0, {})
        write_object_index([(key, cls._check_value(value)) for key, value in pairs], context,
                           padding_origin=-start)
        return bytes(context.out)

    def __init__(self, buffer, offset=0):
        super().__init__(buffer, offset)
        self._view = ObjectIndexView(buffer, offset)

    def _column0(self, key):
        from ..stable_hash import stable_hash
        try:
            return stable_hash(key)
        except TypeError:
            return None

    def _row_matches(self, row, key):
        return self._key_of_row(row) == key

    def _key_of_row(self, row):
        key_offset = self._cells[row * 3 + 1]
        if key_offset > 0x7FFFFFFFFFFFFFFF:
            key_offset -= 1 << 64
        return self._view.key_at(key_offset)
