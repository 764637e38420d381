"""Resizable regions of one mapped file, as in numarray.memmap: insert, delete and resize them.

Layout (version 1; integers little-endian)::

    0     header, 64 bytes
            0   8s   magic               b'\\x93REGIONS'
            8   u32  version             1
            12  u32  active slot         0 or 1: the table slot that holds the table
            16  u64  table area offset   64 (the area follows the header)
            24  u64  capacity            entries per slot
            32  u64  region count        entries in the active slot
            40  u64  generation          +1 at every commit, so another process can notice one
            48  u32  table checksum      CRC-32 of the active slot's ``count`` entries
            52  u32  header checksum     CRC-32 of bytes 0-51
            56  8 bytes, zero
    64    table area: two slots of ``capacity`` entries, 64 bytes each
            0   u64  offset              of the region's first byte, from the start of the file
            8   u64  size                in bytes
            16  u16  name length         UTF-8 bytes; 0 means no name
            18  46s  name                zero-padded
    ...   regions, each at a multiple of 64, normally in ascending order of index; bytes that
          no region covers (left by deleting or shrinking) are free space

Reading checks the magic, version and both checksums, that the table area lies inside the
file, that every region lies between the end of the table area and the end of the file, that
no two regions overlap (an empty one only strictly inside another) and that names are unique;
any failure is a ``ValueError`` naming the entry and its offset.

Growing and inserting.  Regions after the one that grows (or the one inserted) are pushed
forward only as far as they must: free space in the way absorbs the growth, and the file
grows by what is left.  Shrinking and deleting leave free space behind (no data moves);
free space at the end of the file is truncated away, and :meth:`RegionFile.compact` moves
every region back.  The table's capacity doubles when it is full: the table area grows in
place and pushes the regions after it like any growing region.

Crash safety: data first, table last.  A table is never written over the one the header
points to: each commit writes the other slot (or a slot of the grown area beyond the old
one), then rewrites the 64-byte header, which is the commit.  When regions move, every
region whose new place is free in the old table is copied there; the others are copied to
scratch space past the end of the file.  Then a first commit records that intermediate
layout (the same regions and sizes, some at new offsets); the scratch copies go to their
final places, new bytes are zeroed, and a second commit records the new layout; last, the
file is truncated.  A process killed at any point leaves a table that describes intact
bytes: the old regions and contents (perhaps some of them out of order, in scratch space,
until the next change puts them back in order) or the new ones, and at most some free space
at the end.  Against power loss as well, ``durable=True`` syncs the file before and after
every header write.  Every commit rewrites the whole table, so a structural change costs
time in proportion to the number of regions, besides the bytes it moves.

Lifetimes.  Every view of a region (``buffer``, ``asarray``, a container built or mapped
over it) is counted by the file's :class:`~sharedbuffers.mapped_files.MappedFile`.  Every
structural change (insert, delete, resize, compact) and ``close()`` unmaps the file, so
each refuses with :class:`~sharedbuffers.mapped_files.ViewsAliveError` (saying how many
views are alive) and changes nothing while any view is alive: no view ever shows bytes
that moved, were freed or were unmapped.  Changes are for one process at a time: another
process that maps the file must not read it during a structural change (a file that
shrinks under its mapping makes its reads fault).

Modes: ``r`` reads; ``r+`` reads and writes; ``w+`` creates (or empties) the file; ``c``
(copy-on-write) lets regions be written in memory and never touches the file, so it
refuses structural changes, which would have to write the file.
"""
import bisect
import io
import math
import operator
import os
import struct
import tempfile
import zlib

from .mapped_files import MappedFile, ViewsAliveError, normalize_mode

__all__ = ['RegionFile', 'Region', 'Memmap']

MAGIC = b'\x93REGIONS'
VERSION = 1
ALIGNMENT = 64
INITIAL_CAPACITY = 8
_HEADER_BODY = struct.Struct('<8sIIQQQQI')     # checksummed part of the header
_HEADER_TAIL = struct.Struct('<I8x')            # header checksum, reserved bytes
HEADER_SIZE = _HEADER_BODY.size + _HEADER_TAIL.size
_ENTRY = struct.Struct('<QQH46s')
ENTRY_SIZE = _ENTRY.size
NAME_BYTES = 46
_CHUNK = 1 << 20
_OPEN_FLAGS = {'r': 'rb', 'c': 'rb', 'r+': 'r+b', 'w+': 'w+b'}
_MAPPING_MODE = {'r': 'r', 'c': 'c', 'r+': 'r+', 'w+': 'r+'}


def _align(position):
    return -(-position // ALIGNMENT) * ALIGNMENT


def _size_argument(size, what):
    if isinstance(size, bool):
        raise TypeError('%s must be an integer, not bool' % what)
    size = operator.index(size)
    if size < 0:
        raise ValueError('%s must not be negative, got %d' % (what, size))
    return size


def _encoded_name(name):
    """The UTF-8 bytes of a region name (b'' for None), or ValueError/TypeError."""
    if name is None:
        return b''
    if not isinstance(name, str):
        raise TypeError('a region name is a str, not %s' % type(name).__name__)
    encoded = name.encode('utf-8')
    if not 0 < len(encoded) <= NAME_BYTES:
        raise ValueError('a region name takes 1 to %d UTF-8 bytes; %r takes %d' % (NAME_BYTES, name, len(encoded)))
    return encoded


# -- the file, below the mapping: positioned reads and writes ----------------------------------

def _write_at(descriptor, data, offset):
    """Write all of ``data`` at ``offset`` (every write of a structural change goes through here)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view = view[written:]
        offset += written


def _copy(descriptor, source, destination, length):
    """Copy ``length`` bytes within the file between ranges that never overlap."""
    while length:
        chunk = os.pread(descriptor, min(length, _CHUNK), source)
        if not chunk:
            raise OSError('short read at offset %d while moving a region' % source)
        _write_at(descriptor, chunk, destination)
        source += len(chunk)
        destination += len(chunk)
        length -= len(chunk)


def _zero(descriptor, start, end):
    zeros = bytes(min(end - start, _CHUNK))
    while start < end:
        _write_at(descriptor, zeros[:end - start], start)
        start += len(zeros)


class _Occupied:
    """The byte ranges a table claims (header, table area, regions), for "is this range free?"."""

    def __init__(self, ranges):
        self.ranges = sorted(ranges)
        self.ends = [end for _, end in self.ranges]     # disjoint ranges: their ends are sorted too

    def overlaps(self, low, high):
        """Whether [low, high) overlaps a range (an empty one only when strictly inside it)."""
        index = bisect.bisect_right(self.ends, low)
        return index < len(self.ranges) and self.ranges[index][0] < high


def _read_layout(descriptor):
    """(active slot, table offset, capacity, generation, [(offset, size, name)]), validated."""
    file_size = os.fstat(descriptor).st_size
    if file_size < HEADER_SIZE:
        raise ValueError('truncated region file: %d bytes, the header alone takes %d' % (file_size, HEADER_SIZE))
    header = os.pread(descriptor, HEADER_SIZE, 0)
    magic, version, active, table_offset, capacity, count, generation, table_checksum = \
        _HEADER_BODY.unpack_from(header)
    if magic != MAGIC:
        raise ValueError('not a region file: magic %r at offset 0, expected %r' % (magic, MAGIC))
    if version != VERSION:
        raise ValueError('region file version %d at offset 8; this reader reads version %d' % (version, VERSION))
    if zlib.crc32(header[:_HEADER_BODY.size]) != _HEADER_TAIL.unpack_from(header, _HEADER_BODY.size)[0]:
        raise ValueError('region file header (offset 0) fails its checksum: corrupt')
    if active not in (0, 1) or table_offset < HEADER_SIZE or not 0 < capacity or count > capacity:
        raise ValueError('region file header (offset 0) is inconsistent: slot %d, table at %d, %d of %d entries'
                         % (active, table_offset, count, capacity))
    area_end = table_offset + 2 * capacity * ENTRY_SIZE
    if area_end > file_size:
        raise ValueError('region table area at offset %d (%d bytes) runs past the end of the file (%d bytes): '
                         'truncated' % (table_offset, area_end - table_offset, file_size))
    slot_offset = table_offset + active * capacity * ENTRY_SIZE
    table = os.pread(descriptor, count * ENTRY_SIZE, slot_offset)
    if zlib.crc32(table) != table_checksum:
        raise ValueError('region table at offset %d fails its checksum: corrupt' % slot_offset)
    entries = []
    names = set()
    claims = []
    for index in range(count):
        offset, size, name_length, name = _ENTRY.unpack_from(table, index * ENTRY_SIZE)
        where = 'region %d (table entry at offset %d)' % (index, slot_offset + index * ENTRY_SIZE)
        if name_length > NAME_BYTES:
            raise ValueError('%s: name length %d is more than %d' % (where, name_length, NAME_BYTES))
        try:
            name = name[:name_length].decode('utf-8') if name_length else None
        except UnicodeDecodeError:
            raise ValueError('%s: the name is not UTF-8' % where) from None
        if name is not None and name in names:
            raise ValueError('%s: the name %r is used twice' % (where, name))
        names.add(name)
        if offset < area_end:
            raise ValueError('%s at offset %d lies in the header or the table area (offsets 0 to %d)'
                             % (where, offset, area_end))
        if offset + size > file_size:
            raise ValueError('%s: %d bytes at offset %d run past the end of the file (%d bytes)'
                             % (where, size, offset, file_size))
        entries.append((offset, size, name))
        claims.append((offset, offset + size, where))
    claims.sort()
    for (start, end, where), (later_start, _, later) in zip(claims, claims[1:]):
        if later_start < end:
            raise ValueError('%s at offset %d overlaps %s (offsets %d to %d)' % (later, later_start, where, start, end))
    return active, table_offset, capacity, generation, entries


def _place(targets, start, pack):
    """New offsets for ``targets`` ((region, size) in order) from ``start``.

    A region stays where it is unless the one before it now reaches past its offset (or
    ``pack``); a new region goes right after the one before it.
    """
    placed = []
    cursor = start
    for region, size in targets:
        offset = region._offset
        if pack or offset is None or offset < cursor:
            offset = _align(cursor)
        placed.append((region, offset, size))
        cursor = offset + size
    return placed


class Region:
    """One region of a :class:`RegionFile`: a live handle that follows the region when it moves."""

    __slots__ = ('_owner', '_offset', '_size', '_name', '_index')

    def __init__(self, owner, offset, size, name):
        self._owner = owner
        self._offset = offset
        self._size = size
        self._name = name
        self._index = None

    offset = property(lambda self: self._offset, doc='Where the region starts, from the start of the file.')
    size = property(lambda self: self._size, doc='The region\'s size in bytes.')
    name = property(lambda self: self._name, doc='The region\'s name, or None.')

    @property
    def index(self):
        self._live_owner()
        return self._index

    def _live_owner(self):
        if self._owner is None:
            raise ValueError('the region was deleted')
        return self._owner

    @property
    def buffer(self):
        """A byte memoryview of the region (read-only in mode ``r``); counted until released."""
        return self._live_owner()._view(self, 0, self._size)

    def asarray(self, dtype='u1', shape=None, offset=0):
        """A numpy array over the region from ``offset`` (sharing memory with the file); counted."""
        import numpy
        itemsize = numpy.dtype(dtype).itemsize
        if shape is None:
            shape = ((self._size - offset) // itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        owner = self._live_owner()
        owner._check_bounds(self, offset, math.prod(shape) * itemsize)
        return owner._mapped.asarray(dtype, shape, self._offset + offset)

    def read(self, offset=0, size=None):
        """A copy of ``size`` bytes from ``offset`` (to the end by default), as ``bytes``."""
        if size is None:
            size = self._size - offset
        with self._live_owner()._view(self, offset, size) as view:
            return view.tobytes()

    def write(self, data, offset=0):
        """Write ``data`` (any byte buffer) at ``offset``, growing the region when it reaches past the end."""
        owner = self._live_owner()
        owner._check_writable('write')
        with memoryview(data) as source:
            size = source.nbytes
            end = _size_argument(offset, 'offset') + size
            if end > self._size:
                owner.resize(self, end)
            with owner._view(self, offset, size) as view:
                view[:] = source.cast('B')

    def resize(self, size):
        """``RegionFile.resize(self, size)``."""
        return self._live_owner().resize(self, size)

    def build(self, container_class, items, tempdir=None, **build_options):
        """Build ``container_class`` (a typed array, id mapper or mapping) of ``items`` in the region.

        The container is built into a temporary file (in ``tempdir``), the region resized to
        its exact size (mappings are found from their end) and the bytes copied in.  Returns
        the container mapped over the region: a view, so close or drop it before the next
        structural change.
        """
        owner = self._live_owner()
        owner._check_writable('build into')
        with tempfile.TemporaryFile(dir=tempdir) as output:
            container_class.build(items, output, tempdir=tempdir, return_mapper=False, **build_options)
            size = output.seek(0, io.SEEK_END)
            if size != self._size:
                owner.resize(self, size)
            output.seek(0)
            with owner._view(self, 0, size) as view:
                if output.readinto(view) != size:
                    raise OSError('short read of the built %s' % container_class.__name__)
        return container_class.map_buffer(self.buffer)

    def __repr__(self):
        if self._owner is None:
            return '<Region (deleted)>'
        name = '' if self._name is None else ' %r' % self._name
        return '<Region %d%s: %d bytes at offset %d>' % (self._index, name, self._size, self._offset)


class RegionFile:
    """A file divided into regions that can be inserted, deleted and resized (see the module docstring).

    ``mode``: ``r``, ``r+``, ``w+`` or ``c`` (numpy.memmap's long names too).  ``durable``:
    sync the file around every table commit, so the ordering holds across power loss too.
    """

    def __init__(self, path, mode='r', durable=False):
        self.mode = normalize_mode(mode)
        self.filename = os.path.abspath(os.fsdecode(path))
        self.durable = durable
        self._mapped = None
        self._file = open(path, _OPEN_FLAGS[self.mode])
        try:
            descriptor = self._file.fileno()
            if self.mode == 'w+':
                os.ftruncate(descriptor, HEADER_SIZE + 2 * INITIAL_CAPACITY * ENTRY_SIZE)
                _write_at(descriptor, self._header(0, HEADER_SIZE, INITIAL_CAPACITY, 0, 0, b''), 0)
            self._active, self._table_offset, self._capacity, self._generation, entries = _read_layout(descriptor)
            self._set_regions([Region(self, offset, size, name) for offset, size, name in entries])
            self._remap()
        except BaseException:
            self._file.close()
            raise

    # -- looking regions up -----------------------------------------------------------------

    def __len__(self):
        return len(self._regions)

    def __iter__(self):
        return iter(list(self._regions))

    def __getitem__(self, key):
        """The region at index ``key`` (an int) or named ``key`` (a str)."""
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise KeyError('no region is named %r in %s' % (key, self.filename)) from None
        index = operator.index(key)
        if not -len(self._regions) <= index < len(self._regions):
            raise IndexError('region index %d is out of range (%d regions)' % (index, len(self._regions)))
        return self._regions[index]

    def __contains__(self, key):
        """Whether ``key`` (a name or a Region) is a region of this file."""
        if isinstance(key, Region):
            return key._owner is self
        return key in self._by_name

    def _resolve(self, which):
        if isinstance(which, Region):
            if which._owner is not self:
                raise ValueError('%r is not a region of %s' % (which, self.filename))
            return which
        return self[which]

    def _check_bounds(self, region, offset, size):
        if offset < 0 or size < 0 or offset + size > region._size:
            raise IndexError('%d bytes at offset %d are outside region %d (%d bytes)'
                             % (size, offset, region._index, region._size))
        if self._mapped is None:
            raise ValueError('I/O operation on a closed region file (%s)' % self.filename)

    def _view(self, region, offset, size):
        self._check_bounds(region, offset, size)
        return self._mapped.view(region._offset + offset, size)

    @property
    def live_views(self):
        """How many views of the file's regions are alive."""
        return 0 if self._mapped is None else self._mapped.live_views

    @property
    def closed(self):
        return self._file is None

    # -- structural changes -----------------------------------------------------------------

    def insert(self, index, size, name=None):
        """Insert a zero-filled region of ``size`` bytes before ``index``; returns it."""
        count = len(self._regions)
        index = operator.index(index)
        if not -count <= index <= count:
            raise IndexError('cannot insert at index %d of %d regions' % (index, count))
        size = _size_argument(size, 'size')
        _encoded_name(name)
        if name is not None and name in self._by_name:
            raise ValueError('a region is already named %r' % (name,))
        region = Region(self, None, size, name)
        targets = [(existing, existing._size) for existing in self._regions]
        targets.insert(count + index if index < 0 else index, (region, size))
        self._change('insert a region into', targets)
        return region

    def append(self, size, name=None):
        """Add a zero-filled region of ``size`` bytes after the last one; returns it."""
        return self.insert(len(self._regions), size, name)

    def resize(self, which, size):
        """Give a region (a Region, index or name) ``size`` bytes; new bytes are zero.  Returns it."""
        region = self._resolve(which)
        size = _size_argument(size, 'size')
        if size != region._size:
            self._change('resize region %d of' % region._index,
                         [(existing, size if existing is region else existing._size) for existing in self._regions])
        return region

    def delete(self, which):
        """Delete a region (a Region, index or name); its bytes become free space."""
        region = self._resolve(which)
        self._change('delete region %d of' % region._index,
                     [(existing, existing._size) for existing in self._regions if existing is not region])

    __delitem__ = delete

    def compact(self):
        """Move every region back so that no free space is left, and truncate the file."""
        self._change('compact', [(region, region._size) for region in self._regions], pack=True)

    def _check_writable(self, what):
        if self._file is None:
            raise ValueError('I/O operation on a closed region file (%s)' % self.filename)
        if self.mode == 'r':
            raise io.UnsupportedOperation("cannot %s %s: it is open in mode 'r' (read-only); open it with 'r+'"
                                          % (what, self.filename))

    def _change(self, what, targets, pack=False):
        """Unmap, move data and commit the layout of ``targets`` ((region, size) in order), remap."""
        self._check_writable(what)
        if self.mode == 'c':
            raise io.UnsupportedOperation("cannot %s %s: mode 'c' keeps changes in memory and never writes the "
                                          "file, so regions cannot be inserted, deleted or resized; open it with "
                                          "'r+'" % (what, self.filename))
        alive = self._mapped.live_views
        if alive:
            raise ViewsAliveError('cannot %s %s: %d view%s of its regions %s alive (buffers, arrays or containers); '
                                  'release them first' % (what, self.filename, alive, '' if alive == 1 else 's',
                                                          'is' if alive == 1 else 'are'))
        self._mapped.close(flush=False)     # the moves read and write the page cache, flushed or not
        self._mapped = None
        try:
            self._relayout(targets, pack)
        finally:
            self._remap()

    def _relayout(self, targets, pack):
        """The ordering of the module docstring: moves, commit, final copies and zeroes, commit, truncate.

        A moving region carries ``kept`` bytes (its old size, or its new one if smaller); the
        intermediate table gives it that size, so it never claims bytes it did not bring.
        """
        descriptor = self._file.fileno()
        old_size = os.fstat(descriptor).st_size
        capacity = self._capacity
        while capacity < len(targets):
            capacity *= 2
        table_end = self._table_offset + 2 * capacity * ENTRY_SIZE
        placed = [(region, offset, size, 0 if region._offset is None else min(region._size, size))
                  for region, offset, size in _place(targets, table_end, pack)]
        new_end = max([table_end] + [offset + size for _, offset, size, _ in placed])
        occupied = _Occupied([(0, HEADER_SIZE), (self._table_offset, self._table_end())] +
                             [(region._offset, region._offset + region._size) for region in self._regions])
        file_size = max(old_size, new_end)
        scratch = _align(file_size)
        intermediate, staged = {}, []
        for region, offset, _, kept in placed:
            if region._offset is None or region._offset == offset:
                continue
            if occupied.overlaps(offset, offset + kept):
                staged.append((region, scratch, offset, kept))
                intermediate[region] = (scratch, kept)
                file_size = scratch + kept
                scratch = _align(file_size)
            else:
                intermediate[region] = (offset, kept)
        if file_size > old_size:
            os.ftruncate(descriptor, file_size)    # before any commit: no table may reach past the end
        if intermediate:
            for region, (destination, kept) in intermediate.items():
                _copy(descriptor, region._offset, destination, kept)
            self._commit([(region,) + intermediate.get(region, (region._offset, region._size))
                          for region in self._regions], self._capacity)
        for region, source, destination, kept in staged:
            _copy(descriptor, source, destination, kept)
        for region, offset, size, kept in placed:
            if offset + kept < min(offset + size, old_size):     # bytes past the old end are zero already
                _zero(descriptor, offset + kept, min(offset + size, old_size))
        self._commit([(region, offset, size) for region, offset, size, _ in placed], capacity)
        if file_size > new_end:
            os.ftruncate(descriptor, new_end)

    def _table_end(self):
        return self._table_offset + 2 * self._capacity * ENTRY_SIZE

    def _header(self, active, table_offset, capacity, count, generation, table):
        body = _HEADER_BODY.pack(MAGIC, VERSION, active, table_offset, capacity, count, generation, zlib.crc32(table))
        return body + _HEADER_TAIL.pack(zlib.crc32(body))

    def _commit(self, layout, capacity):
        """Write ``layout`` ((region, offset, size) in order) into a free slot, then the header; adopt it."""
        descriptor = self._file.fileno()
        slot = 1 - self._active if capacity == self._capacity else 1   # a grown area's slot 1 is past the old one
        names = [_encoded_name(region._name) for region, _, _ in layout]
        table = b''.join(_ENTRY.pack(offset, size, len(name), name) for (_, offset, size), name in zip(layout, names))
        _write_at(descriptor, table, self._table_offset + slot * capacity * ENTRY_SIZE)
        self._barrier()
        _write_at(descriptor, self._header(slot, self._table_offset, capacity, len(layout), self._generation + 1,
                                           table), 0)
        self._barrier()
        self._active, self._capacity, self._generation = slot, capacity, self._generation + 1
        survivors = {region for region, _, _ in layout}
        for region in self._regions:
            if region not in survivors:
                region._owner = None
        for region, offset, size in layout:
            region._offset, region._size = offset, size
        self._set_regions([region for region, _, _ in layout])

    def _barrier(self):
        if self.durable:
            os.fsync(self._file.fileno())

    def _set_regions(self, regions):
        self._regions = regions
        self._by_name = {}
        for index, region in enumerate(regions):
            region._index = index
            if region._name is not None:
                self._by_name[region._name] = region

    def _remap(self):
        descriptor = self._file.fileno()
        self._mapped = MappedFile(self._file, _MAPPING_MODE[self.mode], 0, os.fstat(descriptor).st_size)

    # -- lifetime ---------------------------------------------------------------------------

    def flush(self):
        """Write changes back to the file (modes ``r+``/``w+``); nothing to do for ``r`` and ``c``."""
        if self._mapped is not None and self.mode in ('r+', 'w+'):
            self._mapped.flush()
            os.fsync(self._file.fileno())

    def close(self):
        """Flush and unmap; :class:`ViewsAliveError` while views are alive (the file stays open)."""
        if self._file is None:
            return
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = 'closed' if self._file is None else '%d regions' % len(self._regions)
        return '<RegionFile %r mode %r, %s>' % (self.filename, self.mode, state)


Memmap = RegionFile     # numarray.memmap's name for a file of resizable regions
