"""Typed arrays: many packed structs of one schema in a file or buffer (FORMAT.md §10).

Layout (version 2, what 1.x writes and reads)::

    0   u64 total size            the whole structure, header included
    8   u64 index offset          relative to the array start
    16  u64 item count
    24  u64 version               2
    32  u64 min reader version    2
    40  u64 schema offset         relative; 0 = no schema stored
    48  u64 schema size
    56  items                     each ``Schema.pack(item, idmap, implicit_offs=position)``
    index offset: u64[count]      item positions, relative to the array start
    schema offset: a protocol-2 pickle of the Schema

Builds stream: items are packed and written one at a time, their positions spilled to a
temporary file past a million, so an iterable bigger than memory builds in bounded memory.
Reading validates the header against the mapping's size before touching anything, and the
stored schema is loaded only through the allow-list unpickler.
"""
import array
import functools
import struct
import sys

from .. import _native
from .._native import gather_values
from ..buffers import as_byte_buffer, is_writable, out_of_bounds
from ..safe_pickle import SchemaPickleError, load_schema
from ..schema_bytes import stored_schema_bytes, stores_schema
from ..types.numbers import FIXED_FORMATS
from .filemaps import MappedLifetime, temporary_file, write_destination

__all__ = ['MappedArrayProxyBase']

_HEADER = struct.Struct('=QQQQQQQ')
_POSITION = struct.Struct('=Q')
HEADER_SIZE = _HEADER.size
VERSION = 2
MIN_READER_VERSION = 2
_POSITIONS_IN_MEMORY = 1 << 20
_WRITE_CHUNK = 1 << 20
_NO_DEFAULT = object()


class _Positions:
    """Item positions of a build: an in-memory u64 array, spilled to a temporary file when large."""

    def __init__(self, tempdir):
        self.tempdir = tempdir
        self.current = array.array('Q')
        self.spill = None
        self.count = 0

    def append(self, position):
        self.current.append(position)
        self.count += 1
        if len(self.current) >= _POSITIONS_IN_MEMORY:
            if self.spill is None:
                self.spill = temporary_file(dir=self.tempdir)
            self.current.tofile(self.spill)
            del self.current[:]

    def write_to(self, output):
        if self.spill is not None:
            self.spill.seek(0)
            while True:
                chunk = self.spill.read(_WRITE_CHUNK)
                if not chunk:
                    break
                output.write(chunk)
            self.spill.close()
        output.write(self.current.tobytes())


# With the C module, arr[i] is the subscript slot of this C base class (items.c: ItemAccess),
# which indexes the instance's C ItemSequence; without it, _python_getitem is __getitem__.
_ITEM_ACCESS = (_native.objects.ItemAccess,) if _native.objects is not None else ()


class MappedArrayProxyBase(MappedLifetime, *_ITEM_ACCESS):
    """A read-only sequence of struct proxies over a typed array; subclass it and set ``schema``."""

    schema = None

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, initializer, destfile=None, tempdir=None, idmap=None, return_mapper=True, read_only=True):
        """Write the items of ``initializer`` (any iterable) as a typed array.

        ``destfile``: a path (written to a temporary file, renamed into place when complete),
        an open binary file (written at its current position), or None (a temporary file).
        ``idmap``: shared by all items, so items can point into earlier ones; by default
        each item gets its own.  Returns the mapped array when ``return_mapper``.
        """
        schema = cls.schema
        if schema is None:
            raise ValueError('%s has no schema: set the class attribute schema' % (cls.__name__,))
        return write_destination(destfile, tempdir, lambda output: cls._write(initializer, output, schema, idmap, tempdir),
                                 cls.map_file, return_mapper, read_only)

    @classmethod
    def _write(cls, items, output, schema, idmap, tempdir, packed=False):
        """Write the array at ``output``'s position; ``packed``: the items are already packed bytes
        (each packed on its own, so its bytes do not depend on where it lands)."""
        start = output.tell()
        output.write(bytes(HEADER_SIZE))
        position = HEADER_SIZE
        positions = _Positions(tempdir)
        pending = bytearray()
        pack = schema.pack
        for item in items:
            data = item if packed else pack(item, idmap, implicit_offs=position)
            positions.append(position)
            pending += data
            position += len(data)
            if len(pending) >= _WRITE_CHUNK:
                output.write(pending)
                del pending[:]
        output.write(pending)
        index_offset = position
        positions.write_to(output)
        position += 8 * positions.count
        stored_schema = stored_schema_bytes(schema)
        output.write(stored_schema)
        schema_offset = position
        position += len(stored_schema)
        output.seek(start)
        output.write(_HEADER.pack(position, index_offset, positions.count, VERSION, MIN_READER_VERSION,
                                  schema_offset, len(stored_schema)))
        output.seek(start + position)

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def map_buffer(cls, buf, offset=0):
        """The array stored at ``offset`` of a buffer (bytes, bytearray, memoryview, mmap)."""
        return cls(as_byte_buffer(buf), offset)

    def _pickled_class(self):
        """This class when importable elsewhere, else the bare base (the file stores the schema)."""
        cls = type(self)
        module = sys.modules.get(cls.__module__)
        if module is not None and getattr(module, cls.__qualname__, None) is cls:
            return cls
        return MappedArrayProxyBase

    def __init__(self, buffer, offset=0, idmap=None, idmap_size=1024):
        """The array at ``offset`` of ``buffer`` (``map_buffer``/``map_file`` call this).

        ``idmap`` and ``idmap_size`` are 1.x's, accepted and checked so that its calls keep
        working.  There they were one cache of decoded values shared by every item, so a list
        changed through one proxy showed in a fresh proxy of the same item (REFERENCE-API
        e16).  Here each proxy keeps what it decodes, and no cache is shared between items.
        """
        if idmap is not None and not (hasattr(idmap, 'get') and hasattr(idmap, '__setitem__')):
            raise TypeError('idmap must be None or a mutable mapping, not %s' % (type(idmap).__name__,))
        if isinstance(idmap_size, bool) or not isinstance(idmap_size, int) or idmap_size < 0:
            raise ValueError('idmap_size must be a non-negative int, not %r' % (idmap_size,))
        size = len(buffer)
        if offset < 0 or offset + HEADER_SIZE > size:
            raise out_of_bounds('typed array header', offset, HEADER_SIZE, size)
        (total, index_offset, count, version, min_reader, schema_offset,
         schema_size) = _HEADER.unpack_from(buffer, offset)
        if offset + total > size or total < HEADER_SIZE:
            raise ValueError('typed array at offset %d claims %d bytes, the buffer holds %d from there'
                             % (offset, total, size - offset))
        if index_offset < HEADER_SIZE or index_offset + 8 * count > total:
            raise ValueError('typed array at offset %d: index of %d items at +%d does not fit in %d bytes'
                             % (offset, count, index_offset, total))
        self.buf = buffer
        self.offset = offset
        self.total_size = total
        self.index_offset = index_offset
        self.index_elements = count
        self._mmap = None
        if count and _POSITION.unpack_from(buffer, offset + index_offset)[0] < HEADER_SIZE:
            raise ValueError('Cannot reliably map version-0 buffers')
        if count and min_reader > VERSION:
            raise ValueError('typed array at offset %d needs reader version %d; this one reads up to %d'
                             % (offset, min_reader, VERSION))
        self.version = version if count else VERSION
        self.schema_offset = schema_offset
        self.schema_size = schema_size
        self.schema = self._resolve_schema(buffer, offset, total, schema_offset, schema_size)
        self._unpack = self.schema.unpacker()
        native = _native.objects
        if native is not None:
            # arr[i], iteration and getter() in C (see __getitem__ below)
            self._items = native.ItemSequence(buffer, offset, HEADER_SIZE, index_offset, count, self._unpack)

    def _resolve_schema(self, buffer, offset, total, schema_offset, schema_size):
        stored = None
        declared = type(self).schema
        if schema_offset and schema_size:
            if schema_offset + schema_size > total:
                raise ValueError('typed array at offset %d: schema at +%d (%d bytes) is outside it'
                                 % (offset, schema_offset, schema_size))
            data = bytes(buffer[offset + schema_offset:offset + schema_offset + schema_size])
            if declared is not None and stores_schema(data, declared):
                return declared         # the file stores this very schema: nothing to unpickle
            try:
                stored = load_schema(data)
            except SchemaPickleError as error:
                raise SchemaPickleError('typed array at offset %d: the schema at +%d (%d bytes) cannot be read: %s'
                                        % (offset, schema_offset, schema_size, error)) from None
        if declared is not None and (stored is None or declared.compatible(stored)):
            return declared
        if stored is None:
            raise ValueError('the typed array stores no schema and %s declares none' % (type(self).__name__,))
        return stored

    # -- reading ----------------------------------------------------------------------------

    @functools.cached_property
    def _index(self):
        """The items' positions as a memoryview of uint64 (made on first use: with the C
        module, ``arr[i]`` and iteration read the index themselves)."""
        start = self.offset + self.index_offset
        return memoryview(self.buf)[start:start + 8 * self.index_elements].cast('Q')

    def __len__(self):
        return self.index_elements

    @functools.cached_property
    def index(self):
        """The items' positions, from the array's start, as a read-only numpy uint64 array (1.x's ``index``).

        Made on first use (opening does not import numpy).  It holds an export of the buffer,
        so a mapped file cannot be unmapped while a caller keeps it."""
        import numpy
        positions = numpy.frombuffer(self.buf, numpy.dtype('=u8'), self.index_elements,
                                     self.offset + self.index_offset)
        positions.flags.writeable = False
        return positions

    @property
    def wr_buf(self):
        """The buffer when it can be written in place (``map_file(..., read_only=False)``), else None."""
        return self.buf if is_writable(self.buf) else None

    def _position(self, number):
        position = self._index[number]
        if not HEADER_SIZE <= position < self.index_offset:
            raise ValueError('typed array item %d is at +%d, outside the items area: corrupt' % (number, position))
        return self.offset + position

    def _python_getitem(self, number):
        """``self[number]``: what ItemAccess leaves to Python (slices, arrays without ``_items``),
        and every key without the C module."""
        position = self._index[number]          # negative indexes and IndexError, in C
        if type(position) is not int:           # a slice of the index
            return [self[index] for index in range(*number.indices(self.index_elements))]
        if not HEADER_SIZE <= position < self.index_offset:
            raise ValueError('typed array item %d is at +%d, outside the items area: corrupt' % (number, position))
        return self._unpack(self.buf, self.offset + position)

    if not _ITEM_ACCESS:
        __getitem__ = _python_getitem

    def __iter__(self):
        items = self.__dict__.get('_items')
        if items is not None:
            return iter(items)
        return self._iterate()

    def _iterate(self):
        unpack = self._unpack
        buffer = self.buf
        offset = self.offset
        end = self.index_offset
        for number, position in enumerate(self._index):
            if not HEADER_SIZE <= position < end:
                raise ValueError('typed array item %d is at +%d, outside the items area: corrupt'
                                 % (number, position))
            yield unpack(buffer, offset + position)

    def getter(self, proxy_into=None, no_idmap=False):
        """A function ``get(i) -> proxy`` (proxies are fresh values; ``proxy_into`` is accepted)."""
        items = self.__dict__.get('_items')
        if items is not None:
            return items
        unpack = self._unpack
        buffer = self.buf
        position = self._position

        def get(number):
            return unpack(buffer, position(number))
        return get

    def iter_fast(self, mask=None):
        """The items (those whose ``mask`` entry is true, when given)."""
        if mask is None:
            return iter(self)
        return (self[number] for number, keep in zip(range(self.index_elements), mask) if keep)

    def _column_of_full_items(self, name, indices, dtype):
        """column() when every selected item has every attribute (one pass in the kernel), else None."""
        import numpy
        schema = self.schema
        full = (1 << len(schema.slot_keys)) - 1
        try:
            field = schema.shape(full, 0).fields[schema.slot_keys.index(name)]
        except TypeError:           # a slot class not registered yet: the general path explains
            return None
        numbers = None if indices is None else _item_numbers(self.index_elements, indices)
        values = numpy.empty(self.index_elements if numbers is None else len(numbers), dtype)
        taken = _native.gather_field(self.buf, self.offset, HEADER_SIZE, self.index_offset, self.index_elements,
                                     numbers, struct.calcsize('=' + schema.bitmap_format), full, field.offset, values)
        return values if taken == len(values) else None

    def column(self, name, indices=None, default=_NO_DEFAULT):
        """A numpy array of the fixed-size attribute ``name`` of every item (or of ``indices``).

        Vectorized: the positions of the field are computed from the items' bitmaps with
        numpy, then the values are gathered in one pass.  Items where the attribute is
        missing or None raise ValueError, unless ``default`` fills them.
        """
        import numpy        # not imported with the module: opening and reading never need it
        schema = self.schema
        slot_type = schema.slot_types.get(name)
        code = FIXED_FORMATS.get(slot_type) if slot_type is not None else None
        if code is None:
            raise TypeError('column() reads fixed-size attributes; %r is %s' % (name, 'not a slot' if slot_type is None
                                                                               else 'variable-size'))
        dtype = numpy.dtype('=' + code)
        fast = self._column_of_full_items(name, indices, dtype)
        if fast is not None:
            return fast
        raw = numpy.frombuffer(self.buf, numpy.uint8)
        positions = numpy.frombuffer(self.buf, numpy.uint64, self.index_elements,
                                     self.offset + self.index_offset).astype(numpy.int64)
        if indices is not None:
            positions = positions[indices]
        if len(positions) and (positions.min() < HEADER_SIZE or positions.max() >= self.index_offset):
            raise ValueError('typed array index points outside the items area: corrupt')
        positions = positions + self.offset
        width = struct.calcsize('=' + schema.bitmap_format)
        slot_number = schema.slot_keys.index(name)
        full = (1 << len(schema.slot_keys)) - 1
        if width == 4:
            # both 32-bit bitmaps in one 8-byte read per item: has | none << 32 (native order)
            header = gather_values(raw, positions, numpy.dtype('=u8'))
            has, none = header & numpy.uint64(0xFFFFFFFF), header >> numpy.uint64(32)
            all_full = len(header) and bool((header == numpy.uint64(full)).all())
        else:
            bitmap_dtype = numpy.dtype('=u%d' % width)
            has = gather_values(raw, positions, bitmap_dtype).astype(numpy.uint64)
            none = gather_values(raw, positions + width, bitmap_dtype).astype(numpy.uint64)
            all_full = len(has) and bool((has == numpy.uint64(full)).all() and not none.any())
        if all_full:
            # every item has every attribute: the field sits at one offset in all of them
            starts = positions + schema.shape(full, 0).fields[slot_number].offset
            present = None
        else:
            present_bits = has & ~none
            field_offsets = numpy.full(len(positions), 2 * width, dtype=numpy.int64)
            for earlier in range(slot_number):
                earlier_code = FIXED_FORMATS.get(schema.slot_types[schema.slot_keys[earlier]], 'q')
                size = struct.calcsize('=' + earlier_code)
                field_offsets += size * ((present_bits >> numpy.uint64(earlier)) & numpy.uint64(1)).astype(numpy.int64)
            present = ((present_bits >> numpy.uint64(slot_number)) & numpy.uint64(1)).astype(bool)
            starts = positions + field_offsets
        if len(starts) and starts.max() + dtype.itemsize > len(raw):
            raise ValueError('typed array field %r lies outside the buffer: corrupt' % (name,))
        values = gather_values(raw, starts, dtype)
        if present is not None and not present.all():
            if default is _NO_DEFAULT:
                raise ValueError('%d items have no value for %r (missing or None); pass default=' %
                                 (int((~present).sum()), name))
            values = values.copy()
            values[~present] = default
        return values


def _item_numbers(count, indices):
    """The item numbers ``indices`` selects (any numpy index of a length-``count`` axis)."""
    import numpy
    return numpy.ascontiguousarray(numpy.arange(count, dtype=numpy.int64)[indices], dtype=numpy.int64)
