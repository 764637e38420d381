"""Growable object pools: objects packed one at a time into memory-mapped temporary files.

Layout
------
A pool is a list of *sections*.  A section is one temporary file mapped into memory
(``MAP_SHARED``), ``section_size`` bytes long, or longer when one object needs more.  The
pool's address space is the plain concatenation of its sections::

    logical offset  0              S0               S0+S1                    size
                    | section 0     | section 1      | section 2 (the last)  |
                    | objects | 000 | objects | 0000 | objects |

A section's ``implicit_offs`` is the total size of the sections before it.  Every position
the pool hands out is a *logical* offset, ``implicit_offs`` plus the position inside the
section, and every object is packed with ``implicit_offs`` (FORMAT.md §5.5, and the
docstring of ``sharedbuffers.packing``), so its dedup entries are logical positions too.
Objects start on 8-byte boundaries.  A section's tail that no object filled stays zero.

Dump format (FORMAT.md §12)
---------------------------
``dump(fileobj)`` writes that concatenation: every section but the last in full (its
written part, then zeros up to its size), then the written part of the last section, a
multiple of 8 bytes.  There is no header and no index.  The positions returned by
``pack``/``add`` are offsets into the dumped bytes, readable with
``schema.unpack_from(dumped, position)``; the application stores them.

Why each section has its own idmap
----------------------------------
Pointers inside packed data are int64 differences between positions, and a proxy made by
the pool reads one section's mapping only, so an object must never point into another
section.  Each section therefore deduplicates with its own map (a plain dict, the
``sharedbuffers.packing`` conventions), holding positions inside that section only: a value
shared in section 1 and met again by an object of section 2 is written again in section 2.
The maps also cost memory (an identity entry keeps its object alive), which is why a map is
reset when it reaches ``strong_limit`` entries and, by default, when a new section opens.
A reset keeps the entries of ``add_preload`` objects and of the ``stable_set`` keys.

Lifetimes
---------
Proxies returned by the pool read a read-only view of their section's mapping (the bytes
of one object may be shared with others, so they are not written through a proxy).  They
keep that mapping alive: after ``pool.close()`` they go on reading correct data, as in 1.x,
and the mapping is unmapped when the last of them is gone.  ``close()`` unmaps at once the
sections nobody reads any more, and only those go to ``section_freelist``: a recycled
section is zero-filled and reused, so it must not be visible through an old proxy.

Not thread-safe: one writer per pool.
"""
import bisect
import mmap
import os
import sys
import tempfile

from ..packing import DEFAULT_IDMAP_LIMIT, PackContext, forget_from, idmap_options, pinned_entries, reset_idmap

__all__ = ['Section', 'BaseObjectPool', 'TemporaryObjectPool', 'DEFAULT_SECTION_SIZE', 'DEFAULT_PACK_BUFFER',
           'DEFAULT_IDMAP_LIMIT']

#: 128 MiB: the size at which most malloc implementations switch to mmap (1.x's reasoning).
DEFAULT_SECTION_SIZE = 128 << 20
DEFAULT_PACK_BUFFER = 65536
#: A fresh section that an object measured to fit still refuses is doubled at most this often.
_MAX_GROWTHS = 4
#: Largest scratch buffer used to measure an object whose schema has neither pack nor write.
_MAX_SCRATCH = 1 << 30
_ZERO_CHUNK = bytes(1 << 20)


def _align(size):
    return (size + 7) & -8


def _local_refcount():
    view = object()
    return sys.getrefcount(view)


# What sys.getrefcount reports for an object referenced by one local variable only, or None
# where reference counts are not observable.
_UNSHARED = _local_refcount() if hasattr(sys, 'getrefcount') else None


def _map_file(fileobj, size, zero_fill=False):
    """A writable shared mapping of ``fileobj`` resized to ``size`` bytes."""
    fileno = fileobj.fileno()
    if zero_fill:
        os.ftruncate(fileno, 0)
    os.ftruncate(fileno, size)
    return mmap.mmap(fileno, size, access=mmap.ACCESS_WRITE)


def _byte_view(data):
    view = memoryview(data)
    if view.ndim != 1 or view.format != 'B':
        view = view.cast('B')
    return view


def _packed_size(schema, obj, pack_buffer):
    """Bytes ``obj`` takes packed alone: to size a section, and to surface errors before one opens."""
    pack = getattr(schema, 'pack', None)
    if pack is not None:
        return len(pack(obj))
    write = getattr(schema, 'write', None)
    if write is not None:       # the codec protocol (mapped_object and the bare codecs)
        context = PackContext(0, 0, {})
        write(obj, context)
        return len(context.out)
    scratch = pack_buffer if pack_buffer is not None else bytearray(DEFAULT_PACK_BUFFER)
    while True:
        try:
            return schema.pack_into(obj, scratch, 0)
        except IndexError:
            if len(scratch) >= _MAX_SCRATCH:
                raise
            scratch = bytearray(2 * len(scratch))


class Section:
    """One piece of a pool: a writable buffer, the position where the next object goes, and its idmap.

    ``buf`` is the buffer (an mmap in pools), ``real_buf`` a writable memoryview of it and
    ``readonly_buf`` the read-only view that proxies read.  ``implicit_offs`` is the logical
    offset of the section's first byte.  ``write_pos`` is always a multiple of 8.
    """

    def __init__(self, buf, implicit_offs=0, idmap_kwargs={}, fileobj=None):
        self.fileobj = fileobj
        self._set_buffer(buf)
        self.attach(implicit_offs, idmap_kwargs)

    @classmethod
    def on_file(cls, fileobj, size, implicit_offs=0, idmap_kwargs={}):
        """A section mapping ``fileobj``, resized to ``size`` bytes."""
        return cls(_map_file(fileobj, size), implicit_offs, idmap_kwargs, fileobj)

    def _set_buffer(self, buf):
        self.buf = buf
        self.real_buf = memoryview(buf)
        self.readonly_buf = self.real_buf.toreadonly()

    def attach(self, implicit_offs=0, idmap_kwargs={}, size=None):
        """Start over, empty, at logical offset ``implicit_offs``.

        A section whose mapping was closed (one recycled through a freelist) is mapped
        again, zero-filled, ``size`` bytes long (by default the size of its file).
        """
        limit, kept = idmap_options(idmap_kwargs)
        if self.buf is None:
            if size is None:
                size = os.fstat(self.fileobj.fileno()).st_size
            self._set_buffer(_map_file(self.fileobj, size, zero_fill=True))
        self.implicit_offs = implicit_offs
        self.write_pos = 0
        # 1.x's StrongIdMap per section, as a plain dict (see packing.reset_idmap)
        self.idmap = {}
        self.idmap_limit = limit
        self._kept_keys = kept
        self._pinned = {}

    def detach(self):
        """Forget the idmap (the section is leaving its pool)."""
        self.idmap = None
        self._pinned = {}

    @property
    def free_space(self):
        return len(self.buf) - self.write_pos

    def allocate(self, size=None):
        """Reserve ``size`` bytes (by default all that is free); return where they start.

        The write position moves on to the next multiple of 8, so the next object is aligned.
        """
        start = self.write_pos
        capacity = len(self.buf)
        if size is None:
            size = capacity - start
        if size < 0 or start + size > capacity:
            raise IndexError('cannot allocate %d bytes: the section has %d free' % (size, capacity - start))
        self.write_pos = min(_align(start + size), capacity)
        return start

    def append(self, buf, verify_pos=None):
        """Copy the bytes of ``buf`` to the write position; return where they start.

        ``verify_pos``, when given, must be the current write position (1.x's check that
        nobody appended in between).
        """
        if verify_pos is not None and verify_pos != self.write_pos:
            raise RuntimeError('concurrent modification: expected to append at %d, the section is at %d'
                               % (verify_pos, self.write_pos))
        data = _byte_view(buf)
        start = self.allocate(data.nbytes)
        end = start + data.nbytes
        self.buf[start:end] = data
        self.buf[end:self.write_pos] = bytes(self.write_pos - end)
        return start

    def try_pack(self, schema, obj):
        """Pack ``obj`` at the write position with this section's idmap.

        Returns where it starts, or None when it does not fit; then nothing has changed (the
        idmap entries of the attempt are taken back).
        """
        start = self.write_pos
        idmap = self.idmap
        pack_into = getattr(schema, 'pack_into', None)
        try:
            if pack_into is not None:
                end = pack_into(obj, self.buf, start, idmap, implicit_offs=self.implicit_offs)
                if end == start:
                    # The whole value was a dedup hit (mapped_object packing a value met
                    # before): nothing was written, and where the copy is cannot be told.
                    end = pack_into(obj, self.buf, start, {}, implicit_offs=self.implicit_offs)
            else:
                end = self._pack_and_copy(schema, obj, start)
        except IndexError:
            forget_from(idmap, self.implicit_offs + start)
            return None
        except BaseException:
            forget_from(idmap, self.implicit_offs + start)
            raise
        self.write_pos = (end + 7) & -8
        if len(idmap) > self.idmap_limit:
            self.clear_idmap()
        return start

    def _pack_and_copy(self, schema, obj, start):
        """The path of schemas that only have ``pack(obj, idmap, implicit_offs=...)``."""
        pack = getattr(schema, 'pack', None)
        if pack is None:
            raise TypeError('%r cannot pack: it has neither pack_into nor pack' % (schema,))
        data = pack(obj, self.idmap, implicit_offs=self.implicit_offs + start)
        if not data:        # a dedup hit as a whole, as in try_pack
            data = pack(obj, {}, implicit_offs=self.implicit_offs + start)
        end = start + len(data)
        if end > len(self.buf):
            # pack() has recorded the idmap as written up to the object's end, so nothing can
            # be packed below that point any more: this section is full.
            self.write_pos = len(self.buf)
            raise IndexError('%d bytes do not fit at %d' % (len(data), start))
        self.buf[start:end] = data
        return end

    def pin_idmap(self):
        """Make the current entries (the preloaded objects) survive every reset."""
        self._pinned = pinned_entries(self.idmap)

    def clear_idmap(self):
        """Reset the idmap, keeping pinned entries and those of the stable keys."""
        reset_idmap(self.idmap, self._pinned, self._kept_keys)

    def grow(self, size):
        """Make the section ``size`` bytes long (its content stays where it is)."""
        if self.fileobj is None:
            raise TypeError('only a section on a file can grow')
        if size > len(self.buf):
            self._unmap()       # a view still in use keeps the old mapping: same file, same bytes
            self._set_buffer(_map_file(self.fileobj, size))

    def _unmap(self):
        """Drop this section's mapping: unmap it now unless something still reads it.

        Returns True when it was unmapped (nobody can see its bytes any more).
        """
        unmapped = True
        for name in ('readonly_buf', 'real_buf'):
            view = getattr(self, name)
            setattr(self, name, None)
            if view is None or not unmapped:
                continue
            if _UNSHARED is not None and sys.getrefcount(view) <= _UNSHARED:
                try:
                    view.release()
                    continue
                except BufferError:     # numpy arrays, ctypes structures... made from it
                    pass
            unmapped = False
        buf = self.buf
        self.buf = None
        if unmapped and isinstance(buf, mmap.mmap):
            try:
                buf.close()
            except BufferError:         # slices of the views are still alive
                unmapped = False
        return unmapped

    def close(self):
        """Release the mapping (or leave it to the proxies still reading it) and the file."""
        self.detach()
        self._unmap()
        if self.fileobj is not None:
            self.fileobj.close()

    def __repr__(self):
        size = len(self.buf) if self.buf is not None else 0
        return '<Section at %d: %d of %d bytes used>' % (self.implicit_offs, self.write_pos, size)


class BaseObjectPool:
    """A growable pool of packed objects; use a concrete subclass (:class:`TemporaryObjectPool`).

    ``pack`` appends one object and returns ``(position, proxy)``: the proxy can stand in for
    the object from then on, so object graphs bigger than memory can be built one object at a
    time.  ``dump`` writes the whole pool, in which every returned position stays valid.

    Each section has its own idmap, so values are shared between objects of one section only
    (see the module docstring); sections should be large, but the pool grows by whole
    sections.  ``idmap_kwargs`` takes 1.x's ``StrongIdMap`` keywords: ``strong_limit``
    (entries before a section's idmap is reset) and ``stable_set`` (idmap keys of objects the
    caller keeps alive, kept across resets); ``preallocate`` and ``strong_class`` are
    accepted and ignored.  ``section_freelist`` is a list that ``close()`` fills with sections
    for later pools to reuse.
    """

    def __init__(self, section_size=DEFAULT_SECTION_SIZE, temp_kwargs={}, idmap_kwargs={},
                 section_freelist=None):
        if not isinstance(section_size, int) or isinstance(section_size, bool) or section_size < 8:
            raise ValueError('section_size must be an int of at least 8 bytes, got %r' % (section_size,))
        idmap_options(idmap_kwargs)
        self.section_size = _align(section_size)
        self.temp_kwargs = dict(temp_kwargs)
        self.idmap_kwargs = dict(idmap_kwargs)
        self.section_freelist = section_freelist
        self.sections = []
        self.idmap_preload = []
        self._starts = []           # implicit_offs of each section, for bisection
        self._current = None        # the section the last object went to: tried first
        self._preload_size = None   # bytes the preloaded objects take at the start of a section

    def _mktemp(self):
        """A new, empty, binary read-write file to map one section on (1.x's abstract hook)."""
        raise NotImplementedError('%s does not say where sections live: subclass it and define _mktemp(), '
                                  'or use TemporaryObjectPool' % type(self).__name__)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def size(self):
        """Bytes written so far: what ``dump`` writes."""
        if not self.sections:
            return 0
        last = self.sections[-1]
        return last.implicit_offs + last.write_pos

    # -- adding objects -------------------------------------------------------------------

    def pack(self, schema, obj, min_pack_buffer=DEFAULT_PACK_BUFFER, clear_idmaps_on_new_section=True,
             pack_buffer=None):
        """Pack ``obj`` with ``schema``; return ``(position, proxy)``.

        The section of the previous object is tried first, whatever its free space; when the
        object does not fit there, it goes to the newest other section with at least
        ``min_pack_buffer`` bytes free and room for it, else to a new section (which grows
        beyond ``section_size`` if the object needs it).  ``clear_idmaps_on_new_section``
        resets every section's idmap when a new one opens, to bound memory.
        ``pack_buffer`` is only a scratch buffer for measuring an object that did not fit.
        """
        section = self._current
        if section is not None:
            start = section.try_pack(schema, obj)
            if start is not None:
                return section.implicit_offs + start, schema.unpack_from(section.readonly_buf, start)
        section, start = self._pack_elsewhere(schema, obj, min_pack_buffer, clear_idmaps_on_new_section,
                                              pack_buffer)
        return section.implicit_offs + start, schema.unpack_from(section.readonly_buf, start)

    def _pack_elsewhere(self, schema, obj, min_free, clear_idmaps, pack_buffer):
        size = _packed_size(schema, obj, pack_buffer)
        current = self._current
        for section in reversed(self.sections):
            free = section.free_space
            if section is not current and free >= size and free >= min_free:
                start = section.try_pack(schema, obj)
                if start is not None:
                    self._current = section
                    return section, start
        section = self._open_section(size, clear_idmaps)
        return section, self._pack_growing(section, schema, obj, size)

    def _pack_growing(self, section, schema, obj, size):
        """Pack into a section nobody reads yet, growing it if the object still does not fit."""
        for _ in range(_MAX_GROWTHS):
            start = section.try_pack(schema, obj)
            if start is not None:
                return start
            section.grow(2 * len(section.buf))
        raise RuntimeError('an object measured at %d bytes did not fit in a new section of %d bytes'
                           % (size, len(section.buf)))

    def add(self, schema, buf, clear_idmaps_on_new_section=True):
        """Append pre-packed, relocatable bytes (no pointer outside them); return ``(position, proxy)``.

        Typically the output of ``schema.pack(obj)`` made in another process.
        """
        data = _byte_view(buf)
        size = data.nbytes
        section = self._current
        if section is None or section.free_space < size:
            section = next((candidate for candidate in reversed(self.sections) if candidate.free_space >= size),
                           None)
            if section is None:
                section = self._open_section(size, clear_idmaps_on_new_section)
        start = section.append(data)
        self._current = section
        return section.implicit_offs + start, schema.unpack_from(section.readonly_buf, start)

    def add_preload(self, schema, obj):
        """Pack ``obj`` at the start of every section opened from now on, and share it.

        Its values are pinned in those sections' idmaps, so later objects that refer to them
        point at the preloaded copy.  Each section repeats it: keep it small.
        """
        self.idmap_preload.append((schema, obj))
        self._preload_size = None

    def _open_section(self, needed, clear_idmaps):
        if clear_idmaps:
            self.clear_idmaps()
        return self.add_section(self._preload_bytes() + _align(needed))

    def _preload_bytes(self):
        if self._preload_size is None:
            self._preload_size = sum(_align(_packed_size(schema, obj, None)) for schema, obj in self.idmap_preload)
        return self._preload_size

    def add_section(self, size=None):
        """Open a new section (at least ``section_size`` bytes), make it current and return it."""
        size = self.section_size if size is None else max(self.section_size, _align(size))
        implicit_offs = 0
        if self.sections:
            last = self.sections[-1]
            implicit_offs = last.implicit_offs + len(last.buf)
        if self.section_freelist:
            section = self.section_freelist.pop()
            section.attach(implicit_offs, self.idmap_kwargs, size)
            if len(section.buf) < size:
                section.grow(size)
        else:
            fileobj = self._mktemp()
            try:
                section = Section.on_file(fileobj, size, implicit_offs, self.idmap_kwargs)
            except BaseException:
                fileobj.close()
                raise
        try:
            for schema, obj in self.idmap_preload:
                self._pack_growing(section, schema, obj, size)
            section.pin_idmap()
        except BaseException:
            section.close()
            raise
        if self.idmap_preload:
            self._preload_size = section.write_pos
        self.sections.append(section)
        self._starts.append(implicit_offs)
        self._current = section
        return section

    # -- reading --------------------------------------------------------------------------

    def find_section(self, pos):
        """The section holding logical position ``pos``, or None."""
        index = bisect.bisect_right(self._starts, pos) - 1
        if index >= 0:
            section = self.sections[index]
            if pos < section.implicit_offs + len(section.buf):
                return section
        return None

    def unpack(self, schema, pos):
        """A proxy of the object ``pack`` or ``add`` put at logical position ``pos``."""
        section = self.find_section(pos)
        if section is None or pos >= section.implicit_offs + section.write_pos:
            raise IndexError('position %d is outside the written part of the pool (%d sections, %d bytes)'
                             % (pos, len(self.sections), self.size))
        return schema.unpack_from(section.readonly_buf, pos - section.implicit_offs)

    def clear_idmaps(self):
        """Reset every section's idmap (preloaded and stable entries stay)."""
        for section in self.sections:
            section.clear_idmap()

    def dump(self, fileobj):
        """Write the whole pool to ``fileobj`` (layout in the module docstring); return the bytes written."""
        sections = self.sections
        if not sections:
            return 0
        for section in sections[:-1]:
            fileobj.write(section.real_buf[:section.write_pos])
            gap = len(section.buf) - section.write_pos
            while gap:
                chunk = min(gap, len(_ZERO_CHUNK))
                fileobj.write(_ZERO_CHUNK[:chunk])
                gap -= chunk
        last = sections[-1]
        fileobj.write(last.real_buf[:last.write_pos])
        return last.implicit_offs + last.write_pos

    # -- lifetime -------------------------------------------------------------------------

    def close(self, discard=False):
        """Release every section; the pool is empty afterwards.

        With a ``section_freelist`` and ``discard=False``, sections that no proxy reads any
        more go to the freelist for a later pool; the others are closed (their mapping lives
        on with the proxies).  ``discard=True`` closes the freelist's sections as well.
        """
        sections = self.sections
        self.sections = []
        self._starts = []
        self._current = None
        freelist = self.section_freelist
        if freelist is not None and discard:
            sections.extend(freelist)
            del freelist[:]
        for section in sections:
            if freelist is not None and not discard and section.fileobj is not None and section._unmap():
                section.detach()
                freelist.append(section)
            else:
                section.close()


class TemporaryObjectPool(BaseObjectPool):
    """An object pool on anonymous temporary files (``tempfile.TemporaryFile(**temp_kwargs)``)."""

    def _mktemp(self):
        return tempfile.TemporaryFile(**self.temp_kwargs)
