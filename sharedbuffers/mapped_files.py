"""A file, or a part of it, mapped into memory with numpy.memmap's modes.

Modes (numpy.memmap's names are accepted too):

=====  ===============  ==========================================================
mode   long name        meaning
=====  ===============  ==========================================================
``r``  ``readonly``     read-only; writing raises ``TypeError``
``r+`` ``readwrite``    read-write; changes reach the file (and every process
                        that maps it); a region past the end grows the file
``w+`` ``write``        create or overwrite the file with ``size`` zero bytes
``c``  ``copyonwrite``  writable, but changes stay in this process's memory;
                        the file is never touched
=====  ===============  ==========================================================

``offset`` may be any byte position: ``mmap`` wants multiples of the allocation
granularity, so the mapping starts at the granule below and the view skips the
difference.

Lifetimes.  Every view handed out (``buffer``, ``view()``, ``asarray()``) is counted.
``close()`` while any of them is alive raises :class:`ViewsAliveError` (a ``ValueError``
and a ``BufferError``) saying how many, and leaves the mapping usable: an unmapped view
would crash the interpreter at its next read, so closing never unmaps under a view.
"""
import mmap
import os
import weakref

__all__ = ['MappedFile', 'ViewsAliveError', 'MODES', 'normalize_mode', 'access_for_mode']

MODES = {
    'r': 'r', 'readonly': 'r',
    'r+': 'r+', 'readwrite': 'r+',
    'w+': 'w+', 'write': 'w+',
    'c': 'c', 'copyonwrite': 'c',
}

_ACCESS = {'r': mmap.ACCESS_READ, 'r+': mmap.ACCESS_WRITE, 'w+': mmap.ACCESS_WRITE, 'c': mmap.ACCESS_COPY}
_OPEN_FLAGS = {'r': 'rb', 'r+': 'r+b', 'w+': 'w+b', 'c': 'rb'}


class ViewsAliveError(ValueError, BufferError):
    """Closing (or moving) a mapping that views still point into."""


def normalize_mode(mode):
    """The short form of ``mode`` (``'r'``, ``'r+'``, ``'w+'`` or ``'c'``), or ValueError."""
    try:
        return MODES[mode]
    except (KeyError, TypeError):
        raise ValueError('mode must be one of %s, not %r' % (', '.join(repr(m) for m in MODES), mode)) from None


def access_for_mode(mode):
    """The ``mmap`` access constant of a (short or long) mode name."""
    return _ACCESS[normalize_mode(mode)]


def _released(view):
    try:
        view.nbytes
    except ValueError:
        return True
    return False


class MappedFile:
    """``size`` bytes of a file from ``offset``, mapped with one of the modes above.

    ``file`` is a path or an open binary file (whose descriptor is used, not kept).
    ``size=None`` maps to the end of the file; ``w+`` needs a size.
    """

    def __init__(self, file, mode='r', offset=0, size=None):
        mode = normalize_mode(mode)
        if not isinstance(offset, int) or offset < 0:
            raise ValueError('offset must be a non-negative integer, not %r' % (offset,))
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError('size must be a non-negative integer or None, not %r' % (size,))
        if mode == 'w+' and size is None:
            raise ValueError("mode 'w+' creates the file and needs a size")
        self.mode = mode
        self.offset = offset
        self._views = []       # weak references to the views handed out (see _track)
        self._mmap = None
        self._whole = None
        # os.PathLike's test without the ABC machinery, which costs ~20 us on a cold open
        if isinstance(file, (str, bytes)) or hasattr(type(file), '__fspath__'):
            self.filename = os.path.abspath(os.fsdecode(file))
            with open(file, _OPEN_FLAGS[mode]) as opened:
                self._map(opened.fileno(), size)
        else:
            self.filename = getattr(file, 'name', None)
            if hasattr(file, 'flush'):
                file.flush()    # what was written through the file object must be in the map
            if mode == 'w+':
                file.seek(0)
                file.truncate(0)
            self._map(file.fileno(), size)

    def _map(self, descriptor, size):
        offset = self.offset
        if size is None and self.mode != 'w+' and self._map_to_end(descriptor, offset):
            return
        length = os.fstat(descriptor).st_size
        if self.mode == 'w+':
            os.ftruncate(descriptor, 0)
            length = 0
        if size is None:
            if offset > length:
                raise ValueError('offset %d is past the end of the file (%d bytes)' % (offset, length))
            size = length - offset
        end = offset + size
        if end > length:
            if self.mode in ('r', 'c'):
                raise ValueError('region %d+%d is past the end of the file (%d bytes); mode %r cannot grow it'
                                 % (offset, size, length, self.mode))
            os.ftruncate(descriptor, end)
        if size == 0:
            raise ValueError('cannot map an empty region (offset %d, size 0)' % offset)
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        self._mmap = mmap.mmap(descriptor, end - start, access=_ACCESS[self.mode], offset=start)
        self._whole = memoryview(self._mmap)[offset - start:]
        self.size = size

    def _map_to_end(self, descriptor, offset):
        """Map from ``offset`` to the end of the file, sized by ``mmap`` itself; False when
        there is nothing to map there (``_map`` then words the error).

        The common way to open a container.  ``mmap`` takes the file's size with its own
        ``fstat``, so asking for it first was one more system call (and a stat result) on
        every open.
        """
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(descriptor, 0, access=_ACCESS[self.mode], offset=start)
        except ValueError:      # an empty file, or offset past its end
            return False
        size = len(mapped) - (offset - start)
        if size <= 0:
            mapped.close()
            return False
        self._mmap = mapped
        self._whole = memoryview(mapped)[offset - start:]
        self.size = size
        return True

    # -- views ------------------------------------------------------------------------------

    @property
    def closed(self):
        return self._mmap is None

    @property
    def readonly(self):
        return self.mode == 'r'

    def _live(self):
        if self._mmap is None:
            raise ValueError('I/O operation on a closed mapping')
        return self._whole

    def _track(self, view):
        # A list of plain weak references (memoryviews are not hashable), rid of the dead ones
        # whenever its length reaches a power of two: a callback per view would be a closure
        # made on every open.
        views = self._views
        count = len(views)
        if count >= 8 and not count & (count - 1):
            views[:] = [reference for reference in views if reference() is not None]
        views.append(weakref.ref(view))
        return view

    @property
    def buffer(self):
        """A byte memoryview of the whole region (writable unless the mode is ``r``)."""
        return self._track(self._live()[:])

    def view(self, offset=0, size=None, format='B', shape=None):
        """A memoryview of ``size`` bytes at ``offset`` of the region, cast to ``format``/``shape``."""
        return self._track(self._slice(offset, size, format, shape))

    def _slice(self, offset, size, format='B', shape=None):
        whole = self._live()
        if size is None:
            size = self.size - offset
        if offset < 0 or size < 0 or offset + size > self.size:
            raise IndexError('view %d+%d is outside the mapped region (%d bytes)' % (offset, size, self.size))
        view = whole[offset:offset + size]
        if format != 'B' or shape is not None:
            view = view.cast(format, shape) if shape is not None else view.cast(format)
        return view

    def asarray(self, dtype='u1', shape=None, offset=0, order='C'):
        """A numpy array over the region (no copy): ``np.ndarray`` with this mapping as its memory."""
        import numpy
        dtype = numpy.dtype(dtype)
        if shape is None:
            shape = ((self.size - offset) // dtype.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        count = 1
        for extent in shape:
            count *= extent
        # numpy keeps its own export of the bytes, not the memoryview: count the array.
        return self._track(numpy.ndarray(shape, dtype, buffer=self._slice(offset, count * dtype.itemsize),
                                         order=order))

    def __array__(self, dtype=None, copy=None):
        return self.asarray('u1' if dtype is None else dtype)

    def __len__(self):
        return self.size

    @property
    def live_views(self):
        """How many views handed out by this mapping are still alive (and not released)."""
        return sum(1 for ref in list(self._views) if (view := ref()) is not None and not _released(view))

    # -- lifetime ---------------------------------------------------------------------------

    def flush(self):
        """Write changes back to the file (modes ``r+``/``w+``); nothing to do for ``r`` and ``c``."""
        if self._mmap is not None and self.mode in ('r+', 'w+'):
            self._mmap.flush()

    def close(self, flush=True):
        """Flush and unmap; :class:`ViewsAliveError` while views are alive (the mapping stays).

        ``flush=False`` skips the (synchronous) flush: the writes of a shared mapping stay in
        the page cache, where reads of the file see them; they reach the disk in due course.
        """
        if self._mmap is None:
            return
        alive = self.live_views
        if alive:
            raise ViewsAliveError('cannot close the mapping of %s: %d view%s of it %s still alive'
                                  % (self.filename or 'a file', alive, '' if alive == 1 else 's',
                                     'is' if alive == 1 else 'are'))
        if flush:
            self.flush()
        self._whole.release()
        try:
            self._mmap.close()
        except BufferError:
            self._whole = memoryview(self._mmap)[self.offset % mmap.ALLOCATIONGRANULARITY:]
            raise ViewsAliveError('cannot close the mapping of %s: views derived from its buffers are '
                                  'still alive' % (self.filename or 'a file')) from None
        self._mmap = None
        self._whole = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = 'closed' if self._mmap is None else '%d bytes at offset %d' % (self.size, self.offset)
        return '<MappedFile %r mode %r, %s>' % (self.filename, self.mode, state)
